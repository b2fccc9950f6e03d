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

#[test]
fn explore() {
    let t = Templar::new();
    let v = vars(
        json!({"x": "{{ y }}", "y": "{{ x }}", "a": "{{ nope }}", "d": {"k": 1}, "l": [1,2], "s": "hello"}),
    );
    for s in [
        "{{ x }}",
        "{{ a }}",
        "{{ a | default(3) }}",
        "{{ a is defined }}",
        "{{ foo }}",
        "{{ foo.bar | default(1) }}",
        "{{ foo['x'][0] is defined }}",
        "{{ d.z }}",
        "{{ d.k.z | default(5) }}",
        "{% if foo %}a{% endif %}",
        "{% for i in foo %}{% endfor %}",
        "{{ foo | upper }}",
        "x{{ None }}y",
        "x{{ [1,'a'] }}y",
        "{{ d.items() | list }}",
        "{{ s.split('l') }}",
        "{{ s.startswith('h') }}",
        "{{ d == {'k': 1} }}",
        "{{ l + [3] }}",
        "{{ 1.0 }}",
        "{{ (1,2) }}",
        "{% if true %}{{ [1,2] }}{% endif %}",
        "{{ 1 }}{{ 2 }}",
        "{{ foo | nofilter }}",
        "{{ 1 +  }}",
        "{{ d.keys() | list }}",
        "{{ omit }}",
        "{{ vars['s'] }}",
        "{{ l | map('string') | list }}",
    ] {
        println!("{s:?} => {:?}", t.render(s, &v));
    }
    println!("{:?}", t.eval_bool("s", &v));
    println!("{:?}", t.eval_bool("undefined_x", &v));
    println!("{:?}", t.eval_bool("{{ 1 == 1 }}", &v));
    println!("{:?}", t.render_file("t.j2", "a\n{{ foo }}\n", &v));
}
