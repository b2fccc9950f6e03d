//! Task lists: tasks, blocks, `import_tasks` / `import_role` (expanded now) and
//! `include_tasks` / `include_role` (kept as tasks, checked now, expanded at run time).

use super::ast::{Block, Inherited, LoopControl, Origin, RoleRef, Task, TaskItem};
use super::error::{closest, did_you_mean, distance, list_paths, ErrorKind, LoadError};
use super::keywords::{self, Kw};
use super::node::{self, bad, err, is_template, key, origin, type_name, Node, Result};
use super::roles::RoleFrom;
use super::splitter::parse_kv;
use crate::inventory::{load_spanned, SpannedValue};
use crate::modules::registry::{self, Spec};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Modules whose `k=v` text keeps everything but a few options as free-form text
/// (Ansible's `FREEFORM_ACTIONS`).
const FREEFORM: &[&str] = &["command", "shell", "raw", "script"];

/// `meta:` actions.
const META: &[&str] = &[
    "flush_handlers",
    "refresh_inventory",
    "noop",
    "clear_facts",
    "clear_host_errors",
    "end_play",
    "end_host",
    "end_batch",
    "end_role",
    "reset_connection",
];

/// What the loader knows about the play being loaded.
#[derive(Debug, Default)]
pub(crate) struct PlayState {
    /// The folder of the playbook file (roles and relative paths start here).
    pub dir: PathBuf,
    /// Identities of roles already in the play (Ansible runs a role once per play).
    pub seen_roles: Vec<String>,
    /// Handlers of `roles:` and `import_role`, in the order Ansible puts them before the
    /// play's own.
    pub role_handlers: Vec<Task>,
    /// Handler names `include_role` brings (known from checking the roles now).
    pub extra_handlers: Vec<String>,
    /// Some handler names cannot be known before running (templated include_role names).
    pub handlers_unknowable: bool,
    /// `notify:` entries to check once the play's handlers are known.
    pub notifies: Vec<(String, Origin)>,
    /// Loading for a check only (include pre-validation): record nothing.
    pub checking: bool,
}

/// Where task items are being read from.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub file: PathBuf,
    pub role: Option<RoleRef>,
    pub handlers: bool,
}

pub(crate) struct Loader {
    pub roles_path: Vec<PathBuf>,
    /// Files being loaded, outermost first (import cycles).
    pub files: Vec<PathBuf>,
    /// Roles being loaded, outermost first (dependency cycles).
    pub roles: Vec<PathBuf>,
    pub play: PlayState,
}

/// Reads and parses a YAML file; `from` is where it was referenced (for "cannot read").
pub(crate) fn read_yaml(path: &Path, from: Option<&Origin>) -> Result<Option<Node>> {
    let text = std::fs::read(path).map_err(|e| {
        let msg = format!("cannot read {}: {e}", path.display());
        match from {
            Some(o) => LoadError::new(ErrorKind::Io, o.clone(), msg),
            None => LoadError::file(ErrorKind::Io, path, format!("cannot read the file: {e}")),
        }
    })?;
    let text = String::from_utf8(text).map_err(|e| {
        LoadError::file(
            ErrorKind::Syntax,
            path,
            format!(
                "not UTF-8 text (byte {}); save the file as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    load_spanned(&text).map_err(|e| {
        LoadError::new(
            ErrorKind::Syntax,
            super::error::at(path, e.line, e.column),
            format!("YAML syntax error: {}", e.message),
        )
    })
}

/// `path` without `.`/`..` parts (for cycle checks and messages), without touching the disk.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn cycle_text(stack: &[PathBuf], again: &Path) -> String {
    stack
        .iter()
        .skip_while(|p| p.as_path() != again)
        .chain(std::iter::once(&again.to_path_buf()))
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" → ")
}

impl Loader {
    pub(crate) fn new() -> Loader {
        Loader {
            roles_path: super::roles::roles_path_from_env(),
            files: Vec::new(),
            roles: Vec::new(),
            play: PlayState::default(),
        }
    }

    /// A tasks file: a list of tasks (empty file: none).
    pub(crate) fn tasks_file(
        &mut self,
        path: &Path,
        role: Option<RoleRef>,
        handlers: bool,
        from: Option<&Origin>,
    ) -> Result<Vec<TaskItem>> {
        let norm = normalize(path);
        if self.files.contains(&norm) {
            let msg = format!(
                "import cycle: {}; an imported file cannot import itself again",
                cycle_text(&self.files, &norm)
            );
            return Err(match from {
                Some(o) => LoadError::new(ErrorKind::BadValue, o.clone(), msg),
                None => LoadError::file(ErrorKind::BadValue, path, msg),
            });
        }
        let Some(root) = read_yaml(path, from)? else {
            return Ok(Vec::new());
        };
        let sc = Scope {
            file: path.to_path_buf(),
            role,
            handlers,
        };
        self.files.push(norm);
        let r = match root.value {
            SpannedValue::Seq(_) => self.items(&sc, &root, "a tasks file"),
            _ => Err(bad(
                path,
                &root,
                format!(
                    "a tasks file must be a list of tasks (`- name: ...`), not {}",
                    type_name(&root)
                ),
            )),
        };
        self.files.pop();
        r
    }

