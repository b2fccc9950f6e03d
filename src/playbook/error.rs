//! What can go wrong while loading a playbook: always where (file:line:column) and what to do.

use super::ast::Origin;
use std::fmt;
use std::path::{Path, PathBuf};

/// Which kind of problem a [`LoadError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file cannot be read.
    Io,
    /// The YAML itself is broken (position from the parser).
    Syntax,
    /// A key that is not a keyword here (play, block, task, loop_control, role meta ...).
    UnknownKeyword,
    /// A module homelab does not know.
    UnknownModule,
    /// Arguments a module does not take.
    UnknownArgument,
    /// A keyword with a value of the wrong type or an impossible value.
    BadValue,
    /// Something the playbook needs is missing (hosts, a role, an imported file, a handler).
    Missing,
    /// Valid Ansible that homelab does not do (yet).
    Unsupported,
}

/// A playbook that cannot be loaded. `origin.line == 0` means "the file as a whole".
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct LoadError {
    pub kind: ErrorKind,
    pub origin: Origin,
    pub message: String,
}

impl LoadError {
    pub fn new(kind: ErrorKind, origin: Origin, message: impl Into<String>) -> LoadError {
        LoadError {
            kind,
            origin,
            message: message.into(),
        }
    }

    /// An error about a whole file (no position).
    pub fn file(kind: ErrorKind, path: &Path, message: impl Into<String>) -> LoadError {
        LoadError::new(
            kind,
            Origin {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
            },
            message,
        )
    }

    fn render(&self) -> String {
        if self.origin.line == 0 {
            format!("{}: {}", self.origin.file.display(), self.message)
        } else {
            format!("{}: {}", self.origin, self.message)
        }
    }
}

pub(crate) fn at(file: &Path, line: usize, column: usize) -> Origin {
    Origin {
        file: file.to_path_buf(),
        line,
        column,
    }
}

/// `' (did you mean 'x'?)'` or nothing.
pub(crate) fn did_you_mean(s: Option<&str>) -> String {
    match s {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

/// The candidate closest to `word` (edit distance at most 2, or a third of the word).
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = 2.max(word.chars().count() / 3);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbours (`whne` → `when`) each count one.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A path for messages: as given.
pub(crate) fn show(p: &Path) -> String {
    p.display().to_string()
}

pub(crate) fn list_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| show(p)).collect::<Vec<_>>().join(", ")
}
