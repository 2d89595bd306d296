#!/usr/bin/env bash
# Floods against a running `anxin serve --demo` (release build, embedded SQLite), as an attacker
# on the network would send them:
#
# 1. Logins: LOGIN_CONNECTIONS (2,000) concurrent connections posting logins with unknown
#    usernames for FLOOD_SECONDS, from wrk (bench/login.lua counts the answers by status). During
#    it a nurse gives doses and /healthz is asked, each timed; after it, the server's peak resident
#    memory (VmHWM).
# 2. Device port: GT06_CONNECTIONS (1,100) silent GT06 connections with the server under
#    `ulimit -n 1024`; then a staff login and /healthz, timed.
#
#   bash bench/floods.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-2000}
FLOOD_SECONDS=${FLOOD_SECONDS:-15}
GT06_CONNECTIONS=${GT06_CONNECTIONS:-1100}
PASSWORD=anxin-demo-2026
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

command -v wrk >/dev/null || {
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null
}
echo "== building (release)"
cargo build --release --locked -p anxin --bin anxin -q
bin=${CARGO_TARGET_DIR:-target}/release/anxin
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_for() {
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

echo "== 1. $LOGIN_CONNECTIONS concurrent logins of unknown users for ${FLOOD_SECONDS}s"
url=http://127.0.0.1:18281
mkdir -p "$work/a"
(ulimit -n 16384; ANXIN_DATA_DIR="$work/a" ANXIN_LOG=warn exec "$bin" serve --demo --listen 127.0.0.1:18281) \
    >"$work/a/server.log" 2>&1 &
pids+=($!)
server=$!
wait_for "$url/healthz"
python3 bench/dose_load.py "$url" doctor "$PASSWORD" --clients 60 --prefix FL --setup-only "$work/uics.txt" >/dev/null
nurse=$(login "$url" nurse)
echo "   resident before: $(awk '/VmRSS/ {print $2 / 1024 " MB"}' /proc/$server/status)"
(ulimit -n 16384; exec wrk -t 2 -c "$LOGIN_CONNECTIONS" -d "${FLOOD_SECONDS}s" --timeout 30s --latency \
    -s bench/login.lua "$url") >"$work/wrk.txt" 2>&1 &
flood=$!
sleep 3
worst_dose=0 worst_health=0 doses=0
while kill -0 "$flood" 2>/dev/null && read -r uic; do
    t=$(curl -sS -o "$work/dose.json" -w '%{time_total} %{http_code}' -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $nurse" -d "{\"uic\":\"$uic\"}" "$url/api/v1/doses")
    code=${t#* }
    [ "$code" = 201 ] || [ "$code" = 200 ] || { echo "   dose answered $code: $(cat "$work/dose.json")"; }
    d=$(ms <<<"${t% *}")
    h=$(curl -sS -o /dev/null -w '%{time_total}' "$url/healthz" | ms)
    worst_dose=$(awk -v a="$worst_dose" -v b="$d" 'BEGIN {print (b > a ? b : a)}')
    worst_health=$(awk -v a="$worst_health" -v b="$h" 'BEGIN {print (b > a ? b : a)}')
    doses=$((doses + 1))
    sleep 0.5
done <"$work/uics.txt"
wait "$flood" || true
grep -E '^answers|Requests/sec|^\s+99%' "$work/wrk.txt" | sed 's/^/   /'
echo "   during the flood: $doses doses, slowest ${worst_dose} ms; /healthz slowest ${worst_health} ms"
echo "   peak resident (VmHWM): $(awk '/VmHWM/ {print $2 / 1024 " MB"}' /proc/$server/status)"
sleep 5
echo "   resident 5 s later: $(awk '/VmRSS/ {print $2 / 1024 " MB"}' /proc/$server/status)"
grep -c ' ERROR ' "$work/a/server.log" | sed 's/^/   ERROR lines in the log: /' || true
kill "$server"

echo "== 2. $GT06_CONNECTIONS silent GT06 connections, server under ulimit -n 1024"
url=http://127.0.0.1:18282
mkdir -p "$work/b"
(ulimit -n 1024; ANXIN_DATA_DIR="$work/b" ANXIN_LOG=warn ANXIN_GPS__ENABLED=true \
    ANXIN_GPS__GT06_LISTEN=127.0.0.1:18502 ANXIN_GPS__OSMAND_LISTEN= \
    exec "$bin" serve --demo --listen 127.0.0.1:18282) >"$work/b/server.log" 2>&1 &
pids+=($!)
server=$!
wait_for "$url/healthz"
(ulimit -n 16384; exec python3 - "$GT06_CONNECTIONS" >"$work/gt06.txt" 2>&1 <<'EOF'
import select, socket, sys, time
n = int(sys.argv[1])
socks, failed = [], 0
for _ in range(n):
    try:
        socks.append(socket.create_connection(("127.0.0.1", 18502), timeout=5))
    except OSError:
        failed += 1
time.sleep(1)
readable, _, _ = select.select(socks, [], [], 0) if socks else ([], [], [])
closed = sum(1 for s in readable if s.recv(1) == b"")
print(f"opened {len(socks)}, failed to connect {failed}, closed by the server at once {closed}", flush=True)
time.sleep(12)
EOF
) &
holder=$!
pids+=($holder)
sleep 3
for i in 1 2 3; do
    t=$(curl -sS -o /dev/null -w '%{time_total} %{http_code}' -H 'Content-Type: application/json' \
        -d "{\"username\":\"nurse\",\"password\":\"$PASSWORD\"}" "$url/api/v1/auth/login")
    h=$(curl -sS -o /dev/null -w '%{time_total} %{http_code}' "$url/healthz")
    echo "   staff login $i: $(ms <<<"${t% *}") ms (HTTP ${t#* }); /healthz $(ms <<<"${h% *}") ms (HTTP ${h#* })"
done
sed 's/^/   /' "$work/gt06.txt"
grep -E 'lowered|gt06 connection refused' "$work/b/server.log" | head -3 | sed 's/^/   server: /' || true
wait "$holder" || true
