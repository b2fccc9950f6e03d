//! `service`: a service's running and enabled state, whatever the init system. One probe finds the
//! init system and reads the service: on systemd hosts (`/run/systemd/system`) it is the systemd
//! module's `systemctl show` probe and planner; elsewhere `service NAME status` (or `pgrep -f` of
//! `pattern`), the `/etc/rc?.d/S??NAME` links, and `service NAME start|stop|...` plus
//! `update-rc.d` (or `chkconfig`, `rc-update`) to act.

use super::core::{boolish, numish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::remote::state_diff;
use super::systemd::{self, Action, Scope, State, Unit, Want};
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
    #[serde(default)]
    pub state: Option<State>,
    #[serde(default, with = "boolish::option")]
    pub enabled: Option<bool>,
    /// Extra arguments for the init script (not used by systemd).
    #[serde(default, alias = "args", deserialize_with = "stringish::option")]
    pub arguments: Option<String>,
    /// Without a usable status command: the service runs when a process matches this.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Seconds between stop and start on restart (init scripts).
    #[serde(default, deserialize_with = "numish::option")]
    pub sleep: Option<f64>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    /// Accepted for compatibility (Ansible's OpenRC/BSD runlevel); the Debian links are used.
    #[serde(default)]
    pub runlevel: Option<String>,
}

/// The init system the plan is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Init {
    Systemd(Unit),
    Sysv {
        script: bool,
        running: bool,
        enabled: bool,
    },
}

pub struct Plan {
    init: Init,
    actions: Vec<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Auto,
    Systemd,
    Sysv,
}

fn use_of(a: &Args) -> Result<Use, String> {
    match a.use_.as_deref().unwrap_or("auto") {
        "auto" => Ok(Use::Auto),
        "systemd" => Ok(Use::Systemd),
        "sysvinit" | "sysv" | "service" => Ok(Use::Sysv),
        other => Err(format!(
            "use: {other} is not supported; use auto, systemd or sysvinit"
        )),
    }
}

/// The probe: the init system, then the service as that init system sees it.
fn probe_script(a: &Args, u: Use) -> String {
    let n = shell_quote(&a.name);
    let detect = match u {
        Use::Auto => "[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1",
        Use::Systemd => "true",
        Use::Sysv => "false",
    };
    let status = match &a.pattern {
        Some(p) => format!("pgrep -f {} >/dev/null 2>&1", shell_quote(p)),
        None => format!("service {n} status >/dev/null 2>&1"),
    };
    format!(
        "if {detect}; then echo HLINIT systemd; {show}; else echo HLINIT sysv; \
         if [ -x /etc/init.d/{n} ]; then echo HLSCRIPT; fi; \
         {status}; echo \"HLSTATUS $?\"; \
         for f in /etc/rc[2345].d/S*{n}; do [ -e \"$f\" ] && echo \"HLRC $f\"; done; true; fi",
        show = systemd::show_script(Scope::System, &a.name),
    )
}

/// Parses the probe's output into the init system and the service's state.
fn parse_probe(out: &str, name: &str) -> Init {
    if out.lines().any(|l| l == "HLINIT systemd") {
        return Init::Systemd(Unit {
            props: systemd::parse_show(out),
        });
    }
    let rc_link = |l: &str| {
        l.strip_prefix("HLRC ").is_some_and(|f| {
            // S01name exactly: the digits, then the name.
            let base = f.rsplit('/').next().unwrap_or("");
            base.strip_prefix('S')
                .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
                == Some(name)
        })
    };
    Init::Sysv {
        script: out.lines().any(|l| l == "HLSCRIPT"),
        running: out.lines().any(|l| l == "HLSTATUS 0"),
        enabled: out.lines().any(rc_link),
    }
}

/// The init-script actions that bring the service to `w`.
fn decide_sysv(running: bool, enabled: bool, w: &Want) -> Vec<Action> {
    let mut v = vec![];
    if let Some(e) = w.enabled {
        if e != enabled {
            v.push(if e { Action::Enable } else { Action::Disable });
        }
    }
    match w.state {
        Some(State::Started) if !running => v.push(Action::Start),
        Some(State::Stopped) if running => v.push(Action::Stop),
        Some(State::Restarted) => v.push(Action::Restart),
        Some(State::Reloaded) => v.push(if running {
            Action::Reload
        } else {
            Action::Start
        }),
        _ => {}
    }
    v
}

