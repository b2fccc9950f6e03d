//! `mount` (ansible.posix.mount): a filesystem's line in fstab and whether it is mounted. One probe
//! reads `/proc/self/mountinfo`, the fstab and the mount point. The fstab is edited on the
//! controller (the line for the mount point replaced where it is, or appended; removed for
//! `absent`/`absent_from_fstab`) and written atomically with a unified diff (`backup` keeps a
//! copy); mounting uses the arguments given (`mount -t FSTYPE -o OPTS SRC PATH`), so a custom
//! `fstab` file works the same, and a changed entry of a mounted filesystem is remounted.

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::remote::state_diff;
use super::sysutil::{lines_nl, overlay, parse_text, text_probe, FileEdit};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Mounted,
    Unmounted,
    Present,
    Absent,
    Remounted,
    AbsentFromFstab,
    Ephemeral,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "name")]
    pub path: String,
    #[serde(default)]
    pub src: Option<String>,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub opts: Option<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub dump: Option<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub passno: Option<String>,
    pub state: State,
    #[serde(default)]
    pub fstab: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub backup: Option<bool>,
    /// false adds `noauto` to the fstab options (not mounted at boot).
    #[serde(default, with = "boolish::option")]
    pub boot: Option<bool>,
}

pub const DEFAULT_FSTAB: &str = "/etc/fstab";

/// A mounted filesystem, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub path: String,
    pub fstype: String,
    pub source: String,
    pub opts: String,
}

/// `\040`-style escapes of mountinfo and fstab, undone.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Space, tab, newline and backslash escaped as fstab wants them.
pub fn escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            ' ' => o.push_str("\\040"),
            '\t' => o.push_str("\\011"),
            '\n' => o.push_str("\\012"),
            '\\' => o.push_str("\\134"),
            c => o.push(c),
        }
    }
    o
}

/// Parses `/proc/self/mountinfo`: `ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - TYPE SRC SUPER`.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            if dash < 6 || f.len() < dash + 3 {
                return None;
            }
            Some(Mount {
                path: unescape(f[4]),
                opts: f[5].to_string(),
                fstype: f[dash + 1].to_string(),
                source: unescape(f[dash + 2]),
            })
        })
        .collect()
}

/// The filesystem mounted on `path` now (the last mount on it is the one seen).
pub fn mounted_on<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let p = normalize_path(path);
    mounts.iter().rev().find(|m| m.path == p)
}

fn normalize_path(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_string()
    }
}

/// An fstab entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub src: String,
    pub path: String,
    pub fstype: String,
    pub opts: String,
    pub dump: String,
    pub passno: String,
}

impl Entry {
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {}\n",
            escape(&self.src),
            escape(&self.path),
            self.fstype,
            self.opts,
            self.dump,
            self.passno
        )
    }
    fn parse(line: &str) -> Option<Entry> {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() < 3 {
            return None;
        }
        Some(Entry {
            src: unescape(f[0]),
            path: unescape(f[1]),
            fstype: f[2].to_string(),
            opts: f.get(3).unwrap_or(&"defaults").to_string(),
            dump: f.get(4).unwrap_or(&"0").to_string(),
            passno: f.get(5).unwrap_or(&"0").to_string(),
        })
    }
}

