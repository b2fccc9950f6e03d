//! The fact script: POSIX shell that dumps what facts are made of, in one round trip.
//!
//! Every fork costs a small target (a Raspberry Pi) more than the round trip does, so the script
//! reads /proc, /sys and /etc files with the shell's `read` builtin and runs programs only where
//! no file says the same: `date` (time), `ip -o addr` (addresses; /proc/net/fib_trie when `ip` is
//! missing) and `df -P` (sizes of mounts), each once and only for the subsets that need them.
//! `uname -m`, `id -un`, `tr` and `systemd-detect-virt` run only as fallbacks, when the files that
//! say the same are missing. All parsing happens on the controller (see `parse.rs`).
//!
//! Output: `@@name` lines start a section; `@@kv` sections hold `key=value` lines; the `@@env`
//! section (`export -p`) comes last and runs to the end.

use super::Part;
use std::collections::BTreeSet;

const PRELUDE: &str = r#"r() { v=; [ -r "$1" ] && IFS= read -r v < "$1" 2>/dev/null; return 0; }
d() { [ -r "$1" ] || return 0; echo "@@$2"; while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done < "$1" 2>/dev/null; echo "@@kv"; }
echo "@@kv"
"#;

const PLATFORM: &str = r#"r /proc/sys/kernel/ostype; echo "system=$v"
r /proc/sys/kernel/hostname; echo "nodename=$v"
r /proc/sys/kernel/osrelease; echo "kernel=$v"
r /proc/sys/kernel/version; echo "kernel_version=$v"
r /proc/sys/kernel/arch; if [ -n "$v" ]; then echo "arch=$v"; else printf 'arch='; uname -m; fi
if [ ! -r /proc/sys/kernel/ostype ]; then printf 'uname='; uname -s -n -r -m; fi
r /etc/machine-id; echo "machine_id=$v"
for f in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1 /lib64/ld-linux-aarch64.so.1 /lib64/ld64.so.2 /lib/ld-linux-riscv64-lp64d.so.1; do [ -e "$f" ] && { echo ld64=1; break; }; done
for f in /lib/ld-linux-armhf.so.3 /lib/ld-linux.so.3 /lib/ld-linux.so.2; do [ -e "$f" ] && { echo ld32=1; break; }; done
d /etc/hosts hosts
"#;

const DISTRIBUTION: &str = r#"if [ -r /etc/os-release ]; then d /etc/os-release osrelease; else d /usr/lib/os-release osrelease; fi
r /etc/debian_version; echo "debian_version=$v"
"#;

const LSB: &str = "d /etc/lsb-release lsb\n";

const PKG_MGR: &str = r#"for p in apt-get:apt dnf:dnf yum:yum zypper:zypper pacman:pacman apk:apk opkg:opkg pkg:pkgng; do
  if command -v "${p%%:*}" >/dev/null 2>&1; then echo "pkg=${p#*:}"; break; fi
done
"#;

const SERVICE_MGR: &str = r#"if [ -d /run/systemd/system ]; then echo svc=systemd; else r /proc/1/comm; echo "svc=$v"; [ -e /sbin/openrc ] && echo openrc=1; fi
"#;

const USER: &str = r#"ruid=; euid=; rgid=; egid=
if [ -r /proc/self/status ]; then
  while read -r k a b rest; do case $k in Uid:) ruid=$a; euid=$b;; Gid:) rgid=$a; egid=$b;; esac; done < /proc/self/status
else
  printf 'ids='; id -u; ruid=x
fi
echo "ids=$ruid $euid $rgid $egid"
pw=
while IFS=: read -r n p u g ge h s; do if [ "$u" = "$euid" ]; then pw="$n:$g:$ge:$h:$s"; break; fi; done < /etc/passwd 2>/dev/null
if [ -n "$pw" ]; then echo "pw=$pw"; else printf 'idn='; id -un 2>/dev/null || echo; fi
"#;

const DATE_TIME: &str =
    "printf 'date='; date '+%s|%N|%Y|%m|%d|%H|%M|%S|%Z|%z|%A|%w|%W|%j' 2>/dev/null || echo\n";

const DNS: &str = "d /etc/resolv.conf resolv\n";

const SELINUX: &str = r#"if [ -r /sys/fs/selinux/enforce ]; then r /sys/fs/selinux/enforce; echo "selinux_enforce=$v"; d /etc/selinux/config selinuxcfg; fi
"#;

const APPARMOR: &str = "[ -d /sys/kernel/security/apparmor ] && echo apparmor=1\n";

const CMDLINE: &str = "r /proc/cmdline; echo \"cmdline=$v\"\n";

/// cpuinfo without its long flag lines (the `hypervisor` flag is kept as its own line).
const CPUINFO: &str = r#"if [ -r /proc/cpuinfo ]; then echo "@@cpuinfo"
  while IFS= read -r l || [ -n "$l" ]; do case $l in flags*|Features*|bugs*|power*) case $l in *" hypervisor"*) echo "hypervisor	: 1";; esac;; *) printf '%s\n' "$l";; esac; done < /proc/cpuinfo
  echo "@@kv"; fi
