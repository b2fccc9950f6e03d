//! Privilege escalation: wraps a command in `sudo` (or `su`), passes the password without ever
//! putting it on a command line, and tells the escalation program's own refusals from the
//! command's.
//!
//! # sudo
//! Without a password: `sudo -n` (fails at once, with a clear message, if one is needed). With a
//! password: `sudo -S -p PROMPT`, the password as the first line of stdin, then a sentinel line,
//! then the command's own stdin. The command skips stdin up to the sentinel before it runs: when
//! sudo did not read the password (a NOPASSWD rule, cached credentials), the password line is
//! skipped there instead of reaching the command (a `copy` would otherwise write it into the file).
//! sudo reads the password a byte at a time, so nothing after it is lost. This needs no terminal,
//! so it works on a plain channel and in the persistent shells (stdin in-band, base64).
//!
//! # su
//! Without a password (the login user is root): `su -s /bin/sh USER -c ...`, like sudo's fast path.
//! With a password, the controller must answer su's prompt, then send the command's stdin: one
//! channel per command, first without a terminal ([`PipeScript`], [`PipeDriver`]: util-linux su
//! reads the password from a pipe), else on a PTY ([`PtyScript`], [`PtyDriver`]); the SSH
//! transport drives both (`super::pty`). Wrong password: su's own refusal, after PAM's delay.
//!
//! Every wrapped command first prints a marker line as the target user: no marker means the
//! escalation itself failed, and the program's message says why ([`BecomeError`]).

use super::{base64_encode_lines, shell_quote, ExecOutput};
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

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
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
        match s.trim() {
            "sudo" => Some(BecomeMethod::Sudo),
            "su" => Some(BecomeMethod::Su),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            BecomeMethod::Sudo => "sudo",
            BecomeMethod::Su => "su",
        }
    }
}

/// How to become another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    pub method: BecomeMethod,
    pub user: String,
    pub password: Option<Secret>,
    /// Extra flags for the become program (ansible_become_flags); sudo's default is `-H`.
    pub flags: Option<String>,
    /// The become program (ansible_become_exe); default `sudo` or `su`.
    pub exe: Option<String>,
}

