//! The parser on captured and constructed script outputs: a Debian 12 x86_64 systemd-nspawn
//! container (captured from the lab), a Raspberry Pi 4 on 64-bit Raspberry Pi OS without `ip`
//! (built from the kernel's file formats), an Ubuntu 22.04 VirtualBox VM.

use super::*;
use crate::engine::facts::{script, subset};
use serde_json::json;

const DEBIAN: &str = include_str!("samples/debian_x86_64_nspawn.txt");
const RPI: &str = include_str!("samples/rpi_arm64.txt");
const UBUNTU: &str = include_str!("samples/ubuntu_virtualbox.txt");

fn all(text: &str) -> Map<String, Value> {
    facts(text, &subset(&[]).unwrap())
}

#[test]
fn debian_container() {
    let f = all(DEBIAN);
    assert_eq!(f["ansible_hostname"], "node1");
    assert_eq!(f["ansible_nodename"], "node1");
    assert_eq!(f["ansible_fqdn"], "node1");
    assert_eq!(f["ansible_domain"], "");
    assert_eq!(f["ansible_system"], "Linux");
    assert_eq!(f["ansible_kernel"], "6.1.0-25-amd64");
    assert_eq!(
        f["ansible_kernel_version"],
        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.106-3 (2024-08-26)"
    );
    assert_eq!(f["ansible_architecture"], "x86_64");
    assert_eq!(f["ansible_machine"], "x86_64");
    assert_eq!(f["ansible_userspace_bits"], "64");
    assert_eq!(f["ansible_machine_id"], "c4c12a6650b6486ba921fc34d5e1344f");
    assert_eq!(f["ansible_distribution"], "Debian");
    assert_eq!(f["ansible_distribution_version"], "12.15");
    assert_eq!(f["ansible_distribution_major_version"], "12");
    assert_eq!(f["ansible_distribution_release"], "bookworm");
    assert_eq!(f["ansible_os_family"], "Debian");
    assert_eq!(f["ansible_pkg_mgr"], "apt");
    assert_eq!(f["ansible_service_mgr"], "systemd");
    assert_eq!(f["ansible_user_id"], "homelab");
    assert_eq!(f["ansible_user_uid"], 1000);
    assert_eq!(f["ansible_user_gid"], 1000);
    assert_eq!(f["ansible_user_dir"], "/home/homelab");
    assert_eq!(f["ansible_user_shell"], "/bin/bash");
    assert_eq!(f["ansible_env"]["HOME"], "/home/homelab");
    assert_eq!(f["ansible_env"]["SSH_CLIENT"], "10.213.0.1 54762 22");
    assert_eq!(f["ansible_date_time"]["epoch"], "1796279024");
    assert_eq!(f["ansible_date_time"]["date"], "2026-12-03");
    assert_eq!(f["ansible_date_time"]["time"], "06:23:44");
    assert_eq!(f["ansible_date_time"]["iso8601"], "2026-12-03T06:23:44Z");
    assert_eq!(
        f["ansible_date_time"]["iso8601_micro"],
        "2026-12-03T06:23:44.544993Z"
    );
    assert_eq!(f["ansible_date_time"]["tz"], "UTC");
    assert_eq!(f["ansible_date_time"]["weekday"], "Thursday");
    assert_eq!(f["ansible_dns"]["nameservers"], json!(["10.255.255.53"]));
    assert_eq!(f["ansible_selinux"], json!({"status": "disabled"}));
    assert_eq!(f["ansible_apparmor"], json!({"status": "disabled"}));
    assert_eq!(f["ansible_cmdline"]["ro"], true);
    assert_eq!(
        f["ansible_proc_cmdline"]["console"],
        json!(["ttyS0", "ttyS0"])
    );
    // Hardware.
    assert_eq!(f["ansible_memtotal_mb"], 24683664 / 1024);
    assert_eq!(f["ansible_memfree_mb"], 1667780 / 1024);
    assert_eq!(f["ansible_swaptotal_mb"], 0);
    assert_eq!(
        f["ansible_memory_mb"]["nocache"]["free"],
        1667780 / 1024 + 61624 / 1024 + 20565016 / 1024
    );
    assert_eq!(f["ansible_processor_count"], 1);
    assert_eq!(f["ansible_processor_cores"], 2);
    assert_eq!(f["ansible_processor_threads_per_core"], 1);
    assert_eq!(f["ansible_processor_vcpus"], 2);
    assert_eq!(
        f["ansible_processor"],
        json!([
            "0",
            "GenuineIntel",
            "Intel(R) Xeon(R) Processor",
            "1",
            "GenuineIntel",
            "Intel(R) Xeon(R) Processor"
        ])
    );
    let mounts = f["ansible_mounts"].as_array().unwrap();
    let root = mounts.iter().find(|m| m["mount"] == "/").unwrap();
    assert_eq!(root["fstype"], "overlay");
    assert_eq!(root["device"], "homelab-lab-node1");
    assert_eq!(root["size_total"], 264212084u64 * 1024);
    assert_eq!(root["size_available"], 48717944u64 * 1024);
    // Network.
    assert_eq!(f["ansible_interfaces"], json!(["host0", "lo"]));
    assert_eq!(f["ansible_all_ipv4_addresses"], json!(["10.213.0.11"]));
    assert_eq!(f["ansible_all_ipv6_addresses"], json!([]));
    assert_eq!(
        f["ansible_default_ipv4"],
        json!({
            "address": "10.213.0.11", "alias": "host0", "broadcast": "10.213.0.255",
            "gateway": "10.213.0.1", "interface": "host0", "macaddress": "7e:03:f0:d1:79:05",
            "mtu": 1500, "netmask": "255.255.255.0", "network": "10.213.0.0", "prefix": "24",
            "type": "ether"
        })
    );
    assert_eq!(f["ansible_default_ipv6"], json!({}));
    let h0 = &f["ansible_host0"];
    assert_eq!(h0["device"], "host0");
    assert_eq!(h0["active"], true);
    assert_eq!(h0["macaddress"], "7e:03:f0:d1:79:05");
    assert_eq!(h0["ipv4"]["address"], "10.213.0.11");
    assert_eq!(h0["type"], "ether");
    let lo = &f["ansible_lo"];
    assert_eq!(lo["type"], "loopback");
    assert!(lo.get("macaddress").is_none());
    assert_eq!(lo["ipv4"]["netmask"], "255.0.0.0");
    assert_eq!(lo["ipv6"][0]["address"], "::1");
    assert_eq!(lo["ipv6"][0]["scope"], "host");
    // Virtual: the lab's nspawn hosts.
    assert_eq!(f["ansible_virtualization_type"], "systemd-nspawn");
    assert_eq!(f["ansible_virtualization_role"], "guest");
    assert!(!f.contains_key("ansible_python"));
}

