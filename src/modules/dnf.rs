//! `dnf` (`ansible.builtin.dnf`): RPM packages through `dnf`, shaped like `apt`.
//!
//! Probe, one round trip: `rpm -q --qf` per named package (installed name, epoch:version-release,
//! arch), and what the repositories offer (`dnf repoquery`, cache only in check mode, so check
//! mode downloads nothing) with `--upgrades` for `state: latest`. The plan is the packages to
//! install, upgrade or remove; apply runs `dnf -y install|upgrade|remove ...`, after `dnf makecache`
//! when `update_cache` (never in check mode).
//!
//! Tested only by unit tests (probe parsing, plans and the exact commands issued): the lab has no
//! dnf host.

use super::core::{boolish, numish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::pkgutil;
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "pkg", deserialize_with = "pkgutil::names")]
    pub name: Vec<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub state: Option<String>,
    #[serde(default, alias = "expire-cache", with = "boolish::option")]
    pub update_cache: Option<bool>,
    #[serde(default, deserialize_with = "pkgutil::names")]
    pub enablerepo: Vec<String>,
    #[serde(default, deserialize_with = "pkgutil::names")]
    pub disablerepo: Vec<String>,
    #[serde(default, with = "boolish::option")]
    pub disable_gpg_check: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub autoremove: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub allowerasing: Option<bool>,
    #[serde(default, deserialize_with = "numish::option")]
    pub lock_timeout: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Latest,
    Absent,
}

fn parse_state(s: Option<&str>) -> Result<State, String> {
    Ok(match s.unwrap_or("present") {
        "present" | "installed" => State::Present,
        "latest" => State::Latest,
        "absent" | "removed" => State::Absent,
        other => {
            return Err(format!(
                "value of state must be one of: absent, installed, latest, present, removed; got: {other}"
            ))
        }
    })
}

fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty()
        || n.starts_with('-')
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._:*@/".contains(&b))
    {
        return Err(format!("'{n}' is not a valid package name"));
    }
    Ok(())
}

/// A package as rpm or the repositories know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rpm {
    pub name: String,
    /// `epoch:version-release` (epoch 0 shown as `0:`).
    pub evr: String,
    pub arch: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub no_dnf: bool,
    /// Per requested name: what is installed (empty: not installed).
    pub installed: BTreeMap<String, Vec<Rpm>>,
    /// Per package name: the newest version the repositories offer.
    pub available: BTreeMap<String, Rpm>,
    /// Per package name: the upgrade the repositories offer.
    pub upgrades: BTreeMap<String, Rpm>,
}

const QF: &str = "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n";
const REPO_QF: &str = "%{name}\\t%{epoch}:%{version}-%{release}\\t%{arch}\\n";

/// The `--enablerepo/--disablerepo/--nogpgcheck` options.
pub fn repo_opts(a: &Args) -> String {
    let mut s = String::new();
    for r in &a.disablerepo {
        s.push_str(&format!(" --disablerepo={}", shell_quote(r)));
    }
    for r in &a.enablerepo {
        s.push_str(&format!(" --enablerepo={}", shell_quote(r)));
    }
    if a.disable_gpg_check.unwrap_or(false) {
        s.push_str(" --nogpgcheck");
    }
    s
}

pub fn probe_script(a: &Args, state: State, check: bool) -> String {
    let names: Vec<String> = a.name.iter().map(|n| shell_quote(n)).collect();
    let mut s = String::from(
        "export LC_ALL=C; if command -v dnf >/dev/null 2>&1; then d=dnf; \
         elif command -v yum >/dev/null 2>&1; then d=yum; else echo HLNODNF; echo HLEND; exit 0; fi; ",
    );
    s.push_str(&format!(
        "for n in {}; do echo \"HLQ $n\"; rpm -q --qf '{QF}' \"$n\" 2>/dev/null | grep -v '^package .* is not installed$'; done; ",
        names.join(" ")
    ));
    if state != State::Absent {
        let cache = if check { " -C" } else { "" };
        let opts = repo_opts(a);
        s.push_str(&format!(
            "echo HLAVAIL; $d -q{cache}{opts} repoquery --latest-limit 1 --qf '{REPO_QF}' {} 2>/dev/null; ",
            names.join(" ")
        ));
        if state == State::Latest {
            s.push_str(&format!(
                "echo HLUPG; $d -q{cache}{opts} repoquery --upgrades --latest-limit 1 --qf '{REPO_QF}' {} 2>/dev/null; ",
                names.join(" ")
            ));
        }
    }
    s.push_str("echo HLEND");
    s
}

