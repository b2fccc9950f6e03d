//! The playbook loader against fixtures: the AST of a realistic playbook (structure,
//! canonical module names, parsed arguments with PyYAML typing, positions, role order), and
//! bad inputs, each with its exact file:line:column and message.

use homelab::playbook::ast::{
    Block, Inherited, Play, Role, RoleRef, Serial, Strategy, Task, TaskItem,
};
use homelab::playbook::{load_playbook, load_role, load_tasks_file, ErrorKind, RoleFrom};
use serde_json::json;
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/playbooks")
}

fn rel(p: &Path) -> String {
    p.strip_prefix(fixtures())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// Keywords that are set, compactly.
fn kw(k: &Inherited) -> String {
    let mut s = String::new();
    let mut add = |name: &str, v: String| {
        let _ = write!(s, " {name}={v}");
    };
    if let Some(b) = &k.become_ {
        add("become", b.to_string());
    }
    if let Some(u) = &k.become_user {
        add("become_user", u.clone());
    }
    if !k.when.is_empty() {
        add("when", format!("{:?}", k.when));
    }
    if !k.tags.is_empty() {
        add("tags", format!("{:?}", k.tags));
    }
    if !k.vars.is_empty() {
        add(
            "vars",
            serde_json::Value::Object(k.vars.clone()).to_string(),
        );
    }
    if let Some(e) = &k.environment {
        add("environment", e.to_string());
    }
    if let Some(d) = &k.delegate_to {
        add("delegate_to", d.clone());
    }
    s
}

fn task_line(t: &Task) -> String {
    let mut s = t.action.to_string();
    if let Some(n) = &t.name {
        let _ = write!(s, " '{n}'");
    }
    let _ = write!(s, " {}", serde_json::Value::Object(t.args.clone()));
    s.push_str(&kw(&t.keywords));
    if let Some((k, v)) = &t.loop_ {
        let _ = write!(s, " {k}={v}");
    }
    if let Some(r) = &t.register {
        let _ = write!(s, " register={r}");
    }
    if !t.notify.is_empty() {
        let _ = write!(s, " notify={:?}", t.notify);
    }
    if !t.listen.is_empty() {
        let _ = write!(s, " listen={:?}", t.listen);
    }
    if let Some(c) = &t.changed_when {
        let _ = write!(s, " changed_when={c:?}");
    }
    if let Some(c) = &t.failed_when {
        let _ = write!(s, " failed_when={c:?}");
    }
    if let Some(r) = &t.role {
        let _ = write!(s, " role={}", r.name);
    }
    let _ = write!(
        s,
        " @{}:{}:{}",
        rel(&t.origin.file),
        t.origin.line,
        t.origin.column
    );
    s
}

fn outline(items: &[TaskItem], depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    for it in items {
        match it {
            TaskItem::Task(t) => {
                let _ = writeln!(out, "{pad}{}", task_line(t));
            }
            TaskItem::Block(b) => block(b, depth, out),
        }
    }
}

fn block(b: &Block, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let mut head = "block".to_string();
    if let Some(n) = &b.name {
        let _ = write!(head, " '{n}'");
    }
    head.push_str(&kw(&b.keywords));
    if let Some(r) = &b.role {
        let _ = write!(
            head,
            " role={} defaults={} vars={}",
            r.name,
            serde_json::Value::Object(r.defaults.clone()),
            serde_json::Value::Object(r.vars.clone())
        );
    }
    let _ = writeln!(
        out,
        "{pad}{head} @{}:{}:{}",
        rel(&b.origin.file),
        b.origin.line,
        b.origin.column
    );
    outline(&b.block, depth + 1, out);
    if !b.rescue.is_empty() {
        let _ = writeln!(out, "{pad}rescue:");
        outline(&b.rescue, depth + 1, out);
    }
    if !b.always.is_empty() {
        let _ = writeln!(out, "{pad}always:");
        outline(&b.always, depth + 1, out);
    }
}

fn role_line(r: &Role) -> String {
    format!(
        "role {} params={} defaults={} vars={}{} @{}:{}:{}",
        r.name,
        serde_json::Value::Object(r.params.clone()),
        serde_json::Value::Object(r.defaults.clone()),
        serde_json::Value::Object(r.vars.clone()),
        kw(&r.keywords),
        rel(&r.origin.file),
        r.origin.line,
        r.origin.column
    )
}

fn play_outline(p: &Play) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "play {:?} hosts={}{} @{}:{}:{}",
        p.name,
        p.hosts,
        kw(&p.keywords),
        rel(&p.origin.file),
        p.origin.line,
        p.origin.column
    );
    for r in &p.roles {
        let _ = writeln!(out, "{}", role_line(r));
        outline(&r.tasks, 1, &mut out);
        for h in &r.handlers {
            let _ = writeln!(out, "  handler {}", task_line(h));
        }
    }
    for (name, items) in [
        ("pre_tasks", &p.pre_tasks),
        ("tasks", &p.tasks),
        ("post_tasks", &p.post_tasks),
    ] {
        let _ = writeln!(out, "{name}:");
        outline(items, 1, &mut out);
    }
    let _ = writeln!(out, "handlers:");
    for h in &p.handlers {
        let _ = writeln!(out, "  {}", task_line(h));
    }
    out
}

