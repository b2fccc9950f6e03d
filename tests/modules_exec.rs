//! `script`, `wait_for` and `copy` of trees / `remote_src`, end to end: the real binary against a
//! throwaway sshd (127.0.0.71-74, ports 2271-2274). Every file a task writes lives under a temp
//! folder (`root`), and the fixtures are copied to a temp folder so a test may edit them.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

struct Setup {
    sshd: Sshd,
    root: tempfile::TempDir,
    home: tempfile::TempDir,
    /// A copy of tests/fixtures/modules_exec.
    book: tempfile::TempDir,
    inv: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn setup(octet: u8, port: u16) -> Setup {
    let sshd = Sshd::start(octet, port);
    let root = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let book = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/modules_exec"),
        book.path(),
    );
    let inv = sshd.path("inv.ini");
    std::fs::write(
        &inv,
        format!(
            "[lab]\nh1 {}\n[all:vars]\nroot={}\n",
            sshd.host_vars(),
            root.path().display()
        ),
    )
    .unwrap();
    Setup {
        sshd,
        root,
        home,
        book,
        inv,
    }
}

impl Setup {
    fn run(&self, sub: &str, playbook: &str, extra: &[&str]) -> Run {
        let p = self.book.path().join(playbook);
        let mut args = vec![sub, p.to_str().unwrap(), "-i", self.inv.to_str().unwrap()];
        args.extend_from_slice(extra);
        let home = self.home.path().display().to_string();
        homelab(&args, &[("HOME", home.as_str()), ("SSH_AUTH_SOCK", "")])
    }
    /// Writes a playbook into the fixtures' copy and runs it.
    fn run_text(&self, sub: &str, text: &str) -> Run {
        std::fs::write(self.book.path().join("adhoc.yml"), text).unwrap();
        self.run(sub, "adhoc.yml", &[])
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }
}

fn snapshot(dir: &Path) -> Vec<(String, u32, Vec<u8>, u64)> {
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
                m.ino(),
            ));
        }
    }
    v.sort();
    v
}

fn recap(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("h1") && l.contains(" : ok="))
        .unwrap_or_else(|| panic!("no recap line:\n{out}"))
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn script_runs_with_arguments_creates_and_cleans_up() {
    if !require_sshd() {
        return;
    }
    let s = setup(71, 2271);
    let r = s.run("apply", "script.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let line = recap(&r.stdout);
    assert_eq!(field(line, "failed"), 0, "{}", r.stdout);
    assert_eq!(field(line, "ignored"), 1, "{}", r.stdout);
    assert_eq!(field(line, "skipped"), 1, "{}", r.stdout);
    assert_eq!(s.read("made"), "ran\n", "creates= ran the script once");
    // The failure's output is shown.
    assert!(
        r.stdout.contains("something broke") && r.stdout.contains("rc=3"),
        "{}",
        r.stdout
    );
    // No upload is left in TMPDIR, after a good script and after a failing one.
    let left: Vec<_> = std::fs::read_dir(s.path("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "temp files left behind: {left:?}");

    // Check mode: the creates= script is skipped (it exists), the others do not run.
    let before = snapshot(s.root.path());
    let r = s.run("apply", "script.yml", &["--check"]);
    assert_eq!(
        snapshot(s.root.path()),
        before,
        "check mode ran a script: {}",
        r.all()
    );

    // A script that is not on the controller: a clear error, the host untouched.
    let r = s.run_text(
        "apply",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - script: no-such-script.sh arg\n",
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("could not find or access 'no-such-script.sh'")
            && r.stdout.contains("searched:"),
        "{}",
        r.stdout
    );
}

#[test]
fn wait_for_path_port_and_timeout() {
    if !require_sshd() {
        return;
    }
    let s = setup(72, 2272);
    let t0 = std::time::Instant::now();
    let r = s.run("apply", "wait.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(field(recap(&r.stdout), "failed"), 0, "{}", r.stdout);
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(25),
        "waited too long"
    );

    // A timeout fails with a message naming what was waited for, in about the time given.
    let missing = s.path("never");
    let t0 = std::time::Instant::now();
    let r = s.run_text(
        "apply",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for: path={} timeout=2\n",
            missing.display()
        ),
    );
    let took = t0.elapsed();
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains(&format!(
            "Timeout when waiting for file {}",
            missing.display()
        )),
        "{}",
        r.stdout
    );
    assert!(
        took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(15),
        "{took:?}"
    );
    let r = s.run_text(
        "apply",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for: {{host: {}, port: {}, state: stopped, timeout: 1}}\n",
            s.sshd.addr, s.sshd.port
        ),
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains(&format!(
            "Timeout when waiting for {}:{} to stop.",
            s.sshd.addr, s.sshd.port
        )),
        "{}",
        r.stdout
    );

    // wait_for changes nothing, so it runs in check mode too: the port is seen, the file's
    // timeout still fails.
    let r = s.run_text(
        "plan",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for: {{host: {}, port: {}, timeout: 5}}\n    - wait_for: {{path: {}, timeout: 1}}\n",
            s.sshd.addr,
            s.sshd.port,
            missing.display()
        ),
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(field(recap(&r.stdout), "ok"), 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("Timeout when waiting for file"),
        "{}",
        r.stdout
    );
}