#[test]
fn raspberry_pi_arm64_without_ip() {
    let f = all(RPI);
    assert_eq!(f["ansible_hostname"], "pi4");
    assert_eq!(f["ansible_fqdn"], "pi4.home.lan");
    assert_eq!(f["ansible_domain"], "home.lan");
    assert_eq!(f["ansible_architecture"], "aarch64");
    assert_eq!(f["ansible_userspace_bits"], "64");
    // The same kernel with a 32-bit (armhf) userland.
    let armhf = RPI.replace("ld64=1\n", "ld32=1\n");
    assert_eq!(all(&armhf)["ansible_userspace_bits"], "32");
    assert_eq!(f["ansible_distribution"], "Debian");
    assert_eq!(f["ansible_distribution_version"], "12.8");
    assert_eq!(f["ansible_user_id"], "root");
    assert_eq!(f["ansible_user_uid"], 0);
    // ARM: one "processor" per core, no sockets.
    assert_eq!(f["ansible_processor_count"], 4);
    assert_eq!(f["ansible_processor_cores"], 1);
    assert_eq!(f["ansible_processor_vcpus"], 4);
    assert_eq!(f["ansible_processor"], json!(["0", "1", "2", "3"]));
    assert_eq!(f["ansible_memtotal_mb"], 3793);
    assert_eq!(f["ansible_swaptotal_mb"], 99);
    assert_eq!(f["ansible_uptime_seconds"], 93784);
    assert_eq!(f["ansible_product_name"], "Raspberry Pi 4 Model B Rev 1.4");
    let mounts = f["ansible_mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 3);
    assert_eq!(mounts[1]["mount"], "/boot/firmware");
    assert_eq!(mounts[1]["size_total"], 522230u64 * 1024);
    assert_eq!(mounts[2]["mount"], "/mnt/my media");
    assert!(mounts[2].get("size_total").is_none());
    // fib_trie + route: addresses without `ip`.
    assert_eq!(f["ansible_all_ipv4_addresses"], json!(["192.168.1.10"]));
    let d = &f["ansible_default_ipv4"];
    assert_eq!(d["address"], "192.168.1.10");
    assert_eq!(d["gateway"], "192.168.1.1");
    assert_eq!(d["interface"], "eth0");
    assert_eq!(d["netmask"], "255.255.255.0");
    assert_eq!(d["network"], "192.168.1.0");
    assert_eq!(d["broadcast"], "192.168.1.255");
    assert_eq!(d["prefix"], "24");
    assert_eq!(d["macaddress"], "dc:a6:32:01:02:03");
    assert_eq!(f["ansible_lo"]["ipv4"]["address"], "127.0.0.1");
    assert_eq!(f["ansible_wlan0"]["active"], false);
    assert!(f["ansible_wlan0"].get("ipv4").is_none());
    assert_eq!(
        f["ansible_all_ipv6_addresses"],
        json!(["fe80::dea6:32ff:fe01:203", "fd00::10"])
    );
    let d6 = &f["ansible_default_ipv6"];
    assert_eq!(d6["gateway"], "fe80::1");
    assert_eq!(d6["interface"], "eth0");
    assert_eq!(d6["address"], "fd00::10");
    assert_eq!(d6["prefix"], "64");
    assert_eq!(f["ansible_dns"]["search"], json!(["home.lan"]));
    assert_eq!(
        f["ansible_dns"]["nameservers"],
        json!(["192.168.1.1", "fd00::1"])
    );
    assert_eq!(f["ansible_apparmor"]["status"], "enabled");
    assert_eq!(f["ansible_date_time"]["tz"], "CET");
    assert_eq!(f["ansible_date_time"]["tz_offset"], "+0100");
    assert_eq!(f["ansible_date_time"]["iso8601"], "2024-12-03T08:00:00Z");
    assert_eq!(f["ansible_date_time"]["hour"], "09");
    // bash's `declare -x` quoting.
    let env = &f["ansible_env"];
    assert_eq!(env["MSG"], "say \"hi\" for $5");
    assert_eq!(env["MULTI"], "line one\nline two");
    assert_eq!(env["SUDO_USER"], "pi");
    assert!(env.get("OLDPWD").is_none());
    assert_eq!(f["ansible_virtualization_role"], "host");
}

#[test]
fn ubuntu_virtualbox_vm() {
    let f = all(UBUNTU);
    assert_eq!(f["ansible_distribution"], "Ubuntu");
    assert_eq!(f["ansible_distribution_version"], "22.04");
    assert_eq!(f["ansible_distribution_major_version"], "22");
    assert_eq!(f["ansible_distribution_release"], "jammy");
    assert_eq!(f["ansible_os_family"], "Debian");
    assert_eq!(f["ansible_lsb"]["id"], "Ubuntu");
    assert_eq!(f["ansible_lsb"]["major_release"], "22");
    assert_eq!(f["ansible_lsb"]["description"], "Ubuntu 22.04.5 LTS");
    assert_eq!(f["ansible_user_gecos"], "vagrant,,,");
    assert_eq!(f["ansible_virtualization_type"], "virtualbox");
    assert_eq!(f["ansible_virtualization_role"], "guest");
    assert_eq!(
        f["ansible_virtualization_tech_guest"],
        json!(["virtualbox"])
    );
    assert_eq!(f["ansible_product_name"], "VirtualBox");
    assert_eq!(f["ansible_system_vendor"], "innotek GmbH");
    assert_eq!(f["ansible_processor_vcpus"], 2);
    assert_eq!(f["ansible_interfaces"], json!(["docker0", "enp0s3", "lo"]));
    assert_eq!(f["ansible_docker0"]["type"], "bridge");
    assert_eq!(f["ansible_docker0"]["active"], false);
    assert_eq!(f["ansible_enp0s3"]["promisc"], true);
    assert_eq!(f["ansible_enp0s3"]["ipv4"]["address"], "10.0.2.15");
    assert_eq!(
        f["ansible_enp0s3"]["ipv4_secondaries"][0]["address"],
        "10.0.2.16"
    );
    assert_eq!(
        f["ansible_enp0s3"]["ipv6"],
        json!([{"address": "fe80::a00:27ff:feaa:bbcc", "prefix": "64", "scope": "link"}])
    );
    assert_eq!(
        f["ansible_all_ipv4_addresses"],
        json!(["172.17.0.1", "10.0.2.15", "10.0.2.16"])
    );
    assert_eq!(f["ansible_default_ipv4"]["gateway"], "10.0.2.2");
    assert_eq!(f["ansible_default_ipv4"]["address"], "10.0.2.15");
    assert_eq!(f["ansible_dns"]["options"]["edns0"], true);
    assert_eq!(f["ansible_env"]["QUOTED"], "it's here");
    assert_eq!(
        f["ansible_date_time"]["iso8601_micro"],
        "2024-12-03T09:00:00.000000Z"
    );
    let snap = f["ansible_mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["fstype"] == "squashfs")
        .unwrap()
        .clone();
    assert_eq!(snap["size_available"], 0);
}

#[test]
fn min_subset_has_no_hardware_or_network() {
    let parts = subset(&["min".to_string()]).unwrap();
    let f = facts(DEBIAN, &parts);
    assert!(f.contains_key("ansible_hostname") && f.contains_key("ansible_env"));
    assert!(f.contains_key("ansible_date_time") && f.contains_key("ansible_distribution"));
    for k in [
        "ansible_memtotal_mb",
        "ansible_mounts",
        "ansible_default_ipv4",
        "ansible_interfaces",
        "ansible_virtualization_type",
    ] {
        assert!(!f.contains_key(k), "{k}");
    }
    assert!(f.len() < all(DEBIAN).len());
}

#[test]
fn virtualization_sources() {
    let v = |t: &str| {
        let raw = Raw::split(t);
        virtualization(&raw)
    };
    assert_eq!(v("container=docker\n").0, "docker");
    assert_eq!(v("container=\ndockerenv=1\n").0, "docker");
    assert_eq!(
        v("container=\n@@environ1\nPATH=/bin\ncontainer=lxc\n@@kv\n").0,
        "lxc"
    );
    assert_eq!(
        v("container=\ndmi_product_name=KVM\n"),
        ("kvm".into(), "guest".into())
    );
    assert_eq!(v("detect_virt=oracle\n").0, "virtualbox");
    assert_eq!(v("detect_virt=none\n"), ("NA".into(), "NA".into()));
}

#[test]
fn helpers() {
    assert_eq!(civil_utc(0), (1970, 1, 1, 0, 0, 0));
    assert_eq!(civil_utc(951_782_400), (2000, 2, 29, 0, 0, 0));
    assert_eq!(architecture("i686"), "i386");
    assert_eq!(architecture("armv7l"), "armv7l");
    assert_eq!(unescape_octal("/a\\040b\\134"), "/a b\\");
    assert_eq!(
        shell_words(r#"a 'b c' "d \"e\"" $'f\ng'"#),
        vec!["a", "b c", "d \"e\"", "f\ng"]
    );
    // An output whose lines are all missing gives no facts rather than a panic.
    assert!(all("@@kv\n").get("ansible_hostname").is_none());
    assert!(all("garbage\n@@mounts\n\n@@df\nx\n").contains_key("ansible_mounts"));
}

#[test]
#[ignore]
fn dump_script() {
    std::fs::write(
        "/tmp/hfacts-script.sh",
        script::build(&subset(&[]).unwrap()),
    )
    .unwrap();
    std::fs::write(
        "/tmp/hfacts-script-min.sh",
        script::build(&subset(&["min".to_string()]).unwrap()),
    )
    .unwrap();
}
