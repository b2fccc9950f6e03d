//! Source rewriting for Ansible's chained undefined lookups.
//!
//! Ansible's undefined values allow attribute access (`foo.bar.baz` on an
//! undefined `foo` is still undefined), so `foo.bar | default(1)` and
//! `foo['x'].y is defined` work when `foo` does not exist. Everything else is
//! strict: printing, iterating, testing the truth of, or filtering an
//! undefined value fails. minijinja's strict mode fails on the attribute
//! access itself, so before compiling, a lookup chain that feeds `default`/`d`
//! or an `is defined`/`is undefined` test is turned into a call of
//! `__hl_chain(foo, 'bar', 'baz')`, which walks the chain and gives undefined
//! as soon as a step is missing.

use std::borrow::Cow;

pub(crate) const CHAIN_FN: &str = "__hl_chain";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Ident,
    Num,
    Str,
    Punct(u8),
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

fn tokenize(code: &str) -> Vec<Tok> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.push(Tok {
                kind: Kind::Str,
                start,
                end: i,
            });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok {
                kind: Kind::Num,
                start,
                end: i,
            });
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            out.push(Tok {
                kind: Kind::Ident,
                start,
                end: i,
            });
        } else {
            out.push(Tok {
                kind: Kind::Punct(c),
                start: i,
                end: i + 1,
            });
            i += 1;
        }
    }
    out
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False", "None",
];

enum Trailer {
    Attr(usize),
    Item(usize, usize),
}

