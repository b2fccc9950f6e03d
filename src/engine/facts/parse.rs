//! Turns the fact script's output into Ansible's facts (names and shapes of `setup`).

use super::Part;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The script's output, cut into its sections.
#[derive(Default)]
struct Raw {
    kv: HashMap<String, String>,
    sections: HashMap<String, Vec<String>>,
    env: String,
}

impl Raw {
    fn split(text: &str) -> Raw {
        let mut raw = Raw::default();
        let mut cur = "kv".to_string();
        let mut rest = text;
        while !rest.is_empty() {
            let (line, next) = match rest.find('\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, ""),
            };
            rest = next;
            if let Some(name) = line.strip_prefix("@@") {
                if name == "env" {
                    raw.env = rest.to_string();
                    break;
                }
                cur = name.trim().to_string();
                raw.sections.entry(cur.clone()).or_default();
                continue;
            }
            if cur == "kv" {
                if let Some((k, v)) = line.split_once('=') {
                    raw.kv.insert(k.to_string(), v.to_string());
                }
            } else {
                raw.sections
                    .entry(cur.clone())
                    .or_default()
                    .push(line.to_string());
            }
        }
        raw
    }

    fn get(&self, k: &str) -> &str {
        self.kv.get(k).map(|s| s.trim()).unwrap_or("")
    }

    fn has(&self, k: &str) -> bool {
        self.kv.contains_key(k)
    }

    fn lines(&self, s: &str) -> &[String] {
        self.sections.get(s).map(|v| v.as_slice()).unwrap_or(&[])
    }
}

/// Facts (`ansible_*` names) for the parts that were gathered.
pub fn facts(text: &str, parts: &BTreeSet<Part>) -> Map<String, Value> {
    let raw = Raw::split(text);
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        out.insert(format!("ansible_{k}"), v);
    };
    let has = |p: Part| parts.contains(&p);
    let arch = platform(&raw, &mut put);
    if has(Part::Distribution) {
        distribution(&raw, &mut put);
    }
    if has(Part::Lsb) {
        lsb(&raw, &mut put);
    }
    if has(Part::PkgMgr) {
        put("pkg_mgr", nonempty(raw.get("pkg"), "unknown").into());
    }
    if has(Part::ServiceMgr) {
        put("service_mgr", service_mgr(&raw).into());
    }
    if has(Part::User) {
        user(&raw, &mut put);
    }
    if has(Part::DateTime) {
        if let Some(dt) = date_time(raw.get("date")) {
            put("date_time", dt);
        }
    }
    if has(Part::Dns) {
        put("dns", dns(raw.lines("resolv")));
    }
    if has(Part::Selinux) {
        put("selinux", selinux(&raw));
        put("selinux_python_present", false.into());
    }
    if has(Part::Apparmor) {
        let st = if raw.has("apparmor") {
            "enabled"
        } else {
            "disabled"
        };
        put("apparmor", json!({ "status": st }));
    }
    if has(Part::Cmdline) && raw.has("cmdline") {
        let (c, pc) = cmdline(raw.get("cmdline"));
        put("cmdline", c);
        put("proc_cmdline", pc);
    }
    if has(Part::Hardware) {
        hardware(&raw, &arch, &mut put);
    }
    if has(Part::Network) {
        network(&raw, &mut put);
    }
    if has(Part::Virtual) {
        let (t, role) = virtualization(&raw);
        put("virtualization_type", t.clone().into());
        put("virtualization_role", role.clone().into());
        let guest: Vec<String> = if role == "guest" { vec![t] } else { vec![] };
        let host: Vec<&str> = if raw.has("kvm_module") && role != "guest" {
            vec!["kvm"]
        } else {
            vec![]
        };
        put("virtualization_tech_guest", json!(guest));
        put("virtualization_tech_host", json!(host));
    }
    if has(Part::Env) {
        put("env", Value::Object(env(&raw.env)));
    }
    out.into_iter().collect()
}

fn nonempty<'a>(s: &'a str, dflt: &'a str) -> &'a str {
    if s.is_empty() {
        dflt
    } else {
        s
    }
}