const SITE_PLAY: &str = r#"play Some("Web servers") hosts=web,db become=true vars={"http_port":8080,"site_mode":420,"site_mode_text":"0644"} environment={"LANG":"C.UTF-8"} @site/site.yml:3:3
role common params={} defaults={"motd":"welcome"} vars={} @site/roles/web/meta/main.yml:4:5
  debug 'Common role' {"msg":"{{ motd | default('none') }}"} role=common @site/roles/common/tasks/main.yml:1:3
  handler debug 'common handler' {"msg":"common"} listen=["common topic"] role=common @site/roles/common/handlers/main.yml:1:3
role web params={} defaults={"web_port":80,"web_root":"/var/www"} vars={"web_user":"www-data"} @site/site.yml:19:7
  file 'Web root' {"path":"{{ web_root }}","state":"directory","mode":"0755"} role=web @site/roles/web/tasks/main.yml:1:3
  copy 'Index page' {"src":"index.html","dest":"{{ web_root }}/index.html"} notify=["web restarted"] role=web @site/roles/web/tasks/main.yml:6:3
  handler command 'web restarted' {"_raw_params":"systemctl restart nginx"} role=web @site/roles/web/handlers/main.yml:1:3
role common params={"greeting":"hi"} defaults={"motd":"welcome"} vars={} when=["ansible_os_family == \"Debian\""] tags=["base"] vars={"motd":"hello"} @site/site.yml:21:7
  debug 'Common role' {"msg":"{{ motd | default('none') }}"} role=common @site/roles/common/tasks/main.yml:1:3
  handler debug 'common handler' {"msg":"common"} listen=["common topic"] role=common @site/roles/common/handlers/main.yml:1:3
pre_tasks:
  ping 'Ping first' {} @site/site.yml:27:7
tasks:
  copy 'Copy index' {"src":"index.html","dest":"/var/www/index.html","mode":420} notify=["restart web"] @site/site.yml:30:7
  copy 'Copy with k=v' {"src":"a.conf","dest":"/etc/a.conf","mode":"0644","owner":"www data"} @site/site.yml:36:7
  file 'Legacy action' {"path":"/tmp/x","state":"touch"} @site/site.yml:38:7
  command {"chdir":"/tmp","_raw_params":"echo hi"} delegate_to=localhost @site/site.yml:40:7
  shell 'Shell loop' {"creates":"/tmp/{{ item }}","_raw_params":"echo {{ item }} > /tmp/{{ item }}"} when=["True"] tags=["files", "shell"] loop=["a","b"] register=out changed_when=["False"] failed_when=["out.rc != 0", "'ERROR' in out.stdout"] @site/site.yml:41:7
  debug 'Users' {"msg":"{{ item.key }}={{ item.value }}"} with_dict="{{ users }}" @site/site.yml:57:7
  block become_user=admin when=["do_common | bool"] tags=["common"] @site/site.yml:60:7
    debug 'Common one' {"msg":"one"} @site/tasks/common.yml:1:3
    block @site/tasks/common.yml:3:3
      ping 'Nested' {} @site/tasks/nested.yml:1:3
  include_tasks {"_raw_params":"tasks/dynamic.yml"} vars={"x":1} loop=[1,2] @site/site.yml:64:7
  block 'A block' become=false when=["run_block"] @site/site.yml:67:7
    command {"_raw_params":"/bin/false"} notify=["reload web"] @site/site.yml:69:11
  rescue:
    debug {"msg":"rescued"} notify=["reload web"] @site/site.yml:71:11
  always:
    debug {"msg":"always"} notify=["reload web"] @site/site.yml:73:11
  block 'Extra web tasks' vars={"from_import":true} role=web defaults={"web_port":80,"web_root":"/var/www"} vars={"web_user":"www-data"} @site/site.yml:77:7
    debug 'Web extra' {"msg":"extra {{ web_port }}"} role=web @site/roles/web/tasks/extra.yml:1:3
  include_role {"name":"common"} @site/site.yml:82:7
