//! `apt_key`, the modern way only: a key (`data`, a `file` on the host, or a `url` the host
//! downloads with curl or wget) written to its own `keyring` file, ASCII-armored for `.asc`,
//! binary (dearmored here, no gpg needed) for `.gpg`, for a source's `signed-by=`. Without
//! `keyring` it refuses: the global trusted.gpg is deprecated. Probe: the keyring (and the key
//! file) in one round trip.

use super::core::{stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::pkgutil::files;
use base64::Engine as _;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub url: Option<String>,
    pub file: Option<String>,
    pub data: Option<String>,
    pub keyring: Option<String>,
    pub id: Option<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub state: Option<String>,
    /// Accepted for compatibility (the host's curl/wget check certificates).
    #[serde(default, with = "super::core::boolish::option")]
    pub validate_certs: Option<bool>,
}

const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// The binary key from ASCII armor (headers and the `=CRC` line skipped).
pub fn dearmor(text: &str) -> Result<Vec<u8>, String> {
    let start = text
        .find(BEGIN)
        .ok_or_else(|| "not an ASCII-armored public key (no BEGIN line)".to_string())?;
    let body = &text[start + BEGIN.len()..];
    let end = body
        .find(END)
        .ok_or_else(|| "the armored key has no END line".to_string())?;
    let body = &body[..end];
    // Armor headers (Version: ...) end at the first blank line.
    let lines: Vec<&str> = body.lines().map(str::trim).collect();
    let mut i = 0;
    while i < lines.len() && lines[i].is_empty() {
        i += 1;
    }
    if lines[i..].iter().any(|l| l.contains(": ")) {
        while i < lines.len() && !lines[i].is_empty() {
            i += 1;
        }
    }
    let b64: String = lines[i..]
        .iter()
        .filter(|l| !l.is_empty() && !l.starts_with('='))
        .copied()
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the armored key is not valid base64: {e}"))
}

/// Whether bytes start like an OpenPGP public key packet (old or new format, tag 6).
pub fn is_binary_key(b: &[u8]) -> bool {
    match b.first() {
        Some(&x) if x & 0xC0 == 0xC0 => x & 0x3F == 6,
        Some(&x) if x & 0xC0 == 0x80 => (x >> 2) & 0x0F == 6,
        _ => false,
    }
}

/// The bytes the keyring should hold for this key.
pub fn keyring_bytes(keyring: &str, key: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(key).ok().filter(|t| t.contains(BEGIN));
    if keyring.ends_with(".asc") {
        let t = text.ok_or_else(|| {
            "a .asc keyring takes an ASCII-armored key; give the key armored or use a .gpg keyring"
                .to_string()
        })?;
        dearmor(t)?;
        let s = t.trim();
        return Ok(format!("{s}\n").into_bytes());
    }
    let bin = match text {
        Some(t) => dearmor(t)?,
        None => key.to_vec(),
    };
    if !is_binary_key(&bin) {
        return Err("the data is not an OpenPGP public key".into());
    }
    Ok(bin)
}

pub fn check_keyring(k: Option<&str>) -> Result<String, String> {
    let k = k.ok_or_else(|| {
        "keyring is required: adding keys to the global trusted.gpg (apt-key) is deprecated and \
         not supported. Give keyring: /etc/apt/keyrings/NAME.asc (or .gpg) and name it in the \
         source with signed-by= (apt_repository) or signed_by (deb822_repository)"
            .to_string()
    })?;
    if k.ends_with("/trusted.gpg") {
        return Err(format!(
            "keyring={k}: the global trusted.gpg is deprecated; use /etc/apt/keyrings/NAME.asc \
             and signed-by= in the source"
        ));
    }
    if !k.starts_with('/') || !(k.ends_with(".asc") || k.ends_with(".gpg")) {
        return Err(format!(
            "keyring must be an absolute path ending in .asc or .gpg; got: {k}"
        ));
    }
    Ok(k.to_string())
}

/// The host command that downloads `url` to stdout.
pub fn download_command(url: &str) -> String {
    let q = crate::transport::shell_quote(url);
    format!(
        "if command -v curl >/dev/null 2>&1; then curl -fsSL {q}; \
         elif command -v wget >/dev/null 2>&1; then wget -qO- {q}; \
         else echo 'neither curl nor wget is installed on the host: give the key as data or file' >&2; exit 127; fi"
    )
}

