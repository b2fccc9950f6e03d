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
    /// Run playbooks: `apply site.yml -i inventory.ini` (like ansible-playbook).
    Apply(homelab::engine::apply::ApplyArgs),
    /// Show exactly what a playbook would change, with diffs; change nothing (= apply --check --diff).
    Plan(homelab::engine::apply::ApplyArgs),
    /// Check that hosts can be reached and logged into (with -b: that sudo works).
    Ping(homelab::engine::adhoc::PingArgs),
    /// Run one module on hosts, ad hoc: `run -i INV PATTERN -m shell -a 'uptime'`.
    Run(homelab::engine::adhoc::RunArgs),
    /// Show an inventory like ansible-inventory (--list, --graph, --host).
    Inventory(homelab::inventory::cli::InventoryArgs),
    /// Make, inspect and remove the local lab of test hosts (needs root).
    Lab(homelab::lab::cli::LabArgs),
    /// The connection keeper (started by runs; see HOMELAB_PERSIST).
    #[command(name = "__keeper", hide = true)]
    Keeper {
        #[arg(long)]
        socket: std::path::PathBuf,
        /// Seconds without a request before it exits.
        #[arg(long, default_value_t = 60)]
        idle: u64,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Apply(a) => homelab::engine::apply::apply(a, false),
        Command::Plan(a) => homelab::engine::apply::apply(a, true),
        Command::Ping(a) => homelab::engine::adhoc::ping(a),
        Command::Run(a) => homelab::engine::adhoc::run(a),
        Command::Inventory(a) => homelab::inventory::cli::run(a),
        Command::Lab(a) => homelab::lab::cli::run(a),
        Command::Keeper { socket, idle } => {
            homelab::transport::keeper::run(&socket, std::time::Duration::from_secs(idle.max(1)))
        }
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
