//! Privilege escalation: wraps a command in `sudo` (or `su`), feeds the password on stdin (never on
//! the command line, never echoed, never a PTY) and tells sudo's own refusals from the command's.

use super::shell_quote;
use std::fmt;

/// A secret string: its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BecomeMethod {
    #[default]
    Sudo,
    Su,
}

impl BecomeMethod {
    pub fn parse(s: &str) -> Option<BecomeMethod> {
        match s {
            "sudo" => Some(BecomeMethod::Sudo),
            "su" => Some(BecomeMethod::Su),
            _ => None,
        }
    }
}

/// How to become another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    pub method: BecomeMethod,
    pub user: String,
    pub password: Option<Secret>,
    /// Extra flags for the become program (ansible_become_flags).
    pub flags: Option<String>,
}

impl Default for Become {
    fn default() -> Self {
        Become {
            method: BecomeMethod::Sudo,
            user: "root".into(),
            password: None,
            flags: None,
        }
    }
}

/// Why privilege escalation itself (not the command) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BecomeError {
    #[error("sudo needs a password and none was given: pass -K/--ask-become-pass, or set ansible_become_password for this host (or give the user NOPASSWD in sudoers)")]
    PasswordRequired,
    #[error("sudo refused the become password (incorrect password); check -K input or ansible_become_password")]
    IncorrectPassword,
    #[error("sudo refused: {0}")]
    NotAllowed(String),
    #[error("privilege escalation failed: {0}")]
    Other(String),
    #[error("become_method su with a password needs a terminal, which homelab does not open; use become_method: sudo")]
    SuPassword,
}

/// Marker the wrapped command prints first, so that sudo's refusals can be told from the command's.
const MARKER: &str = "HOMELAB-BECOME-OK";
const PROMPT: &str = "[homelab-become-password]";

/// A command wrapped for privilege escalation.
pub struct Wrapped {
    pub command: String,
    pub stdin_prefix: Option<Vec<u8>>,
}

impl Become {
    /// Wraps `cmd` (a shell command line) so that it runs as `self.user`.
    pub fn wrap(&self, cmd: &str) -> Result<Wrapped, BecomeError> {
        let inner = format!("echo {MARKER}; {cmd}");
        let flags = self.flags.as_deref().unwrap_or("-H");
        match self.method {
            BecomeMethod::Sudo => {
                let (auth, stdin_prefix) = match &self.password {
                    None => ("-n".to_string(), None),
                    Some(pw) => (
                        format!("-S -p {}", shell_quote(PROMPT)),
                        Some(format!("{}\n", pw.expose()).into_bytes()),
                    ),
                };
                Ok(Wrapped {
                    command: format!(
                        "sudo {flags} {auth} -u {} -- /bin/sh -c {}",
                        shell_quote(&self.user),
                        shell_quote(&inner)
                    ),
                    stdin_prefix,
                })
            }
            BecomeMethod::Su => {
                if self.password.is_some() {
                    return Err(BecomeError::SuPassword);
                }
                Ok(Wrapped {
                    command: format!(
                        "su -s /bin/sh {} -c {}",
                        shell_quote(&self.user),
                        shell_quote(&inner)
                    ),
                    stdin_prefix: None,
                })
            }
        }
    }
}

/// Strips the marker (and sudo's prompt) from a finished wrapped command's output. If the marker is
/// missing, escalation failed: returns why, from sudo's message.
pub fn unwrap_output(stdout: &mut Vec<u8>, stderr: &mut Vec<u8>) -> Result<(), BecomeError> {
    // sudo writes its prompt to stderr (without newline) before reading the password.
    let prompt = PROMPT.as_bytes();
    while let Some(pos) = find(stderr, prompt) {
        stderr.drain(pos..pos + prompt.len());
    }
    let marker = format!("{MARKER}\n");
    if stdout.starts_with(marker.as_bytes()) {
        stdout.drain(..marker.len());
        return Ok(());
    }
    let err = String::from_utf8_lossy(stderr).trim().to_string();
    Err(classify(&err))
}

fn classify(err: &str) -> BecomeError {
    if err.contains("a password is required") || err.contains("a terminal is required") {
        BecomeError::PasswordRequired
    } else if err.contains("incorrect password")
        || err.contains("Sorry, try again")
        || err.contains("no password was provided")
        || err.contains("Authentication failure")
    {
        BecomeError::IncorrectPassword
    } else if err.contains("not in the sudoers")
        || err.contains("not allowed to")
        || err.contains("may not run sudo")
    {
        BecomeError::NotAllowed(err.to_string())
    } else if err.is_empty() {
        BecomeError::Other("the become program exited before running the command".into())
    } else {
        BecomeError::Other(err.to_string())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_on_command_line() {
        let b = Become {
            password: Some(Secret::new("hunter2")),
            ..Default::default()
        };
        let w = b.wrap("id -u").unwrap();
        assert!(!w.command.contains("hunter2"));
        assert_eq!(w.stdin_prefix.as_deref(), Some(&b"hunter2\n"[..]));
        assert!(!format!("{b:?}").contains("hunter2"));
    }

    #[test]
    fn nopasswd_uses_non_interactive() {
        let w = Become::default().wrap("id -u").unwrap();
        assert!(w.command.starts_with("sudo -H -n -u root -- /bin/sh -c "));
        assert!(w.stdin_prefix.is_none());
    }

    #[test]
    fn marker_is_stripped() {
        let mut out = b"HOMELAB-BECOME-OK\n0\n".to_vec();
        let mut err = b"[homelab-become-password]".to_vec();
        unwrap_output(&mut out, &mut err).unwrap();
        assert_eq!(out, b"0\n");
        assert!(err.is_empty());
    }

    #[test]
    fn sudo_refusals_are_classified() {
        let mut out = vec![];
        let mut err = b"sudo: a password is required\n".to_vec();
        assert_eq!(
            unwrap_output(&mut out, &mut err),
            Err(BecomeError::PasswordRequired)
        );
        let mut err = b"[homelab-become-password]Sorry, try again.\n[homelab-become-password]\nsudo: no password was provided\nsudo: 1 incorrect password attempt\n".to_vec();
        assert_eq!(
            unwrap_output(&mut out, &mut err),
            Err(BecomeError::IncorrectPassword)
        );
        let mut err = b"bob is not in the sudoers file.\n".to_vec();
        assert!(matches!(
            unwrap_output(&mut out, &mut err),
            Err(BecomeError::NotAllowed(_))
        ));
    }
}
