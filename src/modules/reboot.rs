//! `reboot`: reboots a host and waits until it is back. Reads the boot id, issues the reboot
//! (detached, so the command returns before the connection drops), then reconnects with backoff
//! until the boot id has changed and `test_command` succeeds. The host's connection is reopened in
//! place, so later tasks use the new session; other hosts' connections are not touched.
//! Check mode reports the reboot and does nothing.

use super::core::{numish, Module, ModuleError, TaskCtx, TaskResult};
use crate::transport::{shell_quote, ExecRequest};
use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Seconds to wait for the host to come back and pass `test_command` (default 600).
    #[serde(default, deserialize_with = "numish::option")]
    pub reboot_timeout: Option<f64>,
    /// Seconds each connection attempt may take (default: the host's connect timeout).
    #[serde(default, deserialize_with = "numish::option")]
    pub connect_timeout: Option<f64>,
    #[serde(default, deserialize_with = "numish::option")]
    pub pre_reboot_delay: Option<f64>,
    #[serde(default, deserialize_with = "numish::option")]
    pub post_reboot_delay: Option<f64>,
    /// Run after the reboot until it succeeds (default `whoami`).
    pub test_command: Option<String>,
    /// Told to logged-in users.
    pub msg: Option<String>,
    /// Replaces the reboot command (e.g. `systemctl kexec`).
    pub reboot_command: Option<String>,
    /// Prints something that changes on every boot (default: the kernel's boot id).
    pub boot_time_command: Option<String>,
    /// Accepted for compatibility: homelab runs reboot commands from the PATH.
    #[serde(default)]
    pub search_paths: Option<serde_json::Value>,
}

pub struct Plan {
    boot_id: String,
}

const BOOT_ID: &str = "cat /proc/sys/kernel/random/boot_id";

impl Args {
    fn boot_cmd(&self) -> &str {
        self.boot_time_command.as_deref().unwrap_or(BOOT_ID)
    }

    /// The detached reboot: the command returns at once and the reboot starts a moment later, so
    /// the answer reaches us before sshd goes away.
    fn reboot_script(&self) -> String {
        let delay = self.pre_reboot_delay.unwrap_or(0.0).max(0.0);
        let msg = self.msg.as_deref().unwrap_or("Reboot initiated by homelab");
        let cmd = match &self.reboot_command {
            Some(c) => c.clone(),
            None => format!(
                "systemctl reboot --message={m} 2>/dev/null || systemctl reboot || shutdown -r now {m} || reboot",
                m = shell_quote(msg)
            ),
        };
        format!(
            "nohup sh -c {} >/dev/null 2>&1 </dev/null & echo HLREBOOT",
            shell_quote(&format!("sleep {}; {cmd}", delay + 1.0))
        )
    }
}

pub struct Reboot;

