//! `stat`: a path's facts (type, mode, owner, size, times, link target, checksum, MIME type,
//! attributes), as Ansible's `stat` returns them, read in one round trip with `stat`, `test`,
//! `readlink`, a `*sum` tool, `file` and `lsattr` (each optional but `stat`). Never changes
//! anything, so it returns real data in check mode too. Also the helpers the other read-only
//! modules share: `~` expansion, checksum algorithms, Python's `normpath`, and stat fields.

use super::core::{boolish, Module, ModuleError, TaskCtx, TaskResult};
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "dest", alias = "name")]
    pub path: String,
    #[serde(default, with = "boolish")]
    pub follow: bool,
    #[serde(default = "yes", with = "boolish")]
    pub get_checksum: bool,
    #[serde(default, alias = "checksum", alias = "checksum_algo")]
    pub checksum_algorithm: Algo,
    #[serde(
        default = "yes",
        with = "boolish",
        alias = "mime",
        alias = "mime_type",
        alias = "mime-type"
    )]
    pub get_mime: bool,
    #[serde(
        default = "yes",
        with = "boolish",
        alias = "attr",
        alias = "attributes"
    )]
    pub get_attributes: bool,
}

fn yes() -> bool {
    true
}

/// A checksum algorithm, as Ansible names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    Md5,
    #[default]
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "md5",
            Algo::Sha1 => "sha1",
            Algo::Sha224 => "sha224",
            Algo::Sha256 => "sha256",
            Algo::Sha384 => "sha384",
            Algo::Sha512 => "sha512",
        }
    }

    /// The coreutils/busybox tool that computes it on the host.
    pub fn tool(self) -> String {
        format!("{}sum", self.name())
    }

    /// The hex digest of `data`, computed here.
    pub fn digest(self, data: &[u8]) -> String {
        use sha2::Digest;
        fn hex(b: &[u8]) -> String {
            b.iter().map(|x| format!("{x:02x}")).collect()
        }
        match self {
            Algo::Md5 => hex(&md5::Md5::digest(data)),
            Algo::Sha1 => hex(&sha1::Sha1::digest(data)),
            Algo::Sha224 => hex(&sha2::Sha224::digest(data)),
            Algo::Sha256 => hex(&sha2::Sha256::digest(data)),
            Algo::Sha384 => hex(&sha2::Sha384::digest(data)),
            Algo::Sha512 => hex(&sha2::Sha512::digest(data)),
        }
    }
}

/// A shell word for a host path, expanding a leading `~` or `~/` to the (become) user's `$HOME`
/// as Ansible's `expanduser` does; anything else is quoted as is.
pub fn path_word(p: &str) -> String {
    if p == "~" {
        "\"$HOME\"".to_string()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("\"$HOME\"/{}", shell_quote(rest))
    } else {
        shell_quote(p)
    }
}

/// Python's `posixpath.normpath`: folds `//`, `.` and `..` without touching the file system.
pub fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let initial = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut comps: Vec<&str> = vec![];
    for c in path.split('/') {
        if c.is_empty() || c == "." {
            continue;
        }
        if c != ".." || (initial == 0 && comps.is_empty()) || comps.last() == Some(&"..") {
            comps.push(c);
        } else if !comps.is_empty() {
            comps.pop();
        }
    }
    let out = "/".repeat(initial) + &comps.join("/");
    if out.is_empty() {
        ".".into()
    } else {
        out
    }
}

const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

/// The type bits for a `find -printf %y` letter.
pub fn type_bits(c: char) -> u32 {
    match c {
        'f' => S_IFREG,
        'd' => S_IFDIR,
        'l' => S_IFLNK,
        'b' => S_IFBLK,
        'c' => S_IFCHR,
        'p' => S_IFIFO,
        's' => S_IFSOCK,
        _ => 0,
    }
}

/// What `os.stat` gives Python, as far as the host's `stat`/`find` report it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatInfo {
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub inode: u64,
    pub dev: u64,
    pub nlink: u64,
    pub atime: f64,
    pub mtime: f64,
    pub ctime: f64,
    /// User and group names; empty when the id has no name (as Ansible's find reports it).
    pub pw_name: String,
    pub gr_name: String,
}

