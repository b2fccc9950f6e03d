//! The hosts' shared root filesystem: built once with debootstrap, cached as a zstd tarball under
//! `cache_dir()`, unpacked into the lab directory as the overlays' lower layer.

use super::error::{LabError, Result};
use super::sys::{self, cmd};
use super::{cache_dir, LAB_USER, SUITE};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Bump when the build or the configuration baked into the tarball changes: old caches are then
/// ignored (and a new one built).
pub const CACHE_VERSION: u32 = 1;

/// Packages on top of debootstrap's minbase: sshd, sudo, systemd as init, and a few tools a real
/// host has. No Python: targets need nothing but sshd and a POSIX shell.
pub const INCLUDE: &str = "openssh-server,sudo,systemd-sysv,dbus,iproute2,iputils-ping,procps";

/// tar options that keep numeric owners and every xattr (ping's file capability).
const TAR_KEEP: [&str; 3] = ["--numeric-owner", "--xattrs", "--xattrs-include=*"];

/// The Debian mirror (`HOMELAB_LAB_MIRROR` overrides).
pub fn mirror() -> String {
    std::env::var("HOMELAB_LAB_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

/// Where the cached tarball lives.
pub fn tarball_path() -> PathBuf {
    cache_dir().join(format!(
        "lab-rootfs-debian-{SUITE}-v{CACHE_VERSION}.tar.zst"
    ))
}

/// The cached tarball, built first if there is none.
pub fn ensure_tarball() -> Result<PathBuf> {
    let tarball = tarball_path();
    if tarball.is_file() {
        return Ok(tarball);
    }
    sys::require_tools(&[
        ("debootstrap", "debootstrap"),
        ("zstd", "zstd"),
        ("tar", "tar"),
        ("chroot", "coreutils"),
    ])?;
    build(&tarball)?;
    Ok(tarball)
}

/// Builds into a private directory beside the cache and renames the finished tarball into place,
/// so a killed build never leaves a half cache.
fn build(tarball: &Path) -> Result<()> {
    let cache = cache_dir();
    sys::create_dir_all(&cache)?;
    remove_stale_builds(&cache);
    let work = cache.join(format!(".rootfs-build.{}", std::process::id()));
    sys::create_dir_all(&work)?;
    let result = build_in(&work, tarball);
    unmount_under(&work);
    let cleanup = sys::remove_tree(&work);
    result?;
    cleanup
}

fn build_in(work: &Path, tarball: &Path) -> Result<()> {
    let root = work.join("root");
    let log = cache_dir().join("rootfs-build.log");
    let started = Instant::now();
    println!("building root filesystem (first time, ~2-5 min)...");
    println!(
        "  debootstrap {SUITE} from {} (log: {})",
        mirror(),
        log.display()
    );
    let log_file = fs::File::create(&log).map_err(|e| LabError::io("creating", &log, e))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| LabError::io("opening", &log, e))?;
    let status = cmd("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={INCLUDE}"))
        .arg(SUITE)
        .arg(&root)
        .arg(mirror())
        .stdin(std::process::Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .status()
        .map_err(|source| LabError::Spawn {
            command: "debootstrap".into(),
            source,
        })?;
    if !status.success() {
        return Err(LabError::RootfsBuild {
            step: format!("debootstrap exited with {status}"),
            log_tail: sys::tail(&log, 20),
        });
    }
    println!(
        "  debootstrap done in {} s; configuring",
        started.elapsed().as_secs()
    );
    configure(&root)?;
    println!("  packing the cache");
    let part = work.join("rootfs.tar.zst.part");
    sys::run(
        cmd("tar")
            .args(TAR_KEEP)
            .arg("--zstd")
            .arg("-cf")
            .arg(&part)
            .arg("-C")
            .arg(&root)
            .arg("."),
    )?;
    fs::rename(&part, tarball).map_err(|e| LabError::io("moving the cache into", tarball, e))?;
    let size = fs::metadata(tarball).map(|m| m.len()).unwrap_or(0);
    println!(
        "root filesystem cached at {} ({} MB, {} s)",
        tarball.display(),
        size / 1_000_000,
        started.elapsed().as_secs()
    );
    Ok(())
}

/// What every host shares: the login user with passwordless sudo, sshd that uses the host keys the
/// lab writes, networkd for the static address, an empty machine-id, no apt lists.
fn configure(root: &Path) -> Result<()> {
    let chroot = |args: &[&str]| sys::run(cmd("chroot").arg(root).args(args)).map(|_| ());
    chroot(&[
        "useradd",
        "--create-home",
        "--shell",
        "/bin/bash",
        "--user-group",
        LAB_USER,
    ])?;
    // '*' (not '!'): no password can match, but the account is not "locked" for key logins.
    chroot(&["usermod", "--password", "*", LAB_USER])?;
    sys::write_file(
        &root.join("etc/sudoers.d").join(LAB_USER),
        format!("{LAB_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n").as_bytes(),
        0o440,
    )?;
    chroot(&["systemctl", "enable", "systemd-networkd.service"])?;

    // Host keys: the lab writes each host's own before boot; none may be shared from the image.
    let ssh_dir = root.join("etc/ssh");
    if let Ok(rd) = fs::read_dir(&ssh_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("ssh_host_") {
                let p = e.path();
                fs::remove_file(&p).map_err(|err| LabError::io("removing", p, err))?;
            }
        }
    }
    sys::write_file(
        &ssh_dir.join("sshd_config.d/homelab-lab.conf"),
        b"# homelab lab: the host key the lab generated for this host\n\
          HostKey /etc/ssh/ssh_host_ed25519_key\n\
          PasswordAuthentication no\n",
        0o644,
    )?;
    // Debian does not generate host keys at boot. The lab writes them; this drop-in only makes
    // keys if one is missing (e.g. a host copied elsewhere), then keeps Debian's config test.
    sys::write_file(
        &root.join("etc/systemd/system/ssh.service.d/homelab-lab-hostkeys.conf"),
        b"[Service]\n\
          ExecStartPre=\n\
          ExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_ed25519_key || /usr/bin/ssh-keygen -A'\n\
          ExecStartPre=/usr/sbin/sshd -t\n",
        0o644,
    )?;

    // Each host makes its own machine-id at first boot.
    sys::write_file(&root.join("etc/machine-id"), b"", 0o444)?;
    let dbus_id = root.join("var/lib/dbus/machine-id");
    if fs::symlink_metadata(&dbus_id).is_ok_and(|m| m.is_file()) {
        fs::remove_file(&dbus_id).map_err(|e| LabError::io("removing", &dbus_id, e))?;
    }
    sys::write_file(&root.join("etc/hostname"), b"localhost\n", 0o644)?;

    let m = mirror();
    let security = m.replace("/debian", "/debian-security");
    let sources = if security != m {
        format!(
            "deb {m} {SUITE} main\ndeb {m} {SUITE}-updates main\ndeb {security} {SUITE}-security main\n"
        )
    } else {
        format!("deb {m} {SUITE} main\ndeb {m} {SUITE}-updates main\n")
    };
    sys::write_file(
        &root.join("etc/apt/sources.list"),
        sources.as_bytes(),
        0o644,
    )?;

    // No apt lists or downloaded packages: hosts run `apt-get update` like a fresh install.
    for dir in ["var/lib/apt/lists", "var/cache/apt/archives"] {
        if let Ok(rd) = fs::read_dir(root.join(dir)) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_file()) && e.file_name() != "lock" {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
    if let Ok(rd) = fs::read_dir(root.join("var/cache/apt")) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(".bin") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// Unpacks `tarball` into `dest` unless `dest` already holds this very tarball (a stamp beside it
/// records the tarball's path, size and mtime). Only call it while no host runs on `dest`.
pub fn unpack(tarball: &Path, dest: &Path) -> Result<()> {
    let stamp_path = dest.with_extension("stamp");
    let stamp = tarball_stamp(tarball)?;
    if dest.is_dir() && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    let _ = fs::remove_file(&stamp_path);
    sys::remove_tree(dest)?;
    let tmp = dest.with_extension("unpacking");
    sys::remove_tree(&tmp)?;
    sys::create_dir_all(&tmp)?;
    sys::run(
        cmd("tar")
            .args(TAR_KEEP)
            .arg("--zstd")
            .arg("-xpf")
            .arg(tarball)
            .arg("-C")
            .arg(&tmp),
    )?;
    fs::rename(&tmp, dest).map_err(|e| LabError::io("moving the unpacked root to", dest, e))?;
    sys::write_file(&stamp_path, stamp.as_bytes(), 0o644)
}

fn tarball_stamp(tarball: &Path) -> Result<String> {
    let m = fs::metadata(tarball).map_err(|e| LabError::io("reading", tarball, e))?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("{} {} {}\n", tarball.display(), m.len(), mtime))
}

/// Unmounts everything mounted under `dir`, deepest first (debootstrap mounts /proc and /sys in its
/// target and leaves them when it is killed).
pub fn unmount_under(dir: &Path) {
    let mut under: Vec<PathBuf> = sys::mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir) && p != dir)
        .collect();
    under.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in under {
        let _ = sys::unmount(&p);
    }
}

/// Removes build directories of earlier builds whose process is gone.
fn remove_stale_builds(cache: &Path) {
    let Ok(rd) = fs::read_dir(cache) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(".rootfs-build.") else {
            continue;
        };
        if pid.parse::<u32>().is_ok_and(sys::alive) {
            continue;
        }
        println!("removing an unfinished root filesystem build ({name})");
        unmount_under(&e.path());
        let _ = sys::remove_tree(&e.path());
    }
}
