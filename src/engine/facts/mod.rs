//! Facts, gathered in one round trip with POSIX shell, under Ansible's names and shapes.
//!
//! [`script`] builds the shell script for the asked parts (`gather_subset`), [`parse`] turns its
//! output into `ansible_*` facts, [`cache`] keeps them between runs (`--fact-cache DIR`).
//! The play's fact gathering and the `setup` module (src/modules/setup.rs) both use
//! [`gather_with`]. Every fact is also under `ansible_facts.<name without ansible_>`.
//!
//! - `gather_subset` (play keyword, setup argument): `all` (default), `min` (names, distribution,
//!   kernel and architecture, pkg/service manager, user, env, date_time, dns, selinux, apparmor,
//!   lsb, cmdline), `hardware` (memory, processors, mounts, uptime, DMI), `network` (interfaces,
//!   addresses, default routes), `virtual`; `!name` excludes; names alone add to `min`; `!all`
//!   leaves `min`; `!all,!min,network` leaves only `network`. Ansible's finer collector names
//!   (`distribution`, `mounts`, `interfaces`...) map to these sections; `facter`, `ohai`, `local`,
//!   `python`... are accepted and gather nothing.
//! - `gather_timeout` (seconds, default 10): the whole script; a host that takes longer fails
//!   with a message naming the knob.
//! - `filter` (setup): globs on fact names (`ansible_eth*`).
//! - Processes on the host: `date` (min), plus `ip -o addr` and `df -P` (all): 3 forks for the
//!   full set, 1 for `min`; everything else is read with the shell's `read` builtin.
//! - Not gathered: ansible_python (no Python on targets), ansible_devices, local facts
//!   (fact_path), inode counts of mounts (one `df` gives sizes only; uuid is "N/A").
//! - Mounts are Ansible's (devices starting with `/`, NFS `host:/path`), plus `/` whatever its
//!   device is (overlay roots of containers).

pub mod cache;
pub mod need;
pub mod parse;
pub mod script;

use crate::transport::{Become, Connection, ExecOutput, ExecRequest, TransportError};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Sections of the facts, each a piece of the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Platform,
    Distribution,
    Lsb,
    PkgMgr,
    ServiceMgr,
    User,
    Env,
    DateTime,
    Dns,
    Selinux,
    Apparmor,
    Cmdline,
    Hardware,
    Network,
    Virtual,
}

/// Ansible's `min` subset: the cheap facts.
pub const MIN: &[Part] = &[
    Part::Platform,
    Part::Distribution,
    Part::Lsb,
    Part::PkgMgr,
    Part::ServiceMgr,
    Part::User,
    Part::Env,
    Part::DateTime,
    Part::Dns,
    Part::Selinux,
    Part::Apparmor,
    Part::Cmdline,
];

/// Names `gather_subset` takes: Ansible's subsets and collector names.
const NAMES: &[(&str, &[Part])] = &[
    ("hardware", &[Part::Hardware]),
    ("devices", &[Part::Hardware]),
    ("dmi", &[Part::Hardware]),
    ("mounts", &[Part::Hardware]),
    ("network", &[Part::Network]),
    ("interfaces", &[Part::Network]),
    ("virtual", &[Part::Virtual]),
    ("platform", &[Part::Platform]),
    ("distribution", &[Part::Distribution]),
    ("lsb", &[Part::Lsb]),
    ("pkg_mgr", &[Part::PkgMgr]),
    ("service_mgr", &[Part::ServiceMgr]),
    ("user", &[Part::User]),
    ("env", &[Part::Env]),
    ("date_time", &[Part::DateTime]),
    ("dns", &[Part::Dns]),
    ("selinux", &[Part::Selinux]),
    ("apparmor", &[Part::Apparmor]),
    ("cmdline", &[Part::Cmdline]),
    // Accepted, nothing to gather: no Python, no local facts, no facter/ohai.
    ("caps", &[]),
    ("fips", &[]),
    ("local", &[]),
    ("python", &[]),
    ("ssh_pub_keys", &[]),
    ("system", &[]),
    ("facter", &[]),
    ("ohai", &[]),
];

