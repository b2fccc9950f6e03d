//! The `ha_lb` role on the lab's three real Debian hosts: HAProxy on each, Corosync + Pacemaker
//! forming a cluster, a floating IP (IPaddr2) colocated with and ordered after HAProxy. The VIP
//! answers through HAProxy; when the node holding it drops off the network, the VIP moves to the
//! majority and still answers.
//! A VIP outside the subnet is refused before any host changes; the dry run changes nothing; the
//! second run changes nothing.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const VIP: &str = "10.213.0.100";
const HOSTS: [&str; 3] = ["node1", "node2", "node3"];

fn fixture(name: &str) -> String {
    fixture_in("lab/ha", name)
}

fn run(args: &[&str]) -> Run {
    let roles = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/roles");
    let roles = roles.display().to_string();
    homelab(args, &[("ANSIBLE_ROLES_PATH", roles.as_str())])
}

/// What the role could touch on a host: packages of the stack, their config, units, addresses.
fn snapshot(host: &str) -> String {
    lab_out(
        host,
        "dpkg-query -W -f '${Package} ${Status}\\n' haproxy corosync pacemaker resource-agents 2>&1; \
         for f in /etc/haproxy/haproxy.cfg /etc/corosync/corosync.conf /etc/corosync/authkey; do \
           if [ -e $f ]; then echo \"$f $(md5sum < $f)\"; else echo \"$f absent\"; fi; done; \
         for u in haproxy corosync pacemaker; do echo \"$u $(systemctl is-active $u) $(systemctl is-enabled $u 2>&1)\"; done; \
         ip -4 -o addr show | awk '{print $2, $4}'",
    )
}

/// Asks the health frontend behind the VIP who answers (HAProxy returns its node's name).
fn who_answers(timeout: Duration) -> Option<String> {
    let addr: SocketAddr = format!("{VIP}:8404").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let (head, text) = body.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.")
        .then(|| text.trim().to_string())
        .filter(|t| HOSTS.contains(&t.as_str()))
}

fn wait_answer(other_than: Option<&str>, within: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(n) = who_answers(Duration::from_millis(500)) {
            if Some(n.as_str()) != other_than {
                return Some(n);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

#[test]
fn ha_lb_forms_a_cluster_and_the_vip_fails_over() {
    if !shared_lab() {
        return;
    }
    let inv = fixture("inventory.ini");
    let before: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();

    // A VIP outside the hosts' subnet: refused, with what to do, before anything changes.
    let r = run(&["apply", &fixture("bad_vip.yml"), "-i", &inv]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.all()
            .contains("ha_vip 192.168.77.10 must be an IPv4 address in 10.213.0.0/24"),
        "{}",
        r.all()
    );
    // The dry run: a plan, exit 0, and the hosts exactly as they were.
    let r = run(&["plan", &fixture("ha.yml"), "-i", &inv]);
    assert_eq!(r.code, 0, "{}", r.all());
    let after: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    assert_eq!(
        before, after,
        "the refused run or the dry run changed a host"
    );

    // The real run.
    let r = run(&["apply", &fixture("ha.yml"), "-i", &inv]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in HOSTS {
        assert!(
            recap_line(&r.stdout, h).contains("failed=0"),
            "{}",
            r.stdout
        );
    }
    let holder = wait_answer(None, Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "the VIP {VIP} does not answer through HAProxy:\n{}",
            r.all()
        )
    });
    let crm = lab_sh("node1", "crm_mon -1");
    assert!(
        crm.stdout.contains("partition with quorum"),
        "{}",
        crm.all()
    );
    assert!(
        crm.stdout.contains("Online: [ node1 node2 node3 ]"),
        "{}",
        crm.all()
    );

    // Again: nothing to change anywhere.
    let r = run(&["apply", &fixture("ha.yml"), "-i", &inv]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in HOSTS {
        let line = recap_line(&r.stdout, h);
        assert!(
            line.contains("changed=0"),
            "second run changed {h}:\n{}",
            r.stdout
        );
    }

    // The holder drops off the network (its link down for 30 s, as a dead switch port or a
    // hung machine looks to the others): it loses quorum and stops its VIP, the majority starts
    // the VIP elsewhere, and it answers there.
    let r = lab_sh(
        &holder,
        "nohup sh -c 'ip link set host0 down; sleep 30; ip link set host0 up' >/dev/null 2>&1 &",
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let moved = wait_answer(Some(&holder), Duration::from_secs(60));
    let moved = moved.unwrap_or_else(|| {
        let other = HOSTS
            .iter()
            .find(|h| **h != holder)
            .copied()
            .unwrap_or("node1");
        panic!(
            "the VIP did not move off {holder}:\n{}",
            lab_sh(other, "crm_mon -1").all()
        )
    });
    assert_ne!(moved, holder);

    // The node comes back and rejoins, and the VIP stays where it went (resource-stickiness).
    let start = Instant::now();
    loop {
        let crm = lab_sh(&moved, "crm_mon -1");
        if crm.stdout.contains("Online: [ node1 node2 node3 ]") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{holder} did not rejoin:\n{}",
            crm.all()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(
        who_answers(Duration::from_secs(2)).as_deref(),
        Some(moved.as_str())
    );

    // Leave the shared lab quiet for the tests that follow: Pacemaker stops its resources (the
    // VIP) before Corosync goes, and no VIP may stay behind (other tests read the addresses).
    for h in HOSTS {
        let r = lab_sh(
            h,
            "systemctl disable --now pacemaker >/dev/null 2>&1; \
             systemctl disable --now corosync haproxy >/dev/null 2>&1; \
             ip -4 addr del 10.213.0.100/24 dev host0 2>/dev/null; \
             echo \"vip-left=$(ip -4 -o addr show | grep -c '10.213.0.100/')\"",
        );
        assert!(r.stdout.contains("vip-left=0"), "{h}: {}", r.all());
    }
}
