//! Host patterns, as Ansible's `inventory/manager.py` evaluates them.
//!
//! `all`, `*`, `web*`, `web:db` / `web,db` (union), `web:&prod` (intersection),
//! `web:!web2` (exclusion), `~web\d+` (regex from the start of the name),
//! `web[0]`, `web[-1]`, `web[1:3]` (inclusive, Ansible's slices), a host or a group name.

use super::address::parse_address;
use super::data::{Data, HostId, ALL};
use super::InventoryError;
use regex::Regex;
use std::collections::HashSet;

/// Names Ansible treats as the implicit localhost when the inventory lacks them.
pub(crate) const LOCALHOST: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// A selected host: one from the inventory, or the implicit localhost.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Pick {
    Host(HostId),
    Implicit(String),
}

/// Ansible's `split_host_pattern`: commas always split; colons split unless the
/// whole text is one address (`fe80::1`, `host:22`); brackets are kept together.
pub(crate) fn split_host_pattern(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if parse_address(pattern).is_some() {
        vec![pattern.to_string()]
    } else {
        static_re(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
            .find_iter(pattern)
            .map(|m| m.as_str().to_string())
            .collect()
    };
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn static_re(s: &str) -> Regex {
    Regex::new(s).unwrap_or_else(|e| panic!("built-in regex {s}: {e}"))
}

/// Ansible's `order_patterns`: plain terms, then `&` terms, then `!` terms; `all` when only modifiers.
pub(crate) fn order_patterns(patterns: Vec<String>) -> Vec<String> {
    let mut regular = Vec::new();
    let mut inter = Vec::new();
    let mut excl = Vec::new();
    for p in patterns {
        if p.starts_with('!') {
            excl.push(p);
        } else if p.starts_with('&') {
            inter.push(p);
        } else if !p.is_empty() {
            regular.push(p);
        }
    }
    if regular.is_empty() {
        regular.push("all".to_string());
    }
    regular.into_iter().chain(inter).chain(excl).collect()
}

/// Python's `fnmatch.translate`, for Rust's regex syntax (anchored at both ends).
pub(crate) fn glob_to_regex(pat: &str) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let n = chars.len();
    let mut res = String::from("^(?s:");
    let mut i = 0;
    while i < n {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                if !res.ends_with(".*") {
                    res.push_str(".*");
                }
            }
            '?' => res.push('.'),
            '[' => {
                let mut j = i;
                if j < n && chars[j] == '!' {
                    j += 1;
                }
                if j < n && chars[j] == ']' {
                    j += 1;
                }
                while j < n && chars[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    res.push_str("\\[");
                    continue;
                }
                let stuff: Vec<char> = chars[i..j].to_vec();
                i = j + 1;
                if stuff == ['!'] {
                    res.push('.');
                    continue;
                }
                let (negate, body) = match stuff.first() {
                    Some('!') => (true, &stuff[1..]),
                    _ => (false, &stuff[..]),
                };
                let mut class = String::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        let (a, b) = (body[k], body[k + 2]);
                        if a <= b {
                            class.push_str(&regex::escape(&a.to_string()));
                            class.push('-');
                            class.push_str(&regex::escape(&b.to_string()));
                        }
                        k += 3;
                    } else {
                        class.push_str(&regex::escape(&body[k].to_string()));
                        k += 1;
                    }
                }
                if class.is_empty() {
                    // An empty set never matches (or, negated, matches any one character).
                    res.push_str(if negate { "." } else { "[^\\s\\S]" });
                } else {
                    res.push('[');
                    if negate {
                        res.push('^');
                    }
                    res.push_str(&class);
                    res.push(']');
                }
            }
            other => res.push_str(&regex::escape(&other.to_string())),
        }
    }
    res.push_str(")$");
    res
}

fn compile(pattern: &str) -> Result<Regex, InventoryError> {
    let src = match pattern.strip_prefix('~') {
        Some(re) => format!("^(?:{re})"),
        None => glob_to_regex(pattern),
    };
    Regex::new(&src).map_err(|e| InventoryError::BadPattern {
        pattern: pattern.to_string(),
        reason: format!("not a valid regular expression: {e}"),
    })
}

/// `(start, Some(end))` for `[a:b]`/`[a:]`/`[a-b]`, `(index, None)` for `[i]`.
type Subscript = (i64, Option<i64>);

fn split_subscript(pattern: &str) -> (String, Option<Subscript>) {
    if pattern.starts_with('~') {
        return (pattern.to_string(), None);
    }
    let re = static_re(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$");
    let Some(c) = re.captures(pattern) else {
        return (pattern.to_string(), None);
    };
    let base = c.get(1).map_or("", |m| m.as_str()).to_string();
    let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<i64>().ok());
    if c.get(2).is_some() {
        match num(2) {
            Some(i) => (base, Some((i, None))),
            None => (pattern.to_string(), None),
        }
    } else {
        let start = num(3).unwrap_or(0);
        let end = match c.get(5).map(|m| m.as_str()) {
            Some("") | None => -1,
            Some(e) => e.parse().unwrap_or(-1),
        };
        (base, Some((start, Some(end))))
    }
}

