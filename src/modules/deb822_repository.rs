//! `deb822_repository`: an APT source in the deb822 format,
//! `/etc/apt/sources.list.d/NAME.sources`, written atomically with a diff. `signed_by` is a keyring
//! path, a fingerprint, or the key's text, which goes to `/etc/apt/keyrings/NAME.asc` and is named
//! in `Signed-By:`. Probe: both files with content in one round trip. No downloads: a key URL is
//! refused (fetch the key first and give its path or text).

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::pkgutil::{self, files};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
    #[serde(default, deserialize_with = "pkgutil::names")]
    pub types: Vec<String>,
    #[serde(default, deserialize_with = "pkgutil::names")]
    pub uris: Vec<String>,
    #[serde(default, deserialize_with = "pkgutil::names")]
    pub suites: Vec<String>,
    #[serde(default, deserialize_with = "pkgutil::names")]
    pub components: Vec<String>,
    pub signed_by: Option<String>,
    #[serde(default, deserialize_with = "pkgutil::names")]
    pub architectures: Vec<String>,
    #[serde(default, with = "boolish::option")]
    pub enabled: Option<bool>,
    #[serde(default, with = "boolish::option")]
    pub trusted: Option<bool>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "super::pkgutil::mode")]
    pub mode: Option<String>,
    /// Accepted for compatibility; homelab needs no Python on the host.
    #[serde(default, with = "boolish::option")]
    pub install_python_debian: Option<bool>,
}

/// The file name part for `name` (lowercase, anything but letters, digits, `-`, `_`, `.` → `_`).
pub fn file_base(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn sources_path(name: &str) -> String {
    format!("/etc/apt/sources.list.d/{}.sources", file_base(name))
}

pub fn key_path(name: &str) -> String {
    format!("/etc/apt/keyrings/{}.asc", file_base(name))
}

/// What `signed_by` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedBy {
    /// A keyring path or fingerprint, written as is.
    Ref(String),
    /// Key text, written to the keyring file.
    Key(String),
}

pub fn signed_by(s: &str) -> Result<SignedBy, String> {
    let t = s.trim();
    if t.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        return Ok(SignedBy::Key(format!("{t}\n")));
    }
    if t.contains("://") {
        return Err(format!(
            "signed_by={t}: keys are not downloaded; fetch the key first (copy/get_url) and give \
             its path, or its text"
        ));
    }
    if t.starts_with('/') || t.chars().all(|c| c.is_ascii_hexdigit() || c == ' ') && !t.is_empty() {
        return Ok(SignedBy::Ref(t.to_string()));
    }
    Err(format!(
        "signed_by must be a keyring path, a fingerprint or an ASCII-armored key; got: {t}"
    ))
}

/// The `.sources` content and, when `signed_by` is key text, the keyring's content.
pub fn render(a: &Args) -> Result<(String, Option<String>), String> {
    if a.name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if a.uris.is_empty() {
        return Err("uris is required with state=present".into());
    }
    if a.suites.is_empty() {
        return Err("suites is required with state=present".into());
    }
    let exact = a.suites.iter().all(|s| s.ends_with('/'));
    if !exact && a.components.is_empty() {
        return Err(
            "components is required unless every suite is an exact path (ends with /)".into(),
        );
    }
    if exact && !a.components.is_empty() {
        return Err("components must be empty when the suites are exact paths (end with /)".into());
    }
    let types = if a.types.is_empty() {
        vec!["deb".to_string()]
    } else {
        a.types.clone()
    };
    if let Some(t) = types.iter().find(|t| *t != "deb" && *t != "deb-src") {
        return Err(format!("types must be deb or deb-src; got: {t}"));
    }
    for v in a.uris.iter().chain(&a.suites).chain(&a.components) {
        if v.contains(char::is_whitespace) {
            return Err(format!("'{v}' must not contain spaces"));
        }
    }
    let mut s = format!(
        "X-Repolib-Name: {}\nTypes: {}\nURIs: {}\nSuites: {}\n",
        a.name,
        types.join(" "),
        a.uris.join(" "),
        a.suites.join(" ")
    );
    if !a.components.is_empty() {
        s.push_str(&format!("Components: {}\n", a.components.join(" ")));
    }
    if !a.architectures.is_empty() {
        s.push_str(&format!("Architectures: {}\n", a.architectures.join(" ")));
    }
    if a.enabled == Some(false) {
        s.push_str("Enabled: no\n");
    }
    if let Some(t) = a.trusted {
        s.push_str(&format!("Trusted: {}\n", if t { "yes" } else { "no" }));
    }
    let mut key = None;
    if let Some(sb) = &a.signed_by {
        match signed_by(sb)? {
            SignedBy::Ref(r) => s.push_str(&format!("Signed-By: {r}\n")),
            SignedBy::Key(k) => {
                s.push_str(&format!("Signed-By: {}\n", key_path(&a.name)));
                key = Some(k);
            }
        }
    }
    Ok((s, key))
}

