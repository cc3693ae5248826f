#!/usr/bin/env bash
# Install everything this project needs on a fresh Debian machine (run as root):
# RabbitMQ from Debian, FerretDB built from its Go module at a pinned version, and a Python venv.
# Idempotent: a second run re-uses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

FERRETDB_VERSION="v1.24.2"
CACHE_DIR="${SKYDRIVER_CACHE_DIR:-$HOME/.cache/skydriver}"
FERRETDB_BIN="$CACHE_DIR/ferretdb-$FERRETDB_VERSION"
VENV="${SKYDRIVER_VENV:-.venv}"

log() { printf '[setup] %s\n' "$*" >&2; }

# --- RabbitMQ, and curl for the README's examples (Debian packages) ----------------------------
if ! command -v rabbitmq-server >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    log "installing rabbitmq-server and curl from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq rabbitmq-server curl >/dev/null
fi

# --- FerretDB (Go module, pinned) ------------------------------------------------------------
if [ ! -x "$FERRETDB_BIN" ]; then
    command -v go >/dev/null 2>&1 || { log "Go is needed to build FerretDB; install golang"; exit 1; }
    log "building FerretDB $FERRETDB_VERSION from its Go module (once; cached at $FERRETDB_BIN)"
    mkdir -p "$CACHE_DIR"
    go mod download -x "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" 2>/dev/null || \
        go mod download "github.com/FerretDB/FerretDB@$FERRETDB_VERSION"
    modsrc="$(go env GOMODCACHE)/github.com/!ferret!d!b/!ferret!d!b@$FERRETDB_VERSION"
    work="$(mktemp -d)"
    cp -r "$modsrc" "$work/src"
    chmod -R u+w "$work/src"
    # The module ships without build/version/version.txt, which the binary needs at start-up.
    echo "$FERRETDB_VERSION" > "$work/src/build/version/version.txt"
    (cd "$work/src" && CGO_ENABLED=0 go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb)
    mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
    rm -rf "$work"
fi
mkdir -p .state/bin
ln -sf "$FERRETDB_BIN" .state/bin/ferretdb

# --- GCN notice schema (npm package, pinned; the products tests validate notices against it) ----
GCN_SCHEMA_VERSION="7.2.3"
GCN_SCHEMA_PREFIX=".state/npm"
if [ ! -f "$GCN_SCHEMA_PREFIX/.installed-gcn-schema-$GCN_SCHEMA_VERSION" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        log "installing npm from Debian (for the GCN schema package)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq npm >/dev/null
    fi
    log "installing @nasa-gcn/schema@$GCN_SCHEMA_VERSION into $GCN_SCHEMA_PREFIX (npm cache reused)"
    mkdir -p "$GCN_SCHEMA_PREFIX"
    npm install --prefix "$GCN_SCHEMA_PREFIX" --prefer-offline --no-audit --no-fund --ignore-scripts \
        --save-exact "@nasa-gcn/schema@$GCN_SCHEMA_VERSION" >/dev/null
    rm -f "$GCN_SCHEMA_PREFIX"/.installed-gcn-schema-*
    touch "$GCN_SCHEMA_PREFIX/.installed-gcn-schema-$GCN_SCHEMA_VERSION"
fi

# --- Python ----------------------------------------------------------------------------------
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x "$VENV/bin/python" ]; then
    log "creating the Python venv in $VENV"
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    log "installing Python packages (pip install -e .[dev])"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e ".[dev]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
log "ready"
