#!/usr/bin/env bash
# Start the one-node Kubernetes cluster as ordinary processes (idempotent: running parts are kept):
# bridge + nftables guard, containerd, etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy, then CoreDNS as a Deployment. Data and logs under $K8S_STATE (.state/k8s).
# Networking: the API server binds on the host side of our bridge ($BRIDGE_IP), everything else on
# 127.0.0.1; pods get routes to the pod subnet and the service range only, never a default route.
set -euo pipefail
# shellcheck source=scripts/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S="$K8S_STATE"
PKI="$S/pki"
CONF="$S/conf"
LOGS="$S/logs"
RUN="$S/run"
UP_TIMEOUT_S="${K8S_UP_TIMEOUT_S:-180}"

# host paths that containerd/kubelet/CNI write outside our folders whatever the config; down.sh
# removes those that did not exist before the first `up`
HOST_PATHS=(/run/containerd /var/lib/cni /var/log/pods /var/log/containers /var/lib/kubelet /etc/cni
    /opt/containerd /var/lib/containerd /run/netns /var/run/netns)
# sysctls the kubelet rewrites (protectKernelDefaults=false), and the global IPv4 forwarding switch (our
# CNI config does not turn it on, but record it anyway); down.sh puts the recorded values back
HOST_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
    kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/ip_forward)

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }   # only ever used on 127.0.0.1

wait_for() {  # wait_for <what> <seconds> <command...>
    local what="$1" secs="$2"; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then return 1; fi
        sleep 0.5
    done
}

# start <name> <command...>: run a daemon in its own session, log to $LOGS/<name>.log, pid in $RUN
start() {
    local name="$1"; shift
    if running "$name"; then log "$name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
    setsid nice -n 5 "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
    log "$name started (pid $!, log $LOGS/$name.log)"
}

check_started() {  # check_started <name> <what> <seconds> <command...>
    local name="$1" what="$2" secs="$3"; shift 3
    if ! wait_for "$what" "$secs" "$@"; then
        tail -n 15 "$LOGS/$name.log" >&2 || true
        die "$name: $what not reached within ${secs}s (log: $LOGS/$name.log); run 'make k8s-down' and retry"
    fi
    running "$name" || die "$name exited at start-up (log: $LOGS/$name.log)"
}

preflight() {
    need_root
    local c
    for c in "${KUBE_COMPONENTS[@]}"; do [ -x "$KUBE_BIN/$c" ] || die "$c is not built; run scripts/k8s/build.sh"; done
    [ -x "$ETCD_BIN/etcd" ] || die "etcd is not built; run scripts/k8s/build.sh"
    for c in containerd runc ctr buildah nft ip; do
        command -v "$c" >/dev/null || die "$c is missing; run scripts/k8s/build.sh (it installs the Debian packages)"
    done
    [ -x /usr/lib/cni/bridge ] || die "CNI plugins missing in /usr/lib/cni; apt-get install containernetworking-plugins"
    [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || die "no cgroup filesystem at /sys/fs/cgroup"
    # a port taken by someone else is an error; our own running daemon is fine. Checked with ss, never by
    # connecting: before the bridge exists, a connection to its address would follow the default route.
    local spec name port
    for spec in "etcd:$ETCD_CLIENT_PORT" "etcd:$ETCD_PEER_PORT" "etcd:$ETCD_METRICS_PORT" \
        "kube-apiserver:$APISERVER_PORT" "kube-controller-manager:$KCM_PORT" "kube-scheduler:$SCHEDULER_PORT" \
        "kubelet:$KUBELET_PORT" "kubelet:$KUBELET_HEALTHZ_PORT" "kube-proxy:$PROXY_HEALTHZ_PORT" \
        "kube-proxy:$PROXY_METRICS_PORT"; do
        IFS=: read -r name port <<<"$spec"
        if ! running "$name" && [ -n "$(ss -Hltn "sport = :$port")" ]; then
            die "port $port (for $name) is taken by another program; stop it (ss -ltnp 'sport = :$port')"
        fi
    done
}

record_host_state() {
    mkdir -p "$RUN"
    [ -f "$RUN/host-before" ] && return
    {
        local p s
        for p in "${HOST_PATHS[@]}"; do [ -e "$p" ] && echo "path $p"; done
        for s in "${HOST_SYSCTLS[@]}"; do echo "sysctl $s $(cat "/proc/sys/$s")"; done
    } >"$RUN/host-before.tmp"
    mv "$RUN/host-before.tmp" "$RUN/host-before"
}

setup_network() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        log "bridge $BRIDGE created"
    fi
    ip addr replace "$BRIDGE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    # the host's own traffic to the Service range goes to the bridge too, never to the default route
    ip route replace "$SERVICE_CIDR" dev "$BRIDGE"
    # forwarding only for packets that enter through our bridge (service DNAT back to a pod); the global
    # net.ipv4.ip_forward stays as it is, and this setting goes away with the bridge
    echo 1 >"/proc/sys/net/ipv4/conf/$BRIDGE/forwarding"
    # the guard: nothing enters or leaves the bridge towards any other interface, and pods reach the host
    # only on the bridge's own subnet
    nft -f - <<EOF
table inet $NFT_TABLE
delete table inet $NFT_TABLE
table inet $NFT_TABLE {
    chain forward {
        type filter hook forward priority filter - 5; policy accept;
        iifname "$BRIDGE" oifname != "$BRIDGE" counter drop
        oifname "$BRIDGE" iifname != "$BRIDGE" counter drop
    }
    chain input {
        type filter hook input priority filter - 5; policy accept;
        iifname "$BRIDGE" ip daddr != $POD_CIDR counter drop
        iifname "$BRIDGE" meta nfproto ipv6 counter drop
    }
}
EOF
}