impl Module for Reboot {
    const NAME: &'static str = "reboot";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let out = ctx.exec(args.boot_cmd()).await?;
        let boot_id = out.stdout_str().trim().to_string();
        if !out.success() || boot_id.is_empty() {
            return Err(ModuleError::Failed(format!(
                "cannot read the boot id with '{}' (rc={}): {}",
                args.boot_cmd(),
                out.rc(),
                out.stderr_str().trim()
            )));
        }
        Ok(Plan { boot_id })
    }

    fn describe(ctx: &TaskCtx<'_>, _args: &Args, _plan: &Plan) -> TaskResult {
        let r = TaskResult::changed(true).with("rebooted", true);
        if ctx.check {
            r.msg("would reboot the host and wait for it to come back")
        } else {
            r
        }
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        args: &Args,
        plan: Plan,
        described: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let started = Instant::now();
        let timeout = Duration::from_secs_f64(args.reboot_timeout.unwrap_or(600.0).max(1.0));
        let deadline = started + timeout;
        // The reboot command: its answer may be lost if the host goes down fast, which is fine.
        match ctx.exec(args.reboot_script()).await {
            Ok(o) if !o.success() && !o.stdout_str().contains("HLREBOOT") => {
                return Err(ModuleError::Failed(format!(
                    "the reboot command failed (rc={}): {}",
                    o.rc(),
                    o.stderr_str().trim()
                )))
            }
            _ => {}
        }
        // Wait for a new boot id: probing too early reaches the old system still going down.
        let attempt_timeout = args.connect_timeout.map(Duration::from_secs_f64);
        let mut wait = Duration::from_millis(500);
        let mut last_error = String::from("the host did not answer");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let new_boot = loop {
            if Instant::now() >= deadline {
                return Err(ModuleError::Failed(format!(
                    "{}: the host did not come back within {} s after the reboot (last: {last_error})",
                    ctx.host,
                    timeout.as_secs()
                )));
            }
            match probe_boot(ctx, args, attempt_timeout).await {
                Ok(id) if id != plan.boot_id => break id,
                Ok(_) => last_error = "the boot id has not changed yet".into(),
                Err(e) => {
                    last_error = e;
                    let left = deadline.saturating_duration_since(Instant::now());
                    let reconnect = ctx.conn.reconnect();
                    match attempt_timeout {
                        Some(t) => {
                            if let Ok(Err(e)) = tokio::time::timeout(t.min(left), reconnect).await {
                                last_error = e.to_string();
                            }
                        }
                        None => {
                            if let Ok(Err(e)) = tokio::time::timeout(left, reconnect).await {
                                last_error = e.to_string();
                            }
                        }
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        };
        // The system is up; it may still be starting services.
        if let Some(d) = args.post_reboot_delay.filter(|d| *d > 0.0) {
            tokio::time::sleep(Duration::from_secs_f64(d)).await;
        }
        let test = args.test_command.as_deref().unwrap_or("whoami");
        loop {
            match ctx.exec(test).await {
                Ok(o) if o.success() => break,
                Ok(o) => last_error = format!("rc={}: {}", o.rc(), o.stderr_str().trim()),
                Err(e) => last_error = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(ModuleError::Failed(format!(
                    "{}: test_command '{test}' did not succeed within {} s after the reboot ({last_error})",
                    ctx.host,
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(described
            .with("elapsed", started.elapsed().as_secs())
            .with("boot_id_before", plan.boot_id)
            .with("boot_id_after", new_boot))
    }
}

/// Reads the boot id over the current connection (with become if the task has it).
async fn probe_boot(
    ctx: &TaskCtx<'_>,
    args: &Args,
    limit: Option<Duration>,
) -> Result<String, String> {
    let mut req = ExecRequest::new(args.boot_cmd());
    req.become_ = ctx.become_.cloned();
    let limit = limit.unwrap_or(Duration::from_secs(10));
    req.timeout = Some(limit);
    // A connection to a host that went away may not notice for a while: bound the whole attempt.
    match tokio::time::timeout(limit, ctx.conn.exec(&req)).await {
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
        Ok(Ok(o)) if o.success() && !o.stdout_str().trim().is_empty() => {
            Ok(o.stdout_str().trim().to_string())
        }
        Ok(Ok(o)) => Err(format!("rc={}: {}", o.rc(), o.stderr_str().trim())),
        Ok(Err(e)) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn numbers_as_strings_and_unknown_keys() {
        let a = args(serde_json::json!({"reboot_timeout": "30", "pre_reboot_delay": 2}));
        assert_eq!(a.reboot_timeout, Some(30.0));
        assert!(serde_json::from_value::<Args>(serde_json::json!({"reboot_timout": 3})).is_err());
        assert!(
            serde_json::from_value::<Args>(serde_json::json!({"reboot_timeout": "soon"})).is_err()
        );
    }

    #[test]
    fn the_reboot_is_detached_and_delayed() {
        let s =
            args(serde_json::json!({"pre_reboot_delay": 3, "msg": "kernel 6.1"})).reboot_script();
        assert!(
            s.starts_with("nohup sh -c 'sleep 4; systemctl reboot"),
            "{s}"
        );
        assert!(
            s.contains("kernel 6.1") && s.ends_with("& echo HLREBOOT"),
            "{s}"
        );
        let s = args(serde_json::json!({"reboot_command": "systemctl kexec"})).reboot_script();
        assert!(s.contains("sleep 1; systemctl kexec"), "{s}");
    }
}
