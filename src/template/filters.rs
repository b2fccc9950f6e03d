//! Ansible's filters (ansible-core 2.19 `core.py`, `mathstuff.py`, `urls.py`)
//! and the Jinja2 builtins whose Python semantics minijinja does not share.
//! Every filter is also registered as `ansible.builtin.<name>`.

use super::pyfmt::{py_repr, py_str, to_json};
use super::{netaddr, pyyaml, version, yaml_emit};
use minijinja::value::{from_args, Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind};

pub(crate) fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Python-style arguments: positional, or by keyword name.
pub(crate) struct Args {
    pos: Vec<Value>,
    kw: Kwargs,
    names: &'static [&'static str],
    filter: &'static str,
}

impl Args {
    pub(crate) fn new(
        filter: &'static str,
        args: Rest<ValueOrKwargs>,
        names: &'static [&'static str],
    ) -> Result<Args, Error> {
        let values = args.into_values();
        let (pos, kw): (&[Value], Kwargs) = from_args(&values)?;
        if pos.len() > names.len() {
            return Err(err(format!(
                "{filter}: takes at most {} arguments, {} given",
                names.len(),
                pos.len()
            )));
        }
        Ok(Args {
            pos: pos.to_vec(),
            kw,
            names,
            filter,
        })
    }

    pub(crate) fn get(&self, name: &str) -> Result<Option<Value>, Error> {
        let idx = self.names.iter().position(|n| *n == name);
        if let Some(v) = idx.and_then(|i| self.pos.get(i)) {
            if self.kw.has(name) {
                return Err(err(format!(
                    "{}: got multiple values for argument '{name}'",
                    self.filter
                )));
            }
            return Ok(Some(v.clone()));
        }
        self.kw.get::<Option<Value>>(name)
    }

    pub(crate) fn str(&self, name: &str) -> Result<Option<String>, Error> {
        match self.get(name)? {
            None => Ok(None),
            Some(v) if v.is_none() => Ok(None),
            Some(v) => Ok(Some(py_str(&v)?)),
        }
    }

    pub(crate) fn bool(&self, name: &str, default: bool) -> Result<bool, Error> {
        Ok(self.get(name)?.map(|v| v.is_true()).unwrap_or(default))
    }

    pub(crate) fn finish(&self) -> Result<(), Error> {
        self.kw.assert_all_used().map_err(|_| {
            let unknown: Vec<&str> = self.kw.args().collect();
            err(format!(
                "{}: unexpected keyword arguments (known: {}; given: {})",
                self.filter,
                self.names.join(", "),
                unknown.join(", ")
            ))
        })
    }
}

pub(crate) fn items(v: &Value) -> Result<Vec<Value>, Error> {
    if v.is_undefined() {
        return Err(v
            .get_attr("__undefined__")
            .err()
            .unwrap_or_else(|| Error::from(ErrorKind::UndefinedError)));
    }
    v.try_iter()?.checked().collect()
}

pub(crate) fn json_value(j: serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(j))
}

fn text(v: &Value) -> Result<String, Error> {
    py_str(v)
}

fn is_seq(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// Registers `f` as `name` and `ansible.builtin.name`.
macro_rules! add {
    ($env:expr, $name:expr, $f:expr) => {{
        $env.add_filter($name, $f);
        $env.add_filter(concat!("ansible.builtin.", $name), $f);
    }};
}

pub(crate) fn register(env: &mut Environment<'static>) {
    use minijinja::filters as b;
    // Jinja2 builtins kept as minijinja has them (FQCN aliases)
    add!(env, "lower", b::lower);
    add!(env, "upper", b::upper);
    add!(env, "capitalize", b::capitalize);
    add!(env, "title", b::title);
    add!(env, "trim", b::trim);
    add!(env, "replace", replace);
    add!(env, "length", b::length);
    add!(env, "count", b::length);
    add!(env, "first", b::first);
    add!(env, "last", b::last);
    add!(env, "min", b::min);
    add!(env, "max", b::max);
    add!(env, "sort", b::sort);
    add!(env, "reverse", b::reverse);
    add!(env, "list", b::list);
    add!(env, "select", b::select);
    add!(env, "reject", b::reject);
    add!(env, "selectattr", b::selectattr);
    add!(env, "rejectattr", b::rejectattr);
    add!(env, "map", b::map);
    add!(env, "groupby", b::groupby);
    add!(env, "dictsort", b::dictsort);
    add!(env, "items", b::items);
    add!(env, "batch", b::batch);
    add!(env, "slice", b::slice);
    add!(env, "indent", indent);
    add!(env, "abs", b::abs);
    add!(env, "attr", b::attr);
    add!(env, "format", b::format);
    add!(env, "urlencode", urlencode);
    add!(env, "sum", b::sum);
    add!(env, "zip", b::zip);
    add!(env, "unique", b::unique);
    add!(env, "truncate", minijinja_contrib::filters::truncate);
    add!(env, "wordcount", wordcount);
    add!(env, "center", center);

    // Python semantics
    add!(env, "default", default);
    add!(env, "d", default);
    add!(env, "mandatory", mandatory);
    add!(env, "bool", to_bool);
    add!(env, "int", int);
    add!(env, "float", float);
    add!(env, "string", string);
    add!(env, "join", join);
    add!(env, "split", split);
    add!(env, "round", round);
    add!(env, "type_debug", type_debug);

    // sets and lists
    add!(env, "union", union);
    add!(env, "intersect", intersect);
    add!(env, "difference", difference);
    add!(env, "symmetric_difference", symmetric_difference);
    add!(env, "flatten", flatten);
    add!(env, "product", product);
    add!(env, "zip_longest", zip_longest);
    add!(env, "permutations", permutations);
    add!(env, "combinations", combinations);
    add!(env, "dict2items", dict2items);
    add!(env, "items2dict", items2dict);
    add!(env, "combine", combine);
    add!(env, "extract", extract);
    add!(env, "subelements", subelements);
    add!(env, "dict", dict_filter);
    add!(env, "shuffle", shuffle);

    // math
    add!(env, "log", log);
    add!(env, "pow", pow);
    add!(env, "root", root);

    // serialization
    add!(env, "to_json", to_json_filter);
    add!(env, "to_nice_json", to_nice_json);
    add!(env, "from_json", from_json);
    add!(env, "to_yaml", to_yaml);
    add!(env, "to_nice_yaml", to_nice_yaml);
    add!(env, "from_yaml", from_yaml);
    add!(env, "from_yaml_all", from_yaml_all);
    add!(env, "b64encode", b64encode);
    add!(env, "b64decode", b64decode);

    // regular expressions
    add!(env, "regex_search", regex_search);
    add!(env, "regex_replace", regex_replace);
    add!(env, "regex_findall", regex_findall);
    add!(env, "regex_escape", regex_escape);

    // paths
    add!(env, "basename", basename);
    add!(env, "dirname", dirname);
    add!(env, "splitext", splitext);
    add!(env, "expanduser", expanduser);
    add!(env, "normpath", normpath);
    add!(env, "path_join", path_join);
    add!(env, "win_basename", win_basename);
    add!(env, "win_dirname", win_dirname);

    // hashes
    add!(env, "hash", hash);
    add!(env, "md5", md5);
    add!(env, "sha1", sha1);
    add!(env, "checksum", sha1);
    add!(env, "password_hash", password_hash);
    add!(env, "to_uuid", to_uuid);

    // misc
    add!(env, "ternary", ternary);
    add!(env, "quote", quote);
    add!(env, "comment", comment);
    add!(env, "urldecode", urldecode);
    add!(env, "human_readable", human_readable);
    add!(env, "human_to_bytes", human_to_bytes);
    add!(env, "version", version::version_filter);
    add!(env, "version_compare", version::version_filter);

    // ipaddr (ansible.utils / netaddr basics)
    for name in ["ipaddr", "ipv4", "ipv6", "ipwrap"] {
        let f = move |v: Value, q: Option<Value>| netaddr::filter(name, &v, q.as_ref());
        env.add_filter(name, f);
        env.add_filter(format!("ansible.utils.{name}"), f);
        env.add_filter(format!("ansible.netcommon.{name}"), f);
    }

    env.add_function("dict", dict_function);
    env.add_function("range", minijinja::functions::range);
}

// ---------------------------------------------------------------- Jinja basics

fn default(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let a = Args::new("default", args, &["default_value", "boolean"])?;
    let dv = a.get("default_value")?.unwrap_or(Value::from(""));
    let boolean = match a.get("boolean")? {
        None => false,
        Some(b) if b.kind() == ValueKind::Bool => b.is_true(),
        Some(b) => {
            return Err(err(format!(
                "default: the 'boolean' argument must be a bool, not {}",
                b.kind()
            )))
        }
    };
    a.finish()?;
    if value.is_undefined() || (boolean && !value.is_true()) {
        return Ok(dv);
    }
    Ok(value)
}

fn mandatory(value: Value, msg: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(match msg {
            Some(m) => err(m),
            // the undefined error names the variable
            None => value
                .get_attr("__undefined__")
                .err()
                .unwrap_or_else(|| err("Mandatory variable not defined.")),
        });
    }
    Ok(value)
}

