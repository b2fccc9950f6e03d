//! `homelab lab`: real hosts with systemd-nspawn, driven through the real binary.
//!
//! The lab test needs root. Without root it fails when `CI` is set and is skipped (with a note)
//! otherwise. It uses its own lab directory (HOMELAB_LAB_DIR under a temp dir) but the normal cache,
//! so the root filesystem is built only once per machine. There is one lab per machine: a lab
//! already running when this test starts is replaced.

use homelab::lab::{BRIDGE, CGROUP_PREFIX, MOUNT_SOURCE_PREFIX, NFT_TABLE};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_homelab");

/// There is one lab per machine (one bridge, one subnet): the lab tests take turns.
static LAB_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lab_turn() -> std::sync::MutexGuard<'static, ()> {
    LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|u| u.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// True when the test may go on; false (after a note) when it must be skipped.
fn root_or_skip(test: &str) -> bool {
    if euid() == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root and CI is set: run the tests as root");
    }
    eprintln!("SKIPPED {test}: needs root (makes bridges, mounts and containers); run as root");
    false
}

fn text(o: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A lab in its own directory; `lab down` on drop, so a failing test still cleans up.
struct Lab {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let tmp = tempfile::Builder::new()
            .prefix("homelab-lab-test.")
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().join("lab");
        Lab { _tmp: tmp, dir }
    }

    fn homelab(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("HOMELAB_LAB_DIR", &self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run homelab")
    }

    fn ok(&self, args: &[&str]) -> (String, Duration) {
        let t = Instant::now();
        let o = self.homelab(args);
        let took = t.elapsed();
        assert!(o.status.success(), "homelab {args:?} failed:\n{}", text(&o));
        (String::from_utf8_lossy(&o.stdout).into_owned(), took)
    }

    /// Runs `command` on `addr` as the lab user with OpenSSH, verifying the host key against the
    /// lab's known_hosts only.
    fn ssh_with(&self, known_hosts: &Path, addr: &str, command: &str) -> Output {
        Command::new("ssh")
            .args(["-F", "/dev/null", "-i"])
            .arg(self.dir.join("id_ed25519"))
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=10",
            ])
            .arg(format!("homelab@{addr}"))
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh")
    }

    fn ssh(&self, addr: &str, command: &str) -> Output {
        self.ssh_with(&self.dir.join("known_hosts"), addr, command)
    }

    /// (hostname, boot_id) of the host at `addr`, checking passwordless sudo on the way.
    fn probe(&self, addr: &str) -> (String, String) {
        let o = self.ssh(
            addr,
            "hostname; sudo -n true; cat /proc/sys/kernel/random/boot_id",
        );
        assert!(o.status.success(), "ssh to {addr} failed:\n{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "unexpected output from {addr}: {out}");
        (lines[0].to_string(), lines[1].to_string())
    }

    /// (name, address) of every host in inventory.ini's [lab] group.
    fn inventory_hosts(&self) -> Vec<(String, String)> {
        let inv = std::fs::read_to_string(self.dir.join("inventory.ini")).expect("inventory.ini");
        let mut hosts = Vec::new();
        let mut in_lab = false;
        for line in inv.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_lab = line == "[lab]";
                continue;
            }
            if in_lab && !line.is_empty() && !line.starts_with('#') {
                let mut parts = line.split_whitespace();
                let name = parts.next().unwrap_or_default().to_string();
                let addr = parts
                    .find_map(|p| p.strip_prefix("ansible_host="))
                    .unwrap_or_else(|| panic!("no ansible_host in {line}"))
                    .to_string();
                hosts.push((name, addr));
            }
        }
        assert!(
            inv.contains("[lab:vars]\nansible_user=homelab\n"),
            "inventory vars:\n{inv}"
        );
        assert!(inv.contains(&format!(
            "ansible_ssh_common_args='-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes'",
            self.dir.join("known_hosts").display()
        )));
        hosts
    }

    /// Pids of this lab's supervisors.
    fn supervisors(&self) -> Vec<u32> {
        let dir = self.dir.to_string_lossy().into_owned();
        pids_where(|args| args.iter().any(|a| a == "__supervise") && args.contains(&dir))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let o = self.homelab(&["lab", "down"]);
        if !o.status.success() {
            eprintln!("lab down in cleanup failed:\n{}", text(&o));
        }
    }
}

