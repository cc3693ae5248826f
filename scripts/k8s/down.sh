#!/usr/bin/env bash
# Stop the one-node cluster and remove every trace of it from the host (idempotent; safe when nothing
# runs): pods (through the kubelet, so CNI tears their network down), the daemons by pid, leftover
# containerd shims, mounts and cgroups, network namespaces, the bridge, the nftables tables of
# kube-proxy and ours, the host paths containerd/kubelet/CNI create outside our folders, and the sysctls
# the kubelet rewrote. Cluster data (etcd, imported images, PKI) stays in .state/k8s for the next `up`;
# `down.sh --purge` removes that folder as well. scripts/k8s/check-clean.sh verifies the result.
set -euo pipefail
# shellcheck source=scripts/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S="$K8S_STATE"
RUN="$S/run"
PURGE=0
[ "${1:-}" = "--purge" ] && PURGE=1

pid_of() { [ -f "$RUN/$1.pid" ] && cat "$RUN/$1.pid"; }
alive() { local p; p="$(pid_of "$1")" && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# stop <name> [seconds]: TERM, wait, then KILL the daemon whose pid we recorded
stop() {
    local name="$1" secs="${2:-20}" pid
    if ! alive "$name"; then rm -f "$RUN/$name.pid"; return; fi
    pid="$(pid_of "$name")"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + secs))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop within ${secs}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$RUN/$name.pid"
    log "$name stopped"
}

api_up() { alive kube-apiserver && kubectl_admin get --raw /readyz >/dev/null 2>&1; }

drain_pods() {
    alive kubelet && api_up || return 0
    # no controller may recreate what we delete, and nothing new may be scheduled
    stop kube-controller-manager
    stop kube-scheduler
    kubectl_admin delete pods --all --all-namespaces --grace-period=3 --wait=false >/dev/null 2>&1 || true
    local deadline=$((SECONDS + ${K8S_DOWN_DRAIN_TIMEOUT_S:-60}))
    while [ $SECONDS -lt $deadline ]; do
        [ -z "$(kubectl_admin get pods -A -o name 2>/dev/null)" ] && break
        sleep 1
    done
    # the kubelet stops each pod's sandbox (CNI DEL) right after its containers; wait for the shims to go
    deadline=$((SECONDS + 20))
    while [ $SECONDS -lt $deadline ] && [ -n "$(ctr_k8s tasks ls -q 2>/dev/null)" ]; do sleep 0.5; done
}

kill_remaining_tasks() {
    alive containerd || return 0
    local t
    for t in $(ctr_k8s tasks ls -q 2>/dev/null); do
        ctr_k8s tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    sleep 1
    for t in $(ctr_k8s tasks ls -q 2>/dev/null); do
        ctr_k8s tasks delete -f "$t" >/dev/null 2>&1 || true
    done
}

# processes of ours that are not daemons we started: shims (and their containers) of our containerd
kill_strays() {
    local pid
    for pid in $(pgrep -f -- "-address $CTRD_SOCK" || true); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    # anything still in our pod cgroups
    local f
    while IFS= read -r f; do
        for pid in $(cat "$f" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    done < <(find /sys/fs/cgroup/*/skydriver-k8s -name cgroup.procs 2>/dev/null)
    sleep 0.3
}

unmount_ours() {
    local m
    for _ in 1 2 3; do
        # deepest first; netns bind mounts and container rootfs/shm/secret tmpfs all live under $S
        mapfile -t mounts < <(awk -v s="$S" 'index($2, s "/") == 1 {print $2}' /proc/self/mounts | sort -r)
        [ ${#mounts[@]} -eq 0 ] && break
        for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    done
}

remove_cgroups() {
    local d
    for d in /sys/fs/cgroup/*/skydriver-k8s; do
        [ -d "$d" ] || continue
        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        [ -d "$d" ] && log "WARNING: could not remove cgroup $d (a process still in it?)"
    done
    return 0
}

remove_network() {
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link delete "$BRIDGE"
        log "bridge $BRIDGE deleted"
    fi
    local t
    for t in "inet $NFT_TABLE" "ip kube-proxy" "ip6 kube-proxy"; do
        # shellcheck disable=SC2086
        if nft list table $t >/dev/null 2>&1; then nft delete table $t; fi
    done
    rm -rf "$S/cni/ipam"
}

restore_host_paths() {
    [ -f "$RUN/host-before" ] || return 0
    local p
    for p in /run/containerd /var/lib/cni /var/log/pods /var/log/containers /var/lib/kubelet /etc/cni \
        /opt/containerd /var/lib/containerd /run/netns /var/run/netns; do
        [ -L "$p" ] && continue                 # /var/run is a link to /run
        grep -qx "path $p" "$RUN/host-before" && continue
        if [ -e "$p" ]; then rm -rf "$p"; fi
    done
    local key name value
    while read -r key name value; do
        [ "$key" = sysctl ] || continue
        [ "$(cat "/proc/sys/$name")" = "$value" ] || echo "$value" >"/proc/sys/$name"
    done <"$RUN/host-before"
    mv "$RUN/host-before" "$RUN/host-before.last"   # check-clean.sh compares the sysctls with it
}

main() {
    need_root
    [ -d "$S" ] || { log "nothing to stop ($S does not exist)"; return 0; }
    mkdir -p "$RUN"
    drain_pods
    stop kube-controller-manager
    stop kube-scheduler
    stop kubelet
    kill_remaining_tasks
    stop kube-proxy
    stop kube-apiserver
    stop etcd
    stop containerd 30
    kill_strays
    unmount_ours
    remove_cgroups
    remove_network
    restore_host_paths
    # kubeconfigs point at the bridge's address, which is gone: pki.sh writes them again at the next up
    rm -f "$S/kubectl" "$S"/pki/*.kubeconfig
    if [ $PURGE = 1 ]; then
        unmount_ours
        rm -rf "$S"
        log "removed $S"
    fi
    log "cluster down"
}

main "$@"; exit