impl StatInfo {
    fn is(&self, t: u32) -> bool {
        self.mode & S_IFMT == t
    }
    pub fn isreg(&self) -> bool {
        self.is(S_IFREG)
    }
    pub fn isdir(&self) -> bool {
        self.is(S_IFDIR)
    }
    pub fn islnk(&self) -> bool {
        self.is(S_IFLNK)
    }
    /// The permission bits (`S_IMODE`).
    pub fn perms(&self) -> u32 {
        self.mode & 0o7777
    }

    /// The fields Ansible's find (`statinfo`) and stat share, in their order. Names are left out
    /// here: stat omits an unknown name, find gives "".
    fn common(&self) -> Map<String, Value> {
        let mut o = Map::new();
        o.insert("mode".into(), format!("{:04o}", self.perms()).into());
        o.insert("isdir".into(), self.isdir().into());
        o.insert("ischr".into(), self.is(S_IFCHR).into());
        o.insert("isblk".into(), self.is(S_IFBLK).into());
        o.insert("isreg".into(), self.isreg().into());
        o.insert("isfifo".into(), self.is(S_IFIFO).into());
        o.insert("islnk".into(), self.islnk().into());
        o.insert("issock".into(), self.is(S_IFSOCK).into());
        o.insert("uid".into(), self.uid.into());
        o.insert("gid".into(), self.gid.into());
        o.insert("size".into(), self.size.into());
        o.insert("inode".into(), self.inode.into());
        o.insert("dev".into(), self.dev.into());
        o.insert("nlink".into(), self.nlink.into());
        o.insert("atime".into(), self.atime.into());
        o.insert("mtime".into(), self.mtime.into());
        o.insert("ctime".into(), self.ctime.into());
        o
    }

    fn perm_bits(&self, o: &mut Map<String, Value>) {
        let m = self.mode;
        for (k, bit) in [
            ("wusr", 0o200),
            ("rusr", 0o400),
            ("xusr", 0o100),
            ("wgrp", 0o020),
            ("rgrp", 0o040),
            ("xgrp", 0o010),
            ("woth", 0o002),
            ("roth", 0o004),
            ("xoth", 0o001),
            ("isuid", 0o4000),
            ("isgid", 0o2000),
        ] {
            o.insert(k.into(), (m & bit != 0).into());
        }
    }

    /// One entry of find's `files`, without `path` and `checksum`.
    pub fn find_fields(&self) -> Map<String, Value> {
        let mut o = self.common();
        o.insert("gr_name".into(), self.gr_name.clone().into());
        o.insert("pw_name".into(), self.pw_name.clone().into());
        self.perm_bits(&mut o);
        o
    }
}

/// A user or group name as `stat`/`find` print it: "" when the id has no name (`stat` prints
/// UNKNOWN, `find` the number).
pub fn known_name(name: &str, id: u32) -> String {
    if name == "UNKNOWN" || name == id.to_string() {
        String::new()
    } else {
        name.to_string()
    }
}

