#!/bin/sh
# Writes the node's configuration from the environment, then runs the server in the foreground.
# RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS (from a Secret) create the first user on first start.
set -eu
conf="${RABBITMQ_CONFIG_FILE:-/var/lib/rabbitmq/rabbitmq.conf}"
umask 077
{
    echo "listeners.tcp.default = 5672"
    echo "loopback_users = none"
    echo "disk_free_limit.absolute = 50MB"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER"; fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS"; fi
} >"$conf"
exec rabbitmq-server
