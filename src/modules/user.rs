//! `user`: a local account, present or absent, with its uid, groups, shell, home, comment,
//! password hash, lock, expiry and (optionally) an SSH key. Probe, in one round trip: `getent
//! passwd`, `id -gn`/`id -Gn`, `getent shadow` and whether the key file exists. Apply with
//! useradd/usermod/userdel; a password hash goes to `chpasswd -e` on stdin, so it is never on a
//! command line nor in any output (a diff shows `password: (changed)` only).

use super::core::{boolish, numish, stringish, FileDiff, Module, ModuleError, TaskCtx, TaskResult};
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "user")]
    pub name: String,
    #[serde(default)]
    pub state: State,
    #[serde(default, deserialize_with = "stringish::option")]
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub group: Option<String>,
    /// A list or a comma-separated string; absent: supplementary groups are not managed.
    #[serde(default)]
    pub groups: Option<Value>,
    #[serde(default, with = "boolish")]
    pub append: bool,
    pub shell: Option<String>,
    pub home: Option<String>,
    #[serde(default = "yes", alias = "createhome", with = "boolish")]
    pub create_home: bool,
    #[serde(default, with = "boolish")]
    pub move_home: bool,
    #[serde(default, with = "boolish")]
    pub system: bool,
    #[serde(default, deserialize_with = "stringish::option")]
    pub comment: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub update_password: UpdatePassword,
    #[serde(default, with = "boolish::option")]
    pub password_lock: Option<bool>,
    #[serde(default, with = "boolish")]
    pub remove: bool,
    #[serde(default, with = "boolish")]
    pub force: bool,
    #[serde(default, deserialize_with = "numish::option")]
    pub expires: Option<f64>,
    #[serde(default, with = "boolish")]
    pub non_unique: bool,
    #[serde(default, with = "boolish")]
    pub generate_ssh_key: bool,
    #[serde(default = "rsa")]
    pub ssh_key_type: String,
    #[serde(default, deserialize_with = "stringish::option")]
    pub ssh_key_bits: Option<String>,
    pub ssh_key_file: Option<String>,
    pub ssh_key_comment: Option<String>,
}

fn yes() -> bool {
    true
}
fn rsa() -> String {
    "rsa".into()
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UpdatePassword {
    #[default]
    Always,
    OnCreate,
}

/// An account as `getent passwd` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub comment: String,
    pub home: String,
    pub shell: String,
}

/// Parses one `getent passwd` line (`name:x:uid:gid:gecos:home:shell`).
pub fn parse_passwd(line: &str) -> Option<Passwd> {
    let f: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
    if f.len() < 7 {
        return None;
    }
    Some(Passwd {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        comment: f[4].to_string(),
        home: f[5].to_string(),
        shell: f[6..].join(":"),
    })
}

/// The user's current state as the probe saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub passwd: Option<Passwd>,
    pub primary: String,
    /// Supplementary groups (the primary one left out).
    pub groups: BTreeSet<String>,
    /// The shadow hash (never shown), when shadow was readable.
    pub hash: Option<String>,
    /// Days since the epoch the account expires; None: never (empty field).
    pub expire_days: Option<i64>,
    pub shadow_read: bool,
    pub key_exists: bool,
    pub home_exists: bool,
    /// Names of groups that exist, among those asked for.
    pub missing_groups: Vec<String>,
}

/// The probe: tagged lines parsed by [`parse_current`].
pub fn probe_script(a: &Args, key_file: &str) -> String {
    let n = shell_quote(&a.name);
    let mut asked: Vec<String> = wanted_groups(a).unwrap_or_default().into_iter().collect();
    if let Some(g) = &a.group {
        asked.push(g.clone());
    }
    let check_groups: String = asked
        .iter()
        .map(|g| {
            format!(
                "getent group -- {q} >/dev/null || echo \"HLNOGROUP \"{q}; ",
                q = shell_quote(g)
            )
        })
        .collect();
    let key = if key_file.starts_with('/') {
        shell_quote(key_file)
    } else {
        format!("\"$h\"/{}", shell_quote(key_file))
    };
    format!(
        "command -v useradd >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin; \
         command -v useradd >/dev/null 2>&1 || echo HLNOUSERADD; \
         n={n}; if pw=$(getent passwd -- \"$n\"); then printf 'HLPW %s\\n' \"$pw\"; \
         printf 'HLPG %s\\n' \"$(id -gn -- \"$n\" 2>/dev/null)\"; \
         printf 'HLGR %s\\n' \"$(id -Gn -- \"$n\" 2>/dev/null)\"; \
         if sh=$(getent shadow -- \"$n\" 2>/dev/null); then printf 'HLSH %s\\n' \"$sh\"; fi; \
         h=$(printf %s \"$pw\" | cut -d: -f6); else h={home}; fi; \
         if [ -e {key} ]; then echo HLKEY; fi; if [ -d \"$h\" ]; then echo HLHOME; fi; {check_groups}",
        home = shell_quote(&a.home.clone().unwrap_or_else(|| format!("/home/{}", a.name))),
    )
}