    /// A list of task items (`tasks:`, `block:`, a tasks file).
    pub(crate) fn items(&mut self, sc: &Scope, n: &Node, what: &str) -> Result<Vec<TaskItem>> {
        let mut out = Vec::new();
        match &n.value {
            SpannedValue::Scalar(Value::Null) => {}
            SpannedValue::Seq(items) => {
                for it in items {
                    self.item(sc, it, &mut out)?;
                }
            }
            _ => {
                return Err(bad(
                    &sc.file,
                    n,
                    format!("{what} must be a list of tasks, not {}", type_name(n)),
                ))
            }
        }
        Ok(out)
    }

    fn item(&mut self, sc: &Scope, n: &Node, out: &mut Vec<TaskItem>) -> Result<()> {
        let Some(pairs) = n.as_map() else {
            return Err(bad(
                &sc.file,
                n,
                format!(
                    "a task must be a mapping (`- name: ...` followed by a module), not {}",
                    type_name(n)
                ),
            ));
        };
        if pairs
            .iter()
            .any(|(k, _)| matches!(k.as_str(), Some("block" | "rescue" | "always")))
        {
            out.push(TaskItem::Block(Box::new(self.block(sc, n, pairs)?)));
            return Ok(());
        }
        self.task(sc, n, pairs, out)
    }

    fn block(&mut self, sc: &Scope, n: &Node, pairs: &[(Node, Node)]) -> Result<Block> {
        let file = &sc.file;
        let mut b = Block {
            origin: origin(file, n),
            ..Block::default()
        };
        let mut kw = Kw::default();
        let mut notify: Option<(Vec<String>, &Node)> = None;
        let mut delegate_facts = None;
        let mut has_block = false;
        for (k, v) in pairs {
            let name = key(k);
            match name.as_str() {
                "block" => {
                    has_block = true;
                    b.block = self.items(sc, v, "'block'")?;
                }
                "rescue" => b.rescue = self.items(sc, v, "'rescue'")?,
                "always" => b.always = self.items(sc, v, "'always'")?,
                "name" => b.name = node::opt_string(file, "name", v)?,
                "notify" => notify = Some((node::string_list(file, "notify", v)?, v)),
                "delegate_facts" => delegate_facts = node::opt_bool(file, "delegate_facts", v)?,
                _ if kw.read(file, &name, k, v, true)? => {}
                _ => {
                    if registry::lookup(&name).is_some() {
                        return Err(err(
                            ErrorKind::UnknownKeyword,
                            file,
                            k,
                            format!("a block cannot run a module: move '{name}' into a task under 'block:'"),
                        ));
                    }
                    let all = keywords::BASE.iter().chain(keywords::BLOCK).copied();
                    return Err(err(
                        ErrorKind::UnknownKeyword,
                        file,
                        k,
                        format!(
                            "unknown block keyword '{name}'{}; a block takes block/rescue/always and keywords like when, become, vars, tags",
                            did_you_mean(closest(&name, all))
                        ),
                    ));
                }
            }
        }
        if b.block.is_empty() && (!b.rescue.is_empty() || !b.always.is_empty()) {
            let which = if b.rescue.is_empty() {
                "always"
            } else {
                "rescue"
            };
            let msg = if has_block {
                format!("'{which}' needs tasks under 'block:' too (the block is empty)")
            } else {
                format!(
                    "'{which}' cannot be used without 'block'; put the tasks to try under 'block:'"
                )
            };
            return Err(bad(file, n, msg));
        }
        b.keywords = kw.finish();
        if let Some((names, at)) = notify {
            self.record_notify(&names, &origin(file, at));
            for list in [&mut b.block, &mut b.rescue, &mut b.always] {
                push_down(list, &|t: &mut Task| {
                    if t.notify.is_empty() {
                        t.notify = names.clone();
                    }
                });
            }
        }
        if let Some(df) = delegate_facts {
            for list in [&mut b.block, &mut b.rescue, &mut b.always] {
                push_down(list, &|t: &mut Task| {
                    t.delegate_facts.get_or_insert(df);
                });
            }
        }
        Ok(b)
    }

    fn record_notify(&mut self, names: &[String], at: &Origin) {
        if !self.play.checking {
            for n in names {
                self.play.notifies.push((n.clone(), at.clone()));
            }
        }
    }

