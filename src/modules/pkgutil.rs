//! Bits the package modules share: package name lists as Ansible takes them (a string, a comma
//! list or a YAML list), `name=version` pins, a package-state diff, and the package manager probe.

use super::core::FileDiff;
use serde::{Deserialize, Deserializer};

/// A name list: `tree`, `tree,sl`, `[tree, sl]`; numbers become strings, empty items are dropped.
pub fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde_json::Value;
    let v = Option::<Value>::deserialize(d)?;
    let mut out = vec![];
    let mut push = |s: &str| {
        for part in s.split(',') {
            let p = part.trim();
            if !p.is_empty() {
                out.push(p.to_string());
            }
        }
    };
    match v {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => push(&s),
        Some(Value::Number(n)) => push(&n.to_string()),
        Some(Value::Array(items)) => {
            for i in items {
                match i {
                    Value::String(s) => push(&s),
                    Value::Number(n) => push(&n.to_string()),
                    other => {
                        return Err(serde::de::Error::custom(format!(
                            "'{other}' is not a package name"
                        )))
                    }
                }
            }
        }
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "'{other}' is not a package name or a list of them"
            )))
        }
    }
    Ok(out)
}

/// A requested package: its name (with an optional `:arch`) and an optional pinned version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub version: Option<String>,
}

impl Spec {
    /// `tree`, `tree=2.1.0-1`, `libc6:amd64`. A name with glob characters or other junk is refused.
    pub fn parse(s: &str) -> Result<Spec, String> {
        let (name, version) = match s.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (s.trim(), None),
        };
        if name.is_empty() {
            return Err(format!("'{s}' has no package name"));
        }
        if name.contains(['*', '?', '[']) {
            return Err(format!(
                "'{s}': package name globs are not supported; list the packages by name"
            ));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.:_".contains(&b))
        {
            return Err(format!("'{s}' is not a valid package name"));
        }
        if let Some(v) = &version {
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.:~_".contains(&b))
            {
                return Err(format!("'{s}': '{v}' is not a valid version"));
            }
        }
        Ok(Spec {
            name: name.to_string(),
            version,
        })
    }

    /// The name without `:arch`.
    pub fn bare(&self) -> &str {
        self.name.split(':').next().unwrap_or(&self.name)
    }
}

/// One line per package before and after (`tree: not installed` → `tree: 2.1.0-1`).
pub fn package_diff(header: &str, lines: &[(String, String, String)]) -> FileDiff {
    let mut before = String::new();
    let mut after = String::new();
    for (name, b, a) in lines {
        before.push_str(&format!("{name}: {b}\n"));
        after.push_str(&format!("{name}: {a}\n"));
    }
    FileDiff {
        before_header: header.to_string(),
        after_header: header.to_string(),
        before,
        after,
        skipped: None,
    }
}

/// Which package manager a host has, as `package` chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Apt,
    Dnf,
    Yum,
}

/// Prints `HLPM apt|dnf|yum|none` (first found).
pub const MANAGER_PROBE: &str = "if command -v apt-get >/dev/null 2>&1; then echo 'HLPM apt'; \
     elif command -v dnf >/dev/null 2>&1; then echo 'HLPM dnf'; \
     elif command -v yum >/dev/null 2>&1; then echo 'HLPM yum'; else echo 'HLPM none'; fi";

