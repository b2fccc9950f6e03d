//! `apt_repository`: a one-line APT source (`deb [signed-by=/etc/apt/keyrings/x.gpg] URL suite
//! comps`) in `/etc/apt/sources.list.d/FILENAME.list`, written atomically with a diff.
//!
//! Probe, one round trip: every `.list` file (`/etc/apt/sources.list` and `sources.list.d/*.list`)
//! with its content, since the line counts as present wherever it already is. `state: absent`
//! removes the line from every file that has it (and a file left with no source). After a change
//! `update_cache` (default true) runs `apt-get update`; when that fails the old files are put back,
//! so a broken source is never left behind, and the task fails with apt's message.

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::pkgutil::files::{self, Change};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub repo: String,
    #[serde(default, deserialize_with = "stringish::option")]
    pub state: Option<String>,
    pub filename: Option<String>,
    #[serde(default, alias = "update-cache", with = "boolish::option")]
    pub update_cache: Option<bool>,
    #[serde(default, deserialize_with = "super::pkgutil::mode")]
    pub mode: Option<String>,
    /// Accepted for compatibility; homelab needs no Python on the host.
    #[serde(default, with = "boolish::option")]
    pub install_python_apt: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub validate_certs: Option<bool>,
}

pub const SOURCES_D: &str = "/etc/apt/sources.list.d";

