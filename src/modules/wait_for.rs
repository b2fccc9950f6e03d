//! `wait_for`: wait until a file appears (or holds a pattern) or goes away, or a TCP port opens or
//! closes, as seen FROM THE HOST. The whole wait runs on the host as one POSIX shell loop in one
//! command (the transport's time limit is set above the module's `timeout`), so a long wait costs
//! one round trip.
//!
//! Port checks, in order: `nc -z`; bash's `/dev/tcp` (when bash exists); else, for a local address
//! (localhost, 127.x, 0.0.0.0, ::1 or an IPv4 literal), a LISTEN entry in `/proc/net/tcp{,6}`.
//! `search_regex` in a file is matched with `grep -P` when the host's grep has it (Perl syntax is
//! what Python's `re` reads), else `grep -E` on a translation of the common escapes; the matching
//! line is returned and `match_groups`/`match_groupdict` are read from it here.
//!
//! wait_for changes nothing, so it runs in check mode too (Ansible: check_mode support full).

use super::core::{Module, ModuleError, TaskCtx, TaskResult};
use crate::transport::shell_quote;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Started,
    Present,
    Stopped,
    Absent,
    Drained,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Present => "present",
            State::Stopped => "stopped",
            State::Absent => "absent",
            State::Drained => "drained",
        }
    }
    fn wants_gone(self) -> bool {
        matches!(self, State::Stopped | State::Absent)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "localhost")]
    pub host: String,
    #[serde(default, deserialize_with = "opt_num")]
    pub port: Option<f64>,
    pub path: Option<String>,
    #[serde(default = "started")]
    pub state: State,
    pub search_regex: Option<String>,
    #[serde(default = "secs300", deserialize_with = "num")]
    pub timeout: f64,
    #[serde(default, deserialize_with = "num")]
    pub delay: f64,
    #[serde(default = "one", deserialize_with = "num")]
    pub sleep: f64,
    #[serde(default = "five", deserialize_with = "num")]
    pub connect_timeout: f64,
    pub msg: Option<String>,
}

fn localhost() -> String {
    "127.0.0.1".into()
}
fn started() -> State {
    State::Started
}
fn secs300() -> f64 {
    300.0
}
fn one() -> f64 {
    1.0
}
fn five() -> f64 {
    5.0
}

/// A number given as a number or as text (`timeout=10` arrives as a string).
fn to_num(v: &Value) -> Result<f64, String> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!("'{v}' is not a number of seconds (or a port)")),
    }
}

fn num<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = Value::deserialize(d)?;
    to_num(&v).map_err(serde::de::Error::custom)
}

fn opt_num<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => to_num(&v).map(Some).map_err(serde::de::Error::custom),
    }
}

/// What the wait on the host came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Met {
        elapsed: u64,
        line: Option<String>,
    },
    TimedOut {
        elapsed: u64,
    },
    /// No way to test a port on this host.
    NoMethod,
    BadRegex(String),
}

pub struct Plan {
    outcome: Outcome,
    port: Option<u16>,
}

pub struct WaitFor;

/// `sleep`-able seconds: whole numbers as such, fractions as decimals (GNU/busybox sleep).
fn secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s:.3}")
    }
}

/// Hex forms of a local address as /proc/net/tcp{,6} print it (both byte orders), when `host`
/// is an address the host can see listening itself; `None` for names it would have to resolve.
/// An empty list means any address (0.0.0.0).
pub fn proc_addrs(host: &str) -> Option<Vec<String>> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let v4 = |a: Ipv4Addr| {
        let o = a.octets();
        vec![
            format!("{:02X}{:02X}{:02X}{:02X}", o[3], o[2], o[1], o[0]),
            format!("{:02X}{:02X}{:02X}{:02X}", o[0], o[1], o[2], o[3]),
        ]
    };
    let v6 = |a: Ipv6Addr| {
        let b = a.octets();
        let mut le = String::new();
        let mut be = String::new();
        for w in b.chunks(4) {
            le.push_str(&format!("{:02X}{:02X}{:02X}{:02X}", w[3], w[2], w[1], w[0]));
            be.push_str(&format!("{:02X}{:02X}{:02X}{:02X}", w[0], w[1], w[2], w[3]));
        }
        vec![le, be]
    };
    let wildcard = |out: &mut Vec<String>| {
        out.extend(v4(Ipv4Addr::UNSPECIFIED));
        out.extend(v6(Ipv6Addr::UNSPECIFIED));
    };
    let mut out = vec![];
    match host {
        "localhost" | "ip6-localhost" => {
            out.extend(v4(Ipv4Addr::LOCALHOST));
            out.extend(v6(Ipv6Addr::LOCALHOST));
            out.extend(v6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()));
            wildcard(&mut out);
        }
        _ => match host.trim_matches(['[', ']']).parse::<IpAddr>().ok()? {
            IpAddr::V4(a) if a.is_unspecified() => return Some(vec![]),
            IpAddr::V6(a) if a.is_unspecified() => return Some(vec![]),
            IpAddr::V4(a) => {
                out.extend(v4(a));
                out.extend(v6(a.to_ipv6_mapped()));
                wildcard(&mut out);
            }
            IpAddr::V6(a) => {
                out.extend(v6(a));
                wildcard(&mut out);
            }
        },
    }
    out.dedup();
    Some(out)
}

