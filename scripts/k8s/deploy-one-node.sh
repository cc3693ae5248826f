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
