//! stat, find, slurp and fetch end to end: the real binary applies the playbooks of
//! tests/fixtures/modules_read to two inventory hosts on one throwaway sshd. The host's files live
//! in a temp folder; fetch writes into another.

mod common;
use common::*;
use std::path::{Path, PathBuf};

struct Setup {
    sshd: Sshd,
    root: tempfile::TempDir,
    fetched: tempfile::TempDir,
    home: tempfile::TempDir,
    inv: PathBuf,
}

fn setup(octet: u8, port: u16) -> Setup {
    let sshd = Sshd::start(octet, port);
    let root = tempfile::tempdir().unwrap();
    let fetched = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let inv = sshd.path("inv.ini");
    std::fs::write(
        &inv,
        format!(
            "[lab]\nh1 {v}\nh2 {v}\n[all:vars]\nroot={}\nfetched={}\n",
            root.path().display(),
            fetched.path().display(),
            v = sshd.host_vars()
        ),
    )
    .unwrap();
    Setup {
        sshd,
        root,
        fetched,
        home,
        inv,
    }
}

impl Setup {
    fn run(&self, book: &str, extra: &[&str]) -> Run {
        let book = fixture(book);
        let mut args = vec![
            "apply",
            book.to_str().unwrap(),
            "-i",
            self.inv.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let home = self.home.path().display().to_string();
        homelab(&args, &[("HOME", home.as_str()), ("SSH_AUTH_SOCK", "")])
    }

    fn tree(&self) -> PathBuf {
        self.root.path().join("tree")
    }

    /// The tree read.yml expects.
    fn make_tree(&self) {
        use std::os::unix::fs::PermissionsExt;
        let t = self.tree();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        std::fs::create_dir_all(t.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(t.join(".cache")).unwrap();
        mode(&t.join("sub"), 0o750);
        std::fs::write(t.join("a.txt"), "alpha\nneedle\n").unwrap();
        mode(&t.join("a.txt"), 0o640);
        std::fs::write(t.join("old.log"), "old\n").unwrap();
        std::fs::write(t.join("big.bin"), vec![7u8; 20_480]).unwrap();
        mode(&t.join("big.bin"), 0o644);
        std::fs::write(t.join(".hidden.txt"), "needle\n").unwrap();
        std::fs::write(t.join(".cache/x.txt"), "x\n").unwrap();
        std::fs::write(t.join("sub/c.txt"), "gamma needle\n").unwrap();
        std::fs::write(t.join("sub/deeper/d.txt"), "needle\n").unwrap();
        std::os::unix::fs::symlink("a.txt", t.join("link")).unwrap();
        let st = std::process::Command::new("touch")
            .args(["-d", "2001-02-03 04:05:06"])
            .arg(t.join("old.log"))
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn fetched_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut v = vec![];
        let mut stack = vec![self.fetched.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(self.fetched.path()).unwrap();
                    v.push((rel.display().to_string(), std::fs::read(&p).unwrap()));
                }
            }
        }
        v.sort();
        v
    }

    fn logins(&self) -> usize {
        self.sshd.log().matches("Accepted publickey").count()
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/modules_read")
        .join(name)
}

fn changed(r: &Run, host: &str) -> u32 {
    field(recap_of(&r.stdout, host), "changed")
}

#[test]
fn stat_find_slurp_and_fetch_in_check_apply_and_again() {
    if !require_sshd() {
        return;
    }
    let s = setup(61, 2261);
    s.make_tree();
    let tree = s.tree().display().to_string();

    // Check mode: every read assert holds (real data), fetch reports its 3 changes, writes nothing.
    let r = s.run("read.yml", &["--check"]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in ["h1", "h2"] {
        assert_eq!(changed(&r, h), 3, "{}", r.stdout);
        assert_eq!(field(recap_of(&r.stdout, h), "failed"), 0, "{}", r.stdout);
    }
    assert!(
        s.fetched_files().is_empty(),
        "--check wrote: {:?}",
        s.fetched_files()
    );

    // Apply: the three fetches per host, where Ansible puts them.
    let r = s.run("read.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in ["h1", "h2"] {
        assert_eq!(changed(&r, h), 3, "{}", r.stdout);
    }
    let alpha = b"alpha\nneedle\n".to_vec();
    let gamma = b"gamma needle\n".to_vec();
    let big = vec![7u8; 20_480];
    let want = vec![
        ("flat-h1.txt".to_string(), gamma.clone()),
        ("flat-h2.txt".to_string(), gamma.clone()),
        ("h1-dir/big.bin".to_string(), big.clone()),
        (format!("h1{tree}/a.txt"), alpha.clone()),
        ("h2-dir/big.bin".to_string(), big.clone()),
        (format!("h2{tree}/a.txt"), alpha.clone()),
    ];
    assert_eq!(s.fetched_files(), want);

    // Again: nothing changes.
    let r = s.run("read.yml", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in ["h1", "h2"] {
        assert_eq!(changed(&r, h), 0, "{}", r.stdout);
    }
    assert_eq!(s.fetched_files(), want);

    // The host's file changes: check mode sees it and leaves the local copy; apply fetches it.
    std::fs::write(s.tree().join("sub/c.txt"), "gamma needle 2\n").unwrap();
    let r = s.run("read.yml", &["--check", "-l", "h1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(changed(&r, "h1"), 1, "{}", r.stdout);
    assert_eq!(s.fetched_files(), want);
    let r = s.run("read.yml", &["-l", "h1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(changed(&r, "h1"), 1, "{}", r.stdout);
    assert_eq!(
        std::fs::read(s.fetched.path().join("flat-h1.txt")).unwrap(),
        b"gamma needle 2\n"
    );
    assert_eq!(
        std::fs::read(s.fetched.path().join("flat-h2.txt")).unwrap(),
        gamma
    );
    let leftovers: Vec<_> = s
        .fetched_files()
        .into_iter()
        .filter(|(p, _)| p.contains("homelab-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_arguments_are_refused_before_any_host_is_touched() {
    if !require_sshd() {
        return;
    }
    let s = setup(62, 2262);
    let cases = [
        (
            "bad_stat.yml",
            ":5:7: unsupported parameter for module stat: 'get_checksun' (did you mean 'get_checksum'?)",
        ),
        (
            "bad_find.yml",
            ":5:7: unsupported parameter for module find: 'recursive'",
        ),
        (
            "bad_fetch.yml",
            ":4:7: unsupported parameter for module fetch: 'flatt' (did you mean 'flat'?)",
        ),
    ];
    for (book, expect) in cases {
        let r = s.run(book, &[]);
        assert_eq!(r.code, 4, "{book}: {}", r.all());
        let want = format!("{book}{expect}");
        assert!(
            r.stderr.contains(&want),
            "{book}: expected '{want}' in: {}",
            r.stderr
        );
        assert!(r.stderr.contains("supported: "), "{}", r.stderr);
    }
    assert_eq!(s.logins(), 0, "a host was contacted: {}", s.sshd.log());
}

#[test]
fn run_time_failures_are_clear() {
    if !require_sshd() {
        return;
    }
    let s = setup(63, 2263);
    let r = s.run("failures.yml", &["-l", "h1"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let recap = recap_of(&r.stdout, "h1");
    assert_eq!(field(recap, "failed"), 1, "{}", r.stdout);
    assert_eq!(field(recap, "ignored"), 4, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("file not found: /nonexistent/homelab-missing.txt"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("failed to process age 'yesterday'"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("not reached"), "{}", r.stdout);
    assert!(
        s.fetched_files().is_empty(),
        "a missing file was fetched: {:?}",
        s.fetched_files()
    );
}
