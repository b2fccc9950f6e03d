//! The SSH transport on russh: one connection per host for the whole run, many channels on it
//! (at most [`MAX_CHANNELS`] at once, under OpenSSH's default MaxSessions of 10).

use super::become_::{self, BecomeError};
use super::known_hosts::{HostKeyCheck, HostKeyError};
use super::shell::{self, Shell, ShellError};
use super::{ConnectionSpec, ExecOutput, ExecRequest, TransportError};
use russh::client::{self, Handle};
use russh::keys::{self, HashAlg, PrivateKey, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, MethodKind, MethodSet};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// A TCP stream that re-arms TCP_QUICKACK after every read. sshd does not set TCP_NODELAY on
/// non-interactive sessions, so it holds each reply's later packets until the first is ACKed;
/// Linux's delayed ACK would then cost ~40 ms per command. Acking at once removes that stall.
struct QuickAck(tokio::net::TcpStream);

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if r.is_ready() {
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
        r
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Channels open at once on one connection.
pub const MAX_CHANNELS: usize = 6;

/// Persistent shells per host (each holds a channel; with [`MAX_CHANNELS`], under MaxSessions).
pub const MAX_SHELLS: usize = 3;

/// How often a refused channel open is retried (with backoff, about 2 s in all).
const OPEN_RETRIES: u32 = 10;

struct ClientHandler {
    check: HostKeyCheck,
    problem: Arc<Mutex<Option<Box<HostKeyError>>>>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates are not requested (no certificate algorithms are advertised).
        let keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        match self.check.verify(key) {
            Ok(()) => Ok(true),
            Err(e) => {
                if let Ok(mut slot) = self.problem.lock() {
                    *slot = Some(e);
                }
                Ok(false)
            }
        }
    }
}

/// An open, authenticated SSH connection to one host. After a reboot it can be opened again in
/// place ([`SshConnection::reconnect`]), so everyone holding it goes on with the new session.
pub struct SshConnection {
    spec: ConnectionSpec,
    session: std::sync::RwLock<Arc<Session>>,
}

/// One SSH session and what lives on it.
struct Session {
    host: String,
    handle: Handle<ClientHandler>,
    channels: Semaphore,
    /// Idle persistent shells (see [`super::shell`]).
    shells: Mutex<Vec<Shell>>,
    shell_slots: Semaphore,
    shell_off: AtomicBool,
    token: String,
}

/// Persistent shells are on unless `HOMELAB_PERSISTENT_SHELL=0` (a channel per command, as
/// OpenSSH clients do; for comparison and for hosts whose shell misbehaves).
fn shells_wanted() -> bool {
    std::env::var("HOMELAB_PERSISTENT_SHELL").map_or(true, |v| v != "0")
}

/// Decrypted/loaded private keys, shared by every connection of the run (a passphrase is asked once).
fn key_cache() -> &'static Mutex<HashMap<PathBuf, Arc<PrivateKey>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<PrivateKey>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Serialises passphrase prompts so parallel connections do not ask at once.
fn prompt_lock() -> &'static Mutex<()> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| Mutex::new(()))
}

fn load_key(host: &str, path: &Path) -> Result<Arc<PrivateKey>, Box<TransportError>> {
    let kerr = |reason: String| {
        Box::new(TransportError::Key {
            host: host.to_string(),
            path: path.display().to_string(),
            reason,
        })
    };
    if let Some(k) = key_cache().lock().ok().and_then(|c| c.get(path).cloned()) {
        return Ok(k);
    }
    let _guard = prompt_lock().lock();
    // Another connection may have loaded it while we waited.
    if let Some(k) = key_cache().lock().ok().and_then(|c| c.get(path).cloned()) {
        return Ok(k);
    }
    let key = match keys::load_secret_key(path, None) {
        Ok(k) => k,
        Err(keys::Error::KeyIsEncrypted) => {
            let pass = std::env::var("HOMELAB_SSH_KEY_PASSPHRASE").ok().map(Ok).unwrap_or_else(|| {
                rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
                    .map_err(|e| {
                        kerr(format!(
                            "is encrypted and no passphrase could be read ({e}); load it into ssh-agent or run in a terminal"
                        ))
                    })
            })?;
            keys::load_secret_key(path, Some(&pass))
                .map_err(|e| kerr(format!("cannot decrypt it ({e}): wrong passphrase?")))?
        }
        Err(e) => return Err(kerr(format!("cannot be read: {e}"))),
    };
    let key = Arc::new(key);
    if let Ok(mut c) = key_cache().lock() {
        c.insert(path.to_path_buf(), key.clone());
    }
    Ok(key)
}

