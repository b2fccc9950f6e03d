//! `template`: render a Jinja2 file from the controller (`templates/` of the role or next to the
//! playbook) with the task's variables, then place it exactly as `copy` does (same probe, same
//! atomic write, same diff).

use super::copy::{self, Copy};
use super::core::{boolish, Module, ModuleError, TaskCtx, TaskResult};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub src: String,
    pub dest: String,
    #[serde(default, deserialize_with = "super::core::modeish::option")]
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    #[serde(default, with = "boolish")]
    pub backup: bool,
    #[serde(default = "yes", with = "boolish")]
    pub force: bool,
    pub validate: Option<String>,
    pub newline_sequence: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub follow: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub unsafe_writes: Option<bool>,
}

fn yes() -> bool {
    true
}

pub struct Plan {
    copy_args: copy::Args,
    copy_plan: copy::Plan,
}

pub struct Template;

impl Module for Template {
    const NAME: &'static str = "template";
    type Args = Args;
    type Plan = Plan;

    fn hint(a: &Args, diff: bool) -> Option<Vec<(String, super::remote::Want)>> {
        Some(vec![(a.dest.clone(), copy::dest_want(diff))])
    }

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let path = ctx.find_file("templates", &a.src)?;
        let source = std::fs::read_to_string(&path).map_err(|e| {
            ModuleError::Failed(format!("cannot read template {}: {e}", path.display()))
        })?;
        let render = ctx.render.ok_or_else(|| {
            ModuleError::Failed("templates can only be rendered inside a playbook run".into())
        })?;
        let mut text = render(&path.display().to_string(), &source).map_err(ModuleError::Failed)?;
        if let Some(nl) = &a.newline_sequence {
            let nl = nl.replace("\\r", "\r").replace("\\n", "\n");
            if nl != "\n" {
                text = text.replace('\n', &nl);
            }
        }
        let copy_args = copy::Args {
            dest: a.dest.clone(),
            src: None,
            content: Some(text),
            mode: a.mode.clone(),
            directory_mode: None,
            owner: a.owner.clone(),
            group: a.group.clone(),
            backup: a.backup,
            force: a.force,
            validate: a.validate.clone(),
            remote_src: false,
            local_follow: true,
            unsafe_writes: None,
        };
        let copy_plan = Copy::plan(ctx, &copy_args).await?;
        Ok(Plan {
            copy_args,
            copy_plan,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) -> TaskResult {
        Copy::describe(ctx, &p.copy_args, &p.copy_plan)
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        Copy::simulate(ctx, &p.copy_args, &p.copy_plan)
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        _a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        Copy::apply(ctx, &p.copy_args, p.copy_plan, done).await
    }
}
