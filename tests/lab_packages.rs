//! Package modules on the lab's real Debian hosts: apt (check mode that installs nothing, install,
//! second run changed=0, fixed versions, absent and purge, a missing package failing with apt's
//! own message while another host goes on, a held dpkg lock), dpkg_selections, apt_repository and
//! deb822_repository, snap on a host without snapd, and arguments refused before any host is
//! touched. The packages used here (tree, sl, figlet) are this test's own.

mod common;
use common::*;
use std::sync::Mutex;

/// The tests here share node1/node2's dpkg database: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn fixture(name: &str) -> String {
    fixture_in("lab", name)
}

/// `NAME STATUS VERSION` per package dpkg knows, from the host directly.
fn dpkg(host: &str, pkgs: &str) -> String {
    let r = lab_sh(
        host,
        &format!(
            "dpkg-query -W -f='PKG ${{Package}} ${{db:Status-Abbrev}}${{Version}}\\n' {pkgs} 2>/dev/null; true"
        ),
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let mut v: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("PKG "))
        .collect();
    v.sort();
    v.join("\n")
}

fn installed(host: &str, pkg: &str) -> Option<String> {
    dpkg(host, pkg).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && f[0] == pkg && f[1] == "ii").then(|| f[2].to_string())
    })
}

fn purge(host: &str, pkgs: &str) {
    // Another test may hold the dpkg lock for a moment: retry.
    let r = lab_sh(
        host,
        &format!(
            "for i in $(seq 60); do dpkg -P {pkgs} >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1"
        ),
    );
    assert_eq!(r.code, 0, "{}", r.all());
}

fn apply(book: &str, extra: &[&str]) -> Run {
    let mut args = vec!["apply", book, "-i", "lab"];
    args.extend_from_slice(extra);
    homelab(&args, &[])
}

