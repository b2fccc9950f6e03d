//! The transport as a library against a real sshd: large stdin, many channels at once on one
//! connection, command timeouts, atomic file writes.

mod common;
use common::*;
use homelab::transport::spec::{ConnectionSpec, Defaults};
use homelab::transport::ssh::SshConnection;
use homelab::transport::ssh_config::SshConfig;
use homelab::transport::{Connection, ExecRequest, TransportError};
use std::time::Duration;

fn spec(s: &Sshd) -> ConnectionSpec {
    let mut vars = serde_json::Map::new();
    for (k, v) in [
        ("ansible_host", s.addr.clone()),
        ("ansible_port", s.port.to_string()),
        ("ansible_user", "root".to_string()),
        (
            "ansible_ssh_private_key_file",
            s.client_key.display().to_string(),
        ),
        (
            "ansible_ssh_common_args",
            format!("-o UserKnownHostsFile={}", s.known_hosts.display()),
        ),
    ] {
        vars.insert(k.into(), v.into());
    }
    ConnectionSpec::resolve("lib", &vars, &Defaults::default(), &SshConfig::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_stdin_parallel_channels_timeouts_and_atomic_writes() {
    if !require_sshd() {
        return;
    }
    let s = Sshd::start(41, 2211);
    let c = Connection::Ssh(Box::new(SshConnection::connect(spec(&s)).await.unwrap()));

    // 24 MiB through stdin while the command writes output: no stall (reads and writes overlap).
    let big = vec![b'x'; 24 << 20];
    let mut r = ExecRequest::new("tee /dev/stderr | wc -c");
    r.stdin = Some(big);
    let o = c.exec(&r).await.unwrap();
    assert_eq!(o.stdout_str().trim(), (24u64 << 20).to_string());
    assert_eq!(o.stderr.len(), 24 << 20);

    // 30 commands at once on one connection (channels are capped under sshd's MaxSessions).
    let futs = (0..30).map(|i| {
        let c = &c;
        async move {
            let o = c
                .exec(&ExecRequest::new(format!("echo {i}; exit {}", i % 3)))
                .await
                .unwrap();
            (i, o)
        }
    });
    for (i, o) in futures::future::join_all(futs).await {
        assert_eq!(o.stdout_str().trim(), i.to_string());
        assert_eq!(o.exit_status, Some(i % 3));
    }
    assert_eq!(s.log().matches("Accepted publickey").count(), 1);

    // Sequential commands reuse a persistent shell: sshd starts no session per command. Output,
    // status and stdin (in-band, binary) come back intact, and a command's `exit`/`cd` stay its own.
    let before = s.log().matches("Starting session").count();
    for i in 0..40u32 {
        let mut r = ExecRequest::new(format!(
            "cd /; printf '%s' {i}; head -c 3 | od -An -tx1; exit {}",
            i % 5
        ));
        r.stdin = Some(vec![0u8, 255, i as u8]);
        let o = c.exec(&r).await.unwrap();
        let want = format!("{i} 00 ff {:02x}", i as u8);
        assert_eq!(
            o.stdout_str()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            want
        );
        assert_eq!(o.exit_status, Some(i % 5));
    }
    let sessions = s.log().matches("Starting session").count() - before;
    assert!(
        sessions <= 1,
        "{sessions} new sessions for 40 sequential commands"
    );

    // A command that outlives its timeout is stopped and reported with the host name.
    let mut r = ExecRequest::new("sleep 31.25");
    r.timeout = Some(Duration::from_millis(500));
    let e = c.exec(&r).await.unwrap_err();
    assert!(matches!(e, TransportError::CommandTimeout { .. }), "{e}");
    assert!(e.to_string().starts_with("lib: "), "{e}");
    // ... and the remote process is gone, not left running.
    let mut gone = false;
    for _ in 0..40 {
        let o = std::process::Command::new("pgrep")
            .args(["-f", "sleep 31.25"])
            .output()
            .unwrap();
        if !o.status.success() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "the timed-out command is still running on the host");
    // The connection still works afterwards.
    assert!(c.exec(&ExecRequest::new("true")).await.unwrap().success());

    // Atomic write: content and mode land; a failed write leaves the old file and no temp file.
    let target = s.path("written.txt");
    let t = target.display().to_string();
    let o = c
        .put_file(&t, b"hello\n".to_vec(), Some(0o640), None)
        .await
        .unwrap();
    assert!(o.success(), "{}", o.stderr_str());
    assert_eq!(std::fs::read(&target).unwrap(), b"hello\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let o = c
        .put_file(
            &format!("{}/no/such/dir/f", s.dir.path().display()),
            b"x".to_vec(),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(!o.success());
    let leftovers: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".homelab-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    c.close().await;
}
