//! System modules on the lab's real Debian hosts (systemd-nspawn containers): systemd/service with
//! a unit of our own (hsys-test), sysctl, modprobe, mount, hostname and timezone. Every test
//! restores what it changed; names carry the tag `hsys` so other tests on the same hosts are not
//! disturbed.

mod common;
use common::*;

fn fixture(name: &str) -> String {
    fixture_in("lab", name)
}

/// `homelab apply|plan BOOK -i lab -e EXTRA`.
fn play(cmd: &str, book: &str, extra: &str) -> Run {
    let book = fixture(book);
    let mut args = vec![cmd, book.as_str(), "-i", "lab"];
    if !extra.is_empty() {
        args.extend(["-e", extra]);
    }
    if cmd == "apply" {
        args.push("--diff");
    }
    homelab(&args, &[])
}

/// What a shell command printed on a host (as root), without the ad-hoc header.
fn sh_out(host: &str, cmd: &str) -> String {
    let r = lab_sh(host, &format!("{{ {cmd} ; }} 2>&1; true"));
    assert_eq!(r.code, 0, "{}", r.all());
    r.stdout
        .lines()
        .skip_while(|l| !l.contains(">>"))
        .skip(1)
        .filter(|l| !l.starts_with("sudo: unable to resolve host"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `A=active E=enabled` of a unit on a host.
fn unit_state(host: &str, unit: &str) -> String {
    sh_out(
        host,
        &format!("echo A=$(systemctl is-active {unit} 2>/dev/null) E=$(systemctl is-enabled {unit} 2>/dev/null)"),
    )
}

fn cleanup_units() {
    for h in ["node1", "node2"] {
        sh_out(
            h,
            "for u in hsys-test hsys-test2; do systemctl unmask $u; systemctl disable --now $u; done; \
             rm -f /etc/systemd/system/hsys-test.service /usr/local/lib/systemd/system/hsys-test2.service; \
             systemctl daemon-reload",
        );
    }
}

#[test]
fn systemd_and_service_units() {
    if !shared_lab() {
        return;
    }
    cleanup_units();
    let absent = unit_state("node1", "hsys-test");
    assert!(absent.starts_with("A=inactive"), "{absent}");

    // Check mode: the plan says the unit would be written, started and enabled; nothing changes.
    let r = play("plan", "system_unit.yml", r#"{"st":"started","en":true}"#);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 2);
    assert!(r.stdout.contains("\"state\": \"active\""), "{}", r.stdout);
    assert_eq!(unit_state("node1", "hsys-test"), absent);
    assert_eq!(
        sh_out("node1", "ls /etc/systemd/system/hsys-test.service"),
        "ls: cannot access '/etc/systemd/system/hsys-test.service': No such file or directory"
    );

    // Start and enable; the second run changes nothing.
    let r = play("apply", "system_unit.yml", r#"{"st":"started","en":true}"#);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node2", 2);
    for h in ["node1", "node2"] {
        assert_eq!(unit_state(h, "hsys-test"), "A=active E=enabled");
    }
    let r = play("apply", "system_unit.yml", r#"{"st":"started","en":true}"#);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 0);
    assert_changed(&r, "node2", 0);

    // Check mode of a stop: reported with its state diff, the unit keeps running.
    let r = play("plan", "system_unit.yml", r#"{"st":"stopped","en":false}"#);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);
    assert!(r.stdout.contains("\"state\": \"inactive\""), "{}", r.stdout);
    assert_eq!(unit_state("node1", "hsys-test"), "A=active E=enabled");

    // The service module sees the same unit: nothing to do, then a stop, then idempotent.
    let r = play(
        "apply",
        "system_service.yml",
        r#"{"st":"started","en":true}"#,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 0);
    let r = play("apply", "system_service.yml", r#"{"st":"stopped"}"#);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);
    assert_eq!(unit_state("node1", "hsys-test"), "A=inactive E=enabled");
    let r = play("apply", "system_service.yml", r#"{"st":"stopped"}"#);
    assert_changed(&r, "node1", 0);

    // systemd: disable (already stopped), then idempotent.
    let r = play("apply", "system_unit.yml", r#"{"st":"stopped","en":false}"#);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);
    assert_eq!(unit_state("node1", "hsys-test"), "A=inactive E=disabled");
    let r = play("apply", "system_unit.yml", r#"{"st":"stopped","en":false}"#);
    assert_changed(&r, "node1", 0);

    // Mask and unmask a unit whose file is in a vendor folder (a unit file in /etc cannot be
    // masked: the mask is a link in its place).
    sh_out("node1", "mkdir -p /usr/local/lib/systemd/system");
    sh_out("node2", "mkdir -p /usr/local/lib/systemd/system");
    let masked = r#"{"u":"hsys-test2","dir":"/usr/local/lib/systemd/system","mk":true}"#;
    let r = play("apply", "system_unit.yml", masked);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(unit_state("node1", "hsys-test2"), "A=inactive E=masked");
    let r = play("apply", "system_unit.yml", masked);
    assert_changed(&r, "node1", 0);
    // Starting it while it stays masked fails clearly and changes nothing.
    let r = play(
        "apply",
        "system_unit.yml",
        r#"{"u":"hsys-test2","dir":"/usr/local/lib/systemd/system","st":"started"}"#,
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("unit hsys-test2 is masked on node1"),
        "{}",
        r.stdout
    );
    assert_eq!(unit_state("node1", "hsys-test2"), "A=inactive E=masked");
    let unmask =
        r#"{"u":"hsys-test2","dir":"/usr/local/lib/systemd/system","mk":false,"st":"started"}"#;
    let r = play("plan", "system_unit.yml", unmask);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);
    assert_eq!(unit_state("node1", "hsys-test2"), "A=inactive E=masked");
    let r = play("apply", "system_unit.yml", unmask);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(unit_state("node1", "hsys-test2"), "A=active E=disabled");

    // A unit that does not exist fails clearly on node1, changes nothing; node2 goes on.
    let r = play("apply", "system_missing.yml", "");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains(
            "Could not find the requested service hsys-nosuch: host node1 has no unit hsys-nosuch (LoadState=not-found)"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "Could not find the requested service hsys-nosuch: host node1 has no such service"
        ),
        "{}",
        r.stdout
    );
    let n1 = recap_line(&r.stdout, "node1");
    assert!(
        n1.contains("failed=1") && n1.contains("ignored=1"),
        "{}",
        r.stdout
    );
    assert!(unit_state("node1", "hsys-nosuch").starts_with("A=inactive"));
    let n2 = recap_line(&r.stdout, "node2");
    assert!(
        n2.contains("ok=3") && n2.contains("failed=0"),
        "{}",
        r.stdout
    );

    // daemon_reload alone runs and reports ok, as in Ansible (asserted in the play).
    let r = play("apply", "system_daemon_reload.yml", "");
    assert_eq!(r.code, 0, "{}", r.all());

    cleanup_units();
    assert!(unit_state("node1", "hsys-test").starts_with("A=inactive"));
}

#[test]
fn sysctl_net_key_and_read_only_keys() {
    if !shared_lab() {
        return;
    }
    let key = "net.ipv4.conf.all.rp_filter";
    let live = || sh_out("node1", "cat /proc/sys/net/ipv4/conf/all/rp_filter");
    let file = || sh_out("node1", "cat /etc/sysctl.d/90-hsys.conf");
    sh_out(
        "node1",
        "rm -f /etc/sysctl.d/90-hsys.conf /etc/sysctl.d/90-hsys-vm.conf",
    );
    let orig = live();
    let want = if orig == "1" { "2" } else { "1" };
    let extra = format!(r#"{{"k":"{key}","v":"{want}"}}"#);

    // Check mode: the file diff and the live value's diff; nothing changes.
    let r = play("plan", "system_sysctl.yml", &extra);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);
    assert!(r.stdout.contains(&format!("+{key}={want}")), "{}", r.stdout);
    assert_eq!(live(), orig);
    assert!(file().contains("No such file"), "check mode wrote the file");

    // The real run writes the file and sets the live value; the second run changes nothing.
    let r = play("apply", "system_sysctl.yml", &extra);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);
    assert_eq!(file(), format!("{key}={want}"));
    assert_eq!(live(), want);
    let r = play("apply", "system_sysctl.yml", &extra);
    assert_changed(&r, "node1", 0);

    // state: absent takes the line out.
    let r = play(
        "apply",
        "system_sysctl.yml",
        &format!(r#"{{"k":"{key}","st":"absent"}}"#),
    );
    assert_changed(&r, "node1", 1);
    assert_eq!(file(), "");
    sh_out(
        "node1",
        &format!("sysctl -w {key}={orig}; rm -f /etc/sysctl.d/90-hsys.conf"),
    );
    assert_eq!(live(), orig);

    // vm.* is read-only in a container: check mode says so, the real run fails clearly and
    // writes nothing, ignoreerrors writes the file only.
    let swap = sh_out("node1", "cat /proc/sys/vm/swappiness");
    let other = if swap == "10" { "11" } else { "10" };
    let vm =
        format!(r#"{{"k":"vm.swappiness","v":"{other}","f":"/etc/sysctl.d/90-hsys-vm.conf"}}"#);
    let r = play("plan", "system_sysctl.yml", &vm);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("(cannot be set on this host)")
            && r.stdout
                .contains("[WARNING]: vm.swappiness cannot be set on node1"),
        "{}",
        r.stdout
    );
    let r = play("apply", "system_sysctl.yml", &vm);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains(
            "vm.swappiness cannot be set on node1: the host does not allow it (/proc/sys/vm/swappiness is read-only"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("ignoreerrors: true"), "{}", r.stdout);
    assert!(sh_out("node1", "cat /etc/sysctl.d/90-hsys-vm.conf").contains("No such file"));
    assert_eq!(sh_out("node1", "cat /proc/sys/vm/swappiness"), swap);
    let vm_ign = format!(
        r#"{{"k":"vm.swappiness","v":"{other}","f":"/etc/sysctl.d/90-hsys-vm.conf","ign":true}}"#
    );
    let r = play("apply", "system_sysctl.yml", &vm_ign);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        sh_out("node1", "cat /etc/sysctl.d/90-hsys-vm.conf"),
        format!("vm.swappiness={other}")
    );
    sh_out("node1", "rm -f /etc/sysctl.d/90-hsys-vm.conf");
}

#[test]
fn modprobe_in_a_container() {
    if !shared_lab() {
        return;
    }
    let files = "/etc/modules-load.d/hsys_dummy.conf /etc/modprobe.d/hsys_dummy.conf";
    sh_out("node1", &format!("rm -f {files}"));
    // overlay is in the kernel the containers share (listed in /proc/filesystems): ok.
    for cmd in ["plan", "apply"] {
        let r = play(cmd, "system_modprobe.yml", r#"{"m":"overlay"}"#);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_changed(&r, "node1", 0);
    }
    // br_netfilter: loaded by the machine's kernel when /proc/sys/net/bridge shows in the
    // container; then ok, otherwise the clear refusal.
    let bridge = sh_out("node1", "ls -d /proc/sys/net/bridge") == "/proc/sys/net/bridge";
    let r = play("apply", "system_modprobe.yml", r#"{"m":"br_netfilter"}"#);
    if bridge {
        assert_eq!(r.code, 0, "{}", r.all());
        assert_changed(&r, "node1", 0);
    } else {
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.stdout.contains("the host is a container"), "{}", r.stdout);
    }
    // A module that is not loaded: check mode plans the load and the persistent files, with a
    // warning; the real run fails naming the host and the reason, writing nothing.
    let extra = r#"{"m":"hsys_dummy","pers":"present","p":"numdummies=2"}"#;
    let r = play("plan", "system_modprobe.yml", extra);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);
    assert!(
        r.stdout.contains("+options hsys_dummy numdummies=2"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("+hsys_dummy"), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "[WARNING]: cannot load kernel module hsys_dummy on node1: the host is a container"
        ),
        "{}",
        r.stdout
    );
    let r = play("apply", "system_modprobe.yml", extra);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains(
            "cannot load kernel module hsys_dummy on node1: the host is a container (systemd-nspawn)"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(
        sh_out(
            "node1",
            &format!("ls {files} 2>&1 | grep -c 'No such file'")
        ),
        "2"
    );
    // Unloading a module that is not loaded is nothing to do.
    let r = play(
        "apply",
        "system_modprobe.yml",
        r#"{"m":"hsys_dummy","st":"absent"}"#,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 0);
}

#[test]
fn mount_a_tmpfs() {
    if !shared_lab() {
        return;
    }
    let clean = "umount /mnt/hsys-tmp 2>/dev/null; sed -i '/hsys-tmp/d' /etc/fstab; rmdir /mnt/hsys-tmp 2>/dev/null";
    sh_out("node1", clean);
    let fstab = || sh_out("node1", "grep hsys-tmp /etc/fstab");
    let mounted = || sh_out("node1", "grep ' /mnt/hsys-tmp ' /proc/self/mountinfo");
    let st = |s: &str| format!(r#"{{"st":"{s}"}}"#);

    // Check mode: the fstab diff and the mount; nothing changes.
    let r = play("plan", "system_mount.yml", &st("mounted"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);
    assert!(
        r.stdout.contains("+tmpfs /mnt/hsys-tmp tmpfs size=1m 0 0"),
        "{}",
        r.stdout
    );
    assert_eq!((fstab(), mounted()), (String::new(), String::new()));

    // Mounted: the entry and the mount; then nothing to do.
    let r = play("apply", "system_mount.yml", &st("mounted"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(fstab(), "tmpfs /mnt/hsys-tmp tmpfs size=1m 0 0");
    assert!(mounted().contains(" - tmpfs tmpfs "), "{}", mounted());
    let r = play("apply", "system_mount.yml", &st("mounted"));
    assert_changed(&r, "node1", 0);

    // New options: the entry is rewritten and the filesystem remounted with them.
    let r = play(
        "apply",
        "system_mount.yml",
        r#"{"st":"mounted","o":"size=2m"}"#,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node1", 1);
    assert_eq!(fstab(), "tmpfs /mnt/hsys-tmp tmpfs size=2m 0 0");
    assert!(mounted().contains("size=2048k"), "{}", mounted());

    // Unmounted keeps the entry; absent removes it and the mount point.
    let r = play("apply", "system_mount.yml", &st("unmounted"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(mounted(), "");
    assert!(!fstab().is_empty());
    let r = play("apply", "system_mount.yml", &st("unmounted"));
    assert_changed(&r, "node1", 0);
    let r = play("apply", "system_mount.yml", &st("remounted"));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("/mnt/hsys-tmp is not mounted on node1: nothing to remount"),
        "{}",
        r.stdout
    );

    // Ephemeral mounts without touching fstab.
    sh_out("node1", "sed -i '/hsys-tmp/d' /etc/fstab");
    let r = play("apply", "system_mount.yml", &st("ephemeral"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!mounted().is_empty());
    assert_eq!(fstab(), "");
    let r = play("apply", "system_mount.yml", &st("absent"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!((fstab(), mounted()), (String::new(), String::new()));
    assert!(sh_out("node1", "ls -d /mnt/hsys-tmp").contains("No such file"));
    sh_out("node1", clean);

    // A device that does not exist: the mount fails naming the host, the fstab and the mount
    // point stay as they were.
    let before = sh_out("node1", "md5sum /etc/fstab");
    let r = play("apply", "system_mount_bad.yml", "");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("could not mount /mnt/hsys-bad on node1: mount:"),
        "{}",
        r.stdout
    );
    assert_eq!(sh_out("node1", "md5sum /etc/fstab"), before);
    assert!(sh_out("node1", "ls -d /mnt/hsys-bad").contains("No such file"));
}

/// Puts node3's name back even when a test fails half-way.
struct RestoreNode3(&'static str);
impl Drop for RestoreNode3 {
    fn drop(&mut self) {
        let _ = lab_sh("node3", self.0);
    }
}

#[test]
fn hostname_on_node3() {
    if !shared_lab() {
        return;
    }
    // The test name resolves while it is set (sudo looks it up), and goes with the restore.
    let _restore = RestoreNode3(
        "echo node3 > /etc/hostname; { hostnamectl set-hostname node3 2>/dev/null || hostname node3; }; \
         sed -i '/ # hsys-test$/d' /etc/hosts",
    );
    sh_out(
        "node3",
        "echo '127.0.1.1 hsys-node3 # hsys-test' >> /etc/hosts",
    );
    let names = || sh_out("node3", "echo $(uname -n) $(cat /etc/hostname)");
    assert_eq!(names(), "node3 node3");
    let r = play("plan", "system_hostname.yml", r#"{"n":"hsys-node3"}"#);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node3", 1);
    assert!(r.stdout.contains("-node3\n+hsys-node3"), "{}", r.stdout);
    assert_eq!(names(), "node3 node3");

    let r = play("apply", "system_hostname.yml", r#"{"n":"hsys-node3"}"#);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(names(), "hsys-node3 hsys-node3");
    let r = play("apply", "system_hostname.yml", r#"{"n":"hsys-node3"}"#);
    assert_changed(&r, "node3", 0);

    let r = play("apply", "system_hostname.yml", r#"{"n":"bad_name"}"#);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("'bad_name' is not a valid host name"),
        "{}",
        r.stdout
    );
    assert_eq!(names(), "hsys-node3 hsys-node3");

    let r = play("apply", "system_hostname.yml", r#"{"n":"node3"}"#);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(names(), "node3 node3");
}

#[test]
fn timezone_on_node3() {
    if !shared_lab() {
        return;
    }
    let zone = || {
        sh_out(
            "node3",
            "echo $(readlink /etc/localtime | sed 's|.*zoneinfo/||') $(cat /etc/timezone)",
        )
    };
    let orig = zone();
    let orig_name = orig.split(' ').next().unwrap_or("Etc/UTC").to_string();
    assert!(!orig_name.is_empty(), "{orig}");
    let _restore = RestoreNode3(Box::leak(
        format!(
            "ln -sfn /usr/share/zoneinfo/{orig_name} /etc/localtime; echo {orig_name} > /etc/timezone"
        )
        .into_boxed_str(),
    ));
    let other = if orig_name == "Europe/Berlin" {
        "America/Chicago"
    } else {
        "Europe/Berlin"
    };
    let extra = format!(r#"{{"z":"{other}"}}"#);
    let r = play("plan", "system_timezone.yml", &extra);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node3", 1);
    assert!(r.stdout.contains(&format!("+{other}")), "{}", r.stdout);
    assert_eq!(zone(), orig);

    let r = play("apply", "system_timezone.yml", &extra);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(zone(), format!("{other} {other}"));
    let r = play("apply", "system_timezone.yml", &extra);
    assert_changed(&r, "node3", 0);

    let r = play(
        "apply",
        "system_timezone.yml",
        r#"{"z":"Mars/Olympus_Mons"}"#,
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout
            .contains("unknown time zone 'Mars/Olympus_Mons' on node3"),
        "{}",
        r.stdout
    );
    assert_eq!(zone(), format!("{other} {other}"));

    let r = play(
        "apply",
        "system_timezone.yml",
        &format!(r#"{{"z":"{orig_name}"}}"#),
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(zone(), orig);
}

#[test]
fn unknown_arguments_are_refused_before_any_host_is_touched() {
    if !shared_lab() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    for (task, hint) in [
        (
            "systemd: {name: hsys-test, stat: started}",
            "'stat' (did you mean 'state'?)",
        ),
        (
            "service: {name: hsys-test, enable: true}",
            "'enable' (did you mean 'enabled'?)",
        ),
        (
            "sysctl: {name: vm.swappiness, value: 1, sysctl_fil: /x}",
            "'sysctl_fil' (did you mean 'sysctl_file'?)",
        ),
        (
            "modprobe: {name: dummy, param: x}",
            "'param' (did you mean 'params'?)",
        ),
        (
            "mount: {path: /mnt/hsys-x, state: present, fstyp: tmpfs}",
            "'fstyp' (did you mean 'fstype'?)",
        ),
        ("hostname: {nme: node3}", "'nme' (did you mean 'name'?)"),
        ("timezone: {name: Etc/UTC, zone: x}", "'zone'"),
    ] {
        let book = d.path().join("bad.yml");
        std::fs::write(
            &book,
            format!("- hosts: node3\n  gather_facts: false\n  tasks:\n    - {task}\n"),
        )
        .unwrap();
        let r = homelab(&["plan", book.to_str().unwrap(), "-i", "lab"], &[]);
        assert_eq!(r.code, 4, "{task}: {}", r.all());
        assert!(r.all().contains(hint), "{task}: {}", r.all());
    }
}

#[test]
fn service_through_an_init_script() {
    if !shared_lab() {
        return;
    }
    let clean =
        "[ -x /etc/init.d/hsys-sv ] && /etc/init.d/hsys-sv stop; update-rc.d -f hsys-sv remove; \
                 rm -f /etc/init.d/hsys-sv /run/hsys-sv.pid; systemctl daemon-reload";
    sh_out("node2", clean);
    let state = || {
        sh_out(
            "node2",
            "echo $(ls /etc/rc2.d | grep hsys-sv) $(/etc/init.d/hsys-sv status && echo running || echo stopped)",
        )
    };
    let on = r#"{"st":"started","en":true}"#;
    let r = play("apply", "system_sysv.yml", on);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_changed(&r, "node2", 2);
    assert!(
        r.stdout.contains("+  \"state\": \"running\""),
        "{}",
        r.stdout
    );
    assert_eq!(state(), "S01hsys-sv running");
    let r = play("apply", "system_sysv.yml", on);
    assert_changed(&r, "node2", 0);

    let off = r#"{"st":"stopped","en":false}"#;
    let r = play("plan", "system_sysv.yml", off);
    assert_changed(&r, "node2", 1);
    assert_eq!(
        state(),
        "S01hsys-sv running",
        "check mode changed the service"
    );
    let r = play("apply", "system_sysv.yml", off);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(state(), "K01hsys-sv stopped");
    let r = play("apply", "system_sysv.yml", off);
    assert_changed(&r, "node2", 0);
    sh_out("node2", clean);
}