fn parse_rpm(line: &str) -> Option<Rpm> {
    let f: Vec<&str> = line.split('\t').collect();
    (f.len() == 3 && !f[0].is_empty()).then(|| Rpm {
        name: f[0].to_string(),
        evr: f[1].to_string(),
        arch: f[2].trim().to_string(),
    })
}

pub fn parse_probe(out: &str) -> Result<Probe, String> {
    if !out.contains("HLEND") {
        return Err(format!("the package probe did not finish: {}", out.trim()));
    }
    let mut p = Probe::default();
    let mut cur: Option<String> = None;
    let mut sec = 0;
    for line in out.lines() {
        if line == "HLEND" {
            break;
        }
        if line == "HLNODNF" {
            p.no_dnf = true;
        } else if let Some(n) = line.strip_prefix("HLQ ") {
            p.installed.entry(n.to_string()).or_default();
            cur = Some(n.to_string());
            sec = 0;
        } else if line == "HLAVAIL" {
            sec = 1;
        } else if line == "HLUPG" {
            sec = 2;
        } else if let Some(r) = parse_rpm(line) {
            match sec {
                0 => {
                    if let Some(c) = &cur {
                        p.installed.entry(c.clone()).or_default().push(r);
                    }
                }
                1 => {
                    p.available.insert(r.name.clone(), r);
                }
                _ => {
                    p.upgrades.insert(r.name.clone(), r);
                }
            }
        }
    }
    Ok(p)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    /// install, upgrade or remove.
    pub action: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub notes: Vec<String>,
    pub fail: Option<String>,
    pub cache_updated: bool,
    pub would_update: bool,
    pub autoremove_only: bool,
}

pub fn compute(a: &Args, state: State, p: &Probe, check: bool) -> Plan {
    let mut plan = Plan::default();
    if p.no_dnf {
        plan.fail = Some("neither dnf nor yum is installed on this host".into());
        return plan;
    }
    for n in &a.name {
        let inst = p.installed.get(n).and_then(|v| v.first());
        // The repository entry for a requested name (names may carry a version or arch).
        let avail = p
            .available
            .get(n)
            .or_else(|| inst.and_then(|i| p.available.get(&i.name)))
            .or_else(|| {
                p.available
                    .values()
                    .find(|r| n.starts_with(&format!("{}-", r.name)))
            });
        match (state, inst) {
            (State::Absent, Some(i)) => plan.changes.push(Change {
                name: n.clone(),
                action: "remove",
                from: Some(i.evr.clone()),
                to: None,
            }),
            (State::Absent, None) => {}
            (_, None) => {
                if avail.is_none() && check {
                    plan.notes.push(format!(
                        "{n}: not in the cached repository metadata; the real run will check"
                    ));
                }
                plan.changes.push(Change {
                    name: n.clone(),
                    action: "install",
                    from: None,
                    to: avail.map(|r| r.evr.clone()),
                });
            }
            (State::Latest, Some(i)) => {
                if let Some(u) = p.upgrades.get(&i.name) {
                    plan.changes.push(Change {
                        name: n.clone(),
                        action: "upgrade",
                        from: Some(i.evr.clone()),
                        to: Some(u.evr.clone()),
                    });
                }
            }
            (State::Present, Some(_)) => {}
        }
    }
    plan
}

/// The commands that carry the plan out.
pub fn commands(a: &Args, state: State, plan: &Plan) -> Vec<String> {
    let mut base =
        String::from("export LC_ALL=C; d=dnf; command -v dnf >/dev/null 2>&1 || d=yum; $d -y");
    base.push_str(&repo_opts(a));
    if a.allowerasing.unwrap_or(false) {
        base.push_str(" --allowerasing");
    }
    let mut cmds = vec![];
    let of = |action: &str| -> Vec<String> {
        plan.changes
            .iter()
            .filter(|c| c.action == action)
            .map(|c| shell_quote(&c.name))
            .collect()
    };
    let install = of("install");
    if !install.is_empty() {
        cmds.push(format!("{base} install {}", install.join(" ")));
    }
    let upgrade = of("upgrade");
    if !upgrade.is_empty() {
        cmds.push(format!("{base} upgrade {}", upgrade.join(" ")));
    }
    let remove = of("remove");
    if !remove.is_empty() {
        let keep = if a.autoremove == Some(false) {
            " --setopt=clean_requirements_on_remove=0"
        } else {
            ""
        };
        cmds.push(format!("{base}{keep} remove {}", remove.join(" ")));
    }
    if plan.autoremove_only && state == State::Absent {
        cmds.push(format!("{base} autoremove"));
    }
    cmds
}