post_tasks:
  meta {"_raw_params":"flush_handlers"} @site/site.yml:85:7
handlers:
  debug 'common handler' {"msg":"common"} listen=["common topic"] role=common @site/roles/common/handlers/main.yml:1:3
  command 'web restarted' {"_raw_params":"systemctl restart nginx"} role=web @site/roles/web/handlers/main.yml:1:3
  command 'restart web' {"_raw_params":"systemctl restart web"} @site/site.yml:87:7
  shell 'reload things' {"_raw_params":"systemctl reload web"} listen=["reload web"] @site/site.yml:89:7
"#;

const EXTRA_PLAY: &str = r#"play None hosts=localhost tags=["extra"] vars={"ansible_connection":"ssh","imported":true} @site/extra.yml:1:3
pre_tasks:
tasks:
  raw {"_raw_params":"uptime"} @site/extra.yml:5:7
post_tasks:
handlers:
"#;

fn site() -> homelab::playbook::ast::Playbook {
    load_playbook(&fixtures().join("site/site.yml")).unwrap_or_else(|e| panic!("{e}"))
}

fn task(items: &[TaskItem], i: usize) -> &Task {
    match &items[i] {
        TaskItem::Task(t) => t,
        TaskItem::Block(b) => panic!("item {i} is a block: {b:?}"),
    }
}

fn blk(items: &[TaskItem], i: usize) -> &Block {
    match &items[i] {
        TaskItem::Block(b) => b,
        TaskItem::Task(t) => panic!("item {i} is a task: {t:?}"),
    }
}

/// The whole AST of the realistic playbook, item by item: structure, canonical module
/// names, arguments, keywords, role order and dedup, handlers, positions.
#[test]
fn site_playbook_outline() {
    let pb = site();
    assert_eq!(pb.plays.len(), 2, "import_playbook adds the second play");
    assert_eq!(play_outline(&pb.plays[0]), SITE_PLAY);
    assert_eq!(play_outline(&pb.plays[1]), EXTRA_PLAY);
}

#[test]
fn play_keywords() {
    let pb = site();
    let p = &pb.plays[0];
    assert_eq!(p.serial, vec![Serial::Count(1), Serial::Percent(50)]);
    assert_eq!(p.strategy, Strategy::Free);
    assert_eq!(p.max_fail_percentage, Some(20.0));
    assert_eq!(p.gather_facts, Some(false));
    assert_eq!(p.vars_files, vec![json!("vars/common.yml")]);
    assert_eq!(p.dir, fixtures().join("site"));
    assert_eq!(pb.plays[1].gather_facts, Some(false), "`no` is false");
    assert_eq!(pb.plays[1].dir, fixtures().join("site"));
}

/// `mode: 0644` is the number 420 (YAML 1.1 octal, as Ansible reads it); quoted it stays
/// the string "0644"; `k=v` values are strings.
#[test]
fn yaml_typing_of_arguments() {
    let pb = site();
    let tasks = &pb.plays[0].tasks;
    assert_eq!(task(tasks, 0).args["mode"], json!(420));
    assert_eq!(task(tasks, 1).args["mode"], json!("0644"));
    assert_eq!(pb.plays[0].keywords.vars["site_mode"], json!(420));
    assert_eq!(pb.plays[0].keywords.vars["site_mode_text"], json!("0644"));
}

#[test]
fn module_names_are_canonical_and_forms_are_parsed() {
    let pb = site();
    let p = &pb.plays[0];
    assert_eq!(task(&p.pre_tasks, 0).action, "ping", "ansible.builtin.ping");
    assert_eq!(task(&p.tasks, 0).action, "copy", "ansible.builtin.copy");
    let legacy = task(&p.tasks, 2);
    assert_eq!(legacy.action, "file");
    assert_eq!(
        legacy.args,
        json!({"path": "/tmp/x", "state": "touch"})
            .as_object()
            .unwrap()
            .clone()
    );
    let local = task(&p.tasks, 3);
    assert_eq!(local.action, "command");
    assert_eq!(local.keywords.delegate_to.as_deref(), Some("localhost"));
    assert_eq!(local.args["_raw_params"], json!("echo hi"));
    assert_eq!(local.args["chdir"], json!("/tmp"));
    let shell = task(&p.tasks, 4);
    assert_eq!(shell.loop_control.loop_var.as_deref(), Some("item"));
    assert_eq!(shell.loop_control.label.as_deref(), Some("{{ item }}"));
    assert_eq!(shell.loop_control.pause, Some(0.5));
    assert_eq!(
        shell.args["creates"],
        json!("/tmp/{{ item }}"),
        "args: merged in"
    );
}

