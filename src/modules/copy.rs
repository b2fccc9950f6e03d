//! `copy`: put content (`content:`) or a controller file (`src:`) at `dest`, atomically, with
//! owner/mode/backup/validate. Probe: the destination's state, checksum and (for diffs) content,
//! in one round trip. No change when the checksum, owner and mode already match.
//!
//! Folder trees (`src:` a controller folder) and `remote_src: true` are in [`super::copy_tree`].

use super::copy_tree::{self, TreePlan};
use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::remote::{self, Kind, PathState, Want, WriteOpts};
use serde::Deserialize;
use sha1::{Digest, Sha1};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub dest: String,
    pub src: Option<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "super::core::modeish::option")]
    pub mode: Option<String>,
    /// Mode of the folders a tree copy creates.
    #[serde(default, deserialize_with = "super::core::modeish::option")]
    pub directory_mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    #[serde(default, with = "boolish")]
    pub backup: bool,
    #[serde(default = "yes", with = "boolish")]
    pub force: bool,
    pub validate: Option<String>,
    #[serde(default, with = "boolish")]
    pub remote_src: bool,
    /// Follow symbolic links in a controller-side `src` folder (the only supported way).
    #[serde(default = "yes", with = "boolish")]
    pub local_follow: bool,
    /// Accepted for compatibility; homelab always writes atomically.
    #[serde(default, with = "boolish::option")]
    pub unsafe_writes: Option<bool>,
}

fn yes() -> bool {
    true
}

fn opts<'a>(a: &'a Args, src: &'a str) -> copy_tree::Opts<'a> {
    copy_tree::Opts {
        dest: &a.dest,
        src,
        mode: a.mode.as_deref(),
        directory_mode: a.directory_mode.as_deref(),
        owner: a.owner.as_deref(),
        group: a.group.as_deref(),
        force: a.force,
        backup: a.backup,
        validate: a.validate.as_deref(),
    }
}

pub enum Plan {
    /// One file (content, or a controller file).
    File(FilePlan),
    /// A folder tree, or a remote_src file or folder.
    Tree(TreePlan),
}

pub struct FilePlan {
    /// The bytes to write.
    data: Vec<u8>,
    /// The final path (dest, or dest/basename(src) when dest is a folder).
    path: String,
    state: PathState,
    content_changes: bool,
    attrs_change: bool,
    /// The mode to set (`preserve` resolved to the source's).
    mode: Option<String>,
}

pub struct Copy;

pub fn sha1_hex(b: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(b);
    h.finalize().iter().map(|x| format!("{x:02x}")).collect()
}

/// True when applying `want` (octal or symbolic) would change the current mode.
pub fn mode_differs(want: Option<&str>, have: &PathState) -> bool {
    match want {
        Some(m) => super::file::resolve_mode(m, have.mode, have.kind == Kind::Directory)
            .map(|w| w != have.mode)
            .unwrap_or(true),
        None => false,
    }
}

pub fn owner_differs(owner: Option<&str>, group: Option<&str>, have: &PathState) -> bool {
    let differs = |want: Option<&str>, name: &str, id: u32| {
        want.is_some_and(|w| w != name && w != id.to_string())
    };
    differs(owner, &have.owner, have.uid) || differs(group, &have.group, have.gid)
}

/// What the probe of a copy's (or template's) destination reads.
pub fn dest_want(diff: bool) -> Want {
    Want {
        checksum: true,
        content_limit: if diff { remote::MAX_DIFF } else { 0 },
    }
}

impl Module for Copy {
    const NAME: &'static str = "copy";
    type Args = Args;
    type Plan = Plan;

