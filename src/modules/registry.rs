//! Which modules exist, under which names, and which arguments each takes: the playbook loader
//! refuses unknown modules and arguments with this before any host is touched.

use super::core::{field_names, Module};

/// How the engine runs a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// Runs on the host through the module's plan/apply.
    Remote,
    /// Handled by the engine itself (variables, flow control, includes).
    Engine,
}

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub runner: Runner,
    /// Takes free-form text (`command: ls -l`), kept under `_raw_params`.
    pub free_form: bool,
    /// Accepted argument names (aliases included); `None` means any (e.g. set_fact).
    pub args: Option<fn() -> &'static [&'static str]>,
}

fn names<M: Module>() -> &'static [&'static str] {
    field_names::<M::Args>()
}

const COMMAND_ARGS: &[&str] = &[
    "_raw_params",
    "cmd",
    "argv",
    "chdir",
    "creates",
    "removes",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
    "executable",
    "expand_argument_vars",
];

/// Every module homelab knows. A module appears here only once it is implemented.
pub const MODULES: &[Spec] = &[
    Spec {
        name: "command",
        runner: Runner::Remote,
        free_form: true,
        args: Some(|| COMMAND_ARGS),
    },
    Spec {
        name: "shell",
        runner: Runner::Remote,
        free_form: true,
        args: Some(|| COMMAND_ARGS),
    },
    Spec {
        name: "raw",
        runner: Runner::Remote,
        free_form: true,
        args: Some(|| &["_raw_params", "executable"]),
    },
    Spec {
        name: "copy",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::copy::Copy>),
    },
    Spec {
        name: "file",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::file::File>),
    },
    Spec {
        name: "template",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::template::Template>),
    },
    Spec {
        name: "lineinfile",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::lineinfile::LineInFile>),
    },
    Spec {
        name: "blockinfile",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::blockinfile::BlockInFile>),
    },
    Spec {
        name: "replace",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::replace::Replace>),
    },
    Spec {
        name: "stat",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::stat::Stat>),
    },
    Spec {
        name: "find",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::find::Find>),
    },
    Spec {
        name: "slurp",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::slurp::Slurp>),
    },
    Spec {
        name: "fetch",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::fetch::Fetch>),
    },
    Spec {
        name: "script",
        runner: Runner::Remote,
        free_form: true,
        args: Some(names::<super::script::Script>),
    },
    Spec {
        name: "wait_for",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::wait_for::WaitFor>),
    },
    Spec {
        name: "ping",
        runner: Runner::Remote,
        free_form: false,
        args: Some(|| &["data"]),
    },
    Spec {
        name: "reboot",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::reboot::Reboot>),
    },
    Spec {
        name: "setup",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::setup::Setup>),
    },
    Spec {
        name: "gather_facts",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::setup::Setup>),
    },
    Spec {
        name: "user",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::user::User>),
    },
    Spec {
        name: "group",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::group::Group>),
    },
    Spec {
        name: "authorized_key",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::authorized_key::AuthorizedKey>),
    },
    Spec {
        name: "cron",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::cron::Cron>),
    },
    Spec {
        name: "get_url",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::get_url::GetUrl>),
    },
    Spec {
        name: "unarchive",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::unarchive::Unarchive>),
    },
    Spec {
        name: "git",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::git::Git>),
    },
    Spec {
        name: "wait_for_connection",
        runner: Runner::Engine,
        free_form: false,
        args: Some(|| &["timeout", "delay", "sleep", "connect_timeout"]),
    },
    Spec {
        name: "debug",
        runner: Runner::Engine,
        free_form: false,
        args: Some(|| &["msg", "var", "verbosity"]),
    },
    Spec {
        name: "set_fact",
        runner: Runner::Engine,
        free_form: false,
        args: None,
    },
    Spec {
        name: "assert",
        runner: Runner::Engine,
        free_form: false,
        args: Some(|| &["that", "fail_msg", "msg", "success_msg", "quiet"]),
    },
    Spec {
        name: "fail",
        runner: Runner::Engine,
        free_form: false,
        args: Some(|| &["msg"]),
    },
    Spec {
        name: "meta",
        runner: Runner::Engine,
        free_form: true,
        args: Some(|| &["_raw_params"]),
    },
    Spec {
        name: "pause",
        runner: Runner::Engine,
        free_form: false,
        args: Some(|| &["seconds", "minutes", "prompt", "echo"]),
    },
    Spec {
        name: "include_tasks",
        runner: Runner::Engine,
        free_form: true,
        args: Some(|| &["_raw_params", "file", "apply"]),
    },
    Spec {
        name: "import_tasks",
        runner: Runner::Engine,
        free_form: true,
        args: Some(|| &["_raw_params", "file"]),
    },
    Spec {
        name: "include_role",
        runner: Runner::Engine,
        free_form: false,
        args: Some(|| {
            &[
                "name",
                "tasks_from",
                "vars_from",
                "defaults_from",
                "handlers_from",
                "apply",
                "public",
                "allow_duplicates",
                "rolespec_validate",
            ]
        }),
    },
    Spec {
        name: "import_role",
        runner: Runner::Engine,
        free_form: false,
        args: Some(|| {
            &[
                "name",
                "tasks_from",
                "vars_from",
                "defaults_from",
                "handlers_from",
                "allow_duplicates",
                "rolespec_validate",
            ]
        }),
    },
    Spec {
        name: "systemd",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::systemd::Systemd>),
    },
    Spec {
        name: "systemd_service",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::systemd::Systemd>),
    },
    Spec {
        name: "service",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::service::Service>),
    },
    Spec {
        name: "sysctl",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::sysctl::Sysctl>),
    },
    Spec {
        name: "modprobe",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::modprobe::Modprobe>),
    },
    Spec {
        name: "mount",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::mount::MountModule>),
    },
    Spec {
        name: "hostname",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::hostname::Hostname>),
    },
    Spec {
        name: "timezone",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::timezone::Timezone>),
    },
    Spec {
        name: "apt",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::apt::Apt>),
    },
    Spec {
        name: "package",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::package::Package>),
    },
    Spec {
        name: "dnf",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::dnf::Dnf>),
    },
    Spec {
        name: "dpkg_selections",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::dpkg_selections::DpkgSelections>),
    },
    Spec {
        name: "apt_repository",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::apt_repository::AptRepository>),
    },
    Spec {
        name: "deb822_repository",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::deb822_repository::Deb822Repository>),
    },
    Spec {
        name: "apt_key",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::apt_key::AptKey>),
    },
    Spec {
        name: "snap",
        runner: Runner::Remote,
        free_form: false,
        args: Some(names::<super::snap::SnapModule>),
    },
];

