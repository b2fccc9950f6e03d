//! The lab network: one bridge with the gateway address, NAT to the outside with an nftables
//! masquerade rule, and `ip_forward` (saved first, restored at teardown).

use super::error::{LabError, Result};
use super::sys::{self, cmd};
use super::{BRIDGE, NFT_TABLE, RUN_DIR, SUBNET};
use std::fs;
use std::path::{Path, PathBuf};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

fn saved_forward_path() -> PathBuf {
    Path::new(RUN_DIR).join("ip_forward.saved")
}

pub fn bridge_exists() -> bool {
    Path::new("/sys/class/net").join(BRIDGE).exists()
}

pub fn nft_table_exists() -> bool {
    sys::succeeds(cmd("nft").args(["list", "table", "ip", NFT_TABLE]))
}

/// Whether an earlier lab changed `ip_forward` and did not restore it yet.
pub fn forward_saved() -> bool {
    saved_forward_path().exists()
}

/// Makes the bridge, the NAT table and turns on forwarding. Expects a clean slate (teardown first).
pub fn setup() -> Result<()> {
    sys::run(cmd("ip").args(["link", "add", BRIDGE, "type", "bridge"]))?;
    let gw = format!("{}/{}", SUBNET.gateway(), SUBNET.prefix_len);
    sys::run(cmd("ip").args(["addr", "add", &gw, "dev", BRIDGE]))?;
    sys::run(cmd("ip").args(["link", "set", BRIDGE, "up"]))?;

    let cidr = SUBNET.cidr();
    let ruleset = format!(
        "table ip {NFT_TABLE} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {cidr} ip daddr != {cidr} masquerade\n\
         \t}}\n\
         }}\n"
    );
    let rules_file = Path::new(RUN_DIR).join("nat.nft");
    sys::write_file(&rules_file, ruleset.as_bytes(), 0o644)?;
    sys::run(cmd("nft").arg("-f").arg(&rules_file))?;

    let saved = saved_forward_path();
    if !saved.exists() {
        let current =
            fs::read_to_string(IP_FORWARD).map_err(|e| LabError::io("reading", IP_FORWARD, e))?;
        sys::write_file(&saved, current.trim().as_bytes(), 0o644)?;
    }
    fs::write(IP_FORWARD, b"1").map_err(|e| LabError::io("writing", IP_FORWARD, e))
}

/// Removes the bridge (and any interface still attached to it), the nftables table, and restores
/// `ip_forward`. Idempotent; returns what it removed, for the user.
pub fn teardown() -> Result<Vec<String>> {
    let mut done = Vec::new();
    if bridge_exists() {
        // Host ends of the hosts' veth pairs go away with their network namespaces; remove any
        // left attached (e.g. a namespace kept alive by a stray process) before the bridge.
        let brif = Path::new("/sys/class/net").join(BRIDGE).join("brif");
        if let Ok(rd) = fs::read_dir(&brif) {
            for e in rd.flatten() {
                let ifname = e.file_name().to_string_lossy().into_owned();
                let _ = sys::succeeds(cmd("ip").args(["link", "del", &ifname]));
            }
        }
        sys::run(cmd("ip").args(["link", "del", BRIDGE]))?;
        done.push(format!("bridge {BRIDGE}"));
    }
    if nft_table_exists() {
        sys::run(cmd("nft").args(["delete", "table", "ip", NFT_TABLE]))?;
        done.push(format!("nftables table ip {NFT_TABLE}"));
    }
    let _ = fs::remove_file(Path::new(RUN_DIR).join("nat.nft"));
    let saved = saved_forward_path();
    if let Ok(value) = fs::read_to_string(&saved) {
        let value = value.trim();
        if value == "0" || value == "1" {
            fs::write(IP_FORWARD, value).map_err(|e| LabError::io("writing", IP_FORWARD, e))?;
            done.push(format!("ip_forward restored to {value}"));
        }
        fs::remove_file(&saved).map_err(|e| LabError::io("removing", &saved, e))?;
    }
    Ok(done)
}