/// Ansible's platform facts; returns the architecture.
fn platform(raw: &Raw, put: &mut impl FnMut(&str, Value)) -> String {
    if !raw.has("nodename") {
        return String::new();
    }
    let (mut system, mut node, mut kernel, mut arch) = (
        raw.get("system").to_string(),
        raw.get("nodename").to_string(),
        raw.get("kernel").to_string(),
        raw.get("arch").to_string(),
    );
    // No /proc: `uname -s -n -r -m` said it.
    let un: Vec<&str> = raw.get("uname").split_whitespace().collect();
    if un.len() == 4 {
        system = un[0].into();
        node = un[1].into();
        kernel = un[2].into();
        arch = un[3].into();
    }
    let hostname = node.split('.').next().unwrap_or("").to_string();
    let fqdn = fqdn(&node, raw.lines("hosts"));
    let domain = fqdn
        .split_once('.')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    put("system", system.into());
    put("nodename", node.clone().into());
    put("hostname", hostname.into());
    put("fqdn", fqdn.into());
    put("domain", domain.into());
    put("kernel", kernel.into());
    put("kernel_version", raw.get("kernel_version").into());
    put("machine", arch.clone().into());
    put("architecture", architecture(&arch).into());
    // The userland's word size: a 64-bit kernel may run a 32-bit userland (Raspberry Pi OS
    // armhf on an aarch64 kernel); the dynamic loaders present tell.
    let kernel64 = matches!(
        arch.as_str(),
        "x86_64" | "aarch64" | "ppc64" | "ppc64le" | "s390x" | "riscv64" | "mips64"
    );
    let bits = match (kernel64, raw.has("ld64"), raw.has("ld32")) {
        _ if arch.is_empty() => "",
        (true, false, true) => "32",
        (true, _, _) => "64",
        (false, _, _) => "32",
    };
    if !bits.is_empty() {
        put("userspace_bits", bits.into());
    }
    if arch == "x86_64" {
        let ua = if bits == "32" { "i386" } else { "x86_64" };
        put("userspace_architecture", ua.into());
    }
    put("machine_id", raw.get("machine_id").into());
    arch
}

/// Ansible reports `uname -m` as is on Linux, except i386 for the old x86 names.
pub fn architecture(machine: &str) -> String {
    match machine {
        "i486" | "i586" | "i686" => "i386".into(),
        "arm64" => "aarch64".into(),
        "amd64" => "x86_64".into(),
        other => other.into(),
    }
}

/// Like Python's socket.getfqdn(): the first name with a dot among the /etc/hosts entry that
/// names this host; the host's own name when there is none.
fn fqdn(node: &str, hosts: &[String]) -> String {
    if node.contains('.') {
        return node.to_string();
    }
    for l in hosts {
        let l = l.split('#').next().unwrap_or("");
        let mut w = l.split_whitespace();
        let Some(_addr) = w.next() else { continue };
        let names: Vec<&str> = w.collect();
        if names.contains(&node) {
            if let Some(n) = names.iter().find(|n| n.contains('.')) {
                return n.to_string();
            }
            return names.first().map(|s| s.to_string()).unwrap_or_default();
        }
    }
    node.to_string()
}

/// KEY=value lines with shell quoting (os-release, lsb-release).
fn shell_kv(lines: &[String]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for l in lines {
        let l = l.trim();
        if l.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            let words = shell_words(v);
            m.insert(k.trim().to_string(), words.join(" "));
        }
    }
    m
}

