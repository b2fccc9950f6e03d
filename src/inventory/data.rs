//! Groups, hosts and their relations, with the rules of Ansible's
//! `inventory/data.py`, `group.py` and `host.py`.

use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

pub(crate) type GroupId = usize;
pub(crate) type HostId = usize;

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub name: String,
    /// Longest path from `all` (Ansible's `depth`).
    pub depth: usize,
    /// `ansible_group_priority` (default 1).
    pub priority: i64,
    /// Hosts listed directly in this group, in order.
    pub hosts: Vec<HostId>,
    pub children: Vec<GroupId>,
    pub parents: Vec<GroupId>,
    /// Variables from the inventory file itself.
    pub vars: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub name: String,
    /// Variables from the inventory file itself (host lines, YAML host bodies, `:port`).
    pub vars: Map<String, Value>,
    /// Groups that list this host directly.
    pub direct: Vec<GroupId>,
    /// The source that first defined the host (Ansible's `inventory_file`).
    pub source: Option<PathBuf>,
}

/// What can go wrong while building the graph; the parsers add file and line.
#[derive(Debug, Clone)]
pub(crate) enum DataError {
    EmptyGroupName,
    EmptyHostName,
    UnknownGroup(String),
    NotHostNorGroup(String),
    SelfChild(String),
    Cycle { parent: String, child: String },
    BadPriority(String),
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataError::EmptyGroupName => write!(f, "a group name cannot be empty"),
            DataError::EmptyHostName => write!(f, "a host name cannot be empty"),
            DataError::UnknownGroup(g) => write!(f, "'{g}' is not a known group"),
            DataError::NotHostNorGroup(c) => write!(f, "'{c}' is not a known host nor group"),
            DataError::SelfChild(g) => write!(f, "group '{g}' cannot be a child of itself"),
            DataError::Cycle { parent, child } => write!(
                f,
                "adding group '{child}' as a child of '{parent}' makes a loop ('{child}' is already an ancestor of '{parent}'); remove one of the two :children entries"
            ),
            DataError::BadPriority(v) => {
                write!(f, "ansible_group_priority must be an integer, got {v}")
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Data {
    pub groups: Vec<Group>,
    pub group_ix: HashMap<String, GroupId>,
    pub hosts: Vec<Host>,
    pub host_ix: HashMap<String, HostId>,
    /// The file being parsed (becomes a new host's `inventory_file`).
    pub current_source: Option<PathBuf>,
}

pub(crate) const ALL: GroupId = 0;
pub(crate) const UNGROUPED: GroupId = 1;

impl Data {
    pub fn new() -> Data {
        let mut d = Data {
            groups: Vec::new(),
            group_ix: HashMap::new(),
            hosts: Vec::new(),
            host_ix: HashMap::new(),
            current_source: None,
        };
        // Both names are non-empty and new: these cannot fail.
        let _ = d.add_group("all");
        let _ = d.add_group("ungrouped");
        let _ = d.add_child_group(ALL, UNGROUPED);
        d
    }

    pub fn group(&self, name: &str) -> Option<GroupId> {
        self.group_ix.get(name).copied()
    }

    pub fn host(&self, name: &str) -> Option<HostId> {
        self.host_ix.get(name).copied()
    }

    pub fn add_group(&mut self, name: &str) -> Result<GroupId, DataError> {
        if name.is_empty() {
            return Err(DataError::EmptyGroupName);
        }
        if let Some(g) = self.group(name) {
            return Ok(g);
        }
        self.groups.push(Group {
            name: name.to_string(),
            depth: 0,
            priority: 1,
            hosts: Vec::new(),
            children: Vec::new(),
            parents: Vec::new(),
            vars: Map::new(),
        });
        let id = self.groups.len() - 1;
        self.group_ix.insert(name.to_string(), id);
        Ok(id)
    }

    /// Ansible's `add_host(host, group, port)`: the port only counts when the
    /// host is new, and a port of 0 is ignored (`if port:`).
    pub fn add_host(
        &mut self,
        name: &str,
        group: Option<&str>,
        port: Option<&str>,
    ) -> Result<HostId, DataError> {
        if name.is_empty() {
            return Err(DataError::EmptyHostName);
        }
        let g = match group {
            Some(g) => Some(
                self.group(g)
                    .ok_or_else(|| DataError::UnknownGroup(g.to_string()))?,
            ),
            None => None,
        };
        let h = match self.host(name) {
            Some(h) => h,
            None => {
                let mut vars = Map::new();
                if let Some(p) = port {
                    let digits = p.trim_start_matches('0');
                    if !digits.is_empty() {
                        let v = match digits.parse::<i64>() {
                            Ok(n) => Value::from(n),
                            Err(_) => super::pyvalue::float_to_json(
                                digits.parse::<f64>().unwrap_or(f64::NAN),
                            ),
                        };
                        vars.insert("ansible_port".into(), v);
                    }
                }
                self.hosts.push(Host {
                    name: name.to_string(),
                    vars,
                    direct: Vec::new(),
                    source: self.current_source.clone(),
                });
                let id = self.hosts.len() - 1;
                self.host_ix.insert(name.to_string(), id);
                id
            }
        };
        if let Some(g) = g {
            self.group_add_host(g, h);
        }
        Ok(h)
    }

    fn group_add_host(&mut self, g: GroupId, h: HostId) -> bool {
        if self.groups[g].hosts.contains(&h) {
            return false;
        }
        self.groups[g].hosts.push(h);
        self.hosts[h].direct.push(g);
        true
    }

    fn group_remove_host(&mut self, g: GroupId, h: HostId) {
        self.groups[g].hosts.retain(|x| *x != h);
        self.hosts[h].direct.retain(|x| *x != g);
    }

    /// Ansible's `set_variable(entity, ...)`: a group of that name wins over a host.
    pub fn set_variable(&mut self, entity: &str, key: &str, value: Value) -> Result<(), DataError> {
        if let Some(g) = self.group(entity) {
            if key == "ansible_group_priority" {
                self.groups[g].priority =
                    py_int(&value).ok_or_else(|| DataError::BadPriority(value.to_string()))?;
            } else {
                self.groups[g].vars.insert(key.to_string(), value);
            }
            Ok(())
        } else if let Some(h) = self.host(entity) {
            self.hosts[h].vars.insert(key.to_string(), value);
            Ok(())
        } else {
            Err(DataError::NotHostNorGroup(entity.to_string()))
        }
    }

    /// Ansible's `add_child(group, child)`: `child` is a group or a host.
    pub fn add_child(&mut self, group: &str, child: &str) -> Result<(), DataError> {
        let g = self
            .group(group)
            .ok_or_else(|| DataError::UnknownGroup(group.to_string()))?;
        if let Some(c) = self.group(child) {
            self.add_child_group(g, c)
        } else if let Some(h) = self.host(child) {
            self.group_add_host(g, h);
            Ok(())
        } else {
            Err(DataError::NotHostNorGroup(child.to_string()))
        }
    }

    pub fn add_child_group(&mut self, parent: GroupId, child: GroupId) -> Result<(), DataError> {
        if parent == child {
            return Err(DataError::SelfChild(self.groups[parent].name.clone()));
        }
        if self.groups[parent].children.contains(&child) {
            return Ok(());
        }
        if self.ancestors(parent).contains(&child) {
            return Err(DataError::Cycle {
                parent: self.groups[parent].name.clone(),
                child: self.groups[child].name.clone(),
            });
        }
        self.groups[parent].children.push(child);
        let d = self.groups[parent].depth + 1;
        if self.groups[child].depth < d {
            self.groups[child].depth = d;
        }
        self.propagate_depth(child);
        if !self.groups[child].parents.contains(&parent) {
            self.groups[child].parents.push(parent);
        }
        Ok(())
    }

    fn propagate_depth(&mut self, g: GroupId) {
        let mut queue = VecDeque::from([g]);
        while let Some(x) = queue.pop_front() {
            let d = self.groups[x].depth + 1;
            for c in self.groups[x].children.clone() {
                if self.groups[c].depth < d {
                    self.groups[c].depth = d;
                    queue.push_back(c);
                }
            }
        }
    }

    pub fn ancestors(&self, g: GroupId) -> HashSet<GroupId> {
        let mut seen = HashSet::new();
        let mut stack: Vec<GroupId> = self.groups[g].parents.clone();
        while let Some(p) = stack.pop() {
            if seen.insert(p) {
                stack.extend(self.groups[p].parents.iter().copied());
            }
        }
        seen
    }

    /// The group and every group below it, parents before children.
    pub fn descendants_ordered(&self, g: GroupId) -> Vec<GroupId> {
        let mut out = vec![g];
        let mut seen: HashSet<GroupId> = HashSet::from([g]);
        let mut queue = VecDeque::from([g]);
        while let Some(x) = queue.pop_front() {
            for &c in &self.groups[x].children {
                if seen.insert(c) {
                    out.push(c);
                    queue.push_back(c);
                }
            }
        }
        out
    }

    /// Ansible's `Group.get_hosts()`: the hosts of the group and of every group
    /// below it, first appearance wins.
    pub fn group_hosts(&self, g: GroupId) -> Vec<HostId> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for d in self.descendants_ordered(g) {
            for &h in &self.groups[d].hosts {
                if seen.insert(h) {
                    out.push(h);
                }
            }
        }
        out
    }

    /// Ansible's `Host.get_groups()`: the groups that list the host and all their ancestors.
    pub fn host_groups(&self, h: HostId) -> Vec<GroupId> {
        let mut set: Vec<GroupId> = Vec::new();
        for &g in &self.hosts[h].direct {
            let mut anc: Vec<GroupId> = self.ancestors(g).into_iter().collect();
            anc.sort_unstable();
            for a in anc {
                if !set.contains(&a) {
                    set.push(a);
                }
            }
            if !set.contains(&g) {
                set.push(g);
            }
        }
        set
    }

    /// Ansible's `reconcile_inventory()`: top-level groups go under `all`; hosts in
    /// no group go to `ungrouped`; hosts in a real group leave `ungrouped`.
    pub fn reconcile(&mut self) {
        self.current_source = None;
        for g in 0..self.groups.len() {
            if g != ALL && self.groups[g].parents.is_empty() {
                // `all` is never below another group, so this cannot loop.
                let _ = self.add_child_group(ALL, g);
            }
        }
        for h in 0..self.hosts.len() {
            let mine = self.host_groups(h);
            if mine.contains(&UNGROUPED) {
                if mine.iter().any(|g| *g != ALL && *g != UNGROUPED) {
                    self.group_remove_host(UNGROUPED, h);
                }
            } else if mine.is_empty() || (mine.len() == 1 && mine[0] == ALL) {
                self.group_add_host(UNGROUPED, h);
            }
        }
    }

    /// Ansible's `sort_groups`: by depth, then priority, then name.
    pub fn sort_groups(&self, groups: &mut [GroupId]) {
        groups.sort_by(|a, b| {
            let (ga, gb) = (&self.groups[*a], &self.groups[*b]);
            (ga.depth, ga.priority, &ga.name).cmp(&(gb.depth, gb.priority, &gb.name))
        });
    }
}

/// Python's `int(value)` as `set_priority(int(value))` applies it.
fn py_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::String(s) => {
            let t = s.trim().replace('_', "");
            t.parse::<i64>().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_longest_path_and_cycles_are_refused() {
        let mut d = Data::new();
        for g in ["a", "b", "c"] {
            d.add_group(g).ok();
        }
        d.add_child("a", "b").ok();
        d.add_child("b", "c").ok();
        d.reconcile();
        let c = d.group("c").unwrap_or(0);
        assert_eq!(d.groups[c].depth, 3);
        assert!(matches!(
            d.add_child("c", "a"),
            Err(DataError::Cycle { .. })
        ));
        assert!(matches!(
            d.add_child("a", "a"),
            Err(DataError::SelfChild(_))
        ));
    }

    #[test]
    fn reconcile_moves_hosts_in_and_out_of_ungrouped() {
        let mut d = Data::new();
        d.add_group("web").ok();
        d.add_host("h1", Some("ungrouped"), None).ok();
        d.add_host("h1", Some("web"), None).ok();
        d.add_host("h2", Some("all"), None).ok();
        d.add_host("h3", None, Some("2222")).ok();
        d.reconcile();
        let names = |hs: &[HostId]| {
            hs.iter()
                .map(|h| d.hosts[*h].name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&d.groups[UNGROUPED].hosts), ["h2", "h3"]);
        assert_eq!(
            d.hosts[2].vars.get("ansible_port"),
            Some(&Value::from(2222))
        );
    }
}
