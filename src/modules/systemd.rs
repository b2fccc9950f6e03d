//! `systemd` (alias `systemd_service`): a unit's masked, enabled and active state. One probe
//! (`systemctl show NAME -p ...`, preceded by `daemon-reexec`/`daemon-reload` when asked and not in
//! check mode, as Ansible does) reads the unit; the plan is the list of `systemctl` actions that
//! bring it to what was asked (mask first, then enable, then the state), run in one command.
//! `daemon_reload` alone reports `changed: false`, as in Ansible. A unit that does not exist fails
//! and changes nothing. The planner ([`decide`]) is shared with the `service` module.

use super::core::{boolish, Module, ModuleError, PlannedPath, TaskCtx, TaskResult};
use super::remote::state_diff;
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Stopped => "stopped",
            State::Restarted => "restarted",
            State::Reloaded => "reloaded",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    System,
    User,
    Global,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "service", alias = "unit")]
    pub name: Option<String>,
    #[serde(default)]
    pub state: Option<State>,
    #[serde(default, with = "boolish::option")]
    pub enabled: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub masked: Option<bool>,
    #[serde(default, alias = "daemon-reload", with = "boolish::option")]
    pub daemon_reload: Option<bool>,
    #[serde(default, alias = "daemon-reexec", with = "boolish::option")]
    pub daemon_reexec: Option<bool>,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default, with = "boolish::option")]
    pub no_block: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub force: Option<bool>,
}

/// The properties the probe asks for; `status` in the result is this map.
pub const PROPS: &str = "Id,Names,Description,LoadState,LoadError,ActiveState,SubState,\
UnitFileState,UnitFilePreset,FragmentPath,MainPID,ExecMainStatus,Result,CanStart,CanStop,CanReload";

/// `systemctl` with the scope's flag.
pub fn systemctl(scope: Scope) -> &'static str {
    match scope {
        Scope::System => "systemctl",
        Scope::User => "systemctl --user",
        Scope::Global => "systemctl --global",
    }
}

/// The probe: `systemctl show` of the unit, framed so it can share a command with other probes.
pub fn show_script(scope: Scope, name: &str) -> String {
    match scope {
        // `show` does not work with --global; is-enabled does, and that is all global can do.
        Scope::Global => format!(
            "echo HLSHOW; printf 'UnitFileState=%s\\n' \"$(systemctl --global is-enabled {n} 2>/dev/null)\"; \
             echo LoadState=loaded; echo HLSHOWEND",
            n = shell_quote(name)
        ),
        _ => format!(
            "echo HLSHOW; {} show {} --no-pager -p {PROPS}; echo HLSHOWEND",
            systemctl(scope),
            shell_quote(name)
        ),
    }
}

/// The `Key=Value` lines between the probe's marks (or in all of `out` when there are none).
pub fn parse_show(out: &str) -> BTreeMap<String, String> {
    let body = match out.find("HLSHOW\n") {
        Some(i) => {
            let rest = &out[i + 7..];
            &rest[..rest.find("HLSHOWEND").unwrap_or(rest.len())]
        }
        None => out,
    };
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// A unit as `systemctl show` described it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    pub props: BTreeMap<String, String>,
}

impl Unit {
    fn get(&self, k: &str) -> &str {
        self.props.get(k).map(String::as_str).unwrap_or("")
    }
    pub fn found(&self) -> bool {
        !matches!(self.get("LoadState"), "not-found" | "")
    }
    pub fn masked(&self) -> bool {
        self.get("LoadState") == "masked" || self.get("UnitFileState").starts_with("masked")
    }
    /// Running as Ansible counts it (active or on its way there).
    pub fn active(&self) -> bool {
        matches!(
            self.get("ActiveState"),
            "active" | "activating" | "reloading"
        )
    }
    pub fn unit_file_state(&self) -> &str {
        self.get("UnitFileState")
    }
    /// Whether `is-enabled` would answer yes.
    pub fn enabled(&self) -> bool {
        matches!(
            self.get("UnitFileState"),
            "enabled"
                | "enabled-runtime"
                | "static"
                | "alias"
                | "indirect"
                | "generated"
                | "transient"
        )
    }
    /// Units that cannot be enabled or disabled (no [Install] section).
    pub fn fixed(&self) -> bool {
        matches!(
            self.get("UnitFileState"),
            "static" | "generated" | "transient"
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Mask,
    Unmask,
    Enable,
    Disable,
    Start,
    Stop,
    Restart,
    Reload,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Mask => "mask",
            Action::Unmask => "unmask",
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Reload => "reload",
        }
    }
    fn is_job(self) -> bool {
        matches!(
            self,
            Action::Start | Action::Stop | Action::Restart | Action::Reload
        )
    }
}

/// What is asked of a unit (systemd and service share it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    pub state: Option<State>,
    pub enabled: Option<bool>,
    pub masked: Option<bool>,
}

