//! Roles: where they are found, what a role folder holds (tasks, handlers, defaults, vars,
//! meta dependencies), `roles:` entries, and Ansible's run-a-role-once-per-play rule.

use super::ast::{Inherited, Origin, Role, RoleRef, TaskItem};
use super::error::{closest, did_you_mean, list_paths, ErrorKind, LoadError};
use super::keywords::{self, Kw};
use super::node::{self, bad, err, is_template, key, origin, type_name, Node, Result};
use super::tasks::{flatten_handlers, normalize, read_yaml, Loader};
use crate::inventory::SpannedValue;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// `tasks_from` / `handlers_from` / `defaults_from` / `vars_from` of import_role and
/// include_role: which file of the role's folders to read instead of `main`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleFrom {
    pub tasks_from: Option<String>,
    pub handlers_from: Option<String>,
    pub defaults_from: Option<String>,
    pub vars_from: Option<String>,
}

impl RoleFrom {
    /// From the arguments of an import_role / include_role task.
    pub fn from_json_args(args: &Map<String, Value>) -> RoleFrom {
        let get = |k: &str| args.get(k).map(crate::inventory::py_str);
        RoleFrom {
            tasks_from: get("tasks_from"),
            handlers_from: get("handlers_from"),
            defaults_from: get("defaults_from"),
            vars_from: get("vars_from"),
        }
    }

    pub(crate) fn from_args(file: &Path, at: &Node, args: &Map<String, Value>) -> Result<RoleFrom> {
        let from = RoleFrom::from_json_args(args);
        for v in [
            &from.tasks_from,
            &from.handlers_from,
            &from.defaults_from,
            &from.vars_from,
        ]
        .into_iter()
        .flatten()
        {
            if is_template(v) {
                return Err(err(
                    ErrorKind::Unsupported,
                    file,
                    at,
                    format!("'{v}': a template in *_from is not supported for roles read before the play runs; use include_role"),
                ));
            }
        }
        Ok(from)
    }

    fn is_default(&self) -> bool {
        *self == RoleFrom::default()
    }
}

/// `ANSIBLE_ROLES_PATH` (colon-separated), or Ansible's default roles path.
pub(crate) fn roles_path_from_env() -> Vec<PathBuf> {
    match std::env::var("ANSIBLE_ROLES_PATH") {
        Ok(v) if !v.trim().is_empty() => v
            .split(':')
            .filter(|s| !s.is_empty())
            .map(expand_home)
            .collect(),
        _ => [
            "~/.ansible/roles",
            "/usr/share/ansible/roles",
            "/etc/ansible/roles",
        ]
        .iter()
        .map(|s| expand_home(s))
        .collect(),
    }
}

fn expand_home(s: &str) -> PathBuf {
    match s.strip_prefix("~/") {
        Some(rest) => dirs::home_dir().unwrap_or_default().join(rest),
        None => PathBuf::from(s),
    }
}

/// A file of a role folder: `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json`.
fn role_file(dir: &Path, name: &str) -> Option<PathBuf> {
    ["", ".yml", ".yaml", ".json"]
        .iter()
        .map(|ext| dir.join(format!("{name}{ext}")))
        .find(|p| p.is_file())
}

/// Meta of a role (`meta/main.yml`).
struct Meta {
    dependencies: Vec<Node>,
    allow_duplicates: bool,
    file: PathBuf,
}

/// One `roles:` / `dependencies:` entry, read.
pub(crate) struct Entry {
    pub name: String,
    pub params: Map<String, Value>,
    pub keywords: Inherited,
    pub origin: Origin,
}

