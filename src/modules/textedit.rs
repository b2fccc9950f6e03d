//! The shape shared by modules that edit a text file in place (lineinfile, blockinfile, replace):
//! probe the file and its content in one round trip, compute the new text here, show a
//! `PATH (content)` diff, write atomically with owner/mode/backup/validate.

use super::core::{ModuleError, TaskCtx, TaskResult};
use super::remote::{self, Kind, PathState, Want, WriteOpts};

/// Files larger than this are refused (these modules are for configuration files).
pub const MAX_SIZE: u64 = 16 << 20;

/// What the probe of the edited file reads: its content, up to [`MAX_SIZE`].
pub const WANT: Want = Want {
    checksum: false,
    content_limit: MAX_SIZE,
};

/// The look-ahead answer of the text-editing modules (see `Module::hint`).
pub fn hint(path: &str) -> Option<Vec<(String, Want)>> {
    Some(vec![(path.to_string(), WANT)])
}

/// Owner/mode/backup/validate settings every text-editing module takes.
pub struct Common<'a> {
    pub path: &'a str,
    pub mode: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    pub backup: bool,
    pub validate: Option<&'a str>,
}

/// What to do when the file does not exist.
pub enum Missing {
    /// Start from empty text (`create: true`).
    Create,
    /// Nothing to do, with this message (state=absent on a missing file).
    Nothing(String),
    /// Fail with this message and rc.
    Fail(String, i64),
}

pub struct Plan {
    pub state: PathState,
    pub before: String,
    pub after: String,
    pub content_changed: bool,
    pub attrs_changed: bool,
    pub msg: String,
    pub error: Option<(String, i64)>,
}

/// Probes `c.path`; `edit` turns the current text into (new text, message). `edit` gets `None`
/// for a missing file that is to be created.
pub async fn plan(
    ctx: &TaskCtx<'_>,
    c: &Common<'_>,
    missing: Missing,
    edit: impl FnOnce(Option<&str>) -> Result<(String, String), String>,
) -> Result<Plan, ModuleError> {
    let mut state = ctx.probe_path(c.path, WANT).await?;
    ctx.overlay(c.path, &mut state);
    let mut p = Plan {
        state: state.clone(),
        before: String::new(),
        after: String::new(),
        content_changed: false,
        attrs_changed: false,
        msg: String::new(),
        error: None,
    };
    let fail = |mut p: Plan, msg: String, rc: i64| {
        p.error = Some((msg, rc));
        Ok(p)
    };
    match state.kind {
        Kind::Absent => match missing {
            Missing::Create => {}
            Missing::Nothing(msg) => {
                p.msg = msg;
                return Ok(p);
            }
            Missing::Fail(msg, rc) => return fail(p, msg, rc),
        },
        Kind::File => {}
        Kind::Directory => return fail(p, format!("Path {} is a directory !", c.path), 256),
        Kind::Link => {
            return fail(
                p,
                format!("{} is a symbolic link: give the real file", c.path),
                1,
            )
        }
        Kind::Other => return fail(p, format!("{} is not a regular file", c.path), 1),
    }
    if state.kind == Kind::File && state.content.is_none() {
        return fail(p, format!("{} is larger than {MAX_SIZE} bytes", c.path), 1);
    }
    let before = String::from_utf8(state.content.clone().unwrap_or_default())
        .map_err(|_| ModuleError::Failed(format!("{} is not a text file", c.path)))?;
    let (after, msg) =
        edit(state.exists().then_some(before.as_str())).map_err(ModuleError::Failed)?;
    p.content_changed = after != before || !state.exists();
    p.after = after;
    p.before = before;
    p.msg = if p.content_changed {
        msg
    } else {
        String::new()
    };
    p.attrs_changed =
        state.exists() && super::file::copy_attrs_differ(c.mode, c.owner, c.group, &state);
    Ok(p)
}

pub fn describe(ctx: &TaskCtx<'_>, c: &Common<'_>, p: &Plan) -> TaskResult {
    if let Some((e, rc)) = &p.error {
        return TaskResult::failed(e.clone()).with("rc", *rc);
    }
    let mut msg = p.msg.clone();
    if p.attrs_changed {
        if !msg.is_empty() {
            msg.push_str(" and ");
        }
        msg.push_str("ownership, perms or SE linux context changed");
    }
    let mut r = TaskResult::changed(p.content_changed || p.attrs_changed).msg(msg);
    if ctx.diff && p.content_changed {
        let mut d = remote::file_diff(
            c.path,
            Some(p.before.as_bytes()),
            p.before.len() as u64,
            p.after.as_bytes(),
        );
        d.before_header = format!("{} (content)", c.path);
        d.after_header = format!("{} (content)", c.path);
        r.diff.push(d);
    }
    if ctx.diff && p.attrs_changed {
        r.diff.push(super::file::attrs_diff(
            c.path, &p.state, c.mode, c.owner, c.group,
        ));
    }
    r
}

/// Check mode: the file as apply would leave it.
pub fn simulate(ctx: &TaskCtx<'_>, c: &Common<'_>, p: &Plan) {
    if p.error.is_none() && p.content_changed {
        let mode = c
            .mode
            .and_then(|m| super::file::resolve_mode(m, p.state.mode, false).ok());
        ctx.plan_path(
            c.path,
            super::core::PlannedPath::File {
                content: Some(p.after.clone().into_bytes()),
                mode,
            },
        );
    }
}

pub async fn apply(
    ctx: &TaskCtx<'_>,
    c: &Common<'_>,
    p: Plan,
    mut done: TaskResult,
) -> Result<TaskResult, ModuleError> {
    if p.content_changed {
        let opts = WriteOpts {
            mode: c.mode,
            owner: c.owner,
            group: c.group,
            backup: c.backup,
            validate: c.validate,
            existing: Some(&p.state),
        };
        let data = p.after.into_bytes();
        if let Some(b) =
            remote::write_file(ctx, c.path, data, &opts, !p.state.parent_exists).await?
        {
            done = done.with("backup", b);
        }
    } else if p.attrs_changed {
        super::file::set_attrs(ctx, c.path, c.mode, c.owner, c.group).await?;
    }
    Ok(done)
}