fn pids_where(pred: impl Fn(&[String]) -> bool) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        if !args.is_empty() && pred(&args) {
            out.push(pid);
        }
    }
    out
}

/// Everything a lab leaves on the machine while it exists; empty after `lab down`.
fn traces(lab_dir: &Path) -> Vec<String> {
    let mut t = Vec::new();
    if Path::new("/sys/class/net").join(BRIDGE).exists() {
        t.push(format!("bridge {BRIDGE}"));
    }
    let nft = Command::new("nft")
        .args(["list", "table", "ip", NFT_TABLE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if nft {
        t.push(format!("nft table {NFT_TABLE}"));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let lab = lab_dir.to_string_lossy();
    for l in mountinfo.lines() {
        if l.contains(&*lab) || l.contains(&format!(" overlay {MOUNT_SOURCE_PREFIX}")) {
            t.push(format!("mount: {l}"));
        }
    }
    for root in [
        "/sys/fs/cgroup/systemd",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ] {
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(CGROUP_PREFIX) {
                    t.push(format!("cgroup {}", e.path().display()));
                }
            }
        }
    }
    for p in pids_where(|a| {
        a.iter()
            .any(|x| x.starts_with("--setenv=HOMELAB_LAB_HOST=") || x == "__supervise")
    }) {
        t.push(format!("process {p}"));
    }
    t
}

/// Every pid in a cgroup tree of the systemd hierarchy.
fn cgroup_pids(cgroup: &str) -> Vec<u32> {
    fn walk(dir: &Path, out: &mut Vec<u32>) {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new("/sys/fs/cgroup/systemd").join(cgroup), &mut out);
    out
}

fn read_ip_forward() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn lab_up_ssh_reboot_stale_state_and_down() {
    if !root_or_skip("lab_up_ssh_reboot_stale_state_and_down") {
        return;
    }
    let _turn = lab_turn();
    let lab = Lab::new();
    // Whatever lab exists is replaced; the value to expect back is the one before any lab.
    let _ = Command::new(BIN)
        .args(["lab", "down"])
        .stdout(Stdio::null())
        .status();
    let forward_before = read_ip_forward();

    // Up: inventory with two hosts, each reachable with the lab's key and known_hosts only.
    let (out, took) = lab.ok(&["lab", "up", "2"]);
    eprintln!("lab up 2 took {took:?}:\n{out}");
    let hosts = lab.inventory_hosts();
    assert_eq!(hosts.len(), 2, "inventory hosts: {hosts:?}");
    let mut boot_ids = Vec::new();
    for (name, addr) in &hosts {
        let (hostname, boot) = lab.probe(addr);
        assert_eq!(&hostname, name);
        boot_ids.push(boot);
    }
    assert_ne!(hosts[0].0, hosts[1].0);
    assert_ne!(boot_ids[0], boot_ids[1]);
    // The host key check is real: without the lab's known_hosts, strict checking refuses.
    let refused = lab.ssh_with(Path::new("/dev/null"), &hosts[0].1, "true");
    assert!(!refused.status.success(), "ssh without known_hosts worked");

    // Reboot: a new boot id, back within a minute, services (sshd) included.
    let (_, addr2) = &hosts[1];
    let t = Instant::now();
    let _ = lab.ssh(addr2, "sudo systemctl reboot");
    let new_boot = loop {
        let o = lab.ssh(addr2, "cat /proc/sys/kernel/random/boot_id");
        let b = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if o.status.success() && !b.is_empty() && b != boot_ids[1] {
            break b;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{addr2} did not come back with a new boot id within 60 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("reboot: new boot id {new_boot} after {:?}", t.elapsed());
    let (status, _) = lab.ok(&["lab", "status"]);
    assert!(status.contains(&new_boot), "status:\n{status}");

    // Up again with the same count: nothing to do, quickly.
    let (out, took) = lab.ok(&["lab", "up", "2"]);
    assert!(out.contains("already running"), "second up:\n{out}");
    assert!(took < Duration::from_secs(15), "second up took {took:?}");
    assert_eq!(
        lab.probe(&hosts[0].1).1,
        boot_ids[0],
        "second up restarted node1"
    );

    // A killed lab: supervisors gone; node1 killed outright like a stopped session kills it
    // (nspawn and every process of the host), node2 left running orphaned; mounts, cgroups,
    // bridge, table and ip_forward all left. Up cleans it and starts anew.
    let sups = lab.supervisors();
    assert_eq!(sups.len(), 2, "supervisors: {sups:?}");
    let mut victims = sups.clone();
    victims.extend(cgroup_pids(&format!("{CGROUP_PREFIX}{}", hosts[0].0)));
    for p in &victims {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
    let t = Instant::now();
    while !lab.supervisors().is_empty() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !traces(&lab.dir).is_empty(),
        "killing the supervisors should leave state"
    );
    let (out, took) = lab.ok(&["lab", "up", "2"]);
    eprintln!("lab up 2 over a killed lab took {took:?}:\n{out}");
    assert!(out.contains("cleaning up"), "up over stale state:\n{out}");
    for (name, addr) in &hosts {
        let (hostname, boot) = lab.probe(addr);
        assert_eq!(&hostname, name);
        assert!(!boot_ids.contains(&boot), "{name} was not booted afresh");
    }
    assert_eq!(lab.supervisors().len(), 2);

    // Down removes every trace and restores ip_forward; a second down is a no-op success.
    let (out, took) = lab.ok(&["lab", "down"]);
    eprintln!("lab down took {took:?}:\n{out}");
    let left = traces(&lab.dir);
    assert!(left.is_empty(), "left after down: {left:#?}");
    assert_eq!(read_ip_forward(), forward_before);
    assert!(!lab.dir.join("inventory.ini").exists());
    let (out, _) = lab.ok(&["lab", "down"]);
    assert!(out.contains("nothing to remove"), "second down:\n{out}");
}

#[test]
fn lab_refuses_to_run_without_root() {
    let as_nobody = |args: &[&str]| {
        let mut c = if euid() == 0 {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        c.args(args)
            .env("HOMELAB_LAB_DIR", "/nonexistent/homelab-lab")
            .stdin(Stdio::null())
            .output()
            .expect("run homelab as nobody")
    };
    for sub in [
        &["lab", "status"][..],
        &["lab", "up", "1"],
        &["lab", "down"],
    ] {
        let o = as_nobody(sub);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{sub:?} as non-root succeeded");
        assert!(
            err.contains(
                "homelab lab needs root (it makes network bridges, mounts and containers): run it with sudo"
            ),
            "{sub:?} stderr: {err}"
        );
    }
}

/// The bar: `lab up 3 && ping -i lab`, `run ... --become` prints three hostnames; and sudo
/// with a password: refused without one (saying what to do), accepted with -K or
/// ansible_become_password, refused when wrong, never printed.
#[test]
fn ping_run_and_become_on_lab_hosts() {
    if !root_or_skip("ping_run_and_become_on_lab_hosts") {
        return;
    }
    let _turn = lab_turn();
    let lab = Lab::new();
    lab.ok(&["lab", "up", "3"]);

    let (out, _) = lab.ok(&["ping", "-i", "lab"]);
    for n in ["node1", "node2", "node3"] {
        assert!(out.contains(&format!("{n} | SUCCESS")), "{out}");
    }
    assert!(out.contains("3 ok, 0 failed"), "{out}");

    let (out, _) = lab.ok(&[
        "run",
        "-i",
        "lab",
        "all",
        "-m",
        "shell",
        "-a",
        "hostname; sudo -n true",
        "--become",
    ]);
    for n in ["node1", "node2", "node3"] {
        assert!(out.contains(&format!("{n} | CHANGED | rc=0")), "{out}");
        assert!(
            out.lines().any(|l| l == n),
            "hostname {n} not printed:\n{out}"
        );
    }
    // --become really runs as root; --become-user as another user.
    let (out, _) = lab.ok(&["run", "-i", "lab", "node1", "-a", "id -un", "-b"]);
    assert!(out.lines().any(|l| l == "root"), "{out}");
    let (out, _) = lab.ok(&[
        "run",
        "-i",
        "lab",
        "node1",
        "-a",
        "id -un",
        "--become-user",
        "nobody",
    ]);
    assert!(out.lines().any(|l| l == "nobody"), "{out}");

    // -l narrows; an unknown group is refused before anything runs.
    let (out, _) = lab.ok(&["ping", "-i", "lab", "-l", "node2"]);
    assert!(
        out.contains("node2 | SUCCESS") && !out.contains("node1"),
        "{out}"
    );
    let o = lab.homelab(&["run", "-i", "lab", "nosuchgroup", "-a", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nosuchgroup"),
        "{}",
        text(&o)
    );

    // A user whose sudo needs a password.
    const PW: &str = "pw-Xq7-secret";
    lab.ok(&[
        "run", "-i", "lab", "node1", "-m", "shell", "-b", "-a",
        &format!(
            "id pwuser >/dev/null 2>&1 || useradd -m -s /bin/sh pwuser; \
             echo 'pwuser:{PW}' | chpasswd; \
             echo 'pwuser ALL=(ALL) ALL' > /etc/sudoers.d/pwuser; chmod 0440 /etc/sudoers.d/pwuser; \
             install -d -o pwuser -m 0700 /home/pwuser/.ssh; \
             install -o pwuser -m 0600 /home/homelab/.ssh/authorized_keys /home/pwuser/.ssh/authorized_keys"
        ),
    ]);
    let hosts = lab.inventory_hosts();
    let addr = &hosts[0].1;
    let common = format!(
        "ansible_host={addr} ansible_user=pwuser ansible_ssh_private_key_file={} \
         ansible_ssh_common_args='-o UserKnownHostsFile={}'",
        lab.dir.join("id_ed25519").display(),
        lab.dir.join("known_hosts").display()
    );
    let inv = lab.dir.join("pw.ini");
    std::fs::write(
        &inv,
        format!("pw {common}\npwvar {common} ansible_become_password={PW}\npwbad {common} ansible_become_password=wrong\n"),
    )
    .unwrap();
    let inv = inv.to_str().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("HOMELAB_LAB_DIR", &lab.dir)
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("run homelab");
        let all = text(&o);
        assert!(!all.contains(PW), "the become password leaked:\n{all}");
        (o.status.code(), all)
    };
    // No password given: refused, saying what to do; nothing ran.
    let (code, all) = run(
        &[
            "run",
            "-i",
            inv,
            "pw",
            "-b",
            "-m",
            "shell",
            "-a",
            "touch /tmp/ran-as-root",
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("pw | FAILED")
            && all.contains("sudo needs a password and none was given: pass -K"),
        "{all}"
    );
    let (out, _) = lab.ok(&[
        "run",
        "-i",
        "lab",
        "node1",
        "-m",
        "shell",
        "-a",
        "test -e /tmp/ran-as-root && echo ran || echo not-ran",
    ]);
    assert!(out.contains("not-ran"), "{out}");
    // -K (read from the environment when there is no terminal).
    let (code, all) = run(
        &["run", "-i", inv, "pw", "-K", "-a", "id -u", "-vvv"],
        &[("HOMELAB_BECOME_PASSWORD", PW)],
    );
    assert_eq!(code, Some(0), "{all}");
    assert!(all.lines().any(|l| l == "0"), "{all}");
    // ansible_become_password from the inventory, and a wrong one.
    let (code, all) = run(&["run", "-i", inv, "pwvar:pwbad", "-b", "-a", "id -u"], &[]);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("pwvar | CHANGED | rc=0"), "{all}");
    assert!(
        all.contains("pwbad | FAILED") && all.contains("incorrect password"),
        "{all}"
    );
}
