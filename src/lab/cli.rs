//! `homelab lab up|down|status`.

use super::error::{LabError, Result};
use super::host::{self, Host, HostPaths};
use super::sys::{self, cmd};
use super::teardown::{self, Purge};
use super::{lab_dir, net, rootfs, supervisor, LAB_USER, MAX_HOSTS, RUN_DIR, SUBNET};
use clap::{Args, Subcommand};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
#[command(after_help = lab_help())]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start N isolated Debian hosts (systemd-nspawn) with real sshd; cleans stale state first.
    ///
    /// If a healthy lab with the same number of hosts is already running, it is left as it is
    /// (nothing to do). A lab with a different number of hosts, or one that is not healthy (a host
    /// or its supervisor gone), is removed and made afresh. State left by a killed earlier lab
    /// (bridge, nftables table, mounts, cgroups, processes, ip_forward) is always cleaned first.
    Up {
        /// How many hosts (1 to 50).
        #[arg(default_value_t = 3)]
        count: usize,
        /// Seconds to wait for every host's sshd to answer.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
    },
    /// Stop every lab host and remove every trace (idempotent).
    Down,
    /// Show the lab's hosts and whether they are running; exits 0 only if every host is.
    Status,
    /// Internal: the per-host supervisor that `lab up` starts (restarts nspawn on reboot).
    #[command(name = "__supervise", hide = true)]
    Supervise {
        name: String,
        #[arg(long)]
        lab_dir: PathBuf,
    },
}

fn lab_help() -> String {
    format!(
        "Hosts are node1..nodeN at {}.. on the bridge {} (gateway {}, NAT to the outside); each \
         has sshd and the user {LAB_USER} with passwordless sudo. `up` writes LAB_DIR/inventory.ini, \
         LAB_DIR/id_ed25519 and LAB_DIR/known_hosts; LAB_DIR is $HOMELAB_LAB_DIR or \
         /var/lib/homelab/lab. The root filesystem is built once with debootstrap and cached under \
         $HOMELAB_CACHE_DIR or ~/.cache/homelab. There is one lab per machine. Needs root.",
        SUBNET.host(1),
        super::BRIDGE,
        SUBNET.gateway()
    )
}

/// Runs the subcommand; returns the process exit code.
pub fn run(args: LabArgs) -> anyhow::Result<i32> {
    sys::require_root()?;
    let code = match args.command {
        LabCommand::Up { count, timeout } => up(count, Duration::from_secs(timeout))?,
        LabCommand::Down => down()?,
        LabCommand::Status => status()?,
        LabCommand::Supervise { name, lab_dir } => supervisor::run(&name, &lab_dir)?,
    };
    Ok(code)
}

