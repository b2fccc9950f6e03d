//! `command`, `shell` and `raw`: run a command on the host.
//!
//! - `command`: the words are passed as they are (no variables, pipes or redirections), like
//!   Ansible's command module: each word is quoted before it reaches the remote shell.
//! - `shell`: the text runs under `/bin/sh -c` (or `executable=`), pipes and all.
//! - `raw`: the text goes to the login shell untouched (no chdir/creates/removes).
//!
//! `chdir=`, `creates=`, `removes=`, `stdin=` (and `executable=` for shell) may appear anywhere in
//! the free-form text, as in Ansible. The checks run on the host in the same round trip as the
//! command.

use super::{ModuleError, ModuleResult, Outcome};
use crate::transport::{shell_quote, Become, Connection, ExecRequest, TransportError};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Command,
    Shell,
    Raw,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Command => "command",
            Kind::Shell => "shell",
            Kind::Raw => "raw",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandArgs {
    pub kind: Kind,
    /// For `command`: the words. For shell/raw: one element, the text.
    pub argv: Vec<String>,
    pub chdir: Option<String>,
    pub creates: Option<String>,
    pub removes: Option<String>,
    pub stdin: Option<String>,
    pub executable: Option<String>,
}

const SKIP: &str = "HOMELAB-SKIP:";

impl CommandArgs {
    /// Parses Ansible's free-form text.
    pub fn parse(kind: Kind, text: &str) -> Result<CommandArgs, ModuleError> {
        let err = |msg: String| ModuleError::Args {
            module: kind.name().into(),
            msg,
        };
        let mut a = CommandArgs {
            kind,
            argv: vec![],
            chdir: None,
            creates: None,
            removes: None,
            stdin: None,
            executable: None,
        };
        if kind == Kind::Raw {
            if text.trim().is_empty() {
                return Err(err("no command given: pass it with -a 'COMMAND'".into()));
            }
            a.argv = vec![text.to_string()];
            return Ok(a);
        }
        let words = shlex::split(text)
            .ok_or_else(|| err(format!("cannot split '{text}': unbalanced quotes?")))?;
        let mut rest = Vec::new();
        for w in words {
            let taken = match w.split_once('=') {
                Some(("chdir", v)) => a.chdir.replace(v.into()).is_none(),
                Some(("creates", v)) => a.creates.replace(v.into()).is_none(),
                Some(("removes", v)) => a.removes.replace(v.into()).is_none(),
                Some(("stdin", v)) => a.stdin.replace(v.into()).is_none(),
                Some(("executable", v)) if kind == Kind::Shell => {
                    a.executable.replace(v.into()).is_none()
                }
                _ => false,
            };
            if !taken {
                rest.push(w);
            }
        }
        if rest.is_empty() {
            return Err(err("no command given: pass it with -a 'COMMAND'".into()));
        }
        a.argv = match kind {
            Kind::Command => rest,
            // Shell text keeps its own quoting: take it minus the recognised key=value words.
            _ => vec![strip_params(text)],
        };
        Ok(a)
    }

    /// The script sent to the host.
    pub fn script(&self) -> String {
        let body = match self.kind {
            Kind::Raw => return self.argv.join(" "),
            Kind::Command => self
                .argv
                .iter()
                .map(|w| shell_quote(w))
                .collect::<Vec<_>>()
                .join(" "),
            Kind::Shell => format!(
                "{} -c {}",
                shell_quote(self.executable.as_deref().unwrap_or("/bin/sh")),
                shell_quote(&self.argv.join(" "))
            ),
        };
        let mut s = String::new();
        if let Some(c) = &self.creates {
            let q = shell_quote(c);
            s.push_str(&format!(
                "if [ -e {q} ]; then echo {}; exit 0; fi\n",
                shell_quote(&format!("{SKIP}{c} exists"))
            ));
        }
        if let Some(r) = &self.removes {
            let q = shell_quote(r);
            s.push_str(&format!(
                "if [ ! -e {q} ]; then echo {}; exit 0; fi\n",
                shell_quote(&format!("{SKIP}{r} does not exist"))
            ));
        }
        if let Some(d) = &self.chdir {
            let q = shell_quote(d);
            s.push_str(&format!(
                "cd {q} || {{ echo \"homelab: cannot change directory to \"{q} >&2; exit 1; }}\n"
            ));
        }
        s.push_str(&body);
        s
    }