/// Seconds since the epoch from `stat`'s `%X` (whole seconds) and `%x` (a date whose seconds may
/// carry a fraction: `2024-01-02 03:04:05.123456789 +0000`).
pub fn seconds(whole: &str, human: &str) -> f64 {
    let secs = whole.trim().parse::<i64>().unwrap_or(0) as f64;
    let frac = human
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.split_once('.'))
        .map(|(_, f)| {
            f.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .filter(|f| !f.is_empty())
        .and_then(|f| format!("0.{f}").parse::<f64>().ok())
        .unwrap_or(0.0);
    if secs < 0.0 {
        secs - frac
    } else {
        secs + frac
    }
}

/// Linux's `makedev` from major and minor numbers.
fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// lsattr's flag letters, as Ansible names them.
const FILE_ATTRIBUTES: &[(char, &str)] = &[
    ('A', "noatime"),
    ('a', "append"),
    ('c', "compressed"),
    ('C', "nocow"),
    ('d', "nodump"),
    ('D', "dirsync"),
    ('e', "extents"),
    ('E', "encrypted"),
    ('h', "blocksize"),
    ('i', "immutable"),
    ('I', "indexed"),
    ('j', "journalled"),
    ('N', "inline"),
    ('s', "zero"),
    ('S', "synchronous"),
    ('t', "notail"),
    ('T', "blockroot"),
    ('u', "undelete"),
    ('X', "compressedraw"),
    ('Z', "compresseddirty"),
];

/// The `stat` format: numbers first, then the dates (with fractions) and names, `|`-separated.
const STAT_FMT: &str = "%f %u %g %s %i %d %h %b %o %t %T %X %Y %Z|%x|%y|%z|%U|%G";

/// The probe: everything stat returns, in one command.
pub fn script(a: &Args) -> String {
    let l = if a.follow { "-L " } else { "" };
    let mut s = format!(
        "LC_ALL=C; export LC_ALL; p={}; printf 'HLPATH %s\\n' \"$p\"; \
         if s=$(stat {l}-c '{STAT_FMT}' -- \"$p\" 2>&1); then printf 'HLST %s\\n' \"$s\"; \
         a=; [ -r \"$p\" ] && a=${{a}}r; [ -w \"$p\" ] && a=${{a}}w; [ -x \"$p\" ] && a=${{a}}x; \
         printf 'HLACC %s\\n' \"$a\"; ",
        path_word(&a.path)
    );
    let not_link = if a.follow {
        ""
    } else {
        s.push_str(
            "if [ -L \"$p\" ]; then printf 'HLLNK %s\\n' \"$(readlink -- \"$p\")\"; \
             printf 'HLREAL %s\\n' \"$(readlink -f -- \"$p\" 2>/dev/null || realpath -- \"$p\" 2>/dev/null)\"; fi; ",
        );
        "! [ -L \"$p\" ] && "
    };
    if a.get_checksum {
        let tool = a.checksum_algorithm.tool();
        s.push_str(&format!(
            "if {not_link}[ -f \"$p\" ] && [ -r \"$p\" ]; then \
             if command -v {tool} >/dev/null 2>&1; then printf 'HLSUM %s\\n' \"$({tool} < \"$p\" | cut -d' ' -f1)\"; \
             else echo HLNOSUM; fi; fi; "
        ));
    }
    if a.get_mime {
        s.push_str(
            "if command -v file >/dev/null 2>&1; then \
             printf 'HLMIME %s\\n' \"$(file -b --mime-type --mime-encoding -- \"$p\" 2>/dev/null)\"; fi; ",
        );
    }
    if a.get_attributes {
        s.push_str(
            "if command -v lsattr >/dev/null 2>&1; then \
             printf 'HLATTR %s\\n' \"$(lsattr -vd -- \"$p\" 2>/dev/null)\"; fi; ",
        );
    }
    s.push_str("else printf 'HLERR %s\\n' \"$s\"; fi");
    s
}

/// Parses what [`script`] printed into Ansible's `stat` value.
pub fn parse(out: &[u8], a: &Args) -> Result<Value, String> {
    let text = String::from_utf8_lossy(out);
    let mut path = a.path.clone();
    let mut fields = None;
    let mut acc = None;
    let mut lnk_target = None;
    let mut lnk_source = None;
    let mut checksum = None;
    let mut no_sum_tool = false;
    let mut mime = None;
    let mut attr = None;
    let mut err = None;
    for line in text.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "HLPATH" => path = rest.to_string(),
            "HLST" => fields = Some(rest.to_string()),
            "HLACC" => acc = Some(rest.to_string()),
            "HLLNK" => lnk_target = Some(rest.to_string()),
            "HLREAL" => lnk_source = Some(rest.to_string()),
            "HLSUM" => checksum = Some(rest.trim().to_string()),
            "HLNOSUM" => no_sum_tool = true,
            "HLMIME" => mime = Some(rest.to_string()),
            "HLATTR" => attr = Some(rest.to_string()),
            "HLERR" => err = Some(rest.to_string()),
            _ => {
                // A continuation of a multi-line error message.
                if let Some(e) = err.as_mut() {
                    e.push('\n');
                    e.push_str(line);
                }
            }
        }
    }
    if let Some(e) = err {
        if e.contains("No such file or directory") {
            return Ok(serde_json::json!({ "exists": false }));
        }
        return Err(format!("cannot stat {path}: {}", e.trim()));
    }
    let fields = fields.ok_or_else(|| format!("the host did not report on {path}: {text}"))?;
    let (st, extra) = parse_stat_line(&fields)?;
    let mut o = Map::new();
    o.insert("exists".into(), true.into());
    o.insert("path".into(), path.clone().into());
    o.extend(st.common());
    st.perm_bits(&mut o);
    o.insert("blocks".into(), extra.blocks.into());
    o.insert("block_size".into(), extra.block_size.into());
    o.insert("device_type".into(), extra.rdev.into());
    let acc = acc.unwrap_or_default();
    o.insert("readable".into(), acc.contains('r').into());
    o.insert("writeable".into(), acc.contains('w').into());
    o.insert("executable".into(), acc.contains('x').into());
    if st.islnk() {
        o.insert("lnk_source".into(), lnk_source.unwrap_or_default().into());
        o.insert("lnk_target".into(), lnk_target.unwrap_or_default().into());
    }
    if !st.pw_name.is_empty() {
        o.insert("pw_name".into(), st.pw_name.clone().into());
    }
    if !st.gr_name.is_empty() {
        o.insert("gr_name".into(), st.gr_name.clone().into());
    }
    if no_sum_tool {
        return Err(format!(
            "cannot compute the {} checksum of {path}: {} is not installed on the host; install \
             it (coreutils) or use checksum_algorithm: sha1, or get_checksum: false",
            a.checksum_algorithm.name(),
            a.checksum_algorithm.tool()
        ));
    }
    if let Some(c) = checksum.filter(|c| !c.is_empty()) {
        o.insert("checksum".into(), c.into());
    }
    if a.get_mime {
        let (mut mt, mut cs) = ("unknown".to_string(), "unknown".to_string());
        if let Some((t, c)) = mime.as_deref().and_then(|m| m.split_once(';')) {
            mt = t.trim().to_string();
            if let Some((_, v)) = c.split_once('=') {
                cs = v.trim().to_string();
            }
        }
        o.insert("mimetype".into(), mt.into());
        o.insert("charset".into(), cs.into());
    }
    if a.get_attributes {
        let (version, flags) = match attr.as_deref().map(str::split_whitespace) {
            Some(mut w) => match (w.next(), w.next()) {
                (Some(v), Some(f)) => (Value::from(v), f.replace('-', "")),
                _ => (Value::Null, String::new()),
            },
            None => (Value::Null, String::new()),
        };
        let names: Vec<Value> = flags
            .chars()
            .filter_map(|c| FILE_ATTRIBUTES.iter().find(|(l, _)| *l == c))
            .map(|(_, n)| Value::from(*n))
            .collect();
        o.insert("version".into(), version);
        o.insert("attributes".into(), names.into());
        o.insert("attr_flags".into(), flags.into());
    }
    Ok(Value::Object(o))
}

