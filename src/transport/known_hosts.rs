//! Host key checking against known_hosts files: strict by default, `accept-new` as an option.
//! A changed key is always refused, naming the host, the file and line, and both fingerprints.

use russh::keys::ssh_key::{HashAlg, PublicKey};
use std::path::{Path, PathBuf};

/// What to do with a host key that is not in any known_hosts file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse it (OpenSSH's `StrictHostKeyChecking=yes`).
    #[default]
    Strict,
    /// Record it in the first known_hosts file and go on (`accept-new`). A changed key is still refused.
    AcceptNew,
    /// Accept any key, even a changed one (`StrictHostKeyChecking=no` with a throwaway file). Unsafe.
    Off,
}

impl HostKeyPolicy {
    /// Parses `strict`/`yes`, `accept-new`, `off`/`no` (the CLI's and OpenSSH's spellings).
    pub fn parse(s: &str) -> Option<HostKeyPolicy> {
        match s.to_ascii_lowercase().as_str() {
            "strict" | "yes" | "true" => Some(HostKeyPolicy::Strict),
            "accept-new" | "accept_new" => Some(HostKeyPolicy::AcceptNew),
            "off" | "no" | "false" => Some(HostKeyPolicy::Off),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    #[error("{host}: host key for {endpoint} is unknown (server offers {alg} {fingerprint}); it is not in {files}. Verify the fingerprint, then add it (ssh-keyscan -p {port} {addr} >> {first}), or run with --host-key-checking accept-new")]
    Unknown {
        host: String,
        endpoint: String,
        addr: String,
        port: u16,
        alg: String,
        fingerprint: String,
        files: String,
        first: String,
    },
    #[error("{host}: REFUSED: the host key of {endpoint} has CHANGED. {file}:{line} records {expected}, the server offered {offered}. This can be a man-in-the-middle attack, or the host was reinstalled; if you know why, remove the old entry (ssh-keygen -R '{known_name}' -f {file}) and connect again")]
    Changed {
        host: String,
        endpoint: String,
        known_name: String,
        file: String,
        line: usize,
        expected: String,
        offered: String,
    },
    #[error("{host}: cannot record the host key of {endpoint} in {file}: {reason}")]
    Learn {
        host: String,
        endpoint: String,
        file: String,
        reason: String,
    },
}

/// Everything needed to check one server's key.
#[derive(Debug, Clone)]
pub struct HostKeyCheck {
    pub host: String,
    pub addr: String,
    pub port: u16,
    /// Files to look in; with accept-new, a new key is written to the first.
    pub files: Vec<PathBuf>,
    pub policy: HostKeyPolicy,
}

fn fp(k: &PublicKey) -> String {
    k.fingerprint(HashAlg::Sha256).to_string()
}

impl HostKeyCheck {
    fn endpoint(&self) -> String {
        if self.port == 22 {
            self.addr.clone()
        } else {
            format!("{}:{}", self.addr, self.port)
        }
    }

    fn known_name(&self) -> String {
        if self.port == 22 {
            self.addr.clone()
        } else {
            format!("[{}]:{}", self.addr, self.port)
        }
    }

    /// The algorithms this host's recorded keys use, so the client can ask for those first.
    pub fn recorded_algorithms(&self) -> Vec<russh::keys::Algorithm> {
        let mut algs = Vec::new();
        for f in self.files.iter().filter(|f| f.exists()) {
            if let Ok(keys) =
                russh::keys::known_hosts::known_host_keys_path(&self.addr, self.port, f)
            {
                for (_, k) in keys {
                    if !algs.contains(&k.algorithm()) {
                        algs.push(k.algorithm());
                    }
                }
            }
        }
        algs
    }

    /// Checks the key the server offered.
    pub fn verify(&self, key: &PublicKey) -> Result<(), Box<HostKeyError>> {
        if self.policy == HostKeyPolicy::Off {
            return Ok(());
        }
        for f in self.files.iter().filter(|f| f.exists()) {
            let recorded =
                match russh::keys::known_hosts::known_host_keys_path(&self.addr, self.port, f) {
                    Ok(r) => r,
                    Err(_) => continue,
                };
            let mut mismatch = None;
            for (line, k) in &recorded {
                if k.algorithm() == key.algorithm() {
                    if k.key_data() == key.key_data() {
                        return Ok(());
                    }
                    mismatch.get_or_insert((*line, fp(k)));
                }
            }
            if let Some((line, expected)) = mismatch {
                return Err(Box::new(HostKeyError::Changed {
                    host: self.host.clone(),
                    endpoint: self.endpoint(),
                    known_name: self.known_name(),
                    file: f.display().to_string(),
                    line,
                    expected,
                    offered: fp(key),
                }));
            }
        }
        match self.policy {
            HostKeyPolicy::AcceptNew => {
                let Some(first) = self.files.first() else {
                    return Ok(());
                };
                learn(&self.known_name(), key, first).map_err(|e| {
                    Box::new(HostKeyError::Learn {
                        host: self.host.clone(),
                        endpoint: self.endpoint(),
                        file: first.display().to_string(),
                        reason: e.to_string(),
                    })
                })
            }
            _ => Err(Box::new(HostKeyError::Unknown {
                host: self.host.clone(),
                endpoint: self.endpoint(),
                addr: self.addr.clone(),
                port: self.port,
                alg: key.algorithm().to_string(),
                fingerprint: fp(key),
                files: self
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                first: self
                    .files
                    .first()
                    .map(|f| f.display().to_string())
                    .unwrap_or_else(|| "~/.ssh/known_hosts".into()),
            })),
        }
    }
}

/// Appends `NAME ALG BASE64` to a known_hosts file (made 0600, its folder 0700, when new).
fn learn(name: &str, key: &PublicKey, path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    let needs_newline = std::fs::read(path)
        .map(|b| !b.is_empty() && !b.ends_with(b"\n"))
        .unwrap_or(false);
    let line = key
        .to_openssh()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let lead = if needs_newline { "\n" } else { "" };
    // to_openssh() ends with the key's comment, if any: keep only "ALG BASE64".
    let mut parts = line.split_whitespace();
    let (alg, b64) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    writeln!(f, "{lead}{name} {alg} {b64}")
}

/// `~/.ssh/known_hosts` (and OpenSSH's system-wide file when it exists).
pub fn default_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(h) = dirs::home_dir() {
        v.push(h.join(".ssh").join("known_hosts"));
    }
    let global = Path::new("/etc/ssh/ssh_known_hosts");
    if global.exists() {
        v.push(global.to_path_buf());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILyX4UHitopGzTsS6xJI9ET2NAbiNWIHAeSwSKcrPg3v";
    const K2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP0KsRYkQaWbI5npuZM0qNt4HJWUtvA5Lixwz+2ATCTv";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn check(dir: &Path, policy: HostKeyPolicy) -> HostKeyCheck {
        HostKeyCheck {
            host: "web1".into(),
            addr: "127.0.0.9".into(),
            port: 2222,
            files: vec![dir.join("known_hosts")],
            policy,
        }
    }

    #[test]
    fn strict_refuses_unknown_and_accept_new_learns() {
        let d = tempfile::tempdir().unwrap();
        let k = key(K1);
        let e = check(d.path(), HostKeyPolicy::Strict)
            .verify(&k)
            .unwrap_err();
        assert!(matches!(*e, HostKeyError::Unknown { .. }), "{e}");
        assert!(e.to_string().contains("web1"));
        check(d.path(), HostKeyPolicy::AcceptNew)
            .verify(&k)
            .unwrap();
        check(d.path(), HostKeyPolicy::Strict).verify(&k).unwrap();
        let text = std::fs::read_to_string(d.path().join("known_hosts")).unwrap();
        assert!(text.starts_with("[127.0.0.9]:2222 ssh-ed25519 "), "{text}");
    }

    #[test]
    fn changed_key_is_refused_with_both_fingerprints_even_with_accept_new() {
        let d = tempfile::tempdir().unwrap();
        let (old, new) = (key(K1), key(K2));
        check(d.path(), HostKeyPolicy::AcceptNew)
            .verify(&old)
            .unwrap();
        let e = check(d.path(), HostKeyPolicy::AcceptNew)
            .verify(&new)
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("CHANGED"), "{msg}");
        assert!(msg.contains(&fp(&old)) && msg.contains(&fp(&new)), "{msg}");
        assert!(msg.contains("known_hosts:1"), "{msg}");
    }
}
