#!/usr/bin/env bash
# Build what the one-node cluster needs and is not cached yet (idempotent):
#   Debian packages: containerd, runc, CNI plugins, buildah, debootstrap, nftables, iptables, busybox-static
#   from the Go module proxy: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#   kubectl (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3), CoreDNS (github.com/coredns/coredns,
#   with only the plugins the cluster uses: scripts/k8s/coredns/main.go)
#   the pause binary, compiled from the pause.c inside the kubernetes module
# Everything lands in $K8S_CACHE (default ~/.cache/skydriver/k8s), keyed by version, with a private Go
# module and build cache; nothing goes into the repository. Each step's time is appended to timings.log.
set -euo pipefail
# shellcheck source=scripts/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(containerd runc containernetworking-plugins buildah debootstrap nftables iptables conntrack busybox-static)

export GOMODCACHE="$K8S_CACHE/go/mod"
export GOCACHE="${K8S_GOCACHE:-$K8S_CACHE/go/build}"   # K8S_GOCACHE: e.g. an empty folder to time a cold build
export GOFLAGS="-p=$K8S_BUILD_JOBS -mod=mod -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

apt_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing from Debian: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show containerd >/dev/null 2>&1 || apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed; run 'apt-get update' and retry"
}

# go_module_dir <dir> <go.mod text> [tools.go imports...]: a wrapper module that requires a module from
# the proxy, so that its main packages can be built with `go build <import path>` (with no imports: the
# module's own main package, already in <dir>).
go_module_dir() {
    local dir="$1" gomod="$2"; shift 2
    mkdir -p "$dir"
    printf '%s\n' "$gomod" >"$dir/go.mod.new"
    if ! cmp -s "$dir/go.mod.new" "$dir/go.mod.in" 2>/dev/null; then
        mv "$dir/go.mod.new" "$dir/go.mod.in"
        cp "$dir/go.mod.in" "$dir/go.mod"
        rm -f "$dir/go.sum" "$dir/.tidy"
    else
        rm -f "$dir/go.mod.new"
    fi
    if [ $# -gt 0 ]; then
        {
            printf '//go:build tools\n\n// Package tools pins the main packages built from this module.\npackage tools\n\nimport (\n'
            local imp
            for imp in "$@"; do printf '\t_ "%s"\n' "$imp"; done
            printf ')\n'
        } >"$dir/tools.go"
    fi
    if [ ! -f "$dir/.tidy" ]; then
        local tlog
        tlog="$K8S_STATE/logs/build/tidy-$(basename "$dir").log"
        mkdir -p "$(dirname "$tlog")"
        (cd "$dir" && nice -n 19 go mod tidy 2>"$tlog") || die "go mod tidy failed in $dir (log: $tlog; is the Go module proxy reachable?)"
        touch "$dir/.tidy"
    fi
}

# go_build <module dir> <import path> <output> [ldflags]
go_build() {
    local dir="$1" pkg="$2" out="$3" ldf="${4:-}"
    mkdir -p "$(dirname "$out")"
    (cd "$dir" && nice -n 19 go build -trimpath -ldflags "-s -w $ldf" -o "$out.tmp" "$pkg") \
        || die "go build $pkg failed (log above); fix and rerun"
    mv "$out.tmp" "$out"
}

build_kubernetes() {
    local missing=() c
    for c in "${KUBE_COMPONENTS[@]}"; do [ -x "$KUBE_BIN/$c" ] || missing+=("$c"); done
    [ ${#missing[@]} -eq 0 ] && return
    command -v go >/dev/null || die "Go is needed to build Kubernetes; install golang (1.24 or newer)"
    local dir="$K8S_CACHE/src/kubernetes-$K8S_VERSION"
    log "building Kubernetes $K8S_VERSION (${missing[*]}) with go build -p=$K8S_BUILD_JOBS; the first time takes 20-40 min"
    # The staging modules (k8s.io/api, client-go, ...) are replaced by local folders in kubernetes' own
    # go.mod; a module that requires it must name their published versions instead.
    local kmod
    timed "download k8s.io/kubernetes@$K8S_VERSION" \
        bash -c "cd /tmp && go mod download k8s.io/kubernetes@$K8S_VERSION"
    kmod="$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
    [ -f "$kmod" ] || die "the kubernetes go.mod is not in $kmod after go mod download"
    local replaces
    replaces="$(sed -n '/^replace (/,/^)/p' "$kmod" | awk -v v="$K8S_STAGING_VERSION" '$2 == "=>" && $3 ~ /^\.\/staging/ {print "\t" $1 " => " $1 " " v}')"
    [ -n "$replaces" ] || die "no staging replace block found in $kmod"
    local imports=()
    for c in "${KUBE_COMPONENTS[@]}"; do imports+=("k8s.io/kubernetes/cmd/$c"); done
    timed "go mod tidy kubernetes" go_module_dir "$dir" "module skydriver-k8s-build

go 1.24.0

require k8s.io/kubernetes $K8S_VERSION

replace (
$replaces
)" "${imports[@]}"
    local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
    local ldf="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
    ldf+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
    ldf+=" -X k8s.io/component-base/version.gitTreeState=clean"
    for c in "${missing[@]}"; do
        timed "go build $c" go_build "$dir" "k8s.io/kubernetes/cmd/$c" "$KUBE_BIN/$c" "$ldf"
    done
}

build_etcd() {
    [ -x "$ETCD_BIN/etcd" ] && return
    local dir="$K8S_CACHE/src/etcd-$ETCD_VERSION"
    log "building etcd $ETCD_VERSION"
    # etcd's server module has replace directives for its sibling modules; name their versions here
    timed "go mod tidy etcd" go_module_dir "$dir" "module skydriver-etcd-build

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)" go.etcd.io/etcd/server/v3
    timed "go build etcd" go_build "$dir" go.etcd.io/etcd/server/v3 "$ETCD_BIN/etcd"
}

build_coredns() {
    [ -x "$COREDNS_BIN/coredns" ] && return
    local dir="$K8S_CACHE/src/coredns-$COREDNS_VERSION-slim"
    log "building CoreDNS $COREDNS_VERSION (only the plugins the cluster uses)"
    mkdir -p "$dir"
    if ! cmp -s "$K8S_SCRIPTS/coredns/main.go" "$dir/main.go"; then
        cp "$K8S_SCRIPTS/coredns/main.go" "$dir/main.go"
        rm -f "$dir/.tidy"
    fi
    timed "go mod tidy coredns" go_module_dir "$dir" "module skydriver-coredns-build

go 1.25.0

require github.com/coredns/coredns $COREDNS_VERSION"
    timed "go build coredns" go_build "$dir" . "$COREDNS_BIN/coredns"
}

build_pause() {
    [ -x "$PAUSE_BIN/pause" ] && return
    local src="$GOMODCACHE/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
    [ -f "$src" ] || (cd /tmp && go mod download k8s.io/kubernetes@"$K8S_VERSION")
    [ -f "$src" ] || die "pause.c not found at $src"
    command -v gcc >/dev/null || die "gcc is needed for the pause binary; apt-get install gcc libc6-dev"
    mkdir -p "$PAUSE_BIN"
    gcc -Os -static -o "$PAUSE_BIN/pause.tmp" "$src" -DVERSION="$PAUSE_VERSION" \
        || die "gcc failed on $src (static glibc needed: apt-get install libc6-dev)"
    strip "$PAUSE_BIN/pause.tmp"
    mv "$PAUSE_BIN/pause.tmp" "$PAUSE_BIN/pause"
}

main() {
    need_root
    mkdir -p "$K8S_CACHE"
    timed "apt packages" apt_packages
    build_kubernetes
    build_etcd
    build_coredns
    build_pause
    log "binaries ready in $K8S_CACHE"
}

main "$@"; exit
