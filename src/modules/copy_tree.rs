//! `copy` of folder trees (a controller-side `src` folder) and `remote_src` (a file or folder on
//! the host), as Ansible does it:
//!
//! - `src: dir/` copies the folder's contents into `dest`; `src: dir` copies the folder itself to
//!   `dest/dir`. Missing folders are created (with `directory_mode` when given); every file is
//!   compared by SHA-1 and only missing or different files are written; `mode` applies to the
//!   files (`preserve` keeps the source's); nothing at `dest` that the source lacks is touched.
//! - `remote_src: true`: the source is read on the host; a file goes to `dest` (or
//!   `dest/basename` when `dest` is a folder or ends with `/`), a folder as above.
//!
//! Round trips: ONE probe lists the destination tree (type, mode, owner, SHA-1 of each file) and,
//! for `remote_src`, the source tree; with `--diff` the same probe returns the current content of
//! each small file whose checksum differs. Apply is one command for all folders and files: local
//! content travels base64-encoded in here-documents of a script sent on stdin (files over
//! [`BIG`] go in their own command, raw on stdin, in parallel); remote sources are copied on the
//! host. Every file is written atomically (temp file in its folder, checksum verified, renamed).

use super::core::{ModuleError, PlannedPath, TaskCtx, TaskResult};
use super::remote::{self, Kind, PathState, MAX_DIFF};
use crate::transport::shell_quote;
use std::collections::HashMap;
use std::path::Path;

/// Files larger than this are sent raw in a command of their own rather than in the batch.
pub const BIG: usize = 512 << 10;
/// A batch command carries at most about this much file content.
const BATCH: usize = 8 << 20;

/// One path in a listed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub sum: Option<String>,
}

impl Entry {
    fn state(&self) -> PathState {
        PathState {
            kind: self.kind,
            mode: self.mode,
            owner: self.owner.clone(),
            group: self.group.clone(),
            uid: self.uid,
            gid: self.gid,
            size: self.size,
            link_target: None,
            checksum: self.sum.clone(),
            content: None,
            parent_exists: true,
        }
    }
}

/// Where a file's content comes from.
#[derive(Debug, Clone)]
pub enum Content {
    Local(Vec<u8>),
    /// A path on the host (remote_src).
    Remote(String),
}

/// One source file.
#[derive(Debug, Clone)]
pub struct SrcFile {
    /// Relative to the source root ("" when the source is a single file).
    pub rel: String,
    pub content: Content,
    pub sum: String,
    pub size: u64,
    pub mode: u32,
}

/// A file to write or whose attributes to fix.
#[derive(Debug, Clone)]
pub struct FileOp {
    pub path: String,
    pub src: SrcFile,
    /// The destination as it is (None: absent).
    pub state: Option<Entry>,
    /// The destination's content, when --diff asked for it and it is small.
    pub before: Option<Vec<u8>>,
    pub content_changes: bool,
    pub attrs_change: bool,
    /// chmod argument for the file (requested, `preserve` resolved), if any.
    pub mode: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TreePlan {
    /// Where the source lands (a folder, or a file for a single remote file).
    pub root: String,
    pub remote: bool,
    /// The source is a single file (remote_src).
    pub single: bool,
    /// Folders to create, parents first.
    pub mkdirs: Vec<String>,
    /// Files that change (content or attributes).
    pub files: Vec<FileOp>,
    /// Checksum and size of a single source file (reported like a plain copy).
    pub single_sum: Option<(String, u64)>,
}

/// The options of the copy task that matter here.
pub struct Opts<'a> {
    pub dest: &'a str,
    pub src: &'a str,
    pub mode: Option<&'a str>,
    pub directory_mode: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    pub force: bool,
    pub backup: bool,
    pub validate: Option<&'a str>,
}

fn fail<T>(m: impl Into<String>) -> Result<T, ModuleError> {
    Err(ModuleError::Failed(m.into()))
}

fn join(root: &str, rel: &str) -> String {
    if rel.is_empty() {
        root.to_string()
    } else if root.ends_with('/') {
        format!("{root}{rel}")
    } else {
        format!("{root}/{rel}")
    }
}

/// `dest` without trailing slashes ("/" stays).
fn trim_dest(d: &str) -> String {
    let t = d.trim_end_matches('/');
    if t.is_empty() && d.starts_with('/') {
        "/".into()
    } else {
        t.to_string()
    }
}

fn base_name(p: &str) -> Option<String> {
    Path::new(p)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// Reads a controller-side folder: its sub-folders and files (links followed), sorted.
pub fn walk_local(dir: &Path) -> Result<(Vec<String>, Vec<SrcFile>), ModuleError> {
    fn go(
        dir: &Path,
        rel: &str,
        depth: usize,
        dirs: &mut Vec<String>,
        files: &mut Vec<SrcFile>,
    ) -> Result<(), ModuleError> {
        use std::os::unix::fs::PermissionsExt;
        if depth > 40 {
            return fail(format!(
                "{} is nested more than 40 folders deep (a symbolic link loop?)",
                dir.display()
            ));
        }
        let rd = std::fs::read_dir(dir)
            .map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", dir.display())))?;
        let mut names = vec![];
        for e in rd {
            let e =
                e.map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", dir.display())))?;
            names.push(e.file_name());
        }
        names.sort();
        for n in names {
            let p = dir.join(&n);
            let Some(name) = n.to_str() else {
                return fail(format!(
                    "{}: file names that are not UTF-8 are not supported; rename it",
                    p.display()
                ));
            };
            if name.contains('\n') {
                return fail(format!(
                    "{:?}: file names with a newline are not supported; rename it",
                    p.display()
                ));
            }
            let r = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let m = std::fs::metadata(&p).map_err(|e| {
                ModuleError::Failed(format!(
                    "cannot read {} (a broken symbolic link?): {e}",
                    p.display()
                ))
            })?;
            if m.is_dir() {
                dirs.push(r.clone());
                go(&p, &r, depth + 1, dirs, files)?;
            } else if m.is_file() {
                let data = std::fs::read(&p).map_err(|e| {
                    ModuleError::Failed(format!("cannot read {}: {e}", p.display()))
                })?;
                files.push(SrcFile {
                    rel: r,
                    sum: super::copy::sha1_hex(&data),
                    size: data.len() as u64,
                    mode: m.permissions().mode() & 0o7777,
                    content: Content::Local(data),
                });
            } else {
                return fail(format!(
                    "{} is neither a file nor a folder (a device, socket or pipe); copy cannot send it",
                    p.display()
                ));
            }
        }
        Ok(())
    }
    let mut dirs = vec![];
    let mut files = vec![];
    go(dir, "", 0, &mut dirs, &mut files)?;
    Ok((dirs, files))
}

/// Shell functions of the probe: `hl_ls TAG PATH` lists a tree (or one path) as
/// `TAG HEXMODE PERM UID GID USER GROUP SIZE NAME` lines and `TAGS SUM  NAME` checksums, names
/// relative (`.` is the path itself).
const LS: &str = r#"hl_ls() {
  if [ -d "$2" ]; then
    ( cd "$2" && { find . -exec stat -c "$1 %f %a %u %g %U %G %s %n" {} + 2>/dev/null; find . -type f -exec sha1sum {} + 2>/dev/null | sed "s/^/${1}S /"; } )
  elif [ -e "$2" ] || [ -L "$2" ]; then
    stat -c "$1 %f %a %u %g %U %G %s ." "$2"
    if [ -f "$2" ]; then echo "${1}S $(sha1sum < "$2" | cut -d' ' -f1)  ."; fi
  fi
}
hl_miss() {
  p=$1; while [ ! -e "$p" ] && [ ! -L "$p" ]; do echo "HLMISS $p"; q=$(dirname -- "$p"); [ "$q" = "$p" ] && break; p=$q; done
  if [ "$p" != "$1" ] && [ -e "$p" ] && [ ! -d "$p" ]; then echo "HLNOTDIR $p"; fi
}
"#;

