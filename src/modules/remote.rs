//! Shell snippets shared by the file modules: read a path's state in one round trip, write a file
//! atomically (temp file in the same folder, owner/mode set, optional backup and validate, then
//! rename), and build diffs.

use super::core::FileDiff;
use crate::transport::shell_quote;

/// Largest file whose content is read back for a diff (Ansible's max_diff_size is 104448).
pub const MAX_DIFF: u64 = 104_448;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Absent,
    File,
    Directory,
    Link,
    Other,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Absent => "absent",
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Link => "link",
            Kind::Other => "other",
        }
    }
}

/// A path on the host as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathState {
    pub kind: Kind,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub link_target: Option<String>,
    pub checksum: Option<String>,
    /// The content, when asked for and not larger than the limit.
    pub content: Option<Vec<u8>>,
    /// Whether the parent folder exists.
    pub parent_exists: bool,
}

impl PathState {
    pub fn exists(&self) -> bool {
        self.kind != Kind::Absent
    }
    pub fn mode_str(&self) -> String {
        format!("{:04o}", self.mode)
    }
}

/// What the probe should read besides type/mode/owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Want {
    pub checksum: bool,
    /// Read the content of a regular file up to this many bytes (0: never).
    pub content_limit: u64,
}

impl Want {
    /// Whether a probe that read `self` read all that `other` asks for.
    pub fn covers(self, other: Want) -> bool {
        (self.checksum || !other.checksum) && self.content_limit >= other.content_limit
    }
}

/// A shell snippet printing the state of `path`, to be parsed by [`parse_probe`]. Several snippets
/// may run in one command, each prefixed by its own tag.
pub fn probe_script(path: &str, want: Want) -> String {
    snippet(path, want, "hlv=$(stat -c '%a %U %G %s %u %g' \"$p\")")
}

/// The probe of one path; `stat` is the shell text that sets `hlv` to the path's
/// `MODE OWNER GROUP SIZE UID GID`.
fn snippet(path: &str, want: Want, stat: &str) -> String {
    // Few processes: on a small target each one costs more than the round trip. The parent folder
    // is named here rather than by `dirname`; `stat` runs once; a file whose content is read has
    // its checksum computed by the controller rather than by `sha1sum`.
    let q = shell_quote(path);
    let parent = shell_quote(&parent_of(path));
    let mut s = format!(
        "p={q}; if [ -L \"$p\" ]; then t=link; elif [ -d \"$p\" ]; then t=directory; \
         elif [ -f \"$p\" ]; then t=file; elif [ -e \"$p\" ]; then t=other; else t=absent; fi; \
         if [ -d {parent} ]; then par=1; else par=0; fi; \
         if [ $t = absent ]; then s='absent 0 - - 0 0 0'; else \
         {stat}; s=\"$t $hlv\"; fi; echo \"HLSTAT $s $par\"; set -- $s; \
         if [ $t = link ]; then printf 'HLLINK %s\\n' \"$(readlink \"$p\")\"; fi; "
    );
    let limit = want.content_limit;
    // A small file is read with the shell's own `read` (no process: on a small target a fork
    // costs more than a few hundred one-byte reads); the result counts only when its length is
    // the file's size (a missing final newline or a NUL byte makes it differ), else the usual
    // way below reads it. LC_ALL=C makes ${#c} count bytes.
    if want.checksum || limit > 0 {
        s.push_str(&format!(
            "b=; if [ $t = file ] && [ \"$5\" -le {SMALL_READ} ]; then c=; \
             while IFS= read -r l; do c=\"$c$l\n\"; done < \"$p\"; \
             LC_ALL=C; if [ ${{#c}} = \"$5\" ]; then b=1; echo HLDATA; printf '%s' \"$c\"; fi; fi; \
             if [ -z \"$b\" ]; then "
        ));
    }
    if want.checksum {
        let cond = if limit > 0 {
            format!(" && [ \"$5\" -gt {limit} ]")
        } else {
            String::new()
        };
        s.push_str(&format!(
            "if [ $t = file ]{cond}; then echo \"HLSUM $(sha1sum < \"$p\")\"; fi; "
        ));
    }
    if limit > 0 {
        s.push_str(&format!(
            "if [ $t = file ] && [ \"$5\" -le {limit} ]; then echo HLDATA; cat \"$p\"; fi; "
        ));
    }
    if want.checksum || limit > 0 {
        s.push_str("fi; ");
    }
    s
}

