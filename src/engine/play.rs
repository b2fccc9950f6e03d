//! The playbook runner: plays in order, hosts in `serial` batches, tasks in lockstep across a
//! batch (linear) or each host on its own (free), blocks with rescue/always, loops, handlers,
//! registered results, check mode and diffs. One connection per host for the whole run.

use super::facts;
use super::scope::{tags_allow, Chain};
use crate::inventory::Inventory;
use crate::modules::core::{Ahead, PathCache, PathProbes, Planned, TaskCtx, TaskResult};
use crate::modules::remote::Want;
use crate::output::play::{Printer, Stats, Status};
use crate::playbook::ast::{Block, Play, Playbook, Role, Serial, Strategy, Task, TaskItem};
use crate::template::{Prebuilt, Templar, Vars};
use crate::transport::spec::{truthy, ConnectionSpec, Defaults};
use crate::transport::ssh_config::SshConfig;
use crate::transport::{Become, BecomeMethod, Connection, ExecRequest};
use futures::stream::{self, StreamExt};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Options of one run.
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    pub limit: Option<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub extra_vars: Map<String, Value>,
    pub verbose: u8,
    /// `--fact-cache DIR`: facts kept between runs; gathering becomes "smart".
    pub fact_cache: Option<facts::cache::FactCache>,
}

/// What one host's state is during the run.
#[derive(Default)]
struct HostState {
    facts: Map<String, Value>,
    /// set_fact and registered results (above play vars, below extra vars).
    set_facts: Map<String, Value>,
    stats: Stats,
    failed: bool,
    unreachable: bool,
    notified: Vec<String>,
    /// Check mode: what earlier tasks would have done to paths on this host.
    planned: Arc<Planned>,
    /// Bumped whenever facts or set_facts change (so `hostvars` is rebuilt for this host only).
    vars_gen: u64,
}

type ConnCell = Arc<OnceCell<Result<Arc<Connection>, String>>>;

pub struct Runner {
    inv: Inventory,
    templar: Templar,
    printer: Printer,
    defaults: Defaults,
    ssh_config: SshConfig,
    opts: RunOptions,
    pool: Mutex<HashMap<String, ConnCell>>,
    hosts: Mutex<IndexMap<String, HostState>>,
    inv_vars: Mutex<HashMap<String, Map<String, Value>>>,
    /// Each host's `hostvars` entry and the `vars_gen` it was built at.
    hostvars_cache: Mutex<HashMap<String, (u64, Prebuilt)>>,
    /// Each host's facts (and `ansible_facts`), converted once per `vars_gen` and layered under
    /// every task's variables: converting them per task per host cost most of a run's CPU.
    facts_layer_cache: Mutex<HashMap<String, (u64, Prebuilt)>>,
    /// Fresh facts from the fact cache, by host (loaded once, at the start).
    cached_facts: HashMap<String, Map<String, Value>>,
    /// Roles loaded at run time by `include_role`, by path.
    dyn_roles: Mutex<HashMap<PathBuf, Arc<Role>>>,
    /// Handlers those roles brought.
    dyn_handlers: Mutex<Vec<Task>>,
    /// A play could not start (bad hosts pattern or --limit, vars_files): the run stopped.
    fatal: std::sync::atomic::AtomicBool,
    /// Why plays that leave `gather_facts` unset gather (`None`: nothing in the run reads facts;
    /// see [`facts::need`]). Decided once per run.
    facts_wanted: std::sync::OnceLock<Option<String>>,
    /// Path states read on each host, for the tasks that follow (see [`PathCache`]).
    path_caches: Mutex<HashMap<String, Arc<PathCache>>>,
    /// Look-ahead answers by (host, task, become user, diff): see [`Runner::hint_for`].
    hints: Mutex<HashMap<HintKey, Option<Hint>>>,
}

type HintKey = (String, usize, String, bool);

/// The paths (and what to read of them) a task will probe first.
type Hint = Vec<(String, Want)>;

/// Engine actions that neither touch nor wait on a host.
const PURE_ACTIONS: &[&str] = &["debug", "set_fact", "assert", "fail"];

/// The tasks after the one at hand in its list, and the keywords around them: what a probe
/// looks ahead at.
#[derive(Clone, Copy)]
struct Next<'a> {
    items: &'a [TaskItem],
    chain: &'a Chain<'a>,
}

/// The outcome of a task on one host.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub result: TaskResult,
}

impl Outcome {
    fn new(status: Status, result: TaskResult) -> Self {
        Outcome { status, result }
    }
    fn failed(msg: impl Into<String>) -> Self {
        Outcome::new(Status::Failed, TaskResult::failed(msg))
    }
}

/// Per-play context.
struct PlayCtx<'a> {
    play: &'a Play,
    vars_files: Map<String, Value>,
    /// All hosts of the play (ansible_play_hosts_all) and this batch.
    all_hosts: Vec<String>,
    batch: Vec<String>,
    roles: HashMap<PathBuf, &'a Role>,
}

/// What an include expands to: its tasks, the role they belong to (include_role), the loop
/// variables they see, and the hosts they run on.
type Included = (
    Arc<Vec<TaskItem>>,
    Option<Arc<Role>>,
    Map<String, Value>,
    Vec<String>,
);

/// One loop item and the variables it sets.
type LoopItem = (Value, Map<String, Value>);

/// Variables given as a plain map.
type VarMap = Map<String, Value>;

/// What an include brings in, by key: the thing, the loop item's variables, the hosts.
type IncludeGroups<T> = IndexMap<String, (T, VarMap, Vec<String>)>;

/// Which loop lookups turn a value into items.
fn loop_items(kind: &str, v: Value) -> Result<Vec<Value>, String> {
    let as_list = |v: Value| match v {
        Value::Array(a) => Ok(a),
        Value::Null => Ok(vec![]),
        Value::String(s) => Ok(vec![Value::String(s)]),
        other => Err(format!("loop needs a list, got {other}")),
    };
    match kind {
        "loop" | "with_list" => match v {
            Value::Array(a) => Ok(a),
            other => Err(format!(
                "Invalid data passed to 'loop', it requires a list, got this instead: {other}. \
                 Hint: use `| dict2items` for a dict"
            )),
        },
        "with_items" => {
            // with_items flattens one level.
            let mut out = vec![];
            for x in as_list(v)? {
                match x {
                    Value::Array(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Ok(out)
        }
        "with_dict" => match v {
            Value::Object(m) => Ok(m
                .into_iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()),
            other => Err(format!("with_dict expects a dict, got {other}")),
        },
        "with_indexed_items" => Ok(as_list(v)?
            .into_iter()
            .enumerate()
            .map(|(i, x)| json!([i, x]))
            .collect()),
        "with_together" => {
            let lists: Vec<Vec<Value>> = as_list(v)?
                .into_iter()
                .map(as_list)
                .collect::<Result<_, _>>()?;
            let n = lists.iter().map(|l| l.len()).max().unwrap_or(0);
            Ok((0..n)
                .map(|i| {
                    Value::Array(
                        lists
                            .iter()
                            .map(|l| l.get(i).cloned().unwrap_or(Value::Null))
                            .collect(),
                    )
                })
                .collect())
        }
        "with_sequence" => {
            let spec = match v {
                Value::String(s) => s,
                other => {
                    return Err(format!(
                        "with_sequence expects 'start=1 end=3', got {other}"
                    ))
                }
            };
            let mut start = 1i64;
            let mut end = None;
            let mut stride = 1i64;
            let mut fmt = None;
            for w in spec.split_whitespace() {
                match w.split_once('=') {
                    Some(("start", x)) => {
                        start = x.parse().map_err(|_| format!("bad start {x}"))?
                    }
                    Some(("end", x)) => {
                        end = Some(x.parse::<i64>().map_err(|_| format!("bad end {x}"))?)
                    }
                    Some(("count", x)) => {
                        let c: i64 = x.parse().map_err(|_| format!("bad count {x}"))?;
                        end = Some(start + c - 1)
                    }
                    Some(("stride", x)) => {
                        stride = x.parse().map_err(|_| format!("bad stride {x}"))?
                    }
                    Some(("format", x)) => fmt = Some(x.to_string()),
                    _ => return Err(format!("with_sequence: cannot read '{w}'")),
                }
            }
            let end = end.ok_or("with_sequence needs end= or count=")?;
            if stride == 0 {
                return Err("with_sequence: stride must not be 0".into());
            }
            let mut out = vec![];
            let mut i = start;
            while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
                out.push(Value::String(match &fmt {
                    Some(f) => printf_int(f, i),
                    None => i.to_string(),
                }));
                i += stride;
            }
            Ok(out)
        }
        other => Err(format!(
            "the loop lookup '{other}' is not supported; use loop:"
        )),
    }
}

/// `%02d`-style formatting for with_sequence.
fn printf_int(f: &str, i: i64) -> String {
    let re = regex::Regex::new(r"%(0?)(\d*)d").ok();
    match re.and_then(|r| {
        r.captures(f).map(|c| {
            (
                c.get(0).map(|m| m.range()),
                c[1].to_string(),
                c[2].to_string(),
            )
        })
    }) {
        Some((Some(range), zero, width)) => {
            let w: usize = width.parse().unwrap_or(0);
            let n = if zero == "0" {
                format!("{i:0w$}")
            } else {
                format!("{i:w$}")
            };
            format!("{}{}{}", &f[..range.start], n, &f[range.end..])
        }
        _ => f.to_string(),
    }
}

fn origin_str(t: &Task) -> String {
    t.origin.to_string()
}

fn task_name(t: &Task) -> String {
    match (&t.name, &t.role) {
        (Some(n), Some(r)) => format!("{} : {n}", r.name),
        (Some(n), None) => n.clone(),
        (None, Some(r)) => format!("{} : {}", r.name, t.action),
        (None, None) => t.action.clone(),
    }
}

fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        into.insert(k.clone(), v.clone());
    }
}