fn distribution(raw: &Raw, put: &mut impl FnMut(&str, Value)) {
    let os = shell_kv(raw.lines("osrelease"));
    let g = |k: &str| os.get(k).cloned().unwrap_or_default();
    let id = g("ID");
    let name = g("NAME");
    let distribution = match id.as_str() {
        "debian" | "raspbian" => "Debian".to_string(),
        "ubuntu" => "Ubuntu".to_string(),
        "fedora" => "Fedora".to_string(),
        "centos" => "CentOS".to_string(),
        "rocky" => "Rocky".to_string(),
        "almalinux" => "AlmaLinux".to_string(),
        "rhel" => "RedHat".to_string(),
        "alpine" => "Alpine".to_string(),
        "arch" => "Archlinux".to_string(),
        "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" => "openSUSE Leap".to_string(),
        "linuxmint" => "Linux Mint".to_string(),
        "pop" => "Pop!_OS".to_string(),
        "" => nonempty(name.split_whitespace().next().unwrap_or(""), "Unknown").to_string(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    };
    let like = g("ID_LIKE");
    let os_family = match id.as_str() {
        "debian" | "ubuntu" | "raspbian" | "linuxmint" | "pop" | "kali" | "devuan" => "Debian",
        "fedora" | "centos" | "rocky" | "almalinux" | "rhel" | "ol" | "amzn" => "RedHat",
        "alpine" => "Alpine",
        "arch" | "manjaro" => "Archlinux",
        "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" | "sles" => "Suse",
        _ if like.contains("debian") || like.contains("ubuntu") => "Debian",
        _ if like.contains("rhel") || like.contains("fedora") => "RedHat",
        _ if like.contains("suse") => "Suse",
        _ if like.contains("arch") => "Archlinux",
        _ => nonempty(&distribution, "Unknown"),
    }
    .to_string();
    // Debian's full version lives in /etc/debian_version (12.7); os-release says 12.
    let dv = raw.get("debian_version");
    let version = if (id == "debian" || id == "raspbian")
        && dv.chars().next().is_some_and(|c| c.is_ascii_digit())
    {
        dv.to_string()
    } else {
        let v = g("VERSION_ID");
        if v.is_empty() && id == "debian" {
            // testing/sid: "trixie/sid"
            dv.to_string()
        } else {
            v
        }
    };
    let major = version.split('.').next().unwrap_or("").to_string();
    let mut release = g("VERSION_CODENAME");
    if release.is_empty() {
        release = g("UBUNTU_CODENAME");
    }
    if release.is_empty() {
        // "12 (bookworm)"
        let v = g("VERSION");
        if let (Some(a), Some(b)) = (v.find('('), v.find(')')) {
            if a < b {
                release = v[a + 1..b].to_string();
            }
        }
    }
    put("distribution", distribution.into());
    put("distribution_version", version.clone().into());
    put("distribution_major_version", major.into());
    if let Some((_, minor)) = version.split_once('.') {
        put("distribution_minor_version", minor.into());
    }
    put("distribution_release", release.into());
    put("os_family", os_family.clone().into());
    put("distribution_file_variety", os_family.into());
}

fn lsb(raw: &Raw, put: &mut impl FnMut(&str, Value)) {
    let l = shell_kv(raw.lines("lsb"));
    let mut m = Map::new();
    if !l.is_empty() {
        let g = |k: &str| l.get(k).cloned().unwrap_or_default();
        let release = g("DISTRIB_RELEASE");
        m.insert("id".into(), g("DISTRIB_ID").into());
        m.insert("release".into(), release.clone().into());
        m.insert(
            "major_release".into(),
            release.split('.').next().unwrap_or("").into(),
        );
        m.insert("codename".into(), g("DISTRIB_CODENAME").into());
        m.insert("description".into(), g("DISTRIB_DESCRIPTION").into());
    } else {
        // No lsb_release on the host: what os-release says of the same.
        let os = shell_kv(raw.lines("osrelease"));
        if !os.is_empty() {
            let g = |k: &str| os.get(k).cloned().unwrap_or_default();
            m.insert("codename".into(), g("VERSION_CODENAME").into());
            m.insert("description".into(), g("PRETTY_NAME").into());
        }
    }
    put("lsb", Value::Object(m));
}

fn service_mgr(raw: &Raw) -> String {
    let s = raw.get("svc");
    match s {
        "systemd" => "systemd".into(),
        "init" if raw.has("openrc") => "openrc".into(),
        "init" => "sysvinit".into(),
        "runit" | "runit-init" => "runit".into(),
        "" => "service".into(),
        other => other.into(),
    }
}

fn user(raw: &Raw, put: &mut impl FnMut(&str, Value)) {
    let ids: Vec<Option<u64>> = raw
        .get("ids")
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect();
    let id = |i: usize| ids.get(i).copied().flatten();
    let pw: Vec<&str> = raw.get("pw").splitn(5, ':').collect();
    let euid = id(1).or(id(0));
    if pw.len() == 5 {
        put("user_id", pw[0].into());
        put("user_uid", euid.map(Value::from).unwrap_or(Value::Null));
        put(
            "user_gid",
            pw[1].parse::<u64>().map(Value::from).unwrap_or(Value::Null),
        );
        put("user_gecos", pw[2].into());
        put("user_dir", pw[3].into());
        put("user_shell", pw[4].into());
    } else {
        put("user_id", raw.get("idn").into());
        put("user_uid", euid.map(Value::from).unwrap_or(Value::Null));
        put("user_gid", id(3).map(Value::from).unwrap_or(Value::Null));
    }
    let n = |i: usize| id(i).map(Value::from).unwrap_or(Value::Null);
    put("real_user_id", n(0));
    put("effective_user_id", n(1));
    put("real_group_id", n(2));
    put("effective_group_id", n(3));
}

/// `date '+%s|%N|%Y|%m|%d|%H|%M|%S|%Z|%z|%A|%w|%W|%j'`.
fn date_time(line: &str) -> Option<Value> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() < 14 {
        return None;
    }
    let epoch: i64 = f[0].parse().ok()?;
    let micro = if f[1].len() == 9 && f[1].chars().all(|c| c.is_ascii_digit()) {
        f[1][..6].to_string()
    } else {
        "000000".to_string()
    };
    let (y, mo, d, h, mi, s) = civil_utc(epoch);
    let utc = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    let (yy, mm, dd, hh, mn, ss) = (f[2], f[3], f[4], f[5], f[6], f[7]);
    Some(json!({
        "date": format!("{yy}-{mm}-{dd}"),
        "day": dd,
        "epoch": f[0],
        "epoch_int": f[0],
        "hour": hh,
        "iso8601": format!("{utc}Z"),
        "iso8601_basic": format!("{yy}{mm}{dd}T{hh}{mn}{ss}{micro}"),
        "iso8601_basic_short": format!("{yy}{mm}{dd}T{hh}{mn}{ss}"),
        "iso8601_micro": format!("{utc}.{micro}Z"),
        "minute": mn,
        "month": mm,
        "second": ss,
        "time": format!("{hh}:{mn}:{ss}"),
        "tz": f[8],
        "tz_dst": f[8],
        "tz_offset": f[9],
        "weekday": f[10],
        "weekday_number": f[11],
        "weeknumber": f[12],
        "year": yy,
    }))
}

