//! `sysctl`: a kernel parameter in a sysctl file and, when asked, in the running kernel. One probe
//! reads the file, the live value (`/proc/sys/...`) and whether it can be written. The file is
//! edited on the controller (the key's line replaced in place, duplicates dropped, or appended;
//! removed for `state: absent`) and written atomically with a unified diff; the live value is set
//! with `sysctl -w` (only this key: a `sysctl -p` of the whole file could fail on keys other tasks
//! own) when `sysctl_set` is on and it differs, or when `reload` is on and the file changed.
//!
//! The default file is `/etc/sysctl.conf`, as in Ansible; a file of your own in `/etc/sysctl.d/`
//! (e.g. `sysctl_file: /etc/sysctl.d/90-k8s.conf`) is easier to keep apart.
//!
//! Containers share their host's kernel: there only per-namespace keys (`net.*`) can be set, and
//! `/proc/sys` is otherwise read-only. A live value that cannot be set fails clearly (nothing is
//! written) unless `ignoreerrors: true`; check mode reports the plan with a warning.

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::remote::state_diff;
use super::sysutil::{lines_nl, parse_text, text_probe, FileEdit};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "key")]
    pub name: String,
    #[serde(default, alias = "val", deserialize_with = "stringish::option")]
    pub value: Option<String>,
    #[serde(default)]
    pub state: State,
    #[serde(default, with = "boolish::option")]
    pub reload: Option<bool>,
    #[serde(default)]
    pub sysctl_file: Option<String>,
    #[serde(default, with = "boolish::option")]
    pub sysctl_set: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub ignoreerrors: Option<bool>,
}

pub const DEFAULT_FILE: &str = "/etc/sysctl.conf";

/// Ansible's value normalisation: booleans as 1/0, whitespace runs as one space.
pub fn normalize(v: &str) -> String {
    let t = v.trim();
    match t.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => return "1".into(),
        "no" | "off" | "false" => return "0".into(),
        _ => {}
    }
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `/proc/sys` path of a key (`net.ipv4.ip_forward` or `net/ipv4/ip_forward`).
pub fn proc_path(name: &str) -> String {
    if name.contains('/') {
        format!("/proc/sys/{}", name.trim_start_matches('/'))
    } else {
        format!("/proc/sys/{}", name.replace('.', "/"))
    }
}

/// The file with `name` set to `value` (None: the key removed). The first line for the key is
/// replaced where it is (kept as written when its value is already right), later ones dropped;
/// a missing key is appended as `name=value`.
pub fn edit_file(text: &str, name: &str, value: Option<&str>) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in lines_nl(text) {
        let t = line.trim();
        let key = if t.starts_with('#') || t.starts_with(';') || t.is_empty() {
            None
        } else {
            t.split_once('=').map(|(k, v)| (k.trim(), v.trim()))
        };
        match key {
            // "-key = v" (ignore errors) is the same key for sysctl.
            Some((k, v)) if k.trim_start_matches('-') == name => {
                if let (Some(val), false) = (value, done) {
                    if normalize(v) == normalize(val) {
                        out.push_str(&line);
                    } else {
                        out.push_str(&format!("{name}={val}\n"));
                    }
                    done = true;
                }
            }
            _ => out.push_str(&line),
        }
    }
    if let (Some(val), false) = (value, done) {
        out.push_str(&format!("{name}={val}\n"));
    }
    out
}

/// The live value as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// None: no such key in this kernel (or namespace).
    pub value: Option<String>,
    pub writable: bool,
    pub root: bool,
}

fn probe_script(name: &str, file: &str) -> String {
    let p = shell_quote(&proc_path(name));
    format!(
        "k={p}; if [ -f \"$k\" ]; then printf 'HLLIVE %s\\n' \"$(tr '\\t\\n' '  ' < \"$k\")\"; \
         if [ -w \"$k\" ]; then echo HLRW; fi; fi; echo \"HLUID $(id -u)\"; {}",
        text_probe(0, file)
    )
}

fn parse_live(out: &str) -> Live {
    Live {
        value: out
            .lines()
            .find_map(|l| l.strip_prefix("HLLIVE "))
            .map(normalize),
        writable: out.lines().any(|l| l == "HLRW"),
        root: out.lines().any(|l| l == "HLUID 0"),
    }
}

pub struct Plan {
    edit: FileEdit,
    live: Live,
    /// The value to set in the running kernel, when it is to be set.
    set_live: Option<String>,
    /// Why the live value cannot be set here (read-only /proc/sys, unknown key, not root).
    refusal: Option<String>,
}

