# Helpers shared by the bench scripts (sourced, not run): wrk from Debian when missing, the
# release build, a scratch directory cleaned up with every process started, waiting for a
# server, logging in as a demo account, milliseconds from seconds.
PASSWORD=anxin-demo-2026
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

command -v wrk >/dev/null || {
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null
}

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_for() { # URL
    for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
    echo "no answer from $1" >&2
    return 1
}

login() { # URL USER -> token
    curl -fsS -H 'Content-Type: application/json' \
        -d "{\"username\":\"$2\",\"password\":\"$PASSWORD\"}" "$1/api/v1/auth/login" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

ms() { awk '{printf "%.1f", $1 * 1000}'; }