/// Seconds since 1970 to UTC (year, month, day, hour, minute, second).
pub fn civil_utc(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

fn dns(lines: &[String]) -> Value {
    let mut ns = vec![];
    let mut search: Vec<String> = vec![];
    let mut domain = None;
    let mut options = Map::new();
    let mut sortlist = vec![];
    for l in lines {
        let l = l.split(['#', ';']).next().unwrap_or("");
        let mut w = l.split_whitespace();
        match w.next() {
            Some("nameserver") => ns.extend(w.next().map(str::to_string)),
            Some("search") => search = w.map(str::to_string).collect(),
            Some("domain") => domain = w.next().map(str::to_string),
            Some("sortlist") => sortlist.extend(w.map(str::to_string)),
            Some("options") => {
                for o in w {
                    match o.split_once(':') {
                        Some((k, v)) => options.insert(k.into(), v.into()),
                        None => options.insert(o.into(), true.into()),
                    };
                }
            }
            _ => {}
        }
    }
    let mut m = Map::new();
    m.insert("nameservers".into(), json!(ns));
    m.insert("search".into(), json!(search));
    if let Some(d) = domain {
        m.insert("domain".into(), d.into());
    }
    if !options.is_empty() {
        m.insert("options".into(), Value::Object(options));
    }
    if !sortlist.is_empty() {
        m.insert("sortlist".into(), json!(sortlist));
    }
    Value::Object(m)
}

fn selinux(raw: &Raw) -> Value {
    if !raw.has("selinux_enforce") {
        return json!({ "status": "disabled" });
    }
    let cfg = shell_kv(raw.lines("selinuxcfg"));
    let mode = if raw.get("selinux_enforce") == "1" {
        "enforcing"
    } else {
        "permissive"
    };
    json!({
        "status": "enabled",
        "mode": mode,
        "config_mode": cfg.get("SELINUX").cloned().unwrap_or_else(|| "unknown".into()),
        "type": cfg.get("SELINUXTYPE").cloned().unwrap_or_else(|| "unknown".into()),
    })
}

/// `ansible_cmdline` (last value wins) and `ansible_proc_cmdline` (repeats become lists).
fn cmdline(line: &str) -> (Value, Value) {
    let mut c = Map::new();
    let mut pc = Map::new();
    for w in line.split_whitespace() {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k, Value::String(v.into())),
            None => (w, Value::Bool(true)),
        };
        c.insert(k.into(), v.clone());
        match pc.get_mut(k) {
            Some(Value::Array(a)) => a.push(v),
            Some(old) => *old = json!([old.clone(), v]),
            None => {
                pc.insert(k.into(), v);
            }
        }
    }
    (Value::Object(c), Value::Object(pc))
}

fn hardware(raw: &Raw, arch: &str, put: &mut impl FnMut(&str, Value)) {
    // Memory, in MB as Ansible rounds it (kB / 1024, floored).
    let mut mem: HashMap<&str, u64> = HashMap::new();
    for l in raw.lines("meminfo") {
        if let Some((k, v)) = l.split_once(':') {
            if let Some(n) = v.split_whitespace().next().and_then(|n| n.parse().ok()) {
                mem.insert(k.trim(), n);
            }
        }
    }
    if !mem.is_empty() {
        let mb = |k: &str| mem.get(k).copied().unwrap_or(0) / 1024;
        put("memtotal_mb", mb("MemTotal").into());
        put("memfree_mb", mb("MemFree").into());
        put("swaptotal_mb", mb("SwapTotal").into());
        put("swapfree_mb", mb("SwapFree").into());
        let nocache_free = mb("MemFree") + mb("Buffers") + mb("Cached");
        put(
            "memory_mb",
            json!({
                "real": {"total": mb("MemTotal"), "used": mb("MemTotal").saturating_sub(mb("MemFree")), "free": mb("MemFree")},
                "nocache": {"free": nocache_free, "used": mb("MemTotal").saturating_sub(nocache_free)},
                "swap": {"total": mb("SwapTotal"), "free": mb("SwapFree"), "used": mb("SwapTotal").saturating_sub(mb("SwapFree")), "cached": mb("SwapCached")},
            }),
        );
    }
    cpu(raw.lines("cpuinfo"), arch, put);
    if let Some(up) = raw
        .get("uptime")
        .split_whitespace()
        .next()
        .and_then(|u| u.parse::<f64>().ok())
    {
        put("uptime_seconds", (up as u64).into());
    }
    for (k, name) in [
        ("dmi_product_name", "product_name"),
        ("dmi_sys_vendor", "system_vendor"),
        ("dmi_product_version", "product_version"),
        ("dmi_bios_vendor", "bios_vendor"),
        ("dmi_bios_version", "bios_version"),
        ("dmi_bios_date", "bios_date"),
        ("dmi_board_name", "board_name"),
    ] {
        if raw.has(k) {
            put(name, nonempty(raw.get(k), "NA").into());
        }
    }
    if !raw.get("dt_model").is_empty() {
        let model = raw.get("dt_model").trim_end_matches('\0').to_string();
        if raw.get("dmi_product_name").is_empty() {
            put("product_name", model.clone().into());
        }
        put("devicetree_model", model.into());
    }
    put("mounts", mounts(raw.lines("mounts"), raw.lines("df")));
}

