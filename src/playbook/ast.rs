//! The playbook as the engine runs it: plays, task items (tasks, blocks, dynamic includes),
//! handlers and roles, each with where it came from (file:line:column) for error messages.
//! Strings are kept untemplated: the engine templates them per host at run time.

use serde_json::{Map, Value};
use std::path::PathBuf;

/// Where something was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Playbook {
    pub path: PathBuf,
    /// Plays in order, `import_playbook` already expanded.
    pub plays: Vec<Play>,
}

/// `serial:` batch sizes: numbers or percentages, the last one repeating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serial {
    Count(usize),
    Percent(u32),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    #[default]
    Linear,
    Free,
}

/// Keywords that plays, blocks and tasks share and that children inherit unless they set them.
#[derive(Debug, Clone, Default)]
pub struct Inherited {
    /// true/false, or a template deciding per host.
    pub become_: Option<Value>,
    pub become_user: Option<String>,
    pub become_method: Option<String>,
    pub become_flags: Option<String>,
    pub remote_user: Option<String>,
    /// `when:` conditions of this level (all must hold); children add theirs.
    pub when: Vec<String>,
    pub tags: Vec<String>,
    /// `environment:` (a mapping, or a template string giving one).
    pub environment: Option<Value>,
    pub vars: Map<String, Value>,
    /// true/false, or a template deciding per host (these three).
    pub no_log: Option<Value>,
    pub ignore_errors: Option<Value>,
    pub ignore_unreachable: Option<bool>,
    pub check_mode: Option<Value>,
    pub diff: Option<Value>,
    pub any_errors_fatal: Option<bool>,
    pub delegate_to: Option<String>,
    pub run_once: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct Play {
    pub name: Option<String>,
    /// The host pattern (untemplated).
    pub hosts: String,
    pub keywords: Inherited,
    pub vars_files: Vec<Value>,
    pub gather_facts: Option<bool>,
    pub gather_subset: Vec<String>,
    /// `gather_timeout:` (seconds), as written.
    pub gather_timeout: Option<Value>,
    pub serial: Vec<Serial>,
    pub max_fail_percentage: Option<f64>,
    pub strategy: Strategy,
    pub force_handlers: bool,
    /// Roles of `roles:`, in order, their dependencies first.
    pub roles: Vec<Role>,
    pub pre_tasks: Vec<TaskItem>,
    pub tasks: Vec<TaskItem>,
    pub post_tasks: Vec<TaskItem>,
    /// The play's handlers plus those of its roles.
    pub handlers: Vec<Task>,
    /// The folder of the playbook file this play is in (for relative paths).
    pub dir: PathBuf,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum TaskItem {
    Task(Box<Task>),
    Block(Box<Block>),
}

#[derive(Debug, Clone, Default)]
pub struct Block {
    pub name: Option<String>,
    pub keywords: Inherited,
    pub block: Vec<TaskItem>,
    pub rescue: Vec<TaskItem>,
    pub always: Vec<TaskItem>,
    pub origin: Origin,
    /// Set on the block an `import_role` (or a role's dependency inside it) became: the role's
    /// name, path, params, defaults and vars, for its scope. Its `tasks` are empty (they are
    /// this block's `block`) and its handlers are already in the play's `handlers`.
    pub role: Option<Box<Role>>,
}

/// `loop_control:`.
#[derive(Debug, Clone, Default)]
pub struct LoopControl {
    pub loop_var: Option<String>,
    pub index_var: Option<String>,
    pub label: Option<String>,
    pub pause: Option<f64>,
    pub extended: bool,
}

/// A task (or handler). `action` is the canonical module name (`ansible.builtin.copy` → `copy`);
/// dynamic includes (`include_tasks`, `include_role`) are tasks too and are expanded at run time.
#[derive(Debug, Clone, Default)]
pub struct Task {
    pub name: Option<String>,
    pub action: String,
    /// The module's arguments, untemplated. Free-form text (`command: ls -l`, `copy: src=a dest=b`
    /// once split) goes under `_raw_params` for the modules that take it.
    pub args: Map<String, Value>,
    pub keywords: Inherited,
    /// `loop:` / `with_items:` / `with_list:` / `with_dict:` ... as (lookup name, value).
    pub loop_: Option<(String, Value)>,
    pub loop_control: LoopControl,
    pub register: Option<String>,
    pub notify: Vec<String>,
    /// Handlers: the names this handler also answers to.
    pub listen: Vec<String>,
    pub changed_when: Option<Vec<String>>,
    pub failed_when: Option<Vec<String>>,
    pub until: Option<Vec<String>>,
    pub retries: Option<Value>,
    pub delay: Option<Value>,
    /// `delegate_facts:` (facts gathered or set go to the delegated host).
    pub delegate_facts: Option<bool>,
    /// Set on tasks that came from a role, for `role_name`, `role_path` and file lookups.
    pub role: Option<RoleRef>,
    /// `include_tasks` / `include_role`: the keywords of `apply:`, for the included tasks.
    pub apply: Option<Inherited>,
    pub origin: Origin,
}

/// The role a task belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleRef {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct Role {
    pub name: String,
    pub path: PathBuf,
    /// Parameters given where the role is used (`roles: [{role: x, foo: 1}]`): role params.
    pub params: Map<String, Value>,
    pub keywords: Inherited,
    pub defaults: Map<String, Value>,
    pub vars: Map<String, Value>,
    pub tasks: Vec<TaskItem>,
    /// This role's handlers (for reference: in a play they are also in `Play::handlers`,
    /// which is the list to notify from).
    pub handlers: Vec<Task>,
    pub origin: Origin,
}
