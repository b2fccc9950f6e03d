//! Which keys plays, blocks, tasks and role entries take, and the keywords they share
//! ([`Inherited`]).

use super::ast::Inherited;
use super::error::ErrorKind;
use super::node::{self, bad, err, is_template, type_name, Node, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// Keywords of Ansible's `Base` (plays, blocks, tasks and role entries all take them).
pub(crate) const BASE: &[&str] = &[
    "name",
    "vars",
    "environment",
    "no_log",
    "ignore_errors",
    "ignore_unreachable",
    "check_mode",
    "diff",
    "any_errors_fatal",
    "run_once",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "become_exe",
    "remote_user",
    "connection",
    "port",
    "collections",
    "module_defaults",
    "debugger",
    "throttle",
    "timeout",
    "tags",
];

pub(crate) const PLAY: &[&str] = &[
    "hosts",
    "vars_files",
    "vars_prompt",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "fact_path",
    "serial",
    "max_fail_percentage",
    "strategy",
    "pre_tasks",
    "roles",
    "tasks",
    "post_tasks",
    "handlers",
    "force_handlers",
    "order",
];

pub(crate) const TASK: &[&str] = &[
    "when",
    "action",
    "local_action",
    "args",
    "loop",
    "loop_control",
    "register",
    "notify",
    "changed_when",
    "failed_when",
    "until",
    "retries",
    "delay",
    "delegate_to",
    "delegate_facts",
    "async",
    "poll",
];

pub(crate) const BLOCK: &[&str] = &[
    "block",
    "rescue",
    "always",
    "when",
    "notify",
    "delegate_to",
    "delegate_facts",
];

/// Keywords a role entry (`roles:`, `dependencies:`) takes; every other key is a role param.
pub(crate) const ROLE_ENTRY: &[&str] = &["when", "delegate_to", "delegate_facts"];

/// The only keywords `include_tasks` / `include_role` take (Ansible's
/// `TaskInclude.VALID_INCLUDE_KEYWORDS`): the rest would not reach the included tasks.
pub(crate) const INCLUDE: &[&str] = &[
    "action",
    "args",
    "collections",
    "debugger",
    "ignore_errors",
    "loop",
    "loop_control",
    "name",
    "no_log",
    "register",
    "run_once",
    "tags",
    "timeout",
    "vars",
    "when",
];

/// `with_<lookup>` loops homelab accepts.
pub(crate) const LOOPS: &[&str] = &[
    "with_items",
    "with_list",
    "with_dict",
    "with_indexed_items",
    "with_together",
    "with_sequence",
    "with_fileglob",
    "with_nested",
    "with_cartesian",
    "with_subelements",
    "with_flattened",
    "with_file",
    "with_first_found",
    "with_lines",
    "with_random_choice",
    "with_inventory_hostnames",
    "with_env",
    "with_pipe",
    "with_template",
    "with_vars",
];

/// Keywords Ansible has that homelab does not do yet: refused with this advice.
pub(crate) fn unsupported(key: &str) -> Option<&'static str> {
    Some(match key {
        "vars_prompt" => "vars_prompt is not supported: pass the values with -e name=value",
        "module_defaults" => {
            "module_defaults is not supported yet: write the arguments on each task"
        }
        "debugger" => "the task debugger is not supported: remove 'debugger'",
        "throttle" => "throttle is not supported yet: remove it (or lower --forks)",
        "timeout" => "the task timeout keyword is not supported yet: remove 'timeout'",
        "async" | "poll" => {
            "async tasks (async/poll) are not supported yet: remove 'async' and 'poll' to run the task in the foreground"
        }
        "become_exe" => "become_exe is not supported: homelab runs sudo or su from the PATH",
        "fact_path" => "fact_path (local facts) is not supported yet: remove it",
        _ => return None,
    })
}

/// Keywords accepted and ignored: `collections` (modules are found by name anyway),
/// `gather_timeout`.
pub(crate) fn ignored(key: &str) -> bool {
    matches!(key, "collections" | "gather_timeout")
}

/// [`Inherited`] being filled, plus `connection:`/`port:`, which become the variables
/// `ansible_connection`/`ansible_port` once all keys are read.
#[derive(Default)]
pub(crate) struct Kw {
    pub inherited: Inherited,
    conn: Map<String, Value>,
}

impl Kw {
    pub(crate) fn finish(mut self) -> Inherited {
        for (k, v) in self.conn {
            self.inherited.vars.insert(k, v);
        }
        self.inherited
    }

