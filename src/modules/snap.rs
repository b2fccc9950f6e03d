//! `snap`: snaps present, absent, enabled or disabled, with `classic` confinement and a `channel`.
//! Probe, one round trip: `snap list` (name, tracking channel, notes such as `disabled`). Apply:
//! `snap install [--classic] [--channel=C] NAME`, `snap refresh --channel=C NAME` when a snap tracks
//! another channel, `snap remove`, `snap enable|disable`. A host without snapd fails clearly and is
//! not touched. The lab has no snapd: the probe parsing and the commands are unit-tested, the lab
//! test checks only the refusal.

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::pkgutil;
use crate::transport::shell_quote;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "pkgutil::names")]
    pub name: Vec<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub state: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub classic: Option<bool>,
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
    Enabled,
    Disabled,
}

fn parse_state(s: Option<&str>) -> Result<State, String> {
    Ok(match s.unwrap_or("present") {
        "present" => State::Present,
        "absent" => State::Absent,
        "enabled" => State::Enabled,
        "disabled" => State::Disabled,
        other => {
            return Err(format!(
                "value of state must be one of: absent, disabled, enabled, present; got: {other}"
            ))
        }
    })
}

/// An installed snap as `snap list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    pub version: String,
    pub tracking: String,
    pub disabled: bool,
}

pub const PROBE: &str =
    "if command -v snap >/dev/null 2>&1; then echo HLSNAP; LC_ALL=C snap list 2>/dev/null; else echo HLNOSNAP; fi";

/// `None` when snap is not installed.
pub fn parse_list(out: &str) -> Option<BTreeMap<String, Snap>> {
    let mut lines = out.lines();
    match lines.next().map(str::trim) {
        Some("HLSNAP") => {}
        _ => return None,
    }
    let mut m = BTreeMap::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 4 || f[0] == "Name" {
            continue;
        }
        let notes = f.get(5).copied().unwrap_or("");
        m.insert(
            f[0].to_string(),
            Snap {
                version: f[1].to_string(),
                tracking: f[3].to_string(),
                disabled: notes.split(',').any(|n| n == "disabled"),
            },
        );
    }
    Some(m)
}

/// `stable` and `latest/stable` are the same channel.
pub fn same_channel(a: &str, b: &str) -> bool {
    let norm = |c: &str| {
        if c.contains('/') {
            c.to_string()
        } else {
            format!("latest/{c}")
        }
    };
    norm(a) == norm(b)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// (snap, human description, command)
    pub steps: Vec<(String, String, String)>,
}

pub fn compute(a: &Args, state: State, installed: &BTreeMap<String, Snap>) -> Result<Plan, String> {
    let mut steps = vec![];
    for n in &a.name {
        let q = shell_quote(n);
        let cur = installed.get(n);
        match (state, cur) {
            (State::Present, None) => {
                let mut cmd = String::from("snap install");
                if a.classic.unwrap_or(false) {
                    cmd.push_str(" --classic");
                }
                if let Some(c) = &a.channel {
                    cmd.push_str(&format!(" --channel={}", shell_quote(c)));
                }
                steps.push((n.clone(), "install".into(), format!("{cmd} {q}")));
            }
            (State::Present, Some(s)) => {
                if let Some(c) = &a.channel {
                    if !same_channel(c, &s.tracking) {
                        steps.push((
                            n.clone(),
                            format!("refresh from {} to {c}", s.tracking),
                            format!("snap refresh --channel={} {q}", shell_quote(c)),
                        ));
                    }
                }
            }
            (State::Absent, Some(_)) => {
                steps.push((n.clone(), "remove".into(), format!("snap remove {q}")))
            }
            (State::Absent, None) => {}
            (State::Enabled | State::Disabled, None) => {
                return Err(format!(
                    "snap {n} is not installed; install it first (state: present)"
                ))
            }
            (State::Enabled, Some(s)) if s.disabled => {
                steps.push((n.clone(), "enable".into(), format!("snap enable {q}")))
            }
            (State::Disabled, Some(s)) if !s.disabled => {
                steps.push((n.clone(), "disable".into(), format!("snap disable {q}")))
            }
            _ => {}
        }
    }
    Ok(Plan { steps })
}

fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty()
        || n.starts_with('-')
        || !n
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(format!("'{n}' is not a valid snap name"));
    }
    Ok(())
}

