//! The `version` (`version_compare`) test and filter: Python's LooseVersion,
//! StrictVersion and Ansible's SemanticVersion comparisons.

use super::filters::{err, Args};
use super::pyfmt::py_str;
use minijinja::value::{Rest, Value, ValueOrKwargs};
use minijinja::Error;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Num(u128),
    Str(String),
}

/// distutils' LooseVersion components.
fn loose(v: &str) -> Vec<Part> {
    let re = regex::Regex::new(r"(\d+|[a-z]+|\.)").expect("static regex");
    let mut pieces = Vec::new();
    let mut last = 0;
    for m in re.find_iter(v) {
        pieces.push(&v[last..m.start()]);
        pieces.push(m.as_str());
        last = m.end();
    }
    pieces.push(&v[last..]);
    pieces
        .into_iter()
        .filter(|p| !p.is_empty() && *p != ".")
        .map(|p| match p.parse::<u128>() {
            Ok(n) if p.chars().all(|c| c.is_ascii_digit()) => Part::Num(n),
            _ => Part::Str(p.to_string()),
        })
        .collect()
}

fn cmp_loose(a: &str, b: &str) -> Result<Ordering, String> {
    let (a, b) = (loose(a), loose(b));
    for (x, y) in a.iter().zip(&b) {
        let o = match (x, y) {
            (Part::Num(x), Part::Num(y)) => x.cmp(y),
            (Part::Str(x), Part::Str(y)) => x.cmp(y),
            _ => return Err("'<' not supported between instances of 'str' and 'int'".to_string()),
        };
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

type Strict = ((u64, u64, u64), Option<(char, u64)>);

fn strict(v: &str) -> Result<Strict, String> {
    let re = regex::Regex::new(r"^(\d+)\.(\d+)(\.(\d+))?([ab](\d+))?$").expect("static regex");
    let c = re
        .captures(v)
        .ok_or_else(|| format!("invalid version number '{v}'"))?;
    let n = |i: usize| -> u64 { c.get(i).and_then(|m| m.as_str().parse().ok()).unwrap_or(0) };
    let pre = c
        .get(5)
        .map(|m| (m.as_str().chars().next().unwrap_or('a'), n(6)));
    Ok(((n(1), n(2), n(4)), pre))
}

fn cmp_strict(a: &str, b: &str) -> Result<Ordering, String> {
    let (va, pa) = strict(a)?;
    let (vb, pb) = strict(b)?;
    Ok(va.cmp(&vb).then_with(|| match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }))
}

type Semver = (u64, u64, u64, Vec<Part>);

fn semver(v: &str) -> Result<Semver, String> {
    let re = regex::Regex::new(
        r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
    )
    .expect("static regex");
    let c = re
        .captures(v)
        .ok_or_else(|| format!("invalid semantic version '{v}'"))?;
    let n = |i: usize| -> u64 { c.get(i).and_then(|m| m.as_str().parse().ok()).unwrap_or(0) };
    let pre = c
        .get(4)
        .map(|m| {
            m.as_str()
                .split('.')
                .map(|p| match p.parse::<u128>() {
                    Ok(n) => Part::Num(n),
                    Err(_) => Part::Str(p.to_string()),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((n(1), n(2), n(3), pre))
}

fn cmp_semver(a: &str, b: &str) -> Result<Ordering, String> {
    let (a1, a2, a3, ap) = semver(a)?;
    let (b1, b2, b3, bp) = semver(b)?;
    let core = (a1, a2, a3).cmp(&(b1, b2, b3));
    if core != Ordering::Equal {
        return Ok(core);
    }
    Ok(match (ap.is_empty(), bp.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            for (x, y) in ap.iter().zip(&bp) {
                let o = match (x, y) {
                    (Part::Num(x), Part::Num(y)) => x.cmp(y),
                    (Part::Str(x), Part::Str(y)) => x.cmp(y),
                    (Part::Num(_), Part::Str(_)) => Ordering::Less,
                    (Part::Str(_), Part::Num(_)) => Ordering::Greater,
                };
                if o != Ordering::Equal {
                    return Ok(o);
                }
            }
            ap.len().cmp(&bp.len())
        }
    })
}

/// `value is version(other, operator, strict=, version_type=)`.
pub(crate) fn compare(
    value: &Value,
    args: Rest<ValueOrKwargs>,
    name: &'static str,
) -> Result<bool, Error> {
    let a = Args::new(
        name,
        args,
        &["version", "operator", "strict", "version_type"],
    )?;
    let version = a.get("version")?.unwrap_or(Value::from(""));
    let operator = a.str("operator")?.unwrap_or_else(|| "eq".into());
    let strict_flag = a.get("strict")?.filter(|v| !v.is_none());
    let version_type = a.str("version_type")?;
    a.finish()?;
    if strict_flag.is_some() && version_type.is_some() {
        return Err(err("Cannot specify both 'strict' and 'version_type'"));
    }
    if !value.is_true() {
        return Err(err("Input version value cannot be empty"));
    }
    if !version.is_true() {
        return Err(err("Version parameter to compare against cannot be empty"));
    }
    let op = match operator.as_str() {
        "==" | "=" | "eq" => "eq",
        "<" | "lt" => "lt",
        "<=" | "le" => "le",
        ">" | "gt" => "gt",
        ">=" | "ge" => "ge",
        "!=" | "<>" | "ne" => "ne",
        other => {
            return Err(err(format!(
                "Invalid operator type ({other}). Must be one of '==', '=', 'eq', '<', 'lt', '<=', 'le', '>', 'gt', '>=', 'ge', '!=', '<>', 'ne'"
            )))
        }
    };
    let kind = if strict_flag.is_some_and(|s| s.is_true()) {
        "strict".to_string()
    } else {
        version_type.unwrap_or_else(|| "loose".into())
    };
    let (x, y) = (py_str(value)?, py_str(&version)?);
    let ord = match kind.as_str() {
        "loose" => cmp_loose(&x, &y),
        "strict" => cmp_strict(&x, &y),
        "semver" | "semantic" => cmp_semver(&x, &y),
        "pep440" => cmp_loose(&x, &y),
        other => {
            return Err(err(format!(
                "Invalid version type ({other}). Must be one of 'loose', 'strict', 'semver', 'semantic', 'pep440'"
            )))
        }
    }
    .map_err(|e| err(format!("Version comparison failed: {e}")))?;
    Ok(match op {
        "eq" => ord == Ordering::Equal,
        "ne" => ord != Ordering::Equal,
        "lt" => ord == Ordering::Less,
        "le" => ord != Ordering::Greater,
        "gt" => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

pub(crate) fn version_test(value: &Value, args: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    compare(value, args, "version")
}

pub(crate) fn version_filter(value: Value, args: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    compare(&value, args, "version")
}
