//! Where and how to connect to one host, from its inventory variables, the command line and
//! `~/.ssh/config`, with Ansible's precedence: host variables beat command-line options, which beat
//! the SSH config, which beats the defaults.

use super::become_::{Become, BecomeMethod, Secret};
pub use super::known_hosts::HostKeyPolicy;
use super::known_hosts::{default_files, HostKeyCheck};
use super::ssh_config::{expand_tilde, SshConfig};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Options from the command line that apply to every host (the lowest layer above ssh config).
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub user: Option<String>,
    pub private_key: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_policy: Option<HostKeyPolicy>,
    pub connect_timeout: Option<Duration>,
    pub become_: bool,
    pub become_user: Option<String>,
    pub become_method: Option<BecomeMethod>,
    /// From -K: used for every host that has no ansible_become_password of its own.
    pub become_password: Option<Secret>,
}

/// Everything needed to open and use one host's connection.
#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    /// The inventory name.
    pub host: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Key files to offer, in order (before ssh-agent's keys).
    pub identity_files: Vec<PathBuf>,
    /// Offer only `identity_files`, not the agent's keys.
    pub identities_only: bool,
    pub host_keys: HostKeyCheck,
    pub connect_timeout: Duration,
    /// Escalation to apply to every command when `become` is on for this host.
    pub become_: Option<Become>,
    /// Notes about settings that were ignored (for -v output).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{host}: {what}")]
pub struct SpecError {
    pub host: String,
    pub what: String,
}

fn str_var(vars: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match vars.get(*n) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(x)) => Some(x.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// Ansible's boolean conversion for variables like ansible_become.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(
            s.to_ascii_lowercase().as_str(),
            "yes" | "on" | "1" | "true" | "y" | "t"
        ),
        _ => false,
    }
}

/// What `-o`, `-i`, `-p`, `-l` in ansible_ssh_common_args / ansible_ssh_extra_args say.
#[derive(Debug, Default)]
struct SshArgs {
    opts: Vec<(String, String)>,
    identity: Vec<PathBuf>,
    port: Option<u16>,
    user: Option<String>,
    ignored: Vec<String>,
}

fn parse_ssh_args(s: &str) -> Result<SshArgs, String> {
    let words = shlex::split(s).ok_or_else(|| format!("cannot split SSH arguments: {s}"))?;
    let mut out = SshArgs::default();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let mut take = |flag: &str| -> Result<String, String> {
            match w.strip_prefix(flag) {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => it
                    .next()
                    .ok_or_else(|| format!("{flag} needs a value in '{s}'")),
            }
        };
        if w.starts_with("-o") {
            let kv = take("-o")?;
            let (k, v) = kv
                .split_once(['=', ' '])
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .ok_or_else(|| format!("-o {kv}: expected Key=Value"))?;
            out.opts.push((k, v));
        } else if w.starts_with("-i") {
            out.identity.push(expand_tilde(&take("-i")?));
        } else if w.starts_with("-p") {
            let p = take("-p")?;
            out.port = Some(p.parse().map_err(|_| format!("-p {p}: not a port"))?);
        } else if w.starts_with("-l") {
            out.user = Some(take("-l")?);
        } else {
            out.ignored.push(w);
        }
    }
    Ok(out)
}

impl ConnectionSpec {
    /// Builds the spec for `host` from its merged inventory variables.
    pub fn resolve(
        host: &str,
        vars: &Map<String, Value>,
        defaults: &Defaults,
        ssh_config: &SshConfig,
    ) -> Result<ConnectionSpec, SpecError> {
        let err = |what: String| SpecError {
            host: host.to_string(),
            what,
        };
        match str_var(vars, &["ansible_connection"]).as_deref() {
            None | Some("ssh" | "smart" | "paramiko" | "") => {}
            Some("local") => {
                return Err(err(
                    "ansible_connection is 'local' (the implicit localhost), but homelab runs tasks \
                     over SSH only, never on the controller: put this machine in the inventory with \
                     ansible_host=127.0.0.1 (sshd running), or move files with fetch/copy"
                        .into(),
                ))
            }
            Some(other) => {
                return Err(err(format!(
                    "ansible_connection '{other}' is not supported: homelab connects over SSH"
                )))
            }
        }
        let mut notes = Vec::new();
        let name = str_var(vars, &["ansible_host", "ansible_ssh_host"]).unwrap_or(host.to_string());
        let cfg = ssh_config.lookup(&name);

        let mut args = SshArgs::default();
        for key in [
            "ansible_ssh_common_args",
            "ansible_ssh_extra_args",
            "ansible_ssh_args",
        ] {
            if let Some(s) = str_var(vars, &[key]) {
                let a = parse_ssh_args(&s).map_err(|e| err(format!("{key}: {e}")))?;
                args.opts.extend(a.opts);
                args.identity.extend(a.identity);
                args.port = args.port.or(a.port);
                args.user = args.user.or(a.user);
                args.ignored.extend(a.ignored);
            }
        }
        let opt = |k: &str| {
            args.opts
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        for (k, _) in &args.opts {
            if !matches!(
                k.as_str(),
                "userknownhostsfile"
                    | "stricthostkeychecking"
                    | "port"
                    | "user"
                    | "identityfile"
                    | "identitiesonly"
                    | "connecttimeout"
                    | "hostname"
            ) {
                notes.push(format!("SSH option -o {k} is not used by homelab"));
            }
        }
        if !args.ignored.is_empty() {
            notes.push(format!(
                "SSH arguments not used by homelab: {}",
                args.ignored.join(" ")
            ));
        }

        let address = opt("hostname").or(cfg.hostname.clone()).unwrap_or(name);
        let port = match str_var(vars, &["ansible_port", "ansible_ssh_port"]) {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| err(format!("ansible_port '{p}' is not a port number")))?,
            None => match opt("port") {
                Some(p) => p
                    .parse()
                    .map_err(|_| err(format!("-o Port={p} is not a port number")))?,
                None => args.port.or(cfg.port).unwrap_or(22),
            },
        };
        let user = str_var(vars, &["ansible_user", "ansible_ssh_user"])
            .or_else(|| opt("user"))
            .or(args.user.clone())
            .or(defaults.user.clone())
            .or(cfg.user.clone())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into());

