//! Variables and templates: Jinja2 as Ansible (ansible-core 2.19) uses it.
//!
//! A [`Templar`] holds one minijinja environment with Ansible's filters, tests
//! and lookups; [`Vars`] are the variables a template sees. Templating follows
//! Ansible's rules:
//! - a string that renders as exactly one `{{ expr }}` output gives the
//!   expression's native value (list, dict, int, bool, null); anything else
//!   is a string, and strings without `{{`/`{%`/`{#` are returned as they are;
//! - variables are templated lazily when read, with loop detection;
//! - undefined values are strict (printing, iterating, testing or filtering
//!   one fails with `'name' is undefined`), except that attribute lookups on
//!   them chain (`foo.bar | default(1)`, `foo.bar is defined`);
//! - `trim_blocks` on, `lstrip_blocks` off, trailing newlines of the source kept;
//! - `omit` is a placeholder string; [`Templar::render_value`] drops dict
//!   entries and list items that render to it;
//! - backslashes in `{{ }}` string literals are escaped for string templates
//!   (they come from YAML), not for template files or conditionals.
//!
//! Filters (each also `ansible.builtin.NAME`): default/d, mandatory, bool, int,
//! float, string, lower, upper, capitalize, title, trim, replace, join, split,
//! first, last, length/count, unique, union, intersect, difference,
//! symmetric_difference, flatten, min, max, sum, sort, reverse, zip, zip_longest,
//! product, permutations, combinations, select, reject, selectattr, rejectattr,
//! map, groupby, dictsort, items, list, dict, batch, slice, indent, abs, round,
//! attr, format, urlencode, urldecode, truncate, wordcount, center, dict2items,
//! items2dict, combine, extract, subelements, shuffle, log, pow, root, to_json,
//! to_nice_json, from_json, to_yaml, to_nice_yaml, from_yaml, from_yaml_all,
//! b64encode, b64decode, regex_search, regex_replace, regex_findall,
//! regex_escape, basename, dirname, splitext, expanduser, normpath, path_join,
//! win_basename, win_dirname, hash, md5, sha1, checksum, password_hash, to_uuid,
//! ternary, quote, comment, human_readable, human_to_bytes, type_debug,
//! version/version_compare, ipaddr/ipv4/ipv6/ipwrap (also `ansible.utils.`).
//!
//! Tests: defined, undefined, none, boolean, true, false, number, integer,
//! float, string, mapping, sequence, iterable, callable, odd, even,
//! divisibleby, lower, upper, sameas, eq/ne/lt/le/gt/ge (and symbols), in,
//! contains, subset/issubset, superset/issuperset, any, all, truthy, falsy,
//! nan/isnan, failed/failure, succeeded/success/successful, changed/change,
//! skipped/skip, reachable, unreachable, finished, started, timedout,
//! match, search, regex, version/version_compare, filter, test.
//!
//! Lookups (`lookup`, `query`/`q`): env, file, vars, template, pipe, lines,
//! items, list, dict, indexed_items, sequence, first_found.

mod filters;
mod lookups;
mod netaddr;
mod predicates;
mod pyfmt;
mod pyyaml;
mod rewrite;
mod vars;
mod version;
mod yaml_emit;

#[cfg(test)]
mod tests;

pub use vars::{Prebuilt, Vars};

/// The names a template string's code reads (attribute names included: never fewer than it
/// looks up); `None` when it cannot be read statically (an unclosed `{{`).
pub fn template_names(s: &str) -> Option<Vec<String>> {
    rewrite::template_names(s)
}

/// The names a bare expression (`when:`, `that:`) reads, as [`template_names`].
pub fn expr_names(s: &str) -> Vec<String> {
    rewrite::expr_names(s)
}

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use std::sync::Arc;
use vars::Ctx;

