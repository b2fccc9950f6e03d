//! INI inventories, following Ansible's `plugins/inventory/ini.py` line by line.
//!
//! ```ini
//! w[01:04] ansible_user=pi      # ungrouped hosts first
//! [web]
//! web1:2222 http_port=80 tls=True
//! [web:vars]
//! ntp="pool.ntp.org"
//! [lab:children]
//! web
//! ```
//!
//! Values (on host lines and in `:vars` sections alike) go through Python's
//! `ast.literal_eval`: `True` is a bool, `true` stays a string.

use super::address::expand_hostpattern;
use super::data::{Data, DataError};
use super::pyliteral::parse_value;
use regex::Regex;
use std::path::Path;
use std::sync::OnceLock;

/// A problem on one line of an INI file (the caller adds the path).
#[derive(Debug, Clone)]
pub(crate) struct IniError {
    pub line: usize,
    pub text: String,
    pub message: String,
    /// Set when the problem is a group loop (the caller makes it a `GroupCycle`).
    pub cycle: Option<(String, String)>,
    /// The line looks like YAML (`all:`, `---`): a hint for choosing which error to show.
    pub looks_like_yaml: bool,
}

fn section_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
            .unwrap_or_else(|e| panic!("section regex: {e}"))
    })
}

fn groupname_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"^([^:\]\s]+)\s*(?:#.*)?$").unwrap_or_else(|e| panic!("groupname regex: {e}"))
    })
}

/// Python's `str.isspace()` (Rust's `char::is_whitespace` plus \x1c..\x1f).
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `str.splitlines()`.
pub(crate) fn py_splitlines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    while i < bytes.len() {
        let (pos, c) = bytes[i];
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            out.push(&s[start..pos]);
            let mut next = pos + c.len_utf8();
            if c == '\r' && i + 1 < bytes.len() && bytes[i + 1].1 == '\n' {
                next += 1;
                i += 1;
            }
            start = next;
        }
        i += 1;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Python's `shlex.split(line, comments=True)` (POSIX mode).
