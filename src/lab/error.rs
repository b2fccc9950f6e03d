//! The lab's errors: each says what was being done and, for commands, what they printed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("homelab lab needs root (it makes network bridges, mounts and containers): run it with sudo")]
    NotRoot,

    #[error("missing tools: {tools}; install them with: apt-get install -y {packages}")]
    MissingTools { tools: String, packages: String },

    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}){}", stderr_suffix(.stderr))]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("building the root filesystem failed: {step}{}", log_suffix(.log_tail))]
    RootfsBuild { step: String, log_tail: String },

    #[error("host {host} ({addr}) did not answer with an SSH banner within {waited_secs} s (`homelab lab down` removes the lab); last lines of {}:\n{log_tail}", .log.display())]
    HostTimeout {
        host: String,
        addr: String,
        waited_secs: u64,
        log: PathBuf,
        log_tail: String,
    },

    #[error("host {host}: systemd-nspawn stopped while booting ({reason}) (`homelab lab down` removes the lab); last lines of {}:\n{log_tail}", .log.display())]
    HostDied {
        host: String,
        reason: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("teardown left state behind: {0}")]
    Teardown(String),

    #[error("{0}")]
    Invalid(String),
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

fn log_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; last lines of the log:\n{tail}")
    }
}

impl LabError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LabError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, LabError>;
