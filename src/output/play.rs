//! Playbook output: Ansible's shape (PLAY/TASK headers, `ok: [host]`, diffs, the recap), colour
//! and a progress line on a terminal, plain lines otherwise, or one JSON event per line.

use crate::modules::core::{FileDiff, TaskResult};
use indexmap::IndexMap;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Changed,
    Failed,
    /// Failed, but `ignore_errors` let the host go on.
    Ignored,
    Skipped,
    Unreachable,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Ignored => "failed",
            Status::Skipped => "skipping",
            Status::Unreachable => "unreachable",
        }
    }
    fn color(self) -> &'static str {
        match self {
            Status::Ok => "32",
            Status::Changed => "33",
            Status::Failed | Status::Unreachable => "31",
            Status::Ignored => "36",
            Status::Skipped => "36",
        }
    }
}

/// Per-host counts for the recap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

/// Text of a unified diff with 3 lines of context and `before: PATH` / `after: PATH` headers.
pub fn unified(d: &FileDiff) -> String {
    if let Some(note) = &d.skipped {
        return format!(
            "--- before: {}\n+++ after: {}\n{note}\n",
            d.before_header, d.after_header
        );
    }
    let diff = similar::TextDiff::from_lines(&d.before, &d.after);
    let mut out = diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("before: {}", d.before_header),
            &format!("after: {}", d.after_header),
        )
        .to_string();
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    out
}

pub struct Printer {
    format: Format,
    color: bool,
    show_diff: bool,
    verbose: u8,
    progress: Mutex<Option<ProgressBar>>,
}

const CENSORED: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

