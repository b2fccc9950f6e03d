//! The playbook loader: YAML playbooks in Ansible's syntax → [`ast`], with file:line:column on
//! every error, unknown keys and modules refused before any host is touched.
//!
//! YAML is read with PyYAML's typing rules (`mode: 0644` is the number 420, `yes` is true),
//! like Ansible. What is expanded now and what is left for run time:
//! - `import_playbook`, `import_tasks`, `import_role`, `roles:` and role dependencies are
//!   read now. An `import_tasks` becomes a [`ast::Block`] carrying the import's keywords; an
//!   `import_role` becomes a block whose [`ast::Block::role`] holds the role's scope (name,
//!   path, defaults, vars) around its dependencies' blocks and its tasks.
//! - `include_tasks` / `include_role` stay tasks (file or role checked now); at run time the
//!   engine calls [`load_tasks_file`] / [`load_role`].
//! - Handlers of roles come first in [`ast::Play::handlers`], then the play's own.

pub mod ast;
mod error;
mod keywords;
mod node;
mod play;
mod roles;
pub mod splitter;
mod tasks;

pub use error::{ErrorKind, LoadError};
pub use play::{load_handlers_file, load_playbook, load_tasks_file};
pub use roles::{load_role, role_candidates, RoleFrom};

use std::path::{Path, PathBuf};

/// Where an `include_tasks` target is, in the order it is looked for: next to the file the
/// include is written in, then (in a role) the role's `tasks/` (`handlers/` for handlers),
/// else the play's folder. The first that exists is the one.
pub fn tasks_file_candidates(
    target: &str,
    include_origin: &ast::Origin,
    role: Option<&ast::RoleRef>,
    play_dir: &Path,
    handlers: bool,
) -> Vec<PathBuf> {
    tasks::tasks_candidates(target, &include_origin.file, role, play_dir, handlers)
}

#[cfg(test)]
mod tests;