/// Ansible's processor facts from /proc/cpuinfo.
fn cpu(lines: &[String], arch: &str, put: &mut impl FnMut(&str, Value)) {
    if lines.is_empty() {
        return;
    }
    let mut processor = vec![];
    let mut occurrences = 0u64;
    let mut sockets: BTreeMap<String, u64> = BTreeMap::new();
    let mut cores: BTreeMap<String, u64> = BTreeMap::new();
    let (mut physid, mut coreid) = (String::new(), String::new());
    let mut i = 0u64;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "model name" | "Processor" | "vendor_id" | "cpu" | "Vendor" | "processor" => {
                processor.push(Value::String(v.into()));
                if k == "processor" {
                    i += 1;
                    occurrences += 1;
                }
            }
            "physical id" => {
                physid = v.into();
                sockets.entry(physid.clone()).or_insert(1);
            }
            "core id" => {
                coreid = v.into();
                cores.entry(coreid.clone()).or_insert(1);
            }
            "cpu cores" => {
                sockets.insert(physid.clone(), v.parse().unwrap_or(1));
            }
            "siblings" => {
                cores.insert(coreid.clone(), v.parse().unwrap_or(1));
            }
            _ => {}
        }
    }
    if arch.starts_with("armv") || arch.starts_with("aarch") || arch.starts_with("ppc") {
        i = occurrences;
    }
    let count = if sockets.is_empty() {
        i
    } else {
        sockets.len() as u64
    };
    let cores_per = sockets.values().next().copied().unwrap_or(1).max(1);
    let threads = (cores.values().next().copied().unwrap_or(1) / cores_per).max(1);
    put("processor", Value::Array(processor));
    put("processor_count", count.into());
    put("processor_cores", cores_per.into());
    put("processor_threads_per_core", threads.into());
    put("processor_vcpus", (threads * count * cores_per).into());
    put("processor_nproc", occurrences.into());
}

/// /proc/mounts lines (already narrowed) and `df -P -k` of their mount points.
fn mounts(lines: &[String], df: &[String]) -> Value {
    let mut sizes: HashMap<String, (u64, u64, u64)> = HashMap::new();
    for l in df.iter().skip(1) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 6 {
            continue;
        }
        let n = |i: usize| w[i].parse::<u64>().unwrap_or(0);
        sizes.insert(w[5..].join(" "), (n(1), n(2), n(3)));
    }
    let mut out = vec![];
    for l in lines {
        let w: Vec<&str> = l.split(' ').collect();
        if w.len() < 6 {
            continue;
        }
        let mount = unescape_octal(w[1]);
        let mut m = Map::new();
        m.insert("mount".into(), mount.clone().into());
        m.insert("device".into(), unescape_octal(w[0]).into());
        m.insert("fstype".into(), w[2].into());
        m.insert("options".into(), w[3].into());
        m.insert("dump".into(), w[4].parse::<u64>().unwrap_or(0).into());
        m.insert("passno".into(), w[5].parse::<u64>().unwrap_or(0).into());
        m.insert("uuid".into(), "N/A".into());
        if let Some((total, used, avail)) = sizes.get(&mount) {
            m.insert("size_total".into(), (total * 1024).into());
            m.insert("size_available".into(), (avail * 1024).into());
            m.insert("block_size".into(), 1024.into());
            m.insert("block_total".into(), (*total).into());
            m.insert("block_available".into(), (*avail).into());
            m.insert("block_used".into(), (*used).into());
        }
        out.push(Value::Object(m));
    }
    Value::Array(out)
}

/// /proc/mounts writes space as \040 (and tab, newline, backslash likewise).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Iface {
    mac: String,
    mtu: Option<u64>,
    active: bool,
    kind: String,
    promisc: bool,
    v4: Vec<(Ipv4Addr, u8, Option<Ipv4Addr>)>,
    v6: Vec<(Ipv6Addr, u8, String)>,
}

fn mask_v4(prefix: u8) -> Ipv4Addr {
    if prefix == 0 {
        Ipv4Addr::new(0, 0, 0, 0)
    } else {
        Ipv4Addr::from(u32::MAX << (32 - u32::from(prefix.min(32))))
    }
}

