//! `apt` (`ansible.builtin.apt`): Debian packages through `apt-get`.
//!
//! Probe, one round trip: the installed versions of the named packages (`dpkg-query -W`), their
//! candidates (`apt-cache policy`, when the host has package lists), the age of the package cache,
//! the `.deb` file's name and version, and `apt-get -s` for `upgrade`/`autoremove`/`build-dep`.
//! The plan is the packages that would be installed, upgraded or removed, with versions when known.
//!
//! Check mode never updates the cache. On a host without package lists (a fresh one), a package
//! that is not installed is planned as "would install" with its version unknown until the cache
//! is updated, and the result says so; a name that cannot be checked without lists is not failed.
//! A real run updates the cache first (when asked and stale), then plans from the fresh lists, and
//! runs `DEBIAN_FRONTEND=noninteractive apt-get -y -q ...`, waiting `lock_timeout` seconds for the
//! dpkg lock (`-o DPkg::Lock::Timeout=N`) and naming the lock's holder when it gives up.
//! The module never runs sudo itself: use `become: true`.

use super::core::{boolish, numish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::pkgutil::{self, Spec};
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(
        default,
        alias = "pkg",
        alias = "package",
        deserialize_with = "pkgutil::names"
    )]
    pub name: Vec<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub state: Option<String>,
    #[serde(default, alias = "update-cache", with = "boolish::option")]
    pub update_cache: Option<bool>,
    #[serde(default, deserialize_with = "numish::option")]
    pub cache_valid_time: Option<f64>,
    #[serde(default, alias = "install-recommends", with = "boolish::option")]
    pub install_recommends: Option<bool>,
    pub deb: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub autoremove: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub purge: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub force: Option<bool>,
    #[serde(
        default,
        alias = "allow-downgrade",
        alias = "allow_downgrades",
        alias = "allow-downgrades",
        with = "boolish::option"
    )]
    pub allow_downgrade: Option<bool>,
    #[serde(default, alias = "allow-unauthenticated", with = "boolish::option")]
    pub allow_unauthenticated: Option<bool>,
    /// Lets apt change (upgrade, downgrade, remove) packages that are held.
    #[serde(default, with = "boolish::option")]
    pub allow_change_held_packages: Option<bool>,
    #[serde(default, alias = "default-release")]
    pub default_release: Option<String>,
    #[serde(default)]
    pub dpkg_options: Option<String>,
    #[serde(default, deserialize_with = "numish::option")]
    pub lock_timeout: Option<f64>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub upgrade: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub only_upgrade: Option<bool>,
    /// Accepted for compatibility; homelab always uses apt-get.
    #[serde(default, with = "boolish::option")]
    pub force_apt_get: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
    Latest,
    Fixed,
    BuildDep,
}

impl State {
    pub fn parse(s: Option<&str>) -> Result<State, String> {
        Ok(match s.unwrap_or("present") {
            "present" | "installed" => State::Present,
            "absent" | "removed" => State::Absent,
            "latest" => State::Latest,
            "fixed" => State::Fixed,
            "build-dep" => State::BuildDep,
            other => {
                return Err(format!(
                "value of state must be one of: absent, build-dep, fixed, latest, present; got: {other}"
            ))
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    Safe,
    Dist,
}

fn parse_upgrade(s: Option<&str>) -> Result<Option<Upgrade>, String> {
    Ok(match s.map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("no") | Some("false") | Some("off") => None,
        Some("yes") | Some("true") | Some("on") | Some("safe") => Some(Upgrade::Safe),
        Some("full") | Some("dist") => Some(Upgrade::Dist),
        Some(other) => {
            return Err(format!(
                "value of upgrade must be one of: dist, full, no, safe, yes; got: {other}"
            ))
        }
    })
}

/// The arguments checked and typed.
#[derive(Debug, Clone)]
pub struct Req {
    pub specs: Vec<Spec>,
    pub state: State,
    pub update_cache: bool,
    pub cache_valid_time: Option<u64>,
    pub upgrade: Option<Upgrade>,
    pub autoremove: bool,
    pub purge: bool,
    pub deb: Option<String>,
    pub only_upgrade: bool,
    pub lock_timeout: u64,
    pub default_release: Option<String>,
    /// `allow_downgrade` or `force`.
    pub allow_downgrade: bool,
}

impl Req {
    pub fn from_args(a: &Args) -> Result<Req, String> {
        let state = State::parse(a.state.as_deref())?;
        let mut specs = vec![];
        for n in &a.name {
            specs.push(Spec::parse(n)?);
        }
        let upgrade = parse_upgrade(a.upgrade.as_deref())?;
        if specs.is_empty()
            && a.deb.is_none()
            && upgrade.is_none()
            && !a.update_cache.unwrap_or(false)
            && !a.autoremove.unwrap_or(false)
        {
            return Err(
                "one of name, deb, upgrade, update_cache or autoremove is required".to_string(),
            );
        }
        if let Some(t) = a.cache_valid_time {
            if t < 0.0 {
                return Err(format!("cache_valid_time must be >= 0, got {t}"));
            }
        }
        if let Some(t) = a.lock_timeout {
            if t < 0.0 {
                return Err(format!("lock_timeout must be >= 0, got {t}"));
            }
        }
        if let Some(d) = &a.deb {
            if d.contains("://") {
                return Err(format!(
                    "deb={d}: only a .deb file already on the host is supported (no downloads); \
                     copy it there first"
                ));
            }
        }
        if let Some(r) = &a.default_release {
            if r.is_empty()
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b))
            {
                return Err(format!("default_release '{r}' is not a release name"));
            }
        }
        Ok(Req {
            specs,
            state,
            // Ansible: cache_valid_time implies update_cache.
            update_cache: a.update_cache.unwrap_or(a.cache_valid_time.is_some()),
            cache_valid_time: a.cache_valid_time.map(|t| t as u64),
            upgrade,
            autoremove: a.autoremove.unwrap_or(false),
            purge: a.purge.unwrap_or(false),
            deb: a.deb.clone(),
            only_upgrade: a.only_upgrade.unwrap_or(false),
            lock_timeout: a.lock_timeout.map(|t| t as u64).unwrap_or(60),
            default_release: a.default_release.clone(),
            allow_downgrade: a.allow_downgrade.unwrap_or(false) || a.force.unwrap_or(false),
        })
    }
}

/// A package as dpkg knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub arch: String,
    /// `ii`, `rc`, `un`, ... (desired + current state).
    pub status: String,
    pub version: String,
}

impl Installed {
    pub fn is_installed(&self) -> bool {
        matches!(self.status.as_bytes().get(1), Some(b'i' | b'W' | b't'))
    }
    pub fn has_config_files(&self) -> bool {
        self.status.as_bytes().get(1) == Some(&b'c')
    }
    /// Unpacked or half-configured: dpkg has files of it but it is not working.
    pub fn is_half(&self) -> bool {
        matches!(self.status.as_bytes().get(1), Some(b'U' | b'F' | b'H'))
    }
}

/// What `apt-cache policy` says of a package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub candidate: Option<String>,
    pub versions: Vec<String>,
}