/// Reads a role entry: `name`, `{role: name, ...}`, `{name: ...}`; keywords apply to the
/// role, every other key is a role parameter.
pub(crate) fn entry(file: &Path, n: &Node) -> Result<Entry> {
    let at = origin(file, n);
    if let Some(name) = node::scalar_text(n).filter(|_| !matches!(n.value, SpannedValue::Map(_))) {
        return Ok(Entry {
            name,
            params: Map::new(),
            keywords: Inherited::default(),
            origin: at,
        });
    }
    let Some(pairs) = n.as_map() else {
        return Err(bad(
            file,
            n,
            format!(
                "a role entry must be a role name or a mapping with 'role:', not {}",
                type_name(n)
            ),
        ));
    };
    let role_key = pairs
        .iter()
        .find(|(k, _)| k.as_str() == Some("role"))
        .or_else(|| pairs.iter().find(|(k, _)| k.as_str() == Some("name")));
    let Some((rk, rv)) = role_key else {
        return Err(bad(
            file,
            n,
            "this role entry names no role; write `- role: NAME` (other keys are its parameters)",
        ));
    };
    let name = node::scalar_text(rv)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(file, rv, "the role name must be a string"))?;
    let mut kw = Kw::default();
    let mut params = Map::new();
    for (k, v) in pairs {
        let kname = key(k);
        let _ = rk;
        if kname == "role" || kname == "name" {
            continue;
        }
        if keywords::BASE.contains(&kname.as_str())
            || keywords::ROLE_ENTRY.contains(&kname.as_str())
        {
            if kname == "delegate_facts" {
                node::opt_bool(file, &kname, v)?;
                continue;
            }
            if kw.read(file, &kname, k, v, true)? {
                continue;
            }
        }
        params.insert(kname, v.to_json());
    }
    Ok(Entry {
        name,
        params,
        keywords: kw.finish(),
        origin: origin(file, rk),
    })
}

impl Loader {
    /// Where role `name` is: `<play dir>/roles`, `<play dir>/../playbooks/roles`, the roles
    /// path (`ANSIBLE_ROLES_PATH`), the folder of the role that depends on it, the play dir.
    pub(crate) fn find_role(
        &self,
        name: &str,
        at: &Origin,
        role_basedir: Option<&Path>,
    ) -> Result<PathBuf> {
        let candidates = role_candidates(name, &self.play.dir, &self.roles_path, role_basedir);
        if let Some(p) = candidates.iter().find(|p| p.is_dir()) {
            return Ok(p.clone());
        }
        let fqcn = name.split('.').count() == 3 && !name.contains('/');
        let hint = if fqcn {
            "; roles from collections (namespace.collection.role) are not supported, put the role in roles/"
        } else {
            ""
        };
        let near = near_role(name, &candidates);
        Err(LoadError::new(
            ErrorKind::Missing,
            at.clone(),
            format!(
                "role '{name}' not found{}; looked in: {}{hint}",
                did_you_mean(near.as_deref()),
                list_paths(&candidates)
            ),
        ))
    }

