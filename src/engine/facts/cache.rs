//! The fact cache: one JSON file per host in a folder (like Ansible's `jsonfile` cache plugin),
//! fresh for `timeout` seconds after it was written (its modification time; 0 = never stale).
//!
//! With a cache, a play's fact gathering is "smart" (Ansible's `gathering = smart`): a host with
//! a fresh entry is not gathered again, its cached facts are used. Cached facts of every
//! inventory host are loaded at the start of a run, so `hostvars[h]` has the facts of hosts the
//! play does not touch. Files are written atomically (temp file + rename) with mode 0600.

use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
pub struct FactCache {
    pub dir: PathBuf,
    /// How long an entry is fresh; zero means forever.
    pub timeout: Duration,
}

/// Ansible's default `fact_caching_timeout`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 86400;

impl FactCache {
    /// From `--fact-cache DIR`/`--fact-cache-timeout`, else the environment: HOMELAB_FACT_CACHE or
    /// ANSIBLE_CACHE_PLUGIN_CONNECTION (folder), ANSIBLE_CACHE_PLUGIN_TIMEOUT (seconds).
    pub fn configure(dir: Option<PathBuf>, timeout: Option<u64>) -> anyhow::Result<Option<Self>> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let dir = dir
            .or_else(|| env("HOMELAB_FACT_CACHE").map(PathBuf::from))
            .or_else(|| env("ANSIBLE_CACHE_PLUGIN_CONNECTION").map(PathBuf::from));
        let Some(dir) = dir else { return Ok(None) };
        let timeout = match timeout {
            Some(t) => t,
            None => match env("ANSIBLE_CACHE_PLUGIN_TIMEOUT") {
                Some(t) => t.trim().parse().map_err(|_| {
                    anyhow::anyhow!(
                        "ANSIBLE_CACHE_PLUGIN_TIMEOUT='{t}': expected a number of seconds"
                    )
                })?,
                None => DEFAULT_TIMEOUT_SECS,
            },
        };
        Ok(Some(FactCache {
            dir,
            timeout: Duration::from_secs(timeout),
        }))
    }

    /// The file of a host (its inventory name, with `/` made harmless).
    pub fn path(&self, host: &str) -> PathBuf {
        let name: String = host
            .chars()
            .map(|c| if c == '/' || c == '\0' { '_' } else { c })
            .collect();
        let name = if name.starts_with('.') {
            format!("_{name}")
        } else {
            name
        };
        self.dir.join(name)
    }

    /// A host's cached facts if the entry is fresh; a missing, stale or unreadable entry is
    /// `None` (an unreadable one is gathered again and rewritten).
    pub fn load(&self, host: &str) -> Option<Map<String, Value>> {
        let p = self.path(host);
        let meta = std::fs::metadata(&p).ok()?;
        if !self.timeout.is_zero() {
            let age = SystemTime::now()
                .duration_since(meta.modified().ok()?)
                .unwrap_or(Duration::ZERO);
            if age > self.timeout {
                return None;
            }
        }
        let text = std::fs::read_to_string(&p).ok()?;
        match serde_json::from_str(&text).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Writes a host's facts: temp file in the same folder, mode 0600, then rename.
    pub fn store(&self, host: &str, facts: &Map<String, Value>) -> Result<(), String> {
        let what = |e: std::io::Error, p: &Path| {
            format!(
                "fact cache: cannot write {} ({e}); check --fact-cache's folder",
                p.display()
            )
        };
        create_private_dir(&self.dir).map_err(|e| what(e, &self.dir))?;
        let dest = self.path(host);
        let tmp = self.dir.join(format!(
            ".{}.tmp{}",
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("host"),
            std::process::id()
        ));
        let body = serde_json::to_vec_pretty(&Value::Object(facts.clone()))
            .map_err(|e| format!("fact cache: cannot encode facts of {host}: {e}"))?;
        let write = || -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &dest)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            what(e, &dest)
        })
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_load_and_staleness() {
        let d = tempfile::tempdir().unwrap();
        let c = FactCache {
            dir: d.path().join("cache"),
            timeout: Duration::from_secs(100),
        };
        let mut m = Map::new();
        m.insert("ansible_hostname".into(), "n1".into());
        assert!(c.load("n1").is_none());
        c.store("n1", &m).unwrap();
        assert_eq!(c.load("n1").unwrap()["ansible_hostname"], "n1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(c.path("n1"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(&c.dir).unwrap().collect();
        assert_eq!(names.len(), 1);
        // Stale: written long ago.
        let f = std::fs::File::options()
            .write(true)
            .open(c.path("n1"))
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(1000))
            .unwrap();
        assert!(c.load("n1").is_none());
        let forever = FactCache {
            timeout: Duration::ZERO,
            ..c.clone()
        };
        assert!(forever.load("n1").is_some());
        // Garbage is no entry.
        std::fs::write(c.path("bad"), "not json").unwrap();
        assert!(c.load("bad").is_none());
        assert_eq!(c.path("a/b").file_name().unwrap(), "a_b");
    }
}