pub(crate) fn to_bool_value(value: &Value) -> bool {
    match value.kind() {
        ValueKind::String => matches!(
            value.as_str().unwrap_or_default().to_lowercase().as_str(),
            "yes" | "on" | "true" | "1"
        ),
        ValueKind::Bool => value.is_true(),
        ValueKind::Number => {
            if value.is_integer() {
                value.as_i64() == Some(1)
            } else {
                f64::try_from(value.clone()).ok() == Some(1.0)
            }
        }
        _ => false,
    }
}

fn to_bool(value: Value) -> Result<bool, Error> {
    if value.is_undefined() {
        items(&value)?;
    }
    Ok(to_bool_value(&value))
}

/// Python's `int(str, base)`.
fn parse_py_int(s: &str, base: u32) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = digits.to_ascii_lowercase();
    let (base, digits) = match (base, lower.get(..2)) {
        (16, Some("0x")) | (0, Some("0x")) => (16, &digits[2..]),
        (8, Some("0o")) | (0, Some("0o")) => (8, &digits[2..]),
        (2, Some("0b")) | (0, Some("0b")) => (2, &digits[2..]),
        (0, _) => (10, digits),
        (b, _) => (b, digits),
    };
    let digits = digits.strip_prefix('_').unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let v = i128::from_str_radix(&clean, base).ok()?;
    Some(if neg { -v } else { v })
}

/// Python's `float(str)`.
pub(crate) fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    match body {
        "inf" | "infinity" => {
            return Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if t.contains("__") || t.starts_with('_') || t.ends_with('_') {
        return None;
    }
    let clean: String = t.chars().filter(|c| *c != '_').collect();
    if clean.is_empty()
        || !clean
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    clean.parse::<f64>().ok()
}

fn int_value(i: i128) -> Value {
    match i64::try_from(i) {
        Ok(v) => Value::from(v),
        Err(_) => Value::from(i),
    }
}

fn int(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let a = Args::new("int", args, &["default", "base"])?;
    let default = a.get("default")?.unwrap_or(Value::from(0));
    let base = match a.get("base")? {
        Some(b) => b
            .as_i64()
            .and_then(|b| u32::try_from(b).ok())
            .filter(|b| *b == 0 || (2..=36).contains(b))
            .ok_or_else(|| err("int: base must be 0 or 2..36"))?,
        None => 10,
    };
    a.finish()?;
    if value.is_undefined() {
        items(&value)?;
    }
    Ok(match value.kind() {
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            if let Some(i) = parse_py_int(s, base) {
                int_value(i)
            } else if let Some(f) = parse_py_float(s).filter(|f| f.is_finite()) {
                int_value(f.trunc() as i128)
            } else {
                default
            }
        }
        ValueKind::Bool => Value::from(i64::from(value.is_true())),
        ValueKind::Number => {
            if value.is_integer() {
                value
            } else {
                let f = f64::try_from(value).unwrap_or(f64::NAN);
                if f.is_finite() {
                    int_value(f.trunc() as i128)
                } else {
                    default
                }
            }
        }
        _ => default,
    })
}

fn float(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let a = Args::new("float", args, &["default"])?;
    let default = a.get("default")?.unwrap_or(Value::from(0.0));
    a.finish()?;
    if value.is_undefined() {
        items(&value)?;
    }
    Ok(match value.kind() {
        ValueKind::String => match parse_py_float(value.as_str().unwrap_or_default()) {
            Some(f) => Value::from(f),
            None => default,
        },
        ValueKind::Bool => Value::from(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => Value::from(f64::try_from(value).unwrap_or(f64::NAN)),
        _ => default,
    })
}

fn string(value: Value) -> Result<Value, Error> {
    Ok(Value::from(py_str(&value)?))
}

fn join(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let a = Args::new("join", args, &["d", "attribute"])?;
    let sep = a.str("d")?.unwrap_or_default();
    let attribute = a.str("attribute")?;
    a.finish()?;
    if value.kind() == ValueKind::String {
        let chars: Vec<String> = value
            .as_str()
            .unwrap_or_default()
            .chars()
            .map(String::from)
            .collect();
        return Ok(Value::from(chars.join(&sep)));
    }
    let mut parts = Vec::new();
    for item in items(&value)? {
        let item = match &attribute {
            Some(attr) => get_path(&item, attr)?,
            None => item,
        };
        parts.push(text(&item)?);
    }
    Ok(Value::from(parts.join(&sep)))
}

/// `a.b.0` attribute paths as Jinja's `attribute=` arguments use them.
pub(crate) fn get_path(v: &Value, path: &str) -> Result<Value, Error> {
    let mut cur = v.clone();
    for part in path.split('.') {
        cur = match part.parse::<usize>() {
            Ok(i) if cur.kind() == ValueKind::Seq => cur.get_item_by_index(i)?,
            _ => cur.get_attr(part)?,
        };
    }
    Ok(cur)
}

fn split(value: Value, sep: Option<Value>, maxsplit: Option<i64>) -> Result<Value, Error> {
    let s = text(&value)?;
    let sep = match sep {
        Some(v) if !v.is_none() => Some(text(&v)?),
        _ => None,
    };
    let max = maxsplit.filter(|m| *m >= 0).map(|m| m as usize);
    let parts: Vec<Value> = match sep {
        Some(sep) => {
            if sep.is_empty() {
                return Err(err("split: empty separator"));
            }
            match max {
                Some(m) => s.splitn(m + 1, sep.as_str()).map(Value::from).collect(),
                None => s.split(sep.as_str()).map(Value::from).collect(),
            }
        }
        None => {
            let mut out = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if max.is_some_and(|m| out.len() >= m) {
                    out.push(Value::from(rest.trim_end()));
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                out.push(Value::from(&rest[..end]));
                rest = rest[end..].trim_start();
            }
            out
        }
    };
    Ok(Value::from(parts))
}

fn round(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let a = Args::new("round", args, &["precision", "method"])?;
    let precision = a.get("precision")?.and_then(|p| p.as_i64()).unwrap_or(0);
    let method = a.str("method")?.unwrap_or_else(|| "common".into());
    a.finish()?;
    let f = f64::try_from(value.clone())
        .map_err(|_| err(format!("round: {} is not a number", value.kind())))?;
    let m = 10f64.powi(precision as i32);
    let r = match method.as_str() {
        // Python's round(): the exact decimal value, ties to even
        "common" if precision >= 0 => {
            return Ok(Value::from(
                format!("{:.*}", precision as usize, f)
                    .parse::<f64>()
                    .unwrap_or(f),
            ))
        }
        "common" => (f * m).round_ties_even(),
        "ceil" => (f * m).ceil(),
        "floor" => (f * m).floor(),
        other => {
            return Err(err(format!(
                "round: method must be common, ceil or floor, not {other}"
            )))
        }
    };
    Ok(Value::from(r / m))
}

fn replace(value: Value, old: Value, new: Value, count: Option<i64>) -> Result<String, Error> {
    let (s, old, new) = (text(&value)?, text(&old)?, text(&new)?);
    Ok(match count {
        Some(c) if c >= 0 => s.replacen(&old, &new, c as usize),
        _ => s.replace(&old, &new),
    })
}

/// Python's `urllib.parse.quote` with `safe`.
fn url_quote(s: &str, safe: &str, plus: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let c = b as char;
        if b.is_ascii_alphanumeric() || "_.-~".contains(c) || (b < 0x80 && safe.contains(c)) {
            out.push(c);
        } else if plus && c == ' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Jinja2's `urlencode`: strings keep `/`; dicts and pairs become a query string.
fn urlencode(value: Value) -> Result<String, Error> {
    let pairs: Option<Vec<(Value, Value)>> = match value.kind() {
        ValueKind::Map => Some(map_pairs(&value)?.into_iter().collect()),
        ValueKind::Seq | ValueKind::Iterable => {
            let mut v = Vec::new();
            for p in items(&value)? {
                let kv = items(&p)?;
                if kv.len() != 2 {
                    return Err(err("urlencode: expected a mapping or key/value pairs"));
                }
                v.push((kv[0].clone(), kv[1].clone()));
            }
            Some(v)
        }
        _ => None,
    };
    match pairs {
        Some(pairs) => Ok(pairs
            .iter()
            .map(|(k, v)| {
                Ok(format!(
                    "{}={}",
                    url_quote(&text(k)?, "", true),
                    url_quote(&text(v)?, "", true)
                ))
            })
            .collect::<Result<Vec<_>, Error>>()?
            .join("&")),
        None => Ok(url_quote(&text(&value)?, "/", false)),
    }
}

/// Jinja2's `indent(width=4, first=False, blank=False)`.
fn indent(value: Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let a = Args::new("indent", args, &["width", "first", "blank"])?;
    let indention = match a.get("width")? {
        Some(w) if w.kind() == ValueKind::String => text(&w)?,
        Some(w) => " ".repeat(w.as_i64().unwrap_or(4).max(0) as usize),
        None => "    ".into(),
    };
    let first = a.bool("first", false)?;
    let blank = a.bool("blank", false)?;
    a.finish()?;
    let mut s = text(&value)?;
    s.push('\n');
    let lines: Vec<&str> = s.lines().collect();
    let mut rv = if blank {
        lines.join(&format!("\n{indention}"))
    } else {
        let mut it = lines.iter();
        let mut rv = it.next().map(|l| l.to_string()).unwrap_or_default();
        let rest: Vec<String> = it
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("{indention}{l}")
                }
            })
            .collect();
        if !rest.is_empty() {
            rv.push('\n');
            rv.push_str(&rest.join("\n"));
        }
        rv
    };
    if first {
        rv = format!("{indention}{rv}");
    }
    Ok(rv)
}

