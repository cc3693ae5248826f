#!/usr/bin/env bash
# Start / stop / check the two services the project needs on this machine:
#   FerretDB (MongoDB wire protocol, SQLite backend) on 127.0.0.1:$FERRETDB_PORT
#   RabbitMQ on 127.0.0.1:$RABBITMQ_PORT, its management API on 127.0.0.1:$RABBITMQ_MANAGEMENT_PORT (SkyDriver
#   makes each scan its own vhost and user through it); its Erlang distribution port and epmd on 127.0.0.1
# Nothing listens on any other address.
# Idempotent: `up` leaves running services alone; `down` on stopped services is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

FERRETDB_PORT="${FERRETDB_PORT:-27017}"
RABBITMQ_PORT="${RABBITMQ_PORT:-5672}"
RABBITMQ_MANAGEMENT_PORT="${RABBITMQ_MANAGEMENT_PORT:-15672}"
STATE="${SERVICES_STATE_DIR:-.state}"
FERRETDB_PID="$STATE/ferretdb.pid"
UP_TIMEOUT_S="${SERVICES_UP_TIMEOUT_S:-60}"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ferretdb_running() { [ -f "$FERRETDB_PID" ] && kill -0 "$(cat "$FERRETDB_PID")" 2>/dev/null; }
rabbit_running() { timeout 20 rabbitmqctl -q status >/dev/null 2>&1; }

wait_for() {  # wait_for <what> <command...>: poll until the command succeeds or the deadline passes
    local what="$1"; shift
    local deadline=$((SECONDS + UP_TIMEOUT_S))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.3
    done
}

up_ferretdb() {
    if ferretdb_running; then log "FerretDB already running (pid $(cat "$FERRETDB_PID"))"; return; fi
    [ -x "$STATE/bin/ferretdb" ] || die "FerretDB is not built; run scripts/setup.sh first"
    port_open "$FERRETDB_PORT" && die "port $FERRETDB_PORT is already taken by another program; stop it or set FERRETDB_PORT"
    mkdir -p "$STATE/ferretdb/data"
    "$STATE/bin/ferretdb" --handler=sqlite --sqlite-url="file:$PWD/$STATE/ferretdb/data/" \
        --state-dir="$PWD/$STATE/ferretdb" --listen-addr="127.0.0.1:$FERRETDB_PORT" \
        --debug-addr="-" --telemetry=disable --log-level=WARN \
        >"$STATE/ferretdb/ferretdb.log" 2>&1 &
    echo $! >"$FERRETDB_PID"
    if ! wait_for FerretDB port_open "$FERRETDB_PORT"; then
        tail -20 "$STATE/ferretdb/ferretdb.log" >&2 || true
        die "FerretDB did not come up on 127.0.0.1:$FERRETDB_PORT within ${UP_TIMEOUT_S}s (log: $STATE/ferretdb/ferretdb.log)"
    fi
    kill -0 "$(cat "$FERRETDB_PID")" 2>/dev/null || die "FerretDB exited at start-up (log: $STATE/ferretdb/ferretdb.log)"
    log "FerretDB up on 127.0.0.1:$FERRETDB_PORT"
}

up_rabbitmq() {
    command -v rabbitmq-server >/dev/null || die "rabbitmq-server is not installed; run scripts/setup.sh first"
    if port_open "$RABBITMQ_PORT"; then
        rabbit_running && { log "RabbitMQ already running"; return; }
        die "port $RABBITMQ_PORT is already taken by a program that is not RabbitMQ; stop it or set RABBITMQ_PORT"
    fi
    local conf="$PWD/$STATE/rabbitmq"
    mkdir -p "$conf"
    cat >"$conf/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$RABBITMQ_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MANAGEMENT_PORT
CONF
    echo "[rabbitmq_management]." >"$conf/enabled_plugins"
    ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_CONFIG_FILE="$conf/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$conf/enabled_plugins" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RABBITMQ_PORT" \
        rabbitmq-server -detached >/dev/null 2>&1 \
        || die "rabbitmq-server -detached failed (see /var/log/rabbitmq/)"
    if ! wait_for RabbitMQ port_open "$RABBITMQ_PORT"; then
        die "RabbitMQ did not come up on 127.0.0.1:$RABBITMQ_PORT within ${UP_TIMEOUT_S}s (see /var/log/rabbitmq/)"
    fi
    wait_for RabbitMQ rabbit_running || die "RabbitMQ port is open but rabbitmqctl cannot reach the node"
    wait_for "RabbitMQ management" port_open "$RABBITMQ_MANAGEMENT_PORT" \
        || die "RabbitMQ's management API did not come up on 127.0.0.1:$RABBITMQ_MANAGEMENT_PORT"
    log "RabbitMQ up on 127.0.0.1:$RABBITMQ_PORT (management API on :$RABBITMQ_MANAGEMENT_PORT)"
}

down_ferretdb() {
    if ferretdb_running; then
        kill "$(cat "$FERRETDB_PID")" 2>/dev/null || true
        wait_for "FerretDB exit" bash -c "! kill -0 $(cat "$FERRETDB_PID") 2>/dev/null" || kill -9 "$(cat "$FERRETDB_PID")" 2>/dev/null || true
        log "FerretDB stopped"
    fi
    rm -f "$FERRETDB_PID"
}

down_rabbitmq() {
    if rabbit_running; then
        timeout 60 rabbitmqctl -q stop >/dev/null 2>&1 || true
        log "RabbitMQ stopped"
    fi
    epmd -kill >/dev/null 2>&1 || true
}

case "${1:-}" in
    up) mkdir -p "$STATE"; up_ferretdb; up_rabbitmq ;;
    down) down_ferretdb; down_rabbitmq ;;
    status)
        ferretdb_running && log "FerretDB: running" || log "FerretDB: stopped"
        rabbit_running && log "RabbitMQ: running" || log "RabbitMQ: stopped" ;;
    *) die "usage: $0 up|down|status" ;;
esac