    pub async fn run(
        &self,
        conn: &Connection,
        become_: Option<&Become>,
    ) -> Result<Outcome, TransportError> {
        let mut req = ExecRequest::new(self.script());
        req.become_ = become_.cloned();
        req.stdin = self.stdin.as_ref().map(|s| format!("{s}\n").into_bytes());
        let out = conn.exec(&req).await?;
        let stdout = out.stdout_str();
        if let Some(why) = stdout.strip_prefix(SKIP) {
            return Ok(Outcome::Ok {
                changed: false,
                result: ModuleResult {
                    msg: Some(format!("skipped, since {}", why.trim_end())),
                    rc: Some(0),
                    ..Default::default()
                },
            });
        }
        let result = ModuleResult {
            stdout: stdout.trim_end_matches('\n').to_string(),
            stderr: out.stderr_str().trim_end_matches('\n').to_string(),
            rc: Some(out.rc()),
            msg: None,
        };
        if out.success() {
            Ok(Outcome::Ok {
                changed: true,
                result,
            })
        } else {
            let msg = match (&out.exit_signal, out.rc()) {
                (Some(sig), _) => format!("killed by signal {sig}"),
                (None, 127) => "command not found (rc=127)".into(),
                (None, rc) => format!("non-zero return code {rc}"),
            };
            Ok(Outcome::Failed { msg, result })
        }
    }
}

/// Removes `chdir=`, `creates=`, ... words from shell text, keeping the rest as written.
fn strip_params(text: &str) -> String {
    let mut out = Vec::new();
    for w in text.split(' ') {
        let key = w.split_once('=').map(|(k, _)| k);
        if matches!(
            key,
            Some("chdir" | "creates" | "removes" | "stdin" | "executable")
        ) && !w.contains(['\'', '"'])
        {
            continue;
        }
        out.push(w);
    }
    out.join(" ").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalConnection;

    #[test]
    fn free_form_params_are_picked_out() {
        let a = CommandArgs::parse(Kind::Command, "ls -l 'a b' chdir=/tmp creates=/x").unwrap();
        assert_eq!(a.argv, ["ls", "-l", "a b"]);
        assert_eq!(a.chdir.as_deref(), Some("/tmp"));
        assert_eq!(a.creates.as_deref(), Some("/x"));
        assert!(CommandArgs::parse(Kind::Command, "chdir=/tmp").is_err());
        assert!(CommandArgs::parse(Kind::Command, "echo 'unbalanced").is_err());
    }

    #[tokio::test]
    async fn command_does_not_use_a_shell_but_shell_does() {
        let c = Connection::Local(LocalConnection::new("t"));
        let a = CommandArgs::parse(Kind::Command, "echo $HOME | x").unwrap();
        match a.run(&c, None).await.unwrap() {
            Outcome::Ok { result, changed } => {
                assert!(changed);
                assert_eq!(result.stdout, "$HOME | x");
            }
            o => panic!("{o:?}"),
        }
        let a = CommandArgs::parse(Kind::Shell, "echo a | tr a b").unwrap();
        match a.run(&c, None).await.unwrap() {
            Outcome::Ok { result, .. } => assert_eq!(result.stdout, "b"),
            o => panic!("{o:?}"),
        }
    }

    #[tokio::test]
    async fn creates_removes_chdir_and_failure() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().display().to_string();
        let c = Connection::Local(LocalConnection::new("t"));
        let a = CommandArgs::parse(Kind::Shell, &format!("touch x creates={p}")).unwrap();
        match a.run(&c, None).await.unwrap() {
            Outcome::Ok { changed, result } => {
                assert!(!changed);
                assert!(result.msg.unwrap_or_default().contains("exists"));
            }
            o => panic!("{o:?}"),
        }
        let a = CommandArgs::parse(Kind::Command, &format!("pwd chdir={p}")).unwrap();
        match a.run(&c, None).await.unwrap() {
            Outcome::Ok { result, .. } => assert_eq!(result.stdout, p),
            o => panic!("{o:?}"),
        }
        let a = CommandArgs::parse(Kind::Shell, "echo oops >&2; exit 4").unwrap();
        match a.run(&c, None).await.unwrap() {
            Outcome::Failed { msg, result } => {
                assert_eq!(result.rc, Some(4));
                assert_eq!(result.stderr, "oops");
                assert!(msg.contains('4'));
            }
            o => panic!("{o:?}"),
        }
    }
}

