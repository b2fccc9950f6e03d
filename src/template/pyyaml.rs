//! YAML loading for `from_yaml`/`from_yaml_all`.
//!
//! The inventory's PyYAML-faithful loader (`inventory::yaml::load`) is private
//! to its module, so this uses serde-saphyr with YAML 1.1 booleans and legacy
//! octals, which is close to PyYAML for the data templates parse. Switch to
//! the inventory loader once it is exported.

pub(crate) fn load(text: &str) -> Result<serde_json::Value, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        return Ok(v);
    }
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    serde_saphyr::from_str_with_options::<serde_json::Value>(text, opts).map_err(|e| e.to_string())
}

pub(crate) fn load_all(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    serde_saphyr::from_multiple_with_options::<serde_json::Value>(text, opts)
        .map_err(|e| e.to_string())
}
