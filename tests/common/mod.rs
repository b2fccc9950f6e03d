//! Throwaway OpenSSH servers on 127.0.0.x for tests that need only sshd (not a whole lab host).
//! Each gets its own host key, authorized key and known_hosts; it is killed when dropped.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `tests/fixtures/FOLDER/NAME`, as a string for a command line.
pub fn fixture_in(folder: &str, name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder)
        .join(name)
        .display()
        .to_string()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_homelab")
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Tests that need root and sshd: in CI a missing prerequisite is a failure, elsewhere a skip.
pub fn require_sshd() -> bool {
    let ok = is_root() && Path::new("/usr/sbin/sshd").exists();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("this test needs root and /usr/sbin/sshd (apt-get install openssh-server)");
        }
        eprintln!("skipped: needs root and /usr/sbin/sshd");
    }
    ok
}

pub fn keygen(path: &Path, passphrase: &str) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let st = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "homelab-test",
            "-f",
        ])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(st.success(), "ssh-keygen failed");
}

pub fn pubkey(path: &Path) -> String {
    let p = PathBuf::from(format!("{}.pub", path.display()));
    let s = std::fs::read_to_string(p).expect("public key");
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub addr: String,
    pub port: u16,
    pub client_key: PathBuf,
    pub host_key: PathBuf,
    pub known_hosts: PathBuf,
    child: Child,
}

impl Sshd {
    /// Starts sshd on 127.0.0.`octet`:`port`, accepting `client_key` for root.
    pub fn start(octet: u8, port: u16) -> Sshd {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let host_key = d.join("host_key");
        let client_key = d.join("client_key");
        keygen(&host_key, "");
        keygen(&client_key, "");
        std::fs::write(d.join("authorized_keys"), pubkey(&client_key) + "\n").unwrap();
        let addr = format!("127.0.0.{octet}");
        let known_hosts = d.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[{addr}]:{port} {}\n", pubkey(&host_key)),
        )
        .unwrap();
        let cfg = d.join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "Port {port}\nListenAddress {addr}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nPidFile none\n\
                 MaxSessions 10\nMaxStartups 100:30:200\nLogLevel VERBOSE\n",
                host_key.display(),
                d.join("authorized_keys").display()
            ),
        )
        .unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        // root's ~/.bashrc on this machine kind runs `pyenv init` on every command (~0.3 s): sshd
        // runs in a private mount namespace with Debian's stock .bashrc over it, as a fresh host has.
        let stock = "/usr/share/base-files/dot.bashrc";
        let mut cmd = if std::path::Path::new(stock).exists()
            && std::path::Path::new("/root/.bashrc").exists()
        {
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private", "--", "sh", "-c"])
                .arg(format!(
                    "mount --bind {stock} /root/.bashrc && exec /usr/sbin/sshd -D -e -f {}",
                    cfg.display()
                ));
            c
        } else {
            let mut c = Command::new("/usr/sbin/sshd");
            c.args(["-D", "-e", "-f"]).arg(&cfg);
            c
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        let s = Sshd {
            dir,
            addr,
            port,
            client_key,
            host_key,
            known_hosts,
            child,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(mut c) = TcpStream::connect((self.addr.as_str(), self.port)) {
                let mut b = [0u8; 8];
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                if c.read(&mut b).map(|n| n > 0).unwrap_or(false) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sshd on {}:{} did not start: {}",
            self.addr,
            self.port,
            self.log()
        );
    }

    /// The listening sshd's pid (its children serve the connections).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An INI inventory line's connection variables for this server.
    pub fn host_vars(&self) -> String {
        format!(
            "ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={} \
             ansible_ssh_common_args='-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes'",
            self.addr,
            self.port,
            self.client_key.display(),
            self.known_hosts.display()
        )
    }

    /// Writes an inventory with `names` all pointing at this server.
    pub fn inventory(&self, names: &[&str]) -> PathBuf {
        let mut s = String::from("[test]\n");
        for n in names {
            s.push_str(&format!("{n} {}\n", self.host_vars()));
        }
        let p = self.path("inventory.ini");
        std::fs::write(&p, s).unwrap();
        p
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The result of running the homelab binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn homelab(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bin());
    c.args(args).stdin(Stdio::null());
    // Each run connects itself unless a test is about the connection keeper.
    c.env("HOMELAB_PERSIST", "0");
    for (k, v) in envs {
        c.env(k, v);
    }
    let o = c.output().expect("homelab runs");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The machine's shared lab (3 Debian hosts, `-i lab`), started if it is not running (`lab up`
/// leaves a healthy lab alone). Tests that use it must not take it down, and must each touch
/// their own packages, units, users and paths, since they run at once. Returns false (after a
/// note) where the lab cannot run: without root; in CI that is a failure.
pub fn shared_lab() -> bool {
    if !is_root() {
        if std::env::var_os("CI").is_some() {
            panic!("lab tests need root (bridges, mounts, containers)");
        }
        eprintln!("skipped: the lab needs root");
        return false;
    }
    static UP: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let r = UP.get_or_init(|| {
        let r = homelab(&["lab", "up", "3"], &[]);
        if r.code == 0 {
            Ok(())
        } else {
            Err(r.all())
        }
    });
    if let Err(e) = r {
        panic!("homelab lab up 3 failed:\n{e}");
    }
    true
}

/// Runs a shell command on a lab host as root (through the lab's own key), for test setup and
/// checks that must not go through the code under test.
pub fn lab_sh(host: &str, command: &str) -> Run {
    homelab(
        &[
            "run", "-i", "lab", host, "-m", "shell", "-a", command, "--become",
        ],
        &[],
    )
}

/// A host's recap line (`HOST : ok=N changed=N ...`) in a run's output, or "".
/// The recap line of `host`; the test fails, showing the output, when there is none.
pub fn recap_of<'a>(out: &'a str, host: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(host) && l.contains(" : ok="))
        .unwrap_or_else(|| panic!("no recap line for {host}:\n{out}"))
}

