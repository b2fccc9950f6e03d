//! The parts of OpenSSH's client config (`~/.ssh/config`) that decide where and as whom to connect:
//! HostName, User, Port, IdentityFile, IdentitiesOnly, UserKnownHostsFile, StrictHostKeyChecking,
//! ConnectTimeout. As in OpenSSH, the first value found for a keyword wins (IdentityFile adds up),
//! `Host` patterns take `*`, `?` and `!negation`. `Match` blocks are skipped; `Include` is followed.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
struct Block {
    /// None for options before the first Host line (they apply to every host).
    patterns: Option<Vec<String>>,
    options: Vec<(String, String)>,
}

/// The options that apply to one host name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostOptions {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    pub identities_only: Option<bool>,
    pub user_known_hosts_files: Vec<PathBuf>,
    pub strict_host_key_checking: Option<String>,
    pub connect_timeout: Option<u64>,
}

impl SshConfig {
    /// Reads `~/.ssh/config`; a missing file is an empty config.
    pub fn load_default() -> Result<SshConfig, String> {
        match dirs::home_dir() {
            Some(h) => SshConfig::load(&h.join(".ssh").join("config")),
            None => Ok(SshConfig::default()),
        }
    }

    pub fn load(path: &Path) -> Result<SshConfig, String> {
        let mut cfg = SshConfig::default();
        if path.exists() {
            cfg.read_file(path, 0)?;
        }
        Ok(cfg)
    }

    pub fn parse(text: &str) -> Result<SshConfig, String> {
        let mut cfg = SshConfig::default();
        cfg.read_text(text, Path::new("<config>"), 0)?;
        Ok(cfg)
    }

    fn read_file(&mut self, path: &Path, depth: usize) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read SSH config {}: {e}", path.display()))?;
        self.read_text(&text, path, depth)
    }

    fn read_text(&mut self, text: &str, path: &Path, depth: usize) -> Result<(), String> {
        let mut skipping = false;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = split_kv(line)
                .ok_or_else(|| format!("{}:{}: cannot parse '{line}'", path.display(), n + 1))?;
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "host" => {
                    skipping = false;
                    self.blocks.push(Block {
                        patterns: Some(value.split_whitespace().map(str::to_string).collect()),
                        options: vec![],
                    });
                }
                "match" => skipping = true,
                _ if skipping => {}
                "include" if depth < 8 => {
                    for inc in value.split_whitespace() {
                        let p = expand_tilde(inc);
                        let p = if p.is_relative() {
                            dirs::home_dir().unwrap_or_default().join(".ssh").join(p)
                        } else {
                            p
                        };
                        for f in glob_files(&p) {
                            self.read_file(&f, depth + 1)?;
                        }
                    }
                }
                _ => {
                    if self.blocks.is_empty() {
                        self.blocks.push(Block {
                            patterns: None,
                            options: vec![],
                        });
                    }
                    if let Some(b) = self.blocks.last_mut() {
                        b.options.push((key, unquote(value)));
                    }
                }
            }
        }
        Ok(())
    }

    /// The options for `host` (the name given to ssh, i.e. ansible_host).
    pub fn lookup(&self, host: &str) -> HostOptions {
        let mut o = HostOptions::default();
        for b in &self.blocks {
            if let Some(p) = &b.patterns {
                if !patterns_match(p, host) {
                    continue;
                }
            }
            for (k, v) in &b.options {
                match k.as_str() {
                    "hostname" if o.hostname.is_none() => o.hostname = Some(v.replace("%h", host)),
                    "user" if o.user.is_none() => o.user = Some(v.clone()),
                    "port" if o.port.is_none() => o.port = v.parse().ok(),
                    "identityfile" => o.identity_files.push(expand_tilde(v)),
                    "identitiesonly" if o.identities_only.is_none() => {
                        o.identities_only = Some(v.eq_ignore_ascii_case("yes"))
                    }
                    "userknownhostsfile" if o.user_known_hosts_files.is_empty() => {
                        o.user_known_hosts_files = v.split_whitespace().map(expand_tilde).collect()
                    }
                    "stricthostkeychecking" if o.strict_host_key_checking.is_none() => {
                        o.strict_host_key_checking = Some(v.clone())
                    }
                    "connecttimeout" if o.connect_timeout.is_none() => {
                        o.connect_timeout = v.parse().ok()
                    }
                    _ => {}
                }
            }
        }
        o
    }
}

fn split_kv(line: &str) -> Option<(&str, &str)> {
    let idx = line.find(|c: char| c.is_whitespace() || c == '=')?;
    let key = &line[..idx];
    let rest = line[idx..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    if key.is_empty() {
        None
    } else {
        Some((key, rest))
    }
}

fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
        .to_string()
}

/// `~/x` → home/x.
pub fn expand_tilde(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(h) = dirs::home_dir() {
            return h.join(rest);
        }
    }
    PathBuf::from(p)
}

fn glob_files(p: &Path) -> Vec<PathBuf> {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
    match (name, p.parent()) {
        (Some(n), Some(dir)) if n.contains('*') || n.contains('?') => {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| wildcard(&n, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect();
            v.sort();
            v
        }
        _ if p.exists() => vec![p.to_path_buf()],
        _ => vec![],
    }
}

fn patterns_match(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard(neg, host) {
                return false;
            }
        } else if wildcard(p, host) {
            matched = true;
        }
    }
    matched
}

/// OpenSSH's pattern match: `*` any run, `?` one character.
pub fn wildcard(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_patterns() {
        let cfg = SshConfig::parse(
            "Host pi-*  !pi-old\n  User pi\n  Port 2200\n  IdentityFile ~/.ssh/pi\n\
             Host *\n  User admin\n  IdentityFile /k/default\n  StrictHostKeyChecking accept-new\n\
             Match exec \"false\"\n  User never\n\
             Host pi-a\n  HostName=10.0.0.5\n",
        )
        .unwrap();
        let o = cfg.lookup("pi-a");
        assert_eq!(o.user.as_deref(), Some("pi"));
        assert_eq!(o.port, Some(2200));
        assert_eq!(o.hostname.as_deref(), Some("10.0.0.5"));
        assert_eq!(o.identity_files.len(), 2);
        assert_eq!(o.strict_host_key_checking.as_deref(), Some("accept-new"));
        let old = cfg.lookup("pi-old");
        assert_eq!(old.user.as_deref(), Some("admin"));
        assert_eq!(old.port, None);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.lan", "a.lan"));
        assert!(wildcard("n?de", "node"));
        assert!(!wildcard("n?de", "nodes"));
        assert!(wildcard("*", ""));
    }
}
