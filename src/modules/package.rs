//! `package`: installs or removes packages with whichever package manager the host has (`use:
//! auto`, the default, probes `command -v apt-get/dnf/yum`), by running the `apt` or `dnf`
//! module's own plan and apply, so check mode, diffs and results are theirs.

use super::core::{stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::pkgutil::{self, Manager};
use super::{apt, dnf};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "pkgutil::names")]
    pub name: Vec<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub state: Option<String>,
    #[serde(rename = "use", default)]
    pub use_: Option<String>,
}

pub enum Plan {
    Apt(Box<(apt::Args, apt::Plan)>),
    Dnf(dnf::Args, dnf::Plan),
}

/// The backend a `use:` value asks for; `None` means probe the host.
pub fn chosen(use_: Option<&str>) -> Result<Option<Manager>, String> {
    Ok(match use_.unwrap_or("auto") {
        "auto" => None,
        "apt" => Some(Manager::Apt),
        "dnf" | "dnf5" => Some(Manager::Dnf),
        "yum" => Some(Manager::Yum),
        other => {
            return Err(format!(
                "use={other} is not supported: use auto, apt or dnf"
            ))
        }
    })
}

/// The state as both backends take it.
pub fn state(s: Option<&str>) -> Result<String, String> {
    match s.unwrap_or("present") {
        st @ ("present" | "installed" | "absent" | "removed" | "latest") => Ok(st.to_string()),
        other => Err(format!(
            "value of state must be one of: absent, latest, present; got: {other}"
        )),
    }
}

pub struct Package;

impl Module for Package {
    const NAME: &'static str = "package";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let st = state(a.state.as_deref()).map_err(ModuleError::Failed)?;
        if a.name.is_empty() {
            return Err(ModuleError::Failed("name is required".into()));
        }
        let mgr = match chosen(a.use_.as_deref()).map_err(ModuleError::Failed)? {
            Some(m) => m,
            None => {
                let out = ctx.exec(pkgutil::MANAGER_PROBE).await?;
                pkgutil::parse_manager(&out.stdout_str()).ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "{}: no supported package manager found (looked for apt-get, dnf, yum)",
                        ctx.host
                    ))
                })?
            }
        };
        match mgr {
            Manager::Apt => {
                let args = apt::Args {
                    name: a.name.clone(),
                    state: Some(st),
                    ..Default::default()
                };
                let plan = apt::Apt::plan(ctx, &args).await?;
                Ok(Plan::Apt(Box::new((args, plan))))
            }
            Manager::Dnf | Manager::Yum => {
                let args = dnf::Args {
                    name: a.name.clone(),
                    state: Some(st),
                    ..Default::default()
                };
                let plan = dnf::Dnf::plan(ctx, &args).await?;
                Ok(Plan::Dnf(args, plan))
            }
        }
    }

    fn describe(ctx: &TaskCtx<'_>, _a: &Args, plan: &Plan) -> TaskResult {
        match plan {
            Plan::Apt(b) => apt::Apt::describe(ctx, &b.0, &b.1).with("use", "apt"),
            Plan::Dnf(args, p) => dnf::Dnf::describe(ctx, args, p).with("use", "dnf"),
        }
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        _a: &Args,
        plan: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        match plan {
            Plan::Apt(b) => {
                let (args, p) = *b;
                apt::Apt::apply(ctx, &args, p, done).await
            }
            Plan::Dnf(args, p) => dnf::Dnf::apply(ctx, &args, p, done).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments() {
        assert_eq!(chosen(None), Ok(None));
        assert_eq!(chosen(Some("apt")), Ok(Some(Manager::Apt)));
        assert!(chosen(Some("pacman")).unwrap_err().contains("use=pacman"));
        assert!(state(Some("fixed")).is_err());
        assert_eq!(state(None).unwrap(), "present");
        let a: Args = serde_json::from_value(json!({"name": "tree", "use": "auto"})).unwrap();
        assert_eq!(a.use_.as_deref(), Some("auto"));
        assert!(
            serde_json::from_value::<Args>(json!({"name": "tree", "update_cache": true})).is_err()
        );
    }
}
