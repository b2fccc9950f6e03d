//! Facts, gathered in one round trip with POSIX shell, under Ansible's names. (Issue 4 widens the
//! set; these are the ones plays lean on most.)

use crate::transport::{Connection, ExecRequest, TransportError};
use serde_json::{json, Map, Value};

// Three programs run (uname, id, hostname -f); the rest is shell builtins: each process costs a
// small target more than the round trip does.
const SCRIPT: &str = r#"
set -- $(uname -s -n -r -m)
echo "system=$1"; echo "nodename=$2"; echo "kernel=$3"; echo "arch=$4"
echo "hostname=${2%%.*}"
echo "fqdn=$(hostname -f 2>/dev/null || echo "$2")"
echo "id=$(id)"
mid=; [ -r /etc/machine-id ] && read -r mid < /etc/machine-id; echo "machine_id=$mid"
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "os_id=${ID:-}"
echo "os_like=${ID_LIKE:-}"
echo "os_version=${VERSION_ID:-}"
echo "os_codename=${VERSION_CODENAME:-}"
echo "os_pretty=${PRETTY_NAME:-}"
dv=; [ -r /etc/debian_version ] && read -r dv < /etc/debian_version; echo "debian_version=$dv"
if command -v apt-get >/dev/null 2>&1; then echo pkg=apt; elif command -v dnf >/dev/null 2>&1; then echo pkg=dnf; elif command -v yum >/dev/null 2>&1; then echo pkg=yum; else echo pkg=unknown; fi
if [ -d /run/systemd/system ]; then echo svc=systemd; else c=; read -r c < /proc/1/comm; echo "svc=$c"; fi
"#;

/// Runs the fact script on a host and returns `ansible_*` facts.
pub async fn gather(conn: &Connection) -> Result<Map<String, Value>, TransportError> {
    let out = conn.exec(&ExecRequest::new(SCRIPT)).await?;
    Ok(parse(&out.stdout_str()))
}

fn parse(text: &str) -> Map<String, Value> {
    let kv: std::collections::HashMap<&str, &str> =
        text.lines().filter_map(|l| l.split_once('=')).collect();
    let g = |k: &str| kv.get(k).copied().unwrap_or("").trim().to_string();
    let id = g("os_id");
    let distribution = match id.as_str() {
        "debian" => "Debian".to_string(),
        "ubuntu" => "Ubuntu".to_string(),
        "raspbian" => "Debian".to_string(),
        "fedora" => "Fedora".to_string(),
        "centos" => "CentOS".to_string(),
        "rocky" => "Rocky".to_string(),
        "almalinux" => "AlmaLinux".to_string(),
        "rhel" => "RedHat".to_string(),
        "" => "Unknown".to_string(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    };
    let like = g("os_like");
    let os_family = match id.as_str() {
        "debian" | "ubuntu" | "raspbian" | "linuxmint" | "pop" => "Debian",
        "fedora" | "centos" | "rocky" | "almalinux" | "rhel" => "RedHat",
        _ if like.contains("debian") => "Debian",
        _ if like.contains("rhel") || like.contains("fedora") => "RedHat",
        _ => "Unknown",
    };
    // Debian's full version lives in /etc/debian_version (12.7); os-release says 12.
    let version = if id == "debian" && !g("debian_version").is_empty() {
        g("debian_version")
    } else {
        g("os_version")
    };
    let major = version.split('.').next().unwrap_or("").to_string();
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(format!("ansible_{k}"), v);
    };
    put("hostname", g("hostname").into());
    put("fqdn", g("fqdn").into());
    put("nodename", g("nodename").into());
    put("kernel", g("kernel").into());
    put("architecture", g("arch").into());
    put("machine", g("arch").into());
    put("system", g("system").into());
    let (uid, user) = parse_id(&g("id"));
    put("user_id", user.into());
    put("user_uid", uid.map(Value::from).unwrap_or(Value::Null));
    put("machine_id", g("machine_id").into());
    put("distribution", distribution.into());
    put("distribution_version", version.into());
    put("distribution_major_version", major.into());
    put("distribution_release", g("os_codename").into());
    put("os_family", os_family.into());
    put("pkg_mgr", g("pkg").into());
    put("service_mgr", g("svc").into());
    put(
        "lsb",
        json!({"codename": g("os_codename"), "description": g("os_pretty")}),
    );
    m
}

/// The uid and user name from `id`'s first field, `uid=1000(pi)`.
fn parse_id(id: &str) -> (Option<u64>, String) {
    let first = id.split_whitespace().next().unwrap_or("");
    let rest = first.strip_prefix("uid=").unwrap_or("");
    let (num, name) = match rest.split_once('(') {
        Some((n, r)) => (n, r.trim_end_matches(')')),
        None => (rest, rest),
    };
    (num.parse().ok(), name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_from_id() {
        let m = parse("id=uid=1000(pi) gid=1000(pi) groups=1000(pi),27(sudo)\n");
        assert_eq!(m["ansible_user_id"], "pi");
        assert_eq!(m["ansible_user_uid"], 1000);
        assert_eq!(
            parse_id("uid=0(root) gid=0(root)"),
            (Some(0), "root".into())
        );
    }

    #[test]
    fn debian_facts() {
        let m = parse("hostname=node1\nos_id=debian\nos_version=12\nos_codename=bookworm\ndebian_version=12.7\npkg=apt\nsvc=systemd\narch=x86_64\n");
        assert_eq!(m["ansible_distribution"], "Debian");
        assert_eq!(m["ansible_distribution_version"], "12.7");
        assert_eq!(m["ansible_distribution_major_version"], "12");
        assert_eq!(m["ansible_distribution_release"], "bookworm");
        assert_eq!(m["ansible_os_family"], "Debian");
        assert_eq!(m["ansible_pkg_mgr"], "apt");
        assert_eq!(m["ansible_architecture"], "x86_64");
    }
}