#[test]
fn copy_trees_and_remote_src() {
    if !require_sshd() {
        return;
    }
    let s = setup(73, 2273);
    let r = s.run("apply", "tree.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(field(recap(&r.stdout), "changed"), 4, "{}", r.stdout);
    for (rel, want) in [
        ("out/a.txt", "alpha\n"),
        ("out/sub/b.txt", "beta\n"),
        ("out/sub/deep/c.txt", "gamma\n"),
        ("whole/tree/a.txt", "alpha\n"),
        ("whole/tree/sub/deep/c.txt", "gamma\n"),
        ("remote-a.txt", "alpha\n"),
        ("remote-tree/sub/b.txt", "beta\n"),
    ] {
        assert_eq!(s.read(rel), want, "{rel}");
    }
    assert!(s.path("out/empty").is_dir() && s.path("remote-tree/empty").is_dir());
    assert_eq!(mode(&s.path("out/sub/b.txt")), 0o640);
    assert_eq!(mode(&s.path("out/sub")), 0o750);
    assert_eq!(mode(&s.path("out")), 0o750);

    // Second run: nothing changes.
    let before = snapshot(s.root.path());
    let r = s.run("apply", "tree.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(field(recap(&r.stdout), "changed"), 0, "{}", r.stdout);
    assert_eq!(snapshot(s.root.path()), before);

    // One source file changes: --check and plan report it (and only it), changing nothing.
    std::fs::write(s.book.path().join("files/tree/sub/b.txt"), "beta 2\n").unwrap();
    let r = s.run("apply", "tree.yml", &["--check"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(field(recap(&r.stdout), "changed"), 2, "{}", r.stdout);
    let r = s.run("plan", "tree.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(field(recap(&r.stdout), "changed"), 2, "{}", r.stdout);
    assert!(
        r.stdout.contains("-beta\n+beta 2\n"),
        "the diff shows the file: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("out/sub/b.txt") && !r.stdout.contains("out/a.txt"),
        "only the changed file is listed: {}",
        r.stdout
    );
    assert_eq!(
        snapshot(s.root.path()),
        before,
        "check mode changed the host"
    );

    // Apply: only that file is rewritten (the others keep their inode), the remote copy of the
    // tree follows it.
    let r = s.run("apply", "tree.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(field(recap(&r.stdout), "changed"), 3, "{}", r.stdout);
    let after = snapshot(s.root.path());
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| {
            a.0.strip_prefix(&s.root.path().display().to_string())
                .unwrap_or(&a.0)
        })
        .collect();
    assert_eq!(
        changed,
        [
            "/out/sub/b.txt",
            "/remote-tree/sub/b.txt",
            "/whole/tree/sub/b.txt"
        ],
        "{changed:?}"
    );
    assert_eq!(s.read("remote-tree/sub/b.txt"), "beta 2\n");
    let r = s.run("apply", "tree.yml", &[]);
    assert_eq!(field(recap(&r.stdout), "changed"), 0, "{}", r.stdout);
    let all: Vec<String> = snapshot(s.root.path()).into_iter().map(|e| e.0).collect();
    assert!(
        !all.iter().any(|p| p.contains(".homelab-tmp")),
        "temp files left: {all:?}"
    );
}

#[test]
fn bad_input_is_refused_before_any_host_is_touched() {
    if !require_sshd() {
        return;
    }
    let s = setup(74, 2274);
    let cases: &[(&str, &str)] = &[
        (
            "- hosts: all\n  tasks:\n    - script:\n        cmd: hello.sh\n        creats: /x\n",
            "adhoc.yml:3:7: unsupported parameter for module script: 'creats' (did you mean 'creates'?)",
        ),
        (
            "- hosts: all\n  tasks:\n    - name: wait\n      wait_for: {path: /x, timout: 3}\n",
            "adhoc.yml:4:7: unsupported parameter for module wait_for: 'timout' (did you mean 'timeout'?)",
        ),
        (
            "- hosts: all\n  tasks:\n    - copy: {src: tree/, dest: /tmp/x, directory_mod: '0755'}\n",
            "adhoc.yml:3:7: unsupported parameter for module copy: 'directory_mod' (did you mean 'directory_mode'?)",
        ),
    ];
    for (text, want) in cases {
        let r = s.run_text("apply", text);
        assert_eq!(r.code, 4, "{}", r.all());
        assert!(
            r.stderr.contains(want),
            "expected '{want}' in: {}",
            r.stderr
        );
    }
    assert_eq!(
        s.sshd.log().matches("Accepted publickey").count(),
        0,
        "a host was contacted"
    );
    // Run-time input errors: clear messages, nothing written.
    let r = s.run_text(
        "apply",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for: {{path: /x, port: 22}}\n      ignore_errors: true\n    - copy: {{src: {}/nope/, dest: {}/x, remote_src: true}}\n",
            s.root.path().display(),
            s.root.path().display()
        ),
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("port and path parameter can not both be passed")
            && r.stdout.contains("does not exist on the host"),
        "{}",
        r.stdout
    );
    assert!(std::fs::read_dir(s.root.path()).unwrap().next().is_none());
}