/// The actions that bring `u` to `w`, in Ansible's order: mask, enable, state.
pub fn decide(u: &Unit, w: &Want) -> Vec<Action> {
    let mut v = vec![];
    let mut masked = u.masked();
    if let Some(m) = w.masked {
        if m != masked {
            v.push(if m { Action::Mask } else { Action::Unmask });
            masked = m;
        }
    }
    if let Some(e) = w.enabled {
        // A masked unit reads "masked", not enabled; enabling it fails as systemctl says.
        let now = !masked && u.enabled();
        if e != now && (e || !u.fixed()) {
            v.push(if e { Action::Enable } else { Action::Disable });
        }
    }
    let running = u.active();
    match w.state {
        Some(State::Started) if !running => v.push(Action::Start),
        Some(State::Stopped) if running => v.push(Action::Stop),
        Some(State::Restarted) => v.push(Action::Restart),
        // Ansible starts a stopped unit asked to be reloaded.
        Some(State::Reloaded) => v.push(if running {
            Action::Reload
        } else {
            Action::Start
        }),
        _ => {}
    }
    v
}

/// Whether `actions` would start or enable a unit that stays masked (systemctl refuses).
pub fn masked_conflict(u: &Unit, w: &Want, actions: &[Action]) -> bool {
    let masked = w.masked.unwrap_or(u.masked());
    masked
        && actions.iter().any(|a| {
            matches!(
                a,
                Action::Start | Action::Restart | Action::Reload | Action::Enable
            )
        })
}

