//! `blockinfile`: a block of lines between marker lines, inserted, updated or removed, with
//! Ansible's rules (markers, insertafter/insertbefore, create, prepend/append_newline).

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::textedit::{self, Common, Missing};
use regex::Regex;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    pub path: String,
    #[serde(default)]
    pub state: super::lineinfile::State,
    #[serde(default = "default_marker")]
    pub marker: String,
    #[serde(default, alias = "content", deserialize_with = "stringish::option")]
    pub block: Option<String>,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
    #[serde(default, with = "boolish")]
    pub create: bool,
    #[serde(default, with = "boolish")]
    pub backup: bool,
    pub validate: Option<String>,
    #[serde(default = "begin")]
    pub marker_begin: String,
    #[serde(default = "end")]
    pub marker_end: String,
    #[serde(default, with = "boolish")]
    pub append_newline: bool,
    #[serde(default, with = "boolish")]
    pub prepend_newline: bool,
    #[serde(default, deserialize_with = "super::core::modeish::option")]
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub unsafe_writes: Option<bool>,
}

fn default_marker() -> String {
    "# {mark} ANSIBLE MANAGED BLOCK".into()
}
fn begin() -> String {
    "BEGIN".into()
}
fn end() -> String {
    "END".into()
}

pub struct BlockInFile;

/// Ansible's algorithm: returns (new text, message).
pub fn edit(original: Option<&str>, a: &Args) -> Result<(String, String), String> {
    let present = a.state == super::lineinfile::State::Present;
    let text = original.unwrap_or("");
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let nl = "\n";
    let (mut insertafter, insertbefore) = (a.insertafter.clone(), a.insertbefore.clone());
    if insertafter.is_none() && insertbefore.is_none() {
        insertafter = Some("EOF".into());
    }
    let insert_re = match (&insertafter, &insertbefore) {
        (Some(x), _) if x != "EOF" => Some(x.clone()),
        (None, Some(x)) if x != "BOF" => Some(x.clone()),
        _ => None,
    }
    .map(|r| Regex::new(&r).map_err(|e| format!("'{r}' is not a valid regular expression: {e}")))
    .transpose()?;
    let marker0 = format!("{}{nl}", a.marker.replace("{mark}", &a.marker_begin));
    let marker1 = format!("{}{nl}", a.marker.replace("{mark}", &a.marker_end));
    let block = a.block.clone().unwrap_or_default();
    let blocklines: Vec<String> = if present && !block.is_empty() {
        let mut b = block.clone();
        if !b.ends_with(nl) {
            b.push_str(nl);
        }
        let mut v = vec![marker0.clone()];
        v.extend(b.split_inclusive('\n').map(str::to_string));
        v.push(marker1.clone());
        v
    } else {
        vec![]
    };
    let (mut n0, mut n1) = (None, None);
    for (i, l) in lines.iter().enumerate() {
        if *l == marker0 {
            n0 = Some(i);
        }
        if *l == marker1 {
            n1 = Some(i);
        }
    }
    let mut at = match (n0, n1) {
        (Some(a0), Some(a1)) if a0 < a1 => {
            lines.drain(a0..=a1);
            a0
        }
        (Some(a0), Some(a1)) => {
            lines.drain(a1..=a0);
            a1
        }
        _ => match &insert_re {
            Some(re) => {
                let mut found = None;
                for (i, l) in lines.iter().enumerate() {
                    if re.is_match(l.strip_suffix('\n').unwrap_or(l)) {
                        found = Some(i);
                    }
                }
                match found {
                    None => lines.len(),
                    Some(i) if insertafter.is_some() => i + 1,
                    Some(i) => i,
                }
            }
            None if insertbefore.is_some() => 0,
            None => lines.len(),
        },
    };
    if at > 0 && !lines[at - 1].ends_with(nl) {
        lines[at - 1].push_str(nl);
    }
    if a.prepend_newline && present && at != 0 && lines[at - 1] != nl {
        lines.insert(at, nl.to_string());
        at += 1;
    }
    let count = blocklines.len();
    for (k, l) in blocklines.into_iter().enumerate() {
        lines.insert(at + k, l);
    }
    if a.append_newline && present {
        let after = at + count;
        if after < lines.len() && lines[after] != nl {
            lines.insert(after, nl.to_string());
        }
    }
    let result = lines.concat();
    let msg = if original == Some(result.as_str()) {
        String::new()
    } else if original.is_none() {
        "File created".into()
    } else if count == 0 {
        "Block removed".into()
    } else {
        "Block inserted".into()
    };
    Ok((result, msg))
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

impl Module for BlockInFile {
    const NAME: &'static str = "blockinfile";
    type Args = Args;
    type Plan = textedit::Plan;

    fn hint(a: &Args, _diff: bool) -> Option<Vec<(String, super::remote::Want)>> {
        textedit::hint(&a.path)
    }

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<textedit::Plan, ModuleError> {
        if a.insertafter.is_some() && a.insertbefore.is_some() {
            return Err(ModuleError::Failed(
                "insertafter and insertbefore are mutually exclusive".into(),
            ));
        }
        let missing = match (a.state, a.create) {
            (super::lineinfile::State::Absent, _) => {
                Missing::Nothing(format!("File {} not present", a.path))
            }
            (_, true) => Missing::Create,
            (_, false) => Missing::Fail(format!("Path {} does not exist !", a.path), 257),
        };
        textedit::plan(ctx, &a.common(), missing, |before| edit(before, a)).await
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &textedit::Plan) -> TaskResult {
        textedit::describe(ctx, &a.common(), p)
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
        let a = args(serde_json::json!({"path": "x", "block": "a=1\nb=2"}));
        let (t, m) = edit(Some("top\n"), &a).unwrap();
        assert_eq!(
            t,
            "top\n# BEGIN ANSIBLE MANAGED BLOCK\na=1\nb=2\n# END ANSIBLE MANAGED BLOCK\n"
        );
        assert_eq!(m, "Block inserted");
        // Updating in place; a second run is unchanged.
        let a2 = args(serde_json::json!({"path": "x", "block": "a=9"}));
        let (t2, _) = edit(Some(&format!("{t}tail\n")), &a2).unwrap();
        assert_eq!(
            t2,
            "top\n# BEGIN ANSIBLE MANAGED BLOCK\na=9\n# END ANSIBLE MANAGED BLOCK\ntail\n"
        );
        assert_eq!(edit(Some(&t2), &a2).unwrap().0, t2);
        // Removal.
        let gone = args(serde_json::json!({"path": "x", "state": "absent"}));
        assert_eq!(
            edit(Some(&t2), &gone).unwrap(),
            ("top\ntail\n".into(), "Block removed".into())
        );
        // insertbefore BOF, custom marker.
        let a3 = args(
            serde_json::json!({"path": "x", "block": "z", "insertbefore": "BOF", "marker": "// {mark}"}),
        );
        assert_eq!(
            edit(Some("x\n"), &a3).unwrap().0,
            "// BEGIN\nz\n// END\nx\n"
        );
    }
}