/// A templating failure. The message names the variable or filter at fault;
/// `at` says where: `file:line`, or the caller's origin and the template text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// A variable (or attribute) that does not exist was used.
    #[error("{message} (in {at})")]
    Undefined {
        /// The expression that is undefined (`foo`, `foo.bar`).
        variable: String,
        message: String,
        at: String,
    },
    /// A variable's template uses itself.
    #[error("recursive loop detected in template for variable '{variable}' (in {at})")]
    Recursion { variable: String, at: String },
    #[error("template syntax error: {message} (in {at})")]
    Syntax { message: String, at: String },
    /// A conditional (`when:` ...) whose result is not a boolean.
    #[error("Conditional result ({truth}) was derived from value of type '{type_name}' at {at}. Conditionals must have a boolean result.")]
    NotBoolean {
        expr: String,
        truth: String,
        type_name: String,
        at: String,
    },
    /// Any other failure (a filter's, a lookup's, a type error).
    #[error("{message} (in {at})")]
    Render { message: String, at: String },
}

impl TemplateError {
    /// Where the error happened (`file:line`, or the template text).
    pub fn at(&self) -> &str {
        match self {
            TemplateError::Undefined { at, .. }
            | TemplateError::Recursion { at, .. }
            | TemplateError::Syntax { at, .. }
            | TemplateError::NotBoolean { at, .. }
            | TemplateError::Render { at, .. } => at,
        }
    }
}

/// What the environment shares with the lazy variables it renders.
pub(crate) struct Shared {
    env: Environment<'static>,
    pub(crate) omit: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("omit", &self.omit).finish()
    }
}

/// What the formatter saw during one rendering: enough to give the native
/// value back when the whole output is one `{{ }}`.
#[derive(Default)]
struct NativeCapture {
    count: usize,
    len: usize,
    value: Option<Value>,
}

impl Shared {
    /// Renders `source` with the variables of `ctx`; a single output gives its native value.
    pub(crate) fn render_native_in(
        &self,
        source: &str,
        name: &str,
        ctx: &Arc<Ctx>,
        escape: bool,
    ) -> Result<Value, Error> {
        let src = rewrite::rewrite_template(source, escape);
        let env: &Environment<'_> = &self.env;
        let tmpl = env.template_from_named_str(name, &src)?;
        let captured = tmpl.render_captured(ctx.value())?;
        if let Some(cap) = captured.state().get_extension::<NativeCapture>() {
            // A source ending in newlines is text (Ansible keeps them: "{{ x }}\n" is "x\n").
            if cap.count == 1 && cap.len == captured.output().len() && !source.ends_with('\n') {
                if let Some(v) = &cap.value {
                    return Ok(v.clone());
                }
            }
        }
        let out = captured.into_output();
        Ok(Value::from(keep_trailing_newlines(source, out)))
    }

    fn render_string_in(
        &self,
        source: &str,
        name: &str,
        ctx: &Arc<Ctx>,
        escape: bool,
    ) -> Result<String, Error> {
        let src = rewrite::rewrite_template(source, escape);
        let env: &Environment<'_> = &self.env;
        let tmpl = env.template_from_named_str(name, &src)?;
        let out = tmpl.render(ctx.value())?;
        Ok(keep_trailing_newlines(source, out))
    }

    /// A bare expression; an undefined result is an error naming it.
    fn eval_in(&self, expr: &str, ctx: &Arc<Ctx>) -> Result<Value, Error> {
        let expr = strip_braces(expr);
        let wrapped = format!("{}(({}\n))", CHECK_FN, rewrite::rewrite_expr(expr));
        let env: &Environment<'_> = &self.env;
        let e = env.compile_expression(&wrapped)?;
        e.eval(ctx.value())
    }
}

const CHECK_FN: &str = "__hl_defined";

/// `{{ expr }}` → `expr` (conditionals written with braces).
fn strip_braces(expr: &str) -> &str {
    let t = expr.trim();
    if let Some(inner) = t.strip_prefix("{{").and_then(|s| s.strip_suffix("}}")) {
        if !inner.contains("{{") && !inner.contains("}}") {
            return inner
                .trim_start_matches(['-', '+'])
                .trim_end_matches(['-', '+']);
        }
    }
    expr
}

/// Ansible keeps as many trailing newlines as the source had.
fn keep_trailing_newlines(source: &str, mut out: String) -> String {
    let want = source.len() - source.trim_end_matches('\n').len();
    let have = out.len() - out.trim_end_matches('\n').len();
    for _ in have..want {
        out.push('\n');
    }
    out
}

