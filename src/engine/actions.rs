//! Actions the engine runs itself, without touching a host: debug, set_fact, assert, fail, pause.
//! (Includes and meta are flow control and live in the runner.)

use super::play::Outcome;
use crate::modules::core::TaskResult;
use crate::output::play::Status;
use crate::playbook::ast::Task;
use crate::template::{Templar, Vars};
use serde_json::{json, Map, Value};
use std::time::Duration;

fn ok(r: TaskResult) -> Outcome {
    let st = if r.changed {
        Status::Changed
    } else {
        Status::Ok
    };
    Outcome {
        status: st,
        result: r,
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs `t` if it is an engine action; `None` for modules that run on a host.
pub async fn engine_action(
    templar: &Templar,
    t: &Task,
    args: &Map<String, Value>,
    vars: &Vars,
    verbose: u8,
) -> Option<Outcome> {
    let at = t.origin.to_string();
    Some(match t.action.as_str() {
        "debug" => {
            let verbosity = args.get("verbosity").and_then(|v| v.as_u64()).unwrap_or(0);
            if u64::from(verbose) < verbosity {
                let mut r = TaskResult::changed(false)
                    .with("skipped_reason", "Verbosity threshold not met.");
                r.skipped = true;
                return Some(Outcome {
                    status: Status::Skipped,
                    result: r,
                });
            }
            if let Some(var) = args.get("var") {
                let name = as_text(var);
                let shown = match templar.eval_at(&name, vars, Some(&at)) {
                    Ok(v) => v,
                    Err(_) => Value::String("VARIABLE IS NOT DEFINED!".into()),
                };
                let mut r = TaskResult::changed(false);
                r.data.insert(name.clone(), shown.clone());
                r.data.insert("_debug".into(), json!({ name: shown }));
                ok(r)
            } else {
                let msg = args
                    .get("msg")
                    .cloned()
                    .unwrap_or_else(|| "Hello world!".into());
                let mut r = TaskResult::changed(false);
                r.msg = Some(as_text(&msg));
                r.data.insert("_debug".into(), json!({ "msg": msg }));
                ok(r)
            }
        }
        "set_fact" => {
            let mut facts = args.clone();
            facts.remove("cacheable");
            let mut r =
                TaskResult::changed(false).with("ansible_facts", Value::Object(facts.clone()));
            r.data.insert("_facts".into(), Value::Object(facts));
            ok(r)
        }
        "assert" => {
            let that: Vec<String> = match t.args.get("that") {
                Some(Value::Array(a)) => a.iter().map(as_text).collect(),
                Some(v) => vec![as_text(v)],
                None => {
                    return Some(Outcome {
                        status: Status::Failed,
                        result: TaskResult::failed("assert needs 'that'"),
                    })
                }
            };
            for cond in &that {
                match templar.eval_bool_at(cond, vars, Some(&at)) {
                    Ok(true) => {}
                    Ok(false) => {
                        let msg = args
                            .get("fail_msg")
                            .or_else(|| args.get("msg"))
                            .map(as_text)
                            .unwrap_or_else(|| "Assertion failed".into());
                        let r = TaskResult::failed(msg)
                            .with("assertion", cond.clone())
                            .with("evaluated_to", false);
                        return Some(Outcome {
                            status: Status::Failed,
                            result: r,
                        });
                    }
                    Err(e) => {
                        return Some(Outcome {
                            status: Status::Failed,
                            result: TaskResult::failed(e.to_string()),
                        })
                    }
                }
            }
            let msg = args
                .get("success_msg")
                .map(as_text)
                .unwrap_or_else(|| "All assertions passed".into());
            let mut r = TaskResult::changed(false);
            r.msg = Some(msg.clone());
            if !args
                .get("quiet")
                .is_some_and(crate::transport::spec::truthy)
            {
                r.data.insert("_debug".into(), json!({ "msg": msg }));
            }
            ok(r)
        }
        "fail" => {
            let msg = args
                .get("msg")
                .map(as_text)
                .unwrap_or_else(|| "Failed as requested from task".into());
            Outcome {
                status: Status::Failed,
                result: TaskResult::failed(msg),
            }
        }
        "pause" => {
            let secs = args.get("seconds").and_then(num).unwrap_or(0.0)
                + args.get("minutes").and_then(num).unwrap_or(0.0) * 60.0;
            if secs <= 0.0 {
                // Non-interactive: a pause waiting for Enter would hang a run without a terminal.
                let mut r = TaskResult::changed(false);
                r.msg = Some(
                    "pause without seconds/minutes skipped: homelab does not wait for input".into(),
                );
                return Some(ok(r));
            }
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            ok(TaskResult::changed(false).with("delta", secs))
        }
        _ => return None,
    })
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}
