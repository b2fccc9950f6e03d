//! `find`: files below folders on the host that match names (shell globs, or Python-style regexes
//! with `use_regex`), age, size, mode and content, as Ansible's find returns them.
//!
//! One round trip walks every path: GNU `find -printf` (NUL-separated, so any file name is safe),
//! or, where find has no `-printf` (busybox) or with `follow: true` (find would then report the
//! link's target, where Ansible reports the link itself), `find -exec stat -c` (newline-separated:
//! a name with a newline in it is misread there). Names, age, size and mode are filtered here,
//! exactly as Ansible's find does. Only `contains` (which needs the files' content) and
//! `get_checksum` take a second round trip, for the files that passed every other filter.
//!
//! Like Ansible: `hidden: false` leaves out entries whose own name starts with a dot, but still
//! looks inside hidden folders; links are reported as links (`lstat`) even with `follow: true`,
//! which only makes the walk descend into linked folders; `depth: 0` means no limit. Unlike it:
//! `examined` counts entries down to `depth` (Ansible also counts the level below it); only a
//! leading `~` is expanded in paths (not `$VARS`); and a walk error in a subfolder (permission
//! denied) is reported in `skipped_paths` while the rest of the path is still searched.

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::stat::{known_name, normpath, path_word, type_bits, Algo, StatInfo};
use base64::Engine as _;
use regex::Regex;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "name", alias = "path", deserialize_with = "list")]
    pub paths: Vec<String>,
    #[serde(default, alias = "pattern", deserialize_with = "list")]
    pub patterns: Vec<String>,
    #[serde(default, alias = "exclude", deserialize_with = "list")]
    pub excludes: Vec<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub contains: Option<String>,
    #[serde(default, with = "boolish")]
    pub read_whole_file: bool,
    #[serde(default)]
    pub file_type: FileType,
    #[serde(default, deserialize_with = "stringish::option")]
    pub age: Option<String>,
    #[serde(default)]
    pub age_stamp: AgeStamp,
    #[serde(default, deserialize_with = "stringish::option")]
    pub size: Option<String>,
    #[serde(default, with = "boolish")]
    pub recurse: bool,
    #[serde(default, with = "boolish")]
    pub hidden: bool,
    #[serde(default, with = "boolish")]
    pub follow: bool,
    #[serde(default, with = "boolish")]
    pub get_checksum: bool,
    #[serde(default, alias = "checksum", alias = "checksum_algo")]
    pub checksum_algorithm: Algo,
    #[serde(default, with = "boolish")]
    pub use_regex: bool,
    #[serde(default, deserialize_with = "count")]
    pub depth: Option<u64>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub mode: Option<String>,
    #[serde(default = "yes", with = "boolish")]
    pub exact_mode: bool,
    #[serde(default, deserialize_with = "stringish::option")]
    pub encoding: Option<String>,
    #[serde(default, deserialize_with = "count")]
    pub limit: Option<u64>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    #[default]
    File,
    Directory,
    Link,
    Any,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgeStamp {
    Atime,
    Ctime,
    #[default]
    Mtime,
}

/// Ansible's `type: list`: a YAML list, or a string split on commas (not trimmed).
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    fn one(v: Value) -> String {
        match v {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }
    Ok(match Value::deserialize(d)? {
        Value::Null => vec![],
        Value::String(s) if s.is_empty() => vec![],
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        Value::Array(a) => a.into_iter().map(one).collect(),
        other => vec![one(other)],
    })
}

/// A whole number given as a number or a string.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(v) => Err(serde::de::Error::custom(format!(
            "'{v}' is not a whole number"
        ))),
    }
}

/// `age`: seconds, with an optional unit s, m, h, d or w; negative means "newer than".
pub fn parse_age(s: &str) -> Result<i64, String> {
    parse_amount(s, &[('s', 1), ('m', 60), ('h', 3600), ('d', 86400), ('w', 604_800)]).ok_or_else(
        || {
            format!(
                "failed to process age '{s}': give a number of seconds with an optional unit s, m, h, d or w (e.g. 2d; -1h for newer than an hour)"
            )
        },
    )
}

/// `size`: bytes, with an optional unit b, k, m, g or t (powers of 1024); negative means "at most".
pub fn parse_size(s: &str) -> Result<i64, String> {
    let k = 1024i64;
    parse_amount(
        s,
        &[('b', 1), ('k', k), ('m', k * k), ('g', k * k * k), ('t', k * k * k * k)],
    )
    .ok_or_else(|| {
        format!(
            "failed to process size '{s}': give a number of bytes with an optional unit b, k, m, g or t (e.g. 10k; -1m for at most 1 MiB)"
        )
    })
}

/// `^(-?\d+)(unit)?$`, case-insensitive, as Ansible's find parses age and size.
fn parse_amount(s: &str, units: &[(char, i64)]) -> Option<i64> {
    let s = s.to_lowercase();
    let (num, mult) = match s.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let m = units.iter().find(|(u, _)| *u == c)?.1;
            (&s[..s.len() - 1], m)
        }
        _ => (s.as_str(), 1),
    };
    let digits = num.strip_prefix('-').unwrap_or(num);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<i64>().ok()?.checked_mul(mult)
}

