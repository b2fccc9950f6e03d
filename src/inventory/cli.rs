//! `homelab inventory`: like `ansible-inventory`.

use super::{py_json_dumps, resolve_source, Inventory, InventoryError};
use anyhow::Context;
use clap::Args;
use std::io::Write;
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
    /// Also read group_vars/ and host_vars/ from this directory, as a playbook's
    /// (default: the current directory, like ansible-inventory).
    #[arg(long, value_name = "DIR")]
    pub playbook_dir: Option<PathBuf>,
}

/// Runs the subcommand; returns the process exit code.
pub fn run(args: InventoryArgs) -> anyhow::Result<i32> {
    if args.graph.is_some() && args.host.is_some() {
        anyhow::bail!("use only one of --list, --graph or --host");
    }
    if !args.list && args.graph.is_none() && args.host.is_none() {
        anyhow::bail!("say what to show: --list, --graph [GROUP] or --host NAME");
    }
    let sources: Vec<PathBuf> = args.inventory.iter().map(|s| resolve_source(s)).collect();
    let mut inv = Inventory::load(&sources)?;
    let play_dir = args
        .playbook_dir
        .clone()
        .or_else(|| std::env::current_dir().ok());
    if let Some(dir) = &play_dir {
        inv.add_playbook_dir(dir)?;
    }
    for w in inv.warnings() {
        eprintln!("[WARNING]: {w}");
    }

    let text = if let Some(host) = &args.host {
        py_json_dumps(&inv.host_json(host)?)
    } else if let Some(group) = &args.graph {
        inv.graph(group, args.vars, args.playbook_dir.is_some())?
    } else {
        let json = match &args.limit {
            Some(limit) => {
                let list = inv.to_list_json_limited(limit)?;
                if inv.select_limited("all", Some(limit))?.is_empty() {
                    return Err(InventoryError::BadPattern {
                        pattern: limit.clone(),
                        reason: "the limit matches no host".into(),
                    }
                    .into());
                }
                list
            }
            None => inv.to_list_json(),
        };
        py_json_dumps(&json)
    };

    match &args.output {
        Some(path) => {
            std::fs::write(path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}").context("cannot write to stdout")?;
        }
    }
    Ok(0)
}