    fn task(
        &mut self,
        sc: &Scope,
        n: &Node,
        pairs: &[(Node, Node)],
        out: &mut Vec<TaskItem>,
    ) -> Result<()> {
        let file = &sc.file;
        let task_keys = |name: &str| {
            keywords::BASE.contains(&name)
                || keywords::TASK.contains(&name)
                || (sc.handlers && name == "listen")
        };
        // Pass 1: which key is the module.
        let mut module: Option<(&Node, &'static Spec, &Node)> = None;
        let mut unknown: Option<&Node> = None;
        let mut loops: Vec<(&Node, &Node)> = Vec::new();
        for (k, v) in pairs {
            let name = key(k);
            if task_keys(&name) {
                if name == "loop" {
                    loops.push((k, v));
                }
                continue;
            }
            if name.starts_with("with_") {
                loops.push((k, v));
                continue;
            }
            match registry::lookup(&name) {
                Some(spec) => {
                    if let Some((prev, ..)) = module {
                        return Err(err(
                            ErrorKind::UnknownModule,
                            file,
                            k,
                            format!(
                                "two modules in one task: '{}' and '{name}'; a task runs exactly one module, so split it into two tasks",
                                key(prev)
                            ),
                        ));
                    }
                    module = Some((k, spec, v));
                }
                None => {
                    if unknown.is_none() {
                        unknown = Some(k);
                    }
                }
            }
        }
        if let Some(k) = unknown {
            return Err(unknown_key(sc, k, module.is_some()));
        }
        if loops.len() > 1 {
            return Err(bad(
                file,
                loops[1].0,
                format!(
                    "a task can loop only once, but it has both '{}' and '{}'; keep one",
                    key(loops[0].0),
                    key(loops[1].0)
                ),
            ));
        }

        // The module and its arguments, in all of Ansible's forms.
        let args_kw = pairs.iter().find(|(k, _)| k.as_str() == Some("args"));
        let action = pairs
            .iter()
            .find(|(k, _)| matches!(k.as_str(), Some("action" | "local_action")));
        if let (Some((a, _)), Some((b, _))) = (
            pairs.iter().find(|(k, _)| k.as_str() == Some("action")),
            pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some("local_action")),
        ) {
            let _ = a;
            return Err(bad(
                file,
                b,
                "'action' and 'local_action' cannot both be used; keep one",
            ));
        }
        let (spec, args, module_key): (&'static Spec, Map<String, Value>, &Node) =
            match (action, module) {
                (Some((ak, _)), Some((mk, ..))) => {
                    return Err(err(
                        ErrorKind::UnknownModule,
                        file,
                        mk,
                        format!(
                            "two modules in one task: '{}' and '{}'; a task runs exactly one module, so split it into two tasks",
                            key(ak),
                            key(mk)
                        ),
                    ))
                }
                (Some((ak, av)), None) => {
                    let (spec, args) = self.old_style(file, ak, av)?;
                    (spec, args, ak)
                }
                (None, Some((mk, spec, mv))) => {
                    let args = new_style(file, spec, mk, mv)?;
                    (spec, args, mk)
                }
                (None, None) => {
                    return Err(err(
                        ErrorKind::UnknownModule,
                        file,
                        n,
                        format!(
                            "this task has no module; add one (e.g. `command: ...`). homelab knows: {}",
                            known_modules()
                        ),
                    ))
                }
            };
        let args = finish_args(file, spec, module_key, args_kw, args)?;

        let mut t = Task {
            action: spec.name.to_string(),
            args,
            role: sc.role.clone(),
            origin: origin(file, n),
            ..Task::default()
        };
        let mut kw = Kw::default();
        for (k, v) in pairs {
            let name = key(k);
            match name.as_str() {
                "action" | "args" => {}
                "local_action" => {}
                "name" => t.name = node::opt_string(file, "name", v)?,
                "register" => {
                    if let Some(r) = node::opt_string(file, "register", v)? {
                        if !node::is_identifier(&r) {
                            return Err(bad(
                                file,
                                v,
                                format!("register: '{r}' is not a valid variable name; use letters, digits and underscores"),
                            ));
                        }
                        t.register = Some(r);
                    }
                }
                "notify" => {
                    t.notify = node::string_list(file, "notify", v)?;
                    let names = t.notify.clone();
                    self.record_notify(&names, &origin(file, v));
                }
                "listen" => t.listen = node::string_list(file, "listen", v)?,
                "changed_when" => t.changed_when = Some(node::conditions(file, &name, v)?),
                "failed_when" => t.failed_when = Some(node::conditions(file, &name, v)?),
                "until" => t.until = Some(node::conditions(file, &name, v)?),
                "retries" | "delay" => {
                    let value = node::number_or_template(file, &name, v)?;
                    if name == "retries" {
                        t.retries = value;
                    } else {
                        t.delay = value;
                    }
                }
                "loop_control" => t.loop_control = loop_control(file, v)?,
                "delegate_facts" => t.delegate_facts = node::opt_bool(file, &name, v)?,
                "loop" => t.loop_ = Some(("loop".into(), v.to_json())),
                _ if name.starts_with("with_") => {
                    if !keywords::LOOPS.contains(&name.as_str()) {
                        return Err(err(
                            ErrorKind::UnknownKeyword,
                            file,
                            k,
                            format!(
                                "unknown loop '{name}'{}; use loop: (or one of {})",
                                did_you_mean(closest(&name, keywords::LOOPS.iter().copied())),
                                keywords::LOOPS.join(", ")
                            ),
                        ));
                    }
                    t.loop_ = Some((name.clone(), v.to_json()));
                }
                _ if kw.read(file, &name, k, v, true)? => {}
                _ => {} // the module key
            }
        }
        if let Some((ak, _)) = action {
            if key(ak) == "local_action" {
                kw.inherited.delegate_to = Some("localhost".into());
            }
        }
        t.keywords = kw.finish();

        match spec.name {
            "import_tasks" => {
                let b = self.import_tasks(sc, n, pairs, module_key, t)?;
                out.push(TaskItem::Block(Box::new(b)));
            }
            "import_role" => {
                if let Some(b) = self.import_role(sc, n, pairs, module_key, t)? {
                    out.push(TaskItem::Block(Box::new(b)));
                }
            }
            "include_tasks" | "include_role" => {
                check_include_keys(sc, pairs, spec.name)?;
                self.check_include(sc, module_key, &mut t)?;
                if let Some(Value::Object(apply)) = t.args.get("apply") {
                    // check_include checked the keys; read them as a block's keywords.
                    let mut kw = Kw::default();
                    for (k, v) in apply {
                        let kn = Node::from_json(
                            &Value::String(k.clone()),
                            module_key.line,
                            module_key.column,
                        );
                        let vn = Node::from_json(v, module_key.line, module_key.column);
                        kw.read(file, k, &kn, &vn, true)?;
                    }
                    t.apply = Some(kw.finish());
                }
                out.push(TaskItem::Task(Box::new(t)));
            }
            "meta" => {
                let what = t
                    .args
                    .get("_raw_params")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !META.contains(&what) && !is_template(what) {
                    return Err(bad(
                        file,
                        module_key,
                        format!(
                            "unknown meta action '{what}'{}; meta takes one of {}",
                            did_you_mean(closest(what, META.iter().copied())),
                            META.join(", ")
                        ),
                    ));
                }
                out.push(TaskItem::Task(Box::new(t)));
            }
            "set_fact" => {
                if let Some(bad_name) = t
                    .args
                    .keys()
                    .find(|k| *k != "cacheable" && !is_template(k) && !node::is_identifier(k))
                {
                    return Err(bad(
                        file,
                        module_key,
                        format!("set_fact: '{bad_name}' is not a valid variable name; use letters, digits and underscores"),
                    ));
                }
                out.push(TaskItem::Task(Box::new(t)));
            }
            _ => out.push(TaskItem::Task(Box::new(t))),
        }
        Ok(())
    }

    /// `action: copy src=a dest=b` / `action: {module: copy, src: a}` (and `local_action`).
    fn old_style(
        &self,
        file: &Path,
        ak: &Node,
        av: &Node,
    ) -> Result<(&'static Spec, Map<String, Value>)> {
        let unsafe_ = av.is_unsafe();
        let split = |text: &str, at: &Node| -> Result<(String, String)> {
            let tokens = super::splitter::split_args(text).map_err(|e| bad(file, at, e))?;
            let mut tokens = tokens;
            let pos = tokens.iter().position(|t| t.starts_with("module="));
            let name = match pos {
                Some(i) => {
                    let t = tokens.remove(i);
                    t.trim_start_matches("module=").trim().to_string()
                }
                None if tokens.is_empty() => String::new(),
                None => tokens.remove(0).trim().to_string(),
            };
            Ok((name, tokens.join(" ")))
        };
        let resolve = |name: &str, at: &Node| -> Result<&'static Spec> {
            if name.is_empty() {
                return Err(bad(
                    file,
                    at,
                    format!(
                        "'{}' names no module; write e.g. `{}: command ls`",
                        key(ak),
                        key(ak)
                    ),
                ));
            }
            registry::lookup(name).ok_or_else(|| unknown_module(file, at, name))
        };
        match &av.value {
            SpannedValue::Map(pairs) => {
                let Some((_, mv)) = pairs.iter().find(|(k, _)| k.as_str() == Some("module")) else {
                    return Err(bad(
                        file,
                        av,
                        format!("'{}' as a mapping needs 'module: NAME'", key(ak)),
                    ));
                };
                let text = node::scalar_text(mv)
                    .ok_or_else(|| bad(file, mv, "'module' must be a module name"))?;
                let (name, rest) = split(&text, mv)?;
                let spec = resolve(&name, mv)?;
                let mut args = Map::new();
                for (k, v) in pairs {
                    let kname = key(k);
                    if kname != "module" {
                        args.insert(kname, v.to_json());
                    }
                }
                for (k, v) in kv(file, mv, &rest, spec, mv.is_unsafe())? {
                    args.insert(k, v);
                }
                // `args:` inside the action mapping is merged in.
                if let Some(inner) = args.remove("args") {
                    match inner {
                        Value::Object(m) => args.extend(m),
                        Value::String(s) => {
                            for (k, v) in kv(file, av, &s, spec, false)? {
                                args.insert(k, v);
                            }
                        }
                        _ => return Err(bad(file, av, "'args' must be a mapping")),
                    }
                }
                Ok((spec, args))
            }
            _ => {
                let Some(text) = av.as_str() else {
                    return Err(bad(
                        file,
                        av,
                        format!(
                            "'{}' must be `MODULE k=v ...` or a mapping with 'module:', not {}",
                            key(ak),
                            type_name(av)
                        ),
                    ));
                };
                let (name, rest) = split(text, av)?;
                let spec = resolve(&name, av)?;
                Ok((spec, kv(file, av, &rest, spec, unsafe_)?))
            }
        }
    }

