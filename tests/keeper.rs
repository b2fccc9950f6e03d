//! The connection keeper (`HOMELAB_PERSIST`): runs after the first reuse its SSH session instead
//! of connecting; a session is only reused for exactly the settings that made it; a dead session
//! or keeper is replaced; the keeper leaves when idle. Against a throwaway OpenSSH server.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Kept {
    sshd: Sshd,
    home: tempfile::TempDir,
    cp: tempfile::TempDir,
    root: tempfile::TempDir,
    book: PathBuf,
    inv: PathBuf,
}

impl Kept {
    fn new(octet: u8, port: u16) -> Kept {
        let sshd = Sshd::start(octet, port);
        let home = tempfile::tempdir().unwrap();
        let cp = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let inv = sshd.inventory(&["h1", "h2"]);
        let book = root.path().join("site.yml");
        std::fs::write(
            &book,
            format!(
                "- hosts: test\n  tasks:\n    - copy: {{dest: \"{}/{{{{ inventory_hostname }}}}\", content: \"x\\n\"}}\n    - command: echo done\n",
                root.path().display()
            ),
        )
        .unwrap();
        Kept {
            sshd,
            home,
            cp,
            root,
            book,
            inv,
        }
    }

    fn run(&self, persist: &str) -> Run {
        self.run_with(persist, &[])
    }

    fn run_with(&self, persist: &str, more: &[(&str, &str)]) -> Run {
        let home = self.home.path().display().to_string();
        let cp = self.cp.path().display().to_string();
        let mut env = vec![
            ("HOME", home.as_str()),
            ("SSH_AUTH_SOCK", ""),
            ("HOMELAB_PERSIST", persist),
            ("HOMELAB_CONTROL_DIR", cp.as_str()),
        ];
        env.extend_from_slice(more);
        homelab(
            &[
                "apply",
                self.book.to_str().unwrap(),
                "-i",
                self.inv.to_str().unwrap(),
            ],
            &env,
        )
    }

    /// SSH logins the server accepted so far.
    fn logins(&self) -> usize {
        self.sshd.log().matches("Accepted publickey").count()
    }

    fn socket(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.cp.path())
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "sock"))
    }

    fn keeper_running(&self) -> bool {
        let cp = self.cp.path().display().to_string();
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("__keeper") && c.contains(&cp)
            })
        })
    }

    fn wait_gone(&self, limit: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if !self.keeper_running() && self.socket().is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        // A keeper left by a failed test: stop it (its socket gone, it exits within 0.2 s).
        if let Some(s) = self.socket() {
            let _ = std::fs::remove_file(s);
        }
    }
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn runs_after_the_first_reuse_its_session_and_the_keeper_leaves_when_idle() {
    if !require_sshd() {
        return;
    }
    let k = Kept::new(187, 2387);
    let r = k.run("3");
    ok(&r);
    // Two inventory hosts on one server: a session each.
    assert_eq!(k.logins(), 2, "{}", k.sshd.log());
    assert!(k.keeper_running());
    let sock = k.socket().expect("the keeper's socket");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600);
    assert_eq!(mode(k.cp.path()), 0o700);
    for _ in 0..3 {
        ok(&k.run("3"));
    }
    assert_eq!(
        k.logins(),
        2,
        "later runs connected again:\n{}",
        k.sshd.log()
    );
    assert_eq!(
        std::fs::read_to_string(k.root.path().join("h1")).unwrap(),
        "x\n"
    );
    // Idle for its 3 seconds: gone, socket and all.
    assert!(k.wait_gone(Duration::from_secs(10)), "the keeper stayed");
    ok(&k.run("3"));
    assert_eq!(k.logins(), 4);
}