impl Default for Become {
    fn default() -> Self {
        Become {
            method: BecomeMethod::Sudo,
            user: "root".into(),
            password: None,
            flags: None,
            exe: None,
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
    #[error("sudo refused ({0}): the login user may not run commands as the become user; add a sudoers rule for it (e.g. a file in /etc/sudoers.d), or connect as another ansible_user")]
    NotAllowed(String),
    #[error("cannot become user '{user}': no such user on this host ({msg}); check become_user / ansible_become_user")]
    UnknownUser { user: String, msg: String },
    #[error("su refused the become password ({0}): su asks for the password of the target user (root unless become_user says otherwise), not the login user's; check -K input or ansible_become_password, or use become_method: sudo")]
    SuAuthFailure(String),
    #[error("su needs the password of the target user and none was given ({0}): set ansible_become_password (or pass -K), or use become_method: sudo")]
    SuPasswordRequired(String),
    #[error("privilege escalation failed: {0}")]
    Other(String),
    #[error("become_method su with a password needs a terminal, which only the SSH transport opens; use become_method: sudo")]
    SuPassword,
}

/// Marker the wrapped command prints first, so that sudo's refusals can be told from the command's.
const MARKER: &str = "HOMELAB-BECOME-OK";
const PROMPT: &str = "[homelab-become-password]";
/// The line after the sudo password on stdin: the command skips stdin up to and including it.
const SENTINEL: &str = "HOMELAB-BECOME-STDIN-d41c8a7e";

/// A command wrapped for privilege escalation. Not `Debug`: `stdin_prefix` holds the password.
pub struct Wrapped {
    pub command: String,
    pub stdin_prefix: Option<Vec<u8>>,
}

impl Become {
    fn exe(&self) -> &str {
        match self.exe.as_deref().map(str::trim) {
            Some(e) if !e.is_empty() => e,
            _ => self.method.name(),
        }
    }

    /// sudo's flags: `-H` unless given. With a password, `-n` (in Ansible's default flags
    /// `-H -S -n`) is dropped, as Ansible does, since sudo must then read the password.
    fn sudo_flags(&self) -> String {
        let flags = self.flags.as_deref().unwrap_or("-H");
        if self.password.is_some() {
            flags
                .split_whitespace()
                .filter(|w| *w != "-n" && *w != "--non-interactive")
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            flags.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    }

    fn su_flags(&self) -> String {
        self.flags
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `su [FLAGS] -s /bin/sh USER -c INNER`.
    fn su_command(&self, inner: &str) -> String {
        let flags = self.su_flags();
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" {flags}")
        };
        format!(
            "{}{flags} -s /bin/sh {} -c {}",
            self.exe(),
            shell_quote(&self.user),
            shell_quote(inner)
        )
    }

    /// Whether this escalation needs a terminal (su with a password): see [`PtyScript`].
    pub fn needs_terminal(&self) -> bool {
        self.method == BecomeMethod::Su && self.password.is_some()
    }

    /// Wraps `cmd` (a shell command line) so that it runs as `self.user` without a terminal.
    /// su with a password needs a dialogue: [`BecomeError::SuPassword`] (see [`PipeScript`]).
    pub fn wrap(&self, cmd: &str) -> Result<Wrapped, BecomeError> {
        match self.method {
            BecomeMethod::Sudo => {
                let flags = self.sudo_flags();
                let flags = if flags.is_empty() {
                    String::new()
                } else {
                    format!("{flags} ")
                };
                let (auth, inner, stdin_prefix) = match &self.password {
                    None => ("-n".to_string(), format!("echo {MARKER}; {cmd}"), None),
                    Some(pw) => (
                        format!("-S -p {}", shell_quote(PROMPT)),
                        // Skip stdin up to the sentinel: one line if sudo read the password,
                        // two if it did not ask for it.
                        format!(
                            "echo {MARKER}; IFS= read -r _hl; [ \"$_hl\" = {SENTINEL} ] || \
                             IFS= read -r _hl; unset _hl; {cmd}"
                        ),
                        Some(format!("{}\n{SENTINEL}\n", pw.expose()).into_bytes()),
                    ),
                };
                Ok(Wrapped {
                    command: format!(
                        "{} {flags}{auth} -u {} -- /bin/sh -c {}",
                        self.exe(),
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
                    command: self.su_command(&format!("echo {MARKER}; {cmd}")),
                    stdin_prefix: None,
                })
            }
        }
    }

    /// Strips the marker (and sudo's prompt, and whatever sudo printed before it) from a finished
    /// wrapped command's output. If the marker is missing, escalation failed: returns why.
    pub fn unwrap_output(
        &self,
        stdout: &mut Vec<u8>,
        stderr: &mut Vec<u8>,
    ) -> Result<(), BecomeError> {
        let prompt = PROMPT.as_bytes();
        let marker = format!("{MARKER}\n");
        if stdout.starts_with(marker.as_bytes()) {
            stdout.drain(..marker.len());
            // sudo's prompt (no newline) and anything it wrote before reading the password (a
            // first-use lecture, "Sorry, try again.") come before the command's own stderr.
            if let Some(pos) = rfind(stderr, prompt) {
                stderr.drain(..pos + prompt.len());
            }
            return Ok(());
        }
        while let Some(pos) = find(stderr, prompt) {
            stderr.drain(pos..pos + prompt.len());
        }
        let err = String::from_utf8_lossy(stderr).trim().to_string();
        Err(self.classify(&err))
    }

    /// Hides the password if a program echoed it into a message.
    pub fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(pw) if !pw.expose().is_empty() => text.replace(pw.expose(), "********"),
            _ => text.to_string(),
        }
    }

    /// Why the escalation program refused, from its message.
    /// Matched on the raw text; the password is scrubbed from what the error shows.
    pub fn classify(&self, raw: &str) -> BecomeError {
        let raw = raw.trim();
        let shown = self.scrub(raw);
        let err = shown.as_str();
        if raw.contains("unknown user")
            || raw.contains("does not exist")
            || raw.contains("no such user")
            || raw.contains("No passwd entry")
        {
            return BecomeError::UnknownUser {
                user: self.user.clone(),
                msg: last_lines(err),
            };
        }
        if self.method == BecomeMethod::Su {
            return if raw.contains("Authentication failure")
                || raw.contains("incorrect password")
                || raw.contains("must be run from a terminal")
                || raw.contains("Sorry")
            {
                if self.password.is_some() {
                    BecomeError::SuAuthFailure(last_lines(err))
                } else {
                    BecomeError::SuPasswordRequired(last_lines(err))
                }
            } else if raw.is_empty() {
                BecomeError::Other("su exited before running the command".into())
            } else {
                let msg = last_lines(err);
                BecomeError::Other(if msg.starts_with("su") {
                    msg
                } else {
                    format!("su: {msg}")
                })
            };
        }
        classify_shown(raw, err)
    }
}

/// The last few lines of a message (a program's banner before them does not help).
fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join("; ")
}

/// Strips the marker and sudo's prompt (sudo's classification of failures). Prefer
/// [`Become::unwrap_output`], which knows the method and the user.
pub fn unwrap_output(stdout: &mut Vec<u8>, stderr: &mut Vec<u8>) -> Result<(), BecomeError> {
    Become::default().unwrap_output(stdout, stderr)
}