fn all_parts() -> BTreeSet<Part> {
    let mut s: BTreeSet<Part> = MIN.iter().copied().collect();
    s.extend([Part::Hardware, Part::Network, Part::Virtual]);
    s
}

fn named(name: &str) -> Result<BTreeSet<Part>, String> {
    match name {
        "all" => Ok(all_parts()),
        "min" => Ok(MIN.iter().copied().collect()),
        _ => NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.iter().copied().collect())
            .ok_or_else(|| {
                let mut known = vec!["all", "min"];
                known.extend(NAMES.iter().map(|(n, _)| *n));
                format!(
                    "Bad subset '{name}' given to gather_subset. Allowed: {} (each may start with '!')",
                    known.join(", ")
                )
            }),
    }
}

/// The parts a `gather_subset` list asks for, by Ansible's rules: `all` is the default; a list of
/// only exclusions (`!hardware`) starts from `all`; names add to `min`; `!all` leaves `min`;
/// `!all,!min` leaves only the names given.
pub fn subset(items: &[String]) -> Result<BTreeSet<Part>, String> {
    let items: Vec<&str> = items
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Ok(all_parts());
    }
    let mut add = BTreeSet::new();
    let mut remove = BTreeSet::new();
    let mut only_excludes = true;
    let (mut no_all, mut no_min) = (false, false);
    for it in &items {
        match it.strip_prefix('!') {
            Some("all") => no_all = true,
            Some("min") => no_min = true,
            Some(n) => remove.extend(named(n)?),
            None => {
                only_excludes = false;
                add.extend(named(it)?);
            }
        }
    }
    let mut out: BTreeSet<Part> = if only_excludes && !no_all {
        all_parts()
    } else {
        BTreeSet::new()
    };
    if !no_min {
        out.extend(MIN.iter().copied());
    }
    out.extend(add);
    for p in remove {
        out.remove(&p);
    }
    Ok(out)
}

/// What to gather and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub parts: BTreeSet<Part>,
    /// Ansible's `gather_subset` as given (reported as `ansible_gather_subset`).
    pub subset: Vec<String>,
    pub timeout: Duration,
    /// Globs on fact names (`ansible_*`); empty keeps all.
    pub filter: Vec<String>,
}

/// Ansible's DEFAULT_GATHER_TIMEOUT.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Request {
    fn default() -> Self {
        Request {
            parts: all_parts(),
            subset: vec!["all".into()],
            timeout: DEFAULT_TIMEOUT,
            filter: vec![],
        }
    }
}

impl Request {
    /// From `gather_subset`, `gather_timeout` (seconds) and `filter` values as a play or a task
    /// gives them.
    pub fn new(
        subset_items: &[String],
        timeout: Option<&Value>,
        filter: Vec<String>,
    ) -> Result<Request, String> {
        let parts = subset(subset_items)?;
        let timeout = match timeout {
            None | Some(Value::Null) => DEFAULT_TIMEOUT,
            Some(v) => {
                let secs = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .filter(|s| *s > 0.0)
                    .ok_or_else(|| {
                        format!("gather_timeout must be a positive number of seconds, not {v}")
                    })?;
                Duration::from_secs_f64(secs)
            }
        };
        let subset = if subset_items.is_empty() {
            vec!["all".into()]
        } else {
            subset_items
                .iter()
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Ok(Request {
            parts,
            subset,
            timeout,
            filter,
        })
    }
}

/// Why gathering failed.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{host}: fact gathering gave no usable output (exit status {status:?}): {stderr}")]
    Output {
        host: String,
        status: Option<u32>,
        stderr: String,
    },
}

impl GatherError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, GatherError::Transport(e) if e.is_unreachable())
    }
}

/// All facts of a host, as the login user (the signature callers had before subsets).
pub async fn gather(conn: &Connection) -> Result<Map<String, Value>, TransportError> {
    gather_with(conn, None, &Request::default())
        .await
        .map_err(|e| match e {
            GatherError::Transport(t) => t,
            other => TransportError::Local {
                host: conn.host().to_string(),
                reason: other.to_string(),
            },
        })
}