/// Python `re` → POSIX ERE for the common escapes (`\d`, `\s`, `\w`...), lazy quantifiers made
/// greedy (the same lines match) and `(?P<name>`/`(?:` made plain groups. Used only when the
/// host's grep has no `-P`.
pub fn to_ere(re: &str) -> String {
    let mut out = String::new();
    let mut chars = re.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let (outside, inside) = match n {
                    'd' => ("[0-9]", "0-9"),
                    'D' => ("[^0-9]", "^0-9"),
                    's' => ("[[:space:]]", "[:space:]"),
                    'S' => ("[^[:space:]]", "^[:space:]"),
                    'w' => ("[[:alnum:]_]", "[:alnum:]_"),
                    'W' => ("[^[:alnum:]_]", "^[:alnum:]_"),
                    _ => {
                        out.push('\\');
                        out.push(n);
                        continue;
                    }
                };
                out.push_str(if in_class { inside } else { outside });
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '(' if !in_class && chars.peek() == Some(&'?') => {
                chars.next();
                out.push('(');
                match chars.next() {
                    Some(':') => {}
                    Some('P') if chars.peek() == Some(&'<') => {
                        for c in chars.by_ref() {
                            if c == '>' {
                                break;
                            }
                        }
                    }
                    Some(o) => {
                        // Lookarounds and flags have no ERE form: keep them (grep reports them).
                        out.push('?');
                        out.push(o);
                    }
                    None => out.push('?'),
                }
            }
            '*' | '+' | '?' | '}' if !in_class => {
                out.push(c);
                if chars.peek() == Some(&'?') {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The shell loop that waits on the host; it prints `HLWAIT ok|timeout ELAPSED` (or `nomethod`,
/// `badregex`) and, for a pattern that matched, `HLMATCH LINE`.
pub fn wait_script(a: &Args, port: Option<u16>) -> String {
    let ct = a.connect_timeout.min(a.timeout).max(1.0).ceil() as u64;
    let mut s = format!(
        "hl_start=$(date +%s); hl_end=$((hl_start + {})); hl_how=-\n",
        a.timeout.ceil() as u64
    );
    if a.delay > 0.0 {
        s.push_str(&format!("sleep {}\n", secs(a.delay)));
    }
    if let Some(re) = &a.search_regex {
        let (flags, pcre, ere) = match re.strip_prefix("(?i)") {
            Some(rest) => ("-i ", rest.to_string(), to_ere(rest)),
            None => ("", re.clone(), to_ere(re)),
        };
        s.push_str(&format!(
            "if printf 'ab\\n' | grep -q -P 'a(?=b)' 2>/dev/null; then hl_gf='{flags}-P'; hl_re={}; \
             else hl_gf='{flags}-E'; hl_re={}; fi\n\
             hl_e=$(printf '' | grep $hl_gf -e \"$hl_re\" 2>&1 >/dev/null); \
             if [ $? -gt 1 ]; then echo \"HLWAIT badregex $hl_e\" | head -n 1; exit 0; fi\n\
             hl_grep() {{ grep $hl_gf -e \"$hl_re\" \"$@\" 2>/dev/null | head -n 1; }}\n",
            shell_quote(&pcre),
            shell_quote(&ere)
        ));
    }
    let check = match (&a.path, port) {
        (Some(p), _) => {
            let q = shell_quote(p);
            match (a.state.wants_gone(), &a.search_regex) {
                (true, _) => format!("hl_check() {{ [ ! -e {q} ]; }}\n"),
                (false, None) => format!("hl_check() {{ [ -e {q} ]; }}\n"),
                (false, Some(_)) => format!(
                    "hl_check() {{ [ -e {q} ] || return 1; hl_m=$(hl_grep -- {q}); \
                     [ -n \"$hl_m\" ] || return 1; printf 'HLMATCH %s\\n' \"$hl_m\"; }}\n"
                ),
            }
        }
        (None, Some(port)) => {
            let mut m = format!(
                "hl_host={}; hl_port={port}; hl_ct={ct}\n\
                 hl_to() {{ if command -v timeout >/dev/null 2>&1; then timeout \"$hl_ct\" \"$@\"; else \"$@\"; fi; }}\n\
                 if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -- '-z'; then hl_how=nc\n\
                   hl_conn() {{ nc -z -w \"$hl_ct\" \"$hl_host\" \"$hl_port\" >/dev/null 2>&1 </dev/null; }}\n\
                   hl_read() {{ hl_to nc -w \"$hl_ct\" \"$hl_host\" \"$hl_port\" </dev/null 2>/dev/null; }}\n\
                 elif command -v bash >/dev/null 2>&1; then hl_how=bash\n\
                   hl_conn() {{ hl_to bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' _ \"$hl_host\" \"$hl_port\" >/dev/null 2>&1 </dev/null; }}\n\
                   hl_read() {{ hl_to bash -c 'exec 3<>\"/dev/tcp/$1/$2\" && exec cat <&3' _ \"$hl_host\" \"$hl_port\" 2>/dev/null </dev/null; }}\n",
                shell_quote(&a.host)
            );
            match proc_addrs(&a.host) {
                Some(addrs) => m.push_str(&format!(
                    "elif [ -r /proc/net/tcp ]; then hl_how=proc\n\
                       hl_conn() {{ hl_hex=$(printf '%04X' \"$hl_port\"); \
                       for hl_t in /proc/net/tcp /proc/net/tcp6; do [ -r \"$hl_t\" ] || continue; \
                       while read -r _ hl_l _ hl_st _; do [ \"$hl_st\" = 0A ] || continue; \
                       case \"$hl_l\" in *:\"$hl_hex\") ;; *) continue;; esac; \
                       hl_a=${{hl_l%:*}}; hl_any='{}'; \
                       if [ -z \"$hl_any\" ]; then return 0; fi; \
                       case \" $hl_any \" in *\" $hl_a \"*) return 0;; esac; \
                       done < \"$hl_t\"; done; return 1; }}\n\
                     else echo 'HLWAIT nomethod'; exit 0; fi\n",
                    addrs.join(" ")
                )),
                None => m.push_str("else echo 'HLWAIT nomethod'; exit 0; fi\n"),
            }
            let body = match (a.state.wants_gone(), &a.search_regex) {
                (true, _) => "! hl_conn",
                (false, None) => "hl_conn",
                (false, Some(_)) => {
                    // Reading the port's data needs a real connection.
                    m.push_str("[ \"$hl_how\" != proc ] || { echo 'HLWAIT nomethod'; exit 0; }\n");
                    "hl_m=$(hl_read | hl_grep); [ -n \"$hl_m\" ] || return 1; \
                     printf 'HLMATCH %s\\n' \"$hl_m\""
                }
            };
            m.push_str(&format!("hl_check() {{ {body}; }}\n"));
            m
        }
        (None, None) => {
            // Neither: Ansible sleeps for `timeout` seconds.
            s.push_str(&format!(
                "sleep {}; echo \"HLWAIT ok $(( $(date +%s) - hl_start ))\"\n",
                secs(a.timeout)
            ));
            return s;
        }
    };
    s.push_str(&check);
    s.push_str(&format!(
        "echo \"HLHOW $hl_how\"\n\
         while [ \"$(date +%s)\" -lt \"$hl_end\" ]; do\n\
           if hl_check; then echo \"HLWAIT ok $(( $(date +%s) - hl_start ))\"; exit 0; fi\n\
           sleep {}\n\
         done\n\
         echo \"HLWAIT timeout $(( $(date +%s) - hl_start ))\"\n",
        secs(a.sleep)
    ));
    s
}

/// Reads what [`wait_script`] printed.
pub fn parse_wait(out: &str) -> Result<Outcome, String> {
    let mut line = None;
    for l in out.lines() {
        if let Some(m) = l.strip_prefix("HLMATCH ") {
            line = Some(m.to_string());
        } else if let Some(rest) = l.strip_prefix("HLWAIT ") {
            let mut f = rest.splitn(2, ' ');
            let what = f.next().unwrap_or_default();
            let arg = f.next().unwrap_or_default().trim();
            let elapsed = arg.parse::<u64>().unwrap_or(0);
            return Ok(match what {
                "ok" => Outcome::Met {
                    elapsed,
                    line: line.take(),
                },
                "timeout" => Outcome::TimedOut { elapsed },
                "nomethod" => Outcome::NoMethod,
                "badregex" => Outcome::BadRegex(arg.to_string()),
                _ => return Err(format!("unexpected answer from the host: {l}")),
            });
        }
    }
    Err(format!(
        "the host did not report the wait's result (is `date` there?): {}",
        out.trim()
    ))
}

/// `match_groups` and `match_groupdict` of `re` on the matched line (empty when the pattern is
/// not one Rust's regex reads, e.g. with lookarounds).
fn groups(re: &str, line: &str) -> (Value, Value) {
    let mut list = vec![];
    let mut dict = Map::new();
    if let Ok(r) = regex::Regex::new(&format!("(?m){re}")) {
        if let Some(c) = r.captures(line) {
            for i in 1..c.len() {
                list.push(
                    c.get(i)
                        .map(|m| Value::String(m.as_str().to_string()))
                        .unwrap_or(Value::Null),
                );
            }
            for name in r.capture_names().flatten() {
                dict.insert(
                    name.to_string(),
                    c.name(name)
                        .map(|m| Value::String(m.as_str().to_string()))
                        .unwrap_or(Value::Null),
                );
            }
        }
    }
    (Value::Array(list), Value::Object(dict))
}

impl Module for WaitFor {
    const NAME: &'static str = "wait_for";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let fail = |m: &str| Err(ModuleError::Failed(m.to_string()));
        if a.port.is_some() && a.path.is_some() {
            return fail("port and path parameter can not both be passed to wait_for");
        }
        if a.path.is_some() && a.state == State::Stopped {
            return fail("state=stopped should only be used for checking a port in the wait_for module; use state=absent for a path");
        }
        if a.state == State::Drained {
            return fail("state=drained is not supported by homelab; wait for the port with state=stopped instead");
        }
        let port = match a.port {
            Some(p) if p.fract() == 0.0 && (1.0..=65535.0).contains(&p) => Some(p as u16),
            Some(p) => {
                return Err(ModuleError::Failed(format!(
                    "port {p} is not a TCP port (1-65535)"
                )))
            }
            None => None,
        };
        if a.sleep <= 0.0 && (a.path.is_some() || port.is_some()) {
            return fail("sleep must be more than 0 seconds");
        }
        let limit =
            Duration::from_secs_f64(a.timeout.max(a.delay) + a.connect_timeout + a.sleep + 30.0);
        let out = ctx
            .exec_limited(wait_script(a, port), None, Some(limit))
            .await?;
        let outcome = parse_wait(&out.stdout_str()).map_err(|e| {
            ModuleError::Failed(
                format!("{e} {}", out.stderr_str().trim())
                    .trim()
                    .to_string(),
            )
        })?;
        Ok(Plan { outcome, port })
    }

    fn describe(_ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let what = match (&a.path, p.port) {
            (Some(path), _) => match (a.state.wants_gone(), &a.search_regex) {
                (true, _) => format!("Timeout when waiting for {path} to be absent."),
                (false, Some(re)) => {
                    format!("Timeout when waiting for search string {re} in {path}")
                }
                (false, None) => format!("Timeout when waiting for file {path}"),
            },
            (None, Some(port)) => match (a.state.wants_gone(), &a.search_regex) {
                (true, _) => format!("Timeout when waiting for {}:{port} to stop.", a.host),
                (false, Some(re)) => format!(
                    "Timeout when waiting for search string {re} in {}:{port}",
                    a.host
                ),
                (false, None) => format!("Timeout when waiting for {}:{port}", a.host),
            },
            (None, None) => String::new(),
        };
        let base = |r: TaskResult| {
            r.with("state", a.state.name())
                .with("port", p.port.map(Value::from).unwrap_or(Value::Null))
                .with(
                    "path",
                    a.path.clone().map(Value::from).unwrap_or(Value::Null),
                )
                .with(
                    "search_regex",
                    a.search_regex
                        .clone()
                        .map(Value::from)
                        .unwrap_or(Value::Null),
                )
        };
        match &p.outcome {
            Outcome::Met { elapsed, line } => {
                let (list, dict) = match (&a.search_regex, line) {
                    (Some(re), Some(l)) => groups(re, l),
                    _ => (Value::Array(vec![]), Value::Object(Map::new())),
                };
                base(TaskResult::changed(false))
                    .with("elapsed", *elapsed)
                    .with("match_groups", list)
                    .with("match_groupdict", dict)
            }
            Outcome::TimedOut { elapsed } => {
                let msg = a.msg.clone().unwrap_or(format!(
                    "{what} (waited {elapsed}s; raise timeout: if it needs longer)"
                ));
                base(TaskResult::failed(msg)).with("elapsed", *elapsed)
            }
            Outcome::NoMethod => base(TaskResult::failed(format!(
                "cannot check {}:{} from the host: it has no nc, no bash, and {} is not an address /proc/net/tcp can show; install nc (netcat) on the host",
                a.host,
                p.port.unwrap_or_default(),
                a.host
            )))
            .with("elapsed", 0),
            Outcome::BadRegex(e) => base(TaskResult::failed(format!(
                "search_regex {} is not a pattern the host's grep reads: {e}",
                a.search_regex.as_deref().unwrap_or_default()
            )))
            .with("elapsed", 0),
        }
    }

    async fn apply(
        _ctx: &TaskCtx<'_>,
        _a: &Args,
        _p: Plan,
        described: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        // Never changed, so never called; waiting happened in plan.
        Ok(described)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::run;
    use serde_json::json;

    #[test]
    fn python_patterns_become_ere() {
        assert_eq!(to_ere(r"port=(\d+)"), "port=([0-9]+)");
        assert_eq!(to_ere(r"[\d\s]x\S"), "[0-9[:space:]]x[^[:space:]]");
        assert_eq!(to_ere(r"(?P<v>\w+)\.(?:a|b)*?"), "([[:alnum:]_]+)\\.(a|b)*");
        assert_eq!(to_ere(r"[]a]\."), r"[]a]\.");
    }

    #[test]
    fn proc_addresses_in_both_byte_orders() {
        let a = proc_addrs("127.0.0.71").unwrap();
        assert!(a.contains(&"4700007F".to_string()) && a.contains(&"7F000047".to_string()));
        assert!(
            a.contains(&"00000000".to_string()),
            "wildcard listeners count"
        );
        assert!(proc_addrs("localhost")
            .unwrap()
            .contains(&"00000000000000000000000001000000".to_string()));
        assert_eq!(proc_addrs("0.0.0.0"), Some(vec![]));
        assert_eq!(proc_addrs("db.example"), None);
    }

    #[test]
    fn parses_answers() {
        assert_eq!(
            parse_wait("HLHOW nc\nHLMATCH v=1\nHLWAIT ok 3\n"),
            Ok(Outcome::Met {
                elapsed: 3,
                line: Some("v=1".into())
            })
        );
        assert_eq!(
            parse_wait("HLWAIT timeout 2\n"),
            Ok(Outcome::TimedOut { elapsed: 2 })
        );
        assert!(parse_wait("garbage").is_err());
        let (l, d) = groups(r"v=(?P<n>\d+) (\w+)", "x v=12 ab");
        assert_eq!(l, json!(["12", "ab"]));
        assert_eq!(d, json!({"n": "12"}));
    }

    #[tokio::test]
    async fn path_appears_with_pattern_and_groups() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ready").display().to_string();
        let bg = format!(
            "(sleep 1; echo 'booting' > {p}; sleep 1; echo 'listening on port=8080' >> {p}) &"
        );
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&bg)
            .status()
            .unwrap();
        let r = run::<WaitFor>(
            false,
            json!({"path": p, "search_regex": r"port=(?P<port>\d+)", "timeout": 10}),
        )
        .await;
        assert!(!r.failed && !r.changed, "{r:?}");
        assert_eq!(r.data["match_groups"], json!(["8080"]));
        assert_eq!(r.data["match_groupdict"], json!({"port": "8080"}));
        assert!(r.data["elapsed"].as_u64().unwrap_or(99) <= 4, "{r:?}");
        // absent: already true; timeouts name what was waited for.
        let r = run::<WaitFor>(
            false,
            json!({"path": d.path().join("nope"), "state": "absent"}),
        )
        .await;
        assert!(!r.failed, "{r:?}");
        let r = run::<WaitFor>(true, json!({"path": p, "state": "absent", "timeout": "1"})).await;
        assert!(r.failed, "{r:?}");
        assert!(
            r.msg
                .as_deref()
                .unwrap_or("")
                .contains(&format!("Timeout when waiting for {p} to be absent")),
            "{r:?}"
        );
        let r = run::<WaitFor>(
            false,
            json!({"path": p, "search_regex": "never", "timeout": 1, "msg": "custom"}),
        )
        .await;
        assert_eq!(r.msg.as_deref(), Some("custom"));
    }

    #[tokio::test]
    async fn ports_open_and_closed_and_via_proc() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let r = run::<WaitFor>(false, json!({"port": port, "timeout": 5})).await;
        assert!(!r.failed, "{r:?}");
        let r = run::<WaitFor>(
            false,
            json!({"port": port.to_string(), "state": "stopped", "timeout": 1}),
        )
        .await;
        assert!(r.failed, "{r:?}");
        assert!(
            r.msg
                .as_deref()
                .unwrap_or("")
                .contains(&format!("127.0.0.1:{port} to stop")),
            "{r:?}"
        );
        // The /proc/net/tcp fallback alone (no nc, no bash): the listener is seen, a free port not.
        let a: Args = serde_json::from_value(json!({"port": port})).unwrap();
        let script = wait_script(&a, Some(port))
            .replace("command -v nc ", "false ")
            .replace("command -v bash ", "false ");
        let c =
            crate::transport::Connection::Local(crate::transport::local::LocalConnection::new("t"));
        let out = c
            .exec(&crate::transport::ExecRequest::new(script))
            .await
            .unwrap();
        assert!(
            out.stdout_str().contains("HLHOW proc"),
            "{}",
            out.stdout_str()
        );
        assert_eq!(
            parse_wait(&out.stdout_str()),
            Ok(Outcome::Met {
                elapsed: 0,
                line: None
            })
        );
        drop(l);
        let a: Args = serde_json::from_value(json!({"port": port, "timeout": 1})).unwrap();
        let script = wait_script(&a, Some(port))
            .replace("command -v nc ", "false ")
            .replace("command -v bash ", "false ");
        let out = c
            .exec(&crate::transport::ExecRequest::new(script))
            .await
            .unwrap();
        assert!(
            matches!(parse_wait(&out.stdout_str()), Ok(Outcome::TimedOut { .. })),
            "{}",
            out.stdout_str()
        );
    }

    #[tokio::test]
    async fn bad_input_is_refused() {
        let r = run::<WaitFor>(false, json!({"port": 22, "path": "/x"})).await;
        assert!(
            r.msg.as_deref().unwrap_or("").contains("can not both"),
            "{r:?}"
        );
        let r = run::<WaitFor>(false, json!({"port": 70000})).await;
        assert!(
            r.msg.as_deref().unwrap_or("").contains("not a TCP port"),
            "{r:?}"
        );
        let r = run::<WaitFor>(false, json!({"path": "/x", "state": "stopped"})).await;
        assert!(r.failed);
        let r = run::<WaitFor>(false, json!({"timeout": "soon"})).await;
        assert!(
            r.msg.as_deref().unwrap_or("").contains("not a number"),
            "{r:?}"
        );
        let r = run::<WaitFor>(
            false,
            json!({"path": "/x", "search_regex": "(", "timeout": 1}),
        )
        .await;
        assert!(
            r.msg.as_deref().unwrap_or("").contains("not a pattern"),
            "{r:?}"
        );
        // Neither port nor path: sleeps for timeout.
        let r = run::<WaitFor>(false, json!({"timeout": 1})).await;
        assert!(!r.failed && r.data["elapsed"].as_u64() >= Some(1), "{r:?}");
    }
}