pub fn parse_manager(out: &str) -> Option<Manager> {
    out.lines()
        .find_map(|l| l.strip_prefix("HLPM "))
        .and_then(|m| match m.trim() {
            "apt" => Some(Manager::Apt),
            "dnf" => Some(Manager::Dnf),
            "yum" => Some(Manager::Yum),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct N {
        #[serde(default, deserialize_with = "names")]
        name: Vec<String>,
    }

    #[test]
    fn names_from_strings_lists_and_commas() {
        let n = |v| serde_json::from_value::<N>(json!({ "name": v })).map(|n| n.name);
        assert_eq!(n(json!("tree")).unwrap(), ["tree"]);
        assert_eq!(n(json!("tree, sl")).unwrap(), ["tree", "sl"]);
        assert_eq!(
            n(json!(["tree", "sl=5.02-1"])).unwrap(),
            ["tree", "sl=5.02-1"]
        );
        assert!(n(json!({"a": 1})).is_err());
        assert!(serde_json::from_value::<N>(json!({}))
            .unwrap()
            .name
            .is_empty());
    }

    #[test]
    fn specs() {
        let s = Spec::parse("tree=2.1.0-1").unwrap();
        assert_eq!(
            (s.name.as_str(), s.version.as_deref()),
            ("tree", Some("2.1.0-1"))
        );
        assert_eq!(Spec::parse("libc6:amd64").unwrap().bare(), "libc6");
        assert!(Spec::parse("tr*").unwrap_err().contains("globs"));
        assert!(Spec::parse("a;rm -rf /").is_err());
        assert!(Spec::parse("a=").is_err());
        assert!(Spec::parse("=1").is_err());
    }

    #[test]
    fn manager_probe() {
        assert_eq!(parse_manager("x\nHLPM dnf\n"), Some(Manager::Dnf));
        assert_eq!(parse_manager("HLPM none\n"), None);
    }
}

/// Files a repository module manages (a `.list`/`.sources` file, a keyring): read them all in one
/// round trip, plan each one's change, show diffs, write atomically, and put the old ones back
/// when a later step (`apt-get update`) fails.
pub mod files {
    use super::super::core::{FileDiff, ModuleError, PlannedPath, TaskCtx};
    use super::super::remote::{self, Kind, PathState, Want, WriteOpts};

    /// The state (with content) of each path, in order, in one round trip (one `stat` for all).
    pub async fn probe(ctx: &TaskCtx<'_>, paths: &[String]) -> Result<Vec<PathState>, ModuleError> {
        let want = Want {
            checksum: false,
            content_limit: 1 << 20,
        };
        let batch: Vec<(String, Want)> = paths.iter().map(|p| (p.clone(), want)).collect();
        let token = crate::transport::shell::random_token();
        let out = ctx.exec(remote::probe_many_script(&batch, &token)).await?;
        let found = remote::parse_many(&out.stdout, paths.len(), &token).map_err(|e| {
            ModuleError::Failed(format!(
                "{}: could not read {}: {e} {}",
                ctx.host,
                paths.join(", "),
                out.stderr_str().trim()
            ))
        })?;
        let mut states = vec![];
        for (p, mut st) in paths.iter().zip(found) {
            if st.kind == Kind::File && st.content.is_none() && st.size == 0 {
                st.content = Some(vec![]);
            }
            ctx.overlay(p, &mut st);
            states.push(st);
        }
        Ok(states)
    }

    /// One file's planned change.
    #[derive(Debug, Clone)]
    pub struct Change {
        pub path: String,
        pub before: Option<Vec<u8>>,
        /// `None`: remove the file.
        pub after: Option<Vec<u8>>,
        pub mode: String,
    }

    /// The change that makes `st` hold `want` (None: absent) with `mode`, if any.
    pub fn change(path: &str, st: &PathState, want: Option<&[u8]>, mode: &str) -> Option<Change> {
        let before = (st.kind == Kind::File).then(|| st.content.clone().unwrap_or_default());
        let mode_ok = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
            .map(|m| m == st.mode)
            .unwrap_or(false);
        let same = match want {
            None => st.kind == Kind::Absent,
            Some(w) => st.kind == Kind::File && before.as_deref() == Some(w) && mode_ok,
        };
        (!same).then(|| Change {
            path: path.to_string(),
            before,
            after: want.map(<[u8]>::to_vec),
            mode: mode.to_string(),
        })
    }

    pub fn diffs(changes: &[Change]) -> Vec<FileDiff> {
        changes
            .iter()
            .map(|c| remote::edit_diff(&c.path, c.before.as_deref(), c.after.as_deref()))
            .collect()
    }

    /// Writes (atomically) or removes each file.
    pub async fn apply(ctx: &TaskCtx<'_>, changes: &[Change]) -> Result<(), ModuleError> {
        for c in changes {
            match &c.after {
                Some(data) => {
                    let o = WriteOpts {
                        mode: Some(&c.mode),
                        ..Default::default()
                    };
                    remote::write_file(ctx, &c.path, data.clone(), &o, true).await?;
                }
                None => remote::remove_file(ctx, &c.path).await?,
            }
        }
        Ok(())
    }

    /// Puts the files back as they were before [`apply`].
    pub async fn restore(ctx: &TaskCtx<'_>, changes: &[Change]) -> Result<(), ModuleError> {
        let back: Vec<Change> = changes
            .iter()
            .map(|c| Change {
                path: c.path.clone(),
                before: c.after.clone(),
                after: c.before.clone(),
                mode: c.mode.clone(),
            })
            .collect();
        apply(ctx, &back).await
    }

    /// Check mode: what later tasks should see at these paths.
    pub fn simulate(ctx: &TaskCtx<'_>, changes: &[Change]) {
        for c in changes {
            ctx.plan_path(
                &c.path,
                match &c.after {
                    Some(d) => PlannedPath::File {
                        content: Some(d.clone()),
                        mode: u32::from_str_radix(&c.mode, 8).ok(),
                    },
                    None => PlannedPath::Absent,
                },
            );
        }
    }
}

/// A file mode: a string as written (`"0644"`), or a YAML number, which is the mode's value
/// (`mode: 0644` is read as 420, that is 0o644, as Ansible takes it).
pub fn mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde_json::Value;
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let t = s.trim().trim_start_matches("0o");
            if t.is_empty() || !t.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(serde::de::Error::custom(format!(
                    "mode '{s}' must be octal digits such as 0644"
                )));
            }
            Some(format!(
                "{:04}",
                t.trim_start_matches('0').parse::<u32>().unwrap_or(0)
            ))
        }
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= 0o7777 => Some(format!("{v:04o}")),
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "mode {n} is not a file mode"
                )))
            }
        },
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "mode {other} is not a file mode"
            )))
        }
    })
}

#[cfg(test)]
mod mode_tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct M {
        #[serde(default, deserialize_with = "mode")]
        mode: Option<String>,
    }

    #[test]
    fn modes() {
        let m = |v| serde_json::from_value::<M>(json!({ "mode": v })).map(|m| m.mode);
        assert_eq!(m(json!(420)).unwrap().as_deref(), Some("0644"));
        assert_eq!(m(json!("0644")).unwrap().as_deref(), Some("0644"));
        assert_eq!(m(json!("600")).unwrap().as_deref(), Some("0600"));
        assert!(m(json!("u+rw")).is_err());
    }
}
