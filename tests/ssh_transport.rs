//! The real binary against throwaway OpenSSH servers on 127.0.0.x: connect, auth, host keys,
//! commands, become errors, unreachable hosts. Needs root (sshd); CI runs as root.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs homelab with an empty HOME and no agent, so nothing of the machine's own SSH setup leaks in.
fn hl(home: &std::path::Path, args: &[&str]) -> Run {
    hl_env(home, args, &[])
}

fn hl_env(home: &std::path::Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let home_s = home.display().to_string();
    let mut envs = vec![("HOME", home_s.as_str()), ("SSH_AUTH_SOCK", "")];
    envs.extend_from_slice(extra);
    homelab(args, &envs)
}

#[test]
fn ping_and_run_against_real_sshd() {
    if !require_sshd() {
        return;
    }
    let s = Sshd::start(31, 2201);
    let home = tempfile::tempdir().unwrap();
    let inv = s.inventory(&["alpha", "beta"]);
    let inv = inv.to_str().unwrap();

    let r = hl(home.path(), &["ping", "-i", inv]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("alpha | SUCCESS"), "{}", r.stdout);
    assert!(r.stdout.contains("beta | SUCCESS"), "{}", r.stdout);
    assert!(r.stdout.contains("2 ok, 0 failed"), "{}", r.stdout);

    // stdout, stderr and rc come back separately; a shell module runs pipes.
    let r = hl(
        home.path(),
        &[
            "run",
            "-i",
            inv,
            "alpha",
            "-m",
            "shell",
            "-a",
            "echo out | tr o 0; echo err >&2",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("alpha | CHANGED | rc=0"), "{}", r.stdout);
    assert!(r.stdout.contains("0ut\nerr"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("beta"),
        "pattern must select only alpha: {}",
        r.stdout
    );

    // command does not go through a shell.
    let r = hl(home.path(), &["run", "-i", inv, "all", "-a", "echo $HOME;"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("$HOME;"), "{}", r.stdout);

    // A failing command: rc and stderr shown, exit code 1.
    let r = hl(
        home.path(),
        &[
            "run",
            "-i",
            inv,
            "all",
            "-m",
            "shell",
            "-a",
            "echo broken >&2; exit 3",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("alpha | FAILED | rc=3"), "{}", r.stdout);
    assert!(r.stdout.contains("broken"), "{}", r.stdout);

    // creates= skips without running.
    let marker = s.path("made");
    let a = format!(
        "touch {} creates={}",
        marker.display(),
        s.path("sshd_config").display()
    );
    let r = hl(home.path(), &["run", "-i", inv, "alpha", "-a", &a]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("alpha | SUCCESS"), "{}", r.stdout);
    assert!(
        !marker.exists(),
        "creates= must keep the command from running"
    );

    // An unknown module is refused before any host is touched.
    let r = hl(
        home.path(),
        &["run", "-i", inv, "all", "-m", "shel", "-a", "x"],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("unknown module 'shel'") && r.stderr.contains("did you mean 'shell'"),
        "{}",
        r.stderr
    );
}

#[test]
fn one_connection_per_host_many_hosts_in_parallel() {
    if !require_sshd() {
        return;
    }
    let s = Sshd::start(32, 2202);
    let home = tempfile::tempdir().unwrap();
    let names: Vec<String> = (1..=24).map(|i| format!("h{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let inv = s.inventory(&refs);
    let r = hl(
        home.path(),
        &["ping", "-i", inv.to_str().unwrap(), "-f", "24"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.all(), s.log());
    assert!(r.stdout.contains("24 ok, 0 failed"), "{}", r.stdout);
    // sshd logs one accepted publickey login per connection: exactly one per host.
    let log = s.log();
    let accepted = log.matches("Accepted publickey for root").count();
    assert_eq!(accepted, 24, "{log}");
}

#[test]
fn unreachable_hosts_are_reported_and_never_hang() {
    if !require_sshd() {
        return;
    }
    let s = Sshd::start(33, 2203);
    let home = tempfile::tempdir().unwrap();
    // A port with nothing listening, and a listener that accepts but never speaks SSH.
    let silent = std::net::TcpListener::bind("127.0.0.34:2204").unwrap();
    let inv = s.path("inv.ini");
    std::fs::write(
        &inv,
        format!(
            "ok {v}\nrefused ansible_host=127.0.0.35 ansible_port=2205\nsilent ansible_host=127.0.0.34 ansible_port=2204\n",
            v = s.host_vars()
        ),
    )
    .unwrap();
    let t0 = Instant::now();
    let r = hl(
        home.path(),
        &["ping", "-i", inv.to_str().unwrap(), "-T", "2"],
    );
    let took = t0.elapsed();
    drop(silent);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("ok | SUCCESS"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("refused | UNREACHABLE! | refused: cannot connect to 127.0.0.35:2205"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("silent | UNREACHABLE! | silent: no answer from 127.0.0.34:2204 within 2s"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 ok, 2 failed"), "{}", r.stdout);
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn refused_key_says_who_and_what_was_tried() {
    if !require_sshd() {
        return;
    }
    let s = Sshd::start(36, 2206);
    let home = tempfile::tempdir().unwrap();
    let other = s.path("other_key");
    keygen(&other, "");
    let inv = s.path("inv.ini");
    std::fs::write(
        &inv,
        format!(
            "h ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={} ansible_ssh_common_args='-o UserKnownHostsFile={}'\n",
            s.addr, s.port, other.display(), s.known_hosts.display()
        ),
    )
    .unwrap();
    let r = hl(home.path(), &["ping", "-i", inv.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains("h | UNREACHABLE! | h: authentication as 'root' failed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("key {}", other.display())),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("the server accepts: publickey"),
        "{}",
        r.stdout
    );
}

#[test]
fn host_keys_strict_accept_new_and_changed() {
    if !require_sshd() {
        return;
    }
    let s = Sshd::start(37, 2207);
    let home = tempfile::tempdir().unwrap();
    let kh = s.path("kh_test");
    let inv = s.path("inv.ini");
    std::fs::write(
        &inv,
        format!(
            "h ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={}\n",
            s.addr,
            s.port,
            s.client_key.display()
        ),
    )
    .unwrap();
    let inv = inv.to_str().unwrap();
    let khs = kh.to_str().unwrap();

    // Unknown key, strict (the default): refused, with the fingerprint and what to do.
    let r = hl(home.path(), &["ping", "-i", inv, "--known-hosts", khs]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("host key for 127.0.0.37:2207 is unknown"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("SHA256:"), "{}", r.stdout);
    assert!(r.stdout.contains("accept-new"), "{}", r.stdout);
    assert!(!kh.exists(), "strict mode must not write known_hosts");

    // accept-new records it, then strict accepts it.
    let r = hl(
        home.path(),
        &[
            "ping",
            "-i",
            inv,
            "--known-hosts",
            khs,
            "--host-key-checking",
            "accept-new",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let recorded = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(
        recorded,
        format!("[127.0.0.37]:2207 {}\n", pubkey(&s.host_key))
    );
    let r = hl(home.path(), &["ping", "-i", inv, "--known-hosts", khs]);
    assert_eq!(r.code, 0, "{}", r.all());

    // A changed key is refused even with accept-new, naming both fingerprints; the file is untouched.
    let other = s.path("other_host_key");
    keygen(&other, "");
    let fp = |p: &std::path::Path| {
        let o = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string()
    };
    std::fs::write(&kh, format!("[127.0.0.37]:2207 {}\n", pubkey(&other))).unwrap();
    let before = std::fs::read_to_string(&kh).unwrap();
    let r = hl(
        home.path(),
        &[
            "ping",
            "-i",
            inv,
            "--known-hosts",
            khs,
            "--host-key-checking",
            "accept-new",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains("h: REFUSED: the host key of 127.0.0.37:2207 has CHANGED"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&fp(&other)),
        "expected recorded fingerprint: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&fp(&s.host_key)),
        "expected offered fingerprint: {}",
        r.stdout
    );
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), before);
}

#[test]
fn ssh_config_agent_and_encrypted_keys() {
    if !require_sshd() {
        return;
    }
    let s = Sshd::start(38, 2208);
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::copy(&s.known_hosts, ssh.join("known_hosts")).unwrap();
    // ~/.ssh/config supplies HostName, Port, User and IdentityFile for an alias.
    std::fs::write(
        ssh.join("config"),
        format!(
            "Host box\n  HostName {}\n  Port {}\n  User root\n  IdentityFile {}\n",
            s.addr,
            s.port,
            s.client_key.display()
        ),
    )
    .unwrap();
    let inv = s.path("inv.ini");
    std::fs::write(&inv, "box\n").unwrap();
    let r = hl(
        home.path(),
        &["run", "-i", inv.to_str().unwrap(), "box", "-a", "id -u"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("box | CHANGED | rc=0"), "{}", r.stdout);

    // An encrypted key: the passphrase comes from the terminal, or from the environment when none.
    let enc = s.path("enc_key");
    keygen(&enc, "sesame");
    let mut auth = std::fs::read_to_string(s.path("authorized_keys")).unwrap();
    auth.push_str(&(pubkey(&enc) + "\n"));
    std::fs::write(s.path("authorized_keys"), auth).unwrap();
    let inv2 = s.path("inv2.ini");
    std::fs::write(
        &inv2,
        format!(
            "h ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={}\n",
            s.addr,
            s.port,
            enc.display()
        ),
    )
    .unwrap();
    let inv2 = inv2.to_str().unwrap();
    let r = hl_env(
        home.path(),
        &["ping", "-i", inv2],
        &[("HOMELAB_SSH_KEY_PASSPHRASE", "sesame")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let r = hl_env(
        home.path(),
        &["ping", "-i", inv2],
        &[("HOMELAB_SSH_KEY_PASSPHRASE", "wrong")],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("wrong passphrase"), "{}", r.stdout);
    let r = hl(home.path(), &["ping", "-i", inv2]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("is encrypted"), "{}", r.stdout);

    // ssh-agent: no key file anywhere, the agent holds the key.
    let sock = s.path("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !sock.exists() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(&s.client_key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{:?}", added);
    let inv3 = s.path("inv3.ini");
    std::fs::write(
        &inv3,
        format!(
            "h ansible_host={} ansible_port={} ansible_user=root\n",
            s.addr, s.port
        ),
    )
    .unwrap();
    let sock_s = sock.display().to_string();
    let r = hl_env(
        home.path(),
        &["ping", "-i", inv3.to_str().unwrap()],
        &[("SSH_AUTH_SOCK", &sock_s)],
    );
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(r.code, 0, "{}", r.all());
}
