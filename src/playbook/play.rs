//! Playbooks and plays: `import_playbook`, play keywords, roles, task sections, handlers,
//! and the check that every `notify:` names a handler of the play.

use super::ast::{Play, Playbook, Serial, Strategy, Task, TaskItem};
use super::error::{closest, did_you_mean, ErrorKind, LoadError};
use super::keywords::{self, Kw};
use super::node::{self, bad, err, is_template, key, origin, type_name, Node, Result};
use super::roles::{entry, RoleFrom};
use super::tasks::{
    flatten_handlers, handler_names, normalize, read_yaml, Loader, PlayState, Scope,
};
use crate::inventory::SpannedValue;
use serde_json::Value;
use std::path::Path;

/// What an `import_playbook` line adds to the plays it imports.
struct ImportKw {
    vars: serde_json::Map<String, Value>,
    tags: Vec<String>,
    when: Vec<String>,
}

impl Loader {
    /// A playbook file: its plays, `import_playbook` expanded.
    pub(crate) fn playbook_file(
        &mut self,
        path: &Path,
        from: Option<&super::ast::Origin>,
    ) -> Result<Vec<Play>> {
        let norm = normalize(path);
        if self.files.contains(&norm) {
            let chain: Vec<String> = self
                .files
                .iter()
                .skip_while(|p| **p != norm)
                .chain(std::iter::once(&norm))
                .map(|p| p.display().to_string())
                .collect();
            let msg = format!(
                "import_playbook cycle: {}; a playbook cannot import itself again",
                chain.join(" → ")
            );
            return Err(match from {
                Some(o) => LoadError::new(ErrorKind::BadValue, o.clone(), msg),
                None => LoadError::file(ErrorKind::BadValue, path, msg),
            });
        }
        let root = read_yaml(path, from)?;
        let Some(root) = root else {
            return Err(LoadError::file(
                ErrorKind::Missing,
                path,
                "empty playbook, nothing to do; a playbook is a list of plays (`- hosts: all`)",
            ));
        };
        let Some(items) = root.as_seq() else {
            return Err(bad(
                path,
                &root,
                format!(
                    "a playbook must be a list of plays (`- hosts: all`), not {}",
                    type_name(&root)
                ),
            ));
        };
        self.files.push(norm);
        let mut plays = Vec::new();
        let r = (|| {
            for it in items {
                let Some(pairs) = it.as_map() else {
                    return Err(bad(
                        path,
                        it,
                        format!(
                            "a play must be a mapping (`- hosts: ...`), not {}",
                            type_name(it)
                        ),
                    ));
                };
                let import = pairs.iter().find(|(k, _)| {
                    matches!(
                        k.as_str(),
                        Some("import_playbook" | "ansible.builtin.import_playbook")
                    )
                });
                if let Some((k, v)) = import {
                    plays.extend(self.import_playbook(path, pairs, k, v)?);
                } else if let Some((k, _)) = pairs.iter().find(|(k, _)| {
                    matches!(k.as_str(), Some("include" | "ansible.builtin.include"))
                }) {
                    return Err(bad(
                        path,
                        k,
                        "'include' of a playbook was removed from Ansible; use import_playbook",
                    ));
                } else {
                    plays.push(self.play(path, it, pairs)?);
                }
            }
            Ok(())
        })();
        self.files.pop();
        r.map(|_| plays)
    }