/// Tools every subcommand but the supervisor may need, with the Debian package that has them.
const TOOLS: [(&str, &str); 9] = [
    ("systemd-nspawn", "systemd-container"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("ssh-keygen", "openssh-client"),
    ("zstd", "zstd"),
    ("tar", "tar"),
    ("mount", "mount"),
    ("setsid", "util-linux"),
    ("nsenter", "util-linux"),
];

/// The lab directory as an absolute path that mount options can carry.
fn lab_path() -> Result<PathBuf> {
    let d = std::path::absolute(lab_dir())
        .map_err(|e| LabError::io("resolving the lab directory", lab_dir(), e))?;
    let s = d.to_string_lossy();
    if s.contains([',', ':', '\n']) {
        return Err(LabError::Invalid(format!(
            "the lab directory {s} must not contain ',' ':' or newlines (overlayfs options)"
        )));
    }
    Ok(d)
}

/// One lab command at a time on this machine (the bridge and subnet are machine-wide).
fn lock() -> Result<fs::File> {
    sys::create_dir_all(Path::new(RUN_DIR))?;
    let p = Path::new(RUN_DIR).join("lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| LabError::io("opening", &p, e))?;
    f.lock().map_err(|e| LabError::io("locking", &p, e))?;
    Ok(f)
}

fn state_path(lab: &Path) -> PathBuf {
    lab.join("lab.json")
}

/// The number of hosts of the lab recorded in `lab.json`.
fn recorded_count(lab: &Path) -> Option<usize> {
    let text = fs::read_to_string(state_path(lab)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("hosts")?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_HOSTS).contains(n))
}

/// Whether host `h`'s supervisor and nspawn run and its sshd answers.
fn healthy(lab: &Path, h: &Host) -> bool {
    let p = HostPaths::new(lab, &h.name);
    let sup_ok = host::read_pid(&p.supervisor_pid).is_some_and(|pid| {
        sys::alive(pid)
            && sys::cmdline(pid).is_some_and(|a| {
                a.iter().any(|x| x == supervisor::SUBCOMMAND) && a.contains(&h.name)
            })
    });
    let nspawn_ok = host::read_pid(&p.nspawn_pid).is_some_and(sys::alive);
    sup_ok && nspawn_ok && host::ssh_banner(h.addr, Duration::from_secs(2))
}

fn up(count: usize, timeout: Duration) -> Result<i32> {
    if count == 0 || count > MAX_HOSTS {
        return Err(LabError::Invalid(format!(
            "a lab has 1 to {MAX_HOSTS} hosts, not {count}"
        )));
    }
    sys::require_tools(&TOOLS)?;
    let lab = lab_path()?;
    let _lock = lock()?;
    let started = Instant::now();
    let hosts = host::hosts(count);

    if let Some(running) = recorded_count(&lab) {
        if running == count
            && lab.join("inventory.ini").is_file()
            && hosts.iter().all(|h| healthy(&lab, h))
        {
            println!("the lab is already running with {count} hosts; nothing to do");
            print_hosts(&lab, &hosts);
            return Ok(0);
        }
        if running != count {
            println!("a lab with {running} hosts is running; replacing it with {count} hosts");
        } else {
            println!("the lab with {count} hosts is not healthy; making it afresh");
        }
    }
    let left = teardown::detect(&lab);
    if !left.is_empty() || !left.host_dirs.is_empty() {
        let what = left.describe();
        if what.is_empty() {
            println!("removing the files of an earlier lab");
        } else {
            println!("cleaning up an earlier lab: {}", what.join(", "));
        }
        teardown::teardown(&lab, Purge::Hosts)?;
    }

    let tarball = rootfs::ensure_tarball()?;
    sys::create_dir_all(&lab)?;
    let root = lab.join("rootfs");
    rootfs::unpack(&tarball, &root)?;
    let key = lab.join("id_ed25519");
    if !key.is_file() || !key.with_extension("pub").is_file() {
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(key.with_extension("pub"));
        sys::run(
            cmd("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "homelab-lab", "-f"])
                .arg(&key),
        )?;
    }
    let client_pub_path = key.with_extension("pub");
    let client_pub = fs::read_to_string(&client_pub_path)
        .map_err(|e| LabError::io("reading", &client_pub_path, e))?;

    sys::write_file(
        &teardown::active_dir_record(),
        lab.to_string_lossy().as_bytes(),
        0o644,
    )?;
    sys::write_file(
        &state_path(&lab),
        serde_json::json!({ "hosts": count, "subnet": SUBNET.cidr() })
            .to_string()
            .as_bytes(),
        0o644,
    )?;
    net::setup()?;

    let mut known_hosts = String::new();
    for h in &hosts {
        let p = HostPaths::new(&lab, &h.name);
        sys::remove_tree(&p.dir)?;
        sys::create_dir_all(&p.dir)?;
        host::create_cgroups(&h.name)?;
        host::mount_overlay(&h.name, &p, &root)?;
        let host_key = host::configure(h, &hosts, &p.merged, &client_pub)?;
        // known_hosts wants "address keytype key": drop the key's comment.
        let mut parts = host_key.split_whitespace();
        let (Some(kt), Some(k)) = (parts.next(), parts.next()) else {
            return Err(LabError::Invalid(format!(
                "unexpected host key format for {}: {host_key}",
                h.name
            )));
        };
        known_hosts.push_str(&format!("{} {kt} {k}\n", h.addr));
    }
    sys::write_file(&lab.join("known_hosts"), known_hosts.as_bytes(), 0o644)?;

    println!("booting {count} host(s)...");
    for h in &hosts {
        supervisor::spawn(&h.name, &lab, &HostPaths::new(&lab, &h.name))?;
    }
    wait_for_sshd(&lab, &hosts, timeout)?;

    write_inventory(&lab, &hosts)?;
    println!(
        "lab up: {count} host(s) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    print_hosts(&lab, &hosts);
    Ok(0)
}

/// Waits until every host's sshd answers with its banner; fails naming the first host that did
/// not, with the end of its console log.
fn wait_for_sshd(lab: &Path, hosts: &[Host], timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut pending: Vec<&Host> = hosts.iter().collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for h in pending {
            let p = HostPaths::new(lab, &h.name);
            if host::ssh_banner(h.addr, Duration::from_millis(500)) {
                println!(
                    "  {} is up ({}, {:.1} s)",
                    h.name,
                    h.addr,
                    started.elapsed().as_secs_f64()
                );
                continue;
            }
            let sup_alive = host::read_pid(&p.supervisor_pid).is_some_and(sys::alive);
            if !sup_alive {
                return Err(LabError::HostDied {
                    host: h.name.clone(),
                    reason: sys::tail(&p.supervisor_log, 1),
                    log_tail: sys::tail(&p.console_log, 25),
                    log: p.console_log,
                });
            }
            still.push(h);
        }
        pending = still;
        if let Some(h) = pending.first() {
            if started.elapsed() >= timeout {
                let p = HostPaths::new(lab, &h.name);
                return Err(LabError::HostTimeout {
                    host: h.name.clone(),
                    addr: h.addr.to_string(),
                    waited_secs: timeout.as_secs(),
                    log_tail: sys::tail(&p.console_log, 25),
                    log: p.console_log,
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    Ok(())
}

/// The Ansible INI inventory of the lab.
pub fn inventory_text(lab: &Path, hosts: &[Host]) -> String {
    let mut s =
        String::from("# Written by `homelab lab up`; removed by `homelab lab down`.\n[lab]\n");
    for h in hosts {
        s.push_str(&format!("{} ansible_host={}\n", h.name, h.addr));
    }
    let key = lab.join("id_ed25519");
    let kh = lab.join("known_hosts");
    s.push_str(&format!(
        "\n[lab:vars]\nansible_user={LAB_USER}\nansible_ssh_private_key_file={}\n\
         ansible_ssh_common_args='-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes'\n",
        key.display(),
        kh.display()
    ));
    s
}

fn write_inventory(lab: &Path, hosts: &[Host]) -> Result<()> {
    let path = lab.join("inventory.ini");
    let tmp = lab.join("inventory.ini.tmp");
    sys::write_file(&tmp, inventory_text(lab, hosts).as_bytes(), 0o644)?;
    fs::rename(&tmp, &path).map_err(|e| LabError::io("writing", &path, e))
}

fn print_hosts(lab: &Path, hosts: &[Host]) {
    for h in hosts {
        println!("  {:<8} {}", h.name, h.addr);
    }
    let key = lab.join("id_ed25519");
    println!("inventory: {}", lab.join("inventory.ini").display());
    if let Some(h) = hosts.first() {
        println!(
            "ssh:       ssh -i {} -o UserKnownHostsFile={} {LAB_USER}@{}",
            key.display(),
            lab.join("known_hosts").display(),
            h.addr
        );
    }
}

fn down() -> Result<i32> {
    sys::require_tools(&[("nft", "nftables"), ("ip", "iproute2")])?;
    let lab = lab_path()?;
    let _lock = lock()?;
    let started = Instant::now();
    let left = teardown::detect(&lab);
    let files = teardown::LAB_FILES.iter().any(|f| lab.join(f).exists())
        || lab.join("rootfs").exists()
        || lab.join("id_ed25519").exists();
    if left.is_empty() && left.host_dirs.is_empty() && !files {
        println!("no lab is running; nothing to remove");
        return Ok(0);
    }
    for line in teardown::teardown(&lab, Purge::All)? {
        println!("  {line}");
    }
    println!("lab down in {:.1} s", started.elapsed().as_secs_f64());
    Ok(0)
}

fn status() -> Result<i32> {
    let mut lab = lab_path()?;
    if recorded_count(&lab).is_none() {
        // The running lab may have been made with another HOMELAB_LAB_DIR.
        if let Ok(rec) = fs::read_to_string(teardown::active_dir_record()) {
            let rec = PathBuf::from(rec.trim());
            if rec.is_absolute() && recorded_count(&rec).is_some() {
                lab = rec;
            }
        }
    }
    let left = teardown::detect(&lab);
    let count = recorded_count(&lab).or_else(|| {
        let mut n = 0;
        for (_, name) in left.supervisors.iter().chain(left.nspawns.iter()) {
            if let Some(k) = name
                .strip_prefix("node")
                .and_then(|k| k.parse::<usize>().ok())
            {
                n = n.max(k);
            }
        }
        (n > 0).then_some(n.min(MAX_HOSTS))
    });
    let Some(count) = count else {
        if left.is_empty() {
            println!("no lab is running");
        } else {
            println!(
                "no lab is recorded, but state of one exists: {}",
                left.describe().join(", ")
            );
            println!("`homelab lab up` or `homelab lab down` cleans it");
        }
        return Ok(1);
    };
    println!("lab directory: {}", lab.display());
    println!("{:<8} {:<14} {:<9} BOOT_ID", "HOST", "ADDRESS", "STATE");
    let mut all_up = true;
    let mut orphans = false;
    for h in host::hosts(count) {
        let nspawn = left.nspawns.iter().any(|(_, n)| *n == h.name);
        let sup = left.supervisors.iter().any(|(_, n)| *n == h.name);
        let banner = nspawn && host::ssh_banner(h.addr, Duration::from_secs(1));
        let state = match (nspawn, banner, sup) {
            (true, true, true) => "running",
            (true, true, false) => {
                orphans = true;
                "running*"
            }
            (true, false, _) => "booting",
            (false, _, _) => "stopped",
        };
        if state != "running" {
            all_up = false;
        }
        let boot = if nspawn { host::boot_id(&h.name) } else { None };
        println!(
            "{:<8} {:<14} {:<9} {}",
            h.name,
            h.addr.to_string(),
            state,
            boot.as_deref().unwrap_or("-")
        );
    }
    if orphans {
        println!("* no supervisor: a reboot inside will not come back; `homelab lab up` makes the lab afresh");
    }
    if lab.join("inventory.ini").is_file() {
        println!("inventory: {}", lab.join("inventory.ini").display());
    }
    Ok(if all_up { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_names_every_host_and_the_lab_files() {
        let inv = inventory_text(Path::new("/l"), &host::hosts(2));
        assert!(
            inv.contains("[lab]\nnode1 ansible_host=10.213.0.11\nnode2 ansible_host=10.213.0.12\n")
        );
        assert!(inv.contains("ansible_user=homelab\n"));
        assert!(inv.contains("ansible_ssh_private_key_file=/l/id_ed25519\n"));
        assert!(inv.contains(
            "ansible_ssh_common_args='-o UserKnownHostsFile=/l/known_hosts -o StrictHostKeyChecking=yes'"
        ));
    }

    #[test]
    fn subnet_addresses() {
        assert_eq!(SUBNET.cidr(), "10.213.0.0/24");
        assert_eq!(SUBNET.gateway().to_string(), "10.213.0.1");
        assert_eq!(SUBNET.host(3).to_string(), "10.213.0.13");
        assert!(super::super::is_host_name("node12"));
        assert!(!super::super::is_host_name("node"));
        assert!(!super::super::is_host_name("nodex"));
    }
}