fn methods_str(m: &MethodSet) -> String {
    let v: Vec<&str> = m
        .iter()
        .map(|k| match k {
            MethodKind::None => "none",
            MethodKind::Password => "password",
            MethodKind::PublicKey => "publickey",
            MethodKind::HostBased => "hostbased",
            MethodKind::KeyboardInteractive => "keyboard-interactive",
            _ => "other",
        })
        .collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(",")
    }
}

impl SshConnection {
    /// Connects, checks the host key, and authenticates (key files, then ssh-agent).
    pub async fn connect(spec: ConnectionSpec) -> Result<SshConnection, TransportError> {
        let session = Session::open(&spec).await?;
        Ok(SshConnection {
            spec,
            session: std::sync::RwLock::new(Arc::new(session)),
        })
    }

    /// Opens a new session to the same host in place of the current one (after a reboot). The
    /// old session's shells and channels are dropped.
    pub async fn reconnect(&self) -> Result<(), TransportError> {
        let fresh = Arc::new(Session::open(&self.spec).await?);
        let old = match self.session.write() {
            Ok(mut g) => std::mem::replace(&mut *g, fresh),
            Err(p) => std::mem::replace(&mut *p.into_inner(), fresh),
        };
        // Best effort: the old connection is usually dead already.
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            old.handle
                .disconnect(russh::Disconnect::ByApplication, "", "en"),
        )
        .await;
        Ok(())
    }

    fn current(&self) -> Arc<Session> {
        match self.session.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn host(&self) -> &str {
        &self.spec.host
    }

    /// Whether the SSH connection has ended (the host went away).
    pub fn is_closed(&self) -> bool {
        self.current().handle.is_closed()
    }

    pub fn spec(&self) -> &ConnectionSpec {
        &self.spec
    }

    pub async fn close(&self) {
        let _ = self
            .current()
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

impl Session {
    async fn open(spec: &ConnectionSpec) -> Result<Session, TransportError> {
        let host = spec.host.clone();
        let addr = format!("{}:{}", spec.address, spec.port);
        let secs = spec.connect_timeout.as_secs().max(1);
        let timeout = spec.connect_timeout;
        let conn_err = |reason: String| TransportError::Connect {
            host: host.clone(),
            addr: addr.clone(),
            reason,
        };
        let tcp = match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((spec.address.as_str(), spec.port)),
        )
        .await
        {
            Err(_) => return Err(TransportError::ConnectTimeout { host, addr, secs }),
            Ok(Err(e)) => {
                let hint = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        " (nothing listens there: is sshd running, and is ansible_port right?)"
                    }
                    _ => "",
                };
                return Err(conn_err(format!("{e}{hint}")));
            }
            Ok(Ok(s)) => s,
        };
        let _ = tcp.set_nodelay(true);

        let mut config = client::Config {
            nodelay: true,
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 4,
            ..Default::default()
        };
        // Ask first for the key types known_hosts already holds for this host, as OpenSSH does,
        // so a host with several keys offers the one we can check.
        let recorded = spec.host_keys.recorded_algorithms();
        if !recorded.is_empty() {
            let mut algs: Vec<keys::Algorithm> = recorded;
            for a in config.preferred.key.iter() {
                if !algs.contains(a) {
                    algs.push(a.clone());
                }
            }
            config.preferred.key = algs.into();
        }
        let problem = Arc::new(Mutex::new(None));
        let handler = ClientHandler {
            check: spec.host_keys.clone(),
            problem: problem.clone(),
        };
        let handshake = tokio::time::timeout(
            timeout,
            client::connect_stream(Arc::new(config), QuickAck(tcp), handler),
        )
        .await;
        let mut handle = match handshake {
            Err(_) => return Err(TransportError::ConnectTimeout { host, addr, secs }),
            Ok(Err(e)) => {
                if let Some(p) = problem.lock().ok().and_then(|mut s| s.take()) {
                    return Err(TransportError::HostKey(p));
                }
                return Err(conn_err(format!("SSH handshake failed: {e}")));
            }
            Ok(Ok(h)) => h,
        };

        let mut tried: Vec<String> = Vec::new();
        let mut accepts = String::from("unknown");
        let mut ok = false;
        let mut key_error = None;
        for path in &spec.identity_files {
            let key = match load_key(&host, path) {
                Ok(k) => k,
                Err(e) => {
                    // A missing default key is no error; an unreadable chosen key is reported
                    // if nothing else works.
                    if path.exists() {
                        key_error = Some(e);
                    }
                    continue;
                }
            };
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten()
                    .or(Some(HashAlg::Sha512))
            } else {
                None
            };
            tried.push(format!("key {}", path.display()));
            let res = tokio::time::timeout(
                timeout,
                handle.authenticate_publickey(
                    spec.user.clone(),
                    PrivateKeyWithHashAlg::new(key, hash),
                ),
            )
            .await
            .map_err(|_| TransportError::ConnectTimeout {
                host: host.clone(),
                addr: addr.clone(),
                secs,
            })?
            .map_err(|e| conn_err(format!("authentication error: {e}")))?;
            match res {
                russh::client::AuthResult::Success => {
                    ok = true;
                    break;
                }
                russh::client::AuthResult::Failure {
                    remaining_methods, ..
                } => {
                    accepts = methods_str(&remaining_methods);
                    if !remaining_methods.contains(&MethodKind::PublicKey) {
                        break;
                    }
                }
            }
        }
        if !ok && !spec.identities_only {
            if let Ok(mut agent) = keys::agent::client::AgentClient::connect_env().await {
                if let Ok(ids) = agent.request_identities().await {
                    for id in ids {
                        let keys::agent::AgentIdentity::PublicKey { key, comment } = id else {
                            continue;
                        };
                        tried.push(format!("agent key {comment}"));
                        let hash = if key.algorithm().is_rsa() {
                            Some(HashAlg::Sha512)
                        } else {
                            None
                        };
                        match handle
                            .authenticate_publickey_with(spec.user.clone(), key, hash, &mut agent)
                            .await
                        {
                            Ok(russh::client::AuthResult::Success) => {
                                ok = true;
                                break;
                            }
                            Ok(russh::client::AuthResult::Failure {
                                remaining_methods, ..
                            }) => accepts = methods_str(&remaining_methods),
                            Err(_) => {}
                        }
                    }
                }
            }
        }
        if !ok {
            if let (Some(e), true) = (key_error, tried.is_empty()) {
                return Err(*e);
            }
            return Err(TransportError::Auth {
                host,
                user: spec.user.clone(),
                tried: if tried.is_empty() {
                    "no key: none was given and none was found in ~/.ssh or ssh-agent".into()
                } else {
                    tried.join(", ")
                },
                accepts,
            });
        }
        Ok(Session {
            host: spec.host.clone(),
            handle,
            channels: Semaphore::new(MAX_CHANNELS),
            shells: Mutex::new(Vec::new()),
            shell_slots: Semaphore::new(MAX_SHELLS),
            shell_off: AtomicBool::new(!shells_wanted()),
            token: shell::random_token(),
        })
    }
}