/// Collections whose modules homelab answers to by their short name.
const PREFIXES: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "ansible.posix.",
    "community.general.",
];

/// The spec for a module name, plain or fully qualified (`ansible.builtin.copy`).
pub fn lookup(name: &str) -> Option<&'static Spec> {
    let short = PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    MODULES.iter().find(|s| s.name == short)
}

/// A known module name close to `name`, for did-you-mean hints.
pub fn suggest(name: &str) -> Option<&'static str> {
    let short = PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    MODULES
        .iter()
        .map(|s| s.name)
        .find(|n| super::strsim_close(n, short))
}

/// Checks argument names for a module; Err lists the unknown ones and the accepted ones.
pub fn check_args<'a>(spec: &Spec, keys: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let Some(allowed) = spec.args.map(|f| f()) else {
        return Ok(());
    };
    let unknown: Vec<&str> = keys.into_iter().filter(|k| !allowed.contains(k)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let hints: Vec<String> = unknown
        .iter()
        .map(
            |u| match allowed.iter().find(|a| super::strsim_close(a, u)) {
                Some(a) => format!("'{u}' (did you mean '{a}'?)"),
                None => format!("'{u}'"),
            },
        )
        .collect();
    let shown: Vec<&str> = allowed
        .iter()
        .copied()
        .filter(|a| !a.starts_with('_'))
        .collect();
    Err(format!(
        "unsupported parameter{} for module {}: {}; supported: {}",
        if unknown.len() > 1 { "s" } else { "" },
        spec.name,
        hints.join(", "),
        shown.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_args() {
        assert_eq!(lookup("ansible.builtin.copy").map(|s| s.name), Some("copy"));
        assert!(lookup("ansible.builtin.nosuch").is_none());
        assert_eq!(suggest("cpy"), Some("copy"));
        let copy = lookup("copy").unwrap();
        assert!(check_args(copy, ["dest", "content", "mode"]).is_ok());
        let e = check_args(copy, ["dest", "contnet"]).unwrap_err();
        assert!(e.contains("'contnet' (did you mean 'content'?)"), "{e}");
        let file = lookup("file").unwrap();
        assert!(
            check_args(file, ["name", "state"]).is_ok(),
            "aliases are accepted"
        );
    }
}
