//! Small playbooks written to a temporary folder: one loader rule each.

use super::ast::{Playbook, Task, TaskItem};
use super::{load_playbook, ErrorKind, LoadError};
use serde_json::{json, Value};
use std::path::Path;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// Loads `site.yml` from `files`.
fn load(files: &[(&str, &str)]) -> Result<Playbook, LoadError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    load_playbook(&dir.path().join("site.yml"))
}

fn ok(files: &[(&str, &str)]) -> Playbook {
    load(files).unwrap_or_else(|e| panic!("{e}"))
}

/// The error as `line:column: message` and its kind.
fn fail(files: &[(&str, &str)]) -> (ErrorKind, String) {
    let e = load(files).expect_err("should not load");
    (
        e.kind,
        format!("{}:{}: {}", e.origin.line, e.origin.column, e.message),
    )
}

fn tasks(yaml: &str) -> String {
    format!("- hosts: all\n  tasks:\n{yaml}")
}

fn first(pb: &Playbook) -> &Task {
    match &pb.plays[0].tasks[0] {
        TaskItem::Task(t) => t,
        TaskItem::Block(b) => panic!("a block: {b:?}"),
    }
}

#[test]
fn action_forms() {
    let pb = ok(&[(
        "site.yml",
        &tasks("    - action: {module: copy, src: a, dest: b}\n    - action: module=file path=/x state=absent\n    - action:\n        module: command ls\n        args: {chdir: /tmp}\n"),
    )]);
    let t: Vec<&Task> = pb.plays[0]
        .tasks
        .iter()
        .map(|i| match i {
            TaskItem::Task(t) => &**t,
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        (t[0].action.as_str(), json!(t[0].args)),
        ("copy", json!({"src": "a", "dest": "b"}))
    );
    assert_eq!(
        (t[1].action.as_str(), json!(t[1].args)),
        ("file", json!({"path": "/x", "state": "absent"}))
    );
    assert_eq!(
        (t[2].action.as_str(), json!(t[2].args)),
        ("command", json!({"_raw_params": "ls", "chdir": "/tmp"}))
    );
    let (k, m) = fail(&[(
        "site.yml",
        &tasks("    - action: copy src=a\n      local_action: copy src=b\n"),
    )]);
    assert_eq!(
        (k, m.as_str()),
        (
            ErrorKind::BadValue,
            "4:7: 'action' and 'local_action' cannot both be used; keep one"
        )
    );
    let (k, m) = fail(&[("site.yml", &tasks("    - action: cpy src=a\n"))]);
    assert_eq!(
        (k, m.as_str()),
        (
            ErrorKind::UnknownModule,
            "3:15: unknown module 'cpy' (did you mean 'copy'?)"
        )
    );
}

#[test]
fn module_args_win_over_args_keyword() {
    let pb = ok(&[(
        "site.yml",
        &tasks("    - command: ls chdir=/a\n      args: {chdir: /b, creates: /c}\n"),
    )]);
    assert_eq!(
        json!(first(&pb).args),
        json!({"chdir": "/a", "creates": "/c", "_raw_params": "ls"})
    );
}

#[test]
fn argument_checks() {
    let (k, m) = fail(&[(
        "site.yml",
        &tasks("    - copy: {dest: x, _ansible_check_mode: true}\n"),
    )]);
    assert_eq!(k, ErrorKind::BadValue);
    assert!(
        m.starts_with("3:7: argument '_ansible_check_mode' of copy"),
        "{m}"
    );
    // A templated key: names cannot be checked before run time.
    ok(&[(
        "site.yml",
        &tasks("    - copy: {dest: x, \"{{ k }}\": v}\n"),
    )]);
    let (k, m) = fail(&[("site.yml", &tasks("    - debug: msg=\"a b\" extra\n"))]);
    assert_eq!((k, m.as_str()), (ErrorKind::UnknownArgument, "3:7: debug does not take free-form text ('extra'); write its arguments as key=value pairs or a mapping"));
    let (k, m) = fail(&[("site.yml", &tasks("    - copy: [a]\n"))]);
    assert_eq!(
        (k, m.as_str()),
        (
            ErrorKind::BadValue,
            "3:13: the arguments of 'copy' must be a mapping or `key=value` text, not a list"
        )
    );
    let (k, m) = fail(&[("site.yml", &tasks("    - name: only a name\n"))]);
    assert_eq!(k, ErrorKind::UnknownModule);
    assert!(
        m.starts_with("3:7: this task has no module; add one"),
        "{m}"
    );
    let (k, m) = fail(&[("site.yml", &tasks("    - debug: msg=\"unclosed\n"))]);
    assert_eq!(k, ErrorKind::BadValue);
    assert!(m.starts_with("3:14: failed at splitting arguments"), "{m}");
    let (_, m) = fail(&[("site.yml", &tasks("    - set_fact: {a-b: 1}\n"))]);
    assert_eq!(
        m,
        "3:7: set_fact: 'a-b' is not a valid variable name; use letters, digits and underscores"
    );
    let (_, m) = fail(&[("site.yml", &tasks("    - meta: flush_handler\n"))]);
    assert!(
        m.starts_with("3:7: unknown meta action 'flush_handler' (did you mean 'flush_handlers'?)"),
        "{m}"
    );
}

#[test]
fn unsafe_text_stays_unsafe() {
    let pb = ok(&[("site.yml", &tasks("    - shell: !unsafe echo {{ x }}\n"))]);
    assert_eq!(
        first(&pb).args["_raw_params"],
        json!({"__ansible_unsafe": "echo {{ x }}"})
    );
}

#[test]
fn json_playbook_has_positions() {
    let pb = ok(&[(
        "site.yml",
        "[{\"hosts\": \"all\",\n  \"tasks\": [{\"debug\": {\"msg\": 1e3}}]}]",
    )]);
    assert_eq!(
        first(&pb).args["msg"],
        json!(1000.0),
        "JSON first, like Ansible"
    );
    let (_, m) = fail(&[(
        "site.yml",
        "[{\"hosts\": \"all\",\n  \"tasks\": [{\"debug\": {}, \"whne\": 1}]}]",
    )]);
    assert_eq!(
        m,
        "2:27: unknown task keyword 'whne' (did you mean 'when'?)"
    );
}

#[test]
fn conditions_tags_and_vars() {
    let pb = ok(&[("site.yml", &tasks("    - ping:\n      when: [true, 1, x is defined]\n      tags: [1, a]\n      changed_when: false\n      until: ok\n      retries: 3\n      delay: \"{{ d }}\"\n"))]);
    let t = first(&pb);
    assert_eq!(t.keywords.when, ["True", "1", "x is defined"]);
    assert_eq!(t.keywords.tags, ["1", "a"]);
    assert_eq!(t.changed_when.as_deref(), Some(&["False".to_string()][..]));
    assert_eq!(t.until.as_deref(), Some(&["ok".to_string()][..]));
    assert_eq!(
        (t.retries.clone(), t.delay.clone()),
        (Some(json!(3)), Some(json!("{{ d }}")))
    );
    let (_, m) = fail(&[("site.yml", &tasks("    - ping:\n      tags: 3\n"))]);
    assert_eq!(
        m,
        "4:13: 'tags' must be a list or a comma-separated string, not a number"
    );
    let (_, m) = fail(&[(
        "site.yml",
        &tasks("    - ping:\n      vars: {foo-bar: 1}\n"),
    )]);
    assert_eq!(m, "4:14: 'foo-bar' is not a valid variable name; use letters, digits and underscores, not starting with a digit");
    // become/no_log/ignore_errors may be templates, decided per host at run time.
    let pb = ok(&[(
        "site.yml",
        &tasks("    - ping:\n      become: \"{{ b }}\"\n      ignore_errors: yes\n"),
    )]);
    let TaskItem::Task(t) = &pb.plays[0].tasks[0] else {
        panic!("a task")
    };
    assert_eq!(t.keywords.become_, Some(json!("{{ b }}")));
    assert_eq!(t.keywords.ignore_errors, Some(json!(true)));
    let (k, m) = fail(&[(
        "site.yml",
        &tasks("    - ping:\n      run_once: \"{{ b }}\"\n"),
    )]);
    assert_eq!(
        (k, m.as_str()),
        (
            ErrorKind::Unsupported,
            "4:17: 'run_once: {{ b }}': a template here is not supported yet; write true or false"
        )
    );
    let (_, m) = fail(&[("site.yml", &tasks("    - ping:\n      no_log: maybe\n"))]);
    assert_eq!(m, "4:15: 'no_log' must be true or false, not 'maybe'");
    let (k, _) = fail(&[(
        "site.yml",
        &tasks("    - ping:\n      connection: docker\n"),
    )]);
    assert_eq!(k, ErrorKind::Unsupported);
    let (k, m) = fail(&[("site.yml", &tasks("    - ping:\n      connection: local\n"))]);
    assert_eq!(k, ErrorKind::Unsupported);
    assert!(
        m.contains("over SSH") && m.contains("ansible_host=127.0.0.1"),
        "{m}"
    );
    let (k, m) = fail(&[("site.yml", &tasks("    - ping:\n      async: 10\n"))]);
    assert_eq!((k, m.as_str()), (ErrorKind::Unsupported, "4:7: async tasks (async/poll) are not supported yet: remove 'async' and 'poll' to run the task in the foreground"));
}

#[test]
fn loops() {
    let pb = ok(&[("site.yml", &tasks("    - debug: var=item\n      with_items: [1, [2, 3]]\n      loop_control: {index_var: i, extended: yes}\n"))]);
    let t = first(&pb);
    assert_eq!(t.loop_, Some(("with_items".into(), json!([1, [2, 3]]))));
    assert_eq!(t.loop_control.index_var.as_deref(), Some("i"));
    assert!(t.loop_control.extended);
    let (_, m) = fail(&[(
        "site.yml",
        &tasks("    - debug: var=item\n      loop: [1]\n      with_items: [2]\n"),
    )]);
    assert_eq!(
        m,
        "5:7: a task can loop only once, but it has both 'loop' and 'with_items'; keep one"
    );
    let (_, m) = fail(&[(
        "site.yml",
        &tasks("    - debug: var=item\n      with_itmes: [1]\n"),
    )]);
    assert!(
        m.starts_with("4:7: unknown loop 'with_itmes' (did you mean 'with_items'?)"),
        "{m}"
    );
    let (_, m) = fail(&[(
        "site.yml",
        &tasks("    - debug: var=item\n      loop: [1]\n      loop_control: {loopvar: x}\n"),
    )]);
    assert!(
        m.starts_with("5:22: unknown loop_control key 'loopvar' (did you mean 'loop_var'?)"),
        "{m}"
    );
}

#[test]
fn blocks() {
    let (_, m) = fail(&[("site.yml", &tasks("    - rescue:\n        - ping:\n"))]);
    assert_eq!(
        m,
        "3:7: 'rescue' cannot be used without 'block'; put the tasks to try under 'block:'"
    );
    let (_, m) = fail(&[(
        "site.yml",
        &tasks("    - block:\n        - ping:\n      whne: x\n"),
    )]);
    assert!(
        m.starts_with("5:7: unknown block keyword 'whne' (did you mean 'when'?)"),
        "{m}"
    );
    let (_, m) = fail(&[(
        "site.yml",
        &tasks("    - block:\n        - ping:\n      copy: {dest: x}\n"),
    )]);
    assert_eq!(
        m,
        "5:7: a block cannot run a module: move 'copy' into a task under 'block:'"
    );
    let pb = ok(&[(
        "site.yml",
        &tasks(
            "    - block:\n        - ping:\n      delegate_to: h1\n      delegate_facts: true\n",
        ),
    )]);
    let TaskItem::Block(b) = &pb.plays[0].tasks[0] else {
        panic!()
    };
    assert_eq!(b.keywords.delegate_to.as_deref(), Some("h1"));
    let TaskItem::Task(t) = &b.block[0] else {
        panic!()
    };
    assert_eq!(t.delegate_facts, Some(true));
}

#[test]
fn imports_and_includes() {
    let (_, m) = fail(&[
        (
            "site.yml",
            &tasks("    - import_tasks: t.yml\n      loop: [1]\n"),
        ),
        ("t.yml", "- ping:\n"),
    ]);
    assert_eq!(m, "4:7: import_tasks cannot loop (it is expanded before the play runs); use include_tasks to loop");
    let (k, _) = fail(&[("site.yml", &tasks("    - import_tasks: \"{{ f }}\"\n"))]);
    assert_eq!(k, ErrorKind::Unsupported);
    // Dynamic includes: templated names wait for run time; a file including itself is fine.
    ok(&[("site.yml", &tasks("    - include_tasks: \"{{ f }}.yml\"\n"))]);
    ok(&[
        ("site.yml", &tasks("    - include_tasks: again.yml\n")),
        ("again.yml", "- include_tasks: again.yml\n  when: false\n"),
    ]);
    // ... but a broken included file is reported now.
    let (k, m) = fail(&[
        ("site.yml", &tasks("    - include_tasks: t.yml\n")),
        ("t.yml", "- pnig:\n"),
    ]);
    assert_eq!(k, ErrorKind::UnknownModule);
    assert!(
        m.starts_with("1:3: unknown module 'pnig' (did you mean 'ping'?)"),
        "{m}"
    );
    let pb = ok(&[
        (
            "site.yml",
            &tasks("    - include_tasks:\n        file: t.yml\n        apply: {become: true}\n"),
        ),
        ("t.yml", "- ping:\n"),
    ]);
    assert_eq!(
        json!(first(&pb).args),
        json!({"_raw_params": "t.yml", "apply": {"become": true}})
    );
    let (_, m) = fail(&[
        (
            "site.yml",
            &tasks("    - include_tasks:\n        file: t.yml\n        apply: {becme: true}\n"),
        ),
        ("t.yml", "- ping:\n"),
    ]);
    assert!(
        m.starts_with("3:7: unknown keyword 'becme' in 'apply' (did you mean 'become'?)"),
        "{m}"
    );
    let (k, m) = fail(&[("site.yml", &tasks("    - include_role: {name: nope}\n"))]);
    assert_eq!(k, ErrorKind::Missing);
    assert!(
        m.starts_with("3:7: role 'nope' not found; looked in: "),
        "{m}"
    );
    let (_, m) = fail(&[("site.yml", &tasks("    - include_role: {tasks_from: x}\n"))]);
    assert_eq!(
        m,
        "3:7: include_role needs the role's name: `include_role: {name: ROLE}`"
    );
}

#[test]
fn handlers() {
    let (_, m) = fail(&[("site.yml", &tasks("    - ping:\n      listen: x\n"))]);
    assert_eq!(
        m,
        "4:7: 'listen' is only valid on handlers (tasks under 'handlers:'); use notify: on a task"
    );
    let pb = ok(&[
        (
            "site.yml",
            "- hosts: all\n  roles: [r]\n  tasks:\n    - ping:\n      notify: [\"r : bounce\", topic, \"{{ dyn }}\", imported]\n  handlers:\n    - import_tasks: h.yml\n      become: true\n",
        ),
        ("h.yml", "- name: imported\n  ping:\n"),
        ("roles/r/handlers/main.yml", "- name: bounce\n  listen: topic\n  ping:\n"),
    ]);
    let h = &pb.plays[0].handlers;
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].name.as_deref(), Some("bounce"), "role handlers first");
    assert_eq!(
        (h[1].name.as_deref(), h[1].keywords.become_.clone()),
        (Some("imported"), Some(Value::Bool(true)))
    );
}

