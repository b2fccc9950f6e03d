//! Loading YAML and JSON files the way Ansible's `DataLoader` does: JSON first
//! (`json.loads`), then YAML with PyYAML's YAML 1.1 rules and Ansible's tags.
//!
//! The events come from serde-saphyr's parser (`granit_parser`, with line and
//! column for every node); the typing of plain scalars follows PyYAML's
//! resolver exactly: `yes`/`on` → true, `0644` → 420, `08` → "08", `1:20` → 80,
//! `1e3` → "1e3", `2001-12-14` → "2001-12-14", `~` → null. `!unsafe` marks
//! strings as never-templated; `<<` merge keys work.

use super::pyvalue::{dict_insert, PyVal, UNSAFE_KEY};
use regex::Regex;
use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A YAML (or JSON) problem with its position (1-based line and column).
#[derive(Debug, Clone)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

const CORE: &str = "tag:yaml.org,2002:";

#[derive(Debug)]
enum Kind {
    Scalar(String, ScalarStyle),
    Seq(Vec<usize>),
    Map(Vec<(usize, usize)>),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    /// The full tag (`tag:yaml.org,2002:int`, `!unsafe`, `!`), if any.
    tag: Option<String>,
    line: usize,
    col: usize,
}

/// Parses `text` as Ansible would: `Ok(None)` for an empty document.
pub(crate) fn load(text: &str) -> Result<Option<PyVal>, YamlError> {
    if let Some(v) = try_json(text) {
        return Ok(Some(v));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (nodes, root) = compose(text)?;
    match root {
        None => Ok(None),
        Some(r) => {
            let mut c = Constructor {
                nodes: &nodes,
                active: vec![false; nodes.len()],
                budget: 5_000_000,
            };
            c.construct(r, false).map(Some)
        }
    }
}

// ---------------------------------------------------------------- positioned nodes

/// A YAML node with its position (1-based line and column), typed exactly like [`load`]
/// types it (PyYAML's YAML 1.1 rules, Ansible's tags): what the playbook loader reads, so
/// every error can point at the key or value it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct SpannedNode {
    pub value: SpannedValue,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SpannedValue {
    /// null, bool, number or string; an `!unsafe` string is `{"__ansible_unsafe": "..."}`.
    Scalar(Value),
    Seq(Vec<SpannedNode>),
    /// Keys (scalars, typed) in order, `<<` merges applied, duplicate keys resolved the way
    /// a Python dict does (the later value wins, the first key keeps its place).
    Map(Vec<(SpannedNode, SpannedNode)>),
}

impl SpannedNode {
    /// The text of a string scalar (unsafe or not).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            SpannedValue::Scalar(Value::String(s)) => Some(s),
            SpannedValue::Scalar(v) => super::pyvalue::unsafe_text(v),
            _ => None,
        }
    }

    /// True for an `!unsafe` string.
    pub fn is_unsafe(&self) -> bool {
        matches!(&self.value, SpannedValue::Scalar(v) if super::pyvalue::unsafe_text(v).is_some())
    }

    /// The entries of a mapping.
    pub fn as_map(&self) -> Option<&[(SpannedNode, SpannedNode)]> {
        match &self.value {
            SpannedValue::Map(pairs) => Some(pairs),
            _ => None,
        }
    }

    /// The items of a sequence.
    pub fn as_seq(&self) -> Option<&[SpannedNode]> {
        match &self.value {
            SpannedValue::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, SpannedValue::Scalar(Value::Null))
    }

    /// The value of `key` in a mapping (string keys).
    pub fn get(&self, key: &str) -> Option<&SpannedNode> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A mapping key as the JSON key Ansible makes of it (`1` → "1", `true` → "true").
    pub fn key_text(&self) -> String {
        match &self.value {
            SpannedValue::Scalar(Value::String(s)) => s.clone(),
            SpannedValue::Scalar(Value::Null) => "null".into(),
            SpannedValue::Scalar(Value::Bool(b)) => b.to_string(),
            SpannedValue::Scalar(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i.to_string(),
                (_, Some(u)) => u.to_string(),
                _ => super::pyvalue::py_float_repr(n.as_f64().unwrap_or(f64::NAN)),
            },
            SpannedValue::Scalar(v) => match super::pyvalue::unsafe_text(v) {
                Some(s) => s.to_string(),
                None => v.to_string(),
            },
            _ => self.to_json().to_string(),
        }
    }

    /// The plain value (what [`load`] gives, as JSON).
    pub fn to_json(&self) -> Value {
        match &self.value {
            SpannedValue::Scalar(v) => v.clone(),
            SpannedValue::Seq(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            SpannedValue::Map(pairs) => {
                let mut m = serde_json::Map::new();
                for (k, v) in pairs {
                    m.insert(k.key_text(), v.to_json());
                }
                Value::Object(m)
            }
        }
    }

    /// A node for `value` with every part of it at (line, column).
    pub fn from_json(value: &Value, line: usize, column: usize) -> SpannedNode {
        let at = |value| SpannedNode {
            value,
            line,
            column,
        };
        match value {
            Value::Array(items) => at(SpannedValue::Seq(
                items
                    .iter()
                    .map(|v| Self::from_json(v, line, column))
                    .collect(),
            )),
            Value::Object(m) if super::pyvalue::unsafe_text(value).is_none() => {
                at(SpannedValue::Map(
                    m.iter()
                        .map(|(k, v)| {
                            (
                                at(SpannedValue::Scalar(Value::String(k.clone()))),
                                Self::from_json(v, line, column),
                            )
                        })
                        .collect(),
                ))
            }
            other => at(SpannedValue::Scalar(other.clone())),
        }
    }
}

