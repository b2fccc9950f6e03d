//! `homelab lab up|down|status`.

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start N isolated Debian hosts (systemd-nspawn) with real sshd; cleans stale state first.
    Up {
        /// How many hosts.
        #[arg(default_value_t = 3)]
        count: usize,
    },
    /// Stop every lab host and remove every trace (idempotent).
    Down,
    /// Show the lab's hosts and whether they are running.
    Status,
}

/// Runs the subcommand; returns the process exit code.
pub fn run(_args: LabArgs) -> anyhow::Result<i32> {
    anyhow::bail!("homelab lab is being written")
}