/// One command probing several paths (as [`probe_script`] each) with a single `stat` process for
/// all of them; each path's output ends with a line `TOKEN INDEX`. See [`parse_many`].
pub fn probe_many_script(paths: &[(String, Want)], token: &str) -> String {
    let list: Vec<String> = paths.iter().map(|(p, _)| shell_quote(p)).collect();
    // One stat for the paths that exist (none: no process). `hls P` finds P's line in its output
    // (`%n`, the name, is last: a line ends with " P"); a path it cannot find there (a name with
    // a newline, or a race) is stat'ed alone.
    let mut s = format!(
        "NL='\n'; set --; for p in {}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then \
         set -- \"$@\" \"$p\"; fi; done; S=; \
         if [ $# -gt 0 ]; then S=$(stat -c '%a %U %G %s %u %g %n' -- \"$@\" 2>/dev/null); fi; \
         hls() {{ hlv=; r=$S; while [ -n \"$r\" ]; do l=${{r%%\"$NL\"*}}; r=${{r#\"$l\"}}; \
         r=${{r#\"$NL\"}}; if [ \"${{l#* * * * * * }}\" = \"$1\" ]; then hlv=${{l%\" $1\"}}; \
         return; fi; done; }}; ",
        list.join(" ")
    );
    for (i, (path, want)) in paths.iter().enumerate() {
        s.push_str(&snippet(
            path,
            *want,
            "hls \"$p\"; [ -n \"$hlv\" ] || hlv=$(stat -c '%a %U %G %s %u %g' \"$p\")",
        ));
        s.push_str(&format!("printf '\\n%s {i}\\n' {token}; "));
    }
    s
}

/// Parses what [`probe_many_script`] printed for `n` paths.
pub fn parse_many(out: &[u8], n: usize, token: &str) -> Result<Vec<PathState>, String> {
    let mut states = Vec::with_capacity(n);
    let mut rest = out;
    for i in 0..n {
        let mark = format!("\n{token} {i}\n");
        let at = find(rest, mark.as_bytes())
            .ok_or_else(|| format!("the host did not report path {} of {n}", i + 1))?;
        states.push(parse_probe(&rest[..at])?);
        rest = &rest[at + mark.len()..];
    }
    Ok(states)
}

/// Files up to this size are read by the probe with shell builtins (see [`probe_script`]).
const SMALL_READ: u64 = 2048;

/// The folder a path is in, as `dirname` would print it.
pub fn parent_of(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    match trimmed.rfind('/') {
        None => ".".into(),
        Some(i) => {
            let d = trimmed[..i].trim_end_matches('/');
            if d.is_empty() {
                "/".into()
            } else {
                d.to_string()
            }
        }
    }
}

/// Parses what [`probe_script`] printed.
pub fn parse_probe(out: &[u8]) -> Result<PathState, String> {
    let (head, data) = match find(out, b"HLDATA\n") {
        Some(i) => (&out[..i], Some(out[i + 7..].to_vec())),
        None => (out, None),
    };
    let head = String::from_utf8_lossy(head);
    let mut st = None;
    let mut link = None;
    let mut sum = None;
    for line in head.lines() {
        if let Some(rest) = line.strip_prefix("HLSTAT ") {
            let f: Vec<&str> = rest.split(' ').collect();
            if f.len() != 8 {
                return Err(format!("unexpected probe output: {line}"));
            }
            let kind = match f[0] {
                "absent" => Kind::Absent,
                "file" => Kind::File,
                "directory" => Kind::Directory,
                "link" => Kind::Link,
                _ => Kind::Other,
            };
            let num = |s: &str| s.parse::<u64>().unwrap_or(0);
            st = Some(PathState {
                kind,
                mode: u32::from_str_radix(f[1], 8).unwrap_or(0),
                owner: f[2].to_string(),
                group: f[3].to_string(),
                size: num(f[4]),
                uid: num(f[5]) as u32,
                gid: num(f[6]) as u32,
                link_target: None,
                checksum: None,
                content: None,
                parent_exists: f[7] == "1",
            });
        } else if let Some(rest) = line.strip_prefix("HLLINK ") {
            link = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("HLSUM ") {
            // `sha1sum < FILE` prints "HASH  -".
            sum = rest.split_whitespace().next().map(str::to_string);
        }
    }
    let mut st = st.ok_or_else(|| format!("the host did not report the path's state: {head}"))?;
    st.link_target = link;
    // A file read whole has its checksum computed here.
    st.checksum = sum.or_else(|| data.as_deref().map(super::copy::sha1_hex));
    st.content = data;
    Ok(st)
}

/// How to write a file.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts<'a> {
    /// Octal or symbolic mode (as `chmod` takes it).
    pub mode: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    /// Keep a timestamped copy of the old file (`backup: yes`); its path is printed as HLBACKUP.
    pub backup: bool,
    /// A command with `%s` for the temp file, run before the rename (`validate:`).
    pub validate: Option<&'a str>,
    /// The destination as it is now (its mode and owner are kept unless given).
    pub existing: Option<&'a PathState>,
}

