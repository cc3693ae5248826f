#!/usr/bin/env bash
# Build the cluster's images with Debian's buildah and import them into the cluster's containerd (namespace
# k8s.io). Nothing is pulled from a registry: every base is built here (`--pull=never`).
#   images.sh cluster   pause (from the kubernetes module's pause.c), CoreDNS, busybox
#   images.sh app       the Debian base (debootstrap, Debian's python3.11), skydriver-server and
#                       skyscan-client from Dockerfile.server/Dockerfile.client with BASE=<that base>,
#                       and FerretDB + RabbitMQ for the one-node overlay (k8s/images/)
#   images.sh build-app the same, without importing (no running containerd needed)
# Idempotent: an image is rebuilt only when its inputs changed (a hash of them is kept beside the buildah
# storage in $K8S_CACHE/buildah), and imported only when containerd does not hold that build yet.
set -euo pipefail
# shellcheck source=scripts/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILDAH_DIR="$K8S_CACHE/buildah"
STAMPS="$BUILDAH_DIR/stamps"
IMPORTED="$K8S_STATE/containerd/imported"
PROJECT_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/pyproject.toml" | head -1)"
SERVER_IMAGE="localhost/skydriver/skydriver-server:$PROJECT_VERSION"
CLIENT_IMAGE="localhost/skydriver/skyscan-client:$PROJECT_VERSION"
FERRETDB_VERSION="v1.24.2"   # the one scripts/setup.sh builds
FERRETDB_BIN="${SKYDRIVER_CACHE_DIR:-$HOME/.cache/skydriver}/ferretdb-$FERRETDB_VERSION"
FERRETDB_IMAGE="localhost/skydriver/ferretdb:${FERRETDB_VERSION#v}"
RABBITMQ_IMAGE="localhost/skydriver/rabbitmq:debian-bookworm"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
IMG_LOGS="$K8S_STATE/logs/images"   # one log per build

# vfs: no mounts are left behind by the storage driver; --isolation chroot + host network for RUN steps
# (pip and apt reach their registries directly, no bridge or NAT is made for builds)
bh() { buildah --root "$BUILDAH_DIR/storage" --runroot "$BUILDAH_DIR/run" --storage-driver vfs "$@"; }

