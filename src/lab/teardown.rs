//! Finding and removing a lab's state, by the lab's names: also what a killed earlier lab left.

use super::error::{LabError, Result};
use super::host::{self, HostPaths};
use super::sys::{self, Mount};
use super::{net, supervisor, MOUNT_SOURCE_PREFIX, NFT_TABLE, RUN_DIR};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where systemd-nspawn keeps a directory per running machine.
const PROPAGATE_DIR: &str = "/run/systemd/nspawn/propagate";
/// How long a host gets for a clean poweroff after SIGTERM to its nspawn.
const POWEROFF_WAIT: Duration = Duration::from_secs(15);

/// Files `lab up` writes at the top of the lab directory.
pub const LAB_FILES: [&str; 3] = ["inventory.ini", "known_hosts", "lab.json"];
/// What `lab down` removes as well: the unpacked root filesystem and the lab's SSH key.
const LAB_FILES_DOWN: [&str; 5] = [
    "rootfs",
    "rootfs.stamp",
    "rootfs.unpacking",
    "id_ed25519",
    "id_ed25519.pub",
];

/// The file recording which lab directory the running lab uses (so `down` from another
/// `HOMELAB_LAB_DIR` still finds its host directories).
pub fn active_dir_record() -> PathBuf {
    Path::new(RUN_DIR).join("lab_dir")
}

/// Everything of a lab that exists now.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub supervisors: Vec<(u32, String)>,
    pub nspawns: Vec<(u32, String)>,
    pub cgroup_hosts: Vec<String>,
    pub mounts: Vec<Mount>,
    pub propagate: Vec<PathBuf>,
    pub host_dirs: Vec<PathBuf>,
    pub bridge: bool,
    pub nft_table: bool,
    pub forward_saved: bool,
}

impl Leftovers {
    /// Running parts of a lab (files on disk alone do not count).
    pub fn is_empty(&self) -> bool {
        self.supervisors.is_empty()
            && self.nspawns.is_empty()
            && self.cgroup_hosts.is_empty()
            && self.mounts.is_empty()
            && self.propagate.is_empty()
            && !self.bridge
            && !self.nft_table
            && !self.forward_saved
    }

    pub fn describe(&self) -> Vec<String> {
        let mut d = Vec::new();
        let count =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        if !self.supervisors.is_empty() {
            d.push(count(self.supervisors.len(), "supervisor", "supervisors"));
        }
        if !self.nspawns.is_empty() {
            d.push(count(
                self.nspawns.len(),
                "systemd-nspawn process",
                "systemd-nspawn processes",
            ));
        }
        if !self.cgroup_hosts.is_empty() {
            d.push(format!("cgroups of {}", self.cgroup_hosts.join(", ")));
        }
        if !self.mounts.is_empty() {
            d.push(count(self.mounts.len(), "mount", "mounts"));
        }
        if !self.propagate.is_empty() {
            d.push(count(
                self.propagate.len(),
                "nspawn propagate dir",
                "nspawn propagate dirs",
            ));
        }
        if self.bridge {
            d.push(format!("bridge {}", super::BRIDGE));
        }
        if self.nft_table {
            d.push(format!("nftables table {NFT_TABLE}"));
        }
        if self.forward_saved {
            d.push("changed ip_forward".into());
        }
        d
    }

    /// Every host name any leftover mentions.
    fn host_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if super::is_host_name(n) && !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        };
        self.supervisors.iter().for_each(|(_, n)| add(n));
        self.nspawns.iter().for_each(|(_, n)| add(n));
        self.cgroup_hosts.iter().for_each(|n| add(n));
        for m in &self.mounts {
            if let Some(n) = m.source.strip_prefix(MOUNT_SOURCE_PREFIX) {
                add(n);
            }
        }
        for d in &self.host_dirs {
            if let Some(n) = d.file_name().and_then(|n| n.to_str()) {
                add(n);
            }
        }
        names
    }
}