    /// Loads role `name` with its dependencies: the roles in run order (dependencies first,
    /// the role last), leaving out those already in the play with the same parameters
    /// (unless a role allows duplicates). Its handlers go to the play's role handlers.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn role_tree(
        &mut self,
        name: &str,
        at: &Origin,
        role_basedir: Option<&Path>,
        params: Map<String, Value>,
        keywords: Inherited,
        from: &RoleFrom,
        from_include: bool,
        allow_duplicates: Option<bool>,
    ) -> Result<Vec<Role>> {
        let path = self.find_role(name, at, role_basedir)?;
        let norm = normalize(&path);
        if self.roles.contains(&norm) {
            let chain: Vec<String> = self
                .roles
                .iter()
                .skip_while(|p| **p != norm)
                .chain(std::iter::once(&norm))
                .map(|p| {
                    p.file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
                .collect();
            return Err(LoadError::new(
                ErrorKind::BadValue,
                at.clone(),
                format!(
                    "role dependency cycle: {}; remove one of the dependencies",
                    chain.join(" → ")
                ),
            ));
        }
        let role_name = if name.contains('/') {
            path.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| name.to_string())
        } else {
            name.to_string()
        };
        let meta = self.meta(&path)?;
        let allow = allow_duplicates.unwrap_or(meta.allow_duplicates);
        let identity = serde_json::json!({
            "path": norm.display().to_string(),
            "params": params,
            "when": keywords.when,
            "tags": keywords.tags,
            "vars": keywords.vars,
            "from": [from.tasks_from, from.handlers_from, from.defaults_from, from.vars_from],
            "from_include": from_include,
        })
        .to_string();
        if !allow && self.play.seen_roles.contains(&identity) {
            return Ok(Vec::new());
        }
        self.play.seen_roles.push(identity);

        let rref = RoleRef {
            name: role_name.clone(),
            path: path.clone(),
        };
        self.roles.push(norm);
        let r = self.role_body(&rref, at, &meta, params, keywords, from);
        self.roles.pop();
        r
    }

    fn role_body(
        &mut self,
        rref: &RoleRef,
        at: &Origin,
        meta: &Meta,
        params: Map<String, Value>,
        keywords: Inherited,
        from: &RoleFrom,
    ) -> Result<Vec<Role>> {
        let path = &rref.path;
        let mut out = Vec::new();
        for dep in &meta.dependencies {
            let e = entry(&meta.file, dep)?;
            // What the parent's entry says (when, tags, become ...) applies to its dependencies.
            let kw = keywords::inherit(&strip_vars(&keywords), &e.keywords);
            let parent_dir = path.parent().map(Path::to_path_buf);
            out.extend(self.role_tree(
                &e.name,
                &e.origin,
                parent_dir.as_deref(),
                e.params,
                kw,
                &RoleFrom::default(),
                false,
                None,
            )?);
        }
        let tasks_dir = path.join("tasks");
        let tasks_name = from.tasks_from.as_deref().unwrap_or("main");
        let tasks: Vec<TaskItem> = match role_file(&tasks_dir, tasks_name) {
            Some(f) => self.tasks_file(&f, Some(rref.clone()), false, Some(at))?,
            None if from.tasks_from.is_some() => {
                return Err(missing_from(at, rref, "tasks", tasks_name))
            }
            None => Vec::new(),
        };
        let handlers_name = from.handlers_from.as_deref().unwrap_or("main");
        let handlers = match role_file(&path.join("handlers"), handlers_name) {
            Some(f) => {
                let items = self.tasks_file(&f, Some(rref.clone()), true, Some(at))?;
                flatten_handlers(items, &Inherited::default())?
            }
            None if from.handlers_from.is_some() => {
                return Err(missing_from(at, rref, "handlers", handlers_name))
            }
            None => Vec::new(),
        };
        let defaults = self.role_vars(at, rref, "defaults", from.defaults_from.as_deref())?;
        let vars = self.role_vars(at, rref, "vars", from.vars_from.as_deref())?;
        if !self.play.checking {
            self.play.role_handlers.extend(handlers.iter().cloned());
        }
        out.push(Role {
            name: rref.name.clone(),
            path: path.clone(),
            params,
            keywords,
            defaults,
            vars,
            tasks,
            handlers,
            origin: at.clone(),
        });
        let _ = from.is_default();
        Ok(out)
    }

    /// `defaults/main.yml` or `vars/main.yml` (or `*_from`; `main/` may be a folder of files).
    fn role_vars(
        &mut self,
        at: &Origin,
        rref: &RoleRef,
        sub: &str,
        from: Option<&str>,
    ) -> Result<Map<String, Value>> {
        let dir = rref.path.join(sub);
        let name = from.unwrap_or("main");
        let files: Vec<PathBuf> = match role_file(&dir, name) {
            Some(f) => vec![f],
            None if dir.join(name).is_dir() => {
                let mut fs: Vec<PathBuf> = std::fs::read_dir(dir.join(name))
                    .map_err(|e| {
                        LoadError::new(
                            ErrorKind::Io,
                            at.clone(),
                            format!("cannot read {}: {e}", dir.join(name).display()),
                        )
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.is_file()
                            && matches!(
                                p.extension().and_then(|e| e.to_str()),
                                Some("yml" | "yaml" | "json") | None
                            )
                    })
                    .collect();
                fs.sort();
                fs
            }
            None if from.is_some() => return Err(missing_from(at, rref, sub, name)),
            None => Vec::new(),
        };
        let mut out = Map::new();
        for f in files {
            if let Some(n) = read_yaml(&f, Some(at))? {
                if n.as_map().is_none() && !n.is_null() {
                    return Err(bad(
                        &f,
                        &n,
                        format!(
                            "{sub}/{} must be a mapping of variable names to values, not {}",
                            f.file_name().unwrap_or_default().to_string_lossy(),
                            type_name(&n)
                        ),
                    ));
                }
                out.extend(node::vars(&f, sub, &n)?);
            }
        }
        Ok(out)
    }

    fn meta(&mut self, path: &Path) -> Result<Meta> {
        let mut meta = Meta {
            dependencies: Vec::new(),
            allow_duplicates: false,
            file: path.join("meta").join("main.yml"),
        };
        let Some(f) = role_file(&path.join("meta"), "main") else {
            return Ok(meta);
        };
        meta.file = f.clone();
        let Some(n) = read_yaml(&f, None)? else {
            return Ok(meta);
        };
        let pairs = node::map(&f, &n, "a role's meta/main.yml")?;
        for (k, v) in pairs {
            let name = key(k);
            match name.as_str() {
                "dependencies" => match &v.value {
                    SpannedValue::Seq(items) => meta.dependencies = items.clone(),
                    SpannedValue::Scalar(Value::Null) => {}
                    _ => {
                        return Err(bad(
                            &f,
                            v,
                            format!(
                                "'dependencies' must be a list of roles, not {}",
                                type_name(v)
                            ),
                        ))
                    }
                },
                "allow_duplicates" => {
                    meta.allow_duplicates = node::opt_bool(&f, &name, v)?.unwrap_or(false)
                }
                "galaxy_info" | "collections" | "argument_specs" => {}
                _ => {
                    let known = [
                        "dependencies",
                        "allow_duplicates",
                        "galaxy_info",
                        "collections",
                        "argument_specs",
                    ];
                    return Err(err(
                        ErrorKind::UnknownKeyword,
                        &f,
                        k,
                        format!(
                            "unknown role meta key '{name}'{}; meta/main.yml takes {}",
                            did_you_mean(closest(&name, known.iter().copied())),
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(meta)
    }
}

/// Vars of a role entry are the role's own, not its dependencies'.
fn strip_vars(kw: &Inherited) -> Inherited {
    Inherited {
        vars: Map::new(),
        ..kw.clone()
    }
}

fn missing_from(at: &Origin, rref: &RoleRef, sub: &str, name: &str) -> LoadError {
    LoadError::new(
        ErrorKind::Missing,
        at.clone(),
        format!(
            "role '{}' has no {sub} file '{name}' (looked for {name}, {name}.yml, {name}.yaml in {})",
            rref.name,
            rref.path.join(sub).display()
        ),
    )
}

/// The role, in the folders searched for `name`, whose name is closest to it (a folder with
/// `tasks/` or `meta/` counts as a role).
fn near_role(name: &str, candidates: &[PathBuf]) -> Option<String> {
    if name.contains('/') {
        return None;
    }
    let mut roles: Vec<String> = vec![];
    for dir in candidates.iter().filter_map(|c| c.parent()) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.join("tasks").is_dir() || p.join("meta").is_dir() {
                if let Some(n) = p.file_name().and_then(|n| n.to_str()) {
                    if !roles.iter().any(|r| r == n) {
                        roles.push(n.to_string());
                    }
                }
            }
        }
    }
    roles.sort();
    closest(name, roles.iter().map(String::as_str)).map(str::to_string)
}

/// Where a role may be, in search order.
pub fn role_candidates(
    name: &str,
    play_dir: &Path,
    roles_path: &[PathBuf],
    role_basedir: Option<&Path>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut add = |p: PathBuf| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    let n = Path::new(name);
    if n.is_absolute() {
        add(n.to_path_buf());
        return out;
    }
    if let Some(rest) = name.strip_prefix("~/") {
        add(dirs::home_dir().unwrap_or_default().join(rest));
        return out;
    }
    add(play_dir.join("roles").join(n));
    if let Some(parent) = play_dir.parent() {
        add(parent.join("playbooks").join("roles").join(n));
    }
    for p in roles_path {
        add(p.join(n));
    }
    if let Some(b) = role_basedir {
        if let Some(parent) = b.parent() {
            add(parent.join(n));
        }
    }
    add(play_dir.join(n));
    out
}

/// Loads a role for `include_role` at run time: the role with its dependencies' tasks
/// first (each in a block carrying that dependency's scope, like `import_role`) and all
/// their handlers. `parent` is the role the include is written in (its folder is searched).
pub fn load_role(
    name: &str,
    play_dir: &Path,
    from: &RoleFrom,
    parent: Option<&RoleRef>,
) -> std::result::Result<Role, LoadError> {
    let mut l = Loader::new();
    l.play.dir = play_dir.to_path_buf();
    let at = Origin {
        file: play_dir.to_path_buf(),
        line: 0,
        column: 0,
    };
    let roles = l.role_tree(
        name,
        &at,
        parent.map(|r| r.path.as_path()),
        Map::new(),
        Inherited::default(),
        from,
        true,
        Some(true),
    )?;
    let handlers: Vec<_> = roles.iter().flat_map(|r| r.handlers.clone()).collect();
    let block = super::tasks::roles_to_block(roles).expect("role_tree returns the role itself");
    let mut role = *block.role.expect("roles_to_block sets the role");
    role.tasks = block.block;
    role.handlers = handlers;
    Ok(role)
}
