//! `setup` (and `gather_facts`): gathers the host's facts as a task, in one round trip, with the
//! same script as a play's fact gathering (src/engine/facts). Read-only, so it runs in check mode
//! too. Its `ansible_facts` become the host's facts (and `hostvars`), and go to the fact cache.

use super::core::{Module, ModuleError, TaskCtx, TaskResult};
use crate::engine::facts::{self, GatherError, Request};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// `all` (default), `min`, `hardware`, `network`, `virtual`, `!name`... (list or "a,b").
    #[serde(default, deserialize_with = "list")]
    pub gather_subset: Vec<String>,
    /// Seconds the gathering may take (default 10).
    #[serde(default)]
    pub gather_timeout: Option<Value>,
    /// Globs on fact names (`ansible_eth*`); only matching facts are returned.
    #[serde(default, deserialize_with = "list")]
    pub filter: Vec<String>,
    /// Local facts: not supported (refused when given).
    #[serde(default)]
    pub fact_path: Option<String>,
    /// `gather_facts`'s option; hosts are always gathered in parallel.
    #[serde(default)]
    pub parallel: Option<Value>,
}

/// Ansible's `type: list`: a YAML list, or a string split on commas.
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    fn one(v: Value) -> String {
        match v {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        }
    }
    Ok(match Value::deserialize(d)? {
        Value::Null => vec![],
        Value::String(s) if s.trim().is_empty() => vec![],
        Value::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Value::Array(a) => a.into_iter().map(one).collect(),
        other => vec![one(other)],
    })
}

pub struct Plan {
    facts: Map<String, Value>,
}

pub struct Setup;

impl Module for Setup {
    const NAME: &'static str = "setup";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if a.fact_path.is_some() {
            return Err(ModuleError::Failed(
                "fact_path (local facts) is not supported: remove it, or read the files with slurp"
                    .into(),
            ));
        }
        let req = Request::new(
            &a.gather_subset,
            a.gather_timeout.as_ref(),
            a.filter.clone(),
        )
        .map_err(ModuleError::Failed)?;
        let out = match ctx
            .exec_limited(facts::script::build(&req.parts), None, Some(req.timeout))
            .await
        {
            Ok(o) => o,
            Err(ModuleError::Transport(e)) => {
                return Err(match facts::timeout_hint(e) {
                    GatherError::Transport(e) => ModuleError::Transport(e),
                    other => ModuleError::Failed(other.to_string()),
                })
            }
            Err(e) => return Err(e),
        };
        let facts = facts::from_output(ctx.host, &out, &req).map_err(|e| match e {
            GatherError::Transport(t) => ModuleError::Transport(t),
            other => ModuleError::Failed(other.to_string()),
        })?;
        Ok(Plan { facts })
    }

    fn describe(_ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) -> TaskResult {
        TaskResult::changed(false).with("ansible_facts", Value::Object(p.facts.clone()))
    }

    async fn apply(
        _ctx: &TaskCtx<'_>,
        _a: &Args,
        _p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        Ok(done)
    }

    fn runs_in_check_mode() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::core::parse_args;
    use serde_json::json;

    #[test]
    fn arguments() {
        let a = parse_args::<Setup>(
            &json!({"gather_subset": "!all, network", "filter": ["ansible_eth*", "ansible_lo"]}),
        )
        .unwrap();
        assert_eq!(a.gather_subset, ["!all", "network"]);
        assert_eq!(a.filter, ["ansible_eth*", "ansible_lo"]);
        let a = parse_args::<Setup>(&json!({"filter": "ansible_hostname"})).unwrap();
        assert_eq!(a.filter, ["ansible_hostname"]);
        let e = parse_args::<Setup>(&json!({"subset": "min"}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field") && e.contains("gather_subset"),
            "{e}"
        );
        assert!(parse_args::<Setup>(&Value::Null).is_ok());
    }
}
