//! `homelab lab`: real test hosts with systemd-nspawn. Being written.

pub mod cli;
pub mod paths;
pub use paths::{cache_dir, inventory_path, lab_dir};
