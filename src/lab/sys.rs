//! Small system helpers: running commands with useful errors, root and tool checks, `/proc`.

use super::error::{LabError, Result};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The PATH given to every command the lab runs (sudo or a user's PATH may lack the sbin dirs that
/// debootstrap, chroot, nft and ip live in).
pub const SANE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A command for `program`, with [`SANE_PATH`] and the C locale.
pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("PATH", SANE_PATH).env("LC_ALL", "C");
    c
}

/// `program arg arg` for error messages.
pub fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            s.push('\'');
            s.push_str(&a);
            s.push('\'');
        } else {
            s.push_str(&a);
        }
    }
    s
}

/// Runs `c` to completion (stdin null), returns its stdout; a non-zero exit is an error carrying
/// the command line and its stderr.
pub fn run(c: &mut Command) -> Result<String> {
    c.stdin(Stdio::null());
    let out = c.output().map_err(|source| LabError::Spawn {
        command: describe(c),
        source,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: describe(c),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Runs `c`; returns whether it exited 0 (output discarded). For probes and best-effort cleanup.
pub fn succeeds(c: &mut Command) -> bool {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The effective uid, from `/proc/self/status`.
pub fn euid() -> Result<u32> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| LabError::io("reading", "/proc/self/status", e))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| LabError::Invalid("no Uid line in /proc/self/status".into()))
}

pub fn require_root() -> Result<()> {
    if euid()? == 0 {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}

/// Whether `tool` is an executable in [`SANE_PATH`].
pub fn have_tool(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    SANE_PATH.split(':').any(|d| {
        fs::metadata(Path::new(d).join(tool))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Checks that every `(tool, debian package)` is installed; the error names the apt packages.
pub fn require_tools(tools: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&(&str, &str)> = tools.iter().filter(|(t, _)| !have_tool(t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|(t, _)| *t).collect();
    let mut pkgs: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    pkgs.sort_unstable();
    pkgs.dedup();
    Err(LabError::MissingTools {
        tools: names.join(", "),
        packages: pkgs.join(" "),
    })
}

/// The last `lines` lines of a text file (at most the last 64 KiB are read); empty if unreadable.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = strip_ansi(&String::from_utf8_lossy(&buf));
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    all[from..].join("\n")
}

/// Removes terminal escape sequences (systemd colours its console output).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in '@'..='~'.
            for f in chars.by_ref() {
                if ('@'..='~').contains(&f) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

/// Writes `contents` to `path` (creating parents), with `mode`.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| LabError::io("creating", parent, e))?;
    }
    fs::write(path, contents).map_err(|e| LabError::io("writing", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| LabError::io("setting the mode of", path, e))
}

pub fn create_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| LabError::io("creating", path, e))
}

/// Removes a directory tree without crossing into other file systems (a stray mount inside is left
/// alone rather than emptied). Missing is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    run(cmd("rm")
        .arg("-rf")
        .arg("--one-file-system")
        .arg("--")
        .arg(path))
    .map(|_| ())
}

// ---------------------------------------------------------------- processes

/// All pids in `/proc`.
pub fn all_pids() -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// A process's argv, or None when it is gone (or a kernel thread).
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the last ')' (the command name may contain anything).
    match stat.rfind(')') {
        Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
        None => false,
    }
}

/// A line of `/proc/PID/status` (`key` without the colon).
pub fn status_field(pid: u32, key: &str) -> Option<String> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(|r| r.trim().to_string())
    })
}

/// Sends `signal` (a name such as `TERM` or `KILL`) to `pid`; a process already gone is fine.
pub fn signal(pid: u32, signal: &str) {
    let _ = succeeds(cmd("kill").arg("-s").arg(signal).arg(pid.to_string()));
}

/// Waits until none of `pids` is alive; returns those still alive at the deadline.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------- mounts

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// The mounts of this process's mount namespace.
pub fn mounts() -> Vec<Mount> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mount_point = left.split(' ').nth(4)?;
    let mut r = right.split(' ');
    let fstype = r.next()?;
    let source = r.next()?;
    Some(Mount {
        mount_point: PathBuf::from(unescape_octal(mount_point)),
        fstype: unescape_octal(fstype),
        source: unescape_octal(source),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts `path` (lazily if it is busy).
pub fn unmount(path: &Path) -> Result<()> {
    if succeeds(cmd("umount").arg(path)) {
        return Ok(());
    }
    run(cmd("umount").arg("-l").arg(path)).map(|_| ())
}

/// Seconds since the Unix epoch, for log lines.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_line_parses_with_escapes() {
        let l = "36 35 0:31 / /tmp/a\\040b/node1/merged rw,relatime shared:1 - overlay homelab-lab-node1 rw,lowerdir=/x";
        let m = parse_mountinfo_line(l).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/tmp/a b/node1/merged"));
        assert_eq!(m.fstype, "overlay");
        assert_eq!(m.source, "homelab-lab-node1");
    }

    #[test]
    fn ansi_colours_are_stripped() {
        let l =
            "[\u{1b}[0;32m  OK  \u{1b}[0m] Started \u{1b}[0;1;39mssh.service\u{1b}[0m - OpenBSD";
        assert_eq!(strip_ansi(l), "[  OK  ] Started ssh.service - OpenBSD");
    }

    #[test]
    fn unescape_leaves_plain_backslashes() {
        assert_eq!(unescape_octal("a\\b"), "a\\b");
        assert_eq!(unescape_octal("a\\134b"), "a\\b");
        assert_eq!(unescape_octal("end\\"), "end\\");
    }
}
