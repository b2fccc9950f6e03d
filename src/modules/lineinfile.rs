//! `lineinfile`: make sure a line is in a file (or is not), with Ansible's exact rules
//! (regexp/search_string, the last match unless firstmatch, insertafter/insertbefore, backrefs,
//! create). Probe: the file's state and content in one round trip; the new content is computed
//! here and written atomically.

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::textedit::{self, Common, Missing};
use regex::Regex;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    pub path: String,
    #[serde(alias = "regex")]
    pub regexp: Option<String>,
    pub search_string: Option<String>,
    #[serde(default, deserialize_with = "stringish::option", alias = "value")]
    pub line: Option<String>,
    #[serde(default)]
    pub state: State,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
    #[serde(default, with = "boolish")]
    pub create: bool,
    #[serde(default, with = "boolish")]
    pub backrefs: bool,
    #[serde(default, with = "boolish")]
    pub firstmatch: bool,
    #[serde(default, with = "boolish")]
    pub backup: bool,
    #[serde(default, deserialize_with = "super::core::modeish::option")]
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub validate: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub unsafe_writes: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub follow: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

pub struct LineInFile;

/// Splits like Python's readlines(): every line keeps its end.
fn readlines(s: &str) -> Vec<String> {
    s.split_inclusive('\n').map(str::to_string).collect()
}

fn strip_eol(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// Python's `match.expand` template (`\1`, `\g<1>`, `\g<name>`) → the text with groups filled in.
fn expand(caps: &regex::Captures<'_>, template: &str) -> String {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
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
                let i: usize = n.parse().unwrap_or(0);
                out.push_str(caps.get(i).map(|m| m.as_str()).unwrap_or(""));
            }
            Some('g') => {
                chars.next();
                if chars.peek() == Some(&'<') {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                    let v = match name.parse::<usize>() {
                        Ok(i) => caps.get(i),
                        Err(_) => caps.name(&name),
                    };
                    out.push_str(v.map(|m| m.as_str()).unwrap_or(""));
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
        }
    }
    out
}

/// Python's `$` also matches just before a final newline; Rust's does not, so regexes are run on
/// the line without its newline.
fn subject(line: &str) -> &str {
    line.strip_suffix('\n').unwrap_or(line)
}

fn compile(what: &str, re: &str) -> Result<Regex, String> {
    Regex::new(re).map_err(|e| format!("{what} '{re}' is not a valid regular expression: {e}"))
}

/// Ansible's present(): returns (new lines, changed, msg).
pub fn present(lines: &[String], a: &Args) -> Result<(Vec<String>, bool, String), String> {
    let line = a.line.clone().unwrap_or_default();
    let mut b = lines.to_vec();
    let re_m = a
        .regexp
        .as_deref()
        .map(|r| compile("regexp", r))
        .transpose()?;
    let ins = match (&a.insertafter, &a.insertbefore) {
        (Some(x), _) if x != "BOF" && x != "EOF" => Some(compile("insertafter", x)?),
        (None, Some(x)) if x != "BOF" => Some(compile("insertbefore", x)?),
        _ => None,
    };
    let mut index: [i64; 2] = [-1, -1];
    let mut matched: Option<regex::Captures<'_>> = None;
    let mut match_any = false;
    let mut exact = false;
    if let Some(re) = &re_m {
        for (n, cur) in lines.iter().enumerate() {
            if let Some(c) = re.captures(subject(cur)) {
                index[0] = n as i64;
                matched = Some(c);
                match_any = true;
                if a.firstmatch {
                    break;
                }
            }
        }
    }
    if let Some(ss) = &a.search_string {
        for (n, cur) in lines.iter().enumerate() {
            if cur.contains(ss.as_str()) {
                index[0] = n as i64;
                match_any = true;
                if a.firstmatch {
                    break;
                }
            }
        }
    }
    if !match_any {
        for (n, cur) in lines.iter().enumerate() {
            if line == strip_eol(cur) {
                index[0] = n as i64;
                exact = true;
            } else if ins.as_ref().is_some_and(|r| r.is_match(subject(cur))) {
                if a.insertafter.is_some() {
                    index[1] = n as i64 + 1;
                    if a.firstmatch {
                        break;
                    }
                }
                if a.insertbefore.is_some() {
                    index[1] = n as i64;
                    if a.firstmatch {
                        break;
                    }
                }
            }
        }
    }
    let nl = "\n";
    let (mut changed, mut msg) = (false, String::new());
    let added = |b: &mut Vec<String>, at: usize| b.insert(at, format!("{line}{nl}"));
    if index[0] != -1 {
        let i = index[0] as usize;
        let mut new_line = match (&matched, a.backrefs) {
            (Some(c), true) => expand(c, &line),
            _ => line.clone(),
        };
        if !new_line.ends_with(nl) {
            new_line.push_str(nl);
        }
        let no_search = a.regexp.is_none() && a.search_string.is_none() && !match_any;
        if no_search && !exact {
            // (unreachable in practice: index[0] is set only by a match or the exact line)
        } else if b[i] != new_line {
            b[i] = new_line;
            msg = "line replaced".into();
            changed = true;
        }
    } else if a.backrefs {
    } else if a.insertbefore.as_deref() == Some("BOF") || a.insertafter.as_deref() == Some("BOF") {
        added(&mut b, 0);
        msg = "line added".into();
        changed = true;
    } else if a.insertafter.as_deref() == Some("EOF") || index[1] == -1 {
        if let Some(last) = b.last() {
            if !last.ends_with(['\n', '\r']) {
                b.push(nl.into());
            }
        }
        b.push(format!("{line}{nl}"));
        msg = "line added".into();
        changed = true;
    } else if a.insertafter.is_some() && index[1] != -1 {
        let i = index[1] as usize;
        if b.len() == i {
            if strip_eol(&b[i - 1]) != line {
                b.push(format!("{line}{nl}"));
                msg = "line added".into();
                changed = true;
            }
        } else if line != strip_eol(&b[i]) {
            added(&mut b, i);
            msg = "line added".into();
            changed = true;
        }
    } else {
        added(&mut b, index[1].max(0) as usize);
        msg = "line added".into();
        changed = true;
    }
    Ok((b, changed, msg))
}

