//! `file`: path states (file, directory, absent, touch, link, hard) and owner/group/mode.
//! Probe: one round trip for the path's state (and, with `recurse`, whether anything below differs).
//! The diff is the before/after of `{path, state, mode, owner, group}`, as Ansible shows it.

use super::core::{boolish, FileDiff, Module, ModuleError, TaskCtx, TaskResult};
use super::remote::{self, Kind, PathState, Want};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "dest", alias = "name")]
    pub path: String,
    pub state: Option<State>,
    #[serde(default, deserialize_with = "super::core::modeish::option")]
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub src: Option<String>,
    #[serde(default, with = "boolish")]
    pub recurse: bool,
    #[serde(default, with = "boolish")]
    pub force: bool,
    #[serde(default = "yes", with = "boolish")]
    pub follow: bool,
    pub modification_time: Option<String>,
    pub access_time: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub unsafe_writes: Option<bool>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    File,
    Directory,
    Absent,
    Touch,
    Link,
    Hard,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::File => "file",
            State::Directory => "directory",
            State::Absent => "absent",
            State::Touch => "touch",
            State::Link => "link",
            State::Hard => "hard",
        }
    }
}

/// What will be done, in order.
#[derive(Debug, Default)]
pub struct Plan {
    state: Option<PathState>,
    /// The main action: a shell command and a description, or none.
    action: Option<(String, String)>,
    attrs: bool,
    /// The action already gives the path its mode (`mkdir -m`).
    mode_set: bool,
    error: Option<String>,
    want: Option<State>,
}

/// An octal mode (`0750`, `750`), which `mkdir -m` and `chmod` read alike.
fn is_octal(m: &str) -> bool {
    !m.is_empty() && m.len() <= 5 && m.bytes().all(|b| (b'0'..=b'7').contains(&b))
}

pub struct File;

/// Applies an octal or symbolic (`u+x,go-w`, `a=r`, `u=rwX`) mode to `cur`.
pub fn resolve_mode(spec: &str, cur: u32, is_dir: bool) -> Result<u32, String> {
    let s = spec.trim();
    let s = s.strip_prefix("0o").unwrap_or(s);
    if !s.is_empty() && s.chars().all(|c| c.is_digit(8)) {
        return u32::from_str_radix(s, 8).map_err(|e| format!("bad mode {spec}: {e}"));
    }
    let mut mode = cur & 0o7777;
    for clause in s.split(',') {
        let ops_at = clause
            .find(['+', '-', '='])
            .ok_or_else(|| format!("bad symbolic mode '{spec}': expected [ugoa][+-=][rwxXst]"))?;
        let (who, rest) = clause.split_at(ops_at);
        let mut mask = 0u32;
        for c in who.chars() {
            mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(format!("bad symbolic mode '{spec}': who '{c}'")),
            };
        }
        if who.is_empty() {
            mask = 0o7777;
        }
        let mut chars = rest.chars().peekable();
        while let Some(op) = chars.next() {
            let mut perm = 0u32;
            while let Some(&c) = chars.peek() {
                if matches!(c, '+' | '-' | '=') {
                    break;
                }
                perm |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    'X' => 0,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => return Err(format!("bad symbolic mode '{spec}': permission '{c}'")),
                };
                chars.next();
            }
            let bits = perm & mask;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => mode = (mode & !(mask & 0o7777)) | bits,
            }
        }
    }
    Ok(mode)
}

/// The `{path, mode, owner, group}` before/after diff for an attribute change.
pub fn attrs_diff(
    path: &str,
    st: &PathState,
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
) -> FileDiff {
    let mut before = vec![];
    let mut after = vec![];
    if let Some(m) = mode {
        let new = resolve_mode(m, st.mode, st.kind == Kind::Directory).unwrap_or(st.mode);
        if new != st.mode {
            before.push(("mode", st.mode_str()));
            after.push(("mode", format!("{new:04o}")));
        }
    }
    if let Some(o) = owner.filter(|o| *o != st.owner && *o != st.uid.to_string()) {
        before.push(("owner", st.owner.clone()));
        after.push(("owner", o.to_string()));
    }
    if let Some(g) = group.filter(|g| *g != st.group && *g != st.gid.to_string()) {
        before.push(("group", st.group.clone()));
        after.push(("group", g.to_string()));
    }
    remote::state_diff(path, &before, &after)
}