    /// Reads `key` if it is one of the shared keywords (`Ok(false)` if not). `delegate_to`
    /// only when `delegation` (blocks, tasks, role entries; not plays).
    pub(crate) fn read(
        &mut self,
        file: &Path,
        key: &str,
        k: &Node,
        v: &Node,
        delegation: bool,
    ) -> Result<bool> {
        let kw = &mut self.inherited;
        match key {
            "become" => kw.become_ = bool_or_template(file, key, v)?,
            "become_user" => kw.become_user = node::opt_string(file, key, v)?,
            "become_method" => kw.become_method = node::opt_string(file, key, v)?,
            "become_flags" => kw.become_flags = node::opt_string(file, key, v)?,
            "remote_user" => kw.remote_user = node::opt_string(file, key, v)?,
            "when" => kw.when = node::conditions(file, key, v)?,
            "tags" => kw.tags = node::tags(file, v)?,
            "environment" => kw.environment = environment(file, v)?,
            "vars" => kw.vars.extend(node::vars(file, key, v)?),
            "no_log" => kw.no_log = bool_or_template(file, key, v)?,
            "ignore_errors" => kw.ignore_errors = bool_or_template(file, key, v)?,
            "ignore_unreachable" => kw.ignore_unreachable = node::opt_bool(file, key, v)?,
            "any_errors_fatal" => kw.any_errors_fatal = node::opt_bool(file, key, v)?,
            "run_once" => kw.run_once = node::opt_bool(file, key, v)?,
            "check_mode" | "diff" => {
                let value = bool_or_template(file, key, v)?;
                if key == "diff" {
                    kw.diff = value;
                } else {
                    kw.check_mode = value;
                }
            }
            "delegate_to" if delegation => kw.delegate_to = node::opt_string(file, key, v)?,
            "connection" => {
                if let Some(c) = node::opt_string(file, key, v)? {
                    if !is_template(&c) && !matches!(c.as_str(), "ssh" | "smart") {
                        return Err(err(
                            ErrorKind::Unsupported,
                            file,
                            v,
                            format!("connection '{c}' is not supported: homelab runs every task over SSH (to run on this machine, put it in the inventory with ansible_host=127.0.0.1)"),
                        ));
                    }
                    self.conn
                        .insert("ansible_connection".into(), Value::String(c));
                }
            }
            "port" => {
                if let Some(p) = node::number_or_template(file, key, v)? {
                    self.conn.insert("ansible_port".into(), p);
                }
            }
            _ if ignored(key) => {}
            _ => {
                if let Some(why) = unsupported(key) {
                    return Err(err(ErrorKind::Unsupported, file, k, why));
                }
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// `environment:`: a mapping, a template giving one, or a list of those.
fn environment(file: &Path, v: &Node) -> Result<Option<Value>> {
    let ok = |n: &Node| n.as_map().is_some() || n.as_str().is_some_and(is_template);
    if v.is_null() {
        return Ok(None);
    }
    let fine = match v.as_seq() {
        Some(items) => items.iter().all(ok),
        None => ok(v),
    };
    if !fine {
        return Err(bad(
            file,
            v,
            format!(
                "'environment' must be a mapping of variable names to values (or a template giving one), not {}",
                type_name(v)
            ),
        ));
    }
    Ok(Some(v.to_json()))
}

/// `become`, `no_log`, `ignore_errors`, `check_mode`, `diff`: true/false, or a template.
fn bool_or_template(file: &Path, key: &str, v: &Node) -> Result<Option<Value>> {
    if let Some(s) = v.as_str() {
        if is_template(s) {
            return Ok(Some(v.to_json()));
        }
    }
    Ok(node::opt_bool(file, key, v)?.map(Value::Bool))
}

/// Parent keywords applied to a child the way Ansible inherits them: conditions and tags
/// add up (parent first), vars merge (child wins), the rest is the child's if set.
pub(crate) fn inherit(parent: &Inherited, child: &Inherited) -> Inherited {
    let mut out = child.clone();
    out.when = parent.when.iter().chain(&child.when).cloned().collect();
    out.tags = parent.tags.clone();
    for t in &child.tags {
        if !out.tags.contains(t) {
            out.tags.push(t.clone());
        }
    }
    let mut vars = parent.vars.clone();
    vars.extend(child.vars.clone());
    out.vars = vars;
    macro_rules! fallback {
        ($($f:ident),*) => {$(
            if out.$f.is_none() {
                out.$f = parent.$f.clone();
            }
        )*};
    }
    fallback!(
        become_,
        become_user,
        become_method,
        become_flags,
        remote_user,
        no_log,
        ignore_errors,
        ignore_unreachable,
        check_mode,
        diff,
        any_errors_fatal,
        delegate_to,
        run_once
    );
    out.environment = match (&parent.environment, &child.environment) {
        (Some(p), Some(c)) => Some(Value::Array(vec![p.clone(), c.clone()])),
        (p, c) => c.clone().or_else(|| p.clone()),
    };
    out
}
