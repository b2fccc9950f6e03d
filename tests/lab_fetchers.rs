//! `get_url`, `unarchive` and `git` on the lab's real hosts (node2; every path under /srv/husr*):
//! downloads from an HTTP server this test runs on the controller, bound to the lab bridge's
//! gateway address; archives made here and uploaded; a git repository served on the host itself.

mod common;
use common::*;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const HOST: &str = "node2";

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

/// The lab bridge's address (the hosts' gateway): `.1` of the hosts' /24.
fn gateway() -> String {
    let a = address(HOST);
    let (net, _) = a.rsplit_once('.').expect("an IPv4 address");
    format!("{net}.1")
}

fn sh_out(host: &str, cmd: &str) -> String {
    let r = lab_sh(host, &format!("echo HUSRBEGIN; {cmd}; echo HUSREND"));
    let s = r.stdout;
    match (s.find("HUSRBEGIN\n"), s.rfind("HUSREND")) {
        (Some(a), Some(b)) if b >= a + 10 => s[a + 10..b].to_string(),
        _ => panic!("lab_sh {cmd} failed: {}{}", s, r.stderr),
    }
}

fn apt_install(host: &str, cmd: &str, pkgs: &str) {
    let r = lab_sh(
        host,
        &format!(
            "command -v {cmd} || {{ apt-get -o DPkg::Lock::Timeout=300 update -qq && \
             DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq {pkgs}; }}"
        ),
    );
    assert_eq!(r.code, 0, "installing {pkgs} on {host}: {}", r.all());
}

/// python3 -m http.server on the gateway address, killed when dropped; its log counts requests.
struct Http {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Http {
    fn start(dir: &Path, log: std::path::PathBuf) -> Http {
        let gw = gateway();
        let port = std::net::TcpListener::bind((gw.as_str(), 0))
            .and_then(|l| l.local_addr())
            .expect("a free port on the lab gateway")
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", &gw, &port.to_string()])
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("python3 http.server starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect((gw.as_str(), port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Http {
            child,
            base: format!("http://{gw}:{port}"),
            log,
        }
    }