write_configs() {
    mkdir -p "$CONF" "$S/cni/net.d" "$S/cni/ipam" "$S/containerd" "$S/kubelet/root" "$S/kubelet/pod-logs"
    cat >"$CONF/containerd.toml" <<EOF
version = 2
root = "$S/containerd/root"
state = "$S/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CTRD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$S/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # recipe B1: this VM lacks CAP_SYS_RESOURCE, so runc must not lower oom_score_adj
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$S/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$S/cni/net.d"
    max_conf_num = 1
EOF
    cat >"$S/cni/net.d/10-$CNI_NETWORK.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}],
        "dataDir": "$S/cni/ipam"
      }
    }
  ]
}
EOF
    # pods with dnsPolicy Default get no name server: nothing outside the cluster answers
    printf '# no upstream name servers: cluster DNS answers only for %s\n' "$CLUSTER_DOMAIN" >"$CONF/resolv.conf"
    cat >"$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
cgroupDriver: cgroupfs
cgroupRoot: /skydriver-k8s
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CTRD_SOCK
clusterDNS: [$DNS_SVC_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $CONF/resolv.conf
podLogsDir: $S/kubelet/pod-logs
makeIPTablesUtilChains: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: "2%"
  imagefs.available: "2%"
  nodefs.inodesFree: "2%"
# images are built here and can never be pulled again: never garbage-collect them
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 60
EOF
    cat >"$CONF/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $PKI/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
bindAddress: $BRIDGE_IP
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
mode: nftables
clusterCIDR: $POD_CIDR
# pod -> Service -> pod on the same bridge: the reply must come back through the host to be un-NATed
masqueradeAll: true
nodePortAddresses: ["$BRIDGE_IP/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

start_containerd() {
    # registries are never contacted: any pull goes to a proxy on a closed loopback port and fails at once
    start containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
        containerd --config "$CONF/containerd.toml"
    check_started containerd "socket $CTRD_SOCK" 30 ctr --address "$CTRD_SOCK" version
}

start_control_plane() {
    start etcd "$ETCD_BIN/etcd" --name skydriver-k8s --data-dir "$S/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "skydriver-k8s=http://127.0.0.1:$ETCD_PEER_PORT" \
        --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS_PORT" --log-level warn --quota-backend-bytes 2147483648
    check_started etcd "client port" 60 port_open 127.0.0.1 "$ETCD_CLIENT_PORT"

    start kube-apiserver "$KUBE_BIN/kube-apiserver" \
        --bind-address="$BRIDGE_IP" --advertise-address="$BRIDGE_IP" --secure-port="$APISERVER_PORT" \
        --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=Hostname,InternalIP \
        --authorization-mode=Node,RBAC --allow-privileged=true --enable-admission-plugins=NodeRestriction \
        --profiling=false --v=1
    check_started kube-apiserver "/readyz" "$UP_TIMEOUT_S" kubectl_admin get --raw /readyz

    start kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
        --kubeconfig="$PKI/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig="$PKI/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig="$PKI/kube-controller-manager.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
        --use-service-account-credentials=true --service-account-private-key-file="$PKI/sa.key" \
        --root-ca-file="$PKI/ca.crt" --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false --v=1
    start kube-scheduler "$KUBE_BIN/kube-scheduler" \
        --kubeconfig="$PKI/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig="$PKI/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig="$PKI/kube-scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false --profiling=false --v=1
}

start_node() {
    mkdir -p /sys/fs/cgroup/unified/skydriver-k8s 2>/dev/null || true
    local ctl
    for ctl in /sys/fs/cgroup/*/; do
        [ -f "$ctl/cgroup.procs" ] && mkdir -p "$ctl/skydriver-k8s"
    done
    start kubelet "$KUBE_BIN/kubelet" --config="$CONF/kubelet.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
        --hostname-override="$NODE_NAME" --node-ip="$BRIDGE_IP" --root-dir="$S/kubelet/root" --cert-dir="$S/kubelet/pki" --v=1
    start kube-proxy "$KUBE_BIN/kube-proxy" --config="$CONF/kube-proxy.yaml" --v=1
    check_started kubelet "node $NODE_NAME Ready" "$UP_TIMEOUT_S" \
        kubectl_admin wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
    check_started kube-proxy "healthz" 60 port_open 127.0.0.1 "$PROXY_HEALTHZ_PORT"
}

start_dns() {
    sed -e "s|@DNS_SVC_IP@|$DNS_SVC_IP|g" -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" \
        -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" "$K8S_SCRIPTS/manifests/coredns.yaml" \
        | kubectl_admin apply -f - >/dev/null
    # the Deployment's status may still be the one from before the last `down` (whose pods are gone):
    # wait for a CoreDNS pod of this run to be Ready
    local ready="" deadline=$((SECONDS + UP_TIMEOUT_S))
    while [ $SECONDS -lt $deadline ]; do
        ready="$(kubectl_admin -n kube-system get pods -l k8s-app=kube-dns \
            -o jsonpath='{.items[*].status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
        case "$ready" in *True*) break ;; esac
        sleep 1
    done
    case "$ready" in
        *True*) log "cluster DNS ready ($DNS_SVC_IP)" ;;
        *) kubectl_admin -n kube-system describe pods -l k8s-app=kube-dns | tail -20 >&2 || true
           die "CoreDNS did not become ready (kubectl -n kube-system logs deploy/coredns)" ;;
    esac
}

main() {
    preflight
    mkdir -p "$S" "$LOGS" "$RUN"
    record_host_state
    bash "$K8S_SCRIPTS/pki.sh"
    setup_network
    write_configs
    start_containerd
    bash "$K8S_SCRIPTS/images.sh" cluster
    start_control_plane
    start_node
    start_dns
    # the admin kubeconfig for people: KUBECONFIG=.state/k8s/pki/admin.kubeconfig .state/k8s/kubectl ...
    ln -sf "$KUBE_BIN/kubectl" "$S/kubectl"
    # the project's images (Dockerfile.server/.client on a debootstrapped base, FerretDB, RabbitMQ)
    if [ "${K8S_APP_IMAGES:-1}" = 1 ]; then bash "$K8S_SCRIPTS/images.sh" app; fi
    log "cluster up: KUBECONFIG=$KUBECONFIG_ADMIN $S/kubectl get pods -A"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; exit; fi
