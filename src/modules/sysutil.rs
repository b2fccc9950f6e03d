//! Helpers for the system modules (sysctl, modprobe, mount, hostname, timezone): read several small
//! configuration files in the same round trip as the module's own probe, compute their new text on
//! the controller, show unified diffs, write them atomically (remote.rs) or remove them, and follow
//! what earlier tasks would have left in check mode.

use super::core::{FileDiff, ModuleError, PlannedPath, TaskCtx};
use super::remote::{self, Kind, PathState, WriteOpts};
use crate::transport::shell_quote;
use base64::Engine as _;

/// A text file on the host as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFile {
    pub path: String,
    pub exists: bool,
    pub text: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl TextFile {
    pub fn absent(path: &str) -> TextFile {
        TextFile {
            path: path.to_string(),
            exists: false,
            text: String::new(),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }
}

/// A snippet printing `path`'s state and content (base64, one line), tagged `HLTF<idx>`.
pub fn text_probe(idx: usize, path: &str) -> String {
    let q = shell_quote(path);
    format!(
        "if [ -f {q} ]; then printf 'HLTF{idx} %s ' \"$(stat -L -c '%a %u %g' {q})\"; \
         base64 -w0 < {q}; echo; elif [ -e {q} ]; then echo 'HLTF{idx} notfile'; \
         else echo 'HLTF{idx} absent'; fi; "
    )
}

/// Reads what [`text_probe`] printed for `idx`.
pub fn parse_text(out: &str, idx: usize, path: &str) -> Result<TextFile, String> {
    let tag = format!("HLTF{idx} ");
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(&tag))
        .ok_or_else(|| format!("the host did not report the state of {path}"))?;
    match line.trim() {
        "absent" => return Ok(TextFile::absent(path)),
        "notfile" => return Err(format!("{path} exists and is not a regular file")),
        _ => {}
    }
    let f: Vec<&str> = line.split(' ').collect();
    if f.len() < 3 {
        return Err(format!("unexpected probe output for {path}: {line}"));
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(f.get(3).copied().unwrap_or("").trim())
        .map_err(|e| format!("could not read {path}: {e}"))?;
    let text = String::from_utf8(data).map_err(|_| format!("{path} is not a text file"))?;
    Ok(TextFile {
        path: path.to_string(),
        exists: true,
        text,
        mode: u32::from_str_radix(f[0], 8).unwrap_or(0o644),
        uid: f[1].parse().unwrap_or(0),
        gid: f[2].parse().unwrap_or(0),
    })
}

/// In check mode: the file as earlier tasks of this run would have left it.
pub fn overlay(ctx: &TaskCtx<'_>, f: &mut TextFile) {
    let Some(p) = ctx.planned else { return };
    match p.get(&f.path) {
        Some(PlannedPath::Absent) => *f = TextFile::absent(&f.path),
        Some(PlannedPath::File {
            content: Some(c), ..
        }) => {
            if let Ok(t) = String::from_utf8(c) {
                f.exists = true;
                f.text = t;
            }
        }
        _ => {}
    }
}

/// A planned change of one file: new content, or removal (`after: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub file: TextFile,
    pub after: Option<String>,
}

impl FileEdit {
    pub fn changed(&self) -> bool {
        match &self.after {
            Some(a) => !self.file.exists || *a != self.file.text,
            None => self.file.exists,
        }
    }

    pub fn diff(&self) -> FileDiff {
        remote::edit_diff(
            &self.file.path,
            self.file.exists.then_some(self.file.text.as_bytes()),
            self.after.as_deref().map(str::as_bytes),
        )
    }

    /// Check mode: records what apply would leave.
    pub fn simulate(&self, ctx: &TaskCtx<'_>) {
        if !self.changed() {
            return;
        }
        ctx.plan_path(
            &self.file.path,
            match &self.after {
                Some(a) => PlannedPath::File {
                    content: Some(a.clone().into_bytes()),
                    mode: Some(self.file.mode),
                },
                None => PlannedPath::Absent,
            },
        );
    }

    /// Writes (atomically, keeping mode and owner; the folder is made when missing) or removes
    /// the file. Returns the backup's path when one was made.
    pub async fn apply(
        &self,
        ctx: &TaskCtx<'_>,
        backup: bool,
    ) -> Result<Option<String>, ModuleError> {
        if !self.changed() {
            return Ok(None);
        }
        let path = &self.file.path;
        match &self.after {
            Some(a) => {
                let existing = PathState {
                    kind: Kind::File,
                    mode: self.file.mode,
                    owner: String::new(),
                    group: String::new(),
                    uid: self.file.uid,
                    gid: self.file.gid,
                    size: self.file.text.len() as u64,
                    link_target: None,
                    checksum: None,
                    content: None,
                    parent_exists: true,
                };
                let opts = WriteOpts {
                    mode: (!self.file.exists).then_some("0644"),
                    backup,
                    existing: self.file.exists.then_some(&existing),
                    ..Default::default()
                };
                remote::write_file(ctx, path, a.clone().into_bytes(), &opts, true).await
            }
            None => remote::remove_file(ctx, path).await.map(|()| None),
        }
    }
}

/// Lines of `text`, each with its newline; a last line without one gets one.
pub fn lines_nl(text: &str) -> Vec<String> {
    text.split_inclusive('\n')
        .map(|l| {
            if l.ends_with('\n') {
                l.to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probed_files() {
        let out = "x\nHLTF0 644 0 0 YQpiCg==\nHLTF1 absent\nHLTF2 notfile\n";
        let f = parse_text(out, 0, "/a").unwrap();
        assert_eq!((f.exists, f.text.as_str(), f.mode), (true, "a\nb\n", 0o644));
        assert!(!parse_text(out, 1, "/b").unwrap().exists);
        assert!(parse_text(out, 2, "/c").is_err());
        assert!(parse_text(out, 3, "/d").is_err());
        // An empty file.
        let f = parse_text("HLTF0 600 0 0 \n", 0, "/e").unwrap();
        assert!(f.exists && f.text.is_empty() && f.mode == 0o600);
    }

    #[test]
    fn edits_know_when_they_change() {
        let mut f = TextFile::absent("/x");
        let e = FileEdit {
            file: f.clone(),
            after: None,
        };
        assert!(!e.changed());
        let e = FileEdit {
            file: f.clone(),
            after: Some(String::new()),
        };
        assert!(e.changed(), "creating an empty file is a change");
        f.exists = true;
        f.text = "a\n".into();
        let e = FileEdit {
            file: f.clone(),
            after: Some("a\n".into()),
        };
        assert!(!e.changed());
        assert_eq!(lines_nl("a\nb"), ["a\n", "b\n"]);
    }
}