impl SshConnection {
    /// Runs one command on its own channel and collects its output.
    pub async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        let host = self.spec.host.clone();
        let s = self.current();
        // su with a password needs a terminal: a channel with a PTY (see super::pty).
        if let Some(b) = req.become_.as_ref().filter(|b| b.needs_terminal()) {
            let prompt_timeout = self.spec.connect_timeout.max(Duration::from_secs(10));
            return s.run_pty(b, req, prompt_timeout).await;
        }
        let (command, stdin) = match &req.become_ {
            Some(b) => {
                let w = b
                    .wrap(&req.command)
                    .map_err(|source| TransportError::Become {
                        host: host.clone(),
                        source,
                    })?;
                let stdin = match (w.stdin_prefix, &req.stdin) {
                    (None, s) => s.clone(),
                    (Some(mut p), Some(s)) => {
                        p.extend_from_slice(s);
                        Some(p)
                    }
                    (Some(p), None) => Some(p),
                };
                (w.command, stdin)
            }
            None => (req.command.clone(), req.stdin.clone()),
        };
        // Most commands go to a persistent shell; see [`super::shell`].
        let inband = stdin
            .as_ref()
            .is_none_or(|s| s.len() <= shell::INBAND_STDIN_MAX);
        if req.timeout.is_none() && inband {
            if let Some(res) = s.run_in_shell(&command, stdin.as_deref()).await {
                let mut out = res?;
                if let Some(b) = &req.become_ {
                    b.unwrap_output(&mut out.stdout, &mut out.stderr)
                        .map_err(|source| TransportError::Become {
                            host: host.clone(),
                            source,
                        })?;
                }
                return Ok(out);
            }
        }
        // With a time limit, the command first reports its process group (sshd makes the login
        // shell a session leader) so that, on timeout, the whole group can be killed.
        let command = if req.timeout.is_some() {
            format!("echo {PID_TAG}$$ >&2; {command}")
        } else {
            command
        };
        let mut out = match s
            .run_channel(&command, stdin, req.timeout, &req.command)
            .await
        {
            Err(Timeout { pgid, err }) => {
                if let Some(pid) = pgid {
                    let mut kill = ExecRequest::new(format!(
                        "kill -KILL -- -{pid} 2>/dev/null || kill -KILL {pid} 2>/dev/null; true"
                    ));
                    kill.become_ = req.become_.clone();
                    let _ = Box::pin(self.exec(&kill)).await;
                }
                return Err(err);
            }
            Err(Failed(e)) => return Err(e),
            Ok(o) => o,
        };
        if req.timeout.is_some() {
            strip_pid_tag(&mut out.stderr);
        }
        if let Some(b) = &req.become_ {
            b.unwrap_output(&mut out.stdout, &mut out.stderr)
                .map_err(|source| TransportError::Become {
                    host: host.clone(),
                    source,
                })?;
        }
        Ok(out)
    }
}