/// Like [`load`], keeping the position of every node: `Ok(None)` for an empty document.
/// JSON text is read as JSON first (like Ansible); its nodes get their positions from the
/// same text read as YAML where the two agree.
pub fn load_spanned(text: &str) -> Result<Option<SpannedNode>, YamlError> {
    let stripped = text.strip_prefix('\u{feff}').unwrap_or(text);
    let yaml = || -> Result<Option<SpannedNode>, YamlError> {
        let (nodes, root) = compose(stripped)?;
        match root {
            None => Ok(None),
            Some(r) => {
                let mut c = Constructor {
                    nodes: &nodes,
                    active: vec![false; nodes.len()],
                    budget: 5_000_000,
                };
                c.spanned(r, false, false).map(Some)
            }
        }
    };
    if let Some(v) = try_json(text) {
        let json = v.to_json();
        return Ok(Some(match yaml() {
            Ok(Some(y)) => overlay(&json, &y),
            _ => SpannedNode::from_json(&json, 1, 1),
        }));
    }
    yaml()
}

/// `json`'s values with `pos`'s positions, as far as their shapes agree.
fn overlay(json: &Value, pos: &SpannedNode) -> SpannedNode {
    let value = match (json, &pos.value) {
        (Value::Array(items), SpannedValue::Seq(nodes)) if items.len() == nodes.len() => {
            SpannedValue::Seq(
                items
                    .iter()
                    .zip(nodes)
                    .map(|(j, n)| overlay(j, n))
                    .collect(),
            )
        }
        (Value::Object(m), SpannedValue::Map(pairs))
            if super::pyvalue::unsafe_text(json).is_none()
                && m.len() == pairs.len()
                && m.keys().zip(pairs).all(|(k, (pk, _))| *k == pk.key_text()) =>
        {
            SpannedValue::Map(
                m.iter()
                    .zip(pairs)
                    .map(|((k, v), (pk, pv))| {
                        (
                            SpannedNode {
                                value: SpannedValue::Scalar(Value::String(k.clone())),
                                line: pk.line,
                                column: pk.column,
                            },
                            overlay(v, pv),
                        )
                    })
                    .collect(),
            )
        }
        (Value::Array(_) | Value::Object(_), _) => {
            return SpannedNode::from_json(json, pos.line, pos.column)
        }
        (scalar, _) => SpannedValue::Scalar(scalar.clone()),
    };
    SpannedNode {
        value,
        line: pos.line,
        column: pos.column,
    }
}

impl Constructor<'_> {
    fn spanned(
        &mut self,
        id: usize,
        unsafe_ctx: bool,
        force_implicit: bool,
    ) -> Result<SpannedNode, YamlError> {
        if self.budget == 0 {
            return Err(self.err(
                id,
                "YAML aliases expand to too many values (an alias bomb?)",
            ));
        }
        self.budget -= 1;
        if self.active[id] {
            return Err(self.err(
                id,
                "recursive YAML anchors (a value that contains itself) are not supported",
            ));
        }
        self.active[id] = true;
        let r = self.spanned_inner(id, unsafe_ctx, force_implicit);
        self.active[id] = false;
        r
    }

    fn spanned_inner(
        &mut self,
        id: usize,
        unsafe_ctx: bool,
        force_implicit: bool,
    ) -> Result<SpannedNode, YamlError> {
        let nodes = self.nodes;
        let node = &nodes[id];
        let (line, column) = (node.line, node.col);
        let tag = self.resolved_tag(id, force_implicit);
        if tag == "!unsafe" && !matches!(node.kind, Kind::Scalar(..)) {
            return self.spanned_inner(id, true, true);
        }
        let value = match (tag.strip_prefix(CORE), &node.kind) {
            (Some("seq"), Kind::Seq(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    out.push(self.spanned(*it, unsafe_ctx, false)?);
                }
                SpannedValue::Seq(out)
            }
            (Some("map" | "python/dict"), Kind::Map(_)) => {
                let pairs = self.flatten(id)?;
                let mut out: Vec<(PyVal, SpannedNode, SpannedNode)> = Vec::new();
                for (k, v) in pairs {
                    let key = if self.resolved_tag(k, false) == format!("{CORE}value") {
                        match &nodes[k].kind {
                            Kind::Scalar(s, _) => PyVal::Str(s.clone()),
                            _ => self.construct(k, unsafe_ctx)?,
                        }
                    } else {
                        self.construct(k, unsafe_ctx)?
                    };
                    if !key.is_hashable() {
                        return Err(self.err(
                            k,
                            "found unhashable key (a list or mapping used as a mapping key)",
                        ));
                    }
                    let value = self.spanned(v, unsafe_ctx, false)?;
                    let key_json = match &key {
                        PyVal::Tuple(_) => Value::String(key.json_key()),
                        other => other.to_json(),
                    };
                    if let Some(slot) = out.iter_mut().find(|(kk, _, _)| kk.key_eq(&key)) {
                        slot.2 = value;
                    } else {
                        let knode = SpannedNode {
                            value: SpannedValue::Scalar(key_json),
                            line: nodes[k].line,
                            column: nodes[k].col,
                        };
                        out.push((key, knode, value));
                    }
                }
                SpannedValue::Map(out.into_iter().map(|(_, k, v)| (k, v)).collect())
            }
            _ => {
                let v = self.construct_inner(id, unsafe_ctx, force_implicit)?;
                return Ok(SpannedNode::from_json(&v.to_json(), line, column));
            }
        };
        Ok(SpannedNode {
            value,
            line,
            column,
        })
    }
}