impl Runner {
    pub fn new(
        inv: Inventory,
        printer: Printer,
        defaults: Defaults,
        opts: RunOptions,
    ) -> anyhow::Result<Runner> {
        let ssh_config = SshConfig::load_default().map_err(anyhow::Error::msg)?;
        let cached_facts = match &opts.fact_cache {
            Some(c) => inv
                .hosts()
                .into_iter()
                .filter_map(|h| c.load(&h).map(|f| (h, unsafe_map(f))))
                .collect(),
            None => HashMap::new(),
        };
        Ok(Runner {
            cached_facts,
            inv,
            templar: Templar::new(),
            printer,
            defaults,
            ssh_config,
            opts,
            pool: Mutex::new(HashMap::new()),
            hosts: Mutex::new(IndexMap::new()),
            inv_vars: Mutex::new(HashMap::new()),
            hostvars_cache: Mutex::new(HashMap::new()),
            facts_layer_cache: Mutex::new(HashMap::new()),
            dyn_roles: Mutex::new(HashMap::new()),
            dyn_handlers: Mutex::new(Vec::new()),
            fatal: std::sync::atomic::AtomicBool::new(false),
            facts_wanted: std::sync::OnceLock::new(),
            path_caches: Mutex::new(HashMap::new()),
            hints: Mutex::new(HashMap::new()),
        })
    }

    fn with_host<R>(&self, host: &str, f: impl FnOnce(&mut HostState) -> R) -> R {
        let mut g = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        f(g.entry(host.to_string()).or_default())
    }