pub(crate) fn shlex_split(line: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = line.chars().collect();
    let ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut tokens = Vec::new();
    let mut i = 0;
    loop {
        // Between tokens.
        while i < chars.len() && ws(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        if chars[i] == '#' {
            break; // a comment runs to the end of the (single) line
        }
        let mut tok = String::new();
        let mut quoted = false;
        let mut ended_by_comment = false;
        while i < chars.len() {
            let c = chars[i];
            if ws(c) {
                break;
            }
            if c == '#' {
                ended_by_comment = true;
                break;
            }
            if c == '\\' {
                i += 1;
                match chars.get(i) {
                    Some(n) => tok.push(*n),
                    None => return Err("No escaped character".into()),
                }
                i += 1;
                continue;
            }
            if c == '\'' {
                quoted = true;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("No closing quotation".into()),
                        Some('\'') => break,
                        Some(x) => tok.push(*x),
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            if c == '"' {
                quoted = true;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("No closing quotation".into()),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                None => return Err("No closing quotation".into()),
                                Some(n) => {
                                    if *n != '"' && *n != '\\' {
                                        tok.push('\\');
                                    }
                                    tok.push(*n);
                                }
                            }
                        }
                        Some(x) => tok.push(*x),
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            tok.push(c);
            i += 1;
        }
        if !tok.is_empty() || quoted {
            tokens.push(tok);
        }
        if ended_by_comment {
            break;
        }
    }
    Ok(tokens)
}

#[derive(Debug)]
struct Pending {
    line: usize,
    state: &'static str,
    parents: Vec<String>,
}

/// Parses INI inventory text into `data`.
pub(crate) fn parse(data: &mut Data, text: &str, _path: &Path) -> Result<(), IniError> {
    let lines = py_splitlines(text);
    let mut pending: indexmap::IndexMap<String, Pending> = indexmap::IndexMap::new();
    let mut groupname = String::from("ungrouped");
    let mut state: &'static str = "hosts";
    let mut lineno: usize;
    let mut current_text: String;

    macro_rules! fail {
        ($msg:expr) => {
            return Err(IniError {
                line: lineno,
                text: current_text.clone(),
                message: $msg,
                cycle: None,
                looks_like_yaml: false,
            })
        };
    }
    let data_err = |e: DataError, lineno: usize, text: &str| -> IniError {
        let cycle = match &e {
            DataError::Cycle { parent, child } => Some((parent.clone(), child.clone())),
            _ => None,
        };
        IniError {
            line: lineno,
            text: text.to_string(),
            message: e.to_string(),
            cycle,
            looks_like_yaml: false,
        }
    };

    for (i, raw) in lines.into_iter().enumerate() {
        lineno = i + 1;
        let line = py_strip(raw);
        current_text = line.to_string();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(c) = section_re().captures(line) {
            let name = c.get(1).map_or("", |m| m.as_str()).to_string();
            let st = c.get(2).map(|m| m.as_str());
            let st: &'static str = match st {
                None | Some("hosts") => "hosts",
                Some("children") => "children",
                Some("vars") => "vars",
                Some(other) => fail!(format!(
                    "section [{name}:{other}] has unknown type '{other}'; use [{name}], [{name}:vars] or [{name}:children]"
                )),
            };
            groupname = name;
            state = st;
            if data.group(&groupname).is_none() {
                if state == "vars" && !pending.contains_key(&groupname) {
                    pending.insert(
                        groupname.clone(),
                        Pending {
                            line: lineno,
                            state: "vars",
                            parents: vec![],
                        },
                    );
                }
                data.add_group(&groupname)
                    .map_err(|e| data_err(e, lineno, line))?;
            }
            if state != "vars" {
                if let Some(p) = pending.get(&groupname) {
                    if p.state == "children" {
                        add_pending_children(data, &groupname, &mut pending)
                            .map_err(|e| data_err(e, lineno, line))?;
                    } else if p.state == "vars" {
                        pending.shift_remove(&groupname);
                    }
                }
            }
            continue;
        } else if line.starts_with('[') && line.ends_with(']') {
            fail!(format!(
                "invalid section '{line}': a section is [name], [name:vars] or [name:children], with no spaces or other characters inside the brackets"
            ));
        }

        match state {
            "hosts" => {
                let tokens = match shlex_split(line) {
                    Ok(t) => t,
                    Err(e) => fail!(format!(
                        "cannot split this host line: {e} (check the quotes and backslashes)"
                    )),
                };
                let Some(first) = tokens.first() else {
                    fail!("expected a host name".to_string());
                };
                let (hostnames, port) = match expand_hostpattern(first) {
                    Ok(x) => x,
                    Err(e) => fail!(e),
                };
                if py_strip(first).ends_with(':') && port.is_none() {
                    return Err(IniError {
                        line: lineno,
                        text: line.to_string(),
                        message: format!(
                            "invalid host pattern '{first}': a trailing ':' is reserved for a port (host:2222); is this file YAML? then name it .yml"
                        ),
                        cycle: None,
                        looks_like_yaml: true,
                    });
                }
                if hostnames.iter().any(|h| py_strip(h) == "---") {
                    return Err(IniError {
                        line: lineno,
                        text: line.to_string(),
                        message: format!("invalid host pattern '{first}': '---' starts a YAML document; name a YAML inventory .yml"),
                        cycle: None,
                        looks_like_yaml: true,
                    });
                }
                let mut vars: Vec<(String, serde_json::Value)> = Vec::new();
                for t in &tokens[1..] {
                    let Some((k, v)) = t.split_once('=') else {
                        fail!(format!("expected key=value after the host name, got '{t}'"));
                    };
                    let value = match parse_value(v) {
                        Ok(v) => v.to_json(),
                        Err(e) => fail!(format!("value of '{k}' is not valid: {e}")),
                    };
                    vars.push((k.to_string(), value));
                }
                for h in &hostnames {
                    data.add_host(h, Some(&groupname), port.as_deref())
                        .map_err(|e| data_err(e, lineno, line))?;
                    for (k, v) in &vars {
                        data.set_variable(h, k, v.clone())
                            .map_err(|e| data_err(e, lineno, line))?;
                    }
                }
            }
            "vars" => {
                let Some((k, v)) = line.split_once('=') else {
                    fail!(format!(
                        "expected key=value in [{groupname}:vars], got '{line}'"
                    ));
                };
                let (k, v) = (py_strip(k), py_strip(v));
                let value = match parse_value(v) {
                    Ok(v) => v.to_json(),
                    Err(e) => fail!(format!("value of '{k}' is not valid: {e}")),
                };
                data.set_variable(&groupname, k, value)
                    .map_err(|e| data_err(e, lineno, line))?;
            }
            _ => {
                let Some(c) = groupname_re().captures(line) else {
                    fail!(format!(
                        "expected a group name in [{groupname}:children], got '{line}'"
                    ));
                };
                let child = c.get(1).map_or("", |m| m.as_str()).to_string();
                if data.group(&child).is_none() {
                    match pending.get_mut(&child) {
                        None => {
                            pending.insert(
                                child,
                                Pending {
                                    line: lineno,
                                    state: "children",
                                    parents: vec![groupname.clone()],
                                },
                            );
                        }
                        Some(p) => p.parents.push(groupname.clone()),
                    }
                } else {
                    data.add_child(&groupname, &child)
                        .map_err(|e| data_err(e, lineno, line))?;
                }
            }
        }
    }

    if let Some((name, p)) = pending.iter().next() {
        let message = if p.state == "vars" {
            format!("section [{name}:vars] is for a group '{name}' that is never defined; add a [{name}] section or fix the name")
        } else {
            let parent = p.parents.last().cloned().unwrap_or_default();
            format!(
                "section [{parent}:children] names a group '{name}' that is never defined; add a [{name}] section (it may be empty) or fix the name"
            )
        };
        return Err(IniError {
            line: p.line,
            text: String::new(),
            message,
            cycle: None,
            looks_like_yaml: false,
        });
    }
    Ok(())
}

