//! `timezone` (community.general.timezone): the system time zone. One probe reads the
//! `/etc/localtime` link, `/etc/timezone` (Debian) and whether the zone exists in
//! `/usr/share/zoneinfo`. Apply swaps the `/etc/localtime` link atomically (a new link renamed
//! over it; `timedatectl` reads that link, so it agrees; `timedatectl set-timezone` itself was
//! seen to answer success in systemd-nspawn containers while the link stayed as it was) and writes
//! `/etc/timezone`, where the host has one, atomically with a diff. An unknown zone fails and
//! changes nothing.

use super::core::{Module, ModuleError, TaskCtx, TaskResult};
use super::remote::state_diff;
use super::sysutil::{overlay, parse_text, text_probe, FileEdit};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
    /// Accepted for compatibility; the hardware clock is not changed.
    #[serde(default)]
    pub hwclock: Option<String>,
}

pub const ZONEINFO: &str = "/usr/share/zoneinfo";
pub const TIMEZONE_FILE: &str = "/etc/timezone";

/// A zone name as tz spells them (`Europe/Berlin`, `Etc/GMT+5`, `UTC`).
pub fn valid_zone(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('/')
        && !n.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b))
}

/// The zone an `/etc/localtime` link points at (`../usr/share/zoneinfo/Etc/UTC` → `Etc/UTC`).
pub fn zone_of_link(target: &str) -> Option<String> {
    target
        .split_once("zoneinfo/")
        .map(|(_, z)| z.to_string())
        .filter(|z| !z.is_empty())
}

pub struct Plan {
    /// The zone now (from the link, else /etc/timezone).
    current: Option<String>,
    link_ok: bool,
    file: Option<FileEdit>,
}

pub struct Timezone;

impl Module for Timezone {
    const NAME: &'static str = "timezone";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let name = a.name.trim();
        if !valid_zone(name) {
            return Err(ModuleError::Failed(format!(
                "'{}' is not a time zone name (e.g. Europe/Berlin, Etc/UTC)",
                a.name
            )));
        }
        let zone = shell_quote(&format!("{ZONEINFO}/{name}"));
        let script = format!(
            "[ -f {zone} ] && echo HLZONE; \
             [ -L /etc/localtime ] && printf 'HLLINK %s\\n' \"$(readlink /etc/localtime)\"; {}",
            text_probe(0, TIMEZONE_FILE)
        );
        let out = ctx.exec(script).await?.stdout_str();
        if !out.lines().any(|l| l == "HLZONE") {
            return Err(ModuleError::Failed(format!(
                "unknown time zone '{name}' on {}: there is no {ZONEINFO}/{name}. Check the name \
                 (timedatectl list-timezones), or install tzdata",
                ctx.host
            )));
        }
        let link = out
            .lines()
            .find_map(|l| l.strip_prefix("HLLINK "))
            .and_then(zone_of_link);
        let mut f = parse_text(&out, 0, TIMEZONE_FILE)
            .map_err(|e| ModuleError::Failed(format!("{e} (on {})", ctx.host)))?;
        overlay(ctx, &mut f);
        let current = link.clone().or_else(|| {
            f.exists
                .then(|| f.text.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        let file = f.exists.then(|| {
            let after = if f.text.trim() == name {
                f.text.clone()
            } else {
                format!("{name}\n")
            };
            FileEdit {
                file: f,
                after: Some(after),
            }
        });
        Ok(Plan {
            link_ok: link.as_deref() == Some(name),
            current,
            file,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let name = a.name.trim();
        let file_changed = p.file.as_ref().is_some_and(FileEdit::changed);
        let mut r = TaskResult::changed(!p.link_ok || file_changed).with("name", name);
        if ctx.diff && r.changed {
            if !p.link_ok {
                r.diff.push(state_diff(
                    "/etc/localtime",
                    &[("name", p.current.clone().unwrap_or_default())],
                    &[("name", name.to_string())],
                ));
            }
            if let Some(f) = p.file.as_ref().filter(|f| f.changed()) {
                r.diff.push(f.diff());
            }
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        if let Some(f) = &p.file {
            f.simulate(ctx);
        }
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let name = a.name.trim();
        if !p.link_ok {
            let z = shell_quote(&format!("{ZONEINFO}/{name}"));
            // The link is swapped with a rename, so /etc/localtime is never missing.
            let cmd = format!(
                "ln -sfn {z} /etc/.localtime.homelab-tmp && mv -Tf /etc/.localtime.homelab-tmp /etc/localtime"
            );
            let out = ctx.exec(cmd).await?;
            if !out.success() {
                return Err(ModuleError::Failed(format!(
                    "could not set the time zone of {} to {name}: {}",
                    ctx.host,
                    out.stderr_str().trim()
                )));
            }
        }
        if let Some(f) = &p.file {
            f.apply(ctx, false).await?;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names_and_links() {
        assert!(valid_zone("Europe/Berlin"));
        assert!(valid_zone("Etc/GMT+5"));
        assert!(valid_zone("UTC"));
        assert!(!valid_zone("../etc/passwd"));
        assert!(!valid_zone("/Etc/UTC"));
        assert!(!valid_zone("Europe/Ber lin"));
        assert_eq!(
            zone_of_link("../usr/share/zoneinfo/Etc/UTC").as_deref(),
            Some("Etc/UTC")
        );
        assert_eq!(
            zone_of_link("/usr/share/zoneinfo/Europe/Berlin").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(zone_of_link("/etc/whatever"), None);
    }

    #[tokio::test]
    async fn unknown_zones_fail_clearly() {
        use crate::modules::testutil::run;
        use serde_json::json;
        let r = run::<Timezone>(true, json!({"name": "Mars/Olympus_Mons"})).await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("unknown time zone 'Mars/Olympus_Mons'"),
            "{r:?}"
        );
        let r = run::<Timezone>(true, json!({"name": "../../etc/passwd"})).await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("not a time zone name"),
            "{r:?}"
        );
    }
}
