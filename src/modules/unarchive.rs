//! `unarchive`: unpack a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip archive into an existing
//! folder on the host. The archive is on the controller (uploaded through the task's stdin), or
//! on the host with `remote_src: true`.
//!
//! Idempotence rule: the probe lists the archive ON THE HOST (`tar -tv --full-time` from stdin,
//! or `unzip -ZlT` of a temp copy that is removed in the same command) and `stat`s every listed
//! path under dest, in one round trip. Nothing is unpacked when every entry exists there with the
//! same type and, for files, the same size and (tar only) the same modification time, and the
//! mode/owner/group asked for already hold. `creates:` short-cuts all of this: when that path
//! exists, nothing is done. Entries matching `exclude` are ignored both ways.

use super::core::{boolish, FileDiff, Module, ModuleError, TaskCtx, TaskResult};
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub src: String,
    pub dest: String,
    #[serde(default, with = "boolish")]
    pub remote_src: bool,
    /// Ansible's old spelling: `copy: no` means remote_src.
    #[serde(default, with = "boolish::option")]
    pub copy: Option<bool>,
    pub creates: Option<String>,
    #[serde(default)]
    pub extra_opts: Option<Value>,
    #[serde(default, deserialize_with = "super::core::modeish::option")]
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    #[serde(default, with = "boolish")]
    pub list_files: bool,
    #[serde(default)]
    pub exclude: Option<Value>,
    #[serde(default, with = "boolish")]
    pub keep_newer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    Zip,
}

/// The format from the file name.
pub fn format_of(src: &str) -> Result<Format, String> {
    let s = src.to_ascii_lowercase();
    if s.ends_with(".zip") {
        Ok(Format::Zip)
    } else if [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz",
    ]
    .iter()
    .any(|e| s.ends_with(e))
    {
        Ok(Format::Tar)
    } else {
        Err(format!(
            "cannot tell the archive format of {src}: supported are .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz and .zip"
        ))
    }
}

/// tar's decompression flag for the file name (needed when the archive comes on stdin).
pub fn tar_flag(src: &str) -> &'static str {
    let s = src.to_ascii_lowercase();
    if s.ends_with(".gz") || s.ends_with(".tgz") {
        "-z "
    } else if s.ends_with(".bz2") || s.ends_with(".tbz2") || s.ends_with(".tbz") {
        "-j "
    } else if s.ends_with(".xz") || s.ends_with(".txz") {
        "-J "
    } else {
        ""
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                o => o.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => shlex::split(s).unwrap_or_else(|| vec![s.clone()]),
        Some(o) => vec![o.to_string()],
    }
}

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// 'f' file, 'd' folder, 'l' symlink, 'h' hard link, 'o' other.
    pub kind: char,
    pub size: u64,
    /// Seconds since the epoch (tar only).
    pub mtime: Option<i64>,
}