/// Ansible's absent(): drops every matching line.
pub fn absent(lines: &[String], a: &Args) -> Result<(Vec<String>, bool, String), String> {
    let re = a
        .regexp
        .as_deref()
        .map(|r| compile("regexp", r))
        .transpose()?;
    let line = a.line.clone().unwrap_or_default();
    let mut kept = vec![];
    let mut found = 0;
    for cur in lines {
        let m = match (&re, &a.search_string) {
            (Some(r), _) => r.is_match(subject(cur)),
            (None, Some(s)) => cur.contains(s.as_str()),
            (None, None) => line == strip_eol(cur),
        };
        if m {
            found += 1;
        } else {
            kept.push(cur.clone());
        }
    }
    let msg = if found > 0 {
        format!("{found} line(s) removed")
    } else {
        String::new()
    };
    Ok((kept, found > 0, msg))
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

impl Module for LineInFile {
    const NAME: &'static str = "lineinfile";
    type Args = Args;
    type Plan = textedit::Plan;

    fn hint(a: &Args, _diff: bool) -> Option<Vec<(String, super::remote::Want)>> {
        textedit::hint(&a.path)
    }

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<textedit::Plan, ModuleError> {
        if a.state == State::Present && a.line.is_none() {
            return Err(ModuleError::Failed(
                "line is required with state=present".into(),
            ));
        }
        if a.state == State::Absent
            && a.line.is_none()
            && a.regexp.is_none()
            && a.search_string.is_none()
        {
            return Err(ModuleError::Failed(
                "one of line, regexp or search_string is required with state=absent".into(),
            ));
        }
        if a.backrefs && a.regexp.is_none() {
            return Err(ModuleError::Failed(
                "regexp is required with backrefs=true".into(),
            ));
        }
        if a.regexp.is_some() && a.search_string.is_some() {
            return Err(ModuleError::Failed(
                "regexp and search_string are mutually exclusive".into(),
            ));
        }
        let missing = match (a.state, a.create) {
            (State::Absent, _) => Missing::Nothing("file not present".into()),
            (State::Present, true) => Missing::Create,
            (State::Present, false) => {
                Missing::Fail(format!("Destination {} does not exist !", a.path), 257)
            }
        };
        textedit::plan(ctx, &a.common(), missing, |before| {
            let lines = readlines(before.unwrap_or(""));
            let (new, _, msg) = match a.state {
                State::Present => present(&lines, a),
                State::Absent => absent(&lines, a),
            }?;
            Ok((new.concat(), msg))
        })
        .await
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &textedit::Plan) -> TaskResult {
        textedit::describe(ctx, &a.common(), p).with("backup", "")
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

    fn run(before: &str, v: serde_json::Value) -> (String, bool) {
        let a = args(v);
        let lines = readlines(before);
        let (new, changed, _) = match a.state {
            State::Present => present(&lines, &a).unwrap(),
            State::Absent => absent(&lines, &a).unwrap(),
        };
        (new.concat(), changed)
    }

    #[test]
    fn ansible_rules() {
        // regexp replaces the last match; a second run is unchanged.
        assert_eq!(
            run(
                "a=1\nb=2\na=3\n",
                serde_json::json!({"path": "x", "regexp": "^a=", "line": "a=9"})
            ),
            ("a=1\nb=2\na=9\n".into(), true)
        );
        assert!(
            !run(
                "a=9\n",
                serde_json::json!({"path": "x", "regexp": "^a=", "line": "a=9"})
            )
            .1
        );
        // firstmatch
        assert_eq!(
            run(
                "a=1\na=3\n",
                serde_json::json!({"path": "x", "regexp": "^a=", "line": "a=9", "firstmatch": true})
            )
            .0,
            "a=9\na=3\n"
        );
        // no match: appended, with a newline added to an unterminated last line
        assert_eq!(
            run(
                "x",
                serde_json::json!({"path": "x", "regexp": "^a=", "line": "a=9"})
            )
            .0,
            "x\na=9\n"
        );
        // exact line present: no change even without regexp
        assert!(!run("a\nb\n", serde_json::json!({"path": "x", "line": "a"})).1);
        // insertafter / insertbefore / BOF
        assert_eq!(
            run(
                "[s]\nk=v\n",
                serde_json::json!({"path": "x", "line": "n=1", "insertafter": "^\\[s\\]"})
            )
            .0,
            "[s]\nn=1\nk=v\n"
        );
        assert_eq!(
            run(
                "a\nb\n",
                serde_json::json!({"path": "x", "line": "z", "insertbefore": "^b"})
            )
            .0,
            "a\nz\nb\n"
        );
        assert_eq!(
            run(
                "a\n",
                serde_json::json!({"path": "x", "line": "z", "insertbefore": "BOF"})
            )
            .0,
            "z\na\n"
        );
        // backrefs: no match, no change
        assert!(!run("q\n", serde_json::json!({"path": "x", "regexp": "^(a)=(.*)$", "line": "\\1:\\2", "backrefs": true})).1);
        assert_eq!(run("a=5\n", serde_json::json!({"path": "x", "regexp": "^(a)=(.*)$", "line": "\\1:\\g<2>", "backrefs": true})).0, "a:5\n");
        // absent
        assert_eq!(
            run(
                "a=1\nb\na=2\n",
                serde_json::json!({"path": "x", "regexp": "^a=", "state": "absent"})
            ),
            ("b\n".into(), true)
        );
    }
}

#[cfg(test)]
mod drive_tests {
    use super::LineInFile;
    use crate::modules::command::{Command, Shell};
    use crate::modules::template::Template;
    use crate::modules::testutil::{run, run_with, snapshot};
    use serde_json::json;

    #[tokio::test]
    async fn lineinfile_template_command_check_then_apply() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).display().to_string();
        let args = json!({"path": p("sub/settings.ini"), "regexp": "^max=", "line": "max=5", "create": true, "mode": "0644"});
        let before = snapshot(d.path());
        let planned = run::<LineInFile>(true, args.clone()).await;
        assert!(planned.changed && !planned.failed, "{planned:?}");
        assert_eq!(planned.diff[0].after, "max=5\n");
        assert_eq!(
            planned.diff[0].before_header,
            format!("{} (content)", p("sub/settings.ini"))
        );
        assert_eq!(snapshot(d.path()), before, "check mode changed the host");
        let done = run::<LineInFile>(false, args.clone()).await;
        assert_eq!(done.diff, planned.diff);
        assert_eq!(
            std::fs::read_to_string(p("sub/settings.ini")).unwrap(),
            "max=5\n"
        );
        assert!(!run::<LineInFile>(false, args.clone()).await.changed);
        let r = run::<LineInFile>(false, json!({"path": p("missing"), "line": "x"})).await;
        assert!(r.failed && r.msg.unwrap_or_default().contains("does not exist"));

        // template: rendered through the task's renderer, placed like copy.
        std::fs::write(d.path().join("t.j2"), "name={{ n }}\n").unwrap();
        let render =
            |_: &str, src: &str| -> Result<String, String> { Ok(src.replace("{{ n }}", "node1")) };
        let targs = json!({"src": p("t.j2"), "dest": p("out.conf"), "mode": "0600"});
        let planned = run_with::<Template>(true, targs.clone(), Some(&render)).await;
        assert!(planned.changed, "{planned:?}");
        assert!(!d.path().join("out.conf").exists());
        let done = run_with::<Template>(false, targs.clone(), Some(&render)).await;
        assert_eq!(done.diff, planned.diff);
        assert_eq!(
            std::fs::read_to_string(p("out.conf")).unwrap(),
            "name=node1\n"
        );
        assert!(
            !run_with::<Template>(false, targs, Some(&render))
                .await
                .changed
        );

        // command: check mode says it would run and runs nothing; creates= is decided by the probe.
        let marker = p("ran");
        let cargs = json!({"_raw_params": format!("touch {marker}"), "creates": marker});
        let planned = run::<Command>(true, cargs.clone()).await;
        assert!(
            planned.changed && planned.data.contains_key("check_mode_unknown"),
            "{planned:?}"
        );
        assert!(!d.path().join("ran").exists());
        let done = run::<Command>(false, cargs.clone()).await;
        assert!(done.changed && done.data["rc"] == 0, "{done:?}");
        let again = run::<Command>(true, cargs).await;
        assert!(
            !again.changed,
            "creates= must be seen in check mode: {again:?}"
        );
        let r = run::<Shell>(
            false,
            json!({"_raw_params": "echo out; echo err >&2; exit 3"}),
        )
        .await;
        assert!(r.failed);
        assert_eq!(
            (
                r.data["rc"].clone(),
                r.data["stdout"].clone(),
                r.data["stderr"].clone()
            ),
            (json!(3), json!("out"), json!("err"))
        );
        assert_eq!(r.data["stdout_lines"], json!(["out"]));
    }
}
