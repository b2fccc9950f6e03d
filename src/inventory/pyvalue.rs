//! The values Ansible's parsers produce (Python objects), before they become JSON.
//!
//! Both the INI parser (`ast.literal_eval`) and the YAML loader (PyYAML) can make
//! mapping keys that are not strings (`{1: 'a', True: 'b'}`), and Python's dict
//! treats `1`, `1.0` and `True` as the same key. This type keeps those rules until
//! the value is turned into a `serde_json::Value`, which is what the rest of the
//! program sees.

use serde_json::{Map, Number, Value};

/// The JSON form Ansible's inventory output gives a string that must never be
/// templated (YAML `!unsafe`, INI bytes literals, `__ansible_unsafe` in JSON).
pub const UNSAFE_KEY: &str = "__ansible_unsafe";

#[derive(Debug, Clone)]
pub(crate) enum PyVal {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// A string that may be templated.
    Str(String),
    /// A string marked unsafe: kept as `{"__ansible_unsafe": "..."}` in JSON.
    Unsafe(String),
    List(Vec<PyVal>),
    /// Only as a dict key; a tuple value becomes a list.
    Tuple(Vec<PyVal>),
    /// Ordered, keys unique under Python equality.
    Dict(Vec<(PyVal, PyVal)>),
}

impl PyVal {
    pub(crate) fn is_hashable(&self) -> bool {
        match self {
            PyVal::List(_) | PyVal::Dict(_) => false,
            PyVal::Tuple(items) => items.iter().all(PyVal::is_hashable),
            _ => true,
        }
    }

    fn as_number(&self) -> Option<f64> {
        match self {
            PyVal::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            PyVal::Int(i) => Some(*i as f64),
            PyVal::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Python `==` for hashable values (what decides whether two dict keys collide).
    pub(crate) fn key_eq(&self, other: &PyVal) -> bool {
        match (self, other) {
            (PyVal::None, PyVal::None) => true,
            (PyVal::Str(a) | PyVal::Unsafe(a), PyVal::Str(b) | PyVal::Unsafe(b)) => a == b,
            (PyVal::Tuple(a), PyVal::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.key_eq(y))
            }
            (PyVal::Int(a), PyVal::Int(b)) => a == b,
            (PyVal::Bool(a), PyVal::Bool(b)) => a == b,
            (PyVal::Int(a), PyVal::Bool(b)) | (PyVal::Bool(b), PyVal::Int(a)) => {
                *a == i128::from(*b)
            }
            _ => match (self.as_number(), other.as_number()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            PyVal::Str(s) | PyVal::Unsafe(s) => Some(s),
            _ => None,
        }
    }

    /// Python's type name, for messages (`<class 'list'>`-like wording without the noise).
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            PyVal::None => "null",
            PyVal::Bool(_) => "bool",
            PyVal::Int(_) => "int",
            PyVal::Float(_) => "float",
            PyVal::Str(_) | PyVal::Unsafe(_) => "string",
            PyVal::List(_) | PyVal::Tuple(_) => "list",
            PyVal::Dict(_) => "mapping",
        }
    }

    /// Python truthiness (`value or {}` in Ansible's YAML plugin).
    pub(crate) fn is_truthy(&self) -> bool {
        match self {
            PyVal::None => false,
            PyVal::Bool(b) => *b,
            PyVal::Int(i) => *i != 0,
            PyVal::Float(f) => *f != 0.0,
            PyVal::Str(s) | PyVal::Unsafe(s) => !s.is_empty(),
            PyVal::List(v) | PyVal::Tuple(v) => !v.is_empty(),
            PyVal::Dict(d) => !d.is_empty(),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            PyVal::None => Value::Null,
            PyVal::Bool(b) => Value::Bool(*b),
            PyVal::Int(i) => int_to_json(*i),
            PyVal::Float(f) => float_to_json(*f),
            PyVal::Str(s) => Value::String(s.clone()),
            PyVal::Unsafe(s) => unsafe_json(s),
            PyVal::List(items) | PyVal::Tuple(items) => {
                Value::Array(items.iter().map(PyVal::to_json).collect())
            }
            PyVal::Dict(pairs) => {
                let mut map = Map::new();
                for (k, v) in pairs {
                    map.insert(k.json_key(), v.to_json());
                }
                Value::Object(map)
            }
        }
    }

