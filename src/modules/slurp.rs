//! `slurp`: a host file's content, base64-encoded, in one round trip (`cat`). Read-only, so it
//! returns the real content in check mode too. Decode it with `| b64decode`.

use super::core::{Module, ModuleError, TaskCtx, TaskResult};
use super::stat::path_word;
use base64::Engine as _;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "path")]
    pub src: String,
}

/// Why a file could not be read, as the probe says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Directory,
    Unreadable,
}

/// The command: a refusal marker on stderr, or the file's bytes on stdout.
pub fn script(src: &str) -> String {
    format!(
        "p={}; if [ -d \"$p\" ]; then echo 'HLSLURP directory' >&2; exit 1; \
         elif [ ! -e \"$p\" ]; then echo 'HLSLURP missing' >&2; exit 1; \
         elif [ ! -r \"$p\" ]; then echo 'HLSLURP unreadable' >&2; exit 1; fi; exec cat -- \"$p\"",
        path_word(src)
    )
}

/// The refusal a failed [`script`] reported, if any.
pub fn refusal(stderr: &str) -> Option<Refusal> {
    stderr.lines().find_map(|l| match l.trim() {
        "HLSLURP missing" => Some(Refusal::Missing),
        "HLSLURP directory" => Some(Refusal::Directory),
        "HLSLURP unreadable" => Some(Refusal::Unreadable),
        _ => None,
    })
}

/// Ansible's messages (tasks test for "not found"), with what to do.
pub fn refusal_msg(r: Refusal, src: &str) -> String {
    match r {
        Refusal::Missing => format!("file not found: {src}"),
        Refusal::Directory => format!(
            "source is a directory and must be a file: {src} (use find to list a directory)"
        ),
        Refusal::Unreadable => {
            format!("file is not readable: {src} (set become: true to read it as root)")
        }
    }
}

pub struct Plan {
    content: Vec<u8>,
}

pub struct Slurp;

impl Module for Slurp {
    const NAME: &'static str = "slurp";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if a.src.is_empty() {
            return Err(ModuleError::Failed(
                "src is empty: give the path of the file to read".into(),
            ));
        }
        let out = ctx.exec(script(&a.src)).await?;
        if !out.success() {
            let err = out.stderr_str();
            return Err(ModuleError::Failed(match refusal(&err) {
                Some(r) => refusal_msg(r, &a.src),
                None => format!("unable to slurp file {}: {}", a.src, err.trim()),
            }));
        }
        Ok(Plan {
            content: out.stdout,
        })
    }

    fn describe(_ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        TaskResult::changed(false)
            .with(
                "content",
                base64::engine::general_purpose::STANDARD.encode(&p.content),
            )
            .with("source", a.src.clone())
            .with("encoding", "base64")
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
    use crate::modules::testutil::run;
    use serde_json::json;

    #[test]
    fn refusals_are_recognised() {
        assert_eq!(
            refusal("sudo: noise\nHLSLURP missing\n"),
            Some(Refusal::Missing)
        );
        assert_eq!(refusal("cat: x: Input/output error"), None);
        assert!(refusal_msg(Refusal::Missing, "/x").starts_with("file not found: /x"));
    }

    #[tokio::test]
    async fn slurps_bytes_and_refuses_clearly() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("bin");
        let data: Vec<u8> = (0u8..=255).chain(b"\n\n".iter().copied()).collect();
        std::fs::write(&f, &data).unwrap();
        let p = |x: &std::path::Path| x.display().to_string();
        for check in [false, true] {
            let r = run::<Slurp>(check, json!({"path": p(&f)})).await;
            assert!(!r.failed && !r.changed, "{r:?}");
            assert_eq!(r.data["encoding"], "base64");
            assert_eq!(r.data["source"], p(&f));
            let got = base64::engine::general_purpose::STANDARD
                .decode(r.data["content"].as_str().unwrap())
                .unwrap();
            assert_eq!(got, data, "trailing newlines and binary kept");
        }
        let r = run::<Slurp>(false, json!({"src": p(&d.path().join("nope"))})).await;
        assert!(r.failed, "{r:?}");
        assert!(
            r.msg
                .as_deref()
                .unwrap_or("")
                .starts_with("file not found: "),
            "{r:?}"
        );
        let r = run::<Slurp>(false, json!({"src": p(d.path())})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("is a directory"),
            "{r:?}"
        );
        let r = run::<Slurp>(false, json!({"src": p(&f), "encoding": "utf-8"})).await;
        assert!(r.failed, "unknown args are refused: {r:?}");
    }
}