impl Printer {
    pub fn new(format: Format, show_diff: bool, verbose: u8) -> Printer {
        let tty = std::io::stdout().is_terminal();
        Printer {
            format,
            color: tty && std::env::var_os("NO_COLOR").is_none() && format == Format::Text,
            show_diff,
            verbose,
            progress: Mutex::new(None),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn emit(&self, text: &str) {
        let guard = self.progress.lock().ok();
        match guard.as_ref().and_then(|g| g.as_ref()) {
            Some(pb) => pb.suspend(|| {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        }
    }

    fn event(&self, v: Value) {
        self.emit(&format!("{v}\n"));
    }

    fn banner(&self, head: &str) -> String {
        let stars = 79usize.saturating_sub(head.len() + 1).max(3);
        format!("\n{head} {}\n", "*".repeat(stars))
    }

    pub fn play_start(&self, name: &str, hosts: &[String]) {
        match self.format {
            Format::Json => {
                self.event(json!({"event": "play_start", "play": name, "hosts": hosts}))
            }
            Format::Text => self.emit(&self.banner(&format!("PLAY [{name}]"))),
        }
    }

    /// A task begins on `hosts` hosts (the progress line counts them down on a terminal).
    pub fn task_start(&self, name: &str, hosts: usize, handler: bool) {
        match self.format {
            Format::Json => {
                self.event(json!({"event": "task_start", "task": name, "handler": handler}))
            }
            Format::Text => {
                let kind = if handler { "RUNNING HANDLER" } else { "TASK" };
                self.emit(&self.banner(&format!("{kind} [{name}]")));
                if self.color {
                    let pb = ProgressBar::new(hosts as u64);
                    pb.set_style(
                        ProgressStyle::with_template("  {spinner} {pos}/{len} hosts {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.enable_steady_tick(Duration::from_millis(120));
                    if let Ok(mut g) = self.progress.lock() {
                        *g = Some(pb);
                    }
                }
            }
        }
    }

    pub fn task_end(&self) {
        if let Ok(mut g) = self.progress.lock() {
            if let Some(pb) = g.take() {
                pb.finish_and_clear();
            }
        }
    }

    /// One host's result for the current task (`item` when in a loop).
    #[allow(clippy::too_many_arguments)]
    pub fn host_result(
        &self,
        host: &str,
        task: &str,
        action: &str,
        status: Status,
        result: &TaskResult,
        item: Option<&str>,
        no_log: bool,
        took: Duration,
    ) {
        if let Ok(g) = self.progress.lock() {
            if let Some(pb) = g.as_ref() {
                if item.is_none() {
                    pb.inc(1);
                }
            }
        }
        match self.format {
            Format::Json => {
                let mut r = if no_log {
                    json!({"censored": CENSORED, "changed": result.changed})
                } else {
                    result.to_value()
                };
                if let Value::Object(m) = &mut r {
                    m.remove("diff");
                }
                let diff: Vec<Value> = if no_log || !self.show_diff {
                    vec![]
                } else {
                    result
                        .diff
                        .iter()
                        .map(|d| {
                            json!({"before_header": d.before_header, "after_header": d.after_header,
                                   "unified": unified(d)})
                        })
                        .collect()
                };
                self.event(json!({
                    "event": "task_result", "host": host, "task": task, "action": action,
                    "status": format!("{status:?}").to_lowercase(), "changed": result.changed,
                    "item": item, "duration_ms": took.as_millis() as u64,
                    "diff": diff, "result": r,
                }));
            }
            Format::Text => {
                let mut s = String::new();
                if self.show_diff && !no_log && status != Status::Skipped {
                    for d in &result.diff {
                        s.push_str(&unified(d));
                    }
                }
                let label = match item {
                    Some(i) => format!("{}: [{host}] => (item={i})", status.word()),
                    None => format!("{}: [{host}]", status.word()),
                };
                let mut line = label;
                let detail = if no_log {
                    (status == Status::Failed || status == Status::Ignored)
                        .then(|| CENSORED.to_string())
                } else {
                    self.detail(status, result)
                };
                if let Some(d) = detail {
                    line.push_str(" => ");
                    line.push_str(&d);
                }
                s.push_str(&self.paint(status.color(), &line));
                s.push('\n');
                if status == Status::Ignored {
                    s.push_str(&self.paint("36", "...ignoring"));
                    s.push('\n');
                }
                // A module's warnings (Ansible's `warnings` result field), as Ansible prints them.
                if let (false, Some(Value::Array(ws))) = (no_log, result.data.get("warnings")) {
                    for w in ws.iter().filter_map(Value::as_str) {
                        s.push_str(&self.paint("35", &format!("[WARNING]: {w}")));
                        s.push('\n');
                    }
                }
                self.emit(&s);
            }
        }
    }

    fn detail(&self, status: Status, r: &TaskResult) -> Option<String> {
        match status {
            Status::Failed | Status::Ignored | Status::Unreachable => {
                let mut parts = vec![];
                if let Some(m) = &r.msg {
                    parts.push(m.clone());
                }
                for k in ["rc", "stdout", "stderr"] {
                    match r.data.get(k) {
                        Some(Value::String(s)) if !s.is_empty() => parts.push(format!("{k}: {s}")),
                        Some(Value::Number(n)) => parts.push(format!("{k}={n}")),
                        _ => {}
                    }
                }
                Some(parts.join("\n"))
            }
            _ if self.verbose > 0 => {
                let mut v = r.to_value();
                if let Value::Object(m) = &mut v {
                    m.remove("diff");
                }
                serde_json::to_string_pretty(&v).ok()
            }
            _ => r.data.get("_debug").map(|d| match d {
                Value::String(s) => s.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            }),
        }
    }

    /// A note shown with -v (an event in JSON output).
    pub fn info(&self, msg: &str) {
        match self.format {
            Format::Json => self.event(json!({"event": "info", "msg": msg})),
            Format::Text if self.verbose > 0 => self.emit(&format!("{msg}\n")),
            Format::Text => {}
        }
    }

    pub fn warn(&self, msg: &str) {
        match self.format {
            Format::Json => self.event(json!({"event": "warning", "msg": msg})),
            Format::Text => {
                let line = self.paint("35", &format!("[WARNING]: {msg}"));
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    pub fn recap(&self, stats: &IndexMap<String, Stats>) {
        match self.format {
            Format::Json => self.event(json!({"event": "recap", "stats": stats})),
            Format::Text => {
                let mut s = self.banner("PLAY RECAP");
                let width = stats.keys().map(|h| h.len()).max().unwrap_or(0).max(26);
                for (h, st) in stats {
                    let color = if st.failed > 0 || st.unreachable > 0 {
                        "31"
                    } else if st.changed > 0 {
                        "33"
                    } else {
                        "32"
                    };
                    s.push_str(&format!(
                        "{} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={}\n",
                        self.paint(color, &format!("{h:<width$}")),
                        st.ok, st.changed, st.unreachable, st.failed, st.skipped, st.rescued, st.ignored
                    ));
                }
                self.emit(&s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_has_ansible_headers_and_context() {
        let before: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        let after = before.replace("line 5\n", "line five\n");
        let d = FileDiff {
            before_header: "/etc/x".into(),
            after_header: "/etc/x".into(),
            before,
            after,
            skipped: None,
        };
        let u = unified(&d);
        assert!(
            u.starts_with("--- before: /etc/x\n+++ after: /etc/x\n@@ -2,7 +2,7 @@\n"),
            "{u}"
        );
        assert!(u.contains("-line 5\n+line five\n"), "{u}");
        assert!(
            !u.contains("line 1\n") && !u.contains("line 9\n"),
            "3 lines of context: {u}"
        );
    }
}