/// The lab directories to look in: `lab_dir` and the one the last `lab up` recorded.
fn lab_dirs(lab_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![lab_dir.to_path_buf()];
    if let Ok(rec) = fs::read_to_string(active_dir_record()) {
        let rec = PathBuf::from(rec.trim());
        if rec.is_absolute() && rec != lab_dir {
            dirs.push(rec);
        }
    }
    dirs
}

/// Finds every part of a lab that exists now.
pub fn detect(lab_dir: &Path) -> Leftovers {
    let dirs = lab_dirs(lab_dir);
    let mounts = lab_mounts(&dirs);
    let mut host_dirs = Vec::new();
    for d in &dirs {
        if let Ok(rd) = fs::read_dir(d) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if super::is_host_name(&n) && is_lab_host_dir(&e.path()) {
                    host_dirs.push(e.path());
                }
            }
        }
    }
    let mut l = Leftovers {
        supervisors: supervisor::find_supervisors(),
        nspawns: supervisor::find_nspawns(),
        cgroup_hosts: host::cgroup_host_names(),
        mounts,
        host_dirs,
        bridge: net::bridge_exists(),
        nft_table: net::nft_table_exists(),
        forward_saved: net::forward_saved(),
        ..Leftovers::default()
    };
    l.propagate = l
        .host_names()
        .iter()
        .map(|n| Path::new(PROPAGATE_DIR).join(n))
        .filter(|p| p.exists())
        .collect();
    l
}

/// A `nodeK` directory the lab made (it has the lab's files), not someone else's.
fn is_lab_host_dir(dir: &Path) -> bool {
    dir.is_dir()
        && ["upper", "work", "merged", "console.log", "supervisor.log"]
            .iter()
            .any(|f| dir.join(f).exists())
}

/// How much `teardown` removes from the lab directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// Host directories and the inventory; keeps the unpacked root filesystem and the SSH key for
    /// the next `lab up`.
    Hosts,
    /// Everything the lab wrote (`lab down`).
    All,
}

