//! homelab: an agentless provisioning tool.
//!
//! The pipeline, one folder a stage:
//! inventory → (playbook loader → variables/templates: issue 3) → engine (forks, fan-out) →
//! modules → transport (SSH via russh; a local transport for unit tests) → output.
//! `lab` makes real test hosts (systemd-nspawn) on this machine.

pub mod engine;
pub mod inventory;
pub mod lab;
pub mod modules;
pub mod output;
pub mod playbook;
pub mod template;
pub mod transport;
