#!/usr/bin/env bash
# Floods against a running `anxin serve --demo` (release build, embedded SQLite), as an attacker
# on the network would send them:
#
# 1. Logins: LOGIN_CONNECTIONS (2,000) concurrent connections posting logins with unknown
#    usernames for FLOOD_SECONDS, from wrk (bench/login.lua counts the answers by status). During
#    it a nurse gives doses and /healthz is asked, each timed; after it, the server's peak resident
#    memory (VmHWM).
# 2. Device port: GT06_CONNECTIONS (1,100) silent GT06 connections with the server under
#    `ulimit -n 1024` (the port's cap configured at GT06_MAX, 1,000, the cap per address raised
#    to GT06_PER_ADDRESS, 4,096, as if they came from many trackers); then a staff login and
#    /healthz, timed. SKIP_LOGINS=1 runs only this part.
#
#   bash bench/floods.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-2000}
FLOOD_SECONDS=${FLOOD_SECONDS:-15}
GT06_CONNECTIONS=${GT06_CONNECTIONS:-1100}

. bench/common.sh
echo "== building (release)"
cargo build --release --locked -p anxin --bin anxin -q
bin=${CARGO_TARGET_DIR:-target}/release/anxin

if [ -z "${SKIP_LOGINS:-}" ]; then
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
fi

echo "== 2. $GT06_CONNECTIONS silent GT06 connections, server under ulimit -n 1024"
url=http://127.0.0.1:18282
mkdir -p "$work/b"
# All connections come from loopback: the cap per address is raised so that they stand for many
# trackers, and the port's cap is set above what 1,024 descriptors allow, to see it lowered.
(ulimit -n 1024; ANXIN_DATA_DIR="$work/b" ANXIN_LOG=warn ANXIN_GPS__ENABLED=true \
    ANXIN_GPS__GT06_LISTEN=127.0.0.1:18502 ANXIN_GPS__OSMAND_LISTEN= \
    ANXIN_GPS__GT06_MAX_PER_ADDRESS=${GT06_PER_ADDRESS:-4096} ANXIN_GPS__GT06_MAX_CONNECTIONS=${GT06_MAX:-1000} \
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
poll = select.poll()
for s in socks:
    poll.register(s, select.POLLIN)
by_fd = {s.fileno(): s for s in socks}
closed = 0
for fd, _ in poll.poll(0):
    try:
        closed += by_fd[fd].recv(1) == b""
    except OSError:
        closed += 1
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
for _ in $(seq 1 100); do [ -s "$work/gt06.txt" ] && break; sleep 0.2; done
sed 's/^/   /' "$work/gt06.txt"
grep -E 'lowered|gt06 connection refused' "$work/b/server.log" | head -3 | sed 's/^/   server: /' || true
wait "$holder" || true
