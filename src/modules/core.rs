//! The shape every module shares: typed arguments that reject unknown keys; a probe that reads the
//! host's state in one round trip and computes a plan (the change and its diff); apply runs that
//! plan. [`drive`] is the only way a module runs: check mode gets the very plan a real run would
//! apply, and stops before apply, so the dry run cannot drift from the real run.

use super::remote::Want;
use crate::transport::{Become, Connection, ExecOutput, ExecRequest, TransportError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::future::Future;
use std::path::PathBuf;

/// What a module gets to work with on one host.
pub struct TaskCtx<'a> {
    pub host: &'a str,
    pub conn: &'a Connection,
    pub become_: Option<&'a Become>,
    /// --check: plan only, change nothing.
    pub check: bool,
    /// --diff: fill in diffs.
    pub diff: bool,
    /// Where relative `src:` paths are looked up on the controller (role files/, playbook dir...).
    pub search: &'a [PathBuf],
    /// Environment variables for commands (`environment:`).
    pub env: &'a [(String, String)],
    /// Renders a template file's text (name, source) with the task's variables (template module).
    pub render: Option<&'a Renderer<'a>>,
    /// In check mode: what earlier tasks of this run would have done to paths on this host, so a
    /// plan reads as the real run would go (a file planned into a folder planned just before).
    pub planned: Option<&'a Planned>,
    /// Path states probed earlier on this host, and the paths the next tasks will probe (see
    /// [`PathCache`]); `None` probes every path when asked.
    pub paths: Option<PathProbes<'a>>,
}

/// The paths (and what to read of them) that the tasks after this one will probe first.
pub type Ahead<'a> = dyn Fn() -> Vec<(String, Want)> + Sync + 'a;

/// A host's [`PathCache`] and the look ahead for the task at hand.
#[derive(Clone, Copy)]
pub struct PathProbes<'a> {
    pub cache: &'a PathCache,
    pub ahead: Option<&'a Ahead<'a>>,
}

impl PathProbes<'_> {
    /// Adds the paths the next tasks will probe to `batch` (unless looking ahead is off for now;
    /// with `cached_for`, not those already read for that user), up to [`AHEAD_MAX`] in all.
    fn add_ahead(&self, batch: &mut Vec<(String, Want)>, cached_for: Option<&str>) {
        let Some(ahead) = self.ahead.filter(|_| self.cache.look_ahead()) else {
            return;
        };
        for (p, w) in ahead() {
            if batch.len() >= AHEAD_MAX {
                break;
            }
            let cached = cached_for.is_some_and(|who| self.cache.has(who, &p, w));
            if !cached && !batch.iter().any(|(q, _)| *q == p) {
                batch.push((p, w));
            }
        }
    }
}

/// Path states read from one host, kept for the tasks that follow: when a path is probed, the
/// paths the next file tasks will probe are read in the same round trip, with one `stat` for all,
/// so a run of unchanged file tasks costs one round trip instead of one each.
///
/// An entry is only ever used while nothing may have changed the host since it was read: every
/// command other than a probe (a write, a package install, a `command:` task) empties the cache,
/// as does a pause; so does any error. A task sees the state it would have probed itself; what
/// another process on the host changes in between is as racy as with a probe per task.
#[derive(Default)]
pub struct PathCache(std::sync::Mutex<CacheState>);

#[derive(Default)]
struct CacheState {
    /// Bumped on every change of the host we cause: a batch read before it is not kept.
    generation: u64,
    entries: std::collections::HashMap<(String, String), (Want, super::remote::PathState)>,
    /// Look-ahead paths of the last batch not yet used, and how many batches to skip looking ahead
    /// after the previous look ahead was wasted (a host where every task changes something).
    unused: usize,
    used: bool,
    backoff: u32,
    skip: u32,
}

impl PathCache {
    fn get(&self, who: &str, path: &str, want: Want) -> Option<super::remote::PathState> {
        let mut c = self.0.lock().ok()?;
        let (have, st) = c.entries.get(&(who.to_string(), path.to_string()))?;
        let st = have.covers(want).then(|| st.clone())?;
        c.used = true;
        Some(st)
    }

    /// Forgets everything: the host may have changed.
    pub fn clear(&self) {
        if let Ok(mut c) = self.0.lock() {
            c.generation += 1;
            c.entries.clear();
            if c.unused > 0 && !c.used {
                c.backoff = (c.backoff * 2).clamp(1, 16);
                c.skip = c.backoff;
            }
            c.unused = 0;
        }
    }

