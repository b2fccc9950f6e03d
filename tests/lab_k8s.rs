//! The Kubernetes roles (playbooks/roles/microk8s, playbooks/roles/kubeadm) on the lab's hosts,
//! against test doubles of snap, microk8s, kubeadm and kubectl (tests/doubles/): the lab has no
//! snapd, no Kubernetes repository and no internet. The doubles print what the real tools print
//! and record every call in /var/log/hk8s-doubles.log on their host; a join reaches the first
//! master over ssh (a key the test installs, restricted to the doubles' state command), so the
//! first master's log shows who joined, with which token, in which order.
//!
//! node1 and node2 are masters, node3 a worker (tests/fixtures/lab/k8s/groups.ini over `-i lab`).
//! Only the flavour plays run (tests/fixtures/lab/k8s/flavour.yml): no common, kernel or ha_lb.
//! Each test installs the doubles and removes them, their state and what they wrote at the end.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The tests share the lab's three hosts and the doubles' paths: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const HOSTS: [&str; 3] = ["node1", "node2", "node3"];
const DOUBLES: [&str; 5] = ["snap", "kubeadm", "kubectl", "hk8s-cluster", "hk8s-lib.sh"];

/// Calls that change a cluster or a host (as opposed to reading them).
const MUTATING: [&str; 11] = [
    "microk8s add-node",
    "microk8s join",
    "microk8s leave",
    "microk8s remove-node",
    "snap install",
    "snap remove",
    "kubeadm init",
    "kubeadm token",
    "kubeadm join",
    "kubeadm reset",
    "hk8s-cluster consume",
];

fn is_mutating(call: &str) -> bool {
    MUTATING.iter().any(|m| call.starts_with(m))
        || (call.starts_with("kubectl ") && (call.contains(" apply ") || call.contains(" delete ")))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    fixture_in("lab/k8s", name)
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// What a host's doubles recorded: "TOOL ARGV" in call order.
fn calls(host: &str) -> Vec<String> {
    timed_calls(host).into_iter().map(|(_, c)| c).collect()
}

/// The same with each call's wall-clock time (the lab's hosts share the machine's clock).
fn timed_calls(host: &str) -> Vec<(f64, String)> {
    lab_out(host, "cat /var/log/hk8s-doubles.log 2>/dev/null; true")
        .lines()
        .filter_map(|l| {
            let mut w = l.splitn(3, ' ');
            let t = w.next()?.parse::<f64>().ok()?;
            let h = w.next()?;
            let rest = w.next()?;
            (h == host).then(|| (t, rest.to_string()))
        })
        .collect()
}

/// When `host` first made a call starting with `prefix`.
fn first_call(host: &str, prefix: &str) -> f64 {
    let c = timed_calls(host);
    c.iter()
        .find(|(_, c)| c.starts_with(prefix))
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("{host} made no call '{prefix}': {c:?}"))
}

/// playbooks/reset.yml with the doubles first in PATH (through k8s_environment).
fn reset(flavour: &str, extra: &[&str]) -> Run {
    let book = repo().join("playbooks/reset.yml").display().to_string();
    let groups = fixture("groups.ini");
    let flavor = format!("k8s_flavor={flavour}");
    let env = r#"{"k8s_environment": {"PATH": "/opt/hk8s-doubles/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}"#;
    let mut args = vec![
        "apply", &book, "-i", "lab", "-i", &groups, "-e", &flavor, "-e", env,
    ];
    args.extend_from_slice(extra);
    homelab(&args, &[])
}

fn clear_logs() {
    for h in HOSTS {
        lab_out(h, ": > /var/log/hk8s-doubles.log");
    }
}

fn members() -> String {
    lab_out("node1", "cat /var/lib/hk8s-doubles/members")
}

fn no_mutating_calls(what: &str) {
    for h in HOSTS {
        for c in calls(h) {
            assert!(!is_mutating(&c), "{what}: {h} got a mutating call: {c}");
        }
    }
}

/// The doubles on the three hosts; removed (with all they made) when dropped.
struct Doubles {
    _keys: tempfile::TempDir,
}

