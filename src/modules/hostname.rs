//! `hostname`: the host's name, stored (`/etc/hostname`) and live (the kernel's, `uname -n`). One
//! probe reads both and what the host offers; `/etc/hostname` is written atomically with a diff,
//! then the live name is set with `hostnamectl set-hostname` on systemd hosts (`hostname NAME`
//! where hostnamectl cannot, or with `use: debian|alpine|generic`). `/etc/hosts` is not touched,
//! as in Ansible.

use super::core::{Module, ModuleError, TaskCtx, TaskResult};
use super::remote::state_diff;
use super::sysutil::{overlay, parse_text, text_probe, FileEdit};
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
}

pub const HOSTNAME_FILE: &str = "/etc/hostname";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Auto,
    Systemd,
    File,
}

fn strategy(a: &Args) -> Result<Strategy, String> {
    match a.use_.as_deref().unwrap_or("auto") {
        "auto" => Ok(Strategy::Auto),
        "systemd" => Ok(Strategy::Systemd),
        "debian" | "alpine" | "generic" | "openrc" => Ok(Strategy::File),
        other => Err(format!(
            "use: {other} is not supported here; use auto, systemd, debian, alpine or generic"
        )),
    }
}

/// A name the kernel and DNS accept: labels of letters, digits and `-`, dot-separated.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub struct Plan {
    file: FileEdit,
    live: String,
    hostnamectl: bool,
}

pub struct Hostname;

impl Module for Hostname {
    const NAME: &'static str = "hostname";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let name = a.name.trim();
        if !valid_name(name) {
            return Err(ModuleError::Failed(format!(
                "'{}' is not a valid host name (letters, digits and '-', labels separated by '.')",
                a.name
            )));
        }
        let strat = strategy(a).map_err(ModuleError::Failed)?;
        let script = format!(
            "echo \"HLLIVE $(uname -n)\"; \
             if [ -d /run/systemd/system ] && command -v hostnamectl >/dev/null 2>&1; then echo HLCTL; fi; {}",
            text_probe(0, HOSTNAME_FILE)
        );
        let out = ctx.exec(script).await?.stdout_str();
        let live = out
            .lines()
            .find_map(|l| l.strip_prefix("HLLIVE "))
            .unwrap_or("")
            .trim()
            .to_string();
        let has_ctl = out.lines().any(|l| l == "HLCTL");
        if strat == Strategy::Systemd && !has_ctl {
            return Err(ModuleError::Failed(format!(
                "use: systemd, but {} has no running systemd with hostnamectl; use: debian (or auto)",
                ctx.host
            )));
        }
        let mut f = parse_text(&out, 0, HOSTNAME_FILE)
            .map_err(|e| ModuleError::Failed(format!("{e} (on {})", ctx.host)))?;
        overlay(ctx, &mut f);
        let after = if f.text.trim() == name {
            f.text.clone()
        } else {
            format!("{name}\n")
        };
        Ok(Plan {
            file: FileEdit {
                file: f,
                after: Some(after),
            },
            live,
            hostnamectl: has_ctl && strat != Strategy::File,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let name = a.name.trim();
        let live_changes = p.live != name;
        let short = name.split('.').next().unwrap_or(name);
        let mut r = TaskResult::changed(p.file.changed() || live_changes)
            .with("name", name)
            .with(
                "ansible_facts",
                json!({"ansible_hostname": short, "ansible_nodename": name}),
            );
        if ctx.diff {
            if p.file.changed() {
                r.diff.push(p.file.diff());
            }
            if live_changes {
                r.diff.push(state_diff(
                    "hostname",
                    &[("hostname", p.live.clone())],
                    &[("hostname", name.to_string())],
                ));
            }
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        p.file.simulate(ctx);
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let name = a.name.trim();
        p.file.apply(ctx, false).await?;
        let n = shell_quote(name);
        let cmd = if p.hostnamectl {
            // hostnamectl needs hostnamed (D-Bus); the kernel's name is what matters when it
            // cannot be reached.
            format!("hostnamectl set-hostname {n} 2>/dev/null || hostname {n}")
        } else {
            format!("hostname {n}")
        };
        let out = ctx.exec(cmd).await?;
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "could not set the host name of {} to {name} (/etc/hostname is written): {}",
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
    fn names_and_strategies() {
        assert!(valid_name("node3"));
        assert!(valid_name("web-1.example.org"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a_b"));
        assert!(!valid_name("a..b"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        let a = |u: &str| Args {
            name: "x".into(),
            use_: Some(u.into()),
        };
        assert_eq!(strategy(&a("debian")), Ok(Strategy::File));
        assert_eq!(strategy(&a("systemd")), Ok(Strategy::Systemd));
        assert!(strategy(&a("solaris")).is_err());
    }

    #[tokio::test]
    async fn bad_names_fail_clearly() {
        use crate::modules::testutil::run;
        let r = run::<Hostname>(true, json!({"name": "bad_name"})).await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("not a valid host name"),
            "{r:?}"
        );
        let r = run::<Hostname>(true, json!({"name": "x", "strategy": "debian"})).await;
        assert!(r.failed, "{r:?}");
    }
}