    /// Whether to look ahead now (false for a while after look-ahead reads went unused).
    fn look_ahead(&self) -> bool {
        let Ok(mut c) = self.0.lock() else {
            return false;
        };
        if c.used {
            c.backoff = 0;
            c.skip = 0;
        }
        if c.skip > 0 {
            c.skip -= 1;
            return false;
        }
        true
    }

    fn generation(&self) -> u64 {
        self.0.lock().map(|c| c.generation).unwrap_or(u64::MAX)
    }

    fn has(&self, who: &str, path: &str, want: Want) -> bool {
        self.0.lock().is_ok_and(|c| {
            c.entries
                .get(&(who.to_string(), path.to_string()))
                .is_some_and(|(have, _)| have.covers(want))
        })
    }

    /// Keeps a batch read at `generation` (dropped if the host changed since).
    fn put(
        &self,
        generation: u64,
        who: &str,
        batch: Vec<((String, Want), super::remote::PathState)>,
    ) {
        let Ok(mut c) = self.0.lock() else { return };
        if c.generation != generation {
            return;
        }
        c.unused = batch.len().saturating_sub(1);
        c.used = false;
        for ((path, want), st) in batch {
            c.entries.insert((who.to_string(), path), (want, st));
        }
    }
}

/// The user path states are read as (the become user; "" for the login user): a cache key.
pub fn who(b: Option<&Become>) -> &str {
    b.map(|b| b.user.as_str()).unwrap_or("")
}

/// Most paths one probe reads ahead.
const AHEAD_MAX: usize = 24;

/// A path as an earlier task in check mode would have left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedPath {
    Absent,
    Directory,
    File {
        content: Option<Vec<u8>>,
        mode: Option<u32>,
    },
}

/// Per-host record of planned path states (check mode only).
#[derive(Debug, Default)]
pub struct Planned(
    std::sync::Mutex<std::collections::HashMap<String, PlannedPath>>,
    /// An earlier task whose effect on files cannot be known before it runs (a package that
    /// would be installed creates folders such as /etc/haproxy): what it was.
    std::sync::Mutex<Option<String>>,
);

impl Planned {
    /// Records that an earlier task (e.g. a package install) would create files nobody can list
    /// before it runs. Later tasks then plan writes into missing folders instead of failing.
    pub fn set_opaque(&self, what: &str) {
        if let Ok(mut o) = self.1.lock() {
            o.get_or_insert_with(|| what.to_string());
        }
    }
    /// The earlier task with unknowable file effects, if any.
    pub fn opaque(&self) -> Option<String> {
        self.1.lock().ok().and_then(|o| o.clone())
    }
    pub fn set(&self, path: &str, p: PlannedPath) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(path.trim_end_matches('/').to_string(), p);
        }
    }
    pub fn get(&self, path: &str) -> Option<PlannedPath> {
        self.0
            .lock()
            .ok()
            .and_then(|m| m.get(path.trim_end_matches('/')).cloned())
    }
    /// Whether `path` or a folder above it is planned to be removed.
    fn removed(&self, path: &str) -> bool {
        let mut p = std::path::Path::new(path);
        loop {
            if self.get(&p.display().to_string()) == Some(PlannedPath::Absent) {
                return true;
            }
            match p.parent() {
                Some(q) if !q.as_os_str().is_empty() => p = q,
                _ => return false,
            }
        }
    }
}

/// Renders a template source (name for errors, text) to text.
pub type Renderer<'a> = dyn Fn(&str, &str) -> Result<String, String> + Sync + 'a;

