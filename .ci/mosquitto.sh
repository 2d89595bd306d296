#!/usr/bin/env bash
# Installs Mosquitto (the MQTT broker) if it is missing: the GPS tests start their own broker on
# a free port and fail, never skip, without it.
set -euo pipefail
if [ -x /usr/sbin/mosquitto ] || [ -x /usr/bin/mosquitto ]; then
    echo "== Mosquitto present"
    exit 0
fi
echo "== installing Mosquitto"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq mosquitto >/dev/null
[ -x /usr/sbin/mosquitto ] || [ -x /usr/bin/mosquitto ] || {
    echo "Mosquitto installation failed" >&2
    exit 1
}