pub struct Plan {
    changes: Vec<files::Change>,
}

pub struct AptKey;

impl Module for AptKey {
    const NAME: &'static str = "apt_key";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let keyring = check_keyring(a.keyring.as_deref()).map_err(ModuleError::Failed)?;
        let present = match a.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            other => {
                return Err(ModuleError::Failed(format!(
                    "value of state must be one of: absent, present; got: {other}"
                )))
            }
        };
        let sources = [&a.url, &a.file, &a.data]
            .iter()
            .filter(|x| x.is_some())
            .count();
        if present && sources != 1 {
            return Err(ModuleError::Failed(
                "give exactly one of data, file or url".into(),
            ));
        }
        let mut paths = vec![keyring.clone()];
        if let Some(f) = &a.file {
            paths.push(f.clone());
        }
        let st = files::probe(ctx, &paths).await?;
        let key: Option<Vec<u8>> = if !present {
            None
        } else if let Some(d) = &a.data {
            Some(d.clone().into_bytes())
        } else if let Some(f) = &a.file {
            match &st[1].content {
                Some(c) if st[1].kind == super::remote::Kind::File => Some(c.clone()),
                _ => {
                    return Err(ModuleError::Failed(format!(
                        "{}: key file {f} does not exist on the host",
                        ctx.host
                    )))
                }
            }
        } else {
            let url = a.url.clone().unwrap_or_default();
            let out = ctx.exec(download_command(&url)).await?;
            if !out.success() {
                return Err(ModuleError::Failed(format!(
                    "{}: could not download {url}: {}",
                    ctx.host,
                    out.stderr_str().trim()
                )));
            }
            Some(out.stdout)
        };
        let want = match &key {
            Some(k) => Some(
                keyring_bytes(&keyring, k)
                    .map_err(|e| ModuleError::Failed(format!("{}: {e}", ctx.host)))?,
            ),
            None => None,
        };
        let changes = files::change(&keyring, &st[0], want.as_deref(), "0644")
            .into_iter()
            .collect();
        Ok(Plan { changes })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let mut r = TaskResult::changed(!p.changes.is_empty())
            .with("keyring", a.keyring.clone().unwrap_or_default());
        if ctx.diff {
            r.diff = files::diffs(&p.changes);
        }
        r
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        _a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        files::apply(ctx, &p.changes).await?;
        Ok(done)
    }

    fn simulate(ctx: &TaskCtx<'_>, _a: &Args, p: &Plan) {
        files::simulate(ctx, &p.changes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An armored "key": a public key packet header (old format, tag 6) and a few bytes.
    pub fn fake_key() -> String {
        let bin = [0x99u8, 0x00, 0x03, 0x04, 0x01, 0x02];
        format!(
            "{BEGIN}\nComment: homelab test\n\n{}\n=abcd\n{END}\n",
            base64::engine::general_purpose::STANDARD.encode(bin)
        )
    }

    #[test]
    fn dearmor_and_keyrings() {
        let k = fake_key();
        assert_eq!(dearmor(&k).unwrap(), [0x99, 0x00, 0x03, 0x04, 0x01, 0x02]);
        let gpg = keyring_bytes("/etc/apt/keyrings/x.gpg", k.as_bytes()).unwrap();
        assert!(is_binary_key(&gpg));
        let asc = keyring_bytes("/etc/apt/keyrings/x.asc", k.as_bytes()).unwrap();
        assert!(String::from_utf8(asc).unwrap().starts_with(BEGIN));
        assert!(keyring_bytes("/etc/apt/keyrings/x.asc", &gpg)
            .unwrap_err()
            .contains("armored"));
        assert!(keyring_bytes("/etc/apt/keyrings/x.gpg", b"hello").is_err());
        assert!(is_binary_key(&[0xC6, 0x01]));
    }

    #[test]
    fn keyring_rules() {
        assert!(check_keyring(None).unwrap_err().contains("signed-by"));
        assert!(check_keyring(Some("/etc/apt/trusted.gpg"))
            .unwrap_err()
            .contains("deprecated"));
        assert!(check_keyring(Some("keys/x.asc")).is_err());
        assert!(check_keyring(Some("/etc/apt/keyrings/x.asc")).is_ok());
        assert!(download_command("https://e.org/k.asc").contains("curl -fsSL https://e.org/k.asc"));
    }
}
