//! `user`, `group`, `authorized_key` and `cron` on the lab's real hosts (node1; every name
//! prefixed `husr`): check mode changes nothing, the real run makes the user with its groups and
//! key, a second run changes nothing, an SSH login with the key works, bad input fails clearly,
//! and everything is removed at the end.

mod common;
use common::*;

const HASH: &str =
    "$6$husrsalt1$NaGZ/PHAQSSK1622hL1ncSyO2kemtEduSH70KFjuAeiMgDdg16bBI/Q1VJFGTCoQdG1zuGp1vQnrW3lAeHUVV1";

fn fixture(name: &str) -> String {
    fixture_in("lab", name)
}

/// The lab host's address, from the lab inventory.
fn address(host: &str) -> String {
    let inv = std::fs::read_to_string("/var/lib/homelab/lab/inventory.ini").expect("lab inventory");
    inv.lines()
        .find(|l| l.starts_with(&format!("{host} ")))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("ansible_host="))
        })
        .expect("host address in the lab inventory")
        .to_string()
}

/// stdout of a root shell command on the host (lab_sh's output, the command's lines only).
fn sh_out(host: &str, cmd: &str) -> String {
    let r = lab_sh(host, &format!("echo HUSRBEGIN; {cmd}; echo HUSREND"));
    let s = r.stdout;
    match (s.find("HUSRBEGIN\n"), s.rfind("HUSREND")) {
        (Some(a), Some(b)) if b >= a + 10 => s[a + 10..b].to_string(),
        _ => panic!("lab_sh {cmd} failed: {}{}", s, r.stderr),
    }
}

fn cleanup() {
    lab_sh(
        "node1",
        "crontab -u husr1 -r 2>/dev/null; rm -f /var/spool/cron/crontabs/husr1; userdel -r husr1 2>/dev/null; userdel -r husr2 2>/dev/null; groupdel husr-g1 2>/dev/null; \
         rm -f /etc/cron.d/husr-cron; crontab -u root -l 2>/dev/null | grep -q husr && \
         crontab -u root -l | grep -v husr | crontab -u root -; true",
    );
}

