//! Issue 4's proof, on a fresh lab of three real Debian hosts: one playbook installs packages,
//! starts and enables a service, makes a user with an authorized key, sets a `net.*` sysctl,
//! mounts a tmpfs through a systemd mount unit, and reboots the host whose packages changed.
//! `plan` first shows every change and leaves the hosts exactly as they were (package lists,
//! unit states, users, files compared before and after); `apply` does it (node3 comes back with a
//! new boot id, its service and mount back); the second `apply` changes nothing anywhere.

mod common;
use common::*;

const HOSTS: [&str; 3] = ["node1", "node2", "node3"];

fn fixture(name: &str) -> String {
    fixture_in("lab/provision", name)
}

/// Everything the playbook could change on a host, as text.
fn snapshot(host: &str) -> String {
    lab_out(
        host,
        "dpkg-query -W -f '${Package} ${Version} ${Status}\\n' | md5sum; \
         dpkg-query -W -f '${Package} ${Status}\\n' tree haproxy 2>&1; \
         for u in haproxy.service srv-scratch.mount; do \
           echo \"$u $(systemctl is-active $u) $(systemctl is-enabled $u 2>&1)\"; done; \
         getent passwd prov-admin; getent group prov; \
         ls -la /home; cat /home/prov-admin/.ssh/authorized_keys 2>&1; \
         cat /etc/sysctl.d/60-provision.conf 2>&1; cat /proc/sys/net/ipv4/ip_forward; \
         ls -la /etc/systemd/system; findmnt -n /srv/scratch; ls /var/lib/apt/lists | md5sum",
    )
}

#[test]
fn provision_a_fresh_lab_plan_apply_and_again() {
    if !is_root() {
        if std::env::var_os("CI").is_some() {
            panic!("lab tests need root");
        }
        eprintln!("skipped: the lab needs root");
        return;
    }
    // A fresh lab: no apt lists, no packages beyond the base, nobody's leftovers.
    let r = homelab(&["lab", "down"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = homelab(&["lab", "up", "3"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());

    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("prov_key");
    keygen(&key, "");
    let pubkey = pubkey(&key);
    let extra = serde_json::json!({ "prov_key": pubkey }).to_string();
    let book = fixture("provision.yml");

    // The plan: every change, nothing changed.
    let before: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    let boots: Vec<String> = HOSTS.iter().map(|h| boot_id(h)).collect();
    let r = homelab(&["plan", &book, "-i", "lab", "-e", &extra], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for want in [
        "+tree: ",
        "+haproxy: ",
        "after: haproxy",
        "after: /etc/sysctl.d/60-provision.conf",
        "+net.ipv4.ip_forward",
        "after: /etc/systemd/system/srv-scratch.mount",
        "prov-admin",
        "after: /home/prov-admin/.ssh/authorized_keys",
    ] {
        assert!(
            r.stdout.contains(want),
            "the plan lacks {want:?}:\n{}",
            r.stdout
        );
    }
    for h in HOSTS {
        let line = recap_line(&r.stdout, h);
        assert!(line.contains("failed=0"), "{}", r.stdout);
    }
    let after: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    assert_eq!(before, after, "the plan changed a host");
    let now: Vec<String> = HOSTS.iter().map(|h| boot_id(h)).collect();
    assert_eq!(boots, now, "the plan rebooted a host");

    // The run.
    let r = homelab(&["apply", &book, "-i", "lab", "-e", &extra], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in HOSTS {
        let line = recap_line(&r.stdout, h);
        assert!(
            line.contains("failed=0") && !line.contains("changed=0"),
            "{}",
            r.stdout
        );
    }
    let now: Vec<String> = HOSTS.iter().map(|h| boot_id(h)).collect();
    assert_eq!(now[0], boots[0], "node1 rebooted");
    assert_eq!(now[1], boots[1], "node2 rebooted");
    assert_ne!(now[2], boots[2], "node3 did not reboot");
    for h in HOSTS {
        let out = lab_out(
            h,
            "systemctl is-active haproxy; systemctl is-enabled haproxy; \
             findmnt -n -o FSTYPE /srv/scratch; id -nG prov-admin; sysctl -n net.ipv4.ip_forward; \
             dpkg-query -W -f '${Status}\\n' tree",
        );
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(
            got,
            [
                "active",
                "enabled",
                "tmpfs",
                "prov-admin prov",
                "1",
                "install ok installed"
            ],
            "{h}: {out}"
        );
    }
    // The key logs in.
    let ssh = std::process::Command::new("ssh")
        .args(["-i"])
        .arg(&key)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "prov-admin@10.213.0.12",
            "id -un",
        ])
        .output()
        .expect("ssh runs");
    assert_eq!(
        String::from_utf8_lossy(&ssh.stdout).trim(),
        "prov-admin",
        "{}",
        String::from_utf8_lossy(&ssh.stderr)
    );

    // Again: nothing to change anywhere, nobody reboots.
    let r = homelab(&["apply", &book, "-i", "lab", "-e", &extra], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in HOSTS {
        let line = recap_line(&r.stdout, h);
        assert!(
            line.contains("changed=0") && line.contains("failed=0"),
            "second run: {}",
            r.stdout
        );
    }
    let again: Vec<String> = HOSTS.iter().map(|h| boot_id(h)).collect();
    assert_eq!(again, now, "the second run rebooted a host");
}