/// Splits off `n` whitespace-separated fields; the rest of the line is returned whole.
fn fields(line: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut rest = line.trim_start();
    let mut out = vec![];
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        out.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    Some((out, rest))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` and `HH:MM:SS` (UTC) as epoch seconds.
fn epoch(date: &str, time: &str) -> Option<i64> {
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.split('.').next().and_then(|x| x.parse().ok()))
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    Some(days_from_civil(d[0], d[1], d[2]) * 86400 + t[0] * 3600 + t[1] * 60 + t[2])
}

/// Parses `TZ=UTC tar -tv --full-time` lines.
pub fn parse_tar_listing(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|l| {
            let (f, name) = fields(l, 5)?;
            let kind = match f[0].chars().next()? {
                '-' => 'f',
                'd' => 'd',
                'l' => 'l',
                'h' => 'h',
                _ => 'o',
            };
            let name = match kind {
                'l' => name.split(" -> ").next().unwrap_or(name),
                'h' => name.split(" link to ").next().unwrap_or(name),
                _ => name,
            };
            Some(Entry {
                name: name.to_string(),
                kind,
                size: f[2].parse().ok()?,
                mtime: epoch(f[3], f[4]),
            })
        })
        .collect()
}

/// Parses `unzip -ZlT` lines.
pub fn parse_zip_listing(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|l| {
            let (f, name) = fields(l, 8)?;
            let dt = f[7];
            if dt.len() != 15 || dt.as_bytes()[8] != b'.' {
                return None;
            }
            let kind = match f[0].chars().next()? {
                'd' => 'd',
                'l' => 'l',
                _ if name.ends_with('/') => 'd',
                _ => 'f',
            };
            Some(Entry {
                name: name.to_string(),
                kind,
                size: f[3].parse().ok()?,
                mtime: None,
            })
        })
        .collect()
}

/// A path under dest as `stat -c '%F|%s|%Y|%a|%U|%G|%u|%g|%n'` printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Have {
    pub kind: char,
    pub size: u64,
    pub mtime: i64,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub uid: String,
    pub gid: String,
}

pub fn parse_stat(text: &str) -> std::collections::HashMap<String, Have> {
    let mut m = std::collections::HashMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.splitn(9, '|').collect();
        if f.len() != 9 {
            continue;
        }
        let kind = match f[0] {
            "regular file" | "regular empty file" => 'f',
            "directory" => 'd',
            "symbolic link" => 'l',
            _ => 'o',
        };
        m.insert(
            f[8].trim_end_matches('/').to_string(),
            Have {
                kind,
                size: f[1].parse().unwrap_or(0),
                mtime: f[2].parse().unwrap_or(0),
                mode: u32::from_str_radix(f[3], 8).unwrap_or(0),
                owner: f[4].into(),
                group: f[5].into(),
                uid: f[6].into(),
                gid: f[7].into(),
            },
        );
    }
    m
}

/// Shell-style pattern match (`*`, `?`), on the whole name: the same rule as ssh_config's.
pub use crate::transport::ssh_config::wildcard as glob;

fn excluded(name: &str, ex: &[String]) -> bool {
    let n = name.trim_end_matches('/');
    ex.iter().any(|e| {
        let e = e.trim_end_matches('/');
        glob(e, n) || n.starts_with(&format!("{e}/")) || glob(e, n.rsplit('/').next().unwrap_or(n))
    })
}

/// Why an entry must be unpacked, or None when dest already has it (pure: unit-tested).
pub fn differs(e: &Entry, have: Option<&Have>, a: &Args) -> Option<String> {
    let Some(h) = have else {
        return Some("absent".into());
    };
    let want_kind = if e.kind == 'h' { 'f' } else { e.kind };
    if want_kind != 'o' && h.kind != want_kind {
        return Some(format!("is a {} in dest", kind_name(h.kind)));
    }
    if e.kind == 'f' {
        if h.size != e.size {
            return Some(format!(
                "size {} in dest, {} in the archive",
                h.size, e.size
            ));
        }
        if let Some(t) = e.mtime {
            let newer_ok = a.keep_newer && h.mtime >= t;
            if h.mtime != t && !newer_ok {
                return Some("modification time differs".into());
            }
        }
    }
    if e.kind != 'l' {
        if let Some(m) = &a.mode {
            match super::file::resolve_mode(m, h.mode, h.kind == 'd') {
                Ok(w) if w == h.mode => {}
                _ => return Some(format!("mode {:04o}", h.mode)),
            }
        }
        let ne = |want: &Option<String>, name: &str, id: &str| {
            want.as_deref().is_some_and(|w| w != name && w != id)
        };
        if ne(&a.owner, &h.owner, &h.uid) || ne(&a.group, &h.group, &h.gid) {
            return Some(format!("owned by {}:{}", h.owner, h.group));
        }
    }
    None
}

fn kind_name(k: char) -> &'static str {
    match k {
        'f' => "file",
        'd' => "directory",
        'l' => "link",
        _ => "special file",
    }
}

pub fn probe_script(a: &Args, fmt: Format, local: bool) -> String {
    let d = shell_quote(&a.dest);
    let src = shell_quote(&a.src);
    let mut s = String::from("PATH=$PATH:/usr/sbin:/sbin; ");
    if let Some(c) = &a.creates {
        s.push_str(&format!(
            "if [ -e {} ]; then echo HLCREATES; exit 0; fi; ",
            shell_quote(c)
        ));
    }
    s.push_str(&format!("if [ ! -d {d} ]; then echo HLNODEST; fi; "));
    let file = if local {
        if fmt == Format::Zip {
            s.push_str("f=$(mktemp) || exit 1; trap 'rm -f \"$f\"' EXIT; cat > \"$f\"; ");
            "\"$f\"".to_string()
        } else {
            "-".to_string()
        }
    } else {
        s.push_str(&format!(
            "if [ ! -f {src} ]; then echo HLNOSRC; exit 0; fi; "
        ));
        src
    };
    let (list, names) = match fmt {
        Format::Tar => (
            format!(
                "TZ=UTC tar -tv {}--numeric-owner --full-time -f {file}",
                tar_flag(&a.src)
            ),
            "sed -E -e 's/^([^ ]+ +){5}//' -e 's/ -> .*$//' -e 's/ link to .*$//'",
        ),
        Format::Zip => {
            s.push_str("if ! command -v unzip >/dev/null 2>&1; then echo HLNOUNZIP; exit 0; fi; ");
            (
                format!("unzip -ZlT {file}"),
                "grep -E '^[^ ]+ +[^ ]+ +[^ ]+ +[0-9]+ +[^ ]+ +[0-9]+ +[^ ]+ +[0-9]{8}\\.[0-9]{6} ' | sed -E 's/^([^ ]+ +){8}//'",
            )
        }
    };
    s.push_str(&format!(
        "l=$({list} 2>&1) || {{ printf 'HLBADARCHIVE %s\\n' \"$l\"; exit 0; }}; \
         printf '%s\\n' \"$l\" | sed 's/^/HLL /'; echo HLSTAT; \
         printf '%s\\n' \"$l\" | {names} | tr '\\n' '\\0' | \
         (cd {d} && xargs -0 -r stat -c '%F|%s|%Y|%a|%U|%G|%u|%g|%n' -- 2>/dev/null); true"
    ));
    s
}

#[derive(Debug)]
pub struct Plan {
    pub fmt: Format,
    pub skipped_creates: bool,
    pub entries: Vec<Entry>,
    /// Entries to unpack, with why.
    pub changes: Vec<(Entry, String)>,
}

pub struct Unarchive;

fn local(a: &Args) -> bool {
    !(a.remote_src || a.copy == Some(false))
}

impl Module for Unarchive {
    const NAME: &'static str = "unarchive";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let fail = |m: String| ModuleError::Failed(format!("{}: {m}", ctx.host));
        let fmt = format_of(&a.src).map_err(fail)?;
        if fmt == Format::Zip && a.keep_newer {
            return Err(fail("keep_newer is supported for tar archives only".into()));
        }
        let stdin = if local(a) {
            let p = ctx.find_file("files", &a.src)?;
            Some(
                std::fs::read(&p)
                    .map_err(|e| fail(format!("cannot read src {}: {e}", p.display())))?,
            )
        } else {
            None
        };
        let out = ctx.exec_with(probe_script(a, fmt, local(a)), stdin).await?;
        let text = out.stdout_str();
        let (head, stat) = text.split_once("HLSTAT\n").unwrap_or((&text, ""));
        let mut listing = String::new();
        for l in head.lines() {
            match l {
                "HLCREATES" => {
                    return Ok(Plan {
                        fmt,
                        skipped_creates: true,
                        entries: vec![],
                        changes: vec![],
                    })
                }
                // Check mode: an earlier task of the run may make dest (every entry is then
                // to unpack) or a remote src (which cannot be listed yet); the plan says so.
                "HLNODEST" if ctx.check => {}
                "HLNOSRC" if ctx.check => {
                    let what = &a.src;
                    return Ok(Plan {
                        fmt,
                        skipped_creates: false,
                        entries: vec![],
                        changes: vec![(
                            Entry {
                                name: what.clone(),
                                kind: 'o',
                                size: 0,
                                mtime: None,
                            },
                            "does not exist yet (an earlier task may make it)".into(),
                        )],
                    });
                }
                "HLNODEST" => {
                    return Err(fail(format!(
                        "dest {} must be an existing directory",
                        a.dest
                    )))
                }
                "HLNOSRC" => {
                    return Err(fail(format!(
                        "src {} does not exist on the host (remote_src is true)",
                        a.src
                    )))
                }
                "HLNOUNZIP" => {
                    return Err(fail(format!(
                        "unzip is not installed on {}: install the unzip package",
                        ctx.host
                    )))
                }
                _ => {}
            }
            if let Some(e) = l.strip_prefix("HLBADARCHIVE ") {
                let rest: Vec<&str> = head
                    .lines()
                    .skip_while(|x| !x.starts_with("HLBADARCHIVE "))
                    .skip(1)
                    .collect();
                return Err(fail(format!(
                    "cannot read the archive {}: {} {}",
                    a.src,
                    e,
                    rest.join(" ")
                )));
            }
            if let Some(x) = l.strip_prefix("HLL ") {
                listing.push_str(x);
                listing.push('\n');
            }
        }
        if !out.success() {
            return Err(fail(format!(
                "could not list the archive: {}",
                out.stderr_str().trim()
            )));
        }
        let entries = match fmt {
            Format::Tar => parse_tar_listing(&listing),
            Format::Zip => parse_zip_listing(&listing),
        };
        let have = parse_stat(stat);
        let ex = strings(a.exclude.as_ref());
        let changes = entries
            .iter()
            .filter(|e| !excluded(&e.name, &ex))
            .filter_map(|e| {
                differs(e, have.get(e.name.trim_end_matches('/')), a).map(|why| (e.clone(), why))
            })
            .collect();
        Ok(Plan {
            fmt,
            skipped_creates: false,
            entries,
            changes,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let mut r = TaskResult::changed(!p.changes.is_empty())
            .with("dest", a.dest.clone())
            .with("src", a.src.clone())
            .with(
                "handler",
                match p.fmt {
                    Format::Tar => "TgzArchive",
                    Format::Zip => "ZipArchive",
                },
            );
        if p.skipped_creates {
            return r.msg(format!(
                "skipped, since {} exists",
                a.creates.as_deref().unwrap_or_default()
            ));
        }
        if a.list_files {
            let files: Vec<Value> = p.entries.iter().map(|e| e.name.clone().into()).collect();
            r = r.with("files", files);
        }
        if ctx.diff && !p.changes.is_empty() {
            let mut before = String::new();
            let mut after = String::new();
            for (e, why) in p.changes.iter().take(200) {
                before.push_str(&format!("{}: {why}\n", e.name));
                after.push_str(&format!(
                    "{}: {} from the archive\n",
                    e.name,
                    kind_name(e.kind)
                ));
            }
            if p.changes.len() > 200 {
                let more = format!("... and {} more\n", p.changes.len() - 200);
                before.push_str(&more);
                after.push_str(&more);
            }
            r.diff.push(FileDiff {
                before_header: a.dest.clone(),
                after_header: format!("{} (unpacked from {})", a.dest, a.src),
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
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let d = shell_quote(&a.dest);
        let ex = strings(a.exclude.as_ref());
        let extra: Vec<String> = strings(a.extra_opts.as_ref())
            .iter()
            .map(|s| shell_quote(s))
            .collect();
        let is_local = local(a);
        let stdin = if is_local {
            let path = ctx.find_file("files", &a.src)?;
            Some(std::fs::read(&path).map_err(|e| {
                ModuleError::Failed(format!("cannot read src {}: {e}", path.display()))
            })?)
        } else {
            None
        };
        let mut s = String::from("PATH=$PATH:/usr/sbin:/sbin; ");
        match p.fmt {
            Format::Tar => {
                let file = if is_local {
                    "-".into()
                } else {
                    shell_quote(&a.src)
                };
                let mut cmd = format!("tar -x {}-f {file} -C {d}", tar_flag(&a.src));
                if a.keep_newer {
                    cmd.push_str(" --keep-newer-files");
                }
                for e in &ex {
                    cmd.push_str(&format!(" --exclude={}", shell_quote(e)));
                }
                for o in &extra {
                    cmd.push(' ');
                    cmd.push_str(o);
                }
                s.push_str(&cmd);
            }
            Format::Zip => {
                let file = if is_local {
                    s.push_str("f=$(mktemp) || exit 1; trap 'rm -f \"$f\"' EXIT; cat > \"$f\" && ");
                    "\"$f\"".to_string()
                } else {
                    shell_quote(&a.src)
                };
                let mut cmd = format!("unzip -q -o {} {file}", extra.join(" "));
                if !ex.is_empty() {
                    cmd.push_str(" -x");
                    for e in &ex {
                        cmd.push(' ');
                        cmd.push_str(&shell_quote(e));
                    }
                }
                cmd.push_str(&format!(" -d {d}"));
                s.push_str(&cmd);
            }
        }
        // Owner, group and mode on what was unpacked (its top-level names, recursively).
        let mut tops: Vec<String> = p
            .entries
            .iter()
            .filter(|e| !excluded(&e.name, &ex))
            .filter_map(|e| {
                let n = e.name.trim_start_matches("./");
                n.split('/')
                    .next()
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
            })
            .collect();
        tops.sort();
        tops.dedup();
        let names: Vec<String> = tops.iter().map(|t| shell_quote(t)).collect();
        if !names.is_empty() {
            if a.owner.is_some() || a.group.is_some() {
                s.push_str(&format!(
                    " && (cd {d} && chown -R -h {}{} -- {})",
                    a.owner.as_deref().map(shell_quote).unwrap_or_default(),
                    a.group
                        .as_deref()
                        .map(|g| format!(":{}", shell_quote(g)))
                        .unwrap_or_default(),
                    names.join(" ")
                ));
            }
            if let Some(m) = &a.mode {
                s.push_str(&format!(
                    " && (cd {d} && chmod -R {} -- {})",
                    shell_quote(m),
                    names.join(" ")
                ));
            }
        }
        let out = ctx.exec_with(s, stdin).await?;
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "{}: could not unpack {} into {}: {}",
                ctx.host,
                a.src,
                a.dest,
                out.stderr_str().trim()
            )));
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn formats() {
        assert_eq!(format_of("a.tar.gz"), Ok(Format::Tar));
        assert_eq!(format_of("a.TGZ"), Ok(Format::Tar));
        assert_eq!(format_of("a.tar.xz"), Ok(Format::Tar));
        assert_eq!(format_of("a.tar.bz2"), Ok(Format::Tar));
        assert_eq!(format_of("a.zip"), Ok(Format::Zip));
        assert!(format_of("a.rar").unwrap_err().contains("supported are"));
    }

    #[test]
    fn parses_listings() {
        let t = "drwxr-xr-x 0/0               0 2026-12-03 06:40:12 d/\n\
                 -rw-r--r-- 1000/1000        22 2026-12-03 06:40:12 d/a file.txt\n\
                 lrwxrwxrwx 0/0               0 2026-12-03 06:40:12 d/l -> a file.txt\n\
                 hrw-r--r-- 0/0               0 2026-12-03 06:40:12 d/h link to d/a file.txt\n";
        let e = parse_tar_listing(t);
        assert_eq!(e.len(), 4);
        assert_eq!(
            (e[1].name.as_str(), e[1].kind, e[1].size),
            ("d/a file.txt", 'f', 22)
        );
        assert_eq!(e[1].mtime, Some(1_796_280_012));
        assert_eq!((e[2].name.as_str(), e[2].kind), ("d/l", 'l'));
        assert_eq!((e[3].name.as_str(), e[3].kind), ("d/h", 'h'));
        assert_eq!(epoch("1970-01-01", "00:00:01"), Some(1));

        let z = "Archive:  x.zip\nZip file size: 300 bytes, number of entries: 2\n\
                 drwxr-xr-x  3.0 unx        0 bx        0 stor 20261203.064012 d/\n\
                 -rw-r--r--  3.0 unx       22 tx       20 defN 20261203.064012 d/a b.txt\n\
                 2 files, 22 bytes uncompressed, 20 bytes compressed:  9.1%\n";
        let e = parse_zip_listing(z);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].name.as_str(), e[0].kind), ("d/", 'd'));
        assert_eq!((e[1].name.as_str(), e[1].size), ("d/a b.txt", 22));
    }

    #[test]
    fn compares_entries() {
        let st = parse_stat(
            "directory|4096|1796280012|755|root|root|0|0|d/\n\
             regular file|22|1796280012|644|root|root|0|0|d/a file.txt\n",
        );
        let a = args(json!({"src": "x.tgz", "dest": "/d"}));
        let f = Entry {
            name: "d/a file.txt".into(),
            kind: 'f',
            size: 22,
            mtime: Some(1_796_280_012),
        };
        assert_eq!(differs(&f, st.get("d/a file.txt"), &a), None);
        let dir = Entry {
            name: "d/".into(),
            kind: 'd',
            size: 0,
            mtime: None,
        };
        assert_eq!(differs(&dir, st.get("d"), &a), None);
        assert_eq!(differs(&f, None, &a).as_deref(), Some("absent"));
        let mut g = f.clone();
        g.size = 23;
        assert!(differs(&g, st.get("d/a file.txt"), &a)
            .unwrap()
            .contains("size"));
        g = f.clone();
        g.mtime = Some(1_796_280_000);
        assert!(differs(&g, st.get("d/a file.txt"), &a).is_some());
        let kn = args(json!({"src": "x.tgz", "dest": "/d", "keep_newer": true}));
        assert_eq!(differs(&g, st.get("d/a file.txt"), &kn), None);
        let m = args(json!({"src": "x.tgz", "dest": "/d", "mode": "0600", "owner": "root"}));
        assert!(differs(&f, st.get("d/a file.txt"), &m)
            .unwrap()
            .contains("mode"));
        let o = args(json!({"src": "x.tgz", "dest": "/d", "owner": "www"}));
        assert!(differs(&f, st.get("d/a file.txt"), &o)
            .unwrap()
            .contains("owned"));
    }

    #[test]
    fn globs_and_excludes() {
        assert!(glob("*.log", "a.log"));
        assert!(!glob("*.log", "a.txt"));
        assert!(glob("d/?", "d/x"));
        let ex = vec!["*.log".to_string(), "skip".to_string()];
        assert!(excluded("d/x.log", &ex));
        assert!(excluded("skip/inner", &ex));
        assert!(!excluded("d/keep.txt", &ex));
        assert_eq!(
            strings(Some(&json!("--strip-components 1"))),
            ["--strip-components", "1"]
        );
        assert!(
            serde_json::from_value::<Args>(json!({"src": "a", "dest": "b", "nope": 1})).is_err()
        );
    }

    #[tokio::test]
    async fn unpacks_locally_and_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let srcdir = d.path().join("src");
        std::fs::create_dir_all(srcdir.join("top/sub")).unwrap();
        std::fs::write(srcdir.join("top/a.txt"), "a\n").unwrap();
        std::fs::write(srcdir.join("top/sub/b.log"), "b\n").unwrap();
        let archive = d.path().join("x.tar.gz");
        let st = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(&srcdir)
            .arg("top")
            .status()
            .unwrap();
        assert!(st.success());
        let dest = d.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let a = json!({"src": archive.display().to_string(), "dest": dest.display().to_string(),
            "exclude": ["*.log"], "list_files": true});
        use crate::modules::testutil::run;
        let r = run::<Unarchive>(true, a.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert!(!dest.join("top").exists(), "check mode unpacked");
        let r = run::<Unarchive>(false, a.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(
            std::fs::read_to_string(dest.join("top/a.txt")).unwrap(),
            "a\n"
        );
        assert!(!dest.join("top/sub/b.log").exists(), "excluded");
        assert!(r.data["files"].as_array().unwrap().len() >= 4);
        let r = run::<Unarchive>(false, a.clone()).await;
        assert!(!r.changed && !r.failed, "{r:?}");
        std::fs::write(dest.join("top/a.txt"), "changed!\n").unwrap();
        let r = run::<Unarchive>(false, a.clone()).await;
        assert!(r.changed, "{r:?}");
        assert_eq!(
            std::fs::read_to_string(dest.join("top/a.txt")).unwrap(),
            "a\n"
        );
        // creates: nothing done.
        let c = json!({"src": archive.display().to_string(), "dest": dest.display().to_string(),
            "creates": dest.join("top").display().to_string()});
        let r = run::<Unarchive>(false, c).await;
        assert!(!r.changed && !r.failed, "{r:?}");
        // Missing dest, a bad archive.
        let r = run::<Unarchive>(false, json!({"src": archive.display().to_string(), "dest": d.path().join("nope").display().to_string()})).await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("existing directory"),
            "{r:?}"
        );
        let bad = d.path().join("bad.tar.gz");
        std::fs::write(&bad, "not an archive").unwrap();
        let r = run::<Unarchive>(
            false,
            json!({"src": bad.display().to_string(), "dest": dest.display().to_string()}),
        )
        .await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("cannot read the archive"),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn zip_round_trip_when_zip_is_here() {
        let have = |c: &str| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !have("zip") || !have("unzip") {
            eprintln!("skipped: needs zip and unzip");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/z")).unwrap();
        std::fs::write(d.path().join("src/z/one.txt"), "one\n").unwrap();
        let st = std::process::Command::new("sh")
            .current_dir(d.path().join("src"))
            .args(["-c", "zip -qr ../x.zip z"])
            .status()
            .unwrap();
        assert!(st.success());
        let dest = d.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let a = json!({"src": d.path().join("x.zip").display().to_string(),
            "dest": dest.display().to_string()});
        use crate::modules::testutil::run;
        let r = run::<Unarchive>(false, a.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(
            std::fs::read_to_string(dest.join("z/one.txt")).unwrap(),
            "one\n"
        );
        let r = run::<Unarchive>(false, a).await;
        assert!(!r.changed && !r.failed, "{r:?}");
    }
}
