//! Privilege escalation with passwords on a lab host (node2): sudo with ansible_become_password
//! (a template in the inventory), su with the target user's password (on a plain channel and on a
//! terminal), become_user other than root with both, a become password for a NOPASSWD sudo; and
//! the refusals (wrong password, no sudo rule, no such user, -K without a terminal), each with a
//! clear message naming the host and nothing written. No password ever appears in any output
//! (also with -vvv and --output json) or in `ps` on the host.
//!
//! Setup (as root on node2, through the lab's own access): users hsu-pw (sudo rule with password)
//! and hsu-nosudo (no rule), both with passwords and the lab's key; a known root password. All of
//! it is undone at the end (root's password is put back as it was).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const HOST: &str = "node2";
const SUDO_PW: &str = "hsu-Pw-sudo-7Qx";
const NOSUDO_PW: &str = "hsu-Pw-nosudo-3Rk";
const ROOT_PW: &str = "hsu-Pw-root-9Lm";
const NOPASSWD_PW: &str = "hsu-Pw-unused-5Tz";
const ALL_PW: &[&str] = &[SUDO_PW, NOSUDO_PW, ROOT_PW, NOPASSWD_PW, "wrong-hsu-Pw-1"];

fn fixture(name: &str) -> String {
    fixture_in("lab", name)
}

fn root(cmd: &str) -> String {
    let r = lab_sh(HOST, cmd);
    assert_eq!(r.code, 0, "setup on {HOST} failed: {cmd}\n{}", r.all());
    r.stdout
}

/// The lab inventory's address for HOST and its connection settings ([lab:vars] but the user).
fn lab_connection() -> (String, Vec<String>) {
    let dir = std::env::var("HOMELAB_LAB_DIR").unwrap_or_else(|_| "/var/lib/homelab/lab".into());
    let text = std::fs::read_to_string(Path::new(&dir).join("inventory.ini"))
        .expect("the lab's inventory.ini");
    let mut addr = None;
    let mut vars = vec![];
    let mut in_vars = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_vars = l == "[lab:vars]";
            continue;
        }
        if in_vars && !l.is_empty() && !l.starts_with("ansible_user") {
            vars.push(l.to_string());
        }
        if let Some(rest) = l.strip_prefix(&format!("{HOST} ")) {
            addr = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("ansible_host="))
                .map(str::to_string);
        }
    }
    (addr.expect("node2's ansible_host"), vars)
}

/// Removes the users and the sudoers file, and puts root's password back, even when a test fails.
struct Cleanup {
    root_hash: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let r = lab_sh(
            HOST,
            &format!(
                "userdel -r hsu-pw 2>/dev/null; userdel -r hsu-nosudo 2>/dev/null; \
                 rm -f /etc/sudoers.d/hsu /root/hsu-sudo.txt /root/hsu-su.txt \
                 /root/hsu-sudo-big.txt /root/hsu-su-big.txt /root/hsu-nopasswd.txt /tmp/hsu-ps-*.txt /tmp/hsu-fail-*.txt; \
                 usermod -p '{}' root",
                self.root_hash
            ),
        );
        if r.code != 0 {
            eprintln!("cleanup on {HOST} failed:\n{}", r.all());
        }
    }
}

struct Env {
    inv: PathBuf,
    _dir: tempfile::TempDir,
    outputs: Vec<String>,
}

impl Env {
    fn run(&mut self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let inv = self.inv.display().to_string();
        let mut all = vec!["apply", "-i", &inv];
        all.extend_from_slice(args);
        let r = homelab(&all, env);
        self.outputs.push(r.all());
        r
    }

    fn file_exists(&self, path: &str) -> bool {
        let r = lab_sh(HOST, &format!("test -e {path} && echo yes || echo no"));
        assert_eq!(r.code, 0, "{}", r.all());
        r.stdout.lines().any(|l| l == "yes")
    }
}

/// A failed run: exit 2, the host named with the message, and the file not written.
fn assert_refused(e: &mut Env, host: &str, args: &[&str], env: &[(&str, &str)], msg: &[&str]) {
    let book = fixture("become_fail.yml");
    let mut all = vec![book.as_str(), "-l", host];
    all.extend_from_slice(args);
    let r = e.run(&all, env);
    assert_eq!(r.code, 2, "{args:?}: {}", r.all());
    let line = format!("failed: [{host}] => {host}: ");
    assert!(r.stdout.contains(&line), "{args:?}: {}", r.all());
    for m in msg {
        assert!(r.stdout.contains(m), "{args:?}: no '{m}' in:\n{}", r.all());
    }
    assert!(
        !e.file_exists(&format!("/tmp/hsu-fail-{host}.txt")),
        "{args:?} wrote the file"
    );
}

