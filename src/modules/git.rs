//! `git`: a checkout of a repository at a version (branch, tag, commit or HEAD) on the host.
//! Probe, one round trip: whether git exists, dest's HEAD, remote URL and local modifications
//! (`git -C dest rev-parse HEAD`, `config remote.origin.url`, `status --porcelain`), and the
//! version's commit in the repository (`git ls-remote REPO VERSION`). Changed when HEAD moves
//! (or the remote URL is updated, or local modifications are discarded with `force`). Results
//! `before` and `after` as Ansible's.

use super::core::{boolish, numish, Module, ModuleError, TaskCtx, TaskResult};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "name")]
    pub repo: String,
    pub dest: String,
    #[serde(default = "head")]
    pub version: String,
    #[serde(default, with = "boolish")]
    pub force: bool,
    #[serde(default, deserialize_with = "numish::option")]
    pub depth: Option<f64>,
    #[serde(default = "yes", with = "boolish")]
    pub update: bool,
    #[serde(default = "yes", with = "boolish")]
    pub clone: bool,
    #[serde(default, with = "boolish")]
    pub bare: bool,
    #[serde(default, with = "boolish")]
    pub accept_hostkey: bool,
    #[serde(default, with = "boolish")]
    pub accept_newhostkey: bool,
    #[serde(default = "origin")]
    pub remote: String,
}

fn head() -> String {
    "HEAD".into()
}
fn yes() -> bool {
    true
}
fn origin() -> String {
    "origin".into()
}

pub fn is_sha(v: &str) -> bool {
    v.len() == 40 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What kind of version the remote says `version` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Head(String),
    Branch(String),
    Tag(String),
    Commit(String),
}

impl Resolved {
    pub fn sha(&self) -> &str {
        match self {
            Resolved::Head(s) | Resolved::Branch(s) | Resolved::Tag(s) | Resolved::Commit(s) => s,
        }
    }
}

/// Finds `version` in `git ls-remote` output (pure: unit-tested).
pub fn resolve(ls_remote: &str, version: &str) -> Option<Resolved> {
    if is_sha(version) {
        return Some(Resolved::Commit(version.to_ascii_lowercase()));
    }
    let refs: Vec<(&str, &str)> = ls_remote
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(s, r)| (s.trim(), r.trim()))
        .collect();
    let find = |name: &str| {
        refs.iter()
            .find(|(_, r)| *r == name)
            .map(|(s, _)| s.to_string())
    };
    if version == "HEAD" {
        return find("HEAD").map(Resolved::Head);
    }
    let short = version
        .strip_prefix("refs/heads/")
        .or_else(|| version.strip_prefix("refs/tags/"))
        .unwrap_or(version);
    if !version.starts_with("refs/tags/") {
        if let Some(s) = find(&format!("refs/heads/{short}")) {
            return Some(Resolved::Branch(s));
        }
    }
    if let Some(s) =
        find(&format!("refs/tags/{short}^{{}}")).or_else(|| find(&format!("refs/tags/{short}")))
    {
        return Some(Resolved::Tag(s));
    }
    None
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Probe {
    pub no_git: bool,
    pub is_repo: bool,
    pub nonempty: bool,
    pub head: Option<String>,
    pub url: Option<String>,
    pub dirty: bool,
    pub ls_remote: String,
    pub ls_ok: bool,
    pub ls_err: String,
}

fn git_env(a: &Args) -> String {
    let mut ssh = String::from("ssh -o BatchMode=yes");
    if a.accept_hostkey {
        ssh.push_str(" -o StrictHostKeyChecking=no");
    } else if a.accept_newhostkey {
        ssh.push_str(" -o StrictHostKeyChecking=accept-new");
    }
    format!(
        "export GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND={} LC_ALL=C; ",
        shell_quote(&ssh)
    )
}