// ---------------------------------------------------------------- JSON

fn try_json(text: &str) -> Option<PyVal> {
    let v: Value = serde_json::from_str(text).ok()?;
    json_to_py(&v)
}

/// Ansible's legacy JSON decoder: `{"__ansible_unsafe": "x"}` is an unsafe
/// string; `None` (decode failure) sends the text on to the YAML parser.
fn json_to_py(v: &Value) -> Option<PyVal> {
    Some(match v {
        Value::Null => PyVal::None,
        Value::Bool(b) => PyVal::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                PyVal::Int(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                PyVal::Int(i128::from(u))
            } else {
                PyVal::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => PyVal::Str(s.clone()),
        Value::Array(items) => PyVal::List(items.iter().map(json_to_py).collect::<Option<_>>()?),
        Value::Object(m) => {
            if let Some(u) = m.get(UNSAFE_KEY) {
                return u.as_str().map(|s| PyVal::Unsafe(s.to_string()));
            }
            if m.contains_key("__ansible_vault") {
                // Vault-encrypted values are not supported: let YAML parsing report it.
                return None;
            }
            let mut pairs = Vec::new();
            for (k, v) in m {
                pairs.push((PyVal::Str(k.clone()), json_to_py(v)?));
            }
            PyVal::Dict(pairs)
        }
    })
}

// ---------------------------------------------------------------- events → nodes

enum Frame {
    Seq(usize),
    Map(usize, Option<usize>),
}

fn compose(text: &str) -> Result<(Vec<Node>, Option<usize>), YamlError> {
    let mut opts = Options::default();
    opts.emit_comments = false;
    let parser = Parser::new_from_str_with_options(text, opts);
    let mut nodes: Vec<Node> = Vec::new();
    let mut anchors: HashMap<usize, usize> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<usize> = None;
    let mut documents = 0usize;

    for ev in parser {
        let (event, span) = ev.map_err(|e| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info(),
        })?;
        let (line, col) = (span.start.line(), span.start.col() + 1);
        let tag_of = |t: &Option<std::borrow::Cow<'_, serde_saphyr::granit_parser::Tag>>| {
            t.as_ref().map(|t| format!("{}{}", t.handle(), t.suffix()))
        };
        let done: Option<usize> = match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        line,
                        column: col,
                        message:
                            "expected a single document in the stream, but found another document"
                                .into(),
                    });
                }
                None
            }
            Event::Scalar(value, style, anchor, tag) => {
                nodes.push(Node {
                    kind: Kind::Scalar(value.into_owned(), style),
                    tag: tag_of(&tag),
                    line,
                    col,
                });
                let id = nodes.len() - 1;
                if anchor != 0 {
                    anchors.insert(anchor, id);
                }
                Some(id)
            }
            Event::Alias(anchor) => match anchors.get(&anchor) {
                Some(id) => Some(*id),
                None => {
                    return Err(YamlError {
                        line,
                        column: col,
                        message: "found undefined alias".into(),
                    });
                }
            },
            Event::SequenceStart(_, anchor, tag) => {
                nodes.push(Node {
                    kind: Kind::Seq(Vec::new()),
                    tag: tag_of(&tag),
                    line,
                    col,
                });
                let id = nodes.len() - 1;
                if anchor != 0 {
                    anchors.insert(anchor, id);
                }
                stack.push(Frame::Seq(id));
                None
            }
            Event::MappingStart(_, anchor, tag) => {
                nodes.push(Node {
                    kind: Kind::Map(Vec::new()),
                    tag: tag_of(&tag),
                    line,
                    col,
                });
                let id = nodes.len() - 1;
                if anchor != 0 {
                    anchors.insert(anchor, id);
                }
                stack.push(Frame::Map(id, None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(id)) | Some(Frame::Map(id, _)) => Some(id),
                None => None,
            },
            _ => None,
        };
        if let Some(id) = done {
            match stack.last_mut() {
                None => {
                    if root.is_none() {
                        root = Some(id);
                    }
                }
                Some(Frame::Seq(s)) => {
                    if let Kind::Seq(items) = &mut nodes[*s].kind {
                        items.push(id);
                    }
                }
                Some(Frame::Map(m, pending)) => match pending.take() {
                    None => *pending = Some(id),
                    Some(k) => {
                        let m = *m;
                        if let Kind::Map(pairs) = &mut nodes[m].kind {
                            pairs.push((k, id));
                        }
                    }
                },
            }
        }
    }
    Ok((nodes, root))
}