impl Doubles {
    fn install() -> Doubles {
        let keys = tempfile::tempdir().expect("tempdir");
        let key = keys.path().join("id_ed25519");
        keygen(&key, "");
        let private = std::fs::read(&key).expect("key");
        let public = pubkey(&key);
        let known =
            std::fs::read(lab_dir().join("known_hosts")).expect("the lab's known_hosts file");
        let mut script = String::from(
            "set -e; mkdir -p /opt/hk8s-doubles/bin /opt/hk8s-doubles/lib /var/lib/hk8s-doubles\n",
        );
        let put = |script: &mut String, dest: &str, data: &[u8], mode: &str| {
            script.push_str(&format!(
                "echo '{}' | base64 -d > {dest}; chmod {mode} {dest}\n",
                b64(data)
            ));
        };
        let src = repo().join("tests/doubles");
        for d in DOUBLES {
            let data = std::fs::read(src.join(d)).expect("a double");
            let dest = if d.ends_with(".sh") {
                format!("/opt/hk8s-doubles/lib/{d}")
            } else {
                format!("/opt/hk8s-doubles/bin/{d}")
            };
            put(&mut script, &dest, &data, "755");
        }
        let mk = std::fs::read(src.join("microk8s")).expect("the microk8s double");
        put(&mut script, "/opt/hk8s-doubles/lib/microk8s", &mk, "755");
        put(
            &mut script,
            "/var/lib/hk8s-doubles/id_ed25519",
            &private,
            "600",
        );
        put(
            &mut script,
            "/var/lib/hk8s-doubles/known_hosts",
            &known,
            "644",
        );
        script.push_str(
            "echo '10.213.0.100:8443 10.213.0.11' > /var/lib/hk8s-doubles/endpoints\n\
             echo homelab > /var/lib/hk8s-doubles/ssh_user\n\
             : > /var/log/hk8s-doubles.log\n\
             ak=~homelab/.ssh/authorized_keys\n\
             sed -i '/hk8s-doubles$/d' $ak\n",
        );
        script.push_str(&format!(
            "echo 'restrict,command=\"sudo -n /opt/hk8s-doubles/bin/hk8s-cluster $SSH_ORIGINAL_COMMAND\" {public} hk8s-doubles' >> $ak\n"
        ));
        let d = Doubles { _keys: keys };
        for h in HOSTS {
            // A previous run that was killed may have left state behind.
            lab_out(h, CLEANUP);
            lab_out(h, &script);
        }
        d
    }
}

/// Removes the doubles and everything they or the roles made on a host.
const CLEANUP: &str =
    "rm -rf /opt/hk8s-doubles /var/lib/hk8s-doubles /var/log/hk8s-doubles.log /snap/bin/microk8s \
    /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf /etc/kubernetes/homelab-cni.yaml \
    /etc/kubernetes/manifests/kube-apiserver.yaml /root/.kube/homelab-kubeconfig; \
    rmdir /snap/bin /snap /var/snap /etc/kubernetes/manifests /etc/kubernetes /root/.kube 2>/dev/null; \
    sed -i '/hk8s-doubles$/d' ~homelab/.ssh/authorized_keys; \
    if getent group microk8s >/dev/null; then groupdel microk8s; fi; true";

impl Drop for Doubles {
    fn drop(&mut self) {
        for h in HOSTS {
            let r = lab_sh(h, CLEANUP);
            if r.code != 0 {
                eprintln!("cleanup on {h} failed: {}", r.all());
            }
        }
    }
}

fn lab_dir() -> PathBuf {
    std::env::var_os("HOMELAB_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/homelab/lab"))
}

fn run(cmd: &str, flavour: &str, kubeconfig: &Path, extra: &[&str]) -> Run {
    let book = fixture("flavour.yml");
    let groups = fixture("groups.ini");
    let flavor = format!("k8s_flavor={flavour}");
    let dest = format!("kubeconfig_dest={}", kubeconfig.display());
    let mut args = vec![
        cmd, &book, "-i", "lab", "-i", &groups, "-e", &flavor, "-e", &dest,
    ];
    args.extend_from_slice(extra);
    let roles = repo().join("playbooks/roles").display().to_string();
    homelab(&args, &[("ANSIBLE_ROLES_PATH", &roles)])
}

fn wait_for_lab() -> bool {
    shared_lab()
}

/// Index of the first call matching `pred` at or after `from`.
fn find(calls: &[String], from: usize, pred: impl Fn(&str) -> bool) -> Option<usize> {
    calls
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, c)| pred(c))
        .map(|(i, _)| i)
}

/// The token an "issued TOKEN expires N" line names.
fn issued(c: &str) -> Option<&str> {
    c.strip_prefix("hk8s-cluster issued ")?
        .split(' ')
        .next()
        .filter(|t| *t != "certkey")
}