impl TaskCtx<'_> {
    /// Adjusts a probed path state by what earlier tasks would have done (check mode).
    pub fn overlay(&self, path: &str, st: &mut super::remote::PathState) {
        use super::remote::Kind;
        let Some(planned) = self.planned else { return };
        if let Some(parent) = std::path::Path::new(path).parent() {
            let parent = parent.display().to_string();
            match planned.get(&parent) {
                Some(PlannedPath::Directory) => st.parent_exists = true,
                Some(_) => st.parent_exists = false,
                None if planned.removed(&parent) => st.parent_exists = false,
                // A missing folder that an earlier planned package install may create.
                None if !st.parent_exists && planned.opaque().is_some() => st.parent_exists = true,
                None => {}
            }
        }
        let now = match planned.get(path) {
            Some(p) => Some(p),
            None if planned.removed(path) => Some(PlannedPath::Absent),
            None => None,
        };
        match now {
            None => {}
            Some(PlannedPath::Absent) => {
                st.kind = Kind::Absent;
                st.content = None;
                st.checksum = None;
                st.size = 0;
            }
            Some(PlannedPath::Directory) if st.kind != Kind::Directory => {
                st.kind = Kind::Directory;
                st.mode = 0o755;
            }
            Some(PlannedPath::Directory) => {}
            Some(PlannedPath::File { content, mode }) => {
                if st.kind == Kind::Absent {
                    st.mode = 0o644;
                }
                st.kind = Kind::File;
                if let Some(m) = mode {
                    st.mode = m;
                }
                if let Some(c) = content {
                    st.size = c.len() as u64;
                    st.checksum = Some(super::copy::sha1_hex(&c));
                    st.content = Some(c);
                }
            }
        }
    }

    /// Records what this (check mode) task would leave at `path`.
    pub fn plan_path(&self, path: &str, p: PlannedPath) {
        if let Some(planned) = self.planned {
            planned.set(path, p);
        }
    }

    /// The state of `path` (a module's first probe): from the cache when an earlier probe read it
    /// and nothing changed since; else read now, with the paths the next tasks will probe.
    pub async fn probe_path(
        &self,
        path: &str,
        want: Want,
    ) -> Result<super::remote::PathState, ModuleError> {
        use super::remote;
        let Some(paths) = self.paths else {
            return self.probe_one(path, want).await;
        };
        let who = who(self.become_);
        if let Some(st) = paths.cache.get(who, path, want) {
            return Ok(st);
        }
        let mut batch = vec![(path.to_string(), want)];
        paths.add_ahead(&mut batch, Some(who));
        let generation = paths.cache.generation();
        let states = if batch.len() == 1 {
            vec![self.probe_one(path, want).await?]
        } else {
            let token = crate::transport::shell::random_token();
            let out = self
                .exec_probe(remote::probe_many_script(&batch, &token))
                .await?;
            remote::parse_many(&out.stdout, batch.len(), &token).map_err(ModuleError::Failed)?
        };
        let first = states[0].clone();
        paths
            .cache
            .put(generation, who, batch.into_iter().zip(states).collect());
        Ok(first)
    }

    /// One path's state, read now (the cache neither used nor changed).
    async fn probe_one(
        &self,
        path: &str,
        want: Want,
    ) -> Result<super::remote::PathState, ModuleError> {
        use super::remote;
        let out = self.exec_probe(remote::probe_script(path, want)).await?;
        remote::parse_probe(&out.stdout).map_err(ModuleError::Failed)
    }

    /// Runs a read-only command (a probe): the path cache stays.
    async fn exec_probe(&self, command: String) -> Result<ExecOutput, ModuleError> {
        self.run(command, None, None).await
    }

    /// Runs a command on the host with this task's privilege escalation and environment.
    pub async fn exec(&self, command: impl Into<String>) -> Result<ExecOutput, ModuleError> {
        self.exec_with(command, None).await
    }

    pub async fn exec_with(
        &self,
        command: impl Into<String>,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ModuleError> {
        self.exec_limited(command, stdin, None).await
    }

    /// Runs a command that changes files (a write), then, in the same round trip and only when
    /// it succeeded, probes the paths the next tasks will probe: a run of file tasks that each
    /// change something costs one round trip per task, not two. The output is the command's.
    pub async fn exec_write(
        &self,
        command: String,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ModuleError> {
        let Some(paths) = self.paths else {
            return self.exec_with(command, stdin).await;
        };
        let mut batch: Vec<(String, Want)> = vec![];
        paths.add_ahead(&mut batch, None);
        if batch.is_empty() {
            return self.exec_with(command, stdin).await;
        }
        let token = crate::transport::shell::random_token();
        let script = format!(
            "{{ {command}\n}}; hlrc=$?; if [ $hlrc = 0 ]; then printf '\\n%s\\n' {token}; {}fi; exit $hlrc",
            super::remote::probe_many_script(&batch, &token)
        );
        let out = self.run(script, stdin, None).await;
        paths.cache.clear();
        let mut out = out?;
        let mark = format!("\n{token}\n");
        let at = out
            .stdout
            .windows(mark.len())
            .position(|w| w == mark.as_bytes());
        if let Some(at) = at {
            let probed = out.stdout.split_off(at);
            let probed = &probed[mark.len()..];
            // Read after the write, in the same command: current as of now.
            if let Ok(states) = super::remote::parse_many(probed, batch.len(), &token) {
                let who = who(self.become_);
                let generation = paths.cache.generation();
                paths
                    .cache
                    .put(generation, who, batch.into_iter().zip(states).collect());
            }
        }
        Ok(out)
    }

    /// Like [`TaskCtx::exec_with`], stopped (and an error) when it runs longer than `timeout`.
    pub async fn exec_limited(
        &self,
        command: impl Into<String>,
        stdin: Option<Vec<u8>>,
        timeout: Option<std::time::Duration>,
    ) -> Result<ExecOutput, ModuleError> {
        let out = self.run(command.into(), stdin, timeout).await;
        // The command may have changed anything on the host (the cache holds no paths it knows).
        if let Some(p) = self.paths {
            p.cache.clear();
        }
        out
    }

    async fn run(
        &self,
        mut command: String,
        stdin: Option<Vec<u8>>,
        timeout: Option<std::time::Duration>,
    ) -> Result<ExecOutput, ModuleError> {
        if !self.env.is_empty() {
            let mut prefix = String::from("export");
            for (k, v) in self.env {
                prefix.push(' ');
                prefix.push_str(k);
                prefix.push('=');
                prefix.push_str(&crate::transport::shell_quote(v));
            }
            command = format!("{prefix}; {command}");
        }
        let req = ExecRequest {
            command,
            stdin,
            become_: self.become_.cloned(),
            timeout,
        };
        Ok(self.conn.exec(&req).await?)
    }

    /// Finds a controller-side file named in `src:` (see [`find_src`]).
    pub fn find_file(&self, sub: &str, name: &str) -> Result<PathBuf, ModuleError> {
        find_src(self.search, sub, name)
    }
}

/// Finds a controller-side file named in `src:`: absolute as is, else `DIR/SUB/NAME` or
/// `DIR/NAME` in the search folders, in order.
pub fn find_src(search: &[PathBuf], sub: &str, name: &str) -> Result<PathBuf, ModuleError> {
    let p = PathBuf::from(name);
    if p.is_absolute() {
        return if p.exists() {
            Ok(p)
        } else {
            Err(ModuleError::Failed(format!("could not find src={name}")))
        };
    }
    let mut tried = Vec::new();
    for dir in search {
        for cand in [dir.join(sub).join(name), dir.join(name)] {
            if cand.exists() {
                return Ok(cand);
            }
            tried.push(cand.display().to_string());
        }
    }
    Err(ModuleError::Failed(format!(
        "could not find or access '{name}'; searched: {}",
        tried.join(", ")
    )))
}

/// A file's content before and after, for `--diff`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileDiff {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
    /// Set instead of content when the diff is skipped (binary or huge file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// What a task did (or, in check mode, would do) on one host.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TaskResult {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FileDiff>,
    /// Module-specific fields (rc, stdout, stat, path, ...), as Ansible names them.
    #[serde(flatten)]
    pub data: Map<String, Value>,
}

