#!/usr/bin/env bash
# The peer benchmark: homelab side by side with Ansible and pyinfra on the same 20-task workload,
# the same inventories and the same loopback sshd hosts (../shared/bench). A benchmark, not a test.
#   scripts/bench.sh            # base group: 10 hosts, first run, second run, check+diff
#   scripts/bench.sh homelab    # homelab's scenarios alone (1, 10, 30 hosts)
#   scripts/bench.sh scaling    # 1 and 30 hosts
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${HOMELAB_BENCH_DIR:-../shared/bench}
[ -x "$bench/run.sh" ] || { echo "no peer benchmark at $bench (set HOMELAB_BENCH_DIR)" >&2; exit 1; }
command -v hyperfine >/dev/null 2>&1 || apt-get install -y -qq hyperfine
cargo build --release --locked
HOMELAB="$PWD/target/release/homelab" exec "$bench/run.sh" "${@:-base}"
