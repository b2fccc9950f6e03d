//! `homelab inventory`: like `ansible-inventory`.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory source (file or directory); repeatable. `lab` means the lab's inventory.
    #[arg(short = 'i', long = "inventory", required = true)]
    pub inventory: Vec<String>,
    /// Print the whole inventory as JSON (the same as `ansible-inventory --list`).
    #[arg(long, conflicts_with_all = ["graph", "host"])]
    pub list: bool,
    /// Print the group tree (the same as `ansible-inventory --graph [GROUP]`).
    #[arg(long, value_name = "GROUP", num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
    /// With --graph, show each host's variables.
    #[arg(long)]
    pub vars: bool,
    /// Print one host's variables as JSON.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Limit to hosts matching this pattern.
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Write the output to a file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Runs the subcommand; returns the process exit code.
pub fn run(_args: InventoryArgs) -> anyhow::Result<i32> {
    anyhow::bail!("homelab inventory is being written")
}
