//! `modprobe`: a kernel module loaded or not, and optionally kept so across reboots. One probe reads
//! whether the module is in the kernel (`/proc/modules`, `/sys/module/NAME` for built-ins and,
//! where those are hidden as in containers, what a module leaves visible: its filesystem in
//! `/proc/filesystems`, `br_netfilter`'s `/proc/sys/net/bridge`...), whether modules can be loaded
//! here (modprobe installed, not a container, root) and the persistent files
//! `/etc/modules-load.d/NAME.conf` and `/etc/modprobe.d/NAME.conf`.
//!
//! A container shares its host's kernel and cannot load modules: a load (or unload) that is needed
//! fails naming the host and what to do, and writes nothing; check mode reports the plan with a
//! warning. A module that is already in the kernel is `ok` with `state: present`, container or not.

use super::core::{stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::remote::state_diff;
use super::sysutil::{lines_nl, overlay, parse_text, text_probe, FileEdit};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Persistent {
    Present,
    Absent,
    #[default]
    Disabled,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
    #[serde(default)]
    pub state: State,
    #[serde(default, deserialize_with = "stringish::option")]
    pub params: Option<String>,
    #[serde(default)]
    pub persistent: Persistent,
}

/// Files or folders whose presence shows that a module is in the kernel even where
/// `/proc/modules` and `/sys/module` are hidden (containers).
fn evidence(name: &str) -> &'static [&'static str] {
    match name {
        "br_netfilter" => &["/proc/sys/net/bridge/bridge-nf-call-iptables"],
        "nf_conntrack" => &["/proc/sys/net/netfilter/nf_conntrack_max"],
        "ip_vs" => &["/proc/net/ip_vs"],
        "ipv6" => &["/proc/sys/net/ipv6"],
        _ => &[],
    }
}

pub fn modules_load_path(name: &str) -> String {
    format!("/etc/modules-load.d/{name}.conf")
}

pub fn modprobe_d_path(name: &str) -> String {
    format!("/etc/modprobe.d/{name}.conf")
}

/// Module names use `_` and `-` interchangeably; the kernel lists them with `_`.
fn kname(name: &str) -> String {
    name.replace('-', "_")
}

fn probe_script(name: &str) -> String {
    let k = shell_quote(&kname(name));
    let mut s = format!(
        "n={k}; if [ -r /proc/modules ]; then echo HLPROCMOD; \
         grep -q \"^$n \" /proc/modules && echo 'HLLOADED /proc/modules'; fi; \
         [ -d \"/sys/module/$n\" ] && echo 'HLLOADED /sys/module'; \
         grep -q \"[[:space:]]$n\\$\" /proc/filesystems 2>/dev/null && echo 'HLLOADED /proc/filesystems'; \
         r=$(uname -r); [ -f \"/lib/modules/$r/modules.builtin\" ] && \
         grep -q \"/$n.ko\" \"/lib/modules/$r/modules.builtin\" && echo 'HLLOADED builtin'; \
         [ -d \"/lib/modules/$r\" ] && echo HLMODDIR; \
         command -v modprobe >/dev/null 2>&1 && echo HLMODPROBE; \
         if [ -s /run/systemd/container ]; then echo \"HLVIRT $(cat /run/systemd/container)\"; \
         elif v=$(systemd-detect-virt -c 2>/dev/null); then echo \"HLVIRT $v\"; \
         elif [ -f /.dockerenv ]; then echo 'HLVIRT docker'; fi; \
         echo \"HLUID $(id -u)\"; "
    );
    for e in evidence(&kname(name)) {
        s.push_str(&format!("[ -e {e} ] && echo 'HLLOADED {e}'; "));
    }
    s.push_str(&text_probe(0, &modules_load_path(name)));
    s.push_str(&text_probe(1, &modprobe_d_path(name)));
    s
}

/// What the probe found about the module and the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probe {
    /// Where the module was seen (empty: not loaded).
    pub seen: Vec<String>,
    pub modprobe: bool,
    pub container: Option<String>,
    pub root: bool,
}

fn parse_probe(out: &str) -> Probe {
    let mut p = Probe::default();
    for l in out.lines() {
        if let Some(w) = l.strip_prefix("HLLOADED ") {
            p.seen.push(w.to_string());
        } else if l == "HLMODPROBE" {
            p.modprobe = true;
        } else if let Some(v) = l.strip_prefix("HLVIRT ") {
            let v = v.trim();
            if !v.is_empty() && v != "none" {
                p.container = Some(v.to_string());
            }
        } else if l == "HLUID 0" {
            p.root = true;
        }
    }
    p
}