/// Stops every lab host and removes every trace, in the order the lab notes prescribe: supervisors
/// first (so nothing restarts), SIGTERM to nspawn (clean poweroff), then whatever is left in the
/// hosts' cgroups, mounts, cgroups, nspawn's propagate dirs, bridge, table, `ip_forward`, files.
/// Returns what it did, for the user. Idempotent.
pub fn teardown(lab_dir: &Path, purge: Purge) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let before = detect(lab_dir);
    let names = before.host_names();
    let dirs = lab_dirs(lab_dir);

    for d in &dirs {
        for n in &names {
            let p = HostPaths::new(d, n);
            if p.dir.is_dir() {
                let _ = fs::write(&p.stop_flag, b"stop\n");
            }
        }
    }

    // 1. Supervisors: only our restart loop; killing one orphans nspawn, which keeps running.
    let sup: Vec<u32> = before.supervisors.iter().map(|(p, _)| *p).collect();
    for p in &sup {
        sys::signal(*p, "KILL");
    }
    sys::wait_gone(&sup, Duration::from_secs(5));
    if !sup.is_empty() {
        done.push(format!("stopped {} supervisor(s)", sup.len()));
    }

    // 2. nspawn: SIGTERM is a clean poweroff of the container. Never SIGKILL nspawn itself.
    let mut stopped = 0;
    for round in 0..2 {
        let nspawns: Vec<(u32, String)> = supervisor::find_nspawns();
        if nspawns.is_empty() {
            break;
        }
        if round == 0 {
            println!(
                "stopping {} host(s) (clean poweroff, up to {} s)...",
                nspawns.len(),
                POWEROFF_WAIT.as_secs()
            );
        }
        let pids: Vec<u32> = nspawns.iter().map(|(p, _)| *p).collect();
        for p in &pids {
            sys::signal(*p, "TERM");
        }
        let left = sys::wait_gone(&pids, POWEROFF_WAIT);
        stopped += pids.len() - left.len();
        if !left.is_empty() {
            // A container that ignores poweroff: cut its power (SIGKILL its init), which ends
            // nspawn normally.
            for (p, n) in &nspawns {
                if left.contains(p) {
                    eprintln!("host {n} did not power off in time; killing its init");
                    if let Some(init) = host::container_init(n) {
                        sys::signal(init, "KILL");
                    }
                }
            }
            let still = sys::wait_gone(&left, Duration::from_secs(10));
            stopped += left.len() - still.len();
        }
    }
    if stopped > 0 {
        done.push(format!("powered off {stopped} host(s)"));
    }
    let stubborn = supervisor::find_nspawns();
    if !stubborn.is_empty() {
        let list: Vec<String> = stubborn
            .iter()
            .map(|(p, n)| format!("{n} (pid {p})"))
            .collect();
        return Err(LabError::Teardown(format!(
            "systemd-nspawn still running for {}; retry `homelab lab down`",
            list.join(", ")
        )));
    }

    // 3. Whatever is left in the hosts' cgroups, then the cgroups themselves.
    let mut cg_names = names.clone();
    for n in host::cgroup_host_names() {
        if !cg_names.contains(&n) {
            cg_names.push(n);
        }
    }
    for n in &cg_names {
        for _ in 0..20 {
            let pids = host::cgroup_pids(n);
            if pids.is_empty() {
                break;
            }
            for p in &pids {
                sys::signal(*p, "KILL");
            }
            sys::wait_gone(&pids, Duration::from_secs(2));
        }
        let tree = host::cgroup_tree(n);
        if !tree.is_empty() {
            for d in &tree {
                let _ = fs::remove_dir(d);
            }
            let left: Vec<&PathBuf> = tree.iter().filter(|d| d.exists()).collect();
            if !left.is_empty() {
                return Err(LabError::Teardown(format!(
                    "could not remove cgroup {} (processes left: {:?})",
                    left[0].display(),
                    host::cgroup_pids(n)
                )));
            }
            done.push(format!("removed cgroups of {n}"));
        }
    }

    // 4. Overlay mounts (and anything else mounted under the lab directory), deepest first.
    let mut mounts: Vec<PathBuf> = detect_mounts(&dirs);
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for m in &mounts {
        sys::unmount(m)?;
    }
    if !mounts.is_empty() {
        done.push(format!("unmounted {} overlay(s)", mounts.len()));
    }

    // 5. nspawn's per-machine directory.
    for n in &names {
        let p = Path::new(PROPAGATE_DIR).join(n);
        if p.exists() {
            sys::remove_tree(&p)?;
            done.push(format!("removed {}", p.display()));
        }
    }

    // 6. Network.
    done.extend(net::teardown()?);

    // 7. Files.
    let remaining = detect_mounts(&dirs);
    if let Some(m) = remaining.first() {
        return Err(LabError::Teardown(format!(
            "{} is still mounted",
            m.display()
        )));
    }
    for d in &dirs {
        for h in before.host_dirs.iter().filter(|h| h.parent() == Some(d)) {
            sys::remove_tree(h)?;
        }
        for f in LAB_FILES {
            remove_path(&d.join(f))?;
        }
        if purge == Purge::All {
            for f in LAB_FILES_DOWN {
                remove_path(&d.join(f))?;
            }
            let _ = fs::remove_dir(d); // only if empty
        }
    }
    if purge == Purge::All {
        let _ = fs::remove_file(active_dir_record());
    }
    Ok(done)
}

/// The lab's overlays (by source name) and anything mounted under a lab directory.
fn lab_mounts(dirs: &[PathBuf]) -> Vec<Mount> {
    sys::mounts()
        .into_iter()
        .filter(|m| {
            (m.fstype == "overlay" && m.source.starts_with(MOUNT_SOURCE_PREFIX))
                || dirs
                    .iter()
                    .any(|d| m.mount_point.starts_with(d) && m.mount_point != *d)
        })
        .collect()
}

fn detect_mounts(dirs: &[PathBuf]) -> Vec<PathBuf> {
    lab_mounts(dirs)
        .into_iter()
        .map(|m| m.mount_point)
        .collect()
}

fn remove_path(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => sys::remove_tree(p),
        Ok(_) => fs::remove_file(p).map_err(|e| LabError::io("removing", p, e)),
    }
}
