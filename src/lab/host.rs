//! One lab host: its files, cgroups, overlay mount, configuration, and probes.

use super::error::{LabError, Result};
use super::sys::{self, cmd};
use super::{CGROUP_PREFIX, LAB_USER, MOUNT_SOURCE_PREFIX, SUBNET};
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Host {
    /// 1-based.
    pub index: usize,
    pub name: String,
    pub addr: Ipv4Addr,
}

impl Host {
    pub fn new(index: usize) -> Host {
        Host {
            index,
            name: super::host_name(index),
            addr: SUBNET.host(index),
        }
    }
}

/// Hosts node1..nodeN.
pub fn hosts(n: usize) -> Vec<Host> {
    (1..=n).map(Host::new).collect()
}

/// The files of one host under the lab directory.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub dir: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// systemd-nspawn's output: the host's console.
    pub console_log: PathBuf,
    pub supervisor_log: PathBuf,
    pub supervisor_pid: PathBuf,
    pub nspawn_pid: PathBuf,
    /// Present while the host is being stopped: the supervisor must not restart nspawn.
    pub stop_flag: PathBuf,
}

impl HostPaths {
    pub fn new(lab_dir: &Path, name: &str) -> HostPaths {
        let dir = lab_dir.join(name);
        HostPaths {
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            console_log: dir.join("console.log"),
            supervisor_log: dir.join("supervisor.log"),
            supervisor_pid: dir.join("supervisor.pid"),
            nspawn_pid: dir.join("nspawn.pid"),
            stop_flag: dir.join("stop"),
            dir,
        }
    }
}

/// Reads a pid file; None if missing or garbage.
pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

// ---------------------------------------------------------------- cgroups

/// The cgroup hierarchies the lab puts hosts in: on this machine kind (cgroup v1 hybrid) the named
/// `systemd` hierarchy and the unified one; on a pure cgroup v2 machine the one root.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    ["systemd", "unified"]
        .iter()
        .map(|h| base.join(h))
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

/// The host's cgroup in each hierarchy (whether or not it exists).
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    cgroup_roots()
        .into_iter()
        .map(|r| r.join(format!("{CGROUP_PREFIX}{name}")))
        .collect()
}

/// Creates the host's cgroups; returns them.
pub fn create_cgroups(name: &str) -> Result<Vec<PathBuf>> {
    let dirs = cgroup_dirs(name);
    if dirs.is_empty() {
        return Err(LabError::Invalid(
            "no writable cgroup hierarchy under /sys/fs/cgroup (expected systemd/ and unified/, or cgroup v2)".into(),
        ));
    }
    for d in &dirs {
        sys::create_dir_all(d)?;
    }
    Ok(dirs)
}

/// Host names that have a lab cgroup in any hierarchy.
pub fn cgroup_host_names() -> Vec<String> {
    let mut names = Vec::new();
    for root in cgroup_roots() {
        let Ok(rd) = fs::read_dir(&root) else {
            continue;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(host) = n.strip_prefix(CGROUP_PREFIX) {
                if e.path().is_dir() && !names.iter().any(|x| x == host) {
                    names.push(host.to_string());
                }
            }
        }
    }
    names
}

/// Every cgroup directory in the host's cgroup trees, deepest first.
pub fn cgroup_tree(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut out = Vec::new();
    for d in cgroup_dirs(name) {
        if d.is_dir() {
            walk(&d, &mut out);
        }
    }
    out
}

