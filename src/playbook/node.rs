//! Reading typed keyword values out of positioned YAML nodes, with errors that point at them.

use super::error::{at, ErrorKind, LoadError};
use crate::inventory::{py_str, unsafe_text, SpannedNode, SpannedValue};
use serde_json::{Map, Value};
use std::path::Path;

pub(crate) type Node = SpannedNode;
pub(crate) type Result<T> = std::result::Result<T, LoadError>;

pub(crate) fn origin(file: &Path, n: &Node) -> super::ast::Origin {
    at(file, n.line, n.column)
}

pub(crate) fn err(kind: ErrorKind, file: &Path, n: &Node, msg: impl Into<String>) -> LoadError {
    LoadError::new(kind, origin(file, n), msg)
}

pub(crate) fn bad(file: &Path, n: &Node, msg: impl Into<String>) -> LoadError {
    err(ErrorKind::BadValue, file, n, msg)
}

/// What a value is, for messages.
pub(crate) fn type_name(n: &Node) -> &'static str {
    match &n.value {
        SpannedValue::Seq(_) => "a list",
        SpannedValue::Map(_) => "a mapping",
        SpannedValue::Scalar(v) => match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            _ if unsafe_text(v).is_some() => "a string",
            _ => "a value",
        },
    }
}

pub(crate) fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// A scalar as Python's `str()` would print it (`true` → "True", `1.0` → "1.0").
pub(crate) fn scalar_text(n: &Node) -> Option<String> {
    match &n.value {
        SpannedValue::Scalar(Value::Null) => None,
        SpannedValue::Scalar(v) => match unsafe_text(v) {
            Some(s) => Some(s.to_string()),
            None if v.is_object() || v.is_array() => None,
            None => Some(py_str(v)),
        },
        _ => None,
    }
}

/// A string keyword (`name`, `become_user`, `delegate_to` ...): any scalar, printed like
/// Python does; null is "not set".
pub(crate) fn opt_string(file: &Path, key: &str, n: &Node) -> Result<Option<String>> {
    if n.is_null() {
        return Ok(None);
    }
    scalar_text(n).map(Some).ok_or_else(|| {
        bad(
            file,
            n,
            format!("'{key}' must be a string, not {}", type_name(n)),
        )
    })
}

/// A yes/no keyword: YAML booleans and Ansible's `boolean()` strings (yes/no, true/false, 1/0,
/// on/off, y/n, t/f).
pub(crate) fn opt_bool(file: &Path, key: &str, n: &Node) -> Result<Option<bool>> {
    let fail = |extra: &str| {
        bad(
            file,
            n,
            format!("'{key}' must be true or false, not {}{extra}", type_name(n)),
        )
    };
    match &n.value {
        SpannedValue::Scalar(Value::Null) => Ok(None),
        SpannedValue::Scalar(Value::Bool(b)) => Ok(Some(*b)),
        SpannedValue::Scalar(Value::Number(x)) => match x.as_f64() {
            Some(1.0) => Ok(Some(true)),
            Some(0.0) => Ok(Some(false)),
            _ => Err(fail("")),
        },
        _ => {
            let Some(s) = n.as_str() else {
                return Err(fail(""));
            };
            match s.trim().to_lowercase().as_str() {
                "y" | "yes" | "on" | "1" | "true" | "t" | "1.0" => Ok(Some(true)),
                "n" | "no" | "off" | "0" | "false" | "f" | "0.0" => Ok(Some(false)),
                _ if is_template(s) => Err(err(
                    ErrorKind::Unsupported,
                    file,
                    n,
                    format!(
                        "'{key}: {s}': a template here is not supported yet; write true or false"
                    ),
                )),
                _ => Err(bad(
                    file,
                    n,
                    format!("'{key}' must be true or false, not '{s}'"),
                )),
            }
        }
    }
}

/// A condition list (`when`, `changed_when`, `failed_when`, `until`): a string, a boolean
/// (`True`/`False`), a number, or a list of those.
pub(crate) fn conditions(file: &Path, key: &str, n: &Node) -> Result<Vec<String>> {
    let one = |item: &Node| -> Result<Option<String>> {
        match &item.value {
            SpannedValue::Scalar(Value::Null) => Ok(None),
            SpannedValue::Scalar(_) => scalar_text(item).map(Some).ok_or_else(|| {
                bad(file, item, format!("'{key}' conditions must be strings"))
            }),
            _ => Err(bad(
                file,
                item,
                format!(
                    "'{key}' must be a condition (a string like \"x is defined\") or a list of them, not {}",
                    type_name(item)
                ),
            )),
        }
    };
    match &n.value {
        SpannedValue::Seq(items) => {
            let mut out = Vec::new();
            for it in items {
                out.extend(one(it)?);
            }
            Ok(out)
        }
        _ => Ok(one(n)?.into_iter().collect()),
    }
}

