//! Transport: how commands reach a host.
//!
//! [`ssh`] is the real one (russh, one connection per host kept for the whole run, many channels on
//! it). [`local`] runs the same requests with `sh -c` on this machine, for unit tests only.

pub mod become_;
pub mod keeper;
pub mod known_hosts;
pub mod local;
pub mod pty;
pub mod shell;
pub mod spec;
pub mod ssh;
pub mod ssh_config;

use std::time::Duration;

pub use become_::{Become, BecomeMethod};
pub use spec::{ConnectionSpec, HostKeyPolicy};

/// One command to run on a host.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// A POSIX shell command line, run by the remote user's shell (or by `sh -c` under become).
    pub command: String,
    /// Bytes fed to the command's standard input (closed after them).
    pub stdin: Option<Vec<u8>>,
    /// Run it as another user.
    pub become_: Option<Become>,
    /// Give up after this long (the command is signalled and the result is an error).
    pub timeout: Option<Duration>,
}

impl ExecRequest {
    pub fn new(command: impl Into<String>) -> Self {
        ExecRequest {
            command: command.into(),
            ..Default::default()
        }
    }
}

/// What a finished command gave back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The exit status; `None` when the command died of a signal.
    pub exit_status: Option<u32>,
    /// The signal that ended the command, if one did.
    pub exit_signal: Option<String>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_status == Some(0)
    }
    /// Exit code as Ansible reports `rc`: the status, or -1 when a signal ended the command.
    pub fn rc(&self) -> i64 {
        self.exit_status.map(i64::from).unwrap_or(-1)
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why a host could not be reached or a command could not be run (not: the command failed).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{host}: cannot connect to {addr}: {reason}")]
    Connect {
        host: String,
        addr: String,
        reason: String,
    },
    #[error("{host}: no answer from {addr} within {secs}s (host down, wrong address, or a firewall dropping packets?); raise the limit with --timeout")]
    ConnectTimeout {
        host: String,
        addr: String,
        secs: u64,
    },
    #[error("{0}")]
    HostKey(#[from] Box<known_hosts::HostKeyError>),
    #[error("{host}: authentication as '{user}' failed (tried: {tried}); the server accepts: {accepts}. Check ansible_user and ansible_ssh_private_key_file, or load the key into ssh-agent")]
    Auth {
        host: String,
        user: String,
        tried: String,
        accepts: String,
    },
    #[error("{host}: private key {path}: {reason}")]
    Key {
        host: String,
        path: String,
        reason: String,
    },
    #[error("{host}: {what} did not finish within {secs}s and was stopped")]
    CommandTimeout {
        host: String,
        what: String,
        secs: u64,
    },
    #[error("{host}: {source}")]
    Become {
        host: String,
        #[source]
        source: become_::BecomeError,
    },
    #[error("{host}: SSH session failed: {reason}")]
    Session { host: String, reason: String },
    #[error("{host}: {reason}")]
    Local { host: String, reason: String },
    /// An error the connection keeper met, as it worded it (see [`keeper`]).
    #[error("{message}")]
    Relayed { message: String, unreachable: bool },
}

impl TransportError {
    /// Errors that mean the host is unreachable (Ansible's `unreachable=`), not that a task failed.
    pub fn is_unreachable(&self) -> bool {
        if let TransportError::Relayed { unreachable, .. } = self {
            return *unreachable;
        }
        matches!(
            self,
            TransportError::Connect { .. }
                | TransportError::ConnectTimeout { .. }
                | TransportError::HostKey(_)
                | TransportError::Auth { .. }
                | TransportError::Key { .. }
                | TransportError::Session { .. }
        )
    }
}

/// A live connection to one host: SSH for real hosts, local for unit tests.
pub enum Connection {
    Ssh(Box<ssh::SshConnection>),
    /// A session the connection keeper holds between runs (see [`keeper`]).
    Kept(Box<keeper::KeptConnection>),
    Local(local::LocalConnection),
}

impl Connection {
    /// Runs one command (privilege escalation applied as the request says).
    pub async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        match self {
            Connection::Ssh(c) => c.exec(req).await,
            Connection::Kept(c) => c.exec(req).await,
            Connection::Local(c) => c.exec(req).await,
        }
    }

    /// Opens the connection again in place (after a reboot); a local connection has nothing to do.
    pub async fn reconnect(&self) -> Result<(), TransportError> {
        match self {
            Connection::Ssh(c) => c.reconnect().await,
            Connection::Kept(c) => c.reconnect().await,
            Connection::Local(_) => Ok(()),
        }
    }

    /// The inventory name of the host this connection reaches.
    pub fn host(&self) -> &str {
        match self {
            Connection::Ssh(c) => c.host(),
            Connection::Kept(c) => c.host(),
            Connection::Local(c) => c.host(),
        }
    }

    /// Writes `data` to `path` on the host atomically: a temp file in the same folder, then rename.
    /// The content is streamed on stdin (never on a command line). A failure leaves `path` as it was.
    pub async fn put_file(
        &self,
        path: &str,
        data: Vec<u8>,
        mode: Option<u32>,
        become_: Option<&Become>,
    ) -> Result<ExecOutput, TransportError> {
        let q = shell_quote(path);
        let chmod = match mode {
            Some(m) => format!(" && chmod {m:o} \"$t\""),
            None => String::new(),
        };
        let dir = match path.trim_end_matches('/').rsplit_once('/') {
            Some(("", _)) => "/".to_string(),
            Some((d, _)) => d.to_string(),
            None => ".".to_string(),
        };
        let t = shell_quote(&format!(
            "{}/.homelab-tmp.{}",
            dir.trim_end_matches('/'),
            &shell::random_token()[4..16]
        ));
        // Created exclusively (noclobber) and private (umask 077) while written.
        let cmd = format!(
            "t={t}; umask 077; set -C; {{ cat > \"$t\"{chmod} && mv -f \"$t\" {q}; }} || \
             {{ rc=$?; rm -f \"$t\"; exit $rc; }}"
        );
        let req = ExecRequest {
            command: cmd,
            stdin: Some(data),
            become_: become_.cloned(),
            timeout: None,
        };
        self.exec(&req).await
    }

    pub async fn close(&self) {
        match self {
            Connection::Ssh(c) => c.close().await,
            Connection::Kept(c) => c.close().await,
            Connection::Local(_) => {}
        }
    }
}

/// Base64 with a line break every 76 characters (as `base64` writes it; `base64 -d` reads it).
pub fn base64_encode_lines(data: &[u8]) -> String {
    use base64::Engine;
    let enc = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(enc.len() + enc.len() / 76 + 1);
    for chunk in enc.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// Quotes a string for a POSIX shell (single quotes; `'` becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(x)"), "'$(x)'");
    }
}
