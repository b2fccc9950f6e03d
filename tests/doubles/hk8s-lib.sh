# Shared by the hk8s test doubles (snap, microk8s, kubeadm, kubectl, hk8s-cluster): where state
# and the call log live, logging, and the "cluster" a host belongs to. POSIX sh, no python/nc.
#
# Layout on a lab host (installed by tests/lab_k8s.rs, removed at the end of each test):
#   /opt/hk8s-doubles/bin/{snap,kubeadm,kubectl,hk8s-cluster}  (put first in PATH by the test)
#   /opt/hk8s-doubles/lib/{microk8s,hk8s-lib.sh}  (`snap install microk8s` copies microk8s to /snap/bin)
#   /var/lib/hk8s-doubles/   state: members, tokens, certkeys (on a cluster's first node), flags
#   /var/log/hk8s-doubles.log  every call: EPOCH.NANOS HOST TOOL ARGV...
#
# Cluster semantics: the node that made the cluster (snap install of microk8s, kubeadm init) keeps
# its member list and tokens. A joining node asks that node over ssh (`hk8s-cluster` as a forced
# command of a key the test installs: see rpc below) to consume its token and list it as a member.
# Flags (files in /var/lib/hk8s-doubles): fail-next-join (on the joining node: the next join fails
# as a refused join does, its token still consumed), expire-next-token (on the first node: the next
# token or certificate key is issued already expired).

HK8S_STATE=/var/lib/hk8s-doubles
HK8S_LOG=/var/log/hk8s-doubles.log
HK8S_BIN=/opt/hk8s-doubles/bin

hk8s_log() {
    # $1 = tool, rest = argv
    _t=$1
    shift
    printf '%s %s %s %s\n' "$(date +%s.%N)" "$(hostname)" "$_t" "$*" >>"$HK8S_LOG" 2>/dev/null || true
}

hk8s_myip() {
    hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 '^10\.213\.' || hostname -I | cut -d' ' -f1
}

hk8s_rand() {
    # $1 = number of bytes, printed as hex
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# Runs `hk8s-cluster ARGS` on the node at $1 (locally when it is this node).
hk8s_rpc() {
    _ip=$1
    shift
    if [ "$_ip" = "$(hk8s_myip)" ] || [ "$_ip" = 127.0.0.1 ]; then
        "$HK8S_BIN/hk8s-cluster" "$@"
        return $?
    fi
    _user=$(cat "$HK8S_STATE/ssh_user" 2>/dev/null || echo homelab)
    ssh -n -q -i "$HK8S_STATE/id_ed25519" -o BatchMode=yes -o ConnectTimeout=5 \
        -o UserKnownHostsFile="$HK8S_STATE/known_hosts" -o StrictHostKeyChecking=yes \
        "$_user@$_ip" "$@"
}

# The node that serves an API endpoint (HOST:PORT): /var/lib/hk8s-doubles/endpoints maps a VIP
# to the node behind it ("10.213.0.100:8443 10.213.0.11"); otherwise the endpoint's host itself.
hk8s_endpoint_node() {
    _n=$(awk -v e="$1" '$1 == e { print $2; exit }' "$HK8S_STATE/endpoints" 2>/dev/null)
    if [ -n "$_n" ]; then echo "$_n"; else echo "${1%:*}"; fi
}