fn type_debug(value: Value) -> String {
    match value.kind() {
        ValueKind::Undefined => "Undefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number => {
            if value.is_integer() {
                "int"
            } else {
                "float"
            }
        }
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
    .to_string()
}

fn wordcount(value: Value) -> Result<usize, Error> {
    Ok(text(&value)?
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .count())
}

fn center(value: Value, width: Option<usize>) -> Result<String, Error> {
    let s = text(&value)?;
    let width = width.unwrap_or(80);
    let n = s.chars().count();
    if n >= width {
        return Ok(s);
    }
    let total = width - n;
    // Python: left = total // 2 + (total & width & 1)
    let left = total / 2 + (total & width & 1);
    Ok(format!(
        "{}{}{}",
        " ".repeat(left),
        s,
        " ".repeat(total - left)
    ))
}

// ---------------------------------------------------------------- sets and lists

fn unique_values(vals: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in vals {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn union(a: Value, b: Value) -> Result<Value, Error> {
    let mut all = items(&a)?;
    all.extend(items(&b)?);
    Ok(Value::from(set_order(unique_values(all))))
}

fn intersect(a: Value, b: Value) -> Result<Value, Error> {
    let bv = items(&b)?;
    let r: Vec<Value> = items(&a)?.into_iter().filter(|x| bv.contains(x)).collect();
    Ok(Value::from(set_order(unique_values(r))))
}

fn difference(a: Value, b: Value) -> Result<Value, Error> {
    let bv = items(&b)?;
    let r: Vec<Value> = items(&a)?.into_iter().filter(|x| !bv.contains(x)).collect();
    Ok(Value::from(set_order(unique_values(r))))
}

fn symmetric_difference(a: Value, b: Value) -> Result<Value, Error> {
    let av = items(&a)?;
    let bv = items(&b)?;
    let mut r: Vec<Value> = av.iter().filter(|x| !bv.contains(x)).cloned().collect();
    r.extend(bv.iter().filter(|x| !av.contains(x)).cloned());
    Ok(Value::from(set_order(unique_values(r))))
}

/// The order `list(set(...))` gives in CPython when every item is a small
/// non-negative integer: ascending (their hash is their value). Other items
/// (strings hash randomly per Python process) keep their first-seen order.
fn set_order(mut vals: Vec<Value>) -> Vec<Value> {
    let small_ints = vals.iter().all(|v| {
        v.kind() == ValueKind::Number && v.is_integer() && v.as_i64().is_some_and(|i| i >= 0)
    });
    if small_ints {
        let n = vals.len();
        // CPython sizes the table to at least 8 slots with fill < 60%
        let mut size = 8usize;
        while n * 5 >= size * 3 {
            size *= 4;
        }
        if vals
            .iter()
            .all(|v| (v.as_i64().unwrap_or(0) as usize) < size)
        {
            vals.sort_by_key(|v| v.as_i64().unwrap_or(0));
        }
    }
    vals
}

fn flatten_into(
    out: &mut Vec<Value>,
    v: &Value,
    levels: Option<i64>,
    skip_nulls: bool,
) -> Result<(), Error> {
    for item in items(v)? {
        if skip_nulls && (item.is_none() || matches!(item.as_str(), Some("None" | "null"))) {
            continue;
        }
        if is_seq(&item) {
            match levels {
                None => flatten_into(out, &item, None, skip_nulls)?,
                Some(l) if l >= 1 => flatten_into(out, &item, Some(l - 1), skip_nulls)?,
                Some(_) => out.push(item),
            }
        } else {
            out.push(item);
        }
    }
    Ok(())
}

fn flatten(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let a = Args::new("flatten", args, &["levels", "skip_nulls"])?;
    let levels = a.get("levels")?.and_then(|l| l.as_i64());
    let skip_nulls = a.bool("skip_nulls", true)?;
    a.finish()?;
    let mut out = Vec::new();
    flatten_into(&mut out, &value, levels, skip_nulls)?;
    Ok(Value::from(out))
}

fn product(value: Value, others: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let vals = others.into_values();
    let (pos, kw): (&[Value], Kwargs) = from_args(&vals)?;
    let repeat = kw.get::<Option<usize>>("repeat")?.unwrap_or(1);
    kw.assert_all_used()?;
    let mut pools = vec![items(&value)?];
    for o in pos {
        pools.push(items(o)?);
    }
    let pools: Vec<Vec<Value>> = (0..repeat).flat_map(|_| pools.clone()).collect();
    let mut result: Vec<Vec<Value>> = vec![vec![]];
    for pool in &pools {
        let mut next = Vec::new();
        for r in &result {
            for x in pool {
                let mut t = r.clone();
                t.push(x.clone());
                next.push(t);
            }
        }
        result = next;
    }
    Ok(Value::from(
        result.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

fn zip_longest(value: Value, others: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let vals = others.into_values();
    let (pos, kw): (&[Value], Kwargs) = from_args(&vals)?;
    let fill = kw
        .get::<Option<Value>>("fillvalue")?
        .unwrap_or(Value::from(()));
    kw.assert_all_used()?;
    let mut lists = vec![items(&value)?];
    for o in pos {
        lists.push(items(o)?);
    }
    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok(Value::from(
        (0..n)
            .map(|i| {
                Value::from(
                    lists
                        .iter()
                        .map(|l| l.get(i).cloned().unwrap_or(fill.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    ))
}

fn permutations(value: Value, r: Option<usize>) -> Result<Value, Error> {
    let pool = items(&value)?;
    let r = r.unwrap_or(pool.len());
    let mut out = Vec::new();
    fn rec(
        pool: &[Value],
        r: usize,
        used: &mut Vec<bool>,
        cur: &mut Vec<Value>,
        out: &mut Vec<Value>,
    ) {
        if cur.len() == r {
            out.push(Value::from(cur.clone()));
            return;
        }
        for i in 0..pool.len() {
            if !used[i] {
                used[i] = true;
                cur.push(pool[i].clone());
                rec(pool, r, used, cur, out);
                cur.pop();
                used[i] = false;
            }
        }
    }
    if r <= pool.len() {
        rec(
            &pool,
            r,
            &mut vec![false; pool.len()],
            &mut Vec::new(),
            &mut out,
        );
    }
    Ok(Value::from(out))
}

fn combinations(value: Value, r: usize) -> Result<Value, Error> {
    let pool = items(&value)?;
    let mut out = Vec::new();
    fn rec(pool: &[Value], start: usize, r: usize, cur: &mut Vec<Value>, out: &mut Vec<Value>) {
        if cur.len() == r {
            out.push(Value::from(cur.clone()));
            return;
        }
        for i in start..pool.len() {
            cur.push(pool[i].clone());
            rec(pool, i + 1, r, cur, out);
            cur.pop();
        }
    }
    rec(&pool, 0, r, &mut Vec::new(), &mut out);
    Ok(Value::from(out))
}

fn dict2items(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let a = Args::new("dict2items", args, &["key_name", "value_name"])?;
    let kn = a.str("key_name")?.unwrap_or_else(|| "key".into());
    let vn = a.str("value_name")?.unwrap_or_else(|| "value".into());
    a.finish()?;
    if value.kind() != ValueKind::Map {
        return Err(err(format!(
            "dict2items requires a dictionary, got {} instead.",
            type_debug(value)
        )));
    }
    let mut out = Vec::new();
    for k in items(&value)? {
        let v = value.get_item(&k)?;
        out.push(Value::from_pairs([
            (Value::from(kn.as_str()), k),
            (Value::from(vn.as_str()), v),
        ]));
    }
    Ok(Value::from(out))
}

fn items2dict(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let a = Args::new("items2dict", args, &["key_name", "value_name"])?;
    let kn = a.str("key_name")?.unwrap_or_else(|| "key".into());
    let vn = a.str("value_name")?.unwrap_or_else(|| "value".into());
    a.finish()?;
    if !is_seq(&value) {
        return Err(err(format!(
            "items2dict requires a list, got {} instead.",
            type_debug(value)
        )));
    }
    let mut out = indexmap::IndexMap::new();
    for item in items(&value)? {
        let k = item.get_attr(&kn)?;
        let v = item.get_attr(&vn)?;
        if k.is_undefined() || v.is_undefined() {
            return Err(err(format!(
                "items2dict requires each dictionary in the list to contain the keys '{kn}' and '{vn}', got {} instead.",
                py_repr(&value)?
            )));
        }
        out.insert(k, v);
    }
    Ok(Value::from_pairs(out))
}

fn is_map(v: &Value) -> bool {
    v.kind() == ValueKind::Map
}

fn map_pairs(v: &Value) -> Result<indexmap::IndexMap<Value, Value>, Error> {
    let mut out = indexmap::IndexMap::new();
    for k in items(v)? {
        let item = v.get_item(&k)?;
        out.insert(k, item);
    }
    Ok(out)
}

/// Ansible's `merge_hash`.
pub(crate) fn merge_hash(
    x: &Value,
    y: &Value,
    recursive: bool,
    list_merge: &str,
) -> Result<Value, Error> {
    let mut out = map_pairs(x)?;
    for (k, yv) in map_pairs(y)? {
        let Some(xv) = out.get(&k).cloned() else {
            out.insert(k, yv);
            continue;
        };
        if is_map(&xv) && is_map(&yv) {
            let merged = if recursive {
                merge_hash(&xv, &yv, recursive, list_merge)?
            } else {
                yv
            };
            out.insert(k, merged);
            continue;
        }
        if is_seq(&xv) && is_seq(&yv) {
            let xl = items(&xv)?;
            let yl = items(&yv)?;
            let merged: Vec<Value> = match list_merge {
                "replace" => yl,
                "keep" => xl,
                "append" => xl.into_iter().chain(yl).collect(),
                "prepend" => yl.into_iter().chain(xl).collect(),
                "append_rp" => xl
                    .into_iter()
                    .filter(|z| !yl.contains(z))
                    .chain(yl.iter().cloned())
                    .collect(),
                "prepend_rp" => yl
                    .iter()
                    .cloned()
                    .chain(xl.into_iter().filter(|z| !yl.contains(z)))
                    .collect(),
                _ => unreachable!(),
            };
            out.insert(k, Value::from(merged));
            continue;
        }
        out.insert(k, yv);
    }
    Ok(Value::from_pairs(out))
}

fn combine(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let vals = args.into_values();
    let (pos, kw): (&[Value], Kwargs) = from_args(&vals)?;
    let recursive = kw
        .get::<Option<Value>>("recursive")?
        .is_some_and(|v| v.is_true());
    let list_merge = kw
        .get::<Option<String>>("list_merge")?
        .unwrap_or_else(|| "replace".into());
    if kw.assert_all_used().is_err() {
        return Err(err(
            "'recursive' and 'list_merge' are the only valid keyword arguments",
        ));
    }
    if ![
        "replace",
        "keep",
        "append",
        "prepend",
        "append_rp",
        "prepend_rp",
    ]
    .contains(&list_merge.as_str())
    {
        return Err(err("merge_hash: 'list_merge' argument can only be equal to 'replace', 'keep', 'append', 'prepend', 'append_rp' or 'prepend_rp'"));
    }
    // flatten(terms, levels=1)
    let mut dicts = Vec::new();
    for t in std::iter::once(&value).chain(pos.iter()) {
        if is_seq(t) {
            dicts.extend(items(t)?);
        } else {
            dicts.push(t.clone());
        }
    }
    for d in &dicts {
        if !is_map(d) {
            return Err(err(format!(
                "combine: failed to combine variables, expected dicts but got a '{}'",
                type_debug(d.clone())
            )));
        }
    }
    let mut it = dicts.into_iter().rev();
    let Some(mut result) = it.next() else {
        return Ok(Value::from_pairs(indexmap::IndexMap::<Value, Value>::new()));
    };
    for d in it {
        result = merge_hash(&d, &result, recursive, &list_merge)?;
    }
    Ok(result)
}

fn extract(item: Value, container: Value, morekeys: Option<Value>) -> Result<Value, Error> {
    let mut keys = vec![item];
    match morekeys {
        Some(m) if is_seq(&m) => keys.extend(items(&m)?),
        Some(m) if !m.is_none() => keys.push(m),
        _ => {}
    }
    let mut v = container;
    for k in keys {
        v = v.get_item(&k)?;
    }
    Ok(v)
}

fn subelements(value: Value, path: Value, skip_missing: Option<bool>) -> Result<Value, Error> {
    let skip_missing = skip_missing.unwrap_or(false);
    let elements = if is_map(&value) {
        map_pairs(&value)?.into_values().collect()
    } else if is_seq(&value) {
        items(&value)?
    } else {
        return Err(err("obj must be a list of dicts or a nested dict"));
    };
    let keys: Vec<String> = if is_seq(&path) {
        items(&path)?.iter().map(text).collect::<Result<_, _>>()?
    } else {
        text(&path)?.split('.').map(String::from).collect()
    };
    let mut out = Vec::new();
    for el in elements {
        let mut values = el.clone();
        let mut missing = false;
        for k in &keys {
            let next = values.get_attr(k)?;
            if next.is_undefined() {
                if skip_missing {
                    missing = true;
                    break;
                }
                return Err(err(format!(
                    "could not find '{k}' key in iterated item {}",
                    py_repr(&values)?
                )));
            }
            values = next;
        }
        if missing {
            continue;
        }
        if !is_seq(&values) {
            return Err(err(format!(
                "the key '{}' should point to a list, got {}",
                keys.join("."),
                py_repr(&values)?
            )));
        }
        for v in items(&values)? {
            out.push(Value::from(vec![el.clone(), v]));
        }
    }
    Ok(Value::from(out))
}

/// Python's `dict()`: from a mapping or from key/value pairs, plus keywords.
fn dict_function(value: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let mut out = indexmap::IndexMap::new();
    if let Some(v) = value {
        if is_map(&v) {
            out = map_pairs(&v)?;
        } else if !v.is_none() {
            for pair in items(&v)? {
                let kv = items(&pair)?;
                if kv.len() != 2 {
                    return Err(err(format!(
                        "dictionary update sequence element has length {}; 2 is required",
                        kv.len()
                    )));
                }
                out.insert(kv[0].clone(), kv[1].clone());
            }
        }
    }
    for k in kwargs.args() {
        out.insert(Value::from(k), kwargs.peek::<Value>(k)?);
    }
    Ok(Value::from_pairs(out))
}

fn dict_filter(value: Value) -> Result<Value, Error> {
    dict_function(
        Some(value),
        Kwargs::from_iter(std::iter::empty::<(String, Value)>()),
    )
}

fn shuffle(value: Value) -> Result<Value, Error> {
    let mut v = items(&value)?;
    let seed = super::random_hex(16);
    let mut state = u64::from_str_radix(&seed, 16).unwrap_or(1) | 1;
    for i in (1..v.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    Ok(Value::from(v))
}

// ---------------------------------------------------------------- math

fn num(v: &Value, what: &str) -> Result<f64, Error> {
    f64::try_from(v.clone()).map_err(|_| err(format!("{what}() can only be used on numbers")))
}

fn log(x: Value, base: Option<Value>) -> Result<f64, Error> {
    let x = num(&x, "log")?;
    Ok(match base {
        None => x.ln(),
        Some(b) => {
            let b = num(&b, "log")?;
            if b == 10.0 {
                x.log10()
            } else {
                x.ln() / b.ln()
            }
        }
    })
}

fn pow(x: Value, y: Value) -> Result<f64, Error> {
    Ok(num(&x, "pow")?.powf(num(&y, "pow")?))
}

fn root(x: Value, base: Option<Value>) -> Result<f64, Error> {
    let x = num(&x, "root")?;
    let b = base.map(|b| num(&b, "root")).transpose()?.unwrap_or(2.0);
    Ok(if b == 2.0 { x.sqrt() } else { x.powf(1.0 / b) })
}

// ---------------------------------------------------------------- serialization

fn json_args(
    filter: &'static str,
    args: Rest<ValueOrKwargs>,
    nice: bool,
) -> Result<(Option<usize>, bool, bool), Error> {
    let a = Args::new(
        filter,
        args,
        &[
            "indent",
            "sort_keys",
            "ensure_ascii",
            "separators",
            "profile",
            "vault_to_text",
            "preprocess_unsafe",
            "skipkeys",
            "check_circular",
            "allow_nan",
        ],
    )?;
    let indent = match a.get("indent")? {
        Some(v) if v.is_none() => None,
        Some(v) => Some(v.as_i64().unwrap_or(0).max(0) as usize),
        None => nice.then_some(4),
    };
    let sort_keys = a.bool("sort_keys", nice)?;
    let ensure_ascii = a.bool("ensure_ascii", true)?;
    for ignored in [
        "separators",
        "profile",
        "vault_to_text",
        "preprocess_unsafe",
        "skipkeys",
        "check_circular",
        "allow_nan",
    ] {
        a.get(ignored)?;
    }
    a.finish()?;
    Ok((indent, sort_keys, ensure_ascii))
}

fn to_json_filter(value: Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let (indent, sort_keys, ensure_ascii) = json_args("to_json", args, false)?;
    let j = to_json(&value)?;
    let item_sep = if indent.is_some() { "," } else { ", " };
    Ok(py_json(&j, indent, sort_keys, ensure_ascii, item_sep))
}

fn to_nice_json(value: Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let (indent, sort_keys, ensure_ascii) = json_args("to_nice_json", args, true)?;
    let j = to_json(&value)?;
    Ok(py_json(&j, indent, sort_keys, ensure_ascii, ","))
}

/// Python's `json.dumps`.
pub(crate) fn py_json(
    v: &serde_json::Value,
    indent: Option<usize>,
    sort_keys: bool,
    ensure_ascii: bool,
    item_sep: &str,
) -> String {
    let mut out = String::new();
    write_py_json(&mut out, v, indent, sort_keys, ensure_ascii, item_sep, 0);
    out
}

fn write_py_json(
    out: &mut String,
    v: &serde_json::Value,
    indent: Option<usize>,
    sort_keys: bool,
    ensure_ascii: bool,
    item_sep: &str,
    level: usize,
) {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    match v {
        serde_json::Value::Null => out.push_str("null"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or(0.0);
                out.push_str(&crate::inventory::py_repr(&serde_json::json!(f)));
            } else {
                out.push_str(&n.to_string());
            }
        }
        serde_json::Value::String(s) => write_json_str(out, s, ensure_ascii),
        serde_json::Value::Array(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_py_json(
                    out,
                    item,
                    indent,
                    sort_keys,
                    ensure_ascii,
                    item_sep,
                    level + 1,
                );
            }
            newline(out, level);
            out.push(']');
        }
        serde_json::Value::Object(m) => {
            if m.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            if sort_keys {
                keys.sort();
            }
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_json_str(out, k, ensure_ascii);
                out.push_str(": ");
                write_py_json(
                    out,
                    &m[*k],
                    indent,
                    sort_keys,
                    ensure_ascii,
                    item_sep,
                    level + 1,
                );
            }
            newline(out, level);
            out.push('}');
        }
    }
}

fn write_json_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn from_json(value: Value) -> Result<Value, Error> {
    let s = text(&value)?;
    let j: serde_json::Value =
        serde_json::from_str(&s).map_err(|e| err(format!("from_json: {e}")))?;
    Ok(json_value(j))
}

fn to_yaml(value: Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let a = Args::new(
        "to_yaml",
        args,
        &[
            "indent",
            "default_flow_style",
            "width",
            "sort_keys",
            "explicit_start",
            "explicit_end",
            "allow_unicode",
        ],
    )?;
    let opts = yaml_opts(&a, None, 2)?;
    a.finish()?;
    Ok(yaml_emit::dump(&to_json(&value)?, &opts))
}

fn to_nice_yaml(value: Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let a = Args::new(
        "to_nice_yaml",
        args,
        &[
            "indent",
            "default_flow_style",
            "width",
            "sort_keys",
            "explicit_start",
            "explicit_end",
            "allow_unicode",
        ],
    )?;
    let opts = yaml_opts(&a, Some(false), 4)?;
    a.finish()?;
    Ok(yaml_emit::dump(&to_json(&value)?, &opts))
}

fn yaml_opts(a: &Args, flow: Option<bool>, indent: usize) -> Result<yaml_emit::Options, Error> {
    let flow = match a.get("default_flow_style")? {
        Some(v) if v.is_none() => None,
        Some(v) => Some(v.is_true()),
        None => flow,
    };
    Ok(yaml_emit::Options {
        indent: a
            .get("indent")?
            .and_then(|v| v.as_i64())
            .map(|i| i.clamp(2, 9) as usize)
            .unwrap_or(indent),
        default_flow_style: flow,
        width: a
            .get("width")?
            .and_then(|v| v.as_i64())
            .map(|w| w.max(0) as usize)
            .unwrap_or(80),
        sort_keys: a.bool("sort_keys", true)?,
        explicit_start: a.bool("explicit_start", false)?,
        explicit_end: a.bool("explicit_end", false)?,
        allow_unicode: a.bool("allow_unicode", true)?,
    })
}

fn from_yaml(value: Value) -> Result<Value, Error> {
    if value.is_none() {
        return Ok(value);
    }
    if value.kind() != ValueKind::String {
        return Ok(value);
    }
    let v = pyyaml::load(value.as_str().unwrap_or_default())
        .map_err(|e| err(format!("from_yaml: {e}")))?;
    Ok(json_value(v))
}

fn from_yaml_all(value: Value) -> Result<Value, Error> {
    if value.is_none() {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let s = text(&value)?;
    let docs = pyyaml::load_all(&s).map_err(|e| err(format!("from_yaml_all: {e}")))?;
    Ok(Value::from(
        docs.into_iter().map(json_value).collect::<Vec<_>>(),
    ))
}

fn b64encode(value: Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    use base64::Engine;
    let a = Args::new("b64encode", args, &["encoding", "urlsafe"])?;
    let _ = a.str("encoding")?;
    let urlsafe = a.bool("urlsafe", false)?;
    a.finish()?;
    let s = text(&value)?;
    Ok(if urlsafe {
        base64::engine::general_purpose::URL_SAFE.encode(s.as_bytes())
    } else {
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    })
}

fn b64decode(value: Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    use base64::Engine;
    let a = Args::new("b64decode", args, &["encoding", "urlsafe"])?;
    let _ = a.str("encoding")?;
    let urlsafe = a.bool("urlsafe", false)?;
    a.finish()?;
    let s = text(&value)?;
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let engine = if urlsafe {
        base64::engine::general_purpose::URL_SAFE
    } else {
        base64::engine::general_purpose::STANDARD
    };
    let bytes = engine
        .decode(clean.as_bytes())
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(clean.trim_end_matches('=').as_bytes())
        })
        .map_err(|e| err(format!("b64decode: {e}")))?;
    String::from_utf8(bytes).map_err(|e| err(format!("b64decode: the data is not utf-8: {e}")))
}

// ---------------------------------------------------------------- regular expressions

/// Compiles a Python regular expression (the common subset Rust's regex shares).
pub(crate) fn py_regex(
    pattern: &str,
    ignorecase: bool,
    multiline: bool,
) -> Result<regex::Regex, Error> {
    let mut p = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => p.push_str("\\z"),
                Some(n) => {
                    p.push('\\');
                    p.push(n);
                }
                None => p.push('\\'),
            }
        } else {
            p.push(c);
        }
    }
    regex::RegexBuilder::new(&p)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| err(format!("invalid regular expression {pattern:?}: {e}")))
}

fn regex_search(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let vals = args.into_values();
    let (pos, kw): (&[Value], Kwargs) = from_args(&vals)?;
    let ignorecase = kw
        .get::<Option<Value>>("ignorecase")?
        .is_some_and(|v| v.is_true());
    let multiline = kw
        .get::<Option<Value>>("multiline")?
        .is_some_and(|v| v.is_true());
    kw.assert_all_used()?;
    let Some((pattern, groups)) = pos.split_first() else {
        return Err(err("regex_search: missing the regular expression"));
    };
    enum Group {
        Num(usize),
        Name(String),
    }
    let mut wanted = Vec::new();
    for g in groups {
        let g = text(g)?;
        wanted.push(
            if let Some(name) = g.strip_prefix("\\g<").and_then(|r| r.strip_suffix('>')) {
                match name.parse::<usize>() {
                    Ok(i) => Group::Num(i),
                    Err(_) => Group::Name(name.to_string()),
                }
            } else if let Some(num) = g.strip_prefix('\\') {
                let digits: String = num.chars().take_while(char::is_ascii_digit).collect();
                Group::Num(
                    digits
                        .parse()
                        .map_err(|_| err(format!("regex_search: bad group argument {g:?}")))?,
                )
            } else {
                return Err(err("regex_search: Unknown argument"));
            },
        );
    }
    let s = text(&value)?;
    let re = py_regex(&text(pattern)?, ignorecase, multiline)?;
    let Some(caps) = re.captures(&s) else {
        return Ok(Value::from(()));
    };
    if wanted.is_empty() {
        return Ok(Value::from(caps.get(0).map(|m| m.as_str()).unwrap_or("")));
    }
    let mut out = Vec::new();
    for g in wanted {
        let m = match g {
            Group::Num(i) if i < caps.len() => caps.get(i),
            Group::Num(i) => return Err(err(format!("regex_search: no such group {i}"))),
            Group::Name(n) => match re.capture_names().any(|c| c == Some(n.as_str())) {
                true => caps.name(&n),
                false => return Err(err(format!("regex_search: unknown group name {n}"))),
            },
        };
        out.push(match m {
            Some(m) => Value::from(m.as_str()),
            None => Value::from(()),
        });
    }
    Ok(Value::from(out))
}

/// Expands a Python `re.sub` replacement template for one match.
fn expand_py_template(tpl: &str, caps: &regex::Captures<'_>) -> Result<String, Error> {
    let mut out = String::new();
    let mut chars = tpl.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => return Err(err("bad escape (end of pattern)")),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some('a') => out.push('\u{7}'),
            Some('b') => out.push('\u{8}'),
            Some('g') => {
                if chars.next() != Some('<') {
                    return Err(err("missing < in group reference"));
                }
                let mut name = String::new();
                for ch in chars.by_ref() {
                    if ch == '>' {
                        break;
                    }
                    name.push(ch);
                }
                let m = match name.parse::<usize>() {
                    Ok(i) => {
                        if i >= caps.len() {
                            return Err(err(format!("invalid group reference {i}")));
                        }
                        caps.get(i)
                    }
                    Err(_) => caps.name(&name),
                };
                out.push_str(m.map(|m| m.as_str()).unwrap_or(""));
            }
            Some(d) if d.is_ascii_digit() => {
                let mut num = d.to_string();
                if let Some(&n) = chars.peek() {
                    if n.is_ascii_digit() {
                        num.push(n);
                        chars.next();
                    }
                }
                let i: usize = num.parse().unwrap_or(0);
                if i == 0 {
                    out.push('\0');
                } else {
                    if i >= caps.len() {
                        return Err(err(format!("invalid group reference {i}")));
                    }
                    out.push_str(caps.get(i).map(|m| m.as_str()).unwrap_or(""));
                }
            }
            Some(other) if other.is_ascii_alphabetic() => {
                return Err(err(format!("bad escape \\{other}")));
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

fn regex_replace(value: Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let a = Args::new(
        "regex_replace",
        args,
        &[
            "pattern",
            "replacement",
            "ignorecase",
            "multiline",
            "count",
            "mandatory_count",
        ],
    )?;
    let pattern = a.str("pattern")?.unwrap_or_default();
    let replacement = a.str("replacement")?.unwrap_or_default();
    let ignorecase = a.bool("ignorecase", false)?;
    let multiline = a.bool("multiline", false)?;
    let count = a.get("count")?.and_then(|v| v.as_i64()).unwrap_or(0).max(0) as usize;
    let mandatory = a
        .get("mandatory_count")?
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    a.finish()?;
    let s = text(&value)?;
    let re = py_regex(&pattern, ignorecase, multiline)?;
    let mut out = String::new();
    let mut last = 0;
    let mut subs = 0usize;
    for caps in re.captures_iter(&s) {
        if count > 0 && subs >= count {
            break;
        }
        let m = caps.get(0).expect("group 0");
        out.push_str(&s[last..m.start()]);
        out.push_str(&expand_py_template(&replacement, &caps)?);
        last = m.end();
        subs += 1;
    }
    out.push_str(&s[last..]);
    if mandatory != 0 && mandatory as usize != subs {
        return Err(err(format!(
            "'{pattern}' should match {mandatory} times, but matches {subs} times in '{s}'"
        )));
    }
    Ok(out)
}

fn regex_findall(value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let a = Args::new("regex_findall", args, &["regex", "multiline", "ignorecase"])?;
    let pattern = a.str("regex")?.unwrap_or_default();
    let multiline = a.bool("multiline", false)?;
    let ignorecase = a.bool("ignorecase", false)?;
    a.finish()?;
    let s = text(&value)?;
    let re = py_regex(&pattern, ignorecase, multiline)?;
    let groups = re.captures_len() - 1;
    let mut out = Vec::new();
    for caps in re.captures_iter(&s) {
        let g = |i: usize| Value::from(caps.get(i).map(|m| m.as_str()).unwrap_or(""));
        out.push(match groups {
            0 => g(0),
            1 => g(1),
            n => Value::from((1..=n).map(g).collect::<Vec<_>>()),
        });
    }
    Ok(Value::from(out))
}

/// Python's `re.escape`.
pub(crate) fn py_re_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn regex_escape(value: Value, re_type: Option<String>) -> Result<String, Error> {
    let s = text(&value)?;
    match re_type.as_deref().unwrap_or("python") {
        "python" => Ok(py_re_escape(&s)),
        "posix_basic" => {
            let mut out = String::new();
            for c in s.chars() {
                if "].[^$*\\".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            Ok(out)
        }
        "posix_extended" => Err(err("Regex type (posix_extended) not yet implemented")),
        other => Err(err(format!("Invalid regex type ({other})"))),
    }
}

// ---------------------------------------------------------------- paths

pub(crate) fn py_basename(p: &str) -> &str {
    match p.rfind('/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

pub(crate) fn py_dirname(p: &str) -> String {
    let i = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    let head = &p[..i];
    if !head.is_empty() && head.chars().any(|c| c != '/') {
        head.trim_end_matches('/').to_string()
    } else {
        head.to_string()
    }
}

fn basename(value: Value) -> Result<String, Error> {
    Ok(py_basename(&text(&value)?).to_string())
}

fn dirname(value: Value) -> Result<String, Error> {
    Ok(py_dirname(&text(&value)?))
}

fn win_basename(value: Value) -> Result<String, Error> {
    let s = text(&value)?;
    let s = s.split_once(':').map(|(_, r)| r.to_string()).unwrap_or(s);
    Ok(s.rsplit(['/', '\\']).next().unwrap_or("").to_string())
}

fn win_dirname(value: Value) -> Result<String, Error> {
    let s = text(&value)?;
    let (drive, rest) = match s.find(':') {
        Some(1) => (s[..2].to_string(), s[2..].to_string()),
        _ => (String::new(), s.clone()),
    };
    let i = rest.rfind(['/', '\\']).map(|i| i + 1).unwrap_or(0);
    let head = &rest[..i];
    let trimmed = if head.chars().any(|c| c != '/' && c != '\\') {
        head.trim_end_matches(['/', '\\'])
    } else {
        head
    };
    Ok(format!("{drive}{trimmed}"))
}

fn splitext(value: Value) -> Result<Value, Error> {
    let p = text(&value)?;
    let sep = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    let dot = p.rfind('.');
    if let Some(d) = dot.filter(|d| *d > sep) {
        // leading dots of the name do not start an extension
        if p[sep..d].chars().any(|c| c != '.') {
            return Ok(Value::from(vec![
                Value::from(&p[..d]),
                Value::from(&p[d..]),
            ]));
        }
    }
    Ok(Value::from(vec![Value::from(p.as_str()), Value::from("")]))
}

fn expanduser(value: Value) -> Result<String, Error> {
    let p = text(&value)?;
    if p == "~" || p.starts_with("~/") {
        let home = std::env::var("HOME")
            .ok()
            .or_else(|| dirs::home_dir().map(|h| h.display().to_string()))
            .unwrap_or_default();
        let home = if home == "/" {
            String::new()
        } else {
            home.trim_end_matches('/').to_string()
        };
        let rest = &p[1..];
        let out = format!("{home}{rest}");
        return Ok(if out.is_empty() { "/".into() } else { out });
    }
    Ok(p)
}

pub(crate) fn py_normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut comps: Vec<&str> = Vec::new();
    for c in p.split('/') {
        if c.is_empty() || c == "." {
            continue;
        }
        if c != ".." || (initial == 0 && comps.is_empty()) || comps.last() == Some(&"..") {
            comps.push(c);
        } else if !comps.is_empty() {
            comps.pop();
        }
    }
    let out = format!("{}{}", "/".repeat(initial), comps.join("/"));
    if out.is_empty() {
        ".".into()
    } else {
        out
    }
}

fn normpath(value: Value) -> Result<String, Error> {
    Ok(py_normpath(&text(&value)?))
}

fn path_join(value: Value) -> Result<String, Error> {
    let parts: Vec<String> = if value.kind() == ValueKind::String {
        vec![text(&value)?]
    } else if is_seq(&value) {
        items(&value)?.iter().map(text).collect::<Result<_, _>>()?
    } else {
        return Err(err(format!(
            "|path_join expects string or sequence, got {} instead.",
            type_debug(value)
        )));
    };
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if p.starts_with('/') || i == 0 {
            out = p.clone();
        } else if out.is_empty() || out.ends_with('/') {
            out.push_str(p);
        } else {
            out.push('/');
            out.push_str(p);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- hashes

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn digest(kind: &str, data: &[u8]) -> Result<String, Error> {
    use md5::Digest as _;
    Ok(match kind {
        "md5" => hex(&md5::Md5::digest(data)),
        "sha1" => hex(&sha1::Sha1::digest(data)),
        "sha224" => hex(&sha2::Sha224::digest(data)),
        "sha256" => hex(&sha2::Sha256::digest(data)),
        "sha384" => hex(&sha2::Sha384::digest(data)),
        "sha512" => hex(&sha2::Sha512::digest(data)),
        other => return Err(err(format!("hash: unsupported hash type {other}"))),
    })
}

fn hash(value: Value, hashtype: Option<String>) -> Result<String, Error> {
    digest(
        hashtype.as_deref().unwrap_or("sha1"),
        text(&value)?.as_bytes(),
    )
}

fn md5(value: Value) -> Result<String, Error> {
    digest("md5", text(&value)?.as_bytes())
}

fn sha1(value: Value) -> Result<String, Error> {
    digest("sha1", text(&value)?.as_bytes())
}

const CRYPT64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn crypt_b64(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(CRYPT64[(w & 0x3f) as usize] as char);
        w >>= 6;
    }
}

/// glibc's `crypt()` for `$5$`/`$6$` (what `openssl passwd -5/-6` prints).
pub(crate) fn sha_crypt(
    password: &str,
    salt: &str,
    sha512: bool,
    rounds: Option<u32>,
) -> Result<String, Error> {
    let salt: String = salt.chars().take(16).collect();
    let r = rounds.unwrap_or(5000);
    let params =
        sha_crypt::Params::new(r).map_err(|e| err(format!("password_hash: bad rounds: {e:?}")))?;
    let mut out = String::new();
    out.push_str(if sha512 { "$6$" } else { "$5$" });
    if let Some(r) = rounds {
        out.push_str(&format!("rounds={r}$"));
    }
    out.push_str(&salt);
    out.push('$');
    if sha512 {
        let d = sha_crypt::sha512_crypt(password.as_bytes(), salt.as_bytes(), params);
        for k in 0..21 {
            let (a, b, c) = match k % 3 {
                0 => (k, k + 21, k + 42),
                1 => (k + 21, k + 42, k),
                _ => (k + 42, k, k + 21),
            };
            crypt_b64(&mut out, d[a], d[b], d[c], 4);
        }
        crypt_b64(&mut out, 0, 0, d[63], 2);
    } else {
        let d = sha_crypt::sha256_crypt(password.as_bytes(), salt.as_bytes(), params);
        let groups = [
            (0, 10, 20),
            (21, 1, 11),
            (12, 22, 2),
            (3, 13, 23),
            (24, 4, 14),
            (15, 25, 5),
            (6, 16, 26),
            (27, 7, 17),
            (18, 28, 8),
            (9, 19, 29),
        ];
        for (a, b, c) in groups {
            crypt_b64(&mut out, d[a], d[b], d[c], 4);
        }
        crypt_b64(&mut out, 0, d[31], d[30], 3);
    }
    Ok(out)
}

fn password_hash(value: Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let a = Args::new(
        "password_hash",
        args,
        &["hashtype", "salt", "salt_size", "rounds", "ident"],
    )?;
    let hashtype = a.str("hashtype")?.unwrap_or_else(|| "sha512".into());
    let salt = a.str("salt")?;
    let salt_size = a
        .get("salt_size")?
        .and_then(|v| v.as_i64())
        .unwrap_or(16)
        .clamp(1, 16) as usize;
    let rounds = a.get("rounds")?.and_then(|v| v.as_i64()).map(|r| r as u32);
    let _ = a.get("ident")?;
    a.finish()?;
    let password = text(&value)?;
    let salt = salt.unwrap_or_else(|| {
        let h = super::random_hex(salt_size * 2);
        h.as_bytes()
            .chunks(2)
            .map(|c| {
                let v = u8::from_str_radix(std::str::from_utf8(c).unwrap_or("0"), 16).unwrap_or(0);
                CRYPT64[(v & 0x3f) as usize] as char
            })
            .collect()
    });
    if salt
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || c == '.' || c == '/'))
    {
        return Err(err("password_hash: invalid characters in salt"));
    }
    match hashtype.as_str() {
        "sha512" | "sha512_crypt" => sha_crypt(&password, &salt, true, rounds),
        "sha256" | "sha256_crypt" => sha_crypt(&password, &salt, false, rounds),
        other => Err(err(format!(
            "password_hash: {other} is not supported here (sha512 and sha256 are)"
        ))),
    }
}

fn to_uuid(value: Value, namespace: Option<String>) -> Result<String, Error> {
    use sha1::Digest as _;
    let ns = namespace.unwrap_or_else(|| "361E6D51-FAEC-444A-9079-341386DA8E2E".into());
    let ns_hex: String = ns.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if ns_hex.len() != 32 {
        return Err(err(format!("Invalid value '{ns}' for 'namespace'")));
    }
    let ns_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&ns_hex[i * 2..i * 2 + 2], 16).unwrap_or(0))
        .collect();
    let mut h = sha1::Sha1::new();
    h.update(&ns_bytes);
    h.update(text(&value)?.as_bytes());
    let mut b: Vec<u8> = h.finalize()[..16].to_vec();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    ))
}

// ---------------------------------------------------------------- misc

fn ternary(value: Value, true_val: Value, false_val: Value, none_val: Option<Value>) -> Value {
    if value.is_none() {
        if let Some(n) = none_val.filter(|n| !n.is_none()) {
            return n;
        }
    }
    if value.is_true() {
        true_val
    } else {
        false_val
    }
}

/// Python's `shlex.quote`.
pub(crate) fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

fn quote(value: Value) -> Result<String, Error> {
    if value.is_none() {
        return Ok(shell_quote(""));
    }
    Ok(shell_quote(&text(&value)?))
}

fn comment(value: Value, style: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    let text_in = text(&value)?;
    let style = style.unwrap_or_else(|| "plain".into());
    let (beginning, decoration, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => {
            return Err(err(format!(
                "Invalid style '{other}'. Available styles: plain, erlang, c, cblock, xml"
            )))
        }
    };
    let get = |k: &str| -> Result<Option<String>, Error> {
        match kwargs.get::<Option<Value>>(k)? {
            Some(v) => Ok(Some(text(&v)?)),
            None => Ok(None),
        }
    };
    let prepostfix = get("decoration")?.unwrap_or_else(|| decoration.to_string());
    let newline = get("newline")?.unwrap_or_else(|| "\n".into());
    let beginning = get("beginning")?.unwrap_or_else(|| beginning.to_string());
    let prefix = get("prefix")?.unwrap_or_else(|| prepostfix.trim_end().to_string());
    let prefix_count: usize = get("prefix_count")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let decoration = get("decoration")?.unwrap_or_else(|| decoration.to_string());
    let postfix = get("postfix")?.unwrap_or_else(|| prepostfix.trim_end().to_string());
    let postfix_count: usize = get("postfix_count")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let end = get("end")?.unwrap_or_else(|| end.to_string());
    kwargs.assert_all_used()?;
    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        if prefix != newline {
            out.push_str(&format!("{prefix}{newline}").repeat(prefix_count));
        } else {
            out.push_str(&newline.repeat(prefix_count));
        }
    }
    let body = format!(
        "{decoration}{}",
        text_in.replace(&newline, &format!("{newline}{decoration}"))
    )
    .replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    );
    out.push_str(&body);
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(out)
}

