//! Connections kept between runs, as OpenSSH's ControlPersist keeps them for Ansible (on by
//! default there, for 60 s). The first run starts a keeper: a `homelab __keeper` process of the
//! same user that owns the SSH sessions and answers on a Unix socket in a private folder; later
//! runs (a `plan`, then the `apply`) send their commands through it and start no SSH connection:
//! sshd's per-connection work (a fork, a re-exec, the key exchange) is most of a short run's cost
//! on a small host. The keeper exits `HOMELAB_PERSIST` seconds (default 60) after the last run
//! using it ended; `HOMELAB_PERSIST=0` turns it off (every run connects itself). A run whose key
//! needs a passphrase connects itself (the prompt is its terminal's).
//!
//! What a kept session is for is fixed by everything that decides how it was made: the inventory
//! name, address, port, user, key files (path, size, mtime), known_hosts files (the same), the
//! host-key policy and the ssh-agent socket. Change any of them and the next run gets a new
//! session, with the host key checked again. A keeper serves only its own user (the folder is
//! 0700 and the peer's uid is checked). Commands and become passwords cross the socket, never a
//! command line or a log.
//!
//! Not kept: what a run does not ask for. A keeper whose session died (the host rebooted, the
//! network went) connects again on the next request; a request it cannot deliver is an error of
//! that request, never a silent retry of a command that may have run.

use super::known_hosts::HostKeyCheck;
use super::{
    Become, BecomeMethod, ConnectionSpec, ExecOutput, ExecRequest, HostKeyPolicy, TransportError,
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Seconds a keeper stays without requests (`HOMELAB_PERSIST`, default 60); 0: no keeper.
pub fn persist_secs() -> u64 {
    match std::env::var("HOMELAB_PERSIST") {
        Ok(v) => v.trim().parse().unwrap_or(60),
        Err(_) => 60,
    }
}

/// The folder of the keeper's socket: `HOMELAB_CONTROL_DIR`, else `~/.homelab/cp`.
fn control_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("HOMELAB_CONTROL_DIR") {
        return Some(PathBuf::from(d));
    }
    dirs::home_dir().map(|h| h.join(".homelab").join("cp"))
}

/// This process's uid (the owner of /proc/self).
fn my_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Makes the control folder (0700, ours) and names the socket of the keeper for this ssh-agent.
fn socket_path() -> Option<PathBuf> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = control_dir()?;
    std::fs::create_dir_all(&dir).ok()?;
    let meta = std::fs::metadata(&dir).ok()?;
    if Some(meta.uid()) != my_uid() {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok()?;
    }
    // One keeper per ssh-agent and per build of this program (a rebuilt binary may speak
    // another wire format: it starts its own keeper).
    let agent = std::env::var("SSH_AUTH_SOCK").unwrap_or_default();
    let exe = std::env::current_exe().ok()?;
    let build = std::fs::metadata(&exe)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Settings the keeper's connections read from its environment.
    let env: Vec<String> = ["HOMELAB_PERSISTENT_SHELL", "HOMELAB_SU_TERMINAL"]
        .iter()
        .map(|k| std::env::var(k).unwrap_or_default())
        .collect();
    let id = format!("{agent}\n{}\n{build}\n{}", exe.display(), env.join("\n"));
    let p = dir.join(format!("keeper-{}.sock", &hex_digest(id.as_bytes())[..12]));
    // A Unix socket path is at most 107 bytes.
    (p.as_os_str().len() < 100).then_some(p)
}