#[test]
fn apt_plan_install_idempotent_fixed_absent_purge() {
    if !shared_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let book = fixture("packages.yml");
    for h in ["node1", "node2"] {
        purge(h, "tree sl");
    }
    let before = (dpkg("node1", "tree sl"), dpkg("node2", "tree sl"));

    // Check mode: the plan names both packages as installs, with a state diff; nothing changes.
    let r = homelab(
        &["plan", &book, "-i", "lab", "-e", "pkgs=tree,sl", "-v"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("-tree: not installed"), "{}", r.stdout);
    assert!(r.stdout.contains("-sl: not installed"), "{}", r.stdout);
    assert!(r.stdout.contains("would install tree"), "{}", r.stdout);
    assert_changed(&r, "node1", 1);
    assert_eq!(
        (dpkg("node1", "tree sl"), dpkg("node2", "tree sl")),
        before,
        "check mode changed the hosts"
    );
    assert_eq!(installed("node1", "tree"), None);

    // The real run installs both, with the versions in the diff; a second run changes nothing.
    let r = apply(&book, &["-e", "pkgs=tree,sl", "--diff"]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in ["node1", "node2"] {
        assert_changed(&r, h, 1);
        let v = installed(h, "tree").expect("tree installed");
        assert!(r.stdout.contains(&format!("+tree: {v}")), "{}", r.stdout);
        assert!(installed(h, "sl").is_some());
    }
    let r = apply(&book, &["-e", "pkgs=tree,sl"]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in ["node1", "node2"] {
        assert_changed(&r, h, 0);
    }

    // absent keeps config files (dpkg "rc" where the package has any); purge removes all.
    let r = apply(
        &book,
        &[
            "-e",
            "pkgs=tree",
            "-e",
            "pkg_state=absent",
            "--diff",
            "-l",
            "node1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("+tree: removed"), "{}", r.stdout);
    assert_eq!(installed("node1", "tree"), None);
    assert!(installed("node1", "sl").is_some(), "sl untouched");
    let r = apply(
        &book,
        &["-e", "pkgs=tree", "-e", "pkg_state=absent", "-l", "node1"],
    );
    assert_changed(&r, "node1", 0);
    let r = apply(
        &book,
        &[
            "-e",
            "pkgs=sl",
            "-e",
            "pkg_state=absent",
            "-e",
            "pkg_purge=true",
            "--diff",
            "-l",
            "node1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("+sl: purged"), "{}", r.stdout);
    assert_eq!(dpkg("node1", "sl"), "", "sl purged: dpkg forgets it");

    // A fixed version: installs exactly that one; asking again changes nothing.
    let r = apply(&book, &["-e", "pkgs=tree=2.1.0-1", "-l", "node1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(installed("node1", "tree").as_deref(), Some("2.1.0-1"));
    let r = apply(&book, &["-e", "pkgs=tree=2.1.0-1", "-l", "node1"]);
    assert_changed(&r, "node1", 0);
    // A version that does not exist fails with the versions there are, and changes nothing.
    let r = apply(&book, &["-e", "pkgs=tree=0.0.1-9", "-l", "node1"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("no version 0.0.1-9 of tree is available"),
        "{}",
        r.stdout
    );
    assert_eq!(installed("node1", "tree").as_deref(), Some("2.1.0-1"));

    for h in ["node1", "node2"] {
        purge(h, "tree sl");
    }
}

#[test]
fn apt_missing_package_fails_with_apts_message_other_host_goes_on() {
    if !shared_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let book = fixture("packages_missing.yml");
    let r = apply(&book, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("E: Unable to locate package nosuchpkg-homelab-pkg"),
        "{}",
        r.stdout
    );
    assert!(
        recap_line(&r.stdout, "node1").contains("failed=1"),
        "{}",
        r.stdout
    );
    let n2 = recap_line(&r.stdout, "node2");
    assert!(
        n2.contains("ok=2") && n2.contains("failed=0"),
        "{}",
        r.stdout
    );
    assert!(installed("node2", "sl").is_some());
    // Check mode with fresh lists (no update pending) fails the same package up front.
    let r = homelab(&["plan", &book, "-i", "lab"], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("No package matching 'nosuchpkg-homelab-pkg' is available"),
        "{}",
        r.stdout
    );
    purge("node2", "sl");
}

#[test]
fn apt_waits_for_a_held_dpkg_lock_and_names_its_holder() {
    if !shared_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let book = fixture("packages.yml");
    purge("node2", "tree");
    // Make sure the cache is fresh so only the install meets the lock.
    let r = apply(&book, &["-e", "pkgs=sl", "-l", "node2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    // Hold dpkg's frontend lock the way apt does (an fcntl write lock) for 8 s.
    let r = lab_sh(
        "node2",
        "nohup perl -MFcntl -e 'open(my $f, \">>\", \"/var/lib/dpkg/lock-frontend\") or die $!; \
         my $l = pack(\"s s x4 q q i x4\", F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLKW, $l) or die $!; \
         sleep 8' >/dev/null 2>&1 & sleep 1; echo held",
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let r = apply(
        &book,
        &["-e", "pkgs=tree", "-e", "pkg_lock_timeout=2", "-l", "node2"],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains(
            "node2: the package manager lock /var/lib/dpkg/lock-frontend is held by process"
        ) && r.stdout.contains("(perl); gave up after waiting 2 s"),
        "{}",
        r.stdout
    );
    assert_eq!(installed("node2", "tree"), None);
    // With a longer lock_timeout it waits for the release and installs.
    let r = apply(
        &book,
        &[
            "-e",
            "pkgs=tree",
            "-e",
            "pkg_lock_timeout=60",
            "-l",
            "node2",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(installed("node2", "tree").is_some());
    purge("node2", "tree sl");
}

#[test]
fn unknown_argument_is_refused_before_any_host_is_touched() {
    if !shared_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    purge("node1", "figlet");
    let r = apply(&fixture("packages_badarg.yml"), &[]);
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(
        r.all()
            .contains("unsupported parameter for module apt: 'install_recomends' (did you mean"),
        "{}",
        r.all()
    );
    assert_eq!(installed("node1", "figlet"), None);
}

fn selection(host: &str, pkg: &str) -> String {
    let r = lab_sh(host, &format!("dpkg --get-selections {pkg} 2>&1"));
    r.stdout
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(pkg)).then(|| w.next().unwrap_or("").to_string())
        })
        .unwrap_or_default()
}

#[test]
fn package_and_dpkg_selections() {
    if !shared_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let book = fixture("packages_generic.yml");
    purge("node1", "figlet");

    // package finds apt on the host; check mode installs nothing.
    let r = homelab(&["plan", &book, "-i", "lab", "-e", "st=present"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("-figlet: not installed"), "{}", r.stdout);
    assert_eq!(installed("node1", "figlet"), None);
    let r = apply(&book, &["-e", "st=present", "-v"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\"use\": \"apt\""), "{}", r.stdout);
    assert!(installed("node1", "figlet").is_some());
    let r = apply(&book, &["-e", "st=present"]);
    assert_changed(&r, "node1", 0);

    // Hold: plan shows it and changes nothing, apply holds, a second run changes nothing.
    let r = homelab(&["plan", &book, "-i", "lab", "-e", "sel=hold"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("-figlet: install") && r.stdout.contains("+figlet: hold"),
        "{}",
        r.stdout
    );
    assert_eq!(selection("node1", "figlet"), "install");
    let r = apply(&book, &["-e", "sel=hold"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(selection("node1", "figlet"), "hold");
    let r = apply(&book, &["-e", "sel=hold"]);
    assert_changed(&r, "node1", 0);
    // Unhold.
    let r = apply(&book, &["-e", "sel=install"]);
    assert_changed(&r, "node1", 1);
    assert_eq!(selection("node1", "figlet"), "install");

    // A package dpkg does not know: refused clearly, nothing changed.
    let r = apply(
        &book,
        &["-e", "sel=hold", "-e", "selname=nosuchpkg-homelab-pkg"],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains(
            "node1: dpkg does not know the package nosuchpkg-homelab-pkg; install it first"
        ),
        "{}",
        r.stdout
    );

    // In check mode that is only noted: an earlier task of the run may install the package.
    let r = homelab(
        &[
            "plan",
            &book,
            "-i",
            "lab",
            "-e",
            "sel=hold",
            "-e",
            "selname=nosuchpkg-homelab-pkg",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);

    // package state=absent removes it.
    let r = apply(&book, &["-e", "st=absent"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(installed("node1", "figlet"), None);
    purge("node1", "figlet");
}

/// An ASCII-armored "public key" (a key packet header and a few bytes): enough for the modules,
/// which check the armor and packet type; apt never verifies with it (the test repos are trusted).
fn fake_key() -> String {
    use base64::Engine as _;
    let bin = [0x99u8, 0x00, 0x03, 0x04, 0x01, 0x02];
    format!(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{}\n-----END PGP PUBLIC KEY BLOCK-----\n",
        base64::engine::general_purpose::STANDARD.encode(bin)
    )
}

const REPO_FILES: &str =
    "/etc/apt/keyrings/homelab-pkg.gpg /etc/apt/sources.list.d/homelab-pkg.list \
     /etc/apt/sources.list.d/homelab-pkg-822.sources /etc/apt/keyrings/homelab-pkg-822.asc \
     /etc/apt/sources.list.d/homelab-pkg-broken.list";

/// Removes this test's sources even when it fails, so other tests' apt-get update keeps working.
struct RepoCleanup;
impl Drop for RepoCleanup {
    fn drop(&mut self) {
        let _ = lab_sh("node1", &format!("rm -f {REPO_FILES}"));
    }
}

fn present_files(host: &str) -> Vec<String> {
    let r = lab_sh(
        host,
        &format!("for f in {REPO_FILES}; do [ -e $f ] && echo \"HAS $f\"; done; true"),
    );
    r.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("HAS "))
        .map(str::to_string)
        .collect()
}

#[test]
fn repositories_and_keys() {
    if !shared_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _clean = RepoCleanup;
    // Two local flat repositories with an empty package list and a Release file.
    let r = lab_sh(
        "node1",
        "for d in /srv/pkg-repo /srv/pkg-repo2; do mkdir -p $d && cd $d && : > Packages && \
         printf 'Origin: homelab-pkg\\nLabel: homelab-pkg\\nSuite: homelab-pkg\\nCodename: homelab-pkg\\nDate: Thu, 01 Jan 2026 00:00:00 UTC\\nSHA256:\\n %s 0 Packages\\n' \
         \"$(sha256sum Packages | cut -d' ' -f1)\" > Release || exit 1; done",
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let key = fake_key();
    let vars = |st: &str| serde_json::json!({"pkg_key": key, "st": st}).to_string();
    let book = fixture("packages_repos.yml");
    let _ = lab_sh("node1", &format!("rm -f {REPO_FILES}"));

    // Plan: every file's diff, nothing written.
    let r = homelab(&["plan", &book, "-i", "lab", "-e", &vars("present")], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains(
            "+deb [trusted=yes signed-by=/etc/apt/keyrings/homelab-pkg.gpg] file:/srv/pkg-repo ./"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("+URIs: file:/srv/pkg-repo2"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("+Signed-By: /etc/apt/keyrings/homelab-pkg-822.asc"),
        "{}",
        r.stdout
    );
    assert!(present_files("node1").is_empty(), "plan wrote files");

    // Apply: written (the .gpg keyring dearmored), apt-get update still works; then idempotent.
    let r = apply(&book, &["-e", &vars("present")]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 3);
    assert_eq!(
        present_files("node1").len(),
        4,
        "{:?}",
        present_files("node1")
    );
    let r2 = lab_sh(
        "node1",
        "od -An -tx1 -N1 /etc/apt/keyrings/homelab-pkg.gpg; cat /etc/apt/sources.list.d/homelab-pkg.list; stat -c %a /etc/apt/sources.list.d/homelab-pkg-822.sources",
    );
    assert!(r2.stdout.contains(" 99"), "{}", r2.stdout);
    assert!(
        r2.stdout.contains("\n644") || r2.stdout.contains("644\n"),
        "{}",
        r2.stdout
    );
    let r = apply(&book, &["-e", &vars("present")]);
    assert_changed(&r, "node1", 0);

    // A source apt cannot read: fails with apt's message, put back.
    let r = apply(&fixture("packages_badrepo.yml"), &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("apt-get update failed on node1")
            && r.stdout.contains("pkg-missing-repo")
            && r.stdout.contains("the sources were put back as they were"),
        "{}",
        r.stdout
    );
    assert!(
        !present_files("node1")
            .iter()
            .any(|f| f.ends_with("homelab-pkg-broken.list")),
        "broken source left behind"
    );

    // apt_key without keyring: refused, pointing at signed-by; nothing written.
    let r = apply(
        &fixture("packages_aptkey_global.yml"),
        &["-e", &vars("present")],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("keyring is required") && r.stdout.contains("signed-by"),
        "{}",
        r.stdout
    );
    let t = lab_sh("node1", "test -e /etc/apt/trusted.gpg && echo EXISTS; true");
    assert!(!t.stdout.contains("EXISTS"), "{}", t.stdout);

    // Absent: all removed (with diffs), then nothing to do.
    let r = apply(&book, &["-e", &vars("absent"), "--diff"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains(
            "-deb [trusted=yes signed-by=/etc/apt/keyrings/homelab-pkg.gpg] file:/srv/pkg-repo ./"
        ),
        "{}",
        r.stdout
    );
    assert!(
        present_files("node1").is_empty(),
        "{:?}",
        present_files("node1")
    );
    let r = apply(&book, &["-e", &vars("absent")]);
    assert_changed(&r, "node1", 0);
}

#[test]
fn snap_fails_clearly_without_snapd() {
    if !shared_lab() {
        return;
    }
    let book = fixture("packages_snap.yml");
    for cmd in ["plan", "apply"] {
        let r = homelab(&[cmd, &book, "-i", "lab"], &[]);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(
            r.stdout
                .contains("snap is not installed on node1: install snapd first"),
            "{}",
            r.stdout
        );
    }
    let r = lab_sh(
        "node1",
        "command -v snap || echo NOSNAP; test -e /snap && echo HASSNAPDIR; true",
    );
    assert!(
        r.stdout.contains("NOSNAP") && !r.stdout.contains("HASSNAPDIR"),
        "{}",
        r.stdout
    );
}

#[test]
fn apt_installs_a_deb_file_on_the_host() {
    if !shared_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    purge("node1", "sl");
    // Fresh lists, then the .deb fetched from the Debian mirror into a folder of this test's own.
    let r = apply(
        &fixture("packages.yml"),
        &["-e", "pkgs=tree", "-l", "node1"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let r = lab_sh(
        "node1",
        "rm -rf /tmp/homelab-pkg-deb && mkdir -p /tmp/homelab-pkg-deb && cd /tmp/homelab-pkg-deb && \
         apt-get download -q sl >/dev/null && ls *.deb",
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let deb = format!(
        "deb=/tmp/homelab-pkg-deb/{}",
        r.stdout.lines().find(|l| l.ends_with(".deb")).unwrap_or("")
    );
    let book = fixture("packages_deb.yml");
    let r = homelab(&["plan", &book, "-i", "lab", "-e", &deb], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("-sl: not installed") && r.stdout.contains("+sl: 5.02"),
        "{}",
        r.stdout
    );
    assert_eq!(installed("node1", "sl"), None);
    let r = apply(&book, &["-e", &deb]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(installed("node1", "sl").is_some());
    let r = apply(&book, &["-e", &deb]);
    assert_changed(&r, "node1", 0);
    // A .deb that is not there.
    let r = apply(&book, &["-e", "deb=/tmp/homelab-pkg-deb/nothere.deb"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("deb file /tmp/homelab-pkg-deb/nothere.deb does not exist on the host"),
        "{}",
        r.stdout
    );
    purge("node1", "sl tree");
    let _ = lab_sh("node1", "rm -rf /tmp/homelab-pkg-deb");
}

#[test]
fn check_mode_on_a_host_without_lists_plans_honestly() {
    if !shared_lab() {
        return;
    }
    let lists = |h| {
        lab_sh(h, "ls /var/lib/apt/lists/ | grep -c _Packages; true")
            .stdout
            .lines()
            .last()
            .unwrap_or("0")
            .trim()
            != "0"
    };
    let had_lists = lists("node3");
    // tree may be left installed by an earlier run of tests/lab_provision.rs on this lab.
    purge("node3", "tree");
    let before = dpkg("node3", "tree nosuchpkg-homelab-pkg");
    let r = homelab(
        &["plan", &fixture("packages_fresh.yml"), "-i", "lab", "-v"],
        &[],
    );
    // Never failed in check mode: the cache update would come first.
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node3", 1);
    assert!(
        r.stdout
            .contains("would update the package cache, then would install tree"),
        "{}",
        r.stdout
    );
    // Which case the host was in is read from the result (another test may update node3's lists
    // at any moment); each case has its own exact wording.
    if r.stdout.contains("not in the current package lists") {
        assert!(
            r.stdout.contains(
                "nosuchpkg-homelab-pkg: not in the current package lists; the cache update may provide it"
            ),
            "{}",
            r.stdout
        );
    } else {
        assert!(
            r.stdout
                .contains("+tree: (version unknown until the cache is updated)")
                && r.stdout.contains("the host has no package lists yet"),
            "{}",
            r.stdout
        );
    }
    // Nothing changed: no package, and check mode never updates the cache.
    assert_eq!(dpkg("node3", "tree nosuchpkg-homelab-pkg"), before);
    if !had_lists {
        assert!(!lists("node3"), "check mode updated the cache");
    }
}

#[test]
fn upgrade_plan_lists_what_apt_would_upgrade() {
    if !shared_lab() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Lists first (a real run; installs tree).
    let r = apply(
        &fixture("packages.yml"),
        &["-e", "pkgs=tree", "-l", "node1"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let sim = lab_sh(
        "node1",
        "LC_ALL=C apt-get -s -q dist-upgrade | awk '/^(Inst|Remv) /{print $2}'",
    );
    let mut want: Vec<String> = sim.stdout.lines().skip(1).map(str::to_string).collect();
    want.sort();
    let r = homelab(
        &[
            "plan",
            &fixture("packages_upgrade.yml"),
            "-i",
            "lab",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let ev = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "task_result")
        .expect("a task result");
    let mut got: Vec<String> = ev["result"]["packages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| p["name"].as_str().unwrap_or("").to_string())
        .collect();
    got.sort();
    assert_eq!(got, want, "{}", r.stdout);
    assert_eq!(ev["changed"], !want.is_empty());
    // Nothing was upgraded.
    let again = lab_sh(
        "node1",
        "LC_ALL=C apt-get -s -q dist-upgrade | awk '/^(Inst|Remv) /{print $2}'",
    );
    assert_eq!(again.stdout.lines().skip(1).count(), want.len());
    purge("node1", "tree");
}