// ---------------------------------------------------------------- resolver

struct Resolvers {
    bool_: Regex,
    float: Regex,
    int: Regex,
    merge: Regex,
    null: Regex,
    timestamp: Regex,
    value: Regex,
    timestamp_parts: Regex,
}

fn resolvers() -> &'static Resolvers {
    static R: OnceLock<Resolvers> = OnceLock::new();
    R.get_or_init(|| {
        let b = |s: &str| Regex::new(s).unwrap_or_else(|e| panic!("built-in regex {s}: {e}"));
        Resolvers {
            bool_: b(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"),
            float: b(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
            int: b(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"),
            merge: b(r"^(?:<<)$"),
            null: b(r"^(?:~|null|Null|NULL|)$"),
            timestamp: b(r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"),
            value: b(r"^(?:=)$"),
            timestamp_parts: b(r"^(?P<year>[0-9][0-9][0-9][0-9])-(?P<month>[0-9][0-9]?)-(?P<day>[0-9][0-9]?)(?:(?:[Tt]|[ \t]+)(?P<hour>[0-9][0-9]?):(?P<minute>[0-9][0-9]):(?P<second>[0-9][0-9])(?:\.(?P<fraction>[0-9]*))?(?:[ \t]*(?P<tz>Z|(?P<tz_sign>[-+])(?P<tz_hour>[0-9][0-9]?)(?::(?P<tz_minute>[0-9][0-9]))?))?)?$"),
        }
    })
}

/// PyYAML's implicit resolver for a plain scalar: which tag its text means.
fn implicit_tag(value: &str) -> &'static str {
    let r = resolvers();
    let first = value.chars().next();
    let Some(c) = first else {
        return "null";
    };
    let in_set = |set: &str| set.contains(c);
    if in_set("yYnNtTfFoO") && r.bool_.is_match(value) {
        return "bool";
    }
    if in_set("-+0123456789.") && r.float.is_match(value) {
        return "float";
    }
    if in_set("-+0123456789") && r.int.is_match(value) {
        return "int";
    }
    if c == '<' && r.merge.is_match(value) {
        return "merge";
    }
    if in_set("~nN") && r.null.is_match(value) {
        return "null";
    }
    if c.is_ascii_digit() && r.timestamp.is_match(value) {
        return "timestamp";
    }
    if c == '=' && r.value.is_match(value) {
        return "value";
    }
    "str"
}

// ---------------------------------------------------------------- constructor

struct Constructor<'a> {
    nodes: &'a [Node],
    active: Vec<bool>,
    budget: usize,
}

impl Constructor<'_> {
    fn err(&self, id: usize, message: impl Into<String>) -> YamlError {
        let n = &self.nodes[id];
        YamlError {
            line: n.line,
            column: n.col,
            message: message.into(),
        }
    }

    /// The tag a node resolves to, as PyYAML's composer decides it.
    fn resolved_tag(&self, id: usize, force_implicit: bool) -> String {
        let n = &self.nodes[id];
        match (&n.kind, &n.tag) {
            (Kind::Scalar(v, style), tag) => {
                let plain = *style == ScalarStyle::Plain;
                match tag {
                    _ if force_implicit => format!("{CORE}{}", implicit_tag(v)),
                    None if plain => format!("{CORE}{}", implicit_tag(v)),
                    None => format!("{CORE}str"),
                    // PyYAML (and libyaml) resolve a `!`-tagged scalar like a plain one.
                    Some(t) if t == "!" => format!("{CORE}{}", implicit_tag(v)),
                    Some(t) => t.clone(),
                }
            }
            (Kind::Seq(_), tag) => match tag {
                Some(t) if t != "!" && !force_implicit => t.clone(),
                _ => format!("{CORE}seq"),
            },
            (Kind::Map(_), tag) => match tag {
                Some(t) if t != "!" && !force_implicit => t.clone(),
                _ => format!("{CORE}map"),
            },
        }
    }

    fn construct(&mut self, id: usize, unsafe_ctx: bool) -> Result<PyVal, YamlError> {
        self.construct_as(id, unsafe_ctx, false)
    }

    fn construct_as(
        &mut self,
        id: usize,
        unsafe_ctx: bool,
        force_implicit: bool,
    ) -> Result<PyVal, YamlError> {
        if self.budget == 0 {
            return Err(self.err(
                id,
                "YAML aliases expand to too many values (an alias bomb?)",
            ));
        }
        self.budget -= 1;
        if self.active[id] {
            return Err(self.err(
                id,
                "recursive YAML anchors (a value that contains itself) are not supported",
            ));
        }
        self.active[id] = true;
        let r = self.construct_inner(id, unsafe_ctx, force_implicit);
        self.active[id] = false;
        r
    }

    fn construct_inner(
        &mut self,
        id: usize,
        unsafe_ctx: bool,
        force_implicit: bool,
    ) -> Result<PyVal, YamlError> {
        let nodes = self.nodes;
        let node = &nodes[id];
        let tag = self.resolved_tag(id, force_implicit);
        match tag.as_str() {
            "!unsafe" => return self.construct_as_unsafe(id),
            "!vault" | "!vault-encrypted" => {
                return Err(self.err(id, format!("{tag} values are encrypted with ansible-vault, which homelab does not support yet; put the plain value in an unversioned vars file instead")))
            }
            _ => {}
        }
        let Some(short) = tag.strip_prefix(CORE) else {
            return Err(self.err(
                id,
                format!("could not determine a constructor for the tag '{tag}'"),
            ));
        };
        match (short, &node.kind) {
            ("str" | "python/unicode", Kind::Scalar(v, _)) => Ok(if unsafe_ctx {
                PyVal::Unsafe(v.clone())
            } else {
                PyVal::Str(v.clone())
            }),
            ("null", Kind::Scalar(..)) => Ok(PyVal::None),
            ("bool", Kind::Scalar(v, _)) => match v.to_lowercase().as_str() {
                "yes" | "true" | "on" => Ok(PyVal::Bool(true)),
                "no" | "false" | "off" => Ok(PyVal::Bool(false)),
                _ => Err(self.err(id, format!("'{v}' is not a YAML boolean"))),
            },
            ("int", Kind::Scalar(v, _)) => {
                construct_int(v).ok_or_else(|| self.err(id, format!("'{v}' is not an integer")))
            }
            ("float", Kind::Scalar(v, _)) => construct_float(v)
                .map(PyVal::Float)
                .ok_or_else(|| self.err(id, format!("'{v}' is not a float"))),
            ("timestamp", Kind::Scalar(v, _)) => construct_timestamp(v)
                .map(PyVal::Str)
                .map_err(|m| self.err(id, m)),
            ("binary", _) => Err(self.err(
                id,
                "!!binary values cannot be inventory variables (Ansible cannot print them either)",
            )),
            ("seq", Kind::Seq(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    out.push(self.construct(*it, unsafe_ctx)?);
                }
                Ok(PyVal::List(out))
            }
            ("map" | "python/dict", Kind::Map(_)) => {
                self.construct_mapping(id, unsafe_ctx).map(PyVal::Dict)
            }
            ("set", Kind::Map(_)) => {
                let pairs = self.construct_mapping(id, unsafe_ctx)?;
                Ok(PyVal::List(pairs.into_iter().map(|(k, _)| k).collect()))
            }
            ("omap" | "pairs", Kind::Seq(items)) => {
                let mut out = Vec::new();
                for it in items {
                    match &nodes[*it].kind {
                        Kind::Map(pairs) if pairs.len() == 1 => {
                            let (k, v) = pairs[0];
                            let k = self.construct(k, unsafe_ctx)?;
                            let v = self.construct(v, unsafe_ctx)?;
                            out.push(PyVal::List(vec![k, v]));
                        }
                        _ => {
                            return Err(self.err(
                                *it,
                                format!("!!{short} expects a list of single-key mappings"),
                            ))
                        }
                    }
                }
                Ok(PyVal::List(out))
            }
            (_, Kind::Scalar(..))
                if matches!(
                    short,
                    "seq" | "map" | "set" | "omap" | "pairs" | "python/dict"
                ) =>
            {
                Err(self.err(id, format!("!!{short} cannot tag a scalar")))
            }
            (_, Kind::Seq(_) | Kind::Map(_))
                if matches!(
                    short,
                    "str" | "int" | "float" | "bool" | "null" | "timestamp" | "python/unicode"
                ) =>
            {
                Err(self.err(
                    id,
                    format!("expected a scalar node for !!{short}, but found a collection"),
                ))
            }
            ("seq", _) | ("omap", _) | ("pairs", _) => {
                Err(self.err(id, format!("expected a sequence node for !!{short}")))
            }
            ("map", _) | ("set", _) | ("python/dict", _) => {
                Err(self.err(id, format!("expected a mapping node for !!{short}")))
            }
            _ => Err(self.err(
                id,
                format!("could not determine a constructor for the tag '{tag}'"),
            )),
        }
    }

    /// Ansible's `!unsafe`: resolve the node as if untagged (scalars by their
    /// text, even when quoted), and mark every string inside as unsafe.
    fn construct_as_unsafe(&mut self, id: usize) -> Result<PyVal, YamlError> {
        self.construct_inner(id, true, true)
    }

    /// SafeConstructor.construct_mapping with flatten_mapping (`<<` merges).
    fn construct_mapping(
        &mut self,
        id: usize,
        unsafe_ctx: bool,
    ) -> Result<Vec<(PyVal, PyVal)>, YamlError> {
        let pairs = self.flatten(id)?;
        let mut out: Vec<(PyVal, PyVal)> = Vec::new();
        for (k, v) in pairs {
            let key = if self.resolved_tag(k, false) == format!("{CORE}value") {
                match &self.nodes[k].kind {
                    Kind::Scalar(s, _) => PyVal::Str(s.clone()),
                    _ => self.construct(k, unsafe_ctx)?,
                }
            } else {
                self.construct(k, unsafe_ctx)?
            };
            if !key.is_hashable() {
                return Err(self.err(
                    k,
                    "found unhashable key (a list or mapping used as a mapping key)",
                ));
            }
            let value = self.construct(v, unsafe_ctx)?;
            dict_insert(&mut out, key, value);
        }
        Ok(out)
    }

    fn flatten(&self, id: usize) -> Result<Vec<(usize, usize)>, YamlError> {
        self.flatten_in(id, &mut Vec::new())
    }

    fn flatten_in(
        &self,
        id: usize,
        visiting: &mut Vec<usize>,
    ) -> Result<Vec<(usize, usize)>, YamlError> {
        let Kind::Map(pairs) = &self.nodes[id].kind else {
            return Err(self.err(id, "expected a mapping"));
        };
        if visiting.contains(&id) {
            return Err(self.err(
                id,
                "a `<<` merge includes the mapping it is in (recursive anchors are not supported)",
            ));
        }
        visiting.push(id);
        let r = self.flatten_pairs(pairs, visiting);
        visiting.pop();
        r
    }

    fn flatten_pairs(
        &self,
        pairs: &[(usize, usize)],
        visiting: &mut Vec<usize>,
    ) -> Result<Vec<(usize, usize)>, YamlError> {
        let mut merge: Vec<(usize, usize)> = Vec::new();
        let mut rest: Vec<(usize, usize)> = Vec::new();
        for &(k, v) in pairs {
            if self.resolved_tag(k, false) == format!("{CORE}merge") {
                match &self.nodes[v].kind {
                    Kind::Map(_) => merge.extend(self.flatten_in(v, visiting)?),
                    Kind::Seq(items) => {
                        let mut sub = Vec::new();
                        for it in items {
                            if !matches!(self.nodes[*it].kind, Kind::Map(_)) {
                                return Err(self.err(*it, "expected a mapping for merging"));
                            }
                            sub.push(self.flatten_in(*it, visiting)?);
                        }
                        sub.reverse();
                        for s in sub {
                            merge.extend(s);
                        }
                    }
                    Kind::Scalar(..) => {
                        return Err(
                            self.err(v, "expected a mapping or list of mappings for merging")
                        );
                    }
                }
            } else {
                rest.push((k, v));
            }
        }
        merge.extend(rest);
        Ok(merge)
    }
}

