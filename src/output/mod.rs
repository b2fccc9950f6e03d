//! Output: per-host result lines (Ansible's ad-hoc shape), colour on a terminal, plain otherwise.

pub mod play;

use crate::modules::Outcome;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// One host's result, ready to print.
#[derive(Debug, Clone)]
pub struct HostLine {
    pub host: String,
    pub kind: LineKind,
    pub connect: Option<Duration>,
    pub command: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum LineKind {
    Unreachable(String),
    Done(Outcome),
}

impl HostLine {
    pub fn unreachable(host: String, why: String) -> Self {
        HostLine {
            host,
            kind: LineKind::Unreachable(why),
            connect: None,
            command: None,
        }
    }

    pub fn done(host: String, o: Outcome, connect: Duration, command: Duration) -> Self {
        HostLine {
            host,
            kind: LineKind::Done(o),
            connect: Some(connect),
            command: Some(command),
        }
    }

    pub fn is_failure(&self) -> bool {
        matches!(
            self.kind,
            LineKind::Unreachable(_) | LineKind::Done(Outcome::Failed { .. })
        )
    }
}

pub struct Printer {
    color: bool,
    verbose: u8,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

impl Printer {
    pub fn new(verbose: u8) -> Self {
        Printer {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            verbose,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn note(&self, host: &str, msg: &str) {
        if self.verbose > 0 {
            eprintln!("{host} | note | {msg}");
        }
    }

    /// Prints one host's result (stdout, one block so parallel hosts never interleave).
    pub fn host(&self, l: &HostLine) {
        let mut s = String::new();
        match &l.kind {
            LineKind::Unreachable(why) => {
                s.push_str(&self.paint("31", &format!("{} | UNREACHABLE! | {why}", l.host)));
            }
            LineKind::Done(o) => {
                let (label, color, result, extra) = match o {
                    Outcome::Ok {
                        changed: true,
                        result,
                    } => ("CHANGED", "33", Some(result), None),
                    Outcome::Ok {
                        changed: false,
                        result,
                    } => ("SUCCESS", "32", Some(result), None),
                    Outcome::Failed { msg, result } => ("FAILED", "31", Some(result), Some(msg)),
                    Outcome::Skipped { msg } => ("SKIPPED", "36", None, Some(msg)),
                };
                let mut head = format!("{} | {label}", l.host);
                if let Some(r) = result {
                    if let Some(rc) = r.rc {
                        head.push_str(&format!(" | rc={rc}"));
                    }
                }
                if let (Some(c), Some(cmd)) = (l.connect, l.command) {
                    head.push_str(&format!(
                        " | {} (connect {}, command {})",
                        ms(c + cmd),
                        ms(c),
                        ms(cmd)
                    ));
                }
                if let Some(m) = extra {
                    head.push_str(&format!(" | {m}"));
                }
                s.push_str(&self.paint(color, &head));
                if let Some(r) = result {
                    let body: Vec<&str> = [
                        r.msg.as_deref(),
                        Some(r.stdout.as_str()),
                        Some(r.stderr.as_str()),
                    ]
                    .into_iter()
                    .flatten()
                    .filter(|t| !t.is_empty())
                    .collect();
                    let quiet_pong = r.msg.as_deref() == Some("pong") && self.verbose == 0;
                    if !body.is_empty() && !quiet_pong {
                        s.push_str(" >>\n");
                        s.push_str(&body.join("\n"));
                    }
                }
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    }

    pub fn summary(&self, ok: usize, failed: usize) {
        let line = format!("{ok} ok, {failed} failed");
        let line = if failed > 0 {
            self.paint("31", &line)
        } else {
            self.paint("32", &line)
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}