pub struct SnapModule;

impl Module for SnapModule {
    const NAME: &'static str = "snap";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let state = parse_state(a.state.as_deref()).map_err(ModuleError::Failed)?;
        if a.name.is_empty() {
            return Err(ModuleError::Failed("name is required".into()));
        }
        for n in &a.name {
            check_name(n).map_err(ModuleError::Failed)?;
        }
        let out = ctx.exec(PROBE).await?;
        // Check mode after a planned package install (snapd itself): nothing is installed yet.
        let planned_snapd = ctx.check && ctx.planned.is_some_and(|p| p.opaque().is_some());
        let installed =
            parse_list(&out.stdout_str()).or_else(|| planned_snapd.then(Default::default));
        let installed = installed.ok_or_else(|| {
            ModuleError::Failed(format!(
                "snap is not installed on {}: install snapd first",
                ctx.host
            ))
        })?;
        compute(a, state, &installed).map_err(|e| ModuleError::Failed(format!("{}: {e}", ctx.host)))
    }

    fn describe(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) -> TaskResult {
        let words: Vec<String> = p
            .steps
            .iter()
            .map(|(n, what, _)| format!("{}{what} {n}", if ctx.check { "would " } else { "" }))
            .collect();
        let mut r = TaskResult::changed(!p.steps.is_empty());
        if !words.is_empty() {
            r = r.msg(words.join(", "));
        }
        r.with(
            "snaps",
            p.steps
                .iter()
                .map(|(n, _, _)| n.clone())
                .collect::<Vec<_>>(),
        )
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        _a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let mut stdout = String::new();
        for (n, what, cmd) in &p.steps {
            let out = ctx.exec(cmd.clone()).await?;
            stdout.push_str(&out.stdout_str());
            if !out.success() {
                return Ok(TaskResult::failed(format!(
                    "{}: snap could not {what} {n} (rc {}): {}",
                    ctx.host,
                    out.rc(),
                    out.stderr_str().trim()
                ))
                .with("rc", out.rc())
                .with("stdout", stdout));
            }
        }
        Ok(done.with("stdout", stdout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIST: &str = "HLSNAP\nName    Version   Rev    Tracking       Publisher   Notes\n\
core20  20230801  2015   latest/stable  canonical✓  base\n\
hello   2.10      42     latest/edge    canonical✓  disabled\n\
code    1.85      150    latest/stable  vscode✓     classic\n";

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_snap_list() {
        let m = parse_list(LIST).unwrap();
        assert_eq!(m.len(), 3);
        assert!(m["hello"].disabled);
        assert_eq!(m["hello"].tracking, "latest/edge");
        assert!(!m["code"].disabled);
        assert!(parse_list("HLNOSNAP\n").is_none());
        assert!(parse_list("HLSNAP\n").unwrap().is_empty());
    }

    #[test]
    fn commands_issued() {
        let m = parse_list(LIST).unwrap();
        let p = compute(
            &args(json!({"name": ["jq", "code"], "classic": true, "channel": "stable"})),
            State::Present,
            &m,
        )
        .unwrap();
        assert_eq!(p.steps.len(), 1, "code already tracks latest/stable");
        assert_eq!(p.steps[0].2, "snap install --classic --channel=stable jq");
        let p = compute(
            &args(json!({"name": "hello", "channel": "stable"})),
            State::Present,
            &m,
        )
        .unwrap();
        assert_eq!(p.steps[0].2, "snap refresh --channel=stable hello");
        let p = compute(&args(json!({"name": "hello,nothere"})), State::Absent, &m).unwrap();
        assert_eq!(
            p.steps.iter().map(|s| s.2.as_str()).collect::<Vec<_>>(),
            ["snap remove hello"]
        );
        let p = compute(&args(json!({"name": "hello"})), State::Enabled, &m).unwrap();
        assert_eq!(p.steps[0].2, "snap enable hello");
        assert!(
            compute(&args(json!({"name": "hello"})), State::Disabled, &m)
                .unwrap()
                .steps
                .is_empty()
        );
        assert!(compute(&args(json!({"name": "jq"})), State::Enabled, &m)
            .unwrap_err()
            .contains("not installed"));
        assert!(parse_state(Some("latest")).is_err());
        assert!(check_name("Bad Name").is_err());
    }
}