pub struct Plan {
    changes: Vec<files::Change>,
}

pub struct Deb822Repository;

impl Module for Deb822Repository {
    const NAME: &'static str = "deb822_repository";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let present = match a.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            other => {
                return Err(ModuleError::Failed(format!(
                    "value of state must be one of: absent, present; got: {other}"
                )))
            }
        };
        let mode = a.mode.clone().unwrap_or_else(|| "0644".into());
        let (src, key) = if present {
            render(a).map_err(ModuleError::Failed)?
        } else {
            (String::new(), None)
        };
        let paths = vec![sources_path(&a.name), key_path(&a.name)];
        let st = files::probe(ctx, &paths).await?;
        let mut changes = vec![];
        let want_src = present.then_some(src.as_bytes());
        if let Some(c) = files::change(&paths[0], &st[0], want_src, &mode) {
            changes.push(c);
        }
        // The keyring file is this module's when signed_by is key text; absent removes it.
        let want_key = match (&key, present) {
            (Some(k), _) => Some(Some(k.as_bytes())),
            (None, false) => Some(None),
            (None, true) => None,
        };
        if let Some(w) = want_key {
            if let Some(c) = files::change(&paths[1], &st[1], w, "0644") {
                changes.push(c);
            }
        }
        // Keyring first, so the source never names a key that is not there yet.
        changes.sort_by_key(|c| !c.path.starts_with("/etc/apt/keyrings/"));
        Ok(Plan { changes })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let mut r = TaskResult::changed(!p.changes.is_empty())
            .with("dest", sources_path(&a.name))
            .with(
                "repo",
                String::from_utf8_lossy(
                    p.changes
                        .iter()
                        .find(|c| c.path.ends_with(".sources"))
                        .and_then(|c| c.after.as_deref())
                        .unwrap_or_default(),
                )
                .into_owned(),
            );
        if a.signed_by
            .as_deref()
            .is_some_and(|s| s.contains("BEGIN PGP"))
        {
            r = r.with("key_filename", key_path(&a.name));
        }
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
    use serde_json::json;

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn renders_deb822() {
        let a = args(
            json!({"name": "Pkg Local", "uris": "file:/srv/pkg-repo", "suites": "./", "trusted": true}),
        );
        let (s, k) = render(&a).unwrap();
        assert_eq!(s, "X-Repolib-Name: Pkg Local\nTypes: deb\nURIs: file:/srv/pkg-repo\nSuites: ./\nTrusted: yes\n");
        assert!(k.is_none());
        assert_eq!(
            sources_path("Pkg Local"),
            "/etc/apt/sources.list.d/pkg_local.sources"
        );
        let key =
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQ==\n-----END PGP PUBLIC KEY BLOCK-----";
        let a = args(
            json!({"name": "x", "types": ["deb", "deb-src"], "uris": ["http://a/debian"], "suites": "bookworm", "components": "main,contrib", "architectures": "amd64", "enabled": false, "signed_by": key}),
        );
        let (s, k) = render(&a).unwrap();
        assert!(
            s.contains("Types: deb deb-src\n")
                && s.contains("Components: main contrib\n")
                && s.contains("Enabled: no\n"),
            "{s}"
        );
        assert!(s.ends_with("Signed-By: /etc/apt/keyrings/x.asc\n"), "{s}");
        assert_eq!(k.as_deref(), Some(&format!("{key}\n")[..]));
    }

    #[test]
    fn refuses_bad_input() {
        let e = |v| render(&args(v)).unwrap_err();
        assert!(e(json!({"name": "x", "suites": "a", "components": "main"})).contains("uris"));
        assert!(
            e(json!({"name": "x", "uris": "http://a", "suites": "bookworm"}))
                .contains("components")
        );
        assert!(e(json!({"name": "x", "uris": "http://a", "suites": "b", "components": "main", "signed_by": "https://example.org/key.asc"})).contains("not downloaded"));
        assert!(e(json!({"name": "x", "uris": "http://a", "suites": "b", "components": "main", "types": "rpm"})).contains("types"));
        assert_eq!(
            signed_by("/etc/apt/keyrings/a.gpg"),
            Ok(SignedBy::Ref("/etc/apt/keyrings/a.gpg".into()))
        );
    }
}
