//! The per-host supervisor: `homelab lab __supervise NAME --lab-dir DIR`, started detached with
//! `setsid` so it outlives `lab up`. It runs systemd-nspawn in the host's cgroups and starts it
//! again when it exits with 133 (the host ran `reboot`); any other exit (poweroff, `lab down`'s
//! SIGTERM, a failure) ends it.

use super::error::{LabError, Result};
use super::host::{self, HostPaths};
use super::sys::{self, cmd};
use super::BRIDGE;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "__supervise";
/// systemd-nspawn's exit code when the container asked for a reboot.
pub const REBOOT_EXIT: i32 = 133;
/// Every nspawn the lab starts carries this argument (with `=NAME`): how teardown recognises them.
pub const NSPAWN_MARKER: &str = "--setenv=HOMELAB_LAB_HOST=";

/// Moves itself into each cgroup given before `--`, then execs the rest (so nspawn and the whole
/// container live in the host's cgroups from their first instruction).
const CGROUP_WRAPPER: &str = r#"while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; done; shift; exec "$@""#;

/// Starts the supervisor for `name` detached from this process; returns its pid.
pub fn spawn(name: &str, lab_dir: &Path, paths: &HostPaths) -> Result<u32> {
    let exe = std::env::current_exe()
        .map_err(|e| LabError::io("finding this program's path", "/proc/self/exe", e))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.supervisor_log)
        .map_err(|e| LabError::io("opening", &paths.supervisor_log, e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| LabError::io("opening", &paths.supervisor_log, e))?;
    let _ = fs::remove_file(&paths.stop_flag);
    // Not a process-group leader, so setsid(1) calls setsid(2) and execs in place: the pid we get
    // is the supervisor's.
    let mut c = cmd("setsid");
    c.arg(&exe)
        .args(["lab", SUBCOMMAND, name, "--lab-dir"])
        .arg(lab_dir)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let child = c.spawn().map_err(|source| LabError::Spawn {
        command: sys::describe(&c),
        source,
    })?;
    let pid = child.id();
    sys::write_file(&paths.supervisor_pid, format!("{pid}\n").as_bytes(), 0o644)?;
    Ok(pid)
}

/// The supervisor's loop. Returns the exit code.
pub fn run(name: &str, lab_dir: &Path) -> Result<i32> {
    if !super::is_host_name(name) {
        return Err(LabError::Invalid(format!("not a lab host name: {name}")));
    }
    let paths = HostPaths::new(lab_dir, name);
    let cgroups = host::cgroup_dirs(name);
    if cgroups.iter().any(|d| !d.is_dir()) || cgroups.is_empty() {
        return Err(LabError::Invalid(format!(
            "the cgroups of {name} do not exist; start hosts with `homelab lab up`"
        )));
    }
    say(&format!("supervising {name} (pid {})", std::process::id()));
    let mut reboots: Vec<Instant> = Vec::new();
    loop {
        if paths.stop_flag.exists() {
            say("stop requested; not starting systemd-nspawn");
            return Ok(0);
        }
        let console = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&paths.console_log)
            .map_err(|e| LabError::io("opening", &paths.console_log, e))?;
        let console2 = console
            .try_clone()
            .map_err(|e| LabError::io("opening", &paths.console_log, e))?;
        let mut c = cmd("sh");
        c.arg("-c").arg(CGROUP_WRAPPER).arg("sh");
        c.args(&cgroups).arg("--");
        c.arg("systemd-nspawn")
            .arg("-q")
            .arg("-D")
            .arg(&paths.merged)
            .args([
                "--boot",
                "--register=no",
                "--keep-unit",
                &format!("--machine={name}"),
                &format!("--network-bridge={BRIDGE}"),
                "--resolv-conf=copy-host",
                "--timezone=off",
                "--console=read-only",
                &format!("{NSPAWN_MARKER}{name}"),
            ])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(console2);
        let mut child = c.spawn().map_err(|source| LabError::Spawn {
            command: sys::describe(&c),
            source,
        })?;
        let pid = child.id();
        sys::write_file(&paths.nspawn_pid, format!("{pid}\n").as_bytes(), 0o644)?;
        say(&format!("systemd-nspawn started (pid {pid})"));
        let status = child.wait().map_err(|source| LabError::Spawn {
            command: "waiting for systemd-nspawn".into(),
            source,
        })?;
        let _ = fs::remove_file(&paths.nspawn_pid);
        if status.code() == Some(REBOOT_EXIT) {
            let now = Instant::now();
            reboots.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
            reboots.push(now);
            if reboots.len() > 10 {
                say("more than 10 reboots within 60 s; giving up");
                return Ok(1);
            }
            say("host rebooted (exit 133); starting it again");
            continue;
        }
        say(&format!("systemd-nspawn exited: {status}; supervisor ends"));
        return Ok(0);
    }
}

fn say(msg: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "[{}] {msg}", sys::now_secs());
    let _ = out.flush();
}

/// Running supervisors: (pid, host name), from every process's command line.
pub fn find_supervisors() -> Vec<(u32, String)> {
    let me = std::process::id();
    sys::all_pids()
        .into_iter()
        .filter(|p| *p != me)
        .filter_map(|p| {
            let args = sys::cmdline(p)?;
            let i = args
                .windows(2)
                .position(|w| w[0] == "lab" && w[1] == SUBCOMMAND)?;
            let name = args.get(i + 2)?.clone();
            Some((p, name))
        })
        .collect()
}

/// Running systemd-nspawn processes the lab started (and their `sh` wrappers before exec):
/// (pid, host name).
pub fn find_nspawns() -> Vec<(u32, String)> {
    sys::all_pids()
        .into_iter()
        .filter_map(|p| {
            let args = sys::cmdline(p)?;
            let name = args
                .iter()
                .find_map(|a| a.strip_prefix(NSPAWN_MARKER))?
                .to_string();
            Some((p, name))
        })
        .collect()
}