#[test]
fn roles() {
    // allow_duplicates: the same role twice runs twice.
    let pb = ok(&[
        (
            "site.yml",
            "- hosts: all\n  roles: [r, r, {name: r, x: 1}]\n",
        ),
        ("roles/r/meta/main.yml", "allow_duplicates: true\n"),
        ("roles/r/tasks/main.yml", "- ping:\n"),
    ]);
    assert_eq!(pb.plays[0].roles.len(), 3);
    assert_eq!(pb.plays[0].roles[2].params["x"], json!(1));
    // Found in <project>/playbooks/roles for a playbook elsewhere; vars/main/ as a folder.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("site/site.yml", "- hosts: all\n  roles: [r]\n"),
            ("playbooks/roles/r/vars/main/a.yml", "a: 1\nb: 1\n"),
            ("playbooks/roles/r/vars/main/b.yml", "b: 2\n"),
        ],
    );
    let pb = load_playbook(&dir.path().join("site/site.yml")).unwrap();
    assert_eq!(json!(pb.plays[0].roles[0].vars), json!({"a": 1, "b": 2}));
    // Dependencies with parameters, and the parent's keywords passed down.
    let pb = ok(&[
        (
            "site.yml",
            "- hosts: all\n  roles: [{role: app, when: go, become: true}]\n",
        ),
        (
            "roles/app/meta/main.yml",
            "dependencies:\n  - {role: db, db_port: 5432, tags: db}\n",
        ),
        ("roles/db/tasks/main.yml", "- ping:\n"),
    ]);
    let r = &pb.plays[0].roles;
    assert_eq!((r[0].name.as_str(), r[1].name.as_str()), ("db", "app"));
    assert_eq!(r[0].params["db_port"], json!(5432));
    assert_eq!(r[0].keywords.when, ["go"]);
    assert_eq!(r[0].keywords.tags, ["db"]);
    assert_eq!(r[0].keywords.become_, Some(Value::Bool(true)));
    let (_, m) = fail(&[
        ("site.yml", "- hosts: all\n  roles: [r]\n"),
        ("roles/r/meta/main.yml", "dependecies: []\n"),
    ]);
    assert!(
        m.starts_with("1:1: unknown role meta key 'dependecies' (did you mean 'dependencies'?)"),
        "{m}"
    );
    let (_, m) = fail(&[
        ("site.yml", "- hosts: all\n  roles: [r]\n"),
        ("roles/r/defaults/main.yml", "- a\n"),
    ]);
    assert_eq!(
        m,
        "1:1: defaults/main.yml must be a mapping of variable names to values, not a list"
    );
    let (_, m) = fail(&[
        (
            "site.yml",
            "- hosts: all\n  tasks:\n    - import_role: {name: r, tasks_from: nope}\n",
        ),
        ("roles/r/tasks/main.yml", "- ping:\n"),
    ]);
    assert!(
        m.starts_with("3:7: role 'r' has no tasks file 'nope'"),
        "{m}"
    );
}