        let mut identity_files: Vec<PathBuf> = Vec::new();
        if let Some(k) = str_var(
            vars,
            &["ansible_ssh_private_key_file", "ansible_private_key_file"],
        ) {
            identity_files.push(expand_tilde(&k));
        }
        identity_files.extend(args.identity.iter().cloned());
        if let Some(k) = opt("identityfile") {
            identity_files.push(expand_tilde(&k));
        }
        if let Some(k) = &defaults.private_key {
            identity_files.push(k.clone());
        }
        identity_files.extend(cfg.identity_files.iter().cloned());
        if identity_files.is_empty() {
            if let Some(h) = dirs::home_dir() {
                for n in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                    let p = h.join(".ssh").join(n);
                    if p.exists() {
                        identity_files.push(p);
                    }
                }
            }
        }
        identity_files.dedup();
        let identities_only = opt("identitiesonly")
            .map(|v| v.eq_ignore_ascii_case("yes"))
            .or(cfg.identities_only)
            .unwrap_or(false);

        let files = match opt("userknownhostsfile") {
            Some(f) => f.split_whitespace().map(expand_tilde).collect(),
            None => match &defaults.known_hosts {
                Some(f) => vec![f.clone()],
                None if !cfg.user_known_hosts_files.is_empty() => {
                    cfg.user_known_hosts_files.clone()
                }
                None => default_files(),
            },
        };
        let strict = |s: &str| {
            HostKeyPolicy::parse(s).ok_or_else(|| {
                err(format!(
                    "StrictHostKeyChecking={s}: use yes, accept-new or no"
                ))
            })
        };
        let policy = match (defaults.host_key_policy, opt("stricthostkeychecking")) {
            (_, Some(s)) => strict(&s)?,
            (Some(p), None) => p,
            (None, None) => match &cfg.strict_host_key_checking {
                Some(s) => strict(s)?,
                None => match vars.get("ansible_host_key_checking") {
                    Some(v) if !truthy(v) => HostKeyPolicy::Off,
                    _ => HostKeyPolicy::Strict,
                },
            },
        };

        let connect_timeout = match opt("connecttimeout").and_then(|v| v.parse().ok()) {
            Some(s) => Duration::from_secs(s),
            None => match str_var(vars, &["ansible_timeout"]).and_then(|v| v.parse().ok()) {
                Some(s) => Duration::from_secs(s),
                None => defaults
                    .connect_timeout
                    .or(cfg.connect_timeout.map(Duration::from_secs))
                    .unwrap_or(Duration::from_secs(10)),
            },
        };

        let become_on = match vars.get("ansible_become") {
            Some(v) => truthy(v),
            None => defaults.become_,
        };
        let become_ = if become_on {
            let method = match str_var(vars, &["ansible_become_method"]) {
                Some(m) => BecomeMethod::parse(&m).ok_or_else(|| {
                    err(format!(
                        "ansible_become_method '{m}' is not supported: use sudo or su"
                    ))
                })?,
                None => defaults.become_method.unwrap_or_default(),
            };
            let password = str_var(
                vars,
                &[
                    "ansible_become_password",
                    "ansible_become_pass",
                    "ansible_sudo_pass",
                ],
            )
            .map(Secret::new)
            .or(defaults.become_password.clone());
            Some(Become {
                method,
                user: str_var(vars, &["ansible_become_user"])
                    .or(defaults.become_user.clone())
                    .unwrap_or_else(|| "root".into()),
                password,
                flags: str_var(vars, &["ansible_become_flags"]),
                exe: str_var(vars, &["ansible_become_exe"]),
            })
        } else {
            None
        };

        Ok(ConnectionSpec {
            host: host.to_string(),
            host_keys: HostKeyCheck {
                host: host.to_string(),
                addr: address.clone(),
                port,
                files,
                policy,
            },
            address,
            port,
            user,
            identity_files,
            identities_only,
            connect_timeout,
            become_,
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn local_and_other_connections_are_refused_with_a_way_out() {
        let d = Defaults::default();
        let c = SshConfig::default();
        let e = ConnectionSpec::resolve(
            "localhost",
            &vars(json!({"ansible_connection": "local"})),
            &d,
            &c,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("localhost") && e.contains("ansible_host=127.0.0.1"),
            "{e}"
        );
        let e =
            ConnectionSpec::resolve("c1", &vars(json!({"ansible_connection": "docker"})), &d, &c)
                .unwrap_err()
                .to_string();
        assert!(e.contains("'docker' is not supported"), "{e}");
        assert!(
            ConnectionSpec::resolve("h", &vars(json!({"ansible_connection": "ssh"})), &d, &c)
                .is_ok()
        );
    }

    #[test]
    fn bench_style_vars() {
        let v = vars(json!({
            "ansible_host": "127.0.0.21", "ansible_port": 2222, "ansible_user": "root",
            "ansible_ssh_private_key_file": "/tmp/k",
            "ansible_ssh_common_args": "-o UserKnownHostsFile=/tmp/kh -o StrictHostKeyChecking=yes -o ControlMaster=auto"
        }));
        let s = ConnectionSpec::resolve("m01", &v, &Defaults::default(), &SshConfig::default())
            .unwrap();
        assert_eq!((s.address.as_str(), s.port), ("127.0.0.21", 2222));
        assert_eq!(s.user, "root");
        assert_eq!(s.identity_files[0], PathBuf::from("/tmp/k"));
        assert_eq!(s.host_keys.files, vec![PathBuf::from("/tmp/kh")]);
        assert_eq!(s.host_keys.policy, HostKeyPolicy::Strict);
        assert!(s.notes.iter().any(|n| n.contains("controlmaster")));
        assert!(s.become_.is_none());
    }

    #[test]
    fn host_vars_beat_cli_which_beats_ssh_config() {
        let cfg =
            SshConfig::parse("Host pi\n HostName 10.1.1.1\n User cfguser\n Port 2201\n").unwrap();
        let d = Defaults {
            user: Some("cliuser".into()),
            ..Default::default()
        };
        let s = ConnectionSpec::resolve("pi", &Map::new(), &d, &cfg).unwrap();
        assert_eq!(
            (s.address.as_str(), s.port, s.user.as_str()),
            ("10.1.1.1", 2201, "cliuser")
        );
        let s =
            ConnectionSpec::resolve("pi", &vars(json!({"ansible_user": "inv"})), &d, &cfg).unwrap();
        assert_eq!(s.user, "inv");
    }

    #[test]
    fn become_password_from_vars_or_cli() {
        let d = Defaults {
            become_: true,
            become_password: Some(Secret::new("cli")),
            ..Default::default()
        };
        let s = ConnectionSpec::resolve("a", &Map::new(), &d, &SshConfig::default()).unwrap();
        assert_eq!(
            s.become_.as_ref().and_then(|b| b.password.clone()),
            Some(Secret::new("cli"))
        );
        let v = vars(json!({"ansible_become_password": "host", "ansible_become_user": "postgres"}));
        let s = ConnectionSpec::resolve("a", &v, &d, &SshConfig::default()).unwrap();
        let b = s.become_.unwrap();
        assert_eq!(b.password, Some(Secret::new("host")));
        assert_eq!(b.user, "postgres");
        assert!(!format!("{:?}", b).contains("host\""));
    }

    #[test]
    fn become_method_exe_and_flags_from_vars() {
        let d = Defaults {
            become_: true,
            ..Default::default()
        };
        let v = vars(json!({
            "ansible_become_method": "su", "ansible_become_exe": "/bin/su",
            "ansible_become_flags": "-l", "ansible_become_pass": 1234
        }));
        let b = ConnectionSpec::resolve("a", &v, &d, &SshConfig::default())
            .unwrap()
            .become_
            .unwrap();
        assert_eq!(b.method, BecomeMethod::Su);
        assert_eq!(b.exe.as_deref(), Some("/bin/su"));
        assert_eq!(b.flags.as_deref(), Some("-l"));
        assert_eq!(b.password, Some(Secret::new("1234")));
        let e = ConnectionSpec::resolve(
            "a",
            &vars(json!({"ansible_become_method": "doas"})),
            &d,
            &SshConfig::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("'doas' is not supported"), "{e}");
    }

    #[test]
    fn bad_port_is_a_clear_error() {
        let e = ConnectionSpec::resolve(
            "a",
            &vars(json!({"ansible_port": "ssh"})),
            &Defaults::default(),
            &SshConfig::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("a: ansible_port 'ssh' is not a port number"),
            "{e}"
        );
    }
}
