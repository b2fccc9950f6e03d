//! Ansible-compatible inventories: INI and YAML (and JSON) files, directories of
//! them, host lists (`-i 'a,b,'`), `group_vars/` and `host_vars/`, host patterns.
//!
//! The rules follow ansible-core (2.19) closely enough that `homelab inventory
//! --list` prints the same JSON as `ansible-inventory --list`; the tests in
//! `tests/inventory_oracle.rs` check that against the real tool.
//!
//! Variable precedence for a host, lowest first (Ansible's defaults):
//! 1. `all` vars from inventory files,
//! 2. other groups' vars from inventory files, by depth, then
//!    `ansible_group_priority`, then name (children win over parents),
//! 3. `group_vars/all` next to each inventory source, then next to the playbook,
//! 4. `group_vars/GROUP` next to each inventory source (same group order), then next to the playbook,
//! 5. host vars from inventory files,
//! 6. `host_vars/HOST` next to each inventory source, then next to the playbook.
//!
//! Each step replaces whole values (no deep merge), like Ansible's default
//! `hash_behaviour = replace`.

pub mod cli;

mod address;
mod data;
mod ini;
mod output;
mod pattern;
mod pyliteral;
mod pyvalue;
mod vars;
pub use vars::load_vars_file;
mod yaml;
mod yaml_inv;

pub use output::{py_json_dumps, py_repr, py_str};
pub use pyvalue::{strip_unsafe, unsafe_text, UNSAFE_KEY};
pub use yaml::{load_spanned, SpannedNode, SpannedValue, YamlError};

use data::{Data, DataError, HostId, ALL};
use indexmap::IndexMap;
use pattern::{Evaluator, Pick, LOCALHOST};
use serde_json::{Map, Value};
use std::path::{Component, Path, PathBuf};
use vars::VarsDir;

/// Variables ansible-inventory never prints (its `INTERNAL_STATIC_VARS`).
pub const INTERNAL_VARS: &[&str] = &[
    "ansible_async_path",
    "ansible_collection_name",
    "ansible_config_file",
    "ansible_dependent_role_names",
    "ansible_diff_mode",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_limit",
    "ansible_play_batch",
    "ansible_play_hosts",
    "ansible_play_hosts_all",
    "ansible_play_role_names",
    "ansible_playbook_python",
    "ansible_role_name",
    "ansible_role_names",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "hostvars",
    "playbook_dir",
    "play_hosts",
    "role_name",
    "role_names",
    "role_path",
    "role_uuid",
];

/// Everything that can go wrong with an inventory. Each message says where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("inventory source '{0}' does not exist; pass -i with a file or directory")]
    SourceNotFound(String),
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A malformed INI line.
    #[error("{}:{line}: {message}{}", .path.display(), quote_line(.text))]
    Ini {
        path: PathBuf,
        line: usize,
        text: String,
        message: String,
    },
    /// Malformed YAML (or a YAML value that cannot be built), with the parser's position.
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A file that parses but is not a valid inventory or vars file.
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    /// A group that would end up below itself.
    #[error("{}{}: group '{child}' cannot be a child of '{parent}': '{child}' is already an ancestor of '{parent}', which would make a loop; remove one of the two parent/child entries", .path.display(), line_suffix(.line))]
    GroupCycle {
        path: PathBuf,
        line: Option<usize>,
        parent: String,
        child: String,
    },
    /// A pattern term that matches no host or group.
    #[error("no host or group matches '{pattern}'{}; check the name (`homelab inventory -i ... --graph` lists them)", did_you_mean(.suggestion))]
    NoMatch {
        pattern: String,
        suggestion: Option<String>,
    },
    #[error("invalid host pattern '{pattern}': {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("unknown host '{host}'{}; it is not in the inventory", did_you_mean(.suggestion))]
    UnknownHost {
        host: String,
        suggestion: Option<String>,
    },
    #[error("unknown group '{group}'{}; it is not in the inventory", did_you_mean(.suggestion))]
    UnknownGroup {
        group: String,
        suggestion: Option<String>,
    },
}

fn quote_line(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("\n    {text}")
    }
}

