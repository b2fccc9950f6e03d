//! `get_url`: download a URL to a path ON THE TARGET, with curl or wget (whichever the host has).
//! Probe, one round trip: which downloader exists, dest's state (and, when dest is a folder, the
//! file named after the URL inside it) and its checksum. Rules, as Ansible:
//! - dest exists and `checksum` is given and matches: no change, no download;
//! - dest exists, no checksum, `force: false`: no change, no download;
//! - otherwise the file is downloaded to a temp file beside dest, its checksum verified (a
//!   mismatch fails and leaves dest untouched and no temp file), and renamed over dest; with
//!   `force` and identical content nothing is replaced (changed=false).
//!
//! Check mode downloads nothing: it says it would download. Credentials and headers go to the
//! downloader through a config read from stdin, never on a command line, and the password is
//! never printed.

use super::core::{boolish, numish, Module, ModuleError, TaskCtx, TaskResult};
use super::remote::{self, Kind, PathState, Want};
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub url: String,
    pub dest: String,
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default, deserialize_with = "super::core::modeish::option")]
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    #[serde(default, with = "boolish")]
    pub force: bool,
    #[serde(default)]
    pub headers: Option<Value>,
    #[serde(default, deserialize_with = "numish::option")]
    pub timeout: Option<f64>,
    #[serde(alias = "username")]
    pub url_username: Option<String>,
    #[serde(alias = "password")]
    pub url_password: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub force_basic_auth: Option<bool>,
    #[serde(default = "yes", with = "boolish")]
    pub validate_certs: bool,
    #[serde(default, with = "boolish")]
    pub backup: bool,
}

fn yes() -> bool {
    true
}

/// A checksum argument: algorithm and lowercase hex digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algo: &'static str,
    pub hex: String,
}

/// Parses `ALGO:HEX` (sha1, sha224, sha256, sha384, sha512, md5).
pub fn parse_checksum(s: &str) -> Result<Checksum, String> {
    let (algo, hex) = s
        .split_once(':')
        .ok_or_else(|| format!("checksum '{s}' must be ALGORITHM:HEX, e.g. sha256:0123..."))?;
    let (algo, len): (&'static str, usize) = match algo.trim().to_ascii_lowercase().as_str() {
        "md5" => ("md5", 32),
        "sha1" => ("sha1", 40),
        "sha224" => ("sha224", 56),
        "sha256" => ("sha256", 64),
        "sha384" => ("sha384", 96),
        "sha512" => ("sha512", 128),
        other => {
            return Err(format!(
                "checksum algorithm '{other}' is not supported: use md5, sha1, sha224, sha256, sha384 or sha512"
            ))
        }
    };
    let hex = hex.trim().to_ascii_lowercase();
    if hex.starts_with("http://") || hex.starts_with("https://") || hex.starts_with("file://") {
        return Err("a checksum from a URL is not supported: give the digest itself".into());
    }
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "checksum '{s}' is not a valid {algo} digest ({len} hex digits)"
        ));
    }
    Ok(Checksum { algo, hex })
}

/// Headers as (name, value): a mapping, or Ansible's old `"K:V,K:V"` string.
pub fn parse_headers(v: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let mut out = vec![];
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let v = match v {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                };
                out.push((k.clone(), v));
            }
        }
        Some(Value::String(s)) => {
            for part in s.split(',').filter(|p| !p.trim().is_empty()) {
                let (k, v) = part
                    .split_once(':')
                    .ok_or_else(|| format!("header '{part}' is not NAME:VALUE"))?;
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Some(o) => return Err(format!("headers must be a mapping, not {o}")),
    }
    for (k, v) in &out {
        if k.is_empty() || k.contains([':', '\n', '\r']) || v.contains(['\n', '\r']) {
            return Err(format!("header '{k}' is not a valid header"));
        }
    }
    Ok(out)
}

