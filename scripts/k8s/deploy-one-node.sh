#!/usr/bin/env bash
# Apply k8s/overlays/one-node to the running one-node cluster and report what becomes ready: FerretDB,
# RabbitMQ, SkyDriver. Exits 1 if SkyDriver's Deployment does not become available (with the reason).
set -euo pipefail
# shellcheck source=scripts/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TIMEOUT_S="${K8S_DEPLOY_TIMEOUT_S:-180}"
kubectl_admin get --raw /readyz >/dev/null 2>&1 || die "the cluster is not running; run 'make k8s-up' first"
bash "$K8S_SCRIPTS/one-node-secrets.sh"
kubectl_admin apply -k "$REPO_ROOT/k8s/overlays/one-node"

# A pod started before `make k8s-up` re-imported its image (same tag, new build: the kubelet recreates pods
# as soon as the cluster starts, before the images are rebuilt) runs the old build: restart it.
restart_if_older_than_image() { # <kind/name> <pod label app.kubernetes.io/name>
    local pod image started imported
    pod="$(kubectl_admin -n skydriver get pods -l "app.kubernetes.io/name=$2" \
        -o jsonpath='{range .items[*]}{.metadata.name} {.spec.containers[0].image} {.status.startTime}{"\n"}{end}' \
        | head -1)"
    [ -n "$pod" ] || return 0
    read -r _ image started <<<"$pod"
    imported="$K8S_STATE/containerd/imported/$(printf '%s' "$image" | tr '/:' '__')"
    [ -f "$imported" ] && [ -n "$started" ] || return 0
    if [ "$(stat -c %Y "$imported")" -gt "$(date -d "$started" +%s)" ]; then
        log "$1: its pod predates the import of $image; restarting it"
        kubectl_admin -n skydriver rollout restart "$1"
    fi
}
restart_if_older_than_image statefulset/mongodb mongodb
restart_if_older_than_image statefulset/rabbitmq rabbitmq
restart_if_older_than_image deployment/skydriver skydriver
ok=1
for sts in mongodb rabbitmq; do
    if kubectl_admin -n skydriver rollout status "statefulset/$sts" --timeout="${TIMEOUT_S}s"; then
        log "$sts: ready"
    else
        ok=0; log "$sts: NOT ready"; kubectl_admin -n skydriver logs "statefulset/$sts" --tail=20 >&2 || true
    fi
done
if kubectl_admin -n skydriver rollout status deployment/skydriver --timeout="${TIMEOUT_S}s"; then
    log "skydriver: ready"
else
    ok=0
    log "skydriver: NOT ready"
    kubectl_admin -n skydriver get pods -o wide >&2 || true
    kubectl_admin -n skydriver describe pods -l app.kubernetes.io/name=skydriver | sed -n '/^Events:/,$p' | tail -15 >&2 || true
    kubectl_admin -n skydriver logs deployment/skydriver --tail=20 >&2 || true
fi
[ $ok = 1 ] || die "the one-node deployment is not fully ready (see above)"