/// A script that writes stdin to `path` atomically. On any failure the temp file is removed and
/// `path` is left as it was.
pub fn write_script(path: &str, o: &WriteOpts<'_>) -> String {
    write_script_with(path, o, None)
}

/// Like [`write_script`]; with `inline`, the content is in the script itself (written by the
/// shell's `printf`, no process) instead of read from stdin.
fn write_script_with(path: &str, o: &WriteOpts<'_>, inline: Option<&str>) -> String {
    let q = shell_quote(path);
    let temp = shell_quote(&format!(
        "{}/.homelab-tmp.{}",
        parent_of(path).trim_end_matches('/'),
        &crate::transport::shell::random_token()[4..16]
    ));
    let octal = o
        .mode
        .filter(|m| !m.is_empty() && m.bytes().all(|b| (b'0'..=b'7').contains(&b)));
    let existing = o.existing.filter(|e| e.kind == Kind::File);
    // The mode the file ends with, when the temp file can simply be created with it (a mode
    // within 0666, set through the umask): no chmod process. Otherwise the temp file is private
    // (umask 077) while written, and chmod gives it its mode.
    let create_mode: Option<Option<u32>> = match (octal, existing) {
        (Some(m), _) => u32::from_str_radix(m, 8)
            .ok()
            .filter(|m| m & !0o666 == 0)
            .map(Some),
        (None, Some(e)) => Some(e.mode & 0o7777).filter(|m| m & !0o666 == 0).map(Some),
        // A new file without a mode: the login's umask decides, as it would for `cat > file`.
        (None, None) => Some(None),
    };
    // The umask is changed only for the temp file's creation, and put back (which needs a
    // subshell to read it first) only when a validate command runs afterwards.
    let create_umask = match create_mode {
        Some(Some(m)) => format!("umask {:03o} && ", !m & 0o777),
        Some(None) => String::new(),
        None => "umask 077 && ".to_string(),
    };
    let restore = !create_umask.is_empty() && o.validate.is_some();
    // The temp file is created exclusively (noclobber).
    let writer = match inline {
        Some(text) => format!("printf '%s' {}", shell_quote(text)),
        None => "cat".to_string(),
    };
    let mut steps = vec![format!(
        "{}{create_umask}set -C && {writer} > \"$t\" && set +C{}",
        if restore { "um=$(umask) && " } else { "" },
        if restore { " && umask \"$um\"" } else { "" }
    )];
    if let Some(e) = existing {
        // The file keeps its owner; no chown when the temp file already has it (both owned by
        // this user and group: test's -O and -G are builtins).
        steps.push(format!(
            "{{ {{ [ -O {q} ] && [ -G {q} ] && [ -O \"$t\" ] && [ -G \"$t\" ]; }} || chown {}:{} \"$t\"; }}",
            e.uid, e.gid
        ));
        if octal.is_none() && create_mode.is_none() {
            steps.push(format!("chmod {:o} \"$t\"", e.mode));
        }
    }
    if o.owner.is_some() || o.group.is_some() {
        steps.push(format!(
            "chown {}{} \"$t\"",
            o.owner.map(shell_quote).unwrap_or_default(),
            o.group
                .map(|g| format!(":{}", shell_quote(g)))
                .unwrap_or_default()
        ));
    }
    if let Some(m) = o.mode {
        if !matches!(create_mode, Some(Some(_))) || octal.is_none() {
            steps.push(format!("chmod {} \"$t\"", shell_quote(m)));
        }
    }
    if let Some(v) = o.validate {
        let cmd = v.replace("%s", "\"$t\"");
        steps.push(format!(
            "{{ {cmd} >&2 || {{ echo \"homelab: validation failed: \"{} >&2; false; }}; }}",
            shell_quote(v)
        ));
    }
    if o.backup {
        steps.push(format!(
            "if [ -f {q} ]; then b={q}.$(date +%Y-%m-%d@%H:%M:%S~) && cp -p {q} \"$b\" && echo \"HLBACKUP $b\"; fi"
        ));
    }
    steps.push(format!("mv -f \"$t\" {q}"));
    format!(
        "t={temp}; trap 'rm -f \"$t\"' EXIT INT TERM HUP; \
         {} && trap - EXIT",
        steps.join(" && ")
    )
}

