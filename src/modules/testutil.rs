//! Test helpers: drive a module through the local transport and snapshot a folder.

use super::core::{drive, Module, TaskCtx, TaskResult};
use crate::transport::local::LocalConnection;
use crate::transport::Connection;

/// Runs module `M` with `args` on this machine (check mode or not), diff on.
pub async fn run<M: Module>(check: bool, args: serde_json::Value) -> TaskResult {
    run_with::<M>(check, args, None).await
}

pub async fn run_with<M: Module>(
    check: bool,
    args: serde_json::Value,
    render: Option<&super::core::Renderer<'_>>,
) -> TaskResult {
    run_planned::<M>(check, args, render, None).await
}

/// Like [`run_with`], with the check-mode record of earlier tasks.
pub async fn run_planned<M: Module>(
    check: bool,
    args: serde_json::Value,
    render: Option<&super::core::Renderer<'_>>,
    planned: Option<&super::core::Planned>,
) -> TaskResult {
    let c = Connection::Local(LocalConnection::new("t"));
    let ctx = TaskCtx {
        host: "t",
        conn: &c,
        become_: None,
        check,
        diff: true,
        search: &[],
        env: &[],
        render,
        planned,
        paths: None,
    };
    match drive::<M>(&ctx, &args).await {
        Ok(r) => r,
        Err(e) => TaskResult::failed(e.to_string()),
    }
}

/// Every path under `dir` with its mode and content, sorted.
pub fn snapshot(dir: &std::path::Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut v = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            let data = if m.is_file() {
                std::fs::read(e.path()).unwrap_or_default()
            } else {
                vec![]
            };
            if m.is_dir() {
                stack.push(e.path());
            }
            v.push((e.path().display().to_string(), m.permissions().mode(), data));
        }
    }
    v.sort();
    v
}