/// chown/chmod `path` as asked (nothing when neither is given).
pub async fn set_attrs(
    ctx: &TaskCtx<'_>,
    path: &str,
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<(), ModuleError> {
    let cmd = attrs_cmd(path, mode, owner, group, false);
    if cmd.is_empty() {
        return Ok(());
    }
    let out = ctx.exec(cmd).await?;
    if !out.success() {
        return Err(ModuleError::Failed(format!(
            "cannot set owner/mode of {path}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(())
}

fn attrs_cmd(
    path: &str,
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
    recurse: bool,
) -> String {
    let q = shell_quote(path);
    let r = if recurse { "-R " } else { "" };
    let mut steps = vec![];
    if owner.is_some() || group.is_some() {
        steps.push(format!(
            "chown {r}{}{} {q}",
            owner.map(shell_quote).unwrap_or_default(),
            group
                .map(|g| format!(":{}", shell_quote(g)))
                .unwrap_or_default()
        ));
    }
    if let Some(m) = mode {
        steps.push(format!("chmod {r}{} {q}", shell_quote(m)));
    }
    steps.join(" && ")
}

impl Module for File {
    const NAME: &'static str = "file";
    type Args = Args;
    type Plan = Plan;

    fn hint(a: &Args, _diff: bool) -> Option<Vec<(String, Want)>> {
        (!a.recurse).then(|| vec![(a.path.clone(), Want::default())])
    }

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if let Some(m) = &a.mode {
            resolve_mode(m, 0o644, false).map_err(ModuleError::Failed)?;
        }
        let mut conds = vec![];
        if a.recurse {
            if let Some(o) = &a.owner {
                conds.push(format!("! -user {}", shell_quote(o)));
            }
            if let Some(g) = &a.group {
                conds.push(format!("! -group {}", shell_quote(g)));
            }
            if let Some(m) = a
                .mode
                .as_deref()
                .filter(|m| m.chars().all(|c| c.is_ascii_digit()))
            {
                conds.push(format!("! -perm {m}"));
            }
        }
        let (mut st, recurse_differs) = if conds.is_empty() {
            (ctx.probe_path(&a.path, Want::default()).await?, false)
        } else {
            let mut script = remote::probe_script(&a.path, Want::default());
            script.push_str(&format!(
                "if [ -d \"$p\" ] && [ -n \"$(find \"$p\" -mindepth 1 \\( {} \\) -print 2>/dev/null | head -n 1)\" ]; then echo HLRECURSE; fi; ",
                conds.join(" -o ")
            ));
            let out = ctx.exec(script).await?;
            let st = remote::parse_probe(&out.stdout).map_err(ModuleError::Failed)?;
            (st, out.stdout_str().contains("HLRECURSE"))
        };
        ctx.overlay(&a.path, &mut st);
        let q = shell_quote(&a.path);
        // Ansible's default state: the current one if the path exists, else file.
        let want = a.state.unwrap_or(match st.kind {
            Kind::Directory => State::Directory,
            Kind::Link if !a.follow => State::Link,
            _ if a.src.is_some() => State::Link,
            _ => State::File,
        });
        let mut plan = Plan {
            state: Some(st.clone()),
            want: Some(want),
            ..Default::default()
        };
        let attrs = |st: &PathState| {
            copy_attrs_differ(
                a.mode.as_deref(),
                a.owner.as_deref(),
                a.group.as_deref(),
                st,
            )
        };
        match want {
            State::Absent => {
                if st.exists() {
                    plan.action = Some((format!("rm -rf -- {q}"), "removed".into()));
                }
            }
            State::Directory => match st.kind {
                Kind::Absent => match a.mode.as_deref().filter(|m| is_octal(m)) {
                    // The folder is made with its mode (mkdir's -m, as chmod takes an octal
                    // mode): no chmod process.
                    Some(m) => {
                        let cmd = format!("mkdir -p -m {} -- {q}", shell_quote(m));
                        plan.action = Some((cmd, "created directory".into()));
                        plan.attrs = a.owner.is_some() || a.group.is_some();
                        plan.mode_set = true;
                    }
                    None => {
                        let cmd = format!("mkdir -p -- {q}");
                        plan.action = Some((cmd, "created directory".into()));
                        plan.attrs = a.mode.is_some() || a.owner.is_some() || a.group.is_some();
                    }
                },
                Kind::Directory => plan.attrs = attrs(&st) || recurse_differs,
                other => {
                    plan.error = Some(format!(
                        "{} already exists as a {}; it cannot become a directory",
                        a.path,
                        other.name()
                    ))
                }
            },
            State::File => match st.kind {
                Kind::Absent => {
                    plan.error = Some(format!(
                        "file ({}) is absent, cannot continue (use state: touch to create it)",
                        a.path
                    ))
                }
                Kind::Directory => {
                    plan.error = Some(format!("{} is a directory, not a file", a.path))
                }
                _ => plan.attrs = attrs(&st),
            },
            State::Touch => {
                let mut cmd = format!("touch -- {q}");
                if a.modification_time.as_deref() == Some("preserve")
                    && a.access_time.as_deref() == Some("preserve")
                {
                    cmd = format!("[ -e {q} ] || touch -- {q}");
                    if st.exists() {
                        plan.attrs = attrs(&st);
                    } else {
                        plan.action = Some((cmd, "touched".into()));
                        plan.attrs = a.mode.is_some() || a.owner.is_some() || a.group.is_some();
                    }
                } else {
                    plan.action = Some((cmd, "touched".into()));
                    plan.attrs = a.mode.is_some() || a.owner.is_some() || a.group.is_some();
                }
            }
            State::Link | State::Hard => {
                let Some(src) = &a.src else {
                    return Err(ModuleError::Failed(format!(
                        "src is required for state={}",
                        want.name()
                    )));
                };
                let qs = shell_quote(src);
                let flag = if want == State::Link { "-s" } else { "" };
                let same = match want {
                    State::Link => st.kind == Kind::Link && st.link_target.as_deref() == Some(src),
                    _ => {
                        // Same inode: ask the host (cheap; only for hard links).
                        let o = ctx
                            .exec(format!("[ {q} -ef {qs} ] && echo same || true"))
                            .await?;
                        o.stdout_str().trim() == "same"
                    }
                };
                if !same {
                    match st.kind {
                        Kind::Absent | Kind::Link => {
                            plan.action = Some((
                                format!("ln {flag} -f -n -- {qs} {q}"),
                                format!("linked to {src}"),
                            ))
                        }
                        Kind::File if a.force => {
                            plan.action = Some((
                                format!("ln {flag} -f -n -- {qs} {q}"),
                                format!("replaced file with link to {src}"),
                            ))
                        }
                        other => {
                            plan.error = Some(format!(
                                "refusing to convert {} from {} to a link (use force: yes)",
                                a.path,
                                other.name()
                            ))
                        }
                    }
                } else if want == State::Hard {
                    plan.attrs = attrs(&st);
                }
            }
        }
        Ok(plan)
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        if let Some(e) = &p.error {
            return TaskResult::failed(e.clone()).with("path", a.path.clone());
        }
        let st = p.state.clone().unwrap_or_else(|| PathState {
            kind: Kind::Absent,
            mode: 0,
            owner: String::new(),
            group: String::new(),
            uid: 0,
            gid: 0,
            size: 0,
            link_target: None,
            checksum: None,
            content: None,
            parent_exists: true,
        });
        let changed = p.action.is_some() || p.attrs;
        let want = p.want.unwrap_or(State::File);
        let mut r = TaskResult::changed(changed)
            .with("path", a.path.clone())
            .with(
                "state",
                if want == State::Touch {
                    "file"
                } else {
                    want.name()
                },
            );
        if ctx.diff && changed {
            let before_state = st.kind.name().to_string();
            let after_state = match want {
                State::Touch => {
                    if st.exists() {
                        before_state.clone()
                    } else {
                        "file".into()
                    }
                }
                State::Hard => "hard".into(),
                s => s.name().into(),
            };
            if p.action.is_some() && before_state != after_state {
                r.diff.push(remote::state_diff(
                    &a.path,
                    &[("state", before_state)],
                    &[("state", after_state)],
                ));
            } else if p.attrs {
                r.diff.push(attrs_diff(
                    &a.path,
                    &st,
                    a.mode.as_deref(),
                    a.owner.as_deref(),
                    a.group.as_deref(),
                ));
            }
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) {
        use super::core::PlannedPath;
        let cur = p.state.as_ref().map(|s| s.mode).unwrap_or(0o644);
        let mode = a
            .mode
            .as_deref()
            .and_then(|m| resolve_mode(m, cur, p.want == Some(State::Directory)).ok());
        match p.want {
            Some(State::Absent) => ctx.plan_path(&a.path, PlannedPath::Absent),
            Some(State::Directory) => ctx.plan_path(&a.path, PlannedPath::Directory),
            Some(State::Touch) | Some(State::File) => ctx.plan_path(
                &a.path,
                PlannedPath::File {
                    content: p
                        .state
                        .as_ref()
                        .and_then(|s| s.content.clone())
                        .or(Some(vec![])),
                    mode,
                },
            ),
            _ => {}
        }
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let mut steps = vec![];
        if let Some((cmd, _)) = &p.action {
            steps.push(cmd.clone());
        }
        if p.attrs && p.want != Some(State::Absent) {
            let c = attrs_cmd(
                &a.path,
                a.mode.as_deref().filter(|_| !p.mode_set),
                a.owner.as_deref(),
                a.group.as_deref(),
                a.recurse && p.want == Some(State::Directory),
            );
            if !c.is_empty() {
                steps.push(c);
            }
        }
        if steps.is_empty() {
            return Ok(done);
        }
        let out = ctx.exec_write(steps.join(" && "), None).await?;
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "{}: {}",
                a.path,
                out.stderr_str().trim()
            )));
        }
        Ok(done)
    }
}

/// Whether owner/group/mode as asked differ from the path's.
pub fn copy_attrs_differ(
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
    st: &PathState,
) -> bool {
    super::copy::mode_differs(mode, st) || super::copy::owner_differs(owner, group, st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_modes() {
        assert_eq!(resolve_mode("0644", 0, false), Ok(0o644));
        assert_eq!(resolve_mode("u+x", 0o644, false), Ok(0o744));
        assert_eq!(resolve_mode("go-w", 0o666, false), Ok(0o644));
        assert_eq!(resolve_mode("u=rwX,g=rX,o=", 0o600, true), Ok(0o750));
        assert_eq!(resolve_mode("u=rwX,g=rX,o=", 0o600, false), Ok(0o640));
        assert_eq!(resolve_mode("a+r", 0o600, false), Ok(0o644));
        assert_eq!(resolve_mode("+t", 0o755, true), Ok(0o1755));
        assert!(resolve_mode("q+r", 0o600, false).is_err());
    }
}

#[cfg(test)]
mod drive_tests {
    use crate::modules::copy::Copy;
    use crate::modules::file::File;
    use crate::modules::testutil::{run, snapshot};
    use serde_json::json;

    /// For each case: check mode reports the change and changes nothing; the real run makes the
    /// same report and the change; a second run (and its check) reports no change.
    #[tokio::test]
    async fn check_then_apply_then_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).display().to_string();
        let cases: Vec<(&str, serde_json::Value)> = vec![
            (
                "copy",
                json!({"dest": p("a.txt"), "content": "hello\n", "mode": "0640"}),
            ),
            (
                "copy",
                json!({"dest": p("a.txt"), "content": "hello again\n"}),
            ),
            (
                "copy",
                json!({"dest": p("a.txt"), "content": "hello again\n", "mode": "u+x"}),
            ),
            (
                "file",
                json!({"path": p("dir/sub"), "state": "directory", "mode": "0750"}),
            ),
            (
                "file",
                json!({"path": p("dir/sub"), "state": "directory", "mode": "g-x"}),
            ),
            (
                "file",
                json!({"path": p("t"), "state": "touch", "modification_time": "preserve", "access_time": "preserve"}),
            ),
            (
                "file",
                json!({"path": p("ln"), "state": "link", "src": p("a.txt")}),
            ),
            (
                "file",
                json!({"path": p("hard"), "state": "hard", "src": p("a.txt")}),
            ),
            ("file", json!({"path": p("t"), "state": "absent"})),
        ];
        for (m, args) in cases {
            let go = |check| {
                let args = args.clone();
                async move {
                    if m == "copy" {
                        run::<Copy>(check, args).await
                    } else {
                        run::<File>(check, args).await
                    }
                }
            };
            let before = snapshot(d.path());
            let planned = go(true).await;
            assert!(!planned.failed, "{m} {args}: {planned:?}");
            assert!(planned.changed, "{m} {args}: check should report a change");
            assert!(
                !planned.diff.is_empty(),
                "{m} {args}: no diff in check mode"
            );
            assert_eq!(
                snapshot(d.path()),
                before,
                "{m} {args}: check mode changed the host"
            );
            let done = go(false).await;
            assert_eq!(done.changed, planned.changed, "{m} {args}");
            assert_eq!(
                done.diff, planned.diff,
                "{m} {args}: the run differs from the plan"
            );
            assert_ne!(snapshot(d.path()), before, "{m} {args}: nothing changed");
            let again = go(false).await;
            assert!(
                !again.changed && !again.failed,
                "{m} {args}: not idempotent: {again:?}"
            );
            assert!(
                !go(true).await.changed,
                "{m} {args}: check after apply reports a change"
            );
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = |n: &str| std::fs::metadata(p(n)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(std::fs::read(p("a.txt")).unwrap(), b"hello again\n");
        assert_eq!(mode("a.txt"), 0o740);
        assert_eq!(mode("dir/sub"), 0o740);
        assert_eq!(
            std::fs::read_link(p("ln")).unwrap().display().to_string(),
            p("a.txt")
        );
        assert!(!d.path().join("t").exists());
    }

    /// A plan reads as the run would go: a file planned into a folder planned just before, a
    /// line added to a file planned just before, nothing written.
    #[tokio::test]
    async fn check_mode_sees_what_earlier_tasks_would_do() {
        use crate::modules::core::Planned;
        use crate::modules::lineinfile::LineInFile;
        use crate::modules::testutil::run_planned;
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).display().to_string();
        let planned = Planned::default();
        let r = run_planned::<File>(
            true,
            json!({"path": p("new"), "state": "directory"}),
            None,
            Some(&planned),
        )
        .await;
        assert!(r.changed && !r.failed, "{r:?}");
        let r = run_planned::<Copy>(
            true,
            json!({"dest": p("new/a.conf"), "content": "a=1\n"}),
            None,
            Some(&planned),
        )
        .await;
        assert!(r.changed && !r.failed, "{r:?}");
        let r = run_planned::<LineInFile>(
            true,
            json!({"path": p("new/a.conf"), "line": "b=2"}),
            None,
            Some(&planned),
        )
        .await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(r.diff[0].before, "a=1\n");
        assert_eq!(r.diff[0].after, "a=1\nb=2\n");
        let r = run_planned::<Copy>(
            true,
            json!({"dest": p("new/a.conf"), "content": "a=1\nb=2\n"}),
            None,
            Some(&planned),
        )
        .await;
        assert!(!r.changed, "the planned content already matches: {r:?}");
        let r = run_planned::<File>(
            true,
            json!({"path": p("new"), "state": "absent"}),
            None,
            Some(&planned),
        )
        .await;
        assert!(r.changed, "{r:?}");
        let r = run_planned::<Copy>(
            true,
            json!({"dest": p("new/b"), "content": "x"}),
            None,
            Some(&planned),
        )
        .await;
        assert!(r.failed, "the folder is planned away: {r:?}");
        assert!(
            std::fs::read_dir(d.path()).unwrap().next().is_none(),
            "check mode wrote something"
        );
        // Without the record, the same copy fails as the host stands.
        let r = run::<Copy>(true, json!({"dest": p("new/a.conf"), "content": "a=1\n"})).await;
        assert!(r.failed);
    }

    #[tokio::test]
    async fn errors_are_clear_and_change_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).display().to_string();
        let r = run::<Copy>(false, json!({"dest": p("no/such/dir/x"), "content": "x"})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("does not exist"),
            "{r:?}"
        );
        let r = run::<Copy>(false, json!({"dest": p("x"), "content": "x", "bogus": 1})).await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("unknown field `bogus`"),
            "{r:?}"
        );
        let r = run::<File>(false, json!({"path": p("x"), "state": "file"})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("is absent"),
            "{r:?}"
        );
        let r = run::<File>(false, json!({"path": p("x"), "state": "sideways"})).await;
        assert!(r.failed, "{r:?}");
        assert!(std::fs::read_dir(d.path()).unwrap().next().is_none());
    }
}