#[test]
fn microk8s_cluster() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !wait_for_lab() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let kubeconfig = tmp.path().join("kubeconfig");
    let _doubles = Doubles::install();

    // A dry run on fresh hosts: says the snap would be installed and who would join as what;
    // the doubles saw only reads.
    let r = run("plan", "microk8s", &kubeconfig, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("node2 is not a member of node1's cluster: would make a token"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("`microk8s join 10.213.0.11:25000/TOKEN/HASH --worker` here"),
        "{}",
        r.stdout
    );
    no_mutating_calls("plan on fresh hosts");
    assert!(!kubeconfig.exists(), "the plan wrote the kubeconfig");
    clear_logs();

    // The real run: all three install, node2 joins as a control-plane node, then node3 as a
    // worker, each with a token node1 made for it just before.
    let r = run("apply", "microk8s", &kubeconfig, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in HOSTS {
        let c = calls(h);
        assert!(
            c.iter()
                .any(|c| c.starts_with("snap install") && c.contains("1.31/stable")),
            "{h}: {c:?}"
        );
        assert!(
            c.iter()
                .any(|c| c.starts_with("microk8s status --wait-ready")),
            "{h}: {c:?}"
        );
    }
    let n1 = calls("node1");
    let add1 = find(&n1, 0, |c| {
        c.starts_with("microk8s add-node --token-ttl 120")
    })
    .unwrap_or_else(|| panic!("no add-node on node1: {n1:?}"));
    let tok1 = find(&n1, add1, |c| issued(c).is_some())
        .and_then(|i| issued(&n1[i]))
        .unwrap_or_else(|| panic!("{n1:?}"))
        .to_string();
    let join2 = find(&n1, add1, |c| {
        c == format!("hk8s-cluster consume {tok1} node2 control-plane")
    })
    .unwrap_or_else(|| panic!("node2 did not join with node1's first token: {n1:?}"));
    let add2 = find(&n1, join2, |c| c.starts_with("microk8s add-node"))
        .unwrap_or_else(|| panic!("no add-node for node3 after node2 joined: {n1:?}"));
    let tok2 = find(&n1, add2, |c| issued(c).is_some())
        .and_then(|i| issued(&n1[i]))
        .unwrap_or_else(|| panic!("{n1:?}"))
        .to_string();
    find(&n1, add2, |c| {
        c == format!("hk8s-cluster consume {tok2} node3 worker")
    })
    .unwrap_or_else(|| panic!("node3 did not join as a worker with the second token: {n1:?}"));
    assert_eq!(
        n1.iter()
            .filter(|c| c.starts_with("microk8s add-node"))
            .count(),
        2,
        "{n1:?}"
    );
    assert!(!n1.iter().any(|c| c.starts_with("microk8s join")), "{n1:?}");
    let n2 = calls("node2");
    let j2: Vec<_> = n2
        .iter()
        .filter(|c| c.starts_with("microk8s join"))
        .collect();
    assert_eq!(j2.len(), 1, "{n2:?}");
    assert!(
        j2[0].starts_with(&format!("microk8s join 10.213.0.11:25000/{tok1}/"))
            && !j2[0].contains("--worker"),
        "{j2:?}"
    );
    let n3 = calls("node3");
    let j3: Vec<_> = n3
        .iter()
        .filter(|c| c.starts_with("microk8s join"))
        .collect();
    assert_eq!(j3.len(), 1, "{n3:?}");
    assert!(
        j3[0].starts_with(&format!("microk8s join 10.213.0.11:25000/{tok2}/"))
            && j3[0].ends_with("--worker"),
        "{j3:?}"
    );
    assert_eq!(
        members(),
        "node1 control-plane\nnode2 control-plane\nnode3 worker\n"
    );
    // Tokens never reach the output.
    assert!(!r.all().contains(&tok1) && !r.all().contains(&tok2));
    // The kubeconfig on the controller points at the floating IP.
    let kc = std::fs::read_to_string(&kubeconfig).expect("the kubeconfig was fetched");
    assert!(kc.contains("server: https://10.213.0.100:8443"), "{kc}");
    assert!(!kc.contains("16443"), "{kc}");
    // The API certificate names the floating IP on every node.
    for h in HOSTS {
        let t = lab_out(h, "cat /var/snap/microk8s/current/certs/csr.conf.template");
        assert!(t.contains("#MOREIPS\nIP.99 = 10.213.0.100\n"), "{h}: {t}");
    }
    // The microk8s group has the lab user.
    assert!(lab_out("node2", "id -nG homelab").contains("microk8s"));
    clear_logs();

    // A second run changes nothing and makes no token.
    let r = run("apply", "microk8s", &kubeconfig, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in HOSTS {
        assert!(
            recap_line(&r.stdout, h).contains("changed=0 "),
            "{h}: {}",
            r.stdout
        );
    }
    no_mutating_calls("second apply");
    clear_logs();

    // A plan of the built cluster: nothing would change, and only reads happened.
    let r = run("plan", "microk8s", &kubeconfig, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in HOSTS {
        assert!(
            recap_line(&r.stdout, h).contains("changed=0 "),
            "{h}: {}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains("would make a token"), "{}", r.stdout);
    no_mutating_calls("plan of a built cluster");
    clear_logs();

    // reset: refused without the confirmation; confirmed, node3 leaves, then node2, each
    // forgotten by node1; the snap goes last on node1.
    let r = reset("microk8s", &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    no_mutating_calls("reset without confirmation");
    let r = reset("microk8s", &["-e", "reset_confirm=yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let (l3, l2) = (
        first_call("node3", "microk8s leave"),
        first_call("node2", "microk8s leave"),
    );
    let s1 = first_call("node1", "snap remove");
    assert!(
        l3 < l2 && l2 < s1,
        "order: node3 {l3}, node2 {l2}, node1 {s1}"
    );
    let n1 = calls("node1");
    assert!(
        n1.iter().any(|c| c == "microk8s remove-node node3 --force")
            && n1.iter().any(|c| c == "microk8s remove-node node2 --force"),
        "{n1:?}"
    );
    assert!(
        !n1.iter().any(|c| c.starts_with("microk8s leave")),
        "{n1:?}"
    );
    for h in HOSTS {
        assert_eq!(
            lab_out(h, "ls /snap/bin/microk8s 2>/dev/null; true").trim(),
            "",
            "{h}"
        );
    }
    clear_logs();
    let r = reset("microk8s", &["-e", "reset_confirm=yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    no_mutating_calls("second reset");
}

#[test]
fn microk8s_failed_join_and_expired_token() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !wait_for_lab() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let kubeconfig = tmp.path().join("kubeconfig");
    let _doubles = Doubles::install();
    // A flavour homelab does not know: refused with the near name, nothing touched.
    let r = run("apply", "microk8", &kubeconfig, &[]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("k8s_flavor is 'microk8': set it to microk8s or kubeadm"),
        "{}",
        r.stdout
    );
    no_mutating_calls("unknown flavour");
    clear_logs();
    // node2's first token is issued expired; node3's join is refused.
    lab_out("node1", "touch /var/lib/hk8s-doubles/expire-next-token");
    lab_out("node3", "touch /var/lib/hk8s-doubles/fail-next-join");

    let r = run("apply", "microk8s", &kubeconfig, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    // node3 fails with the tool's own message; node1 and node2 do not.
    assert!(
        r.stdout.contains(
            "node3 did not join node1's cluster as a worker: `microk8s join` exited 1: \
             Contacting cluster at 10.213.0.11 / Connection failed. Hostname node3 should resolve to"
        ),
        "{}",
        r.stdout
    );
    assert!(
        recap_line(&r.stdout, "node3").contains("failed=1"),
        "{}",
        r.stdout
    );
    for h in ["node1", "node2"] {
        assert!(
            recap_line(&r.stdout, h).contains("failed=0"),
            "{}",
            r.stdout
        );
    }
    // node2's expired token was refused, a new one made once, and the join went through.
    let n2 = calls("node2");
    assert_eq!(
        n2.iter().filter(|c| c.starts_with("microk8s join")).count(),
        2,
        "{n2:?}"
    );
    let n1 = calls("node1");
    let adds = n1
        .iter()
        .filter(|c| c.starts_with("microk8s add-node"))
        .count();
    assert_eq!(
        adds, 3,
        "two for node2 (one expired), one for node3: {n1:?}"
    );
    assert_eq!(members(), "node1 control-plane\nnode2 control-plane\n");
    clear_logs();

    // The next run, limited to node3, joins node3 only: node1 makes its token through
    // delegation though it is outside the limit; node2 is not touched.
    let r = run("apply", "microk8s", &kubeconfig, &["-l", "node3"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(recap_line(&r.stdout, "node2").is_empty(), "{}", r.stdout);
    let n1 = calls("node1");
    assert_eq!(
        n1.iter()
            .filter(|c| c.starts_with("microk8s add-node"))
            .count(),
        1,
        "{n1:?}"
    );
    assert!(
        n1.iter()
            .any(|c| c.starts_with("hk8s-cluster consume") && c.ends_with(" node3 worker")),
        "{n1:?}"
    );
    assert_eq!(calls("node2"), Vec::<String>::new());
    assert_eq!(
        members(),
        "node1 control-plane\nnode2 control-plane\nnode3 worker\n"
    );

    // A node that stays NotReady fails verify, with the nodes as the first master lists them.
    lab_out("node1", "echo node3 > /var/lib/hk8s-doubles/notready");
    let r = run("apply", "microk8s", &kubeconfig, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("retried 3 times, 'until' never held")
            && r.stdout.contains("node3    NotReady"),
        "{}",
        r.stdout
    );
    assert!(
        recap_line(&r.stdout, "node1").contains("failed=1"),
        "{}",
        r.stdout
    );
}

#[test]
fn kubeadm_cluster() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !wait_for_lab() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let kubeconfig = tmp.path().join("kubeconfig");
    let _doubles = Doubles::install();

    let r = run("plan", "kubeadm", &kubeconfig, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("node2 has no /etc/kubernetes/kubelet.conf: would get a join command"),
        "{}",
        r.stdout
    );
    no_mutating_calls("plan on fresh hosts");
    clear_logs();

    // node1 is initialised once, with the VIP as its endpoint; node2 joins as a control plane
    // with the certificate key; node3 joins as a worker.
    let r = run("apply", "kubeadm", &kubeconfig, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let n1 = calls("node1");
    let inits: Vec<_> = n1
        .iter()
        .filter(|c| c.starts_with("kubeadm init --control-plane-endpoint"))
        .collect();
    assert_eq!(inits.len(), 1, "{n1:?}");
    assert!(
        inits[0].starts_with("kubeadm init --control-plane-endpoint 10.213.0.100:8443 --upload-certs --pod-network-cidr 10.244.0.0/16 --node-name node1"),
        "{inits:?}"
    );
    assert!(
        n1.iter()
            .any(|c| c == "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f /etc/kubernetes/homelab-cni.yaml"),
        "{n1:?}"
    );
    let key = find(&n1, 0, |c| {
        c.starts_with("kubeadm init phase upload-certs --upload-certs")
    })
    .and_then(|i| find(&n1, i, |c| c.starts_with("hk8s-cluster issued certkey ")))
    .map(|i| n1[i].split(' ').nth(3).unwrap_or("").to_string())
    .unwrap_or_else(|| panic!("no certificate key uploaded for node2: {n1:?}"));
    let j2 = find(&n1, 0, |c| {
        c.starts_with("hk8s-cluster consume ") && c.contains(" node2 control-plane ")
    })
    .unwrap_or_else(|| panic!("node2 did not join as a control plane: {n1:?}"));
    assert!(n1[j2].ends_with(&key), "{}", n1[j2]);
    find(&n1, 0, |c| {
        c.starts_with("hk8s-cluster consume ") && c.ends_with(" node3 worker")
    })
    .unwrap_or_else(|| panic!("node3 did not join as a worker: {n1:?}"));
    let n2 = calls("node2");
    assert!(
        n2.iter()
            .any(|c| c.starts_with("kubeadm join 10.213.0.100:8443 --token ")
                && c.contains(" --discovery-token-ca-cert-hash sha256:")
                && c.contains(&format!(" --control-plane --certificate-key {key}"))),
        "{n2:?}"
    );
    assert!(!n2.iter().any(|c| c.starts_with("kubeadm init")), "{n2:?}");
    let n3 = calls("node3");
    let j3: Vec<_> = n3
        .iter()
        .filter(|c| c.starts_with("kubeadm join"))
        .collect();
    assert_eq!(j3.len(), 1, "{n3:?}");
    assert!(!j3[0].contains("--control-plane"), "{j3:?}");
    assert_eq!(
        members(),
        "node1 control-plane\nnode2 control-plane\nnode3 worker\n"
    );
    assert!(!r.all().contains(&key), "the certificate key was printed");
    let kc = std::fs::read_to_string(&kubeconfig).expect("admin.conf was fetched");
    assert!(kc.contains("server: https://10.213.0.100:8443"), "{kc}");
    clear_logs();

    // Already initialised and joined: no init, no token, no join.
    let r = run("apply", "kubeadm", &kubeconfig, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in HOSTS {
        assert!(
            recap_line(&r.stdout, h).contains("changed=0 "),
            "{h}: {}",
            r.stdout
        );
    }
    for h in HOSTS {
        for c in calls(h) {
            assert!(!is_mutating(&c), "second apply: {h} got {c}");
        }
    }
    clear_logs();

    let r = run("plan", "kubeadm", &kubeconfig, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        !r.stdout.contains("would get a join command"),
        "{}",
        r.stdout
    );
    no_mutating_calls("plan of a built cluster");
    clear_logs();

    // reset refuses without the confirmation, and changes nothing.
    let r = reset("kubeadm", &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("Nothing was changed. To go ahead, run again with -e reset_confirm=yes"),
        "{}",
        r.stdout
    );
    no_mutating_calls("reset without confirmation");
    assert_eq!(
        members(),
        "node1 control-plane\nnode2 control-plane\nnode3 worker\n"
    );

    // Confirmed: the worker first, then node2, then the first master.
    let r = reset("kubeadm", &["-e", "reset_confirm=yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let (t3, t2, t1) = (
        first_call("node3", "kubeadm reset -f"),
        first_call("node2", "kubeadm reset -f"),
        first_call("node1", "kubeadm reset -f"),
    );
    assert!(
        t3 < t2 && t2 < t1,
        "reset order: node3 {t3}, node2 {t2}, node1 {t1}"
    );
    assert!(
        calls("node1")
            .iter()
            .any(|c| c.ends_with("delete node node3 --ignore-not-found")),
        "{:?}",
        calls("node1")
    );
    for h in HOSTS {
        assert_eq!(
            lab_out(
                h,
                "ls /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf 2>/dev/null; true"
            )
            .trim(),
            "",
            "{h}"
        );
    }
    clear_logs();
    // Nothing left to reset: a second reset changes nothing.
    let r = reset("kubeadm", &["-e", "reset_confirm=yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    no_mutating_calls("second reset");
}

#[test]
fn kubeadm_failed_join_and_expired_token() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !wait_for_lab() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let kubeconfig = tmp.path().join("kubeconfig");
    let _doubles = Doubles::install();
    // A failed init fails node1 with kubeadm's message; nobody joins a cluster that is not there.
    lab_out("node1", "touch /var/lib/hk8s-doubles/fail-next-init");
    let r = run("apply", "kubeadm", &kubeconfig, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains(
            "kubeadm init failed on node1 (exit 1): error execution phase preflight: [preflight] \
             Some fatal errors occurred: / [ERROR NumCPU]: the number of available CPUs 1 is less than the required 2"
        ),
        "{}",
        r.stdout
    );
    for h in ["node2", "node3"] {
        assert!(
            !calls(h).iter().any(|c| is_mutating(c)),
            "{h}: {:?}",
            calls(h)
        );
    }
    assert_eq!(
        lab_out("node1", "ls /etc/kubernetes/admin.conf 2>/dev/null; true").trim(),
        ""
    );
    clear_logs();
    // The first token made after init (node2's) is expired; node3's join is refused.
    lab_out("node1", "touch /var/lib/hk8s-doubles/expire-next-token");
    lab_out("node3", "touch /var/lib/hk8s-doubles/fail-next-join");

    let r = run("apply", "kubeadm", &kubeconfig, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains(
            "node3 did not join the cluster as a worker: `kubeadm join` exited 1: \
             error execution phase preflight: couldn't validate the identity of the API Server"
        ),
        "{}",
        r.stdout
    );
    assert!(
        recap_line(&r.stdout, "node3").contains("failed=1"),
        "{}",
        r.stdout
    );
    for h in ["node1", "node2"] {
        assert!(
            recap_line(&r.stdout, h).contains("failed=0"),
            "{}",
            r.stdout
        );
    }
    let n2 = calls("node2");
    assert_eq!(
        n2.iter().filter(|c| c.starts_with("kubeadm join")).count(),
        2,
        "the expired token was replaced once: {n2:?}"
    );
    assert_eq!(members(), "node1 control-plane\nnode2 control-plane\n");
    clear_logs();

    let r = run("apply", "kubeadm", &kubeconfig, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let n1 = calls("node1");
    assert!(
        !n1.iter().any(|c| c.starts_with("kubeadm init --")),
        "{n1:?}"
    );
    assert!(
        !n1.iter()
            .any(|c| c.starts_with("kubeadm init phase upload-certs")),
        "a worker needs no certificate key: {n1:?}"
    );
    assert!(calls("node2")
        .iter()
        .all(|c| !c.starts_with("kubeadm join")));
    assert_eq!(
        members(),
        "node1 control-plane\nnode2 control-plane\nnode3 worker\n"
    );
}

#[test]
fn kubeadm_install_plan() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !wait_for_lab() {
        return;
    }
    let state = "ls /etc/apt/sources.list.d/kubernetes.sources /etc/apt/keyrings/kubernetes-apt-keyring.asc \
                 /etc/containerd 2>/dev/null; dpkg-query -W containerd kubelet 2>/dev/null; true";
    let before = lab_out("node1", state);
    let roles = repo().join("playbooks/roles").display().to_string();
    let r = homelab(
        &["plan", &fixture("kubeadm_install.yml"), "-i", "lab"],
        &[("ANSIBLE_ROLES_PATH", &roles)],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    for want in [
        "+containerd: ",
        "+Signed-By: /etc/apt/keyrings/kubernetes-apt-keyring.asc",
        "+URIs: https://pkgs.k8s.io/core:/stable:/v1.31/deb/",
        "+Suites: /",
        "+-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "would write /etc/containerd/config.toml from `containerd config default` with SystemdCgroup = true",
        "would hold kubeadm once it is installed",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
    assert!(
        r.stdout.contains("kubelet=1.31.2-1.1") || r.stdout.contains("+kubelet: "),
        "{}",
        r.stdout
    );
    // Nothing was downloaded or written.
    let lines: Vec<&str> = r.stdout.lines().filter(|l| !l.is_empty()).collect();
    let get_url = lines
        .iter()
        .position(|l| l.contains("the Kubernetes repository key, downloaded from"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert_eq!(lines[get_url + 1], "skipping: [node1]", "{}", r.stdout);
    assert_eq!(lab_out("node1", state), before);
}

/// A signed flat apt repository on the controller: kubelet, kubeadm and kubectl 1.31.2-1.1
/// stand-ins (a script and, for kubelet, a unit). Returns (repo folder, armored public key), or
/// None when gpg or dpkg-deb is missing.
fn build_repo(dir: &Path) -> Option<(PathBuf, String)> {
    use std::process::Command;
    let have = |t: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !have("gpg") || !have("dpkg-deb") {
        if std::env::var_os("CI").is_some() {
            panic!("this test needs gpg and dpkg-deb on the controller");
        }
        eprintln!("skipped: needs gpg and dpkg-deb");
        return None;
    }
    let gnupg = dir.join("gnupg");
    std::fs::create_dir_all(&gnupg).ok()?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).ok()?;
    let gpg = |args: &[&str]| {
        let o = Command::new("gpg")
            .env("GNUPGHOME", &gnupg)
            .args([
                "--batch",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .expect("gpg runs");
        assert!(
            o.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    gpg(&[
        "--quick-gen-key",
        "hk8s test repository <hk8s@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let key = String::from_utf8(gpg(&["--armor", "--export"])).expect("armored key");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).ok()?;
    let mut packages = String::new();
    for name in ["kubelet", "kubeadm", "kubectl"] {
        let root = dir.join(format!("pkg-{name}"));
        std::fs::create_dir_all(root.join("DEBIAN")).ok()?;
        std::fs::create_dir_all(root.join("usr/bin")).ok()?;
        let control = format!(
            "Package: {name}\nVersion: 1.31.2-1.1\nArchitecture: all\nMaintainer: hk8s <hk8s@example.invalid>\n\
             Description: hk8s stand-in for {name}\n"
        );
        std::fs::write(root.join("DEBIAN/control"), &control).ok()?;
        let bin = root.join("usr/bin").join(name);
        std::fs::write(
            &bin,
            format!("#!/bin/sh\necho '{name} v1.31.2 (hk8s stand-in)'\n"),
        )
        .ok()?;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).ok()?;
        if name == "kubelet" {
            std::fs::create_dir_all(root.join("lib/systemd/system")).ok()?;
            std::fs::write(
                root.join("lib/systemd/system/kubelet.service"),
                "[Unit]\nDescription=hk8s stand-in kubelet\n[Service]\nExecStart=/bin/sleep infinity\n\
                 [Install]\nWantedBy=multi-user.target\n",
            )
            .ok()?;
        }
        let deb = repo.join(format!("{name}_1.31.2-1.1_all.deb"));
        let o = Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&root)
            .arg(&deb)
            .output()
            .expect("dpkg-deb runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let data = std::fs::read(&deb).ok()?;
        use sha2::Digest;
        let sha = hex(&sha2::Sha256::digest(&data));
        packages.push_str(&format!(
            "{control}Filename: ./{}\nSize: {}\nSHA256: {sha}\n\n",
            deb.file_name()?.to_string_lossy(),
            data.len()
        ));
    }
    std::fs::write(repo.join("Packages"), &packages).ok()?;
    use sha2::Digest;
    let psha = hex(&sha2::Sha256::digest(packages.as_bytes()));
    let release = format!(
        "Origin: hk8s\nLabel: hk8s\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n {psha} {} Packages\n",
        packages.len()
    );
    std::fs::write(repo.join("Release"), &release).ok()?;
    let signed = gpg(&[
        "--clearsign",
        "--output",
        "-",
        &repo.join("Release").display().to_string(),
    ]);
    std::fs::write(repo.join("InRelease"), signed).ok()?;
    Some((repo, key))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const INSTALL_CLEANUP: &str =
    "rm -f /etc/apt/sources.list.d/hk8s-kubernetes.sources /etc/apt/keyrings/hk8s-kubernetes.asc; \
    dpkg --purge kubelet kubeadm kubectl >/dev/null 2>&1; \
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q containerd runc >/dev/null 2>&1; \
    rm -rf /srv/hk8s-repo /etc/containerd /var/lib/apt/lists/_srv_hk8s-repo_*; true";

struct InstallCleanup;
impl Drop for InstallCleanup {
    fn drop(&mut self) {
        let r = lab_sh("node1", INSTALL_CLEANUP);
        if r.code != 0 {
            eprintln!("cleanup on node1 failed: {}", r.all());
        }
    }
}

#[test]
fn kubeadm_install_real() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !wait_for_lab() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some((repo, key)) = build_repo(tmp.path()) else {
        return;
    };
    // containerd must not be there already (the test removes it at the end).
    let had = lab_out(
        "node1",
        "dpkg-query -W -f '${Status}' containerd 2>/dev/null; true",
    );
    assert!(
        !had.contains("installed"),
        "containerd is already installed on node1: {had}"
    );
    let _cleanup = InstallCleanup;
    let mut script = String::from("set -e; rm -rf /srv/hk8s-repo; mkdir -p /srv/hk8s-repo\n");
    for e in std::fs::read_dir(&repo).expect("repo") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        script.push_str(&format!(
            "echo '{}' | base64 -d > /srv/hk8s-repo/{name}\n",
            b64(&std::fs::read(&p).expect("file"))
        ));
    }
    script.push_str("chmod -R a+rX /srv/hk8s-repo\n");
    lab_out("node1", &script);
    let vars = tmp.path().join("vars.json");
    std::fs::write(
        &vars,
        serde_json::json!({"kubeadm_repo_url": "file:/srv/hk8s-repo/", "kubeadm_repo_key": key})
            .to_string(),
    )
    .expect("vars");
    let at_vars = format!("@{}", vars.display());
    let roles = repo_roles();
    let book = fixture("kubeadm_install_real.yml");
    let r = homelab(
        &["apply", &book, "-i", "lab", "-e", &at_vars],
        &[("ANSIBLE_ROLES_PATH", &roles)],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let state = lab_out(
        "node1",
        "cat /etc/apt/sources.list.d/hk8s-kubernetes.sources; \
         dpkg-query -W -f '${Package} ${Version} ${Status}\\n' kubelet kubeadm kubectl; \
         dpkg --get-selections kubelet kubeadm kubectl; \
         grep -c 'SystemdCgroup = true' /etc/containerd/config.toml; systemctl is-enabled kubelet",
    );
    for want in [
        "URIs: file:/srv/hk8s-repo/",
        "Suites: /",
        "Signed-By: /etc/apt/keyrings/hk8s-kubernetes.asc",
        "kubelet 1.31.2-1.1 hold ok installed",
        "kubeadm 1.31.2-1.1 hold ok installed",
        "kubectl 1.31.2-1.1 hold ok installed",
    ] {
        assert!(state.contains(want), "missing {want:?} in\n{state}");
    }
    for p in ["kubelet", "kubeadm", "kubectl"] {
        assert!(
            state
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [p, "hold"]),
            "{p} is not held:\n{state}"
        );
    }
    assert!(state.contains("\n1\nenabled"), "{state}");
    // Again: nothing changes.
    let r = homelab(
        &["apply", &book, "-i", "lab", "-e", &at_vars],
        &[("ANSIBLE_ROLES_PATH", &roles)],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        recap_line(&r.stdout, "node1").contains("changed=0 "),
        "{}",
        r.stdout
    );
}

fn repo_roles() -> String {
    repo().join("playbooks/roles").display().to_string()
}