#[test]
fn import_playbook() {
    let pb = ok(&[
        (
            "site.yml",
            "- import_playbook: sub/p.yml\n  when: go\n  tags: t\n  vars: {a: 2}\n",
        ),
        (
            "sub/p.yml",
            "- hosts: all\n  vars: {a: 1, b: 1}\n  tags: own\n",
        ),
    ]);
    let p = &pb.plays[0];
    assert_eq!(json!(p.keywords.vars), json!({"a": 2, "b": 1}));
    assert_eq!(p.keywords.tags, ["own", "t"]);
    assert_eq!(p.keywords.when, ["go"]);
    assert!(p.dir.ends_with("sub"));
    let (_, m) = fail(&[("site.yml", "- import_playbook: site.yml\n")]);
    assert!(m.starts_with("1:3: import_playbook cycle: "), "{m}");
    let (k, m) = fail(&[("site.yml", "- import_playbook: nope.yml\n")]);
    assert_eq!(k, ErrorKind::Missing);
    assert!(
        m.starts_with("1:3: imported playbook 'nope.yml' not found"),
        "{m}"
    );
    let (_, m) = fail(&[
        ("site.yml", "- import_playbook: p.yml\n  become: true\n"),
        ("p.yml", "- hosts: all\n"),
    ]);
    assert!(
        m.starts_with("2:3: unknown import_playbook keyword 'become'"),
        "{m}"
    );
}