/// Python's `fnmatch.translate` for Rust's regex: `*`, `?`, `[seq]`, `[!seq]`; whole name.
pub fn glob_to_regex(pat: &str) -> String {
    let c: Vec<char> = pat.chars().collect();
    let n = c.len();
    let mut out = String::from(r"\A(?s:");
    let mut i = 0;
    let mut last_star = false;
    while i < n {
        let ch = c[i];
        i += 1;
        if ch == '*' {
            if !last_star {
                out.push_str(".*");
            }
            last_star = true;
            continue;
        }
        last_star = false;
        match ch {
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if j < n && c[j] == '!' {
                    j += 1;
                }
                if j < n && c[j] == ']' {
                    j += 1;
                }
                while j < n && c[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    out.push_str(r"\[");
                    continue;
                }
                out.push_str(&class(&c[i..j]));
                i = j + 1;
            }
            _ => out.push_str(&regex::escape(&ch.to_string())),
        }
    }
    out.push_str(r")\z");
    out
}

/// A glob bracket expression's inside (`!a-z_`) as a Rust regex class.
fn class(inner: &[char]) -> String {
    let (neg, items) = match inner.first() {
        Some('!') => (true, &inner[1..]),
        _ => (false, inner),
    };
    let esc = |ch: char| regex::escape(&ch.to_string());
    let mut body = String::new();
    let mut k = 0;
    while k < items.len() {
        if k + 2 < items.len() && items[k + 1] == '-' {
            let (a, b) = (items[k], items[k + 2]);
            if a <= b {
                body.push_str(&format!("{}-{}", esc(a), esc(b)));
            }
            k += 3;
        } else {
            body.push_str(&esc(items[k]));
            k += 1;
        }
    }
    match (neg, body.is_empty()) {
        (false, true) => r"\b\B".to_string(),
        (true, true) => ".".to_string(),
        (true, false) => format!("[^{body}]"),
        (false, false) => format!("[{body}]"),
    }
}

