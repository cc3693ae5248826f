#!/usr/bin/env bash
# Write the one-node overlay's Secret inputs (git-ignored, 0600) with fresh random values, unless they exist:
# k8s/overlays/one-node/secrets.env (the one-line keys of k8s/base/secret.yaml) and signing-key.pem
# (SkyDriver's Ed25519 key for local tokens; a file, since an env file holds one line per key).
# An older secrets.env without broker-admin-password (before per-scan broker users) is replaced.
set -euo pipefail
# shellcheck source=scripts/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$REPO_ROOT/k8s/overlays/one-node"
env="$dir/secrets.env"
key="$dir/signing-key.pem"
command -v openssl >/dev/null || die "openssl is missing; apt-get install openssl"
umask 077
if ! grep -q '^broker-admin-password=' "$env" 2>/dev/null; then
    {
        echo "broker-admin-password=$(openssl rand -hex 24)"
        # FerretDB v1 with SQLite has no users: no credentials in the URI
        echo "mongodb-uri=mongodb://mongodb.skydriver.svc:27017/"
        echo "mongodb-root-password=$(openssl rand -hex 24)"
    } >"$env.tmp"
    mv "$env.tmp" "$env"
    log "wrote $env"
fi
if [ ! -s "$key" ]; then
    openssl genpkey -algorithm ed25519 -out "$key.tmp"
    mv "$key.tmp" "$key"
    log "wrote $key"
fi