/// Python slicing `hosts[start:end + 1]` / indexing `hosts[start]`.
fn apply_subscript(
    pattern: &str,
    hosts: Vec<Pick>,
    sub: Option<Subscript>,
) -> Result<Vec<Pick>, InventoryError> {
    let Some((start, end)) = sub else {
        return Ok(hosts);
    };
    if hosts.is_empty() {
        return Ok(hosts);
    }
    let len = hosts.len() as i64;
    let norm = |i: i64| if i < 0 { (i + len).max(0) } else { i.min(len) };
    match end {
        // Ansible's quirk: `[x:0]` is treated like `[x]` (`if end:` is false for 0).
        Some(e) if e != 0 => {
            let e = if e == -1 { len - 1 } else { e };
            let (s, stop) = (norm(start), norm(e + 1));
            Ok(if s < stop {
                hosts[s as usize..stop as usize].to_vec()
            } else {
                vec![]
            })
        }
        _ => {
            let i = if start < 0 { start + len } else { start };
            if i < 0 || i >= len {
                return Err(InventoryError::BadPattern {
                    pattern: pattern.to_string(),
                    reason: format!("index {start} is out of range: the pattern matches {len} host(s), counted from 0"),
                });
            }
            Ok(vec![hosts[i as usize].clone()])
        }
    }
}

pub(crate) struct Evaluator<'a> {
    pub data: &'a Data,
}

impl Evaluator<'_> {
    /// Every host a pattern list selects, in Ansible's order, deduplicated.
    pub fn evaluate(&self, patterns: &[String]) -> Result<Vec<Pick>, InventoryError> {
        self.evaluate_with(patterns, None)
    }

    /// [`Self::evaluate`]; with `ignored`, a term that matches nothing is set aside there
    /// (as [`InventoryError::NoMatch`]) instead of failing, as Ansible does for a play's `hosts:`.
    pub fn evaluate_with(
        &self,
        patterns: &[String],
        mut ignored: Option<&mut Vec<InventoryError>>,
    ) -> Result<Vec<Pick>, InventoryError> {
        let patterns = order_patterns(patterns.to_vec());
        let mut hosts: Vec<Pick> = Vec::new();
        for p in &patterns {
            if let Some(h) = self.data.host(p) {
                hosts.push(Pick::Host(h));
                continue;
            }
            let that = match (self.match_one(p), ignored.as_deref_mut()) {
                (Err(e @ InventoryError::NoMatch { .. }), Some(ign)) => {
                    ign.push(e);
                    vec![]
                }
                (r, _) => r?,
            };
            if p.starts_with('!') {
                let that: HashSet<Pick> = that.into_iter().collect();
                hosts.retain(|h| !that.contains(h));
            } else if p.starts_with('&') {
                let that: HashSet<Pick> = that.into_iter().collect();
                hosts.retain(|h| that.contains(h));
            } else {
                let existing: HashSet<Pick> = hosts.iter().cloned().collect();
                hosts.extend(that.into_iter().filter(|h| !existing.contains(h)));
            }
        }
        let mut seen = HashSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        Ok(hosts)
    }

    fn match_one(&self, pattern: &str) -> Result<Vec<Pick>, InventoryError> {
        let pattern = pattern.strip_prefix(['&', '!']).unwrap_or(pattern);
        let (expr, sub) = split_subscript(pattern);
        let hosts = self.enumerate(&expr)?;
        apply_subscript(pattern, hosts, sub)
    }

    fn enumerate(&self, pattern: &str) -> Result<Vec<Pick>, InventoryError> {
        let data = self.data;
        let re = compile(pattern)?;
        let mut results: Vec<Pick> = Vec::new();
        let groups: Vec<usize> = (0..data.groups.len())
            .filter(|g| re.is_match(&data.groups[*g].name))
            .collect();
        for &g in &groups {
            results.extend(data.group_hosts(g).into_iter().map(Pick::Host));
        }
        if groups.is_empty() || pattern.starts_with('~') || pattern.contains(['.', '?', '*', '[']) {
            results.extend(
                (0..data.hosts.len())
                    .filter(|h| re.is_match(&data.hosts[*h].name))
                    .map(Pick::Host),
            );
        }
        if results.is_empty() && LOCALHOST.contains(&pattern) {
            results.push(Pick::Implicit(pattern.to_string()));
        }
        if results.is_empty() && groups.is_empty() && pattern != "all" {
            return Err(InventoryError::NoMatch {
                pattern: pattern.to_string(),
                suggestion: self.suggest(pattern),
            });
        }
        Ok(results)
    }

    fn suggest(&self, pattern: &str) -> Option<String> {
        if pattern.starts_with('~') || pattern.contains(['*', '?', '[']) {
            return None;
        }
        let names = self
            .data
            .groups
            .iter()
            .filter(|g| g.name != "ungrouped")
            .map(|g| g.name.as_str())
            .chain(self.data.hosts.iter().map(|h| h.name.as_str()));
        did_you_mean(pattern, names)
    }
}