/// The commands for init-script actions, stopping at the first that fails.
pub fn sysv_script(
    name: &str,
    actions: &[Action],
    args: Option<&str>,
    sleep: Option<f64>,
) -> String {
    let n = shell_quote(name);
    let extra = args
        .filter(|a| !a.trim().is_empty())
        .map(|a| format!(" {a}"))
        .unwrap_or_default();
    let svc = |verb: &str| format!("service {n} {verb}{extra}");
    actions
        .iter()
        .map(|a| match a {
            Action::Enable => format!(
                "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {n} defaults && update-rc.d {n} enable; \
                 elif command -v chkconfig >/dev/null 2>&1; then chkconfig {n} on; \
                 elif command -v rc-update >/dev/null 2>&1; then rc-update add {n} default; \
                 else echo 'no update-rc.d, chkconfig or rc-update on this host' >&2; false; fi"
            ),
            Action::Disable => format!(
                "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {n} disable; \
                 elif command -v chkconfig >/dev/null 2>&1; then chkconfig {n} off; \
                 elif command -v rc-update >/dev/null 2>&1; then rc-update del {n} default; \
                 else echo 'no update-rc.d, chkconfig or rc-update on this host' >&2; false; fi"
            ),
            Action::Restart => match sleep {
                Some(s) if s > 0.0 => {
                    format!("{{ {} ; sleep {s}; {}; }}", svc("stop"), svc("start"))
                }
                _ => svc("restart"),
            },
            other => svc(other.verb()),
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

pub struct Service;

impl Args {
    fn want(&self) -> Want {
        Want {
            state: self.state,
            enabled: self.enabled,
            masked: None,
        }
    }
}

impl Module for Service {
    const NAME: &'static str = "service";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let w = a.want();
        if a.name.trim().is_empty() {
            return Err(ModuleError::Failed(
                "name is empty: give the service's name".into(),
            ));
        }
        if w.state.is_none() && w.enabled.is_none() {
            return Err(ModuleError::Failed(
                "one of the following is required: state, enabled".into(),
            ));
        }
        let u = use_of(a).map_err(ModuleError::Failed)?;
        let out = ctx.exec(probe_script(a, u)).await?;
        let init = parse_probe(&out.stdout_str(), &a.name);
        let missing = || {
            ModuleError::Failed(format!(
                "Could not find the requested service {}: host {} has no such service; check the name",
                a.name, ctx.host
            ))
        };
        let actions = match &init {
            Init::Systemd(unit) => {
                if !unit.found() {
                    return Err(missing());
                }
                let actions = systemd::decide(unit, &w);
                if systemd::masked_conflict(unit, &w, &actions) {
                    return Err(ModuleError::Failed(format!(
                        "unit {} is masked on {}: it cannot be started or enabled; unmask it \
                         first (systemd module, masked: false)",
                        a.name, ctx.host
                    )));
                }
                actions
            }
            Init::Sysv {
                script,
                running,
                enabled,
            } => {
                if !script && a.pattern.is_none() {
                    return Err(missing());
                }
                decide_sysv(*running, *enabled, &w)
            }
        };
        Ok(Plan { init, actions })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let w = a.want();
        let mut r = TaskResult::changed(!p.actions.is_empty()).with("name", a.name.clone());
        let running = match &p.init {
            Init::Systemd(u) => {
                let status: Map<String, Value> = u
                    .props
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                r = r.with("status", Value::Object(status));
                u.active()
            }
            Init::Sysv { running, .. } => *running,
        };
        if let Some(s) = w.state {
            let now = match s {
                State::Stopped => "stopped",
                _ if p.actions.is_empty() => {
                    if running {
                        "started"
                    } else {
                        "stopped"
                    }
                }
                other => other.word(),
            };
            r = r.with("state", now);
        }
        if let Some(e) = w.enabled {
            r = r.with("enabled", e);
        }
        if ctx.diff && r.changed {
            match &p.init {
                Init::Systemd(u) => r.diff.push(systemd::diff_of(&a.name, u, &w, &p.actions)),
                Init::Sysv {
                    running, enabled, ..
                } => {
                    let word = |b: bool, y: &str, n: &str| (if b { y } else { n }).to_string();
                    let mut before = vec![];
                    let mut after = vec![];
                    if w.enabled.is_some() {
                        before.push(("enabled", word(*enabled, "true", "false")));
                        after.push(("enabled", word(w.enabled == Some(true), "true", "false")));
                    }
                    if w.state.is_some() {
                        before.push(("state", word(*running, "running", "stopped")));
                        after.push((
                            "state",
                            word(w.state != Some(State::Stopped), "running", "stopped"),
                        ));
                    }
                    r.diff.push(state_diff(&a.name, &before, &after));
                }
            }
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let script = match &p.init {
            Init::Systemd(_) => {
                systemd::actions_script(Scope::System, &a.name, &p.actions, false, false)
            }
            Init::Sysv { .. } => sysv_script(&a.name, &p.actions, a.arguments.as_deref(), a.sleep),
        };
        let out = ctx.exec(&script).await?;
        if !out.success() {
            let verbs: Vec<&str> = p.actions.iter().map(|a| a.verb()).collect();
            return Err(ModuleError::Failed(format!(
                "Unable to {} service {} on {}: {}",
                verbs.join("+"),
                a.name,
                ctx.host,
                out.stderr_str().trim()
            )));
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_is_parsed_per_init_system() {
        let i = parse_probe(
            "HLINIT systemd\nHLSHOW\nLoadState=loaded\nActiveState=active\nHLSHOWEND\n",
            "cron",
        );
        assert!(matches!(&i, Init::Systemd(u) if u.active() && u.found()));
        let i = parse_probe(
            "HLINIT sysv\nHLSCRIPT\nHLSTATUS 3\nHLRC /etc/rc2.d/S01cron\nHLRC /etc/rc2.d/S01anacron\n",
            "cron",
        );
        assert_eq!(
            i,
            Init::Sysv {
                script: true,
                running: false,
                enabled: true
            }
        );
        let i = parse_probe(
            "HLINIT sysv\nHLSTATUS 0\nHLRC /etc/rc2.d/S01anacron\n",
            "cron",
        );
        assert_eq!(
            i,
            Init::Sysv {
                script: false,
                running: true,
                enabled: false
            }
        );
    }

    #[test]
    fn sysv_plans_and_commands() {
        let w = Want {
            state: Some(State::Started),
            enabled: Some(true),
            masked: None,
        };
        assert_eq!(
            decide_sysv(false, false, &w),
            [Action::Enable, Action::Start]
        );
        assert!(decide_sysv(true, true, &w).is_empty());
        let w = Want {
            state: Some(State::Stopped),
            enabled: Some(false),
            masked: None,
        };
        assert_eq!(decide_sysv(true, true, &w), [Action::Disable, Action::Stop]);
        assert_eq!(
            sysv_script("ntp", &[Action::Start], Some("-x"), None),
            "service ntp start -x"
        );
        assert_eq!(
            sysv_script("ntp", &[Action::Restart], None, Some(2.0)),
            "{ service ntp stop ; sleep 2; service ntp start; }"
        );
        assert_eq!(
            sysv_script("ntp", &[Action::Restart], None, None),
            "service ntp restart"
        );
        let e = sysv_script("my svc", &[Action::Enable], None, None);
        assert!(
            e.starts_with(
                "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d 'my svc' defaults && update-rc.d 'my svc' enable;"
            ),
            "{e}"
        );
        assert!(e.contains("rc-update add 'my svc' default"), "{e}");
        let d = sysv_script("ntp", &[Action::Disable, Action::Stop], None, None);
        assert!(d.contains("update-rc.d ntp disable;"), "{d}");
        assert!(d.ends_with(" && service ntp stop"), "{d}");
    }

    #[test]
    fn probe_follows_use() {
        let a: Args = serde_json::from_value(serde_json::json!({
            "name": "cron", "state": "started", "use": "sysvinit", "pattern": "cron -f"
        }))
        .unwrap();
        let s = probe_script(&a, use_of(&a).unwrap());
        assert!(s.starts_with("if false; then"), "{s}");
        assert!(s.contains("pgrep -f 'cron -f'"), "{s}");
        let a: Args = serde_json::from_value(
            serde_json::json!({"name": "x", "enabled": true, "use": "upstart"}),
        )
        .unwrap();
        assert!(use_of(&a).is_err());
    }
}
