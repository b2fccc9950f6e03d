//! Host names with ports and ranges, as Ansible parses them
//! (`parsing/utils/addresses.py` and `expand_hostname_range`).
//!
//! `web[01:04]` → web01..web04, `pi-[a:c]` → pi-a, pi-b, pi-c, `n[0:10:2]` → n0, n2..n10,
//! `db1:2222` → db1 with port 2222, `[fe80::1]:22` → IPv6 with port.

use regex::Regex;
use std::sync::OnceLock;

const NUMERIC_RANGE: &str = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]";
const HEX_RANGE: &str = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]";
const ALNUM_RANGE: &str = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]";

struct Patterns {
    bracketed_hostport: Regex,
    hostport: Regex,
    ipv4: Regex,
    ipv6: Regex,
    /// One DNS label (or range); Ansible's lookbehind `(?<![_-])` is checked by hand.
    label: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let i4 = format!(r"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{NUMERIC_RANGE})");
        let c = format!(r"(?:[0-9a-f]{{1,4}}|{HEX_RANGE})");
        let ipv6 = format!(
            r"^((?:{c}:){{7}}{c}|(?:{c}:){{1,6}}:|(?:{c}:)(?::{c}){{1,6}}|(?:{c}:){{2}}(?::{c}){{1,5}}|(?:{c}:){{3}}(?::{c}){{1,4}}|(?:{c}:){{4}}(?::{c}){{1,3}}|(?:{c}:){{5}}(?::{c}){{1,2}}|(?:{c}:){{6}}(?::{c})|:(?::{c}){{1,6}}|{c}?::|(?:0:){{6}}(?:{c}\.){{3}}{c}|::(?:ffff:)?(?:{c}\.){{3}}{c}|(?:0:){{5}}ffff:(?:{c}\.){{3}}{c})$"
        );
        let build = |s: &str| Regex::new(s).unwrap_or_else(|e| panic!("built-in regex {s}: {e}"));
        Patterns {
            bracketed_hostport: build(r"^\[(.+)\]:([0-9]+)$"),
            hostport: build(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$"),
            ipv4: build(&format!(r"(?i)^(?:{i4}\.){{3}}{i4}$")),
            ipv6: build(&format!("(?i){ipv6}")),
            label: build(&format!(r"(?i)^(?:\w|{ALNUM_RANGE})(?:[\w-]|{ALNUM_RANGE})*$")),
        }
    })
}

fn is_hostname(s: &str) -> bool {
    let p = patterns();
    // Ranges never contain dots, so labels are exactly the dot-separated parts.
    s.split('.')
        .all(|l| p.label.is_match(l) && !l.ends_with('_') && !l.ends_with('-'))
}

pub(crate) fn is_ip_address(s: &str) -> bool {
    let p = patterns();
    p.ipv4.is_match(s) || p.ipv6.is_match(s)
}

/// Ansible's `parse_address(address, allow_ranges=True)`: `Some((host, port))`
/// when the text is a valid host (name, IPv4, IPv6, any with ranges) with an
/// optional port; `None` when it is not (Ansible raises; callers fall back).
pub(crate) fn parse_address(address: &str) -> Option<(String, Option<String>)> {
    let p = patterns();
    let mut addr = address.to_string();
    let mut port = None;
    for re in [&p.bracketed_hostport, &p.hostport] {
        if let Some(c) = re.captures(&addr) {
            let host = c.get(1).map_or("", |m| m.as_str()).to_string();
            port = c.get(2).map(|m| m.as_str().to_string());
            addr = host;
        }
    }
    if p.ipv4.is_match(&addr) || p.ipv6.is_match(&addr) || is_hostname(&addr) {
        Some((addr, port))
    } else {
        None
    }
}

/// Ansible's `_expand_hostpattern`: the host names a pattern stands for, and the port.
pub(crate) fn expand_hostpattern(pattern: &str) -> Result<(Vec<String>, Option<String>), String> {
    let (host, port) = match parse_address(pattern) {
        Some((h, p)) => (h, p),
        None => (pattern.to_string(), None),
    };
    let names = if host.contains('[') {
        expand_hostname_range(&host)?
    } else {
        vec![host]
    };
    Ok((names, port))
}

/// More hosts than this from one range line is surely a typo.
const MAX_HOSTS: usize = 1_000_000;

