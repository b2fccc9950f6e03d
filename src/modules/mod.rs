//! Modules: what runs on a host. Ad-hoc `-m` uses these; the playbook engine (issue 3) will too.

pub mod apt;
pub mod apt_key;
pub mod apt_repository;
pub mod authorized_key;
pub mod blockinfile;
pub mod command;
pub mod copy;
pub mod copy_tree;
pub mod core;
pub mod cron;
pub mod deb822_repository;
pub mod dnf;
pub mod dpkg_selections;
pub mod fetch;
pub mod file;
pub mod find;
pub mod get_url;
pub mod git;
pub mod group;
pub mod hostname;
pub mod lineinfile;
pub mod modprobe;
pub mod mount;
pub mod package;
pub mod ping;
pub mod pkgutil;
pub mod reboot;
pub mod registry;
pub mod remote;
pub mod replace;
pub mod script;
pub mod service;
pub mod setup;
pub mod slurp;
pub mod snap;
pub mod stat;
pub mod sysctl;
pub mod systemd;
pub mod sysutil;
pub mod template;
#[cfg(test)]
pub mod testutil;
pub mod textedit;
pub mod timezone;
pub mod unarchive;
pub mod user;
pub mod wait_for;

use crate::transport::{Connection, TransportError};

/// What one module run on one host came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ran and did what was asked; `changed` as Ansible reports it.
    Ok { changed: bool, result: ModuleResult },
    /// Ran and failed (non-zero rc, sudo refused, ...).
    Failed { msg: String, result: ModuleResult },
    /// Nothing to do (e.g. `creates=` already exists).
    Skipped { msg: String },
}

/// The parts of a result people read: output, rc, a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleResult {
    pub stdout: String,
    pub stderr: String,
    pub rc: Option<i64>,
    pub msg: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("unknown module '{name}'{hint}; ad-hoc runs know: command, shell, raw, ping")]
    Unknown { name: String, hint: String },
    #[error("module {module}: {msg}")]
    Args { module: String, msg: String },
}

/// An ad-hoc module call, parsed once and run on every host.
#[derive(Debug, Clone)]
pub enum AdHoc {
    Command(command::CommandArgs),
    Ping,
}

impl AdHoc {
    /// Parses `-m NAME -a ARGS` (names plain or `ansible.builtin.*`).
    pub fn parse(name: &str, args: &str) -> Result<AdHoc, ModuleError> {
        let short = name.strip_prefix("ansible.builtin.").unwrap_or(name);
        let kind = match short {
            "command" => command::Kind::Command,
            "shell" => command::Kind::Shell,
            "raw" => command::Kind::Raw,
            "ping" => return Ok(AdHoc::Ping),
            _ => {
                let known = ["command", "shell", "raw", "ping"];
                let hint = known
                    .iter()
                    .find(|k| strsim_close(k, short))
                    .map(|k| format!(" (did you mean '{k}'?)"))
                    .unwrap_or_default();
                return Err(ModuleError::Unknown {
                    name: name.to_string(),
                    hint,
                });
            }
        };
        command::CommandArgs::parse(kind, args).map(AdHoc::Command)
    }

    pub async fn run(
        &self,
        conn: &Connection,
        become_: Option<&crate::transport::Become>,
    ) -> Result<Outcome, TransportError> {
        match self {
            AdHoc::Command(c) => c.run(conn, become_).await,
            AdHoc::Ping => ping::run(conn, become_).await,
        }
    }
}

