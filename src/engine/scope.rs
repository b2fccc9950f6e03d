//! Keywords inherited from play → role → block → task: the innermost setting wins, `when`
//! conditions and tags add up, vars merge outer to inner.

use crate::playbook::ast::Inherited;
use serde_json::{Map, Value};

/// The chain of keyword levels above (and including) a task, outermost first.
#[derive(Clone, Default)]
pub struct Chain<'a> {
    pub levels: Vec<&'a Inherited>,
}

impl<'a> Chain<'a> {
    pub fn push(&self, k: &'a Inherited) -> Chain<'a> {
        let mut c = self.clone();
        c.levels.push(k);
        c
    }

    fn inner<T: Clone>(&self, f: impl Fn(&Inherited) -> Option<T>) -> Option<T> {
        self.levels.iter().rev().find_map(|k| f(k))
    }

    pub fn become_(&self) -> Option<Value> {
        self.inner(|k| k.become_.clone())
    }
    pub fn become_user(&self) -> Option<String> {
        self.inner(|k| k.become_user.clone())
    }
    pub fn become_method(&self) -> Option<String> {
        self.inner(|k| k.become_method.clone())
    }
    pub fn become_flags(&self) -> Option<String> {
        self.inner(|k| k.become_flags.clone())
    }
    pub fn remote_user(&self) -> Option<String> {
        self.inner(|k| k.remote_user.clone())
    }
    /// `no_log` where no host's variables are at hand: a template counts as true (hide rather
    /// than leak); see [`Self::no_log_value`] for the per-host setting.
    pub fn no_log(&self) -> bool {
        match self.inner(|k| k.no_log.clone()) {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(_) => true,
        }
    }
    pub fn no_log_value(&self) -> Option<Value> {
        self.inner(|k| k.no_log.clone())
    }
    pub fn ignore_errors(&self) -> Option<Value> {
        self.inner(|k| k.ignore_errors.clone())
    }
    pub fn ignore_unreachable(&self) -> bool {
        self.inner(|k| k.ignore_unreachable).unwrap_or(false)
    }
    pub fn check_mode(&self) -> Option<Value> {
        self.inner(|k| k.check_mode.clone())
    }
    pub fn diff(&self) -> Option<Value> {
        self.inner(|k| k.diff.clone())
    }
    pub fn any_errors_fatal(&self) -> bool {
        self.inner(|k| k.any_errors_fatal).unwrap_or(false)
    }
    pub fn delegate_to(&self) -> Option<String> {
        self.inner(|k| k.delegate_to.clone())
    }
    pub fn run_once(&self) -> bool {
        self.inner(|k| k.run_once).unwrap_or(false)
    }
    /// Every `when` of every level, outermost first.
    pub fn when(&self) -> Vec<&'a str> {
        self.levels
            .iter()
            .flat_map(|k| k.when.iter().map(|s| s.as_str()))
            .collect()
    }
    pub fn tags(&self) -> Vec<&'a str> {
        let mut t: Vec<&str> = vec![];
        for k in &self.levels {
            for tag in &k.tags {
                if !t.contains(&tag.as_str()) {
                    t.push(tag);
                }
            }
        }
        t
    }
    /// Block and task vars, outer to inner (the play's own vars are the first level and are
    /// merged separately, below vars_files and role vars).
    pub fn vars_from(&self, skip: usize) -> Map<String, Value> {
        let mut m = Map::new();
        for k in self.levels.iter().skip(skip) {
            for (key, v) in &k.vars {
                m.insert(key.clone(), v.clone());
            }
        }
        m
    }
    /// `environment:` settings merged outer to inner (each a mapping, or a template giving one).
    pub fn environment(&self) -> Vec<&'a Value> {
        self.levels
            .iter()
            .filter_map(|k| k.environment.as_ref())
            .collect()
    }
}

/// Whether a task with `task_tags` runs under `--tags`/`--skip-tags` (Ansible's rules, with the
/// special tags `always`, `never`, `tagged`, `untagged`, `all`).
pub fn tags_allow(task_tags: &[&str], only: &[String], skip: &[String]) -> bool {
    let has = |t: &str| task_tags.contains(&t);
    let matches = |list: &[String]| {
        list.iter().any(|t| match t.as_str() {
            "all" => !has("never"),
            "tagged" => !task_tags.is_empty(),
            "untagged" => task_tags.is_empty(),
            other => has(other),
        })
    };
    if !skip.is_empty() && matches(skip) {
        return false;
    }
    if has("always") && !skip.iter().any(|s| s == "always") {
        return true;
    }
    if only.is_empty() {
        return !has("never");
    }
    matches(only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tag_rules() {
        assert!(tags_allow(&[], &[], &[]));
        assert!(!tags_allow(&["never"], &[], &[]));
        assert!(tags_allow(&["never", "debug"], &s(&["debug"]), &[]));
        assert!(tags_allow(&["always"], &s(&["x"]), &[]));
        assert!(!tags_allow(&["always"], &[], &s(&["always"])));
        assert!(tags_allow(&["a"], &s(&["a", "b"]), &[]));
        assert!(!tags_allow(&["a"], &s(&["b"]), &[]));
        assert!(!tags_allow(&["a"], &[], &s(&["a"])));
        assert!(tags_allow(&[], &s(&["untagged"]), &[]));
        assert!(!tags_allow(&["a"], &s(&["untagged"]), &[]));
        assert!(tags_allow(&["a"], &s(&["tagged"]), &[]));
    }

    #[test]
    fn innermost_wins_and_when_adds_up() {
        let play = Inherited {
            become_: Some(Value::Bool(true)),
            when: vec!["a".into()],
            ..Default::default()
        };
        let task = Inherited {
            become_: Some(Value::Bool(false)),
            when: vec!["b".into()],
            ..Default::default()
        };
        let c = Chain::default().push(&play).push(&task);
        assert_eq!(c.become_(), Some(Value::Bool(false)));
        assert_eq!(c.when(), ["a", "b"]);
    }
}
