#!/usr/bin/env bash
# Write k8s/overlays/one-node/secrets.env (git-ignored, 0600) with fresh random values, unless it exists:
# the keys of k8s/base/secret.yaml, for the one-node overlay's secretGenerator.
set -euo pipefail
# shellcheck source=scripts/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out="$REPO_ROOT/k8s/overlays/one-node/secrets.env"
[ -f "$out" ] && exit 0
command -v openssl >/dev/null || die "openssl is missing; apt-get install openssl"
umask 077
{
    echo "broker-auth=$(openssl rand -hex 24)"
    # placeholder until per-scan tokens exist (the hardening work): SkyDriver (local auth mode) signs
    # tokens with its own key, which this random value is not
    echo "skyscan-skydriver-auth=$(openssl rand -hex 24)"
    # FerretDB v1 with SQLite has no users: no credentials in the URI
    echo "mongodb-uri=mongodb://mongodb.skydriver.svc:27017/"
    echo "mongodb-root-password=$(openssl rand -hex 24)"
} >"$out.tmp"
mv "$out.tmp" "$out"
log "wrote $out"