const ASCII_LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Python's `int()` on a range bound: optional sign, digits with single underscores.
fn py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let v: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// `db[01:10:3]node-[a:c]` → every combination, in order.
pub(crate) fn expand_hostname_range(line: &str) -> Result<Vec<String>, String> {
    if line.is_empty() {
        return Ok(vec![]);
    }
    let replaced = line.replacen('[', "|", 1).replacen(']', "|", 1);
    let parts: Vec<&str> = replaced.split('|').collect();
    if parts.len() != 3 {
        return Err(format!(
            "cannot read the host range in '{line}': write it as name[START:END] or name[START:END:STEP], \
             with one pair of brackets per range"
        ));
    }
    let (head, nrange, tail) = (parts[0], parts[1], parts[2]);
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(format!(
            "host range [{nrange}] must be begin:end or begin:end:step"
        ));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    let step_text = bounds.get(2).copied();
    if end.is_empty() {
        return Err(format!("host range [{nrange}] must specify an end value"));
    }
    let pad = if beg.starts_with('0') && beg.chars().count() > 1 {
        let rlen = beg.chars().count();
        if rlen != end.chars().count() {
            return Err(format!(
                "host range [{nrange}] must use equal-length begin and end (zero-padded, like [01:10])"
            ));
        }
        Some(rlen)
    } else {
        None
    };
    let step = match step_text {
        None => Some(1),
        Some(s) => py_int(s),
    };
    let fill = |s: String| -> String {
        match pad {
            Some(n) if s.chars().count() < n => {
                // Python's zfill keeps a leading sign in front.
                let (sign, digits) = match s.strip_prefix('-') {
                    Some(d) => ("-", d.to_string()),
                    None => ("", s.clone()),
                };
                format!("{sign}{}{digits}", "0".repeat(n - s.chars().count()))
            }
            _ => s,
        }
    };
    let seq: Vec<String> = match (ASCII_LETTERS.find(beg), ASCII_LETTERS.find(end)) {
        (Some(ib), Some(ie)) => {
            if ib > ie {
                return Err(format!("host range [{nrange}] must have begin <= end"));
            }
            let step = step
                .ok_or_else(|| format!("host range [{nrange}] has a step that is not a number"))?;
            if step == 0 {
                return Err(format!("host range [{nrange}] cannot have a step of 0"));
            }
            if step < 0 {
                vec![]
            } else {
                ASCII_LETTERS[ib..=ie]
                    .chars()
                    .step_by(step as usize)
                    .map(|c| c.to_string())
                    .collect()
            }
        }
        _ => {
            let (b, e) = match (py_int(beg), py_int(end)) {
                (Some(b), Some(e)) => (b, e),
                _ => {
                    return Err(format!(
                        "host range [{nrange}] must be numbers ([1:9], [01:10]) or single letters ([a:f])"
                    ))
                }
            };
            let step = step
                .ok_or_else(|| format!("host range [{nrange}] has a step that is not a number"))?;
            if step == 0 {
                return Err(format!("host range [{nrange}] cannot have a step of 0"));
            }
            let mut v = Vec::new();
            let stop = e + 1;
            let mut i = b;
            while (step > 0 && i < stop) || (step < 0 && i > stop) {
                v.push(i.to_string());
                if v.len() > MAX_HOSTS {
                    return Err(format!(
                        "host range [{nrange}] expands to more than {MAX_HOSTS} hosts"
                    ));
                }
                i += step;
            }
            v
        }
    };
    let mut out = Vec::new();
    for r in seq {
        let name = format!("{head}{}{tail}", fill(r));
        if name.contains('[') {
            out.extend(expand_hostname_range(&name)?);
        } else {
            out.push(name);
        }
        if out.len() > MAX_HOSTS {
            return Err(format!(
                "host range '{line}' expands to more than {MAX_HOSTS} hosts"
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(s: &str) -> Vec<String> {
        expand_hostpattern(s)
            .map(|x| x.0)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ranges_expand_like_ansible() {
        assert_eq!(exp("w[01:04]"), ["w01", "w02", "w03", "w04"]);
        assert_eq!(exp("pi-[a:c]"), ["pi-a", "pi-b", "pi-c"]);
        assert_eq!(exp("n[0:10:5]"), ["n0", "n5", "n10"]);
        assert_eq!(
            exp("n[1:3]x[a:b]"),
            ["n1xa", "n1xb", "n2xa", "n2xb", "n3xa", "n3xb"]
        );
        assert_eq!(exp("db-[:2]"), ["db-0", "db-1", "db-2"]);
        assert_eq!(exp("h[y:B]"), ["hy", "hz", "hA", "hB"]);
        assert_eq!(exp("h[001:010:4]"), ["h001", "h005", "h009"]);
        assert_eq!(exp("x[5:1]"), Vec::<String>::new());
    }

    #[test]
    fn bad_ranges_are_errors() {
        for bad in [
            "w[1:]",
            "w[01:100]",
            "w[1]",
            "w[1:2:3:4]",
            "w[a:1]",
            "w[1:2",
            "w[c:a]",
            "w[1:5:0]",
        ] {
            assert!(expand_hostpattern(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn ports_are_split_off() {
        assert_eq!(
            parse_address("db1:2222"),
            Some(("db1".into(), Some("2222".into())))
        );
        assert_eq!(
            parse_address("10.0.0.1:22"),
            Some(("10.0.0.1".into(), Some("22".into())))
        );
        assert_eq!(
            parse_address("[fe80::1]:22"),
            Some(("fe80::1".into(), Some("22".into())))
        );
        assert_eq!(parse_address("fe80::1"), Some(("fe80::1".into(), None)));
        assert_eq!(
            parse_address("w[01:04].lan:22"),
            Some(("w[01:04].lan".into(), Some("22".into())))
        );
        assert_eq!(parse_address("host_"), None);
        assert_eq!(parse_address("a b"), None);
    }
}

#[cfg(test)]
mod limits {
    #[test]
    fn huge_range_products_are_refused() {
        assert!(super::expand_hostpattern("h[0:999999][0:999999]").is_err());
    }
}