/// A Python regex for Rust's regex crate: `\Z` becomes `\z`; the rest is the same syntax (no
/// look-around or backreferences, which Rust refuses with a clear error).
fn python_regex(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut it = p.chars();
    while let Some(ch) = it.next() {
        if ch == '\\' {
            match it.next() {
                Some('Z') => out.push_str(r"\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(ch);
        }
    }
    out
}

fn compile(what: &str, p: &str, re: String) -> Result<Regex, String> {
    Regex::new(&re).map_err(|e| {
        format!(
            "invalid regular expression '{p}' in {what}: {e}; homelab uses Rust's regex syntax, \
             which is Python's without look-around and backreferences"
        )
    })
}

/// Name patterns, compiled once: Python's `re.match` (anchored at the start) or `fnmatch`.
pub struct NameFilter {
    patterns: Vec<Regex>,
    excludes: Vec<Regex>,
}

impl NameFilter {
    pub fn new(patterns: &[String], excludes: &[String], use_regex: bool) -> Result<Self, String> {
        let build = |what: &str, ps: &[String]| -> Result<Vec<Regex>, String> {
            ps.iter()
                .map(|p| {
                    let re = if use_regex {
                        format!(r"\A(?:{})", python_regex(p))
                    } else {
                        glob_to_regex(p)
                    };
                    compile(what, p, re)
                })
                .collect()
        };
        let default = if use_regex { ".*" } else { "*" };
        let patterns = if patterns.is_empty() {
            vec![default.to_string()]
        } else {
            patterns.to_vec()
        };
        Ok(NameFilter {
            patterns: build("patterns", &patterns)?,
            excludes: build("excludes", excludes)?,
        })
    }

    /// Ansible's `pfilter`: some pattern matches and no exclude does.
    pub fn matches(&self, name: &str) -> bool {
        let m =
            |r: &Regex| r.is_match(name) || name.strip_suffix('\n').is_some_and(|n| r.is_match(n));
        self.patterns.iter().any(m) && !self.excludes.iter().any(m)
    }
}

/// `contains`: Python's `re.match` on each line, or `re.search` on the whole file.
pub struct ContentFilter {
    re: Regex,
    whole: bool,
    encoding: Encoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

impl ContentFilter {
    pub fn new(pattern: &str, whole: bool, encoding: Option<&str>) -> Result<Self, String> {
        let encoding = match encoding.map(|e| e.to_ascii_lowercase().replace('_', "-")) {
            None => Encoding::Utf8,
            Some(e) if e == "utf-8" || e == "utf8" => Encoding::Utf8,
            Some(e) if ["latin-1", "latin1", "iso-8859-1", "iso8859-1"].contains(&e.as_str()) => {
                Encoding::Latin1
            }
            Some(e) if e == "ascii" || e == "us-ascii" => Encoding::Ascii,
            Some(e) => {
                return Err(format!(
                    "encoding '{e}' is not supported for contains; use utf-8, latin-1 or ascii"
                ))
            }
        };
        let re = if whole {
            python_regex(pattern)
        } else {
            format!(r"\A(?:{})", python_regex(pattern))
        };
        Ok(ContentFilter {
            re: compile("contains", pattern, re)?,
            whole,
            encoding,
        })
    }

    /// Whether the content matches; content that does not decode does not match (as in Python).
    pub fn matches(&self, data: &[u8]) -> bool {
        let text: String = match self.encoding {
            Encoding::Latin1 => data.iter().map(|&b| b as char).collect(),
            Encoding::Ascii if !data.is_ascii() => {
                let ok = data.iter().position(|b| !b.is_ascii()).unwrap_or(0);
                if self.whole {
                    return false;
                }
                String::from_utf8_lossy(&data[..ok]).into_owned()
            }
            Encoding::Ascii => String::from_utf8_lossy(data).into_owned(),
            Encoding::Utf8 => match std::str::from_utf8(data) {
                Ok(s) => s.to_string(),
                Err(_) if self.whole => return false,
                // Lines before the undecodable part are still read, as Python reads them.
                Err(e) => String::from_utf8_lossy(&data[..e.valid_up_to()]).into_owned(),
            },
        };
        // Python's universal newlines.
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let m = |s: &str| {
            self.re.is_match(s) || s.strip_suffix('\n').is_some_and(|t| self.re.is_match(t))
        };
        if self.whole {
            return m(&text);
        }
        text.split_inclusive('\n').any(m)
    }
}

/// GNU find's format: type letter, permission bits, ids, size, inode, device, links, times,
/// names, path; NUL-terminated.
const GNU_FMT: &str = r"%y %m %U %G %s %i %D %n %A@ %T@ %C@ %u %g %p\0";
/// The same fields from `stat` (raw mode in hex first), newline-terminated.
const STAT_FMT: &str = "%f %a %u %g %s %i %d %h %X %Y %Z %U %G %n";

/// The walk of every path, in one command. Output: NUL-separated tokens: `HLNOW <time>`, then
/// per path `HLP <i> <path>`, its entries, `HLE <errors>`; or `HLX <i> <path>` if not a folder.
pub fn walk_script(
    paths: &[String],
    maxdepth: Option<u64>,
    follow: bool,
    force_stat: bool,
) -> String {
    let hl = if follow { "-L" } else { "-H" };
    let md = maxdepth
        .map(|d| format!(" -maxdepth {d}"))
        .unwrap_or_default();
    let mut s = String::from(
        "LC_ALL=C; export LC_ALL; exec 3>&1; printf 'HLNOW %s\\0' \"$(date +%s.%N 2>/dev/null)\"; ",
    );
    if force_stat || follow {
        s.push_str("g=0; ");
    } else {
        s.push_str("if find / -maxdepth 0 -printf '' >/dev/null 2>&1; then g=1; else g=0; fi; ");
    }
    for (i, p) in paths.iter().enumerate() {
        s.push_str(&format!(
            "p={}; if [ -d \"$p\" ]; then printf 'HLP {i} %s\\0' \"$p\"; \
             if [ $g = 1 ]; then e=$(find {hl} \"$p\" -mindepth 1{md} -printf '{GNU_FMT}' 2>&1 >&3); \
             else e=$( {{ find {hl} \"$p\" -mindepth 1{md} -exec stat -c '{STAT_FMT}' {{}} + | tr '\\n' '\\0' >&3; }} 2>&1); fi; \
             printf 'HLE %s\\0' \"$e\"; else printf 'HLX {i} %s\\0' \"$p\"; fi; ",
            path_word(p)
        ));
    }
    s
}

/// One entry of the walk.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub path: String,
    pub st: StatInfo,
}

/// What the walk found.
#[derive(Debug, Default, PartialEq)]
pub struct Walk {
    /// The host's time, seconds since the epoch (for `age`).
    pub now: Option<f64>,
    pub entries: Vec<Entry>,
    /// Paths not searched (or not wholly), and why.
    pub skipped: Map<String, Value>,
}

/// Parses one entry line of either format.
pub fn parse_entry(tok: &str) -> Option<Entry> {
    let f: Vec<&str> = tok.splitn(14, ' ').collect();
    if f.len() != 14 {
        return None;
    }
    let mut t = f[0].chars();
    let mode = match (t.next(), t.next()) {
        (Some(c), None) => type_bits(c) | u32::from_str_radix(f[1], 8).ok()?,
        _ => u32::from_str_radix(f[0], 16).ok()?,
    };
    let n = |i: usize| f[i].parse::<u64>().ok();
    let time = |i: usize| f[i].parse::<f64>().ok();
    let uid = n(2)? as u32;
    let gid = n(3)? as u32;
    Some(Entry {
        path: normpath(f[13]),
        st: StatInfo {
            mode,
            uid,
            gid,
            size: n(4)?,
            inode: n(5)?,
            dev: n(6)?,
            nlink: n(7)?,
            atime: time(8)?,
            mtime: time(9)?,
            ctime: time(10)?,
            pw_name: known_name(f[11], uid),
            gr_name: known_name(f[12], gid),
        },
    })
}

/// `find: 'PATH': REASON` lines (C locale) as path → reason; other text under `root`.
fn walk_errors(root: &str, text: &str, skipped: &mut Map<String, Value>) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line
            .strip_prefix("find: '")
            .and_then(|r| r.rsplit_once("': "))
            .map(|(p, why)| (p.to_string(), format!("{why}: '{p}'")));
        let (key, why) = parsed.unwrap_or_else(|| (root.to_string(), line.to_string()));
        skipped.insert(key, why.into());
    }
}

