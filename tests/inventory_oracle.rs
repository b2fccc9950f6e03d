//! `homelab inventory` against ansible-inventory: the golden files under
//! tests/fixtures/inventory/golden/ (made with the real tool by regen.py), and the
//! real tool itself when it is installed.
//!
//! The oracle is `$ANSIBLE_INVENTORY` (a path), else `ansible-inventory` on PATH.
//! Without it the goldens are still checked; with `CI` set its absence is a failure.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_homelab");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventory")
}

struct Case {
    name: String,
    cwd: Option<String>,
    args: Vec<String>,
}

impl Case {
    fn is_text(&self) -> bool {
        self.args.iter().any(|a| a == "--graph")
    }
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("cases.txt")).expect("read cases.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.splitn(3, '|').map(str::trim).collect();
            assert_eq!(parts.len(), 3, "bad line in cases.txt: {l}");
            Case {
                name: parts[0].to_string(),
                cwd: (parts[1] != "-").then(|| parts[1].to_string()),
                args: parts[2].split_whitespace().map(String::from).collect(),
            }
        })
        .collect()
}

/// Where to run a case, and its arguments with fixture paths made absolute.
fn resolve(case: &Case, tmp: &Path) -> (PathBuf, Vec<String>) {
    match &case.cwd {
        Some(dir) => (fixtures().join(dir), case.args.clone()),
        None => {
            let mut out = Vec::new();
            for (i, a) in case.args.iter().enumerate() {
                let after_i = i > 0 && matches!(case.args[i - 1].as_str(), "-i" | "--inventory");
                if after_i && !a.contains(',') {
                    out.push(fixtures().join(a).to_string_lossy().to_string());
                } else {
                    out.push(a.clone());
                }
            }
            (tmp.to_path_buf(), out)
        }
    }
}

fn oracle() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ANSIBLE_INVENTORY") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ansible-inventory"))
        .find(|p| p.is_file())
}

/// The oracle, or `None` after a skip note; a failure under CI.
fn oracle_or_skip() -> Option<PathBuf> {
    let found = oracle();
    if found.is_none() {
        let why = match std::env::var("ANSIBLE_INVENTORY") {
            Ok(p) => format!("ANSIBLE_INVENTORY={p} is not a file"),
            Err(_) => {
                "ANSIBLE_INVENTORY is not set and ansible-inventory is not on PATH".to_string()
            }
        };
        if std::env::var_os("CI").is_some() {
            panic!(
                "the oracle is missing under CI: {why}. Install ansible-core (scripts/deps.sh does) \
                 and set ANSIBLE_INVENTORY to its ansible-inventory"
            );
        }
        eprintln!("note: {why}; comparing with the golden files only (install ansible-core to compare live)");
    }
    found
}

fn run_homelab(cwd: &Path, args: &[String]) -> Output {
    Command::new(BIN)
        .arg("inventory")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run homelab")
}

fn run_oracle(tool: &Path, cwd: &Path, args: &[String], config: &Path) -> Output {
    let mut cmd = Command::new(tool);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ANSIBLE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("ANSIBLE_CONFIG", config)
        .env("ANSIBLE_NOCOLOR", "1")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run ansible-inventory")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `Ok(())` when both outputs mean the same; else what differs.
fn same(case: &Case, expected: &str, got: &str) -> Result<(), String> {
    if case.is_text() {
        if expected.trim_end() == got.trim_end() {
            return Ok(());
        }
        let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
        let at = e
            .iter()
            .zip(&g)
            .position(|(a, b)| a != b)
            .unwrap_or(e.len().min(g.len()));
        return Err(format!(
            "text differs at line {}:\n  expected: {:?}\n  got:      {:?}",
            at + 1,
            e.get(at).copied().unwrap_or("<end>"),
            g.get(at).copied().unwrap_or("<end>")
        ));
    }
    let e: Value = serde_json::from_str(expected)
        .map_err(|err| format!("expected output is not JSON: {err}"))?;
    let g: Value = serde_json::from_str(got)
        .map_err(|err| format!("homelab output is not JSON: {err}\n{got}"))?;
    if e == g {
        Ok(())
    } else {
        Err(format!("JSON differs:\n{}", json_diff(&e, &g, "")))
    }
}

/// The paths where two JSON values differ.
fn json_diff(e: &Value, g: &Value, path: &str) -> String {
    match (e, g) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = String::new();
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => out.push_str(&json_diff(v, w, &format!("{path}.{k}"))),
                    None => out.push_str(&format!("  {path}.{k}: missing (expected {v})\n")),
                }
            }
            for (k, w) in b {
                if !a.contains_key(k) {
                    out.push_str(&format!("  {path}.{k}: unexpected {w}\n"));
                }
            }
            out
        }
        _ if e == g => String::new(),
        _ => format!("  {path}: expected {e}, got {g}\n"),
    }
}