/// Runs a module on a host by its canonical name (see [`registry`]).
pub async fn dispatch(
    name: &str,
    ctx: &core::TaskCtx<'_>,
    args: &serde_json::Value,
) -> Result<core::TaskResult, core::ModuleError> {
    use core::drive;
    match name {
        "command" => drive::<command::Command>(ctx, args).await,
        "shell" => drive::<command::Shell>(ctx, args).await,
        "raw" => drive::<command::Raw>(ctx, args).await,
        "copy" => drive::<copy::Copy>(ctx, args).await,
        "file" => drive::<file::File>(ctx, args).await,
        "template" => drive::<template::Template>(ctx, args).await,
        "lineinfile" => drive::<lineinfile::LineInFile>(ctx, args).await,
        "blockinfile" => drive::<blockinfile::BlockInFile>(ctx, args).await,
        "replace" => drive::<replace::Replace>(ctx, args).await,
        "reboot" => drive::<reboot::Reboot>(ctx, args).await,
        "stat" => drive::<stat::Stat>(ctx, args).await,
        "find" => drive::<find::Find>(ctx, args).await,
        "slurp" => drive::<slurp::Slurp>(ctx, args).await,
        "fetch" => drive::<fetch::Fetch>(ctx, args).await,
        "script" => drive::<script::Script>(ctx, args).await,
        "wait_for" => drive::<wait_for::WaitFor>(ctx, args).await,
        "setup" | "gather_facts" => drive::<setup::Setup>(ctx, args).await,
        "systemd" | "systemd_service" => drive::<systemd::Systemd>(ctx, args).await,
        "service" => drive::<service::Service>(ctx, args).await,
        "sysctl" => drive::<sysctl::Sysctl>(ctx, args).await,
        "modprobe" => drive::<modprobe::Modprobe>(ctx, args).await,
        "mount" => drive::<mount::MountModule>(ctx, args).await,
        "hostname" => drive::<hostname::Hostname>(ctx, args).await,
        "timezone" => drive::<timezone::Timezone>(ctx, args).await,
        "git" => drive::<git::Git>(ctx, args).await,
        "unarchive" => drive::<unarchive::Unarchive>(ctx, args).await,
        "get_url" => drive::<get_url::GetUrl>(ctx, args).await,
        "cron" => drive::<cron::Cron>(ctx, args).await,
        "authorized_key" => drive::<authorized_key::AuthorizedKey>(ctx, args).await,
        "group" => drive::<group::Group>(ctx, args).await,
        "user" => drive::<user::User>(ctx, args).await,
        "apt" => drive::<apt::Apt>(ctx, args).await,
        "package" => drive::<package::Package>(ctx, args).await,
        "dnf" => drive::<dnf::Dnf>(ctx, args).await,
        "dpkg_selections" => drive::<dpkg_selections::DpkgSelections>(ctx, args).await,
        "apt_repository" => drive::<apt_repository::AptRepository>(ctx, args).await,
        "deb822_repository" => drive::<deb822_repository::Deb822Repository>(ctx, args).await,
        "apt_key" => drive::<apt_key::AptKey>(ctx, args).await,
        "snap" => drive::<snap::SnapModule>(ctx, args).await,
        "ping" => {
            let out = ctx.exec("echo pong").await?;
            if out.stdout_str().trim() == "pong" {
                Ok(core::TaskResult::changed(false).with("ping", "pong"))
            } else {
                Ok(core::TaskResult::failed(format!(
                    "the remote shell did not answer: {}",
                    out.stderr_str().trim()
                )))
            }
        }
        other => Err(core::ModuleError::Failed(format!(
            "module '{other}' is not implemented in homelab"
        ))),
    }
}

/// [`core::Module::hint`] of module `name`, from rendered arguments: the paths a task will probe
/// first. `None` for modules that probe otherwise (a look ahead stops at them).
pub type Hinter = fn(&serde_json::Value, bool) -> Option<Vec<(String, remote::Want)>>;

/// The [`Hinter`] of module `name`, if it has one.
pub fn hinter(name: &str) -> Option<Hinter> {
    use core::hint;
    Some(match name {
        "copy" => hint::<copy::Copy>,
        "file" => hint::<file::File>,
        "template" => hint::<template::Template>,
        "lineinfile" => hint::<lineinfile::LineInFile>,
        "blockinfile" => hint::<blockinfile::BlockInFile>,
        "replace" => hint::<replace::Replace>,
        _ => return None,
    })
}

/// True when two names differ by at most two edits (for did-you-mean hints).
pub fn strsim_close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}
