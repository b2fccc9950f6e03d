//! `fetch`: copy a file from the host to the controller, as Ansible's fetch does. Probe (one round
//! trip): the remote file's kind and sha1. The local path is `dest/INVENTORY_HOSTNAME/SRC`, or with
//! `flat: true` `dest` itself (`dest/` + the file's name when `dest` ends with `/`). A relative
//! `dest` is taken from the playbook's folder, as Ansible's `path_dwim` does (not the current
//! folder). Changed only when the local file's sha1 differs. Apply reads the file (`cat`), checks
//! its sha1 against the probe's (`validate_checksum`), then writes it atomically: a temp file in
//! the same folder, renamed over the old one, whose mode it keeps (a new file is 0600: fetched
//! files are often secrets such as kubeconfigs). Check mode reports the change
//! and writes nothing.

use super::core::{boolish, Module, ModuleError, TaskCtx, TaskResult};
use super::stat::{normpath, path_word, Algo};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub src: String,
    pub dest: String,
    #[serde(default, with = "boolish")]
    pub flat: bool,
    #[serde(default = "yes", with = "boolish")]
    pub fail_on_missing: bool,
    #[serde(default = "yes", with = "boolish")]
    pub validate_checksum: bool,
}

fn yes() -> bool {
    true
}

/// The remote file as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A readable file and its sha1.
    Sum(String),
    /// A readable file, read whole (the host has no sha1sum).
    Data(Vec<u8>),
    Missing,
    Directory,
    Unreadable,
}

/// The probe: `HLSRC <expanded path>`, then `HLFETCH <kind> [sha1]`, or `HLFETCH data` and the bytes.
pub fn script(src: &str) -> String {
    format!(
        "p={}; printf 'HLSRC %s\\n' \"$p\"; \
         if [ -d \"$p\" ]; then echo 'HLFETCH directory'; \
         elif [ ! -e \"$p\" ]; then echo 'HLFETCH missing'; \
         elif [ ! -r \"$p\" ]; then echo 'HLFETCH unreadable'; \
         elif command -v sha1sum >/dev/null 2>&1; then \
         printf 'HLFETCH sum %s\\n' \"$(sha1sum < \"$p\" | cut -d' ' -f1)\"; \
         else echo 'HLFETCH data'; exec cat -- \"$p\"; fi",
        path_word(src)
    )
}

/// Parses what [`script`] printed: the expanded source path and the remote state.
pub fn parse(out: &[u8]) -> Result<(String, Remote), String> {
    const DATA: &[u8] = b"HLFETCH data\n";
    if let Some(i) = out.windows(DATA.len()).position(|w| w == DATA) {
        let head = String::from_utf8_lossy(&out[..i]);
        let src = head
            .lines()
            .find_map(|l| l.strip_prefix("HLSRC "))
            .unwrap_or_default();
        return Ok((
            src.to_string(),
            Remote::Data(out[i + DATA.len()..].to_vec()),
        ));
    }
    let text = String::from_utf8_lossy(out);
    let mut src = None;
    let mut remote = None;
    for l in text.lines() {
        if let Some(s) = l.strip_prefix("HLSRC ") {
            src = Some(s.to_string());
        } else if let Some(k) = l.strip_prefix("HLFETCH ") {
            remote = Some(match k {
                "missing" => Remote::Missing,
                "directory" => Remote::Directory,
                "unreadable" => Remote::Unreadable,
                _ => match k.strip_prefix("sum").map(str::trim) {
                    Some(s) if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        Remote::Sum(s.to_string())
                    }
                    Some(_) => {
                        return Err("unable to calculate the checksum of the remote file".into())
                    }
                    None => return Err(format!("unexpected probe output: {l}")),
                },
            });
        }
    }
    match (src, remote) {
        (Some(s), Some(r)) => Ok((s, r)),
        _ => Err(format!("the host did not report on the file: {text}")),
    }
}

