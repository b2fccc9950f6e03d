//! `dpkg_selections`: a package's dpkg selection (install, hold, deinstall, purge), e.g. holding a
//! package at its version. Probe: `dpkg --get-selections NAME`; apply: `dpkg --set-selections`
//! with `NAME SELECTION` on stdin. A package dpkg does not know is refused (dpkg would ignore it);
//! check mode only notes it, since an earlier task of the run may install it.

use super::core::{Module, ModuleError, TaskCtx, TaskResult};
use super::pkgutil::{self, Spec};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
    pub selection: String,
}

const SELECTIONS: &[&str] = &["install", "hold", "deinstall", "purge"];

pub struct Plan {
    /// The selection now; `None` when dpkg does not know the package.
    current: Option<String>,
}

pub fn probe_script(name: &str) -> String {
    format!(
        "LC_ALL=C dpkg --get-selections {} 2>&1; echo HLEND",
        shell_quote(name)
    )
}

/// The selection of `name` in `dpkg --get-selections` output (`figlet\t\t\thold`).
pub fn parse(out: &str, name: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let n = w.next()?;
        let sel = w.next()?;
        let bare = n.split(':').next().unwrap_or(n);
        (n == name || bare == name).then(|| sel.to_string())
    })
}

pub struct DpkgSelections;

impl Module for DpkgSelections {
    const NAME: &'static str = "dpkg_selections";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        Spec::parse(&a.name).map_err(ModuleError::Failed)?;
        if a.name.contains('=') {
            return Err(ModuleError::Failed(format!(
                "name={}: give the package name without a version",
                a.name
            )));
        }
        if !SELECTIONS.contains(&a.selection.as_str()) {
            return Err(ModuleError::Failed(format!(
                "value of selection must be one of: {}; got: {}",
                SELECTIONS.join(", "),
                a.selection
            )));
        }
        let out = ctx.exec(probe_script(&a.name)).await?;
        let text = out.stdout_str();
        if !text.contains("HLEND") {
            return Err(ModuleError::Failed(format!(
                "{}: dpkg --get-selections did not run: {}",
                ctx.host,
                out.stderr_str().trim()
            )));
        }
        Ok(Plan {
            current: parse(&text, &a.name),
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let Some(cur) = &p.current else {
            if ctx.check {
                // An earlier task of this run may install it; the real run fails if none does.
                return TaskResult::changed(true)
                    .with("before", "not present")
                    .with("after", a.selection.clone())
                    .msg(format!(
                        "would set {} to {}; dpkg does not know the package yet (the run fails unless an earlier task installs it)",
                        a.name, a.selection
                    ));
            }
            return TaskResult::failed(format!(
                "{}: dpkg does not know the package {}; install it first (dpkg keeps selections \
                 only for packages it knows)",
                ctx.host, a.name
            ));
        };
        let changed = cur != &a.selection;
        let mut r = TaskResult::changed(changed)
            .with("before", cur.clone())
            .with("after", a.selection.clone());
        if changed {
            r = r.msg(format!(
                "{}{} selection: {cur} -> {}",
                if ctx.check { "would change " } else { "" },
                a.name,
                a.selection
            ));
            if ctx.diff {
                r.diff.push(pkgutil::package_diff(
                    &format!("dpkg selections ({})", ctx.host),
                    &[(a.name.clone(), cur.clone(), a.selection.clone())],
                ));
            }
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        _p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let out = ctx
            .exec_with(
                "LC_ALL=C dpkg --set-selections",
                Some(format!("{} {}\n", a.name, a.selection).into_bytes()),
            )
            .await?;
        if !out.success() || out.stderr_str().contains("warning") {
            return Ok(TaskResult::failed(format!(
                "{}: dpkg --set-selections failed (rc {}): {}",
                ctx.host,
                out.rc(),
                out.stderr_str().trim()
            ))
            .with("rc", out.rc()));
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selections() {
        assert_eq!(
            parse("figlet\t\t\t\t\thold\nHLEND\n", "figlet").as_deref(),
            Some("hold")
        );
        assert_eq!(
            parse("libc6:amd64\t\tinstall\n", "libc6").as_deref(),
            Some("install")
        );
        assert_eq!(
            parse("dpkg: no packages found matching nosuch\nHLEND\n", "nosuch"),
            None
        );
        assert_eq!(parse("figlet2 install\n", "figlet"), None);
        assert_eq!(
            probe_script("figlet"),
            "LC_ALL=C dpkg --get-selections figlet 2>&1; echo HLEND"
        );
    }
}
