use super::*;
use serde_json::json;

fn vars(v: serde_json::Value) -> Vars {
    Vars::new(v.as_object().cloned().unwrap_or_default())
}

#[test]
fn smoke() {
    let t = Templar::new();
    let v = vars(json!({"a": "{{ b }}", "b": "{{ c | upper }}", "c": "hi", "l": [1, 2]}));
    assert_eq!(t.render("{{ a }}", &v).unwrap(), json!("HI"));
    assert_eq!(t.render("{{ l }}", &v).unwrap(), json!([1, 2]));
}