/// Fields of the stat line that only the stat module reports.
#[derive(Debug, Default, PartialEq)]
pub struct Extra {
    pub blocks: u64,
    pub block_size: u64,
    pub rdev: u64,
}

/// Parses one line printed with [`STAT_FMT`].
pub fn parse_stat_line(line: &str) -> Result<(StatInfo, Extra), String> {
    let parts: Vec<&str> = line.split('|').collect();
    let nums: Vec<&str> = parts[0].split_whitespace().collect();
    if parts.len() != 6 || nums.len() != 14 {
        return Err(format!("unexpected output from stat: {line}"));
    }
    let n = |i: usize| nums[i].parse::<u64>().unwrap_or(0);
    let hex = |i: usize| u64::from_str_radix(nums[i], 16).unwrap_or(0);
    let uid = n(1) as u32;
    let gid = n(2) as u32;
    let st = StatInfo {
        mode: hex(0) as u32,
        uid,
        gid,
        size: n(3),
        inode: n(4),
        dev: n(5),
        nlink: n(6),
        atime: seconds(nums[11], parts[1]),
        mtime: seconds(nums[12], parts[2]),
        ctime: seconds(nums[13], parts[3]),
        pw_name: known_name(parts[4].trim(), uid),
        gr_name: known_name(parts[5].trim(), gid),
    };
    let extra = Extra {
        blocks: n(7),
        block_size: n(8),
        rdev: makedev(hex(9), hex(10)),
    };
    Ok((st, extra))
}

