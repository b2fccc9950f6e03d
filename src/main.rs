use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "homelab",
    version,
    about = "Agentless provisioning over SSH, Ansible-compatible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show an inventory like ansible-inventory (--list, --graph, --host).
    Inventory(homelab::inventory::cli::InventoryArgs),
    /// Make, inspect and remove the local lab of test hosts (needs root).
    Lab(homelab::lab::cli::LabArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inventory(a) => homelab::inventory::cli::run(a),
        Command::Lab(a) => homelab::lab::cli::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