/// Roles: dependencies first, a role used again with the same parameters runs once, with
/// other parameters again; tasks carry their role; import_role is a block with the role's
/// scope, its dependency (already in the play) left out.
#[test]
fn roles_order_scope_and_dedup() {
    let pb = site();
    let p = &pb.plays[0];
    let names: Vec<&str> = p.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["common", "web", "common"]);
    let web = &p.roles[1];
    assert_eq!(web.path, fixtures().join("site/roles/web"));
    assert_eq!(
        task(&web.tasks, 0).role,
        Some(RoleRef {
            name: "web".into(),
            path: fixtures().join("site/roles/web")
        })
    );
    let common2 = &p.roles[2];
    assert_eq!(common2.params["greeting"], json!("hi"));
    assert_eq!(common2.keywords.vars["motd"], json!("hello"));
    let imported = blk(&p.tasks, 9);
    let role = imported
        .role
        .as_ref()
        .expect("import_role block carries the role");
    assert_eq!(role.name, "web");
    assert!(role.tasks.is_empty(), "the tasks are the block's");
    assert_eq!(role.defaults["web_port"], json!(80));
    assert_eq!(
        imported.block.len(),
        1,
        "common (dependency) already ran in this play"
    );
}

#[test]
fn runtime_tasks_file_and_role() {
    let web = RoleRef {
        name: "web".into(),
        path: fixtures().join("site/roles/web"),
    };
    let items = load_tasks_file(
        &fixtures().join("site/roles/web/tasks/main.yml"),
        Some(&web),
    )
    .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(task(&items, 0).role.as_ref(), Some(&web));
    // A nested import_tasks resolves next to the including file.
    let items = load_tasks_file(&fixtures().join("site/tasks/common.yml"), None).unwrap();
    assert_eq!(
        task(&blk(&items, 1).block, 0).name.as_deref(),
        Some("Nested")
    );

    let role = load_role("web", &fixtures().join("site"), &RoleFrom::default(), None).unwrap();
    assert_eq!(role.name, "web");
    assert_eq!(role.vars["web_user"], json!("www-data"));
    let dep = blk(&role.tasks, 0);
    assert_eq!(
        dep.role.as_ref().map(|r| r.name.as_str()),
        Some("common"),
        "dependency first, in its own scope"
    );
    assert_eq!(task(&role.tasks, 1).name.as_deref(), Some("Web root"));
    let handlers: Vec<_> = role
        .handlers
        .iter()
        .filter_map(|h| h.name.as_deref())
        .collect();
    assert_eq!(handlers, ["common handler", "web restarted"]);

    let from = RoleFrom {
        tasks_from: Some("extra".into()),
        ..RoleFrom::default()
    };
    let role = load_role("web", &fixtures().join("site"), &from, None).unwrap();
    assert_eq!(task(&role.tasks, 1).name.as_deref(), Some("Web extra"));
    let e = load_role("nope", &fixtures().join("site"), &RoleFrom::default(), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Missing);
    assert!(
        e.message.starts_with("role 'nope' not found; looked in: "),
        "{e}"
    );
}

fn bad(name: &str) -> (ErrorKind, String) {
    let path = fixtures().join("bad").join(name);
    let e = load_playbook(&path).expect_err(name);
    let text = e.to_string();
    let prefix = format!("{}:", fixtures().join("bad").display());
    (
        e.kind,
        text.replace(&prefix, "")
            .replace(&fixtures().display().to_string(), "F"),
    )
}

