//! Values as Python shows them, and as JSON for the rest of the program.

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};
use serde_json::Number;

fn undefined_error(v: &Value) -> Error {
    // `get_attr` on an undefined value carries where it came from
    v.get_attr("__undefined__")
        .err()
        .unwrap_or_else(|| Error::from(ErrorKind::UndefinedError))
}

/// A template value as JSON, every lazy part resolved.
pub(crate) fn to_json(v: &Value) -> Result<serde_json::Value, Error> {
    to_json_depth(v, 0)
}

fn to_json_depth(v: &Value, depth: usize) -> Result<serde_json::Value, Error> {
    if depth > 500 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "value is nested too deeply",
        ));
    }
    Ok(match v.kind() {
        ValueKind::Undefined => return Err(undefined_error(v)),
        ValueKind::None => serde_json::Value::Null,
        ValueKind::Bool => serde_json::Value::Bool(v.is_true()),
        ValueKind::Number => number_json(v),
        ValueKind::String => serde_json::Value::String(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Bytes => serde_json::Value::String(
            String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned(),
        ),
        ValueKind::Seq | ValueKind::Iterable => {
            let mut out = Vec::new();
            for item in v.try_iter()?.checked() {
                out.push(to_json_depth(&item?, depth + 1)?);
            }
            serde_json::Value::Array(out)
        }
        ValueKind::Map => {
            let mut out = serde_json::Map::new();
            for key in v.try_iter()?.checked() {
                let key = key?;
                let item = v.get_item(&key)?;
                let item = if item.kind() == ValueKind::Invalid {
                    return Err(item_error(&item));
                } else {
                    item
                };
                out.insert(key_text(&key)?, to_json_depth(&item, depth + 1)?);
            }
            serde_json::Value::Object(out)
        }
        ValueKind::Invalid => return Err(item_error(v)),
        _ => serde_json::Value::String(v.to_string()),
    })
}

fn item_error(v: &Value) -> Error {
    // an invalid value renders as `<invalid value: ...>`; iterate to get the error
    match Value::from(vec![v.clone()]).try_iter() {
        Ok(it) => match it.checked().next() {
            Some(Err(e)) => e,
            _ => Error::new(ErrorKind::InvalidOperation, v.to_string()),
        },
        Err(e) => e,
    }
}

fn key_text(k: &Value) -> Result<String, Error> {
    Ok(match k.kind() {
        ValueKind::String => k.as_str().unwrap_or_default().to_string(),
        _ => py_str(k)?,
    })
}

pub(crate) fn number_json(v: &Value) -> serde_json::Value {
    if v.is_integer() {
        if let Ok(i) = i64::try_from(v.clone()) {
            return serde_json::Value::Number(Number::from(i));
        }
        if let Ok(u) = u64::try_from(v.clone()) {
            return serde_json::Value::Number(Number::from(u));
        }
    }
    let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
    match Number::from_f64(f) {
        Some(n) => serde_json::Value::Number(n),
        None => serde_json::Value::String(if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }),
    }
}

/// Python's `str(value)`.
pub(crate) fn py_str(v: &Value) -> Result<String, Error> {
    match v.kind() {
        ValueKind::String => Ok(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Undefined => Err(undefined_error(v)),
        _ => py_repr(v),
    }
}

/// Python's `repr(value)`.
pub(crate) fn py_repr(v: &Value) -> Result<String, Error> {
    Ok(crate::inventory::py_repr(&to_json(v)?))
}

/// What `{{ value }}` writes: Python's `str()`, `None` as nothing (ansible-core 2.19).
pub(crate) fn output_text(v: &Value) -> Result<String, Error> {
    if v.is_none() {
        return Ok(String::new());
    }
    py_str(v)
}
