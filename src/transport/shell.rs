//! Persistent remote shells: most commands of a run go to a `/bin/sh` kept open on one channel per
//! host (a few when commands overlap), instead of a new channel each. sshd then forks no session,
//! and no login shell starts, per command: only the command's own subshell. That is the largest
//! cost of a task on a small target (see scripts/bench.sh).
//!
//! Framing: each request is one line of shell text that runs the command in a subshell, its stdin
//! from /dev/null or from a base64 here-document (dash reads its script ahead, so a command cannot
//! share the shell's stdin), and then prints `TOKEN SEQ E RC` on stdout and `TOKEN SEQ E` on
//! stderr. Output is what lies between the request's start and end marks; the token is 128 random
//! bits drawn per connection, so a command's output cannot end a request by chance. Commands with
//! a time limit and very large inputs still get a channel of their own.

use super::base64_encode_lines;
use super::ExecOutput;
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

/// Largest stdin sent in-band (base64 in the request); larger inputs get a channel of their own.
pub const INBAND_STDIN_MAX: usize = 512 * 1024;

/// The text that starts the shell on a fresh channel (run by the login shell).
pub const START_COMMAND: &str = "exec /bin/sh";

/// A mark no command prints by chance: 128 bits from the kernel's random source.
pub fn random_token() -> String {
    use std::io::Read;
    let mut buf = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        // Not a secret, only unlikely to appear in output: the clock and pid do then.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        buf = (t ^ (u128::from(std::process::id()) << 96)).to_le_bytes();
    }
    let mut s = String::from("HLSH");
    for b in buf {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The first text sent to a new shell: checks that base64 exists and prints the ready marks.
pub fn hello(token: &str) -> String {
    format!(
        "if command -v base64 >/dev/null 2>&1; then b=1; else b=0; fi; \
         printf '%s READY %s\\n' {token} \"$b\"; printf '%s READY\\n' {token} >&2\n"
    )
}

/// One request's shell text.
pub fn request(token: &str, seq: u64, command: &str, stdin: Option<&[u8]>) -> String {
    // `/bin/sh -c TEXT` (how `shell:` tasks ask for POSIX sh whatever the login shell) is already
    // what the subshell does: run TEXT there and save a process.
    let inner = match shlex::split(command).as_deref() {
        Some([sh, c, text]) if sh == "/bin/sh" && c == "-c" => Some(text.clone()),
        _ => None,
    };
    let q = super::shell_quote(inner.as_deref().unwrap_or(command));
    let start = format!("printf '%s {seq} S\\n' {token}; printf '%s {seq} S\\n' {token} >&2; ");
    let end =
        format!("; printf '%s {seq} E %d\\n' {token} \"$?\"; printf '%s {seq} E\\n' {token} >&2\n");
    match stdin {
        None | Some([]) => format!("{start}( eval {q} ) </dev/null{end}"),
        Some(data) => {
            let delim = format!("{token}_IN");
            let body = base64_encode_lines(data);
            // The here-document is the last thing on the line; the end marks follow it.
            format!(
                "{start}base64 -d <<'{delim}' | ( eval {q} )\n{body}{delim}\n{}",
                end.trim_start_matches("; ")
            )
        }
    }
}

/// Collects one request's output from a stream of data, by its marks.
#[derive(Debug)]
pub struct Collector {
    start: Vec<u8>,
    end: Vec<u8>,
    out: Stream,
    err: Stream,
}

#[derive(Debug, Default)]
struct Stream {
    buf: Vec<u8>,
    /// Where the request's own output begins in `buf`, once the start mark was seen.
    begin: Option<usize>,
    /// Where the end mark begins, once seen.
    end_at: Option<usize>,
    /// The rest of the end line (the exit status), once the line is complete.
    done: Option<Vec<u8>>,
}

impl Stream {
    fn push(&mut self, data: &[u8], start: &[u8], end: &[u8]) {
        if self.done.is_some() {
            return;
        }
        // A mark may be split across reads: search from a little before the new data.
        let from = self.buf.len().saturating_sub(end.len().max(start.len()));
        self.buf.extend_from_slice(data);
        let begin = match self.begin {
            Some(b) => b,
            None => match find(&self.buf[from..], start) {
                Some(p) => {
                    self.begin = Some(from + p + start.len());
                    from + p + start.len()
                }
                None => return,
            },
        };
        if self.end_at.is_none() {
            let at = from.max(begin);
            self.end_at = find(&self.buf[at..], end).map(|p| at + p);
        }
        if let Some(e) = self.end_at {
            let rest = &self.buf[e + end.len()..];
            if let Some(nl) = rest.iter().position(|&c| c == b'\n') {
                self.done = Some(rest[..nl].to_vec());
            }
        }
    }

    fn take(&mut self) -> (Vec<u8>, Vec<u8>) {
        match (self.begin, self.end_at, self.done.take()) {
            (Some(b), Some(e), Some(tail)) => (self.buf[b..e].to_vec(), tail),
            _ => (Vec::new(), Vec::new()),
        }
    }
}

impl Collector {
    pub fn new(token: &str, seq: u64) -> Collector {
        Collector {
            start: format!("{token} {seq} S\n").into_bytes(),
            end: format!("{token} {seq} E").into_bytes(),
            out: Stream::default(),
            err: Stream::default(),
        }
    }
    pub fn stdout(&mut self, data: &[u8]) {
        self.out.push(data, &self.start, &self.end);
    }
    pub fn stderr(&mut self, data: &[u8]) {
        self.err.push(data, &self.start, &self.end);
    }
    pub fn complete(&self) -> bool {
        self.out.done.is_some() && self.err.done.is_some()
    }
    /// The request's output; `None` when the end line does not carry an exit status.
    pub fn finish(mut self) -> Option<ExecOutput> {
        let (stdout, tail) = self.out.take();
        let (stderr, _) = self.err.take();
        let rc: u32 = String::from_utf8_lossy(&tail).trim().parse().ok()?;
        Some(ExecOutput {
            stdout,
            stderr,
            exit_status: Some(rc),
            exit_signal: None,
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Why a shell could not serve a request.
#[derive(Debug)]
pub enum ShellError {
    /// The shell is gone (channel closed, connection lost): the request did not complete.
    Lost(String),
}

/// A shell running on one channel.
pub struct Shell {
    read: ChannelReadHalf,
    write: ChannelWriteHalf<Msg>,
    token: String,
    seq: u64,
    /// Whether the host has base64 (needed to pass stdin in-band).
    pub base64: bool,
}

impl Shell {
    /// Starts the shell on an opened channel and waits until it answers.
    pub async fn start(channel: russh::Channel<Msg>, token: String) -> Result<Shell, ShellError> {
        channel
            .exec(true, START_COMMAND.as_bytes())
            .await
            .map_err(|e| ShellError::Lost(format!("cannot start a shell: {e}")))?;
        let (read, write) = channel.split();
        let mut sh = Shell {
            read,
            write,
            token,
            seq: 0,
            base64: false,
        };
        let hello = hello(&sh.token);
        sh.write
            .data_bytes(hello.into_bytes())
            .await
            .map_err(|e| ShellError::Lost(format!("cannot write to the shell: {e}")))?;
        let mark = format!("{} READY ", sh.token).into_bytes();
        let err_mark = format!("{} READY\n", sh.token).into_bytes();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            let out_line = find(&out, &mark).and_then(|p| {
                let rest = &out[p + mark.len()..];
                rest.iter()
                    .position(|&c| c == b'\n')
                    .map(|nl| rest[..nl].to_vec())
            });
            if let (Some(flag), Some(_)) = (out_line, find(&err, &err_mark)) {
                sh.base64 = flag == b"1";
                return Ok(sh);
            }
            match sh.read.wait().await {
                Some(ChannelMsg::Data { data }) => out.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => err.extend_from_slice(&data),
                Some(ChannelMsg::ExitStatus { .. }) | Some(ChannelMsg::Eof) | None => {
                    return Err(ShellError::Lost(format!(
                        "the shell ended before it answered: {}",
                        String::from_utf8_lossy(&err).trim()
                    )))
                }
                Some(_) => {}
            }
        }
    }

    /// Runs one command and collects its output.
    pub async fn run(
        &mut self,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ShellError> {
        self.seq += 1;
        let text = request(&self.token, self.seq, command, stdin);
        let mut col = Collector::new(&self.token, self.seq);
        // Write and read at once: a large request must not wait behind unread output.
        let write = async {
            self.write
                .data_bytes(text.into_bytes())
                .await
                .map_err(|e| ShellError::Lost(format!("cannot write to the shell: {e}")))
        };
        let read = async {
            while !col.complete() {
                match self.read.wait().await {
                    Some(ChannelMsg::Data { data }) => col.stdout(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => col.stderr(&data),
                    Some(ChannelMsg::ExitStatus { .. }) | Some(ChannelMsg::Eof) | None => {
                        return Err(ShellError::Lost(
                            "the shell ended while a command ran (connection lost?)".into(),
                        ))
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        };
        let (w, r) = tokio::join!(write, read);
        w?;
        r?;
        col.finish()
            .ok_or_else(|| ShellError::Lost("the shell's answer had no exit status".into()))
    }

    pub async fn close(self) {
        let _ = self.write.eof().await;
        let _ = self.write.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_local(text: &str) -> (Vec<u8>, Vec<u8>) {
        let o = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(text)
            .output()
            .unwrap();
        (o.stdout, o.stderr)
    }

    fn roundtrip(cmd: &str, stdin: Option<&[u8]>) -> ExecOutput {
        let tok = "HLSHtest";
        // Junk before (a stray background writer) and a second request after must not leak in.
        let text = format!(
            "echo junk; echo junk >&2\n{}{}",
            request(tok, 7, cmd, stdin),
            request(tok, 8, "echo next; echo next >&2", None)
        );
        let (out, err) = run_local(&text);
        let mut c = Collector::new(tok, 7);
        // Feed in small pieces to exercise marks split across reads.
        for ch in out.chunks(3) {
            c.stdout(ch);
        }
        for ch in err.chunks(5) {
            c.stderr(ch);
        }
        assert!(c.complete());
        c.finish().unwrap()
    }

    #[test]
    fn output_status_and_streams_are_framed() {
        let o = roundtrip("echo out; echo err >&2; exit 3", None);
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
        assert_eq!(o.exit_status, Some(3));
    }

    #[test]
    fn output_without_newline_and_quotes() {
        let o = roundtrip("printf 'a'\"'\"'b'; printf x >&2", None);
        assert_eq!(o.stdout, b"a'b");
        assert_eq!(o.stderr, b"x");
        assert_eq!(o.exit_status, Some(0));
    }

    #[test]
    fn exit_and_syntax_errors_stay_in_the_subshell() {
        let o = roundtrip("cd /; exit 0", None);
        assert_eq!(o.exit_status, Some(0));
        let o = roundtrip("if then fi", None);
        assert_ne!(o.exit_status, Some(0));
        assert!(!o.stderr.is_empty());
    }

    #[test]
    fn stdin_passes_binary_data_and_is_empty_otherwise() {
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let o = roundtrip("od -An -v -tx1 | tr -d ' \\n' | wc -c", Some(&data));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "10000");
        let o = roundtrip("cat | wc -c", None);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0");
        let o = roundtrip("cat", Some(b"no newline at end"));
        assert_eq!(o.stdout, b"no newline at end");
    }

    #[test]
    fn sh_c_runs_in_the_subshell() {
        let o = roundtrip("/bin/sh -c 'echo \"$0\" | grep -c sh; exit 4'", None);
        assert_eq!(o.stdout, b"1\n");
        assert_eq!(o.exit_status, Some(4));
        assert!(request("T", 1, "/bin/sh -c 'a b'", None).contains("eval 'a b'"));
        assert!(request("T", 1, "/bin/bash -c 'a b'", None).contains("eval '/bin/bash -c '"));
    }

    #[test]
    fn a_missing_end_mark_is_not_complete() {
        let mut c = Collector::new("T", 1);
        c.stdout(b"T 1 S\nhello\nT 1 E");
        c.stderr(b"T 1 S\nT 1 E\n");
        assert!(!c.complete(), "the exit status line is not finished");
        c.stdout(b" 0\n");
        assert!(c.complete());
        assert_eq!(c.finish().unwrap().stdout, b"hello\n");
    }

    #[test]
    fn tokens_are_random() {
        let a = random_token();
        assert_eq!(a.len(), 36);
        assert_ne!(a, random_token());
    }
}