fn v4_fact(a: Ipv4Addr, p: u8, brd: Option<Ipv4Addr>) -> Value {
    let mask = mask_v4(p);
    let net = Ipv4Addr::from(u32::from(a) & u32::from(mask));
    json!({
        "address": a.to_string(),
        "broadcast": brd.map(|b| b.to_string()).unwrap_or_default(),
        "netmask": mask.to_string(),
        "network": net.to_string(),
        "prefix": p.to_string(),
    })
}

/// Hex in /proc/net/route is the address in host (little-endian) byte order.
fn route_addr(hex: &str) -> Option<Ipv4Addr> {
    u32::from_str_radix(hex, 16)
        .ok()
        .map(|n| Ipv4Addr::from(n.swap_bytes()))
}

fn v6_from_hex(hex: &str) -> Option<Ipv6Addr> {
    u128::from_str_radix(hex, 16).ok().map(Ipv6Addr::from)
}

fn v6_scope(a: &Ipv6Addr) -> &'static str {
    if a.is_loopback() {
        "host"
    } else if (a.segments()[0] & 0xffc0) == 0xfe80 {
        "link"
    } else {
        "global"
    }
}

fn network(raw: &Raw, put: &mut impl FnMut(&str, Value)) {
    let mut ifs: BTreeMap<String, Iface> = BTreeMap::new();
    for l in raw.lines("netdev") {
        let f: Vec<&str> = l.split('|').collect();
        if f.len() < 7 || f[0].is_empty() {
            continue;
        }
        let flags = u64::from_str_radix(f[5].trim_start_matches("0x"), 16).unwrap_or(0);
        let kind = if !f[6].is_empty() {
            f[6].to_string()
        } else {
            match f[4] {
                "1" => "ether",
                "32" => "infiniband",
                "512" => "ppp",
                "772" => "loopback",
                "65534" => "tunnel",
                _ => "unknown",
            }
            .to_string()
        };
        ifs.insert(
            f[0].to_string(),
            Iface {
                mac: f[1].to_string(),
                mtu: f[2].parse().ok(),
                active: f[3] != "down",
                kind,
                promisc: flags & 0x100 != 0,
                v4: vec![],
                v6: vec![],
            },
        );
    }
    let ipaddr = raw.lines("ipaddr");
    if !ipaddr.is_empty() {
        for l in ipaddr {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() < 4 {
                continue;
            }
            let name = w[1].trim_end_matches(':');
            let name = name.split('@').next().unwrap_or(name);
            let Some((addr, prefix)) = w[3].split_once('/') else {
                continue;
            };
            let prefix: u8 = prefix.parse().unwrap_or(0);
            let Some(ifc) = ifs.get_mut(name) else {
                continue;
            };
            match w[2] {
                "inet" => {
                    let brd = w
                        .iter()
                        .position(|x| *x == "brd")
                        .and_then(|i| w.get(i + 1))
                        .and_then(|b| b.parse().ok());
                    if let Ok(a) = addr.parse() {
                        ifc.v4.push((a, prefix, brd));
                    }
                }
                "inet6" => {
                    if let Ok(a) = addr.parse::<Ipv6Addr>() {
                        let scope = w
                            .iter()
                            .position(|x| *x == "scope")
                            .and_then(|i| w.get(i + 1))
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| v6_scope(&a).into());
                        ifc.v6.push((a, prefix, scope));
                    }
                }
                _ => {}
            }
        }
    } else {
        fib_trie_v4(raw, &mut ifs);
        for l in raw.lines("ifinet6") {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() < 6 {
                continue;
            }
            let (Some(a), Ok(p)) = (v6_from_hex(w[0]), u8::from_str_radix(w[2], 16)) else {
                continue;
            };
            if let Some(ifc) = ifs.get_mut(w[5]) {
                ifc.v6.push((a, p, v6_scope(&a).into()));
            }
        }
    }
    // Default routes.
    let mut def4: Option<(u64, String, Ipv4Addr)> = None;
    for l in raw.lines("route").iter().skip(1) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 8 || w[1] != "00000000" || w[7] != "00000000" {
            continue;
        }
        let flags = u32::from_str_radix(w[3], 16).unwrap_or(0);
        if flags & 1 == 0 {
            continue;
        }
        let metric: u64 = w[6].parse().unwrap_or(0);
        if let Some(gw) = route_addr(w[2]) {
            if def4.as_ref().is_none_or(|(m, _, _)| metric < *m) {
                def4 = Some((metric, w[0].to_string(), gw));
            }
        }
    }
    let mut def6: Option<(u64, String, Ipv6Addr)> = None;
    for l in raw.lines("ipv6route") {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 10 || w[9] == "lo" {
            continue;
        }
        let metric = u64::from_str_radix(w[5], 16).unwrap_or(0);
        if let Some(gw) = v6_from_hex(w[4]) {
            if def6.as_ref().is_none_or(|(m, _, _)| metric < *m) {
                def6 = Some((metric, w[9].to_string(), gw));
            }
        }
    }
    let mut all4 = vec![];
    let mut all6 = vec![];
    for (name, i) in &ifs {
        let mut m = Map::new();
        m.insert("device".into(), name.clone().into());
        m.insert("active".into(), i.active.into());
        if !i.mac.is_empty() && i.mac != "00:00:00:00:00:00" {
            m.insert("macaddress".into(), i.mac.clone().into());
        }
        if let Some(mtu) = i.mtu {
            m.insert("mtu".into(), mtu.into());
        }
        m.insert("promisc".into(), i.promisc.into());
        m.insert("type".into(), i.kind.clone().into());
        if let Some((a, p, b)) = i.v4.first() {
            m.insert("ipv4".into(), v4_fact(*a, *p, *b));
            if i.v4.len() > 1 {
                m.insert(
                    "ipv4_secondaries".into(),
                    Value::Array(
                        i.v4.iter()
                            .skip(1)
                            .map(|(a, p, b)| v4_fact(*a, *p, *b))
                            .collect(),
                    ),
                );
            }
        }
        if !i.v6.is_empty() {
            m.insert(
                "ipv6".into(),
                Value::Array(
                    i.v6.iter()
                        .map(|(a, p, s)| json!({"address": a.to_string(), "prefix": p.to_string(), "scope": s}))
                        .collect(),
                ),
            );
        }
        for (a, _, _) in &i.v4 {
            if !a.is_loopback() {
                all4.push(a.to_string());
            }
        }
        for (a, _, _) in &i.v6 {
            if !a.is_loopback() {
                all6.push(a.to_string());
            }
        }
        put(&name.replace(['-', ':'], "_"), sorted(m));
    }
    put("interfaces", json!(ifs.keys().collect::<Vec<_>>()));
    put("all_ipv4_addresses", json!(all4));
    put("all_ipv6_addresses", json!(all6));
    let mut d4 = Map::new();
    if let Some((_, dev, gw)) = def4 {
        if let Some(i) = ifs.get(&dev) {
            d4.insert("gateway".into(), gw.to_string().into());
            d4.insert("interface".into(), dev.clone().into());
            d4.insert("alias".into(), dev.clone().into());
            if let Some((a, p, b)) = i.v4.first() {
                if let Value::Object(v) = v4_fact(*a, *p, *b) {
                    d4.extend(v);
                }
            }
            d4.insert(
                "macaddress".into(),
                nonempty(&i.mac, "unknown").to_string().into(),
            );
            if let Some(mtu) = i.mtu {
                d4.insert("mtu".into(), mtu.into());
            }
            d4.insert("type".into(), i.kind.clone().into());
        }
    }
    put("default_ipv4", sorted(d4));
    let mut d6 = Map::new();
    if let Some((_, dev, gw)) = def6 {
        if let Some(i) = ifs.get(&dev) {
            d6.insert("gateway".into(), gw.to_string().into());
            d6.insert("interface".into(), dev.clone().into());
            if let Some((a, p, s)) = i.v6.iter().find(|(_, _, s)| s == "global") {
                d6.insert("address".into(), a.to_string().into());
                d6.insert("prefix".into(), p.to_string().into());
                d6.insert("scope".into(), s.clone().into());
            }
            d6.insert(
                "macaddress".into(),
                nonempty(&i.mac, "unknown").to_string().into(),
            );
            if let Some(mtu) = i.mtu {
                d6.insert("mtu".into(), mtu.into());
            }
            d6.insert("type".into(), i.kind.clone().into());
        }
    }
    put("default_ipv6", sorted(d6));
}