/// `tags`: a list, or a string of comma-separated tags.
pub(crate) fn tags(file: &Path, n: &Node) -> Result<Vec<String>> {
    match &n.value {
        SpannedValue::Scalar(Value::Null) => Ok(Vec::new()),
        SpannedValue::Seq(items) => items
            .iter()
            .map(|it| {
                scalar_text(it).ok_or_else(|| {
                    bad(
                        file,
                        it,
                        format!("a tag must be a string, not {}", type_name(it)),
                    )
                })
            })
            .collect(),
        _ => match n.as_str() {
            Some(s) => Ok(s.split(',').map(|t| t.trim().to_string()).collect()),
            None => Err(bad(
                file,
                n,
                format!(
                    "'tags' must be a list or a comma-separated string, not {}",
                    type_name(n)
                ),
            )),
        },
    }
}

/// A string or a list of strings (`notify`, `listen`, `gather_subset`).
pub(crate) fn string_list(file: &Path, key: &str, n: &Node) -> Result<Vec<String>> {
    match &n.value {
        SpannedValue::Scalar(Value::Null) => Ok(Vec::new()),
        SpannedValue::Seq(items) => items
            .iter()
            .map(|it| {
                scalar_text(it).ok_or_else(|| {
                    bad(
                        file,
                        it,
                        format!("'{key}' entries must be strings, not {}", type_name(it)),
                    )
                })
            })
            .collect(),
        _ => scalar_text(n).map(|s| vec![s]).ok_or_else(|| {
            bad(
                file,
                n,
                format!(
                    "'{key}' must be a string or a list of strings, not {}",
                    type_name(n)
                ),
            )
        }),
    }
}

const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Ansible's `isidentifier`: a Python identifier in ASCII, not a keyword.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !PY_KEYWORDS.contains(&s)
}

/// `vars:`: a mapping (or a list of mappings, merged) with valid variable names.
pub(crate) fn vars(file: &Path, key: &str, n: &Node) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let mut one = |m: &Node| -> Result<()> {
        let Some(pairs) = m.as_map() else {
            return Err(bad(
                file,
                m,
                format!(
                    "'{key}' must be a mapping of variable names to values, not {}",
                    type_name(m)
                ),
            ));
        };
        for (k, v) in pairs {
            let name = k.key_text();
            if !is_identifier(&name) {
                return Err(bad(
                    file,
                    k,
                    format!("'{name}' is not a valid variable name; use letters, digits and underscores, not starting with a digit"),
                ));
            }
            out.insert(name, v.to_json());
        }
        Ok(())
    };
    match &n.value {
        SpannedValue::Scalar(Value::Null) => {}
        SpannedValue::Seq(items) => {
            for it in items {
                one(it)?;
            }
        }
        _ => one(n)?,
    }
    Ok(out)
}

/// A number keyword that may also be a template (`retries`, `delay`): kept as a value.
pub(crate) fn number_or_template(file: &Path, key: &str, n: &Node) -> Result<Option<Value>> {
    match &n.value {
        SpannedValue::Scalar(Value::Null) => Ok(None),
        SpannedValue::Scalar(Value::Number(_)) => Ok(Some(n.to_json())),
        _ => match n.as_str() {
            Some(s) if is_template(s) || s.trim().parse::<f64>().is_ok() => Ok(Some(n.to_json())),
            _ => Err(bad(
                file,
                n,
                format!(
                    "'{key}' must be a number (or a template giving one), not {}",
                    describe(n)
                ),
            )),
        },
    }
}

/// `type` or `'text'` for messages.
pub(crate) fn describe(n: &Node) -> String {
    match n.as_str() {
        Some(s) => format!("'{s}'"),
        None => type_name(n).to_string(),
    }
}

/// The mapping a node must be.
pub(crate) fn map<'a>(file: &Path, n: &'a Node, what: &str) -> Result<&'a [(Node, Node)]> {
    n.as_map().ok_or_else(|| {
        bad(
            file,
            n,
            format!("{what} must be a mapping, not {}", type_name(n)),
        )
    })
}

/// The key of a mapping entry as text.
pub(crate) fn key(k: &Node) -> String {
    k.key_text()
}
