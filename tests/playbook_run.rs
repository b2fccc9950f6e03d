//! `homelab apply`/`plan` end to end against real sshd hosts (two inventory hosts on one
//! throwaway OpenSSH server; every file a task writes lives under a temp folder).

mod common;
use common::*;
use std::path::{Path, PathBuf};

struct Setup {
    sshd: Sshd,
    root: tempfile::TempDir,
    home: tempfile::TempDir,
    inv: PathBuf,
    book: PathBuf,
}

fn setup(octet: u8, port: u16) -> Setup {
    let sshd = Sshd::start(octet, port);
    let root = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let inv = sshd.path("inv.ini");
    std::fs::write(
        &inv,
        format!(
            "[web]\nh1 {v}\nh2 {v}\n[all:vars]\nroot={}\n",
            root.path().display(),
            v = sshd.host_vars()
        ),
    )
    .unwrap();
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run/site.yml");
    Setup {
        sshd,
        root,
        home,
        inv,
        book,
    }
}

impl Setup {
    fn run(&self, sub: &str, extra: &[&str]) -> Run {
        self.run_env(sub, extra, &[])
    }

    fn run_env(&self, sub: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args = vec![
            sub,
            self.book.to_str().unwrap(),
            "-i",
            self.inv.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let home = self.home.path().display().to_string();
        let mut envs = vec![("HOME", home.as_str()), ("SSH_AUTH_SOCK", "")];
        envs.extend_from_slice(env);
        homelab(&args, &envs)
    }
    fn files(&self) -> Vec<(String, u32, Vec<u8>)> {
        snapshot(self.root.path())
    }
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.path().join(rel)).unwrap_or_default()
    }
}

fn snapshot(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut v = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            let data = if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                vec![]
            };
            v.push((
                e.path().display().to_string(),
                m.permissions().mode() & 0o7777,
                data,
            ));
        }
    }
    v.sort();
    v
}

