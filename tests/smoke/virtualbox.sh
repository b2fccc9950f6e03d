#!/usr/bin/env bash
# The smoke test for users: VirtualBox VMs from the Vagrantfile, the whole cluster.yml, nodes Ready.
# Skips (exit 0, with a message) where VirtualBox or Vagrant is absent, as in CI here.
#   tests/smoke/virtualbox.sh            # up, apply, check; leaves the VMs running
#   HOMELAB_SMOKE_DESTROY=1 tests/smoke/virtualbox.sh   # and destroys them at the end
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in VBoxManage vagrant; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "skipped: $tool is not installed (the VirtualBox smoke test needs VirtualBox and Vagrant)"
    exit 0
  fi
done
cargo build --release --locked
HOMELAB="$PWD/target/release/homelab"
inv=inventory/vagrant.ini
flavor="${HOMELAB_SMOKE_FLAVOR:-kubeadm}"

vagrant up --provider virtualbox
# Host keys of fresh VMs are new: accept-new in the inventory records them.
"$HOMELAB" plan playbooks/cluster.yml -i "$inv" -e "k8s_flavor=$flavor"
"$HOMELAB" apply playbooks/cluster.yml -i "$inv" -e "k8s_flavor=$flavor"

kubeconfig="$PWD/kubeconfig"
[ -s "$kubeconfig" ] || { echo "FAIL: no kubeconfig fetched to $kubeconfig"; exit 1; }
# Every node Ready, asked on the first master with the fetched kubeconfig's cluster.
deadline=$((SECONDS + 600))
while :; do
  if [ "$flavor" = microk8s ]; then
    out=$(vagrant ssh m1 -c "sudo microk8s kubectl get nodes --no-headers" 2>/dev/null || true)
  else
    out=$(vagrant ssh m1 -c "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes --no-headers" 2>/dev/null || true)
  fi
  ready=$(printf '%s\n' "$out" | awk '$2 == "Ready"' | wc -l)
  [ "$ready" -eq 4 ] && break
  if [ $SECONDS -ge $deadline ]; then
    echo "FAIL: $ready of 4 nodes Ready after 10 minutes:"; printf '%s\n' "$out"; exit 1
  fi
  sleep 10
done
echo "OK: 4 nodes Ready"; printf '%s\n' "$out"
# The second run changes nothing.
"$HOMELAB" apply playbooks/cluster.yml -i "$inv" -e "k8s_flavor=$flavor" | tee /tmp/homelab-smoke-2.log
if grep -E 'changed=[1-9]' /tmp/homelab-smoke-2.log; then echo "FAIL: the second run changed something"; exit 1; fi
if [ "${HOMELAB_SMOKE_DESTROY:-0}" = 1 ]; then vagrant destroy -f; fi
