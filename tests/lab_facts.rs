//! Facts on the lab's real hosts: gathered facts against what the hosts say themselves
//! (hostname, routes, /proc/meminfo, nproc, os-release...), `gather_subset: min`, `setup` with
//! `filter` and subsets, bad subsets and arguments, the fact cache (a second run reads the cache:
//! proven by a cached value the live host does not have), and check mode gathering normally.
//! Hostname facts are asserted on node1/node2 only (node3's hostname may be changed by others).

mod common;
use common::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    fixture_in("lab", name)
}

/// The `result` of each task_result event of `task` by host, from `--output json`.
fn results(r: &Run, task: &str) -> Vec<(String, Value)> {
    r.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "task_result" && e["task"] == task)
        .map(|e| {
            (
                e["host"].as_str().unwrap_or("").to_string(),
                e["result"].clone(),
            )
        })
        .collect()
}

fn result_of(r: &Run, task: &str, host: &str) -> Value {
    results(r, task)
        .into_iter()
        .find(|(h, _)| h == host)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no result of '{task}' on {host}:\n{}", r.all()))
}

/// The same as the login user (no become).
fn sh_user(host: &str, cmd: &str) -> String {
    let r = homelab(&["run", "-i", "lab", host, "-m", "shell", "-a", cmd], &[]);
    assert_eq!(r.code, 0, "{cmd}: {}", r.all());
    r.stdout.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn facts_match_the_hosts() {
    if !shared_lab() {
        return;
    }
    let r = homelab(
        &[
            "apply",
            &fixture("facts.yml"),
            "-i",
            "lab",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    for host in ["node1", "node2"] {
        let f = result_of(&r, "all facts", host)["ansible_facts"].clone();
        assert!(f.is_object(), "{host}: {}", r.all());
        // Names.
        let hostname = lab_out(host, "hostname");
        assert_eq!(f["hostname"], hostname.trim(), "{host}");
        assert_eq!(f["nodename"], hostname.trim());
        assert_eq!(f["kernel"], lab_out(host, "uname -r").trim());
        assert_eq!(f["machine_id"], lab_out(host, "cat /etc/machine-id").trim());
        assert_eq!(f["architecture"], lab_out(host, "uname -m").trim());
        // Distribution.
        let os = lab_out(host, "cat /etc/os-release");
        let codename = os
            .lines()
            .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
            .unwrap()
            .trim_matches('"');
        assert_eq!(f["distribution"], "Debian");
        assert_eq!(f["os_family"], "Debian");
        assert_eq!(f["distribution_release"], codename);
        assert_eq!(
            f["distribution_version"],
            lab_out(host, "cat /etc/debian_version").trim()
        );
        assert_eq!(f["pkg_mgr"], "apt");
        assert_eq!(f["service_mgr"], "systemd");
        // Network: the default route and the address on its device.
        let route = lab_out(host, "ip -4 route show default");
        let w: Vec<&str> = route.split_whitespace().collect();
        let gw = w[w.iter().position(|x| *x == "via").unwrap() + 1];
        let dev = w[w.iter().position(|x| *x == "dev").unwrap() + 1];
        let d4 = &f["default_ipv4"];
        assert_eq!(d4["gateway"], gw, "{host}: {d4}");
        assert_eq!(d4["interface"], dev);
        let addr = lab_out(host, &format!("ip -4 -o addr show dev {dev}"));
        let cidr = addr.split_whitespace().nth(3).unwrap();
        let (ip, prefix) = cidr.split_once('/').unwrap();
        assert_eq!(d4["address"], ip);
        assert_eq!(d4["prefix"], prefix);
        assert_eq!(
            d4["macaddress"],
            lab_out(host, &format!("cat /sys/class/net/{dev}/address")).trim()
        );
        assert_eq!(f["all_ipv4_addresses"], serde_json::json!([ip]));
        assert!(f["interfaces"]
            .as_array()
            .unwrap()
            .contains(&Value::from(dev)));
        assert_eq!(f[dev]["ipv4"]["address"], ip);
        assert_eq!(f["lo"]["type"], "loopback");
        let ns: Vec<String> = lab_out(host, "cat /etc/resolv.conf")
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver "))
            .map(|s| s.trim().to_string())
            .collect();
        assert_eq!(f["dns"]["nameservers"], serde_json::json!(ns));
        // Hardware.
        let meminfo = lab_out(host, "cat /proc/meminfo");
        let kb = |k: &str| -> u64 {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        assert_eq!(f["memtotal_mb"], kb("MemTotal:") / 1024);
        assert_eq!(f["swaptotal_mb"], kb("SwapTotal:") / 1024);
        let nproc: u64 = lab_out(host, "nproc").trim().parse().unwrap();
        assert_eq!(f["processor_vcpus"], nproc);
        assert_eq!(f["processor_nproc"], nproc);
        let root = f["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mount"] == "/")
            .cloned()
            .unwrap_or_else(|| panic!("no / in {}", f["mounts"]));
        let df = lab_out(host, "df -P -k /");
        let total: u64 = df
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(root["size_total"], total * 1024);
        // The lab's hosts are systemd-nspawn containers.
        assert_eq!(f["virtualization_type"], "systemd-nspawn");
        assert_eq!(f["virtualization_role"], "guest");
        // The login user, its environment, the clock.
        assert_eq!(f["user_id"], sh_user(host, "id -un").trim());
        assert_eq!(
            f["user_uid"],
            sh_user(host, "id -u").trim().parse::<u64>().unwrap()
        );
        assert_eq!(f["user_dir"], sh_user(host, "echo $HOME").trim());
        assert_eq!(f["env"]["HOME"], f["user_dir"]);
        assert!(f["env"]["PATH"].as_str().unwrap().contains("/usr/bin"));
        let epoch: u64 = f["date_time"]["epoch"].as_str().unwrap().parse().unwrap();
        assert!(epoch > 1_700_000_000);
        assert!(f["uptime_seconds"].as_u64().is_some());
        assert_eq!(f["selinux"]["status"], "disabled");
        assert!(f.get("python").is_none());
        // Top-level names and ansible_facts agree; other hosts' facts through hostvars.
        let top = result_of(&r, "top-level names", host)["msg"].clone();
        assert_eq!(
            top,
            format!("{}|{ip}|Debian|{codename}", hostname.trim()),
            "{host}"
        );
        let other = if host == "node1" { "node2" } else { "node1" };
        assert_eq!(result_of(&r, "other host", host)["msg"], other);
    }
}

#[test]
fn min_subset_gathers_fewer_facts() {
    if !shared_lab() {
        return;
    }
    let all = homelab(
        &[
            "apply",
            &fixture("facts.yml"),
            "-i",
            "lab",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(all.code, 0, "{}", all.all());
    let min = homelab(
        &[
            "apply",
            &fixture("facts_min.yml"),
            "-i",
            "lab",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(min.code, 0, "{}", min.all());
    let count = |r: &Run| {
        result_of(r, "all facts", "node1")["ansible_facts"]
            .as_object()
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let (n_all, n_min) = (count(&all), count(&min));
    assert!(n_min > 10 && n_min < n_all, "min {n_min}, all {n_all}");
}

#[test]
fn setup_module_filter_and_subsets() {
    if !shared_lab() {
        return;
    }
    let r = homelab(
        &[
            "apply",
            &fixture("facts_setup.yml"),
            "-i",
            "lab",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let f = result_of(&r, "filtered", "node1")["dist.ansible_facts"].clone();
    let keys: Vec<&String> = f.as_object().unwrap().keys().collect();
    assert!(keys.len() >= 4, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("ansible_distribution")),
        "{keys:?}"
    );
    // Check mode runs setup too (it changes nothing).
    let r = homelab(&["plan", &fixture("facts_setup.yml"), "-i", "lab"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn bad_subsets_arguments_and_timeouts_fail_clearly() {
    if !shared_lab() {
        return;
    }
    let r = homelab(
        &["apply", &fixture("facts_bad_subset.yml"), "-i", "lab"],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("Bad subset 'hardwre'"), "{}", r.all());
    assert!(!r.stdout.contains("never"), "{}", r.all());
    let r = homelab(
        &["apply", &fixture("facts_bad_play_subset.yml"), "-i", "lab"],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("Bad subset 'netwrk'"), "{}", r.all());
    assert!(!r.stdout.contains("never"), "{}", r.all());
    let r = homelab(&["apply", &fixture("facts_bad_arg.yml"), "-i", "lab"], &[]);
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.all().contains("subset"), "{}", r.all());
    let r = homelab(
        &["apply", &fixture("facts_bad_timeout.yml"), "-i", "lab"],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("gather_timeout must be a positive number"),
        "{}",
        r.all()
    );
}

fn msg(r: &Run, task: &str) -> String {
    result_of(r, task, "node1")["msg"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn fact_cache_across_runs() {
    if !shared_lab() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("facts");
    let cache_s = cache.display().to_string();
    let book = fixture("facts_cache.yml");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "apply",
            book.as_str(),
            "-i",
            "lab",
            "--output",
            "json",
            "--fact-cache",
            &cache_s,
        ];
        a.extend_from_slice(extra);
        homelab(&a, &[])
    };
    // First run: gathered live, written to the cache (0600), node2 unknown.
    let r = run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(msg(&r, "hostname"), "name=node1 facts=node1");
    assert_eq!(msg(&r, "other"), "node2=UNDEFINED");
    let file = cache.join("node1");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut facts: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(facts["ansible_hostname"], "node1");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The cache says something the live host does not: the second run must show it.
    facts.insert("ansible_hostname".into(), "hfacts-cached".into());
    std::fs::write(&file, serde_json::to_string(&facts).unwrap()).unwrap();
    let mut n2 = facts.clone();
    n2.insert("ansible_hostname".into(), "hfacts-{{ 6 * 7 }}".into());
    std::fs::write(cache.join("node2"), serde_json::to_string(&n2).unwrap()).unwrap();
    let r = run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        msg(&r, "hostname"),
        "name=hfacts-cached facts=hfacts-cached"
    );
    // A host outside the play: its facts come from the cache.
    // (Cached text is never templated again.)
    assert_eq!(msg(&r, "other"), "node2=hfacts-{{ 6 * 7 }}");
    // A filtered setup updates its facts and keeps the cached rest (in the cache too).
    let r = run(&["-e", "refresh=true"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(msg(&r, "after"), "name=hfacts-cached dist=Debian");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(kept["ansible_hostname"], "hfacts-cached");
    assert!(kept["ansible_memtotal_mb"].as_u64().is_some(), "{kept}");
    // HOMELAB_FACT_CACHE does the same as --fact-cache.
    let r = homelab(
        &["apply", &book, "-i", "lab", "--output", "json"],
        &[("HOMELAB_FACT_CACHE", &cache_s)],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        msg(&r, "hostname"),
        "name=hfacts-cached facts=hfacts-cached"
    );

    // A stale entry (written long ago) is gathered again and rewritten.
    let f = std::fs::File::options().write(true).open(&file).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
        .unwrap();
    drop(f);
    let r = run(&["--fact-cache-timeout", "3600"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(msg(&r, "hostname"), "name=node1 facts=node1");
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(again["ansible_hostname"], "node1");
}

#[test]
fn check_mode_gathers_facts() {
    if !shared_lab() {
        return;
    }
    let r = homelab(
        &[
            "plan",
            &fixture("facts_cache.yml"),
            "-i",
            "lab",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(msg(&r, "hostname"), "name=node1 facts=node1");
    let g = result_of(&r, "Gathering Facts", "node1");
    assert_eq!(g["failed"], false, "{g}");
}

/// Processes the fact script forks on a lab host: the last pid the kernel handed out
/// (/proc/loadavg) before and after, the script run in the current shell. Other sessions on the
/// host can only add to it, so the least of a dozen samples counts (on node3, which the other
/// tests here leave alone). Full set: `date`, `ip`, `df`;
/// `min`: `date` alone.
#[test]
fn fact_script_forks_few_processes() {
    if !shared_lab() {
        return;
    }
    use homelab::engine::facts::{script, subset};
    for (items, most) in [(vec![], 3u64), (vec!["min".to_string()], 1)] {
        let s = script::build(&subset(&items).unwrap());
        let body = s.trim_end().strip_suffix("exit 0").unwrap();
        let cmd = format!(
            "best=999; for n in 1 2 3 4 5 6 7 8 9 10 11 12; do read a b c d p1 < /proc/loadavg; {{ {body}\n}} >/dev/null 2>&1; \
             read a b c d p2 < /proc/loadavg; [ $((p2-p1)) -lt $best ] && best=$((p2-p1)); done; echo \"forks=$best\""
        );
        let out = sh_user("node3", &cmd);
        let n: u64 = out
            .lines()
            .find_map(|l| l.strip_prefix("forks="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        assert!(
            n <= most,
            "{items:?}: {n} processes, expected at most {most}"
        );
        assert!(n >= 1, "date runs at least: {out}");
    }
}