/// The fstab with `path`'s entry set to `want` (None: removed). The first line for the path is
/// replaced where it is (kept as written when it already says the same), later ones dropped.
pub fn edit_fstab(text: &str, path: &str, want: Option<&Entry>) -> String {
    let p = normalize_path(path);
    let mut out = String::new();
    let mut done = false;
    for line in lines_nl(text) {
        match Entry::parse(&line) {
            Some(e) if normalize_path(&e.path) == p => {
                if let (Some(w), false) = (want, done) {
                    if e == *w {
                        out.push_str(&line);
                    } else {
                        out.push_str(&w.line());
                    }
                    done = true;
                }
            }
            _ => out.push_str(&line),
        }
    }
    if let (Some(w), false) = (want, done) {
        out.push_str(&w.line());
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Act {
    Mount,
    Remount,
    /// Unmount, then mount with the new source or type.
    Replace,
    Unmount,
}

pub struct Plan {
    fstab: Option<FileEdit>,
    live: Option<Mount>,
    act: Option<Act>,
    rmdir: bool,
}

pub struct MountModule;

impl Args {
    fn entry(&self) -> Option<Entry> {
        let mut opts = self.opts.clone().unwrap_or_else(|| "defaults".into());
        if self.boot == Some(false) && !opts.split(',').any(|o| o == "noauto") {
            opts = format!("{opts},noauto");
        }
        Some(Entry {
            src: self.src.clone()?,
            path: normalize_path(&self.path),
            fstype: self.fstype.clone()?,
            opts,
            dump: self.dump.clone().unwrap_or_else(|| "0".into()),
            passno: self.passno.clone().unwrap_or_else(|| "0".into()),
        })
    }
}

fn mount_cmd(e: &Entry) -> String {
    format!(
        "c=0; if [ ! -d {p} ]; then mkdir -p -- {p} && c=1 || exit 1; fi; \
         mount -t {t} -o {o} -- {s} {p} || {{ r=$?; [ $c = 1 ] && rmdir -- {p}; exit $r; }}",
        p = shell_quote(&e.path),
        t = shell_quote(&e.fstype),
        o = shell_quote(&e.opts),
        s = shell_quote(&e.src)
    )
}

impl Module for MountModule {
    const NAME: &'static str = "mount";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if !a.path.starts_with('/') {
            return Err(ModuleError::Failed(format!(
                "path '{}' must be absolute (the mount point)",
                a.path
            )));
        }
        let needs_entry = matches!(a.state, State::Mounted | State::Present | State::Ephemeral);
        let entry = a.entry();
        if needs_entry && entry.is_none() {
            return Err(ModuleError::Failed(format!(
                "state: {} needs src and fstype (e.g. src: tmpfs, fstype: tmpfs)",
                match a.state {
                    State::Mounted => "mounted",
                    State::Present => "present",
                    _ => "ephemeral",
                }
            )));
        }
        let fstab_path = a.fstab.as_deref().unwrap_or(DEFAULT_FSTAB);
        let script = format!(
            "echo HLMI; cat /proc/self/mountinfo; echo HLMIEND; {}",
            text_probe(0, fstab_path)
        );
        let out = ctx.exec(script).await?.stdout_str();
        let mi = out
            .split_once("HLMI\n")
            .and_then(|(_, r)| r.split_once("HLMIEND"))
            .map(|(m, _)| m)
            .ok_or_else(|| {
                ModuleError::Failed(format!(
                    "could not read /proc/self/mountinfo on {}",
                    ctx.host
                ))
            })?;
        let mounts = parse_mountinfo(mi);
        let live = mounted_on(&mounts, &a.path).cloned();
        let fstab = match a.state {
            State::Mounted | State::Present | State::Absent | State::AbsentFromFstab => {
                let mut f = parse_text(&out, 0, fstab_path)
                    .map_err(|e| ModuleError::Failed(format!("{e} (on {})", ctx.host)))?;
                overlay(ctx, &mut f);
                let want = if needs_entry { entry.as_ref() } else { None };
                let after = edit_fstab(&f.text, &a.path, want);
                Some(FileEdit {
                    after: (f.exists || want.is_some()).then_some(after),
                    file: f,
                })
            }
            _ => None,
        };
        let fstab_changed = fstab.as_ref().is_some_and(FileEdit::changed);
        let act = match (a.state, &live, &entry) {
            (State::Mounted | State::Ephemeral, None, _) => Some(Act::Mount),
            (State::Mounted, Some(m), Some(e)) if fstab_changed => {
                if m.fstype == e.fstype && m.source == e.src {
                    Some(Act::Remount)
                } else {
                    Some(Act::Replace)
                }
            }
            (State::Ephemeral, Some(m), Some(e)) if m.fstype != e.fstype || m.source != e.src => {
                return Err(ModuleError::Failed(format!(
                    "{} on {} is already mounted from {} ({}), not {} ({}): unmount it first \
                     (state: unmounted)",
                    a.path, ctx.host, m.source, m.fstype, e.src, e.fstype
                )))
            }
            (State::Unmounted | State::Absent, Some(_), _) => Some(Act::Unmount),
            (State::Remounted, Some(_), _) => Some(Act::Remount),
            (State::Remounted, None, _) => {
                return Err(ModuleError::Failed(format!(
                    "{} is not mounted on {}: nothing to remount (use state: mounted)",
                    a.path, ctx.host
                )))
            }
            _ => None,
        };
        Ok(Plan {
            fstab,
            live,
            act,
            rmdir: a.state == State::Absent,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let fstab_changed = p.fstab.as_ref().is_some_and(FileEdit::changed);
        let mut r = TaskResult::changed(fstab_changed || p.act.is_some())
            .with("name", a.path.clone())
            .with(
                "fstab",
                a.fstab.clone().unwrap_or_else(|| DEFAULT_FSTAB.into()),
            );
        if let Some(e) = a.entry() {
            r = r
                .with("src", e.src)
                .with("fstype", e.fstype)
                .with("opts", e.opts)
                .with("dump", e.dump)
                .with("passno", e.passno);
        }
        if ctx.diff {
            if let Some(f) = p.fstab.as_ref().filter(|f| f.changed()) {
                r.diff.push(f.diff());
            }
            if let Some(act) = &p.act {
                let before = match &p.live {
                    Some(m) => format!("mounted from {} ({}, {})", m.source, m.fstype, m.opts),
                    None => "unmounted".into(),
                };
                let after = match (act, a.entry()) {
                    (Act::Unmount, _) => "unmounted".to_string(),
                    (Act::Remount, _) => format!("{before}, remounted"),
                    (_, Some(e)) => format!("mounted from {} ({}, {})", e.src, e.fstype, e.opts),
                    (_, None) => "mounted".to_string(),
                };
                r.diff.push(state_diff(
                    &a.path,
                    &[("state", before)],
                    &[("state", after)],
                ));
            }
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        if let Some(f) = &p.fstab {
            f.simulate(ctx);
        }
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        mut done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        // The mount is made (or undone) first and the entry written after, so a mount that
        // fails leaves the fstab as it was (and no mount point it made).
        let path = shell_quote(&normalize_path(&a.path));
        let run = |cmd: String, what: &'static str| async move {
            let out = ctx.exec(cmd).await?;
            if out.success() {
                Ok(())
            } else {
                Err(ModuleError::Failed(format!(
                    "could not {what} {} on {}: {}",
                    a.path,
                    ctx.host,
                    out.stderr_str().trim()
                )))
            }
        };
        if p.act == Some(Act::Unmount) {
            run(format!("umount -- {path}"), "unmount").await?;
        }
        let entry = a.entry();
        match (&p.act, &entry) {
            (Some(Act::Mount), Some(e)) => run(mount_cmd(e), "mount").await?,
            (Some(Act::Replace), Some(e)) => {
                run(format!("umount -- {path} && {}", mount_cmd(e)), "remount").await?
            }
            (Some(Act::Remount), e) => {
                let opts = e
                    .as_ref()
                    .map(|e| format!("remount,{}", e.opts))
                    .unwrap_or_else(|| "remount".into());
                run(
                    format!("mount -o {} -- {path}", shell_quote(&opts)),
                    "remount",
                )
                .await?
            }
            _ => {}
        }
        if let Some(f) = &p.fstab {
            if let Some(b) = f.apply(ctx, a.backup.unwrap_or(false)).await? {
                done = done.with("backup_file", b);
            }
        }
        if p.rmdir {
            let _ = ctx
                .exec(format!("rmdir -- {path} 2>/dev/null; true"))
                .await?;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/a\n\
36 22 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
40 22 0:30 / /mnt/t rw,relatime - tmpfs none rw,size=1024k\n\
41 40 0:31 / /mnt/t rw,relatime - tmpfs second rw\n\
bogus line\n";

    #[test]
    fn parses_mountinfo() {
        let m = parse_mountinfo(MI);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].path, "/mnt/with space");
        assert_eq!(
            (m[1].fstype.as_str(), m[1].source.as_str()),
            ("ext3", "/dev/root")
        );
        assert_eq!(m[0].opts, "rw,relatime");
        // The last mount on a path is the one seen.
        assert_eq!(
            mounted_on(&m, "/mnt/t/").map(|m| m.source.as_str()),
            Some("second")
        );
        assert!(mounted_on(&m, "/mnt").is_none());
    }

    #[test]
    fn edits_fstab() {
        let e = Entry {
            src: "tmpfs".into(),
            path: "/mnt/hsys tmp".into(),
            fstype: "tmpfs".into(),
            opts: "size=1m".into(),
            dump: "0".into(),
            passno: "0".into(),
        };
        assert_eq!(e.line(), "tmpfs /mnt/hsys\\040tmp tmpfs size=1m 0 0\n");
        let base = "# /etc/fstab\nUUID=x / ext4 errors=remount-ro 0 1";
        let added = edit_fstab(base, "/mnt/hsys tmp", Some(&e));
        assert_eq!(
            added,
            "# /etc/fstab\nUUID=x / ext4 errors=remount-ro 0 1\ntmpfs /mnt/hsys\\040tmp tmpfs size=1m 0 0\n"
        );
        // Idempotent, even when written with other spacing.
        assert_eq!(edit_fstab(&added, "/mnt/hsys tmp/", Some(&e)), added);
        let spaced = "tmpfs\t/mnt/hsys\\040tmp  tmpfs size=1m 0 0\n";
        assert_eq!(edit_fstab(spaced, "/mnt/hsys tmp", Some(&e)), spaced);
        // A changed entry is replaced in place; duplicates go.
        let t = "a /x ext4 defaults 0 0\ntmpfs /mnt/hsys\\040tmp tmpfs size=2m 0 0\nb /y ext4 defaults 0 0\ntmpfs /mnt/hsys\\040tmp tmpfs size=3m\n";
        assert_eq!(
            edit_fstab(t, "/mnt/hsys tmp", Some(&e)),
            "a /x ext4 defaults 0 0\ntmpfs /mnt/hsys\\040tmp tmpfs size=1m 0 0\nb /y ext4 defaults 0 0\n"
        );
        // Removal takes every line of the path and nothing else.
        assert_eq!(
            edit_fstab(t, "/mnt/hsys tmp", None),
            "a /x ext4 defaults 0 0\nb /y ext4 defaults 0 0\n"
        );
        assert_eq!(unescape("a\\040b\\134c\\"), "a b\\c\\");
    }

    #[test]
    fn entry_defaults_and_boot() {
        let a: Args = serde_json::from_value(serde_json::json!({
            "name": "/mnt/x/", "src": "tmpfs", "fstype": "tmpfs", "state": "present", "boot": "no"
        }))
        .unwrap();
        let e = a.entry().unwrap();
        assert_eq!(e.line(), "tmpfs /mnt/x tmpfs defaults,noauto 0 0\n");
        assert_eq!(
            mount_cmd(&e),
            "c=0; if [ ! -d /mnt/x ]; then mkdir -p -- /mnt/x && c=1 || exit 1; fi; \
             mount -t tmpfs -o defaults,noauto -- tmpfs /mnt/x || { r=$?; [ $c = 1 ] && rmdir -- /mnt/x; exit $r; }"
        );
    }

    #[tokio::test]
    async fn bad_arguments_fail_clearly() {
        use crate::modules::testutil::run;
        use serde_json::json;
        let r = run::<MountModule>(true, json!({"path": "/mnt/x", "state": "mounted"})).await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("needs src and fstype"),
            "{r:?}"
        );
        let r = run::<MountModule>(true, json!({"path": "mnt", "state": "unmounted"})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("absolute"),
            "{r:?}"
        );
        let r = run::<MountModule>(true, json!({"path": "/mnt/x", "state": "gone"})).await;
        assert!(r.failed, "{r:?}");
    }

    #[tokio::test]
    async fn fstab_present_and_absent_on_a_local_file() {
        use crate::modules::testutil::run;
        use serde_json::json;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("fstab");
        std::fs::write(&f, "# x\n").unwrap();
        let fs = f.display().to_string();
        let args = json!({"path": "/mnt/hsys-t", "src": "tmpfs", "fstype": "tmpfs",
                          "opts": "size=1m", "state": "present", "fstab": fs});
        let r = run::<MountModule>(true, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "# x\n");
        let r = run::<MountModule>(false, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "# x\ntmpfs /mnt/hsys-t tmpfs size=1m 0 0\n"
        );
        assert!(!run::<MountModule>(false, args).await.changed);
        let r = run::<MountModule>(
            false,
            json!({"path": "/mnt/hsys-t", "state": "absent_from_fstab", "fstab": fs}),
        )
        .await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "# x\n");
    }
}