/// sudo's refusals: matched on `raw`, shown from `err` (scrubbed).
fn classify_shown(raw: &str, err: &str) -> BecomeError {
    match classify(raw) {
        BecomeError::NotAllowed(_) => BecomeError::NotAllowed(last_lines(err)),
        BecomeError::Other(_) if !err.is_empty() => BecomeError::Other(err.to_string()),
        e => e,
    }
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
        BecomeError::NotAllowed(last_lines(err))
    } else if err.is_empty() {
        BecomeError::Other("the become program exited before running the command".into())
    } else {
        BecomeError::Other(err.to_string())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).rposition(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// su with a password: a terminal.

/// Words that password prompts start with, in the locales PAM is translated to (as Ansible's
/// su plugin lists them); matched in the unfinished last line, which must end with a colon.
const PROMPT_WORDS: &[&str] = &[
    "assword",
    "asswort",
    "Adgangskode",
    "Contraseña",
    "Contrasenya",
    "Hasło",
    "Heslo",
    "Jelszó",
    "Lösenord",
    "Mật khẩu",
    "Mot de passe",
    "Parola",
    "Parool",
    "Pasahitza",
    "Passord",
    "Salasana",
    "Sandi",
    "Senha",
    "Wachtwoord",
    "ססמה",
    "Лозинка",
    "Парола",
    "Пароль",
    "गुप्तशब्द",
    "शब्दकूट",
    "సంకేతపదము",
    "හස්පදය",
    "密码",
    "密碼",
    "口令",
    "パスワード",
    "암호",
];

/// Whether `text` (what su printed so far) ends with a password prompt: its last, unfinished line
/// names a password (in English or in a locale PAM is translated to) and ends with `:` (or `：`),
/// maybe followed by spaces. A finished line (an error message) is never a prompt.
pub fn is_password_prompt(text: &str) -> bool {
    let last = text.rsplit(['\n', '\r']).next().unwrap_or("");
    let t = last.trim_end();
    (t.ends_with(':') || t.ends_with('：')) && {
        let lower = t.to_lowercase();
        PROMPT_WORDS
            .iter()
            .any(|w| t.contains(w) || lower.contains(&w.to_lowercase()))
    }
}

/// su with a password on a plain channel (no terminal): the first choice. su from util-linux (and
/// shadow, both through PAM) prints its prompt on stderr and reads the password from stdin even
/// when stdin is a pipe. The controller waits for the prompt, sends the password and a newline,
/// waits for the marker (printed on stdout and on stderr by the target user's shell), and only then
/// streams the command's stdin (PAM reads a whole buffer at once: anything sent with the password
/// would be lost) and ends it with EOF. Both streams are cut after their marker, so stdout, stderr
/// and the exit status are the command's own, exactly, with no framing. A su that insists on a
/// terminal says so before the marker; the transport then runs [`PtyScript`] instead.
pub struct PipeScript {
    /// The command line for the channel (run by the login shell).
    pub command: String,
    marker: String,
}

impl Become {
    /// The command for a plain su session with a password (see [`PipeScript`]).
    pub fn wrap_su_pipe(&self, cmd: &str, token: &str) -> PipeScript {
        let marker = format!("{token} OK");
        PipeScript {
            command: self.su_command(&format!("echo {marker}; echo {marker} >&2; {cmd}")),
            marker,
        }
    }
}

impl PipeScript {
    pub fn driver(&self, become_: &Become) -> PipeDriver {
        PipeDriver {
            marker: self.marker.clone().into_bytes(),
            out: Vec::new(),
            err: Vec::new(),
            out_ok: false,
            err_ok: false,
            password_sent: false,
            become_: become_.clone(),
        }
    }
}

/// The controller's side of a [`PipeScript`] session (pure, like [`PtyDriver`]).
pub struct PipeDriver {
    marker: Vec<u8>,
    out: Vec<u8>,
    err: Vec<u8>,
    out_ok: bool,
    err_ok: bool,
    password_sent: bool,
    become_: Become,
}

impl PipeDriver {
    /// Data on stdout.
    pub fn stdout(&mut self, data: &[u8]) -> PtyStep {
        self.out.extend_from_slice(data);
        if !self.out_ok {
            if let Some(rest) = after_line(&self.out, &self.marker) {
                self.out = rest;
                self.out_ok = true;
                return PtyStep::Escalated;
            }
        }
        self.prompt_step()
    }

    /// Data on stderr.
    pub fn stderr(&mut self, data: &[u8]) -> PtyStep {
        self.err.extend_from_slice(data);
        if !self.err_ok {
            if let Some(rest) = after_line(&self.err, &self.marker) {
                self.err = rest;
                self.err_ok = true;
            }
        }
        self.prompt_step()
    }

    fn prompt_step(&mut self) -> PtyStep {
        if self.out_ok || self.err_ok {
            return PtyStep::Wait;
        }
        let err = String::from_utf8_lossy(&self.err).into_owned();
        let out = String::from_utf8_lossy(&self.out).into_owned();
        if is_password_prompt(&err) || is_password_prompt(&out) {
            if !self.password_sent {
                self.password_sent = true;
                self.err.clear();
                self.out.clear();
                return PtyStep::SendPassword;
            }
            return PtyStep::Failed(BecomeError::Other(format!(
                "su asked again after the password ({}); log in once by hand to see why",
                self.become_.scrub(format!("{out}{err}").trim())
            )));
        }
        PtyStep::Wait
    }

    pub fn password_sent(&self) -> bool {
        self.password_sent
    }

    pub fn escalated(&self) -> bool {
        self.out_ok
    }

    /// Whether su refused because it wants a terminal (then the PTY session is the way).
    pub fn wants_terminal(&self) -> bool {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&self.out),
            String::from_utf8_lossy(&self.err)
        );
        !self.out_ok
            && (text.contains("terminal") || text.contains("tty") || text.contains("tcgetattr"))
    }

    /// The channel ended with `exit_status`: the command's result, or why escalation failed.
    pub fn finish(
        self,
        exit_status: Option<u32>,
        exit_signal: Option<String>,
    ) -> Result<ExecOutput, BecomeError> {
        if !self.out_ok {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&self.out),
                String::from_utf8_lossy(&self.err)
            );
            if text.trim().is_empty() {
                return Err(BecomeError::Other(
                    "su exited before asking for a password or running the command".into(),
                ));
            }
            return Err(self.become_.classify(&text));
        }
        Ok(ExecOutput {
            stdout: self.out,
            // Without its marker (the channel ended early), stderr is all the command's anyway
            // after the password; what su printed before it was cleared with the prompt.
            stderr: self.err,
            exit_status,
            exit_signal,
        })
    }

    /// No prompt in time: what su printed instead.
    pub fn no_prompt(&self, secs: u64) -> BecomeError {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&self.out),
            String::from_utf8_lossy(&self.err)
        );
        no_prompt_error(&self.become_.scrub(&text), secs)
    }
}

