//! Ansible's `k=v` argument strings (`parsing/splitter.py`): `copy: src=a dest='b c'`,
//! `command: ls -l chdir=/tmp`. Quotes and Jinja2 blocks (`{{ }}`, `{% %}`, `{# #}`) keep
//! their spaces; values stay strings.

/// `split_args`: splits on spaces and newlines, gluing back what a quote or a Jinja2 block
/// holds together. Quotes are kept. Err for an unbalanced quote or block.
pub fn split_args(args: &str) -> Result<Vec<String>, String> {
    if args.is_empty() {
        return Ok(Vec::new());
    }
    let mut params: Vec<String> = Vec::new();
    let items: Vec<&str> = args.split('\n').collect();
    let mut quote_char: Option<char> = None;
    let mut inside_quotes = false;
    let (mut print_depth, mut block_depth, mut comment_depth) = (0i64, 0i64, 0i64);

    for (itemidx, item) in items.iter().enumerate() {
        let tokens: Vec<&str> = item.split(' ').collect();
        let mut line_continuation = false;
        for (idx, token) in tokens.iter().enumerate() {
            if token.is_empty() && idx != 0 {
                if params.is_empty() {
                    params.push(String::new());
                }
                if let Some(last) = params.last_mut() {
                    last.push(' ');
                }
                continue;
            }
            if *token == "\\" && !inside_quotes {
                line_continuation = true;
                continue;
            }
            let was_inside_quotes = inside_quotes;
            quote_char = quote_state(token, quote_char);
            inside_quotes = quote_char.is_some();
            let mut appended = false;
            let in_jinja = print_depth != 0 || block_depth != 0 || comment_depth != 0;
            if inside_quotes && !was_inside_quotes && !in_jinja {
                params.push(token.to_string());
                appended = true;
            } else if in_jinja || inside_quotes || was_inside_quotes {
                if params.is_empty() {
                    params.push(String::new());
                }
                let last = params.last_mut().expect("pushed above");
                if !(idx == 0 && was_inside_quotes) && idx > 0 {
                    last.push(' ');
                }
                last.push_str(token);
                appended = true;
            }
            for (depth, open, close) in [
                (&mut print_depth, "{{", "}}"),
                (&mut block_depth, "{%", "%}"),
                (&mut comment_depth, "{#", "#}"),
            ] {
                let prev = *depth;
                *depth = count_blocks(token, *depth, open, close);
                if *depth != prev && !appended {
                    params.push(token.to_string());
                    appended = true;
                }
            }
            let in_jinja = print_depth != 0 || block_depth != 0 || comment_depth != 0;
            if !in_jinja && !inside_quotes && !appended && !token.is_empty() {
                params.push(token.to_string());
            }
        }
        if items.len() > 1 && itemidx != items.len() - 1 && !line_continuation {
            if params.is_empty() {
                params.push(String::new());
            }
            if let Some(last) = params.last_mut() {
                last.push('\n');
            }
        }
    }
    if print_depth != 0 || block_depth != 0 || comment_depth != 0 || inside_quotes {
        return Err(format!(
            "failed at splitting arguments, either an unbalanced jinja2 block or quotes: {args}"
        ));
    }
    Ok(params)
}

fn quote_state(token: &str, mut quote_char: Option<char>) -> Option<char> {
    let mut prev: Option<char> = None;
    for c in token.chars() {
        if (c == '"' || c == '\'') && prev != Some('\\') {
            match quote_char {
                Some(q) if q == c => quote_char = None,
                Some(_) => {}
                None => quote_char = Some(c),
            }
        }
        prev = Some(c);
    }
    quote_char
}

fn count_blocks(token: &str, depth: i64, open: &str, close: &str) -> i64 {
    let (o, c) = (
        token.matches(open).count() as i64,
        token.matches(close).count() as i64,
    );
    if o != c {
        (depth + o - c).max(0)
    } else {
        depth
    }
}

/// `join_args`: puts split tokens back together, keeping newlines.
pub fn join_args(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        if out.is_empty() || out.ends_with('\n') {
            out.push_str(p);
        } else {
            out.push(' ');
            out.push_str(p);
        }
    }
    out
}