pub fn probe_script(a: &Args) -> String {
    let d = shell_quote(&a.dest);
    let r = shell_quote(&a.repo);
    let v = shell_quote(&a.version);
    let rem = shell_quote(&a.remote);
    let ls = if is_sha(&a.version) {
        "echo HLLSRC 0".to_string()
    } else {
        format!(
            "o=$(git ls-remote {r} {v} 2>&1); c=$?; echo HLLS; printf '%s\\n' \"$o\"; \
             echo HLLSEND; echo \"HLLSRC $c\""
        )
    };
    let (probe_repo, has) = if a.bare {
        (
            format!("[ -f {d}/HEAD ] && [ -d {d}/objects ]"),
            format!("git --git-dir={d}"),
        )
    } else {
        (format!("[ -e {d}/.git ]"), format!("git -C {d}"))
    };
    format!(
        "{env}if ! command -v git >/dev/null 2>&1; then echo HLNOGIT; exit 0; fi; \
         if {probe_repo}; then echo HLREPO; \
         printf 'HLHEAD %s\\n' \"$({has} rev-parse --verify -q HEAD 2>/dev/null)\"; \
         printf 'HLURL %s\\n' \"$({has} config --get remote.{rem}.url 2>/dev/null)\"; \
         {dirty}\
         elif [ -e {d} ] && [ -n \"$(ls -A {d} 2>/dev/null)\" ]; then echo HLNONEMPTY; fi; \
         {ls}",
        env = git_env(a),
        dirty = if a.bare {
            String::new()
        } else {
            format!(
                "if [ -n \"$({has} status --porcelain --untracked-files=no 2>/dev/null | head -n 1)\" ]; then echo HLDIRTY; fi; "
            )
        },
    )
}

pub fn parse_probe(out: &str) -> Probe {
    let mut p = Probe::default();
    let mut in_ls = false;
    for l in out.lines() {
        if in_ls {
            if l == "HLLSEND" {
                in_ls = false;
            } else {
                p.ls_remote.push_str(l);
                p.ls_remote.push('\n');
            }
            continue;
        }
        match l {
            "HLNOGIT" => p.no_git = true,
            "HLREPO" => p.is_repo = true,
            "HLNONEMPTY" => p.nonempty = true,
            "HLDIRTY" => p.dirty = true,
            "HLLS" => in_ls = true,
            _ => {
                if let Some(h) = l.strip_prefix("HLHEAD ") {
                    p.head = Some(h.trim().to_string()).filter(|h| !h.is_empty());
                } else if let Some(u) = l.strip_prefix("HLURL ") {
                    p.url = Some(u.trim().to_string()).filter(|u| !u.is_empty());
                } else if let Some(c) = l.strip_prefix("HLLSRC ") {
                    p.ls_ok = c.trim() == "0";
                    if !p.ls_ok {
                        p.ls_err = p.ls_remote.lines().collect::<Vec<_>>().join(" ");
                    }
                }
            }
        }
    }
    p
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Clone,
    Update,
}

#[derive(Debug)]
pub struct Plan {
    pub probe: Probe,
    pub target: Option<Resolved>,
    pub action: Action,
    pub set_url: bool,
    pub reset_mods: bool,
}

/// The decision (pure: unit-tested). Err is a message for the user.
pub fn decide(a: &Args, p: Probe, host: &str) -> Result<Plan, String> {
    if p.no_git {
        return Err(format!(
            "git is not installed on {host}: install the git package"
        ));
    }
    let mut plan = Plan {
        target: None,
        action: Action::None,
        set_url: false,
        reset_mods: false,
        probe: p,
    };
    let p = &plan.probe;
    if !p.is_repo && !a.clone {
        return Ok(plan);
    }
    if p.is_repo && !a.update {
        return Ok(plan);
    }
    if !p.ls_ok {
        return Err(format!(
            "cannot read the repository {}: {}",
            a.repo,
            p.ls_err.trim()
        ));
    }
    let target = resolve(&p.ls_remote, &a.version).ok_or_else(|| {
        format!(
            "version '{}' is not a branch or tag of {} (give a branch, a tag, a full commit id, or HEAD)",
            a.version, a.repo
        )
    })?;
    if !p.is_repo {
        if p.nonempty {
            return Err(format!(
                "destination path {} already exists and is not an empty directory",
                a.dest
            ));
        }
        plan.action = Action::Clone;
    } else {
        if p.dirty && !a.force {
            return Err(format!(
                "Local modifications exist in the destination: {} (force=no)",
                a.dest
            ));
        }
        plan.reset_mods = p.dirty;
        plan.set_url = p.url.as_deref() != Some(a.repo.as_str());
        if p.head.as_deref() != Some(target.sha()) || plan.reset_mods || plan.set_url {
            plan.action = Action::Update;
        }
    }
    plan.target = Some(target);
    Ok(plan)
}

pub struct Git;