/// Why `name` cannot be set on `host`, if it cannot.
fn refusal(host: &str, name: &str, live: &Live) -> Option<String> {
    let path = proc_path(name);
    if live.value.is_none() {
        return Some(format!(
            "{name} cannot be set on {host}: the kernel there has no {path} (unknown key, or a \
             module that is not loaded; net.* keys exist per network namespace). Check the name, \
             or set ignoreerrors: true to only write the file"
        ));
    }
    if live.writable {
        return None;
    }
    if !live.root {
        return Some(format!(
            "{name} cannot be set on {host}: {path} is writable by root only; set become: true"
        ));
    }
    Some(format!(
        "{name} cannot be set on {host}: the host does not allow it ({path} is read-only; \
         likely a container, which shares its host's kernel and may set only per-namespace keys \
         such as net.*). Set ignoreerrors: true to only write the file, or run this on a VM or \
         bare metal"
    ))
}

pub struct Sysctl;

impl Module for Sysctl {
    const NAME: &'static str = "sysctl";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let name = a.name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('=') {
            return Err(ModuleError::Failed(format!(
                "name '{}' is not a sysctl key (e.g. net.ipv4.ip_forward)",
                a.name
            )));
        }
        let value = match (a.state, a.value.as_deref()) {
            (State::Present, None) => {
                return Err(ModuleError::Failed(
                    "value is required with state: present".into(),
                ))
            }
            (State::Present, Some(v)) => Some(normalize(v)),
            (State::Absent, _) => None,
        };
        if value.as_deref() == Some("") {
            return Err(ModuleError::Failed(
                "value is empty: give the value to set".into(),
            ));
        }
        let file = a.sysctl_file.as_deref().unwrap_or(DEFAULT_FILE);
        let out = ctx.exec(probe_script(name, file)).await?;
        let out = out.stdout_str();
        let mut f = parse_text(&out, 0, file)
            .map_err(|e| ModuleError::Failed(format!("{e} (on {})", ctx.host)))?;
        super::sysutil::overlay(ctx, &mut f);
        let live = parse_live(&out);
        let after = edit_file(&f.text, name, value.as_deref());
        let after = if !f.exists && value.is_none() {
            None
        } else {
            Some(after)
        };
        let edit = FileEdit { file: f, after };
        let set_live = match &value {
            Some(v)
                if live.value.as_deref() != Some(v.as_str())
                    && (a.sysctl_set.unwrap_or(false)
                        || (a.reload.unwrap_or(true) && edit.changed())) =>
            {
                Some(v.clone())
            }
            _ => None,
        };
        let refusal = set_live
            .as_ref()
            .and_then(|_| refusal(ctx.host, name, &live));
        Ok(Plan {
            edit,
            live,
            set_live,
            refusal,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let ignore = a.ignoreerrors.unwrap_or(false);
        // The real run fails before writing anything; check mode tells the truth with a warning.
        if let (Some(why), false, false) = (&p.refusal, ignore, ctx.check) {
            return TaskResult::failed(why.clone());
        }
        let sets = p.set_live.is_some() && p.refusal.is_none();
        let mut r = TaskResult::changed(p.edit.changed() || sets)
            .with("name", a.name.trim())
            .with("sysctl_file", p.edit.file.path.clone());
        if let Some(v) = &a.value {
            r = r.with("value", normalize(v));
        }
        if let Some(v) = &p.live.value {
            r = r.with("live_value", v.clone());
        }
        if let Some(why) = &p.refusal {
            let w = if ignore {
                format!("{why} (ignored: only the file is written)")
            } else {
                format!("{why} (the real run fails here)")
            };
            r = r.with("warnings", vec![w.clone()]);
            if ctx.check && !ignore {
                r = r.msg(w);
            }
        }
        if ctx.diff {
            if p.edit.changed() {
                r.diff.push(p.edit.diff());
            }
            if let Some(v) = &p.set_live {
                let path = proc_path(a.name.trim());
                let before = p
                    .live
                    .value
                    .clone()
                    .unwrap_or_else(|| "(no such key)".into());
                let after = if p.refusal.is_some() {
                    format!("{before} (cannot be set on this host)")
                } else {
                    v.clone()
                };
                r.diff
                    .push(state_diff(&path, &[("value", before)], &[("value", after)]));
            }
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        p.edit.simulate(ctx);
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        p.edit.apply(ctx, false).await?;
        if let (Some(v), None) = (&p.set_live, &p.refusal) {
            let name = a.name.trim();
            let kv = shell_quote(&format!("{name}={v}"));
            let script = format!(
                "if command -v sysctl >/dev/null 2>&1; then sysctl -q -w {kv}; \
                 else printf '%s\\n' {} > {}; fi",
                shell_quote(v),
                shell_quote(&proc_path(name))
            );
            let out = ctx.exec(script).await?;
            if !out.success() && !a.ignoreerrors.unwrap_or(false) {
                return Err(ModuleError::Failed(format!(
                    "setting {name}={v} in the running kernel failed on {} (the file {} is \
                     written): {}",
                    ctx.host,
                    p.edit.file.path,
                    out.stderr_str().trim()
                )));
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_paths() {
        assert_eq!(normalize(" 4096\t87380   6291456 "), "4096 87380 6291456");
        assert_eq!(normalize("yes"), "1");
        assert_eq!(normalize("False"), "0");
        assert_eq!(
            proc_path("net.ipv4.ip_forward"),
            "/proc/sys/net/ipv4/ip_forward"
        );
        assert_eq!(
            proc_path("net/ipv4/conf/eth0.1/rp_filter"),
            "/proc/sys/net/ipv4/conf/eth0.1/rp_filter"
        );
    }

    #[test]
    fn file_editing() {
        let k = "net.ipv4.ip_forward";
        // Appended to an empty or missing file, and to one without a final newline.
        assert_eq!(edit_file("", k, Some("1")), "net.ipv4.ip_forward=1\n");
        assert_eq!(
            edit_file("# c", k, Some("1")),
            "# c\nnet.ipv4.ip_forward=1\n"
        );
        // Replaced where it is; comments kept; duplicates dropped.
        let t = "# net.ipv4.ip_forward=0\na.b = 2\nnet.ipv4.ip_forward = 0\nc=3\nnet.ipv4.ip_forward=0\n";
        assert_eq!(
            edit_file(t, k, Some("1")),
            "# net.ipv4.ip_forward=0\na.b = 2\nnet.ipv4.ip_forward=1\nc=3\n"
        );
        // Already right (spacing aside): left as written.
        let t = "net.ipv4.ip_forward = 1\n";
        assert_eq!(edit_file(t, k, Some("1")), t);
        // Absent removes every line of the key, and only those.
        let t = "a=1\nnet.ipv4.ip_forward=1\n-net.ipv4.ip_forward = 1\nnet.ipv4.ip_forward_x=1\n";
        assert_eq!(edit_file(t, k, None), "a=1\nnet.ipv4.ip_forward_x=1\n");
    }

    #[test]
    fn probe_parsing_and_refusals() {
        let l = parse_live("HLLIVE 60 \nHLUID 0\n");
        assert_eq!(
            l,
            Live {
                value: Some("60".into()),
                writable: false,
                root: true
            }
        );
        let m = refusal("node1", "vm.swappiness", &l).unwrap();
        assert!(m.contains("the host does not allow it"), "{m}");
        assert!(m.contains("ignoreerrors: true"), "{m}");
        assert!(m.contains("node1"), "{m}");
        let l = parse_live("HLLIVE 1\nHLRW\nHLUID 0\n");
        assert!(refusal("node1", "net.ipv4.ip_forward", &l).is_none());
        let l = parse_live("HLUID 0\n");
        assert!(refusal("n", "vm.nosuch", &l)
            .unwrap()
            .contains("has no /proc/sys/vm/nosuch"));
        let l = parse_live("HLLIVE 1\nHLUID 1000\n");
        assert!(refusal("n", "net.x", &l).unwrap().contains("become: true"));
    }

    #[tokio::test]
    async fn bad_arguments_fail_clearly() {
        use crate::modules::testutil::run;
        use serde_json::json;
        let r = run::<Sysctl>(true, json!({"name": "vm.swappiness"})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("value is required"),
            "{r:?}"
        );
        let r = run::<Sysctl>(
            true,
            json!({"name": "vm.swappiness", "value": 1, "reload_x": 1}),
        )
        .await;
        assert!(r.failed, "{r:?}");
        let r = run::<Sysctl>(true, json!({"name": "a b", "value": 1})).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("not a sysctl key"),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn edits_a_local_file_in_check_and_real_mode() {
        use crate::modules::testutil::run;
        use serde_json::json;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub/90-t.conf");
        let fs = f.display().to_string();
        // Not setting the live value (reload off): only the file.
        let args =
            json!({"name": "hsys.test.key", "value": "1", "sysctl_file": fs, "reload": false});
        let r = run::<Sysctl>(true, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert!(!f.exists(), "check mode wrote the file");
        assert_eq!(r.diff[0].after, "hsys.test.key=1\n");
        let r = run::<Sysctl>(false, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "hsys.test.key=1\n");
        let r = run::<Sysctl>(false, args).await;
        assert!(!r.changed && !r.failed, "{r:?}");
        // A key this kernel does not have fails when it is to be set, writing nothing.
        let args = json!({"name": "hsys.test.key", "value": "2", "sysctl_file": fs});
        let r = run::<Sysctl>(false, args).await;
        assert!(
            r.failed
                && r.msg
                    .as_deref()
                    .unwrap_or("")
                    .contains("has no /proc/sys/hsys/test/key"),
            "{r:?}"
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "hsys.test.key=1\n");
        let args = json!({"name": "hsys.test.key", "state": "absent", "sysctl_file": fs});
        let r = run::<Sysctl>(false, args).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "");
    }
}