/// Why the module cannot be loaded or unloaded on `host`, if it cannot.
fn refusal(host: &str, name: &str, verb: &str, p: &Probe) -> Option<String> {
    if let Some(c) = &p.container {
        return Some(format!(
            "cannot {verb} kernel module {name} on {host}: the host is a container ({c}), which \
             shares the kernel of the machine it runs on and cannot load or unload modules. \
             {verb} it on that machine (modprobe {name}, and list it in /etc/modules-load.d/ to \
             keep it), or run this on a VM or bare metal"
        ));
    }
    if !p.modprobe {
        return Some(format!(
            "cannot {verb} kernel module {name} on {host}: modprobe is not installed there \
             (apt-get install kmod)"
        ));
    }
    if !p.root {
        return Some(format!(
            "cannot {verb} kernel module {name} on {host}: only root can; set become: true"
        ));
    }
    None
}

/// `/etc/modules-load.d/NAME.conf` for `persistent`: the name listed (present) or commented out
/// (absent), other lines kept.
pub fn edit_modules_load(text: &str, name: &str, present: bool) -> String {
    let mut out = String::new();
    let mut found = false;
    for line in lines_nl(text) {
        let t = line.trim();
        if t == name || t == kname(name) {
            if present && !found {
                out.push_str(&line);
            } else if !present {
                out.push_str(&format!("#{line}"));
            }
            found = true;
        } else {
            out.push_str(&line);
        }
    }
    if present && !found {
        out.push_str(&format!("{name}\n"));
    }
    out
}

/// `/etc/modprobe.d/NAME.conf`: one `options NAME PARAMS` line (present, with params) or the
/// options lines commented out (absent).
pub fn edit_modprobe_d(text: &str, name: &str, params: &str, present: bool) -> String {
    let want = format!("options {name} {params}");
    let mut out = String::new();
    let mut done = false;
    for line in lines_nl(text) {
        let mut w = line.split_whitespace();
        let is_opt = w.next() == Some("options")
            && w.next()
                .is_some_and(|m| m == name || kname(m) == kname(name));
        if !is_opt {
            out.push_str(&line);
        } else if !present {
            out.push_str(&format!("#{line}"));
        } else if !done {
            let same = line.split_whitespace().collect::<Vec<_>>().join(" ") == want.trim();
            if same {
                out.push_str(&line);
            } else {
                out.push_str(&format!("{}\n", want.trim()));
            }
            done = true;
        }
    }
    if present && !done && !params.trim().is_empty() {
        out.push_str(&format!("{}\n", want.trim()));
    }
    out
}

pub struct Plan {
    probe: Probe,
    /// modprobe or modprobe -r to run.
    action: Option<&'static str>,
    refusal: Option<String>,
    files: Vec<FileEdit>,
}

pub struct Modprobe;