fn sorted(m: Map<String, Value>) -> Value {
    Value::Object(
        m.into_iter()
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect(),
    )
}

/// Without `ip`: the host's IPv4 addresses are the `/32 host LOCAL` leaves of the main table in
/// /proc/net/fib_trie; each belongs to the interface of the link route (from /proc/net/route)
/// whose network holds it, with that route's prefix. Loopback addresses go to `lo`.
fn fib_trie_v4(raw: &Raw, ifs: &mut BTreeMap<String, Iface>) {
    let mut links: Vec<(u32, u32, String)> = vec![];
    for l in raw.lines("route").iter().skip(1) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 8 || w[2] != "00000000" {
            continue;
        }
        if let (Some(d), Some(m)) = (route_addr(w[1]), route_addr(w[7])) {
            links.push((u32::from(d), u32::from(m), w[0].to_string()));
        }
    }
    let mut seen = BTreeSet::new();
    let mut last: Option<Ipv4Addr> = None;
    for l in raw.lines("fibtrie") {
        let t = l.trim();
        if let Some(a) = t.strip_prefix("|-- ") {
            last = a.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL") {
            let Some(a) = last else { continue };
            if !seen.insert(a) {
                continue;
            }
            let n = u32::from(a);
            let best = links
                .iter()
                .filter(|(d, m, _)| n & m == *d && *m != 0)
                .max_by_key(|(_, m, _)| m.count_ones());
            let (dev, prefix) = if a.is_loopback() {
                ("lo".to_string(), 8u8)
            } else if let Some((_, m, dev)) = best {
                (dev.clone(), m.count_ones() as u8)
            } else {
                continue;
            };
            let brd = if a.is_loopback() {
                None
            } else {
                Some(Ipv4Addr::from(n | !u32::from(mask_v4(prefix))))
            };
            if let Some(i) = ifs.get_mut(&dev) {
                i.v4.push((a, prefix, brd));
            }
        }
    }
}

