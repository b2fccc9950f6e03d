//! The variables a template sees, templated lazily.
//!
//! `Vars` is a stack of layers (`Arc`-shared, so `with` is cheap). When a
//! template reads a variable, the value is wrapped into minijinja values on
//! demand: strings that look like templates are rendered then (with the same
//! variables, so `a: "{{ b }}"` and `b: "{{ c | upper }}"` chain), lists and
//! dicts become lazy objects whose items are templated when read. A stack of
//! the variables being rendered catches loops (`a: "{{ a }}"`).

use super::Shared;
use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind};
use serde_json::{Map, Number};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many variable templates may be rendered inside one another.
const MAX_NESTING: usize = 64;

/// The key under which the context answers with itself (for lookups).
pub(crate) const CTX_KEY: &str = "__homelab_ctx__";

/// A variable value, shared between layers and lazy objects without copies.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Num(Number),
    /// A string that may be a template.
    Str(Arc<str>),
    /// A string never templated (`!unsafe`, `{"__ansible_unsafe": ...}`).
    Unsafe(Arc<str>),
    List(Arc<Vec<Node>>),
    Map(Arc<IndexMap<String, Node>>),
}

impl Node {
    pub(crate) fn from_json(v: serde_json::Value) -> Node {
        if let Some(s) = crate::inventory::unsafe_text(&v) {
            return Node::Unsafe(Arc::from(s));
        }
        match v {
            serde_json::Value::Null => Node::Null,
            serde_json::Value::Bool(b) => Node::Bool(b),
            serde_json::Value::Number(n) => Node::Num(n),
            serde_json::Value::String(s) => Node::Str(Arc::from(s)),
            serde_json::Value::Array(items) => {
                Node::List(Arc::new(items.into_iter().map(Node::from_json).collect()))
            }
            serde_json::Value::Object(m) => Node::Map(Arc::new(
                m.into_iter()
                    .map(|(k, v)| (k, Node::from_json(v)))
                    .collect(),
            )),
        }
    }