#[test]
fn play_values() {
    let (_, m) = fail(&[("site.yml", "- hosts: []\n")]);
    assert_eq!(
        m,
        "1:10: 'hosts' is empty; give a host pattern like `all`, a group, or `web:&prod`"
    );
    let (_, m) = fail(&[("site.yml", "- hosts: all\n  when: x\n")]);
    assert!(m.starts_with("2:3: a play cannot have 'when'"), "{m}");
    let (_, m) = fail(&[("site.yml", "- hosts: all\n  order: sorted\n")]);
    assert!(
        m.starts_with("2:10: order 'sorted' is not supported"),
        "{m}"
    );
    let (_, m) = fail(&[("site.yml", "- hosts: all\n  serial: [1, \"12.5%\"]\n")]);
    assert!(m.starts_with("2:15: serial must be"), "{m}");
    let (_, m) = fail(&[("site.yml", "- hosts: all\n  max_fail_percentage: 120\n")]);
    assert_eq!(
        m,
        "2:24: max_fail_percentage must be a number from 0 to 100, not a number"
    );
    let (_, m) = fail(&[("site.yml", "hosts: all\n")]);
    assert_eq!(
        m,
        "1:1: a playbook must be a list of plays (`- hosts: all`), not a mapping"
    );
    let (k, m) = fail(&[("site.yml", "- hosts: all\n  vars: {p: !vault x}\n")]);
    assert_eq!(k, ErrorKind::Syntax);
    assert!(
        m.starts_with("2:20: YAML syntax error: !vault values are encrypted"),
        "{m}"
    );
    let pb = ok(&[("site.yml", "- hosts: all\n  port: 2222\n  gather_subset: \"!all,network\"\n  collections: [community.general]\n")]);
    assert_eq!(pb.plays[0].keywords.vars["ansible_port"], json!(2222));
    assert_eq!(pb.plays[0].gather_subset, ["!all", "network"]);
}