impl TaskResult {
    pub fn changed(changed: bool) -> Self {
        TaskResult {
            changed,
            ..Default::default()
        }
    }
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), v.into());
        self
    }
    pub fn msg(mut self, m: impl Into<String>) -> Self {
        self.msg = Some(m.into());
        self
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        TaskResult {
            failed: true,
            msg: Some(msg.into()),
            ..Default::default()
        }
    }
    /// The registered value, as Ansible's `register:` sees it.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("unsupported parameters for ({module}) module: {msg}")]
    Args { module: String, msg: String },
    /// The module ran and failed; the task fails with this message.
    #[error("{0}")]
    Failed(String),
}

/// A module: typed arguments, a plan from a one-round-trip probe, and apply.
pub trait Module {
    const NAME: &'static str;
    type Args: DeserializeOwned + Send + Sync;
    type Plan: Send + Sync;

    /// Reads the host's state (one round trip where possible) and decides what to change.
    fn plan(
        ctx: &TaskCtx<'_>,
        args: &Self::Args,
    ) -> impl Future<Output = Result<Self::Plan, ModuleError>> + Send;

    /// The result the plan stands for: changed or not, its diff, its fields. Check mode returns
    /// exactly this.
    fn describe(ctx: &TaskCtx<'_>, args: &Self::Args, plan: &Self::Plan) -> TaskResult;

    /// Carries the plan out. Called only when `describe` said changed and not in check mode.
    fn apply(
        ctx: &TaskCtx<'_>,
        args: &Self::Args,
        plan: Self::Plan,
        described: TaskResult,
    ) -> impl Future<Output = Result<TaskResult, ModuleError>> + Send;

    /// Check mode: records what apply would leave behind (see [`TaskCtx::overlay`]).
    fn simulate(_ctx: &TaskCtx<'_>, _args: &Self::Args, _plan: &Self::Plan) {}

    /// The paths (and what to read of them) that `plan` probes first through
    /// [`TaskCtx::probe_path`], known from the arguments alone: a task before this one reads
    /// them in its own round trip (see [`PathCache`]). A wrong answer costs a wasted read, never
    /// a wrong plan. `None`: this module probes otherwise (a look ahead stops here).
    fn hint(_args: &Self::Args, _diff: bool) -> Option<Vec<(String, Want)>> {
        None
    }

    /// Modules that cannot know their effect without running (command, shell) say so in check
    /// mode; the default is that the plan is exact.
    fn runs_in_check_mode() -> bool {
        false
    }
}

/// Parses arguments into the module's type; unknown keys are refused with the known ones listed.
pub fn parse_args<M: Module>(args: &Value) -> Result<M::Args, ModuleError> {
    let v = match args {
        Value::Null => Value::Object(Map::new()),
        v => v.clone(),
    };
    serde_json::from_value(v).map_err(|e| {
        let mut msg = e.to_string();
        if msg.starts_with("unknown field") {
            msg = format!("{msg}; supported: {}", field_names::<M::Args>().join(", "));
        }
        ModuleError::Args {
            module: M::NAME.to_string(),
            msg,
        }
    })
}

/// [`Module::hint`] from untyped arguments (`None` when they do not parse).
pub fn hint<M: Module>(args: &Value, diff: bool) -> Option<Vec<(String, Want)>> {
    M::hint(&parse_args::<M>(args).ok()?, diff)
}

/// Runs a module: parse → plan → describe → (unless check mode or nothing to change) apply.
pub async fn drive<M: Module>(ctx: &TaskCtx<'_>, args: &Value) -> Result<TaskResult, ModuleError> {
    let args = parse_args::<M>(args)?;
    let plan = M::plan(ctx, &args).await?;
    let described = M::describe(ctx, &args, &plan);
    if described.failed || !described.changed {
        return Ok(described);
    }
    if ctx.check && !M::runs_in_check_mode() {
        M::simulate(ctx, &args, &plan);
        return Ok(described);
    }
    M::apply(ctx, &args, plan, described).await
}

/// The field names (aliases included) a `Deserialize` struct accepts, read from serde itself, so
/// the playbook loader can refuse unknown arguments before any host is touched.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Ansible's boolean spellings, for arguments given as strings (`yes`, `on`, `1`, `true`...).
pub mod boolish {
    use serde::{Deserialize, Deserializer};

    pub fn parse(v: &serde_json::Value) -> Option<bool> {
        match v {
            serde_json::Value::Bool(b) => Some(*b),
            serde_json::Value::Number(n) => n.as_i64().map(|i| i != 0),
            serde_json::Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "on" | "1" | "true" | "y" | "t" => Some(true),
                "no" | "off" | "0" | "false" | "n" | "f" | "" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        parse(&v).ok_or_else(|| serde::de::Error::custom(format!("'{v}' is not a valid boolean")))
    }

    pub mod option {
        use serde::{Deserialize, Deserializer};
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
            let v = Option::<serde_json::Value>::deserialize(d)?;
            match v {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => super::parse(&v).map(Some).ok_or_else(|| {
                    serde::de::Error::custom(format!("'{v}' is not a valid boolean"))
                }),
            }
        }
    }
}

/// Seconds (or other numbers) given as a number or a numeric string (`timeout: "600"`).
pub mod numish {
    use serde::{Deserialize, Deserializer};
    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let v = Option::<serde_json::Value>::deserialize(d)?;
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
            Some(serde_json::Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("'{s}' is not a number"))),
            Some(other) => Err(serde::de::Error::custom(format!(
                "'{other}' is not a number"
            ))),
        }
    }
}