/// A sources line with its whitespace normalised (for comparisons).
pub fn normalize(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks a one-line source: `deb`/`deb-src`, optional `[options]`, a URI, a suite.
pub fn check_repo(repo: &str) -> Result<(), String> {
    let r = normalize(repo);
    if r.contains('\n') || repo.contains('\n') {
        return Err("repo must be a single line".into());
    }
    let rest = r
        .strip_prefix("deb ")
        .or_else(|| r.strip_prefix("deb-src "))
        .ok_or_else(|| {
            format!("repo must start with 'deb' or 'deb-src' (a one-line source); got: {repo}")
        })?;
    let rest = if rest.starts_with('[') {
        let (_, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed [options] in repo: {repo}"))?;
        after.trim()
    } else {
        rest
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    if words.len() < 2 || !words[0].contains(':') {
        return Err(format!(
            "repo needs a URI and a suite (deb URI SUITE [COMPONENTS...]); got: {repo}"
        ));
    }
    if repo.contains("ppa:") {
        return Err("PPAs are not supported: give the deb line".into());
    }
    Ok(())
}

/// Ansible's file name for a line: the URI without scheme and credentials, non-alphanumerics to `_`.
pub fn suggest_filename(repo: &str) -> String {
    let mut line = normalize(repo);
    while let (Some(i), Some(j)) = (line.find('['), line.find(']')) {
        if j < i {
            break;
        }
        line.replace_range(i..=j, "");
    }
    let words: Vec<String> = line
        .split_whitespace()
        .filter(|w| *w != "deb" && *w != "deb-src")
        .map(|w| match w.split_once("://") {
            Some((_, r)) => r.to_string(),
            None => w.to_string(),
        })
        .collect();
    let first = words.first().cloned().unwrap_or_default();
    let first = match first.split_once('@') {
        Some((_, host)) => host.to_string(),
        None => first,
    };
    let cleaned: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join("_")
}

/// The file a task writes: `filename` (with `.list` added) or the suggested name.
pub fn target(a: &Args) -> Result<String, String> {
    let base = match &a.filename {
        Some(f) => {
            if f.is_empty() || f.contains('/') {
                return Err(format!("filename must be a plain name, got: {f}"));
            }
            f.trim_end_matches(".list").to_string()
        }
        None => suggest_filename(&a.repo),
    };
    Ok(format!("{SOURCES_D}/{base}.list"))
}

/// Whether a sources file content has the line (enabled).
fn has_line(content: &str, line: &str) -> bool {
    content.lines().any(|l| normalize(l) == line)
}

/// The content with the line removed; `None` when no source is left in it.
fn without_line(content: &str, line: &str) -> Option<String> {
    let kept: Vec<&str> = content.lines().filter(|l| normalize(l) != line).collect();
    if kept
        .iter()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return None;
    }
    Some(kept.join("\n") + "\n")
}

/// The probe: each sources file's path and content.
pub fn list_script() -> String {
    "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -f \"$f\" ] || continue; \
     printf '\\nHLSRC %s\\n' \"$f\"; cat \"$f\"; done; printf '\\nHLSRC-END\\n'"
        .to_string()
}

pub fn parse_lists(out: &str) -> Vec<(String, String)> {
    let mut v = vec![];
    let body = out.split("\nHLSRC-END\n").next().unwrap_or("");
    for chunk in body.split("\nHLSRC ").skip(1) {
        let (path, content) = chunk.split_once('\n').unwrap_or((chunk, ""));
        v.push((path.to_string(), content.to_string()));
    }
    v
}

pub struct Plan {
    changes: Vec<Change>,
}

/// Which files change, from the sources files read and the target's state.
pub fn plan_changes(
    a: &Args,
    lists: &[(String, String)],
    target_path: &str,
    target: &super::remote::PathState,
) -> Result<Vec<Change>, String> {
    let line = normalize(&a.repo);
    let mode = a.mode.clone().unwrap_or_else(|| "0644".into());
    let present = match a.state.as_deref().unwrap_or("present") {
        "present" => true,
        "absent" => false,
        other => {
            return Err(format!(
                "value of state must be one of: absent, present; got: {other}"
            ))
        }
    };
    let mut changes = vec![];
    if present {
        if lists.iter().any(|(_, c)| has_line(c, &line)) {
            // Present somewhere; only the mode of our own file may need setting.
            if target.kind == super::remote::Kind::File && a.mode.is_some() {
                if let Some(c) =
                    files::change(target_path, target, target.content.as_deref(), &mode)
                {
                    changes.push(c);
                }
            }
            return Ok(changes);
        }
        let mut content = match &target.content {
            Some(c) if target.kind == super::remote::Kind::File => {
                String::from_utf8_lossy(c).into_owned()
            }
            _ => String::new(),
        };
        if !content.is_empty() && !content.ends_with('\n') {
            content.push('\n');
        }
        content.push_str(&line);
        content.push('\n');
        if let Some(c) = files::change(target_path, target, Some(content.as_bytes()), &mode) {
            changes.push(c);
        }
    } else {
        for (path, content) in lists {
            if has_line(content, &line) {
                let after = without_line(content, &line);
                changes.push(Change {
                    path: path.clone(),
                    before: Some(content.clone().into_bytes()),
                    after: after.map(String::into_bytes),
                    mode: mode.clone(),
                });
            }
        }
    }
    Ok(changes)
}

pub struct AptRepository;

impl Module for AptRepository {
    const NAME: &'static str = "apt_repository";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        check_repo(&a.repo).map_err(ModuleError::Failed)?;
        let path = target(a).map_err(ModuleError::Failed)?;
        let out = ctx.exec(list_script()).await?;
        let text = out.stdout_str();
        if !text.contains("HLSRC-END") {
            return Err(ModuleError::Failed(format!(
                "{}: could not read the APT sources: {}",
                ctx.host,
                out.stderr_str().trim()
            )));
        }
        let mut lists = parse_lists(&text);
        // The target file as this run would have left it (check mode), with its mode.
        let st = files::probe(ctx, std::slice::from_ref(&path))
            .await?
            .remove(0);
        lists.retain(|(p, _)| p != &path);
        if st.kind == super::remote::Kind::File {
            lists.push((
                path.clone(),
                String::from_utf8_lossy(st.content.as_deref().unwrap_or_default()).into_owned(),
            ));
        }
        let changes = plan_changes(a, &lists, &path, &st).map_err(ModuleError::Failed)?;
        Ok(Plan { changes })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let mut r = TaskResult::changed(!p.changes.is_empty())
            .with("repo", a.repo.clone())
            .with("state", a.state.clone().unwrap_or_else(|| "present".into()))
            .with("sources_added", files_of(&p.changes, true))
            .with("sources_removed", files_of(&p.changes, false));
        if ctx.diff {
            r.diff = files::diffs(&p.changes);
        }
        if !p.changes.is_empty() && ctx.check && a.update_cache.unwrap_or(true) {
            r = r.msg("the package cache would be updated after the change");
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        files::apply(ctx, &p.changes).await?;
        if a.update_cache.unwrap_or(true) {
            if let Err(e) = super::apt::run_update(ctx, 60).await {
                let undo = files::restore(ctx, &p.changes).await;
                return Ok(TaskResult::failed(format!(
                    "{e}; the sources were put back as they were{}",
                    match undo {
                        Ok(()) => String::new(),
                        Err(u) => format!(" (restoring failed too: {u})"),
                    }
                )));
            }
            return Ok(done.with("cache_updated", true));
        }
        Ok(done)
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        files::simulate(ctx, &p.changes);
    }
}

fn files_of(changes: &[Change], added: bool) -> Vec<String> {
    changes
        .iter()
        .filter(|c| c.after.is_some() == added)
        .map(|c| c.path.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::remote::{Kind, PathState};
    use serde_json::json;

    fn absent() -> PathState {
        PathState {
            kind: Kind::Absent,
            mode: 0,
            owner: String::new(),
            group: String::new(),
            uid: 0,
            gid: 0,
            size: 0,
            link_target: None,
            checksum: None,
            content: None,
            parent_exists: true,
        }
    }

    #[test]
    fn filenames_as_ansible_names_them() {
        assert_eq!(
            suggest_filename("deb [signed-by=/etc/apt/keyrings/x.gpg] http://dl.google.com/linux/chrome/deb/ stable main"),
            "dl_google_com_linux_chrome_deb"
        );
        assert_eq!(
            suggest_filename("deb [trusted=yes] file:/srv/pkg-repo ./"),
            "file_srv_pkg_repo"
        );
        assert_eq!(
            suggest_filename("deb https://user:pw@repo.example.org/debian bookworm main"),
            "repo_example_org_debian"
        );
    }

    #[test]
    fn repo_lines_are_checked() {
        assert!(check_repo("deb [trusted=yes] file:/srv/x ./").is_ok());
        assert!(check_repo("deb-src http://a/b bookworm main").is_ok());
        assert!(check_repo("http://a/b bookworm").is_err());
        assert!(check_repo("deb http://a/b").is_err());
        assert!(check_repo("deb [trusted=yes file:/x ./").is_err());
    }

    #[test]
    fn plans_present_and_absent() {
        let a: Args = serde_json::from_value(
            json!({"repo": "deb  [trusted=yes] file:/srv/x ./", "filename": "pkg-x"}),
        )
        .unwrap();
        let t = target(&a).unwrap();
        assert_eq!(t, "/etc/apt/sources.list.d/pkg-x.list");
        let c = plan_changes(&a, &[], &t, &absent()).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].after.as_deref(),
            Some(&b"deb [trusted=yes] file:/srv/x ./\n"[..])
        );
        // Already there in another file: nothing to do.
        let lists = vec![(
            "/etc/apt/sources.list".to_string(),
            "deb http://deb.debian.org/debian bookworm main\ndeb [trusted=yes] file:/srv/x ./\n"
                .to_string(),
        )];
        assert!(plan_changes(&a, &lists, &t, &absent()).unwrap().is_empty());
        // Absent: removed from that file, which keeps its other source.
        let a: Args = serde_json::from_value(
            json!({"repo": "deb [trusted=yes] file:/srv/x ./", "state": "absent"}),
        )
        .unwrap();
        let c = plan_changes(&a, &lists, &t, &absent()).unwrap();
        assert_eq!(
            c[0].after.as_deref(),
            Some(&b"deb http://deb.debian.org/debian bookworm main\n"[..])
        );
        // A file left with comments only is removed.
        let lists = vec![(
            t.clone(),
            "# x\ndeb [trusted=yes] file:/srv/x ./\n".to_string(),
        )];
        let c = plan_changes(&a, &lists, &t, &absent()).unwrap();
        assert!(c[0].after.is_none());
        assert_eq!(files_of(&c, false), vec![t]);
    }

    #[test]
    fn lists_parse() {
        let out = "\nHLSRC /etc/apt/sources.list\ndeb a b\n\nHLSRC /etc/apt/sources.list.d/x.list\ndeb c d\n\nHLSRC-END\n";
        let l = parse_lists(out);
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[1],
            ("/etc/apt/sources.list.d/x.list".into(), "deb c d\n".into())
        );
    }
}