impl Session {
    /// Runs a command as another user with su and its password: on a plain channel, or on one
    /// with a PTY when su wants a terminal (see super::pty).
    async fn run_pty(
        &self,
        b: &become_::Become,
        req: &ExecRequest,
        prompt_timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let sess = |reason: String| TransportError::Session {
            host: self.host.clone(),
            reason,
        };
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|e| sess(e.to_string()))?;
        let channel = self
            .open_channel()
            .await
            .map_err(|e| sess(format!("cannot open a channel: {e}")))?;
        let token = shell::random_token();
        // HOMELAB_SU_TERMINAL=1 goes to the terminal at once (for tests of that path, and for a
        // su that reads a pipe badly).
        let channel = if std::env::var("HOMELAB_SU_TERMINAL").is_ok_and(|v| v == "1") {
            channel
        } else {
            match super::pty::run_su_pipe(channel, &self.host, b, req, &token, prompt_timeout).await
            {
                super::pty::PipeOutcome::Done(r) => return r,
                super::pty::PipeOutcome::WantsTerminal => {}
            }
            self.open_channel()
                .await
                .map_err(|e| sess(format!("cannot open a channel: {e}")))?
        };
        super::pty::run_su_pty(channel, &self.host, b, req, &token, prompt_timeout).await
    }

    /// Runs a command in one of the host's persistent shells. `None`: no shell can take it now
    /// (all busy, shells turned off or not working on this host); the caller opens a channel.
    async fn run_in_shell(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Option<Result<ExecOutput, TransportError>> {
        if self.shell_off.load(Ordering::Relaxed) {
            return None;
        }
        let _slot = self.shell_slots.try_acquire().ok()?;
        let idle = self.shells.lock().ok().and_then(|mut v| v.pop());
        let mut sh = match idle {
            Some(sh) => sh,
            None => {
                let _permit = self.channels.acquire().await.ok()?;
                let channel = self.open_channel().await.ok()?;
                match Shell::start(channel, self.token.clone()).await {
                    Ok(sh) => sh,
                    Err(_) => {
                        // This host cannot keep a shell (no /bin/sh?): use channels from now on.
                        self.shell_off.store(true, Ordering::Relaxed);
                        return None;
                    }
                }
            }
        };
        if stdin.is_some_and(|s| !s.is_empty()) && !sh.base64 {
            if let Ok(mut v) = self.shells.lock() {
                v.push(sh);
            }
            return None;
        }
        match sh.run(command, stdin).await {
            Ok(out) => {
                if let Ok(mut v) = self.shells.lock() {
                    v.push(sh);
                }
                Some(Ok(out))
            }
            Err(ShellError::Lost(reason)) => Some(Err(TransportError::Session {
                host: self.host.clone(),
                reason,
            })),
        }
    }

    /// Opens a session channel, retrying while sshd refuses it for MaxSessions.
    async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, russh::Error> {
        // sshd frees a finished session's slot only when it next collects closed channels, so
        // an open right after a close can be refused; such a refusal is retried.
        let mut attempt = 0u32;
        loop {
            match self.handle.channel_open_session().await {
                Ok(c) => return Ok(c),
                Err(russh::Error::ChannelOpenFailure(_)) if attempt < OPEN_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5u64 << attempt.min(6))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn run_channel(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Option<Duration>,
        what: &str,
    ) -> Result<ExecOutput, ChannelError> {
        use tokio::io::AsyncWriteExt;
        let host = &self.host;
        let sess = |reason: String| {
            Failed(TransportError::Session {
                host: host.clone(),
                reason,
            })
        };
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|e| sess(e.to_string()))?;
        let mut channel = self
            .open_channel()
            .await
            .map_err(|e| sess(format!("cannot open a channel: {e}")))?;
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(|e| sess(format!("cannot start the command: {e}")))?;
        // Write stdin from its own task while we read, so a large input cannot stall the
        // connection waiting for unread output. Shutting the writer down sends EOF.
        let mut writer = channel.make_writer();
        let feeder = tokio::spawn(async move {
            if let Some(data) = stdin {
                let _ = writer.write_all(&data).await;
            }
            let _ = writer.shutdown().await;
        });
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut out = ExecOutput::default();
        loop {
            let msg = match deadline {
                Some(d) => match tokio::time::timeout_at(d, channel.wait()).await {
                    Ok(m) => m,
                    Err(_) => {
                        feeder.abort();
                        let _ = channel.signal(russh::Sig::KILL).await;
                        let _ = channel.close().await;
                        return Err(Timeout {
                            pgid: read_pid_tag(&out.stderr),
                            err: TransportError::CommandTimeout {
                                host: host.clone(),
                                what: format!("command '{}'", short(what)),
                                secs: timeout.map(|t| t.as_secs()).unwrap_or_default(),
                            },
                        });
                    }
                },
                None => channel.wait().await,
            };
            let Some(msg) = msg else { break };
            match msg {
                ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.exit_signal = Some(format!("{signal_name:?}"))
                }
                _ => {}
            }
        }
        feeder.abort();
        if out.exit_status.is_none() && out.exit_signal.is_none() {
            return Err(sess(
                "the channel closed without an exit status (connection lost?)".into(),
            ));
        }
        Ok(out)
    }
}

const PID_TAG: &str = "HOMELAB-PGID:";

enum ChannelError {
    /// The time limit passed; `pgid` is the remote process group, when it was reported.
    Timeout {
        pgid: Option<u32>,
        err: TransportError,
    },
    Failed(TransportError),
}
use ChannelError::{Failed, Timeout};

fn read_pid_tag(stderr: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().find(|l| l.starts_with(PID_TAG))?;
    line[PID_TAG.len()..].trim().parse().ok()
}

fn strip_pid_tag(stderr: &mut Vec<u8>) {
    if stderr.starts_with(PID_TAG.as_bytes()) {
        let end = stderr
            .iter()
            .position(|b| *b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(stderr.len());
        stderr.drain(..end);
    }
}

fn short(s: &str) -> String {
    let one = s.lines().next().unwrap_or("");
    if one.len() > 60 || s.contains('\n') {
        let mut cut = one.chars().take(57).collect::<String>();
        cut.push_str("...");
        cut
    } else {
        one.to_string()
    }
}

/// Which escalation failures mean "this host's sudo refused" (a task failure, not unreachable).
pub fn is_become_error(e: &TransportError) -> Option<&BecomeError> {
    match e {
        TransportError::Become { source, .. } => Some(source),
        _ => None,
    }
}