/// Prints the content of a destination file whose checksum differs from the source's (for diffs).
fn show_fn() -> String {
    format!(
        r#"hl_show() {{
  [ -f "$1" ] && [ ! -L "$1" ] || return 0
  s=$(stat -c %s "$1"); [ "$s" -le {MAX_DIFF} ] || return 0
  [ "$(sha1sum < "$1" | cut -d' ' -f1)" = "$2" ] && return 0
  echo "HLDATA $s $1"; cat "$1"; echo
}}
"#
    )
}

/// What the probe found.
#[derive(Debug, Default)]
pub struct Listing {
    pub root: Option<String>,
    pub src_kind: Option<String>,
    pub missing: Vec<String>,
    pub not_dir: Option<String>,
    /// Per tag ("HLD", "HLR"): relative name → entry.
    pub trees: HashMap<String, HashMap<String, Entry>>,
    pub data: HashMap<String, Vec<u8>>,
}

fn kind_of(hex: &str) -> Kind {
    match u32::from_str_radix(hex, 16).unwrap_or(0) & 0o170000 {
        0o040000 => Kind::Directory,
        0o100000 => Kind::File,
        0o120000 => Kind::Link,
        _ => Kind::Other,
    }
}

fn rel_name(n: &str) -> String {
    if n == "." {
        String::new()
    } else {
        n.strip_prefix("./").unwrap_or(n).to_string()
    }
}

/// Parses the probe's output.
pub fn parse_listing(out: &[u8]) -> Result<Listing, String> {
    let (head, mut data) = match out
        .windows(8)
        .position(|w| w == b"\nHLDATA ")
        .map(|i| i + 1)
        .or_else(|| out.starts_with(b"HLDATA ").then_some(0))
    {
        Some(i) => (&out[..i], &out[i..]),
        None => (out, &out[out.len()..]),
    };
    let mut l = Listing::default();
    let mut sums: Vec<(String, String, String)> = vec![];
    for line in String::from_utf8_lossy(head).lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "HLROOT" => l.root = Some(rest.to_string()),
            "HLSRC" => l.src_kind = Some(rest.to_string()),
            "HLMISS" => l.missing.push(rest.to_string()),
            "HLNOTDIR" => l.not_dir = Some(rest.to_string()),
            "HLD" | "HLR" => {
                let f: Vec<&str> = rest.splitn(8, ' ').collect();
                if f.len() != 8 {
                    return Err(format!("unexpected listing line: {line}"));
                }
                let n = |s: &str| s.parse::<u64>().unwrap_or(0);
                let e = Entry {
                    kind: kind_of(f[0]),
                    mode: u32::from_str_radix(f[1], 8).unwrap_or(0),
                    uid: n(f[2]) as u32,
                    gid: n(f[3]) as u32,
                    owner: f[4].to_string(),
                    group: f[5].to_string(),
                    size: n(f[6]),
                    sum: None,
                };
                if f[7] != "." && !f[7].starts_with("./") {
                    return Err(format!(
                        "unexpected name in the listing: {line} (file names with a newline are not supported)"
                    ));
                }
                l.trees
                    .entry(tag.to_string())
                    .or_default()
                    .insert(rel_name(f[7]), e);
            }
            "HLDS" | "HLRS" => {
                // `SUM  NAME`, or `\SUM  NAME` with `\\` and `\n` escaped in NAME.
                let (escaped, r) = match rest.strip_prefix('\\') {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                if r.len() < 42 {
                    return Err(format!("unexpected checksum line: {line}"));
                }
                let sum = r[..40].to_string();
                let mut name = r[42..].to_string();
                if escaped {
                    name = name.replace("\\n", "\n").replace("\\\\", "\\");
                }
                sums.push((tag[..3].to_string(), rel_name(&name), sum));
            }
            _ => {}
        }
    }
    for (tag, name, sum) in sums {
        if let Some(e) = l.trees.get_mut(&tag).and_then(|t| t.get_mut(&name)) {
            e.sum = Some(sum);
        }
    }
    while !data.is_empty() {
        let nl = data
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated content in the probe's answer")?;
        let header = String::from_utf8_lossy(&data[..nl]).into_owned();
        let rest = header
            .strip_prefix("HLDATA ")
            .ok_or_else(|| format!("unexpected data in the probe's answer: {header}"))?;
        let (size, path) = rest
            .split_once(' ')
            .ok_or_else(|| format!("unexpected data header: {header}"))?;
        let size: usize = size
            .parse()
            .map_err(|_| format!("unexpected data header: {header}"))?;
        let body = data
            .get(nl + 1..nl + 1 + size)
            .ok_or("truncated content in the probe's answer")?;
        l.data.insert(path.to_string(), body.to_vec());
        data = data.get(nl + 2 + size..).unwrap_or_default();
    }
    Ok(l)
}

