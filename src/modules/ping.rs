//! `ping`: proves a host can be reached, logged into, and (with become) escalated on.
//! No Python needed on the target: it runs `echo pong` in the login shell.

use super::{ModuleResult, Outcome};
use crate::transport::{Become, Connection, ExecRequest, TransportError};

pub async fn run(conn: &Connection, become_: Option<&Become>) -> Result<Outcome, TransportError> {
    let mut req = ExecRequest::new("echo pong");
    req.become_ = become_.cloned();
    let out = conn.exec(&req).await?;
    let stdout = out.stdout_str();
    if out.success() && stdout.trim() == "pong" {
        Ok(Outcome::Ok {
            changed: false,
            result: ModuleResult {
                stdout,
                msg: Some("pong".into()),
                rc: Some(0),
                ..Default::default()
            },
        })
    } else {
        Ok(Outcome::Failed {
            msg: format!(
                "the remote shell did not answer as expected (rc={}): {}",
                out.rc(),
                out.stderr_str().trim()
            ),
            result: ModuleResult {
                stdout,
                stderr: out.stderr_str(),
                rc: Some(out.rc()),
                msg: None,
            },
        })
    }
}