#[test]
fn did_you_mean_picks_the_nearer_of_keyword_and_module() {
    let (k, m) = fail(&[("site.yml", &tasks("    - shel: ls\n"))]);
    assert_eq!(
        (k, m.as_str()),
        (
            ErrorKind::UnknownModule,
            "3:7: unknown module 'shel' (did you mean 'shell'?)"
        )
    );
    let (k, m) = fail(&[("site.yml", &tasks("    - ping:\n      regster: x\n"))]);
    assert_eq!(
        (k, m.as_str()),
        (
            ErrorKind::UnknownKeyword,
            "4:7: unknown task keyword 'regster' (did you mean 'register'?)"
        )
    );
    let (k, m) = fail(&[("site.yml", &tasks("    - ping:\n      frobnicate: x\n"))]);
    assert_eq!(k, ErrorKind::UnknownKeyword);
    assert!(
        m.starts_with("4:7: unknown task keyword 'frobnicate'; a task has one module"),
        "{m}"
    );
    let (k, m) = fail(&[("site.yml", &tasks("    - frobnicate: x\n"))]);
    assert_eq!(k, ErrorKind::UnknownModule);
    assert!(
        m.starts_with("3:7: unknown module 'frobnicate'; homelab knows: command, shell"),
        "{m}"
    );
}

#[test]
fn misspelt_role_names_get_a_did_you_mean() {
    let common = ("roles/common/tasks/main.yml", "- ping:\n");
    let kernel = ("roles/kernel/meta/main.yml", "dependencies: []\n");
    let not_a_role = ("roles/commons_notes/README", "x\n");
    for task in [
        "    - include_role: {name: comon}\n",
        "    - import_role: {name: comon}\n",
        "    - include_role:\n        name: commmon\n",
    ] {
        let (k, m) = fail(&[("site.yml", &tasks(task)), common, kernel, not_a_role]);
        assert_eq!(k, ErrorKind::Missing);
        assert!(
            m.contains("not found (did you mean 'common'?); looked in: "),
            "{task}: {m}"
        );
    }
    let (_, m) = fail(&[
        ("site.yml", "- hosts: all\n  roles: [kernl]\n"),
        common,
        kernel,
    ]);
    assert!(
        m.contains("role 'kernl' not found (did you mean 'kernel'?)"),
        "{m}"
    );
    // Nothing close: no suggestion.
    let (_, m) = fail(&[
        ("site.yml", &tasks("    - include_role: {name: zzz}\n")),
        common,
    ]);
    assert!(m.contains("role 'zzz' not found; looked in: "), "{m}");
}
