//! Engine behaviours that follow Ansible: looped includes, task names templated, host patterns
//! naming unknown groups, run_once failures. Two inventory hosts on one throwaway OpenSSH server
//! (127.0.0.18x); the playbooks only print, nothing is written on the hosts.

mod common;
use common::*;
use std::path::PathBuf;

struct Eng {
    /// Kept running for the test.
    _sshd: Sshd,
    home: tempfile::TempDir,
    dir: tempfile::TempDir,
    inv: PathBuf,
}

impl Eng {
    fn new(octet: u8, port: u16) -> Eng {
        let sshd = Sshd::start(octet, port);
        let home = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let inv = sshd.path("inv.ini");
        std::fs::write(
            &inv,
            format!("[k8s]\nh1 {v}\nh2 {v}\n", v = sshd.host_vars()),
        )
        .unwrap();
        Eng {
            _sshd: sshd,
            home,
            dir,
            inv,
        }
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }
    fn run(&self, book: &str, extra: &[&str]) -> Run {
        let p = self.dir.path().join(book);
        let mut args = vec![
            "apply",
            p.to_str().unwrap(),
            "-i",
            self.inv.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let home = self.home.path().display().to_string();
        homelab(&args, &[("HOME", home.as_str()), ("SSH_AUTH_SOCK", "")])
    }
}

#[test]
fn looped_includes_run_once_per_item() {
    if !require_sshd() {
        return;
    }
    let s = Eng::new(181, 2381);
    s.write("inc.yml", "- debug: {msg: \"inc {{ item }}\"}\n");
    s.write("inc_var.yml", "- debug: {msg: \"var {{ pkg }} {{ i }}\"}\n");
    s.write(
        "roles/greet/tasks/main.yml",
        "- debug: {msg: \"role {{ item }}\"}\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - include_tasks: inc.yml\n      loop: [a, b]\n\
         \x20   - include_tasks: inc_var.yml\n      loop: [x, y]\n      loop_control: {loop_var: pkg, index_var: i}\n\
         \x20   - include_tasks: inc.yml\n      loop: [c, d]\n      when: item == 'd'\n\
         \x20   - include_role: {name: greet}\n      loop: [r1, r2]\n",
    );
    let r = s.run("site.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for want in [
        "inc a", "inc b", "var x 0", "var y 1", "inc d", "role r1", "role r2",
    ] {
        assert_eq!(
            r.stdout.matches(&format!("\"msg\": \"{want}\"")).count(),
            2,
            "'{want}' once per host:\n{}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains("inc c"), "{}", r.stdout);
    // In order: every host through item a before item b.
    let a = r.stdout.rfind("inc a").unwrap();
    let b = r.stdout.find("inc b").unwrap();
    assert!(a < b, "{}", r.stdout);
    assert!(!r.stdout.contains("undefined"), "{}", r.stdout);
}

#[test]
fn task_names_are_templated() {
    if !require_sshd() {
        return;
    }
    let s = Eng::new(182, 2382);
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  vars: {pv: PLAYV}\n  tasks:\n\
         \x20   - name: \"x {{ pv }}\"\n      debug: {msg: hi}\n\
         \x20   - name: \"e {{ ev }} on {{ inventory_hostname }}\"\n      debug: {msg: hi}\n\
         \x20   - name: \"u {{ nope }}\"\n      debug: {msg: hi}\n\
         \x20   - name: \"l {{ pv | lower }}\"\n      debug: {msg: hi}\n      loop: [1]\n",
    );
    let r = s.run("site.yml", &["-e", "ev=EXTRA"]);
    assert_eq!(r.code, 0, "{}", r.all());
    for want in [
        "TASK [x PLAYV]",
        "TASK [e EXTRA on h1]",
        "TASK [u {{ nope }}]",
        "TASK [l playv]",
    ] {
        assert!(r.stdout.contains(want), "{want}:\n{}", r.stdout);
    }
    let r = s.run("site.yml", &["-e", "ev=EXTRA", "--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let names: Vec<String> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "task_start")
        .map(|v| v["task"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        names,
        ["x PLAYV", "e EXTRA on h1", "u {{ nope }}", "l playv"],
        "{}",
        r.stdout
    );
}

#[test]
fn host_patterns_naming_unknown_groups_are_ignored_with_a_warning() {
    if !require_sshd() {
        return;
    }
    let s = Eng::new(183, 2383);
    s.write(
        "site.yml",
        "- hosts: k8s:lb\n  gather_facts: false\n  tasks:\n    - debug: {msg: first-play}\n\
         - hosts: lb\n  gather_facts: false\n  tasks:\n    - debug: {msg: never}\n\
         - hosts: 'all:&lb'\n  gather_facts: false\n  tasks:\n    - debug: {msg: never}\n\
         - hosts: k8s\n  gather_facts: false\n  tasks:\n    - debug: {msg: last-play}\n",
    );
    let r = s.run("site.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("[WARNING]: Could not match supplied host pattern, ignoring: lb"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout.matches("first-play").count(), 2, "{}", r.stdout);
    assert_eq!(r.stdout.matches("last-play").count(), 2, "{}", r.stdout);
    assert!(!r.stdout.contains("never"), "{}", r.stdout);
    assert!(
        r.all().contains("skipping: no hosts matched"),
        "{}",
        r.all()
    );
    for h in ["h1", "h2"] {
        let line = recap_of(&r.stdout, h);
        assert_eq!(field(line, "ok"), 2, "{line}");
        assert_eq!(field(line, "failed"), 0, "{line}");
    }
    // --limit with an unknown name stays an error.
    let r = s.run("site.yml", &["--limit", "nope"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("nope"), "{}", r.all());
    assert!(!r.stdout.contains("first-play"), "{}", r.stdout);
}

#[test]
fn a_failed_run_once_task_fails_every_host_of_the_batch() {
    if !require_sshd() {
        return;
    }
    let s = Eng::new(184, 2384);
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - fail: {msg: boom}\n      run_once: true\n\
         \x20   - debug: {msg: after}\n",
    );
    let r = s.run("site.yml", &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(!r.stdout.contains("after"), "{}", r.stdout);
    for h in ["h1", "h2"] {
        let line = recap_of(&r.stdout, h);
        assert_eq!(field(line, "failed"), 1, "{line}");
        assert_eq!(field(line, "ok"), 0, "{line}");
    }
    // In a block, every host of the batch is rescued; a passing run_once task counts once.
    s.write(
        "rescue.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - block:\n        - fail: {msg: boom}\n          run_once: true\n\
         \x20     rescue:\n        - debug: {msg: \"rescued {{ inventory_hostname }}\"}\n\
         \x20   - debug: {msg: once}\n      run_once: true\n",
    );
    let r = s.run("rescue.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in ["h1", "h2"] {
        assert!(r.stdout.contains(&format!("rescued {h}")), "{}", r.stdout);
        let line = recap_of(&r.stdout, h);
        assert_eq!(field(line, "failed"), 0, "{line}");
        assert_eq!(field(line, "rescued"), 1, "{line}");
    }
    assert_eq!(field(recap_of(&r.stdout, "h1"), "ok"), 2);
    assert_eq!(field(recap_of(&r.stdout, "h2"), "ok"), 1);
}

#[test]
fn include_when_is_not_repeated_on_included_tasks_and_apply_reaches_them() {
    if !require_sshd() {
        return;
    }
    let s = Eng::new(185, 2385);
    s.write(
        "once.yml",
        "- set_fact: {done: true}\n- debug: {msg: \"second {{ done }}\"}\n",
    );
    s.write(
        "failing.yml",
        "- fail: {msg: inner}\n- debug: {msg: \"inner-after {{ z }}\"}\n",
    );
    s.write(
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - include_tasks: once.yml\n      when: done is not defined\n\
         \x20   - include_tasks:\n        file: failing.yml\n        apply: {ignore_errors: true, vars: {z: applied}}\n\
         \x20   - debug: {msg: end}\n",
    );
    let r = s.run("site.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for want in ["second True", "inner-after applied", "end"] {
        assert_eq!(
            r.stdout.matches(&format!("\"msg\": \"{want}\"")).count(),
            2,
            "'{want}' once per host:\n{}",
            r.stdout
        );
    }
    for h in ["h1", "h2"] {
        let line = recap_of(&r.stdout, h);
        assert_eq!(field(line, "failed"), 0, "{line}");
        assert_eq!(field(line, "ignored"), 1, "{line}");
    }
}

/// A file task reads the paths of the file tasks after it in the same round trip (the path
/// cache); nothing that may have changed the host since may let a later task see the old state.
#[test]
fn file_tasks_see_every_change_made_before_them() {
    if !require_sshd() {
        return;
    }
    let s = Eng::new(186, 2386);
    let root = tempfile::tempdir().unwrap();
    let r = root.path().display().to_string();
    // Each host works in its own folder. Between two copies of the same content, a command
    // changes the file behind the engine's back; lineinfile twice on one file; a debug and a
    // set_fact in between (they keep what was read); a file task that removes what the next
    // copy writes; a copy into a folder a command made.
    s.write(
        "site.yml",
        &format!(
            r#"- hosts: k8s
  vars: {{d: "{r}/{{{{ inventory_hostname }}}}"}}
  tasks:
    - file: {{path: "{{{{ d }}}}", state: directory}}
    - copy: {{dest: "{{{{ d }}}}/a", content: "one\n"}}
    - copy: {{dest: "{{{{ d }}}}/b", content: "bee\n"}}
    - command: sh -c 'echo changed > {{{{ d }}}}/a; mkdir -p {{{{ d }}}}/sub'
      changed_when: false
    - copy: {{dest: "{{{{ d }}}}/a", content: "one\n"}}
      register: again
    - copy: {{dest: "{{{{ d }}}}/sub/c", content: "c\n"}}
    - debug: {{msg: "between"}}
    - set_fact: {{x: 1}}
    - lineinfile: {{path: "{{{{ d }}}}/l", line: "first", create: true}}
    - lineinfile: {{path: "{{{{ d }}}}/l", line: "second"}}
    - file: {{path: "{{{{ d }}}}/b", state: absent}}
    - copy: {{dest: "{{{{ d }}}}/b", content: "bee\n"}}
      register: b
    - assert:
        that: [again is changed, b is changed]
"#
        ),
    );
    let out = s.run("site.yml", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    for h in ["h1", "h2"] {
        let line = recap_of(&out.stdout, h);
        // file, copy a, copy b, copy a again, sub/c, lineinfile x2, file absent, copy b.
        assert_eq!(field(line, "changed"), 9, "{line}");
        let dir = root.path().join(h);
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "one\n");
        assert_eq!(std::fs::read_to_string(dir.join("sub/c")).unwrap(), "c\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("l")).unwrap(),
            "first\nsecond\n"
        );
        assert_eq!(std::fs::read_to_string(dir.join("b")).unwrap(), "bee\n");
    }
    // Nothing reads facts here: none were gathered (-v says so).
    assert!(!out.stdout.contains("Gathering Facts"), "{}", out.stdout);
    // The same run again changes nothing, in check mode neither; a command's change is seen.
    let again = s.run("site.yml", &["-v"]);
    assert!(
        again.stdout.contains("Gathering Facts skipped"),
        "{}",
        again.stdout
    );
    for h in ["h1", "h2"] {
        // The command rewrites a; the copy after it puts it back (and b is removed and
        // written again): exactly those three change.
        assert_eq!(
            field(recap_of(&again.stdout, h), "changed"),
            3,
            "{}",
            again.all()
        );
    }
}
