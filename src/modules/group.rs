//! `group`: a local group, present or absent, with its gid. Probe: `getent group NAME` (one round
//! trip); apply with groupadd/groupmod/groupdel.

use super::core::{boolish, stringish, FileDiff, Module, ModuleError, TaskCtx, TaskResult};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
    #[serde(default, deserialize_with = "stringish::option")]
    pub gid: Option<String>,
    #[serde(default)]
    pub state: super::user::State,
    #[serde(default, with = "boolish")]
    pub system: bool,
    #[serde(default, with = "boolish")]
    pub non_unique: bool,
}

/// A group as `getent group` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Parses one `getent group` line (`name:x:gid:member,member`).
pub fn parse_group(line: &str) -> Option<GroupEntry> {
    let f: Vec<&str> = line.trim_end().split(':').collect();
    if f.len() < 4 {
        return None;
    }
    Some(GroupEntry {
        name: f[0].to_string(),
        gid: f[2].parse().ok()?,
        members: f[3]
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Create,
    SetGid(String),
    Remove,
}

#[derive(Debug)]
pub struct Plan {
    pub cur: Option<GroupEntry>,
    pub action: Action,
}

pub fn make_plan(a: &Args, cur: Option<GroupEntry>) -> Result<Plan, String> {
    if let Some(g) = &a.gid {
        if g.parse::<u32>().is_err() {
            return Err(format!("gid '{g}' is not a number"));
        }
    }
    let action = match (a.state, &cur) {
        (super::user::State::Absent, Some(_)) => Action::Remove,
        (super::user::State::Absent, None) => Action::None,
        (_, None) => Action::Create,
        (_, Some(c)) => match &a.gid {
            Some(g) if *g != c.gid.to_string() => Action::SetGid(g.clone()),
            _ => Action::None,
        },
    };
    Ok(Plan { cur, action })
}

pub struct Group;

fn probe_cmd(name: &str) -> String {
    format!(
        "PATH=$PATH:/usr/sbin:/sbin; command -v groupadd >/dev/null 2>&1 || echo HLNOGROUPADD; \
         if e=$(getent group -- {}); then printf 'HLGRP %s\\n' \"$e\"; fi",
        shell_quote(name)
    )
}

fn parse_probe(out: &str) -> Result<Option<GroupEntry>, String> {
    let mut cur = None;
    for l in out.lines() {
        if l == "HLNOGROUPADD" {
            return Err("groupadd is not installed (install the passwd package)".into());
        }
        if let Some(r) = l.strip_prefix("HLGRP ") {
            cur = Some(parse_group(r).ok_or_else(|| format!("unexpected group entry: {r}"))?);
        }
    }
    Ok(cur)
}

impl Module for Group {
    const NAME: &'static str = "group";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if a.name.is_empty() || a.name.contains([':', '\n', ' ', ',', '/']) {
            return Err(ModuleError::Failed(format!(
                "'{}' is not a valid group name",
                a.name
            )));
        }
        let out = ctx.exec(probe_cmd(&a.name)).await?;
        let cur = parse_probe(&out.stdout_str())
            .map_err(|e| ModuleError::Failed(format!("{}: {e}", ctx.host)))?;
        make_plan(a, cur)
            .map_err(|e| ModuleError::Failed(format!("{}: group {}: {e}", ctx.host, a.name)))
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let present = a.state == super::user::State::Present;
        let mut r = TaskResult::changed(p.action != Action::None)
            .with("name", a.name.clone())
            .with("state", if present { "present" } else { "absent" });
        if present {
            r = r.with("system", a.system);
            let gid = match (&p.action, &p.cur) {
                (Action::SetGid(g), _) => g.parse::<u32>().ok(),
                (_, Some(c)) => Some(c.gid),
                _ => a.gid.as_deref().and_then(|g| g.parse().ok()),
            };
            if let Some(g) = gid {
                r = r.with("gid", g);
            }
        }
        if ctx.diff && p.action != Action::None {
            let render = |state: &str, gid: Option<String>| {
                let mut m = serde_json::Map::new();
                m.insert("name".into(), a.name.clone().into());
                m.insert("state".into(), state.into());
                if let Some(g) = gid {
                    m.insert("gid".into(), g.into());
                }
                serde_json::to_string_pretty(&m).unwrap_or_default() + "\n"
            };
            let before = match &p.cur {
                Some(c) => render("present", Some(c.gid.to_string())),
                None => render("absent", None),
            };
            let after = match &p.action {
                Action::Remove => render("absent", None),
                Action::SetGid(g) => render("present", Some(g.clone())),
                _ => render("present", a.gid.clone()),
            };
            r.diff.push(FileDiff {
                before_header: format!("group {}", a.name),
                after_header: format!("group {}", a.name),
                before,
                after,
                skipped: None,
            });
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        mut done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let n = shell_quote(&a.name);
        let o = if a.non_unique { "-o " } else { "" };
        let cmd = match &p.action {
            Action::None => return Ok(done),
            Action::Remove => format!("groupdel {n}"),
            Action::SetGid(g) => format!("groupmod {o}-g {} {n}", shell_quote(g)),
            Action::Create => format!(
                "groupadd {}{}{n}",
                if a.system { "-r " } else { "" },
                a.gid
                    .as_ref()
                    .map(|g| format!("{o}-g {} ", shell_quote(g)))
                    .unwrap_or_default()
            ),
        };
        let out = ctx
            .exec(format!(
                "PATH=$PATH:/usr/sbin:/sbin; {cmd} && {{ getent group {n} || true; }}"
            ))
            .await?;
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "{}: {cmd} failed: {}",
                ctx.host,
                out.stderr_str().trim()
            )));
        }
        if let Some(g) = out.stdout_str().lines().find_map(parse_group) {
            done = done.with("gid", g.gid);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_getent_group() {
        let g = parse_group("adm:x:4:syslog,bob\n").unwrap();
        assert_eq!((g.name.as_str(), g.gid), ("adm", 4));
        assert_eq!(g.members, ["syslog", "bob"]);
        assert!(parse_group("adm:x:4:").unwrap().members.is_empty());
        assert!(parse_group("adm:x").is_none());
        assert!(parse_probe("HLNOGROUPADD\n").is_err());
        assert_eq!(parse_probe("").unwrap(), None);
    }

    #[test]
    fn plans() {
        let cur = parse_group("g:x:1500:");
        let a = args(json!({"name": "g", "gid": 1500}));
        assert_eq!(make_plan(&a, cur.clone()).unwrap().action, Action::None);
        let a = args(json!({"name": "g", "gid": "1501"}));
        assert_eq!(
            make_plan(&a, cur.clone()).unwrap().action,
            Action::SetGid("1501".into())
        );
        assert_eq!(make_plan(&a, None).unwrap().action, Action::Create);
        let a = args(json!({"name": "g", "state": "absent"}));
        assert_eq!(make_plan(&a, cur).unwrap().action, Action::Remove);
        assert_eq!(make_plan(&a, None).unwrap().action, Action::None);
        let a = args(json!({"name": "g", "gid": "x1"}));
        assert!(make_plan(&a, None).is_err());
        assert!(serde_json::from_value::<Args>(json!({"name": "g", "members": []})).is_err());
    }
}