/// Runs the fact script on a host (one round trip) and returns `ansible_*` facts.
pub async fn gather_with(
    conn: &Connection,
    become_: Option<&Become>,
    req: &Request,
) -> Result<Map<String, Value>, GatherError> {
    let out = conn
        .exec(&ExecRequest {
            command: script::build(&req.parts),
            stdin: None,
            become_: become_.cloned(),
            timeout: Some(req.timeout),
        })
        .await
        .map_err(timeout_hint)?;
    from_output(conn.host(), &out, req)
}

/// A timeout says which knob to turn.
pub fn timeout_hint(e: TransportError) -> GatherError {
    match e {
        TransportError::CommandTimeout { host, secs, .. } => {
            GatherError::Transport(TransportError::CommandTimeout {
                host,
                what: format!(
                    "fact gathering (gather_timeout={secs}s; raise gather_timeout, or look for a hung network mount under df)"
                ),
                secs,
            })
        }
        other => GatherError::Transport(other),
    }
}

/// Facts from the script's output (with `ansible_gather_subset`, `module_setup`, `filter`).
pub fn from_output(
    host: &str,
    out: &ExecOutput,
    req: &Request,
) -> Result<Map<String, Value>, GatherError> {
    let text = out.stdout_str();
    // Whatever a login script printed before the script's first line is not facts.
    let Some(start) = text.find("@@kv\n") else {
        return Err(GatherError::Output {
            host: host.to_string(),
            status: out.exit_status,
            stderr: out.stderr_str().trim().to_string(),
        });
    };
    let mut facts = parse::facts(&text[start..], &req.parts);
    facts.insert(
        "ansible_gather_subset".into(),
        serde_json::json!(req.subset),
    );
    facts.insert("module_setup".into(), true.into());
    Ok(apply_filter(facts, &req.filter))
}

/// Keeps the facts whose name matches one of the globs (all when there is none).
pub fn apply_filter(facts: Map<String, Value>, filter: &[String]) -> Map<String, Value> {
    let globs: Vec<&str> = filter
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if globs.is_empty() {
        return facts;
    }
    facts
        .into_iter()
        .filter(|(k, _)| globs.iter().any(|g| glob_match(g, k)))
        .collect()
}