/// Strings or numbers as a string (YAML `mode: 0644` may arrive as a number or a string).
pub mod stringish {
    use serde::{Deserialize, Deserializer};
    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Option::<serde_json::Value>::deserialize(d)?;
        Ok(match v {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        })
    }
}

/// A file mode as Ansible reads it: a string is octal or symbolic text (`"0644"`, `u+x`); a
/// number is the mode's value itself, so YAML's `mode: 0644` (the integer 420) means 0o644.
pub mod modeish {
    use serde::{Deserialize, Deserializer};
    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Option::<serde_json::Value>::deserialize(d)?;
        Ok(match v {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Number(n)) => match n.as_u64() {
                Some(m) => Some(format!("0{m:o}")),
                None => {
                    return Err(serde::de::Error::custom(format!(
                        "mode {n} is not a file mode: write it quoted, e.g. mode: \"0644\""
                    )))
                }
            },
            Some(other) => Some(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(size: u64) -> super::super::remote::PathState {
        super::super::remote::PathState {
            kind: super::super::remote::Kind::File,
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            uid: 0,
            gid: 0,
            size,
            link_target: None,
            checksum: None,
            content: None,
            parent_exists: true,
        }
    }

    #[test]
    fn the_path_cache_serves_only_what_was_read_since_the_last_change() {
        let c = PathCache::default();
        let plain = Want::default();
        let content = Want {
            checksum: false,
            content_limit: 100,
        };
        let g = c.generation();
        c.put(
            g,
            "",
            vec![
                (("/a".into(), content), state(1)),
                (("/b".into(), plain), state(2)),
            ],
        );
        assert_eq!(c.get("", "/a", plain).map(|s| s.size), Some(1));
        assert_eq!(c.get("", "/a", content).map(|s| s.size), Some(1));
        // /b was read without its content; another user's view is not this one's.
        assert!(c.get("", "/b", content).is_none());
        assert!(c.get("app", "/a", plain).is_none());
        // A change empties it, and a batch read before the change is not kept.
        c.clear();
        assert!(c.get("", "/a", plain).is_none());
        c.put(g, "", vec![(("/a".into(), plain), state(1))]);
        assert!(c.get("", "/a", plain).is_none());
    }

    #[test]
    fn look_ahead_backs_off_while_its_reads_go_unused() {
        let c = PathCache::default();
        let w = Want::default();
        let batch = |c: &PathCache| {
            let g = c.generation();
            c.put(
                g,
                "",
                vec![(("/x".into(), w), state(0)), (("/y".into(), w), state(0))],
            );
        };
        assert!(c.look_ahead());
        batch(&c);
        c.clear(); // /y read ahead, never used: skip the next look ahead
        assert!(!c.look_ahead());
        assert!(c.look_ahead());
        batch(&c);
        c.clear();
        assert!(!c.look_ahead());
        assert!(!c.look_ahead());
        assert!(c.look_ahead());
        batch(&c);
        assert!(c.get("", "/y", w).is_some()); // used: look ahead at once again
        c.clear();
        assert!(c.look_ahead());
    }

    #[derive(serde::Deserialize)]
    struct M {
        #[serde(default, deserialize_with = "modeish::option")]
        mode: Option<String>,
    }

    #[test]
    fn integer_modes_are_values_as_in_ansible() {
        let m = |v: serde_json::Value| {
            serde_json::from_value::<M>(serde_json::json!({ "mode": v }))
                .map(|m| m.mode)
                .map_err(|e| e.to_string())
        };
        // YAML 1.1 reads `mode: 0644` as the integer 420.
        assert_eq!(m(serde_json::json!(420)), Ok(Some("0644".into())));
        assert_eq!(m(serde_json::json!("0644")), Ok(Some("0644".into())));
        assert_eq!(m(serde_json::json!("u+x")), Ok(Some("u+x".into())));
        assert!(m(serde_json::json!(-1)).is_err());
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct A {
        path: String,
        #[serde(alias = "dest")]
        p: Option<String>,
        #[serde(default, with = "boolish::option")]
        force: Option<bool>,
    }

    #[test]
    fn field_names_include_aliases() {
        assert_eq!(field_names::<A>(), ["path", "dest", "p", "force"]);
    }

    #[test]
    fn boolish_accepts_ansible_spellings() {
        let a: A =
            serde_json::from_value(serde_json::json!({"path": "x", "force": "yes"})).unwrap();
        assert_eq!(a.force, Some(true));
        let e = serde_json::from_value::<A>(serde_json::json!({"path": "x", "force": "maybe"}));
        assert!(e.is_err());
    }
}