    fn hint(a: &Args, diff: bool) -> Option<Vec<(String, Want)>> {
        Some(vec![(a.dest.clone(), dest_want(diff))])
    }

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let mut preserve = None;
        let data = match (&a.content, &a.src) {
            (Some(c), None) => c.clone().into_bytes(),
            (None, Some(src)) if !a.remote_src => {
                let p = ctx.find_file("files", src)?;
                if p.is_dir() {
                    if !a.local_follow {
                        return Err(ModuleError::Failed(
                            "local_follow: false is not supported: links in a src folder are always followed".into(),
                        ));
                    }
                    return copy_tree::plan_local(ctx, &opts(a, src), &p)
                        .await
                        .map(Plan::Tree);
                }
                let data = std::fs::read(&p).map_err(|e| {
                    ModuleError::Failed(format!("cannot read src {}: {e}", p.display()))
                })?;
                if a.mode.as_deref() == Some("preserve") {
                    use std::os::unix::fs::PermissionsExt;
                    preserve = std::fs::metadata(&p)
                        .ok()
                        .map(|m| format!("{:04o}", m.permissions().mode() & 0o7777));
                }
                data
            }
            (None, Some(src)) => {
                return copy_tree::plan_remote(ctx, &opts(a, src))
                    .await
                    .map(Plan::Tree)
            }
            (Some(_), Some(_)) => {
                return Err(ModuleError::Failed(
                    "src and content are mutually exclusive".into(),
                ))
            }
            (None, None) => {
                return Err(ModuleError::Failed(
                    "one of src or content is required".into(),
                ))
            }
        };
        if a.remote_src && a.content.is_some() {
            return Err(ModuleError::Failed(
                "remote_src needs src (a path on the host), not content".into(),
            ));
        }
        if a.mode.as_deref() == Some("preserve") && preserve.is_none() {
            return Err(ModuleError::Failed(
                "mode: preserve needs src (content has no mode to keep)".into(),
            ));
        }
        let mode = preserve.or(a.mode.clone());
        let want = dest_want(ctx.diff);
        let mut state = ctx.probe_path(&a.dest, want).await?;
        ctx.overlay(&a.dest, &mut state);
        let mut path = a.dest.clone();
        if state.kind == Kind::Directory || a.dest.ends_with('/') {
            // Into a folder: dest/basename(src), probed again.
            let name = a
                .src
                .as_deref()
                .and_then(|s| std::path::Path::new(s).file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "dest {} is a directory and content has no file name: give a file path",
                        a.dest
                    ))
                })?;
            path = format!("{}/{name}", a.dest.trim_end_matches('/'));
            state = ctx.probe_path(&path, want).await?;
            ctx.overlay(&path, &mut state);
        }
        if !state.parent_exists {
            return Err(ModuleError::Failed(format!(
                "destination directory {} does not exist",
                std::path::Path::new(&path)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )));
        }
        if matches!(state.kind, Kind::Directory | Kind::Other) {
            return Err(ModuleError::Failed(format!(
                "{path} exists and is a {}, not a file",
                state.kind.name()
            )));
        }
        let content_changes = match state.kind {
            Kind::Absent => true,
            _ if !a.force => false,
            _ => state.checksum.as_deref() != Some(sha1_hex(&data).as_str()),
        };
        let attrs_change = state.exists()
            && (mode_differs(mode.as_deref(), &state)
                || owner_differs(a.owner.as_deref(), a.group.as_deref(), &state));
        Ok(Plan::File(FilePlan {
            data,
            path,
            state,
            content_changes,
            attrs_change,
            mode,
        }))
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let p = match p {
            Plan::File(p) => p,
            Plan::Tree(t) => {
                return t.describe(ctx, &opts(a, a.src.as_deref().unwrap_or_default()))
            }
        };
        let mut r = TaskResult::changed(p.content_changes || p.attrs_change)
            .with("dest", p.path.clone())
            .with("checksum", sha1_hex(&p.data))
            .with("size", p.data.len() as u64);
        if ctx.diff && p.content_changes {
            let before = if p.state.exists() {
                p.state.content.as_deref()
            } else {
                Some(&b""[..])
            };
            let mut d = remote::file_diff(&p.path, before, p.state.size, &p.data);
            if !p.state.exists() {
                d.before_header = p.path.clone();
            }
            r.diff.push(d);
        } else if ctx.diff && p.attrs_change {
            r.diff.push(super::file::attrs_diff(
                &p.path,
                &p.state,
                p.mode.as_deref(),
                a.owner.as_deref(),
                a.group.as_deref(),
            ));
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        let p = match p {
            Plan::File(p) => p,
            Plan::Tree(t) => return t.simulate(ctx),
        };
        let mode = p
            .mode
            .as_deref()
            .and_then(|m| super::file::resolve_mode(m, p.state.mode, false).ok());
        ctx.plan_path(
            &p.path,
            super::core::PlannedPath::File {
                content: Some(p.data.clone()),
                mode,
            },
        );
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        mut done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let p = match p {
            Plan::File(p) => p,
            Plan::Tree(t) => {
                return t
                    .apply(ctx, &opts(a, a.src.as_deref().unwrap_or_default()), done)
                    .await
            }
        };
        if p.content_changes {
            let opts = WriteOpts {
                mode: p.mode.as_deref(),
                owner: a.owner.as_deref(),
                group: a.group.as_deref(),
                backup: a.backup,
                validate: a.validate.as_deref(),
                existing: Some(&p.state),
            };
            if let Some(b) = remote::write_file(ctx, &p.path, p.data, &opts, false).await? {
                done = done.with("backup_file", b);
            }
        } else {
            super::file::set_attrs(
                ctx,
                &p.path,
                p.mode.as_deref(),
                a.owner.as_deref(),
                a.group.as_deref(),
            )
            .await?;
        }
        Ok(done)
    }
}