/// fnmatch: `*`, `?` and `[...]` (with `!`/`^` negation and ranges).
pub fn glob_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    fn class(p: &[char], i: usize, c: char) -> Option<(bool, usize)> {
        // p[i] == '['; returns (matched, index after ']').
        let mut j = i + 1;
        let neg = matches!(p.get(j), Some('!') | Some('^'));
        if neg {
            j += 1;
        }
        let mut hit = false;
        let mut first = true;
        while j < p.len() && (first || p[j] != ']') {
            first = false;
            if j + 2 < p.len() && p[j + 1] == '-' && p[j + 2] != ']' {
                if p[j] <= c && c <= p[j + 2] {
                    hit = true;
                }
                j += 3;
            } else {
                if p[j] == c {
                    hit = true;
                }
                j += 1;
            }
        }
        if j >= p.len() {
            return None;
        }
        Some((hit != neg, j + 1))
    }
    fn go(p: &[char], t: &[char], pi: usize, ti: usize) -> bool {
        if pi == p.len() {
            return ti == t.len();
        }
        match p[pi] {
            '*' => (ti..=t.len()).any(|k| go(p, t, pi + 1, k)),
            '?' => ti < t.len() && go(p, t, pi + 1, ti + 1),
            '[' => match (t.get(ti), class(p, pi, *t.get(ti).unwrap_or(&'\0'))) {
                (Some(_), Some((true, next))) => go(p, t, next, ti + 1),
                (Some(_), Some((false, _))) | (None, _) => false,
                (Some(&c), None) => c == '[' && go(p, t, pi + 1, ti + 1),
            },
            c => ti < t.len() && t[ti] == c && go(p, t, pi + 1, ti + 1),
        }
    }
    go(&p, &t, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn subsets_follow_ansible_rules() {
        let all = subset(&[]).unwrap();
        assert!(all.contains(&Part::Hardware) && all.contains(&Part::Network));
        let min = subset(&s(&["min"])).unwrap();
        assert!(!min.contains(&Part::Hardware) && min.contains(&Part::DateTime));
        let no_hw = subset(&s(&["!hardware"])).unwrap();
        assert!(!no_hw.contains(&Part::Hardware) && no_hw.contains(&Part::Network));
        let net = subset(&s(&["network"])).unwrap();
        assert!(net.contains(&Part::Network) && !net.contains(&Part::Virtual));
        assert!(net.contains(&Part::User));
        let only = subset(&s(&["!all,!min,network"])).unwrap();
        assert_eq!(only, [Part::Network].into_iter().collect());
        assert_eq!(subset(&s(&["!all"])).unwrap(), min);
        let e = subset(&s(&["hardwre"])).unwrap_err();
        assert!(
            e.contains("Bad subset 'hardwre'") && e.contains("hardware"),
            "{e}"
        );
    }

    #[test]
    fn request_timeout() {
        let r = Request::new(&[], Some(&Value::from(3)), vec![]).unwrap();
        assert_eq!(r.timeout, Duration::from_secs(3));
        assert_eq!(r.subset, ["all"]);
        assert!(Request::new(&[], Some(&Value::from("x")), vec![]).is_err());
        assert!(Request::new(&[], Some(&Value::from(0)), vec![]).is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("ansible_eth*", "ansible_eth0"));
        assert!(!glob_match("ansible_eth*", "ansible_lo"));
        assert!(glob_match("ansible_*_mb", "ansible_memtotal_mb"));
        assert!(glob_match(
            "ansible_distribution?version",
            "ansible_distribution_version"
        ));
        assert!(glob_match("ansible_[dh]*", "ansible_hostname"));
        assert!(!glob_match("ansible_[!dh]*", "ansible_hostname"));
        let mut m = Map::new();
        m.insert("ansible_hostname".into(), "a".into());
        m.insert("ansible_memtotal_mb".into(), 1.into());
        let f = apply_filter(m.clone(), &s(&["ansible_host*"]));
        assert_eq!(f.len(), 1);
        assert_eq!(apply_filter(m, &[]).len(), 2);
    }

    /// The real script under `sh -c` on this machine, against what Rust reads of the same.
    #[tokio::test]
    async fn gathers_this_machine() {
        use crate::transport::local::LocalConnection;
        let c = Connection::Local(LocalConnection::new("t"));
        let f = gather(&c).await.unwrap();
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(
            f["ansible_nodename"],
            read("/proc/sys/kernel/hostname").trim()
        );
        assert_eq!(
            f["ansible_kernel"],
            read("/proc/sys/kernel/osrelease").trim()
        );
        let kb: u64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        assert_eq!(f["ansible_memtotal_mb"], kb / 1024);
        let euid: u64 = read("/proc/self/status")
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
            .unwrap();
        assert_eq!(f["ansible_user_uid"], euid);
        assert_eq!(
            f["ansible_env"]["PATH"],
            std::env::var("PATH").unwrap_or_default()
        );
        assert!(f["ansible_date_time"]["epoch"].as_str().is_some());
        assert!(f["ansible_processor_vcpus"].as_u64().unwrap_or(0) >= 1);
        assert!(f["ansible_interfaces"].as_array().is_some());
        assert_eq!(f["ansible_gather_subset"], serde_json::json!(["all"]));
        // A filter keeps only what matches.
        let req = Request::new(&[], None, vec!["ansible_kernel".into()]).unwrap();
        let f = gather_with(&c, None, &req).await.unwrap();
        assert_eq!(f.keys().collect::<Vec<_>>(), ["ansible_kernel"]);
    }

    #[test]
    fn script_has_only_asked_parts() {
        let min = script::build(&subset(&s(&["min"])).unwrap());
        assert!(!min.contains("df -P") && !min.contains("ip -o addr"));
        assert!(min.contains("export -p") && min.contains("date '+"));
        let all = script::build(&subset(&[]).unwrap());
        assert!(all.contains("df -P") && all.contains("ip -o addr"));
    }
}