fn no_prompt_error(text: &str, secs: u64) -> BecomeError {
    BecomeError::Other(format!(
        "su did not ask for a password within {secs} s{}",
        if text.trim().is_empty() {
            " (it printed nothing)".to_string()
        } else {
            format!(" (it printed: {})", last_lines(text))
        }
    ))
}

/// su with a password, on a terminal: for a su that will not read a password from a pipe (see
/// [`PipeScript`], the first choice). With a PTY the command's stdout and stderr arrive merged on
/// one stream, with `\r\n` line ends, and anything typed is echoed unless echo is off. So the
/// command never writes to the terminal itself:
///
/// 1. The channel gets a PTY with echo off, then runs `su -s /bin/sh USER -c INNER`.
/// 2. The controller waits for the password prompt ([`is_password_prompt`], with a time limit),
///    sends the password and a newline; su reads it with echo off.
/// 3. INNER, now the target user, turns echo and canonical input off (`stty -echo -icanon`: with
///    echo off and canonical input on, OpenSSH's sshd answers every chunk typed with an IGNORE
///    packet of the same size, "simulated echo", which for a large input grows past the largest
///    packet russh accepts), makes a private temp folder (`mktemp -d`, removed on exit, also on
///    hangup) and prints `TOKEN OK`: escalation worked. No marker but the channel's end: su
///    refused, and its message says why.
/// 4. Only after the marker is the command's stdin sent (earlier, su's terminal flushes would drop
///    it): as base64 lines (no terminal control character in its alphabet), exactly N bytes, and
///    INNER runs `head -c N | base64 -d | ( eval CMD )`.
/// 5. The command's stdout and stderr go to files in the temp folder; after it ends INNER prints
///    `TOKEN O`, stdout in base64, `TOKEN E`, stderr in base64, `TOKEN R RC`. The controller
///    decodes them (ignoring `\r` and whatever else the terminal added), so the exact bytes and
///    the exit status come back as without a terminal.
///
/// The token is 128 random bits per request: output cannot fake a frame mark. The password is
/// never on a command line and never echoed; error texts are scrubbed of it anyway.
pub struct PtyScript {
    /// The command line for the channel (run by the login shell).
    pub command: String,
    token: String,
    /// The stdin as it is typed (base64 lines), if any.
    input: Option<Vec<u8>>,
}

impl Become {
    /// The command for a terminal session (see [`PtyScript`]), with the command's stdin.
    pub fn wrap_pty(&self, cmd: &str, stdin: Option<&[u8]>, token: &str) -> PtyScript {
        let q = shell_quote(cmd);
        let input = stdin
            .filter(|s| !s.is_empty())
            .map(|s| base64_encode_lines(s).into_bytes());
        let run = match &input {
            Some(text) => format!(
                "head -c {} | base64 -d | ( eval {q} ) >\"$d/o\" 2>\"$d/e\"",
                text.len()
            ),
            None => format!("( eval {q} ) </dev/null >\"$d/o\" 2>\"$d/e\""),
        };
        let inner = format!(
            "stty -echo -icanon min 1 time 0 2>/dev/null; d=$(mktemp -d) || exit 125; \
             trap 'rm -rf \"$d\"' 0; trap 'exit 129' 1 2 15; \
             echo {token} OK; {run}; rc=$?; \
             printf '%s O\\n' {token}; base64 <\"$d/o\"; printf '%s E\\n' {token}; \
             base64 <\"$d/e\"; printf '%s R %s\\n' {token} \"$rc\""
        );
        PtyScript {
            command: self.su_command(&inner),
            token: token.to_string(),
            input,
        }
    }
}