    fn import_tasks(
        &mut self,
        sc: &Scope,
        n: &Node,
        pairs: &[(Node, Node)],
        module_key: &Node,
        t: Task,
    ) -> Result<Block> {
        let file = &sc.file;
        reject_on_import(sc, pairs, "import_tasks", "include_tasks")?;
        let target = include_target(file, module_key, &t, "import_tasks")?;
        if is_template(&target) {
            return Err(err(
                ErrorKind::Unsupported,
                file,
                module_key,
                format!("import_tasks: '{target}' is a template, but imports are read before any variable is known; use include_tasks for a file chosen at run time"),
            ));
        }
        let from = origin(file, module_key);
        let path = self.resolve_tasks(sc, &target, &from)?;
        let items = self.tasks_file(&path, sc.role.clone(), sc.handlers, Some(&from))?;
        let mut b = Block {
            name: t.name.clone(),
            keywords: t.keywords.clone(),
            block: items,
            origin: origin(file, n),
            ..Block::default()
        };
        apply_task_only(&mut b, &t);
        Ok(b)
    }

    fn import_role(
        &mut self,
        sc: &Scope,
        n: &Node,
        pairs: &[(Node, Node)],
        module_key: &Node,
        t: Task,
    ) -> Result<Option<Block>> {
        let file = &sc.file;
        reject_on_import(sc, pairs, "import_role", "include_role")?;
        let from = RoleFrom::from_args(file, module_key, &t.args)?;
        let name = role_name_arg(file, module_key, &t.args, "import_role")?;
        if is_template(&name) {
            return Err(err(
                ErrorKind::Unsupported,
                file,
                module_key,
                format!("import_role: name '{name}' is a template, but imports are read before any variable is known; use include_role for a role chosen at run time"),
            ));
        }
        let allow_duplicates = match t.args.get("allow_duplicates") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(bad(
                    file,
                    module_key,
                    format!("import_role: allow_duplicates must be true or false, not {other}"),
                ))
            }
        };
        let at = origin(file, module_key);
        let roles = self.role_tree(
            &name,
            &at,
            sc.role.as_ref().map(|r| r.path.as_path()),
            Map::new(),
            Inherited::default(),
            &from,
            true,
            Some(allow_duplicates),
        )?;
        let Some(block) = roles_to_block(roles) else {
            return Ok(None);
        };
        let mut b = Block {
            name: t.name.clone(),
            keywords: t.keywords.clone(),
            origin: origin(file, n),
            ..block
        };
        apply_task_only(&mut b, &t);
        Ok(Some(b))
    }

    /// Checks an `include_tasks` / `include_role` now (the file or role exists and loads),
    /// without expanding it: that happens at run time.
    fn check_include(&mut self, sc: &Scope, module_key: &Node, t: &mut Task) -> Result<()> {
        let file = &sc.file;
        let at = origin(file, module_key);
        if t.action == "include_tasks" {
            let target = include_target(file, module_key, t, "include_tasks")?;
            t.args.remove("file");
            t.args
                .insert("_raw_params".into(), Value::String(target.clone()));
            if let Some(apply) = t.args.get("apply") {
                check_apply(file, module_key, apply)?;
            }
            if is_template(&target) {
                return Ok(());
            }
            let path = self.resolve_tasks(sc, &target, &at)?;
            if self.files.contains(&normalize(&path)) {
                return Ok(()); // a file including itself (under some condition): fine at run time
            }
            let saved = std::mem::take(&mut self.play.checking);
            self.play.checking = true;
            let r = self.tasks_file(&path, sc.role.clone(), sc.handlers, Some(&at));
            self.play.checking = saved;
            r.map(|_| ())
        } else {
            let name = role_name_arg(file, module_key, &t.args, "include_role")?;
            if let Some(apply) = t.args.get("apply") {
                check_apply(file, module_key, apply)?;
            }
            if is_template(&name) {
                self.play.handlers_unknowable = true;
                return Ok(());
            }
            let from = RoleFrom::from_args(file, module_key, &t.args)?;
            let path = self.find_role(&name, &at, sc.role.as_ref().map(|r| r.path.as_path()))?;
            if self.roles.contains(&normalize(&path)) {
                return Ok(()); // a role including itself: fine at run time
            }
            let saved_seen = std::mem::take(&mut self.play.seen_roles);
            let saved_handlers = std::mem::take(&mut self.play.role_handlers);
            let saved_checking = self.play.checking;
            self.play.checking = true;
            let r = self.role_tree(
                &name,
                &at,
                sc.role.as_ref().map(|r| r.path.as_path()),
                Map::new(),
                Inherited::default(),
                &from,
                true,
                Some(true),
            );
            let found = std::mem::replace(&mut self.play.role_handlers, saved_handlers);
            self.play.seen_roles = saved_seen;
            self.play.checking = saved_checking;
            let roles = r?;
            for h in roles.iter().flat_map(|r| &r.handlers).chain(&found) {
                self.play.extra_handlers.extend(handler_names(h));
            }
            Ok(())
        }
    }

    /// Where an `import_tasks` / `include_tasks` file is: next to the file that names it,
    /// then in the role's `tasks/` (or `handlers/`), then in the play's folder.
    pub(crate) fn resolve_tasks(&self, sc: &Scope, target: &str, at: &Origin) -> Result<PathBuf> {
        let candidates = tasks_candidates(
            target,
            &sc.file,
            sc.role.as_ref(),
            &self.play.dir,
            sc.handlers,
        );
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| {
                LoadError::new(
                    ErrorKind::Missing,
                    at.clone(),
                    format!(
                        "tasks file '{target}' not found; looked in: {}",
                        list_paths(&candidates)
                    ),
                )
            })
    }
}