/// `path_dwim`: a relative path is taken from `base` (the playbook's folder), `~` from $HOME;
/// the result is absolute and normalised.
fn dwim(base: &Path, p: &str) -> String {
    let joined = if p == "~" || p.starts_with("~/") {
        let home = dirs::home_dir().unwrap_or_default();
        home.join(p.trim_start_matches('~').trim_start_matches('/'))
    } else {
        base.join(p)
    };
    let abs = if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir().unwrap_or_default().join(joined)
    };
    normpath(&abs.display().to_string())
}

/// Where the file goes on the controller (see the module doc).
pub fn local_dest(
    base: &Path,
    dest: &str,
    host: &str,
    source: &str,
    flat: bool,
) -> Result<PathBuf, String> {
    if flat {
        let mut d = dest.to_string();
        if d.ends_with('/') {
            let name = Path::new(source)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| format!("src {source} has no file name to put into {dest}"))?;
            d.push_str(&name);
        }
        let out = dwim(base, &d);
        if !dest.ends_with('/') && Path::new(&out).is_dir() {
            return Err(format!(
                "dest {out} is an existing directory, use a trailing slash if you want to fetch src into that directory"
            ));
        }
        return Ok(PathBuf::from(out));
    }
    if host.is_empty() || host.contains('/') || host == "." || host == ".." {
        return Err(format!(
            "the inventory name '{host}' cannot be a folder name; use flat: true and a dest path"
        ));
    }
    let root = format!("{}/{host}", dwim(base, dest));
    let out = normpath(&format!("{root}/{source}"));
    if !out.starts_with(&format!("{root}/")) {
        return Err(format!(
            "Detected directory traversal, expected to be contained in '{root}' but got '{out}'; \
             give src as a path without '..' or use flat: true"
        ));
    }
    Ok(PathBuf::from(out))
}

/// The sha1 and md5 of a local file; `None` when it does not exist.
fn local_sums(p: &Path) -> Result<Option<(String, String)>, String> {
    match std::fs::metadata(p) {
        Err(_) => Ok(None),
        Ok(m) if m.is_dir() => Err(format!(
            "cannot fetch into {}: it is a directory; remove it or choose another dest",
            p.display()
        )),
        Ok(_) => {
            let data = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            Ok(Some((Algo::Sha1.digest(&data), Algo::Md5.digest(&data))))
        }
    }
}

/// Writes `data` to `path` atomically: a temp file in the same folder (created if needed), private
/// (0600) while it is written, synced, given the old file's mode, renamed over it. A new file
/// stays 0600: fetched files are often secrets (kubeconfigs, keys); `chmod` it to share it. On
/// failure the temp file is removed.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.homelab-tmp.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let res = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        if let Ok(m) = std::fs::metadata(path) {
            if m.is_file() {
                std::fs::set_permissions(&tmp, m.permissions())?;
            }
        }
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

pub struct Plan {
    source: String,
    remote: Remote,
    /// The local path and its (sha1, md5) now; set when the remote file can be fetched.
    dest: Option<(PathBuf, Option<(String, String)>)>,
}

impl Plan {
    fn remote_sum(&self) -> Option<String> {
        match &self.remote {
            Remote::Sum(s) => Some(s.clone()),
            Remote::Data(d) => Some(Algo::Sha1.digest(d)),
            _ => None,
        }
    }
}

pub struct Fetch;

/// The play's folder: the engine lists it last among the places it looks for files.
fn playbook_dir<'a>(ctx: &'a TaskCtx<'_>) -> &'a Path {
    ctx.search
        .last()
        .map(PathBuf::as_path)
        .unwrap_or(Path::new(""))
}