fn container_type(v: &str) -> String {
    match v {
        "lxc" | "lxc-libvirt" => "lxc".into(),
        "oci" => "docker".into(),
        other => other.into(),
    }
}

/// (virtualization_type, virtualization_role), as Ansible names them.
fn virtualization(raw: &Raw) -> (String, String) {
    let guest = |t: &str| (t.to_string(), "guest".to_string());
    let c = raw.get("container");
    if !c.is_empty() {
        return guest(&container_type(c));
    }
    if raw.has("dockerenv") {
        return guest("docker");
    }
    if raw.has("containerenv") {
        return guest("podman");
    }
    for l in raw.lines("environ1") {
        if let Some(v) = l.strip_prefix("container=") {
            if !v.is_empty() {
                return guest(&container_type(v));
            }
        }
    }
    let product = raw.get("dmi_product_name");
    let vendor = raw.get("dmi_sys_vendor");
    let bios = raw.get("dmi_bios_vendor");
    let dmi = if product == "VirtualBox" || vendor == "innotek GmbH" {
        Some("virtualbox")
    } else if product.starts_with("VMware") || vendor.starts_with("VMware") {
        Some("VMware")
    } else if matches!(product, "KVM" | "KVM Server" | "Bochs" | "AHV")
        || vendor == "QEMU"
        || vendor == "Amazon EC2"
        || product == "Google Compute Engine"
    {
        Some("kvm")
    } else if product == "RHEV Hypervisor" {
        Some("RHEV")
    } else if product.starts_with("OpenStack") {
        Some("openstack")
    } else if vendor == "Microsoft Corporation" && product == "Virtual Machine" {
        Some("VirtualPC")
    } else if vendor.starts_with("Parallels") || product.starts_with("Parallels") {
        Some("parallels")
    } else if bios == "Xen" || vendor == "Xen" || product.starts_with("HVM domU") {
        Some("xen")
    } else {
        None
    };
    if let Some(t) = dmi {
        return guest(t);
    }
    if raw.has("xen") {
        return guest("xen");
    }
    match raw.get("detect_virt") {
        "" | "none" => {}
        "oracle" => return guest("virtualbox"),
        "vmware" => return guest("VMware"),
        "microsoft" => return guest("VirtualPC"),
        "qemu" | "kvm" | "amazon" => return guest("kvm"),
        other => return guest(other),
    }
    let hypervisor = raw
        .lines("cpuinfo")
        .iter()
        .any(|l| l.starts_with("hypervisor"));
    if hypervisor {
        // A hypervisor nothing names: a guest of an unknown kind.
        return guest("NA");
    }
    if raw.has("kvm_module") {
        return ("kvm".into(), "host".into());
    }
    ("NA".into(), "NA".into())
}

/// Shell words (single, double and $'' quotes; backslashes), as `export -p` and os-release
/// write them.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in it.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '$' if it.peek() == Some(&'\'') => {
                in_word = true;
                it.next();
                while let Some(d) = it.next() {
                    match d {
                        '\'' => break,
                        '\\' => match it.next() {
                            Some('n') => cur.push('\n'),
                            Some('t') => cur.push('\t'),
                            Some('r') => cur.push('\r'),
                            Some('e') | Some('E') => cur.push('\x1b'),
                            Some(o) => cur.push(o),
                            None => {}
                        },
                        o => cur.push(o),
                    }
                }
            }
            '"' => {
                in_word = true;
                while let Some(d) = it.next() {
                    match d {
                        '"' => break,
                        '\\' => match it.peek() {
                            Some(&n @ ('"' | '\\' | '$' | '`')) => {
                                cur.push(n);
                                it.next();
                            }
                            Some('\n') => {
                                it.next();
                            }
                            _ => cur.push('\\'),
                        },
                        o => cur.push(o),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match it.next() {
                    Some('\n') | None => {}
                    Some(o) => cur.push(o),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            o => {
                in_word = true;
                cur.push(o);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `export -p` (dash: `export K='v'`, bash: `declare -x K="v"`) as a map.
fn env(text: &str) -> Map<String, Value> {
    let mut m = BTreeMap::new();
    for w in shell_words(text) {
        if w == "export" || w == "declare" || w.starts_with('-') {
            continue;
        }
        if let Some((k, v)) = w.split_once('=') {
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                m.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
    }
    m.into_iter().collect()
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