impl PtyScript {
    /// What to type as the command's stdin once escalation worked (taken once).
    pub fn take_input(&mut self) -> Option<Vec<u8>> {
        self.input.take()
    }
    pub fn driver(&self, become_: &Become) -> PtyDriver {
        PtyDriver {
            ok: format!("{} OK", self.token).into_bytes(),
            token: self.token.clone(),
            phase: Phase::Prompt,
            buf: Vec::new(),
            become_: become_.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for su's prompt (or the marker, when su needs no password).
    Prompt,
    /// The password was sent: waiting for the marker.
    Marker,
    /// Escalated: waiting for the result frame.
    Running,
    Done,
}

/// What the terminal session should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum PtyStep {
    /// Keep reading.
    Wait,
    /// Type the password (and a newline).
    SendPassword,
    /// Escalation worked: type the command's stdin (if any) and keep reading.
    Escalated,
    /// The result is complete.
    Done(ExecOutput),
    /// Escalation failed.
    Failed(BecomeError),
}

/// The controller's side of a [`PtyScript`] session: fed the terminal's output as it comes, says
/// what to do next. Pure (no I/O), so the protocol is unit-tested without a host.
pub struct PtyDriver {
    token: String,
    ok: Vec<u8>,
    phase: Phase,
    /// Terminal output of the current phase.
    buf: Vec<u8>,
    become_: Become,
}

impl PtyDriver {
    pub fn feed(&mut self, data: &[u8]) -> PtyStep {
        self.buf.extend_from_slice(data);
        match self.phase {
            Phase::Prompt | Phase::Marker => {
                if let Some(rest) = after_line(&self.buf, &self.ok) {
                    self.buf = rest;
                    self.phase = Phase::Running;
                    // The result may already be here (no stdin, fast command).
                    return match self.frame() {
                        Some(step) => step,
                        None => PtyStep::Escalated,
                    };
                }
                let text = String::from_utf8_lossy(&self.buf).into_owned();
                if is_password_prompt(&text) {
                    if self.phase == Phase::Prompt {
                        self.phase = Phase::Marker;
                        self.buf.clear();
                        return PtyStep::SendPassword;
                    }
                    // Asked again (an expired password, a second factor): not for us to answer.
                    self.phase = Phase::Done;
                    return PtyStep::Failed(BecomeError::Other(format!(
                        "su asked again after the password ({}); log in once by hand to see why",
                        self.become_.scrub(text.trim())
                    )));
                }
                PtyStep::Wait
            }
            Phase::Running => self.frame().unwrap_or(PtyStep::Wait),
            Phase::Done => PtyStep::Wait,
        }
    }

    /// Whether the password was typed already.
    pub fn password_sent(&self) -> bool {
        self.phase != Phase::Prompt
    }

    /// Whether escalation worked (the marker was seen).
    pub fn escalated(&self) -> bool {
        matches!(self.phase, Phase::Running | Phase::Done)
    }

    /// The terminal session ended (channel closed) before [`PtyStep::Done`]: why.
    pub fn ended(&mut self) -> BecomeError {
        let raw = clean_text(&self.buf);
        let text = self.become_.scrub(&raw);
        match self.phase {
            Phase::Running | Phase::Done => BecomeError::Other(format!(
                "the command's shell ended before reporting a result{}",
                if text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", last_lines(&text))
                }
            )),
            _ => {
                if text.trim().is_empty() {
                    return BecomeError::Other(
                        "su exited before asking for a password or running the command".into(),
                    );
                }
                self.become_.classify(&raw)
            }
        }
    }

    /// No prompt in time: what su printed instead.
    pub fn no_prompt(&self, secs: u64) -> BecomeError {
        no_prompt_error(&self.become_.scrub(&clean_text(&self.buf)), secs)
    }

    /// The result frame, once complete.
    fn frame(&mut self) -> Option<PtyStep> {
        let t = &self.token;
        let o = format!("{t} O");
        let e = format!("{t} E");
        let r = format!("{t} R ");
        let r_at = find(&self.buf, r.as_bytes())?;
        let tail = &self.buf[r_at + r.len()..];
        let nl = tail.iter().position(|&c| c == b'\n' || c == b'\r')?;
        let rc: u32 = String::from_utf8_lossy(&tail[..nl]).trim().parse().ok()?;
        let o_at = find(&self.buf[..r_at], o.as_bytes())?;
        let e_at = find(&self.buf[o_at..r_at], e.as_bytes())? + o_at;
        let stdout = decode_b64(&self.buf[o_at + o.len()..e_at]);
        let stderr = decode_b64(&self.buf[e_at + e.len()..r_at]);
        self.phase = Phase::Done;
        Some(match (stdout, stderr) {
            (Some(stdout), Some(stderr)) => PtyStep::Done(ExecOutput {
                stdout,
                stderr,
                exit_status: Some(rc),
                exit_signal: None,
            }),
            _ => PtyStep::Failed(BecomeError::Other(
                "the command's output came back garbled from the terminal".into(),
            )),
        })
    }
}