pub fn parse_current(out: &str) -> Result<Current, String> {
    let mut c = Current::default();
    let mut all_groups = Vec::new();
    for line in out.lines() {
        if line == "HLNOUSERADD" {
            return Err("useradd is not installed on the host (install the passwd package)".into());
        } else if let Some(r) = line.strip_prefix("HLPW ") {
            c.passwd =
                Some(parse_passwd(r).ok_or_else(|| format!("unexpected passwd entry: {r}"))?);
        } else if let Some(r) = line.strip_prefix("HLPG ") {
            c.primary = r.trim().to_string();
        } else if let Some(r) = line.strip_prefix("HLGR ") {
            all_groups = r.split_whitespace().map(str::to_string).collect();
        } else if let Some(r) = line.strip_prefix("HLSH ") {
            let f: Vec<&str> = r.split(':').collect();
            c.shadow_read = true;
            c.hash = f.get(1).map(|s| s.to_string());
            c.expire_days = f.get(7).and_then(|s| s.trim().parse().ok());
        } else if line == "HLKEY" {
            c.key_exists = true;
        } else if line == "HLHOME" {
            c.home_exists = true;
        } else if let Some(r) = line.strip_prefix("HLNOGROUP ") {
            c.missing_groups.push(r.to_string());
        }
    }
    c.groups = all_groups.into_iter().filter(|g| *g != c.primary).collect();
    Ok(c)
}

/// The supplementary groups asked for (None: not managed).
pub fn wanted_groups(a: &Args) -> Option<BTreeSet<String>> {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect()
    };
    match a.groups.as_ref()? {
        Value::Null => None,
        Value::String(s) => Some(split(s).into_iter().collect()),
        Value::Array(v) => Some(
            v.iter()
                .flat_map(|x| match x {
                    Value::String(s) => split(s),
                    other => vec![other.to_string()],
                })
                .collect(),
        ),
        other => Some(split(&other.to_string()).into_iter().collect()),
    }
}

/// One property that changes: its name, before and after (secrets shown as "(changed)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Create,
    Modify,
    Remove,
}

#[derive(Debug)]
pub struct Plan {
    pub cur: Current,
    pub action: Action,
    pub changes: Vec<Change>,
    /// usermod/useradd options (password excluded).
    pub opts: Vec<String>,
    pub set_password: bool,
    pub lock: Option<bool>,
    pub gen_key: bool,
    pub key_file: String,
}

fn key_file(a: &Args) -> String {
    a.ssh_key_file
        .clone()
        .unwrap_or_else(|| format!(".ssh/id_{}", a.ssh_key_type))
}

fn expire_days(e: f64) -> Option<i64> {
    if e < 0.0 {
        None
    } else {
        Some((e / 86400.0).floor() as i64)
    }
}

fn expire_date(e: f64) -> String {
    match expire_days(e) {
        None => String::new(),
        Some(d) => {
            // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
            let z = d + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let day = doy - (153 * mp + 2) / 5 + 1;
            let month = if mp < 10 { mp + 3 } else { mp - 9 };
            let year = yoe + era * 400 + i64::from(month <= 2);
            format!("{year:04}-{month:02}-{day:02}")
        }
    }
}

fn is_locked(hash: &str) -> bool {
    hash.starts_with('!') && hash.len() > 1 && hash != "!*"
}

