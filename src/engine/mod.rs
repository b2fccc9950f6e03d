//! The engine: picks hosts, opens one connection per host (at most `forks` hosts at once) and runs
//! work on them in parallel. Ad-hoc `ping` and `run` live here; the playbook scheduler (issue 3)
//! builds on the same pieces.

pub mod actions;
pub mod adhoc;
pub mod apply;
pub mod facts;
pub mod options;
pub mod play;
pub mod scope;

use crate::inventory::Inventory;
use crate::transport::spec::{ConnectionSpec, Defaults};
use crate::transport::ssh::SshConnection;
use crate::transport::ssh_config::SshConfig;
use crate::transport::{Connection, TransportError};
use anyhow::Context;
use std::path::PathBuf;

/// Loads the inventories named with -i (`lab` meaning the lab's).
pub fn load_inventory(sources: &[String]) -> anyhow::Result<Inventory> {
    let paths: Vec<PathBuf> = sources
        .iter()
        .map(|s| crate::inventory::resolve_source(s))
        .collect();
    Ok(Inventory::load(&paths)?)
}

/// Hosts matching `pattern`, narrowed by `limit`; an empty result is an error that says why.
pub fn pick_hosts(
    inv: &Inventory,
    pattern: &str,
    limit: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let hosts = inv.select_limited(pattern, limit)?;
    if hosts.is_empty() {
        match limit {
            Some(l) => anyhow::bail!("no host matches both '{pattern}' and --limit '{l}'"),
            None => anyhow::bail!("no host matches '{pattern}'"),
        }
    }
    Ok(hosts)
}

/// Connection specs for the hosts, from inventory variables, CLI options and ~/.ssh/config.
pub fn specs(
    inv: &Inventory,
    hosts: &[String],
    defaults: &Defaults,
) -> anyhow::Result<Vec<ConnectionSpec>> {
    let ssh_config = SshConfig::load_default().map_err(anyhow::Error::msg)?;
    let templar = crate::template::Templar::new();
    hosts
        .iter()
        .map(|h| {
            let mut vars = inv.host_vars(h)?;
            // Connection variables may be templates (`ansible_become_password: "{{ vault_pw }}"`),
            // rendered with the host's variables as a playbook run does.
            let scope = crate::template::Vars::new(vars.clone());
            for (k, v) in vars.iter_mut() {
                if let serde_json::Value::String(s) = v {
                    if k.starts_with("ansible_") && (s.contains("{{") || s.contains("{%")) {
                        let raw = s.clone();
                        *v = serde_json::Value::String(
                            templar.render_string(&raw, &scope).map_err(|e| {
                                anyhow::anyhow!(
                                    "{h}: {k}: {}",
                                    e.to_string().replace(&raw, "********")
                                )
                            })?,
                        );
                    }
                }
            }
            ConnectionSpec::resolve(h, &vars, defaults, &ssh_config)
                .with_context(|| format!("connection settings of host {h}"))
        })
        .collect()
}

/// Opens one SSH connection.
pub async fn connect(spec: ConnectionSpec) -> Result<Connection, TransportError> {
    // Through the connection keeper where there is one (see transport::keeper), else directly.
    if let Some(k) = crate::transport::keeper::KeptConnection::open(&spec).await? {
        return Ok(Connection::Kept(Box::new(k)));
    }
    SshConnection::connect(spec)
        .await
        .map(|c| Connection::Ssh(Box::new(c)))
}

/// A tokio runtime for the commands that talk to hosts.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