/// Candidate paths for a tasks file named in `from_file` (see [`Loader::resolve_tasks`]).
pub(crate) fn tasks_candidates(
    target: &str,
    from_file: &Path,
    role: Option<&RoleRef>,
    play_dir: &Path,
    handlers: bool,
) -> Vec<PathBuf> {
    let t = Path::new(target);
    if t.is_absolute() {
        return vec![t.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = Vec::new();
    let mut add = |p: PathBuf| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    if let Some(dir) = from_file.parent() {
        add(dir.join(t));
    }
    match role {
        Some(r) => {
            add(r
                .path
                .join(if handlers { "handlers" } else { "tasks" })
                .join(t));
            add(r.path.join("tasks").join(t));
            add(r.path.join(t));
        }
        None => add(play_dir.join(t)),
    }
    out
}

/// Applies a function to every task under a list of items (blocks included).
pub(crate) fn push_down(items: &mut [TaskItem], f: &dyn Fn(&mut Task)) {
    for it in items {
        match it {
            TaskItem::Task(t) => f(t),
            TaskItem::Block(b) => {
                push_down(&mut b.block, f);
                push_down(&mut b.rescue, f);
                push_down(&mut b.always, f);
            }
        }
    }
}

/// `notify` / `delegate_facts` of an import apply to what it imports.
fn apply_task_only(b: &mut Block, t: &Task) {
    if !t.notify.is_empty() {
        let names = t.notify.clone();
        push_down(&mut b.block, &|x: &mut Task| {
            if x.notify.is_empty() {
                x.notify = names.clone();
            }
        });
    }
    if let Some(df) = t.delegate_facts {
        push_down(&mut b.block, &|x: &mut Task| {
            x.delegate_facts.get_or_insert(df);
        });
    }
}

/// Roles (dependencies first, the imported role last) as one block: the imported role's
/// scope around its dependencies' blocks and its own tasks.
pub(crate) fn roles_to_block(mut roles: Vec<super::ast::Role>) -> Option<Block> {
    let mut main = roles.pop()?;
    let mut block: Vec<TaskItem> = Vec::new();
    for mut dep in roles {
        let tasks = std::mem::take(&mut dep.tasks);
        block.push(TaskItem::Block(Box::new(Block {
            name: None,
            keywords: std::mem::take(&mut dep.keywords),
            block: tasks,
            origin: dep.origin.clone(),
            role: Some(Box::new(dep)),
            ..Block::default()
        })));
    }
    block.append(&mut main.tasks);
    Some(Block {
        keywords: std::mem::take(&mut main.keywords),
        block,
        origin: main.origin.clone(),
        role: Some(Box::new(main)),
        ..Block::default()
    })
}

/// The names a handler answers to: its name, `role : name`, its `listen` topics.
pub(crate) fn handler_names(h: &Task) -> Vec<String> {
    let mut out: Vec<String> = h.listen.clone();
    if let Some(n) = &h.name {
        out.push(n.clone());
        if let Some(r) = &h.role {
            out.push(format!("{} : {n}", r.name));
        }
    }
    out
}

fn known_modules() -> String {
    registry::MODULES
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_module(file: &Path, at: &Node, name: &str) -> LoadError {
    err(
        ErrorKind::UnknownModule,
        file,
        at,
        match registry::suggest(name) {
            Some(s) => format!("unknown module '{name}' (did you mean '{s}'?)"),
            None => format!(
                "unknown module '{name}'; homelab knows: {}",
                known_modules()
            ),
        },
    )
}

/// A key that is neither a task keyword nor a known module.
fn unknown_key(sc: &Scope, k: &Node, has_module: bool) -> LoadError {
    let file = &sc.file;
    let name = key(k);
    if name == "listen" {
        return err(
            ErrorKind::UnknownKeyword,
            file,
            k,
            "'listen' is only valid on handlers (tasks under 'handlers:'); use notify: on a task",
        );
    }
    if matches!(name.as_str(), "include" | "ansible.builtin.include") {
        return err(
            ErrorKind::UnknownModule,
            file,
            k,
            "'include' was removed from Ansible; use include_tasks (dynamic) or import_tasks (static)",
        );
    }
    let kws = keywords::BASE
        .iter()
        .chain(keywords::TASK)
        .chain(if sc.handlers {
            &["listen"][..]
        } else {
            &[][..]
        })
        .copied();
    // The nearer of a keyword and a module name (`shel` is `shell`, `whne` is `when`).
    let short = name.rsplit('.').next().unwrap_or(&name);
    let kw_hint = if name.contains('.') {
        None
    } else {
        closest(&name, kws).map(|s| (distance(&name, s), s, ErrorKind::UnknownKeyword))
    };
    let module_hint =
        registry::suggest(&name).map(|s| (distance(short, s), s, ErrorKind::UnknownModule));
    let best = match (kw_hint, module_hint) {
        (Some(k), Some(m)) => Some(if m.0 < k.0 { m } else { k }),
        (k, m) => k.or(m),
    };
    if let Some((_, s, kind)) = best {
        let what = if kind == ErrorKind::UnknownKeyword {
            "task keyword"
        } else {
            "module"
        };
        return err(
            kind,
            file,
            k,
            format!("unknown {what} '{name}' (did you mean '{s}'?)"),
        );
    }
    if has_module {
        err(
            ErrorKind::UnknownKeyword,
            file,
            k,
            format!("unknown task keyword '{name}'; a task has one module plus keywords like name, when, loop, register, notify, become, vars, tags"),
        )
    } else {
        err(
            ErrorKind::UnknownModule,
            file,
            k,
            format!(
                "unknown module '{name}'; homelab knows: {}",
                known_modules()
            ),
        )
    }
}

/// `k=v` text → arguments (strings; unsafe stays unsafe).
fn kv(
    file: &Path,
    at: &Node,
    text: &str,
    spec: &Spec,
    unsafe_: bool,
) -> Result<Map<String, Value>> {
    let pairs = parse_kv(text, FREEFORM.contains(&spec.name)).map_err(|e| {
        bad(
            file,
            at,
            format!("{e}; close the quote or the {{{{ }}}} (or quote the whole line)"),
        )
    })?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| {
            let v = if unsafe_ {
                let mut m = Map::new();
                m.insert(crate::inventory::UNSAFE_KEY.into(), Value::String(v));
                Value::Object(m)
            } else {
                Value::String(v)
            };
            (k, v)
        })
        .collect())
}

/// `copy: {src: a}`, `copy: src=a dest=b`, `command: ls -l`, `ping:`.
fn new_style(file: &Path, spec: &Spec, mk: &Node, mv: &Node) -> Result<Map<String, Value>> {
    match &mv.value {
        SpannedValue::Map(pairs) => Ok(pairs.iter().map(|(k, v)| (key(k), v.to_json())).collect()),
        SpannedValue::Scalar(Value::Null) => Ok(Map::new()),
        _ => match mv.as_str() {
            Some(text) => kv(file, mv, text, spec, mv.is_unsafe()),
            None => Err(bad(
                file,
                mv,
                format!(
                    "the arguments of '{}' must be a mapping or `key=value` text, not {}",
                    key(mk),
                    type_name(mv)
                ),
            )),
        },
    }
}

/// Merges `args:` under the module's own arguments and checks the names.
fn finish_args(
    file: &Path,
    spec: &Spec,
    module_key: &Node,
    args_kw: Option<&(Node, Node)>,
    own: Map<String, Value>,
) -> Result<Map<String, Value>> {
    let mut args = Map::new();
    if let Some((_, v)) = args_kw {
        match &v.value {
            SpannedValue::Map(pairs) => {
                for (k, v) in pairs {
                    args.insert(key(k), v.to_json());
                }
            }
            SpannedValue::Scalar(Value::Null) => {}
            _ => return Err(match v.as_str() {
                Some(s) if is_template(s) => err(
                    ErrorKind::Unsupported,
                    file,
                    v,
                    "'args' from a template is not supported yet; write the arguments as a mapping",
                ),
                _ => bad(
                    file,
                    v,
                    format!(
                        "'args' must be a mapping of module arguments, not {}",
                        type_name(v)
                    ),
                ),
            }),
        }
    }
    args.extend(own);
    if !FREEFORM.contains(&spec.name) {
        if let Some(k) = args.keys().find(|k| k.starts_with("_ansible_")) {
            return Err(bad(
                file,
                module_key,
                format!(
                    "argument '{k}' of {}: the prefix '_ansible_' is reserved for Ansible itself",
                    spec.name
                ),
            ));
        }
    }
    if !spec.free_form {
        if let Some(raw) = args.get("_raw_params") {
            let text = crate::inventory::py_str(raw);
            if !text.is_empty() {
                return Err(if is_template(&text) {
                    err(
                        ErrorKind::Unsupported,
                        file,
                        module_key,
                        format!("{}: arguments from a template ('{text}') are not supported yet; write them as a mapping", spec.name),
                    )
                } else {
                    err(
                        ErrorKind::UnknownArgument,
                        file,
                        module_key,
                        format!("{} does not take free-form text ('{text}'); write its arguments as key=value pairs or a mapping", spec.name),
                    )
                });
            }
            args.remove("_raw_params");
        }
    }
    if !args.keys().any(|k| is_template(k)) {
        registry::check_args(spec, args.keys().map(String::as_str))
            .map_err(|m| err(ErrorKind::UnknownArgument, file, module_key, m))?;
    }
    Ok(args)
}

fn loop_control(file: &Path, v: &Node) -> Result<LoopControl> {
    let mut lc = LoopControl::default();
    let pairs = node::map(file, v, "'loop_control'")?;
    for (k, v) in pairs {
        let name = key(k);
        match name.as_str() {
            "loop_var" | "index_var" => {
                let s = node::opt_string(file, &name, v)?;
                if let Some(s) = &s {
                    if !node::is_identifier(s) {
                        return Err(bad(
                            file,
                            v,
                            format!("{name}: '{s}' is not a valid variable name"),
                        ));
                    }
                }
                if name == "loop_var" {
                    lc.loop_var = s;
                } else {
                    lc.index_var = s;
                }
            }
            "label" => {
                lc.label = match &v.value {
                    SpannedValue::Scalar(_) => node::scalar_text(v),
                    _ => {
                        return Err(bad(
                            file,
                            v,
                            format!("loop_control label must be a string (a template like \"{{{{ item.name }}}}\"), not {}", type_name(v)),
                        ))
                    }
                }
            }
            "pause" => {
                let p = match &v.value {
                    SpannedValue::Scalar(Value::Number(n)) => n.as_f64(),
                    SpannedValue::Scalar(Value::Null) => None,
                    _ => match v.as_str().map(|s| s.trim().parse::<f64>()) {
                        Some(Ok(f)) => Some(f),
                        _ => {
                            return Err(bad(
                                file,
                                v,
                                format!("loop_control pause must be a number of seconds, not {}", node::describe(v)),
                            ))
                        }
                    },
                };
                if p.is_some_and(|p| p < 0.0 || !p.is_finite()) {
                    return Err(bad(file, v, "loop_control pause must be 0 or more seconds"));
                }
                lc.pause = p;
            }
            "extended" => lc.extended = node::opt_bool(file, &name, v)?.unwrap_or(false),
            "extended_allitems" => {
                node::opt_bool(file, &name, v)?;
            }
            "break_when" => {
                return Err(err(
                    ErrorKind::Unsupported,
                    file,
                    k,
                    "loop_control break_when is not supported yet; use a when: condition on the task",
                ))
            }
            _ => {
                let known = [
                    "loop_var",
                    "index_var",
                    "label",
                    "pause",
                    "extended",
                    "extended_allitems",
                    "break_when",
                ];
                return Err(err(
                    ErrorKind::UnknownKeyword,
                    file,
                    k,
                    format!(
                        "unknown loop_control key '{name}'{}; loop_control takes {}",
                        did_you_mean(closest(&name, known.iter().copied())),
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(lc)
}

/// `include_tasks` / `include_role` take only a few keywords: the others would apply to the
/// include itself, not to what it includes.
fn check_include_keys(sc: &Scope, pairs: &[(Node, Node)], action: &str) -> Result<()> {
    for (k, _) in pairs {
        let name = key(k);
        let ok = keywords::INCLUDE.contains(&name.as_str())
            || name.starts_with("with_")
            || (sc.handlers && name == "listen")
            || registry::lookup(&name).is_some_and(|s| s.name == action)
            || name == "local_action";
        if !ok {
            let static_ = if action == "include_tasks" {
                "import_tasks"
            } else {
                "import_role"
            };
            return Err(err(
                ErrorKind::BadValue,
                &sc.file,
                k,
                format!("'{name}' is not a valid keyword for {action}: an include is dynamic, so its keywords do not pass to what it includes; use `apply: {{{name}: ...}}` in its arguments, or {static_}"),
            ));
        }
    }
    Ok(())
}

/// Keywords that make no sense on a static import.
fn reject_on_import(sc: &Scope, pairs: &[(Node, Node)], action: &str, dynamic: &str) -> Result<()> {
    for (k, _) in pairs {
        let name = key(k);
        if name == "loop" || name.starts_with("with_") {
            return Err(bad(
                &sc.file,
                k,
                format!("{action} cannot loop (it is expanded before the play runs); use {dynamic} to loop"),
            ));
        }
        if matches!(
            name.as_str(),
            "register"
                | "changed_when"
                | "failed_when"
                | "until"
                | "retries"
                | "delay"
                | "loop_control"
                | "listen"
        ) {
            return Err(bad(
                &sc.file,
                k,
                format!("'{name}' cannot be used on {action}: it is replaced by what it imports; put '{name}' on the imported tasks"),
            ));
        }
    }
    Ok(())
}

/// The file of `import_tasks` / `include_tasks` (`_raw_params` or `file`).
fn include_target(file: &Path, at: &Node, t: &Task, action: &str) -> Result<String> {
    let v = t
        .args
        .get("_raw_params")
        .filter(|v| !v.as_str().is_some_and(str::is_empty))
        .or_else(|| t.args.get("file"));
    match v.map(crate::inventory::py_str) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(bad(
            file,
            at,
            format!("no file given to {action}; write `{action}: FILE.yml`"),
        )),
    }
}

fn role_name_arg(
    file: &Path,
    at: &Node,
    args: &Map<String, Value>,
    action: &str,
) -> Result<String> {
    match args.get("name").map(crate::inventory::py_str) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(bad(
            file,
            at,
            format!("{action} needs the role's name: `{action}: {{name: ROLE}}`"),
        )),
    }
}

/// `apply:` of an include: block keywords.
fn check_apply(file: &Path, at: &Node, apply: &Value) -> Result<()> {
    let Value::Object(m) = apply else {
        return Err(bad(
            file,
            at,
            "'apply' must be a mapping of keywords (like become: true)",
        ));
    };
    for k in m.keys() {
        let ok = (keywords::BASE.contains(&k.as_str()) || keywords::BLOCK.contains(&k.as_str()))
            && !matches!(k.as_str(), "block" | "rescue" | "always");
        if !ok {
            let all = keywords::BASE.iter().chain(keywords::BLOCK).copied();
            return Err(err(
                ErrorKind::UnknownKeyword,
                file,
                at,
                format!(
                    "unknown keyword '{k}' in 'apply'{}; apply takes block keywords like become, tags, when, vars",
                    did_you_mean(closest(k, all))
                ),
            ));
        }
        if let Some(why) = keywords::unsupported(k) {
            return Err(err(ErrorKind::Unsupported, file, at, why));
        }
    }
    Ok(())
}

/// Handler items → a flat list of handlers: blocks (from `import_tasks` or written) hand their
/// keywords down. `rescue`/`always` in handlers are refused.
pub(crate) fn flatten_handlers(items: Vec<TaskItem>, parent: &Inherited) -> Result<Vec<Task>> {
    let mut out = Vec::new();
    for it in items {
        match it {
            TaskItem::Task(mut t) => {
                t.keywords = keywords::inherit(parent, &t.keywords);
                out.push(*t);
            }
            TaskItem::Block(b) => {
                if !b.rescue.is_empty() || !b.always.is_empty() {
                    return Err(LoadError::new(
                        ErrorKind::Unsupported,
                        b.origin.clone(),
                        "rescue/always in handlers are not supported; use plain handlers",
                    ));
                }
                let kw = keywords::inherit(parent, &b.keywords);
                out.extend(flatten_handlers(b.block, &kw)?);
            }
        }
    }
    Ok(out)
}