/// One change `apt-get -s` would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOp {
    pub remove: bool,
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Everything the probe read.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub no_apt: bool,
    pub lists: bool,
    pub now: i64,
    pub stamp: i64,
    /// Keyed by package name (arch-qualified entries keyed `name:arch` too).
    pub installed: BTreeMap<String, Vec<Installed>>,
    pub policy: BTreeMap<String, Policy>,
    pub sim: Vec<SimOp>,
    pub sim_err: String,
    /// `.deb` file: (package, version), or the error.
    pub deb: Option<Result<(String, String), String>>,
}

impl Probe {
    pub fn cache_age(&self) -> Option<i64> {
        (self.stamp > 0).then(|| (self.now - self.stamp).max(0))
    }
    fn installed_of(&self, s: &Spec) -> Option<&Installed> {
        let list = self.installed.get(s.bare())?;
        match s.name.split_once(':') {
            Some((_, arch)) => list.iter().find(|i| i.arch == arch || i.arch == "all"),
            None => list
                .iter()
                .find(|i| i.is_installed())
                .or_else(|| list.iter().find(|i| i.has_config_files() || i.is_half()))
                .or(list.first()),
        }
    }
    fn policy_of(&self, s: &Spec) -> Option<&Policy> {
        self.policy
            .get(&s.name)
            .or_else(|| self.policy.get(s.bare()))
    }
}

/// The probe command. `sim`: the `apt-get -s` subcommand to simulate, if any.
pub fn probe_script(req: &Req, sim: Option<&str>) -> String {
    let names: Vec<String> = {
        let mut v: Vec<String> = req.specs.iter().map(|s| shell_quote(&s.name)).collect();
        v.dedup();
        v
    };
    let rel = req
        .default_release
        .as_deref()
        .map(|r| format!(" -o APT::Default-Release={}", shell_quote(r)))
        .unwrap_or_default();
    let mut s = String::from(
        "export LC_ALL=C; command -v apt-get >/dev/null 2>&1 || echo HLNOAPT; \
         set -- /var/lib/apt/lists/*_Packages*; if [ -e \"$1\" ]; then l=1; else l=0; fi; \
         echo \"HLLISTS $l\"; st=0; \
         for f in /var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists; do \
         if [ -e \"$f\" ]; then m=$(stat -c %Y \"$f\"); [ \"$m\" -gt \"$st\" ] && st=$m; fi; done; \
         echo \"HLSTAMP $(date +%s) $st\"; ",
    );
    if !names.is_empty() {
        s.push_str(&format!(
            "echo HLDPKG; dpkg-query -W -f='${{Package}}\\t${{Architecture}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' {} 2>/dev/null; \
             echo HLPOLICY; if [ $l = 1 ]; then apt-cache{rel} policy {} 2>/dev/null; fi; ",
            names.join(" "),
            names.join(" ")
        ));
    }
    if let Some(d) = &req.deb {
        let q = shell_quote(d);
        s.push_str(&format!(
            "echo HLDEB; if [ -f {q} ]; then dpkg-deb -f {q} Package Version 2>&1 | tr '\\n' ' '; echo; \
             n=$(dpkg-deb -f {q} Package 2>/dev/null); [ -n \"$n\" ] && \
             dpkg-query -W -f='HLDI\\t${{Package}}\\t${{Architecture}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' \"$n\" 2>/dev/null; \
             else echo 'HLDEBMISSING'; fi; "
        ));
    }
    if let Some(sub) = sim {
        s.push_str(&format!(
            "echo HLSIM; if [ $l = 1 ]; then apt-get -s -q{rel} {sub} 2>&1; echo \"HLSIMRC $?\"; fi; "
        ));
    }
    s.push_str("echo HLEND");
    s
}

/// The `apt-get -s` subcommand the request needs simulated (upgrade, autoremove, build-dep).
pub fn sim_command(req: &Req) -> Option<String> {
    if req.state == State::BuildDep && !req.specs.is_empty() {
        let names: Vec<String> = req.specs.iter().map(|s| shell_quote(&s.name)).collect();
        return Some(format!("build-dep {}", names.join(" ")));
    }
    match req.upgrade {
        Some(Upgrade::Safe) => return Some("upgrade --with-new-pkgs".into()),
        Some(Upgrade::Dist) => return Some("dist-upgrade".into()),
        None => {}
    }
    if req.autoremove && req.specs.is_empty() && req.deb.is_none() {
        return Some(if req.purge {
            "autoremove --purge".into()
        } else {
            "autoremove".into()
        });
    }
    None
}

pub fn parse_probe(out: &str) -> Result<Probe, String> {
    if !out.contains("HLEND") {
        return Err(format!("the package probe did not finish: {}", out.trim()));
    }
    let mut p = Probe::default();
    #[derive(PartialEq)]
    enum Sec {
        Head,
        Dpkg,
        Policy,
        Deb,
        Sim,
    }
    let mut sec = Sec::Head;
    let mut cur_pol: Option<String> = None;
    let mut in_table = false;
    let mut sim_text = String::new();
    for line in out.lines() {
        match line {
            "HLDPKG" => {
                sec = Sec::Dpkg;
                continue;
            }
            "HLPOLICY" => {
                sec = Sec::Policy;
                continue;
            }
            "HLDEB" => {
                sec = Sec::Deb;
                continue;
            }
            "HLSIM" => {
                sec = Sec::Sim;
                continue;
            }
            "HLEND" => break,
            _ => {}
        }
        match sec {
            Sec::Head => {
                if line == "HLNOAPT" {
                    p.no_apt = true;
                } else if let Some(v) = line.strip_prefix("HLLISTS ") {
                    p.lists = v.trim() == "1";
                } else if let Some(v) = line.strip_prefix("HLSTAMP ") {
                    let mut it = v.split_whitespace().map(|x| x.parse::<i64>().unwrap_or(0));
                    p.now = it.next().unwrap_or(0);
                    p.stamp = it.next().unwrap_or(0);
                }
            }
            Sec::Dpkg => {
                let f: Vec<&str> = line.split('\t').collect();
                if f.len() == 4 {
                    p.installed
                        .entry(f[0].to_string())
                        .or_default()
                        .push(Installed {
                            arch: f[1].to_string(),
                            status: f[2].trim().to_string(),
                            version: f[3].to_string(),
                        });
                }
            }
            Sec::Policy => {
                if !line.starts_with(' ') && line.ends_with(':') {
                    let name = line.trim_end_matches(':').to_string();
                    p.policy.insert(name.clone(), Policy::default());
                    cur_pol = Some(name);
                    in_table = false;
                    continue;
                }
                let Some(pol) = cur_pol.as_ref().and_then(|n| p.policy.get_mut(n)) else {
                    continue;
                };
                let t = line.trim();
                if let Some(c) = t.strip_prefix("Candidate:") {
                    let c = c.trim();
                    pol.candidate = (c != "(none)" && !c.is_empty()).then(|| c.to_string());
                } else if t.starts_with("Version table:") {
                    in_table = true;
                } else if in_table {
                    // Version lines are indented 5 (or " *** "), their sources 8.
                    let indent = line.len() - line.trim_start().len();
                    if let Some(rest) = t.strip_prefix("***") {
                        if let Some(v) = rest.split_whitespace().next() {
                            pol.versions.push(v.to_string());
                        }
                    } else if indent < 8 {
                        if let Some(v) = t.split_whitespace().next() {
                            pol.versions.push(v.to_string());
                        }
                    }
                }
            }
            Sec::Deb => {
                let t = line.trim();
                if let Some(rest) = line.strip_prefix("HLDI\t") {
                    let f: Vec<&str> = rest.split('\t').collect();
                    if f.len() == 4 {
                        p.installed
                            .entry(f[0].to_string())
                            .or_default()
                            .push(Installed {
                                arch: f[1].to_string(),
                                status: f[2].trim().to_string(),
                                version: f[3].to_string(),
                            });
                    }
                } else if t == "HLDEBMISSING" {
                    p.deb = Some(Err("missing".into()));
                } else if !t.is_empty() && p.deb.is_none() {
                    let mut name = None;
                    let mut ver = None;
                    // "Package: tree Version: 2.1.0-1 "
                    let words: Vec<&str> = t.split_whitespace().collect();
                    for w in words.windows(2) {
                        match w[0] {
                            "Package:" => name = Some(w[1].to_string()),
                            "Version:" => ver = Some(w[1].to_string()),
                            _ => {}
                        }
                    }
                    p.deb = Some(match (name, ver) {
                        (Some(n), Some(v)) => Ok((n, v)),
                        _ => Err(t.to_string()),
                    });
                }
            }
            Sec::Sim => {
                if let Some(rc) = line.strip_prefix("HLSIMRC ") {
                    if rc.trim() != "0" {
                        p.sim_err = sim_text
                            .lines()
                            .filter(|l| l.starts_with("E:"))
                            .collect::<Vec<_>>()
                            .join("\n");
                        if p.sim_err.is_empty() {
                            p.sim_err = sim_text.trim().to_string();
                        }
                    }
                    continue;
                }
                sim_text.push_str(line);
                sim_text.push('\n');
                if let Some(op) = parse_sim_line(line) {
                    p.sim.push(op);
                }
            }
        }
    }
    Ok(p)
}