    /// The plain JSON (unsafe strings keep their marker).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Node::Null => serde_json::Value::Null,
            Node::Bool(b) => serde_json::Value::Bool(*b),
            Node::Num(n) => serde_json::Value::Number(n.clone()),
            Node::Str(s) => serde_json::Value::String(s.to_string()),
            Node::Unsafe(s) => {
                let mut m = Map::new();
                m.insert(
                    crate::inventory::UNSAFE_KEY.to_string(),
                    serde_json::Value::String(s.to_string()),
                );
                serde_json::Value::Object(m)
            }
            Node::List(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Node::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

/// A variable value converted once, to be shared by many [`Vars`] (see [`Vars::with_prebuilt`]).
#[derive(Debug, Clone)]
pub struct Prebuilt(Node);

impl Prebuilt {
    pub fn from_json(v: serde_json::Value) -> Prebuilt {
        Prebuilt(Node::from_json(v))
    }
    /// A mapping of prebuilt values.
    pub fn map(entries: impl IntoIterator<Item = (String, Prebuilt)>) -> Prebuilt {
        Prebuilt(Node::Map(Arc::new(
            entries.into_iter().map(|(k, v)| (k, v.0)).collect(),
        )))
    }
}

/// Whether a string would be templated (Ansible's `is_possibly_template`).
pub(crate) fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

#[derive(Debug)]
struct Layer {
    map: Arc<IndexMap<String, Node>>,
    parent: Option<Arc<Layer>>,
}

/// The variables visible to a template: every variable already merged by
/// precedence, plus cheap layers on top (loop item, task vars).
#[derive(Debug, Clone)]
pub struct Vars {
    top: Arc<Layer>,
    base_dir: Option<Arc<PathBuf>>,
}

impl Default for Vars {
    fn default() -> Self {
        Vars::new(Map::new())
    }
}

impl Vars {
    /// `map` holds every variable already merged by precedence (highest wins).
    pub fn new(map: Map<String, serde_json::Value>) -> Vars {
        Vars {
            top: Arc::new(Layer {
                map: Arc::new(
                    map.into_iter()
                        .map(|(k, v)| (k, Node::from_json(v)))
                        .collect(),
                ),
                parent: None,
            }),
            base_dir: None,
        }
    }

    /// A layer on top of these variables (its names win); the base is shared.
    pub fn with(&self, extra: Map<String, serde_json::Value>) -> Vars {
        Vars {
            top: Arc::new(Layer {
                map: Arc::new(
                    extra
                        .into_iter()
                        .map(|(k, v)| (k, Node::from_json(v)))
                        .collect(),
                ),
                parent: Some(self.top.clone()),
            }),
            base_dir: self.base_dir.clone(),
        }
    }

    /// A layer of values converted beforehand (shared, not copied): `hostvars` is the same for
    /// every task on every host until a fact changes.
    pub fn with_prebuilt(&self, entries: Vec<(String, Prebuilt)>) -> Vars {
        Vars {
            top: Arc::new(Layer {
                map: Arc::new(entries.into_iter().map(|(k, v)| (k, v.0)).collect()),
                parent: Some(self.top.clone()),
            }),
            base_dir: self.base_dir.clone(),
        }
    }

    /// A layer whose variables are the entries of a prebuilt mapping, shared (not copied): a
    /// host's facts are converted once and layered under every task's variables until they
    /// change. A value that is not a mapping adds nothing.
    pub fn with_prebuilt_map(&self, map: &Prebuilt) -> Vars {
        let map = match &map.0 {
            Node::Map(m) => m.clone(),
            _ => Arc::new(IndexMap::new()),
        };
        Vars {
            top: Arc::new(Layer {
                map,
                parent: Some(self.top.clone()),
            }),
            base_dir: self.base_dir.clone(),
        }
    }

    /// The directory relative paths of `lookup('file')`/`lookup('template')` start from
    /// (default: the current directory).
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Vars {
        self.base_dir = Some(Arc::new(dir.into()));
        self
    }

    pub fn base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref().map(|p| p.as_path())
    }

    pub(crate) fn node(&self, name: &str) -> Option<&Node> {
        let mut layer = Some(&self.top);
        while let Some(l) = layer {
            if let Some(v) = l.map.get(name) {
                return Some(v);
            }
            layer = l.parent.as_ref();
        }
        None
    }

    /// The raw (untemplated) value of a variable, unsafe strings marked.
    pub fn get_raw(&self, name: &str) -> Option<serde_json::Value> {
        self.node(name).map(Node::to_json)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.node(name).is_some()
    }

    /// Every variable name, highest layer first, each once.
    pub fn names(&self) -> Vec<String> {
        let mut seen = indexmap::IndexSet::new();
        let mut layer = Some(&self.top);
        while let Some(l) = layer {
            for k in l.map.keys() {
                seen.insert(k.clone());
            }
            layer = l.parent.as_ref();
        }
        seen.into_iter().collect()
    }
}

/// One rendering's view of the variables: holds the loop-detection stack,
/// a cache of templated top-level variables and why some came out undefined.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) vars: Vars,
    stack: Mutex<Vec<String>>,
    cache: Mutex<HashMap<String, Option<Value>>>,
    /// variable path → the undefined error its template ran into.
    pub(crate) undefined_reasons: Mutex<HashMap<String, String>>,
}

