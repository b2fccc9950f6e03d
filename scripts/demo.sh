#!/usr/bin/env bash
# The main job on the built-in default: the cluster playbook on a local lab of 3 real Debian hosts
# (systemd-nspawn), reached over SSH. Run as root on a Debian machine. The lab stays up;
# `homelab lab down` removes it.
#   1. the whole plan of playbooks/cluster.yml (every phase, with diffs; nothing changes)
#   2. the phases the lab can run for real: prepare, kernel (containers: skipped), and the HA
#      load balancer (HAProxy + Corosync/Pacemaker + a floating IP), then the VIP answering
#   3. the same again: changed=0 everywhere
# The Kubernetes phases need snapd or the Kubernetes apt repository, which the lab (no
# internet) has not: they stay in the plan here; tests/lab_k8s.rs proves their logic with test
# doubles, and tests/smoke/virtualbox.sh runs everything on VirtualBox VMs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked
hl=target/release/homelab
inv=inventory/lab.ini
"$hl" lab up 3
"$hl" ping -i lab
echo "== homelab plan playbooks/cluster.yml -i $inv"
"$hl" plan playbooks/cluster.yml -i "$inv"
echo "== homelab apply playbooks/cluster.yml -i $inv --tags prepare,kernel,lb"
"$hl" apply playbooks/cluster.yml -i "$inv" --tags prepare,kernel,lb
vip=$(awk -F= '/^ha_vip=/{print $2}' "$inv")
for i in $(seq 1 30); do
  if who=$(exec 3<>"/dev/tcp/$vip/8404" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && tail -n 1 <&3); then
    echo "== the floating IP $vip answers through HAProxy on $who"; break
  fi
  sleep 1
done
echo "== again: nothing to change"
"$hl" apply playbooks/cluster.yml -i "$inv" --tags prepare,kernel,lb | tail -n 5
