//! `lookup()`, `query()`/`q()`: controller-side lookups (env, file, vars,
//! template, pipe, lines, items, list, dict, indexed_items, sequence,
//! first_found).

use super::filters::{err, items};
use super::pyfmt::py_str;
use super::vars::{Ctx, CTX_KEY};
use minijinja::value::{from_args, Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, State};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function("lookup", lookup);
    env.add_function("query", query);
    env.add_function("q", query);
}

fn ctx_of(state: &State) -> Result<Arc<Ctx>, Error> {
    state
        .lookup(CTX_KEY)
        .and_then(|v| v.downcast_object::<Ctx>())
        .ok_or_else(|| err("lookups need the variables of a Templar rendering"))
}

fn lookup(state: &State, name: String, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let values = args.into_values();
    let (terms, kw): (&[Value], Kwargs) = from_args(&values)?;
    let wantlist = kw
        .get::<Option<Value>>("wantlist")?
        .is_some_and(|v| v.is_true());
    let res = invoke(state, &name, terms, &kw)?;
    let Some(list) = res else {
        return Ok(if wantlist {
            Value::from(Vec::<Value>::new())
        } else {
            Value::from(())
        });
    };
    if wantlist {
        return Ok(Value::from(list));
    }
    Ok(match list.len() {
        0 => Value::from(list),
        1 => list.into_iter().next().unwrap_or_default(),
        _ => {
            if list.iter().all(|v| v.kind() == ValueKind::String) {
                let parts: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                Value::from(parts.join(","))
            } else {
                Value::from(list)
            }
        }
    })
}

fn query(state: &State, name: String, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let values = args.into_values();
    let (terms, kw): (&[Value], Kwargs) = from_args(&values)?;
    let _ = kw.get::<Option<Value>>("wantlist")?;
    Ok(Value::from(
        invoke(state, &name, terms, &kw)?.unwrap_or_default(),
    ))
}

