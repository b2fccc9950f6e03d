//! `homelab lab`: real test hosts on this machine.
//!
//! Each host is a Debian bookworm system booted with `systemd-nspawn --boot` on its own overlayfs
//! (upper layer per host, lower layer a cached root filesystem), in its own network namespace,
//! attached to one Linux bridge with NAT to the outside. A small supervisor process per host restarts
//! nspawn when the host reboots (exit code 133). Every resource the lab makes carries the lab's
//! names ([`BRIDGE`], [`NFT_TABLE`], [`CGROUP_PREFIX`], [`MOUNT_SOURCE_PREFIX`]), which is how
//! `lab up` finds and removes what a killed earlier lab left behind.

pub mod cli;
pub mod error;
pub mod host;
pub mod net;
pub mod paths;
pub mod rootfs;
pub mod supervisor;
pub mod sys;
pub mod teardown;

pub use error::LabError;
pub use paths::{cache_dir, inventory_path, lab_dir};

use std::net::Ipv4Addr;

/// The lab's IPv4 subnet: the one place it is named. The bridge (gateway) is `.1`, host `nodeK`
/// is `.(10+K)`.
pub const SUBNET: Subnet = Subnet {
    net: [10, 213, 0, 0],
    prefix_len: 24,
};

/// The Linux bridge every lab host is attached to (at most 15 characters).
pub const BRIDGE: &str = "homelab0";
/// The nftables table (family `ip`) holding the lab's masquerade rule.
pub const NFT_TABLE: &str = "homelab_lab";
/// Per-host cgroups are `CGROUP_PREFIX + NAME` under `/sys/fs/cgroup/{systemd,unified}/`.
pub const CGROUP_PREFIX: &str = "homelab-lab-";
/// Per-host overlay mounts carry the source name `MOUNT_SOURCE_PREFIX + NAME`.
pub const MOUNT_SOURCE_PREFIX: &str = "homelab-lab-";
/// The login user on every host (passwordless sudo).
pub const LAB_USER: &str = "homelab";
/// The Debian release the hosts run.
pub const SUITE: &str = "bookworm";
/// How many hosts one lab may have (addresses .11 to .(10+MAX_HOSTS)).
pub const MAX_HOSTS: usize = 50;
/// Machine-wide runtime state of the lab (the lock, the saved `ip_forward`), independent of
/// `lab_dir()` because the bridge, table and subnet are machine-wide too.
pub const RUN_DIR: &str = "/run/homelab-lab";

/// An IPv4 subnet with a /24 or shorter prefix whose host part fits in the last octet.
#[derive(Debug, Clone, Copy)]
pub struct Subnet {
    pub net: [u8; 4],
    pub prefix_len: u8,
}

impl Subnet {
    /// `10.213.0.0/24`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.net), self.prefix_len)
    }

    /// The bridge's address, the hosts' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        let [a, b, c, _] = self.net;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// The address of host number `k` (1-based): `.(10+k)`.
    pub fn host(&self, k: usize) -> Ipv4Addr {
        let [a, b, c, _] = self.net;
        let last = u8::try_from(10 + k).unwrap_or(u8::MAX);
        Ipv4Addr::new(a, b, c, last)
    }
}

/// The name of host number `k` (1-based).
pub fn host_name(k: usize) -> String {
    format!("node{k}")
}

/// Whether `name` looks like a lab host name (`node` followed by a number).
pub fn is_host_name(name: &str) -> bool {
    name.strip_prefix("node")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