/// `'expr' is undefined` from a minijinja undefined error.
pub(crate) fn undefined_message(e: &Error) -> String {
    match undefined_expr(e) {
        Some(expr) => format!("'{expr}' is undefined"),
        None => e.detail().unwrap_or("undefined value").to_string(),
    }
}

fn undefined_expr(e: &Error) -> Option<String> {
    let detail = e.detail()?;
    let start = detail.find('`')?;
    let rest = &detail[start + 1..];
    let end = rest.find("` is undefined")?;
    Some(rest[..end].to_string())
}

fn py_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "NoneType",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) => {
            if n.is_f64() {
                "float"
            } else {
                "int"
            }
        }
        serde_json::Value::String(_) => "str",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "dict",
    }
}

fn py_truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(m) => !m.is_empty(),
    }
}

/// Renders Ansible templates. Cheap to clone (the environment is shared).
#[derive(Clone, Debug)]
pub struct Templar {
    shared: Arc<Shared>,
}

impl Default for Templar {
    fn default() -> Self {
        Templar::new()
    }
}

/// Where a template came from, for messages.
struct Place<'a> {
    source: &'a str,
    origin: Option<&'a str>,
    /// a whole file: positions are `origin:line`
    file: bool,
}

impl Place<'_> {
    fn describe(&self, e: &Error) -> String {
        if self.file {
            let name = self.origin.unwrap_or("<template>");
            return match e.line() {
                Some(line) if e.name() == Some(name) => format!("{name}:{line}"),
                _ => name.to_string(),
            };
        }
        let snippet = short(self.source);
        match self.origin {
            Some(o) => format!("{o}: '{snippet}'"),
            None => format!("'{snippet}'"),
        }
    }
}

