//! Jinja tests: Ansible's (`plugins/test/core.py`, `mathstuff.py`) and the
//! Jinja2 builtins, each also as `ansible.builtin.<name>`.

use super::filters::{err, items, py_regex, to_bool_value, Args};
use super::pyfmt::py_str;
use super::version;
use minijinja::value::{Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, State};

macro_rules! add {
    ($env:expr, $name:expr, $f:expr) => {{
        $env.add_test($name, $f);
        $env.add_test(concat!("ansible.builtin.", $name), $f);
    }};
}

pub(crate) fn register(env: &mut Environment<'static>) {
    use minijinja::tests as b;
    add!(env, "defined", b::is_defined);
    add!(env, "undefined", b::is_undefined);
    add!(env, "none", b::is_none);
    add!(env, "boolean", b::is_boolean);
    add!(env, "true", b::is_true);
    add!(env, "false", b::is_false);
    add!(env, "odd", b::is_odd);
    add!(env, "even", b::is_even);
    add!(env, "divisibleby", b::is_divisibleby);
    add!(env, "integer", b::is_integer);
    add!(env, "float", b::is_float);
    add!(env, "string", b::is_string);
    add!(env, "mapping", b::is_mapping);
    add!(env, "lower", b::is_lower);
    add!(env, "upper", b::is_upper);
    add!(env, "sameas", b::is_sameas);
    add!(env, "eq", b::is_eq);
    add!(env, "equalto", b::is_eq);
    add!(env, "==", b::is_eq);
    add!(env, "ne", b::is_ne);
    add!(env, "!=", b::is_ne);
    add!(env, "lt", b::is_lt);
    add!(env, "lessthan", b::is_lt);
    add!(env, "<", b::is_lt);
    add!(env, "le", b::is_le);
    add!(env, "<=", b::is_le);
    add!(env, "gt", b::is_gt);
    add!(env, "greaterthan", b::is_gt);
    add!(env, ">", b::is_gt);
    add!(env, "ge", b::is_ge);
    add!(env, ">=", b::is_ge);
    add!(env, "in", b::is_in);
    add!(env, "filter", b::is_filter);
    add!(env, "test", b::is_test);

    // Python's notions
    add!(env, "number", is_number);
    add!(env, "sequence", is_sequence);
    add!(env, "iterable", is_iterable);
    add!(env, "callable", is_callable);

    // task results
    add!(env, "failed", failed);
    add!(env, "failure", failed);
    add!(env, "succeeded", succeeded);
    add!(env, "success", succeeded);
    add!(env, "successful", succeeded);
    add!(env, "changed", changed);
    add!(env, "change", changed);
    add!(env, "skipped", skipped);
    add!(env, "skip", skipped);
    add!(env, "reachable", reachable);
    add!(env, "unreachable", unreachable);
    add!(env, "finished", finished);
    add!(env, "started", started);
    add!(env, "timedout", timedout);

    // regular expressions
    add!(env, "match", is_match);
    add!(env, "search", is_search);
    add!(env, "regex", is_regex);

    // versions
    add!(env, "version", version::version_test);
    add!(env, "version_compare", version::version_test);

    // lists and truth
    add!(env, "contains", contains);
    add!(env, "subset", subset);
    add!(env, "issubset", subset);
    add!(env, "superset", superset);
    add!(env, "issuperset", superset);
    add!(env, "any", any);
    add!(env, "all", all);
    add!(env, "truthy", truthy);
    add!(env, "falsy", falsy);
    add!(env, "nan", is_nan);
    add!(env, "isnan", is_nan);

    // addresses (ansible.utils)
    for name in [
        "ip",
        "ipaddr",
        "ipv4",
        "ipv6",
        "ip_address",
        "ipv4_address",
        "ipv6_address",
    ] {
        let f = move |v: Value| super::netaddr::test(name, &v);
        env.add_test(name, f);
        env.add_test(format!("ansible.utils.{name}"), f);
        env.add_test(format!("ansible.netcommon.{name}"), f);
    }
}

fn is_number(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::Number | ValueKind::Bool)
}

fn is_sequence(v: &Value) -> bool {
    matches!(
        v.kind(),
        ValueKind::Seq | ValueKind::Map | ValueKind::String | ValueKind::Bytes
    )
}

fn is_iterable(v: &Value) -> bool {
    matches!(
        v.kind(),
        ValueKind::Seq
            | ValueKind::Map
            | ValueKind::String
            | ValueKind::Bytes
            | ValueKind::Iterable
    )
}

fn is_callable(v: &Value) -> bool {
    v.kind() == ValueKind::Plain
}

fn result_dict(v: &Value, test: &str) -> Result<(), Error> {
    if v.kind() != ValueKind::Map {
        return Err(err(format!("The '{test}' test expects a dictionary")));
    }
    Ok(())
}

fn field(v: &Value, key: &str) -> Value {
    v.get_attr(key).unwrap_or(Value::UNDEFINED)
}