/// Runs a lookup; `None` when `errors='ignore'`/`'warn'` swallowed a failure.
fn invoke(
    state: &State,
    name: &str,
    terms: &[Value],
    kw: &Kwargs,
) -> Result<Option<Vec<Value>>, Error> {
    let errors = kw
        .get::<Option<String>>("errors")?
        .unwrap_or_else(|| "strict".into());
    let short = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    let result = run(state, short, terms, kw);
    match result {
        Ok(v) => {
            kw.assert_all_used()
                .map_err(|_| err(format!("lookup('{name}'): unexpected keyword arguments")))?;
            Ok(Some(v))
        }
        Err(e) if errors == "ignore" || errors == "warn" => {
            let _ = e;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn term_strings(terms: &[Value]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for t in terms {
        if matches!(t.kind(), ValueKind::Seq | ValueKind::Iterable) {
            for i in items(t)? {
                out.push(py_str(&i)?);
            }
        } else {
            out.push(py_str(t)?);
        }
    }
    Ok(out)
}

fn base_dir(ctx: &Ctx) -> PathBuf {
    ctx.vars
        .base_dir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")))
}

/// Ansible's `find_file_in_search_path`: `<base>/<subdir>/<term>`, then `<base>/<term>`.
fn find(ctx: &Ctx, subdir: &str, term: &str) -> Option<PathBuf> {
    let p = Path::new(term);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    let base = base_dir(ctx);
    [base.join(subdir).join(term), base.join(term)]
        .into_iter()
        .find(|c| c.exists())
}

fn run(state: &State, name: &str, terms: &[Value], kw: &Kwargs) -> Result<Vec<Value>, Error> {
    match name {
        "env" => {
            let default = kw.get::<Option<Value>>("default")?;
            let mut out = Vec::new();
            for t in term_strings(terms)? {
                let var = t.split_whitespace().next().unwrap_or("").to_string();
                out.push(match std::env::var(&var) {
                    Ok(v) => Value::from(v),
                    Err(_) => default.clone().unwrap_or(Value::from("")),
                });
            }
            Ok(out)
        }
        "file" => {
            let ctx = ctx_of(state)?;
            let lstrip = kw.get::<Option<bool>>("lstrip")?.unwrap_or(false);
            let rstrip = kw.get::<Option<bool>>("rstrip")?.unwrap_or(true);
            let mut out = Vec::new();
            for t in term_strings(terms)? {
                let path = find(&ctx, "files", &t).ok_or_else(|| {
                    err(format!(
                        "lookup('file'): Unable to access the file '{t}': file not found"
                    ))
                })?;
                let mut text = std::fs::read_to_string(&path).map_err(|e| {
                    err(format!(
                        "lookup('file'): Unable to access the file '{t}': {e}"
                    ))
                })?;
                if lstrip {
                    text = text.trim_start().to_string();
                }
                if rstrip {
                    text = text.trim_end().to_string();
                }
                out.push(Value::from(text));
            }
            Ok(out)
        }
        "vars" => {
            let default = kw.get::<Option<Value>>("default")?;
            let mut out = Vec::new();
            for t in term_strings(terms)? {
                match state.lookup(&t).filter(|v| !v.is_undefined()) {
                    Some(v) => out.push(v),
                    None => match &default {
                        Some(d) => out.push(d.clone()),
                        None => {
                            return Err(err(format!(
                                "lookup('vars'): No variable named '{t}' was found."
                            )))
                        }
                    },
                }
            }
            Ok(out)
        }
        "template" => {
            let ctx = ctx_of(state)?;
            let _ = kw.get::<Option<Value>>("convert_data")?;
            let extra = kw.get::<Option<Value>>("template_vars")?;
            let mut out = Vec::new();
            for t in term_strings(terms)? {
                let path = find(&ctx, "templates", &t).ok_or_else(|| {
                    err(format!(
                        "lookup('template'): the template file {t} could not be found"
                    ))
                })?;
                let source = std::fs::read_to_string(&path)
                    .map_err(|e| err(format!("lookup('template'): {}: {e}", path.display())))?;
                let ctx = match &extra {
                    Some(v) if v.kind() == ValueKind::Map => {
                        let j = super::pyfmt::to_json(v)?;
                        let map = j.as_object().cloned().unwrap_or_default();
                        Ctx::new(ctx.shared.clone(), ctx.vars.with(map))
                    }
                    _ => ctx.clone(),
                };
                let rendered = ctx.shared.render_native_in(
                    &source,
                    &path.display().to_string(),
                    &ctx,
                    false,
                )?;
                out.push(Value::from(py_str(&rendered)?));
            }
            Ok(out)
        }
        "pipe" | "lines" => {
            let ctx = ctx_of(state)?;
            let mut out = Vec::new();
            for t in term_strings(terms)? {
                let o = std::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&t)
                    .current_dir(base_dir(&ctx))
                    .output()
                    .map_err(|e| err(format!("lookup('{name}'): could not run {t:?}: {e}")))?;
                if !o.status.success() {
                    return Err(err(format!(
                        "lookup('{name}'): command {t:?} failed with {}",
                        o.status
                    )));
                }
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                if name == "pipe" {
                    out.push(Value::from(text.trim_end()));
                } else {
                    out.extend(text.lines().map(Value::from));
                }
            }
            Ok(out)
        }
        "items" => {
            let mut out = Vec::new();
            for t in terms {
                if matches!(t.kind(), ValueKind::Seq | ValueKind::Iterable) {
                    out.extend(items(t)?);
                } else {
                    out.push(t.clone());
                }
            }
            Ok(out)
        }
        "list" => Ok(terms.to_vec()),
        "indexed_items" => {
            let mut out = Vec::new();
            for t in terms {
                for (i, v) in items(t)?.into_iter().enumerate() {
                    out.push(Value::from(vec![Value::from(i), v]));
                }
            }
            Ok(out)
        }
        "dict" => {
            let mut out = Vec::new();
            for t in terms {
                if t.kind() != ValueKind::Map {
                    return Err(err("lookup('dict'): with_dict expects a dict"));
                }
                for k in items(t)? {
                    let v = t.get_item(&k)?;
                    out.push(Value::from_pairs([
                        (Value::from("key"), k),
                        (Value::from("value"), v),
                    ]));
                }
            }
            Ok(out)
        }
        "sequence" => sequence(terms, kw),
        "first_found" => {
            let ctx = ctx_of(state)?;
            let skip = kw.get::<Option<bool>>("skip")?.unwrap_or(false);
            let mut files = Vec::new();
            let mut paths: Vec<String> = Vec::new();
            if let Some(f) = kw.get::<Option<Value>>("files")? {
                files.extend(term_strings(&[f])?);
            }
            if let Some(p) = kw.get::<Option<Value>>("paths")? {
                paths.extend(term_strings(&[p])?);
            }
            for t in terms {
                if t.kind() == ValueKind::Map {
                    if let Ok(f) = t.get_attr("files") {
                        if !f.is_undefined() {
                            files.extend(term_strings(&[f])?);
                        }
                    }
                    if let Ok(p) = t.get_attr("paths") {
                        if !p.is_undefined() {
                            paths.extend(term_strings(&[p])?);
                        }
                    }
                } else {
                    files.extend(term_strings(std::slice::from_ref(t))?);
                }
            }
            let files: Vec<String> = files
                .iter()
                .flat_map(|f| f.split([',', ';']).map(str::trim).map(String::from))
                .filter(|f| !f.is_empty())
                .collect();
            for f in &files {
                let found = if paths.is_empty() {
                    find(&ctx, "files", f)
                } else {
                    paths
                        .iter()
                        .map(|p| {
                            let p = Path::new(p);
                            if p.is_absolute() {
                                p.join(f)
                            } else {
                                base_dir(&ctx).join(p).join(f)
                            }
                        })
                        .find(|c| c.exists())
                };
                if let Some(p) = found {
                    return Ok(vec![Value::from(p.display().to_string())]);
                }
            }
            if skip {
                return Ok(vec![]);
            }
            Err(err(
                "lookup('first_found'): No file was found when using first_found.",
            ))
        }
        _ => Err(err(format!("lookup plugin '{name}' not found"))),
    }
}

/// `sequence`: `start=1 end=5 stride=1 format=%d`, or `1-5`, `count=3`.
fn sequence(terms: &[Value], kw: &Kwargs) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    let mut specs = term_strings(terms)?;
    if specs.is_empty() {
        specs.push(String::new());
    }
    for spec in specs {
        let mut start: i64 = kw.get::<Option<i64>>("start")?.unwrap_or(1);
        let mut end: Option<i64> = kw.get::<Option<i64>>("end")?;
        let mut count: Option<i64> = kw.get::<Option<i64>>("count")?;
        let mut stride: i64 = kw.get::<Option<i64>>("stride")?.unwrap_or(1);
        let mut format = kw
            .get::<Option<String>>("format")?
            .unwrap_or_else(|| "%d".into());
        let parse = |s: &str| -> Result<i64, Error> {
            let t = s.trim();
            let v = if let Some(h) = t.strip_prefix("0x") {
                i64::from_str_radix(h, 16)
            } else if let Some(o) = t
                .strip_prefix("0o")
                .or_else(|| t.strip_prefix('0').filter(|r| !r.is_empty()))
            {
                i64::from_str_radix(o, 8)
            } else {
                t.parse()
            };
            v.map_err(|_| err(format!("lookup('sequence'): can't parse {s:?}")))
        };
        for part in spec.split_whitespace() {
            if let Some((k, v)) = part.split_once('=') {
                match k {
                    "start" => start = parse(v)?,
                    "end" => end = Some(parse(v)?),
                    "count" => count = Some(parse(v)?),
                    "stride" => stride = parse(v)?,
                    "format" => format = v.to_string(),
                    _ => return Err(err(format!("lookup('sequence'): unrecognized arg {k}"))),
                }
            } else {
                // shortcut: [start-]end[/stride][:format]
                let (rest, fmt) = match part.split_once(':') {
                    Some((r, f)) => (r, Some(f)),
                    None => (part, None),
                };
                let (rest, st) = match rest.split_once('/') {
                    Some((r, s)) => (r, Some(parse(s)?)),
                    None => (rest, None),
                };
                match rest.split_once('-') {
                    Some((a, b)) => {
                        start = parse(a)?;
                        end = Some(parse(b)?);
                    }
                    None => end = Some(parse(rest)?),
                }
                if let Some(s) = st {
                    stride = s;
                }
                if let Some(f) = fmt {
                    format = f.to_string();
                }
            }
        }
        let end = match (end, count) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "lookup('sequence'): can't specify both count and end in with_sequence",
                ))
            }
            (Some(e), None) => e,
            (None, Some(c)) => {
                if c == 0 {
                    continue;
                }
                start + (c - 1) * stride
            }
            (None, None) => {
                return Err(err(
                    "lookup('sequence'): must specify count or end in with_sequence",
                ))
            }
        };
        if stride == 0 {
            continue;
        }
        if (stride > 0 && end < start) || (stride < 0 && end > start) {
            return Err(err(
                "lookup('sequence'): to count backwards make stride negative",
            ));
        }
        let mut i = start;
        while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
            out.push(Value::from(py_percent(&format, i)));
            i += stride;
        }
    }
    Ok(out)
}

/// The `%d`/`%02d`/`%x`/`%s` formats `sequence` uses.
fn py_percent(fmt: &str, n: i64) -> String {
    let re = regex::Regex::new(r"%(0?)(\d*)([dixXos])").expect("static regex");
    re.replace_all(fmt, |c: &regex::Captures<'_>| {
        let zero = !c[1].is_empty();
        let width: usize = c[2].parse().unwrap_or(0);
        let body = match &c[3] {
            "x" => format!("{n:x}"),
            "X" => format!("{n:X}"),
            "o" => format!("{n:o}"),
            _ => n.to_string(),
        };
        if zero {
            format!("{body:0>width$}")
        } else {
            format!("{body:>width$}")
        }
    })
    .into_owned()
}