"#;

const DMI: &str = r#"for k in product_name sys_vendor product_version bios_vendor bios_version bios_date board_name; do r /sys/class/dmi/id/$k; echo "dmi_$k=$v"; done
r /proc/device-tree/model; echo "dt_model=$v"
"#;

const HARDWARE: &str = r#"d /proc/meminfo meminfo
r /proc/uptime; echo "uptime=$v"
echo "@@mounts"; set --
while read -r dev mnt fs opts dump pass; do
  case $dev in /*|*:/*) ;; *) [ "$mnt" = / ] || continue;; esac
  [ "$fs" = none ] && continue
  printf '%s %s %s %s %s %s\n' "$dev" "$mnt" "$fs" "$opts" "$dump" "$pass"
  case $mnt in *\\*) ;; *) set -- "$@" "$mnt";; esac
done < /proc/mounts
echo "@@df"; [ $# -gt 0 ] && df -P -k -- "$@" 2>/dev/null
echo "@@kv"
"#;

const NETWORK: &str = r#"echo "@@netdev"
for i in /sys/class/net/*; do
  [ -e "$i" ] || continue
  r "$i/address"; a=$v; r "$i/mtu"; m=$v; r "$i/operstate"; o=$v; r "$i/type"; t=$v; r "$i/flags"; f=$v
  k=; [ -d "$i/bridge" ] && k=bridge; [ -d "$i/bonding" ] && k=bonding
  printf '%s|%s|%s|%s|%s|%s|%s\n' "${i##*/}" "$a" "$m" "$o" "$t" "$f" "$k"
done
echo "@@kv"
if command -v ip >/dev/null 2>&1; then echo "@@ipaddr"; ip -o addr show 2>/dev/null; echo "@@kv"; else d /proc/net/fib_trie fibtrie; fi
d /proc/net/route route
d /proc/net/if_inet6 ifinet6
if [ -r /proc/net/ipv6_route ]; then echo "@@ipv6route"
  while read -r dst dl rest; do case $dst$dl in 0000000000000000000000000000000000) echo "$dst $dl $rest";; esac; done < /proc/net/ipv6_route
  echo "@@kv"; fi
"#;

const VIRTUAL: &str = r#"r /run/systemd/container; echo "container=$v"; c=$v
[ -e /.dockerenv ] && { echo dockerenv=1; c=docker; }
[ -e /run/.containerenv ] && { echo containerenv=1; c=podman; }
if [ -z "$c" ] && [ -r /proc/1/environ ]; then echo "@@environ1"; tr '\0' '\n' < /proc/1/environ 2>/dev/null; echo; echo "@@kv"; fi
[ -d /sys/module/kvm ] && echo kvm_module=1
[ -d /proc/xen ] && echo xen=1
r /sys/class/dmi/id/product_name; p=$v
if [ -z "$c" ] && [ -z "$p" ] && [ ! -d /proc/device-tree ] && command -v systemd-detect-virt >/dev/null 2>&1; then printf 'detect_virt='; systemd-detect-virt 2>/dev/null || echo; fi
"#;

const ENV: &str = "echo \"@@env\"\nexport -p\n";

const END: &str = "exit 0\n";

/// The script for these parts of the facts.
pub fn build(parts: &BTreeSet<Part>) -> String {
    let has = |p: Part| parts.contains(&p);
    let mut s = String::from(PRELUDE);
    // Processor counting depends on the architecture: hardware brings platform along.
    if has(Part::Platform) || has(Part::Hardware) {
        s.push_str(PLATFORM);
    }
    if has(Part::Distribution) {
        s.push_str(DISTRIBUTION);
    }
    if has(Part::Lsb) {
        s.push_str(LSB);
    }
    if has(Part::PkgMgr) {
        s.push_str(PKG_MGR);
    }
    if has(Part::ServiceMgr) {
        s.push_str(SERVICE_MGR);
    }
    if has(Part::User) {
        s.push_str(USER);
    }
    if has(Part::DateTime) {
        s.push_str(DATE_TIME);
    }
    if has(Part::Dns) {
        s.push_str(DNS);
    }
    if has(Part::Selinux) {
        s.push_str(SELINUX);
    }
    if has(Part::Apparmor) {
        s.push_str(APPARMOR);
    }
    if has(Part::Cmdline) {
        s.push_str(CMDLINE);
    }
    if has(Part::Hardware) || has(Part::Virtual) {
        s.push_str(CPUINFO);
        s.push_str(DMI);
    }
    if has(Part::Hardware) {
        s.push_str(HARDWARE);
    }
    if has(Part::Network) {
        s.push_str(NETWORK);
    }
    if has(Part::Virtual) {
        s.push_str(VIRTUAL);
    }
    if has(Part::Env) {
        s.push_str(ENV);
    }
    s.push_str(END);
    s
}