#[test]
fn a_session_serves_only_the_settings_that_made_it() {
    if !require_sshd() {
        return;
    }
    let k = Kept::new(188, 2388);
    ok(&k.run("30"));
    assert_eq!(k.logins(), 2);
    // Another key in known_hosts for this server: the next run checks the host key again (and
    // refuses it) rather than using the session the old file allowed.
    let other = k.sshd.path("other_key");
    keygen(&other, "");
    std::fs::write(
        &k.sshd.known_hosts,
        format!("[{}]:{} {}\n", k.sshd.addr, k.sshd.port, pubkey(&other)),
    )
    .unwrap();
    let r = k.run("30");
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains("host key") || r.all().contains("HOST KEY"),
        "{}",
        r.all()
    );
    // No connection runs without persistence either: HOMELAB_PERSIST=0 says the same.
    let direct = k.run("0");
    assert_eq!(direct.code, r.code, "{}", direct.all());
}

#[test]
fn a_lost_session_or_keeper_is_replaced() {
    if !require_sshd() {
        return;
    }
    let k = Kept::new(189, 2389);
    ok(&k.run("30"));
    assert_eq!(k.logins(), 2);
    // The server drops the kept connections (as after a reboot): the next run connects again.
    let listener = k.sshd.pid().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string));
        if ppid.as_deref() == Some(listener.as_str()) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &e.file_name().to_string_lossy()])
                .status();
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let r = k.run("30");
    ok(&r);
    assert_eq!(k.logins(), 4, "{}", k.sshd.log());
    // A keeper killed outright leaves its socket: the next run starts another.
    let _ = std::process::Command::new("pkill")
        .args(["-KILL", "-f", &k.cp.path().display().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(200));
    assert!(k.socket().is_some(), "the dead keeper's socket");
    ok(&k.run("30"));
    assert_eq!(k.logins(), 6);
    assert!(k.keeper_running());
}

#[test]
fn a_run_keeps_its_keeper_through_a_pause_longer_than_the_idle_time() {
    if !require_sshd() {
        return;
    }
    let k = Kept::new(190, 2390);
    std::fs::write(
        &k.book,
        "- hosts: test\n  tasks:\n    - command: echo one\n    - pause: {seconds: 3}\n    - command: echo two\n",
    )
    .unwrap();
    let r = k.run("1");
    ok(&r);
    for h in ["h1", "h2"] {
        assert_changed(&r, h, 2);
    }
    // No second login: the keeper stayed while the run was connected to it.
    assert_eq!(k.logins(), 2, "{}", k.sshd.log());
    assert!(k.wait_gone(Duration::from_secs(10)), "the keeper stayed");
}

#[test]
fn a_key_that_needs_its_passphrase_connects_without_a_keeper() {
    if !require_sshd() {
        return;
    }
    let k = Kept::new(191, 2391);
    // The server's client key, now encrypted (same key: authorized_keys still holds it).
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", "s3cret-pass", "-P", "", "-f"])
        .arg(&k.sshd.client_key)
        .status()
        .unwrap();
    assert!(st.success());
    let r = k.run_with("30", &[("HOMELAB_SSH_KEY_PASSPHRASE", "s3cret-pass")]);
    ok(&r);
    assert!(!k.keeper_running());
    assert!(k.socket().is_none());
}

#[test]
fn runs_at_the_same_time_share_the_kept_sessions() {
    if !require_sshd() {
        return;
    }
    let k = Kept::new(192, 2392);
    let at_once = |n: usize| -> Vec<Run> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n).map(|_| s.spawn(|| k.run("30"))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    // Runs that start together with no keeper: each may start one; all succeed.
    for r in at_once(3) {
        ok(&r);
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = k.logins();
    ok(&k.run("30"));
    assert_eq!(k.logins(), before, "{}", k.sshd.log());
    // Runs at once on a keeper: one session per host still.
    let runs = at_once(4);
    for r in &runs {
        ok(r);
        for h in ["h1", "h2"] {
            assert_eq!(field(recap_of(&r.stdout, h), "failed"), 0, "{}", r.all());
        }
    }
    assert_eq!(k.logins(), before, "{}", k.sshd.log());
}
