//! Where the lab keeps its state and its cache. Named in one place.

use std::path::PathBuf;

/// The lab's state: inventory, SSH key, known_hosts, per-host overlays.
/// `HOMELAB_LAB_DIR` overrides the default `/var/lib/homelab/lab`.
pub fn lab_dir() -> PathBuf {
    match std::env::var_os("HOMELAB_LAB_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/var/lib/homelab/lab"),
    }
}

/// The root filesystem cache, kept outside any clone so later runs reuse it.
/// `HOMELAB_CACHE_DIR` overrides the default `~/.cache/homelab`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("HOMELAB_CACHE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => dirs::cache_dir()
            .unwrap_or_else(|| PathBuf::from("/var/cache"))
            .join("homelab"),
    }
}

/// The inventory `lab up` writes; `-i lab` anywhere means this file.
pub fn inventory_path() -> PathBuf {
    lab_dir().join("inventory.ini")
}