/// Playbook arguments of command/shell/raw (free-form text arrives as `_raw_params`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayArgs {
    #[serde(rename = "_raw_params")]
    pub raw_params: Option<String>,
    pub cmd: Option<String>,
    pub argv: Option<Vec<String>>,
    pub chdir: Option<String>,
    pub creates: Option<String>,
    pub removes: Option<String>,
    pub stdin: Option<String>,
    #[serde(default = "yes", with = "super::core::boolish")]
    pub stdin_add_newline: bool,
    #[serde(default = "yes", with = "super::core::boolish")]
    pub strip_empty_ends: bool,
    pub executable: Option<String>,
    #[serde(default, with = "super::core::boolish::option")]
    pub expand_argument_vars: Option<bool>,
}

fn yes() -> bool {
    true
}

impl PlayArgs {
    fn to_command(&self, kind: Kind) -> Result<CommandArgs, super::core::ModuleError> {
        let err = |msg: &str| super::core::ModuleError::Failed(msg.to_string());
        let text = self.raw_params.clone().or(self.cmd.clone());
        let argv = match (kind, &self.argv, text) {
            (Kind::Command, Some(a), None) => a.clone(),
            (Kind::Command, None, Some(t)) => shlex::split(&t)
                .ok_or_else(|| err("cannot split the command: unbalanced quotes?"))?,
            (_, None, Some(t)) => vec![t],
            (_, Some(_), Some(_)) => {
                return Err(err("argv and a command line are mutually exclusive"))
            }
            (_, _, None) => return Err(err("no command given")),
        };
        if argv.is_empty() || argv.iter().all(|a| a.trim().is_empty()) {
            return Err(err("no command given"));
        }
        Ok(CommandArgs {
            kind,
            argv,
            chdir: self.chdir.clone(),
            creates: if kind == Kind::Raw {
                None
            } else {
                self.creates.clone()
            },
            removes: if kind == Kind::Raw {
                None
            } else {
                self.removes.clone()
            },
            stdin: self.stdin.clone(),
            executable: self.executable.clone(),
        })
    }
}

pub struct CmdPlan {
    cmd: CommandArgs,
    /// Why the command will not run (`creates`/`removes`), found by the probe.
    skip: Option<String>,
}

async fn cmd_plan(
    ctx: &super::core::TaskCtx<'_>,
    a: &PlayArgs,
    kind: Kind,
) -> Result<CmdPlan, super::core::ModuleError> {
    let cmd = a.to_command(kind)?;
    let mut checks = vec![];
    if let Some(c) = &cmd.creates {
        checks.push(format!("if [ -e {} ]; then echo HLC; fi", shell_quote(c)));
    }
    if let Some(r) = &cmd.removes {
        checks.push(format!("if [ ! -e {} ]; then echo HLR; fi", shell_quote(r)));
    }
    let mut skip = None;
    if !checks.is_empty() {
        let out = ctx.exec(checks.join("; ")).await?;
        let s = out.stdout_str();
        if s.contains("HLC") {
            skip = Some(format!(
                "Did not run command since '{}' exists",
                cmd.creates.clone().unwrap_or_default()
            ));
        } else if s.contains("HLR") {
            skip = Some(format!(
                "Did not run command since '{}' does not exist",
                cmd.removes.clone().unwrap_or_default()
            ));
        }
    }
    Ok(CmdPlan { cmd, skip })
}