    fn gets(&self, path: &str) -> usize {
        let mut s = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s.lines()
            .filter(|l| l.contains(&format!("\"GET {path} ")))
            .count()
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cleanup() {
    lab_sh(
        HOST,
        "rm -rf /srv/husr /srv/husr-x /srv/husr-repo.git /srv/husr-src /srv/husr-clone",
    );
}

#[test]
fn get_url_unarchive_git() {
    if !shared_lab() {
        return;
    }
    cleanup();
    apt_install(HOST, "curl", "curl");
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let payload = b"husr payload\nline two\n".to_vec();
    std::fs::write(www.join("payload.txt"), &payload).unwrap();
    std::fs::write(www.join("other.txt"), b"other\n").unwrap();
    // An archive made here: served (for remote_src) and uploaded (for the controller's src).
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(pkg.join("pkg/bin")).unwrap();
    std::fs::write(pkg.join("pkg/bin/tool.sh"), "#!/bin/sh\necho husr tool\n").unwrap();
    std::fs::write(pkg.join("pkg/README"), "husr\n").unwrap();
    let archive = www.join("pkg.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&pkg)
        .arg("pkg")
        .status()
        .unwrap();
    assert!(st.success());
    let archive_sum = sha256(&std::fs::read(&archive).unwrap());
    let http = Http::start(&www, dir.path().join("http.log"));
    let vars = serde_json::json!({
        "archive": archive.display().to_string(),
        "archive_sum": archive_sum,
        "base": http.base,
        "sum": sha256(&payload),
        "zero": "0".repeat(64),
        "gw": gateway(),
    })
    .to_string();

    // get_url: check mode downloads nothing and changes nothing.
    let book = fixture("fetchers.yml");
    let r = homelab(&["plan", &book, "-i", "lab", "-l", HOST, "-e", &vars], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, HOST, 3);
    assert!(
        r.stdout.contains("(downloaded from http://"),
        "{}",
        r.stdout
    );
    assert_eq!(http.gets("/payload.txt"), 0, "check mode downloaded");
    assert_eq!(sh_out(HOST, "ls -d /srv/husr 2>/dev/null"), "");

    // The real run downloads, verifies, sets the mode; the second run downloads nothing.
    let r = homelab(&["apply", &book, "-i", "lab", "-l", HOST, "-e", &vars], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, HOST, 3);
    assert_eq!(
        sh_out(
            HOST,
            "cat /srv/husr/payload.txt; stat -c '%a %U' /srv/husr/payload.txt"
        ),
        format!("{}640 root\n", String::from_utf8_lossy(&payload))
    );
    assert_eq!(http.gets("/payload.txt"), 1);
    assert_eq!(sh_out(HOST, "cat /srv/husr/other.txt"), "other\n");
    let r = homelab(&["apply", &book, "-i", "lab", "-l", HOST, "-e", &vars], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, HOST, 0);
    assert_eq!(
        (http.gets("/payload.txt"), http.gets("/other.txt")),
        (1, 1),
        "an unchanged file was downloaded again"
    );

    // Failures: clear messages, dest untouched, no temp file left.
    let before = sh_out(
        HOST,
        "ls -A /srv/husr; sha256sum /srv/husr/payload.txt; stat -c '%a %Y' /srv/husr/payload.txt",
    );
    let r = homelab(
        &[
            "apply",
            &fixture("fetchers_bad.yml"),
            "-i",
            "lab",
            "-l",
            HOST,
            "-e",
            &vars,
        ],
        &[],
    );
    assert_eq!(r.code, 0, "the asserts on the failures hold: {}", r.all());
    assert!(r.stdout.contains("did not match"), "{}", r.stdout);
    assert_eq!(
        sh_out(HOST, "ls -A /srv/husr; sha256sum /srv/husr/payload.txt; stat -c '%a %Y' /srv/husr/payload.txt"),
        before,
        "a failed download changed /srv/husr"
    );

    // unarchive: check mode unpacks nothing; the real run does; the second run changes nothing.
    let book = fixture("fetchers_unarchive.yml");
    let r = homelab(&["plan", &book, "-i", "lab", "-l", HOST, "-e", &vars], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(sh_out(HOST, "ls -d /srv/husr-x 2>/dev/null"), "");
    let r = homelab(&["apply", &book, "-i", "lab", "-l", HOST, "-e", &vars], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, HOST, 5);
    assert_eq!(
        sh_out(
            HOST,
            "cd /srv/husr-x && cat pkg/bin/tool.sh remote/pkg/README && \
             stat -c '%U %a' pkg/bin/tool.sh remote/pkg/bin/tool.sh"
        ),
        "#!/bin/sh\necho husr tool\nhusr\nhomelab 644\nroot 644\n"
    );
    let r = homelab(&["apply", &book, "-i", "lab", "-l", HOST, "-e", &vars], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, HOST, 0);
    // A file changed on the host is unpacked again.
    lab_sh(HOST, "echo tampered > /srv/husr-x/pkg/README");
    let r = homelab(&["apply", &book, "-i", "lab", "-l", HOST, "-e", &vars], &[]);
    assert_changed(&r, HOST, 1);
    assert_eq!(sh_out(HOST, "cat /srv/husr-x/pkg/README"), "husr\n");

    // git: a bare repository on the host itself.
    apt_install(HOST, "git", "git");
    let commit = |msg: &str| {
        sh_out(
            HOST,
            &format!(
                "cd /srv/husr-src && echo {msg} > file.txt && git add file.txt && \
                 git -c user.name=husr -c user.email=husr@lab commit -q -m {msg} && \
                 git push -q origin HEAD:main && git rev-parse HEAD"
            ),
        )
        .trim()
        .to_string()
    };
    sh_out(
        HOST,
        "git init -q --bare -b main /srv/husr-repo.git && git clone -q /srv/husr-repo.git /srv/husr-src 2>&1",
    );
    let c1 = commit("one");
    sh_out(
        HOST,
        "cd /srv/husr-src && git tag v1 && git push -q origin v1",
    );
    assert_eq!(c1.len(), 40, "{c1}");
    let head = || {
        sh_out(HOST, "git -C /srv/husr-clone rev-parse HEAD 2>/dev/null")
            .trim()
            .to_string()
    };
    let git = |extra: &str, sub: &str| {
        let mut args = vec![
            sub,
            &*Box::leak(fixture("fetchers_git.yml").into_boxed_str()),
            "-i",
            "lab",
            "-l",
            HOST,
        ];
        if !extra.is_empty() {
            args.push("-e");
            args.push(Box::leak(extra.to_string().into_boxed_str()));
        }
        let r = homelab(&args, &[]);
        assert_eq!(r.code, 0, "{}", r.all());
        r
    };
    let r = git("", "plan");
    assert_changed(&r, HOST, 1);
    assert_eq!(head(), "", "check mode cloned");
    let r = git("", "apply");
    assert_changed(&r, HOST, 1);
    assert!(
        r.stdout.contains(&format!("before= after={c1}")),
        "{}",
        r.stdout
    );
    assert_eq!(head(), c1);
    let r = git("", "apply");
    assert_changed(&r, HOST, 0);
    // A new commit upstream: HEAD moves.
    let c2 = commit("two");
    let r = git("", "plan");
    assert_changed(&r, HOST, 1);
    assert_eq!(head(), c1, "check mode updated");
    let r = git("", "apply");
    assert!(
        r.stdout.contains(&format!("before={c1} after={c2}")),
        "{}",
        r.stdout
    );
    assert_eq!(head(), c2);
    // A tag, then back to the branch.
    let r = git("ver=v1", "apply");
    assert_changed(&r, HOST, 1);
    assert_eq!(head(), c1);
    let r = git("ver=v1", "apply");
    assert_changed(&r, HOST, 0);
    let r = git("ver=main", "apply");
    assert_changed(&r, HOST, 1);
    assert_eq!(head(), c2);
    assert_eq!(
        sh_out(HOST, "git -C /srv/husr-clone rev-parse --abbrev-ref HEAD").trim(),
        "main"
    );
    // Local modifications: refused without force (bad fixture), discarded with it.
    lab_sh(HOST, "echo local > /srv/husr-clone/file.txt");
    let r = homelab(
        &[
            "apply",
            &fixture("fetchers_git_bad.yml"),
            "-i",
            "lab",
            "-l",
            HOST,
        ],
        &[],
    );
    assert_eq!(r.code, 0, "the asserts on the failures hold: {}", r.all());
    assert_eq!(sh_out(HOST, "cat /srv/husr-clone/file.txt"), "local\n");
    assert_eq!(
        sh_out(HOST, "ls -d /srv/husr-clone2 /srv/husr-clone3 2>/dev/null"),
        ""
    );
    let r = git("force=true", "apply");
    assert_changed(&r, HOST, 1);
    assert_eq!(sh_out(HOST, "cat /srv/husr-clone/file.txt"), "two\n");

    drop(http);
    cleanup();
}
