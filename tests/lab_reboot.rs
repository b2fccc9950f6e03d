//! `reboot` and `wait_for_connection` on the lab's real hosts: a host reboots (new boot id) and
//! the run goes on with it, other hosts' connections untouched; check mode reboots nothing; a
//! reboot that never happens fails after reboot_timeout naming the host.

mod common;
use common::*;

fn fixture(name: &str) -> String {
    fixture_in("lab", name)
}

#[test]
fn reboot_and_wait_for_connection() {
    if !shared_lab() {
        return;
    }
    let book = fixture("reboot.yml");
    let (n1, n3) = (boot_id("node1"), boot_id("node3"));
    assert!(!n3.is_empty());

    // Check mode: the plan says node3 would reboot; nothing reboots.
    let r = homelab(&["plan", &book, "-i", "lab"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("changed: [node3]"), "{}", r.stdout);
    assert_eq!(boot_id("node3"), n3, "check mode rebooted node3");

    // The real run: node3 comes back with a new boot id, node1 kept its connection and boot.
    let r = homelab(&["apply", &book, "-i", "lab"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_ne!(boot_id("node3"), n3, "node3 did not reboot");
    assert_eq!(boot_id("node1"), n1);
    let recap = r
        .stdout
        .lines()
        .find(|l| l.starts_with("node3 "))
        .unwrap_or("");
    assert!(
        recap.contains("changed=1") && recap.contains("failed=0"),
        "{}",
        r.stdout
    );

    // A reboot that never happens: fails after reboot_timeout, naming the host.
    let r = homelab(&["apply", &fixture("reboot_never.yml"), "-i", "lab"], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("node2: the host did not come back within 3 s"),
        "{}",
        r.stdout
    );
}