/// SafeConstructor.construct_yaml_int.
fn construct_int(text: &str) -> Option<PyVal> {
    let v = text.replace('_', "");
    let (sign, v) = match v.strip_prefix('-') {
        Some(r) => (-1i128, r.to_string()),
        None => (1, v.strip_prefix('+').unwrap_or(&v).to_string()),
    };
    let parse = |digits: &str, radix: u32| -> Option<PyVal> {
        let d = digits.trim();
        if d.is_empty() {
            return None;
        }
        match i128::from_str_radix(d, radix) {
            Ok(n) => Some(PyVal::Int(sign * n)),
            Err(_) if d.chars().all(|c| c.is_digit(radix)) => {
                // Beyond 128 bits: Python keeps it exact, JSON here cannot.
                let f = d.chars().fold(0f64, |acc, c| {
                    acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
                });
                Some(PyVal::Float(sign as f64 * f))
            }
            Err(_) => None,
        }
    };
    let first = v.chars().next()?;
    if v == "0" {
        Some(PyVal::Int(0))
    } else if let Some(r) = v.strip_prefix("0b") {
        parse(r, 2)
    } else if let Some(r) = v.strip_prefix("0x") {
        parse(r, 16)
    } else if first == '0' {
        let r = v
            .strip_prefix("0o")
            .or_else(|| v.strip_prefix("0O"))
            .unwrap_or(&v);
        parse(r, 8)
    } else if v.contains(':') {
        let mut total: i128 = 0;
        for part in v.split(':') {
            let p: i128 = part.trim().parse().ok()?;
            total = total.checked_mul(60)?.checked_add(p)?;
        }
        Some(PyVal::Int(sign * total))
    } else {
        parse(&v, 10)
    }
}

