#!/usr/bin/env bash
# Installs what homelab's lab and tests need on a fresh Debian machine (run as root).
# Idempotent and quick when everything is there already.
set -euo pipefail

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/deps.sh needs root (apt-get, and the lab makes bridges and containers): run it with sudo" >&2
    exit 1
  fi
}

# Debian packages: the lab (debootstrap, systemd-nspawn, nftables, zstd, iproute2), the test sshd
# servers and clients (openssh-server, openssh-client), and python3-venv for the inventory oracle.
pkgs=(debootstrap systemd-container nftables zstd iproute2 openssh-client openssh-server ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  need_root
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The distribution's sshd must not hold port 22 on every address: the tests start their own.
mkdir -p /run/sshd

# Rust components for the checks.
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# ansible-core from PyPI: the oracle that `homelab inventory --list` is compared with.
venv="${HOMELAB_CACHE_DIR:-$HOME/.cache/homelab}/ansible-venv"
if [ ! -x "$venv/bin/ansible-inventory" ]; then
  echo "installing ansible-core (test oracle) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "ansible-core==2.19.*"
fi