/// The command running `actions` on `name`, stopping at the first that fails.
pub fn actions_script(
    scope: Scope,
    name: &str,
    actions: &[Action],
    no_block: bool,
    force: bool,
) -> String {
    actions
        .iter()
        .map(|a| {
            let mut flags = String::new();
            if no_block && a.is_job() {
                flags.push_str(" --no-block");
            }
            if force && matches!(a, Action::Enable | Action::Disable | Action::Mask) {
                flags.push_str(" --force");
            }
            format!(
                "{}{flags} {} {}",
                systemctl(scope),
                a.verb(),
                shell_quote(name)
            )
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// The before/after state a plan stands for, for `--diff`.
pub fn diff_of(name: &str, u: &Unit, w: &Want, actions: &[Action]) -> super::core::FileDiff {
    let mut before = vec![];
    let mut after = vec![];
    let word = |b: bool, y: &str, n: &str| if b { y.to_string() } else { n.to_string() };
    if w.masked.is_some() {
        before.push(("masked", word(u.masked(), "true", "false")));
        after.push((
            "masked",
            word(w.masked.unwrap_or(u.masked()), "true", "false"),
        ));
    }
    if w.enabled.is_some() {
        let now = u.unit_file_state().to_string();
        before.push(("enabled", now.clone()));
        let then = if actions.contains(&Action::Enable) {
            "enabled".to_string()
        } else if actions.contains(&Action::Disable) {
            "disabled".to_string()
        } else {
            now
        };
        after.push(("enabled", then));
    }
    if w.state.is_some() {
        let now = word(u.active(), "active", "inactive");
        before.push(("state", now.clone()));
        let then = if actions.contains(&Action::Stop) {
            "inactive".to_string()
        } else if actions
            .iter()
            .any(|a| matches!(a, Action::Start | Action::Restart | Action::Reload))
        {
            match actions.iter().find(|a| a.is_job()) {
                Some(Action::Restart) => "active (restarted)".to_string(),
                Some(Action::Reload) => "active (reloaded)".to_string(),
                _ => "active".to_string(),
            }
        } else {
            now
        };
        after.push(("state", then));
    }
    state_diff(name, &before, &after)
}

pub struct Plan {
    name: Option<String>,
    unit: Unit,
    actions: Vec<Action>,
}

pub struct Systemd;

impl Args {
    fn want(&self) -> Want {
        Want {
            state: self.state,
            enabled: self.enabled,
            masked: self.masked,
        }
    }
}

fn failed(m: impl Into<String>) -> ModuleError {
    ModuleError::Failed(m.into())
}

/// Names where a unit file may be planned by an earlier check-mode task.
fn unit_paths(scope: Scope, name: &str) -> Vec<String> {
    if scope != Scope::System {
        return vec![];
    }
    let mut names = vec![name.to_string()];
    if !name.contains('.') {
        names.push(format!("{name}.service"));
    }
    names
        .iter()
        .flat_map(|n| {
            [
                format!("/etc/systemd/system/{n}"),
                format!("/lib/systemd/system/{n}"),
                format!("/usr/lib/systemd/system/{n}"),
            ]
        })
        .collect()
}

impl Module for Systemd {
    const NAME: &'static str = "systemd";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let w = a.want();
        let reload = a.daemon_reload.unwrap_or(false);
        let reexec = a.daemon_reexec.unwrap_or(false);
        if w.state.is_none() && w.enabled.is_none() && w.masked.is_none() && !reload && !reexec {
            return Err(failed(
                "one of the following is required: state, enabled, masked, daemon_reload, daemon_reexec",
            ));
        }
        let name = a.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if name.is_none() && (w.state.is_some() || w.enabled.is_some() || w.masked.is_some()) {
            return Err(failed(
                "name is required with state, enabled or masked: give the unit's name (e.g. name: cron)",
            ));
        }
        if a.scope == Scope::Global && w.state.is_some() {
            return Err(failed(
                "state cannot be used with scope: global (there is no global service manager to start units in); use scope: user",
            ));
        }
        let mut script = String::new();
        if !ctx.check {
            if reexec {
                script.push_str(&format!("{} daemon-reexec && ", systemctl(a.scope)));
            }
            if reload {
                script.push_str(&format!("{} daemon-reload && ", systemctl(a.scope)));
            }
        }
        match name {
            Some(n) => script.push_str(&show_script(a.scope, n)),
            None => script.push_str("true"),
        }
        let out = ctx.exec(script).await?;
        if !out.success() {
            return Err(failed(format!(
                "systemctl failed on {} (rc={}): {}",
                ctx.host,
                out.exit_status.map(i64::from).unwrap_or(-1),
                out.stderr_str().trim()
            )));
        }
        let Some(name) = name else {
            return Ok(Plan {
                name: None,
                unit: Unit::default(),
                actions: vec![],
            });
        };
        let mut unit = Unit {
            props: parse_show(&out.stdout_str()),
        };
        if !unit.found() {
            // In check mode a unit file an earlier task would have written reads as a new unit.
            // Or a package an earlier task would install may bring the unit.
            let planned = ctx.planned.is_some_and(|p| {
                p.opaque().is_some()
                    || unit_paths(a.scope, name)
                        .iter()
                        .any(|path| matches!(p.get(path), Some(PlannedPath::File { .. })))
            });
            if planned {
                for (k, v) in [
                    ("LoadState", "loaded"),
                    ("ActiveState", "inactive"),
                    ("SubState", "dead"),
                    ("UnitFileState", "disabled"),
                ] {
                    unit.props.insert(k.into(), v.into());
                }
            } else if w.state.is_some() || w.enabled.is_some() {
                // Masking (or unmasking) a unit that does not exist is allowed, as in Ansible.
                return Err(failed(format!(
                    "Could not find the requested service {name}: host {} has no unit {name} \
                     (LoadState=not-found); check the name, or write the unit file first \
                     (e.g. /etc/systemd/system/{name}) and set daemon_reload: true",
                    ctx.host
                )));
            }
        }
        let actions = decide(&unit, &w);
        if masked_conflict(&unit, &w, &actions) {
            return Err(failed(format!(
                "unit {name} is masked on {}: it cannot be started or enabled; unmask it first \
                 (masked: false in this task)",
                ctx.host
            )));
        }
        Ok(Plan {
            name: Some(name.to_string()),
            unit,
            actions,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let mut r = TaskResult::changed(!p.actions.is_empty());
        let Some(name) = &p.name else {
            return r;
        };
        let w = a.want();
        r = r.with("name", name.clone());
        let status: Map<String, Value> = p
            .unit
            .props
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        r = r.with("status", Value::Object(status));
        if let Some(s) = w.state {
            let now = match s {
                State::Stopped => "stopped",
                _ if p.actions.is_empty() => {
                    if p.unit.active() {
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
        if let Some(m) = w.masked {
            r = r.with("masked", m);
        }
        if ctx.diff && r.changed {
            r.diff.push(diff_of(name, &p.unit, &w, &p.actions));
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let Some(name) = &p.name else {
            return Ok(done);
        };
        let script = actions_script(
            a.scope,
            name,
            &p.actions,
            a.no_block.unwrap_or(false),
            a.force.unwrap_or(false),
        );
        let out = ctx.exec(&script).await?;
        if !out.success() {
            let verbs: Vec<&str> = p.actions.iter().map(|a| a.verb()).collect();
            return Err(failed(format!(
                "Unable to {} service {name} on {}: {}",
                verbs.join("+"),
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

    const SHOW: &str = "noise\nHLSHOW\nId=cron.service\nNames=cron.service\nLoadState=loaded\n\
ActiveState=active\nSubState=running\nUnitFileState=enabled\nDescription=Regular background program processing daemon\n\
ExecMainStatus=0\nHLSHOWEND\n";

    fn unit(load: &str, active: &str, file: &str) -> Unit {
        Unit {
            props: parse_show(&format!(
                "LoadState={load}\nActiveState={active}\nUnitFileState={file}\n"
            )),
        }
    }

    #[test]
    fn parses_show_output() {
        let p = parse_show(SHOW);
        assert_eq!(p["Id"], "cron.service");
        assert_eq!(
            p["Description"],
            "Regular background program processing daemon"
        );
        assert!(!p.contains_key("noise"));
        let u = Unit { props: p };
        assert!(u.found() && u.active() && u.enabled() && !u.masked());
        let u = unit("not-found", "inactive", "");
        assert!(!u.found());
        let u = unit("masked", "inactive", "masked");
        assert!(u.found() && u.masked() && !u.active());
        // Values with '=' keep it.
        assert_eq!(parse_show("ExecStart=a=b\n")["ExecStart"], "a=b");
    }

    #[test]
    fn decides_like_ansible() {
        let stopped = unit("loaded", "inactive", "disabled");
        let running = unit("loaded", "active", "enabled");
        let w = |state, enabled, masked| Want {
            state,
            enabled,
            masked,
        };
        assert_eq!(
            decide(&stopped, &w(Some(State::Started), Some(true), None)),
            [Action::Enable, Action::Start]
        );
        assert!(decide(&running, &w(Some(State::Started), Some(true), None)).is_empty());
        assert_eq!(
            decide(&running, &w(Some(State::Stopped), Some(false), None)),
            [Action::Disable, Action::Stop]
        );
        assert!(decide(&stopped, &w(Some(State::Stopped), None, None)).is_empty());
        assert_eq!(
            decide(&running, &w(Some(State::Restarted), None, None)),
            [Action::Restart]
        );
        assert_eq!(
            decide(&stopped, &w(Some(State::Reloaded), None, None)),
            [Action::Start]
        );
        assert_eq!(
            decide(&running, &w(Some(State::Reloaded), None, None)),
            [Action::Reload]
        );
        // Masking comes first; unmask before start.
        assert_eq!(decide(&stopped, &w(None, None, Some(true))), [Action::Mask]);
        let masked = unit("masked", "inactive", "masked");
        assert!(decide(&masked, &w(None, None, Some(true))).is_empty());
        assert_eq!(
            decide(&masked, &w(Some(State::Started), None, Some(false))),
            [Action::Unmask, Action::Start]
        );
        // Starting a unit that stays masked is refused before anything runs.
        let w1 = w(Some(State::Started), None, None);
        assert!(masked_conflict(&masked, &w1, &decide(&masked, &w1)));
        let w2 = w(Some(State::Started), None, Some(false));
        assert!(!masked_conflict(&masked, &w2, &decide(&masked, &w2)));
        let w3 = w(Some(State::Stopped), None, None);
        assert!(!masked_conflict(&masked, &w3, &decide(&masked, &w3)));
        // Static units cannot be disabled: nothing to do rather than a change every run.
        let st = unit("loaded", "inactive", "static");
        assert!(decide(&st, &w(None, Some(false), None)).is_empty());
        assert!(decide(&st, &w(None, Some(true), None)).is_empty());
    }

    #[test]
    fn commands() {
        assert_eq!(
            actions_script(
                Scope::System,
                "a b",
                &[Action::Enable, Action::Start],
                true,
                true
            ),
            "systemctl --force enable 'a b' && systemctl --no-block start 'a b'"
        );
        assert_eq!(
            actions_script(Scope::User, "x", &[Action::Stop], false, false),
            "systemctl --user stop x"
        );
        assert!(
            show_script(Scope::System, "cron").contains("systemctl show cron --no-pager -p Id,")
        );
        assert!(show_script(Scope::Global, "x").contains("--global is-enabled x"));
    }

    #[test]
    fn diff_shows_state_and_enabled() {
        let u = unit("loaded", "inactive", "disabled");
        let w = Want {
            state: Some(State::Started),
            enabled: Some(true),
            masked: None,
        };
        let d = diff_of("x", &u, &w, &decide(&u, &w));
        assert!(d.before.contains("\"state\": \"inactive\""), "{}", d.before);
        assert!(d.after.contains("\"state\": \"active\""), "{}", d.after);
        assert!(d.after.contains("\"enabled\": \"enabled\""), "{}", d.after);
    }

    #[tokio::test]
    async fn bad_arguments_fail_clearly() {
        use crate::modules::testutil::run;
        use serde_json::json;
        let r = run::<Systemd>(true, json!({"name": "x", "state": "running"})).await;
        assert!(r.failed, "{r:?}");
        let r = run::<Systemd>(true, json!({"name": "x", "stat": "started"})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("unknown field"),
            "{r:?}"
        );
        let r = run::<Systemd>(true, json!({"name": "x"})).await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("one of the following"),
            "{r:?}"
        );
        let r = run::<Systemd>(true, json!({"state": "started"})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("name is required"),
            "{r:?}"
        );
    }
}
