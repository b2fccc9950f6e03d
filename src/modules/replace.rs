//! `replace`: replace every match of a regular expression (multi-line mode, as Python's
//! `re.MULTILINE`) in a file, optionally only between `after` and `before`, with Ansible's rules.

use super::core::{boolish, Module, ModuleError, TaskCtx, TaskResult};
use super::textedit::{self, Common, Missing};
use regex::Regex;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    pub path: String,
    pub regexp: String,
    #[serde(default)]
    pub replace: String,
    pub after: Option<String>,
    pub before: Option<String>,
    #[serde(default, with = "boolish")]
    pub backup: bool,
    pub validate: Option<String>,
    pub encoding: Option<String>,
    #[serde(default, deserialize_with = "super::core::modeish::option")]
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub unsafe_writes: Option<bool>,
}

pub struct Replace;

/// Python's replacement template (`\1`, `\g<name>`) → regex crate's (`${1}`, `${name}`).
pub fn py_template(t: &str) -> String {
    let mut out = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(&d) = chars.peek() {
                        if d.is_ascii_digit() && n.len() < 2 {
                            n.push(d);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

/// The new text and how many replacements were made (Ansible's algorithm).
pub fn replace_text(contents: &str, a: &Args) -> Result<(String, usize), String> {
    let bad = |what: &str, e: regex::Error| format!("{what}: not a valid regular expression: {e}");
    let section_re = match (&a.after, &a.before) {
        (Some(af), Some(bf)) if !af.is_empty() && !bf.is_empty() => {
            Some(format!("(?s){af}(?P<subsection>.*?){bf}"))
        }
        (Some(af), _) if !af.is_empty() => Some(format!("(?s){af}(?P<subsection>.*)")),
        (_, Some(bf)) if !bf.is_empty() => Some(format!("(?s)(?P<subsection>.*){bf}")),
        _ => None,
    };
    let (start, end) = match &section_re {
        Some(p) => {
            let re = Regex::new(p).map_err(|e| bad("after/before", e))?;
            match re.captures(contents).and_then(|c| c.name("subsection")) {
                Some(m) => (m.start(), m.end()),
                None => return Ok((contents.to_string(), 0)),
            }
        }
        None => (0, contents.len()),
    };
    let section = &contents[start..end];
    let re = Regex::new(&format!("(?m){}", a.regexp)).map_err(|e| bad("regexp", e))?;
    let n = re.find_iter(section).count();
    let replaced = re.replace_all(section, py_template(&a.replace).as_str());
    if n == 0 || replaced == section {
        return Ok((contents.to_string(), 0));
    }
    Ok((
        format!("{}{}{}", &contents[..start], replaced, &contents[end..]),
        n,
    ))
}

impl Args {
    fn common(&self) -> Common<'_> {
        Common {
            path: &self.path,
            mode: self.mode.as_deref(),
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            backup: self.backup,
            validate: self.validate.as_deref(),
        }
    }
}

impl Module for Replace {
    const NAME: &'static str = "replace";
    type Args = Args;
    type Plan = textedit::Plan;

    fn hint(a: &Args, _diff: bool) -> Option<Vec<(String, super::remote::Want)>> {
        textedit::hint(&a.path)
    }

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<textedit::Plan, ModuleError> {
        let missing = Missing::Fail(format!("Path {} does not exist !", a.path), 257);
        textedit::plan(ctx, &a.common(), missing, |before| {
            let (after, n) = replace_text(before.unwrap_or(""), a)?;
            Ok((after, format!("{n} replacements made")))
        })
        .await
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &textedit::Plan) -> TaskResult {
        textedit::describe(ctx, &a.common(), p).with("rc", 0)
    }

    fn simulate(ctx: &TaskCtx<'_>, a: &Args, p: &textedit::Plan) {
        textedit::simulate(ctx, &a.common(), p)
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: textedit::Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        textedit::apply(ctx, &a.common(), p, done).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ansible_rules() {
        let a =
            args(serde_json::json!({"path": "x", "regexp": "^(\\w+)=old$", "replace": "\\1=new"}));
        assert_eq!(
            replace_text("a=old\nb=old\nc=x\n", &a).unwrap(),
            ("a=new\nb=new\nc=x\n".into(), 2)
        );
        assert_eq!(replace_text("c=x\n", &a).unwrap().1, 0);
        let a = args(
            serde_json::json!({"path": "x", "regexp": "x", "replace": "y", "after": "\\[s\\]", "before": "\\[t\\]"}),
        );
        assert_eq!(
            replace_text("x\n[s]\nx\n[t]\nx\n", &a).unwrap().0,
            "x\n[s]\ny\n[t]\nx\n"
        );
        let a = args(serde_json::json!({"path": "x", "regexp": "cost", "replace": "$5"}));
        assert_eq!(replace_text("cost\n", &a).unwrap().0, "$5\n");
    }
}