/// `Inst tree (2.1.0-1 Debian:12.8/stable [amd64])`, `Inst libc6 [2.36-9] (2.36-9+deb12u4 ...)`,
/// `Remv foo [1.0]`.
pub fn parse_sim_line(line: &str) -> Option<SimOp> {
    let (remove, rest) = if let Some(r) = line.strip_prefix("Inst ") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("Remv ") {
        (true, r)
    } else {
        return None;
    };
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_string();
    let from = rest
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(v, _)| v.to_string())
        .filter(|_| {
            // "[amd64]" inside the parentheses is the architecture, not a version.
            let i = rest.find('[').unwrap_or(usize::MAX);
            let j = rest.find('(').unwrap_or(usize::MAX);
            i < j
        });
    let to = rest
        .split_once('(')
        .and_then(|(_, r)| r.split_whitespace().next())
        .map(|v| v.trim_end_matches(')').to_string());
    Some(SimOp {
        remove,
        name,
        from,
        to: if remove { None } else { to },
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Install,
    Upgrade,
    Downgrade,
    Reinstall,
    Remove,
    Purge,
}

impl Action {
    pub fn word(self, check: bool) -> &'static str {
        match (self, check) {
            (Action::Install, true) => "would install",
            (Action::Upgrade, true) => "would upgrade",
            (Action::Downgrade, true) => "would downgrade",
            (Action::Reinstall, true) => "would configure",
            (Action::Remove, true) => "would remove",
            (Action::Purge, true) => "would purge",
            (Action::Install, false) => "installed",
            (Action::Upgrade, false) => "upgraded",
            (Action::Downgrade, false) => "downgraded",
            (Action::Reinstall, false) => "configured",
            (Action::Remove, false) => "removed",
            (Action::Purge, false) => "purged",
        }
    }
}

/// One package's planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgPlan {
    pub name: String,
    pub action: Action,
    pub from: Option<String>,
    /// The version it would have; `None` when unknown (no lists yet) or removed.
    pub to: Option<String>,
    /// What goes on apt-get's command line.
    pub arg: String,
}

/// What to do, and what the result says.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub pkgs: Vec<PkgPlan>,
    /// Changes from `apt-get -s` (upgrade, autoremove, build-dep).
    pub sim: Vec<SimOp>,
    pub sim_cmd: Option<String>,
    /// The .deb file to install, when it is not installed at its version.
    pub deb: Option<PkgPlan>,
    pub notes: Vec<String>,
    pub fail: Option<String>,
    pub cache_updated: bool,
    pub would_update: bool,
    pub cache_update_time: Option<i64>,
    pub update_out: Option<(String, String)>,
    pub lists: bool,
}

impl Plan {
    pub fn changes(&self) -> bool {
        !self.pkgs.is_empty() || !self.sim.is_empty() || self.deb.is_some()
    }
}

/// Whether the cache needs updating (update_cache asked and no lists or older than valid time).
pub fn needs_update(req: &Req, p: &Probe) -> bool {
    if !req.update_cache {
        return false;
    }
    if !p.lists {
        return true;
    }
    match (req.cache_valid_time, p.cache_age()) {
        (Some(valid), Some(age)) => age as u64 > valid,
        _ => true,
    }
}