fn failed(v: &Value) -> Result<bool, Error> {
    result_dict(v, "failed")?;
    Ok(field(v, "failed").is_true())
}

fn succeeded(v: &Value) -> Result<bool, Error> {
    result_dict(v, "succeeded")?;
    Ok(!field(v, "failed").is_true())
}

fn changed(v: &Value) -> Result<bool, Error> {
    result_dict(v, "changed")?;
    let c = field(v, "changed");
    if !c.is_undefined() {
        return Ok(c.is_true());
    }
    let results = field(v, "results");
    if results.kind() == ValueKind::Seq {
        let list = items(&results)?;
        if list.first().is_some_and(|r| r.kind() == ValueKind::Map) {
            return Ok(list.iter().any(|r| field(r, "changed").is_true()));
        }
    }
    Ok(false)
}

fn skipped(v: &Value) -> Result<bool, Error> {
    result_dict(v, "skipped")?;
    Ok(field(v, "skipped").is_true())
}

fn unreachable(v: &Value) -> Result<bool, Error> {
    result_dict(v, "unreachable")?;
    Ok(field(v, "unreachable").is_true())
}

fn reachable(v: &Value) -> Result<bool, Error> {
    Ok(!unreachable(v)?)
}

fn finished(v: &Value) -> Result<bool, Error> {
    result_dict(v, "finished")?;
    let f = field(v, "finished");
    Ok(f.is_undefined() || f.is_true())
}

fn started(v: &Value) -> Result<bool, Error> {
    result_dict(v, "started")?;
    let f = field(v, "started");
    Ok(f.is_undefined() || f.is_true())
}

fn timedout(v: &Value) -> Result<bool, Error> {
    result_dict(v, "timedout")?;
    let t = field(v, "timedout");
    Ok(t.is_true() && field(&t, "period").is_true())
}

fn regex_test(
    name: &'static str,
    v: &Value,
    args: Rest<ValueOrKwargs>,
    mode: &str,
) -> Result<bool, Error> {
    let a = Args::new(
        name,
        args,
        &["pattern", "ignorecase", "multiline", "match_type"],
    )?;
    let pattern = a.str("pattern")?.unwrap_or_default();
    let ignorecase = a.bool("ignorecase", false)?;
    let multiline = a.bool("multiline", false)?;
    let mode = a.str("match_type")?.unwrap_or_else(|| mode.to_string());
    a.finish()?;
    let s = py_str(v)?;
    Ok(match mode.as_str() {
        // re.match: a match that starts at 0 (the leftmost match does if one can)
        "match" => py_regex(&pattern, ignorecase, multiline)?
            .find(&s)
            .is_some_and(|m| m.start() == 0),
        "fullmatch" => py_regex(&format!("^(?:{pattern})$"), ignorecase, false)?.is_match(&s),
        _ => py_regex(&pattern, ignorecase, multiline)?.is_match(&s),
    })
}

fn is_match(v: &Value, args: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    regex_test("match", v, args, "match")
}

fn is_search(v: &Value, args: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    regex_test("search", v, args, "search")
}

fn is_regex(v: &Value, args: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    regex_test("regex", v, args, "search")
}

fn contains(state: &State, seq: &Value, value: &Value) -> Result<bool, Error> {
    minijinja::tests::is_in(state, value, seq)
}

fn subset(a: &Value, b: &Value) -> Result<bool, Error> {
    let bv = items(b)?;
    Ok(items(a)?.iter().all(|x| bv.contains(x)))
}

fn superset(a: &Value, b: &Value) -> Result<bool, Error> {
    subset(b, a)
}

fn any(v: &Value) -> Result<bool, Error> {
    Ok(items(v)?.iter().any(Value::is_true))
}

fn all(v: &Value) -> Result<bool, Error> {
    Ok(items(v)?.iter().all(Value::is_true))
}

fn truthy(v: &Value, args: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    let a = Args::new("truthy", args, &["convert_bool"])?;
    let convert = a.bool("convert_bool", false)?;
    a.finish()?;
    if convert {
        if let Some(b) = convert_boolean(v) {
            return Ok(b);
        }
    }
    Ok(v.is_true())
}

fn falsy(v: &Value, args: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    Ok(!truthy(v, args)?)
}

/// `ansible.module_utils.parsing.convert_bool.boolean` (non-strict).
fn convert_boolean(v: &Value) -> Option<bool> {
    match v.kind() {
        ValueKind::Bool => Some(v.is_true()),
        ValueKind::String | ValueKind::Number => {
            let s = py_str(v).ok()?.to_lowercase();
            match s.as_str() {
                "y" | "yes" | "on" | "1" | "true" | "t" | "1.0" => Some(true),
                "n" | "no" | "off" | "0" | "false" | "f" | "0.0" => Some(false),
                _ => Some(to_bool_value(v)),
            }
        }
        _ => None,
    }
}

fn is_nan(v: &Value) -> bool {
    v.kind() == ValueKind::Number && f64::try_from(v.clone()).is_ok_and(f64::is_nan)
}
