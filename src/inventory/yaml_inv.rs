//! YAML (and JSON) inventories, following Ansible's `plugins/inventory/yaml.py`.
//!
//! ```yaml
//! all:
//!   vars: {ntp: pool.ntp.org}
//!   hosts:
//!     gateway:
//!   children:
//!     web:
//!       hosts:
//!         web[01:04]:        # ranges work here too
//!           http_port: 80
//! ```

use super::address::expand_hostpattern;
use super::data::{Data, DataError};
use super::pyvalue::PyVal;
use super::yaml::{self, YamlError};

/// Why a file was not a YAML inventory.
#[derive(Debug)]
pub(crate) enum YamlInvError {
    /// The YAML itself is broken (position from the parser).
    Syntax(YamlError),
    /// Empty, or not a mapping: probably not meant as YAML (INI is tried next).
    NotInventory(String),
    /// A mapping of groups, but something in it is wrong.
    Structure(String),
    Data(DataError),
}

impl From<DataError> for YamlInvError {
    fn from(e: DataError) -> Self {
        YamlInvError::Data(e)
    }
}

pub(crate) fn parse(
    data: &mut Data,
    text: &str,
    warnings: &mut Vec<String>,
) -> Result<(), YamlInvError> {
    let doc = yaml::load(text).map_err(YamlInvError::Syntax)?;
    let doc = match doc {
        Some(d) if d.is_truthy() => d,
        _ => return Err(YamlInvError::NotInventory("the file is empty".into())),
    };
    let PyVal::Dict(groups) = doc else {
        return Err(YamlInvError::NotInventory(format!(
            "a YAML inventory must be a mapping of group names, but this file holds a {}",
            doc.type_name()
        )));
    };
    if let Some((_, p)) = groups
        .iter()
        .find(|(k, v)| k.as_str() == Some("plugin") && v.is_truthy())
    {
        let name = p
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", p.to_json()));
        return Err(YamlInvError::Structure(format!(
            "this is an inventory plugin configuration (plugin: {name}); homelab reads INI and YAML inventories only"
        )));
    }
    let mut p = YamlInv { data, warnings };
    for (name, body) in &groups {
        p.parse_group(name, body)?;
    }
    Ok(())
}

struct YamlInv<'a> {
    data: &'a mut Data,
    warnings: &'a mut Vec<String>,
}

fn describe(v: &PyVal) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => super::output::py_repr(&v.to_json()),
    }
}

impl YamlInv<'_> {
    /// Returns the group name (Ansible's `_parse_group` return value).
    fn parse_group(&mut self, name: &PyVal, body: &PyVal) -> Result<Option<String>, YamlInvError> {
        let body_pairs = match body {
            PyVal::Dict(pairs) => Some(pairs),
            PyVal::None => None,
            _ => {
                self.warnings.push(format!(
                    "Skipping '{}' as this is not a valid group definition",
                    describe(name)
                ));
                return Ok(name.as_str().map(str::to_string));
            }
        };
        let Some(group) = name.as_str() else {
            return Err(YamlInvError::Structure(format!(
                "group name {} must be a string; quote it",
                describe(name)
            )));
        };
        if group.is_empty() {
            return Err(YamlInvError::Structure(
                "a group name cannot be empty".into(),
            ));
        }
        let group = group.to_string();
        self.data.add_group(&group)?;
        let Some(pairs) = body_pairs else {
            return Ok(Some(group));
        };
        // Sections given as a bare string mean {string: null}.
        let mut pairs: Vec<(PyVal, PyVal)> = pairs.clone();
        for (k, v) in pairs.iter_mut() {
            let Some(section) = k.as_str() else { continue };
            if !matches!(section, "vars" | "children" | "hosts") {
                continue;
            }
            if let Some(s) = v.as_str() {
                *v = PyVal::Dict(vec![(PyVal::Str(s.to_string()), PyVal::None)]);
            }
            if !matches!(v, PyVal::Dict(_) | PyVal::None) {
                return Err(YamlInvError::Structure(format!(
                    "invalid \"{section}\" entry for group \"{group}\": it must be a mapping, found a {}",
                    v.type_name()
                )));
            }
        }
        for (k, v) in &pairs {
            let entries = match v {
                PyVal::Dict(e) => e,
                PyVal::None => continue,
                other => {
                    self.warnings.push(format!(
                        "Skipping key ({}) in group ({group}) as it is not a mapping, it is a {}",
                        describe(k),
                        other.type_name()
                    ));
                    continue;
                }
            };
            match k.as_str() {
                Some("vars") => {
                    for (var, value) in entries {
                        self.data.set_variable(&group, &var.json_key(), value.to_json())?;
                    }
                }
                Some("children") => {
                    for (sub, sub_body) in entries {
                        match self.parse_group(sub, sub_body)? {
                            Some(subname) => self.data.add_child(&group, &subname)?,
                            None => {
                                return Err(YamlInvError::Structure(format!(
                                    "child {} of group \"{group}\" is not a known host nor group",
                                    describe(sub)
                                )))
                            }
                        }
                    }
                }
                Some("hosts") => {
                    for (pattern, host_body) in entries {
                        let Some(pattern) = pattern.as_str() else {
                            return Err(YamlInvError::Structure(format!(
                                "host pattern {} in group \"{group}\" must be a string; enclose numbers in quotes",
                                describe(pattern)
                            )));
                        };
                        let (hosts, port) = expand_hostpattern(pattern)
                            .map_err(|e| YamlInvError::Structure(format!("host '{pattern}' in group \"{group}\": {e}")))?;
                        let vars = if host_body.is_truthy() { host_body.clone() } else { PyVal::Dict(vec![]) };
                        let PyVal::Dict(vars) = vars else {
                            return Err(YamlInvError::Structure(format!(
                                "host '{pattern}' in group \"{group}\" must be followed by a mapping of variables (or nothing), found a {}",
                                vars.type_name()
                            )));
                        };
                        for h in &hosts {
                            self.data.add_host(h, Some(&group), port.as_deref())?;
                            for (var, value) in &vars {
                                self.data.set_variable(h, &var.json_key(), value.to_json())?;
                            }
                        }
                    }
                }
                _ => self.warnings.push(format!(
                    "Skipping unexpected key ({}) in group ({group}), only \"vars\", \"children\" and \"hosts\" are valid",
                    describe(k)
                )),
            }
        }
        Ok(Some(group))
    }
}