have_image() { bh images -q "$1" >/dev/null 2>&1; }
key_of() { printf '%s' "$1" | tr '/:' '__'; }
stamp_ok() { [ -f "$STAMPS/$(key_of "$1")" ] && [ "$(cat "$STAMPS/$(key_of "$1")")" = "$2" ] && have_image "$3"; }
set_stamp() { mkdir -p "$STAMPS"; printf '%s\n' "$2" >"$STAMPS/$(key_of "$1")"; }
hash_files() { (cd "$REPO_ROOT" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16; }

# import <image>: copy a buildah image into containerd unless that exact build is already there
import() {
    local image="$1" id key
    id="$(bh images -q --no-trunc "$image" | head -1)"
    key="$(key_of "$image")"
    if [ -f "$IMPORTED/$key" ] && [ "$(cat "$IMPORTED/$key")" = "$id" ] \
        && ctr_k8s images ls -q "name==$image" | grep -q .; then
        return
    fi
    local tar
    tar="$(mktemp -p "$BUILDAH_DIR" import.XXXXXX.tar)"
    rm -f "$tar"
    bh push --quiet --disable-compression "$image" "oci-archive:$tar:$image" >/dev/null
    ctr_k8s images import --all-platforms "$tar" >/dev/null \
        || { rm -f "$tar"; die "ctr images import of $image failed (is containerd up? make k8s-up)"; }
    rm -f "$tar"
    mkdir -p "$IMPORTED"
    printf '%s\n' "$id" >"$IMPORTED/$key"
    log "imported $image into containerd (k8s.io)"
}

# from_scratch <image> <stamp> <buildah config args...> -- <src dst>...: a one-layer image of files
from_scratch() {
    local image="$1" stamp="$2"; shift 2
    local config=()
    while [ "$1" != "--" ]; do config+=("$1"); shift; done
    shift
    stamp_ok "$image" "$stamp" "$image" && return
    local c
    c="$(bh from --pull=never scratch)"
    while [ $# -gt 0 ]; do bh copy --quiet "$c" "$1" "$2" >/dev/null; shift 2; done
    bh config "${config[@]}" "$c"
    bh commit --quiet --rm "$c" "$image" >/dev/null
    set_stamp "$image" "$stamp"
    log "built $image"
}

build_cluster_images() {
    if [ ! -x "$PAUSE_BIN/pause" ] || [ ! -x "$COREDNS_BIN/coredns" ]; then
        die "pause/coredns not built; run scripts/k8s/build.sh"
    fi
    from_scratch "$PAUSE_IMAGE" "$(sha256sum <"$PAUSE_BIN/pause" | cut -c1-16)" \
        --entrypoint '["/pause"]' --user 65535:65535 -- "$PAUSE_BIN/pause" /pause
    from_scratch "$COREDNS_IMAGE" "$(sha256sum <"$COREDNS_BIN/coredns" | cut -c1-16)" \
        --entrypoint '["/coredns"]' --user 65532:65532 --port 1053/udp --port 1053/tcp -- "$COREDNS_BIN/coredns" /coredns
    # busybox: /bin/busybox plus one link per applet, and a world-writable /tmp (added as a tar: modes kept)
    local stamp
    stamp="$(sha256sum </bin/busybox | cut -c1-16)-v2"
    if ! stamp_ok "$BUSYBOX_IMAGE" "$stamp" "$BUSYBOX_IMAGE"; then
        local bb="$BUILDAH_DIR/busybox-root" applet c
        rm -rf "$bb"; mkdir -p "$bb/bin" "$bb/tmp"; chmod 1777 "$bb/tmp"
        cp /bin/busybox "$bb/bin/busybox"
        for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$bb/bin/$applet"; done
        tar -C "$bb" -cf "$bb.tar" bin tmp
        c="$(bh from --pull=never scratch)"
        bh add --quiet "$c" "$bb.tar" / >/dev/null
        bh config --cmd '["/bin/sh"]' --env PATH=/bin --user 65534:65534 "$c"
        bh commit --quiet --rm "$c" "$BUSYBOX_IMAGE" >/dev/null
        rm -rf "$bb" "$bb.tar"
        set_stamp "$BUSYBOX_IMAGE" "$stamp"
        log "built $BUSYBOX_IMAGE"
    fi
}

# The local stand-in of the production base: Debian bookworm from debootstrap with Debian's python3.11.
build_python_base() {
    local stamp="bookworm-minbase-python3.11-v2"
    stamp_ok "$PYBASE_IMAGE" "$stamp" "$PYBASE_IMAGE" && return
    command -v debootstrap >/dev/null || die "debootstrap is missing; run scripts/k8s/build.sh"
    local root="$BUILDAH_DIR/debootstrap-root"
    cleanup_root() {
        local m
        for m in $(awk -v r="$root" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
        rm -rf "$root"
    }
    cleanup_root
    log "debootstrap bookworm (minbase + python3.11) from $DEBIAN_MIRROR; takes a few minutes"
    trap 'cleanup_root; cleanup_buildah_host_state' EXIT
    timed "debootstrap python base" debootstrap --variant=minbase --include=python3.11,ca-certificates,passwd \
        bookworm "$root" "$DEBIAN_MIRROR" >"$IMG_LOGS/debootstrap.log" 2>&1 \
        || die "debootstrap failed (log: $IMG_LOGS/debootstrap.log)"
    # as Debian's own container images: no service ever starts while packages install
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    # debootstrap's resolver is simple: install the rest with apt, with the point-release and security updates
    local security="${DEBIAN_MIRROR%/debian}/debian-security"
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
        "$DEBIAN_MIRROR" "$DEBIAN_MIRROR" "$security" >"$root/etc/apt/sources.list"
    mount -t proc proc "$root/proc"
    timed "apt in the python base" chroot "$root" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get upgrade -y -qq && \
        apt-get install -y -qq --no-install-recommends python3.11-venv python-is-python3 && apt-get clean' \
        >>"$IMG_LOGS/debootstrap.log" 2>&1 || die "apt-get in the debootstrapped base failed (log: $IMG_LOGS/debootstrap.log)"
    umount "$root/proc"
    chroot "$root" dpkg --audit | grep -q . && die "the debootstrapped base has unconfigured packages (chroot $root dpkg --audit)"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
    : >"$root/etc/resolv.conf"
    local c mnt
    c="$(bh from --pull=never scratch)"
    mnt="$(bh mount "$c")"
    cp -a "$root/." "$mnt/"
    bh umount "$c" >/dev/null
    bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
        --cmd '["python3"]' --label org.opencontainers.image.description="Debian bookworm minbase with Debian's python3.11 (debootstrap)" "$c"
    bh commit --quiet --rm "$c" "$PYBASE_IMAGE" >/dev/null
    trap cleanup_buildah_host_state EXIT
    cleanup_root
    set_stamp "$PYBASE_IMAGE" "$stamp"
    log "built $PYBASE_IMAGE"
}

# bud <image> <stamp> <dockerfile> <context> [build args...]
bud() {
    local image="$1" stamp="$2" file="$3" ctx="$4"; shift 4
    stamp_ok "$image" "$stamp" "$image" && return
    local args=() a
    for a in "$@"; do args+=(--build-arg "$a"); done
    log "building $image from $file"
    local name="${image##*/}"; name="${name%%:*}"
    # RUN steps trust what the host trusts (a TLS-inspecting proxy's CA, if any): the host's CA bundle is
    # bind-mounted for the build only and never becomes part of the image
    local ca=/etc/ssl/certs/ca-certificates.crt
    [ -f "$ca" ] && args+=(--volume "$ca:$ca:ro")
    # no --layers: with the vfs driver every cached step is a full copy of the tree; measured, the client's
    # build from the server's cached builder stage was no faster than building it afresh
    timed "buildah bud $name" bh bud --quiet --pull=never --isolation chroot --network host \
        "${args[@]}" -f "$file" -t "$image" "$ctx" >"$IMG_LOGS/bud-$name.log" 2>&1 \
        || { tail -20 "$IMG_LOGS/bud-$name.log" >&2; die "building $image failed (log: $IMG_LOGS/bud-$name.log)"; }
    set_stamp "$image" "$stamp"
}

build_app_images() {
    bh rm --all >/dev/null 2>&1 || true   # working containers of an interrupted build
    build_python_base
    local src base
    base="$(bh images -q "$PYBASE_IMAGE" | head -1)"
    src="$base-$(hash_files pyproject.toml README.md skydriver skymap_scanner client_manager skyscan_contract skydriver_client .dockerignore)"
    bud "$SERVER_IMAGE" "$src-$(hash_files Dockerfile.server)" "$REPO_ROOT/Dockerfile.server" "$REPO_ROOT" "BASE=$PYBASE_IMAGE"
    bud "$CLIENT_IMAGE" "$src-$(hash_files Dockerfile.client)" "$REPO_ROOT/Dockerfile.client" "$REPO_ROOT" "BASE=$PYBASE_IMAGE"
    # FerretDB: the binary scripts/setup.sh built, in a context of its own
    [ -x "$FERRETDB_BIN" ] || die "FerretDB is not built ($FERRETDB_BIN); run 'make setup' (scripts/setup.sh)"
    local fctx="$BUILDAH_DIR/ferretdb-context"
    rm -rf "$fctx"; mkdir -p "$fctx"
    cp "$FERRETDB_BIN" "$fctx/ferretdb"
    cp "$REPO_ROOT/k8s/images/ferretdb/Dockerfile" "$fctx/Dockerfile"
    bud "$FERRETDB_IMAGE" "$base-$(cat "$fctx/ferretdb" "$fctx/Dockerfile" | sha256sum | cut -c1-16)" \
        "$fctx/Dockerfile" "$fctx" "BASE=$PYBASE_IMAGE"
    rm -rf "$fctx"
    bud "$RABBITMQ_IMAGE" "$base-$(hash_files k8s/images/rabbitmq)" "$REPO_ROOT/k8s/images/rabbitmq/Dockerfile" \
        "$REPO_ROOT/k8s/images/rabbitmq" "BASE=$PYBASE_IMAGE"
    # earlier builds of the same tags (vfs keeps whole copies of each layer)
    bh rmi --prune >/dev/null 2>&1 || true
}

# buildah writes outside its --root: containers/image's blob-info cache (/var/lib/containers/cache) and a
# CNI lock (/etc/cni/net.d/cni.lock) even with host networking; remove them when they were not there before
BUILDAH_HOST_PATHS=(/var/lib/containers /etc/cni)
note_buildah_host_state() {
    local p
    rm -f "$BUILDAH_DIR"/.absent-*
    for p in "${BUILDAH_HOST_PATHS[@]}"; do
        if [ ! -e "$p" ]; then touch "$BUILDAH_DIR/.absent-$(key_of "$p")"; fi
    done
}
cleanup_buildah_host_state() {
    local p
    for p in "${BUILDAH_HOST_PATHS[@]}"; do
        if [ -f "$BUILDAH_DIR/.absent-$(key_of "$p")" ]; then rm -rf "$p"; fi
    done
}

main() {
    need_root
    command -v buildah >/dev/null || die "buildah is missing; run scripts/k8s/build.sh"
    mkdir -p "$BUILDAH_DIR" "$IMG_LOGS"
    note_buildah_host_state
    trap cleanup_buildah_host_state EXIT
    case "${1:-}" in
        cluster) build_cluster_images
            import "$PAUSE_IMAGE"; import "$COREDNS_IMAGE"; import "$BUSYBOX_IMAGE" ;;
        app) build_app_images
            import "$SERVER_IMAGE"; import "$CLIENT_IMAGE"; import "$FERRETDB_IMAGE"; import "$RABBITMQ_IMAGE" ;;
        build-app) build_app_images ;;
        *) die "usage: $0 cluster|app|build-app" ;;
    esac
}

main "$@"; exit
