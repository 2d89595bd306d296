#!/usr/bin/env bash
# Installs Kannel (bearerbox, smsbox and the fake SMS centre fakesmsc) if it is missing: the SMS
# tests start their own Kannel on free ports and fail, never skip, without it.
set -euo pipefail
if [ -x /usr/sbin/bearerbox ] && [ -x /usr/lib/kannel/test/fakesmsc ]; then
    echo "== Kannel present"
    exit 0
fi
echo "== installing Kannel (kannel, kannel-extras)"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq kannel kannel-extras >/dev/null
# The package starts nothing we need; the tests start their own boxes.
[ -x /usr/sbin/bearerbox ] && [ -x /usr/lib/kannel/test/fakesmsc ] || {
    echo "Kannel installation failed" >&2
    exit 1
}