fn line_suffix(line: &Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default()
}

/// `-i lab` means the lab's inventory, unless a file or directory named `lab` is here.
pub fn resolve_source(s: &str) -> PathBuf {
    if s == "lab" && !Path::new("lab").exists() {
        crate::lab::inventory_path()
    } else {
        PathBuf::from(s)
    }
}

#[derive(Debug, Clone)]
enum Source {
    Path(PathBuf),
    HostList,
}

/// A loaded inventory: groups, hosts, variables.
#[derive(Debug, Clone)]
pub struct Inventory {
    data: Data,
    sources: Vec<Source>,
    /// `group_vars/`, `host_vars/` next to each inventory source, in source order.
    inventory_vars: Vec<VarsDir>,
    /// The same next to playbooks (or the current directory for `homelab inventory`).
    playbook_vars: Vec<VarsDir>,
    warnings: Vec<String>,
}

/// Names Ansible skips in an inventory directory (`INVENTORY_IGNORE_EXTS` and friends).
fn ignored_in_dir(name: &str) -> bool {
    const EXTS: [&str; 12] = [
        ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
        ".retry",
    ];
    name.starts_with('.')
        || matches!(name, "host_vars" | "group_vars" | "vars_plugins")
        || EXTS.iter().any(|e| name.ends_with(e))
}