fn cmd_describe(p: &CmdPlan) -> super::core::TaskResult {
    let cmd_text = p.cmd.argv.join(" ");
    match &p.skip {
        Some(why) => super::core::TaskResult::changed(false)
            .msg(why.clone())
            .with("rc", 0)
            .with("cmd", cmd_text)
            .with("stdout", format!("skipped, since {}", why))
            .with("stdout_lines", Value::Array(vec![]))
            .with("stderr", "")
            .with("stderr_lines", Value::Array(vec![])),
        // What check mode can say without running it: it would run (and so report changed).
        None => super::core::TaskResult::changed(true)
            .msg("Command would have run if not in check mode")
            .with("cmd", cmd_text)
            .with("check_mode_unknown", true),
    }
}

fn strip_ends(s: &str, strip: bool) -> String {
    if strip {
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        s.to_string()
    }
}

async fn cmd_apply(
    ctx: &super::core::TaskCtx<'_>,
    a: &PlayArgs,
    p: CmdPlan,
) -> Result<super::core::TaskResult, super::core::ModuleError> {
    let stdin = p.cmd.stdin.as_ref().map(|s| {
        if a.stdin_add_newline {
            format!("{s}\n").into_bytes()
        } else {
            s.clone().into_bytes()
        }
    });
    let start = std::time::Instant::now();
    let out = ctx.exec_with(p.cmd.script(), stdin).await?;
    let stdout = out.stdout_str();
    if let Some(why) = stdout.strip_prefix(SKIP) {
        // The creates/removes state changed between probe and run.
        return Ok(super::core::TaskResult::changed(false)
            .msg(format!("skipped, since {}", why.trim_end()))
            .with("rc", 0));
    }
    let so = strip_ends(&stdout, a.strip_empty_ends);
    let se = strip_ends(&out.stderr_str(), a.strip_empty_ends);
    let lines = |s: &str| Value::Array(s.lines().map(|l| Value::String(l.to_string())).collect());
    let mut r = super::core::TaskResult::changed(true)
        .with("cmd", p.cmd.argv.join(" "))
        .with("rc", out.rc())
        .with("stdout_lines", lines(&so))
        .with("stderr_lines", lines(&se))
        .with("stdout", so)
        .with("stderr", se)
        .with("delta", format!("{:.6}", start.elapsed().as_secs_f64()));
    if !out.success() {
        r.failed = true;
        r.msg = Some(match (&out.exit_signal, out.rc()) {
            (Some(sig), _) => format!("killed by signal {sig}"),
            (None, 127) => "command not found (rc=127)".into(),
            (None, rc) => format!("non-zero return code {rc}"),
        });
    }
    Ok(r)
}

macro_rules! command_module {
    ($ty:ident, $name:literal, $kind:expr) => {
        pub struct $ty;
        impl super::core::Module for $ty {
            const NAME: &'static str = $name;
            type Args = PlayArgs;
            type Plan = CmdPlan;
            async fn plan(
                ctx: &super::core::TaskCtx<'_>,
                a: &PlayArgs,
            ) -> Result<CmdPlan, super::core::ModuleError> {
                cmd_plan(ctx, a, $kind).await
            }
            fn describe(
                _ctx: &super::core::TaskCtx<'_>,
                _a: &PlayArgs,
                p: &CmdPlan,
            ) -> super::core::TaskResult {
                cmd_describe(p)
            }
            async fn apply(
                ctx: &super::core::TaskCtx<'_>,
                a: &PlayArgs,
                p: CmdPlan,
                _d: super::core::TaskResult,
            ) -> Result<super::core::TaskResult, super::core::ModuleError> {
                cmd_apply(ctx, a, p).await
            }
        }
    };
}

command_module!(Command, "command", Kind::Command);
command_module!(Shell, "shell", Kind::Shell);
command_module!(Raw, "raw", Kind::Raw);