    fn import_playbook(
        &mut self,
        path: &Path,
        pairs: &[(Node, Node)],
        k: &Node,
        v: &Node,
    ) -> Result<Vec<Play>> {
        let target = node::scalar_text(v)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(path, v, "import_playbook needs a playbook file name"))?;
        if is_template(&target) {
            return Err(err(
                ErrorKind::Unsupported,
                path,
                v,
                format!("import_playbook: '{target}' is a template; homelab reads imports before any variable is known, write the file name"),
            ));
        }
        let mut imp = ImportKw {
            vars: Default::default(),
            tags: Vec::new(),
            when: Vec::new(),
        };
        for (kk, vv) in pairs {
            let name = key(kk);
            match name.as_str() {
                "import_playbook" | "ansible.builtin.import_playbook" | "name" => {}
                "vars" => imp.vars = node::vars(path, "vars", vv)?,
                "tags" => imp.tags = node::tags(path, vv)?,
                "when" => imp.when = node::conditions(path, "when", vv)?,
                _ => {
                    let known = ["import_playbook", "name", "vars", "tags", "when"];
                    return Err(err(
                        ErrorKind::UnknownKeyword,
                        path,
                        kk,
                        format!(
                            "unknown import_playbook keyword '{name}'{}; import_playbook takes {}",
                            did_you_mean(closest(&name, known.iter().copied())),
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let file = if Path::new(&target).is_absolute() {
            Path::new(&target).to_path_buf()
        } else {
            dir.join(&target)
        };
        let at = origin(path, k);
        if !file.is_file() {
            return Err(LoadError::new(
                ErrorKind::Missing,
                at,
                format!(
                    "imported playbook '{target}' not found (looked for {})",
                    file.display()
                ),
            ));
        }
        let mut plays = self.playbook_file(&file, Some(&at))?;
        for p in &mut plays {
            // Import vars win over the play's (Ansible: `play.vars | import.vars`).
            p.keywords.vars.extend(imp.vars.clone());
            for t in &imp.tags {
                if !p.keywords.tags.contains(t) {
                    p.keywords.tags.push(t.clone());
                }
            }
            p.keywords.when = imp.when.iter().chain(&p.keywords.when).cloned().collect();
        }
        Ok(plays)
    }

    fn play(&mut self, path: &Path, n: &Node, pairs: &[(Node, Node)]) -> Result<Play> {
        self.play = PlayState {
            dir: path.parent().unwrap_or(Path::new("")).to_path_buf(),
            ..PlayState::default()
        };
        let mut play = Play {
            dir: self.play.dir.clone(),
            origin: origin(path, n),
            ..Play::default()
        };
        let mut kw = Kw::default();
        let mut hosts: Option<&Node> = None;
        let mut sections: [Option<&Node>; 5] = [None; 5]; // roles, pre_tasks, tasks, post_tasks, handlers
        for (k, v) in pairs {
            let name = key(k);
            match name.as_str() {
                "hosts" => hosts = Some(v),
                "name" => play.name = node::opt_string(path, "name", v)?,
                "roles" => sections[0] = Some(v),
                "pre_tasks" => sections[1] = Some(v),
                "tasks" => sections[2] = Some(v),
                "post_tasks" => sections[3] = Some(v),
                "handlers" => sections[4] = Some(v),
                "vars_files" => {
                    play.vars_files = match &v.value {
                        SpannedValue::Seq(items) => items.iter().map(Node::to_json).collect(),
                        SpannedValue::Scalar(Value::Null) => Vec::new(),
                        _ if v.as_str().is_some() => vec![v.to_json()],
                        _ => {
                            return Err(bad(
                                path,
                                v,
                                format!("'vars_files' must be a file name or a list of them, not {}", type_name(v)),
                            ))
                        }
                    }
                }
                "gather_facts" => play.gather_facts = node::opt_bool(path, &name, v)?,
                "gather_subset" => {
                    play.gather_subset = match v.as_str() {
                        Some(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
                        None => node::string_list(path, &name, v)?,
                    }
                }
                "gather_timeout" => play.gather_timeout = Some(v.to_json()),
                "serial" => play.serial = serial(path, v)?,
                "max_fail_percentage" => play.max_fail_percentage = percentage(path, v)?,
                "strategy" => play.strategy = strategy(path, v)?,
                "force_handlers" => {
                    play.force_handlers = node::opt_bool(path, &name, v)?.unwrap_or(false)
                }
                "order" => order(path, v)?,
                "when" => {
                    return Err(err(
                        ErrorKind::UnknownKeyword,
                        path,
                        k,
                        "a play cannot have 'when'; put the condition on its tasks (or a block around them), or on import_playbook",
                    ))
                }
                _ if kw.read(path, &name, k, v, false)? => {}
                _ => {
                    let all = keywords::BASE
                        .iter()
                        .chain(keywords::PLAY)
                        .copied()
                        .filter(|k| keywords::unsupported(k).is_none());
                    let hint = if crate::modules::registry::lookup(&name).is_some() {
                        format!("; '{name}' is a module: this looks like a list of tasks, not a playbook (a task goes under a play's 'tasks:')")
                    } else {
                        match closest(&name, all) {
                            Some(s) => format!(" (did you mean '{s}'?)"),
                            None => "; a play takes hosts, name, vars, roles, tasks, handlers, become, ...".into(),
                        }
                    };
                    return Err(err(
                        ErrorKind::UnknownKeyword,
                        path,
                        k,
                        format!("unknown play keyword '{name}'{hint}"),
                    ));
                }
            }
        }
        play.hosts =
            match hosts {
                None => {
                    return Err(err(
                        ErrorKind::Missing,
                        path,
                        n,
                        format!(
                        "this play{} has no 'hosts'; add `hosts: all` (or a group or host pattern)",
                        play.name.as_deref().map(|s| format!(" ('{s}')")).unwrap_or_default()
                    ),
                    ))
                }
                Some(h) => hosts_pattern(path, h)?,
            };
        play.keywords = kw.finish();

        let sc = Scope {
            file: path.to_path_buf(),
            role: None,
            handlers: false,
        };
        if let Some(v) = sections[0] {
            play.roles = self.roles_section(path, v)?;
        }
        if let Some(v) = sections[1] {
            play.pre_tasks = self.items(&sc, v, "'pre_tasks'")?;
        }
        if let Some(v) = sections[2] {
            play.tasks = self.items(&sc, v, "'tasks'")?;
        }
        if let Some(v) = sections[3] {
            play.post_tasks = self.items(&sc, v, "'post_tasks'")?;
        }
        let mut own_handlers = Vec::new();
        if let Some(v) = sections[4] {
            let hsc = Scope {
                handlers: true,
                ..sc.clone()
            };
            let items = self.items(&hsc, v, "'handlers'")?;
            own_handlers = flatten_handlers(items, &Default::default())?;
        }
        // A role used twice (other params, or import_role) brings the same handlers again:
        // one copy of each is enough to notify.
        for h in std::mem::take(&mut self.play.role_handlers) {
            if !play.handlers.iter().any(|x| x.origin == h.origin) {
                play.handlers.push(h);
            }
        }
        play.handlers.extend(own_handlers);
        self.check_notify(&play)?;
        Ok(play)
    }

    fn roles_section(&mut self, path: &Path, v: &Node) -> Result<Vec<super::ast::Role>> {
        let items: &[Node] = match &v.value {
            SpannedValue::Seq(items) => items,
            SpannedValue::Scalar(Value::Null) => &[],
            _ => {
                return Err(bad(
                    path,
                    v,
                    format!("'roles' must be a list of roles, not {}", type_name(v)),
                ))
            }
        };
        let mut out = Vec::new();
        for it in items {
            let e = entry(path, it)?;
            out.extend(self.role_tree(
                &e.name,
                &e.origin,
                None,
                e.params,
                e.keywords,
                &RoleFrom::default(),
                false,
                None,
            )?);
        }
        Ok(out)
    }

    /// Every `notify:` must name a handler of the play (its name, `role : name`, or a
    /// `listen` topic). Templated names are left to run time.
    fn check_notify(&self, play: &Play) -> Result<()> {
        if self.play.handlers_unknowable {
            return Ok(());
        }
        let mut names: Vec<String> = self.play.extra_handlers.clone();
        for h in &play.handlers {
            if h.name.as_deref().is_some_and(is_template) || h.listen.iter().any(|l| is_template(l))
            {
                return Ok(());
            }
            names.extend(handler_names(h));
        }
        for (n, at) in &self.play.notifies {
            if is_template(n) || names.contains(n) {
                continue;
            }
            let shown: Vec<String> = play
                .handlers
                .iter()
                .filter_map(|h| h.name.clone())
                .map(|s| format!("'{s}'"))
                .collect();
            let known = if shown.is_empty() {
                "this play has no handlers; add one under 'handlers:'".to_string()
            } else {
                format!("the play's handlers are {}", shown.join(", "))
            };
            return Err(LoadError::new(
                ErrorKind::Missing,
                at.clone(),
                format!(
                    "notify: no handler named '{n}'{}; {known} (a handler can also `listen:` to a topic)",
                    did_you_mean(closest(n, names.iter().map(String::as_str)))
                ),
            ));
        }
        Ok(())
    }
}

fn hosts_pattern(path: &Path, h: &Node) -> Result<String> {
    let s = match &h.value {
        SpannedValue::Seq(items) => {
            let mut parts = Vec::new();
            for it in items {
                parts.push(node::scalar_text(it).ok_or_else(|| {
                    bad(
                        path,
                        it,
                        format!(
                            "'hosts' entries must be host or group names, not {}",
                            type_name(it)
                        ),
                    )
                })?);
            }
            parts.join(",")
        }
        _ => node::scalar_text(h).unwrap_or_default(),
    };
    if s.trim().is_empty() {
        return Err(bad(
            path,
            h,
            "'hosts' is empty; give a host pattern like `all`, a group, or `web:&prod`",
        ));
    }
    Ok(s)
}

fn serial(path: &Path, v: &Node) -> Result<Vec<Serial>> {
    let one = |n: &Node| -> Result<Serial> {
        let fail = || {
            bad(
                path,
                n,
                format!(
                    "serial must be a number of hosts, a percentage like \"30%\", or a list of them, not {}",
                    node::describe(n)
                ),
            )
        };
        match &n.value {
            SpannedValue::Scalar(Value::Number(x)) => match x.as_u64() {
                Some(c) => Ok(Serial::Count(c as usize)),
                None => Err(fail()),
            },
            _ => {
                let s = n.as_str().ok_or_else(fail)?.trim();
                if is_template(s) {
                    return Err(err(
                        ErrorKind::Unsupported,
                        path,
                        n,
                        "a template in serial is not supported yet; write the number",
                    ));
                }
                if let Some(p) = s.strip_suffix('%') {
                    p.trim()
                        .parse::<u32>()
                        .map(Serial::Percent)
                        .map_err(|_| fail())
                } else {
                    s.parse::<usize>().map(Serial::Count).map_err(|_| fail())
                }
            }
        }
    };
    match &v.value {
        SpannedValue::Scalar(Value::Null) => Ok(Vec::new()),
        SpannedValue::Seq(items) => items.iter().map(one).collect(),
        _ => Ok(vec![one(v)?]),
    }
}

fn percentage(path: &Path, v: &Node) -> Result<Option<f64>> {
    let p = match &v.value {
        SpannedValue::Scalar(Value::Null) => return Ok(None),
        SpannedValue::Scalar(Value::Number(x)) => x.as_f64(),
        _ => v
            .as_str()
            .and_then(|s| s.trim().trim_end_matches('%').parse::<f64>().ok()),
    };
    match p {
        Some(p) if (0.0..=100.0).contains(&p) => Ok(Some(p)),
        _ => Err(bad(
            path,
            v,
            format!(
                "max_fail_percentage must be a number from 0 to 100, not {}",
                node::describe(v)
            ),
        )),
    }
}

fn strategy(path: &Path, v: &Node) -> Result<Strategy> {
    match node::scalar_text(v).as_deref() {
        None | Some("linear") => Ok(Strategy::Linear),
        Some("free") => Ok(Strategy::Free),
        Some(other @ ("host_pinned" | "debug")) => Err(err(
            ErrorKind::Unsupported,
            path,
            v,
            format!("strategy '{other}' is not supported; homelab runs 'linear' (the default) or 'free'"),
        )),
        Some(other) => Err(bad(
            path,
            v,
            format!(
                "unknown strategy '{other}'{}; use 'linear' (the default) or 'free'",
                did_you_mean(closest(other, ["linear", "free"]))
            ),
        )),
    }
}

fn order(path: &Path, v: &Node) -> Result<()> {
    match node::scalar_text(v).as_deref() {
        None | Some("inventory") => Ok(()),
        Some(other @ ("reverse_inventory" | "sorted" | "reverse_sorted" | "shuffle")) => Err(err(
            ErrorKind::Unsupported,
            path,
            v,
            format!("order '{other}' is not supported; homelab runs hosts in inventory order, remove 'order'"),
        )),
        Some(other) => Err(bad(
            path,
            v,
            format!("unknown order '{other}'; Ansible's orders are inventory, reverse_inventory, sorted, reverse_sorted, shuffle (homelab runs 'inventory')"),
        )),
    }
}

/// Loads a playbook: every play with its roles, tasks and handlers, imports expanded.
pub fn load_playbook(path: &Path) -> std::result::Result<Playbook, LoadError> {
    let mut l = Loader::new();
    let plays = l.playbook_file(path, None)?;
    Ok(Playbook {
        path: path.to_path_buf(),
        plays,
    })
}

/// Loads a tasks file for `include_tasks` at run time. `role` is the role the include is in
/// (nested `import_tasks` resolve in its `tasks/`).
pub fn load_tasks_file(
    path: &Path,
    role: Option<&super::ast::RoleRef>,
) -> std::result::Result<Vec<TaskItem>, LoadError> {
    let mut l = Loader::new();
    l.play.dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    l.play.checking = true;
    l.tasks_file(path, role.cloned(), false, None)
}

/// Handlers of a tasks file (an `include_tasks` under `handlers:` at run time).
pub fn load_handlers_file(
    path: &Path,
    role: Option<&super::ast::RoleRef>,
) -> std::result::Result<Vec<Task>, LoadError> {
    let mut l = Loader::new();
    l.play.dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    l.play.checking = true;
    let items = l.tasks_file(path, role.cloned(), true, None)?;
    flatten_handlers(items, &Default::default())
}