#[test]
fn become_with_passwords_sudo_and_su() {
    if !shared_lab() {
        return;
    }
    // Setup: the users, the sudo rule, a known root password (the old one is put back).
    let root_hash = root("getent shadow root | cut -d: -f2")
        .lines()
        .last()
        .unwrap_or("*")
        .trim()
        .to_string();
    assert!(!root_hash.contains('\''), "{root_hash}");
    let _cleanup = Cleanup { root_hash };
    root(&format!(
        "set -e; for u in hsu-pw hsu-nosudo; do id $u >/dev/null 2>&1 || useradd -m -s /bin/sh $u; \
         install -d -o $u -g $u -m 0700 /home/$u/.ssh; \
         install -o $u -g $u -m 0600 /home/homelab/.ssh/authorized_keys /home/$u/.ssh/authorized_keys; \
         done; \
         printf '%s\\n' 'hsu-pw:{SUDO_PW}' 'hsu-nosudo:{NOSUDO_PW}' 'root:{ROOT_PW}' | chpasswd; \
         echo 'hsu-pw ALL=(ALL) ALL' > /etc/sudoers.d/hsu.tmp; chmod 0440 /etc/sudoers.d/hsu.tmp; \
         visudo -cqf /etc/sudoers.d/hsu.tmp; mv /etc/sudoers.d/hsu.tmp /etc/sudoers.d/hsu"
    ));

    let (addr, vars) = lab_connection();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.ini");
    std::fs::write(
        &inv,
        format!(
            "hsu_pw ansible_host={addr} ansible_user=hsu-pw \
             ansible_become_password='{{{{ hsu_vault_pw }}}}' hsu_vault_pw={SUDO_PW}\n\
             hsu_nosudo ansible_host={addr} ansible_user=hsu-nosudo\n\
             hsu_lab ansible_host={addr} ansible_user=homelab ansible_become_password={NOPASSWD_PW} \
             ansible_become_flags='-H -S -n' ansible_become_exe=/usr/bin/sudo\n\
             \n[all:vars]\n{}\n",
            vars.join("\n")
        ),
    )
    .unwrap();
    let mut e = Env {
        inv,
        _dir: dir,
        outputs: vec![],
    };
    let pw_vars = [
        "-e",
        &format!("hsu_root_pw={ROOT_PW}"),
        "-e",
        &format!("hsu_nosudo_pw={NOSUDO_PW}"),
    ]
    .map(|s| s.to_string());
    let pw_vars: Vec<&str> = pw_vars.iter().map(String::as_str).collect();

    // Everything works: su on a plain channel, with -vvv.
    let ok = fixture("become_ok.yml");
    let mut args = vec![ok.as_str(), "-vvv"];
    args.extend(&pw_vars);
    let r = e.run(&args, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in ["hsu_pw", "hsu_lab"] {
        let recap = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{h} ")))
            .unwrap_or("");
        assert!(recap.contains("failed=0"), "{}", r.stdout);
    }
    // Again with su on a terminal, and --output json.
    let mut args = vec![ok.as_str(), "--output", "json"];
    args.extend(&pw_vars);
    let r = e.run(&args, &[("HOMELAB_SU_TERMINAL", "1")]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\"event\""), "{}", r.stdout);
    // Ad hoc, the inventory's templated password works too.
    let inv = e.inv.display().to_string();
    let r = homelab(&["run", "-i", &inv, "hsu_pw", "-b", "-a", "id -u"], &[]);
    e.outputs.push(r.all());
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.lines().any(|l| l == "0"), "{}", r.all());
    // ps on the host, taken while sudo and su ran, never showed a password.
    for f in ["/tmp/hsu-ps-sudo.txt", "/tmp/hsu-ps-su.txt"] {
        let ps = root(&format!("cat {f}"));
        assert!(ps.contains("ps -eo args"), "{f}: {ps}");
        for pw in ALL_PW {
            assert!(!ps.contains(pw), "{f} shows a password:\n{ps}");
        }
    }

    // Refusals: each names the host and says what to do; nothing is written.
    assert_refused(
        &mut e,
        "hsu_pw",
        &["-e", "ansible_become_password=wrong-hsu-Pw-1"],
        &[],
        &["sudo refused the become password (incorrect password)"],
    );
    assert_refused(
        &mut e,
        "hsu_nosudo",
        &["-e", &format!("ansible_become_password={NOSUDO_PW}")],
        &[],
        &["hsu-nosudo is not in the sudoers file", "/etc/sudoers.d"],
    );
    assert_refused(
        &mut e,
        "hsu_nosudo",
        &[],
        &[],
        &["sudo needs a password and none was given: pass -K"],
    );
    assert_refused(
        &mut e,
        "hsu_pw",
        &["-e", "ansible_become_user=hsu-ghost"],
        &[],
        &[
            "cannot become user 'hsu-ghost': no such user",
            "sudo: unknown user",
        ],
    );
    assert_refused(
        &mut e,
        "hsu_pw",
        &[
            "-e",
            "ansible_become_method=su",
            "-e",
            "ansible_become_password=wrong-hsu-Pw-1",
        ],
        &[],
        &["su refused the become password (su: Authentication failure)"],
    );
    assert_refused(
        &mut e,
        "hsu_pw",
        &[
            "-e",
            "ansible_become_method=su",
            "-e",
            "ansible_become_password=wrong-hsu-Pw-1",
        ],
        &[("HOMELAB_SU_TERMINAL", "1")],
        &["su refused the become password (su: Authentication failure)"],
    );
    assert_refused(
        &mut e,
        "hsu_pw",
        &[
            "-e",
            "ansible_become_method=su",
            "-e",
            "ansible_become_user=hsu-ghost",
        ],
        &[],
        &["cannot become user 'hsu-ghost': no such user"],
    );

    // -K asks on the terminal; without one (and without HOMELAB_BECOME_PASSWORD) it says so.
    let o = Command::new("setsid")
        .arg(bin())
        .args(["apply", "-i"])
        .arg(&e.inv)
        .args([fixture("become_fail.yml").as_str(), "-l", "hsu_pw", "-K"])
        .env_remove("HOMELAB_BECOME_PASSWORD")
        .env("HOMELAB_PERSIST", "0")
        .stdin(Stdio::null())
        .output()
        .expect("setsid runs homelab");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_ne!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("-K needs a terminal"), "{all}");
    assert!(!e.file_exists("/tmp/hsu-fail-hsu_pw.txt"));
    e.outputs.push(all);

    // No password in anything printed.
    for out in &e.outputs {
        for pw in ALL_PW {
            assert!(!out.contains(pw), "a password leaked:\n{out}");
        }
    }
}