/// Decides what to do from the arguments and the current state (pure: unit-tested).
pub fn make_plan(a: &Args, cur: Current, check: bool) -> Result<Plan, String> {
    let key_file = key_file(a);
    let mut p = Plan {
        action: Action::None,
        changes: vec![],
        opts: vec![],
        set_password: false,
        lock: None,
        gen_key: false,
        key_file,
        cur,
    };
    let cur = &p.cur;
    if a.state == State::Absent {
        if let Some(pw) = &cur.passwd {
            p.action = Action::Remove;
            p.changes.push(Change {
                key: "state",
                before: "present".into(),
                after: "absent".into(),
            });
            let _ = pw;
            if a.remove {
                p.opts.push("-r".into());
            }
            if a.force {
                p.opts.push("-f".into());
            }
        }
        return Ok(p);
    }
    // In check mode a missing group may come from an earlier task of the run (noted, not fatal).
    if !cur.missing_groups.is_empty() && !check {
        return Err(format!(
            "group{} {} do{} not exist: create {} first (group module)",
            if cur.missing_groups.len() > 1 {
                "s"
            } else {
                ""
            },
            cur.missing_groups.join(", "),
            if cur.missing_groups.len() > 1 {
                ""
            } else {
                "es"
            },
            if cur.missing_groups.len() > 1 {
                "them"
            } else {
                "it"
            },
        ));
    }
    if let Some(u) = &a.uid {
        if u.parse::<u32>().is_err() {
            return Err(format!("uid '{u}' is not a number"));
        }
    }
    if let Some(pw) = &a.password {
        if !pw.is_empty() && !pw.starts_with('$') && !pw.starts_with('!') && !pw.starts_with('*') {
            return Err(
                "password must be a crypt hash (e.g. from `mkpasswd -m sha-512` or the password_hash filter), not clear text".into(),
            );
        }
    }
    let wanted = wanted_groups(a);
    let opt = |o: &mut Vec<String>, k: &str, v: &str| {
        o.push(k.into());
        o.push(v.into());
    };
    match &cur.passwd {
        None => {
            p.action = Action::Create;
            p.changes.push(Change {
                key: "state",
                before: "absent".into(),
                after: "present".into(),
            });
            let o = &mut p.opts;
            if let Some(u) = &a.uid {
                opt(o, "-u", u);
                if a.non_unique {
                    o.push("-o".into());
                }
            }
            if let Some(g) = &a.group {
                opt(o, "-g", g);
            }
            if let Some(w) = &wanted {
                if !w.is_empty() {
                    opt(o, "-G", &w.iter().cloned().collect::<Vec<_>>().join(","));
                }
            }
            if let Some(s) = &a.shell {
                opt(o, "-s", s);
            }
            if let Some(h) = &a.home {
                opt(o, "-d", h);
            }
            if let Some(c) = &a.comment {
                opt(o, "-c", c);
            }
            if let Some(e) = a.expires {
                opt(o, "-e", &expire_date(e));
            }
            o.push(if a.create_home { "-m" } else { "-M" }.into());
            if a.system {
                o.push("-r".into());
            }
            let shown: [(&'static str, Option<String>); 6] = [
                ("uid", a.uid.clone()),
                ("group", a.group.clone()),
                (
                    "groups",
                    wanted
                        .as_ref()
                        .map(|w| w.iter().cloned().collect::<Vec<_>>().join(",")),
                ),
                ("shell", a.shell.clone()),
                (
                    "home",
                    Some(
                        a.home
                            .clone()
                            .unwrap_or_else(|| format!("/home/{}", a.name)),
                    ),
                ),
                ("comment", a.comment.clone()),
            ];
            for (key, v) in shown {
                if let Some(v) = v {
                    p.changes.push(Change {
                        key,
                        before: String::new(),
                        after: v,
                    });
                }
            }
            p.set_password = a.password.as_deref().is_some_and(|s| !s.is_empty());
            if p.set_password {
                p.changes.push(Change {
                    key: "password",
                    before: String::new(),
                    after: "(changed)".into(),
                });
            }
            if a.password_lock == Some(true) {
                p.lock = Some(true);
            }
            p.gen_key = a.generate_ssh_key;
        }
        Some(pw) => {
            let mut o = vec![];
            let mut ch = |key: &'static str, before: String, after: String| {
                p.changes.push(Change { key, before, after });
            };
            if let Some(u) = &a.uid {
                if *u != pw.uid.to_string() {
                    ch("uid", pw.uid.to_string(), u.clone());
                    opt(&mut o, "-u", u);
                    if a.non_unique {
                        o.push("-o".into());
                    }
                }
            }
            if let Some(g) = &a.group {
                if *g != cur.primary && *g != pw.gid.to_string() {
                    ch("group", cur.primary.clone(), g.clone());
                    opt(&mut o, "-g", g);
                }
            }
            if let Some(w) = &wanted {
                let w: BTreeSet<String> =
                    w.iter().filter(|g| **g != cur.primary).cloned().collect();
                let differs = if a.append {
                    !w.is_subset(&cur.groups)
                } else {
                    w != cur.groups
                };
                if differs {
                    let after: BTreeSet<String> = if a.append {
                        cur.groups.union(&w).cloned().collect()
                    } else {
                        w.clone()
                    };
                    let j = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
                    ch("groups", j(&cur.groups), j(&after));
                    if a.append {
                        o.push("-a".into());
                    }
                    opt(&mut o, "-G", &j(&w));
                }
            }
            if let Some(s) = &a.shell {
                if *s != pw.shell {
                    ch("shell", pw.shell.clone(), s.clone());
                    opt(&mut o, "-s", s);
                }
            }
            if let Some(h) = &a.home {
                if h.trim_end_matches('/') != pw.home.trim_end_matches('/') {
                    ch("home", pw.home.clone(), h.clone());
                    opt(&mut o, "-d", h);
                    if a.move_home {
                        o.push("-m".into());
                    }
                }
            }
            if let Some(c) = &a.comment {
                if *c != pw.comment {
                    ch("comment", pw.comment.clone(), c.clone());
                    opt(&mut o, "-c", c);
                }
            }
            if let Some(e) = a.expires {
                if cur.shadow_read && expire_days(e) != cur.expire_days {
                    let show = |d: Option<i64>| {
                        d.map(|d| expire_date(d as f64 * 86400.0))
                            .unwrap_or_else(|| "never".into())
                    };
                    ch("expires", show(cur.expire_days), show(expire_days(e)));
                    opt(&mut o, "-e", &expire_date(e));
                }
            }
            if let (Some(want), UpdatePassword::Always) = (&a.password, a.update_password) {
                let have = cur.hash.as_deref().unwrap_or("");
                if !cur.shadow_read {
                    return Err("cannot read the shadow entry to compare the password: run with become: true".into());
                }
                if want.trim_start_matches('!') != have.trim_start_matches('!') {
                    ch("password", "(hidden)".into(), "(changed)".into());
                    p.set_password = true;
                }
            }
            if let Some(l) = a.password_lock {
                if cur.shadow_read {
                    let have = cur.hash.as_deref().unwrap_or("");
                    let locked = if p.set_password {
                        false
                    } else {
                        is_locked(have)
                    };
                    if l != locked && (l || have.len() > 1 || p.set_password) {
                        ch("password_lock", locked.to_string(), l.to_string());
                        p.lock = Some(l);
                    }
                }
            }
            if a.generate_ssh_key && !cur.key_exists {
                ch("ssh_key_file", "absent".into(), p.key_file.clone());
                p.gen_key = true;
            }
            p.opts = o;
            if !p.changes.is_empty() {
                p.action = Action::Modify;
            }
        }
    }
    Ok(p)
}