/// Each bad input: the kind, the exact position and the exact message.
#[test]
fn bad_inputs() {
    let cases: &[(&str, ErrorKind, &str)] = &[
        ("syntax.yml", ErrorKind::Syntax, "F/bad/syntax.yml:5:11: YAML syntax error: while parsing a flow mapping, did not find expected ',' or '}'"),
        ("keyword.yml", ErrorKind::UnknownKeyword, "F/bad/keyword.yml:5:7: unknown task keyword 'whne' (did you mean 'when'?)"),
        ("module.yml", ErrorKind::UnknownModule, "F/bad/module.yml:4:7: unknown module 'ansible.builtin.cpy' (did you mean 'copy'?)"),
        ("arg.yml", ErrorKind::UnknownArgument, "F/bad/arg.yml:4:7: unsupported parameter for module copy: 'contnet' (did you mean 'content'?); supported: "),
        ("two_modules.yml", ErrorKind::UnknownModule, "F/bad/two_modules.yml:5:7: two modules in one task: 'copy' and 'file'; a task runs exactly one module, so split it into two tasks"),
        ("no_hosts.yml", ErrorKind::Missing, "F/bad/no_hosts.yml:1:3: this play ('forgot hosts') has no 'hosts'; add `hosts: all` (or a group or host pattern)"),
        ("missing_role.yml", ErrorKind::Missing, "F/bad/missing_role.yml:3:7: role 'nosuchrole' not found; looked in: F/bad/roles/nosuchrole, "),
        ("missing_import.yml", ErrorKind::Missing, "F/bad/missing_import.yml:3:7: tasks file 'nosuch.yml' not found; looked in: F/bad/nosuch.yml"),
        ("notify.yml", ErrorKind::Missing, "F/bad/notify.yml:6:9: notify: no handler named 'restart nginx' (did you mean 'restart ngnix'?); the play's handlers are 'restart ngnix' (a handler can also `listen:` to a topic)"),
        ("serial.yml", ErrorKind::BadValue, "F/bad/serial.yml:2:11: serial must be a number of hosts, a percentage like \"30%\", or a list of them, not 'abc'"),
        ("loop_control.yml", ErrorKind::BadValue, "F/bad/loop_control.yml:5:21: 'loop_control' must be a mapping, not a number"),
        ("vars.yml", ErrorKind::BadValue, "F/bad/vars.yml:3:7: 'vars' must be a mapping of variable names to values, not a string"),
        ("play_key.yml", ErrorKind::UnknownKeyword, "F/bad/play_key.yml:2:3: unknown play keyword 'gather_fact' (did you mean 'gather_facts'?)"),
        ("include_keyword.yml", ErrorKind::BadValue, "F/bad/include_keyword.yml:4:7: 'become' is not a valid keyword for include_tasks: an include is dynamic, so its keywords do not pass to what it includes; use `apply: {become: ...}` in its arguments, or import_tasks"),
        ("import_cycle.yml", ErrorKind::BadValue, "F/bad/cycle_b.yml:1:3: import cycle: F/bad/cycle_a.yml → F/bad/cycle_b.yml → F/bad/cycle_a.yml; an imported file cannot import itself again"),
        ("role_cycle.yml", ErrorKind::BadValue, "F/bad/roles/loop_b/meta/main.yml:2:5: role dependency cycle: loop_a → loop_b → loop_a; remove one of the dependencies"),
        ("vars_prompt.yml", ErrorKind::Unsupported, "F/bad/vars_prompt.yml:2:3: vars_prompt is not supported: pass the values with -e name=value"),
        ("strategy.yml", ErrorKind::Unsupported, "F/bad/strategy.yml:2:13: strategy 'host_pinned' is not supported; homelab runs 'linear' (the default) or 'free'"),
        ("freeform.yml", ErrorKind::UnknownArgument, "F/bad/freeform.yml:3:7: copy does not take free-form text ('just some text'); write its arguments as key=value pairs or a mapping"),
        ("empty.yml", ErrorKind::Missing, "F/bad/empty.yml: empty playbook, nothing to do; a playbook is a list of plays (`- hosts: all`)"),
        ("ok_tasks.yml", ErrorKind::UnknownKeyword, "F/bad/ok_tasks.yml:1:3: unknown play keyword 'ping'; 'ping' is a module: this looks like a list of tasks, not a playbook (a task goes under a play's 'tasks:')"),
    ];
    let mut failures = Vec::new();
    for (file, kind, want) in cases {
        let (k, got) = bad(file);
        // Messages that list paths outside the fixtures (the roles path) or a module's
        // argument list are compared up to that point.
        let same = if want.ends_with(", ") || want.ends_with("supported: ") {
            got.starts_with(want)
        } else {
            got == *want
        };
        if k != *kind || !same {
            failures.push(format!(
                "{file}:\n  want {kind:?} {want}\n  got  {k:?} {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A missing role lists every place it was looked for, the playbook's roles/ first and the
/// playbook's folder last.
#[test]
fn missing_role_lists_where_it_looked() {
    let (_, got) = bad("missing_role.yml");
    assert!(got.ends_with(", F/bad/nosuchrole"), "{got}");
    assert!(got.contains("F/playbooks/roles/nosuchrole"), "{got}");
}