/// The plan from the probe. `pending_update`: the cache would be updated first (check mode), so
/// names unknown to the current lists are noted, not failed.
pub fn compute(req: &Req, p: &Probe, pending_update: bool) -> Plan {
    let mut plan = Plan {
        lists: p.lists,
        ..Default::default()
    };
    if p.no_apt {
        plan.fail =
            Some("apt-get is not installed on this host (not a Debian-like system?)".into());
        return plan;
    }
    let mut unknown_names = vec![];
    for s in &req.specs {
        let inst = p.installed_of(s).filter(|i| i.is_installed());
        let any = p.installed_of(s);
        let pol = p.policy_of(s);
        let known = pol.is_some();
        if req.state == State::BuildDep {
            continue;
        }
        match req.state {
            State::Absent => {
                let purge_cfg =
                    req.purge && any.is_some_and(|i| i.has_config_files() || i.is_half());
                if inst.is_some() || purge_cfg || any.is_some_and(|i| i.is_half()) {
                    if let Some(v) = &s.version {
                        if inst.is_some_and(|i| &i.version != v) {
                            continue;
                        }
                    }
                    plan.pkgs.push(PkgPlan {
                        name: s.name.clone(),
                        action: if req.purge {
                            Action::Purge
                        } else {
                            Action::Remove
                        },
                        from: any.map(|i| i.version.clone()).filter(|v| !v.is_empty()),
                        to: None,
                        arg: s.name.clone(),
                    });
                }
            }
            State::Present | State::Latest | State::Fixed | State::BuildDep => {
                // A name the lists do not know: fail in check mode only when the lists are there
                // and will not be refreshed first; a real run lets apt-get say it.
                if p.lists && !known && inst.is_none() {
                    unknown_names.push(s.name.clone());
                }
                if let (Some(v), Some(pol)) = (&s.version, pol) {
                    if !pol.versions.contains(v) && inst.is_none_or(|i| &i.version != v) {
                        if pending_update {
                            plan.notes.push(format!(
                                "version {v} of {} is not in the current lists; the cache update may provide it",
                                s.name
                            ));
                        } else if plan.fail.is_none() && p.lists {
                            plan.fail = Some(format!(
                                "no version {v} of {} is available (apt-cache policy lists: {})",
                                s.name,
                                if pol.versions.is_empty() {
                                    "none".to_string()
                                } else {
                                    pol.versions.join(", ")
                                }
                            ));
                        }
                    }
                }
                match (inst, &s.version) {
                    (None, _) if req.only_upgrade => {
                        plan.notes.push(format!(
                            "{} is not installed; only_upgrade leaves it so",
                            s.name
                        ));
                    }
                    (None, v) => {
                        let to = v.clone().or_else(|| pol.and_then(|p| p.candidate.clone()));
                        let half = any.is_some_and(|i| i.is_half());
                        plan.pkgs.push(PkgPlan {
                            name: s.name.clone(),
                            action: if half {
                                Action::Reinstall
                            } else {
                                Action::Install
                            },
                            from: None,
                            to,
                            arg: spec_arg(s),
                        });
                    }
                    (Some(i), Some(v)) if &i.version != v => {
                        let action = if version_lt(v, &i.version) {
                            Action::Downgrade
                        } else {
                            Action::Upgrade
                        };
                        plan.pkgs.push(PkgPlan {
                            name: s.name.clone(),
                            action,
                            from: Some(i.version.clone()),
                            to: Some(v.clone()),
                            arg: spec_arg(s),
                        });
                    }
                    (Some(i), None) if req.state == State::Latest => {
                        match pol.and_then(|p| p.candidate.clone()) {
                            Some(c) if c != i.version => plan.pkgs.push(PkgPlan {
                                name: s.name.clone(),
                                action: Action::Upgrade,
                                from: Some(i.version.clone()),
                                to: Some(c),
                                arg: s.name.clone(),
                            }),
                            Some(_) => {}
                            None if !p.lists => plan.notes.push(format!(
                                "{}: installed {}; whether a newer version exists is unknown until the cache is updated",
                                s.name, i.version
                            )),
                            None => {}
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if !unknown_names.is_empty() {
        let names = unknown_names.join(", ");
        if pending_update {
            plan.notes.push(format!(
                "{names}: not in the current package lists; the cache update may provide {}",
                if unknown_names.len() > 1 {
                    "them"
                } else {
                    "it"
                }
            ));
        } else if plan.fail.is_none() {
            // A real run lets apt-get fail with its own message; check mode must say it now.
            plan.notes
                .push(format!("No package matching '{names}' is available"));
        }
    }
    if !p.lists && !req.specs.is_empty() && req.state != State::Absent {
        plan.notes.push(if pending_update {
            "the host has no package lists yet: the cache would be updated first, so versions and \
             whether the names exist are known only then"
                .into()
        } else {
            "the host has no package lists (run with update_cache: true): versions and whether \
             the names exist cannot be checked"
                .into()
        });
    }
    if let Some(d) = &p.deb {
        let path = req.deb.clone().unwrap_or_default();
        match d {
            Err(e) if e == "missing" => {
                plan.fail = Some(format!("deb file {path} does not exist on the host"))
            }
            Err(e) => plan.fail = Some(format!("{path} is not a readable .deb file: {e}")),
            Ok((name, ver)) => {
                let inst = p
                    .installed
                    .get(name)
                    .and_then(|l| l.iter().find(|i| i.is_installed()));
                if inst.is_none_or(|i| &i.version != ver) {
                    plan.deb = Some(PkgPlan {
                        name: name.clone(),
                        action: match inst {
                            None => Action::Install,
                            Some(i) if version_lt(ver, &i.version) => Action::Downgrade,
                            Some(_) => Action::Upgrade,
                        },
                        from: inst.map(|i| i.version.clone()),
                        to: Some(ver.clone()),
                        arg: path,
                    });
                }
            }
        }
    }
    if !req.allow_downgrade && plan.fail.is_none() {
        if let Some(d) = plan
            .deb
            .iter()
            .chain(plan.pkgs.iter())
            .find(|p| p.action == Action::Downgrade)
        {
            plan.fail = Some(format!(
                "{} {} -> {} is a downgrade; set allow_downgrade: true to allow it",
                d.name,
                d.from.as_deref().unwrap_or("?"),
                d.to.as_deref().unwrap_or("?")
            ));
        }
    }
    plan.sim_cmd = sim_command(req);
    if plan.sim_cmd.is_some() {
        if !p.lists {
            plan.notes.push(
                "the host has no package lists: what upgrade/autoremove/build-dep would change is \
                 known only after the cache is updated"
                    .into(),
            );
        } else if !p.sim_err.is_empty() {
            if pending_update {
                plan.notes.push(format!("apt-get -s: {}", p.sim_err));
            } else if plan.fail.is_none() {
                plan.fail = Some(p.sim_err.clone());
            }
        } else {
            plan.sim = p.sim.clone();
        }
    }
    plan
}

/// `name=version` or `name`.
fn spec_arg(s: &Spec) -> String {
    match &s.version {
        Some(v) => format!("{}={v}", s.name),
        None => s.name.clone(),
    }
}

/// A rough Debian version order (epoch, then upstream/revision compared by digit and non-digit
/// runs, `~` lowest). Used only to word the plan (upgrade vs downgrade).
pub fn version_lt(a: &str, b: &str) -> bool {
    cmp_version(a, b) == std::cmp::Ordering::Less
}

pub fn cmp_version(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) => (e.parse().unwrap_or(0), r),
            None => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u, r),
            None => (epoch, rest, ""),
        }
    }
    fn order(c: Option<char>) -> i32 {
        match c {
            None => 0,
            Some('~') => -1,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    }
    fn part(a: &str, b: &str) -> Ordering {
        let (mut a, mut b) = (a, b);
        while !a.is_empty() || !b.is_empty() {
            let na = a.find(|c: char| c.is_ascii_digit()).unwrap_or(a.len());
            let nb = b.find(|c: char| c.is_ascii_digit()).unwrap_or(b.len());
            let (sa, sb) = (&a[..na], &b[..nb]);
            let mut ia = sa.chars();
            let mut ib = sb.chars();
            loop {
                let (x, y) = (ia.next(), ib.next());
                if x.is_none() && y.is_none() {
                    break;
                }
                let o = order(x).cmp(&order(y));
                if o != Ordering::Equal {
                    return o;
                }
            }
            a = &a[na..];
            b = &b[nb..];
            let da = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
            let db = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
            let x: u128 = a[..da].parse().unwrap_or(0);
            let y: u128 = b[..db].parse().unwrap_or(0);
            if x != y {
                return x.cmp(&y);
            }
            a = &a[da..];
            b = &b[db..];
        }
        Ordering::Equal
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| part(ua, ub))
        .then_with(|| part(ra, rb))
}

/// The `apt-get` prefix every change runs with.
pub fn apt_get(a: &Args, req: &Req) -> String {
    let mut s = format!(
        "export DEBIAN_FRONTEND=noninteractive LC_ALL=C; apt-get -y -q -o DPkg::Lock::Timeout={}",
        req.lock_timeout
    );
    let opts = a
        .dpkg_options
        .clone()
        .unwrap_or_else(|| "force-confdef,force-confold".into());
    for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let o = o.trim_start_matches('-');
        s.push_str(&format!(
            " -o {}",
            shell_quote(&format!("Dpkg::Options::=--{o}"))
        ));
    }
    if let Some(r) = &req.default_release {
        s.push_str(&format!(" -t {}", shell_quote(r)));
    }
    match a.install_recommends {
        Some(true) => s.push_str(" --install-recommends"),
        Some(false) => s.push_str(" --no-install-recommends"),
        None => {}
    }
    if a.force.unwrap_or(false) {
        s.push_str(" --allow-unauthenticated --allow-downgrades --allow-remove-essential --allow-change-held-packages");
    } else {
        if a.allow_downgrade.unwrap_or(false) {
            s.push_str(" --allow-downgrades");
        }
        if a.allow_unauthenticated.unwrap_or(false) {
            s.push_str(" --allow-unauthenticated");
        }
        if a.allow_change_held_packages.unwrap_or(false) {
            s.push_str(" --allow-change-held-packages");
        }
    }
    s
}

/// The commands that carry the plan out, in order.
pub fn commands(a: &Args, req: &Req, plan: &Plan) -> Vec<String> {
    let base = apt_get(a, req);
    let mut cmds = vec![];
    let auto = if req.autoremove { " --auto-remove" } else { "" };
    if let Some(d) = &plan.deb {
        cmds.push(format!("{base} install {}", shell_quote(&d.arg)));
    }
    if !plan.pkgs.is_empty() {
        let args: Vec<String> = plan.pkgs.iter().map(|p| shell_quote(&p.arg)).collect();
        let cmd = match req.state {
            State::Absent => format!(
                "{base} remove{}{auto} {}",
                if req.purge { " --purge" } else { "" },
                args.join(" ")
            ),
            _ => format!(
                "{base} install{}{}{auto} {}",
                if req.state == State::Fixed {
                    " --fix-broken"
                } else {
                    ""
                },
                if req.only_upgrade {
                    " --only-upgrade"
                } else {
                    ""
                },
                args.join(" ")
            ),
        };
        cmds.push(cmd);
    }
    if let (Some(sim), false) = (&plan.sim_cmd, plan.sim.is_empty()) {
        cmds.push(format!("{base} {sim}"));
    }
    cmds
}

/// Names the process holding a dpkg/apt lock from /proc/locks, as apt words it.
pub const LOCK_HOLDER: &str = "for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock; do \
     [ -e \"$f\" ] || continue; i=$(stat -c %i \"$f\"); \
     for pid in $(awk -v i=\":$i\" 'substr($6, length($6) - length(i) + 1) == i && $5 > 0 {print $5}' /proc/locks); do \
     echo \"It is held by process $pid ($(cat /proc/$pid/comm 2>/dev/null))\"; exit 0; done; done";

/// When apt-get gave up on a lock: the lock, its holder if apt named it, as a sentence.
pub fn lock_message(stderr: &str, timeout: u64) -> Option<String> {
    // Not root: the lock cannot even be opened; that is no other process's fault.
    if stderr.contains("Permission denied") || stderr.contains("are you root?") {
        return None;
    }
    let line = stderr
        .lines()
        .find(|l| l.contains("Could not get lock") || l.contains("Unable to acquire the dpkg"))?;
    let lock = line
        .split_whitespace()
        .find(|w| w.starts_with('/'))
        .map(|w| w.trim_end_matches(['.', ',', ')']).trim_start_matches('('))
        .map(|w| format!(" {w}"))
        .unwrap_or_default();
    let holder = stderr
        .lines()
        .find_map(|l| {
            l.split_once("It is held by process ")
                .map(|(_, r)| r.trim().to_string())
        })
        .map(|h| {
            format!(
                "held by process {}",
                h.split("...").next().unwrap_or(&h).trim_end_matches('.')
            )
        })
        .unwrap_or_else(|| "held by another process".into());
    Some(format!(
        "the package manager lock{lock} is {holder}; gave up after waiting {timeout} s \
         (lock_timeout). Let the other apt/dpkg run finish, or raise lock_timeout"
    ))
}

fn fail_msg(host: &str, what: &str, rc: i64, stderr: &str, timeout: u64) -> String {
    if let Some(m) = lock_message(stderr, timeout) {
        return format!("{host}: {m}");
    }
    let e: Vec<&str> = stderr.lines().filter(|l| l.starts_with("E:")).collect();
    let detail = if e.is_empty() {
        stderr.trim().to_string()
    } else {
        e.join("\n")
    };
    let hint = if stderr.contains("Permission denied") || stderr.contains("are you root?") {
        " (apt-get needs root: set become: true on the task or play)"
    } else {
        ""
    };
    format!("{what} failed on {host} (rc {rc}): {detail}{hint}")
}

pub struct Apt;

/// The diff lines and a sentence for the plan.
fn summary(plan: &Plan, check: bool) -> (Vec<(String, String, String)>, Vec<String>) {
    let mut lines = vec![];
    let mut words = vec![];
    let all = plan.deb.iter().chain(plan.pkgs.iter());
    for p in all {
        let before = p.from.clone().unwrap_or_else(|| "not installed".into());
        let after = match (p.action, &p.to) {
            (Action::Remove, _) => "removed".to_string(),
            (Action::Purge, _) => "purged".to_string(),
            (_, Some(v)) => v.clone(),
            (_, None) if plan.lists && !plan.would_update => {
                "(no candidate version: apt decides)".to_string()
            }
            (_, None) => "(version unknown until the cache is updated)".to_string(),
        };
        words.push(format!(
            "{} {}{}",
            p.action.word(check),
            p.name,
            p.to.as_ref().map(|v| format!(" {v}")).unwrap_or_default()
        ));
        lines.push((p.name.clone(), before, after));
    }
    for s in &plan.sim {
        lines.push((
            s.name.clone(),
            s.from.clone().unwrap_or_else(|| "not installed".into()),
            if s.remove {
                "removed".into()
            } else {
                s.to.clone().unwrap_or_default()
            },
        ));
        words.push(format!(
            "{} {}",
            if s.remove {
                Action::Remove.word(check)
            } else if s.from.is_some() {
                Action::Upgrade.word(check)
            } else {
                Action::Install.word(check)
            },
            s.name
        ));
    }
    (lines, words)
}

fn packages_value(lines: &[(String, String, String)]) -> Value {
    Value::Array(
        lines
            .iter()
            .map(|(n, b, a)| json!({"name": n, "before": b, "after": a}))
            .collect(),
    )
}

/// Runs `apt-get update` (with the lock timeout); Ok((stdout, stderr)) or the failure message.
async fn update_cache(
    ctx: &TaskCtx<'_>,
    _a: &Args,
    req: &Req,
) -> Result<(String, String), ModuleError> {
    run_update(ctx, req.lock_timeout).await
}

/// `apt-get update`, waiting `lock_timeout` seconds for the locks; Ok((stdout, stderr)) or the
/// failure, worded as for installs.
pub async fn run_update(
    ctx: &TaskCtx<'_>,
    lock_timeout: u64,
) -> Result<(String, String), ModuleError> {
    let req = Req {
        specs: vec![],
        state: State::Present,
        update_cache: true,
        cache_valid_time: None,
        upgrade: None,
        autoremove: false,
        purge: false,
        deb: None,
        only_upgrade: false,
        lock_timeout,
        default_release: None,
        allow_downgrade: false,
    };
    let cmd = format!(
        "export DEBIAN_FRONTEND=noninteractive LC_ALL=C; apt-get -q -o DPkg::Lock::Timeout={t} update \
         && touch /var/lib/apt/lists",
        t = req.lock_timeout
    );
    let out = ctx.exec(cmd).await?;
    let (so, se) = (out.stdout_str(), out.stderr_str());
    if !out.success() {
        return Err(ModuleError::Failed(fail_msg(
            ctx.host,
            "apt-get update",
            out.rc(),
            &format!("{so}{se}"),
            req.lock_timeout,
        )));
    }
    // apt-get update exits 0 on some fetch failures; warnings are kept in stderr.
    Ok((so, se))
}

async fn probe(ctx: &TaskCtx<'_>, req: &Req) -> Result<Probe, ModuleError> {
    let sim = sim_command(req);
    let out = ctx.exec(probe_script(req, sim.as_deref())).await?;
    parse_probe(&out.stdout_str())
        .map_err(|e| ModuleError::Failed(format!("{}: {e} {}", ctx.host, out.stderr_str().trim())))
}

impl Module for Apt {
    const NAME: &'static str = "apt";
    type Args = Args;
    type Plan = Plan;

    /// Check mode: packages this plan would install make files no probe can list before they
    /// exist (/etc/haproxy, units): later tasks plan into them instead of failing.
    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, plan: &Plan) {
        if let Some(planned) = ctx.planned {
            let names: Vec<&str> = plan.pkgs.iter().map(|p| p.name.as_str()).collect();
            if !names.is_empty() || plan.deb.is_some() || !plan.sim.is_empty() {
                planned.set_opaque(&format!("apt: {}", names.join(", ")));
            }
        }
    }

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let req = Req::from_args(a).map_err(ModuleError::Failed)?;
        let mut p = probe(ctx, &req).await?;
        if p.no_apt {
            return Ok(compute(&req, &p, false));
        }
        let update = needs_update(&req, &p);
        if update && ctx.check {
            let mut plan = compute(&req, &p, true);
            plan.would_update = true;
            return Ok(plan);
        }
        let mut out = None;
        if update {
            out = Some(update_cache(ctx, a, &req).await?);
            p = probe(ctx, &req).await?;
        }
        let mut plan = compute(&req, &p, false);
        if update {
            plan.cache_updated = true;
            plan.cache_update_time = Some(p.stamp);
            plan.update_out = out;
        } else if p.stamp > 0 {
            plan.cache_update_time = Some(p.stamp);
        }
        Ok(plan)
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, plan: &Plan) -> TaskResult {
        let _ = a;
        if let Some(f) = &plan.fail {
            return TaskResult::failed(format!("{}: {f}", ctx.host));
        }
        // Check mode on a host with lists: a name apt does not know fails now, as the run would.
        if ctx.check && !plan.would_update {
            if let Some(n) = plan
                .notes
                .iter()
                .find(|n| n.starts_with("No package matching"))
            {
                return TaskResult::failed(format!("{}: {n}", ctx.host));
            }
        }
        let (lines, words) = summary(plan, ctx.check);
        let pkgs_requested = !a.name.is_empty() || a.deb.is_some() || plan.sim_cmd.is_some();
        let changed =
            plan.changes() || (!pkgs_requested && (plan.cache_updated || plan.would_update));
        let mut msg = words.join(", ");
        if plan.would_update {
            msg = if msg.is_empty() {
                "would update the package cache".into()
            } else {
                format!("would update the package cache, then {msg}")
            };
        } else if plan.cache_updated && msg.is_empty() {
            msg = "package cache updated".into();
        }
        if msg.is_empty() {
            msg = "nothing to do".into();
        }
        let notes: Vec<&String> = plan
            .notes
            .iter()
            .filter(|n| !n.starts_with("No package matching"))
            .collect();
        if !notes.is_empty() {
            msg.push_str(" (");
            msg.push_str(
                &notes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            msg.push(')');
        }
        let mut r = TaskResult::changed(changed)
            .msg(msg)
            .with("cache_updated", plan.cache_updated)
            .with(
                "cache_update_time",
                plan.cache_update_time
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            )
            .with("packages", packages_value(&lines));
        if let Some((so, se)) = &plan.update_out {
            r = r.with("stdout", so.clone()).with("stderr", se.clone());
        }
        if ctx.diff && !lines.is_empty() {
            r.diff.push(pkgutil::package_diff(
                &format!("packages ({})", ctx.host),
                &lines,
            ));
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        plan: Plan,
        mut done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let req = Req::from_args(a).map_err(ModuleError::Failed)?;
        let mut stdout = String::new();
        let mut stderr = String::new();
        for cmd in commands(a, &req, &plan) {
            let out = ctx.exec(cmd.clone()).await?;
            stdout.push_str(&out.stdout_str());
            stderr.push_str(&out.stderr_str());
            if !out.success() {
                let verb = cmd
                    .split(" apt-get ")
                    .nth(1)
                    .and_then(|r| {
                        r.split_whitespace().find(|w| {
                            !w.starts_with('-') && !w.contains("::") && *w != "DPkg::Lock::Timeout"
                        })
                    })
                    .unwrap_or("");
                // apt prints the lock's holder while waiting (stdout), the final error on stderr;
                // when it did not name the holder, /proc/locks may.
                let mut text = format!("{}{}", out.stdout_str(), out.stderr_str());
                if lock_message(&text, 0).is_some() && !text.contains("It is held by process") {
                    if let Ok(h) = ctx.exec(LOCK_HOLDER).await {
                        text.push_str(&h.stdout_str());
                    }
                }
                let mut r = TaskResult::failed(fail_msg(
                    ctx.host,
                    format!("apt-get {verb}").trim(),
                    out.rc(),
                    &text,
                    req.lock_timeout,
                ))
                .with("rc", out.rc())
                .with("stdout", stdout)
                .with("stderr", stderr)
                .with("cache_updated", plan.cache_updated);
                r.diff = done.diff;
                return Ok(r);
            }
        }
        // Report what the host now has.
        let after = probe(ctx, &req).await.ok();
        if let Some(p) = after {
            let mut lines = vec![];
            let all: Vec<&PkgPlan> = plan.deb.iter().chain(plan.pkgs.iter()).collect();
            for pp in all {
                let spec = Spec::parse(&pp.name).unwrap_or(Spec {
                    name: pp.name.clone(),
                    version: None,
                });
                let now = p.installed_of(&spec);
                let after = match now {
                    Some(i) if i.is_installed() => i.version.clone(),
                    Some(i) if i.has_config_files() => "removed (config files kept)".into(),
                    _ if pp.action == Action::Purge => "purged".into(),
                    _ if pp.action == Action::Remove => "removed".into(),
                    _ => "not installed".into(),
                };
                lines.push((
                    pp.name.clone(),
                    pp.from.clone().unwrap_or_else(|| "not installed".into()),
                    after,
                ));
            }
            for s in &plan.sim {
                lines.push((
                    s.name.clone(),
                    s.from.clone().unwrap_or_else(|| "not installed".into()),
                    if s.remove {
                        "removed".into()
                    } else {
                        s.to.clone().unwrap_or_default()
                    },
                ));
            }
            let words: Vec<String> = plan
                .deb
                .iter()
                .chain(plan.pkgs.iter())
                .zip(lines.iter())
                .map(|(pp, (_, _, a))| format!("{} {} {a}", pp.action.word(false), pp.name))
                .collect();
            if !words.is_empty() {
                done.msg = Some(words.join(", "));
            }
            done.diff.clear();
            if ctx.diff && !lines.is_empty() {
                done.diff.push(pkgutil::package_diff(
                    &format!("packages ({})", ctx.host),
                    &lines,
                ));
            }
            done = done.with("packages", packages_value(&lines));
        }
        Ok(done.with("stdout", stdout).with("stderr", stderr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    const FRESH: &str = "HLLISTS 0\nHLSTAMP 1000 900\nHLDPKG\nHLPOLICY\nHLEND\n";

    const WITH_LISTS: &str = "HLLISTS 1\nHLSTAMP 1000 900\nHLDPKG\n\
tree\tamd64\tii \t2.1.0-1\n\
sl\tamd64\trc \t5.02-1+b1\n\
HLPOLICY\n\
tree:\n  Installed: 2.1.0-1\n  Candidate: 2.1.0-2\n  Version table:\n     2.1.0-2 500\n        500 http://deb.debian.org/debian bookworm-updates/main amd64 Packages\n *** 2.1.0-1 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n        100 /var/lib/dpkg/status\n\
sl:\n  Installed: (none)\n  Candidate: 5.02-1+b1\n  Version table:\n     5.02-1+b1 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n\
HLEND\n";

    #[test]
    fn probe_parses_dpkg_policy_and_stamp() {
        let p = parse_probe(WITH_LISTS).unwrap();
        assert!(p.lists);
        assert_eq!(p.cache_age(), Some(100));
        assert!(p.installed["tree"][0].is_installed());
        assert!(p.installed["sl"][0].has_config_files());
        assert_eq!(p.policy["tree"].candidate.as_deref(), Some("2.1.0-2"));
        assert_eq!(p.policy["tree"].versions, ["2.1.0-2", "2.1.0-1"]);
        assert_eq!(p.policy["sl"].versions, ["5.02-1+b1"]);
        assert!(
            parse_probe("HLLISTS 0\n").is_err(),
            "an unfinished probe is an error"
        );
    }

    #[test]
    fn fresh_host_check_mode_plans_install_with_unknown_version() {
        let a = args(json!({"name": ["tree", "nosuchpkg"], "update_cache": true}));
        let req = Req::from_args(&a).unwrap();
        let p = parse_probe(FRESH).unwrap();
        assert!(needs_update(&req, &p));
        let plan = compute(&req, &p, true);
        assert!(plan.fail.is_none());
        assert_eq!(plan.pkgs.len(), 2);
        assert!(plan
            .pkgs
            .iter()
            .all(|p| p.action == Action::Install && p.to.is_none()));
        assert!(
            plan.notes.iter().any(|n| n.contains("no package lists")),
            "{:?}",
            plan.notes
        );
        let (lines, words) = summary(&plan, true);
        assert_eq!(
            lines[0],
            (
                "tree".into(),
                "not installed".into(),
                "(version unknown until the cache is updated)".into()
            )
        );
        assert_eq!(words[0], "would install tree");
    }

    #[test]
    fn plans_with_lists() {
        let p = parse_probe(WITH_LISTS).unwrap();
        let plan = |v: Value| {
            let a = args(v);
            compute(&Req::from_args(&a).unwrap(), &p, false)
        };
        // present: tree installed → nothing; sl has only config files → install with candidate.
        let pl = plan(json!({"name": "tree,sl"}));
        assert_eq!(pl.pkgs.len(), 1);
        assert_eq!(
            (pl.pkgs[0].name.as_str(), pl.pkgs[0].to.as_deref()),
            ("sl", Some("5.02-1+b1"))
        );
        // latest upgrades tree to the candidate.
        let pl = plan(json!({"name": "tree", "state": "latest"}));
        assert_eq!(pl.pkgs[0].action, Action::Upgrade);
        assert_eq!(pl.pkgs[0].to.as_deref(), Some("2.1.0-2"));
        // pinned version.
        let pl = plan(json!({"name": "tree=2.1.0-2"}));
        assert_eq!(
            (pl.pkgs[0].action, pl.pkgs[0].arg.as_str()),
            (Action::Upgrade, "tree=2.1.0-2")
        );
        let pl = plan(json!({"name": "tree=2.1.0-1"}));
        assert!(pl.pkgs.is_empty());
        // A downgrade needs allow_downgrade.
        let mut p2 = p.clone();
        p2.installed.get_mut("tree").unwrap()[0].version = "2.1.0-2".into();
        let a = args(json!({"name": "tree=2.1.0-1"}));
        let pl = compute(&Req::from_args(&a).unwrap(), &p2, false);
        assert!(pl
            .fail
            .unwrap()
            .contains("2.1.0-2 -> 2.1.0-1 is a downgrade; set allow_downgrade"));
        let a = args(json!({"name": "tree=2.1.0-1", "allow_downgrade": true}));
        let pl = compute(&Req::from_args(&a).unwrap(), &p2, false);
        assert_eq!(pl.pkgs[0].action, Action::Downgrade);
        let pl = plan(json!({"name": "tree=9.9"}));
        assert!(
            pl.fail
                .as_deref()
                .unwrap_or("")
                .contains("no version 9.9 of tree"),
            "{:?}",
            pl.fail
        );
        // absent: tree removed; sl (config files only) purged only with purge.
        let pl = plan(json!({"name": "tree,sl", "state": "absent"}));
        assert_eq!(
            pl.pkgs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["tree"]
        );
        let pl = plan(json!({"name": "tree,sl", "state": "absent", "purge": true}));
        assert_eq!(pl.pkgs.len(), 2);
        assert!(pl.pkgs.iter().all(|p| p.action == Action::Purge));
        // Unknown with lists and no update: check mode fails with Ansible's words.
        let pl = plan(json!({"name": "nosuchpkg"}));
        assert!(pl
            .notes
            .iter()
            .any(|n| n == "No package matching 'nosuchpkg' is available"));
        // only_upgrade leaves a missing package alone.
        let pl = plan(json!({"name": "sl", "only_upgrade": true}));
        assert!(pl.pkgs.is_empty());
    }

    #[test]
    fn cache_validity() {
        let p = parse_probe(WITH_LISTS).unwrap();
        let req = |v| Req::from_args(&args(v)).unwrap();
        assert!(!needs_update(
            &req(json!({"name": "x", "cache_valid_time": 3600})),
            &p
        ));
        assert!(needs_update(
            &req(json!({"name": "x", "cache_valid_time": 50})),
            &p
        ));
        assert!(needs_update(
            &req(json!({"name": "x", "update_cache": "yes"})),
            &p
        ));
        assert!(!needs_update(&req(json!({"name": "x"})), &p));
        let fresh = parse_probe(FRESH).unwrap();
        assert!(needs_update(
            &req(json!({"name": "x", "cache_valid_time": 3600})),
            &fresh
        ));
    }

    #[test]
    fn commands_issued() {
        let p = parse_probe(WITH_LISTS).unwrap();
        let a = args(json!({"name": "sl", "install_recommends": false, "lock_timeout": 3}));
        let req = Req::from_args(&a).unwrap();
        let c = commands(&a, &req, &compute(&req, &p, false));
        assert_eq!(c, ["export DEBIAN_FRONTEND=noninteractive LC_ALL=C; apt-get -y -q -o DPkg::Lock::Timeout=3 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends install sl"]);
        let a = args(json!({"name": "tree", "state": "absent", "purge": true, "autoremove": true}));
        let req = Req::from_args(&a).unwrap();
        let c = commands(&a, &req, &compute(&req, &p, false));
        assert!(
            c[0].ends_with(" remove --purge --auto-remove tree"),
            "{c:?}"
        );
        assert_eq!(req.lock_timeout, 60);
    }

    #[test]
    fn bad_arguments() {
        let e = |v| Req::from_args(&args(v)).unwrap_err();
        assert!(e(json!({"name": "x", "state": "gone"})).contains("value of state must be one of"));
        assert!(e(json!({})).contains("required"));
        assert!(e(json!({"name": "x", "upgrade": "maybe"})).contains("upgrade"));
        assert!(e(json!({"deb": "https://example.org/x.deb"})).contains("no downloads"));
        assert!(serde_json::from_value::<Args>(json!({"name": "x", "nme": 1})).is_err());
        let a = args(json!({"name": "kubelet", "allow_change_held_packages": true}));
        let line = apt_get(&a, &Req::from_args(&a).unwrap());
        assert!(line.contains(" --allow-change-held-packages"), "{line}");
        let a = args(json!({"name": "kubelet"}));
        assert!(!apt_get(&a, &Req::from_args(&a).unwrap()).contains("held"));
        // YAML `upgrade: yes` arrives as a boolean.
        let r = Req::from_args(&args(json!({"upgrade": true}))).unwrap();
        assert_eq!(r.upgrade, Some(Upgrade::Safe));
    }

    #[test]
    fn simulation_lines() {
        assert_eq!(
            parse_sim_line("Inst libc6 [2.36-9] (2.36-9+deb12u4 Debian:12.8/stable [amd64])"),
            Some(SimOp {
                remove: false,
                name: "libc6".into(),
                from: Some("2.36-9".into()),
                to: Some("2.36-9+deb12u4".into())
            })
        );
        assert_eq!(
            parse_sim_line("Inst tree (2.1.0-1 Debian:12.8/stable [amd64])"),
            Some(SimOp {
                remove: false,
                name: "tree".into(),
                from: None,
                to: Some("2.1.0-1".into())
            })
        );
        assert_eq!(
            parse_sim_line("Remv foo [1.0]"),
            Some(SimOp {
                remove: true,
                name: "foo".into(),
                from: Some("1.0".into()),
                to: None
            })
        );
        assert_eq!(
            parse_sim_line("Conf tree (2.1.0-1 Debian:12.8/stable [amd64])"),
            None
        );
        let out = "HLLISTS 1\nHLSTAMP 5 1\nHLSIM\nReading package lists...\nInst a [1] (2 x [amd64])\nConf a (2 x [amd64])\nHLSIMRC 0\nHLEND\n";
        let p = parse_probe(out).unwrap();
        assert_eq!(p.sim.len(), 1);
        assert!(p.sim_err.is_empty());
    }

    #[test]
    fn lock_messages_name_the_holder() {
        let se = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (perl)\n\
                  E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n";
        let m = lock_message(se, 3).unwrap();
        assert!(
            m.contains("/var/lib/dpkg/lock-frontend is held by process 4242 (perl)"),
            "{m}"
        );
        assert!(m.contains("3 s"), "{m}");
        assert!(lock_message("E: Unable to locate package nosuch", 3).is_none());
        let not_root = "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n\
                        E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n";
        assert!(lock_message(not_root, 3).is_none());
        assert!(fail_msg("n", "apt-get install", 100, not_root, 3)
            .ends_with("set become: true on the task or play)"));
        let waited = "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 723 (perl)... 2s\n\
                      E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n";
        let m = lock_message(waited, 3).unwrap();
        assert!(
            m.contains("lock-frontend is held by process 723 (perl);"),
            "{m}"
        );
        let f = fail_msg(
            "node1",
            "apt-get install",
            100,
            "Reading...\nE: Unable to locate package nosuch\n",
            3,
        );
        assert_eq!(
            f,
            "apt-get install failed on node1 (rc 100): E: Unable to locate package nosuch"
        );
    }

    #[test]
    fn debian_version_order() {
        assert!(version_lt("1.0-1", "1.0-2"));
        assert!(version_lt("1.0~rc1", "1.0"));
        assert!(version_lt("2.1.0-1", "1:0.1"));
        assert!(!version_lt("2.10", "2.9"));
        assert!(version_lt("5.02-1", "5.02-1+b1"));
    }

    #[test]
    fn deb_probe() {
        let out = "HLLISTS 1\nHLSTAMP 5 1\nHLDPKG\nHLPOLICY\nHLDEB\nPackage: hello Version: 2.10-3 \nHLEND\n";
        let p = parse_probe(out).unwrap();
        assert_eq!(p.deb, Some(Ok(("hello".into(), "2.10-3".into()))));
        let a = args(json!({"deb": "/tmp/hello.deb"}));
        let plan = compute(&Req::from_args(&a).unwrap(), &p, false);
        assert_eq!(
            plan.deb.as_ref().map(|d| d.arg.as_str()),
            Some("/tmp/hello.deb")
        );
        let p = parse_probe("HLLISTS 1\nHLSTAMP 5 1\nHLDEB\nHLDEBMISSING\nHLEND\n").unwrap();
        let plan = compute(&Req::from_args(&a).unwrap(), &p, false);
        assert!(plan.fail.unwrap().contains("does not exist"));
    }
}
