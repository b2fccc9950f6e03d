//! Options every command that reaches hosts takes, spelled as Ansible users type them.

use crate::transport::become_::Secret;
use crate::transport::spec::Defaults;
use crate::transport::{BecomeMethod, HostKeyPolicy};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Inventory file or directory; repeatable. `lab` (the default) means the lab's inventory.
    #[arg(short = 'i', long = "inventory", default_value = "lab")]
    pub inventory: Vec<String>,
    /// Limit to hosts matching this pattern (Ansible pattern syntax).
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Hosts handled at once.
    #[arg(short = 'f', long, default_value_t = 50)]
    pub forks: usize,
    /// Connect as this user (inventory's ansible_user wins, as in Ansible).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Private key file (inventory's ansible_ssh_private_key_file wins).
    #[arg(long = "private-key", visible_alias = "key-file")]
    pub private_key: Option<PathBuf>,
    /// known_hosts file to check host keys against (default ~/.ssh/known_hosts).
    #[arg(long)]
    pub known_hosts: Option<PathBuf>,
    /// strict (default): refuse unknown keys; accept-new: record unknown keys; off: accept any.
    /// A changed key is refused unless off.
    #[arg(long, value_parser = parse_policy)]
    pub host_key_checking: Option<HostKeyPolicy>,
    /// Connection timeout in seconds.
    #[arg(short = 'T', long, default_value_t = 10)]
    pub timeout: u64,
    /// Run with privilege escalation (sudo by default).
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
    /// The user to become.
    #[arg(long)]
    pub become_user: Option<String>,
    /// sudo or su.
    #[arg(long, value_parser = parse_method)]
    pub become_method: Option<BecomeMethod>,
    /// Ask for the become password once, for every host (sudo: the login user's; su: the
    /// target user's).
    #[arg(short = 'K', long = "ask-become-pass")]
    pub ask_become_pass: bool,
    /// More output (-v shows connection notes).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

fn parse_policy(s: &str) -> Result<HostKeyPolicy, String> {
    HostKeyPolicy::parse(s).ok_or_else(|| format!("'{s}': use strict, accept-new or off"))
}

fn parse_method(s: &str) -> Result<BecomeMethod, String> {
    BecomeMethod::parse(s).ok_or_else(|| format!("'{s}': use sudo or su"))
}

impl ConnectionArgs {
    /// The command-line layer of connection settings. Asks for the become password with -K
    /// (from the terminal, or from HOMELAB_BECOME_PASSWORD when there is none).
    pub fn defaults(&self) -> anyhow::Result<Defaults> {
        let become_password = if self.ask_become_pass {
            let pw = match std::env::var("HOMELAB_BECOME_PASSWORD") {
                Ok(p) => p,
                Err(_) => rpassword::prompt_password("BECOME password: ").map_err(|e| {
                    anyhow::anyhow!(
                        "-K needs a terminal to ask for the become password ({e}); \
                         or set HOMELAB_BECOME_PASSWORD"
                    )
                })?,
            };
            Some(Secret::new(pw))
        } else {
            None
        };
        Ok(Defaults {
            user: self.user.clone(),
            private_key: self.private_key.clone(),
            known_hosts: self.known_hosts.clone(),
            host_key_policy: self.host_key_checking,
            connect_timeout: Some(Duration::from_secs(self.timeout.max(1))),
            become_: self.become_ || self.become_user.is_some() || self.ask_become_pass,
            become_user: self.become_user.clone(),
            become_method: self.become_method,
            become_password,
        })
    }
}

/// The fact cache (`homelab apply`/`plan`).
#[derive(Debug, Clone, Default, Args)]
pub struct FactCacheArgs {
    /// Keep gathered facts in this folder, one JSON file per host (also HOMELAB_FACT_CACHE or
    /// ANSIBLE_CACHE_PLUGIN_CONNECTION). A host with a fresh entry is not gathered again, and
    /// `hostvars` of hosts outside the play come from it.
    #[arg(long = "fact-cache", value_name = "DIR")]
    pub fact_cache: Option<PathBuf>,
    /// Seconds a cached entry stays fresh; 0 = forever (default 86400, or
    /// ANSIBLE_CACHE_PLUGIN_TIMEOUT).
    #[arg(long = "fact-cache-timeout", value_name = "SECS")]
    pub fact_cache_timeout: Option<u64>,
}

impl FactCacheArgs {
    pub fn cache(&self) -> anyhow::Result<Option<super::facts::cache::FactCache>> {
        super::facts::cache::FactCache::configure(self.fact_cache.clone(), self.fact_cache_timeout)
    }
}