/// Parses what [`walk_script`] printed.
pub fn parse_walk(out: &[u8]) -> Walk {
    let mut w = Walk::default();
    let mut root = String::new();
    for tok in out.split(|&b| b == 0) {
        if tok.is_empty() {
            continue;
        }
        let tok = String::from_utf8_lossy(tok);
        if let Some(t) = tok.strip_prefix("HLNOW ") {
            let digits: String = t
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            w.now = digits
                .parse::<f64>()
                .ok()
                .or_else(|| digits.split('.').next().and_then(|s| s.parse().ok()));
        } else if let Some(r) = tok.strip_prefix("HLP ") {
            root = r.split_once(' ').map(|(_, p)| p).unwrap_or("").to_string();
        } else if let Some(e) = tok.strip_prefix("HLE ") {
            walk_errors(&root, e, &mut w.skipped);
        } else if let Some(r) = tok.strip_prefix("HLX ") {
            let p = r.split_once(' ').map(|(_, p)| p).unwrap_or("");
            w.skipped
                .insert(p.to_string(), format!("'{p}' is not a directory").into());
        } else if let Some(e) = parse_entry(&tok) {
            w.entries.push(e);
        }
    }
    w
}

/// The filters that need only the walk.
pub struct Filters {
    pub names: NameFilter,
    pub age: Option<i64>,
    pub size: Option<i64>,
    pub mode: Option<u32>,
}

impl Filters {
    fn from_args(a: &Args) -> Result<Filters, String> {
        let mode = match a.mode.as_deref().filter(|m| !m.is_empty()) {
            None => None,
            Some(m) => Some(
                super::file::resolve_mode(m, 0, false).map_err(|e| {
                    format!("{e} (mode takes octal like 0644 or symbolic like u+x)")
                })? & 0o7777,
            ),
        };
        Ok(Filters {
            names: NameFilter::new(&a.patterns, &a.excludes, a.use_regex)?,
            age: a.age.as_deref().map(parse_age).transpose()?,
            size: a.size.as_deref().map(parse_size).transpose()?,
            mode,
        })
    }
}

fn age_ok(age: Option<i64>, st: &StatInfo, now: f64, stamp: AgeStamp) -> bool {
    let t = match stamp {
        AgeStamp::Atime => st.atime,
        AgeStamp::Ctime => st.ctime,
        AgeStamp::Mtime => st.mtime,
    };
    match age {
        None => true,
        Some(a) if a >= 0 => now - t >= a as f64,
        Some(a) => now - t <= a.unsigned_abs() as f64,
    }
}

fn size_ok(size: Option<i64>, st: &StatInfo) -> bool {
    match size {
        None => true,
        Some(s) if s >= 0 => st.size >= s as u64,
        Some(s) => st.size <= s.unsigned_abs(),
    }
}

fn mode_ok(mode: Option<u32>, exact: bool, st: &StatInfo) -> bool {
    match mode {
        None => true,
        Some(m) if exact => st.perms() == m,
        Some(m) => st.perms() & m != 0,
    }
}

/// Ansible's per-entry decision, without `contains`: whether the entry is a match.
pub fn selects(a: &Args, f: &Filters, e: &Entry, now: f64) -> bool {
    let name = e.path.rsplit('/').next().unwrap_or(&e.path);
    if name.starts_with('.') && !a.hidden {
        return false;
    }
    let st = &e.st;
    let kind_ok = match a.file_type {
        FileType::Any => !st.isreg() || size_ok(f.size, st),
        FileType::Directory => st.isdir(),
        FileType::File => st.isreg() && size_ok(f.size, st),
        FileType::Link => st.islnk(),
    };
    kind_ok
        && f.names.matches(name)
        && age_ok(f.age, st, now, a.age_stamp)
        && mode_ok(f.mode, a.exact_mode, st)
}

/// The second round trip: for each path on stdin (one a line), its checksum (`HLS i sum`) and/or
/// its content in base64 (`HLC i data`; `!` when unreadable).
pub fn content_script(sum_tool: Option<&str>, content: bool) -> String {
    let mut s = String::from("LC_ALL=C; export LC_ALL; ");
    if let Some(t) = sum_tool {
        s.push_str(&format!(
            "command -v {t} >/dev/null 2>&1 || {{ echo HLNOSUM; exit 0; }}; "
        ));
    }
    s.push_str("i=0; while IFS= read -r f; do ");
    if let Some(t) = sum_tool {
        s.push_str(&format!(
            "if [ -r \"$f\" ]; then printf 'HLS %s %s\\n' \"$i\" \"$({t} < \"$f\" 2>/dev/null | cut -d' ' -f1)\"; fi; "
        ));
    }
    if content {
        s.push_str(
            "if [ -r \"$f\" ]; then printf 'HLC %s ' \"$i\"; base64 < \"$f\" | tr -d '\\n'; echo; \
             else printf 'HLC %s !\\n' \"$i\"; fi; ",
        );
    }
    s.push_str("i=$((i+1)); done");
    s
}

/// A file's checksum and content, as the second round trip reported them.
pub type Read = (Option<String>, Option<Vec<u8>>);

/// Per file sent: its checksum and content, when reported.
pub fn parse_content(out: &[u8], n: usize) -> Result<Vec<Read>, String> {
    let mut v = vec![(None, None); n];
    let text = String::from_utf8_lossy(out);
    for line in text.lines() {
        if line == "HLNOSUM" {
            return Err("nosum".into());
        }
        let mut w = line.splitn(3, ' ');
        let (tag, i, rest) = (
            w.next(),
            w.next().and_then(|i| i.parse::<usize>().ok()),
            w.next(),
        );
        let (Some(i), Some(rest)) = (i.filter(|i| *i < n), rest) else {
            continue;
        };
        match tag {
            Some("HLS") if !rest.is_empty() => v[i].0 = Some(rest.to_string()),
            Some("HLC") => {
                v[i].1 = base64::engine::general_purpose::STANDARD.decode(rest).ok();
            }
            _ => {}
        }
    }
    Ok(v)
}

