//! Whether a playbook can read facts at all. A play that leaves `gather_facts` unset gathers only
//! when something in the run may read a fact: gathering costs a round trip and several processes
//! per host, and facts nobody reads change nothing (pyinfra gathers on demand for this reason).
//!
//! The check is static and errs towards gathering: every template string, bare expression
//! (`when:`, `that:`, `var:`), variable value (play, role, inventory, extra vars, vars_files) and
//! template file of the run is read for the names it uses. Facts are gathered when any of them
//! names a fact (an `ansible_*` name that is not a connection or magic variable), `ansible_facts`,
//! `hostvars`, `vars`, a lookup, or a template include; or when the run holds something whose
//! text is only known at run time (`include_tasks`, `include_role`, `include_vars`, a templated
//! `src:` of the template module, a templated `vars_files` name).

use crate::playbook::ast::{Block, Inherited, Play, Playbook, Role, Task, TaskItem};
use crate::template::{expr_names, template_names};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Names that give access to facts, or to variables chosen at run time.
const READS_ANY: &[&str] = &[
    "ansible_facts",
    "hostvars",
    "vars",
    "lookup",
    "query",
    "q",
    "include",
    "import",
    "extends",
];

/// `ansible_*` names that are connection settings or magic variables, not facts.
const NOT_FACTS: &[&str] = &[
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_connection",
    "ansible_password",
    "ansible_private_key_file",
    "ansible_python_interpreter",
    "ansible_shell_type",
    "ansible_shell_executable",
    "ansible_timeout",
    "ansible_host_key_checking",
    "ansible_check_mode",
    "ansible_diff_mode",
    "ansible_loop",
    "ansible_loop_var",
    "ansible_index_var",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_limit",
    "ansible_verbosity",
    "ansible_forks",
    "ansible_version",
    "ansible_failed_task",
    "ansible_failed_result",
    "ansible_role_names",
    "ansible_parent_role_names",
    "ansible_parent_role_paths",
    "ansible_search_path",
];

/// Prefixes of non-fact `ansible_*` names.
const NOT_FACT_PREFIXES: &[&str] = &[
    "ansible_ssh_",
    "ansible_become",
    "ansible_sudo",
    "ansible_play_",
];

/// Whether `name` may read a fact.
pub fn reads_facts(name: &str) -> bool {
    if READS_ANY.contains(&name) {
        return true;
    }
    name.starts_with("ansible_")
        && !NOT_FACTS.contains(&name)
        && !NOT_FACT_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Why the run may read facts (`None`: nothing in it can). `inventory` holds every host's
/// inventory variables; `search` finds a template module's `src:` as the module would.
pub fn why(
    pb: &Playbook,
    inventory: &[Map<String, Value>],
    extra_vars: &Map<String, Value>,
    search: &dyn Fn(&Task, &Play) -> Vec<PathBuf>,
) -> Option<String> {
    let mut s = Scan { search, why: None };
    for m in inventory {
        s.map(m, "the inventory's variables");
    }
    s.map(extra_vars, "the extra variables (-e)");
    for play in &pb.plays {
        s.play(play);
    }
    s.why
}

struct Scan<'a> {
    search: &'a dyn Fn(&Task, &Play) -> Vec<PathBuf>,
    why: Option<String>,
}

