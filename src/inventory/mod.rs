//! Ansible-compatible inventory (INI and YAML). Being written.

pub mod cli;