impl Module for Fetch {
    const NAME: &'static str = "fetch";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        if a.src.is_empty() || a.dest.is_empty() {
            return Err(ModuleError::Failed(
                "src and dest are required: src is the file on the host, dest the folder (or with flat: true the file) on the controller".into(),
            ));
        }
        let out = ctx.exec(script(&a.src)).await?;
        let (source, remote) = parse(&out.stdout).map_err(|e| {
            ModuleError::Failed(
                format!("{e} {}", out.stderr_str().trim())
                    .trim()
                    .to_string(),
            )
        })?;
        let dest = match remote {
            Remote::Sum(_) | Remote::Data(_) => {
                let d = local_dest(playbook_dir(ctx), &a.dest, ctx.host, &source, a.flat)
                    .map_err(ModuleError::Failed)?;
                let sums = local_sums(&d).map_err(ModuleError::Failed)?;
                Some((d, sums))
            }
            _ => None,
        };
        Ok(Plan {
            source,
            remote,
            dest,
        })
    }

    fn describe(_ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let missing = match p.remote {
            Remote::Missing => Some("the remote file does not exist"),
            Remote::Directory => {
                Some("remote file is a directory, fetch cannot work on directories")
            }
            Remote::Unreadable => Some("no read permission on remote file"),
            _ => None,
        };
        if let Some(m) = missing {
            return if a.fail_on_missing {
                TaskResult::failed(format!(
                    "{m}: {} (set fail_on_missing: false to go on without it)",
                    p.source
                ))
                .with("file", p.source.clone())
            } else {
                TaskResult::changed(false)
                    .msg(format!("{m}, not transferring, ignored"))
                    .with("file", p.source.clone())
            };
        }
        let Some((dest, local)) = &p.dest else {
            return TaskResult::failed("internal error: no local path planned");
        };
        let dest = dest.display().to_string();
        let remote = p.remote_sum().unwrap_or_default();
        match local {
            Some((sha1, md5)) if *sha1 == remote => TaskResult::changed(false)
                .with("md5sum", md5.clone())
                .with("file", p.source.clone())
                .with("dest", dest)
                .with("checksum", sha1.clone()),
            _ => TaskResult::changed(true)
                .with("dest", dest)
                .with("remote_md5sum", Value::Null)
                .with("checksum", remote.clone())
                .with("remote_checksum", remote),
        }
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        mut done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let remote_sum = p.remote_sum().unwrap_or_default();
        let Some((dest, _)) = p.dest else {
            return Ok(done);
        };
        let data = match p.remote {
            Remote::Data(d) => d,
            _ => {
                let out = ctx.exec(super::slurp::script(&a.src)).await?;
                if !out.success() {
                    let err = out.stderr_str();
                    return Err(ModuleError::Failed(match super::slurp::refusal(&err) {
                        Some(r) => super::slurp::refusal_msg(r, &p.source),
                        None => format!("cannot read {} on the host: {}", p.source, err.trim()),
                    }));
                }
                out.stdout
            }
        };
        let new_sum = Algo::Sha1.digest(&data);
        let md5 = Algo::Md5.digest(&data);
        if a.validate_checksum && new_sum != remote_sum {
            let mut r = TaskResult::failed(format!(
                "checksum mismatch: {} changed on the host while it was fetched; run again, or set validate_checksum: false ({} left as it was)",
                p.source,
                dest.display()
            ));
            r.data = done.data;
            return Ok(r
                .with("file", p.source)
                .with("checksum", new_sum)
                .with("md5sum", md5));
        }
        write_atomic(&dest, &data).map_err(|e| {
            ModuleError::Failed(format!(
                "cannot write {}: {e}; check that the controller user may write there",
                dest.display()
            ))
        })?;
        done = done.with("md5sum", md5).with("checksum", new_sum);
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::run;
    use serde_json::json;

    #[test]
    fn parses_probe_output() {
        let sum = "c708d7ef841f7e1748436b8ef5670d0b2de1a227";
        assert_eq!(
            parse(format!("HLSRC /etc/x\nHLFETCH sum {sum}\n").as_bytes()).unwrap(),
            ("/etc/x".to_string(), Remote::Sum(sum.into()))
        );
        assert_eq!(
            parse(b"HLSRC /x\nHLFETCH missing\n").unwrap().1,
            Remote::Missing
        );
        assert_eq!(
            parse(b"HLSRC /x\nHLFETCH data\nHLSRC a\0b").unwrap(),
            ("/x".to_string(), Remote::Data(b"HLSRC a\0b".to_vec()))
        );
        assert!(parse(b"HLSRC /x\nHLFETCH sum \n").is_err());
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn local_paths_as_ansible_builds_them() {
        let b = Path::new("/play");
        let p = |d: &str, src: &str, flat: bool| local_dest(b, d, "h1", src, flat);
        assert_eq!(
            p("/out", "/etc/hosts", false).unwrap(),
            PathBuf::from("/out/h1/etc/hosts")
        );
        assert_eq!(
            p("out", "rel/x.txt", false).unwrap(),
            PathBuf::from("/play/out/h1/rel/x.txt")
        );
        assert_eq!(
            p("/out/", "/etc/hosts", true).unwrap(),
            PathBuf::from("/out/hosts")
        );
        assert_eq!(
            p("/out/f.txt", "/etc/hosts", true).unwrap(),
            PathBuf::from("/out/f.txt")
        );
        assert_eq!(
            p("got/", "/etc/hosts", true).unwrap(),
            PathBuf::from("/play/got/hosts")
        );
        let e = p("/out", "../../etc/passwd", false).unwrap_err();
        assert!(e.contains("directory traversal"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let e = p(&d.path().display().to_string(), "/etc/hosts", true).unwrap_err();
        assert!(e.contains("use a trailing slash"), "{e}");
    }

    #[test]
    fn atomic_write_keeps_mode_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a/b/f");
        write_atomic(&f, b"one").unwrap();
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a new fetched file is private");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&f, b"one").unwrap();
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "an existing file keeps its mode");
        assert_eq!(std::fs::read(&f).unwrap(), b"one");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(d.path().join("a/b"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[tokio::test]
    async fn check_then_fetch_then_unchanged() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("remote.txt");
        std::fs::write(&src, "hello\n").unwrap();
        let out = d.path().join("out");
        let args = json!({"src": src.display().to_string(), "dest": out.display().to_string()});
        let want = PathBuf::from(format!("{}/t{}", out.display(), src.display()));

        let r = run::<Fetch>(true, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert!(!out.exists(), "check mode wrote {}", out.display());

        let r = run::<Fetch>(false, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(r.data["dest"], want.display().to_string());
        assert_eq!(std::fs::read(&want).unwrap(), b"hello\n");
        assert_eq!(r.data["checksum"], Algo::Sha1.digest(b"hello\n"));
        assert_eq!(r.data["md5sum"], Algo::Md5.digest(b"hello\n"));

        let r = run::<Fetch>(false, args.clone()).await;
        assert!(!r.changed && !r.failed, "{r:?}");
        let r = run::<Fetch>(true, args.clone()).await;
        assert!(!r.changed && !r.failed, "{r:?}");

        std::fs::write(&src, "changed\n").unwrap();
        let r = run::<Fetch>(true, args.clone()).await;
        assert!(r.changed, "{r:?}");
        assert_eq!(std::fs::read(&want).unwrap(), b"hello\n");

        // Missing: fails by default, or is ignored.
        let gone = json!({"src": d.path().join("nope").display().to_string(), "dest": out.display().to_string()});
        let r = run::<Fetch>(false, gone.clone()).await;
        assert!(r.failed, "{r:?}");
        assert!(
            r.msg.as_deref().unwrap_or("").contains("does not exist"),
            "{r:?}"
        );
        let mut ok = gone.clone();
        ok["fail_on_missing"] = json!(false);
        let r = run::<Fetch>(false, ok).await;
        assert!(!r.failed && !r.changed, "{r:?}");
        assert!(r
            .msg
            .as_deref()
            .unwrap_or("")
            .ends_with("not transferring, ignored"));
        let dir = json!({"src": d.path().display().to_string(), "dest": out.display().to_string()});
        let r = run::<Fetch>(false, dir).await;
        assert!(
            r.failed && r.msg.as_deref().unwrap_or("").contains("directory"),
            "{r:?}"
        );
    }
}