fn add_pending_children(
    data: &mut Data,
    group: &str,
    pending: &mut indexmap::IndexMap<String, Pending>,
) -> Result<(), DataError> {
    let parents = match pending.get(group) {
        Some(p) => p.parents.clone(),
        None => return Ok(()),
    };
    for parent in parents {
        data.add_child(&parent, group)?;
        if pending.get(&parent).is_some_and(|p| p.state == "children") {
            add_pending_children(data, &parent, pending)?;
        }
    }
    pending.shift_remove(group);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Result<Data, IniError> {
        let mut d = Data::new();
        parse(&mut d, text, Path::new("t.ini"))?;
        d.reconcile();
        Ok(d)
    }

    #[test]
    fn shlex_matches_python() {
        let t = shlex_split(
            r#"h1 b="two words" c='it''s' d=a\ b e="x\"y" g=\x i='a\b' j="a\b" k="a\\b" l=v#c m=1"#,
        );
        assert_eq!(
            t.ok(),
            Some(
                vec![
                    "h1",
                    "b=two words",
                    "c=its",
                    "d=a b",
                    "e=x\"y",
                    "g=x",
                    "i=a\\b",
                    "j=a\\b",
                    "k=a\\b",
                    "l=v"
                ]
                .into_iter()
                .map(String::from)
                .collect()
            )
        );
        assert_eq!(
            shlex_split("a ''").ok(),
            Some(vec!["a".to_string(), String::new()])
        );
        assert!(shlex_split("a 'b").is_err());
        assert!(shlex_split("a b\\").is_err());
    }

    #[test]
    fn host_and_group_vars_are_typed_like_ansible() {
        let d = load("h1 x=True y=true z=1 l='[\"a\"]' q=\"'quoted'\" o=0644\n[g]\nh1\n[g:vars]\na=True\nb = spaced value \nc=\"str\"\n").ok();
        let d = d.unwrap_or_else(Data::new);
        let h = d.host("h1").unwrap_or(0);
        let v = &d.hosts[h].vars;
        assert_eq!(v["x"], json!(true));
        assert_eq!(v["y"], json!("true"));
        assert_eq!(v["z"], json!(1));
        assert_eq!(v["l"], json!(["a"]));
        assert_eq!(v["q"], json!("quoted"));
        assert_eq!(v["o"], json!("0644"));
        let g = d.group("g").unwrap_or(0);
        assert_eq!(d.groups[g].vars["a"], json!(true));
        assert_eq!(d.groups[g].vars["b"], json!("spaced value"));
        assert_eq!(d.groups[g].vars["c"], json!("str"));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("[web]\nw[1:]\n", 2),
            ("[web]\nh1\n[web:badsuffix]\n", 3),
            ("[web name]\n", 1),
            ("h1 novalue\n", 1),
            ("[a:children]\nb\n", 2),
            ("[a:vars]\nx=1\n", 1),
            ("[g:vars]\nnot a pair\n", 2),
            ("all:\n  hosts:\n", 1),
            ("[a]\n[b]\n[a:children]\nb\n[b:children]\na\n", 6),
            ("h1 x='unclosed\n", 1),
        ];
        for (text, line) in cases {
            match load(text) {
                Ok(_) => panic!("{text:?} should fail"),
                Err(e) => assert_eq!(e.line, line, "{text:?}: {}", e.message),
            }
        }
    }

    #[test]
    fn children_may_come_before_their_group() {
        let d = load("[top:children]\nmid\n[mid:children]\nleaf\n[leaf]\nh1\n")
            .unwrap_or_else(|e| panic!("{}", e.message));
        let top = d.group("top").unwrap_or(0);
        let hosts: Vec<_> = d
            .group_hosts(top)
            .iter()
            .map(|h| d.hosts[*h].name.clone())
            .collect();
        assert_eq!(hosts, ["h1"]);
    }
}