/// Python's `float()` on a cleaned-up string.
fn py_float(s: &str) -> Option<f64> {
    let t = s.trim().to_ascii_lowercase();
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t.strip_prefix('+').unwrap_or(&t).to_string()),
    };
    let v = match body.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        b => {
            if b.is_empty()
                || !b
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
            {
                return None;
            }
            let mut n = b.to_string();
            if n.starts_with('.') {
                n.insert(0, '0');
            }
            n = n.replace(".e", ".0e");
            if n.ends_with('.') {
                n.push('0');
            }
            n.parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

/// SafeConstructor.construct_yaml_float.
fn construct_float(text: &str) -> Option<f64> {
    let v = text.replace('_', "").to_lowercase();
    let (sign, v) = match v.strip_prefix('-') {
        Some(r) => (-1.0, r.to_string()),
        None => (1.0, v.strip_prefix('+').unwrap_or(&v).to_string()),
    };
    if v == ".inf" {
        Some(sign * f64::INFINITY)
    } else if v == ".nan" {
        Some(f64::NAN)
    } else if v.contains(':') {
        let mut total = 0.0;
        for part in v.split(':') {
            total = total * 60.0 + py_float(part)?;
        }
        Some(sign * total)
    } else {
        Some(sign * py_float(&v)?)
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// SafeConstructor.construct_yaml_timestamp, printed the way Ansible's JSON
/// encoder prints dates (`isoformat()`).
fn construct_timestamp(text: &str) -> Result<String, String> {
    let caps = resolvers()
        .timestamp_parts
        .captures(text)
        .ok_or_else(|| format!("'{text}' is not a timestamp"))?;
    let num = |name: &str| -> i64 {
        caps.name(name)
            .and_then(|m| m.as_str().parse().ok())
            .unwrap_or(0)
    };
    let (year, month, day) = (num("year"), num("month"), num("day"));
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || year < 1 {
        return Err(format!("'{text}' is not a valid date"));
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if caps.name("hour").is_none() {
        return Ok(date);
    }
    let (hour, minute, second) = (num("hour"), num("minute"), num("second"));
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("'{text}' is not a valid time"));
    }
    let mut out = format!("{date}T{hour:02}:{minute:02}:{second:02}");
    if let Some(f) = caps.name("fraction") {
        let mut f: String = f.as_str().chars().take(6).collect();
        while f.len() < 6 {
            f.push('0');
        }
        if f != "000000" {
            out.push('.');
            out.push_str(&f);
        }
    }
    if let Some(sign) = caps.name("tz_sign") {
        let (h, m) = (num("tz_hour"), num("tz_minute"));
        if h * 60 + m >= 24 * 60 {
            return Err(format!("'{text}' has a time zone offset of a day or more"));
        }
        if h == 0 && m == 0 {
            out.push_str("+00:00");
        } else {
            out.push_str(&format!("{}{h:02}:{m:02}", sign.as_str()));
        }
    } else if caps.name("tz").is_some() {
        out.push_str("+00:00");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(s: &str) -> serde_json::Value {
        match load(s) {
            Ok(Some(v)) => v.to_json(),
            Ok(None) => serde_json::Value::Null,
            Err(e) => panic!("{}:{}: {}", e.line, e.column, e.message),
        }
    }

    #[test]
    fn scalars_follow_pyyaml_1_1() {
        let v = yaml(concat!(
            "oct: 0644\noct2: 0o644\neight: 08\nhex: 0x1F\nsexa: 1:20\nsexaf: 1:20.5\nyes_: yes\non_: On\n",
            "y_: y\ntilde: ~\nnul: null\nexp: 1e3\nexp2: 1.0e+3\nexp3: 1.5e3\ndot: .5\n",
            "date: 2001-12-14\nts: 2001-12-14t21:59:43.10-05:00\nutc: 2001-12-14 21:59:43Z\n",
            "under: 1_000\nbin: 0b101\nplus: +12\nstr: \"0644\"\nbool_str: 'yes'\nneg0: -0\n",
            "float_int: 1.0\nstr_tag: !!str 123\nint_tag: !!int \"12\"\nfloat_tag: !!float \"1\"\n",
            "empty:\nmulti: |\n  line1\n  line2\nnonspecific: ! 12\n"
        ));
        assert_eq!(
            v,
            json!({
                "oct": 420, "oct2": "0o644", "eight": "08", "hex": 31, "sexa": 80, "sexaf": 80.5,
                "yes_": true, "on_": true, "y_": "y", "tilde": null, "nul": null, "exp": "1e3",
                "exp2": 1000.0, "exp3": "1.5e3", "dot": 0.5, "date": "2001-12-14",
                "ts": "2001-12-14T21:59:43.100000-05:00", "utc": "2001-12-14T21:59:43+00:00",
                "under": 1000, "bin": 5, "plus": 12, "str": "0644", "bool_str": "yes", "neg0": 0,
                "float_int": 1.0, "str_tag": "123", "int_tag": 12, "float_tag": 1.0, "empty": null,
                "multi": "line1\nline2\n", "nonspecific": 12
            })
        );
    }

    #[test]
    fn merge_keys_anchors_and_unsafe() {
        let v = yaml("base: &b {a: 1, b: 2}\nm:\n  <<: *b\n  b: 3\nl: &l [1, 2]\nal: *l\nu: !unsafe '{{ x }}'\nu2: !unsafe 12\nu3: !unsafe [a]\nk: {1: a, true: b, null: c, 1.5: d}\n");
        assert_eq!(v["m"], json!({"a": 1, "b": 3}));
        assert_eq!(v["al"], json!([1, 2]));
        assert_eq!(v["u"], json!({"__ansible_unsafe": "{{ x }}"}));
        assert_eq!(v["u2"], json!(12));
        assert_eq!(v["u3"], json!([{"__ansible_unsafe": "a"}]));
        assert_eq!(v["k"], json!({"1": "b", "null": "c", "1.5": "d"}));
    }

    #[test]
    fn json_comes_first() {
        assert_eq!(
            yaml("{\"a\": 1e3, \"u\": {\"__ansible_unsafe\": \"y\"}}"),
            json!({"a": 1000.0, "u": {"__ansible_unsafe": "y"}})
        );
    }

    #[test]
    fn errors_have_positions() {
        let e = load("all:\n  hosts:\n    h1: [\n")
            .err()
            .map(|e| (e.line, e.message));
        assert!(e.is_some());
        let e = load("a: 1\nb: =\n").err().map(|e| (e.line, e.column));
        assert_eq!(e, Some((2, 4)));
        assert!(load("a: 1\n---\nb: 2\n").is_err());
        assert!(load("a: !foo x\n").is_err());
    }

    #[test]
    fn empty_is_none() {
        assert!(matches!(load(""), Ok(None)));
        assert!(matches!(load("# only a comment\n"), Ok(None)));
    }
}

#[cfg(test)]
mod spanned {
    use super::*;
    use serde_json::json;

    fn same_as_load(text: &str) {
        let plain = load(text).unwrap().map(|v| v.to_json());
        let spanned = load_spanned(text).unwrap().map(|n| n.to_json());
        assert_eq!(plain, spanned, "{text}");
    }

    #[test]
    fn values_match_load() {
        same_as_load(
            "oct: 0644\nstr: \"0644\"\nyes_: yes\nu: !unsafe '{{ x }}'\nu3: !unsafe [a, {b: c}]\n",
        );
        same_as_load("base: &b {a: 1, b: 2}\nm:\n  <<: *b\n  b: 3\nk: {1: a, true: b, 1.5: d}\ns: !!set {a, b}\n");
        same_as_load("{\"a\": 1e3, \"u\": {\"__ansible_unsafe\": \"y\"}}");
        same_as_load("- a\n- [1, 2]\n- a: b\n  c: d\n");
        assert!(load_spanned("").unwrap().is_none());
    }

    #[test]
    fn positions() {
        let n = load_spanned("- name: x\n  copy:\n    mode: 0644\n")
            .unwrap()
            .unwrap();
        assert_eq!((n.line, n.column), (1, 1));
        let task = &n.as_seq().unwrap()[0];
        assert_eq!((task.line, task.column), (1, 3));
        let (k, v) = &task.as_map().unwrap()[1];
        assert_eq!((k.as_str(), k.line, k.column), (Some("copy"), 2, 3));
        let mode = v.get("mode").unwrap();
        assert_eq!(
            (mode.line, mode.column, mode.to_json()),
            (3, 11, json!(420))
        );
        let j = load_spanned("[{\"hosts\": \"all\",\n \"x\": 1e3}]")
            .unwrap()
            .unwrap();
        let x = j.as_seq().unwrap()[0].get("x").unwrap();
        assert_eq!((x.line, x.column, x.to_json()), (2, 7, json!(1000.0)));
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn recursive_and_exploding_aliases_are_errors() {
        assert!(load("a: &a\n  <<: *a\n").is_err());
        assert!(load("a: &a [*a]\n").is_err());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        assert!(load(&bomb).is_err());
    }
}