pub struct Dnf;

fn lines(plan: &Plan) -> Vec<(String, String, String)> {
    plan.changes
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.from.clone().unwrap_or_else(|| "not installed".into()),
                match (c.action, &c.to) {
                    ("remove", _) => "removed".into(),
                    (_, Some(v)) => v.clone(),
                    (_, None) => "(version unknown until the metadata is refreshed)".into(),
                },
            )
        })
        .collect()
}

impl Module for Dnf {
    const NAME: &'static str = "dnf";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let state = parse_state(a.state.as_deref()).map_err(ModuleError::Failed)?;
        for n in &a.name {
            check_name(n).map_err(ModuleError::Failed)?;
        }
        if a.name.is_empty() && !a.update_cache.unwrap_or(false) && !a.autoremove.unwrap_or(false) {
            return Err(ModuleError::Failed(
                "one of name, update_cache or autoremove is required".into(),
            ));
        }
        let update = a.update_cache.unwrap_or(false);
        let mut cache_updated = false;
        if update && !ctx.check {
            let out = ctx
                .exec(format!(
                    "export LC_ALL=C; d=dnf; command -v dnf >/dev/null 2>&1 || d=yum; $d -q{} makecache",
                    repo_opts(a)
                ))
                .await?;
            if !out.success() {
                return Err(ModuleError::Failed(format!(
                    "{}: dnf makecache failed (rc {}): {}",
                    ctx.host,
                    out.rc(),
                    out.stderr_str().trim()
                )));
            }
            cache_updated = true;
        }
        let mut plan = if a.name.is_empty() {
            Plan {
                autoremove_only: a.autoremove.unwrap_or(false),
                ..Default::default()
            }
        } else {
            let out = ctx.exec(probe_script(a, state, ctx.check)).await?;
            let p = parse_probe(&out.stdout_str())
                .map_err(|e| ModuleError::Failed(format!("{}: {e}", ctx.host)))?;
            compute(a, state, &p, ctx.check)
        };
        plan.cache_updated = cache_updated;
        plan.would_update = update && ctx.check;
        Ok(plan)
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, plan: &Plan) -> TaskResult {
        if let Some(f) = &plan.fail {
            return TaskResult::failed(format!("{}: {f}", ctx.host));
        }
        let l = lines(plan);
        let changed = !plan.changes.is_empty()
            || plan.autoremove_only
            || (a.name.is_empty() && (plan.cache_updated || plan.would_update));
        let mut words: Vec<String> = plan
            .changes
            .iter()
            .map(|c| {
                let verb = match (c.action, ctx.check) {
                    ("install", true) => "would install",
                    ("upgrade", true) => "would upgrade",
                    ("remove", true) => "would remove",
                    ("install", false) => "installed",
                    ("upgrade", false) => "upgraded",
                    _ => "removed",
                };
                format!("{verb} {}", c.name)
            })
            .collect();
        if plan.would_update {
            words.insert(0, "would refresh the repository metadata".into());
        }
        let mut msg = if words.is_empty() {
            "nothing to do".to_string()
        } else {
            words.join(", ")
        };
        if !plan.notes.is_empty() {
            msg = format!("{msg} ({})", plan.notes.join("; "));
        }
        let mut r = TaskResult::changed(changed)
            .msg(msg)
            .with("cache_updated", plan.cache_updated)
            .with(
                "results",
                Value::Array(
                    l.iter()
                        .map(|(n, b, a)| json!({"name": n, "before": b, "after": a}))
                        .collect(),
                ),
            );
        if ctx.diff && !l.is_empty() {
            r.diff.push(pkgutil::package_diff(
                &format!("packages ({})", ctx.host),
                &l,
            ));
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        plan: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let state = parse_state(a.state.as_deref()).map_err(ModuleError::Failed)?;
        let mut stdout = String::new();
        let mut stderr = String::new();
        for cmd in commands(a, state, &plan) {
            let out = ctx.exec(cmd).await?;
            stdout.push_str(&out.stdout_str());
            stderr.push_str(&out.stderr_str());
            if !out.success() {
                let e = out.stderr_str();
                let detail: Vec<&str> = e
                    .lines()
                    .filter(|l| l.starts_with("Error") || l.starts_with("No match"))
                    .collect();
                return Ok(TaskResult::failed(format!(
                    "dnf failed on {} (rc {}): {}",
                    ctx.host,
                    out.rc(),
                    if detail.is_empty() {
                        e.trim().to_string()
                    } else {
                        detail.join("\n")
                    }
                ))
                .with("rc", out.rc())
                .with("stdout", stdout)
                .with("stderr", stderr));
            }
        }
        Ok(done.with("stdout", stdout).with("stderr", stderr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    const OUT: &str = "HLQ tree\ntree\t0:1.8.0-10.el9\tx86_64\nHLQ sl\nHLQ nosuch\n\
HLAVAIL\ntree\t0:1.8.0-11.el9\tx86_64\nsl\t0:5.02-1.el9\tx86_64\n\
HLUPG\ntree\t0:1.8.0-11.el9\tx86_64\nHLEND\n";

    #[test]
    fn probe_parsing() {
        let p = parse_probe(OUT).unwrap();
        assert_eq!(p.installed["tree"][0].evr, "0:1.8.0-10.el9");
        assert!(p.installed["sl"].is_empty());
        assert_eq!(p.available["sl"].evr, "0:5.02-1.el9");
        assert_eq!(p.upgrades["tree"].evr, "0:1.8.0-11.el9");
        assert!(parse_probe("HLNODNF\nHLEND\n").unwrap().no_dnf);
        assert!(parse_probe("HLQ x\n").is_err());
    }

    #[test]
    fn plans_and_exact_commands() {
        let p = parse_probe(OUT).unwrap();
        let a =
            args(json!({"name": ["tree", "sl"], "enablerepo": "epel", "disable_gpg_check": true}));
        let plan = compute(&a, State::Present, &p, false);
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].to.as_deref(), Some("0:5.02-1.el9"));
        assert_eq!(
            commands(&a, State::Present, &plan),
            ["export LC_ALL=C; d=dnf; command -v dnf >/dev/null 2>&1 || d=yum; $d -y --enablerepo=epel --nogpgcheck install sl"]
        );
        let plan = compute(&a, State::Latest, &p, false);
        let c = commands(&a, State::Latest, &plan);
        assert!(
            c[0].ends_with(" install sl") && c[1].ends_with(" upgrade tree"),
            "{c:?}"
        );
        let a = args(json!({"name": "tree,sl", "state": "absent", "autoremove": false}));
        let plan = compute(&a, State::Absent, &p, false);
        assert_eq!(
            commands(&a, State::Absent, &plan),
            ["export LC_ALL=C; d=dnf; command -v dnf >/dev/null 2>&1 || d=yum; $d -y --setopt=clean_requirements_on_remove=0 remove tree"]
        );
        // Check mode without metadata for a name: planned, with a note, not failed.
        let a = args(json!({"name": "nosuch"}));
        let plan = compute(&a, State::Present, &p, true);
        assert!(plan.fail.is_none() && plan.changes.len() == 1 && !plan.notes.is_empty());
    }

    #[test]
    fn probe_script_is_cache_only_in_check_mode() {
        let a = args(json!({"name": "tree", "disablerepo": ["a", "b"]}));
        let s = probe_script(&a, State::Latest, true);
        assert!(
            s.contains("$d -q -C --disablerepo=a --disablerepo=b repoquery --latest-limit 1"),
            "{s}"
        );
        assert!(s.contains("--upgrades"));
        assert!(
            s.contains(
                "rpm -q --qf '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n' \"$n\""
            ),
            "{s}"
        );
        assert!(!probe_script(&a, State::Present, false).contains(" -C "));
        assert!(parse_state(Some("fixed")).is_err());
        assert!(check_name("a;b").is_err());
        assert!(
            serde_json::from_value::<Args>(json!({"name": "x", "cache_valid_time": 1})).is_err()
        );
    }
}