#[test]
fn list_graph_and_host_match_ansible_inventory() {
    let tool = oracle_or_skip();
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("empty-ansible.cfg");
    std::fs::write(&config, "").expect("write empty ansible.cfg");
    let neutral = tmp.path().join("cwd");
    std::fs::create_dir(&neutral).expect("mkdir");
    let cases = cases();
    assert!(cases.len() >= 20, "cases.txt lost its cases");

    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| {
                let (tool, config, neutral) = (&tool, &config, &neutral);
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for case in chunk {
                        let (cwd, args) = resolve(case, neutral);
                        let out = run_homelab(&cwd, &args);
                        if !out.status.success() {
                            failures.push(format!(
                                "{}: homelab failed ({}): {}",
                                case.name,
                                out.status,
                                String::from_utf8_lossy(&out.stderr)
                            ));
                            continue;
                        }
                        let got = text(&out);
                        let ext = if case.is_text() { "txt" } else { "json" };
                        let golden_path = fixtures().join("golden").join(format!("{}.{ext}", case.name));
                        match std::fs::read_to_string(&golden_path) {
                            Ok(golden) => {
                                if let Err(d) = same(case, &golden, &got) {
                                    failures.push(format!("{} vs golden {}: {d}", case.name, golden_path.display()));
                                }
                            }
                            Err(e) => failures.push(format!(
                                "{}: no golden file {} ({e}); run tests/fixtures/inventory/regen.py",
                                case.name,
                                golden_path.display()
                            )),
                        }
                        if let Some(tool) = tool {
                            let o = run_oracle(tool, &cwd, &args, config);
                            if !o.status.success() {
                                failures.push(format!(
                                    "{}: ansible-inventory failed: {}",
                                    case.name,
                                    String::from_utf8_lossy(&o.stderr)
                                ));
                            } else if let Err(d) = same(case, &text(&o), &got) {
                                failures.push(format!("{} vs live ansible-inventory: {d}", case.name));
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("case thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------- bad input

fn fail(cwd: &Path, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = run_homelab(cwd, &args);
    assert!(
        !out.status.success(),
        "expected a failure for {args:?}, got:\n{}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "nothing on stdout when failing");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write fixture");
    p.to_string_lossy().to_string()
}

#[test]
fn missing_source_is_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = fail(tmp.path(), &["-i", "/nonexistent/hosts.ini", "--list"]);
    assert!(
        err.contains("inventory source '/nonexistent/hosts.ini' does not exist; pass -i with a file or directory"),
        "{err}"
    );
}

#[test]
fn malformed_ini_names_file_line_and_text() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = write(tmp.path(), "bad.ini", "[web]\nweb1\nweb[1:]\n");
    let err = fail(tmp.path(), &["-i", &p, "--list"]);
    assert!(err.contains(&format!("{p}:3:")), "{err}");
    assert!(err.contains("web[1:]"), "{err}");
    assert!(err.contains("end value"), "{err}");

    let p = write(
        tmp.path(),
        "suffix.ini",
        "[web]\nweb1\n[web:badsuffix]\nx\n",
    );
    let err = fail(tmp.path(), &["-i", &p, "--list"]);
    assert!(
        err.contains(&format!("{p}:3:")) && err.contains("unknown type 'badsuffix'"),
        "{err}"
    );

    let p = write(tmp.path(), "kv.ini", "[web]\nweb1 port\n");
    let err = fail(tmp.path(), &["-i", &p, "--list"]);
    assert!(
        err.contains(&format!("{p}:2:")) && err.contains("key=value"),
        "{err}"
    );

    let p = write(tmp.path(), "undef.ini", "[lab:children]\nweb\n");
    let err = fail(tmp.path(), &["-i", &p, "--list"]);
    assert!(
        err.contains(&format!("{p}:2:")) && err.contains("never defined"),
        "{err}"
    );
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = write(
        tmp.path(),
        "bad.yml",
        "all:\n  hosts:\n    h1:\n      a: 1\n     b: 2\n",
    );
    let err = fail(tmp.path(), &["-i", &p, "--list"]);
    // The same position libyaml (and so ansible-inventory) reports.
    assert!(err.contains(&format!("{p}:5:6: ")), "{err}");

    let p = write(tmp.path(), "shape.yml", "web:\n  hosts: [a, b]\n");
    let err = fail(tmp.path(), &["-i", &p, "--list"]);
    assert!(
        err.contains("invalid \"hosts\" entry for group \"web\""),
        "{err}"
    );

    std::fs::create_dir_all(tmp.path().join("gv/group_vars")).expect("mkdir");
    let inv = write(&tmp.path().join("gv"), "hosts.ini", "[web]\nw1\n");
    write(&tmp.path().join("gv/group_vars"), "web.yml", "a: 1\nb: [\n");
    let err = fail(tmp.path(), &["-i", &inv, "--list"]);
    assert!(err.contains("group_vars/web.yml:2:"), "{err}");
}

#[test]
fn group_loops_are_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = write(tmp.path(), "loop.ini", "[a:children]\nb\n[b:children]\na\n");
    let err = fail(tmp.path(), &["-i", &p, "--list"]);
    assert!(
        err.contains(&format!("{p}:4:")) && err.contains("loop"),
        "{err}"
    );
}

#[test]
fn unknown_names_in_patterns_are_errors_with_suggestions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let inv = fixtures()
        .join("ini_full/hosts.ini")
        .to_string_lossy()
        .to_string();
    let err = fail(tmp.path(), &["-i", &inv, "--list", "-l", "web:prodd"]);
    assert!(
        err.contains("no host or group matches 'prodd' (did you mean 'prod'?)"),
        "{err}"
    );
    let err = fail(tmp.path(), &["-i", &inv, "--host", "web01"]);
    assert!(
        err.contains("no host or group matches 'web01' (did you mean 'web'?)"),
        "{err}"
    );
    let err = fail(tmp.path(), &["-i", &inv, "--graph", "zonee"]);
    assert!(
        err.contains("unknown group 'zonee' (did you mean 'zone'?)"),
        "{err}"
    );
    let err = fail(tmp.path(), &["-i", &inv, "--host", "web"]);
    assert!(err.contains("exactly one host"), "{err}");
    let err = fail(tmp.path(), &["-i", &inv, "--list", "-l", "web:&db"]);
    assert!(err.contains("matches no host"), "{err}");
}

#[test]
fn lab_means_the_lab_inventory_and_output_goes_to_a_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lab = tmp.path().join("labstate");
    std::fs::create_dir_all(&lab).expect("mkdir");
    write(
        &lab,
        "inventory.ini",
        "[lab]\nnode1 ansible_host=10.213.0.11\n",
    );
    let out_file = tmp.path().join("out.json");
    let out = Command::new(BIN)
        .args(["inventory", "-i", "lab", "--list", "--output"])
        .arg(&out_file)
        .env("HOMELAB_LAB_DIR", &lab)
        .current_dir(tmp.path())
        .output()
        .expect("run homelab");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).expect("output file"))
        .expect("json");
    assert_eq!(v["lab"]["hosts"], serde_json::json!(["node1"]));
    assert_eq!(
        v["_meta"]["hostvars"]["node1"]["ansible_host"],
        "10.213.0.11"
    );
}

