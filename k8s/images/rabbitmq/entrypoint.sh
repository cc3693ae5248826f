#!/bin/sh
# Writes the node's configuration from the environment, then runs the server in the foreground.
# RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS (from a Secret) create the first user, an administrator, on
# first start; the management plugin (port 15672) is how SkyDriver makes each scan its own vhost and user.
set -eu
conf="${RABBITMQ_CONFIG_FILE:-/var/lib/rabbitmq/rabbitmq.conf}"
plugins="$(dirname "$conf")/enabled_plugins"
umask 077
{
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    echo "loopback_users = none"
    echo "disk_free_limit.absolute = 50MB"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER"; fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS"; fi
} >"$conf"
echo "[rabbitmq_management]." >"$plugins"
RABBITMQ_ENABLED_PLUGINS_FILE="$plugins"
export RABBITMQ_ENABLED_PLUGINS_FILE
exec rabbitmq-server
