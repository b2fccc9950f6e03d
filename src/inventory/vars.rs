//! `group_vars/` and `host_vars/` directories (Ansible's `host_group_vars` vars
//! plugin and `DataLoader.find_vars_files`).
//!
//! For a name `web`, the first that exists of `web`, `web.yml`, `web.yaml`,
//! `web.json` is used; if it is a directory, every file in it (recursively,
//! sorted, skipping hidden and `~` files, only no extension or
//! .yml/.yaml/.json) is merged in order, later files winning.

use super::pyvalue::PyVal;
use super::yaml;
use super::InventoryError;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 3] = [".yml", ".yaml", ".json"];

/// The variables found under one directory for every group and host asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct VarsDir {
    pub groups: HashMap<String, Map<String, Value>>,
    pub hosts: HashMap<String, Map<String, Value>>,
}

impl VarsDir {
    /// Loads the files for the given group and host names under `base`.
    pub fn load<'a>(
        base: &Path,
        groups: impl Iterator<Item = &'a str>,
        hosts: impl Iterator<Item = &'a str>,
    ) -> Result<VarsDir, InventoryError> {
        let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
        let mut out = VarsDir::default();
        let gdir = base.join("group_vars");
        if gdir.is_dir() {
            for g in groups {
                if let Some(vars) = load_entity(&gdir, g)? {
                    out.groups.insert(g.to_string(), vars);
                }
            }
        }
        let hdir = base.join("host_vars");
        if hdir.is_dir() {
            for h in hosts {
                if let Some(vars) = load_entity(&hdir, h)? {
                    out.hosts.insert(h.to_string(), vars);
                }
            }
        }
        Ok(out)
    }

    pub fn group(&self, name: &str) -> Option<&Map<String, Value>> {
        self.groups.get(name)
    }

    pub fn host(&self, name: &str) -> Option<&Map<String, Value>> {
        self.hosts.get(name)
    }
}

/// Python's `os.path.splitext(name)[1]`.
pub(crate) fn py_ext(name: &str) -> &str {
    let stripped = name.trim_start_matches('.');
    match stripped.rfind('.') {
        Some(i) => &stripped[i..],
        None => "",
    }
}

/// `find_vars_files(opath, name)`.
fn find_vars_files(opath: &Path, name: &str) -> Vec<PathBuf> {
    let base = opath.join(name);
    for ext in std::iter::once("").chain(EXTENSIONS) {
        let full = if ext.is_empty() {
            base.clone()
        } else {
            let mut s = base.clone().into_os_string();
            s.push(ext);
            PathBuf::from(s)
        };
        if full.exists() {
            if full.is_dir() {
                return dir_vars_files(&full);
            }
            return vec![full];
        }
    }
    Vec::new()
}

fn dir_vars_files(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<std::ffi::OsString> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
        Err(_) => return Vec::new(),
    };
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    let mut found = Vec::new();
    for n in names {
        let s = n.to_string_lossy();
        if s.starts_with('.') || s.ends_with('~') {
            continue;
        }
        let ext = py_ext(&s);
        let full = dir.join(&n);
        if full.is_dir() && ext.is_empty() {
            found.extend(dir_vars_files(&full));
        } else if full.is_file() && (ext.is_empty() || EXTENSIONS.contains(&ext)) {
            found.push(full);
        }
    }
    found
}

/// The merged variables of one group or host, `None` when it has no files.
fn load_entity(opath: &Path, name: &str) -> Result<Option<Map<String, Value>>, InventoryError> {
    if name.starts_with('/') {
        return Ok(None);
    }
    let files = find_vars_files(opath, name);
    if files.is_empty() {
        return Ok(None);
    }
    let mut data = Map::new();
    for f in files {
        for (k, v) in load_vars_file(&f)? {
            data.insert(k, v);
        }
    }
    Ok(Some(data))
}

/// One vars file: a mapping (or empty). Lists and scalars are errors.
pub fn load_vars_file(path: &Path) -> Result<Map<String, Value>, InventoryError> {
    let bytes = std::fs::read(path).map_err(|source| InventoryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| InventoryError::Invalid {
        path: path.to_path_buf(),
        message: "this file is not UTF-8 text; save it as UTF-8".into(),
    })?;
    if text.starts_with("$ANSIBLE_VAULT") {
        return Err(InventoryError::Invalid {
            path: path.to_path_buf(),
            message: "this file is encrypted with ansible-vault, which homelab does not support yet; decrypt it (ansible-vault decrypt) to use it".into(),
        });
    }
    let value = yaml::load(&text).map_err(|e| InventoryError::Yaml {
        path: path.to_path_buf(),
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    match value {
        None => Ok(Map::new()),
        Some(v) if !v.is_truthy() => Ok(Map::new()),
        Some(PyVal::Dict(pairs)) => Ok(pairs.into_iter().map(|(k, v)| (k.json_key(), v.to_json())).collect()),
        Some(other) => Err(InventoryError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "a vars file must hold a mapping of variable names to values, but this one holds a {}",
                other.type_name()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_rules() {
        assert_eq!(py_ext("web.yml"), ".yml");
        assert_eq!(py_ext(".hidden"), "");
        assert_eq!(py_ext("a.b.json"), ".json");
        assert_eq!(py_ext("noext"), "");
    }

    #[test]
    fn first_file_wins_and_dirs_merge_sorted() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let gv = t.path().join("group_vars");
        std::fs::create_dir_all(gv.join("all/sub"))?;
        std::fs::write(gv.join("web.yml"), "a: yml\n")?;
        std::fs::write(gv.join("web.json"), "{\"a\": \"json\"}")?;
        std::fs::write(gv.join("all/b.yml"), "x: 2\n")?;
        std::fs::write(gv.join("all/a.yml"), "x: 1\ny: 1\n")?;
        std::fs::write(gv.join("all/sub/c"), "y: 3\n")?;
        std::fs::write(gv.join("all/z.txt"), "y: 9\n")?;
        std::fs::write(gv.join("all/z.yml~"), "y: 9\n")?;
        let v = VarsDir::load(
            t.path(),
            ["web", "all", "none"].into_iter(),
            std::iter::empty(),
        )?;
        assert_eq!(
            v.group("web").map(|m| m["a"].clone()),
            Some(Value::from("yml"))
        );
        let all = v.group("all").cloned().unwrap_or_default();
        assert_eq!(all["x"], Value::from(2));
        assert_eq!(all["y"], Value::from(3));
        assert!(v.group("none").is_none());
        Ok(())
    }
}