impl Module for Modprobe {
    const NAME: &'static str = "modprobe";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let name = a.name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ModuleError::Failed(format!(
                "name '{}' is not a kernel module name (letters, digits, _ and -)",
                a.name
            )));
        }
        let out = ctx.exec(probe_script(name)).await?.stdout_str();
        let probe = parse_probe(&out);
        let loaded = !probe.seen.is_empty();
        let action = match (a.state, loaded) {
            (State::Present, false) => Some("load"),
            (State::Absent, true) => Some("unload"),
            _ => None,
        };
        let refusal = action.and_then(|v| refusal(ctx.host, name, v, &probe));
        let params = a.params.as_deref().unwrap_or("").trim().to_string();
        let mut files = vec![];
        if a.persistent != Persistent::Disabled {
            let present = a.persistent == Persistent::Present;
            let read = |i: usize, p: &str| {
                parse_text(&out, i, p).map(|mut f| {
                    overlay(ctx, &mut f);
                    f
                })
            };
            let ml = read(0, &modules_load_path(name)).map_err(ModuleError::Failed)?;
            let md = read(1, &modprobe_d_path(name)).map_err(ModuleError::Failed)?;
            let after = edit_modules_load(&ml.text, name, present);
            files.push(FileEdit {
                after: (ml.exists || present).then_some(after),
                file: ml,
            });
            let after = edit_modprobe_d(&md.text, name, &params, present);
            let keep = md.exists || (present && !params.is_empty());
            files.push(FileEdit {
                after: keep.then_some(after),
                file: md,
            });
        }
        Ok(Plan {
            probe,
            action,
            refusal,
            files,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        if let (Some(why), false) = (&p.refusal, ctx.check) {
            return TaskResult::failed(why.clone());
        }
        let files_changed = p.files.iter().any(FileEdit::changed);
        let mut r = TaskResult::changed(p.action.is_some() || files_changed)
            .with("name", a.name.trim())
            .with("params", a.params.clone().unwrap_or_default())
            .with(
                "state",
                match a.state {
                    State::Present => "present",
                    State::Absent => "absent",
                },
            );
        if !p.probe.seen.is_empty() {
            r = r.with("seen_in", p.probe.seen.clone());
        }
        if let Some(why) = &p.refusal {
            let w = format!("{why} (the real run fails here)");
            r = r.with("warnings", vec![w.clone()]).msg(w);
        }
        if ctx.diff {
            if let Some(act) = p.action {
                let (b, mut after) = if act == "load" {
                    ("absent", "present".to_string())
                } else {
                    ("present", "absent".to_string())
                };
                if p.refusal.is_some() {
                    after = format!("{b} (cannot {act} it on this host)");
                }
                r.diff.push(state_diff(
                    &format!("kernel module {}", a.name.trim()),
                    &[("state", b.to_string())],
                    &[("state", after)],
                ));
            }
            for f in p.files.iter().filter(|f| f.changed()) {
                r.diff.push(f.diff());
            }
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        for f in &p.files {
            f.simulate(ctx);
        }
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let name = a.name.trim();
        if let Some(act) = p.action {
            let cmd = if act == "load" {
                let params = a.params.as_deref().unwrap_or("").trim();
                format!("modprobe -- {} {params}", shell_quote(name))
            } else {
                format!("modprobe -r -- {}", shell_quote(name))
            };
            let out = ctx.exec(cmd).await?;
            if !out.success() {
                return Err(ModuleError::Failed(format!(
                    "could not {act} kernel module {name} on {}: {}",
                    ctx.host,
                    out.stderr_str().trim()
                )));
            }
        }
        for f in &p.files {
            f.apply(ctx, false).await?;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_parsing_and_refusals() {
        let p = parse_probe(
            "HLLOADED /proc/filesystems\nHLVIRT systemd-nspawn\nHLUID 0\nHLTF0 absent\n",
        );
        assert_eq!(p.seen, ["/proc/filesystems"]);
        assert_eq!(p.container.as_deref(), Some("systemd-nspawn"));
        let m = refusal("node1", "dummy", "load", &p).unwrap();
        assert!(
            m.starts_with("cannot load kernel module dummy on node1: the host is a container"),
            "{m}"
        );
        let p = parse_probe("HLVIRT none\nHLUID 0\n");
        assert!(p.container.is_none());
        assert!(refusal("n", "x", "load", &p)
            .unwrap()
            .contains("apt-get install kmod"));
        let p = parse_probe("HLMODPROBE\nHLUID 0\n");
        assert!(refusal("n", "x", "load", &p).is_none());
        let p = parse_probe("HLMODPROBE\nHLUID 1000\n");
        assert!(refusal("n", "x", "unload", &p)
            .unwrap()
            .contains("become: true"));
        assert!(probe_script("br_netfilter").contains("/proc/sys/net/bridge"));
    }

    #[test]
    fn persistent_files() {
        assert_eq!(edit_modules_load("", "dummy", true), "dummy\n");
        assert_eq!(
            edit_modules_load("# x\ndummy\n", "dummy", true),
            "# x\ndummy\n"
        );
        assert_eq!(
            edit_modules_load("a\ndummy\n", "dummy", false),
            "a\n#dummy\n"
        );
        assert_eq!(edit_modules_load("#dummy\n", "dummy", false), "#dummy\n");
        assert_eq!(
            edit_modprobe_d("", "dummy", "numdummies=2", true),
            "options dummy numdummies=2\n"
        );
        assert_eq!(
            edit_modprobe_d(
                "options dummy numdummies=1\noptions dummy x=1\n",
                "dummy",
                "numdummies=2",
                true
            ),
            "options dummy numdummies=2\n"
        );
        let t = "options  dummy numdummies=2\n";
        assert_eq!(edit_modprobe_d(t, "dummy", "numdummies=2", true), t);
        assert_eq!(
            edit_modprobe_d(
                "options dummy numdummies=2\nblacklist x\n",
                "dummy",
                "",
                false
            ),
            "#options dummy numdummies=2\nblacklist x\n"
        );
        assert_eq!(edit_modprobe_d("", "dummy", "", true), "");
    }
}