/// The closest name, when it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    let w = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for n in names {
        let d = levenshtein(&w, &n.to_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    let (d, n) = best?;
    let len = word.chars().count().max(n.chars().count());
    (d > 0 && (d <= 2 || d * 3 <= len) && d < len).then(|| n.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `all` minus nothing: the hosts of the `all` group (Ansible's `get_hosts('all')`).
pub(crate) fn all_hosts(data: &Data) -> Vec<HostId> {
    data.group_hosts(ALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Data {
        let mut d = Data::new();
        for g in ["web", "db", "prod", "staging", "lab"] {
            d.add_group(g).ok();
        }
        for (h, g) in [
            ("w1", "web"),
            ("w2", "web"),
            ("w3", "web"),
            ("d1", "db"),
            ("d2", "db"),
        ] {
            d.add_host(h, Some(g), None).ok();
        }
        for (h, g) in [("w1", "prod"), ("d1", "prod"), ("w2", "staging")] {
            d.add_host(h, Some(g), None).ok();
        }
        d.add_child("lab", "web").ok();
        d.add_child("lab", "db").ok();
        d.add_host("solo", None, None).ok();
        d.reconcile();
        d
    }

    fn sel(d: &Data, p: &str) -> Result<Vec<String>, InventoryError> {
        let picks = Evaluator { data: d }.evaluate(&split_host_pattern(p))?;
        Ok(picks
            .into_iter()
            .map(|p| match p {
                Pick::Host(h) => d.hosts[h].name.clone(),
                Pick::Implicit(n) => n,
            })
            .collect())
    }

    #[test]
    fn patterns_select_like_ansible() {
        let d = inv();
        let s = |p: &str| sel(&d, p).unwrap_or_else(|e| panic!("{p}: {e}"));
        // Ansible's order: `all`'s children breadth first (ungrouped, prod, staging, lab, ...).
        assert_eq!(s("all"), ["solo", "w1", "d1", "w2", "w3", "d2"]);
        assert_eq!(s("*"), ["solo", "w1", "d1", "w2", "w3", "d2"]);
        assert_eq!(s("web"), ["w1", "w2", "w3"]);
        assert_eq!(s("web:db"), ["w1", "w2", "w3", "d1", "d2"]);
        assert_eq!(s("db,web"), ["d1", "d2", "w1", "w2", "w3"]);
        assert_eq!(s("lab:&prod"), ["w1", "d1"]);
        assert_eq!(s("web:!staging"), ["w1", "w3"]);
        assert_eq!(s("!web"), ["solo", "d1", "d2"]);
        assert_eq!(s("web[1-2]"), ["w2", "w3"]);
        assert_eq!(s("web[2:0]"), ["w3"]);
        assert_eq!(s("w*"), ["w1", "w2", "w3"]);
        assert_eq!(s("~[wd]1"), ["w1", "d1"]);
        assert_eq!(s("web[0]"), ["w1"]);
        assert_eq!(s("web[-1]"), ["w3"]);
        assert_eq!(s("web[1:]"), ["w2", "w3"]);
        assert_eq!(s("web[0:1]"), ["w1", "w2"]);
        assert_eq!(s("w2"), ["w2"]);
        assert_eq!(s("w2:w1:w2"), ["w2", "w1"]);
        assert_eq!(s("ungrouped"), ["solo"]);
        assert_eq!(s("localhost"), ["localhost"]);
        assert_eq!(s("web:&db"), Vec::<String>::new());
    }

    #[test]
    fn unknown_names_are_errors_with_suggestions() {
        let d = inv();
        match sel(&d, "web:dbb") {
            Err(InventoryError::NoMatch {
                pattern,
                suggestion,
            }) => {
                assert_eq!(pattern, "dbb");
                assert_eq!(suggestion.as_deref(), Some("db"));
            }
            other => panic!("expected NoMatch, got {other:?}"),
        }
        assert!(matches!(
            sel(&d, "zzz*"),
            Err(InventoryError::NoMatch {
                suggestion: None,
                ..
            })
        ));
        assert!(matches!(
            sel(&d, "web[7]"),
            Err(InventoryError::BadPattern { .. })
        ));
        assert!(matches!(
            sel(&d, "~(unclosed"),
            Err(InventoryError::BadPattern { .. })
        ));
    }

    #[test]
    fn splitting_keeps_addresses_and_ranges() {
        assert_eq!(split_host_pattern("a:b:&c"), ["a", "b", "&c"]);
        assert_eq!(split_host_pattern("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(split_host_pattern("fe80::1"), ["fe80::1"]);
        assert_eq!(split_host_pattern("web[1:2]:db"), ["web[1:2]", "db"]);
        assert_eq!(glob_to_regex("w[!0-2]*"), "^(?s:w[^0-2].*)$");
    }
}
