//! YAML loading for `from_yaml`/`from_yaml_all`.
//!
//! The inventory's PyYAML-faithful loader (`inventory::yaml::load`) is private
//! to its module, so this uses serde-saphyr with PyYAML's YAML 1.1 typing as
//! far as its options go: legacy octals (`0644` → 420) and YAML 1.1 booleans
//! except `y`/`n`, which PyYAML keeps as strings. Switch to the inventory
//! loader once it is exported.

use serde_json::Value;

fn parse_all(text: &str, strict_booleans: bool) -> Result<Vec<Value>, String> {
    let opts = serde_saphyr::options! {
        legacy_octal_numbers: true,
        strict_booleans: strict_booleans,
    };
    serde_saphyr::from_multiple_with_options::<Value>(text, opts).map_err(|e| e.to_string())
}

/// `loose` typed with YAML 1.1 booleans, `strict` without: PyYAML's booleans
/// are the loose ones except `y`/`n`.
fn merge(loose: Value, strict: Value) -> Value {
    match (loose, strict) {
        (Value::Bool(b), Value::String(s)) => {
            if matches!(s.as_str(), "y" | "Y" | "n" | "N") {
                Value::String(s)
            } else {
                Value::Bool(b)
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            Value::Array(a.into_iter().zip(b).map(|(x, y)| merge(x, y)).collect())
        }
        (Value::Object(a), Value::Object(mut b)) => Value::Object(
            a.into_iter()
                .map(|(k, v)| {
                    let s = b.remove(&k).unwrap_or(Value::Null);
                    (k, merge(v, s))
                })
                .collect(),
        ),
        (l, _) => l,
    }
}

pub(crate) fn load_all(text: &str) -> Result<Vec<Value>, String> {
    let loose = parse_all(text, false)?;
    let strict = parse_all(text, true).unwrap_or_default();
    if strict.len() != loose.len() {
        return Ok(loose);
    }
    Ok(loose
        .into_iter()
        .zip(strict)
        .map(|(l, s)| merge(l, s))
        .collect())
}

pub(crate) fn load(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    Ok(load_all(text)?.into_iter().next().unwrap_or(Value::Null))
}
