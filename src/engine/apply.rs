//! `homelab apply PLAYBOOK` (and `homelab plan PLAYBOOK` = `apply --check --diff`).

use super::options::ConnectionArgs;
use super::play::{RunOptions, Runner};
use crate::output::play::{Format, Printer};
use anyhow::Context;
use clap::Args;
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Playbook file(s), run in order.
    #[arg(required = true)]
    pub playbooks: Vec<PathBuf>,
    #[command(flatten)]
    pub conn: ConnectionArgs,
    #[command(flatten)]
    pub facts: super::options::FactCacheArgs,
    /// Dry run: probe every host and report what would change; change nothing.
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show unified diffs of what changes (or would change).
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Only run tasks with these tags (comma-separated, repeatable).
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Extra variables (highest precedence): key=value pairs, JSON/YAML text, or @file.
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// Output: text (default) or json (one event per line).
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub output: String,
    /// Load and check the playbook, touch no host.
    #[arg(long = "syntax-check")]
    pub syntax_check: bool,
}

/// Ansible's `-e` forms: `k=v k2='v 2'`, `{"json": 1}` / YAML text, `@vars.yml`.
pub fn parse_extra_vars(items: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for item in items {
        let item = item.trim();
        if let Some(path) = item.strip_prefix('@') {
            let m = crate::inventory::load_vars_file(std::path::Path::new(path))
                .with_context(|| format!("-e @{path}"))?;
            out.extend(m);
        } else if item.starts_with('{') || item.starts_with('[') {
            let v: Value = serde_json::from_str(item)
                .with_context(|| format!("-e '{item}': not valid JSON"))?;
            match v {
                Value::Object(m) => out.extend(m),
                _ => anyhow::bail!("-e '{item}': must be a mapping"),
            }
        } else {
            let words = shlex::split(item)
                .ok_or_else(|| anyhow::anyhow!("-e '{item}': unbalanced quotes"))?;
            for w in words {
                let (k, v) = w.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("-e '{w}': expected key=value, JSON, or @file")
                })?;
                out.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
    }
    Ok(out)
}

pub fn apply(args: ApplyArgs, plan: bool) -> anyhow::Result<i32> {
    let check = args.check || plan;
    let diff = args.diff || plan;
    let mut books = vec![];
    for p in &args.playbooks {
        let pb = match crate::playbook::load_playbook(p) {
            Ok(pb) => pb,
            Err(e) => {
                eprintln!("ERROR! {e}");
                return Ok(4);
            }
        };
        books.push(pb);
    }
    if args.syntax_check {
        for p in &args.playbooks {
            println!("playbook: {}", p.display());
        }
        return Ok(0);
    }
    let mut inv = super::load_inventory(&args.conn.inventory)?;
    for pb in &books {
        if let Some(dir) = pb.path.parent() {
            inv.add_playbook_dir(dir)?;
        }
    }
    let extra_vars = parse_extra_vars(&args.extra_vars)?;
    let defaults = args.conn.defaults()?;
    let format = if args.output == "json" {
        Format::Json
    } else {
        Format::Text
    };
    let printer = Printer::new(format, diff, args.conn.verbose);
    let opts = RunOptions {
        check,
        diff,
        forks: args.conn.forks.max(1),
        limit: args.conn.limit.clone(),
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        extra_vars,
        verbose: args.conn.verbose,
        fact_cache: args.facts.cache()?,
    };
    let runner = Runner::new(inv, printer, defaults, opts)?;
    let rt = super::runtime()?;
    let mut code = 0;
    rt.block_on(async {
        for pb in &books {
            code = code.max(runner.run(pb).await);
        }
    });
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_vars_forms() {
        let m = parse_extra_vars(&["a=1 b='x y'".into(), r#"{"c": [1]}"#.into()]).unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "x y");
        assert_eq!(m["c"], serde_json::json!([1]));
        assert!(parse_extra_vars(&["nokey".into()]).is_err());
    }
}