fn short(s: &str) -> String {
    let s = s.trim_end_matches('\n');
    if s.chars().count() > 200 {
        let cut: String = s.chars().take(200).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

impl Templar {
    pub fn new() -> Templar {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_debug(true);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(false)
            .keep_trailing_newline(false)
            .build()
            .expect("default delimiters");
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(|out, state, value| {
            let text = pyfmt::output_text(value)?;
            out.write_str(&text)
                .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write output"))?;
            let cap = state.get_or_insert_extension(NativeCapture::default());
            cap.count += 1;
            if cap.count == 1 {
                cap.len = text.len();
                cap.value = Some(value.clone());
            }
            Ok(())
        });
        env.add_function(rewrite::CHAIN_FN, chain_lookup);
        env.add_function(CHECK_FN, defined_check);
        filters::register(&mut env);
        predicates::register(&mut env);
        lookups::register(&mut env);
        let omit = format!("__omit_place_holder__{}", random_hex(40));
        Templar {
            shared: Arc::new(Shared { env, omit }),
        }
    }

    /// The placeholder `omit` renders to (`__omit_place_holder__<hex>`).
    pub fn omit_token(&self) -> &str {
        &self.shared.omit
    }

    fn ctx(&self, vars: &Vars) -> Arc<Ctx> {
        Ctx::new(self.shared.clone(), vars.clone())
    }

    /// Renders a string: exactly one `{{ expr }}` gives the expression's native
    /// value, anything else a string; a string without `{{`/`{%`/`{#` is returned as is.
    pub fn render(&self, s: &str, vars: &Vars) -> Result<serde_json::Value, TemplateError> {
        self.render_at(s, vars, None)
    }

    /// [`render`](Self::render), with `origin` (`file:line`) named in errors.
    pub fn render_at(
        &self,
        s: &str,
        vars: &Vars,
        origin: Option<&str>,
    ) -> Result<serde_json::Value, TemplateError> {
        if !vars::is_template(s) {
            return Ok(serde_json::Value::String(s.to_string()));
        }
        let ctx = self.ctx(vars);
        let place = Place {
            source: s,
            origin,
            file: false,
        };
        let v = self
            .shared
            .render_native_in(s, origin.unwrap_or("<template>"), &ctx, true)
            .map_err(|e| self.error(&e, &place, &ctx))?;
        let json = pyfmt::to_json(&v).map_err(|e| self.error(&e, &place, &ctx))?;
        Ok(self.strip_nested_omit(json))
    }

    /// Renders a string to a string (non-string results as Python's `str()`).
    pub fn render_string(&self, s: &str, vars: &Vars) -> Result<String, TemplateError> {
        self.render_string_at(s, vars, None)
    }

    pub fn render_string_at(
        &self,
        s: &str,
        vars: &Vars,
        origin: Option<&str>,
    ) -> Result<String, TemplateError> {
        if !vars::is_template(s) {
            return Ok(s.to_string());
        }
        let ctx = self.ctx(vars);
        let place = Place {
            source: s,
            origin,
            file: false,
        };
        self.shared
            .render_string_in(s, origin.unwrap_or("<template>"), &ctx, true)
            .map_err(|e| self.error(&e, &place, &ctx))
    }

    /// Renders every string inside `v` (a task's arguments), keys too. Dict
    /// entries and list items that render to the `omit` placeholder are removed.
    pub fn render_value(
        &self,
        v: &serde_json::Value,
        vars: &Vars,
    ) -> Result<serde_json::Value, TemplateError> {
        self.render_value_at(v, vars, None)
    }

    pub fn render_value_at(
        &self,
        v: &serde_json::Value,
        vars: &Vars,
        origin: Option<&str>,
    ) -> Result<serde_json::Value, TemplateError> {
        if let Some(s) = crate::inventory::unsafe_text(v) {
            return Ok(serde_json::Value::String(s.to_string()));
        }
        Ok(match v {
            serde_json::Value::String(s) => self.render_at(s, vars, origin)?,
            serde_json::Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let r = self.render_value_at(item, vars, origin)?;
                    if !self.is_omit(&r) {
                        out.push(r);
                    }
                }
                serde_json::Value::Array(out)
            }
            serde_json::Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, item) in m {
                    let r = self.render_value_at(item, vars, origin)?;
                    if self.is_omit(&r) {
                        continue;
                    }
                    let key = if vars::is_template(k) {
                        self.render_string_at(k, vars, origin)?
                    } else {
                        k.clone()
                    };
                    out.insert(key, r);
                }
                serde_json::Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn is_omit(&self, v: &serde_json::Value) -> bool {
        v.as_str() == Some(self.shared.omit.as_str())
    }

    /// Removes omitted items inside containers (not the value itself).
    fn strip_nested_omit(&self, v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .into_iter()
                    .filter(|i| !self.is_omit(i))
                    .map(|i| self.strip_nested_omit(i))
                    .collect(),
            ),
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.into_iter()
                    .filter(|(_, i)| !self.is_omit(i))
                    .map(|(k, i)| (k, self.strip_nested_omit(i)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// A bare Jinja expression (`when:`, `changed_when:`, `failed_when:`,
    /// `until:`); braces around it are accepted. The result must be a boolean.
    pub fn eval_bool(&self, expr: &str, vars: &Vars) -> Result<bool, TemplateError> {
        self.eval_bool_at(expr, vars, None)
    }

    pub fn eval_bool_at(
        &self,
        expr: &str,
        vars: &Vars,
        origin: Option<&str>,
    ) -> Result<bool, TemplateError> {
        let v = self.eval_at(expr, vars, origin)?;
        match v {
            serde_json::Value::Bool(b) => Ok(b),
            other => Err(TemplateError::NotBoolean {
                expr: expr.to_string(),
                truth: if py_truthy(&other) { "True" } else { "False" }.to_string(),
                type_name: py_type_name(&other).to_string(),
                at: match origin {
                    Some(o) => format!("{o}: '{}'", short(expr)),
                    None => format!("'{}'", short(expr)),
                },
            }),
        }
    }

    /// A bare Jinja expression's value.
    pub fn eval(&self, expr: &str, vars: &Vars) -> Result<serde_json::Value, TemplateError> {
        self.eval_at(expr, vars, None)
    }

    pub fn eval_at(
        &self,
        expr: &str,
        vars: &Vars,
        origin: Option<&str>,
    ) -> Result<serde_json::Value, TemplateError> {
        let ctx = self.ctx(vars);
        let place = Place {
            source: expr,
            origin,
            file: false,
        };
        let v = self
            .shared
            .eval_in(expr, &ctx)
            .map_err(|e| self.error(&e, &place, &ctx))?;
        let json = pyfmt::to_json(&v).map_err(|e| self.error(&e, &place, &ctx))?;
        Ok(self.strip_nested_omit(json))
    }

    /// The template module: renders a whole file (`trim_blocks`, trailing
    /// newlines kept); errors carry `name:line`.
    pub fn render_file(
        &self,
        name: &str,
        source: &str,
        vars: &Vars,
    ) -> Result<String, TemplateError> {
        let ctx = self.ctx(vars);
        let place = Place {
            source,
            origin: Some(name),
            file: true,
        };
        self.shared
            .render_string_in(source, name, &ctx, false)
            .map_err(|e| self.error(&e, &place, &ctx))
    }

    fn error(&self, e: &Error, place: &Place<'_>, ctx: &Ctx) -> TemplateError {
        let mut at = place.describe(e);
        if let Some(name) = e.name() {
            if name.starts_with("variable '") {
                at = format!("{name}, used by {at}");
            }
        }
        match e.kind() {
            ErrorKind::UndefinedError => {
                let variable = undefined_expr(e).unwrap_or_default();
                let base = variable
                    .split(['.', '['])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let reasons = ctx.undefined_reasons.lock().unwrap();
                let message = match reasons.get(&variable).or_else(|| reasons.get(&base)) {
                    Some(inner) => format!("{inner} (in the value of '{variable}')"),
                    None => undefined_message(e),
                };
                TemplateError::Undefined {
                    variable,
                    message,
                    at,
                }
            }
            ErrorKind::SyntaxError => TemplateError::Syntax {
                message: e.detail().unwrap_or("syntax error").to_string(),
                at,
            },
            _ => {
                let detail = e.detail().unwrap_or_default();
                if let Some(rest) =
                    detail.strip_prefix("recursive loop detected in template for variable '")
                {
                    return TemplateError::Recursion {
                        variable: rest.trim_end_matches('\'').to_string(),
                        at,
                    };
                }
                let mut message = e.kind().to_string();
                if !detail.is_empty() {
                    message = format!("{message}: {detail}");
                }
                if let (Some(range), false) = (
                    e.range(),
                    e.name().is_some_and(|n| n.starts_with("variable '")),
                ) {
                    if let Some(snippet) = place.source.get(range) {
                        if !snippet.is_empty() && !message.contains(snippet) {
                            message = format!("{message} (at `{snippet}`)");
                        }
                    }
                }
                TemplateError::Render { message, at }
            }
        }
    }
}

/// `__hl_chain(base, k1, k2, ...)`: Ansible's chained undefined lookups.
fn chain_lookup(base: Value, keys: minijinja::value::Rest<Value>) -> Result<Value, Error> {
    let mut cur = base;
    for key in keys.iter() {
        if cur.is_undefined() || cur.is_none() {
            return Ok(Value::UNDEFINED);
        }
        let next = match key.as_str() {
            Some(name) => cur.get_attr(name),
            None => cur.get_item(key),
        };
        cur = match next {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::UndefinedError => Value::UNDEFINED,
            Err(_) => Value::UNDEFINED,
        };
    }
    Ok(cur)
}

/// `__hl_defined(value)`: the value, or the undefined error naming it.
fn defined_check(v: Value) -> Result<Value, Error> {
    if v.is_undefined() {
        // `get_attr` on an undefined value reports where it came from
        return Err(v
            .get_attr("__undefined__")
            .err()
            .unwrap_or_else(|| Error::from(ErrorKind::UndefinedError)));
    }
    Ok(v)
}

fn random_hex(n: usize) -> String {
    use sha1::{Digest, Sha1};
    use std::time::{SystemTime, UNIX_EPOCH};
    let mut out = String::new();
    let mut counter = 0u64;
    let seed = format!(
        "{:?}{}{:p}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
        std::process::id(),
        &counter
    );
    while out.len() < n {
        let mut h = Sha1::new();
        h.update(seed.as_bytes());
        h.update(counter.to_le_bytes());
        for b in h.finalize() {
            out.push_str(&format!("{b:02x}"));
        }
        counter += 1;
    }
    out.truncate(n);
    out
}
