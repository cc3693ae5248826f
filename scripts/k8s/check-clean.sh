#!/usr/bin/env bash
# After `make k8s-down`: verify that nothing of the cluster is left on the host. Prints one line per
# leftover and exits 1 if there is any; prints "clean" and exits 0 otherwise. Read-only.
set -euo pipefail
# shellcheck source=scripts/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S="$K8S_STATE"
found=0
leftover() { printf '[k8s-check] LEFTOVER %s\n' "$*"; found=1; }

# processes: our binaries, containerd with our config, shims of our socket, pause containers
bins="$KUBE_BIN/|$ETCD_BIN/|$COREDNS_BIN/|containerd --config $S/|-address $CTRD_SOCK|$S/"
while read -r pid args; do
    [ "$pid" = "$$" ] && continue
    leftover "process $pid: $args"
done < <(ps -eo pid=,args= | grep -E -- "$bins" | grep -v -E "grep -E|check-clean" || true)
for exe in /proc/[0-9]*/exe; do
    target="$(readlink "$exe" 2>/dev/null || true)"
    case "$target" in
        "$KUBE_BIN"/* | "$ETCD_BIN"/* | "$COREDNS_BIN"/* | "$PAUSE_BIN"/* | /pause | /coredns)
            pid="${exe#/proc/}"; leftover "process ${pid%/exe}: $target" ;;
    esac
done

# mounts under our state folder, CRI network namespaces, overlay/shm mounts of containerd
while read -r _ mnt fstype _; do
    case "$mnt" in
        "$S"/* | /run/netns/* | /run/containerd/* | /var/lib/kubelet/*) leftover "mount $mnt ($fstype)" ;;
    esac
done </proc/self/mounts

# cgroups
for d in /sys/fs/cgroup/*/skydriver-k8s /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/*/k8s.io; do
    [ -e "$d" ] && leftover "cgroup $d"
done

# network: bridge, veths on it, namespaces, nftables/iptables rules, listening ports
ip link show "$BRIDGE" >/dev/null 2>&1 && leftover "bridge $BRIDGE"
ip -o link show type veth 2>/dev/null | grep -q "master $BRIDGE" && leftover "veth on $BRIDGE"
for ns in /run/netns/cni-*; do [ -e "$ns" ] && leftover "netns $ns"; done
for t in "inet $NFT_TABLE" "ip kube-proxy" "ip6 kube-proxy"; do
    # shellcheck disable=SC2086
    nft list table $t >/dev/null 2>&1 && leftover "nftables table $t"
done
for save in iptables-save ip6tables-save iptables-legacy-save ip6tables-legacy-save; do
    command -v "$save" >/dev/null || continue
    rules="$("$save" 2>/dev/null | grep -c -E 'KUBE-|CNI-|skd0' || true)"
    [ "$rules" != 0 ] && leftover "$rules $save lines mention KUBE-/CNI-/$BRIDGE"
done
for port in "$BRIDGE_IP:$APISERVER_PORT" "127.0.0.1:$ETCD_CLIENT_PORT" "127.0.0.1:$ETCD_PEER_PORT" \
    "127.0.0.1:$KUBELET_PORT" "127.0.0.1:$KCM_PORT" "127.0.0.1:$SCHEDULER_PORT" "127.0.0.1:$PROXY_HEALTHZ_PORT"; do
    ss -Hltn "sport = :${port##*:}" 2>/dev/null | grep -q . && leftover "listening port $port"
done

# host paths outside our folders, the state of a run still recorded, and the sysctls the kubelet sets
for p in /run/containerd /var/lib/cni /var/log/pods /var/log/containers /var/lib/kubelet /etc/cni \
    /opt/containerd /var/lib/containerd /run/netns /var/lib/containers; do
    [ -e "$p" ] && leftover "path $p (did it exist before 'make k8s-up'?)"
done
[ -f "$S/run/host-before" ] && leftover "$S/run/host-before (k8s-down did not finish)"
if [ -f "$S/run/host-before.last" ]; then
    while read -r key name value; do
        [ "$key" = sysctl ] || continue
        now="$(cat "/proc/sys/$name")"
        [ "$now" = "$value" ] || leftover "sysctl $name is $now, was $value before k8s-up"
    done <"$S/run/host-before.last"
fi
ls "$S"/run/*.pid >/dev/null 2>&1 && leftover "pid files in $S/run"

if [ $found = 0 ]; then
    echo "[k8s-check] clean: no process, mount, cgroup, bridge, netns, nftables/iptables rule, port or host path of the cluster is left, and the recorded sysctls are back"
fi
exit $found