/// The before/after state diff (secrets never in it).
pub fn diff(name: &str, changes: &[Change]) -> FileDiff {
    let render = |before: bool| {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), name.into());
        for c in changes {
            let v = if before { &c.before } else { &c.after };
            m.insert(c.key.into(), v.clone().into());
        }
        serde_json::to_string_pretty(&m).unwrap_or_default() + "\n"
    };
    FileDiff {
        before_header: format!("user {name}"),
        after_header: format!("user {name}"),
        before: render(true),
        after: render(false),
        skipped: None,
    }
}

pub struct User;

fn quote_all(v: &[String]) -> String {
    v.iter()
        .map(|s| shell_quote(s))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn probe(ctx: &TaskCtx<'_>, a: &Args) -> Result<Current, ModuleError> {
    let out = ctx.exec(probe_script(a, &key_file(a))).await?;
    parse_current(&out.stdout_str()).map_err(|e| ModuleError::Failed(format!("{}: {e}", ctx.host)))
}

impl Module for User {
    const NAME: &'static str = "user";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if a.name.is_empty() || a.name.contains([':', '\n', ' ', '/']) {
            return Err(ModuleError::Failed(format!(
                "'{}' is not a valid user name",
                a.name
            )));
        }
        let cur = probe(ctx, a).await?;
        make_plan(a, cur, ctx.check)
            .map_err(|e| ModuleError::Failed(format!("{}: user {}: {e}", ctx.host, a.name)))
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let mut r = TaskResult::changed(p.action != Action::None)
            .with("name", a.name.clone())
            .with(
                "state",
                if a.state == State::Present {
                    "present"
                } else {
                    "absent"
                },
            );
        if a.state == State::Absent {
            r = r.with("force", a.force).with("remove", a.remove);
        } else if let Some(pw) = &p.cur.passwd {
            r = r
                .with("uid", pw.uid)
                .with("group", pw.gid)
                .with("home", pw.home.clone())
                .with("shell", pw.shell.clone())
                .with("comment", pw.comment.clone());
        } else {
            r = r
                .with(
                    "home",
                    a.home
                        .clone()
                        .unwrap_or_else(|| format!("/home/{}", a.name)),
                )
                .with("system", a.system)
                .with("create_home", a.create_home)
                .with("shell", a.shell.clone().unwrap_or_else(|| "/bin/sh".into()))
                .with("comment", a.comment.clone().unwrap_or_default());
            if let Some(u) = a.uid.as_deref().and_then(|u| u.parse::<u32>().ok()) {
                r = r.with("uid", u);
            }
        }
        if a.password.is_some() {
            r = r.with("password", "NOT_LOGGING_PASSWORD");
        }
        if ctx.diff && !p.changes.is_empty() {
            r.diff.push(diff(&a.name, &p.changes));
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        mut done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let n = shell_quote(&a.name);
        let mut script = String::from("PATH=$PATH:/usr/sbin:/sbin; set -e; ");
        let mut stdin = None;
        match p.action {
            Action::None => return Ok(done),
            Action::Remove => {
                script.push_str(&format!("userdel {} {n}; ", quote_all(&p.opts)));
            }
            Action::Create => {
                let mut opts = p.opts.clone();
                if a.group.is_none() {
                    // As Ansible: a group named like the user already exists → no user group.
                    script.push_str(&format!(
                        "if getent group {n} >/dev/null; then ng=-N; else ng=; fi; "
                    ));
                    opts.insert(0, "$ng".into());
                }
                let o: Vec<String> = opts
                    .iter()
                    .map(|s| {
                        if s == "$ng" {
                            "$ng".into()
                        } else {
                            shell_quote(s)
                        }
                    })
                    .collect();
                script.push_str(&format!("useradd {} {n}; ", o.join(" ")));
            }
            Action::Modify => {
                if !p.opts.is_empty() {
                    script.push_str(&format!("usermod {} {n}; ", quote_all(&p.opts)));
                }
            }
        }
        if p.set_password {
            // The hash goes through stdin, never on a command line.
            script.push_str("chpasswd -e; ");
            stdin = Some(
                format!("{}:{}\n", a.name, a.password.clone().unwrap_or_default()).into_bytes(),
            );
        }
        match p.lock {
            Some(true) => script.push_str(&format!("usermod -L {n}; ")),
            Some(false) => script.push_str(&format!("usermod -U {n}; ")),
            None => {}
        }
        if p.gen_key {
            let file = if p.key_file.starts_with('/') {
                shell_quote(&p.key_file)
            } else {
                format!("\"$h\"/{}", shell_quote(&p.key_file))
            };
            let bits = a
                .ssh_key_bits
                .as_ref()
                .map(|b| format!("-b {} ", shell_quote(b)))
                .unwrap_or_default();
            let comment = a
                .ssh_key_comment
                .clone()
                .unwrap_or_else(|| format!("ansible-generated on {}", ctx.host));
            script.push_str(&format!(
                "h=$(getent passwd {n} | cut -d: -f6); f={file}; \
                 if [ ! -e \"$f\" ]; then d=$(dirname \"$f\"); \
                 if [ ! -d \"$d\" ]; then mkdir -p \"$d\"; chmod 0700 \"$d\"; chown {n}: \"$d\"; fi; \
                 ssh-keygen -q -t {t} {bits}-C {c} -N '' -f \"$f\" </dev/null >/dev/null; \
                 chown {n}: \"$f\" \"$f.pub\"; fi; \
                 printf 'HLFP %s\\n' \"$(ssh-keygen -l -f \"$f.pub\")\"; printf 'HLPUB %s\\n' \"$(cat \"$f.pub\")\"; \
                 printf 'HLKF %s\\n' \"$f\"; ",
                t = shell_quote(&a.ssh_key_type),
                c = shell_quote(&comment),
            ));
        }
        let out = ctx.exec_with(script, stdin).await?;
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "{}: could not {} user {}: {}",
                ctx.host,
                match p.action {
                    Action::Create => "create",
                    Action::Remove => "remove",
                    _ => "modify",
                },
                a.name,
                out.stderr_str().trim()
            )));
        }
        for line in out.stdout_str().lines() {
            if let Some(v) = line.strip_prefix("HLFP ") {
                done = done.with("ssh_fingerprint", v.to_string());
            } else if let Some(v) = line.strip_prefix("HLPUB ") {
                done = done.with("ssh_public_key", v.to_string());
            } else if let Some(v) = line.strip_prefix("HLKF ") {
                done = done.with("ssh_key_file", v.to_string());
            }
        }
        if a.state == State::Present {
            let now = probe(ctx, a).await?;
            if let Some(pw) = now.passwd {
                done = done
                    .with("uid", pw.uid)
                    .with("group", pw.gid)
                    .with("home", pw.home)
                    .with("shell", pw.shell)
                    .with("comment", pw.comment);
            }
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

    fn current(out: &str) -> Current {
        parse_current(out).unwrap()
    }

    const EXISTING: &str = "HLPW bob:x:1001:1001:Bob B:/home/bob:/bin/bash\nHLPG bob\n\
        HLGR bob adm sudo\nHLSH bob:$6$salt$hash:19000:0:99999:7:::\nHLHOME\n";

    #[test]
    fn parses_passwd_groups_and_shadow() {
        let c = current(EXISTING);
        let pw = c.passwd.clone().unwrap();
        assert_eq!(
            (pw.uid, pw.gid, pw.home.as_str()),
            (1001, 1001, "/home/bob")
        );
        assert_eq!(pw.comment, "Bob B");
        assert_eq!(c.primary, "bob");
        assert_eq!(
            c.groups.iter().cloned().collect::<Vec<_>>(),
            ["adm", "sudo"]
        );
        assert_eq!(c.hash.as_deref(), Some("$6$salt$hash"));
        assert_eq!(c.expire_days, None);
        assert!(c.home_exists && !c.key_exists);
        assert!(parse_passwd("short:x").is_none());
        assert!(parse_current("HLNOUSERADD\n").is_err());
        assert_eq!(current("").passwd, None);
    }

    #[test]
    fn groups_as_list_or_comma_string() {
        let a = args(json!({"name": "x", "groups": "a, b,,c"}));
        assert_eq!(wanted_groups(&a).unwrap().len(), 3);
        let a = args(json!({"name": "x", "groups": ["a", "b"]}));
        assert_eq!(wanted_groups(&a).unwrap().len(), 2);
        let a = args(json!({"name": "x", "groups": ""}));
        assert!(wanted_groups(&a).unwrap().is_empty());
        assert!(wanted_groups(&args(json!({"name": "x"}))).is_none());
    }

    #[test]
    fn plans_create_modify_and_nothing() {
        let a = args(
            json!({"name": "bob", "groups": ["adm", "sudo"], "shell": "/bin/bash",
            "password": "$6$salt$hash", "comment": "Bob B"}),
        );
        let p = make_plan(&a, current(EXISTING), false).unwrap();
        assert_eq!(p.action, Action::None, "{:?}", p.changes);

        let p = make_plan(&a, current(""), false).unwrap();
        assert_eq!(p.action, Action::Create);
        assert!(p.set_password);
        assert!(p.opts.windows(2).any(|w| w == ["-G", "adm,sudo"]));
        assert!(p.opts.contains(&"-m".to_string()));
        assert!(
            !p.opts.iter().any(|o| o.contains("$6$")),
            "no hash in options"
        );

        let a = args(json!({"name": "bob", "groups": "docker", "append": true,
            "password": "$6$other$x", "shell": "/bin/sh"}));
        let p = make_plan(&a, current(EXISTING), false).unwrap();
        assert_eq!(p.action, Action::Modify);
        assert_eq!(p.opts, ["-a", "-G", "docker", "-s", "/bin/sh"]);
        assert!(p.set_password);
        let d = diff("bob", &p.changes);
        assert!(
            !d.before.contains("$6$") && !d.after.contains("$6$"),
            "{d:?}"
        );
        assert!(
            d.after.contains("\"password\": \"(changed)\""),
            "{}",
            d.after
        );
        assert!(d.after.contains("adm,docker,sudo"), "{}", d.after);

        // on_create: an existing user's password is left alone.
        let a =
            args(json!({"name": "bob", "password": "$6$other$x", "update_password": "on_create"}));
        assert_eq!(
            make_plan(&a, current(EXISTING), false).unwrap().action,
            Action::None
        );

        // groups not appended: exact set.
        let a = args(json!({"name": "bob", "groups": "adm"}));
        let p = make_plan(&a, current(EXISTING), false).unwrap();
        assert_eq!(p.opts, ["-G", "adm"]);
    }

    #[test]
    fn absent_lock_expiry_and_bad_input() {
        let a = args(json!({"name": "bob", "state": "absent", "remove": "yes"}));
        let p = make_plan(&a, current(EXISTING), false).unwrap();
        assert_eq!(
            (p.action, p.opts.clone()),
            (Action::Remove, vec!["-r".to_string()])
        );
        assert_eq!(
            make_plan(&a, current(""), false).unwrap().action,
            Action::None
        );

        let a = args(json!({"name": "bob", "password_lock": true}));
        let p = make_plan(&a, current(EXISTING), false).unwrap();
        assert_eq!(p.lock, Some(true));
        let locked = EXISTING.replace("$6$salt", "!$6$salt");
        assert_eq!(
            make_plan(&a, current(&locked), false).unwrap().action,
            Action::None
        );

        assert_eq!(expire_date(0.0), "1970-01-01");
        assert_eq!(expire_date(1_700_000_000.0), "2023-11-14");
        let a = args(json!({"name": "bob", "expires": 1700000000}));
        let p = make_plan(&a, current(EXISTING), false).unwrap();
        assert_eq!(p.opts, ["-e", "2023-11-14"]);
        let a = args(json!({"name": "bob", "expires": -1}));
        assert_eq!(
            make_plan(&a, current(EXISTING), false).unwrap().action,
            Action::None
        );

        let a = args(json!({"name": "bob", "password": "secret"}));
        assert!(make_plan(&a, current(EXISTING), false)
            .unwrap_err()
            .contains("crypt hash"));
        let a = args(json!({"name": "bob", "groups": "nosuch"}));
        let e =
            make_plan(&a, current(&format!("{EXISTING}HLNOGROUP nosuch\n")), false).unwrap_err();
        assert!(e.contains("nosuch does not exist"), "{e}");
        let p = make_plan(&a, current(&format!("{EXISTING}HLNOGROUP nosuch\n")), true).unwrap();
        assert_eq!(
            p.action,
            Action::Modify,
            "check mode: a group an earlier task makes"
        );
        assert!(serde_json::from_value::<Args>(json!({"name": "x", "bogus": 1})).is_err());
        assert!(serde_json::from_value::<Args>(json!({"name": "x", "state": "gone"})).is_err());
    }

    #[test]
    fn ssh_key_only_when_missing() {
        let a = args(json!({"name": "bob", "generate_ssh_key": true}));
        let p = make_plan(&a, current(EXISTING), false).unwrap();
        assert!(p.gen_key && p.key_file == ".ssh/id_rsa");
        let p = make_plan(&a, current(&format!("{EXISTING}HLKEY\n")), false).unwrap();
        assert_eq!(p.action, Action::None);
    }
}