/// Every process in the host's cgroup trees.
pub fn cgroup_pids(name: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = cgroup_tree(name)
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

// ---------------------------------------------------------------- overlay

/// The overlay's mount source name, by which teardown finds it wherever it is mounted.
pub fn mount_source(name: &str) -> String {
    format!("{MOUNT_SOURCE_PREFIX}{name}")
}

/// Mounts the host's overlay on `paths.merged` with `lower` as the read-only layer.
pub fn mount_overlay(name: &str, paths: &HostPaths, lower: &Path) -> Result<()> {
    for d in [&paths.upper, &paths.work, &paths.merged] {
        sys::create_dir_all(d)?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        paths.upper.display(),
        paths.work.display()
    );
    sys::run(
        cmd("mount")
            .args(["-t", "overlay", &mount_source(name), "-o", &opts])
            .arg(&paths.merged),
    )
    .map(|_| ())
}

// ---------------------------------------------------------------- configuration

/// Writes the host's identity into its overlay: hostname, /etc/hosts naming every lab host, a
/// static address on `host0` with the bridge as gateway, the lab key in the user's
/// authorized_keys, and a fresh ed25519 SSH host key. Returns the host key's public line
/// (`ssh-ed25519 AAAA... comment`).
pub fn configure(host: &Host, all: &[Host], root: &Path, client_pubkey: &str) -> Result<String> {
    let etc = root.join("etc");
    sys::write_file(
        &etc.join("hostname"),
        format!("{}\n", host.name).as_bytes(),
        0o644,
    )?;
    let mut hosts = format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{}\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n\n# homelab lab\n",
        host.name
    );
    for h in all {
        hosts.push_str(&format!("{}\t{}\n", h.addr, h.name));
    }
    sys::write_file(&etc.join("hosts"), hosts.as_bytes(), 0o644)?;

    let network = format!(
        "# homelab lab: static address on the lab bridge\n\
         [Match]\nName=host0\n\n\
         [Network]\nAddress={}/{}\nGateway={}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        host.addr,
        SUBNET.prefix_len,
        SUBNET.gateway()
    );
    sys::write_file(
        &etc.join("systemd/network/10-homelab-lab-host0.network"),
        network.as_bytes(),
        0o644,
    )?;

    let (uid, gid, home) = passwd_entry(&etc.join("passwd"), LAB_USER)?;
    let home = root.join(home.trim_start_matches('/'));
    let ssh = home.join(".ssh");
    sys::create_dir_all(&ssh)?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700))
        .map_err(|e| LabError::io("setting the mode of", &ssh, e))?;
    let ak = ssh.join("authorized_keys");
    sys::write_file(&ak, format!("{}\n", client_pubkey.trim()).as_bytes(), 0o600)?;
    for p in [&ssh, &ak] {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))
            .map_err(|e| LabError::io("changing the owner of", p, e))?;
    }

    let key = etc.join("ssh/ssh_host_ed25519_key");
    let _ = fs::remove_file(&key);
    let _ = fs::remove_file(key.with_extension("pub"));
    sys::run(
        cmd("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-C")
            .arg(format!("root@{}", host.name))
            .arg("-f")
            .arg(&key),
    )?;
    let pub_path = etc.join("ssh/ssh_host_ed25519_key.pub");
    let public =
        fs::read_to_string(&pub_path).map_err(|e| LabError::io("reading", &pub_path, e))?;
    Ok(public.trim().to_string())
}

/// uid, gid and home of `user` in a passwd file.
fn passwd_entry(passwd: &Path, user: &str) -> Result<(u32, u32, String)> {
    let text = fs::read_to_string(passwd).map_err(|e| LabError::io("reading", passwd, e))?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && f[0] == user)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?, f[5].to_string())))
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "user {user} missing from {} (a stale root filesystem cache? remove it)",
                passwd.display()
            ))
        })
}

// ---------------------------------------------------------------- probes

/// Whether sshd on `addr` answers with an SSH-2.0 banner.
pub fn ssh_banner(addr: Ipv4Addr, timeout: Duration) -> bool {
    let sa = SocketAddr::from((addr, 22));
    let Ok(mut s) = TcpStream::connect_timeout(&sa, timeout) else {
        return false;
    };
    if s.set_read_timeout(Some(timeout)).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 8 {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf[..got].starts_with(b"SSH-2.0-")
}

/// The pid (on this machine) of the host's init: the process in its cgroups that is pid 1 in its
/// own pid namespace.
pub fn container_init(name: &str) -> Option<u32> {
    cgroup_pids(name).into_iter().find(|p| {
        sys::status_field(*p, "NSpid").is_some_and(|ns| {
            let ids: Vec<&str> = ns.split_whitespace().collect();
            ids.len() >= 2 && ids.last() == Some(&"1")
        })
    })
}

/// The host's current boot id, read through its init's root.
pub fn boot_id(name: &str) -> Option<String> {
    let init = container_init(name)?;
    let p = format!("/proc/{init}/root/proc/sys/kernel/random/boot_id");
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