/// Adjusts a probed entry by what earlier tasks would have done (check mode).
fn overlay(ctx: &TaskCtx<'_>, path: &str, e: Option<Entry>) -> Option<Entry> {
    ctx.planned?;
    let mut st = e.as_ref().map(Entry::state).unwrap_or(PathState {
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
    ctx.overlay(path, &mut st);
    if st.kind == Kind::Absent {
        return None;
    }
    let mut out = e.unwrap_or(Entry {
        kind: st.kind,
        mode: st.mode,
        uid: 0,
        gid: 0,
        owner: String::new(),
        group: String::new(),
        size: 0,
        sum: None,
    });
    out.kind = st.kind;
    out.mode = st.mode;
    out.size = st.size;
    out.sum = st.checksum;
    Some(out)
}

fn overlay_entry(ctx: &TaskCtx<'_>, path: &str, e: Option<Entry>) -> Option<Entry> {
    if ctx.planned.is_some() {
        overlay(ctx, path, e)
    } else {
        e
    }
}

/// Plans a copy of a controller-side folder (`src` found at `dir`).
pub async fn plan_local(
    ctx: &TaskCtx<'_>,
    o: &Opts<'_>,
    dir: &Path,
) -> Result<TreePlan, ModuleError> {
    let (dirs, files) = walk_local(dir)?;
    let root = if o.src.ends_with('/') {
        trim_dest(o.dest)
    } else {
        let name = base_name(o.src)
            .ok_or_else(|| ModuleError::Failed(format!("src={} has no folder name", o.src)))?;
        join(&trim_dest(o.dest), &name)
    };
    let mut script = format!("{LS}hl_miss {q}\nhl_ls HLD {q}\n", q = shell_quote(&root));
    if ctx.diff {
        script.push_str(&show_fn());
        for f in &files {
            if f.size <= MAX_DIFF {
                script.push_str(&format!(
                    "hl_show {} {}\n",
                    shell_quote(&join(&root, &f.rel)),
                    f.sum
                ));
            }
        }
    }
    let out = ctx.exec_with("sh -s", Some(script.into_bytes())).await?;
    let l = parse_listing(&out.stdout)
        .map_err(|e| ModuleError::Failed(format!("{e}; stderr: {}", out.stderr_str().trim())))?;
    if !out.success() && l.trees.is_empty() && l.missing.is_empty() {
        return fail(format!(
            "cannot read {root} on the host: {}",
            out.stderr_str().trim()
        ));
    }
    build(ctx, o, root, false, l, "HLD", dirs, files, false)
}

/// Plans a `remote_src` copy: source and destination are both read by one probe on the host.
pub async fn plan_remote(ctx: &TaskCtx<'_>, o: &Opts<'_>) -> Result<TreePlan, ModuleError> {
    let s = shell_quote(o.src);
    let base = base_name(o.src).unwrap_or_default();
    let d = trim_dest(o.dest);
    let into = join(&d, &base);
    let dir_root = if o.src.ends_with('/') { &d } else { &into };
    let file_root = if o.dest.ends_with('/') {
        format!("D={}", shell_quote(&into))
    } else {
        format!(
            "if [ -d {dq} ]; then D={iq}; else D={dq}; fi",
            dq = shell_quote(&d),
            iq = shell_quote(&into)
        )
    };
    let script = format!(
        "{LS}if [ -d {s} ]; then echo 'HLSRC directory'; D={}; \
         elif [ -f {s} ]; then echo 'HLSRC file'; {file_root}; \
         elif [ -e {s} ]; then echo 'HLSRC other'; exit 0; \
         else echo 'HLSRC absent'; exit 0; fi\n\
         printf 'HLROOT %s\\n' \"$D\"\nhl_miss \"$D\"\nhl_ls HLD \"$D\"\nhl_ls HLR {s}\n",
        shell_quote(dir_root)
    );
    let out = ctx.exec_with("sh -s", Some(script.into_bytes())).await?;
    let l = parse_listing(&out.stdout)
        .map_err(|e| ModuleError::Failed(format!("{e}; stderr: {}", out.stderr_str().trim())))?;
    let single = match l.src_kind.as_deref() {
        Some("directory") => false,
        Some("file") => true,
        Some("other") => {
            return fail(format!(
                "src={} on the host is neither a file nor a folder",
                o.src
            ))
        }
        Some(_) => {
            return fail(format!(
                "src={} does not exist on the host (remote_src: true reads src there; drop remote_src to copy from the controller)",
                o.src
            ))
        }
        None => {
            return fail(format!(
                "cannot read src={} on the host: {}",
                o.src,
                out.stderr_str().trim()
            ))
        }
    };
    let root = l.root.clone().unwrap_or(d);
    let src_tree = l.trees.get("HLR").cloned().unwrap_or_default();
    let mut dirs = vec![];
    let mut files = vec![];
    let mut names: Vec<&String> = src_tree.keys().collect();
    names.sort();
    for rel in names {
        let e = &src_tree[rel];
        let abs = join(o.src.trim_end_matches('/'), rel);
        match e.kind {
            Kind::Directory if !rel.is_empty() => dirs.push(rel.clone()),
            Kind::Directory => {}
            Kind::File => files.push(SrcFile {
                rel: rel.clone(),
                sum: e.sum.clone().ok_or_else(|| {
                    ModuleError::Failed(format!("cannot read {abs} on the host (permissions?)"))
                })?,
                size: e.size,
                mode: e.mode,
                content: Content::Remote(if single { o.src.to_string() } else { abs }),
            }),
            Kind::Link => {
                return fail(format!(
                    "{abs} on the host is a symbolic link; remote_src copies of links are not supported: copy its target"
                ))
            }
            _ => {
                return fail(format!(
                    "{abs} on the host is neither a file nor a folder; copy cannot send it"
                ))
            }
        }
    }
    build(ctx, o, root, true, l, "HLD", dirs, files, single)
}

/// Compares source and destination and decides what to write.
#[allow(clippy::too_many_arguments)]
fn build(
    ctx: &TaskCtx<'_>,
    o: &Opts<'_>,
    root: String,
    remote: bool,
    mut l: Listing,
    tag: &str,
    dirs: Vec<String>,
    files: Vec<SrcFile>,
    single: bool,
) -> Result<TreePlan, ModuleError> {
    if let Some(m) = o.mode.filter(|m| *m != "preserve") {
        super::file::resolve_mode(m, 0o644, false).map_err(ModuleError::Failed)?;
    }
    if let Some(m) = o.directory_mode {
        super::file::resolve_mode(m, 0o755, true).map_err(ModuleError::Failed)?;
    }
    let dest = l.trees.remove(tag).unwrap_or_default();
    let get = |rel: &str| overlay_entry(ctx, &join(&root, rel), dest.get(rel).cloned());
    let mut plan = TreePlan {
        root: root.clone(),
        remote,
        single,
        mkdirs: vec![],
        files: vec![],
        single_sum: None,
    };
    let root_entry = get("");
    match (&root_entry, single) {
        (Some(e), false) if e.kind != Kind::Directory => {
            return fail(format!(
                "{root} exists and is a {}; a folder copy needs a folder there (remove it or pick another dest)",
                e.kind.name()
            ))
        }
        (Some(e), true) if e.kind == Kind::Directory => {
            return fail(format!("{root} exists and is a folder, not a file"))
        }
        (None, _) => {
            if let Some(p) = &l.not_dir {
                return fail(format!(
                    "cannot create {root}: {p} exists and is not a folder"
                ));
            }
            // Missing folders, deepest first as probed; stop at one an earlier task plans.
            let mut missing = vec![];
            for m in &l.missing {
                if overlay_entry(ctx, m, None).is_some_and(|e| e.kind == Kind::Directory) {
                    break;
                }
                missing.push(m.clone());
            }
            if single {
                // A single file: its own path is not a folder to create.
                missing.retain(|m| *m != root);
                if !missing.is_empty() && !o.dest.ends_with('/') {
                    return fail(format!(
                        "destination directory {} does not exist",
                        Path::new(&root)
                            .parent()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ));
                }
            }
            missing.reverse();
            plan.mkdirs = missing;
        }
        _ => {}
    }
    for rel in &dirs {
        let path = join(&root, rel);
        match get(rel) {
            None => plan.mkdirs.push(path),
            Some(e) if e.kind == Kind::Directory => {}
            Some(e) => {
                return fail(format!(
                    "{path} exists and is a {}, but the source has a folder there; remove it first",
                    e.kind.name()
                ))
            }
        }
    }
    for f in files {
        let path = join(&root, &f.rel);
        let state = get(&f.rel);
        let mode = match o.mode {
            Some("preserve") => Some(format!("{:04o}", f.mode)),
            m => m.map(str::to_string),
        };
        let (content_changes, attrs_change) = match &state {
            None => (true, false),
            Some(e) if e.kind == Kind::Directory => {
                return fail(format!(
                    "{path} is a folder, but the source has a file there; remove it first"
                ))
            }
            Some(e) if e.kind == Kind::File => {
                let differs = e.sum.as_deref() != Some(f.sum.as_str());
                let st = e.state();
                (
                    differs && o.force,
                    super::copy::mode_differs(mode.as_deref(), &st)
                        || super::copy::owner_differs(o.owner, o.group, &st),
                )
            }
            // A link or something else: replaced by the file (when force).
            Some(_) => (o.force, false),
        };
        if single {
            plan.single_sum = Some((f.sum.clone(), f.size));
        }
        if content_changes || attrs_change {
            let before = l.data.remove(&path);
            plan.files.push(FileOp {
                path,
                src: f,
                state,
                before,
                content_changes,
                attrs_change,
                mode,
            });
        }
    }
    Ok(plan)
}

impl TreePlan {
    pub fn changed(&self) -> bool {
        !self.mkdirs.is_empty() || !self.files.is_empty()
    }

    /// The task's result: changed, and with --diff one entry per folder created and file changed.
    pub fn describe(&self, ctx: &TaskCtx<'_>, o: &Opts<'_>) -> TaskResult {
        let mut r = TaskResult::changed(self.changed())
            .with("dest", self.root.clone())
            .with("src", o.src.to_string());
        if let Some((sum, size)) = &self.single_sum {
            r = r.with("checksum", sum.clone()).with("size", *size);
        }
        if !ctx.diff {
            return r;
        }
        for d in &self.mkdirs {
            r.diff.push(remote::state_diff(
                d,
                &[("state", "absent".into())],
                &[("state", "directory".into())],
            ));
        }
        for f in &self.files {
            if !f.content_changes {
                let st = f.state.as_ref().map(Entry::state);
                if let Some(st) = st {
                    r.diff.push(super::file::attrs_diff(
                        &f.path,
                        &st,
                        f.mode.as_deref(),
                        o.owner,
                        o.group,
                    ));
                }
                continue;
            }
            match &f.src.content {
                Content::Local(data) => {
                    let exists = f.state.is_some();
                    let before = if exists {
                        f.before.as_deref()
                    } else {
                        Some(&b""[..])
                    };
                    let size = f.state.as_ref().map(|e| e.size).unwrap_or(0);
                    r.diff.push(remote::file_diff(&f.path, before, size, data));
                }
                Content::Remote(src) => {
                    let before = match &f.state {
                        Some(e) => vec![
                            ("state", e.kind.name().to_string()),
                            ("checksum", e.sum.clone().unwrap_or_default()),
                        ],
                        None => vec![("state", "absent".to_string())],
                    };
                    r.diff.push(remote::state_diff(
                        &f.path,
                        &before,
                        &[
                            ("state", "file".into()),
                            ("checksum", f.src.sum.clone()),
                            ("copied_from", src.clone()),
                        ],
                    ));
                }
            }
        }
        r
    }

    /// Check mode: records the folders and files this copy would leave.
    pub fn simulate(&self, ctx: &TaskCtx<'_>) {
        for d in &self.mkdirs {
            ctx.plan_path(d, PlannedPath::Directory);
        }
        for f in &self.files {
            let cur = f.state.as_ref().map(|e| e.mode).unwrap_or(0o644);
            let mode = f
                .mode
                .as_deref()
                .and_then(|m| super::file::resolve_mode(m, cur, false).ok());
            let content = match &f.src.content {
                Content::Local(d) => Some(d.clone()),
                Content::Remote(_) => None,
            };
            ctx.plan_path(&f.path, PlannedPath::File { content, mode });
        }
    }

    /// Writes the plan: one command for the folders and the small files, one per big file.
    pub async fn apply(
        self,
        ctx: &TaskCtx<'_>,
        o: &Opts<'_>,
        mut done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let own_new = owner_spec(o.owner, o.group);
        let mut first = String::new();
        for d in &self.mkdirs {
            let q = shell_quote(d);
            first.push_str(&format!("mkdir -- {q} || hl_fail {q}\n"));
            if let Some(m) = o.directory_mode {
                first.push_str(&format!("chmod {} {q} || hl_fail {q}\n", shell_quote(m)));
            }
            if !own_new.is_empty() {
                first.push_str(&format!(
                    "chown {} {q} || hl_fail {q}\n",
                    shell_quote(&own_new)
                ));
            }
        }
        let token = token(ctx.host);
        // Batches of (attribute-only commands, files to put); the first also makes the folders.
        let mut batches: Vec<(String, Vec<Put>)> = vec![(first, vec![])];
        let mut batch_size = 0usize;
        let mut big: Vec<(Put, Vec<u8>)> = vec![];
        for f in self.files {
            let q = shell_quote(&f.path);
            if !f.content_changes {
                let mut steps = vec![];
                if !own_new.is_empty() {
                    steps.push(format!("chown {} {q}", shell_quote(&own_new)));
                }
                if let Some(m) = &f.mode {
                    steps.push(format!("chmod {} {q}", shell_quote(m)));
                }
                if let Some(b) = batches.last_mut() {
                    b.0.push_str(&format!("{{ {}; }} || hl_fail {q}\n", steps.join(" && ")));
                }
                continue;
            }
            let existing = f.state.as_ref().filter(|e| e.kind == Kind::File);
            let mode = match (&f.mode, existing) {
                (Some(m), _) => Some(m.clone()),
                (None, Some(e)) => Some(format!("{:o}", e.mode)),
                // A new file keeps the mode the shell's umask gives it.
                (None, None) => None,
            };
            let own = match existing {
                Some(e) => Some(format!(
                    "{}:{}",
                    o.owner.map(str::to_string).unwrap_or(e.uid.to_string()),
                    o.group.map(str::to_string).unwrap_or(e.gid.to_string())
                )),
                None => Some(own_new.clone()).filter(|s| !s.is_empty()),
            };
            let mut put = Put {
                dest: f.path.clone(),
                tmp: String::new(),
                sum: f.src.sum.clone(),
                mode,
                owner: own,
                input: Input::Stdin,
            };
            match f.src.content {
                Content::Remote(src) => put.input = Input::Remote(src),
                Content::Local(data) if data.len() > BIG => {
                    big.push((put, data));
                    continue;
                }
                Content::Local(data) => {
                    use base64::Engine;
                    let enc = base64::engine::general_purpose::STANDARD.encode(&data);
                    if batch_size + enc.len() > BATCH && batch_size > 0 {
                        batches.push((String::new(), vec![]));
                        batch_size = 0;
                    }
                    batch_size += enc.len();
                    put.input = Input::B64(enc);
                }
            }
            if let Some(b) = batches.last_mut() {
                b.1.push(put);
            }
        }
        let mut backups = vec![];
        let mut rest = batches.into_iter().enumerate();
        // Folders first (and the first batch with them); the rest may then go in parallel.
        if let Some((i, (pre, puts))) = rest.next() {
            if !pre.is_empty() || !puts.is_empty() {
                let script = put_script(o, &format!("{token}{i}"), &pre, puts);
                backups.extend(run(ctx, "sh -s".into(), script.into_bytes()).await?);
            }
        }
        let mut jobs = vec![];
        for (i, (pre, puts)) in rest {
            let script = put_script(o, &format!("{token}{i}"), &pre, puts);
            jobs.push(run(ctx, "sh -s".into(), script.into_bytes()));
        }
        for (i, (put, data)) in big.into_iter().enumerate() {
            let script = put_script(o, &format!("{token}b{i}"), "", vec![put]);
            jobs.push(run(ctx, script, data));
        }
        for r in futures::future::join_all(jobs).await {
            backups.extend(r?);
        }
        match (self.single, backups.len()) {
            (_, 0) => {}
            (true, _) => done = done.with("backup_file", backups.remove(0)),
            (false, _) => done = done.with("backup_files", backups),
        }
        Ok(done)
    }
}

/// `owner:group` for chown (empty when neither is given).
fn owner_spec(owner: Option<&str>, group: Option<&str>) -> String {
    match (owner, group) {
        (None, None) => String::new(),
        (Some(o), None) => o.to_string(),
        (None, Some(g)) => format!(":{g}"),
        (Some(o), Some(g)) => format!("{o}:{g}"),
    }
}

/// A name part for this run's temp files, unlikely to be met twice.
fn token(host: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!(
        "{host} {now} {} {}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    super::copy::sha1_hex(seed.as_bytes())[..12].to_string()
}

/// How a file's content reaches its temp file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Base64 text in a here-document of the script.
    B64(String),
    /// The command's own standard input (one big file per command).
    Stdin,
    /// A path on the host.
    Remote(String),
}

/// One file to write: content into `tmp` (next to `dest`), checked, chown/chmod, renamed.
#[derive(Debug, Clone)]
pub struct Put {
    pub dest: String,
    pub tmp: String,
    pub sum: String,
    /// chmod argument (None: as created).
    pub mode: Option<String>,
    /// chown argument (None: as created).
    pub owner: Option<String>,
    pub input: Input,
}

fn parent(p: &str) -> String {
    match Path::new(p).parent().map(|d| d.display().to_string()) {
        Some(d) if !d.is_empty() => d,
        _ if p.starts_with('/') => "/".into(),
        _ => ".".into(),
    }
}

/// Runs `cmd` over `names` in chunks that keep command lines short.
fn chunked(cmd: &str, names: &[String], fail: &str) -> String {
    let mut s = String::new();
    for c in names.chunks(200) {
        s.push_str(&format!("{cmd} {} || hl_fail {fail}\n", c.join(" ")));
    }
    s
}

/// The script writing `puts` (after `pre`, e.g. mkdirs): every file goes to a temp file in its
/// folder (created exclusively, `set -C`), all are checked against their SHA-1 at once, then
/// chowned and chmodded in groups, validated, backed up and renamed one by one. Processes per
/// file: the decoder (or cat) and mv. On any failure the temp files are removed.
pub fn put_script(o: &Opts<'_>, token: &str, pre: &str, mut puts: Vec<Put>) -> String {
    let mut dirs: Vec<String> = vec![];
    for (i, p) in puts.iter_mut().enumerate() {
        let d = parent(&p.dest);
        p.tmp = format!(
            "{}/.homelab-tmp.{token}.{i}",
            if d == "/" { "" } else { d.as_str() }
        );
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    let cleanup: Vec<String> = dirs
        .iter()
        .map(|d| {
            format!(
                "{}/.homelab-tmp.{token}.*",
                shell_quote(if d == "/" { "" } else { d.as_str() })
            )
        })
        .collect();
    let mut s = String::new();
    if !puts.is_empty() {
        s.push_str(&format!(
            "trap {} EXIT\ntrap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM\n",
            shell_quote(&format!("rm -f -- {}", cleanup.join(" ")))
        ));
    }
    s.push_str("hl_fail() { echo \"HLFAIL $1\"; exit 1; }\n");
    if puts.iter().any(|p| matches!(p.input, Input::B64(_))) {
        s.push_str("command -v base64 >/dev/null 2>&1 || { echo 'homelab: the host has no base64 (coreutils); copy needs it to send files' >&2; exit 1; }\n");
    }
    s.push_str(pre);
    if puts.is_empty() {
        return s;
    }
    s.push_str("set -C\n");
    for p in &puts {
        let (t, q) = (shell_quote(&p.tmp), shell_quote(&p.dest));
        match &p.input {
            Input::B64(enc) => {
                s.push_str(&format!("base64 -d > {t} <<'HLEOF' || hl_fail {q}\n"));
                for chunk in enc.as_bytes().chunks(76) {
                    s.push_str(&String::from_utf8_lossy(chunk));
                    s.push('\n');
                }
                s.push_str("HLEOF\n");
            }
            Input::Stdin => s.push_str(&format!("cat > {t} || hl_fail {q}\n")),
            Input::Remote(src) => s.push_str(&format!(
                "cat < {} > {t} || hl_fail {q}\n",
                shell_quote(src)
            )),
        }
    }
    s.push_str("set +C\nhl_bad=$(sha1sum -c <<'HLSUMS' 2>&1 | grep -v ': OK$'\n");
    for p in &puts {
        s.push_str(&format!("{}  {}\n", p.sum, p.tmp));
    }
    s.push_str(
        "HLSUMS\n)\n[ -z \"$hl_bad\" ] || { echo \"homelab: the content written does not match the source (did a source change during the copy?): $hl_bad\" >&2; hl_fail \"$(echo \"$hl_bad\" | head -n 1)\"; }\n",
    );
    let mut groups: Vec<(String, Vec<String>)> = vec![];
    let mut group = |cmd: String, t: &str| match groups.iter_mut().find(|g| g.0 == cmd) {
        Some(g) => g.1.push(shell_quote(t)),
        None => groups.push((cmd, vec![shell_quote(t)])),
    };
    // chown before chmod: chown may clear set-id bits.
    for p in &puts {
        if let Some(ow) = &p.owner {
            group(format!("chown {}", shell_quote(ow)), &p.tmp);
        }
    }
    for p in &puts {
        if let Some(m) = &p.mode {
            group(format!("chmod {}", shell_quote(m)), &p.tmp);
        }
    }
    for (cmd, names) in &groups {
        s.push_str(&chunked(cmd, names, &shell_quote(o.dest)));
    }
    for p in &puts {
        let (t, q) = (shell_quote(&p.tmp), shell_quote(&p.dest));
        if let Some(v) = o.validate {
            s.push_str(&format!(
                "{{ {} >&2 || {{ echo \"homelab: validation failed: \"{} >&2; false; }}; }} || hl_fail {q}\n",
                v.replace("%s", &t),
                shell_quote(v)
            ));
        }
        if o.backup {
            s.push_str(&format!(
                "if [ -f {q} ]; then hl_b={q}.$(date +%Y-%m-%d@%H:%M:%S~) && cp -p {q} \"$hl_b\" && echo \"HLBACKUP $hl_b\" || hl_fail {q}; fi\n"
            ));
        }
        s.push_str(&format!("mv -f {t} {q} || hl_fail {q}\n"));
    }
    s
}

/// Runs one apply command (`sh -s` with the script on stdin, or a script with the raw content of
/// a big file on stdin); returns the backups it made.
async fn run(ctx: &TaskCtx<'_>, cmd: String, stdin: Vec<u8>) -> Result<Vec<String>, ModuleError> {
    let out = ctx.exec_with(cmd, Some(stdin)).await?;
    let stdout = out.stdout_str();
    if !out.success() {
        let what = stdout
            .lines()
            .find_map(|l| l.strip_prefix("HLFAIL "))
            .unwrap_or("the destination");
        return fail(format!(
            "could not copy to {what}: {}",
            out.stderr_str().trim()
        ));
    }
    Ok(stdout
        .lines()
        .filter_map(|l| l.strip_prefix("HLBACKUP ").map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_parses_entries_sums_and_data() {
        let out = b"HLROOT /d\nHLMISS /d/x\nHLD 41ed 755 0 0 root root 4096 .\n\
HLD 81a4 644 1000 1000 me me 3 ./a b\nHLD a1ff 777 0 0 root root 1 ./l\n\
HLDS 86f7e437faa5a7fce15d1ddcb9eaeaea377667b8  ./a b\n\
HLDS \\0000000000000000000000000000000000000000  ./x\\\\y\n\
HLDATA 3 /d/a b\nabc\nHLDATA 0 /d/e\n\n";
        let l = parse_listing(out).unwrap();
        assert_eq!(l.root.as_deref(), Some("/d"));
        assert_eq!(l.missing, ["/d/x"]);
        let t = &l.trees["HLD"];
        assert_eq!(t[""].kind, Kind::Directory);
        let a = &t["a b"];
        assert_eq!(
            (a.kind, a.mode, a.uid, a.owner.as_str(), a.size),
            (Kind::File, 0o644, 1000, "me", 3)
        );
        assert_eq!(
            a.sum.as_deref(),
            Some("86f7e437faa5a7fce15d1ddcb9eaeaea377667b8")
        );
        assert_eq!(t["l"].kind, Kind::Link);
        assert_eq!(l.data["/d/a b"], b"abc");
        assert_eq!(l.data["/d/e"], b"");
        assert!(parse_listing(b"HLD 81a4 644 0 0 r r 1 oops\n").is_err());
        assert!(parse_listing(b"HLDATA 10 /x\nabc").is_err());
    }

    #[test]
    fn names_join_and_trim() {
        assert_eq!(trim_dest("/a/b//"), "/a/b");
        assert_eq!(trim_dest("/"), "/");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", ""), "/a");
        assert_eq!(owner_spec(None, Some("g")), ":g");
    }
}

#[cfg(test)]
mod drive_tests {
    use crate::modules::copy::Copy;
    use crate::modules::testutil::{run, snapshot};
    use serde_json::json;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    fn write(p: &Path, data: &[u8]) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }
    fn ino(p: &Path) -> u64 {
        std::fs::metadata(p).unwrap().ino()
    }
    fn no_temp_files(dir: &Path) {
        for (p, _, _) in snapshot(dir) {
            assert!(!p.contains(".homelab-tmp"), "temp file left: {p}");
        }
    }

    #[tokio::test]
    async fn local_tree_check_apply_idempotent_and_only_changed_files() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        write(&src.join("a.txt"), b"alpha\n");
        write(&src.join("sub/b.txt"), b"beta\n");
        write(&src.join("sub/deep/c.bin"), b"\0\x01binary");
        std::fs::create_dir_all(src.join("empty")).unwrap();
        let out = d.path().join("out");
        let args = json!({
            "src": format!("{}/", src.display()),
            "dest": out.join("new/dest"),
            "mode": "0640",
            "directory_mode": "0750",
        });
        let before = snapshot(d.path());
        let planned = run::<Copy>(true, args.clone()).await;
        assert!(planned.changed && !planned.failed, "{planned:?}");
        assert_eq!(snapshot(d.path()), before, "check mode changed something");
        let headers: Vec<&str> = planned
            .diff
            .iter()
            .map(|x| x.after_header.as_str())
            .collect();
        for want in [
            "out/new",
            "out/new/dest",
            "dest/empty",
            "dest/sub/deep",
            "dest/a.txt",
            "dest/sub/b.txt",
            "dest/sub/deep/c.bin",
        ] {
            assert!(
                headers.iter().any(|h| h.ends_with(want)),
                "{want} not in {headers:?}"
            );
        }
        let done = run::<Copy>(false, args.clone()).await;
        assert!(done.changed && !done.failed, "{done:?}");
        assert_eq!(done.diff, planned.diff, "the run differs from the plan");
        let dest = out.join("new/dest");
        assert_eq!(
            std::fs::read(dest.join("sub/deep/c.bin")).unwrap(),
            b"\0\x01binary"
        );
        assert_eq!(std::fs::read(dest.join("a.txt")).unwrap(), b"alpha\n");
        assert_eq!(mode(&dest.join("sub/b.txt")), 0o640);
        assert_eq!(mode(&dest.join("sub")), 0o750);
        assert_eq!(
            mode(&out.join("new")),
            0o750,
            "missing parents get directory_mode"
        );
        assert!(dest.join("empty").is_dir());
        no_temp_files(d.path());

        let again = run::<Copy>(false, args.clone()).await;
        assert!(!again.changed && !again.failed, "not idempotent: {again:?}");
        assert!(!run::<Copy>(true, args.clone()).await.changed);

        // One source file changes: only it is rewritten (new inode), the diff shows just it.
        let (ia, ib) = (ino(&dest.join("a.txt")), ino(&dest.join("sub/b.txt")));
        write(&src.join("sub/b.txt"), b"beta 2\n");
        let planned = run::<Copy>(true, args.clone()).await;
        assert!(planned.changed, "{planned:?}");
        assert_eq!(planned.diff.len(), 1, "{:?}", planned.diff);
        assert_eq!(planned.diff[0].before, "beta\n");
        assert_eq!(planned.diff[0].after, "beta 2\n");
        let done = run::<Copy>(false, args.clone()).await;
        assert!(done.changed, "{done:?}");
        assert_eq!(
            ino(&dest.join("a.txt")),
            ia,
            "an unchanged file was rewritten"
        );
        assert_ne!(ino(&dest.join("sub/b.txt")), ib);
        assert_eq!(std::fs::read(dest.join("sub/b.txt")).unwrap(), b"beta 2\n");

        // A mode-only change is a chmod, not a rewrite.
        let args2 = json!({"src": format!("{}/", src.display()), "dest": dest, "mode": "0600"});
        let done = run::<Copy>(false, args2.clone()).await;
        assert!(done.changed && !done.failed, "{done:?}");
        assert_eq!(ino(&dest.join("a.txt")), ia);
        assert_eq!(mode(&dest.join("a.txt")), 0o600);
        assert!(!run::<Copy>(false, args2).await.changed);

        // Without the trailing slash the folder itself is copied.
        let r = run::<Copy>(false, json!({"src": src, "dest": out.join("plain")})).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(
            std::fs::read(out.join("plain/src/a.txt")).unwrap(),
            b"alpha\n"
        );
        no_temp_files(d.path());
    }

    #[tokio::test]
    async fn tree_conflicts_and_force_and_backup() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        write(&src.join("sub/x"), b"new\n");
        let dest = d.path().join("dest");
        // A file where the source has a folder: refused, nothing written.
        write(&dest.join("sub"), b"i am a file\n");
        let r = run::<Copy>(
            false,
            json!({"src": format!("{}/", src.display()), "dest": dest}),
        )
        .await;
        assert!(r.failed, "{r:?}");
        assert!(
            r.msg.as_deref().unwrap_or("").contains("remove it first"),
            "{r:?}"
        );
        std::fs::remove_file(dest.join("sub")).unwrap();
        write(&dest.join("sub/x"), b"old\n");
        // force: false keeps an existing file.
        let r = run::<Copy>(
            false,
            json!({"src": format!("{}/", src.display()), "dest": dest, "force": false}),
        )
        .await;
        assert!(!r.changed, "{r:?}");
        // backup: the old file is kept next to it.
        let r = run::<Copy>(
            false,
            json!({"src": format!("{}/", src.display()), "dest": dest, "backup": true}),
        )
        .await;
        assert!(r.changed && !r.failed, "{r:?}");
        let b = r.data["backup_files"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(std::fs::read(&b).unwrap(), b"old\n");
        assert_eq!(std::fs::read(dest.join("sub/x")).unwrap(), b"new\n");
        // A failing validate leaves the destination as it was.
        write(&src.join("sub/x"), b"newer\n");
        let r = run::<Copy>(false, json!({"src": format!("{}/", src.display()), "dest": dest, "validate": "grep -q never %s"})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("validation failed"),
            "{r:?}"
        );
        assert_eq!(std::fs::read(dest.join("sub/x")).unwrap(), b"new\n");
        no_temp_files(d.path());
    }

    #[tokio::test]
    async fn remote_src_file_and_tree() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        write(&p("r/one.conf"), b"one\n");
        write(&p("r/tree/a"), b"a\n");
        write(&p("r/tree/s/b"), b"b\n");
        std::fs::set_permissions(p("r/tree/s/b"), std::fs::Permissions::from_mode(0o751)).unwrap();
        std::fs::create_dir_all(p("dst")).unwrap();

        // A file to a file path, then into a folder (dest/basename).
        let args = json!({"src": p("r/one.conf"), "dest": p("dst/copy.conf"), "remote_src": true, "mode": "0600"});
        let planned = run::<Copy>(true, args.clone()).await;
        assert!(planned.changed && !planned.failed, "{planned:?}");
        assert!(!p("dst/copy.conf").exists());
        let r = run::<Copy>(false, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(r.data["checksum"], crate::modules::copy::sha1_hex(b"one\n"));
        assert_eq!(std::fs::read(p("dst/copy.conf")).unwrap(), b"one\n");
        assert_eq!(mode(&p("dst/copy.conf")), 0o600);
        assert!(!run::<Copy>(false, args).await.changed);
        let r = run::<Copy>(
            false,
            json!({"src": p("r/one.conf"), "dest": p("dst"), "remote_src": true}),
        )
        .await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(std::fs::read(p("dst/one.conf")).unwrap(), b"one\n");
        let r = run::<Copy>(
            false,
            json!({"src": p("r/one.conf"), "dest": p("nodir/x"), "remote_src": true}),
        )
        .await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("does not exist"),
            "{r:?}"
        );

        // A folder, with mode preserve.
        let args =
            json!({"src": p("r/tree"), "dest": p("dst"), "remote_src": true, "mode": "preserve"});
        let planned = run::<Copy>(true, args.clone()).await;
        assert!(planned.changed, "{planned:?}");
        assert!(!p("dst/tree").exists());
        let r = run::<Copy>(false, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(r.diff, planned.diff);
        assert_eq!(std::fs::read(p("dst/tree/s/b")).unwrap(), b"b\n");
        assert_eq!(mode(&p("dst/tree/s/b")), 0o751);
        assert!(!run::<Copy>(false, args.clone()).await.changed);
        write(&p("r/tree/a"), b"a2\n");
        let ib = ino(&p("dst/tree/s/b"));
        let r = run::<Copy>(false, args.clone()).await;
        assert!(r.changed && r.diff.len() == 1, "{r:?}");
        assert_eq!(std::fs::read(p("dst/tree/a")).unwrap(), b"a2\n");
        assert_eq!(ino(&p("dst/tree/s/b")), ib);

        let r = run::<Copy>(
            false,
            json!({"src": p("r/nope"), "dest": p("dst"), "remote_src": true}),
        )
        .await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("does not exist on the host"),
            "{r:?}"
        );
        no_temp_files(d.path());
    }

    #[tokio::test]
    async fn check_mode_plans_into_a_folder_a_planned_package_would_make() {
        use crate::modules::core::Planned;
        use crate::modules::testutil::run_planned;
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("etc-haproxy/haproxy.cfg");
        let args = json!({"content": "x\n", "dest": dest});
        // Without an earlier package install the missing folder is an error, as in a real run.
        let planned = Planned::default();
        let r = run_planned::<Copy>(true, args.clone(), None, Some(&planned)).await;
        assert!(r.failed, "{r:?}");
        // After a planned install whose files cannot be known, the write is planned.
        planned.set_opaque("apt: haproxy");
        let r = run_planned::<Copy>(true, args, None, Some(&planned)).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert!(!d.path().join("etc-haproxy").exists());
    }

    #[tokio::test]
    async fn check_mode_sees_a_folder_planned_by_an_earlier_task() {
        use crate::modules::core::Planned;
        use crate::modules::file::File;
        use crate::modules::testutil::run_planned;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        write(&src.join("a"), b"a\n");
        let planned = Planned::default();
        let dest = d.path().join("made");
        let r = run_planned::<File>(
            true,
            json!({"path": dest, "state": "directory"}),
            None,
            Some(&planned),
        )
        .await;
        assert!(r.changed, "{r:?}");
        let args = json!({"src": format!("{}/", src.display()), "dest": dest});
        let r = run_planned::<Copy>(true, args.clone(), None, Some(&planned)).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(
            r.diff.len(),
            1,
            "the folder is planned already: {:?}",
            r.diff
        );
        // Planned twice: the second plan sees the first's files.
        let r = run_planned::<Copy>(true, args, None, Some(&planned)).await;
        assert!(!r.changed, "{r:?}");
        assert!(!dest.exists());
    }
}

#[cfg(test)]
mod put_tests {
    use super::*;
    use crate::modules::copy::{sha1_hex, Copy};
    use crate::modules::testutil::{run, snapshot};
    use crate::transport::local::LocalConnection;
    use crate::transport::{Connection, ExecRequest};
    use serde_json::json;

    fn opts(dest: &str) -> Opts<'_> {
        Opts {
            dest,
            src: "",
            mode: None,
            directory_mode: None,
            owner: None,
            group: None,
            force: true,
            backup: false,
            validate: None,
        }
    }

    /// Content that does not match its checksum is never renamed into place, and no temp file
    /// stays behind.
    #[tokio::test]
    async fn a_wrong_checksum_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good").display().to_string();
        let bad = d.path().join("bad").display().to_string();
        std::fs::write(&bad, "old\n").unwrap();
        let put = |dest: &str, data: &[u8], sum: String| Put {
            dest: dest.to_string(),
            tmp: String::new(),
            sum,
            mode: Some("0600".into()),
            owner: None,
            input: Input::B64({
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(data)
            }),
        };
        let script = put_script(
            &opts(&good),
            "t1",
            "",
            vec![
                put(&good, b"fine\n", sha1_hex(b"fine\n")),
                put(&bad, b"new\n", sha1_hex(b"something else")),
            ],
        );
        let c = Connection::Local(LocalConnection::new("t"));
        let mut r = ExecRequest::new("sh -s");
        r.stdin = Some(script.into_bytes());
        let out = c.exec(&r).await.unwrap();
        assert!(!out.success());
        assert!(
            out.stderr_str().contains("does not match the source"),
            "{}",
            out.stderr_str()
        );
        assert!(!d.path().join("good").exists(), "nothing is renamed");
        assert_eq!(std::fs::read_to_string(&bad).unwrap(), "old\n");
        assert_eq!(snapshot(d.path()).len(), 1, "{:?}", snapshot(d.path()));
    }

    /// Files over BIG go raw in commands of their own, the rest in batches of about BATCH.
    #[tokio::test]
    async fn big_files_and_several_batches() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let mut want = vec![];
        for i in 0..3u8 {
            // Over BIG: each its own command.
            let big: Vec<u8> = (0..BIG + 10).map(|j| (j % 251) as u8 ^ i).collect();
            std::fs::write(src.join(format!("big{i}")), &big).unwrap();
            want.push((format!("big{i}"), big));
        }
        // 40 files just under BIG: more than one batch.
        for i in 0..40u8 {
            let small = vec![b'a' + (i % 26); BIG - 1];
            std::fs::write(src.join(format!("s{i:02}")), &small).unwrap();
            want.push((format!("s{i:02}"), small));
        }
        let dest = d.path().join("dest");
        let args = json!({"src": format!("{}/", src.display()), "dest": dest, "mode": "0604"});
        let r = run::<Copy>(false, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        for (n, data) in &want {
            assert!(std::fs::read(dest.join(n)).unwrap() == *data, "{n} differs");
        }
        assert!(!run::<Copy>(false, args).await.changed);
        assert!(!snapshot(d.path())
            .iter()
            .any(|e| e.0.contains(".homelab-tmp")));
    }
}
