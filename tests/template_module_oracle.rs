//! The template module's rendering, byte for byte against ansible-core 2.19
//! (`ansible localhost -m template -a src=fixture.j2 -e @vars.json`).

use homelab::template::{Templar, Vars};

const TEMPLATE: &str = r###"# {{ title | upper }}
{# a comment line #}
{% for u in users %}
user {{ u.name }}{% if u.admin | default(false) %} (admin){% endif %}

  groups: {{ u.groups | default([]) | join(', ') }}
{% endfor %}
{% if settings is defined %}
{% for k, v in settings.items() %}
{{ k }} = {{ v }}
{% endfor %}
{% endif %}
    {% if true %}indented block tag{% endif %}

list: {{ users | map(attribute='name') | list }}
dict: {{ settings }}
none: [{{ nothing }}]
bool: {{ flag }} {{ not flag }}
num: {{ 1.5 * 2 }} {{ 7 // 2 }} {{ 7 / 2 }}
json: {{ settings | to_json }}
yaml:
{{ settings | to_nice_yaml(indent=2) | indent(2, true) }}
{%- raw %}
raw {{ not rendered }}
{% endraw %}
{{ '%-5s|' | format('ab') }}
missing: {{ ansible_nothing | default('none') }} {{ users[5] is defined }}
whitespace {{- '  trimmed  ' -}} end
{% set total = users | length %}
total={{ total }}
path: {{ '/etc/app/conf.d/x.conf' | dirname }} {{ derived }}
backslash: {{ 'a\\b' }} {{ "tab\tx" }}
last line without newline at end


"###;

const VARS: &str = r###"{"title": "hello", "users": [{"name": "alice", "admin": true, "groups": ["wheel", "dev"]}, {"name": "bob"}], "settings": {"port": 8080, "debug": false, "name": "app"}, "nothing": null, "flag": true, "derived": "{{ title }}-{{ users | length }}"}"###;

const ANSIBLE_OUTPUT: &str = r###"# HELLO
user alice (admin)
  groups: wheel, dev
user bob
  groups: 
port = 8080
debug = False
name = app
    indented block tag
list: ['alice', 'bob']
dict: {'port': 8080, 'debug': False, 'name': 'app'}
none: []
bool: True False
num: 3.0 3 3.5
json: {"port": 8080, "debug": false, "name": "app"}
yaml:
  debug: false
  name: app
  port: 8080

raw {{ not rendered }}
ab   |
missing: none False
whitespace  trimmed  end
total=2
path: /etc/app/conf.d hello-2
backslash: a\b tab	x
last line without newline at end


"###;

#[test]
fn template_file_renders_like_ansibles_template_module() {
    let vars: serde_json::Value = serde_json::from_str(VARS).unwrap();
    let vars = Vars::new(vars.as_object().unwrap().clone());
    let out = Templar::new()
        .render_file("fixture.j2", TEMPLATE, &vars)
        .unwrap();
    assert_eq!(out, ANSIBLE_OUTPUT);
}
