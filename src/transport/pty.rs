//! su with a password over SSH: a channel with a PTY, driven by [`PtyDriver`] (the protocol and its
//! reasons are in [`super::become_::PtyScript`]). One channel per command; sudo and password-less
//! su keep the fast paths (persistent shells, plain channels).

use super::become_::{Become, BecomeError, PtyStep};
use super::{ExecOutput, ExecRequest, TransportError};
use russh::client::Msg;
use russh::{Channel, ChannelMsg, Pty};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

/// Terminal modes: no echo (the password and the typed stdin are never sent back), canonical
/// input (so ^D ends the stdin), no flow control characters.
const MODES: &[(Pty, u32)] = &[
    (Pty::ECHO, 0),
    (Pty::ECHOE, 0),
    (Pty::ECHOK, 0),
    (Pty::ECHONL, 0),
    (Pty::ICANON, 1),
    (Pty::IXON, 0),
    (Pty::IXOFF, 0),
];

/// How long a finished command's shell may take to close the channel.
const LINGER: Duration = Duration::from_secs(2);

/// Runs `req` as `b.user` with `su` and its password, on `channel` (freshly opened, unused).
/// `prompt_timeout` bounds the wait for su's prompt and for its verdict on the password.
pub async fn run_su(
    channel: Channel<Msg>,
    host: &str,
    b: &Become,
    req: &ExecRequest,
    token: &str,
    prompt_timeout: Duration,
) -> Result<ExecOutput, TransportError> {
    let become_err = |source: BecomeError| TransportError::Become {
        host: host.to_string(),
        source,
    };
    let sess = |reason: String| TransportError::Session {
        host: host.to_string(),
        reason,
    };
    let stdin = req.stdin.as_deref().filter(|s| !s.is_empty());
    let script = b.wrap_pty(&req.command, stdin.is_some(), token);
    let mut driver = script.driver(b);
    let started = Instant::now();
    let prompt_deadline = started + prompt_timeout;

    channel
        .request_pty(true, "dumb", 200, 50, 0, 0, MODES)
        .await
        .map_err(|e| sess(format!("cannot request a terminal: {e}")))?;
    let (mut read, write) = channel.split();
    // The reply to the PTY request.
    loop {
        let msg = tokio::time::timeout_at(prompt_deadline, read.wait())
            .await
            .map_err(|_| become_err(driver.no_prompt(prompt_timeout.as_secs())))?;
        match msg {
            Some(ChannelMsg::Success) => break,
            Some(ChannelMsg::Failure) => {
                return Err(become_err(BecomeError::Other(
                    "the host's sshd refused a terminal (PermitTTY no?), which su needs to read \
                     a password; use become_method: sudo"
                        .into(),
                )))
            }
            Some(_) => {}
            None => return Err(sess("the channel closed before the terminal was ready".into())),
        }
    }
    write
        .exec(true, script.command.as_bytes())
        .await
        .map_err(|e| sess(format!("cannot start su: {e}")))?;

    let mut feeder: Option<tokio::task::JoinHandle<()>> = None;
    let mut result: Option<ExecOutput> = None;
    let mut linger_until: Option<Instant> = None;
    // After the password: su's verdict is due (a wrong one takes PAM's delay, ~2-3 s).
    let mut verdict_deadline: Option<Instant> = None;
    let outcome = loop {
        let deadline = if let Some(l) = linger_until {
            Some(l)
        } else if !driver.escalated() {
            Some(verdict_deadline.unwrap_or(prompt_deadline))
        } else {
            req.timeout.map(|t| started + t)
        };
        let msg = match deadline {
            Some(d) => match tokio::time::timeout_at(d, read.wait()).await {
                Ok(m) => m,
                Err(_) => {
                    if let Some(out) = result.take() {
                        break Ok(out);
                    }
                    let _ = write.signal(russh::Sig::KILL).await;
                    break Err(if driver.escalated() {
                        TransportError::CommandTimeout {
                            host: host.to_string(),
                            what: format!("command '{}' (as {} with su)", short(&req.command), b.user),
                            secs: req.timeout.map(|t| t.as_secs()).unwrap_or_default(),
                        }
                    } else if driver.password_sent() {
                        become_err(BecomeError::Other(format!(
                            "su gave no answer to the password within {} s",
                            prompt_timeout.as_secs()
                        )))
                    } else {
                        become_err(driver.no_prompt(prompt_timeout.as_secs()))
                    });
                }
            },
            None => read.wait().await,
        };
        let data = match msg {
            Some(ChannelMsg::Data { data }) => data.to_vec(),
            Some(ChannelMsg::ExtendedData { data, .. }) => data.to_vec(),
            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                break match result.take() {
                    Some(out) => Ok(out),
                    None => Err(become_err(driver.ended())),
                };
            }
            Some(_) => continue,
        };
        if result.is_some() {
            continue;
        }
        match driver.feed(&data) {
            PtyStep::Wait => {}
            PtyStep::SendPassword => {
                let line = match &b.password {
                    Some(p) => format!("{}\n", p.expose()),
                    None => "\n".to_string(),
                };
                verdict_deadline = Some(Instant::now() + prompt_timeout);
                if let Err(e) = write.data_bytes(line.into_bytes()).await {
                    break Err(sess(format!("cannot write to su: {e}")));
                }
            }
            PtyStep::Escalated => {
                if let Some(data) = stdin {
                    let bytes = script.stdin_bytes(data);
                    let mut w = write.make_writer();
                    feeder = Some(tokio::spawn(async move {
                        let _ = w.write_all(&bytes).await;
                        let _ = w.flush().await;
                    }));
                }
            }
            PtyStep::Done(out) => {
                result = Some(out);
                linger_until = Some(Instant::now() + LINGER);
            }
            PtyStep::Failed(e) => break Err(become_err(e)),
        }
    };
    if let Some(f) = feeder {
        f.abort();
    }
    let _ = write.eof().await;
    let _ = write.close().await;
    outcome
}

fn short(s: &str) -> String {
    let one = s.lines().next().unwrap_or("");
    if one.chars().count() > 60 || s.contains('\n') {
        let mut cut = one.chars().take(57).collect::<String>();
        cut.push_str("...");
        cut
    } else {
        one.to_string()
    }
}
