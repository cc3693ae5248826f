# Shared settings and helpers of the scripts/k8s/*.sh scripts (sourced, not run).
# Versions, where the binaries are cached, where the cluster keeps its state, and the addresses it uses.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the scripts that source this file

K8S_VERSION="v1.34.0"       # k8s.io/kubernetes from the Go module proxy; staging modules v0.34.x
K8S_STAGING_VERSION="v0.34.0"
ETCD_VERSION="v3.6.4"       # go.etcd.io/etcd/server/v3 from the Go module proxy
COREDNS_VERSION="v1.14.7"   # github.com/coredns/coredns from the Go module proxy (cluster DNS)
PAUSE_VERSION="3.10"        # build/pause/linux/pause.c of the kubernetes module, compiled with gcc
BUSYBOX_TAG="1.35"          # Debian's busybox-static

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
K8S_SCRIPTS="$REPO_ROOT/scripts/k8s"
K8S_CACHE="${SKYDRIVER_K8S_CACHE:-$HOME/.cache/skydriver/k8s}"
K8S_STATE="${SKYDRIVER_K8S_STATE:-$REPO_ROOT/.state/k8s}"
K8S_BUILD_JOBS="${K8S_BUILD_JOBS:-1}"   # go build -p; 2 uses both cores (faster, but starves others)

KUBE_BIN="$K8S_CACHE/kubernetes-$K8S_VERSION/bin"
ETCD_BIN="$K8S_CACHE/etcd-$ETCD_VERSION/bin"
# CoreDNS is our own main with the plugins the cluster uses (scripts/k8s/coredns/main.go): keyed by it too
COREDNS_BIN="$K8S_CACHE/coredns-$COREDNS_VERSION-slim-$(sha256sum <"$K8S_SCRIPTS/coredns/main.go" | cut -c1-8)/bin"
PAUSE_BIN="$K8S_CACHE/pause-$PAUSE_VERSION/bin"
TIMINGS="$K8S_CACHE/timings.log"
KUBE_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

# --- network: everything lives on the bridge this setup creates; nothing is routed elsewhere -----
BRIDGE="skd0"
POD_CIDR="10.244.0.0/24"
BRIDGE_IP="10.244.0.1"          # host side of the bridge: the API server binds and advertises here (B3)
SERVICE_CIDR="10.96.0.0/24"
KUBERNETES_SVC_IP="10.96.0.1"
DNS_SVC_IP="10.96.0.10"
CLUSTER_DOMAIN="cluster.local"
NODE_NAME="localhost"           # recipe B2: --hostname-override=localhost
CNI_NETWORK="skydriver-k8s"
NFT_TABLE="skydriver_k8s"       # our own nftables table: keeps pod traffic on the bridge

# --- ports (127.0.0.1 unless said otherwise); none collides with FerretDB/RabbitMQ/epmd ---------
APISERVER_PORT=16443            # on $BRIDGE_IP
ETCD_CLIENT_PORT=23790
ETCD_PEER_PORT=23800
ETCD_METRICS_PORT=23810
KUBELET_PORT=10350
KUBELET_HEALTHZ_PORT=10348
KCM_PORT=10357
SCHEDULER_PORT=10359
PROXY_HEALTHZ_PORT=10356
PROXY_METRICS_PORT=10349

# --- images (all built here; none is ever pulled) ------------------------------------------------
IMG_PREFIX="localhost/skydriver-k8s"
PAUSE_IMAGE="$IMG_PREFIX/pause:$PAUSE_VERSION"
BUSYBOX_IMAGE="$IMG_PREFIX/busybox:$BUSYBOX_TAG"
COREDNS_IMAGE="$IMG_PREFIX/coredns:${COREDNS_VERSION#v}"
PYBASE_IMAGE="localhost/skydriver/python-base:3.11-bookworm"

CTRD_SOCK="$K8S_STATE/containerd/containerd.sock"
KUBECONFIG_ADMIN="$K8S_STATE/pki/admin.kubeconfig"

log() { printf '[k8s] %s\n' "$*" >&2; }
die() { printf '[k8s] ERROR: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "this needs root (it runs containerd, the kubelet and iptables); run it as root"; }

# timed <name> <command...>: run a step, append "<date> <name> <seconds>s -p=<jobs>" to $TIMINGS
# (a failing step is logged as FAILED and its status returned)
timed() {
    local name="$1"; shift
    local t0=$SECONDS rc=0
    "$@" || rc=$?
    local dt=$((SECONDS - t0))
    local result="${dt}s"
    [ $rc = 0 ] || result="FAILED after ${dt}s"
    mkdir -p "$K8S_CACHE"
    printf '%s %s %s -p=%s\n' "$(date -u +%FT%TZ)" "$name" "$result" "$K8S_BUILD_JOBS" >>"$TIMINGS"
    log "$name: $result"
    return $rc
}

# The API server's address is on our bridge: without the bridge, a connection to it would follow the
# host's default route, so nothing talks to it unless the bridge is there.
bridge_up() { [ -e "/sys/class/net/$BRIDGE" ]; }
kubectl_admin() {
    bridge_up || { printf '[k8s] the cluster is not up (no bridge %s); run make k8s-up\n' "$BRIDGE" >&2; return 1; }
    "$KUBE_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"
}
ctr_k8s() { ctr --address "$CTRD_SOCK" --namespace k8s.io "$@"; }