/// Fails the test (showing the output) unless `host`'s recap line says `changed=N`.
#[track_caller]
pub fn assert_changed(r: &Run, host: &str, n: u32) {
    assert_eq!(
        field(recap_of(&r.stdout, host), "changed"),
        n,
        "{}",
        r.all()
    );
}

/// A count from a recap line (`field(line, "changed")` reads `changed=3`).
pub fn field(line: &str, name: &str) -> u32 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

pub fn recap_line<'a>(out: &'a str, host: &str) -> &'a str {
    out.lines()
        .rev()
        .find(|l| l.starts_with(&format!("{host} ")) && l.contains("ok="))
        .unwrap_or("")
}

/// What a root shell command printed on a lab host, without `homelab run`'s header line
/// ("HOST | CHANGED | rc=0 | ... >>"); the command must succeed.
pub fn lab_out(host: &str, cmd: &str) -> String {
    let r = lab_sh(host, cmd);
    assert_eq!(r.code, 0, "on {host}: {cmd}\n{}", r.all());
    // Without output there is only the header, without ">>".
    match r.stdout.split_once(">>\n") {
        Some((head, out)) if head.starts_with(host) => out.to_string(),
        _ if r.stdout.starts_with(&format!("{host} | ")) && !r.stdout.contains(">>") => {
            String::new()
        }
        _ => r.stdout,
    }
}

/// A lab host's boot id.
pub fn boot_id(host: &str) -> String {
    let r = lab_sh(host, "cat /proc/sys/kernel/random/boot_id");
    assert_eq!(r.code, 0, "{}", r.all());
    r.stdout
        .lines()
        .find(|l| l.len() == 36 && l.matches('-').count() == 4)
        .unwrap_or_default()
        .to_string()
}
