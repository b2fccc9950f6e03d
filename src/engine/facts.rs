//! Facts, gathered in one round trip with POSIX shell, under Ansible's names. (Issue 4 widens the
//! set; these are the ones plays lean on most.)

use crate::transport::{Connection, ExecRequest, TransportError};
use serde_json::{json, Map, Value};

const SCRIPT: &str = r#"
echo "hostname=$(hostname -s 2>/dev/null || uname -n)"
echo "fqdn=$(hostname -f 2>/dev/null || uname -n)"
echo "nodename=$(uname -n)"
echo "kernel=$(uname -r)"
echo "arch=$(uname -m)"
echo "system=$(uname -s)"
echo "user_id=$(id -un)"
echo "user_uid=$(id -u)"
echo "machine_id=$(cat /etc/machine-id 2>/dev/null)"
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "os_id=${ID:-}"
echo "os_like=${ID_LIKE:-}"
echo "os_version=${VERSION_ID:-}"
echo "os_codename=${VERSION_CODENAME:-}"
echo "os_pretty=${PRETTY_NAME:-}"
echo "debian_version=$(cat /etc/debian_version 2>/dev/null)"
if command -v apt-get >/dev/null 2>&1; then echo pkg=apt; elif command -v dnf >/dev/null 2>&1; then echo pkg=dnf; elif command -v yum >/dev/null 2>&1; then echo pkg=yum; else echo pkg=unknown; fi
if [ -d /run/systemd/system ]; then echo svc=systemd; else echo "svc=$(cat /proc/1/comm 2>/dev/null)"; fi
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
    put("user_id", g("user_id").into());
    put(
        "user_uid",
        g("user_uid")
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or(Value::Null),
    );
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

#[cfg(test)]
mod tests {
    use super::*;

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