/// The bytes after the first line that is exactly `line` (with `\n` or `\r\n`), once complete.
fn after_line(buf: &[u8], line: &[u8]) -> Option<Vec<u8>> {
    let mut from = 0;
    while let Some(p) = find(&buf[from..], line) {
        let at = from + p;
        let start_ok = at == 0 || matches!(buf[at - 1], b'\n' | b'\r');
        let rest = &buf[at + line.len()..];
        let end = if rest.starts_with(b"\r\n") {
            Some(2)
        } else if rest.starts_with(b"\n") {
            Some(1)
        } else {
            None
        };
        if start_ok {
            if let Some(n) = end {
                return Some(rest[n..].to_vec());
            }
            if rest.is_empty() || rest == b"\r" {
                return None; // the line is not complete yet
            }
        }
        from = at + 1;
    }
    None
}

fn decode_b64(data: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let clean: Vec<u8> = data
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

/// Terminal text as a message: `\r` dropped, lossy UTF-8.
fn clean_text(buf: &[u8]) -> String {
    String::from_utf8_lossy(buf).replace('\r', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(p: &str) -> Become {
        Become {
            password: Some(Secret::new(p)),
            ..Default::default()
        }
    }

    fn su(p: Option<&str>) -> Become {
        Become {
            method: BecomeMethod::Su,
            password: p.map(Secret::new),
            ..Default::default()
        }
    }

    /// Runs a wrapped command locally with `/bin/sh -c`, with `fake` (a shell function standing
    /// in for sudo) defined first.
    fn run_local(fake: &str, w: &Wrapped, stdin: &[u8]) -> ExecOutput {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{fake}\n{}", w.command))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = w.stdin_prefix.clone().unwrap_or_default();
        input.extend_from_slice(stdin);
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let o = child.wait_with_output().unwrap();
        ExecOutput {
            stdout: o.stdout,
            stderr: o.stderr,
            exit_status: o.status.code().map(|c| c as u32),
            exit_signal: None,
        }
    }

    #[test]
    fn password_never_on_command_line() {
        let b = pw("hunter2");
        let w = b.wrap("id -u").unwrap();
        assert!(!w.command.contains("hunter2"));
        assert_eq!(
            w.stdin_prefix.as_deref(),
            Some(format!("hunter2\n{SENTINEL}\n").as_bytes())
        );
        assert!(!format!("{b:?}").contains("hunter2"));
        assert_eq!(format!("{}", Secret::new("hunter2")), "********");
        let p = su(Some("hunter2")).wrap_pty("id -u", Some(b"x"), "T0K");
        assert!(!p.command.contains("hunter2"));
    }

    #[test]
    fn nopasswd_uses_non_interactive() {
        let w = Become::default().wrap("id -u").unwrap();
        assert!(w.command.starts_with("sudo -H -n -u root -- /bin/sh -c "));
        assert!(w.stdin_prefix.is_none());
    }

    #[test]
    fn flags_and_exe() {
        // Ansible's default sudo flags: -n is dropped when a password is given.
        let b = Become {
            flags: Some("-H -S -n".into()),
            exe: Some("/usr/bin/sudo".into()),
            ..pw("x")
        };
        let w = b.wrap("true").unwrap();
        assert!(
            w.command.starts_with("/usr/bin/sudo -H -S -S -p "),
            "{}",
            w.command
        );
        assert!(!w.command.contains(" -n "), "{}", w.command);
        let b = Become {
            flags: Some("-l".into()),
            user: "bob".into(),
            ..su(None)
        };
        let w = b.wrap("true").unwrap();
        assert!(
            w.command.starts_with("su -l -s /bin/sh bob -c "),
            "{}",
            w.command
        );
    }

    /// The command gets exactly its own stdin whether or not sudo read the password (a
    /// NOPASSWD rule), and the stderr holds only the command's.
    #[test]
    fn password_line_never_reaches_the_command() {
        let b = pw("hunter2");
        let w = b.wrap("cat; echo err >&2").unwrap();
        // sudo that reads the password (one line, byte by byte as sudo does), prints a lecture
        // and its prompt first.
        let reads = "sudo() { printf 'lecture\\n[homelab-become-password]' >&2; \
                     IFS= read -r p; [ \"$p\" = hunter2 ] || exit 1; \
                     while [ \"$1\" != -- ]; do shift; done; shift; \"$@\"; }";
        // sudo with NOPASSWD: reads nothing.
        let nopasswd = "sudo() { while [ \"$1\" != -- ]; do shift; done; shift; \"$@\"; }";
        for fake in [reads, nopasswd] {
            let mut o = run_local(fake, &w, b"line1\nline2");
            b.unwrap_output(&mut o.stdout, &mut o.stderr).unwrap();
            assert_eq!(o.stdout, b"line1\nline2", "{fake}");
            assert_eq!(o.stderr, b"err\n", "{fake}");
        }
        // And without stdin at all.
        let w = b.wrap("cat | wc -c").unwrap();
        let mut o = run_local(nopasswd, &w, b"");
        b.unwrap_output(&mut o.stdout, &mut o.stderr).unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0");
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
        let mut err = b"[homelab-become-password]bob is not in the sudoers file.\n".to_vec();
        let e = unwrap_output(&mut out, &mut err).unwrap_err();
        assert!(matches!(e, BecomeError::NotAllowed(_)));
        assert!(
            e.to_string().contains("bob is not in the sudoers file.")
                && e.to_string().contains("/etc/sudoers.d"),
            "{e}"
        );
        let mut err =
            b"sudo: unknown user nobody2\nsudo: error initializing audit plugin sudoers_audit\n"
                .to_vec();
        let b = Become {
            user: "nobody2".into(),
            ..Default::default()
        };
        let e = b.unwrap_output(&mut out, &mut err).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot become user 'nobody2': no such user"),
            "{e}"
        );
    }

    #[test]
    fn su_refusals_are_classified_and_scrubbed() {
        let b = su(Some("s3cret"));
        assert!(matches!(
            b.classify("Password: \nsu: Authentication failure"),
            BecomeError::SuAuthFailure(_)
        ));
        assert!(matches!(
            su(None).classify("su: must be run from a terminal"),
            BecomeError::SuPasswordRequired(_)
        ));
        let e = Become {
            user: "ghost".into(),
            ..su(None)
        }
        .classify(
            "su: user ghost does not exist or the user entry does not contain all the required fields",
        );
        assert!(e.to_string().contains("cannot become user 'ghost'"), "{e}");
        let mut d = su(Some("s3cret")).wrap_pty("true", None, "TK").driver(&b);
        d.feed(b"Password: ");
        d.feed(b"s3cret\r\nsu: Authentication failure\r\n");
        let e = d.ended().to_string();
        assert!(
            !e.contains("s3cret") && e.contains("Authentication failure"),
            "{e}"
        );
    }

    #[test]
    fn prompts_are_detected() {
        assert!(is_password_prompt("Password: "));
        assert!(is_password_prompt("Password:"));
        assert!(is_password_prompt("motd line\r\nPasswort: "));
        assert!(is_password_prompt("Mot de passe : "));
        assert!(is_password_prompt("密码："));
        assert!(is_password_prompt("root's password:"));
        assert!(!is_password_prompt("su: "), "an unfinished error line");
        assert!(!is_password_prompt("Password: \r\n"), "already answered");
        assert!(!is_password_prompt("su: Authentication failure\n"));
        assert!(!is_password_prompt(""));
    }

    #[test]
    fn pipe_session_cuts_both_streams_at_the_marker() {
        let b = su(Some("pw"));
        let s = b.wrap_su_pipe("cat; echo e >&2", "TK5");
        assert!(
            s.command
                .starts_with("su -s /bin/sh root -c 'echo TK5 OK; echo TK5 OK >&2; cat"),
            "{}",
            s.command
        );
        let mut d = s.driver(&b);
        assert_eq!(d.stderr(b"Pass"), PtyStep::Wait);
        assert_eq!(d.stderr(b"word: "), PtyStep::SendPassword);
        assert_eq!(d.stderr(b"\n"), PtyStep::Wait);
        // The command's stderr may come before the stdout marker.
        assert_eq!(d.stderr(b"TK5 OK\ne\n"), PtyStep::Wait);
        assert_eq!(d.stdout(b"TK5 OK\nabc"), PtyStep::Escalated);
        assert_eq!(d.stdout(b"\x00\r\n"), PtyStep::Wait);
        let o = d.finish(Some(0), None).unwrap();
        assert_eq!(o.stdout, b"abc\x00\r\n", "exact bytes");
        assert_eq!(o.stderr, b"e\n");
        assert_eq!(o.exit_status, Some(0));
    }

    #[test]
    fn pipe_session_refusals() {
        let b = su(Some("s3cret"));
        let s = b.wrap_su_pipe("true", "TK6");
        let mut d = s.driver(&b);
        assert_eq!(d.stderr(b"Password: "), PtyStep::SendPassword);
        d.stderr(b"\nsu: Authentication failure\n");
        assert!(!d.wants_terminal());
        let e = d.finish(Some(1), None).unwrap_err();
        assert!(matches!(e, BecomeError::SuAuthFailure(_)), "{e}");
        // A su that wants a terminal: the PTY session takes over.
        let mut d = s.driver(&b);
        d.stderr(b"su: must be run from a terminal\n");
        assert!(d.wants_terminal());
        // An unknown user.
        let b = Become {
            user: "ghost".into(),
            ..su(Some("x"))
        };
        // (A one-letter password is scrubbed inside words too: the message stays safe.)
        let mut d = b.wrap_su_pipe("true", "TK7").driver(&b);
        d.stderr(b"su: user ghost does not exist or the user entry does not contain all the required fields\n");
        let e = d.finish(Some(1), None).unwrap_err().to_string();
        assert!(e.contains("cannot become user 'ghost'"), "{e}");
    }

    fn frame(tok: &str, out: &[u8], err: &[u8], rc: u32) -> Vec<u8> {
        // As the terminal shows it: \r\n line ends.
        format!(
            "{tok} O\r\n{}{tok} E\r\n{}{tok} R {rc}\r\n",
            base64_encode_lines(out).replace('\n', "\r\n"),
            base64_encode_lines(err).replace('\n', "\r\n")
        )
        .into_bytes()
    }

    #[test]
    fn pty_session_with_password_and_stdin() {
        let b = su(Some("pw"));
        let mut s = b.wrap_pty("cat", Some(b"hello\n"), "TK1");
        assert!(
            s.command.starts_with("su -s /bin/sh root -c "),
            "{}",
            s.command
        );
        assert!(
            s.command.contains("head -c 9 | base64 -d | ( eval cat )"),
            "{}",
            s.command
        );
        let mut d = s.driver(&b);
        assert_eq!(d.feed(b"Pass"), PtyStep::Wait);
        assert_eq!(d.feed(b"word: "), PtyStep::SendPassword);
        assert!(d.password_sent());
        assert_eq!(d.feed(b"\r\n"), PtyStep::Wait);
        assert_eq!(d.feed(b"TK1 O"), PtyStep::Wait, "a partial marker");
        assert_eq!(d.feed(b"K\r\n"), PtyStep::Escalated);
        // Output split anywhere, exact bytes (no \r added, binary kept), rc.
        let data: Vec<u8> = (0..=255u8).collect();
        let f = frame("TK1", &data, b"warn\n", 3);
        let (a, c) = f.split_at(17);
        assert_eq!(d.feed(a), PtyStep::Wait);
        match d.feed(c) {
            PtyStep::Done(o) => {
                assert_eq!(o.stdout, data);
                assert_eq!(o.stderr, b"warn\n");
                assert_eq!(o.exit_status, Some(3));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.take_input().as_deref(), Some(&b"aGVsbG8K\n"[..]));
    }

    #[test]
    fn pty_session_without_prompt_and_fast_result() {
        // Root needs no password: the marker and the whole result in one read.
        let b = su(Some("pw"));
        let s = b.wrap_pty("id -u", None, "TK2");
        assert!(
            s.command.contains("id -u") && s.command.contains("</dev/null"),
            "{}",
            s.command
        );
        let mut d = s.driver(&b);
        let mut all = b"TK2 OK\r\n".to_vec();
        all.extend(frame("TK2", b"0\n", b"", 0));
        match d.feed(&all) {
            PtyStep::Done(o) => assert_eq!((o.stdout.as_slice(), o.rc()), (&b"0\n"[..], 0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pty_session_failures() {
        let b = su(Some("pw"));
        let s = b.wrap_pty("true", None, "TK3");
        // A second prompt after the password.
        let mut d = s.driver(&b);
        assert_eq!(d.feed(b"Password: "), PtyStep::SendPassword);
        assert!(matches!(
            d.feed(
                b"\r\nYou are required to change your password immediately\r\nCurrent password: "
            ),
            PtyStep::Failed(BecomeError::Other(_))
        ));
        // The channel ends after the marker without a result.
        let mut d = s.driver(&b);
        assert_eq!(d.feed(b"TK3 OK\n"), PtyStep::Escalated);
        assert!(d.ended().to_string().contains("before reporting a result"));
        // No prompt in time.
        let mut d = s.driver(&b);
        d.feed(b"Welcome!\r\n");
        let e = d.no_prompt(10).to_string();
        assert!(e.contains("within 10 s") && e.contains("Welcome!"), "{e}");
        // The marker must be a whole line.
        let mut d = s.driver(&b);
        assert_eq!(d.feed(b"xTK3 OK\n"), PtyStep::Wait);
    }

    /// The su script runs for real (through a fake `su` that runs its -c text with sh; no
    /// terminal): stdin via base64, exact output bytes, stderr apart, rc, temp folder removed.
    #[test]
    fn pty_script_runs_in_a_shell() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let b = su(Some("pw"));
        let data = b"two\nlines without end".to_vec();
        let mut s = b.wrap_pty(
            "cat; printf 'e\\n' >&2; echo \"$d\" >&2; exit 4",
            Some(&data),
            "TK4",
        );
        let fake = "su() { while [ \"$1\" != -c ]; do shift; done; /bin/sh -c \"$2\"; }";
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{fake}\n{}", s.command))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // More than the input: head -c takes exactly the input's bytes.
        let mut input = s.take_input().unwrap();
        input.extend_from_slice(b"garbage after the input\n");
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let o = child.wait_with_output().unwrap();
        let mut d = s.driver(&b);
        let step = d.feed(&o.stdout);
        let out = match step {
            PtyStep::Done(out) => out,
            other => panic!("{other:?}: {}", String::from_utf8_lossy(&o.stdout)),
        };
        assert_eq!(out.stdout, data);
        assert_eq!(out.exit_status, Some(4));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let tmp = err.lines().nth(1).unwrap_or_default().trim().to_string();
        assert!(err.starts_with("e\n") && !tmp.is_empty(), "{err}");
        assert!(
            !std::path::Path::new(&tmp).exists(),
            "temp folder {tmp} left behind"
        );
    }
}
