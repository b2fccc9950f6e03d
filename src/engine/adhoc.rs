//! `homelab ping` and `homelab run`: one module on many hosts, in parallel.

use super::options::ConnectionArgs;
use super::{connect, load_inventory, pick_hosts, runtime, specs};
use crate::modules::{AdHoc, Outcome};
use crate::output::{HostLine, Printer};
use crate::transport::spec::ConnectionSpec;
use clap::Args;
use futures::stream::{self, StreamExt};
use std::time::Instant;

#[derive(Debug, Args)]
pub struct PingArgs {
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Which hosts (Ansible pattern: all, group, 'web*', 'a:&b', 'a:!b', '~regex', 'g[0:2]').
    pub pattern: String,
    /// Module: command (default), shell, raw, ping.
    #[arg(short = 'm', long = "module-name", default_value = "command")]
    pub module: String,
    /// Module arguments, free form ('uname -r', 'cmd chdir=/tmp creates=/x').
    #[arg(short = 'a', long = "args", default_value = "")]
    pub args: String,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// `homelab ping`: per host, ok with latency or why not. Exit 1 if any host failed.
pub fn ping(args: PingArgs) -> anyhow::Result<i32> {
    let pattern = args.conn.limit.clone().unwrap_or_else(|| "all".into());
    execute(&args.conn, &pattern, None, AdHoc::Ping, true)
}

/// `homelab run PATTERN -m MODULE -a ARGS`.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let module = AdHoc::parse(&args.module, &args.args)?;
    execute(
        &args.conn,
        &args.pattern,
        args.conn.limit.as_deref(),
        module,
        false,
    )
}

fn execute(
    conn: &ConnectionArgs,
    pattern: &str,
    limit: Option<&str>,
    module: AdHoc,
    timing: bool,
) -> anyhow::Result<i32> {
    let mut inv = load_inventory(&conn.inventory)?;
    // Like `ansible`, the current folder is the playbook folder: its group_vars/host_vars apply.
    if let Ok(cwd) = std::env::current_dir() {
        inv.add_playbook_dir(&cwd)?;
    }
    let hosts = pick_hosts(&inv, pattern, limit)?;
    let defaults = conn.defaults()?;
    let specs = specs(&inv, &hosts, &defaults)?;
    let printer = Printer::new(conn.verbose);
    if conn.verbose > 0 {
        for s in &specs {
            for n in &s.notes {
                printer.note(&s.host, n);
            }
        }
    }
    let rt = runtime()?;
    let forks = conn.forks.max(1);
    let failed = rt.block_on(async {
        let results = stream::iter(specs.into_iter().map(|spec| run_one(spec, &module)))
            .buffer_unordered(forks)
            .map(|line| {
                printer.host(&line);
                line.is_failure()
            })
            .collect::<Vec<bool>>()
            .await;
        results.into_iter().filter(|f| *f).count()
    });
    let total = hosts.len();
    if timing || failed > 0 {
        printer.summary(total - failed, failed);
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

async fn run_one(spec: ConnectionSpec, module: &AdHoc) -> HostLine {
    let host = spec.host.clone();
    let become_ = spec.become_.clone();
    let t0 = Instant::now();
    let conn = match connect(spec).await {
        Ok(c) => c,
        Err(e) => return HostLine::unreachable(host, e.to_string()),
    };
    let connected = t0.elapsed();
    let t1 = Instant::now();
    let res = module.run(&conn, become_.as_ref()).await;
    let ran = t1.elapsed();
    conn.close().await;
    match res {
        Ok(outcome) => HostLine::done(host, outcome, connected, ran),
        Err(e) if e.is_unreachable() => HostLine::unreachable(host, e.to_string()),
        Err(e) => HostLine::done(
            host,
            Outcome::Failed {
                msg: e.to_string(),
                result: Default::default(),
            },
            connected,
            ran,
        ),
    }
}