    /// The key Python's `json.dumps` writes for a non-string dict key.
    pub(crate) fn json_key(&self) -> String {
        match self {
            PyVal::Str(s) | PyVal::Unsafe(s) => s.clone(),
            PyVal::None => "null".into(),
            PyVal::Bool(b) => b.to_string(),
            PyVal::Int(i) => i.to_string(),
            PyVal::Float(f) => {
                if f.is_nan() {
                    "NaN".into()
                } else if f.is_infinite() {
                    if *f > 0.0 { "Infinity" } else { "-Infinity" }.into()
                } else {
                    py_float_repr(*f)
                }
            }
            other => crate::inventory::output::py_repr(&other.to_json()),
        }
    }
}

/// Inserts into an ordered dict with Python's key rules: an equal key keeps its
/// place and its first spelling, the value is replaced.
pub(crate) fn dict_insert(pairs: &mut Vec<(PyVal, PyVal)>, key: PyVal, value: PyVal) {
    if let Some(slot) = pairs.iter_mut().find(|(k, _)| k.key_eq(&key)) {
        slot.1 = value;
    } else {
        pairs.push((key, value));
    }
}

pub(crate) fn unsafe_json(s: &str) -> Value {
    let mut m = Map::new();
    m.insert(UNSAFE_KEY.to_string(), Value::String(s.to_string()));
    Value::Object(m)
}

/// `Some(text)` when `v` is Ansible's JSON form of an unsafe string.
pub fn unsafe_text(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) if m.len() == 1 => m.get(UNSAFE_KEY).and_then(Value::as_str),
        _ => None,
    }
}

/// Replaces every `{"__ansible_unsafe": "..."}` by its plain string (what
/// `ansible-inventory --host` prints).
pub fn strip_unsafe(v: &Value) -> Value {
    if let Some(s) = unsafe_text(v) {
        return Value::String(s.to_string());
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(strip_unsafe).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), strip_unsafe(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

pub(crate) fn int_to_json(i: i128) -> Value {
    if let Ok(v) = i64::try_from(i) {
        Value::Number(Number::from(v))
    } else if let Ok(v) = u64::try_from(i) {
        Value::Number(Number::from(v))
    } else {
        // Python has unbounded ints; JSON numbers here stop at 64 bits.
        float_to_json(i as f64)
    }
}

pub(crate) fn float_to_json(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        // JSON has no infinity or NaN; Python prints them as bare words.
        None => Value::String(if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }),
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed
/// notation when the decimal exponent is in -4..16, else `1e+16` style.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let (digits, exp, neg) = shortest_digits(f);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let n = digits.len() as i32;
    let decpt = exp + 1;
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..(-decpt) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if decpt >= n {
            out.push_str(&digits);
            for _ in 0..(decpt - n) {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    }
    out
}

/// Python's `format(f, 'r')` without the forced `.0` (as used inside `repr(complex)`).
pub(crate) fn py_float_repr_short(f: f64) -> String {
    let r = py_float_repr(f);
    match r.strip_suffix(".0") {
        Some(s) => s.to_string(),
        None => r,
    }
}

/// (digits without dot, decimal exponent of the first digit, negative)
fn shortest_digits(f: f64) -> (String, i32, bool) {
    let neg = f.is_sign_negative();
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    (digits.to_string(), exp, neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        assert_eq!(py_float_repr(1.0), "1.0");
        assert_eq!(py_float_repr(1.5), "1.5");
        assert_eq!(py_float_repr(0.0), "0.0");
        assert_eq!(py_float_repr(-0.0), "-0.0");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1e15), "1000000000000000.0");
        assert_eq!(py_float_repr(0.0001), "0.0001");
        assert_eq!(py_float_repr(0.00001), "1e-05");
        assert_eq!(py_float_repr(123.456), "123.456");
        assert_eq!(py_float_repr(1.5e300), "1.5e+300");
        assert_eq!(py_float_repr_short(2.0), "2");
    }

    #[test]
    fn dict_keys_follow_python_equality() {
        let mut d = Vec::new();
        dict_insert(&mut d, PyVal::Int(1), PyVal::Str("a".into()));
        dict_insert(&mut d, PyVal::Bool(true), PyVal::Str("b".into()));
        dict_insert(&mut d, PyVal::Float(1.0), PyVal::Str("c".into()));
        dict_insert(&mut d, PyVal::Str("1".into()), PyVal::Str("d".into()));
        assert_eq!(d.len(), 2);
        let j = PyVal::Dict(d).to_json();
        assert_eq!(j, serde_json::json!({"1": "d"}));
    }

    #[test]
    fn unsafe_round_trip() {
        let v = PyVal::Unsafe("{{ x }}".into()).to_json();
        assert_eq!(unsafe_text(&v), Some("{{ x }}"));
        assert_eq!(
            strip_unsafe(&serde_json::json!([v])),
            serde_json::json!(["{{ x }}"])
        );
    }
}