fn hex_digest(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- the wire: frames of a 4-byte length and JSON ----

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct SpecW {
    host: String,
    address: String,
    port: u16,
    user: String,
    identity_files: Vec<PathBuf>,
    identities_only: bool,
    known_hosts: Vec<PathBuf>,
    policy: String,
    connect_timeout_ms: u64,
}

impl SpecW {
    fn of(s: &ConnectionSpec) -> SpecW {
        SpecW {
            host: s.host.clone(),
            address: s.address.clone(),
            port: s.port,
            user: s.user.clone(),
            identity_files: s.identity_files.clone(),
            identities_only: s.identities_only,
            known_hosts: s.host_keys.files.clone(),
            policy: match s.host_keys.policy {
                HostKeyPolicy::Strict => "strict",
                HostKeyPolicy::AcceptNew => "accept-new",
                HostKeyPolicy::Off => "off",
            }
            .into(),
            connect_timeout_ms: s.connect_timeout.as_millis() as u64,
        }
    }

    fn spec(&self) -> ConnectionSpec {
        ConnectionSpec {
            host: self.host.clone(),
            address: self.address.clone(),
            port: self.port,
            user: self.user.clone(),
            identity_files: self.identity_files.clone(),
            identities_only: self.identities_only,
            host_keys: HostKeyCheck {
                host: self.host.clone(),
                addr: self.address.clone(),
                port: self.port,
                files: self.known_hosts.clone(),
                policy: match self.policy.as_str() {
                    "accept-new" => HostKeyPolicy::AcceptNew,
                    "off" => HostKeyPolicy::Off,
                    _ => HostKeyPolicy::Strict,
                },
            },
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            become_: None,
            notes: vec![],
        }
    }

    /// What the session is for (see the module's notes): files by path, size and mtime.
    fn key(&self) -> String {
        let stamp = |p: &PathBuf| {
            let m = std::fs::metadata(p).ok();
            let len = m.as_ref().map(|m| m.len()).unwrap_or(0);
            let mtime = m
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{}:{len}:{mtime}", p.display())
        };
        let files: Vec<String> = self
            .identity_files
            .iter()
            .chain(&self.known_hosts)
            .map(stamp)
            .collect();
        let text = format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.host,
            self.address,
            self.port,
            self.user,
            self.identities_only,
            self.policy,
            files.join("\n")
        );
        hex_digest(text.as_bytes())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct BecomeW {
    su: bool,
    user: String,
    password: Option<String>,
    flags: Option<String>,
    exe: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct ReqW {
    command: String,
    stdin: Option<String>,
    become_: Option<BecomeW>,
    timeout_ms: Option<u64>,
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

impl ReqW {
    fn of(r: &ExecRequest) -> ReqW {
        ReqW {
            command: r.command.clone(),
            stdin: r.stdin.as_deref().map(b64),
            become_: r.become_.as_ref().map(|b| BecomeW {
                su: b.method == BecomeMethod::Su,
                user: b.user.clone(),
                password: b.password.as_ref().map(|p| p.expose().to_string()),
                flags: b.flags.clone(),
                exe: b.exe.clone(),
            }),
            timeout_ms: r.timeout.map(|t| t.as_millis() as u64),
        }
    }

    fn request(&self) -> ExecRequest {
        ExecRequest {
            command: self.command.clone(),
            stdin: self.stdin.as_deref().map(unb64),
            become_: self.become_.as_ref().map(|b| Become {
                method: if b.su {
                    BecomeMethod::Su
                } else {
                    BecomeMethod::Sudo
                },
                user: b.user.clone(),
                password: b.password.clone().map(super::become_::Secret::new),
                flags: b.flags.clone(),
                exe: b.exe.clone(),
            }),
            timeout: self.timeout_ms.map(Duration::from_millis),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
enum Op {
    /// Connect (or find the kept session) and report how that went.
    Open,
    Exec(ReqW),
    Reconnect,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Request {
    key: String,
    spec: SpecW,
    op: Op,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct OutW {
    stdout: String,
    stderr: String,
    exit_status: Option<u32>,
    exit_signal: Option<String>,
}

/// A transport error as the client will show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct ErrW {
    message: String,
    unreachable: bool,
    /// A command that ran out of time: (host, what, seconds).
    timeout: Option<(String, String, u64)>,
}

impl ErrW {
    fn of(e: &TransportError) -> ErrW {
        ErrW {
            message: e.to_string(),
            unreachable: e.is_unreachable(),
            timeout: match e {
                TransportError::CommandTimeout { host, what, secs } => {
                    Some((host.clone(), what.clone(), *secs))
                }
                _ => None,
            },
        }
    }

    fn error(self) -> TransportError {
        match self.timeout {
            Some((host, what, secs)) => TransportError::CommandTimeout { host, what, secs },
            None => TransportError::Relayed {
                message: self.message,
                unreachable: self.unreachable,
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
enum Response {
    Ok(Option<OutW>),
    Err(ErrW),
}

/// Frames larger than this are refused (a command's output is held in memory anyway).
const MAX_FRAME: u32 = 1 << 30;

async fn write_frame<T: Serialize>(s: &mut UnixStream, v: &T) -> std::io::Result<()> {
    let data = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    let mut buf = (data.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(&data);
    s.write_all(&buf).await
}

async fn read_frame<T: for<'de> Deserialize<'de>>(s: &mut UnixStream) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::other("frame too large"));
    }
    let mut data = vec![0u8; len as usize];
    s.read_exact(&mut data).await?;
    serde_json::from_slice(&data).map_err(std::io::Error::other)
}

// ---- the client side ----

/// A host's connection through the keeper.
pub struct KeptConnection {
    host: String,
    key: String,
    spec: SpecW,
    sock: PathBuf,
    /// Idle streams to the keeper (one per request in flight).
    streams: std::sync::Mutex<Vec<UnixStream>>,
}

/// When this process last started a keeper, by socket (the hosts of a run wait for one start).
static SPAWNED: std::sync::Mutex<Vec<(PathBuf, Instant)>> = std::sync::Mutex::new(Vec::new());

async fn connect_or_spawn(sock: &Path) -> Option<UnixStream> {
    if let Ok(s) = UnixStream::connect(sock).await {
        return Some(s);
    }
    let start = SPAWNED
        .lock()
        .map(|mut v| {
            let recent = v
                .iter()
                .any(|(p, t)| p == sock && t.elapsed() < Duration::from_secs(3));
            if !recent {
                v.retain(|(p, _)| p != sock);
                v.push((sock.to_path_buf(), Instant::now()));
            }
            !recent
        })
        .unwrap_or(false);
    if start {
        spawn(sock).ok()?;
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if let Ok(s) = UnixStream::connect(sock).await {
            return Some(s);
        }
    }
    None
}

/// Starts `homelab __keeper` in its own process group, its output nowhere (a caller waiting for
/// this process's output must not wait for the keeper).
fn spawn(sock: &Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    std::process::Command::new(exe)
        .arg("__keeper")
        .arg("--socket")
        .arg(sock)
        .arg("--idle")
        .arg(persist_secs().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map(|_| ())
}

impl KeptConnection {
    /// The host's kept session (made by the keeper now if there is none). `Ok(None)`: no keeper
    /// can be had here (no private folder, a socket path too long, the keeper would not start);
    /// the caller connects itself.
    pub async fn open(spec: &ConnectionSpec) -> Result<Option<KeptConnection>, TransportError> {
        if persist_secs() == 0 {
            return Ok(None);
        }
        let Some(sock) = socket_path() else {
            return Ok(None);
        };
        // A key that needs its passphrase asks this run's terminal: no keeper then.
        let encrypted = spec.identity_files.iter().filter(|p| p.exists()).any(|p| {
            matches!(
                russh::keys::load_secret_key(p, None),
                Err(russh::keys::Error::KeyIsEncrypted)
            )
        });
        if encrypted {
            return Ok(None);
        }
        let w = SpecW::of(spec);
        let c = KeptConnection {
            host: spec.host.clone(),
            key: w.key(),
            spec: w,
            sock,
            streams: std::sync::Mutex::new(Vec::new()),
        };
        match c.call(Op::Open).await {
            Ok(_) => Ok(Some(c)),
            Err(Call::Unavailable) => Ok(None),
            Err(Call::Failed(e)) => Err(e),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        match self.call(Op::Exec(ReqW::of(req))).await {
            Ok(Some(o)) => Ok(ExecOutput {
                stdout: unb64(&o.stdout),
                stderr: unb64(&o.stderr),
                exit_status: o.exit_status,
                exit_signal: o.exit_signal,
            }),
            Ok(None) => Err(self.lost("the connection keeper answered nothing")),
            Err(Call::Unavailable) => Err(self.lost("the connection keeper is gone")),
            Err(Call::Failed(e)) => Err(e),
        }
    }

    pub async fn reconnect(&self) -> Result<(), TransportError> {
        match self.call(Op::Reconnect).await {
            Ok(_) => Ok(()),
            Err(Call::Unavailable) => Err(self.lost("the connection keeper is gone")),
            Err(Call::Failed(e)) => Err(e),
        }
    }

    /// Returns the idle streams (the keeper keeps the session).
    pub async fn close(&self) {
        if let Ok(mut v) = self.streams.lock() {
            v.clear();
        }
    }

    fn lost(&self, why: &str) -> TransportError {
        TransportError::Session {
            host: self.host.clone(),
            reason: format!("{why} (HOMELAB_PERSIST=0 connects without it)"),
        }
    }

    async fn call(&self, op: Op) -> Result<Option<OutW>, Call> {
        let req = Request {
            key: self.key.clone(),
            spec: self.spec.clone(),
            op,
        };
        // An idle stream may be one the keeper closed (it exited): a request that could not be
        // written was not delivered, and goes on a fresh stream; once written, it is not sent
        // again (it may have run).
        let pooled = self.streams.lock().ok().and_then(|mut v| v.pop());
        let mut stream = match pooled {
            Some(mut s) => match write_frame(&mut s, &req).await {
                Ok(()) => s,
                Err(_) => self.fresh(&req).await?,
            },
            None => self.fresh(&req).await?,
        };
        let resp: Response = read_frame(&mut stream).await.map_err(|_| {
            Call::Failed(TransportError::Session {
                host: self.host.clone(),
                reason: "the connection keeper stopped while a command ran; it may or may not \
                         have run (HOMELAB_PERSIST=0 connects without a keeper)"
                    .into(),
            })
        })?;
        if let Ok(mut v) = self.streams.lock() {
            v.push(stream);
        }
        match resp {
            Response::Ok(o) => Ok(o),
            Response::Err(e) => Err(Call::Failed(e.error())),
        }
    }

    async fn fresh(&self, req: &Request) -> Result<UnixStream, Call> {
        let mut s = connect_or_spawn(&self.sock)
            .await
            .ok_or(Call::Unavailable)?;
        write_frame(&mut s, req)
            .await
            .map_err(|_| Call::Unavailable)?;
        Ok(s)
    }
}

enum Call {
    /// No keeper to talk to; nothing was sent.
    Unavailable,
    Failed(TransportError),
}

// ---- the keeper ----

type Slot = Arc<tokio::sync::Mutex<Option<Arc<super::ssh::SshConnection>>>>;

struct Keeper {
    sessions: std::sync::Mutex<HashMap<String, Slot>>,
    /// Streams open: a run holds its streams until it ends, pauses and all.
    busy: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<Instant>,
    uid: Option<u32>,
}

/// `homelab __keeper`: serves kept sessions on `sock` until `idle` passes without a request.
pub fn run(sock: &Path, idle: Duration) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(sock, idle))
}

async fn serve(sock: &Path, idle: Duration) -> anyhow::Result<i32> {
    use std::os::unix::fs::PermissionsExt;
    // Another keeper answering there: it serves; a dead one's socket is replaced.
    if UnixStream::connect(sock).await.is_ok() {
        return Ok(0);
    }
    let _ = std::fs::remove_file(sock);
    let listener = tokio::net::UnixListener::bind(sock)?;
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o600))?;
    // The socket file is ours while it is this inode (another keeper may replace it).
    let inode = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(p).ok().map(|m| m.ino())
    };
    let mine = inode(sock);
    let k = Arc::new(Keeper {
        sessions: std::sync::Mutex::new(HashMap::new()),
        busy: std::sync::atomic::AtomicUsize::new(0),
        last: std::sync::Mutex::new(Instant::now()),
        uid: my_uid(),
    });
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut listener = Some(listener);
    loop {
        let accept = async {
            match &listener {
                Some(l) => l.accept().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            a = accept => {
                let Some((stream, _)) = a else { continue };
                let peer = stream.peer_cred().ok().map(|c| c.uid());
                if peer.is_none() || peer != k.uid {
                    continue;
                }
                k.touch();
                let k = k.clone();
                tokio::spawn(async move { k.client(stream).await });
            }
            _ = tick.tick() => {
                let idle_for = k.last.lock().map(|t| t.elapsed()).unwrap_or_default();
                let busy = k.busy.load(std::sync::atomic::Ordering::SeqCst);
                // Removed, or replaced by another keeper (a start race): take no new runs, and
                // leave once the runs already here are done.
                let ours = mine.is_some() && inode(sock) == mine;
                if !ours {
                    listener = None;
                }
                if busy == 0 && (idle_for >= idle || !ours) {
                    if ours {
                        let _ = std::fs::remove_file(sock);
                    }
                    return Ok(0);
                }
            }
        }
    }
}

impl Keeper {
    fn touch(&self) {
        if let Ok(mut t) = self.last.lock() {
            *t = Instant::now();
        }
    }

    async fn client(&self, mut stream: UnixStream) {
        self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        while let Ok(req) = read_frame::<Request>(&mut stream).await {
            let resp = self.answer(req).await;
            self.touch();
            if write_frame(&mut stream, &resp).await.is_err() {
                break;
            }
        }
        self.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.touch();
    }

    async fn answer(&self, req: Request) -> Response {
        // The client worked the key out from the files it saw; it must say what the spec says.
        if req.key != req.spec.key() {
            return Response::Err(ErrW {
                message: format!(
                    "{}: the connection keeper sees other key or known_hosts files than this run",
                    req.spec.host
                ),
                unreachable: true,
                timeout: None,
            });
        }
        let slot: Option<Slot> = match self.sessions.lock() {
            Ok(mut m) => Some(m.entry(req.key.clone()).or_default().clone()),
            Err(_) => None,
        };
        let Some(slot) = slot else {
            return Response::Err(ErrW {
                message: "the connection keeper failed".into(),
                unreachable: true,
                timeout: None,
            });
        };
        let conn = {
            let mut g = slot.lock().await;
            let mut alive = g.as_ref().filter(|c| !c.is_closed()).cloned();
            // A run starts by asking for its session: check that the host still answers (it may
            // have gone away without the connection noticing yet), else connect again.
            if let (Op::Open, Some(c)) = (&req.op, &alive) {
                let limit = Duration::from_millis(req.spec.connect_timeout_ms.clamp(500, 5000));
                let probe = tokio::time::timeout(limit, c.exec(&ExecRequest::new(":"))).await;
                if !matches!(probe, Ok(Ok(ref o)) if o.success()) {
                    alive = None;
                }
            }
            match alive {
                Some(c) => c,
                None => match super::ssh::SshConnection::connect(req.spec.spec()).await {
                    Ok(c) => {
                        let c = Arc::new(c);
                        *g = Some(c.clone());
                        c
                    }
                    Err(e) => {
                        *g = None;
                        return Response::Err(ErrW::of(&e));
                    }
                },
            }
        };
        match req.op {
            Op::Open => Response::Ok(None),
            Op::Reconnect => match conn.reconnect().await {
                Ok(()) => Response::Ok(None),
                Err(e) => Response::Err(ErrW::of(&e)),
            },
            Op::Exec(r) => match conn.exec(&r.request()).await {
                Ok(o) => Response::Ok(Some(OutW {
                    stdout: b64(&o.stdout),
                    stderr: b64(&o.stderr),
                    exit_status: o.exit_status,
                    exit_signal: o.exit_signal,
                })),
                Err(e) => {
                    if matches!(e, TransportError::Session { .. }) {
                        // The session is lost: the next request connects again.
                        let mut g = slot.lock().await;
                        if g.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                            *g = None;
                        }
                    }
                    Response::Err(ErrW::of(&e))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cross_the_wire_whole() {
        let r = ExecRequest {
            command: "cat; echo 'x'".into(),
            stdin: Some(vec![0, 1, 2, 255]),
            become_: Some(Become {
                method: BecomeMethod::Su,
                user: "app".into(),
                password: Some(super::super::become_::Secret::new("pw")),
                flags: Some("-l".into()),
                exe: None,
            }),
            timeout: Some(Duration::from_millis(1500)),
        };
        let back = ReqW::of(&r).request();
        assert_eq!(back.command, r.command);
        assert_eq!(back.stdin, r.stdin);
        assert_eq!(back.become_, r.become_);
        assert_eq!(back.timeout, r.timeout);
        let e = TransportError::CommandTimeout {
            host: "h".into(),
            what: "x".into(),
            secs: 3,
        };
        let back = ErrW::of(&e).error();
        assert_eq!(back.to_string(), e.to_string());
        let e = TransportError::Connect {
            host: "h".into(),
            addr: "a".into(),
            reason: "r".into(),
        };
        let back = ErrW::of(&e).error();
        assert_eq!(back.to_string(), e.to_string());
        assert!(back.is_unreachable());
    }

    #[test]
    fn a_session_is_kept_for_exactly_what_made_it() {
        let d = tempfile::tempdir().unwrap();
        let kh = d.path().join("known_hosts");
        std::fs::write(&kh, "a\n").unwrap();
        let w = SpecW {
            host: "h".into(),
            address: "10.0.0.1".into(),
            port: 22,
            user: "root".into(),
            identity_files: vec![],
            identities_only: false,
            known_hosts: vec![kh.clone()],
            policy: "strict".into(),
            connect_timeout_ms: 1000,
        };
        let k = w.key();
        assert_eq!(k, w.key());
        let mut other = w.clone();
        other.user = "app".into();
        assert_ne!(k, other.key());
        // A known_hosts file that changed is another session.
        std::fs::write(&kh, "a\nb\n").unwrap();
        assert_ne!(k, w.key());
        assert_eq!(SpecW::of(&w.spec()), w);
    }
}
