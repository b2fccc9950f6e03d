#!/usr/bin/env bash
# The main job on the built-in default: a local lab of 3 real Debian hosts (systemd-nspawn),
# reached over SSH. Run as root on a Debian machine. The lab stays up; `homelab lab down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked
hl=target/release/homelab
"$hl" lab up 3
"$hl" ping -i lab
"$hl" run -i lab all -m shell -a 'hostname; sudo -n true && echo sudo ok' --become
"$hl" inventory -i lab --graph