    fn inventory_vars(&self, host: &str) -> Map<String, Value> {
        if let Some(v) = self
            .inv_vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
        {
            return v.clone();
        }
        let mut m = self.inv.host_vars(host).unwrap_or_default();
        if let Ok(magic) = self.inv.magic_vars(host) {
            merge(&mut m, &magic);
        }
        self.inv_vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_string(), m.clone());
        m
    }

    /// Every host's variables for `hostvars` (inventory, facts, set_facts). Each host's entry is
    /// converted once and kept until its facts change: building it per task would cost
    /// hosts x hosts conversions for every task.
    fn hostvars(&self) -> Prebuilt {
        let states = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let mut cache = self
            .hostvars_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for h in self.inv.hosts() {
            let st = states.get(&h);
            let gen = st.map_or(0, |s| s.vars_gen);
            if let Some((g, node)) = cache.get(&h) {
                if *g == gen {
                    out.push((h, node.clone()));
                    continue;
                }
            }
            let mut m = self.inventory_vars(&h);
            let facts = match st {
                Some(st) if !st.facts.is_empty() => Some(&st.facts),
                _ => self.cached_facts.get(&h),
            };
            if let Some(f) = facts {
                merge(&mut m, f);
                m.insert("ansible_facts".into(), Value::Object(strip_prefix(f)));
            }
            if let Some(st) = st {
                merge(&mut m, &st.set_facts);
            }
            let node = Prebuilt::from_json(Value::Object(m));
            cache.insert(h.clone(), (gen, node.clone()));
            out.push((h, node));
        }
        Prebuilt::map(out)
    }

    /// The variables a task sees on a host, by Ansible's precedence (lowest first).
    fn task_vars(
        &self,
        pc: &PlayCtx<'_>,
        task: Option<&Task>,
        chain: &Chain<'_>,
        host: &str,
    ) -> Vars {
        let mut m = Map::new();
        let dyn_role;
        let role = match task.and_then(|t| t.role.as_ref()) {
            Some(r) => match pc.roles.get(&r.path).copied() {
                Some(found) => Some(found),
                None => {
                    dyn_role = self
                        .dyn_roles
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&r.path)
                        .cloned();
                    dyn_role.as_deref()
                }
            },
            None => None,
        };
        if let Some(r) = role {
            merge(&mut m, &r.defaults);
        }
        merge(&mut m, &self.inventory_vars(host));
        // Facts come next by precedence: a shared layer of their own (see facts_layer).
        let lower = std::mem::take(&mut m);
        let set_facts = self.with_host(host, |s| s.set_facts.clone());
        merge(&mut m, &pc.play.keywords.vars);
        merge(&mut m, &pc.vars_files);
        if let Some(r) = role {
            merge(&mut m, &r.vars);
        }
        // block and task vars (the chain's first level is the play)
        merge(&mut m, &chain.vars_from(1));
        merge(&mut m, &set_facts);
        if let Some(r) = role {
            merge(&mut m, &r.params);
            m.insert("role_name".into(), r.name.clone().into());
            // Absolute, as in Ansible: `{{ role_path }}/..` must not depend on the search folders.
            let path = std::path::absolute(&r.path).unwrap_or_else(|_| r.path.clone());
            m.insert("role_path".into(), path.display().to_string().into());
        }
        merge(&mut m, &self.opts.extra_vars);
        m.insert("groups".into(), json!(self.inv.groups()));
        let alive: Vec<String> = pc
            .batch
            .iter()
            .filter(|h| self.with_host(h, |s| !s.failed && !s.unreachable))
            .cloned()
            .collect();
        m.insert("play_hosts".into(), json!(alive));
        m.insert("ansible_play_hosts".into(), json!(alive));
        m.insert("ansible_play_batch".into(), json!(alive));
        m.insert("ansible_play_hosts_all".into(), json!(pc.all_hosts));
        m.insert("ansible_check_mode".into(), self.opts.check.into());
        m.insert("ansible_diff_mode".into(), self.opts.diff.into());
        m.insert(
            "playbook_dir".into(),
            pc.play.dir.display().to_string().into(),
        );
        m.insert(
            "ansible_play_name".into(),
            pc.play.name.clone().unwrap_or_default().into(),
        );
        m.insert(
            "ansible_run_tags".into(),
            json!(if self.opts.tags.is_empty() {
                vec!["all".to_string()]
            } else {
                self.opts.tags.clone()
            }),
        );
        m.insert("ansible_skip_tags".into(), json!(self.opts.skip_tags));
        let base = role
            .map(|r| r.path.clone())
            .unwrap_or_else(|| pc.play.dir.clone());
        Vars::new(lower)
            .with_prebuilt_map(&self.facts_layer(host))
            .with(m)
            .with_prebuilt(vec![("hostvars".into(), self.hostvars())])
            .with_base_dir(base)
    }

    /// The host's facts as a variable layer (`ansible_*` and `ansible_facts`), converted once
    /// per change of its facts. Gathered facts win over cached ones.
    fn facts_layer(&self, host: &str) -> Prebuilt {
        let gen = self.with_host(host, |s| s.vars_gen);
        let mut cache = self
            .facts_layer_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((g, p)) = cache.get(host) {
            if *g == gen {
                return p.clone();
            }
        }
        let facts = self.with_host(host, |s| (!s.facts.is_empty()).then(|| s.facts.clone()));
        let facts = facts.or_else(|| self.cached_facts.get(host).cloned());
        let mut m = Map::new();
        if let Some(f) = facts {
            merge(&mut m, &f);
            m.insert("ansible_facts".into(), Value::Object(strip_prefix(&f)));
        }
        let p = Prebuilt::from_json(Value::Object(m));
        cache.insert(host.to_string(), (gen, p.clone()));
        p
    }

    /// The host's connection, opened once for the whole run.
    async fn connection(&self, host: &str, vars: &Vars) -> Result<Arc<Connection>, String> {
        let cell = {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.entry(host.to_string()).or_default().clone()
        };
        cell.get_or_init(|| async {
            let spec = self.spec_for(host, vars)?;
            super::connect(spec)
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
    }

    /// `wait_for_connection`: tries to connect and run a command until it works or `timeout`
    /// passes, reopening the connection as needed (a host still booting, or one that was just
    /// rebooted). Runs in check mode too: it changes nothing.
    async fn wait_for_connection(
        &self,
        host: &str,
        args: &Map<String, Value>,
        vars: &Vars,
    ) -> Outcome {
        let num = |k: &str, default: f64| -> Result<f64, String> {
            match args.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(default)),
                Some(Value::String(s)) => s
                    .trim()
                    .parse()
                    .map_err(|_| format!("wait_for_connection: {k} must be a number, not '{s}'")),
                Some(other) => Err(format!(
                    "wait_for_connection: {k} must be a number, not {other}"
                )),
            }
        };
        let (timeout, delay, pause, per_try) = match (
            num("timeout", 600.0),
            num("delay", 0.0),
            num("sleep", 1.0),
            num("connect_timeout", 5.0),
        ) {
            (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d.max(0.5)),
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                return Outcome::failed(e)
            }
        };
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(delay.max(0.0))).await;
        let per_try = Duration::from_secs_f64(per_try);
        let mut last;
        loop {
            // A failure cached by an earlier attempt is forgotten, so this one really connects.
            {
                let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
                if pool
                    .get(host)
                    .and_then(|c| c.get())
                    .is_some_and(|r| r.is_err())
                {
                    pool.remove(host);
                }
            }
            match tokio::time::timeout(per_try, self.connection(host, vars)).await {
                Err(_) => last = format!("no connection within {} s", per_try.as_secs_f64()),
                Ok(Err(e)) => last = e,
                Ok(Ok(conn)) => {
                    let mut req = ExecRequest::new("true");
                    req.timeout = Some(per_try);
                    match tokio::time::timeout(per_try, conn.exec(&req)).await {
                        Ok(Ok(o)) if o.success() => {
                            return Outcome::new(
                                Status::Ok,
                                TaskResult::changed(false)
                                    .with("elapsed", started.elapsed().as_secs()),
                            )
                        }
                        Ok(Ok(o)) => last = format!("a test command failed: rc={}", o.rc()),
                        Ok(Err(e)) => last = e.to_string(),
                        Err(_) => last = "the host did not answer".into(),
                    }
                    // The session is dead or stuck: open a new one on the next try.
                    let _ = tokio::time::timeout(per_try, conn.reconnect()).await;
                }
            }
            if started.elapsed().as_secs_f64() >= timeout {
                return Outcome::failed(format!(
                    "timed out waiting for connection to {host} after {} s: {last}",
                    timeout
                ));
            }
            tokio::time::sleep(Duration::from_secs_f64(pause.max(0.1))).await;
        }
    }

    /// Connection settings from the host's (templated) connection variables.
    fn spec_for(&self, host: &str, vars: &Vars) -> Result<ConnectionSpec, String> {
        let mut conn_vars = Map::new();
        for (k, v) in self.inventory_vars(host) {
            if k.starts_with("ansible_") {
                let v = match &v {
                    Value::String(s) if s.contains("{{") || s.contains("{%") => self
                        .templar
                        .render(s, vars)
                        .map_err(|e| format!("{host}: {k}: {e}"))?,
                    _ => v,
                };
                conn_vars.insert(k, v);
            }
        }
        ConnectionSpec::resolve(host, &conn_vars, &self.defaults, &self.ssh_config)
            .map_err(|e| e.to_string())
    }

    /// Privilege escalation for a task: keywords beat variables beat the command line.
    fn become_for(
        &self,
        host: &str,
        chain: &Chain<'_>,
        vars: &Vars,
    ) -> Result<Option<Become>, String> {
        let render = |s: String| -> Result<String, String> {
            self.templar
                .render_string(&s, vars)
                .map_err(|e| format!("become setting: {e}"))
        };
        let var = |k: &str| vars.get_raw(k);
        let on = match chain.become_() {
            Some(b) => self.flag(&b, vars).map_err(|e| format!("become: {e}"))?,
            None => match var("ansible_become") {
                Some(v) => truthy(&v),
                None => self.defaults.become_,
            },
        };
        if !on {
            return Ok(None);
        }
        let user = match chain.become_user() {
            Some(u) => render(u)?,
            None => match var("ansible_become_user") {
                Some(Value::String(u)) => render(u)?,
                _ => self
                    .defaults
                    .become_user
                    .clone()
                    .unwrap_or_else(|| "root".into()),
            },
        };
        // A variable's value as text (a number is fine: `ansible_become_password: 1234`).
        let text_var = |k: &str| match var(k) {
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        };
        let method = match chain
            .become_method()
            .or_else(|| text_var("ansible_become_method"))
            .map(render)
            .transpose()?
        {
            Some(m) => BecomeMethod::parse(&m).ok_or_else(|| {
                format!("{host}: become_method '{m}' is not supported: use sudo or su")
            })?,
            None => self.defaults.become_method.unwrap_or_default(),
        };
        let password = [
            "ansible_become_password",
            "ansible_become_pass",
            "ansible_sudo_pass",
        ]
        .iter()
        .find_map(|k| text_var(k))
        .map(|p| {
            // The password's own template error must not quote it.
            self.templar.render_string(&p, vars).map_err(|e| {
                format!(
                    "{host}: ansible_become_password: {}",
                    e.to_string().replace(&p, "********")
                )
            })
        })
        .transpose()?
        .map(crate::transport::become_::Secret::new)
        .or(self.defaults.become_password.clone());
        let flags = match chain.become_flags() {
            Some(f) => Some(render(f)?),
            None => text_var("ansible_become_flags").map(render).transpose()?,
        };
        let exe = text_var("ansible_become_exe").map(render).transpose()?;
        Ok(Some(Become {
            method,
            user,
            password,
            flags,
            exe,
        }))
    }

    /// Runs the whole playbook; returns the exit code (0 ok, 1 a play could not start, 2 a host
    /// failed, 3 unreachable).
    pub async fn run(&self, pb: &Playbook) -> i32 {
        let wanted = if self.opts.fact_cache.is_some() {
            Some("a fact cache is configured".to_string())
        } else {
            let inventory: Vec<Map<String, Value>> = self
                .inv
                .hosts()
                .iter()
                .map(|h| self.inventory_vars(h))
                .collect();
            facts::need::why(pb, &inventory, &self.opts.extra_vars, &task_search)
        };
        let _ = self.facts_wanted.set(wanted);
        for play in &pb.plays {
            if !self.run_play(play).await {
                break;
            }
        }
        let stats: IndexMap<String, Stats> = self
            .hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(h, s)| (h.clone(), s.stats))
            .collect();
        self.printer.recap(&stats);
        let conns: Vec<ConnCell> = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for c in conns {
            if let Some(Ok(c)) = c.get() {
                c.close().await;
            }
        }
        if stats.values().any(|s| s.failed > 0) {
            2
        } else if self.fatal.load(std::sync::atomic::Ordering::Relaxed) {
            1
        } else if stats.values().any(|s| s.unreachable > 0) {
            3
        } else {
            0
        }
    }

    fn play_vars_plain(&self, play: &Play) -> Vars {
        let mut m = self.opts.extra_vars.clone();
        for (k, v) in &play.keywords.vars {
            m.entry(k.clone()).or_insert(v.clone());
        }
        m.insert("groups".into(), json!(self.inv.groups()));
        Vars::new(m).with_base_dir(play.dir.clone())
    }

    /// One play; false when the run must stop (a fatal error).
    async fn run_play(&self, play: &Play) -> bool {
        let name = play.name.clone().unwrap_or_else(|| play.hosts.clone());
        let plain = self.play_vars_plain(play);
        let pattern = match self.templar.render_string(&play.hosts, &plain) {
            Ok(p) => p,
            Err(e) => {
                self.printer.warn(&format!("play '{name}': hosts: {e}"));
                self.fatal.store(true, std::sync::atomic::Ordering::Relaxed);
                return false;
            }
        };
        let hosts = match self
            .inv
            .select_play_hosts(&pattern, self.opts.limit.as_deref())
        {
            Ok((h, ignored)) => {
                for e in ignored {
                    if let crate::inventory::InventoryError::NoMatch {
                        pattern,
                        suggestion,
                    } = e
                    {
                        let hint = suggestion
                            .map(|s| format!(" (did you mean '{s}'?)"))
                            .unwrap_or_default();
                        self.printer.warn(&format!(
                            "Could not match supplied host pattern, ignoring: {pattern}{hint}"
                        ));
                    }
                }
                h
            }
            Err(e) => {
                self.printer
                    .warn(&format!("play '{name}' ({}): {e}", play.origin));
                self.fatal.store(true, std::sync::atomic::Ordering::Relaxed);
                return false;
            }
        };
        self.printer.play_start(&name, &hosts);
        if hosts.is_empty() {
            self.printer.warn("skipping: no hosts matched");
            return true;
        }
        for h in &hosts {
            self.with_host(h, |_| ());
        }
        // vars_files, relative to the playbook's folder, templated with play vars.
        let mut vars_files = Map::new();
        for f in &play.vars_files {
            let files: Vec<Value> = match f {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let mut loaded = false;
            let mut tried = vec![];
            for f in files {
                let Some(s) = f.as_str() else { continue };
                let p = match self.templar.render_string(s, &plain) {
                    Ok(p) => p,
                    Err(e) => {
                        self.printer.warn(&format!("vars_files {s}: {e}"));
                        self.fatal.store(true, std::sync::atomic::Ordering::Relaxed);
                        return false;
                    }
                };
                let path = play.dir.join(&p);
                tried.push(path.display().to_string());
                if path.exists() {
                    match crate::inventory::load_vars_file(&path) {
                        Ok(m) => {
                            merge(&mut vars_files, &m);
                            loaded = true;
                            break;
                        }
                        Err(e) => {
                            self.printer.warn(&e.to_string());
                            self.fatal.store(true, std::sync::atomic::Ordering::Relaxed);
                            return false;
                        }
                    }
                }
            }
            if !loaded {
                self.printer
                    .warn(&format!("vars_files: none found of {}", tried.join(", ")));
                self.fatal.store(true, std::sync::atomic::Ordering::Relaxed);
                return false;
            }
        }
        let mut roles: HashMap<PathBuf, &Role> =
            play.roles.iter().map(|r| (r.path.clone(), r)).collect();
        for section in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
            collect_import_roles(section, &mut roles);
        }
        for r in &play.roles {
            collect_import_roles(&r.tasks, &mut roles);
        }
        let batches = batches(&hosts, &play.serial);
        let mut pc = PlayCtx {
            play,
            vars_files,
            all_hosts: hosts.clone(),
            batch: vec![],
            roles,
        };
        for batch in batches {
            pc.batch = batch.clone();
            let alive = self.run_batch(&pc, batch).await;
            if alive.is_empty() {
                self.printer.warn("NO MORE HOSTS LEFT");
                return false;
            }
        }
        true
    }

    /// Runs the play's sections on one batch; returns the hosts still standing.
    async fn run_batch(&self, pc: &PlayCtx<'_>, batch: Vec<String>) -> Vec<String> {
        let play = pc.play;
        let chain = Chain::default().push(&play.keywords);
        let mut alive = batch;
        let gather = match play.gather_facts {
            Some(g) => g,
            // A play that sets how to gather means to gather.
            None if !play.gather_subset.is_empty() || play.gather_timeout.is_some() => true,
            None => match self.facts_wanted.get() {
                Some(None) => {
                    self.printer.info(
                        "Gathering Facts skipped: nothing in this run reads facts \
                         (gather_facts: true gathers them anyway)",
                    );
                    false
                }
                _ => true,
            },
        };
        if gather {
            alive = self.gather_facts(pc, &chain, alive).await;
        }
        let role_items: Vec<TaskItem> = vec![];
        let _ = role_items;
        alive = self.run_section(pc, &play.pre_tasks, &chain, alive).await;
        alive = self.flush_handlers(pc, &chain, alive).await;
        for role in &play.roles {
            let rchain = chain.push(&role.keywords);
            alive = self.run_section(pc, &role.tasks, &rchain, alive).await;
        }
        alive = self.run_section(pc, &play.tasks, &chain, alive).await;
        alive = self.flush_handlers(pc, &chain, alive).await;
        alive = self.run_section(pc, &play.post_tasks, &chain, alive).await;
        self.flush_handlers(pc, &chain, alive).await
    }

    async fn run_section(
        &self,
        pc: &PlayCtx<'_>,
        items: &[TaskItem],
        chain: &Chain<'_>,
        hosts: Vec<String>,
    ) -> Vec<String> {
        if hosts.is_empty() || items.is_empty() {
            return hosts;
        }
        match pc.play.strategy {
            Strategy::Linear => self.run_items(pc, items, chain, hosts).await.0,
            Strategy::Free => {
                let per_host = stream::iter(
                    hosts
                        .into_iter()
                        .map(|h| async move { self.run_items(pc, items, chain, vec![h]).await.0 }),
                )
                .buffer_unordered(self.opts.forks.max(1))
                .collect::<Vec<_>>()
                .await;
                per_host.into_iter().flatten().collect()
            }
        }
    }

    /// Runs items on `hosts` in lockstep. Returns (hosts still fine, hosts that failed here).
    fn run_items<'s>(
        &'s self,
        pc: &'s PlayCtx<'s>,
        items: &'s [TaskItem],
        chain: &'s Chain<'s>,
        hosts: Vec<String>,
    ) -> futures::future::BoxFuture<'s, (Vec<String>, Vec<String>)> {
        Box::pin(async move {
            let mut alive = hosts;
            let mut failed_here = vec![];
            for (i, item) in items.iter().enumerate() {
                if alive.is_empty() {
                    break;
                }
                match item {
                    TaskItem::Task(t) => {
                        let next = Next {
                            items: &items[i + 1..],
                            chain,
                        };
                        let (ok, failed) = self.run_task_item(pc, t, chain, alive, next).await;
                        alive = ok;
                        failed_here.extend(failed);
                    }
                    TaskItem::Block(b) => {
                        let (ok, failed) = self.run_block(pc, b, chain, alive).await;
                        alive = ok;
                        failed_here.extend(failed);
                    }
                }
                if !failed_here.is_empty() && chain.any_errors_fatal() {
                    for h in alive.drain(..) {
                        failed_here.push(h);
                    }
                }
            }
            (alive, failed_here)
        })
    }

    async fn run_block(
        &self,
        pc: &PlayCtx<'_>,
        b: &Block,
        chain: &Chain<'_>,
        hosts: Vec<String>,
    ) -> (Vec<String>, Vec<String>) {
        let bchain = chain.push(&b.keywords);
        let (mut ok, failed) = self.run_items(pc, &b.block, &bchain, hosts).await;
        let mut still_failed = failed.clone();
        if !failed.is_empty() && !b.rescue.is_empty() {
            // Rescued hosts count as fine again (their failure is forgiven, as in Ansible).
            for h in &failed {
                self.with_host(h, |s| {
                    s.failed = false;
                    s.stats.rescued += 1;
                    if s.stats.failed > 0 {
                        s.stats.failed -= 1;
                    }
                });
            }
            let (rescued_ok, rescue_failed) =
                self.run_items(pc, &b.rescue, &bchain, failed.clone()).await;
            ok.extend(rescued_ok);
            still_failed = rescue_failed;
        }
        if !b.always.is_empty() {
            // always runs on every host that entered the block, failed or not (not unreachable).
            let mut everyone: Vec<String> = ok.clone();
            for h in &still_failed {
                if !self.with_host(h, |s| s.unreachable) {
                    everyone.push(h.clone());
                }
            }
            let keep_failed = still_failed.clone();
            for h in &keep_failed {
                self.with_host(h, |s| s.failed = false);
            }
            let (after, newly_failed) = self.run_items(pc, &b.always, &bchain, everyone).await;
            ok = after
                .iter()
                .filter(|h| !keep_failed.contains(h))
                .cloned()
                .collect();
            for h in &keep_failed {
                self.with_host(h, |s| s.failed = true);
            }
            still_failed.extend(newly_failed);
            still_failed.dedup();
        }
        (ok, still_failed)
    }

    /// A task (or include) on the hosts; returns (fine, failed).
    async fn run_task_item(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        hosts: Vec<String>,
        next: Next<'_>,
    ) -> (Vec<String>, Vec<String>) {
        let tchain = chain.push(&t.keywords);
        if !tags_allow(&tchain.tags(), &self.opts.tags, &self.opts.skip_tags)
            && t.action != "include_tasks"
            && t.action != "include_role"
        {
            return (hosts, vec![]);
        }
        match t.action.as_str() {
            "include_tasks" | "import_tasks" => {
                return self.include_tasks(pc, t, &tchain, hosts).await
            }
            "include_role" | "import_role" => {
                return self.include_role(pc, t, &tchain, hosts).await
            }
            "meta" => return self.meta(pc, t, &tchain, hosts).await,
            _ => {}
        }
        let outcomes = self.run_task(pc, t, &tchain, &hosts, Some(next)).await;
        self.settle(&hosts, outcomes, &tchain)
    }

    /// Applies a task's outcomes to host state; returns (fine, failed).
    fn settle(
        &self,
        hosts: &[String],
        outcomes: HashMap<String, Outcome>,
        chain: &Chain<'_>,
    ) -> (Vec<String>, Vec<String>) {
        let mut ok = vec![];
        let mut failed = vec![];
        for h in hosts {
            match outcomes.get(h).map(|o| o.status) {
                Some(Status::Failed) => failed.push(h.clone()),
                Some(Status::Unreachable) if !chain.ignore_unreachable() => failed.push(h.clone()),
                _ => ok.push(h.clone()),
            }
        }
        (ok, failed)
    }

    /// The iterations of an include on one host: one with no extra variables, or one per
    /// loop item with `item` (or the loop_var) and the other loop variables set.
    fn include_iterations(&self, t: &Task, vars: &Vars) -> Result<Vec<Map<String, Value>>, String> {
        match &t.loop_ {
            None => Ok(vec![Map::new()]),
            Some((kind, raw)) => Ok(self
                .loop_vars(t, kind, raw, vars)
                .map_err(|e| format!("{}: {e}", origin_str(t)))?
                .into_iter()
                .map(|(_, extra)| extra)
                .collect()),
        }
    }

    fn include_failed(&self, h: &str, t: &Task, chain: &Chain<'_>, e: String) {
        self.record(
            h,
            &task_name(t),
            t,
            Outcome::failed(e),
            None,
            chain.no_log(),
            Duration::ZERO,
        );
    }

    /// `include_failed` for each host of `group` not yet in `failed`, which gets them.
    fn include_failed_all(
        &self,
        group: &[String],
        t: &Task,
        chain: &Chain<'_>,
        e: &str,
        failed: &mut Vec<String>,
    ) {
        for h in group {
            if !failed.contains(h) {
                self.include_failed(h, t, chain, e.to_string());
                failed.push(h.clone());
            }
        }
    }

    /// What an include brings in on each host and loop item whose `when` holds, grouped: `what`
    /// turns an item's variables into (key, thing) or nothing; each distinct (key, item) gets the
    /// hosts it runs on, in order. A host whose loop, `when` or `what` fails is recorded as
    /// failed and left out. Returns the groups and the failed hosts.
    fn include_groups<T>(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        hosts: &[String],
        what: impl Fn(&Vars) -> Result<Option<(String, T)>, String>,
    ) -> (IncludeGroups<T>, Vec<String>) {
        let mut groups: IncludeGroups<T> = IndexMap::new();
        let mut failed = vec![];
        'hosts: for h in hosts {
            let vars = self.task_vars(pc, Some(t), chain, h);
            let iterations = match self.include_iterations(t, &vars) {
                Ok(i) => i,
                Err(e) => {
                    self.include_failed(h, t, chain, e);
                    failed.push(h.clone());
                    continue;
                }
            };
            for extra in iterations {
                let ivars = if extra.is_empty() {
                    vars.clone()
                } else {
                    vars.with(extra.clone())
                };
                let found = match self.eval_when(chain, t, &ivars) {
                    Ok(false) => continue,
                    Ok(true) => what(&ivars),
                    Err(e) => Err(e),
                };
                match found {
                    Ok(Some((key, thing))) => {
                        let key = format!(
                            "{key}\n{}",
                            serde_json::to_string(&extra).unwrap_or_default()
                        );
                        groups
                            .entry(key)
                            .or_insert_with(|| (thing, extra, vec![]))
                            .2
                            .push(h.clone());
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.include_failed(h, t, chain, e);
                        failed.push(h.clone());
                        continue 'hosts;
                    }
                }
            }
        }
        (groups, failed)
    }

    /// Runs what includes expand to: each (items, extra vars, hosts) in order, on the hosts
    /// still standing; returns (fine, failed) over `hosts`.
    async fn run_included(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        hosts: &[String],
        mut failed: Vec<String>,
        runs: Vec<Included>,
    ) -> (Vec<String>, Vec<String>) {
        // The include's `when` decided whether it runs at all: as in Ansible, it is not
        // repeated on the included tasks (which may change what it tested). Its other keywords
        // (vars, tags...) and those of `apply:` reach them.
        let own = crate::playbook::ast::Inherited {
            when: vec![],
            ..t.keywords.clone()
        };
        let mut chain = chain.clone();
        chain.levels.pop();
        let chain = chain.push(&own);
        let empty = crate::playbook::ast::Inherited::default();
        let chain = chain.push(t.apply.as_ref().unwrap_or(&empty));
        let mut gone: Vec<String> = vec![];
        for (items, role, extra, group) in runs {
            let group: Vec<String> = group
                .into_iter()
                .filter(|h| !failed.contains(h) && !gone.contains(h))
                .collect();
            if group.is_empty() {
                continue;
            }
            // The include's loop variables (item...) are visible to what it includes.
            let level = crate::playbook::ast::Inherited {
                vars: extra,
                ..Default::default()
            };
            let lchain = chain.push(&level);
            let rchain = match &role {
                Some(r) => lchain.push(&r.keywords),
                None => lchain.clone(),
            };
            let (o, f) = self.run_items(pc, &items, &rchain, group.clone()).await;
            for h in group {
                if f.contains(&h) {
                    failed.push(h);
                } else if !o.contains(&h) {
                    gone.push(h);
                }
            }
        }
        let ok = hosts
            .iter()
            .filter(|h| !failed.contains(h) && !gone.contains(h))
            .cloned()
            .collect();
        (ok, failed)
    }

    async fn include_tasks(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        hosts: Vec<String>,
    ) -> (Vec<String>, Vec<String>) {
        // Resolve the file per host and loop item (it may be templated), then run each distinct
        // (file, item) on its hosts, in order.
        let (groups, mut failed) = self.include_groups(pc, t, chain, &hosts, |ivars| {
            let raw = t
                .args
                .get("file")
                .or_else(|| t.args.get("_raw_params"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let file = self
                .templar
                .render_string_at(raw, ivars, Some(&origin_str(t)))
                .map_err(|e| e.to_string())?;
            let base = match &t.role {
                Some(r) => r.path.join("tasks"),
                None => t
                    .origin
                    .file
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            };
            let path = base.join(file);
            Ok(Some((path.display().to_string(), path)))
        });
        let mut runs = vec![];
        let mut loaded: HashMap<PathBuf, Arc<Vec<TaskItem>>> = HashMap::new();
        for (_, (file, extra, group)) in groups {
            let items = match loaded.get(&file) {
                Some(i) => i.clone(),
                None => match crate::playbook::load_tasks_file(&file, t.role.as_ref()) {
                    Ok(items) => {
                        let items = Arc::new(items);
                        loaded.insert(file.clone(), items.clone());
                        items
                    }
                    Err(e) => {
                        self.include_failed_all(&group, t, chain, &e.to_string(), &mut failed);
                        continue;
                    }
                },
            };
            runs.push((items, None, extra, group));
        }
        // The include's own keywords (vars, when, tags...) apply to what it includes.
        self.run_included(pc, t, chain, &hosts, failed, runs).await
    }

    async fn include_role(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        hosts: Vec<String>,
    ) -> (Vec<String>, Vec<String>) {
        // The role (name and *_from may be templated) per host and loop item; each distinct
        // (role, item) runs on its hosts, in order.
        let (groups, mut failed) = self.include_groups(pc, t, chain, &hosts, |ivars| {
            match self.templar.render_value_at(
                &Value::Object(t.args.clone()),
                ivars,
                Some(&origin_str(t)),
            ) {
                Ok(Value::Object(args)) => Ok(Some((
                    serde_json::to_string(&args).unwrap_or_default(),
                    args,
                ))),
                Ok(_) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        });
        let mut runs = vec![];
        for (_, (args, extra, group)) in groups {
            let name = args
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            let from = crate::playbook::RoleFrom::from_json_args(&args);
            let role = match crate::playbook::load_role(&name, &pc.play.dir, &from, t.role.as_ref())
            {
                Ok(r) => Arc::new(r),
                Err(e) => {
                    self.include_failed_all(&group, t, chain, &e.to_string(), &mut failed);
                    continue;
                }
            };
            {
                let mut roles = self.dyn_roles.lock().unwrap_or_else(|e| e.into_inner());
                let first = !roles.contains_key(&role.path);
                roles.insert(role.path.clone(), role.clone());
                // Dependencies' scopes travel on their blocks.
                let mut nested = HashMap::new();
                collect_import_roles(&role.tasks, &mut nested);
                for (p, r) in nested {
                    roles.entry(p).or_insert_with(|| Arc::new(r.clone()));
                }
                if first {
                    self.dyn_handlers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(role.handlers.iter().cloned());
                }
            }
            runs.push((Arc::new(role.tasks.clone()), Some(role), extra, group));
        }
        self.run_included(pc, t, chain, &hosts, failed, runs).await
    }

    async fn meta(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        hosts: Vec<String>,
    ) -> (Vec<String>, Vec<String>) {
        let what = t
            .args
            .get("_raw_params")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .trim()
            .to_string();
        match what.as_str() {
            "flush_handlers" => {
                let alive = self.flush_handlers(pc, chain, hosts.clone()).await;
                let failed = hosts
                    .iter()
                    .filter(|h| !alive.contains(h))
                    .cloned()
                    .collect();
                (alive, failed)
            }
            "noop" | "refresh_inventory" | "reset_connection" | "clear_facts" | "" => {
                (hosts, vec![])
            }
            "clear_host_errors" => (hosts, vec![]),
            "end_play" | "end_batch" => (vec![], vec![]),
            "end_host" => {
                let mut keep = vec![];
                for h in hosts {
                    let vars = self.task_vars(pc, Some(t), chain, &h);
                    if !self.eval_when(chain, t, &vars).unwrap_or(false) {
                        keep.push(h);
                    }
                }
                (keep, vec![])
            }
            other => {
                for h in &hosts {
                    self.record(h, &task_name(t), t, Outcome::failed(format!("meta: '{other}' is not supported (flush_handlers, noop, end_play, end_host, end_batch, clear_host_errors)")), None, false, Duration::ZERO);
                }
                (vec![], hosts)
            }
        }
    }

    async fn flush_handlers(
        &self,
        pc: &PlayCtx<'_>,
        chain: &Chain<'_>,
        hosts: Vec<String>,
    ) -> Vec<String> {
        let mut alive = hosts;
        let extra: Vec<Task> = self
            .dyn_handlers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for h in pc.play.handlers.iter().chain(extra.iter()) {
            let names: Vec<&str> = h
                .name
                .iter()
                .map(|s| s.as_str())
                .chain(h.listen.iter().map(|s| s.as_str()))
                .collect();
            let targets: Vec<String> = alive
                .iter()
                .filter(|host| {
                    self.with_host(host, |s| {
                        s.notified.iter().any(|n| names.contains(&n.as_str()))
                    })
                })
                .cloned()
                .collect();
            if targets.is_empty() {
                continue;
            }
            for t in &targets {
                self.with_host(t, |s| s.notified.retain(|n| !names.contains(&n.as_str())));
            }
            let hchain = chain.push(&h.keywords);
            let outcomes = self.run_task(pc, h, &hchain, &targets, None).await;
            let (_, failed) = self.settle(&targets, outcomes, &hchain);
            alive.retain(|x| !failed.contains(x));
        }
        alive
    }

    async fn gather_facts(
        &self,
        pc: &PlayCtx<'_>,
        chain: &Chain<'_>,
        hosts: Vec<String>,
    ) -> Vec<String> {
        self.printer
            .task_start("Gathering Facts", hosts.len(), false);
        let req = facts::Request::new(
            &pc.play.gather_subset,
            pc.play.gather_timeout.as_ref(),
            vec![],
        );
        let req = &req;
        let results = stream::iter(hosts.iter().cloned().map(|h| async move {
            let t0 = Instant::now();
            let req = match req {
                Ok(r) => r,
                Err(e) => return (h, Outcome::failed(e.clone()), t0.elapsed()),
            };
            // A fresh fact cache entry stands for gathering ("smart" gathering).
            if let Some(f) = self.cached_facts.get(&h) {
                self.with_host(&h, |s| {
                    if s.facts.is_empty() {
                        s.facts = f.clone();
                        s.vars_gen += 1;
                    }
                });
                let r = TaskResult::changed(false).msg("facts from the fact cache");
                return (h, Outcome::new(Status::Ok, r), t0.elapsed());
            }
            let vars = self.task_vars(pc, None, chain, &h);
            let become_ = match self.become_for(&h, chain, &vars) {
                Ok(b) => b,
                Err(e) => return (h, Outcome::failed(e), t0.elapsed()),
            };
            let out = match self.connection(&h, &vars).await {
                Err(e) => Outcome::new(Status::Unreachable, TaskResult::failed(e)),
                Ok(conn) => match facts::gather_with(&conn, become_.as_ref(), req).await {
                    Ok(f) => {
                        self.store_facts(&h, &f);
                        Outcome::new(Status::Ok, TaskResult::changed(false))
                    }
                    Err(e) if e.is_unreachable() => {
                        Outcome::new(Status::Unreachable, TaskResult::failed(e.to_string()))
                    }
                    Err(e) => Outcome::failed(e.to_string()),
                },
            };
            (h, out, t0.elapsed())
        }))
        .buffer_unordered(self.opts.forks.max(1))
        .collect::<Vec<_>>()
        .await;
        self.printer.task_end();
        let mut alive = vec![];
        for (h, o, took) in results {
            let fake = Task {
                action: "gather_facts".into(),
                ..Default::default()
            };
            let fine = o.status == Status::Ok;
            self.record(&h, "Gathering Facts", &fake, o, None, false, took);
            if fine {
                alive.push(h);
            }
        }
        // keep inventory order
        hosts.into_iter().filter(|h| alive.contains(h)).collect()
    }

    /// Gathered facts (`ansible_*`) join the host's facts and the fact cache.
    fn store_facts(&self, host: &str, f: &Map<String, Value>) {
        // Host output is never templated again (a `{{` in an environment variable stays text).
        let f = &unsafe_map(f.clone());
        let cached = self.cached_facts.get(host);
        let all = self.with_host(host, |s| {
            // Facts from the cache stay, under what was just gathered.
            if s.facts.is_empty() {
                if let Some(c) = cached {
                    s.facts = c.clone();
                }
            }
            merge(&mut s.facts, f);
            s.vars_gen += 1;
            s.facts.clone()
        });
        if let Some(c) = &self.opts.fact_cache {
            if let Err(e) = c.store(host, &all) {
                self.printer.warn(&e);
            }
        }
    }

    /// Prints a result and counts it.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        host: &str,
        name: &str,
        t: &Task,
        o: Outcome,
        item: Option<&str>,
        no_log: bool,
        took: Duration,
    ) {
        self.printer.host_result(
            host, name, &t.action, o.status, &o.result, item, no_log, took,
        );
        if item.is_some() {
            return;
        }
        self.with_host(host, |s| match o.status {
            Status::Ok => s.stats.ok += 1,
            Status::Changed => {
                s.stats.ok += 1;
                s.stats.changed += 1
            }
            Status::Failed => {
                s.stats.failed += 1;
                s.failed = true
            }
            Status::Ignored => {
                s.stats.ok += 1;
                s.stats.ignored += 1
            }
            Status::Skipped => s.stats.skipped += 1,
            Status::Unreachable => {
                s.stats.unreachable += 1;
                s.unreachable = true
            }
        });
    }

    fn eval_when(&self, chain: &Chain<'_>, t: &Task, vars: &Vars) -> Result<bool, String> {
        let at = origin_str(t);
        for cond in chain.when() {
            if !self
                .templar
                .eval_bool_at(cond, vars, Some(&at))
                .map_err(|e| format!("The conditional check '{cond}' failed: {e}"))?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A task's name as shown: templated like Ansible does (play vars, extra vars, and the
    /// first host's variables); a name that cannot be rendered stays as written.
    fn display_name(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        host: Option<&str>,
    ) -> String {
        let (Some(n), Some(host)) = (&t.name, host) else {
            return task_name(t);
        };
        if !n.contains("{{") && !n.contains("{%") {
            return task_name(t);
        }
        let vars = self.task_vars(pc, Some(t), chain, host);
        let rendered = self
            .templar
            .render_string(n, &vars)
            .unwrap_or_else(|_| n.clone());
        match &t.role {
            Some(r) => format!("{} : {rendered}", r.name),
            None => rendered,
        }
    }

    /// Runs one task on many hosts (lockstep), prints and records each result.
    async fn run_task(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        hosts: &[String],
        next: Option<Next<'_>>,
    ) -> HashMap<String, Outcome> {
        // Handlers run without a list around them: no look ahead.
        let handler = next.is_none();
        let run_once = chain.run_once();
        let targets: Vec<String> = if run_once {
            hosts.iter().take(1).cloned().collect()
        } else {
            hosts.to_vec()
        };
        let name = self.display_name(pc, t, chain, targets.first().map(String::as_str));
        self.printer.task_start(&name, targets.len(), handler);
        let results = stream::iter(targets.iter().cloned().map(|h| {
            let name = name.clone();
            async move {
                // A templated no_log is decided per host; if it cannot be, output stays hidden.
                let no_log = match chain.no_log_value() {
                    Some(v @ Value::String(_)) => self
                        .flag(&v, &self.task_vars(pc, Some(t), chain, &h))
                        .unwrap_or(true),
                    _ => chain.no_log(),
                };
                let t0 = Instant::now();
                let o = self
                    .task_on_host(pc, t, chain, &h, &name, no_log, next)
                    .await;
                (h, o, t0.elapsed(), no_log)
            }
        }))
        .buffer_unordered(self.opts.forks.max(1))
        .collect::<Vec<_>>()
        .await;
        self.printer.task_end();
        let mut out = HashMap::new();
        for (h, o, took, no_log) in results {
            self.after_task(t, &h, &o);
            self.record(&h, &name, t, o.clone(), None, no_log, took);
            out.insert(h, o);
        }
        if run_once {
            if let Some(first) = targets.first().and_then(|h| out.get(h)).cloned() {
                for h in hosts.iter().skip(1) {
                    self.after_task(t, h, &first);
                    // A run_once failure fails every host of the batch: each drops out and
                    // counts as failed (no result line is printed for them).
                    if first.status == Status::Failed {
                        self.with_host(h, |s| {
                            s.stats.failed += 1;
                            s.failed = true;
                        });
                    }
                    out.insert(h.clone(), first.clone());
                }
            }
        }
        out
    }

    /// register, notify.
    fn after_task(&self, t: &Task, host: &str, o: &Outcome) {
        if let Some(reg) = &t.register {
            let mut v = o.result.to_value();
            if let Value::Object(m) = &mut v {
                m.remove("_debug");
                m.remove("_facts");
            }
            let v = mark_unsafe(v);
            self.with_host(host, |s| {
                s.set_facts.insert(reg.clone(), v);
                s.vars_gen += 1;
            });
        }
        if o.status == Status::Changed && !t.notify.is_empty() {
            self.with_host(host, |s| {
                for n in &t.notify {
                    if !s.notified.contains(n) {
                        s.notified.push(n.clone());
                    }
                }
            });
        }
        // A module's `ansible_facts` (setup, gather_facts) are host facts; set_fact's are
        // variables (`_facts`, below).
        if let (Some(Value::Object(f)), None) = (
            o.result.data.get("ansible_facts"),
            o.result.data.get("_facts"),
        ) {
            if !o.result.failed {
                let f: Map<String, Value> = f
                    .iter()
                    .map(|(k, v)| {
                        let k = if k.starts_with("ansible_") || k == "module_setup" {
                            k.clone()
                        } else {
                            format!("ansible_{k}")
                        };
                        (k, v.clone())
                    })
                    .collect();
                self.store_facts(host, &f);
            }
        }
        if let Some(Value::Object(f)) = o.result.data.get("_facts") {
            let f = match mark_unsafe(Value::Object(f.clone())) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            self.with_host(host, |s| {
                merge(&mut s.set_facts, &f);
                s.vars_gen += 1;
            });
        }
    }

    /// A keyword that is true/false or a template (`become: "{{ x }}"`), for one host.
    fn flag(&self, v: &Value, vars: &Vars) -> Result<bool, String> {
        match v {
            Value::String(_) => self
                .templar
                .render_value(v, vars)
                .map(|r| truthy(&r))
                .map_err(|e| e.to_string()),
            other => Ok(truthy(other)),
        }
    }

    /// `ignore_errors` for one host (a template that cannot be rendered does not ignore).
    fn ignore_errors(&self, chain: &Chain<'_>, vars: &Vars) -> bool {
        chain
            .ignore_errors()
            .is_some_and(|v| self.flag(&v, vars).unwrap_or(false))
    }

    /// A task's loop on one host: each item with the variables it sets (`item` or the
    /// loop_var, index_var, ansible_loop_var, ansible_loop).
    fn loop_vars(
        &self,
        t: &Task,
        kind: &str,
        raw: &Value,
        vars: &Vars,
    ) -> Result<Vec<LoopItem>, String> {
        let at = origin_str(t);
        let rendered = match raw {
            Value::String(s) => self.templar.render_at(s, vars, Some(&at)),
            other => self.templar.render_value_at(other, vars, Some(&at)),
        };
        let items = rendered
            .map_err(|e| e.to_string())
            .and_then(|v| loop_items(kind, v))?;
        let loop_var = t
            .loop_control
            .loop_var
            .clone()
            .unwrap_or_else(|| "item".into());
        let n = items.len();
        Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let mut extra = Map::new();
                extra.insert(loop_var.clone(), item.clone());
                if let Some(iv) = &t.loop_control.index_var {
                    extra.insert(iv.clone(), i.into());
                }
                extra.insert("ansible_loop_var".into(), loop_var.clone().into());
                if t.loop_control.extended {
                    extra.insert("ansible_loop".into(), json!({
                        "index": i + 1, "index0": i, "first": i == 0, "last": i + 1 == n, "length": n,
                        "revindex": n - i, "revindex0": n - i - 1,
                    }));
                }
                (item, extra)
            })
            .collect())
    }

    /// One task on one host: when, loop, the action, until, changed_when/failed_when.
    #[allow(clippy::too_many_arguments)]
    async fn task_on_host(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        host: &str,
        name: &str,
        no_log: bool,
        next: Option<Next<'_>>,
    ) -> Outcome {
        let vars = self.task_vars(pc, Some(t), chain, host);
        let Some((kind, raw)) = &t.loop_ else {
            return self.one(pc, t, chain, host, &vars, next).await;
        };
        let at = origin_str(t);
        let per_item = match self.loop_vars(t, kind, raw, &vars) {
            Ok(i) => i,
            Err(e) => return Outcome::failed(format!("{at}: {e}")),
        };
        let loop_var = t
            .loop_control
            .loop_var
            .clone()
            .unwrap_or_else(|| "item".into());
        let mut results = vec![];
        let (mut any_changed, mut any_failed, mut all_skipped) = (false, false, true);
        let n = per_item.len();
        for (item, extra) in per_item {
            let ivars = vars.with(extra);
            let o = self.one(pc, t, chain, host, &ivars, next).await;
            let label = match &t.loop_control.label {
                Some(l) => self
                    .templar
                    .render_string(l, &ivars)
                    .unwrap_or_else(|_| l.clone()),
                None => match &item {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            };
            self.printer.host_result(
                host,
                name,
                &t.action,
                o.status,
                &o.result,
                Some(&label),
                no_log,
                Duration::ZERO,
            );
            any_changed |= o.result.changed;
            any_failed |= o.status == Status::Failed;
            all_skipped &= o.status == Status::Skipped;
            let mut v = o.result.to_value();
            if let Value::Object(m) = &mut v {
                m.insert(loop_var.clone(), item);
                m.insert("ansible_loop_var".into(), loop_var.clone().into());
                m.remove("_debug");
            }
            results.push(v);
            if let Some(p) = t.loop_control.pause {
                tokio::time::sleep(Duration::from_secs_f64(p.max(0.0))).await;
            }
        }
        let mut r = TaskResult::changed(any_changed).with("results", Value::Array(results));
        r.failed = any_failed;
        if any_failed {
            r.msg = Some("One or more items failed".into());
        }
        let status = if any_failed {
            if self.ignore_errors(chain, &vars) {
                Status::Ignored
            } else {
                Status::Failed
            }
        } else if n > 0 && all_skipped {
            r.skipped = true;
            Status::Skipped
        } else if n == 0 {
            r.skipped = true;
            r.msg = Some("No items in the list".into());
            Status::Skipped
        } else if any_changed {
            Status::Changed
        } else {
            Status::Ok
        };
        Outcome::new(status, r)
    }

    /// One (item of a) task on one host.
    async fn one(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        host: &str,
        vars: &Vars,
        next: Option<Next<'_>>,
    ) -> Outcome {
        let at = origin_str(t);
        match self.eval_when(chain, t, vars) {
            Ok(true) => {}
            Ok(false) => {
                let mut r =
                    TaskResult::changed(false).with("skip_reason", "Conditional result was False");
                r.skipped = true;
                return Outcome::new(Status::Skipped, r);
            }
            Err(e) => return Outcome::failed(e),
        }
        let number = |v: &Option<Value>, default: f64| -> f64 {
            let v = match v {
                Some(Value::String(s)) => self.templar.render(s, vars).unwrap_or(Value::Null),
                Some(other) => other.clone(),
                None => return default,
            };
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .unwrap_or(default)
        };
        let retries = match &t.until {
            Some(_) => number(&t.retries, 3.0).max(0.0) as u64,
            None => 0,
        };
        let delay = number(&t.delay, 5.0);
        let mut attempt = 0u64;
        loop {
            let mut o = self.action(pc, t, chain, host, vars, next).await;
            if o.status == Status::Unreachable {
                if chain.ignore_unreachable() {
                    o.status = Status::Ignored;
                }
                return o;
            }
            // The result is visible under its register name to changed_when/failed_when/until.
            let mut rv = vars.clone();
            if let Some(reg) = &t.register {
                let mut m = Map::new();
                m.insert(reg.clone(), o.result.to_value());
                rv = vars.with(m);
            }
            if let Some(conds) = &t.changed_when {
                match self.all_true(conds, &rv, &at) {
                    Ok(c) => o.result.changed = c,
                    Err(e) => return Outcome::failed(e),
                }
            }
            if let Some(conds) = &t.failed_when {
                match self.all_true(conds, &rv, &at) {
                    Ok(f) => {
                        o.result.failed = f;
                        o.result.data.insert("failed_when_result".into(), f.into());
                        if f && o.result.msg.is_none() {
                            o.result.msg = Some("failed_when condition was met".into());
                        }
                    }
                    Err(e) => return Outcome::failed(e),
                }
            }
            if let Some(conds) = &t.until {
                if attempt < retries {
                    if let Some(reg) = &t.register {
                        let mut m = Map::new();
                        m.insert(reg.clone(), o.result.to_value());
                        rv = vars.with(m);
                    }
                    match self.all_true(conds, &rv, &at) {
                        Ok(true) => {}
                        Ok(false) => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_secs_f64(delay.max(0.0))).await;
                            continue;
                        }
                        Err(e) => return Outcome::failed(e),
                    }
                } else {
                    match self.all_true(conds, &rv, &at) {
                        Ok(true) => {}
                        Ok(false) => {
                            o.result.failed = true;
                            o.result.msg.get_or_insert_with(|| {
                                format!("retried {retries} times, 'until' never held")
                            });
                        }
                        Err(e) => return Outcome::failed(e),
                    }
                }
                o.result
                    .data
                    .insert("attempts".into(), (attempt + 1).into());
            }
            o.status = if o.result.failed {
                if self.ignore_errors(chain, vars) {
                    Status::Ignored
                } else {
                    Status::Failed
                }
            } else if o.result.skipped {
                Status::Skipped
            } else if o.result.changed {
                Status::Changed
            } else {
                Status::Ok
            };
            return o;
        }
    }

    fn all_true(&self, conds: &[String], vars: &Vars, at: &str) -> Result<bool, String> {
        for c in conds {
            if !self
                .templar
                .eval_bool_at(c, vars, Some(at))
                .map_err(|e| e.to_string())?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The path cache of a host (see [`PathCache`]).
    fn path_cache(&self, host: &str) -> Arc<PathCache> {
        self.path_caches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(host.to_string())
            .or_default()
            .clone()
    }

    /// The paths task `u` (after the one at hand) will probe first on `host`: `Some(empty)` for a
    /// task that touches no host (debug, set_fact, a task the tags leave out), `None` for one the
    /// look ahead stops at (it may change the host, or it probes otherwise). Worked out once per
    /// task and host; a stale answer only wastes a read (the task probes what it needs).
    fn hint_for(
        &self,
        pc: &PlayCtx<'_>,
        u: &Task,
        parent: &Chain<'_>,
        host: &str,
        who: &str,
        diff: bool,
    ) -> Option<Vec<(String, Want)>> {
        let key = (
            host.to_string(),
            u as *const Task as usize,
            who.to_string(),
            diff,
        );
        if let Some(h) = self.hints.lock().ok()?.get(&key) {
            return h.clone();
        }
        let h = (|| {
            let uchain = parent.push(&u.keywords);
            if !tags_allow(&uchain.tags(), &self.opts.tags, &self.opts.skip_tags) {
                return Some(vec![]);
            }
            if PURE_ACTIONS.contains(&u.action.as_str()) {
                return Some(vec![]);
            }
            if u.loop_.is_some() || uchain.delegate_to().is_some() || uchain.run_once() {
                return None;
            }
            // Only modules that have an answer are worth templating for.
            let hinter = crate::modules::hinter(&u.action)?;
            let vars = self.task_vars(pc, Some(u), &uchain, host);
            let args = self
                .templar
                .render_value(&Value::Object(u.args.clone()), &vars)
                .ok()?;
            let b = self.become_for(host, &uchain, &vars).ok()?;
            if crate::modules::core::who(b.as_ref()) != who {
                return None;
            }
            hinter(&args, diff)
        })();
        if let Ok(mut m) = self.hints.lock() {
            m.insert(key, h.clone());
        }
        h
    }

    /// The action itself: engine actions here, modules on the host through the registry.
    async fn action(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        chain: &Chain<'_>,
        host: &str,
        vars: &Vars,
        next: Option<Next<'_>>,
    ) -> Outcome {
        let at = origin_str(t);
        let args =
            match self
                .templar
                .render_value_at(&Value::Object(t.args.clone()), vars, Some(&at))
            {
                Ok(Value::Object(m)) => m,
                Ok(_) => Map::new(),
                Err(e) => return Outcome::failed(e.to_string()),
            };
        if let Some(o) =
            super::actions::engine_action(&self.templar, t, &args, vars, self.opts.verbose).await
        {
            if !PURE_ACTIONS.contains(&t.action.as_str()) {
                // A pause: the host may change meanwhile.
                self.path_cache(host).clear();
            }
            return o;
        }
        let check = match chain.check_mode() {
            Some(v) => truthy(&self.templar.render_value(&v, vars).unwrap_or(v)),
            None => self.opts.check,
        };
        let diff = match chain.diff() {
            Some(v) => truthy(&self.templar.render_value(&v, vars).unwrap_or(v)),
            None => self.opts.diff,
        };
        let become_ = match self.become_for(host, chain, vars) {
            Ok(b) => b,
            Err(e) => return Outcome::failed(e),
        };
        let target = match chain.delegate_to() {
            Some(d) => match self.templar.render_string(&d, vars) {
                Ok(d) => d,
                Err(e) => return Outcome::failed(e.to_string()),
            },
            None => host.to_string(),
        };
        if t.action == "wait_for_connection" {
            self.path_cache(&target).clear();
            return self.wait_for_connection(&target, &args, vars).await;
        }
        let conn = match self.connection(&target, vars).await {
            Ok(c) => c,
            Err(e) => return Outcome::new(Status::Unreachable, TaskResult::failed(e)),
        };
        let mut env: Vec<(String, String)> = vec![];
        for e in chain.environment() {
            match self.templar.render_value(e, vars) {
                Ok(Value::Object(m)) => {
                    for (k, v) in m {
                        let v = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        env.retain(|(key, _)| key != &k);
                        env.push((k, v));
                    }
                }
                Ok(other) => {
                    return Outcome::failed(format!("environment must be a mapping, got {other}"))
                }
                Err(e) => return Outcome::failed(e.to_string()),
            }
        }
        let search = task_search(t, pc.play);
        let render = |name: &str, source: &str| -> Result<String, String> {
            self.templar
                .render_file(name, source, vars)
                .map_err(|e| e.to_string())
        };
        let planned = self.with_host(host, |s| s.planned.clone());
        let cache = self.path_cache(&target);
        // The paths the next tasks of this list will probe, read with this task's probe. Not for
        // a delegated task: the next ones run on their own host.
        let who = crate::modules::core::who(become_.as_ref()).to_string();
        let ahead = || -> Vec<(String, Want)> {
            let Some(n) = next else { return vec![] };
            let mut out = vec![];
            for item in n.items {
                let TaskItem::Task(u) = item else { break };
                match self.hint_for(pc, u, n.chain, host, &who, diff) {
                    Some(h) => out.extend(h),
                    None => break,
                }
            }
            out
        };
        let delegated = chain.delegate_to().is_some();
        let ctx = TaskCtx {
            planned: check.then_some(planned.as_ref()),
            host,
            conn: &conn,
            become_: become_.as_ref(),
            check,
            diff,
            search: &search,
            env: &env,
            render: Some(&render),
            paths: path_cache_wanted().then_some(PathProbes {
                cache: &cache,
                ahead: (!delegated).then_some(&ahead as &Ahead),
            }),
        };
        match crate::modules::dispatch(&t.action, &ctx, &Value::Object(args)).await {
            Ok(r) => {
                let st = if r.failed {
                    Status::Failed
                } else if r.changed {
                    Status::Changed
                } else {
                    Status::Ok
                };
                Outcome::new(st, r)
            }
            Err(crate::modules::core::ModuleError::Transport(e)) if e.is_unreachable() => {
                Outcome::new(Status::Unreachable, TaskResult::failed(e.to_string()))
            }
            Err(e) => Outcome::failed(e.to_string()),
        }
    }
}

/// The path cache is on unless `HOMELAB_PATH_CACHE=0` (each file task probes alone; for
/// comparison: the results must be the same).
fn path_cache_wanted() -> bool {
    static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WANTED.get_or_init(|| std::env::var("HOMELAB_PATH_CACHE").map_or(true, |v| v != "0"))
}

/// Where a task's relative `src:` files are looked for: its role, its file's folder, the play's.
fn task_search(t: &Task, play: &Play) -> Vec<PathBuf> {
    let mut s = vec![];
    if let Some(r) = &t.role {
        s.push(r.path.clone());
    }
    if let Some(d) = t.origin.file.parent() {
        s.push(d.to_path_buf());
    }
    s.push(play.dir.clone());
    s
}

/// Marks every string in a stored result as unsafe, so it is never templated again (a command's
/// output containing `{{` stays text), as ansible-core 2.19 does.
fn mark_unsafe(v: Value) -> Value {
    match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") || s.contains("{#") => {
            json!({ "__ansible_unsafe": s })
        }
        Value::Array(a) => Value::Array(a.into_iter().map(mark_unsafe).collect()),
        Value::Object(m) if !(m.len() == 1 && m.contains_key("__ansible_unsafe")) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, mark_unsafe(v))).collect())
        }
        other => other,
    }
}