impl Ctx {
    pub(crate) fn new(shared: Arc<Shared>, vars: Vars) -> Arc<Ctx> {
        Arc::new(Ctx {
            shared,
            vars,
            stack: Mutex::new(Vec::new()),
            cache: Mutex::new(HashMap::new()),
            undefined_reasons: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn value(self: &Arc<Self>) -> Value {
        Value::from_dyn_object(self.clone())
    }

    /// A variable by name, templated (what a template's `name` reads).
    pub(crate) fn var(self: &Arc<Self>, name: &str) -> Option<Value> {
        if let Some(hit) = self.cache.lock().unwrap().get(name) {
            return hit.clone();
        }
        let node = self.vars.node(name)?.clone();
        let v = self.node_value(&node, name);
        // errors (invalid values) are not cached: they may depend on the stack
        if !matches!(&v, Some(v) if v.kind() == minijinja::value::ValueKind::Invalid) {
            self.cache
                .lock()
                .unwrap()
                .insert(name.to_string(), v.clone());
        }
        v
    }

    /// Wraps a node for a template; `None` when its template is undefined.
    pub(crate) fn node_value(self: &Arc<Self>, node: &Node, path: &str) -> Option<Value> {
        Some(match node {
            Node::Null => Value::from(()),
            Node::Bool(b) => Value::from(*b),
            Node::Num(n) => num_value(n),
            Node::Str(s) => {
                if is_template(s) {
                    return self.template(s, path);
                }
                Value::from(s.clone())
            }
            Node::Unsafe(s) => Value::from(s.clone()),
            Node::List(items) => Value::from_object(LazySeq {
                ctx: self.clone(),
                items: items.clone(),
                path: path.to_string(),
            }),
            Node::Map(m) => Value::from_object(LazyMap {
                ctx: self.clone(),
                map: m.clone(),
                path: path.to_string(),
            }),
        })
    }

    /// Renders the template string of variable `path` with these variables.
    fn template(self: &Arc<Self>, source: &str, path: &str) -> Option<Value> {
        {
            let mut stack = self.stack.lock().unwrap();
            if stack.iter().any(|p| p == path) || stack.len() >= MAX_NESTING {
                let name = top_name(path);
                return Some(Value::from(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("recursive loop detected in template for variable '{name}'"),
                )));
            }
            stack.push(path.to_string());
        }
        let name = format!("variable '{path}'");
        let result = self.shared.render_native_in(source, &name, self, true);
        self.stack.lock().unwrap().pop();
        match result {
            Ok(v) => Some(v),
            Err(e) if e.kind() == ErrorKind::UndefinedError => {
                let reason = super::undefined_message(&e);
                self.undefined_reasons
                    .lock()
                    .unwrap()
                    .entry(path.to_string())
                    .or_insert(reason);
                None
            }
            Err(e) => Some(Value::from(e)),
        }
    }
}

fn top_name(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

pub(crate) fn num_value(n: &Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::from(i)
    } else if let Some(u) = n.as_u64() {
        Value::from(u)
    } else {
        Value::from(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl Object for Ctx {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if let Some(v) = self.var(name) {
            return Some(v);
        }
        if self.vars.node(name).is_some() {
            // defined, but its template is undefined
            return None;
        }
        match name {
            CTX_KEY => Some(self.value()),
            "omit" => Some(Value::from(self.shared.omit.clone())),
            "vars" => Some(Value::from_object(VarsView { ctx: self.clone() })),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.vars.names().into_iter().map(Value::from).collect())
    }
}

/// `vars`: every variable as a mapping (`vars['name']`).
#[derive(Debug)]
struct VarsView {
    ctx: Arc<Ctx>,
}

impl Object for VarsView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.ctx.var(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.ctx.vars.names().into_iter().map(Value::from).collect())
    }
}

#[derive(Debug)]
pub(crate) struct LazyMap {
    ctx: Arc<Ctx>,
    map: Arc<IndexMap<String, Node>>,
    path: String,
}

impl Object for LazyMap {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let k = key.as_str()?;
        let node = self.map.get(k)?;
        self.ctx.node_value(node, &format!("{}.{}", self.path, k))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.map.keys().map(|k| Value::from(k.as_str())).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.map.len())
    }
}

#[derive(Debug)]
pub(crate) struct LazySeq {
    ctx: Arc<Ctx>,
    items: Arc<Vec<Node>>,
    path: String,
}

impl Object for LazySeq {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let idx = key.as_i64()?;
        let idx = if idx < 0 {
            self.items.len() as i64 + idx
        } else {
            idx
        };
        let node = self.items.get(usize::try_from(idx).ok()?)?;
        Some(
            self.ctx
                .node_value(node, &format!("{}[{}]", self.path, idx))
                .unwrap_or(Value::UNDEFINED),
        )
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.items.len())
    }
}
