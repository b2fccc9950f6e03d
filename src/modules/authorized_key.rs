//! `authorized_key`: SSH public keys in a user's `authorized_keys`. One round trip reads the
//! user's home (getent), the `.ssh` folder's mode/owner and the file; the new text is computed
//! here and written atomically (temp file + rename) owned by the user, mode 0600, with a unified
//! diff. A key is identified by its base64 blob: a listed key whose options or comment differ
//! is replaced in place; new keys are appended; `exclusive` removes every other key. Lines that
//! are not keys (comments, blanks) are kept.

use super::core::{boolish, Module, ModuleError, TaskCtx, TaskResult};
use super::remote::{self, WriteOpts};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub user: String,
    pub key: String,
    #[serde(default)]
    pub state: super::user::State,
    pub path: Option<String>,
    #[serde(default = "yes", with = "boolish")]
    pub manage_dir: bool,
    #[serde(default, with = "boolish")]
    pub exclusive: bool,
    pub key_options: Option<String>,
    pub comment: Option<String>,
}

fn yes() -> bool {
    true
}

const KEY_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
];

fn is_key_type(t: &str) -> bool {
    KEY_TYPES.contains(&t) || (t.starts_with("ecdsa-sha2-") || t.ends_with("@openssh.com"))
}

/// A parsed key line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Options as (name, value) in order.
    pub options: Vec<(String, Option<String>)>,
    pub key_type: String,
    pub blob: String,
    pub comment: String,
}

impl Key {
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.options.is_empty() {
            s.push_str(&render_options(&self.options));
            s.push(' ');
        }
        s.push_str(&self.key_type);
        s.push(' ');
        s.push_str(&self.blob);
        if !self.comment.is_empty() {
            s.push(' ');
            s.push_str(&self.comment);
        }
        s
    }
}

/// Splits on whitespace outside double quotes.
fn tokens(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' && quoted {
            cur.push(c);
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
            cur.push(c);
        } else if c.is_whitespace() && !quoted {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Parses an options string (`no-pty,from="a,b",command="x y"`).
pub fn parse_options(s: &str) -> Vec<(String, Option<String>)> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut push = |cur: &mut String| {
        let t = std::mem::take(cur);
        let t = t.trim();
        if t.is_empty() {
            return;
        }
        match t.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((t.to_string(), None)),
        }
    };
    let mut prev = '\0';
    for c in s.chars() {
        if c == '"' && prev != '\\' {
            quoted = !quoted;
        }
        if c == ',' && !quoted {
            push(&mut cur);
        } else {
            cur.push(c);
        }
        prev = c;
    }
    push(&mut cur);
    out
}

pub fn render_options(o: &[(String, Option<String>)]) -> String {
    o.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses an authorized_keys line; None for comments, blanks and lines without a key.
pub fn parse_key(line: &str) -> Option<Key> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let toks = tokens(t);
    let i = toks.iter().position(|x| is_key_type(x))?;
    let blob = toks.get(i + 1)?.clone();
    let options = if i > 0 {
        parse_options(&toks[..i].join(" "))
    } else {
        vec![]
    };
    Some(Key {
        options,
        key_type: toks[i].clone(),
        blob,
        comment: toks[i + 2..].join(" "),
    })
}

/// The keys asked for, with `key_options`/`comment` applied. Err names a line that is no key.
pub fn wanted_keys(a: &Args) -> Result<Vec<Key>, String> {
    let mut v = vec![];
    for line in a.key.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with("http://") || t.starts_with("https://") {
            return Err("keys from a URL are not supported: give the key text (e.g. with lookup('file', ...))".into());
        }
        let mut k = parse_key(t).ok_or_else(|| format!("invalid key specified: {t}"))?;
        if let Some(o) = &a.key_options {
            k.options = parse_options(o);
        }
        if let Some(c) = &a.comment {
            k.comment = c.clone();
        }
        v.push(k);
    }
    if v.is_empty() {
        return Err("key is empty: give one or more public keys".into());
    }
    Ok(v)
}