fn unsafe_map(m: Map<String, Value>) -> Map<String, Value> {
    match mark_unsafe(Value::Object(m)) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `ansible_facts` holds facts without their `ansible_` prefix.
fn strip_prefix(facts: &Map<String, Value>) -> Map<String, Value> {
    facts
        .iter()
        .map(|(k, v)| {
            (
                k.strip_prefix("ansible_").unwrap_or(k).to_string(),
                v.clone(),
            )
        })
        .collect()
}

/// Roles brought in by `import_role` (blocks that carry their role's scope).
fn collect_import_roles<'a>(items: &'a [TaskItem], out: &mut HashMap<PathBuf, &'a Role>) {
    for i in items {
        if let TaskItem::Block(b) = i {
            if let Some(r) = &b.role {
                out.entry(r.path.clone()).or_insert(r.as_ref());
            }
            collect_import_roles(&b.block, out);
            collect_import_roles(&b.rescue, out);
            collect_import_roles(&b.always, out);
        }
    }
}

/// Splits hosts into `serial` batches (the last size repeats).
pub fn batches(hosts: &[String], serial: &[Serial]) -> Vec<Vec<String>> {
    if serial.is_empty() {
        return vec![hosts.to_vec()];
    }
    let total = hosts.len();
    let mut out = vec![];
    let mut i = 0;
    let mut k = 0;
    while i < total {
        let spec = &serial[k.min(serial.len() - 1)];
        let n = match spec {
            Serial::Count(c) => *c,
            Serial::Percent(p) => ((total as f64) * (*p as f64) / 100.0).floor() as usize,
        }
        .max(1);
        out.push(hosts[i..(i + n).min(total)].to_vec());
        i += n;
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_batches() {
        let h: Vec<String> = (1..=7).map(|i| format!("h{i}")).collect();
        let sizes = |s: &[Serial]| batches(&h, s).iter().map(|b| b.len()).collect::<Vec<_>>();
        assert_eq!(sizes(&[]), [7]);
        assert_eq!(sizes(&[Serial::Count(3)]), [3, 3, 1]);
        assert_eq!(sizes(&[Serial::Count(1), Serial::Percent(50)]), [1, 3, 3]);
        assert_eq!(sizes(&[Serial::Percent(10)]), [1, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn loop_lookups() {
        assert_eq!(
            loop_items("with_items", json!([1, [2, 3]])).unwrap(),
            vec![json!(1), json!(2), json!(3)]
        );
        assert_eq!(
            loop_items("with_dict", json!({"a": 1})).unwrap(),
            vec![json!({"key": "a", "value": 1})]
        );
        assert_eq!(
            loop_items("with_sequence", json!("start=1 end=3 format=n%02d")).unwrap(),
            vec![json!("n01"), json!("n02"), json!("n03")]
        );
        assert!(loop_items("loop", json!({"a": 1})).is_err());
        assert_eq!(
            loop_items("with_together", json!([[1, 2], ["a"]])).unwrap(),
            vec![json!([1, "a"]), json!([2, null])]
        );
    }
}