// ---------------------------------------------------------------- patterns

/// `ansible` from the same install as the oracle.
fn ansible_cli(tool: &Path) -> Option<PathBuf> {
    let p = tool.parent()?.join("ansible");
    p.is_file().then_some(p)
}

#[test]
fn patterns_select_what_ansible_selects_in_its_order() {
    let Some(tool) = oracle_or_skip() else { return };
    let Some(ansible) = ansible_cli(&tool) else {
        panic!(
            "no `ansible` next to {}: cannot compare host patterns",
            tool.display()
        );
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("empty-ansible.cfg");
    std::fs::write(&config, "").expect("write empty ansible.cfg");
    let sets: [(&str, &[&str]); 2] = [
        (
            "ini_full/hosts.ini",
            &[
                "all",
                "*",
                "web",
                "prod",
                "web:db",
                "db,web",
                "prod:&arm",
                "prod:!db",
                "!web",
                "web*",
                "*.lan",
                "~db-[ab]",
                "web[0]",
                "web[-1]",
                "web[1:]",
                "web[1:3]",
                "prod[2:]",
                "db:&prod:!db-x",
                "ungrouped",
                "bastion",
                "gw",
                "web01.lan:pi0",
                "pi*:!pi5",
                "zone[0]",
                "arm:zone",
                "all:!prod",
                "prod[3:1]",
                "db-[a:c]",
                "web[1-2]",
            ],
        ),
        (
            "yaml_full/inventory.yml",
            &[
                "all",
                "web",
                "prod",
                "db_replicas",
                "db:!db_replicas",
                "~web-.*",
                "web[1:2]",
                "ungrouped",
                "*",
            ],
        ),
    ];
    let jobs: Vec<(&str, &str)> = sets
        .iter()
        .flat_map(|(inv, ps)| ps.iter().map(move |p| (*inv, *p)))
        .collect();
    let loaded: Vec<(&str, homelab::inventory::Inventory)> = sets
        .iter()
        .map(|(inv, _)| {
            let path = fixtures().join(inv);
            (
                *inv,
                homelab::inventory::Inventory::load(&[path]).expect("load fixture"),
            )
        })
        .collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(4))
            .map(|chunk| {
                let (ansible, config, tmp, loaded) = (&ansible, &config, tmp.path(), &loaded);
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for (inv, p) in chunk {
                        let ours = &loaded.iter().find(|(i, _)| i == inv).expect("loaded").1;
                        let mut cmd = Command::new(ansible);
                        for (k, _) in std::env::vars_os() {
                            if k.to_string_lossy().starts_with("ANSIBLE_") {
                                cmd.env_remove(k);
                            }
                        }
                        let out = cmd
                            .env("ANSIBLE_CONFIG", config)
                            .arg("-i")
                            .arg(fixtures().join(inv))
                            .arg(p)
                            .arg("--list-hosts")
                            .current_dir(tmp)
                            .output()
                            .expect("run ansible");
                        let theirs: Vec<String> = text(&out)
                            .lines()
                            .skip(1)
                            .map(|l| l.trim().to_string())
                            .collect();
                        match ours.select(p) {
                            Ok(mine) if mine == theirs => {}
                            Ok(mine) => failures
                                .push(format!("{inv} '{p}': ansible {theirs:?}, homelab {mine:?}")),
                            Err(e) => failures.push(format!(
                                "{inv} '{p}': ansible {theirs:?}, homelab error {e}"
                            )),
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("pattern thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "patterns differ:\n{}",
        failures.join("\n")
    );
}