/// Rewrites the chains inside one expression (the inside of `{{ }}`/`{% %}`).
pub(crate) fn rewrite_expr(code: &str) -> Cow<'_, str> {
    if !code.contains('d') {
        return Cow::Borrowed(code);
    }
    let toks = tokenize(code);
    let text = |t: &Tok| &code[t.start..t.end];
    let is_punct = |i: usize, c: u8| toks.get(i).is_some_and(|t| t.kind == Kind::Punct(c));
    let is_word = |i: usize, w: &str| {
        toks.get(i)
            .is_some_and(|t| t.kind == Kind::Ident && &code[t.start..t.end] == w)
    };
    // `ansible.builtin.NAME` or `NAME` at i: the index after it when NAME is one of `names`
    let name_at = |i: usize, names: &[&str]| -> Option<usize> {
        if is_word(i, "ansible") && is_punct(i + 1, b'.') && is_word(i + 2, "builtin") {
            if is_punct(i + 3, b'.') && names.iter().any(|n| is_word(i + 4, n)) {
                return Some(i + 5);
            }
            return None;
        }
        names.iter().any(|n| is_word(i, n)).then_some(i + 1)
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    let mut changed = false;
    while i < toks.len() {
        let t = toks[i];
        let prev_blocks = i > 0
            && (is_punct(i - 1, b'.')
                || is_punct(i - 1, b'|')
                || is_word(i - 1, "is")
                || (is_word(i - 1, "not") && i > 1 && is_word(i - 2, "is")));
        if t.kind != Kind::Ident || KEYWORDS.contains(&text(&t)) || prev_blocks {
            i += 1;
            continue;
        }
        let mut trailers = Vec::new();
        let mut j = i + 1;
        loop {
            if is_punct(j, b'.')
                && toks
                    .get(j + 1)
                    .is_some_and(|t| matches!(t.kind, Kind::Ident | Kind::Num))
            {
                trailers.push(Trailer::Attr(j + 1));
                j += 2;
            } else if is_punct(j, b'[') {
                let mut depth = 0i32;
                let mut k = j;
                while k < toks.len() {
                    match toks[k].kind {
                        Kind::Punct(b'[' | b'(' | b'{') => depth += 1,
                        Kind::Punct(b']' | b')' | b'}') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                if k >= toks.len() {
                    break;
                }
                trailers.push(Trailer::Item(j, k));
                j = k + 1;
            } else {
                break;
            }
        }
        let feeds = !trailers.is_empty()
            && ((is_punct(j, b'|') && name_at(j + 1, &["default", "d"]).is_some())
                || (is_word(j, "is")
                    && (name_at(j + 1, &["defined", "undefined"]).is_some()
                        || (is_word(j + 1, "not")
                            && name_at(j + 2, &["defined", "undefined"]).is_some()))));
        // a chain spread over lines keeps its line numbers as it is
        let end = toks[j - 1].end;
        if !feeds || code[t.start..end].contains('\n') {
            i += 1;
            continue;
        }
        out.push_str(&code[copied..t.start]);
        out.push_str(CHAIN_FN);
        out.push('(');
        out.push_str(text(&t));
        for tr in &trailers {
            out.push_str(", ");
            match tr {
                Trailer::Attr(k) => {
                    let a = &toks[*k];
                    if a.kind == Kind::Num {
                        out.push_str(text(a));
                    } else {
                        out.push('\'');
                        out.push_str(text(a));
                        out.push('\'');
                    }
                }
                Trailer::Item(open, close) => {
                    let inner = &code[toks[*open].end..toks[*close].start];
                    out.push('(');
                    out.push_str(&rewrite_expr(inner));
                    out.push(')');
                }
            }
        }
        out.push(')');
        copied = end;
        changed = true;
        i = j;
    }
    if !changed {
        return Cow::Borrowed(code);
    }
    out.push_str(&code[copied..]);
    Cow::Owned(out)
}

/// Where the code of a delimiter pair ends: the index of `close` outside strings.
fn find_close(src: &str, from: usize, close: &str) -> Option<usize> {
    let b = src.as_bytes();
    let mut i = from;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == b'\'' || c == b'"' {
                    quote = Some(c);
                } else if src[i..].starts_with(close) {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn raw_tag(src: &str, at: usize, word: &str) -> Option<usize> {
    // `{%-? raw -?%}` starting at `at`; returns the index after it
    let rest = &src[at + 2..];
    let rest_trim = rest.trim_start_matches(['-', '+']).trim_start();
    let after = rest_trim.strip_prefix(word)?;
    let after_trim = after.trim_start().trim_start_matches(['-', '+']);
    if after.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let close = after_trim.strip_prefix("%}")?;
    Some(src.len() - close.len())
}

/// Ansible's `escape_backslashes` for templates that come from YAML strings:
/// backslashes inside string literals of `{{ }}` are doubled, so `'\\1'`
/// reaches a filter as written (`\\1`), not as an escape sequence.
fn escape_string_literals(code: &str) -> Cow<'_, str> {
    if !code.contains('\\') {
        return Cow::Borrowed(code);
    }
    let mut out = String::with_capacity(code.len() + 8);
    let mut quote: Option<char> = None;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
            Some(q) => {
                if c == '\\' {
                    if chars.peek() == Some(&q) {
                        // `\'` stays a quote inside the literal, after a literal backslash
                        chars.next();
                        out.push_str("\\\\\\");
                        out.push(q);
                    } else {
                        out.push_str("\\\\");
                        if let Some(n) = chars.next() {
                            if n == '\\' {
                                out.push_str("\\\\");
                            } else {
                                out.push(n);
                            }
                        }
                    }
                } else {
                    if c == q {
                        quote = None;
                    }
                    out.push(c);
                }
            }
        }
    }
    Cow::Owned(out)
}

/// Rewrites every code region of a template (and escapes backslashes in
/// `{{ }}` string literals when `escape` is set).
pub(crate) fn rewrite_template(src: &str, escape: bool) -> Cow<'_, str> {
    if !(src.contains('d') || src.contains("raw") || escape && src.contains('\\')) {
        return Cow::Borrowed(src);
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    let mut changed = false;
    while let Some(off) = src[i..].find('{') {
        let at = i + off;
        let rest = &src[at..];
        if rest.starts_with("{#") {
            match src[at + 2..].find("#}") {
                Some(e) => i = at + 2 + e + 2,
                None => break,
            }
        } else if rest.starts_with("{%") || rest.starts_with("{{") {
            let close = if rest.starts_with("{%") { "%}" } else { "}}" };
            if close == "%}" {
                if let Some(after) = raw_tag(src, at, "raw") {
                    // Jinja2 does not apply trim_blocks to `{% raw %}` (minijinja
                    // does): keep the newline after it by doubling it
                    if !src[..after].ends_with("-%}") && src[after..].starts_with('\n') {
                        out.push_str(&src[copied..after]);
                        out.push('\n');
                        copied = after;
                        changed = true;
                    }
                    // skip to the end of `{% endraw %}`
                    let mut k = after;
                    let mut end = None;
                    while let Some(o) = src[k..].find("{%") {
                        if let Some(e) = raw_tag(src, k + o, "endraw") {
                            end = Some(e);
                            break;
                        }
                        k += o + 2;
                    }
                    match end {
                        Some(e) => {
                            i = e;
                            continue;
                        }
                        None => break,
                    }
                }
            }
            let Some(e) = find_close(src, at + 2, close) else {
                break;
            };
            let code = &src[at + 2..e];
            let escaped = if escape && close == "}}" {
                escape_string_literals(code)
            } else {
                Cow::Borrowed(code)
            };
            let rewritten = match rewrite_expr(&escaped) {
                Cow::Borrowed(_) => escaped,
                Cow::Owned(o) => Cow::Owned(o),
            };
            if let Cow::Owned(new) = rewritten {
                out.push_str(&src[copied..at + 2]);
                out.push_str(&new);
                copied = e;
                changed = true;
            }
            i = e + 2;
        } else {
            i = at + 1;
        }
    }
    if !changed {
        return Cow::Borrowed(src);
    }
    out.push_str(&src[copied..]);
    Cow::Owned(out)
}

/// The names an expression reads (identifiers outside string literals, keywords left out).
/// Attribute names count too: the answer may hold more names than are looked up, never fewer.
pub(crate) fn expr_names(code: &str) -> Vec<String> {
    tokenize(code)
        .into_iter()
        .filter(|t| t.kind == Kind::Ident)
        .map(|t| &code[t.start..t.end])
        .filter(|w| !KEYWORDS.contains(w))
        .map(str::to_string)
        .collect()
}

/// The names the code regions (`{{ }}`, `{% %}`) of a template read, as [`expr_names`];
/// `None` when a region is not closed (the template cannot be read statically).
pub(crate) fn template_names(src: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = src[i..].find('{') {
        let at = i + off;
        let rest = &src[at..];
        if rest.starts_with("{#") {
            i = at + 2 + src[at + 2..].find("#}")? + 2;
        } else if rest.starts_with("{%") || rest.starts_with("{{") {
            let close = if rest.starts_with("{%") { "%}" } else { "}}" };
            let e = find_close(src, at + 2, close)?;
            out.extend(expr_names(&src[at + 2..e]));
            i = e + 2;
        } else {
            i = at + 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_by_templates_and_expressions() {
        let names = template_names("a {{ x.y | default(z) }} {# w #}{% if 'q' in v %}{% endif %}");
        assert_eq!(names.unwrap(), ["x", "y", "default", "z", "v", "endif"]);
        assert_eq!(template_names("{{ open"), None);
        assert_eq!(
            expr_names("ansible_os_family == 'Debian' and not f"),
            ["ansible_os_family", "f"]
        );
    }

    #[test]
    fn chains_feeding_default_or_defined_are_rewritten() {
        assert_eq!(
            rewrite_expr(" foo.bar | default(1) "),
            " __hl_chain(foo, 'bar') | default(1) "
        );
        assert_eq!(
            rewrite_expr("hostvars['x']['y']|d('z')"),
            "__hl_chain(hostvars, ('x'), ('y'))|d('z')"
        );
        assert_eq!(
            rewrite_expr("a.b[c.d].e is not defined"),
            "__hl_chain(a, 'b', (c.d), 'e') is not defined"
        );
        assert_eq!(
            rewrite_expr("a.b[c.d | default(0)] is ansible.builtin.undefined"),
            "__hl_chain(a, 'b', (__hl_chain(c, 'd') | default(0))) is ansible.builtin.undefined"
        );
        assert_eq!(rewrite_expr("x.0 | d"), "__hl_chain(x, 0) | d");
    }

    #[test]
    fn other_expressions_are_left_alone() {
        for code in [
            "foo | default(1)",
            "foo.bar",
            "foo.bar | upper",
            "foo.items() | default([])",
            "x is defined",
            "'a.b' | default(1)",
            "foo.bar | ansible.builtin.default_x",
            "foo.bar is defined_x",
        ] {
            assert_eq!(rewrite_expr(code), code, "{code}");
        }
    }

    #[test]
    fn backslashes_in_expression_strings_are_escaped() {
        assert_eq!(
            rewrite_template(r"a\1 {{ 'x\1' ~ y }} {% set z = '\1' %}", true),
            r"a\1 {{ 'x\\1' ~ y }} {% set z = '\1' %}"
        );
        assert_eq!(rewrite_template(r"{{ 'it\'s' }}", true), r"{{ 'it\\\'s' }}");
        assert_eq!(rewrite_template(r"{{ '\1' }}", false), r"{{ '\1' }}");
    }

    #[test]
    fn only_code_regions_outside_raw_and_comments() {
        let src = "a.b | default(1) {{ a.b | default(1) }} {# a.b | default(1) #}\
                   {% raw %}{{ a.b | default(1) }}{% endraw %}{% if a.b is defined %}y{% endif %}";
        assert_eq!(
            rewrite_template(src, false),
            "a.b | default(1) {{ __hl_chain(a, 'b') | default(1) }} {# a.b | default(1) #}\
             {% raw %}{{ a.b | default(1) }}{% endraw %}{% if __hl_chain(a, 'b') is defined %}y{% endif %}"
        );
        assert_eq!(
            rewrite_template("{{ '}}' ~ x.y | d('}}') }}", false),
            "{{ '}}' ~ __hl_chain(x, 'y') | d('}}') }}"
        );
    }
}