pub struct Plan {
    files: Vec<Value>,
    examined: usize,
    skipped: Map<String, Value>,
    limit_reached: bool,
}

pub struct Find;

impl Module for Find {
    const NAME: &'static str = "find";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if a.paths.is_empty() {
            return Err(ModuleError::Failed(
                "paths is empty: give one or more folders to search".into(),
            ));
        }
        let filters = Filters::from_args(a).map_err(ModuleError::Failed)?;
        let contains = a
            .contains
            .as_deref()
            .filter(|_| a.file_type == FileType::File)
            .map(|c| ContentFilter::new(c, a.read_whole_file, a.encoding.as_deref()))
            .transpose()
            .map_err(ModuleError::Failed)?;
        let maxdepth = match (a.recurse, a.depth) {
            (false, _) => Some(1),
            (true, Some(d)) if d > 0 => Some(d),
            (true, _) => None,
        };
        let out = ctx
            .exec(walk_script(&a.paths, maxdepth, a.follow, false))
            .await?;
        let walk = parse_walk(&out.stdout);
        if walk.entries.is_empty() && walk.skipped.is_empty() && !out.stdout.starts_with(b"HLNOW") {
            return Err(ModuleError::Failed(format!(
                "the host did not run the search: {}",
                out.stderr_str().trim()
            )));
        }
        let now = walk.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        });
        let mut picked: Vec<&Entry> = walk
            .entries
            .iter()
            .filter(|e| selects(a, &filters, e, now))
            .collect();

        // Content and checksums, for the regular files that need them, in one more round trip.
        let want_content = contains.is_some();
        let want_sum = a.get_checksum && !want_content;
        let mut sums: Vec<Option<String>> = vec![None; picked.len()];
        let mut datas: Vec<Option<Vec<u8>>> = vec![None; picked.len()];
        if want_content || a.get_checksum {
            let sent: Vec<usize> = (0..picked.len())
                .filter(|&i| picked[i].st.isreg() && !picked[i].path.contains('\n'))
                .collect();
            if !sent.is_empty() {
                let tool = a.checksum_algorithm.tool();
                let script = content_script(want_sum.then_some(tool.as_str()), want_content);
                let list: String = sent
                    .iter()
                    .map(|&i| format!("{}\n", picked[i].path))
                    .collect();
                let out = ctx.exec_with(script, Some(list.into_bytes())).await?;
                let got = parse_content(&out.stdout, sent.len()).map_err(|_| {
                    ModuleError::Failed(format!(
                        "cannot compute {} checksums: {tool} is not installed on the host; install it (coreutils) or use checksum_algorithm: sha1, or get_checksum: false",
                        a.checksum_algorithm.name()
                    ))
                })?;
                for (k, (sum, data)) in got.into_iter().enumerate() {
                    sums[sent[k]] = sum;
                    datas[sent[k]] = data;
                }
            }
        }
        let mut files = vec![];
        let mut limit_reached = false;
        for (i, e) in picked.drain(..).enumerate() {
            if let Some(c) = &contains {
                if !datas[i].as_deref().is_some_and(|d| c.matches(d)) {
                    continue;
                }
            }
            let mut o = Map::new();
            o.insert("path".into(), e.path.clone().into());
            o.extend(e.st.find_fields());
            if a.get_checksum && e.st.isreg() {
                let sum = match &datas[i] {
                    Some(d) => Some(a.checksum_algorithm.digest(d)),
                    None => sums[i].clone(),
                };
                o.insert(
                    "checksum".into(),
                    sum.map(Value::from).unwrap_or(Value::Null),
                );
            }
            files.push(Value::Object(o));
            if a.limit.is_some_and(|l| l > 0 && files.len() as u64 >= l) {
                limit_reached = true;
                break;
            }
        }
        Ok(Plan {
            files,
            examined: walk.entries.len(),
            skipped: walk.skipped,
            limit_reached,
        })
    }

    fn describe(_ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) -> TaskResult {
        let msg = if !p.skipped.is_empty() {
            "Not all paths examined, check warnings for details"
        } else if p.limit_reached {
            "Limit of matches reached"
        } else {
            "All paths examined"
        };
        TaskResult::changed(false)
            .msg(msg)
            .with("files", p.files.clone())
            .with("matched", p.files.len())
            .with("examined", p.examined)
            .with("skipped_paths", Value::Object(p.skipped.clone()))
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

    #[test]
    fn ages_and_sizes() {
        assert_eq!(parse_age("30"), Ok(30));
        assert_eq!(parse_age("2d"), Ok(172_800));
        assert_eq!(parse_age("-1H"), Ok(-3600));
        assert_eq!(parse_age("1w"), Ok(604_800));
        assert!(parse_age("1y").is_err());
        assert!(parse_age("1.5d").is_err());
        assert!(parse_age("").is_err());
        assert!(parse_age("-").is_err());
        assert!(parse_age("d").is_err());
        assert_eq!(parse_size("10k"), Ok(10_240));
        assert_eq!(parse_size("-1m"), Ok(-1_048_576));
        assert_eq!(parse_size("7"), Ok(7));
        assert_eq!(parse_size("2G"), Ok(2 * 1024 * 1024 * 1024));
        assert!(parse_size("1kb").is_err());
        assert!(parse_size("99999999999999999999t").is_err());
        let e = parse_size("lots").unwrap_err();
        assert!(e.contains("10k"), "{e}");
    }

    #[test]
    fn globs_match_as_fnmatch() {
        let g = |p: &str, name: &str| Regex::new(&glob_to_regex(p)).unwrap().is_match(name);
        assert!(g("*.txt", "a.txt"));
        assert!(g("*.txt", ".txt"), "fnmatch's * matches a leading dot");
        assert!(!g("*.txt", "a.txt.bak"), "whole name");
        assert!(!g("*.TXT", "a.txt"), "case-sensitive");
        assert!(g("?.log", "a.log") && !g("?.log", "ab.log"));
        assert!(g("[ab]*", "apple") && !g("[ab]*", "cherry"));
        assert!(g("[!ab]*", "cherry") && !g("[!ab]*", "apple"));
        assert!(g("file[0-9]", "file7") && !g("file[0-9]", "filex"));
        assert!(g("[]]x", "]x"), "] first in a class is literal");
        assert!(g("a[", "a["), "an unclosed [ is literal");
        assert!(g("a.b+c(d)", "a.b+c(d)") && !g("a.b", "axb"));
        assert!(g("[a-]", "-"), "trailing - is literal");
        assert!(!g("[z-a]", "m"), "an empty range matches nothing");
        assert!(g("x*y*", "x\ny"), "* matches newlines too");
    }

    #[test]
    fn name_filter_patterns_excludes_and_regex() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let f = NameFilter::new(&s(&["*.log", "*.txt"]), &s(&["secret*"]), false).unwrap();
        assert!(f.matches("a.log") && f.matches("b.txt"));
        assert!(!f.matches("secret.log") && !f.matches("a.conf"));
        // No patterns: everything but the excludes.
        let f = NameFilter::new(&[], &s(&["*.bak"]), false).unwrap();
        assert!(f.matches("x") && !f.matches("x.bak"));
        // Regex: re.match, anchored at the start only.
        let f = NameFilter::new(&s(&[r"a\d+"]), &[], true).unwrap();
        assert!(f.matches("a12.txt") && !f.matches("ba12"));
        let f = NameFilter::new(&s(&[r"^.*?\.(?:old|sav)$"]), &[], true).unwrap();
        assert!(f.matches("x.old") && !f.matches("x.old.1"));
        let f = NameFilter::new(&s(&[r"x\Z"]), &[], true).unwrap();
        assert!(f.matches("x") && !f.matches("xy"));
        let e = NameFilter::new(&s(&[r"(?<=a)b"]), &[], true).err().unwrap();
        assert!(e.contains("look-around") || e.contains("invalid"), "{e}");
        assert!(e.contains("patterns"), "{e}");
    }

    #[test]
    fn contents_match_per_line_or_whole() {
        let c = ContentFilter::new("foo", false, None).unwrap();
        assert!(c.matches(b"x\nfoo bar\n"));
        assert!(
            !c.matches(b"x\nbar foo\n"),
            "re.match: from the start of a line"
        );
        let c = ContentFilter::new("foo$", false, None).unwrap();
        assert!(c.matches(b"a\nfoo\nb"), "$ before the line's newline");
        assert!(c.matches(b"a\r\nfoo\r\n"), "universal newlines");
        let c = ContentFilter::new("bar foo", true, None).unwrap();
        assert!(c.matches(b"x\nbar foo\n"));
        let c = ContentFilter::new("a\nb", true, None).unwrap();
        assert!(c.matches(b"xa\nby"));
        let c = ContentFilter::new("caf", true, None).unwrap();
        assert!(!c.matches(b"caf\xff"), "undecodable content does not match");
        let c = ContentFilter::new("caf", false, None).unwrap();
        assert!(c.matches(b"caf\n\xff"), "lines before it still do");
        let c = ContentFilter::new("caf\u{e9}", false, Some("latin-1")).unwrap();
        assert!(c.matches(b"caf\xe9\n"));
        assert!(ContentFilter::new("x", false, Some("ebcdic")).is_err());
    }

    #[test]
    fn parses_both_walk_formats() {
        let gnu = b"HLNOW 1700000100.5\0HLP 0 /d\0f 644 0 0 12 77 2049 1 1700000000.25 1700000000.5 1700000000.75 root root /d/a b.txt\0\
d 755 1000 1000 4096 78 2049 2 1 2 3 1000 nogroup /d/sub\0HLE \0HLX 1 /nope\0";
        let w = parse_walk(gnu);
        assert_eq!(w.now, Some(1_700_000_100.5));
        assert_eq!(w.entries.len(), 2);
        let e = &w.entries[0];
        assert_eq!(e.path, "/d/a b.txt");
        assert!(e.st.isreg());
        assert_eq!((e.st.perms(), e.st.size, e.st.inode), (0o644, 12, 77));
        assert_eq!(e.st.mtime, 1_700_000_000.5);
        assert_eq!(e.st.pw_name, "root");
        let d = &w.entries[1];
        assert!(d.st.isdir());
        assert_eq!(
            (d.st.pw_name.as_str(), d.st.gr_name.as_str()),
            ("", "nogroup")
        );
        assert_eq!(w.skipped["/nope"], "'/nope' is not a directory");

        let stat =
            b"HLNOW 1700000100.%N\0HLP 0 /d/\0a1ff 777 0 0 3 9 2049 1 5 6 7 root UNKNOWN /d//l\0\
HLE find: '/d/x': Permission denied\nstrange\0";
        let w = parse_walk(stat);
        assert_eq!(w.now, Some(1_700_000_100.0));
        let l = &w.entries[0];
        assert_eq!(l.path, "/d/l");
        assert!(l.st.islnk() && !l.st.isreg());
        assert_eq!((l.st.mtime, l.st.gr_name.as_str()), (6.0, ""));
        assert_eq!(w.skipped["/d/x"], "Permission denied: '/d/x'");
        assert_eq!(w.skipped["/d/"], "strange");
    }

    #[test]
    fn per_entry_filters() {
        let a: Args = serde_json::from_value(json!({
            "paths": "/d", "patterns": "*.log", "age": "1h", "size": "-10", "mode": "0644"
        }))
        .unwrap();
        let f = Filters::from_args(&a).unwrap();
        let e = |name: &str, mode: u32, size: u64, mtime: f64| Entry {
            path: format!("/d/{name}"),
            st: StatInfo {
                mode,
                size,
                mtime,
                ..Default::default()
            },
        };
        let now = 10_000.0;
        assert!(selects(&a, &f, &e("a.log", 0o100644, 5, 1000.0), now));
        assert!(
            !selects(&a, &f, &e("a.log", 0o100644, 5, 9000.0), now),
            "too new"
        );
        assert!(
            !selects(&a, &f, &e("a.log", 0o100644, 11, 1000.0), now),
            "too big"
        );
        assert!(
            !selects(&a, &f, &e("a.log", 0o100600, 5, 1000.0), now),
            "mode"
        );
        assert!(
            !selects(&a, &f, &e("a.txt", 0o100644, 5, 1000.0), now),
            "name"
        );
        assert!(
            !selects(&a, &f, &e(".a.log", 0o100644, 5, 1000.0), now),
            "hidden"
        );
        assert!(
            !selects(&a, &f, &e("a.log", 0o040644, 5, 1000.0), now),
            "a folder"
        );
        let a: Args = serde_json::from_value(json!({"paths": ["/d"], "file_type": "any", "size": "10", "age": "-1h", "mode": "u+x", "exact_mode": false})).unwrap();
        let f = Filters::from_args(&a).unwrap();
        assert!(
            selects(&a, &f, &e("dir", 0o040755, 0, 9000.0), now),
            "size is for files only"
        );
        assert!(!selects(&a, &f, &e("small", 0o100755, 5, 9000.0), now));
        assert!(!selects(&a, &f, &e("old", 0o100755, 50, 1000.0), now));
        assert!(!selects(&a, &f, &e("noexec", 0o100644, 50, 9000.0), now));
        assert!(Filters::from_args(
            &serde_json::from_value(json!({"paths": "/d", "age": "soon"})).unwrap()
        )
        .is_err());
    }

    #[test]
    fn args_as_ansible_takes_them() {
        let a: Args = serde_json::from_value(
            json!({"path": "/a,/b", "pattern": "*.x", "exclude": ["y", 1], "depth": "2", "recurse": "yes"}),
        )
        .unwrap();
        assert_eq!(a.paths, ["/a", "/b"]);
        assert_eq!(a.patterns, ["*.x"]);
        assert_eq!(a.excludes, ["y", "1"]);
        assert_eq!((a.depth, a.recurse), (Some(2), true));
        assert_eq!(a.file_type, FileType::File);
        assert!(
            serde_json::from_value::<Args>(json!({"paths": "/a", "file_type": "socket"})).is_err()
        );
        assert!(serde_json::from_value::<Args>(json!({"paths": "/a", "depth": "deep"})).is_err());
    }

    /// A tree: a.txt (old), b.log, big.log, .hidden.txt, sub/c.txt, sub/deeper/d.txt, .h/e.txt,
    /// link -> a.txt, linkdir -> sub.
    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(p.join(".h")).unwrap();
        std::fs::write(p.join("a.txt"), "alpha\nneedle here\n").unwrap();
        std::fs::write(p.join("b.log"), "beta\n").unwrap();
        std::fs::write(p.join("big.log"), vec![b'x'; 20_000]).unwrap();
        std::fs::write(p.join(".hidden.txt"), "h\n").unwrap();
        std::fs::write(p.join("sub/c.txt"), "gamma needle\n").unwrap();
        std::fs::write(p.join("sub/deeper/d.txt"), "needle\n").unwrap();
        std::fs::write(p.join(".h/e.txt"), "e\n").unwrap();
        std::os::unix::fs::symlink("a.txt", p.join("link")).unwrap();
        std::os::unix::fs::symlink("sub", p.join("linkdir")).unwrap();
        let old = std::process::Command::new("touch")
            .args(["-d", "2001-01-01"])
            .arg(p.join("a.txt"))
            .status()
            .unwrap();
        assert!(old.success());
        d
    }

    fn names(r: &TaskResult, root: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = r.data["files"]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .map(|f| {
                f["path"]
                    .as_str()
                    .unwrap()
                    .strip_prefix(&format!("{}/", root.display()))
                    .unwrap()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn finds_on_this_machine() {
        let d = tree();
        let root = d.path().display().to_string();
        let go = |args: Value| async move {
            let r = run::<Find>(false, args).await;
            assert!(!r.failed && !r.changed, "{r:?}");
            r
        };
        let r = go(json!({"paths": root})).await;
        assert_eq!(names(&r, d.path()), ["a.txt", "b.log", "big.log"]);
        assert_eq!(r.data["matched"], 3);
        assert_eq!(r.data["examined"], 8, "{r:?}");
        assert_eq!(r.msg.as_deref(), Some("All paths examined"));

        let r = go(json!({"paths": root, "recurse": true, "patterns": "*.txt"})).await;
        assert_eq!(
            names(&r, d.path()),
            [".h/e.txt", "a.txt", "sub/c.txt", "sub/deeper/d.txt"]
        );
        let r = go(json!({"paths": root, "recurse": true, "patterns": "*.txt", "depth": 2, "hidden": true})).await;
        assert_eq!(
            names(&r, d.path()),
            [".h/e.txt", ".hidden.txt", "a.txt", "sub/c.txt"]
        );
        // contains: re.match per line, so "gamma needle" does not count.
        let r =
            go(json!({"paths": root, "recurse": true, "contains": "needle", "get_checksum": true}))
                .await;
        assert_eq!(names(&r, d.path()), ["a.txt", "sub/deeper/d.txt"]);
        let d_txt = r.data["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with("/d.txt"))
            .unwrap();
        assert_eq!(d_txt["checksum"], Algo::Sha1.digest(b"needle\n"));
        let r = go(json!({"paths": root, "recurse": true, "contains": ".*needle", "read_whole_file": true})).await;
        assert_eq!(
            names(&r, d.path()),
            ["a.txt", "sub/c.txt", "sub/deeper/d.txt"]
        );
        let r = go(json!({"paths": root, "age": "1d"})).await;
        assert_eq!(names(&r, d.path()), ["a.txt"]);
        let r = go(json!({"paths": root, "age": "-1d"})).await;
        assert_eq!(names(&r, d.path()), ["b.log", "big.log"]);
        let r = go(json!({"paths": root, "size": "10k"})).await;
        assert_eq!(names(&r, d.path()), ["big.log"]);
        let r = go(json!({"paths": root, "file_type": "link"})).await;
        assert_eq!(names(&r, d.path()), ["link", "linkdir"]);
        let r = go(
            json!({"paths": root, "file_type": "directory", "use_regex": true, "patterns": "s.b$"}),
        )
        .await;
        assert_eq!(names(&r, d.path()), ["sub"]);
        let r = go(json!({"paths": root, "get_checksum": true, "checksum_algorithm": "sha256", "patterns": "b.log"})).await;
        assert_eq!(
            r.data["files"][0]["checksum"],
            Algo::Sha256.digest(b"beta\n")
        );
        assert_eq!(r.data["files"][0]["mode"].as_str().map(str::len), Some(4));
        // follow: the walk goes through linkdir; links stay links (lstat).
        let r =
            go(json!({"paths": root, "recurse": true, "follow": true, "patterns": "c.txt"})).await;
        assert_eq!(names(&r, d.path()), ["linkdir/c.txt", "sub/c.txt"]);
        let r = go(json!({"paths": [root.clone(), format!("{root}/nope")], "patterns": "b.log", "limit": 1})).await;
        assert_eq!(names(&r, d.path()), ["b.log"]);
        assert!(r.data["skipped_paths"][format!("{root}/nope")]
            .as_str()
            .unwrap()
            .contains("is not a directory"));
        assert_eq!(
            r.msg.as_deref(),
            Some("Not all paths examined, check warnings for details")
        );
        // Check mode finds the same.
        let r = run::<Find>(true, json!({"paths": root})).await;
        assert_eq!(names(&r, d.path()), ["a.txt", "b.log", "big.log"]);
        // Bad input fails before the host is asked.
        let r = run::<Find>(false, json!({"paths": root, "age": "old"})).await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("failed to process age"),
            "{r:?}"
        );
        let r = run::<Find>(
            false,
            json!({"paths": root, "patterns": "(", "use_regex": true}),
        )
        .await;
        assert!(r.failed, "{r:?}");
    }

    #[tokio::test]
    async fn the_stat_walk_reads_the_same_as_gnu_find() {
        use crate::transport::local::LocalConnection;
        use crate::transport::{Connection, ExecRequest};
        let d = tree();
        let c = Connection::Local(LocalConnection::new("t"));
        let paths = vec![d.path().display().to_string()];
        let mut walks = vec![];
        for force_stat in [false, true] {
            let out = c
                .exec(&ExecRequest::new(walk_script(
                    &paths, None, false, force_stat,
                )))
                .await
                .unwrap();
            let mut w = parse_walk(&out.stdout);
            w.now = None;
            for e in &mut w.entries {
                // stat gives whole seconds.
                e.st.atime = e.st.atime.floor();
                e.st.mtime = e.st.mtime.floor();
                e.st.ctime = e.st.ctime.floor();
            }
            w.entries.sort_by(|a, b| a.path.cmp(&b.path));
            walks.push(w);
        }
        assert_eq!(walks[0].entries.len(), 12);
        assert_eq!(walks[0], walks[1]);
    }
}