#[test]
fn plan_apply_idempotence_and_json() {
    if !require_sshd() {
        return;
    }
    let s = setup(51, 2231);

    // plan on fresh hosts: every change shown, nothing changed.
    let r = s.run("plan", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("--- before: ") && r.stdout.contains("+++ after: "),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("+# h1\n") && r.stdout.contains("+line2=20\n"),
        "template diff: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("RUNNING HANDLER [restart app]"),
        "{}",
        r.stdout
    );
    assert!(
        s.files().is_empty(),
        "plan changed the hosts: {:?}",
        s.files()
    );
    assert!(field(recap_of(&r.stdout, "h1"), "changed") > 0);
    assert_eq!(field(recap_of(&r.stdout, "h1"), "rescued"), 1);

    // apply: the files, their modes, the handler.
    let r = s.run("apply", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(s.read("h1/a.conf"), "hello h1\nos=Linux\n");
    assert_eq!(
        s.read("h2/t.conf"),
        "# h2\nline1=10\nline2=20\nline3=30\ngroups=web\n"
    );
    assert_eq!(s.read("h1/s.ini"), "x=1\n");
    assert_eq!(s.read("h1/item-b"), "b\n");
    assert!(
        s.root.path().join("h1/restarted").exists(),
        "handler did not run"
    );
    assert!(!s.root.path().join("h1/never").exists() && !s.root.path().join("h1/tagged").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.root.path().join("h1/a.conf"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    let first = recap_of(&r.stdout, "h1").to_string();
    assert_eq!(field(&first, "failed"), 0, "{first}");
    assert_eq!(field(&first, "rescued"), 1, "{first}");
    assert_eq!(field(&first, "skipped"), 1, "{first}");
    // Templated become/ignore_errors/no_log, per host: h1's failure is ignored and shown, h2's
    // output is hidden.
    assert_eq!(field(&first, "ignored"), 1, "{first}");
    assert_eq!(
        field(recap_of(&r.stdout, "h2"), "ignored"),
        0,
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("secret-h1"), "{}", r.stdout);
    assert!(!r.stdout.contains("secret-h2"), "{}", r.stdout);

    // Second run: nothing changes, the handler is not notified.
    std::fs::remove_file(s.root.path().join("h1/restarted")).unwrap();
    let before = s.files();
    let r = s.run("apply", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in ["h1", "h2"] {
        assert_eq!(field(recap_of(&r.stdout, h), "changed"), 0, "{}", r.stdout);
    }
    assert_eq!(s.files(), before);

    // A plan with one variable changed shows exactly that line and changes nothing.
    let r = s.run("plan", &["-e", "x=2", "-l", "h1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("-x=1\n+x=2\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("h2"), "{}", r.stdout);
    assert_eq!(s.files(), before);

    // Tags: only the tagged task runs (and `never` runs when asked for).
    let r = s.run("apply", &["-t", "extra"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(s.root.path().join("h1/tagged").exists());
    assert!(!r.stdout.contains("TASK [host folder]"), "{}", r.stdout);

    // JSON events: one per line, each with host, task, status, duration.
    let r = s.run("apply", &["--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let mut results = 0;
    for line in r.stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["event"] == "task_result" {
            results += 1;
            assert!(
                v["host"].is_string() && v["task"].is_string() && v["duration_ms"].is_u64(),
                "{line}"
            );
        }
    }
    assert!(results >= 20, "{}", r.stdout);
    // One SSH login per host per run: 2 hosts x 5 runs + 1 host (-l h1).
    assert_eq!(
        s.sshd.log().matches("Accepted publickey").count(),
        11,
        "{}",
        s.sshd.log()
    );
}

#[test]
fn bad_playbooks_are_refused_before_any_host_is_touched() {
    if !require_sshd() {
        return;
    }
    let s = setup(52, 2232);
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "broken.yml",
            "- hosts: all\n  tasks:\n    - name: x\n      copy: {dest: /tmp/x\n",
            "broken.yml:",
        ),
        (
            "module.yml",
            "- hosts: all\n  tasks:\n    - ansible.builtin.cpy: {dest: /tmp/x, content: y}\n",
            "did you mean 'copy'",
        ),
        (
            "arg.yml",
            "- hosts: all\n  tasks:\n    - copy: {dest: /tmp/x, contnet: y}\n",
            "contnet",
        ),
        (
            "handler.yml",
            "- hosts: all\n  tasks:\n    - command: 'true'\n      notify: nope\n",
            "nope",
        ),
    ];
    for (name, text, expect) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let home = s.home.path().display().to_string();
        let r = homelab(
            &["apply", p.to_str().unwrap(), "-i", s.inv.to_str().unwrap()],
            &[("HOME", home.as_str())],
        );
        assert_eq!(r.code, 4, "{name}: {}", r.all());
        assert!(
            r.stderr.contains(expect),
            "{name}: expected '{expect}' in: {}",
            r.stderr
        );
    }
    assert_eq!(
        s.sshd.log().matches("Accepted publickey").count(),
        0,
        "a host was contacted"
    );
}

#[test]
fn run_time_errors_are_clear() {
    if !require_sshd() {
        return;
    }
    let s = setup(53, 2233);
    let dir = tempfile::tempdir().unwrap();
    let home = s.home.path().display().to_string();
    let run = |text: &str| {
        let p = dir.path().join("p.yml");
        std::fs::write(&p, text).unwrap();
        homelab(
            &["apply", p.to_str().unwrap(), "-i", s.inv.to_str().unwrap()],
            &[("HOME", home.as_str())],
        )
    };
    // A failing command: rc and stderr shown, exit 2, the next task does not run.
    let r = run("- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: 'echo no-such-thing >&2; exit 7'\n    - debug: {msg: after}\n");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("failed: [h1]")
            && r.stdout.contains("rc=7")
            && r.stdout.contains("no-such-thing"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("after"), "{}", r.stdout);
    // An undefined variable names the variable and where.
    let r =
        run("- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: \"{{ nope }}\"}\n");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("'nope' is undefined") && r.stdout.contains("p.yml:4"),
        "{}",
        r.stdout
    );
    // A `when` that is not a boolean.
    let r = run("- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: x}\n      when: \"'text'\"\n");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("Conditionals must have a boolean result"),
        "{}",
        r.stdout
    );
    // delegate_to the implicit localhost: refused with what to do instead, nothing runs locally.
    let marker = dir.path().join("ran-locally");
    let r = run(&format!("- hosts: all\n  gather_facts: false\n  tasks:\n    - command: touch {}\n      delegate_to: localhost\n", marker.display()));
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("over SSH only") && r.stdout.contains("ansible_host=127.0.0.1"),
        "{}",
        r.stdout
    );
    assert!(!marker.exists());
    // ignore_errors: the host goes on, the recap counts it.
    let r = run("- hosts: all\n  gather_facts: false\n  tasks:\n    - command: /bin/false\n      ignore_errors: true\n    - debug: {msg: went-on}\n");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("...ignoring") && r.stdout.contains("went-on"),
        "{}",
        r.stdout
    );
    assert_eq!(field(recap_of(&r.stdout, "h1"), "ignored"), 1);
}

/// The path cache (file tasks reading the next ones' paths in their round trip) changes no
/// result: the same runs with it and without it (`HOMELAB_PATH_CACHE=0`) print the same and leave
/// the same files.
#[test]
fn the_path_cache_changes_no_result() {
    if !require_sshd() {
        return;
    }
    let with = setup(42, 2212);
    let without = setup(43, 2213);
    let steps: [(&str, &[&str]); 5] = [
        ("plan", &[]),
        ("apply", &[]),
        ("apply", &[]),
        ("plan", &["-e", "line2=99"]),
        ("apply", &["-e", "line2=99"]),
    ];
    for (sub, extra) in steps {
        let a = with.run(sub, extra);
        let b = without.run_env(sub, extra, &[("HOMELAB_PATH_CACHE", "0")]);
        // Hosts report in the order they finish: each task's lines are compared as a set.
        let norm = |r: &Run, s: &Setup| {
            let text = r
                .stdout
                .replace(&s.root.path().display().to_string(), "ROOT");
            let mut sections: Vec<Vec<String>> = vec![];
            for line in text.lines() {
                let head = line.starts_with("TASK [") || line.starts_with("RUNNING HANDLER [");
                if head || sections.is_empty() {
                    sections.push(vec![]);
                }
                if let Some(s) = sections.last_mut() {
                    s.push(line.to_string());
                }
            }
            for s in &mut sections {
                s.sort();
            }
            sections
        };
        assert_eq!(a.code, b.code, "{sub} {extra:?}:\n{}\n{}", a.all(), b.all());
        assert_eq!(norm(&a, &with), norm(&b, &without), "{sub} {extra:?}");
        let rel = |s: &Setup| {
            let root = s.root.path().display().to_string();
            s.files()
                .into_iter()
                .map(|(p, m, d)| (p.replace(&root, "ROOT"), m, d))
                .collect::<Vec<_>>()
        };
        assert_eq!(rel(&with), rel(&without), "{sub} {extra:?}");
    }
}