fn urldecode(value: Value) -> Result<String, Error> {
    let s = text(&value)?.replace('+', " ");
    let b = s.as_bytes();
    let hexval = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

const SIZE_UNITS: [&str; 9] = ["", "K", "M", "G", "T", "P", "E", "Z", "Y"];

fn human_readable(
    value: Value,
    isbits: Option<bool>,
    unit: Option<String>,
) -> Result<String, Error> {
    let size = num(&value, "human_readable")?;
    let isbits = isbits.unwrap_or(false);
    let (suffix, base) = if isbits {
        ("b", "bits")
    } else {
        ("B", "Bytes")
    };
    let mut chosen = None;
    for (i, u) in SIZE_UNITS.iter().enumerate().rev() {
        let limit = 1u128 << (i * 10);
        let matches = match &unit {
            Some(wanted) => {
                wanted
                    .chars()
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string())
                    == Some(u.to_string())
                    || (wanted.is_empty() && u.is_empty())
            }
            None => size >= limit as f64,
        };
        if matches {
            chosen = Some((i, *u, limit as f64));
            break;
        }
    }
    let (i, u, limit) = chosen.unwrap_or((0, "", 1.0));
    if i == 0 {
        return Ok(format!("{:.2} {base}", size));
    }
    Ok(format!("{:.2} {u}{suffix}", size / limit))
}

fn human_to_bytes(
    value: Value,
    default_unit: Option<String>,
    isbits: Option<bool>,
) -> Result<i64, Error> {
    let s = text(&value)?;
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..split].trim().parse().map_err(|_| {
        err(format!(
            "human_to_bytes() can't interpret following string: {s}"
        ))
    })?;
    let unit = t[split..].trim();
    let unit = if unit.is_empty() {
        default_unit.unwrap_or_default()
    } else {
        unit.to_string()
    };
    let letter = unit.chars().next().map(|c| c.to_ascii_uppercase());
    let pow = match letter {
        None | Some('B') => 0,
        Some(c) => SIZE_UNITS
            .iter()
            .position(|u| u.starts_with(c))
            .ok_or_else(|| {
                err(format!(
                    "human_to_bytes() failed to convert {s}: unknown unit"
                ))
            })?,
    };
    let _ = isbits;
    Ok((n * (1u128 << (pow * 10)) as f64).round() as i64)
}
