//! PyYAML's `yaml.dump` output for JSON-shaped data.

#[allow(dead_code)] // the emitter is not written yet
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub indent: usize,
    pub default_flow_style: Option<bool>,
    pub width: usize,
    pub sort_keys: bool,
    pub explicit_start: bool,
    pub explicit_end: bool,
    pub allow_unicode: bool,
}

pub(crate) fn dump(v: &serde_json::Value, _opts: &Options) -> String {
    format!("{v}\n")
}