/// `quoting.unquote`: strips one pair of matching outer quotes.
pub fn unquote(s: &str) -> &str {
    let c: Vec<char> = s.chars().collect();
    if c.len() > 1
        && c[0] == c[c.len() - 1]
        && (c[0] == '"' || c[0] == '\'')
        && c[c.len() - 2] != '\\'
    {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// `_decode_escapes`: `\n`, `\t`, `\\`, `\'`, `\"`, `\xNN`, `\uNNNN`, `\UNNNNNNNN` ...
/// (`\N{name}` is left as written).
fn decode_escapes(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] == '\\' && i + 1 < c.len() {
            let hex = |n: usize| -> Option<char> {
                let digits: String = c.get(i + 2..i + 2 + n)?.iter().collect();
                if digits.chars().all(|d| d.is_ascii_hexdigit()) {
                    char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
                } else {
                    None
                }
            };
            let simple = match c[i + 1] {
                '\\' => Some('\\'),
                '\'' => Some('\''),
                '"' => Some('"'),
                'a' => Some('\u{7}'),
                'b' => Some('\u{8}'),
                'f' => Some('\u{c}'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'v' => Some('\u{b}'),
                _ => None,
            };
            if let Some(ch) = simple {
                out.push(ch);
                i += 2;
                continue;
            }
            let (n, width) = match c[i + 1] {
                'x' => (hex(2), 2),
                'u' => (hex(4), 4),
                'U' => (hex(8), 8),
                _ => (None, 0),
            };
            if let Some(ch) = n {
                out.push(ch);
                i += 2 + width;
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// Command options `parse_kv(check_raw=True)` picks out of free-form text.
pub const RAW_OPTIONS: &[&str] = &[
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
];

/// `parse_kv`: `a=1 b='x y'` → [("a","1"), ("b","x y")] in order (a later duplicate replaces
/// the value). Text that is not `k=v` goes to `_raw_params`; with `check_raw` (command, shell,
/// raw) only [`RAW_OPTIONS`] are taken out of the text, the rest stays in `_raw_params`.
pub fn parse_kv(args: &str, check_raw: bool) -> Result<Vec<(String, String)>, String> {
    let mut options: Vec<(String, String)> = Vec::new();
    let mut set = |k: String, v: String| {
        if let Some(slot) = options.iter_mut().find(|(kk, _)| *kk == k) {
            slot.1 = v;
        } else {
            options.push((k, v));
        }
    };
    let mut raw: Vec<String> = Vec::new();
    for orig in split_args(args)? {
        let x = decode_escapes(&orig);
        let chars: Vec<char> = x.chars().collect();
        if chars.contains(&'=') {
            // The first '=' after position 0 that is not escaped.
            let pos = (1..chars.len()).find(|&p| chars[p] == '=' && chars[p - 1] != '\\');
            let Some(pos) = pos else {
                raw.push(x.replace("\\=", "="));
                continue;
            };
            let k: String = chars[..pos].iter().collect();
            let v: String = chars[pos + 1..].iter().collect();
            if check_raw && !RAW_OPTIONS.contains(&k.as_str()) {
                raw.push(orig);
            } else {
                set(k.trim().to_string(), unquote(v.trim()).to_string());
            }
        } else {
            raw.push(orig);
        }
    }
    if !raw.is_empty() {
        set("_raw_params".into(), join_args(&raw));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(s: &str, raw: bool) -> Vec<(String, String)> {
        parse_kv(s, raw).unwrap()
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn split_like_ansible() {
        // Cases from ansible's test_splitter.py.
        let cases: &[(&str, &[&str])] = &[
            ("a", &["a"]),
            ("a=b", &["a=b"]),
            ("a=\"foo bar\"", &["a=\"foo bar\""]),
            (
                "a=\"foo bar\" b='baz qux'",
                &["a=\"foo bar\"", "b='baz qux'"],
            ),
            ("a={{jinja}}", &["a={{jinja}}"]),
            ("a={{ jinja }}", &["a={{ jinja }}"]),
            ("a=\"{{jinja}}\"", &["a=\"{{jinja}}\""]),
            ("a={{ jinja }}{{jinja2}}", &["a={{ jinja }}{{jinja2}}"]),
            (
                "a=\"{{ jinja }}{{jinja2}}\"",
                &["a=\"{{ jinja }}{{jinja2}}\""],
            ),
            ("a=\"{{jinja}}\n\"", &["a=\"{{jinja}}\n\""]),
            ("a=\"{{ jinja }}\"\nb=c", &["a=\"{{ jinja }}\"\n", "b=c"]),
            ("a={% if x %}y{% endif %}", &["a={% if x %}y{% endif %}"]),
            ("a=b \\\nc=d", &["a=b", "c=d"]),
            ("a=\"b c\"  d", &["a=\"b c\" ", "d"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_args(input).unwrap(), *want, "{input:?}");
        }
        assert!(split_args("a=\"b").is_err());
        assert!(split_args("a={{ b").is_err());
    }

    #[test]
    fn parse_kv_like_ansible() {
        assert_eq!(kv("a=b c='d e'", false), p(&[("a", "b"), ("c", "d e")]));
        assert_eq!(kv("a='b=c'", false), p(&[("a", "b=c")]));
        assert_eq!(kv("a=\"x \\\"y\\\"\"", false), p(&[("a", "x \"y\"")]));
        assert_eq!(
            kv("echo hi chdir=/tmp creates=/x a=b", true),
            p(&[
                ("chdir", "/tmp"),
                ("creates", "/x"),
                ("_raw_params", "echo hi a=b")
            ])
        );
        assert_eq!(kv("ls -l", true), p(&[("_raw_params", "ls -l")]));
        assert_eq!(kv("x.yml", false), p(&[("_raw_params", "x.yml")]));
        assert_eq!(kv("a\\=b", false), p(&[("_raw_params", "a=b")]));
        assert_eq!(
            kv("msg={{ a }} b", false),
            p(&[("msg", "{{ a }}"), ("_raw_params", "b")])
        );
        assert_eq!(kv("msg='{{ a }} b'", false), p(&[("msg", "{{ a }} b")]));
        assert_eq!(kv("=a", false), p(&[("_raw_params", "=a")]));
        assert_eq!(unquote("'a'"), "a");
        assert_eq!(unquote("'a\\'"), "'a\\'");
    }
}
