//! A local transport for unit tests: runs requests with `sh -c` on this machine.
//! Never used against a host; it lets engine and module tests run without sshd.

use super::{ExecOutput, ExecRequest, TransportError};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

pub struct LocalConnection {
    host: String,
}

impl LocalConnection {
    pub fn new(host: impl Into<String>) -> Self {
        LocalConnection { host: host.into() }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        let lerr = |reason: String| TransportError::Local {
            host: self.host.clone(),
            reason,
        };
        let (command, mut stdin) = match &req.become_ {
            Some(b) => {
                let w = b
                    .wrap(&req.command)
                    .map_err(|source| TransportError::Become {
                        host: self.host.clone(),
                        source,
                    })?;
                let mut input = w.stdin_prefix.unwrap_or_default();
                input.extend(req.stdin.clone().unwrap_or_default());
                (w.command, Some(input))
            }
            None => (req.command.clone(), req.stdin.clone()),
        };
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| lerr(format!("cannot run sh: {e}")))?;
        if let Some(mut pipe) = child.stdin.take() {
            let data = stdin.take().unwrap_or_default();
            tokio::spawn(async move {
                let _ = pipe.write_all(&data).await;
            });
        }
        let wait = child.wait_with_output();
        let o =
            match req.timeout {
                Some(t) => tokio::time::timeout(t, wait).await.map_err(|_| {
                    TransportError::CommandTimeout {
                        host: self.host.clone(),
                        what: "command".into(),
                        secs: t.as_secs(),
                    }
                })?,
                None => wait.await,
            }
            .map_err(|e| lerr(e.to_string()))?;
        use std::os::unix::process::ExitStatusExt;
        let mut out = ExecOutput {
            stdout: o.stdout,
            stderr: o.stderr,
            exit_status: o.status.code().map(|c| c as u32),
            exit_signal: o.status.signal().map(|s| s.to_string()),
        };
        if let Some(b) = &req.become_ {
            b.unwrap_output(&mut out.stdout, &mut out.stderr)
                .map_err(|source| TransportError::Become {
                    host: self.host.clone(),
                    source,
                })?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn separates_streams_and_status() {
        let c = LocalConnection::new("local");
        let mut r = ExecRequest::new("cat; echo err >&2; exit 3");
        r.stdin = Some(b"in\n".to_vec());
        let o = c.exec(&r).await.unwrap();
        assert_eq!(o.stdout, b"in\n");
        assert_eq!(o.stderr, b"err\n");
        assert_eq!(o.exit_status, Some(3));
    }

    #[tokio::test]
    async fn timeout_is_reported() {
        let c = LocalConnection::new("local");
        let mut r = ExecRequest::new("sleep 5");
        r.timeout = Some(std::time::Duration::from_millis(100));
        let e = c.exec(&r).await.unwrap_err();
        assert!(matches!(e, TransportError::CommandTimeout { .. }), "{e}");
    }
}