pub struct Plan {
    stat: Value,
}

pub struct Stat;

impl Module for Stat {
    const NAME: &'static str = "stat";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if a.path.is_empty() {
            return Err(ModuleError::Failed(
                "path is empty: give the path to stat".into(),
            ));
        }
        let out = ctx.exec(script(a)).await?;
        let stat = parse(&out.stdout, a).map_err(|e| {
            let err = out.stderr_str();
            ModuleError::Failed(if err.trim().is_empty() {
                e
            } else {
                format!("{e} ({})", err.trim())
            })
        })?;
        Ok(Plan { stat })
    }

    fn describe(_ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) -> TaskResult {
        TaskResult::changed(false).with("stat", p.stat.clone())
    }

    async fn apply(
        _ctx: &TaskCtx<'_>,
        _a: &Args,
        _p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        Ok(done)
    }

    fn runs_in_check_mode() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::run;
    use serde_json::json;

    fn args(v: Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_a_stat_line() {
        let (st, x) = parse_stat_line(
            "81a4 1000 1000 12 4242 2049 1 8 4096 0 0 1700000000 1700000001 1700000002|\
             2023-11-14 22:13:20.250000000 +0000|2023-11-14 22:13:21.5 +0000|\
             2023-11-14 22:13:22 +0000|alice|UNKNOWN",
        )
        .unwrap();
        assert!(st.isreg() && !st.isdir() && !st.islnk());
        assert_eq!(st.perms(), 0o644);
        assert_eq!(
            (st.uid, st.size, st.inode, st.dev, st.nlink),
            (1000, 12, 4242, 2049, 1)
        );
        assert_eq!(
            (st.atime, st.mtime, st.ctime),
            (1700000000.25, 1700000001.5, 1700000002.0)
        );
        assert_eq!((st.pw_name.as_str(), st.gr_name.as_str()), ("alice", ""));
        assert_eq!((x.blocks, x.block_size, x.rdev), (8, 4096, 0));
        // A character device: type bits from the raw mode, rdev from major/minor.
        let (st, x) = parse_stat_line("21b6 0 0 0 5 6 1 0 4096 1 3 0 0 0|-|-|-|root|root").unwrap();
        assert_eq!((st.mode & S_IFMT, st.perms()), (S_IFCHR, 0o666));
        assert_eq!(x.rdev, 259);
        assert!(parse_stat_line("81a4 1 2|x").is_err());
    }

    #[test]
    fn parses_probe_output() {
        let a = args(json!({"path": "/l"}));
        let out = b"HLPATH /l\nHLST a1ff 0 0 4 9 2049 1 0 4096 0 0 1 2 3|-|-|-|root|root\n\
HLACC rw\nHLLNK target\nHLREAL /etc/target\n\
HLMIME inode/symlink; charset=binary\nHLATTR \n";
        let v = parse(out, &a).unwrap();
        assert_eq!(v["islnk"], true);
        assert_eq!(v["mode"], "0777");
        assert_eq!(v["lnk_target"], "target");
        assert_eq!(v["lnk_source"], "/etc/target");
        assert_eq!(
            (v["readable"].clone(), v["executable"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(v["mimetype"], "inode/symlink");
        assert_eq!(v["charset"], "binary");
        assert_eq!(v["version"], Value::Null);
        assert_eq!(v["attributes"], json!([]));
        assert!(v.get("checksum").is_none());

        let absent = b"HLPATH /x\nHLERR stat: cannot statx '/x': No such file or directory\n";
        assert_eq!(parse(absent, &a).unwrap(), json!({"exists": false}));
        let denied = b"HLPATH /x\nHLERR stat: cannot statx '/x/y': Permission denied\n";
        assert!(parse(denied, &a).unwrap_err().contains("Permission denied"));
        let nosum =
            b"HLPATH /f\nHLST 81a4 0 0 4 9 2049 1 0 4096 0 0 1 2 3|-|-|-|root|root\nHLNOSUM\n";
        let e = parse(nosum, &a).unwrap_err();
        assert!(e.contains("sha1sum is not installed"), "{e}");
    }

    #[test]
    fn paths_and_names() {
        assert_eq!(normpath("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(normpath("a/../../b"), "../b");
        assert_eq!(normpath("/../x"), "/x");
        assert_eq!(normpath("//x"), "//x");
        assert_eq!(normpath(""), ".");
        assert_eq!(path_word("~/a b"), "\"$HOME\"/'a b'");
        assert_eq!(path_word("~"), "\"$HOME\"");
        assert_eq!(path_word("/x/~y"), shell_quote("/x/~y"));
        assert_eq!(
            Algo::Sha1.digest(b"one\ntwo\n"),
            "c708d7ef841f7e1748436b8ef5670d0b2de1a227"
        );
        assert_eq!(Algo::Md5.digest(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(known_name("UNKNOWN", 5), "");
        assert_eq!(known_name("1234", 1234), "");
        assert_eq!(known_name("bob", 1234), "bob");
    }

    #[tokio::test]
    async fn stats_files_dirs_links_and_absent_paths() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f.txt");
        std::fs::write(&f, "one\ntwo\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let l = d.path().join("l");
        std::os::unix::fs::symlink("f.txt", &l).unwrap();
        let p = |x: &std::path::Path| x.display().to_string();

        for check in [false, true] {
            let r = run::<Stat>(check, json!({"path": p(&f)})).await;
            assert!(!r.failed && !r.changed, "{r:?}");
            let s = &r.data["stat"];
            assert_eq!(s["exists"], true);
            assert_eq!(s["isreg"], true);
            assert_eq!(s["mode"], "0640");
            assert_eq!(s["size"], 8);
            assert_eq!(s["checksum"], "c708d7ef841f7e1748436b8ef5670d0b2de1a227");
            assert_eq!(s["path"], p(&f));
            let meta = std::fs::metadata(&f).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!(s["inode"], meta.ino());
            assert_eq!(s["uid"], meta.uid());
            let mtime = s["mtime"].as_f64().unwrap();
            let want = meta.mtime() as f64 + meta.mtime_nsec() as f64 / 1e9;
            assert!((mtime - want).abs() < 1e-6, "{mtime} vs {want}");
            assert_eq!(s["readable"], true);
            assert_eq!(s["xusr"], false);
        }

        let r = run::<Stat>(false, json!({"path": p(&l)})).await;
        let s = &r.data["stat"];
        assert_eq!(
            (s["islnk"].clone(), s["isreg"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(s["lnk_target"], "f.txt");
        assert_eq!(s["lnk_source"], p(&f));
        assert!(s.get("checksum").is_none(), "{s}");

        let r = run::<Stat>(
            false,
            json!({"path": p(&l), "follow": true, "checksum_algorithm": "sha256", "get_mime": false}),
        )
        .await;
        let s = &r.data["stat"];
        assert_eq!(
            (s["islnk"].clone(), s["isreg"].clone()),
            (json!(false), json!(true))
        );
        assert_eq!(s["checksum"], Algo::Sha256.digest(b"one\ntwo\n"));
        assert!(s.get("mimetype").is_none());

        let r = run::<Stat>(false, json!({"path": p(d.path())})).await;
        assert_eq!(r.data["stat"]["isdir"], true);
        assert!(r.data["stat"].get("checksum").is_none());

        let r = run::<Stat>(false, json!({"path": p(&d.path().join("nope"))})).await;
        assert!(!r.failed, "{r:?}");
        assert_eq!(r.data["stat"], json!({"exists": false}));

        let r = run::<Stat>(false, json!({"path": p(&f), "checksum_algorithm": "crc"})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("crc"),
            "{r:?}"
        );
        let r = run::<Stat>(false, json!({"path": p(&f), "get_md5": true})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("get_md5"),
            "{r:?}"
        );
    }
}