/// The file name a URL gives (its last path segment), for a dest that is a folder.
pub fn url_file_name(url: &str) -> Option<String> {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = no_query.split_once("://").map(|x| x.1).unwrap_or(no_query);
    let path = path.split_once('/').map(|x| x.1)?;
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

fn curl_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The downloader's config (read from stdin) and its command line (no secrets in it).
pub fn download_cmd(a: &Args, tool: &str, headers: &[(String, String)]) -> (String, String) {
    let timeout = a.timeout.unwrap_or(10.0).max(1.0).ceil() as u64;
    let mut cfg = String::new();
    if tool == "curl" {
        cfg.push_str(&format!("url = {}\n", curl_quote(&a.url)));
        for (k, v) in headers {
            cfg.push_str(&format!("header = {}\n", curl_quote(&format!("{k}: {v}"))));
        }
        if let Some(u) = &a.url_username {
            let p = a.url_password.as_deref().unwrap_or("");
            cfg.push_str(&format!("user = {}\n", curl_quote(&format!("{u}:{p}"))));
        }
        let k = if a.validate_certs { "" } else { "-k " };
        (
            cfg,
            format!(
                // `timeout` is a socket timeout, as Ansible's: connecting, and no byte for
                // that long.
                "curl -q -sS -f -L {k}--connect-timeout {timeout} --speed-limit 1 \
                 --speed-time {timeout} -K - -o \"$t\" -w 'HLCODE %{{http_code}}\\n'"
            ),
        )
    } else {
        for (k, v) in headers {
            cfg.push_str(&format!("header = {k}: {v}\n"));
        }
        if let Some(u) = &a.url_username {
            cfg.push_str(&format!("user = {u}\n"));
            cfg.push_str(&format!(
                "password = {}\n",
                a.url_password.as_deref().unwrap_or("")
            ));
        }
        if a.force_basic_auth == Some(true) {
            cfg.push_str("auth_no_challenge = on\n");
        }
        let k = if a.validate_certs {
            ""
        } else {
            "--no-check-certificate "
        };
        (
            cfg,
            format!(
                // wget cannot read its config from a pipe: a private temp file, removed on exit.
                "{{ c=$(mktemp) && cat > \"$c\" && \
                 wget -q {k}--timeout={timeout} --tries=1 --config=\"$c\" -O \"$t\" -- {}; }}",
                shell_quote(&a.url)
            ),
        )
    }
}

#[derive(Debug)]
pub struct Probe {
    pub tool: Option<String>,
    pub path: String,
    pub state: PathState,
    /// The dest's digest in the checksum's algorithm, and its sha1.
    pub sum: Option<String>,
    pub sha1: Option<String>,
    /// dest itself, and the file named after the URL inside it.
    pub dest: PathState,
    pub inside: PathState,
}

pub fn probe_script(a: &Args, algo: &str) -> String {
    let name = url_file_name(&a.url).unwrap_or_else(|| "index.html".into());
    let inside = format!("{}/{}", a.dest.trim_end_matches('/'), name);
    let want = Want::default();
    format!(
        "for x in curl wget; do if command -v $x >/dev/null 2>&1; then echo \"HLTOOL $x\"; break; fi; done; \
         {} echo HLSPLIT; {} \
         if [ -d {d} ]; then f={i}; else f={d}; fi; \
         if [ -f \"$f\" ] && [ -r \"$f\" ]; then echo \"HLCK $({algo}sum < \"$f\")\"; echo \"HLS1 $(sha1sum < \"$f\")\"; fi",
        remote::probe_script(&a.dest, want),
        remote::probe_script(&inside, want),
        d = shell_quote(&a.dest),
        i = shell_quote(&inside),
    )
}

pub fn parse_probe(a: &Args, out: &[u8]) -> Result<Probe, String> {
    let text = String::from_utf8_lossy(out);
    let (first, second) = text
        .split_once("HLSPLIT\n")
        .ok_or_else(|| format!("unexpected probe output: {text}"))?;
    let dest = remote::parse_probe(first.as_bytes())?;
    let inside = remote::parse_probe(second.as_bytes())?;
    let mut p = Probe {
        tool: None,
        path: a.dest.clone(),
        state: dest.clone(),
        sum: None,
        sha1: None,
        dest: dest.clone(),
        inside: inside.clone(),
    };
    if dest.kind == Kind::Directory {
        p.path = format!(
            "{}/{}",
            a.dest.trim_end_matches('/'),
            url_file_name(&a.url).unwrap_or_else(|| "index.html".into())
        );
        p.state = inside;
    }
    for l in text.lines() {
        if let Some(t) = l.strip_prefix("HLTOOL ") {
            p.tool = Some(t.to_string());
        } else if let Some(s) = l.strip_prefix("HLCK ") {
            p.sum = s.split_whitespace().next().map(str::to_string);
        } else if let Some(s) = l.strip_prefix("HLS1 ") {
            p.sha1 = s.split_whitespace().next().map(str::to_string);
        }
    }
    Ok(p)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do.
    None,
    /// Only mode/owner differ.
    Attrs,
    /// Download (and replace dest unless force found identical content).
    Download,
}

#[derive(Debug)]
pub struct Plan {
    pub probe: Probe,
    pub checksum: Option<Checksum>,
    pub headers: Vec<(String, String)>,
    pub action: Action,
}

/// The decision (pure: unit-tested).
pub fn decide(a: &Args, p: &Probe, ck: Option<&Checksum>) -> Action {
    let exists = p.state.kind == Kind::File;
    let download = match (exists, ck) {
        (false, _) => true,
        (true, Some(c)) => p.sum.as_deref() != Some(c.hex.as_str()),
        (true, None) => a.force,
    };
    if download {
        Action::Download
    } else if exists
        && (super::copy::mode_differs(a.mode.as_deref(), &p.state)
            || super::copy::owner_differs(a.owner.as_deref(), a.group.as_deref(), &p.state))
    {
        Action::Attrs
    } else {
        Action::None
    }
}

pub struct GetUrl;

/// Removes the password from text shown to people.
fn scrub(a: &Args, s: &str) -> String {
    match a.url_password.as_deref() {
        Some(p) if !p.is_empty() => s.replace(p, "********"),
        _ => s.to_string(),
    }
}

impl Module for GetUrl {
    const NAME: &'static str = "get_url";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let fail = |m: String| ModuleError::Failed(format!("{}: {m}", ctx.host));
        if !(a.url.starts_with("http://")
            || a.url.starts_with("https://")
            || a.url.starts_with("ftp://"))
        {
            return Err(fail(format!(
                "url '{}' must be http://, https:// or ftp://",
                a.url
            )));
        }
        if a.url.contains(['\n', '\r', ' ']) {
            return Err(fail("url must not contain spaces or line breaks".into()));
        }
        let checksum = match a.checksum.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(parse_checksum(c).map_err(fail)?),
            None => None,
        };
        let headers = parse_headers(a.headers.as_ref()).map_err(fail)?;
        let algo = checksum.as_ref().map(|c| c.algo).unwrap_or("sha1");
        let out = ctx.exec(probe_script(a, algo)).await?;
        let mut probe = parse_probe(a, &out.stdout).map_err(fail)?;
        // Check mode: dest may be a folder an earlier task makes.
        let mut dest = probe.dest.clone();
        ctx.overlay(&a.dest, &mut dest);
        if dest.kind == Kind::Directory && probe.dest.kind != Kind::Directory {
            probe.path = format!(
                "{}/{}",
                a.dest.trim_end_matches('/'),
                url_file_name(&a.url).unwrap_or_else(|| "index.html".into())
            );
            probe.state = probe.inside.clone();
            probe.sum = None;
            probe.sha1 = None;
        }
        ctx.overlay(&probe.path.clone(), &mut probe.state);
        if !probe.state.parent_exists {
            return Err(fail(format!(
                "destination directory {} does not exist",
                remote::parent_of(&probe.path)
            )));
        }
        if matches!(probe.state.kind, Kind::Directory | Kind::Other) {
            return Err(fail(format!(
                "{} exists and is a {}, not a file",
                probe.path,
                probe.state.kind.name()
            )));
        }
        let action = decide(a, &probe, checksum.as_ref());
        if action == Action::Download && probe.tool.is_none() {
            return Err(fail(format!(
                "neither curl nor wget on {}: install one",
                ctx.host
            )));
        }
        Ok(Plan {
            probe,
            checksum,
            headers,
            action,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let mut r = TaskResult::changed(p.action != Action::None)
            .with("url", a.url.clone())
            .with("dest", p.probe.path.clone());
        if let Some(s) = &p.probe.sha1 {
            r = r.with("checksum_dest", s.clone());
        }
        match p.action {
            Action::None => {
                r = r.msg(if p.checksum.is_some() {
                    "file already exists and its checksum matches"
                } else {
                    "file already exists"
                });
            }
            Action::Download => {
                if ctx.check {
                    r = r.msg(format!("would download {} to {}", a.url, p.probe.path));
                }
                if ctx.diff {
                    r.diff.push(remote::state_diff(
                        &p.probe.path,
                        &[
                            ("state", p.probe.state.kind.name().to_string()),
                            ("checksum", p.probe.sha1.clone().unwrap_or_default()),
                        ],
                        &[
                            ("state", "file".into()),
                            (
                                "checksum",
                                p.checksum
                                    .as_ref()
                                    .map(|c| format!("{}:{}", c.algo, c.hex))
                                    .unwrap_or_else(|| format!("(downloaded from {})", a.url)),
                            ),
                        ],
                    ));
                }
            }
            Action::Attrs => {
                if ctx.diff {
                    r.diff.push(super::file::attrs_diff(
                        &p.probe.path,
                        &p.probe.state,
                        a.mode.as_deref(),
                        a.owner.as_deref(),
                        a.group.as_deref(),
                    ));
                }
            }
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        if p.action == Action::Download {
            ctx.plan_path(
                &p.probe.path,
                super::core::PlannedPath::File {
                    content: None,
                    mode: None,
                },
            );
        }
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        mut done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let path = p.probe.path.clone();
        if p.action == Action::Attrs {
            super::file::set_attrs(
                ctx,
                &path,
                a.mode.as_deref(),
                a.owner.as_deref(),
                a.group.as_deref(),
            )
            .await?;
            return Ok(done);
        }
        let tool = p.probe.tool.as_deref().unwrap_or("curl");
        let (cfg, cmd) = download_cmd(a, tool, &p.headers);
        let q = shell_quote(&path);
        let temp = shell_quote(&format!(
            "{}/.homelab-tmp.{}",
            remote::parent_of(&path).trim_end_matches('/'),
            &crate::transport::shell::random_token()[4..16]
        ));
        let algo = p.checksum.as_ref().map(|c| c.algo).unwrap_or("sha1");
        let mut steps = vec![];
        if let Some(c) = &p.checksum {
            steps.push(format!(
                "s=$({algo}sum < \"$t\" | cut -d' ' -f1); if [ \"$s\" != {} ]; then echo \"HLBADSUM $s\"; exit 4; fi",
                c.hex
            ));
        }
        if p.probe.state.kind == Kind::File {
            steps.push(format!(
                "if cmp -s \"$t\" {q}; then echo HLSAME; exit 0; fi"
            ));
            steps.push(format!(
                "chown {}:{} \"$t\" && chmod {:o} \"$t\"",
                p.probe.state.uid, p.probe.state.gid, p.probe.state.mode
            ));
        } else {
            steps.push("chmod $(printf %o $((0666 & ~$um))) \"$t\"".into());
        }
        if a.owner.is_some() || a.group.is_some() {
            steps.push(format!(
                "chown {}{} \"$t\"",
                a.owner.as_deref().map(shell_quote).unwrap_or_default(),
                a.group
                    .as_deref()
                    .map(|g| format!(":{}", shell_quote(g)))
                    .unwrap_or_default()
            ));
        }
        if let Some(m) = &a.mode {
            steps.push(format!("chmod {} \"$t\"", shell_quote(m)));
        }
        if a.backup {
            steps.push(format!(
                "if [ -f {q} ]; then b={q}.$(date +%Y-%m-%d@%H:%M:%S~) && cp -p {q} \"$b\" && echo \"HLBACKUP $b\"; fi"
            ));
        }
        steps.push(format!(
            "echo \"HLS1 $(sha1sum < \"$t\")\"; echo \"HLSIZE $(wc -c < \"$t\")\"; mv -f \"$t\" {q} && rm -f \"$c\" && trap - EXIT"
        ));
        let script = format!(
            "um=$(umask); t={temp}; c=; trap 'rm -f \"$t\" \"$c\"' EXIT INT TERM HUP; umask 077; \
             {cmd} || {{ echo \"HLDLFAIL $?\"; exit 3; }}; umask \"$um\"; {}",
            steps.join(" && ")
        );
        let out = ctx.exec_with(script, Some(cfg.into_bytes())).await?;
        let stdout = out.stdout_str();
        let field = |tag: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(tag).map(|s| s.trim().to_string()))
        };
        if let Some(code) = field("HLCODE ").and_then(|c| c.parse::<u16>().ok()) {
            if code > 0 {
                done = done.with("status_code", code);
            }
        }
        if field("HLDLFAIL ").is_some() {
            return Err(ModuleError::Failed(scrub(
                a,
                &format!(
                    "{}: could not download {} with {tool}: {}",
                    ctx.host,
                    a.url,
                    out.stderr_str().trim()
                ),
            )));
        }
        if let Some(got) = field("HLBADSUM ") {
            let c = p
                .checksum
                .as_ref()
                .map(|c| c.hex.clone())
                .unwrap_or_default();
            return Err(ModuleError::Failed(format!(
                "{}: the checksum of {} did not match: expected {algo}:{c}, got {algo}:{got}; {} was left as it was",
                ctx.host, a.url, path
            )));
        }
        if !out.success() {
            return Err(ModuleError::Failed(scrub(
                a,
                &format!(
                    "{}: could not put the download at {path}: {}",
                    ctx.host,
                    out.stderr_str().trim()
                ),
            )));
        }
        if stdout.lines().any(|l| l == "HLSAME") {
            done.changed = false;
            done.diff.clear();
            return Ok(done.msg("file already exists with the same content"));
        }
        if let Some(s) = field("HLS1 ") {
            let s = s.split_whitespace().next().unwrap_or_default().to_string();
            done = done
                .with("checksum_src", s.clone())
                .with("checksum_dest", s);
        }
        if let Some(n) = field("HLSIZE ").and_then(|n| n.parse::<u64>().ok()) {
            done = done.with("size", n).msg(format!("OK ({n} bytes)"));
        }
        if let Some(b) = remote::backup_path(&out.stdout) {
            done = done.with("backup_file", b);
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
    fn checksums() {
        let c = parse_checksum(&format!("sha256:{}", "A".repeat(64))).unwrap();
        assert_eq!(
            (c.algo, c.hex.as_str()),
            ("sha256", "a".repeat(64).as_str())
        );
        assert_eq!(
            parse_checksum(&format!("md5:{}", "0".repeat(32)))
                .unwrap()
                .algo,
            "md5"
        );
        assert_eq!(
            parse_checksum(&format!("SHA1:{}", "0".repeat(40)))
                .unwrap()
                .algo,
            "sha1"
        );
        assert_eq!(
            parse_checksum(&format!("sha512:{}", "f".repeat(128)))
                .unwrap()
                .algo,
            "sha512"
        );
        assert!(parse_checksum("sha256:abc").unwrap_err().contains("64 hex"));
        assert!(parse_checksum(&format!("sha256:{}", "g".repeat(64))).is_err());
        assert!(parse_checksum("crc32:0000")
            .unwrap_err()
            .contains("not supported"));
        assert!(parse_checksum("deadbeef")
            .unwrap_err()
            .contains("ALGORITHM:HEX"));
        assert!(parse_checksum("sha256:https://x/SHA256SUMS").is_err());
    }

    #[test]
    fn headers_and_names() {
        let h = parse_headers(Some(&json!({"X-A": "1", "X-B": 2}))).unwrap();
        assert_eq!(h, [("X-A".into(), "1".into()), ("X-B".into(), "2".into())]);
        let h = parse_headers(Some(&json!("X-A: 1, X-B:2"))).unwrap();
        assert_eq!(h.len(), 2);
        assert!(parse_headers(Some(&json!("nocolon"))).is_err());
        assert!(parse_headers(Some(&json!({"X": "a\nb"}))).is_err());
        assert_eq!(
            url_file_name("http://h:1/a/b.tgz?x=1").as_deref(),
            Some("b.tgz")
        );
        assert_eq!(url_file_name("http://h/"), None);
        assert_eq!(url_file_name("http://h"), None);
    }

    #[test]
    fn secrets_stay_off_the_command_line() {
        let a = args(json!({"url": "http://h/f", "dest": "/tmp/f",
            "url_username": "u", "url_password": "s3cr\"et", "headers": {"X-T": "tok"}}));
        let h = parse_headers(a.headers.as_ref()).unwrap();
        for tool in ["curl", "wget"] {
            let (cfg, cmd) = download_cmd(&a, tool, &h);
            assert!(!cmd.contains("s3cr"), "{cmd}");
            assert!(cfg.contains("s3cr"), "{cfg}");
            assert!(cfg.contains("X-T: tok"), "{cfg}");
        }
        let (cfg, _) = download_cmd(&a, "curl", &h);
        assert!(cfg.contains(r#"user = "u:s3cr\"et""#), "{cfg}");
        assert_eq!(scrub(&a, "bad s3cr\"et"), "bad ********");
    }

    fn probe(kind: Kind, sum: Option<&str>) -> Probe {
        let st = PathState {
            kind,
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            uid: 0,
            gid: 0,
            size: 1,
            link_target: None,
            checksum: None,
            content: None,
            parent_exists: true,
        };
        Probe {
            tool: Some("curl".into()),
            path: "/d".into(),
            state: st.clone(),
            sum: sum.map(str::to_string),
            sha1: None,
            dest: st.clone(),
            inside: st,
        }
    }

    #[test]
    fn decisions() {
        let hex = "a".repeat(64);
        let ck = parse_checksum(&format!("sha256:{hex}")).unwrap();
        let a = args(json!({"url": "http://h/f", "dest": "/d"}));
        assert_eq!(
            decide(&a, &probe(Kind::Absent, None), None),
            Action::Download
        );
        assert_eq!(decide(&a, &probe(Kind::File, None), None), Action::None);
        assert_eq!(
            decide(&a, &probe(Kind::File, Some(&hex)), Some(&ck)),
            Action::None
        );
        assert_eq!(
            decide(&a, &probe(Kind::File, Some("bb")), Some(&ck)),
            Action::Download
        );
        let a = args(json!({"url": "http://h/f", "dest": "/d", "force": "yes"}));
        assert_eq!(decide(&a, &probe(Kind::File, None), None), Action::Download);
        let a = args(json!({"url": "http://h/f", "dest": "/d", "mode": "0600"}));
        assert_eq!(decide(&a, &probe(Kind::File, None), None), Action::Attrs);
        assert!(
            serde_json::from_value::<Args>(json!({"url": "x", "dest": "y", "sha256sum": "z"}))
                .is_err()
        );
    }

    /// Both downloaders through the module, on this machine, from a local HTTP server (skipped
    /// without python3, curl and wget). The wget run sees a PATH without curl.
    #[tokio::test]
    async fn downloads_with_curl_and_wget_locally() {
        use crate::modules::core::{drive, TaskCtx};
        use crate::transport::{local::LocalConnection, Connection};
        let have = |c: &str| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !have("python3") || !have("curl") || !have("wget") {
            eprintln!("skipped: needs python3, curl and wget");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let www = d.path().join("www");
        std::fs::create_dir(&www).unwrap();
        std::fs::write(www.join("f.txt"), "hello\n").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(&www)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // A PATH with everything but curl.
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let n = e.file_name();
                if n != "curl" && !bin.join(&n).exists() {
                    let _ = std::os::unix::fs::symlink(e.path(), bin.join(&n));
                }
            }
        }
        let sum = {
            use sha2::{Digest, Sha256};
            Sha256::digest(b"hello\n")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let c = Connection::Local(LocalConnection::new("t"));
        for (tool, env) in [
            ("curl", vec![]),
            (
                "wget",
                vec![("PATH".to_string(), bin.display().to_string())],
            ),
        ] {
            let ctx = TaskCtx {
                host: "t",
                conn: &c,
                become_: None,
                check: false,
                diff: true,
                search: &[],
                env: &env,
                render: None,
                planned: None,
                paths: None,
            };
            let dest = d.path().join(format!("{tool}.txt"));
            let args = json!({"url": format!("http://127.0.0.1:{port}/f.txt"),
                "dest": dest.display().to_string(), "checksum": format!("sha256:{sum}"),
                "headers": {"X-Husr": "1"}, "url_username": "u", "url_password": "pw"});
            let r = drive::<GetUrl>(&ctx, &args).await.unwrap();
            assert!(r.changed, "{tool}: {r:?}");
            assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello\n", "{tool}");
            let r = drive::<GetUrl>(&ctx, &args).await.unwrap();
            assert!(!r.changed, "{tool}: {r:?}");
            let missing = json!({"url": format!("http://127.0.0.1:{port}/nope"),
                "dest": d.path().join("nope").display().to_string()});
            let e = drive::<GetUrl>(&ctx, &missing)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!(
                    "could not download http://127.0.0.1:{port}/nope with {tool}"
                )),
                "{e}"
            );
            assert!(!d.path().join("nope").exists());
        }
        let _ = server.kill();
        let _ = server.wait();
        let leftovers: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".homelab-tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