/// The new file text from the old one (pure: unit-tested).
pub fn edit(old: &str, want: &[Key], present: bool, exclusive: bool) -> String {
    let mut out: Vec<String> = vec![];
    let mut placed = vec![false; want.len()];
    for line in old.lines() {
        let Some(k) = parse_key(line) else {
            out.push(line.to_string());
            continue;
        };
        match want.iter().position(|w| w.blob == k.blob) {
            Some(i) if present => {
                if placed[i] {
                    continue; // a duplicate of a key already written
                }
                placed[i] = true;
                let w = &want[i];
                if w.options == k.options && w.comment == k.comment && w.key_type == k.key_type {
                    out.push(line.to_string());
                } else {
                    out.push(w.render());
                }
            }
            Some(_) => {} // absent: dropped
            None if present && exclusive => {}
            None => out.push(line.to_string()),
        }
    }
    if present {
        for (i, w) in want.iter().enumerate() {
            if !placed[i] && !want[..i].iter().any(|x| x.blob == w.blob) {
                out.push(w.render());
            }
        }
    }
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// What the probe saw.
#[derive(Debug, Default)]
pub struct Probe {
    pub user_missing: bool,
    pub home: String,
    pub uid: String,
    pub gid: String,
    pub file: String,
    /// `.ssh` folder's mode and owner, if it exists.
    pub dir: Option<(String, String)>,
    pub file_exists: bool,
    pub content: Vec<u8>,
}

pub fn probe_script(a: &Args) -> String {
    let f = match &a.path {
        Some(p) if p.starts_with("~/") => format!("\"$h\"/{}", shell_quote(&p[2..])),
        Some(p) => shell_quote(p),
        None => "\"$h\"/.ssh/authorized_keys".into(),
    };
    format!(
        "if ! pw=$(getent passwd -- {u}); then echo HLNOUSER; exit 0; fi; \
         oifs=$IFS; IFS=:; set -f; set -- $pw; IFS=$oifs; set +f; uid=$3; gid=$4; h=$6; \
         f={f}; d=$(dirname \"$f\"); printf 'HLUSER %s %s\\n' \"$uid\" \"$gid\"; \
         printf 'HLHOME %s\\n' \"$h\"; printf 'HLFILE %s\\n' \"$f\"; \
         if [ -d \"$d\" ]; then echo \"HLDIR $(stat -c '%a %u' \"$d\")\"; fi; \
         if [ -f \"$f\" ]; then echo HLDATA; cat \"$f\"; fi",
        u = shell_quote(&a.user)
    )
}

pub fn parse_probe(out: &[u8]) -> Probe {
    let (head, data) = match out.windows(7).position(|w| w == b"HLDATA\n") {
        Some(i) => (&out[..i], Some(out[i + 7..].to_vec())),
        None => (out, None),
    };
    let mut p = Probe::default();
    for l in String::from_utf8_lossy(head).lines() {
        if l == "HLNOUSER" {
            p.user_missing = true;
        } else if let Some(r) = l.strip_prefix("HLUSER ") {
            let mut it = r.split(' ');
            p.uid = it.next().unwrap_or_default().to_string();
            p.gid = it.next().unwrap_or_default().to_string();
        } else if let Some(r) = l.strip_prefix("HLHOME ") {
            p.home = r.to_string();
        } else if let Some(r) = l.strip_prefix("HLFILE ") {
            p.file = r.to_string();
        } else if let Some(r) = l.strip_prefix("HLDIR ") {
            let mut it = r.split(' ');
            p.dir = Some((
                it.next().unwrap_or_default().to_string(),
                it.next().unwrap_or_default().to_string(),
            ));
        }
    }
    p.file_exists = data.is_some();
    p.content = data.unwrap_or_default();
    p
}

#[derive(Debug)]
pub struct Plan {
    probe: Probe,
    new: String,
    content_changes: bool,
    make_dir: bool,
}

pub struct AuthorizedKey;

impl Module for AuthorizedKey {
    const NAME: &'static str = "authorized_key";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let fail = |m: String| ModuleError::Failed(format!("{}: {m}", ctx.host));
        let want = wanted_keys(a).map_err(fail)?;
        let out = ctx.exec(probe_script(a)).await?;
        let probe = parse_probe(&out.stdout);
        let mut probe = probe;
        if probe.user_missing && ctx.check {
            // Check mode: an earlier task of the run may create the user.
            probe.file = match &a.path {
                Some(p) => p.clone(),
                None => format!("/home/{}/.ssh/authorized_keys", a.user),
            };
            probe.user_missing = false;
        }
        if probe.user_missing {
            return Err(fail(format!(
                "user {} does not exist: create it first (user module)",
                a.user
            )));
        }
        if probe.file.is_empty() {
            return Err(fail(format!(
                "could not read the user's home: {}",
                out.stderr_str().trim()
            )));
        }
        // Check mode: the file as earlier tasks of this run would have left it.
        if let Some(planned) = ctx.planned {
            match planned.get(&probe.file) {
                Some(super::core::PlannedPath::File {
                    content: Some(c), ..
                }) => {
                    probe.content = c;
                    probe.file_exists = true;
                }
                Some(super::core::PlannedPath::Absent) => {
                    probe.content.clear();
                    probe.file_exists = false;
                }
                _ => {}
            }
        }
        let present = a.state == super::user::State::Present;
        let old = String::from_utf8_lossy(&probe.content).into_owned();
        let new = edit(&old, &want, present, a.exclusive);
        let content_changes = new != old && (probe.file_exists || present);
        let make_dir = present && probe.dir.is_none();
        if make_dir && !a.manage_dir {
            return Err(fail(format!(
                "{} does not exist and manage_dir is false: create it first",
                remote::parent_of(&probe.file)
            )));
        }
        Ok(Plan {
            probe,
            new,
            content_changes,
            make_dir,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let mut r = TaskResult::changed(p.content_changes)
            .with("user", a.user.clone())
            .with("key", a.key.clone())
            .with("keyfile", p.probe.file.clone())
            .with(
                "path",
                a.path
                    .clone()
                    .map(Into::into)
                    .unwrap_or(serde_json::Value::Null),
            )
            .with("manage_dir", a.manage_dir)
            .with("exclusive", a.exclusive)
            .with(
                "state",
                if a.state == super::user::State::Present {
                    "present"
                } else {
                    "absent"
                },
            )
            .with(
                "key_options",
                a.key_options
                    .clone()
                    .map(Into::into)
                    .unwrap_or(serde_json::Value::Null),
            );
        if ctx.diff && p.content_changes {
            let before = if p.probe.file_exists {
                Some(&p.probe.content[..])
            } else {
                Some(&b""[..])
            };
            r.diff.push(remote::file_diff(
                &p.probe.file,
                before,
                p.probe.content.len() as u64,
                p.new.as_bytes(),
            ));
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        ctx.plan_path(
            &p.probe.file,
            super::core::PlannedPath::File {
                content: Some(p.new.clone().into_bytes()),
                mode: Some(0o600),
            },
        );
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        _a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let (uid, gid) = (p.probe.uid.as_str(), p.probe.gid.as_str());
        let mut script = String::new();
        if p.make_dir {
            let d = shell_quote(&remote::parent_of(&p.probe.file));
            script.push_str(&format!(
                "mkdir -p {d} && chown {uid}:{gid} {d} && chmod 0700 {d} && "
            ));
        }
        let opts = WriteOpts {
            mode: Some("0600"),
            owner: Some(uid),
            group: Some(gid),
            ..Default::default()
        };
        script.push_str(&remote::write_script(&p.probe.file, &opts));
        let out = ctx.exec_with(script, Some(p.new.into_bytes())).await?;
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "{}: could not write {}: {}",
                ctx.host,
                p.probe.file,
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

    const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne one@host";
    const K2: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQTwo two@host";

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_lines_with_options() {
        let k = parse_key(
            r#"no-pty,from="10.0.0.1,10.0.0.2",command="echo a b" ssh-ed25519 AAAAX c d"#,
        )
        .unwrap();
        assert_eq!(k.key_type, "ssh-ed25519");
        assert_eq!(k.blob, "AAAAX");
        assert_eq!(k.comment, "c d");
        assert_eq!(
            k.options,
            vec![
                ("no-pty".to_string(), None),
                (
                    "from".to_string(),
                    Some("\"10.0.0.1,10.0.0.2\"".to_string())
                ),
                ("command".to_string(), Some("\"echo a b\"".to_string())),
            ]
        );
        assert_eq!(
            k.render(),
            r#"no-pty,from="10.0.0.1,10.0.0.2",command="echo a b" ssh-ed25519 AAAAX c d"#
        );
        assert!(parse_key("# comment").is_none());
        assert!(parse_key("garbage line").is_none());
        assert!(parse_key("").is_none());
    }

    #[test]
    fn edits_present_absent_exclusive() {
        let a = args(json!({"user": "u", "key": K1}));
        let w = wanted_keys(&a).unwrap();
        let old = format!("# keep me\n{K2}\n");
        let new = edit(&old, &w, true, false);
        assert_eq!(new, format!("# keep me\n{K2}\n{K1}\n"));
        assert_eq!(edit(&new, &w, true, false), new, "idempotent");
        assert_eq!(edit("", &w, true, false), format!("{K1}\n"));
        // Absent removes only that key.
        assert_eq!(edit(&new, &w, false, false), old);
        // Exclusive drops other keys, keeps comments.
        assert_eq!(edit(&new, &w, true, true), format!("# keep me\n{K1}\n"));
        // Options given: the key's line is replaced in place.
        let a = args(json!({"user": "u", "key": K1, "key_options": "no-pty,from=\"10.0.0.1\""}));
        let w = wanted_keys(&a).unwrap();
        let with_opts = edit(&new, &w, true, false);
        assert_eq!(
            with_opts,
            format!("# keep me\n{K2}\nno-pty,from=\"10.0.0.1\" {K1}\n")
        );
        assert_eq!(edit(&with_opts, &w, true, false), with_opts);
        // Two keys at once, comment overridden.
        let a = args(json!({"user": "u", "key": format!("{K1}\n\n{K2}\n"), "comment": "x"}));
        let w = wanted_keys(&a).unwrap();
        assert_eq!(w.len(), 2);
        let t = edit("", &w, true, false);
        assert!(t.ends_with("AAAAB3NzaC1yc2EAAAADAQABAAABAQTwo x\n"), "{t}");
        // Duplicates collapse to one line.
        let dup = format!("{K1}\n{K1}\n");
        let a = args(json!({"user": "u", "key": K1}));
        assert_eq!(
            edit(&dup, &wanted_keys(&a).unwrap(), true, false),
            format!("{K1}\n")
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(wanted_keys(&args(json!({"user": "u", "key": "not a key"})))
            .unwrap_err()
            .contains("invalid key"));
        assert!(wanted_keys(&args(json!({"user": "u", "key": ""}))).is_err());
        assert!(wanted_keys(&args(json!({"user": "u", "key": "https://x/keys"}))).is_err());
        assert!(
            serde_json::from_value::<Args>(json!({"user": "u", "key": K1, "nope": 1})).is_err()
        );
    }

    #[tokio::test]
    async fn probe_parses_local_output() {
        use crate::transport::{local::LocalConnection, Connection, ExecRequest};
        let c = Connection::Local(LocalConnection::new("t"));
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("ak");
        std::fs::write(&f, format!("{K1}\n")).unwrap();
        let a = args(json!({"user": "root", "key": K1, "path": f.display().to_string()}));
        let out = c.exec(&ExecRequest::new(probe_script(&a))).await.unwrap();
        let p = parse_probe(&out.stdout);
        assert!(!p.user_missing, "{}", out.stderr_str());
        assert_eq!(p.uid, "0");
        assert_eq!(p.file, f.display().to_string());
        assert!(p.dir.is_some() && p.file_exists);
        assert_eq!(p.content, format!("{K1}\n").into_bytes());
        let a = args(json!({"user": "husr-nosuch", "key": K1}));
        let out = c.exec(&ExecRequest::new(probe_script(&a))).await.unwrap();
        assert!(parse_probe(&out.stdout).user_missing);
    }

    #[tokio::test]
    async fn check_mode_plans_on_earlier_tasks_and_writes_nothing() {
        use crate::modules::core::Planned;
        use crate::modules::testutil::run_planned;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("ak");
        let path = f.display().to_string();
        let planned = Planned::default();
        // The current user (root or not), so the real run may set the owner.
        let me = String::from_utf8(
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        let r = run_planned::<AuthorizedKey>(
            true,
            json!({"user": me, "key": K1, "path": path}),
            None,
            Some(&planned),
        )
        .await;
        assert!(r.changed && !r.failed, "{r:?}");
        let r = run_planned::<AuthorizedKey>(
            true,
            json!({"user": me, "key": K2, "path": path}),
            None,
            Some(&planned),
        )
        .await;
        assert!(r.changed, "{r:?}");
        assert_eq!(r.diff[0].before, format!("{K1}\n"));
        assert_eq!(r.diff[0].after, format!("{K1}\n{K2}\n"));
        assert!(!f.exists(), "check mode wrote the file");
        // A real run writes it, 0600.
        let r = crate::modules::testutil::run::<AuthorizedKey>(
            false,
            json!({"user": me, "key": K1, "path": path, "exclusive": true}),
        )
        .await;
        assert!(r.changed && !r.failed, "{r:?}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), format!("{K1}\n"));
    }
}
