//! su with a password over SSH, one channel per command: first on a plain channel
//! ([`super::become_::PipeScript`]: su reads the password from stdin), and on a channel with a
//! PTY ([`super::become_::PtyScript`]) when su wants a terminal. sudo and password-less su keep the
//! fast paths (persistent shells, plain channels).

use super::become_::{Become, BecomeError, PtyStep};
use super::{ExecOutput, ExecRequest, TransportError};
use russh::client::Msg;
use russh::{Channel, ChannelMsg, Pty};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

/// Terminal modes: no echo (the password is never sent back), canonical input while su reads the
/// password (the script turns it off after), no flow control characters.
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

/// What the plain-channel attempt gave.
pub enum PipeOutcome {
    Done(Result<ExecOutput, TransportError>),
    /// su refused before the password: it wants a terminal. Nothing ran.
    WantsTerminal,
}

/// Runs `req` as `b.user` with `su` and its password on `channel` (fresh, unused), with no
/// terminal. `prompt_timeout` bounds the wait for su's prompt and for its verdict on the password.
pub async fn run_su_pipe(
    mut channel: Channel<Msg>,
    host: &str,
    b: &Become,
    req: &ExecRequest,
    token: &str,
    prompt_timeout: Duration,
) -> PipeOutcome {
    let become_err = |source: BecomeError| TransportError::Become {
        host: host.to_string(),
        source,
    };
    let sess = |reason: String| TransportError::Session {
        host: host.to_string(),
        reason,
    };
    let script = b.wrap_su_pipe(&req.command, token);
    let mut driver = script.driver(b);
    let started = Instant::now();
    let prompt_deadline = started + prompt_timeout;
    if let Err(e) = channel.exec(true, script.command.as_bytes()).await {
        return PipeOutcome::Done(Err(sess(format!("cannot start su: {e}"))));
    }
    let mut feeder: Option<tokio::task::JoinHandle<()>> = None;
    let mut verdict_deadline: Option<Instant> = None;
    let (mut status, mut signal) = (None, None);
    let failure = loop {
        let deadline = if !driver.escalated() {
            Some(verdict_deadline.unwrap_or(prompt_deadline))
        } else {
            req.timeout.map(|t| started + t)
        };
        let msg = match deadline {
            Some(d) => match tokio::time::timeout_at(d, channel.wait()).await {
                Ok(m) => m,
                Err(_) => {
                    let _ = channel.signal(russh::Sig::KILL).await;
                    break Some(timed_out(
                        host,
                        b,
                        req,
                        driver.escalated(),
                        driver.password_sent(),
                        || driver.no_prompt(prompt_timeout.as_secs()),
                        prompt_timeout,
                    ));
                }
            },
            None => channel.wait().await,
        };
        let step = match msg {
            Some(ChannelMsg::Data { data }) => driver.stdout(&data),
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => driver.stderr(&data),
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                status = Some(exit_status);
                continue;
            }
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                signal = Some(format!("{signal_name:?}"));
                continue;
            }
            Some(ChannelMsg::Eof) => continue,
            Some(ChannelMsg::Close) | None => break None,
            Some(_) => continue,
        };
        match step {
            PtyStep::Wait | PtyStep::Done(_) => {}
            PtyStep::SendPassword => {
                let line = match &b.password {
                    Some(p) => format!("{}\n", p.expose()),
                    None => "\n".to_string(),
                };
                verdict_deadline = Some(Instant::now() + prompt_timeout);
                if let Err(e) = channel.data_bytes(line.into_bytes()).await {
                    break Some(sess(format!("cannot write to su: {e}")));
                }
            }
            PtyStep::Escalated => {
                // Now the command's stdin, then EOF.
                let data = req.stdin.clone().unwrap_or_default();
                let mut w = channel.make_writer();
                feeder = Some(tokio::spawn(async move {
                    let _ = w.write_all(&data).await;
                    let _ = w.shutdown().await;
                }));
            }
            PtyStep::Failed(e) => break Some(become_err(e)),
        }
    };
    if let Some(f) = feeder {
        f.abort();
    }
    if let Some(e) = failure {
        let _ = channel.close().await;
        return PipeOutcome::Done(Err(e));
    }
    if driver.wants_terminal() {
        return PipeOutcome::WantsTerminal;
    }
    if driver.escalated() && status.is_none() && signal.is_none() {
        return PipeOutcome::Done(Err(sess(
            "the channel closed without an exit status (connection lost?)".into(),
        )));
    }
    PipeOutcome::Done(driver.finish(status, signal).map_err(become_err))
}

/// Runs `req` as `b.user` with `su` and its password on `channel` (fresh, unused), on a terminal.
/// `prompt_timeout` bounds the wait for su's prompt and for its verdict on the password.
pub async fn run_su_pty(
    mut channel: Channel<Msg>,
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
    let mut script = b.wrap_pty(&req.command, req.stdin.as_deref(), token);
    let mut driver = script.driver(b);
    let started = Instant::now();
    let prompt_deadline = started + prompt_timeout;

    channel
        .request_pty(true, "dumb", 200, 50, 0, 0, MODES)
        .await
        .map_err(|e| sess(format!("cannot request a terminal: {e}")))?;
    // The reply to the PTY request.
    loop {
        let msg = tokio::time::timeout_at(prompt_deadline, channel.wait())
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
            None => {
                return Err(sess(
                    "the channel closed before the terminal was ready".into(),
                ))
            }
        }
    }
    channel
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
            Some(d) => match tokio::time::timeout_at(d, channel.wait()).await {
                Ok(m) => m,
                Err(_) => {
                    if let Some(out) = result.take() {
                        break Ok(out);
                    }
                    let _ = channel.signal(russh::Sig::KILL).await;
                    break Err(timed_out(
                        host,
                        b,
                        req,
                        driver.escalated(),
                        driver.password_sent(),
                        || driver.no_prompt(prompt_timeout.as_secs()),
                        prompt_timeout,
                    ));
                }
            },
            None => channel.wait().await,
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
                if let Err(e) = channel.data_bytes(line.into_bytes()).await {
                    break Err(sess(format!("cannot write to su: {e}")));
                }
            }
            PtyStep::Escalated => {
                if let Some(bytes) = script.take_input() {
                    let mut w = channel.make_writer();
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
    let _ = channel.eof().await;
    let _ = channel.close().await;
    outcome
}

/// Why a wait on su's channel ran out: the command's own time limit once su let it run, else su
/// never answered the password, or never asked for it.
fn timed_out(
    host: &str,
    b: &Become,
    req: &ExecRequest,
    escalated: bool,
    password_sent: bool,
    no_prompt: impl FnOnce() -> BecomeError,
    prompt_timeout: Duration,
) -> TransportError {
    let source = if escalated {
        return TransportError::CommandTimeout {
            host: host.to_string(),
            what: format!("command '{}' (as {} with su)", short(&req.command), b.user),
            secs: req.timeout.map(|t| t.as_secs()).unwrap_or_default(),
        };
    } else if password_sent {
        BecomeError::Other(format!(
            "su gave no answer to the password within {} s",
            prompt_timeout.as_secs()
        ))
    } else {
        no_prompt()
    };
    TransportError::Become {
        host: host.to_string(),
        source,
    }
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
