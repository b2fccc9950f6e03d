//! `homelab plan playbooks/cluster.yml` on the lab's real hosts reads as an honest plan of the
//! whole cluster (every phase, in order, with its diffs and the joins it would make) and changes
//! nothing: packages, files and units compared before and after.

mod common;
use common::*;
use std::path::Path;

const HOSTS: [&str; 3] = ["node1", "node2", "node3"];

fn snapshot(host: &str) -> String {
    lab_out(
        host,
        "dpkg-query -W -f '${Package} ${Version} ${Status}\\n' | md5sum; \
         for f in /etc/hosts /etc/hostname /etc/fstab /etc/haproxy/haproxy.cfg \
           /etc/corosync/corosync.conf /etc/sysctl.d/90-kubernetes.conf /snap/bin/microk8s; do \
           if [ -e $f ]; then echo \"$f $(md5sum < $f)\"; else echo \"$f absent\"; fi; done; \
         ls /etc/systemd/system /var/lib/apt/lists | md5sum; getent group microk8s; \
         cat /proc/sys/net/ipv4/ip_forward",
    )
}

#[test]
fn cluster_plan_on_the_lab_is_whole_and_changes_nothing() {
    if !shared_lab() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let book = root.join("playbooks/cluster.yml").display().to_string();
    let inv = root.join("inventory/lab.ini").display().to_string();
    let kubeconfig = tempfile::tempdir().expect("tempdir");
    let dest = format!(
        "kubeconfig_dest={}",
        kubeconfig.path().join("kubeconfig").display()
    );
    let before: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    let r = homelab(&["plan", &book, "-i", &inv, "-e", &dest], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out = &r.stdout;
    // Every phase, in order.
    let mut at = 0;
    for play in [
        "PLAY [preflight]",
        "PLAY [prepare]",
        "PLAY [kernel]",
        "PLAY [lb]",
        "PLAY [control plane]",
        "PLAY [control plane joins]",
        "PLAY [workers]",
        "PLAY [verify]",
    ] {
        let i = out[at..]
            .find(play)
            .unwrap_or_else(|| panic!("{play} missing or out of order:\n{out}"));
        at += i + play.len();
    }
    for want in [
        // preflight's warning about an even number of masters
        "WARNING: 2 masters",
        // packages, files and units each phase would change, with diffs
        "after: /etc/haproxy/haproxy.cfg",
        "server node2 10.213.0.12:16443 check",
        "after: /etc/corosync/corosync.conf",
        "after: /etc/sysctl.d/90-kubernetes.conf",
        "TASK [ha_lb : HAProxy, Corosync and Pacemaker]",
        "+snapd: ",
        "is a systemd-nspawn container: its kernel is the machine's",
        // the joins, each named
        "node2 is not a member of node1's cluster: would make a token with `microk8s add-node` on node1, then run `microk8s join 10.213.0.11:25000/TOKEN/HASH` here",
        "node3 is not a member of node1's cluster",
        "--worker` here",
    ] {
        assert!(out.contains(want), "the plan lacks {want:?}:\n{out}");
    }
    for h in HOSTS {
        let line = recap_line(out, h);
        assert!(
            line.contains("failed=0") && !line.contains("changed=0"),
            "{out}"
        );
    }
    let after: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    assert_eq!(before, after, "the plan changed a host");
    assert!(!kubeconfig.path().join("kubeconfig").exists());
}

#[test]
fn an_unsupported_architecture_is_refused_before_any_change() {
    if !shared_lab() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let book = root.join("playbooks/cluster.yml").display().to_string();
    let inv = root.join("inventory/lab.ini").display().to_string();
    // The lab is x86_64: pretend only arm64 is supported.
    let only_arm = r#"{"preflight_architectures": ["aarch64"]}"#;
    let before: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    let r = homelab(&["apply", &book, "-i", &inv, "-e", only_arm], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("node1 runs Debian ")
            && r.stdout
                .contains(" on x86_64: the cluster content supports")
            && r.stdout.contains("Nothing was changed."),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("PLAY [prepare]"), "{}", r.stdout);
    let after: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    assert_eq!(before, after, "a refused run changed a host");
}