impl Scan<'_> {
    fn found(&mut self, why: String) {
        self.why.get_or_insert(why);
    }

    fn names(&mut self, names: Vec<String>, at: &str) {
        if let Some(n) = names.into_iter().find(|n| reads_facts(n)) {
            self.found(format!("{at} reads {n}"));
        }
    }

    fn text(&mut self, s: &str, at: &str) {
        if self.why.is_some() || !s.contains('{') {
            return;
        }
        match template_names(s) {
            Some(n) => self.names(n, at),
            None => self.found(format!("{at} holds a template that cannot be read")),
        }
    }

    fn expr(&mut self, s: &str, at: &str) {
        if self.why.is_none() {
            self.names(expr_names(s), at);
            self.text(s, at);
        }
    }

    fn value(&mut self, v: &Value, at: &str) {
        match v {
            Value::String(s) => self.text(s, at),
            Value::Array(a) => a.iter().for_each(|v| self.value(v, at)),
            Value::Object(m) => self.map(m, at),
            _ => {}
        }
    }

    fn map(&mut self, m: &Map<String, Value>, at: &str) {
        for v in m.values() {
            self.value(v, at);
        }
    }

    fn exprs(&mut self, v: &Value, at: &str) {
        match v {
            Value::String(s) => self.expr(s, at),
            Value::Array(a) => a.iter().for_each(|v| self.exprs(v, at)),
            other => self.value(other, at),
        }
    }

    fn keywords(&mut self, k: &Inherited, at: &str) {
        for v in [
            &k.become_,
            &k.environment,
            &k.no_log,
            &k.ignore_errors,
            &k.check_mode,
            &k.diff,
        ]
        .into_iter()
        .flatten()
        {
            self.value(v, at);
        }
        for s in [
            &k.become_user,
            &k.become_method,
            &k.become_flags,
            &k.remote_user,
            &k.delegate_to,
        ]
        .into_iter()
        .flatten()
        {
            self.text(s, at);
        }
        for w in &k.when {
            self.expr(w, at);
        }
        self.map(&k.vars, at);
    }

    fn play(&mut self, p: &Play) {
        let at = p.origin.to_string();
        self.text(&p.hosts, &at);
        if let Some(n) = &p.name {
            self.text(n, &at);
        }
        self.keywords(&p.keywords, &at);
        for f in &p.vars_files {
            for name in f.as_array().cloned().unwrap_or_else(|| vec![f.clone()]) {
                let Some(name) = name.as_str().map(str::to_string) else {
                    continue;
                };
                if name.contains('{') {
                    self.text(&name, &at);
                    self.found(format!("{at}: vars_files {name} is chosen at run time"));
                    continue;
                }
                if let Ok(m) = crate::inventory::load_vars_file(&p.dir.join(&name)) {
                    self.map(&m, &format!("vars_files {name}"));
                }
            }
        }
        for r in &p.roles {
            self.role(r, p);
        }
        for items in [&p.pre_tasks, &p.tasks, &p.post_tasks] {
            self.items(items, p);
        }
        for h in &p.handlers {
            self.task(h, p);
        }
    }

    fn role(&mut self, r: &Role, p: &Play) {
        let at = format!("role {}", r.name);
        self.map(&r.params, &at);
        self.map(&r.defaults, &format!("{at} (defaults)"));
        self.map(&r.vars, &format!("{at} (vars)"));
        self.keywords(&r.keywords, &at);
        self.items(&r.tasks, p);
        for h in &r.handlers {
            self.task(h, p);
        }
    }

    fn items(&mut self, items: &[TaskItem], p: &Play) {
        for i in items {
            match i {
                TaskItem::Task(t) => self.task(t, p),
                TaskItem::Block(b) => self.block(b, p),
            }
        }
    }

    fn block(&mut self, b: &Block, p: &Play) {
        let at = b.origin.to_string();
        if let Some(n) = &b.name {
            self.text(n, &at);
        }
        self.keywords(&b.keywords, &at);
        if let Some(r) = &b.role {
            self.role(r, p);
        }
        for items in [&b.block, &b.rescue, &b.always] {
            self.items(items, p);
        }
    }

    fn task(&mut self, t: &Task, p: &Play) {
        if self.why.is_some() {
            return;
        }
        let at = t.origin.to_string();
        match t.action.as_str() {
            "include_tasks" | "include_role" | "include_vars" => {
                return self.found(format!("{at}: {} is read at run time", t.action));
            }
            "template" => self.template_src(t, p, &at),
            _ => {}
        }
        if let Some(n) = &t.name {
            self.text(n, &at);
        }
        for (k, v) in &t.args {
            match (t.action.as_str(), k.as_str()) {
                ("assert", "that") | ("debug", "var") => self.exprs(v, &at),
                _ => self.value(v, &at),
            }
        }
        if let Some((kind, v)) = &t.loop_ {
            if kind.starts_with("with_") {
                self.exprs(v, &at);
            } else {
                self.value(v, &at);
            }
        }
        for conds in [&t.changed_when, &t.failed_when, &t.until]
            .into_iter()
            .flatten()
        {
            for c in conds {
                self.expr(c, &at);
            }
        }
        for v in [&t.retries, &t.delay].into_iter().flatten() {
            self.value(v, &at);
        }
        if let Some(l) = &t.loop_control.label {
            self.text(l, &at);
        }
        self.keywords(&t.keywords, &at);
        if let Some(a) = &t.apply {
            self.keywords(a, &at);
        }
    }

    /// The template file a `template` task renders, read as the module would find it.
    fn template_src(&mut self, t: &Task, p: &Play, at: &str) {
        let Some(src) = t.args.get("src").and_then(Value::as_str) else {
            return self.found(format!("{at}: the template's src is not a plain name"));
        };
        if src.contains('{') {
            return self.found(format!("{at}: the template's src is chosen at run time"));
        }
        let found = crate::modules::core::find_src(&(self.search)(t, p), "templates", src);
        match found
            .ok()
            .and_then(|f| std::fs::read_to_string(&f).ok().map(|s| (f, s)))
        {
            Some((f, text)) => {
                let at = f.display().to_string();
                self.text(&text, &at);
            }
            None => self.found(format!("{at}: the template {src} could not be read")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(t: &Task, p: &Play) -> Vec<PathBuf> {
        let mut s: Vec<PathBuf> = t.role.iter().map(|r| r.path.clone()).collect();
        s.push(p.dir.clone());
        s
    }

    /// Why the playbook `site.yml` (with the other files given) reads facts.
    fn why_of(files: &[(&str, &str)], inv: &[(&str, &str)]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let pb = crate::playbook::load_playbook(&dir.path().join("site.yml")).unwrap();
        let mut m = Map::new();
        for (k, v) in inv {
            m.insert(k.to_string(), Value::String(v.to_string()));
        }
        why(&pb, &[m], &Map::new(), &search)
    }

    const PLAIN: &str = "- hosts: all\n  vars: {d: /tmp}\n  tasks:\n    - name: dir {{ d }}\n      file: {path: \"{{ d }}/x\", state: directory}\n      when: d is defined\n    - command: uname -a\n      changed_when: false\n    - template: {src: a.j2, dest: /tmp/a}\n      vars: {v: 1}\n";

    #[test]
    fn a_run_that_names_no_fact_needs_none() {
        let files = [
            ("site.yml", PLAIN),
            ("templates/a.j2", "v={{ v }} {{ inventory_hostname }}\n"),
        ];
        assert_eq!(why_of(&files, &[("ansible_host", "10.0.0.1")]), None);
    }

    #[test]
    fn facts_are_wanted_wherever_they_may_be_read() {
        let t = |j2: &str| why_of(&[("site.yml", PLAIN), ("templates/a.j2", j2)], &[]);
        // In a template file, by name, through hostvars, ansible_facts, vars, a lookup, an include.
        assert!(t("{{ ansible_default_ipv4.address }}")
            .unwrap()
            .contains("reads ansible_default_ipv4"));
        for j2 in [
            "{{ hostvars[x].y }}",
            "{{ ansible_facts.os_family }}",
            "{{ vars['a'] }}",
            "{{ lookup('env', 'HOME') }}",
            "{% include 'b.j2' %}",
            "{% if x %}{{ ansible_lo }}{% endif %}",
        ] {
            assert!(t(j2).is_some(), "{j2}");
        }
        // A template that cannot be read, or cannot be found.
        assert!(t("{{ open").unwrap().contains("cannot be read"));
        assert!(why_of(&[("site.yml", PLAIN)], &[])
            .unwrap()
            .contains("could not be read"));
        // In a when:, a task name, module args, the inventory's variables.
        let with = |task: &str| {
            let pb = format!("- hosts: all\n  tasks:\n{task}");
            why_of(&[("site.yml", &pb), ("other.yml", "- ping:\n")], &[])
        };
        assert!(with("    - command: ls\n      when: ansible_os_family == 'Debian'\n").is_some());
        assert!(with("    - debug: {msg: \"{{ ansible_hostname }}\"}\n").is_some());
        assert!(with("    - assert: {that: [ansible_architecture == 'x86_64']}\n").is_some());
        assert!(with("    - debug: {var: ansible_mounts}\n").is_some());
        assert!(with("    - include_tasks: other.yml\n")
            .unwrap()
            .contains("read at run time"));
        assert!(with("    - template: {src: \"{{ x }}.j2\", dest: /tmp/a}\n").is_some());
        let inv = [("ip", "{{ ansible_default_ipv4.address }}")];
        assert!(why_of(&[("site.yml", "- hosts: all\n  tasks: []\n")], &inv).is_some());
        // Literal text outside {{ }} is not a read.
        assert_eq!(with("    - command: echo ansible_hostname vars\n"), None);
    }

    #[test]
    fn fact_names_and_other_names() {
        assert!(reads_facts("ansible_os_family"));
        assert!(reads_facts("ansible_facts"));
        assert!(reads_facts("hostvars"));
        assert!(reads_facts("lookup"));
        assert!(!reads_facts("ansible_host"));
        assert!(!reads_facts("ansible_ssh_private_key_file"));
        assert!(!reads_facts("ansible_become_password"));
        assert!(!reads_facts("ansible_play_hosts_all"));
        assert!(!reads_facts("inventory_hostname"));
    }
}
