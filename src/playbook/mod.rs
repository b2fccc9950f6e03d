//! The playbook loader: YAML playbooks in Ansible's syntax → [`ast`], with file:line:column on
//! every error, unknown keys and modules refused before any host is touched.

pub mod ast;