impl Module for Git {
    const NAME: &'static str = "git";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if a.repo.is_empty() || a.dest.is_empty() {
            return Err(ModuleError::Failed(format!(
                "{}: repo and dest are required",
                ctx.host
            )));
        }
        if a.version.starts_with('-') || a.repo.starts_with('-') {
            return Err(ModuleError::Failed(format!(
                "{}: repo and version must not start with '-'",
                ctx.host
            )));
        }
        let out = ctx.exec(probe_script(a)).await?;
        let probe = parse_probe(&out.stdout_str());
        decide(a, probe, ctx.host).map_err(|e| ModuleError::Failed(format!("{}: {e}", ctx.host)))
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let before = p.probe.head.clone();
        let after = match (&p.action, &p.target) {
            (Action::None, _) | (_, None) => before.clone(),
            (_, Some(t)) => Some(t.sha().to_string()),
        };
        let opt = |s: &Option<String>| {
            s.clone()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null)
        };
        let mut r = TaskResult::changed(p.action != Action::None)
            .with("before", opt(&before))
            .with("after", opt(&after))
            .with("remote_url_changed", p.set_url);
        if ctx.diff && p.action != Action::None {
            let mut b = vec![("version", before.clone().unwrap_or_else(|| "absent".into()))];
            let mut f = vec![("version", after.clone().unwrap_or_default())];
            if p.set_url {
                b.push(("remote_url", p.probe.url.clone().unwrap_or_default()));
                f.push(("remote_url", a.repo.clone()));
            }
            if p.reset_mods {
                b.push(("local_modifications", "yes".into()));
                f.push(("local_modifications", "discarded".into()));
            }
            r.diff.push(super::remote::state_diff(&a.dest, &b, &f));
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        mut done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let Some(target) = &p.target else {
            return Ok(done);
        };
        let d = shell_quote(&a.dest);
        let r = shell_quote(&a.repo);
        let rem = shell_quote(&a.remote);
        let sha = target.sha();
        let depth = a
            .depth
            .filter(|d| *d >= 1.0)
            .map(|d| format!("--depth {} ", d as u64))
            .unwrap_or_default();
        let g = if a.bare {
            format!("git --git-dir={d}")
        } else {
            format!("git -C {d}")
        };
        let mut s = git_env(a);
        s.push_str("set -e; ");
        match p.action {
            Action::None => return Ok(done),
            Action::Clone => {
                let branch = match target {
                    Resolved::Branch(_) | Resolved::Tag(_) if a.version != "HEAD" => format!(
                        "--branch {} ",
                        shell_quote(
                            a.version
                                .trim_start_matches("refs/heads/")
                                .trim_start_matches("refs/tags/")
                        )
                    ),
                    _ => String::new(),
                };
                let bare = if a.bare { "--bare " } else { "" };
                // A commit id may not be reachable from a shallow clone: full clone then.
                let depth = if matches!(target, Resolved::Commit(_)) {
                    ""
                } else {
                    depth.as_str()
                };
                s.push_str(&format!(
                    "git clone -q {bare}{depth}{branch}--origin {rem} -- {r} {d}; "
                ));
                if matches!(target, Resolved::Commit(_)) && !a.bare {
                    s.push_str(&format!("{g} checkout -q --force {sha}; "));
                }
            }
            Action::Update => {
                if p.set_url {
                    s.push_str(&format!("{g} remote set-url {rem} {r}; "));
                }
                if a.bare {
                    s.push_str(&format!(
                        "{g} fetch -q {depth}{rem} '+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*'; "
                    ));
                } else {
                    s.push_str(&format!("{g} fetch -q {depth}--tags {rem}; "));
                    s.push_str(&format!(
                        "{g} cat-file -e {sha}^{{commit}} 2>/dev/null || {g} fetch -q {depth}{rem} {sha}; "
                    ));
                    match target {
                        Resolved::Branch(_) => {
                            let b = a.version.trim_start_matches("refs/heads/");
                            s.push_str(&format!(
                                "{g} checkout -q --force -B {} {sha}; {g} branch -q --set-upstream-to={} >/dev/null 2>&1 || true; ",
                                shell_quote(b),
                                shell_quote(&format!("{}/{b}", a.remote))
                            ));
                        }
                        Resolved::Head(_) => {
                            s.push_str(&format!(
                                "if {g} symbolic-ref -q HEAD >/dev/null; then {g} reset -q --hard {sha}; \
                                 else {g} checkout -q --force {sha}; fi; "
                            ));
                        }
                        Resolved::Tag(_) | Resolved::Commit(_) => {
                            s.push_str(&format!("{g} checkout -q --force {sha}; "));
                        }
                    }
                }
            }
        }
        s.push_str(&format!("printf 'HLAFTER %s\\n' \"$({g} rev-parse HEAD)\""));
        let out = ctx.exec(s).await?;
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "{}: git {} of {} into {} failed: {}",
                ctx.host,
                if p.action == Action::Clone {
                    "clone"
                } else {
                    "update"
                },
                a.repo,
                a.dest,
                out.stderr_str().trim()
            )));
        }
        if let Some(after) = out
            .stdout_str()
            .lines()
            .find_map(|l| l.strip_prefix("HLAFTER ").map(str::to_string))
        {
            done = done.with("after", after);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const C: &str = "3333333333333333333333333333333333333333";

    fn ls() -> String {
        format!("{A}\tHEAD\n{A}\trefs/heads/main\n{B}\trefs/heads/dev\n{C}\trefs/tags/v1\n{B}\trefs/tags/v1^{{}}\n")
    }

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn resolves_versions() {
        assert_eq!(resolve(&ls(), "HEAD"), Some(Resolved::Head(A.into())));
        assert_eq!(resolve(&ls(), "dev"), Some(Resolved::Branch(B.into())));
        assert_eq!(
            resolve(&ls(), "refs/heads/dev"),
            Some(Resolved::Branch(B.into()))
        );
        assert_eq!(
            resolve(&ls(), "v1"),
            Some(Resolved::Tag(B.into())),
            "peeled tag"
        );
        assert_eq!(resolve(&ls(), C), Some(Resolved::Commit(C.into())));
        assert_eq!(resolve(&ls(), "nope"), None);
    }

    fn probe(repo: bool, head: Option<&str>) -> Probe {
        Probe {
            is_repo: repo,
            head: head.map(str::to_string),
            url: repo.then(|| "/srv/r.git".to_string()),
            ls_remote: ls(),
            ls_ok: true,
            ..Default::default()
        }
    }

    #[test]
    fn decisions() {
        let a = args(json!({"repo": "/srv/r.git", "dest": "/d"}));
        assert_eq!(
            decide(&a, probe(false, None), "h").unwrap().action,
            Action::Clone
        );
        assert_eq!(
            decide(&a, probe(true, Some(A)), "h").unwrap().action,
            Action::None
        );
        assert_eq!(
            decide(&a, probe(true, Some(B)), "h").unwrap().action,
            Action::Update
        );
        let a2 = args(json!({"repo": "/srv/r.git", "dest": "/d", "update": false}));
        assert_eq!(
            decide(&a2, probe(true, Some(B)), "h").unwrap().action,
            Action::None
        );
        let a3 = args(json!({"repo": "/srv/r.git", "dest": "/d", "clone": "no"}));
        assert_eq!(
            decide(&a3, probe(false, None), "h").unwrap().action,
            Action::None
        );
        let mut dirty = probe(true, Some(A));
        dirty.dirty = true;
        assert!(decide(&a, dirty, "h")
            .unwrap_err()
            .contains("Local modifications"));
        let af = args(json!({"repo": "/srv/r.git", "dest": "/d", "force": true}));
        let mut dirty = probe(true, Some(A));
        dirty.dirty = true;
        let p = decide(&af, dirty, "h").unwrap();
        assert!(p.reset_mods && p.action == Action::Update);
        let mut other = probe(true, Some(A));
        other.url = Some("/srv/old.git".into());
        assert!(decide(&a, other, "h").unwrap().set_url);
        let mut full = probe(false, None);
        full.nonempty = true;
        assert!(decide(&a, full, "h")
            .unwrap_err()
            .contains("not an empty directory"));
        let nogit = Probe {
            no_git: true,
            ..Default::default()
        };
        assert_eq!(
            decide(&a, nogit, "node2").unwrap_err(),
            "git is not installed on node2: install the git package"
        );
        let av = args(json!({"repo": "/srv/r.git", "dest": "/d", "version": "nope"}));
        assert!(decide(&av, probe(false, None), "h")
            .unwrap_err()
            .contains("not a branch or tag"));
        let mut bad = probe(false, None);
        bad.ls_ok = false;
        bad.ls_err = "fatal: not a repo".into();
        assert!(decide(&a, bad, "h")
            .unwrap_err()
            .contains("fatal: not a repo"));
    }

    #[test]
    fn parses_probe_output() {
        let out = format!(
            "HLREPO\nHLHEAD {A}\nHLURL /srv/r.git\nHLDIRTY\nHLLS\n{A}\tHEAD\nHLLSEND\nHLLSRC 0\n"
        );
        let p = parse_probe(&out);
        assert!(p.is_repo && p.dirty && p.ls_ok);
        assert_eq!(p.head.as_deref(), Some(A));
        assert_eq!(p.url.as_deref(), Some("/srv/r.git"));
        assert_eq!(p.ls_remote, format!("{A}\tHEAD\n"));
        assert!(parse_probe("HLNOGIT\n").no_git);
        assert!(
            serde_json::from_value::<Args>(json!({"repo": "r", "dest": "d", "bogus": 1})).is_err()
        );
    }
}