/// Writes `data` to `path` on the host (atomically, see [`write_script`]), creating the parent
/// folder first when `mkdir_parent`. Returns the backup's path when one was made.
pub async fn write_file(
    ctx: &super::core::TaskCtx<'_>,
    path: &str,
    data: Vec<u8>,
    opts: &WriteOpts<'_>,
    mkdir_parent: bool,
) -> Result<Option<String>, super::core::ModuleError> {
    let mut script = String::new();
    if mkdir_parent {
        let parent = std::path::Path::new(path)
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| ".".into());
        script.push_str(&format!("mkdir -p -- {} && ", shell_quote(&parent)));
    }
    // Small text goes inside the command (printf, a shell builtin): no base64 or cat process
    // on the host. Anything else (binary, NUL bytes, large) streams through stdin.
    let inline = (data.len() <= INLINE_MAX && !data.contains(&0))
        .then(|| std::str::from_utf8(&data).ok())
        .flatten();
    script.push_str(&write_script_with(path, opts, inline));
    let stdin = if inline.is_some() {
        None
    } else {
        Some(data.clone())
    };
    let out = ctx.exec_write(script, stdin).await?;
    if !out.success() {
        return Err(super::core::ModuleError::Failed(format!(
            "could not write {path}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(backup_path(&out.stdout))
}

/// Content up to this size, valid UTF-8 without NUL bytes, is written from the command itself.
const INLINE_MAX: usize = 64 * 1024;

/// The backup path a write reported, if any.
pub fn backup_path(stdout: &[u8]) -> Option<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|l| l.strip_prefix("HLBACKUP ").map(str::to_string))
}

fn is_binary(b: &[u8]) -> bool {
    b.contains(&0) || std::str::from_utf8(b).is_err()
}

/// The content diff for `path`, skipped (with a note) for binary or huge files.
pub fn file_diff(path: &str, before: Option<&[u8]>, before_size: u64, after: &[u8]) -> FileDiff {
    let mut d = FileDiff {
        before_header: path.to_string(),
        after_header: path.to_string(),
        ..Default::default()
    };
    if before_size > MAX_DIFF || after.len() as u64 > MAX_DIFF {
        d.skipped = Some(format!("diff skipped: file larger than {MAX_DIFF} bytes"));
        return d;
    }
    if before.is_some_and(is_binary) || is_binary(after) {
        d.skipped = Some("diff skipped: binary content".into());
        return d;
    }
    d.before = before
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    d.after = String::from_utf8_lossy(after).into_owned();
    d
}

/// The diff of a file made, changed or removed: a side where the file does not exist (`None`)
/// is headed `/dev/null`, as `diff -N` and git show it.
pub fn edit_diff(path: &str, before: Option<&[u8]>, after: Option<&[u8]>) -> FileDiff {
    let size = before.map(|b| b.len() as u64).unwrap_or(0);
    let mut d = file_diff(path, before, size, after.unwrap_or(b""));
    if before.is_none() {
        d.before_header = "/dev/null".into();
    }
    if after.is_none() {
        d.after_header = "/dev/null".into();
    }
    d
}

/// Removes a file on the host (nothing when it is already gone).
pub async fn remove_file(
    ctx: &super::core::TaskCtx<'_>,
    path: &str,
) -> Result<(), super::core::ModuleError> {
    let out = ctx.exec(format!("rm -f -- {}", shell_quote(path))).await?;
    if !out.success() {
        return Err(super::core::ModuleError::Failed(format!(
            "could not remove {path} on {}: {}",
            ctx.host,
            out.stderr_str().trim()
        )));
    }
    Ok(())
}

/// A state diff (Ansible's file module shows `{path, state, mode...}` before and after).
pub fn state_diff(path: &str, before: &[(&str, String)], after: &[(&str, String)]) -> FileDiff {
    let render = |kv: &[(&str, String)]| {
        let mut m = serde_json::Map::new();
        m.insert("path".into(), path.into());
        for (k, v) in kv {
            m.insert((*k).into(), v.clone().into());
        }
        serde_json::to_string_pretty(&m).unwrap_or_default() + "\n"
    };
    FileDiff {
        before_header: path.to_string(),
        after_header: path.to_string(),
        before: render(before),
        after: render(after),
        skipped: None,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalConnection;
    use crate::transport::{Connection, ExecRequest};

    async fn sh(
        c: &Connection,
        cmd: String,
        stdin: Option<Vec<u8>>,
    ) -> crate::transport::ExecOutput {
        let mut r = ExecRequest::new(cmd);
        r.stdin = stdin;
        c.exec(&r).await.unwrap()
    }

    #[tokio::test]
    async fn one_command_probes_many_paths_as_one_probe_each_would() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let c = Connection::Local(LocalConnection::new("t"));
        let base = d.path();
        std::fs::write(base.join("small"), "a b\nc\n").unwrap();
        std::fs::write(base.join("big"), "x".repeat(5000)).unwrap();
        std::fs::write(base.join("with space"), "s\n").unwrap();
        std::fs::write(base.join("nl\nname"), "n\n").unwrap();
        std::fs::set_permissions(base.join("small"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::create_dir(base.join("dir")).unwrap();
        std::os::unix::fs::symlink("small", base.join("link")).unwrap();
        let names = [
            "small",
            "big",
            "with space",
            "nl\nname",
            "dir",
            "link",
            "absent",
            "dir/none/x",
            "small",
        ];
        let wants = [
            Want::default(),
            Want {
                checksum: true,
                content_limit: 0,
            },
            Want {
                checksum: false,
                content_limit: 1 << 20,
            },
        ];
        let batch: Vec<(String, Want)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (base.join(n).display().to_string(), wants[i % 3]))
            .collect();
        let token = crate::transport::shell::random_token();
        let out = sh(&c, probe_many_script(&batch, &token), None).await;
        let many = parse_many(&out.stdout, batch.len(), &token).unwrap();
        assert_eq!(many.len(), names.len());
        for ((path, want), got) in batch.iter().zip(&many) {
            let one = sh(&c, probe_script(path, *want), None).await;
            assert_eq!(got, &parse_probe(&one.stdout).unwrap(), "{path}");
        }
        assert_eq!(many[0].mode, 0o640);
        assert_eq!(many[4].kind, Kind::Directory);
        assert_eq!(many[5].link_target.as_deref(), Some("small"));
        assert_eq!(many[6].kind, Kind::Absent);
        assert!(!many[7].parent_exists);
        // Output cut short: an error, not a wrong state.
        let cut = &out.stdout[..out.stdout.len() / 2];
        assert!(parse_many(cut, batch.len(), &token).is_err());
    }

    #[tokio::test]
    async fn small_files_are_read_exactly_or_not_at_all() {
        let d = tempfile::tempdir().unwrap();
        let c = Connection::Local(crate::transport::local::LocalConnection::new("t"));
        let cases: [&[u8]; 6] = [
            "héllo wörld\n\tx\\n y  \n".as_bytes(),
            b"no final newline",
            b"a\0b\n",
            b"\n\n",
            b"",
            b"-n -e\n%s %d\n",
        ];
        for (i, data) in cases.iter().enumerate() {
            let p = d.path().join(format!("f{i}"));
            std::fs::write(&p, data).unwrap();
            let path = p.display().to_string();
            // Checksum only: the builtin read (or sha1sum) gives the right checksum.
            let want = Want {
                checksum: true,
                content_limit: 0,
            };
            let out = sh(&c, probe_script(&path, want), None).await;
            let st = parse_probe(&out.stdout).unwrap();
            assert_eq!(
                st.checksum.as_deref(),
                Some(super::super::copy::sha1_hex(data).as_str()),
                "case {i}"
            );
            if let Some(content) = &st.content {
                assert_eq!(
                    content.as_slice(),
                    *data,
                    "case {i}: content read inexactly"
                );
            }
            // Content wanted: exact bytes, whichever way they were read.
            let want = Want {
                checksum: true,
                content_limit: 1 << 20,
            };
            let out = sh(&c, probe_script(&path, want), None).await;
            let st = parse_probe(&out.stdout).unwrap();
            assert_eq!(st.content.as_deref(), Some(*data), "case {i}");
        }
    }

    #[tokio::test]
    async fn inline_and_streamed_writes_give_exact_bytes_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let c = Connection::Local(LocalConnection::new("t"));
        let script = |path: &str, o: &WriteOpts<'_>, data: &[u8]| {
            let inline = (data.len() <= INLINE_MAX && !data.contains(&0))
                .then(|| std::str::from_utf8(data).ok())
                .flatten();
            (
                write_script_with(path, o, inline),
                inline.is_none().then(|| data.to_vec()),
            )
        };
        let cases: [(&[u8], Option<&str>, u32); 5] = [
            // inline text, a mode within 0666: created with it (no chmod)
            (b"it's \"quoted\" $HOME `x` \\n %s\n", Some("0640"), 0o640),
            // an executable mode needs chmod
            ("#!/bin/sh\necho héllo\n".as_bytes(), Some("0755"), 0o755),
            // binary (NUL) streams through stdin
            (b"a\0b", Some("0600"), 0o600),
            // symbolic modes go through chmod
            (b"x\n", Some("u=rw,go=r"), 0o644),
            // no final newline
            (b"no newline", Some("0444"), 0o444),
        ];
        for (i, (data, mode, want)) in cases.iter().enumerate() {
            let p = d.path().join(format!("f{i}")).display().to_string();
            let o = WriteOpts {
                mode: *mode,
                ..Default::default()
            };
            let (cmd, stdin) = script(&p, &o, data);
            let out = sh(&c, cmd, stdin).await;
            assert!(out.success(), "case {i}: {}", out.stderr_str());
            assert_eq!(std::fs::read(&p).unwrap(), *data, "case {i}");
            let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
            assert_eq!(m, *want, "case {i}: mode {m:o}");
        }
        // Rewriting without a mode keeps the file's mode.
        let p = d.path().join("f2").display().to_string();
        let st =
            parse_probe(&sh(&c, probe_script(&p, Want::default()), None).await.stdout).unwrap();
        let o = WriteOpts {
            existing: Some(&st),
            ..Default::default()
        };
        let (cmd, stdin) = script(&p, &o, b"new\n");
        assert!(sh(&c, cmd, stdin).await.success());
        let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(m, 0o600);
        // No temp file left behind.
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("homelab-tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn a_rewritten_file_keeps_its_owner_and_group() {
        use std::os::unix::fs::MetadataExt;
        if !nix_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let c = Connection::Local(LocalConnection::new("t"));
        let want = Want::default();
        for (i, ids) in [None, Some((1234, 2345)), Some((0, 2345)), Some((1234, 0))]
            .into_iter()
            .enumerate()
        {
            let path = d.path().join(format!("f{i}"));
            std::fs::write(&path, "old\n").unwrap();
            if let Some((u, g)) = ids {
                std::os::unix::fs::chown(&path, Some(u), Some(g)).unwrap();
            }
            let p = path.display().to_string();
            let st = parse_probe(&sh(&c, probe_script(&p, want), None).await.stdout).unwrap();
            let opts = WriteOpts {
                existing: Some(&st),
                ..Default::default()
            };
            let o = sh(&c, write_script_with(&p, &opts, Some("new\n")), None).await;
            assert!(o.success(), "{}", o.stderr_str());
            let m = std::fs::metadata(&path).unwrap();
            let (u, g) = ids.unwrap_or((0, 0));
            assert_eq!((m.uid(), m.gid()), (u, g), "case {i}");
            assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        }
    }

    fn nix_root() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n")
    }

    #[tokio::test]
    async fn probe_and_atomic_write_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let c = Connection::Local(LocalConnection::new("t"));
        let p = d.path().join("f.txt").display().to_string();
        let want = Want {
            checksum: true,
            content_limit: MAX_DIFF,
        };
        let st = parse_probe(&sh(&c, probe_script(&p, want), None).await.stdout).unwrap();
        assert_eq!(st.kind, Kind::Absent);
        assert!(st.parent_exists);

        let o = sh(
            &c,
            write_script(
                &p,
                &WriteOpts {
                    mode: Some("0640"),
                    ..Default::default()
                },
            ),
            Some(b"one\ntwo\n".to_vec()),
        )
        .await;
        assert!(o.success(), "{}", o.stderr_str());
        let st = parse_probe(&sh(&c, probe_script(&p, want), None).await.stdout).unwrap();
        assert_eq!((st.kind, st.mode, st.size), (Kind::File, 0o640, 8));
        assert_eq!(st.content.as_deref(), Some(&b"one\ntwo\n"[..]));
        assert_eq!(
            st.checksum.as_deref(),
            Some("c708d7ef841f7e1748436b8ef5670d0b2de1a227")
        );

        // A failing validate leaves the old content and no temp file; the mode is kept on rewrite.
        let o = sh(
            &c,
            write_script(
                &p,
                &WriteOpts {
                    validate: Some("grep -q never %s"),
                    existing: Some(&st),
                    ..Default::default()
                },
            ),
            Some(b"new\n".to_vec()),
        )
        .await;
        assert!(!o.success());
        assert!(
            o.stderr_str().contains("validation failed"),
            "{}",
            o.stderr_str()
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\n");
        let o = sh(
            &c,
            write_script(
                &p,
                &WriteOpts {
                    backup: true,
                    existing: Some(&st),
                    ..Default::default()
                },
            ),
            Some(b"new\n".to_vec()),
        )
        .await;
        assert!(o.success(), "{}", o.stderr_str());
        let b = backup_path(&o.stdout).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"one\ntwo\n");
        let st2 = parse_probe(&sh(&c, probe_script(&p, want), None).await.stdout).unwrap();
        assert_eq!(st2.mode, 0o640);
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(".homelab-tmp")),
            "{names:?}"
        );

        // Links and folders.
        let l = d.path().join("l").display().to_string();
        std::os::unix::fs::symlink("f.txt", &l).unwrap();
        let st = parse_probe(&sh(&c, probe_script(&l, want), None).await.stdout).unwrap();
        assert_eq!(
            (st.kind, st.link_target.as_deref()),
            (Kind::Link, Some("f.txt"))
        );
        let st = parse_probe(
            &sh(
                &c,
                probe_script(&d.path().display().to_string(), want),
                None,
            )
            .await
            .stdout,
        )
        .unwrap();
        assert_eq!(st.kind, Kind::Directory);
    }

    #[test]
    fn edit_diffs_head_a_missing_side_dev_null() {
        let made = edit_diff("/etc/x", None, Some(b"a\n"));
        assert_eq!(
            (made.before_header.as_str(), made.after_header.as_str()),
            ("/dev/null", "/etc/x")
        );
        assert_eq!((made.before.as_str(), made.after.as_str()), ("", "a\n"));
        let gone = edit_diff("/etc/x", Some(b"a\n"), None);
        assert_eq!(
            (gone.before_header.as_str(), gone.after_header.as_str()),
            ("/etc/x", "/dev/null")
        );
        let changed = edit_diff("/etc/x", Some(b"a\n"), Some(b"b\n"));
        assert_eq!(changed.before_header, changed.after_header);
    }

    #[test]
    fn diffs_skip_binary_and_huge() {
        assert!(file_diff("/x", Some(b"a\0b"), 3, b"c").skipped.is_some());
        assert!(file_diff("/x", None, 0, &vec![b'a'; 200_000])
            .skipped
            .is_some());
        let d = file_diff("/x", Some(b"a\n"), 2, b"b\n");
        assert_eq!((d.before.as_str(), d.after.as_str()), ("a\n", "b\n"));
    }
}
