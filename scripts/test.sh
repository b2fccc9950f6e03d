#!/usr/bin/env bash
# The test command: formatting, lints, unit tests and integration tests against real hosts
# (throwaway sshd servers on 127.0.0.x and lab hosts made with systemd-nspawn). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export ANSIBLE_INVENTORY="${HOMELAB_CACHE_DIR:-$HOME/.cache/homelab}/ansible-venv/bin/ansible-inventory"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked -- --test-threads=4