#[test]
fn users_groups_keys() {
    if !shared_lab() {
        return;
    }
    cleanup();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("husr_key");
    keygen(&key, "");
    let pubkey = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
    let vars = serde_json::json!({"pubkey": pubkey.trim(), "pw_hash": HASH}).to_string();
    let book = fixture("users.yml");

    // Check mode: says it would change, changes nothing.
    let before_passwd = sh_out(
        "node1",
        "getent passwd husr1; getent group husr-g1; ls -la /home/husr1 2>&1",
    );
    let r = homelab(&["plan", &book, "-i", "lab", "-e", &vars], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 4);
    assert!(!r.all().contains(HASH), "the hash leaked: {}", r.all());
    assert!(
        r.stdout.contains("\"password\": \"(changed)\""),
        "{}",
        r.stdout
    );
    assert_eq!(
        sh_out(
            "node1",
            "getent passwd husr1; getent group husr-g1; ls -la /home/husr1 2>&1"
        ),
        before_passwd,
        "check mode changed node1"
    );

    // The real run.
    let r = homelab(&["apply", &book, "-i", "lab", "-e", &vars, "--diff"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 4);
    assert!(!r.all().contains(HASH), "the hash leaked: {}", r.all());
    assert_eq!(
        sh_out("node1", "getent passwd husr1").trim(),
        "husr1:x:4711:100:homelab test user:/home/husr1:/bin/bash"
    );
    let groups = sh_out("node1", "id -Gn husr1");
    let mut g: Vec<&str> = groups.split_whitespace().collect();
    g.sort();
    assert_eq!(g, ["adm", "husr-g1", "users"]);
    assert_eq!(
        sh_out("node1", "getent group husr-g1").trim(),
        "husr-g1:x:4701:husr1"
    );
    assert_eq!(
        sh_out("node1", "getent shadow husr1 | cut -d: -f2").trim(),
        HASH
    );
    assert_eq!(
        sh_out(
            "node1",
            "stat -c '%U %a' /home/husr1/.ssh /home/husr1/.ssh/authorized_keys"
        ),
        "husr1 700\nhusr1 600\n"
    );
    assert_eq!(
        sh_out(
            "node1",
            "stat -c '%U %a' /home/husr1/.ssh/id_ed25519 /home/husr1/.ssh/id_ed25519.pub; \
             cut -d' ' -f1,3 /home/husr1/.ssh/id_ed25519.pub"
        ),
        "husr1 600\nhusr1 644\nssh-ed25519 husr-generated\n"
    );
    let keys = sh_out("node1", "cat /home/husr1/.ssh/authorized_keys");
    assert_eq!(
        keys,
        format!("no-agent-forwarding {}", pubkey.trim_end()) + "\n"
    );

    // Second run: nothing to do.
    let r = homelab(&["apply", &book, "-i", "lab", "-e", &vars], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 0);

    // A group's gid changes (groupmod), then stays.
    let gid = fixture("users_group_gid.yml");
    let r = homelab(&["apply", &gid, "-i", "lab"], &[]);
    assert_changed(&r, "node1", 1);
    assert_eq!(
        sh_out("node1", "getent group husr-g1").trim(),
        "husr-g1:x:4702:husr1"
    );
    let r = homelab(&["apply", &gid, "-i", "lab"], &[]);
    assert_changed(&r, "node1", 0);

    // The key logs in.
    let o = std::process::Command::new("ssh")
        .args([
            "-i",
            &key.display().to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            &format!("husr1@{}", address("node1")),
            "id -un",
        ])
        .output()
        .expect("ssh runs");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "husr1",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Bad input: clear failures, nothing made.
    let r = homelab(&["apply", &fixture("users_bad.yml"), "-i", "lab"], &[]);
    assert_eq!(r.code, 0, "the asserts on the failures hold: {}", r.all());
    assert!(
        r.stdout.contains("husr-nosuch-group does not exist"),
        "{}",
        r.stdout
    );
    assert_eq!(sh_out("node1", "getent passwd husr2"), "");
    let r = homelab(&["apply", &fixture("users_bad_arg.yml"), "-i", "lab"], &[]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains("'shel' (did you mean 'shell'?)"),
        "{}",
        r.all()
    );

    // cron: husr1's crontab and a cron.d file, as Ansible writes them.
    let r = lab_sh(
        "node1",
        "command -v crontab || { apt-get -o DPkg::Lock::Timeout=300 update -qq && \
         DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq cron; }",
    );
    assert_eq!(r.code, 0, "installing cron: {}", r.all());
    let cron = fixture("users_cron.yml");
    let crontab = || {
        sh_out(
            "node1",
            "crontab -u husr1 -l 2>&1; cat /etc/cron.d/husr-cron 2>&1",
        )
    };
    let before = crontab();
    assert!(!before.contains("/bin/true husr"), "{before}");
    let r = homelab(&["plan", &cron, "-i", "lab"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 3);
    assert!(r.stdout.contains("+#Ansible: husr job"), "{}", r.stdout);
    // The variable's plan is made on the crontab as the job's task would have left it.
    assert!(
        r.stdout
            .contains("+HUSRVAR=husr-value\n #Ansible: husr job"),
        "{}",
        r.stdout
    );
    assert_eq!(crontab(), before, "check mode changed the crontab");
    let r = homelab(&["apply", &cron, "-i", "lab"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 3);
    assert_eq!(
        sh_out("node1", "crontab -u husr1 -l"),
        "HUSRVAR=husr-value\n#Ansible: husr job\n*/5 2 * * * /bin/true husr\n"
    );
    assert_eq!(
        sh_out(
            "node1",
            "cat /etc/cron.d/husr-cron; stat -c '%U %a' /etc/cron.d/husr-cron"
        ),
        "#Ansible: husr file\n@daily husr1 /bin/true husr-file\nroot 644\n"
    );
    let r = homelab(&["apply", &cron, "-i", "lab"], &[]);
    assert_changed(&r, "node1", 0);
    let r = homelab(
        &["apply", &fixture("users_cron_absent.yml"), "-i", "lab"],
        &[],
    );
    assert_changed(&r, "node1", 3);
    assert_eq!(
        sh_out(
            "node1",
            "crontab -u husr1 -l; ls /etc/cron.d/husr-cron 2>/dev/null"
        ),
        ""
    );

    // Removal, then nothing left to remove.
    let absent = fixture("users_absent.yml");
    let r = homelab(&["apply", &absent, "-i", "lab"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 2);
    assert_eq!(
        sh_out(
            "node1",
            "getent passwd husr1; getent group husr-g1; ls -d /home/husr1 2>/dev/null"
        ),
        ""
    );
    let r = homelab(&["apply", &absent, "-i", "lab"], &[]);
    assert_changed(&r, "node1", 0);
    cleanup();
}