/// Ansible's `unfrackpath(follow=False)`: `~` expanded, absolute, `.`/`..` removed.
fn absolutize(p: &Path) -> PathBuf {
    let p = match p.to_str().and_then(|s| s.strip_prefix("~/")) {
        Some(rest) => dirs::home_dir()
            .map(|h| h.join(rest))
            .unwrap_or_else(|| p.to_path_buf()),
        None => p.to_path_buf(),
    };
    let p = if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    };
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl Inventory {
    /// Loads and merges the sources in order (files, directories, or `a,b,` host lists).
    pub fn load(sources: &[PathBuf]) -> Result<Inventory, InventoryError> {
        let mut inv = Inventory {
            data: Data::new(),
            sources: Vec::new(),
            inventory_vars: Vec::new(),
            playbook_vars: Vec::new(),
            warnings: Vec::new(),
        };
        for s in sources {
            let text = s.to_string_lossy().to_string();
            let expanded = absolutize(s);
            if expanded.exists() {
                inv.parse_path(&expanded)?;
                inv.sources.push(Source::Path(expanded));
            } else if text.contains(',') {
                inv.parse_host_list(&text)?;
                inv.sources.push(Source::HostList);
            } else {
                return Err(InventoryError::SourceNotFound(text));
            }
        }
        inv.data.reconcile();
        for h in &inv.data.hosts {
            if inv.data.group(&h.name).is_some() {
                inv.warnings.push(format!(
                    "Found both group and host with same name: {}",
                    h.name
                ));
            }
        }
        let mut dirs = Vec::new();
        for s in &inv.sources {
            if let Source::Path(p) = s {
                let base = if p.is_dir() {
                    p.clone()
                } else {
                    p.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                dirs.push(inv.load_vars_dir(&base)?);
            }
        }
        inv.inventory_vars = dirs;
        Ok(inv)
    }

    fn load_vars_dir(&self, base: &Path) -> Result<VarsDir, InventoryError> {
        let hosts = self.data.hosts.iter().map(|h| h.name.as_str()).chain(
            LOCALHOST
                .iter()
                .copied()
                .filter(|n| self.data.host(n).is_none()),
        );
        VarsDir::load(
            base,
            self.data.groups.iter().map(|g| g.name.as_str()),
            hosts,
        )
    }

    /// Adds `group_vars/` and `host_vars/` found in `dir` (a playbook's directory),
    /// above the inventory's own (Ansible's "playbook group_vars/host_vars").
    pub fn add_playbook_dir(&mut self, dir: &Path) -> Result<(), InventoryError> {
        let vd = self.load_vars_dir(&absolutize(dir))?;
        if !vd.groups.is_empty() || !vd.hosts.is_empty() {
            self.playbook_vars.push(vd);
        }
        Ok(())
    }

    /// Non-fatal findings, worded like Ansible's warnings.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn parse_host_list(&mut self, text: &str) -> Result<(), InventoryError> {
        self.data.current_source = None;
        for h in text.split(',') {
            let h = h.trim();
            if h.is_empty() {
                continue;
            }
            let (host, port) = match address::parse_address(h) {
                Some((host, port)) if !host.contains('[') => (host, port),
                _ => (h.to_string(), None),
            };
            if self.data.host(&host).is_none() {
                self.data
                    .add_host(&host, Some("ungrouped"), port.as_deref())
                    .map_err(|e| InventoryError::Invalid {
                        path: PathBuf::from(text),
                        message: e.to_string(),
                    })?;
            }
        }
        Ok(())
    }

    fn parse_path(&mut self, path: &Path) -> Result<(), InventoryError> {
        if path.is_dir() {
            let rd = std::fs::read_dir(path).map_err(|source| InventoryError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let mut names: Vec<std::ffi::OsString> =
                rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
            names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
            for n in names {
                if ignored_in_dir(&n.to_string_lossy()) {
                    continue;
                }
                self.parse_path(&path.join(n))?;
            }
            Ok(())
        } else {
            self.parse_file(path)
        }
    }

    fn parse_file(&mut self, path: &Path) -> Result<(), InventoryError> {
        let bytes = std::fs::read(path).map_err(|source| InventoryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                // Like Ansible: only an INI file can have non-UTF-8 bytes, and only in comment lines.
                self.data.current_source = Some(path.to_path_buf());
                let text = ini_text_from_bytes(path, e.as_bytes())?;
                let mut trial = self.data.clone();
                return match ini::parse(&mut trial, &text, path) {
                    Ok(()) => {
                        self.data = trial;
                        Ok(())
                    }
                    Err(ie) => Err(ini_error(path, ie)),
                };
            }
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let ext = vars::py_ext(&name).to_string();
        self.data.current_source = Some(path.to_path_buf());

        // Ansible tries its plugins in order: yaml (no extension, .yml, .yaml, .json), then ini.
        let yaml_exts = ["", ".yaml", ".yml", ".json"];
        let mut yaml_err = None;
        if yaml_exts.contains(&ext.as_str()) {
            let mut trial = self.data.clone();
            let mut warnings = Vec::new();
            match yaml_inv::parse(&mut trial, &text, &mut warnings) {
                Ok(()) => {
                    self.data = trial;
                    self.warnings.extend(
                        warnings
                            .into_iter()
                            .map(|w| format!("{}: {w}", path.display())),
                    );
                    return Ok(());
                }
                Err(e) => yaml_err = Some(e),
            }
        }
        if ext == ".toml" {
            return Err(InventoryError::Invalid {
                path: path.to_path_buf(),
                message: "TOML inventories are not supported; write it as YAML (.yml) or INI"
                    .into(),
            });
        }
        let mut trial = self.data.clone();
        match ini::parse(&mut trial, &text, path) {
            Ok(()) => {
                self.data = trial;
                Ok(())
            }
            Err(ie) => {
                let yaml_named = !ext.is_empty() && yaml_exts.contains(&ext.as_str());
                match yaml_err {
                    Some(yaml_inv::YamlInvError::Syntax(e)) if yaml_named || ie.looks_like_yaml => {
                        Err(InventoryError::Yaml {
                            path: path.to_path_buf(),
                            line: e.line,
                            column: e.column,
                            message: format!(
                                "{} (the file is read as YAML; fix the syntax there)",
                                e.message
                            ),
                        })
                    }
                    Some(yaml_inv::YamlInvError::Structure(m)) => Err(InventoryError::Invalid {
                        path: path.to_path_buf(),
                        message: m,
                    }),
                    Some(yaml_inv::YamlInvError::Data(e)) => Err(data_error(path, None, e)),
                    Some(yaml_inv::YamlInvError::NotInventory(m)) if yaml_named => {
                        Err(InventoryError::Invalid {
                            path: path.to_path_buf(),
                            message: m,
                        })
                    }
                    _ => Err(ini_error(path, ie)),
                }
            }
        }
    }

    fn pick_name(&self, p: &Pick) -> String {
        match p {
            Pick::Host(h) => self.data.hosts[*h].name.clone(),
            Pick::Implicit(n) => n.clone(),
        }
    }

    /// Hosts matching an Ansible pattern, in Ansible's order, deduplicated.
    ///
    /// A term that matches nothing (an unknown host or group, a glob with no hit)
    /// is an error: [`InventoryError::NoMatch`] names it, with a close name if any.
    /// `localhost` (and `127.0.0.1`, `::1`) match the implicit localhost when the
    /// inventory does not list them, as in Ansible.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        self.select_limited(pattern, None)
    }

    /// [`Self::select`] restricted by a `--limit` pattern (which may name files with `@path`).
    pub fn select_limited(
        &self,
        pattern: &str,
        limit: Option<&str>,
    ) -> Result<Vec<String>, InventoryError> {
        let ev = Evaluator { data: &self.data };
        let mut picks = ev.evaluate(&pattern::split_host_pattern(pattern))?;
        if let Some(limit) = limit {
            let allowed: std::collections::HashSet<Pick> =
                ev.evaluate(&limit_patterns(limit)?)?.into_iter().collect();
            picks.retain(|p| allowed.contains(p));
        }
        Ok(picks.iter().map(|p| self.pick_name(p)).collect())
    }

    /// A play's `hosts:` restricted by `--limit`: as [`Self::select_limited`], except that a
    /// term of `pattern` matching nothing is ignored and given back (Ansible warns "Could not
    /// match supplied host pattern, ignoring: ..." and goes on). `--limit` stays strict.
    pub fn select_play_hosts(
        &self,
        pattern: &str,
        limit: Option<&str>,
    ) -> Result<(Vec<String>, Vec<InventoryError>), InventoryError> {
        let ev = Evaluator { data: &self.data };
        let mut ignored = vec![];
        let mut picks =
            ev.evaluate_with(&pattern::split_host_pattern(pattern), Some(&mut ignored))?;
        if let Some(limit) = limit {
            let allowed: std::collections::HashSet<Pick> =
                ev.evaluate(&limit_patterns(limit)?)?.into_iter().collect();
            picks.retain(|p| allowed.contains(p));
        }
        Ok((picks.iter().map(|p| self.pick_name(p)).collect(), ignored))
    }

    /// Every host, in inventory order.
    pub fn hosts(&self) -> Vec<String> {
        pattern::all_hosts(&self.data)
            .into_iter()
            .map(|h| self.data.hosts[h].name.clone())
            .collect()
    }

    fn host_id(&self, host: &str) -> Result<Option<HostId>, InventoryError> {
        match self.data.host(host) {
            Some(h) => Ok(Some(h)),
            None if LOCALHOST.contains(&host) => Ok(None),
            None => Err(InventoryError::UnknownHost {
                host: host.to_string(),
                suggestion: pattern::did_you_mean(
                    host,
                    self.data.hosts.iter().map(|h| h.name.as_str()),
                ),
            }),
        }
    }

    /// A host's merged variables (inventory + group_vars + host_vars, Ansible precedence).
    ///
    /// Strings marked unsafe (YAML `!unsafe`) come back as
    /// `{"__ansible_unsafe": "..."}`, Ansible's own JSON form, so that templating
    /// can leave them alone; [`strip_unsafe`] turns them into plain strings.
    /// Magic variables (`inventory_hostname`, `group_names`...) are not included:
    /// see [`Self::magic_vars`].
    pub fn host_vars(&self, host: &str) -> Result<Map<String, Value>, InventoryError> {
        let id = self.host_id(host)?;
        let mut groups: Vec<usize> = match id {
            Some(h) => self
                .data
                .host_groups(h)
                .into_iter()
                .filter(|g| *g != ALL)
                .collect(),
            None => Vec::new(),
        };
        self.data.sort_groups(&mut groups);
        let mut out = self.data.groups[ALL].vars.clone();
        let combine = |out: &mut Map<String, Value>, m: Option<&Map<String, Value>>| {
            if let Some(m) = m {
                for (k, v) in m {
                    out.insert(k.clone(), v.clone());
                }
            }
        };
        for &g in &groups {
            combine(&mut out, Some(&self.data.groups[g].vars));
        }
        for dirs in [&self.inventory_vars, &self.playbook_vars] {
            for d in dirs.iter() {
                combine(&mut out, d.group("all"));
            }
        }
        for dirs in [&self.inventory_vars, &self.playbook_vars] {
            for d in dirs.iter() {
                for &g in &groups {
                    combine(&mut out, d.group(&self.data.groups[g].name));
                }
            }
        }
        match id {
            Some(h) => combine(&mut out, Some(&self.data.hosts[h].vars)),
            None => {
                out.insert("ansible_connection".into(), Value::from("local"));
            }
        }
        for dirs in [&self.inventory_vars, &self.playbook_vars] {
            for d in dirs.iter() {
                combine(&mut out, d.host(host));
            }
        }
        Ok(out)
    }

    /// Ansible's per-host magic variables that come from the inventory:
    /// `inventory_hostname`, `inventory_hostname_short`, `group_names`,
    /// `inventory_file`, `inventory_dir`.
    pub fn magic_vars(&self, host: &str) -> Result<Map<String, Value>, InventoryError> {
        let id = self.host_id(host)?;
        let mut m = Map::new();
        m.insert("inventory_hostname".into(), Value::from(host));
        let short = if address::is_ip_address(host) {
            host
        } else {
            host.split('.').next().unwrap_or(host)
        };
        m.insert("inventory_hostname_short".into(), Value::from(short));
        m.insert("group_names".into(), Value::from(self.group_names(host)));
        let source = id.and_then(|h| self.data.hosts[h].source.clone());
        m.insert(
            "inventory_file".into(),
            source.as_ref().map_or(Value::Null, |p| {
                Value::from(p.to_string_lossy().to_string())
            }),
        );
        m.insert(
            "inventory_dir".into(),
            source
                .as_ref()
                .and_then(|p| p.parent())
                .map_or(Value::Null, |p| {
                    Value::from(p.to_string_lossy().to_string())
                }),
        );
        Ok(m)
    }

    /// Group names the host belongs to, like Ansible's `group_names`: sorted,
    /// every group above the host too, without `all` (but with `ungrouped` for a
    /// host in no other group). Empty for an unknown host.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let Some(h) = self.data.host(host) else {
            return Vec::new();
        };
        let mut names: Vec<String> = self
            .data
            .host_groups(h)
            .into_iter()
            .filter(|g| *g != ALL)
            .map(|g| self.data.groups[g].name.clone())
            .collect();
        names.sort();
        names
    }

    /// Every group → its hosts, subgroups included (Ansible's `groups` magic variable).
    pub fn groups(&self) -> IndexMap<String, Vec<String>> {
        self.data
            .groups
            .iter()
            .enumerate()
            .map(|(g, grp)| {
                (
                    grp.name.clone(),
                    self.data
                        .group_hosts(g)
                        .into_iter()
                        .map(|h| self.data.hosts[h].name.clone())
                        .collect(),
                )
            })
            .collect()
    }

    /// The same JSON as `ansible-inventory --list`.
    pub fn to_list_json(&self) -> Value {
        self.list_json(None).unwrap_or(Value::Null)
    }

    /// `ansible-inventory --list --limit PATTERN`.
    pub fn to_list_json_limited(&self, limit: &str) -> Result<Value, InventoryError> {
        self.list_json(Some(limit))
    }

    fn list_json(&self, limit: Option<&str>) -> Result<Value, InventoryError> {
        let hosts: Vec<HostId> = match limit {
            None => pattern::all_hosts(&self.data),
            Some(l) => {
                let ev = Evaluator { data: &self.data };
                let allowed: std::collections::HashSet<Pick> =
                    ev.evaluate(&limit_patterns(l)?)?.into_iter().collect();
                pattern::all_hosts(&self.data)
                    .into_iter()
                    .filter(|h| allowed.contains(&Pick::Host(*h)))
                    .collect()
            }
        };
        let available: std::collections::HashSet<HostId> = hosts.iter().copied().collect();
        let mut results = Map::new();
        let mut seen = std::collections::HashSet::new();
        self.format_group(ALL, &available, &mut seen, &mut results);
        let mut hostvars = Map::new();
        for h in hosts {
            let name = &self.data.hosts[h].name;
            let vars = remove_internal(self.host_vars(name)?);
            if !vars.is_empty() {
                hostvars.insert(name.clone(), Value::Object(vars));
            }
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        meta.insert("profile".into(), Value::from("inventory_legacy"));
        results.insert("_meta".into(), Value::Object(meta));
        Ok(Value::Object(results))
    }

    fn format_group(
        &self,
        g: usize,
        available: &std::collections::HashSet<HostId>,
        seen: &mut std::collections::HashSet<usize>,
        results: &mut Map<String, Value>,
    ) {
        let grp = &self.data.groups[g];
        let mut entry = Map::new();
        if g != ALL {
            let hosts: Vec<Value> = grp
                .hosts
                .iter()
                .filter(|h| available.contains(h))
                .map(|h| Value::from(self.data.hosts[*h].name.clone()))
                .collect();
            if !hosts.is_empty() {
                entry.insert("hosts".into(), Value::Array(hosts));
            }
        }
        let children: Vec<Value> = grp
            .children
            .iter()
            .map(|c| Value::from(self.data.groups[*c].name.clone()))
            .collect();
        for &c in &grp.children {
            if !seen.contains(&c) {
                self.format_group(c, available, seen, results);
                seen.insert(c);
            }
        }
        if !children.is_empty() {
            entry.insert("children".into(), Value::Array(children));
        }
        if entry.is_empty() {
            results.remove(&grp.name);
        } else {
            results.insert(grp.name.clone(), Value::Object(entry));
        }
    }

    /// `ansible-inventory --host NAME`: the variables of the one host `name` matches,
    /// unsafe markers removed, internal variables left out.
    pub fn host_json(&self, name: &str) -> Result<Value, InventoryError> {
        let hosts = self.select(name)?;
        if hosts.len() != 1 {
            return Err(InventoryError::BadPattern {
                pattern: name.to_string(),
                reason: format!(
                    "--host needs exactly one host, and this matches {}",
                    hosts.len()
                ),
            });
        }
        Ok(strip_unsafe(&Value::Object(remove_internal(
            self.host_vars(&hosts[0])?,
        ))))
    }

    /// A group's own variables as `ansible-inventory --graph --vars` shows them:
    /// inventory file vars, then group_vars/ next to the sources (and playbook dirs
    /// when `with_playbook_dirs`), plus `ansible_group_priority` when not 1.
    pub fn group_vars(
        &self,
        group: &str,
        with_playbook_dirs: bool,
    ) -> Result<Map<String, Value>, InventoryError> {
        let g = self.group_id(group)?;
        let grp = &self.data.groups[g];
        let mut out = grp.vars.clone();
        let mut dirs: Vec<&VarsDir> = self.inventory_vars.iter().collect();
        if with_playbook_dirs {
            dirs.extend(self.playbook_vars.iter());
        }
        for d in dirs {
            if let Some(m) = d.group(&grp.name) {
                for (k, v) in m {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        if grp.priority != 1 {
            out.insert("ansible_group_priority".into(), Value::from(grp.priority));
        }
        Ok(remove_internal(out))
    }

    fn group_id(&self, group: &str) -> Result<usize, InventoryError> {
        self.data
            .group(group)
            .ok_or_else(|| InventoryError::UnknownGroup {
                group: group.to_string(),
                suggestion: pattern::did_you_mean(
                    group,
                    self.data.groups.iter().map(|g| g.name.as_str()),
                ),
            })
    }

    /// `ansible-inventory --graph GROUP [--vars]` text (without the final newline).
    pub fn graph(
        &self,
        group: &str,
        show_vars: bool,
        with_playbook_dirs: bool,
    ) -> Result<String, InventoryError> {
        let g = self.group_id(group)?;
        let mut lines = Vec::new();
        self.graph_group(g, 0, show_vars, with_playbook_dirs, &mut lines)?;
        Ok(lines.join("\n"))
    }

    fn graph_group(
        &self,
        g: usize,
        depth: usize,
        show_vars: bool,
        with_playbook_dirs: bool,
        lines: &mut Vec<String>,
    ) -> Result<(), InventoryError> {
        let grp = &self.data.groups[g];
        lines.push(graph_name(&format!("@{}:", grp.name), depth));
        let depth = depth + 1;
        for &c in &grp.children {
            self.graph_group(c, depth, show_vars, with_playbook_dirs, lines)?;
        }
        if g != ALL {
            for &h in &grp.hosts {
                let name = &self.data.hosts[h].name;
                lines.push(graph_name(name, depth));
                if show_vars {
                    show_vars_lines(&remove_internal(self.host_vars(name)?), depth + 1, lines);
                }
            }
        }
        if show_vars {
            show_vars_lines(
                &self.group_vars(&grp.name, with_playbook_dirs)?,
                depth,
                lines,
            );
        }
        Ok(())
    }
}

fn graph_name(name: &str, depth: usize) -> String {
    if depth == 0 {
        name.to_string()
    } else {
        format!("{}--{name}", "  |".repeat(depth))
    }
}

fn show_vars_lines(vars: &Map<String, Value>, depth: usize, lines: &mut Vec<String>) {
    let mut keys: Vec<&String> = vars.keys().collect();
    keys.sort();
    for k in keys {
        if let Some(v) = vars.get(k) {
            lines.push(graph_name(&format!("{{{k} = {}}}", py_str(v)), depth));
        }
    }
}

fn remove_internal(mut m: Map<String, Value>) -> Map<String, Value> {
    for k in INTERNAL_VARS {
        m.shift_remove(*k);
    }
    m
}

/// Ansible's `subset()`: a limit is a pattern; `@file` terms read one pattern a line.
fn limit_patterns(limit: &str) -> Result<Vec<String>, InventoryError> {
    let mut out = Vec::new();
    for x in pattern::split_host_pattern(limit) {
        if let Some(file) = x.strip_prefix('@') {
            let path = PathBuf::from(file);
            if path.is_dir() {
                return Err(InventoryError::Invalid {
                    path,
                    message: "a limit starting with @ must name a file, not a directory".into(),
                });
            }
            let text = std::fs::read_to_string(&path).map_err(|source| InventoryError::Io {
                path: path.clone(),
                source,
            })?;
            out.extend(
                text.split('\n')
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
        } else {
            out.push(x);
        }
    }
    Ok(out)
}

fn ini_error(path: &Path, ie: ini::IniError) -> InventoryError {
    match ie.cycle {
        Some((parent, child)) => InventoryError::GroupCycle {
            path: path.to_path_buf(),
            line: Some(ie.line),
            parent,
            child,
        },
        None => InventoryError::Ini {
            path: path.to_path_buf(),
            line: ie.line,
            text: ie.text,
            message: ie.message,
        },
    }
}

/// Ansible's fallback for INI files that are not UTF-8: comment lines (first byte
/// `#` or `;`) may hold anything; any other line must be UTF-8.
fn ini_text_from_bytes(path: &Path, bytes: &[u8]) -> Result<String, InventoryError> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' || bytes[i] == b'\r' {
            lines.push(&bytes[start..i]);
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    if start < bytes.len() {
        lines.push(&bytes[start..]);
    }
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if matches!(line.first(), Some(b'#' | b';')) {
            out.push(String::new());
            continue;
        }
        match std::str::from_utf8(line) {
            Ok(t) => out.push(t.to_string()),
            Err(_) => {
                return Err(InventoryError::Ini {
                    path: path.to_path_buf(),
                    line: n + 1,
                    text: String::from_utf8_lossy(line).into_owned(),
                    message: "this line is not UTF-8 text; save the file as UTF-8".into(),
                })
            }
        }
    }
    Ok(out.join("\n"))
}

fn data_error(path: &Path, line: Option<usize>, e: DataError) -> InventoryError {
    match e {
        DataError::Cycle { parent, child } => InventoryError::GroupCycle {
            path: path.to_path_buf(),
            line,
            parent,
            child,
        },
        other => InventoryError::Invalid {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        std::fs::write(&p, text).ok();
        p
    }

    #[test]
    fn precedence_follows_ansible() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let inv = write(
            t.path(),
            "hosts",
            "[parent:children]\nchild\n[child]\nh1 hv=inv\n[aa]\nh1\n[zz]\nh1\n[all:vars]\na=all_inv\nhv=all\n[parent:vars]\np=parent\nc=parent\n[child:vars]\nc=child\na=child_inv\n[aa:vars]\nprio=aa\nansible_group_priority=10\n[zz:vars]\nprio=zz\n",
        );
        write(t.path(), "group_vars/all.yml", "a: all_file\nf: all_file\n");
        write(t.path(), "group_vars/parent.yml", "f: parent_file\n");
        write(t.path(), "host_vars/h1/a.yml", "hv: a\n");
        write(t.path(), "host_vars/h1/b.yml", "hv: b\n");
        let inv = Inventory::load(&[inv])?;
        let v = inv.host_vars("h1")?;
        // group_vars/all beats inventory-file group vars of any group.
        assert_eq!(v["a"], json!("all_file"));
        // child group beats parent group.
        assert_eq!(v["c"], json!("child"));
        // higher ansible_group_priority wins at the same depth.
        assert_eq!(v["prio"], json!("aa"));
        // group_vars/GROUP beats group_vars/all.
        assert_eq!(v["f"], json!("parent_file"));
        // host_vars dir files merge in sorted order, above inventory host vars.
        assert_eq!(v["hv"], json!("b"));
        assert!(v.get("ansible_group_priority").is_none());
        assert_eq!(inv.group_names("h1"), ["aa", "child", "parent", "zz"]);
        Ok(())
    }

    #[test]
    fn several_sources_merge_in_order() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let a = write(t.path(), "a/inv.ini", "[web]\nw1 x=1\n");
        let b = write(
            t.path(),
            "b/inv.yml",
            "web:\n  hosts:\n    w1: {x: 2}\n    w2:\n",
        );
        let inv = Inventory::load(&[a, b])?;
        assert_eq!(inv.select("web")?, ["w1", "w2"]);
        assert_eq!(inv.host_vars("w1")?["x"], json!(2));
        Ok(())
    }

    #[test]
    fn missing_source_says_what_to_do() {
        let e = Inventory::load(&[PathBuf::from("/nonexistent/inv")])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("inventory source '/nonexistent/inv' does not exist; pass -i with a file or directory")
        );
    }

    #[test]
    fn host_list_and_implicit_localhost() -> Result<(), Box<dyn std::error::Error>> {
        let inv = Inventory::load(&[PathBuf::from("a.example,b:2222,")])?;
        assert_eq!(inv.select("all")?, ["a.example", "b"]);
        assert_eq!(inv.host_vars("b")?["ansible_port"], json!(2222));
        assert_eq!(inv.select("localhost")?, ["localhost"]);
        assert_eq!(
            inv.host_vars("localhost")?["ansible_connection"],
            json!("local")
        );
        assert!(matches!(
            inv.host_vars("nope"),
            Err(InventoryError::UnknownHost { .. })
        ));
        Ok(())
    }

    #[test]
    fn cycles_are_reported_with_the_line() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let p = write(
            t.path(),
            "inv.ini",
            "[a]\n[b]\n[a:children]\nb\n[b:children]\na\n",
        );
        match Inventory::load(&[p]) {
            Err(InventoryError::GroupCycle {
                line,
                parent,
                child,
                ..
            }) => {
                assert_eq!((line, parent.as_str(), child.as_str()), (Some(6), "b", "a"));
            }
            other => panic!("expected a cycle error, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn yaml_inventory_errors_keep_positions() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let p = write(t.path(), "inv.yml", "all:\n  hosts:\n    h1: {a: 1\n");
        let msg = Inventory::load(&[p])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("inv.yml:"), "{msg}");
        let re = regex::Regex::new(r"inv\.yml:\d+:\d+: ")?;
        assert!(re.is_match(&msg), "{msg}");
        Ok(())
    }
}
