#!/usr/bin/env bash
# Capacity of the dose endpoint: the highest rate of POST /api/v1/doses whose p99 stays under
# 10 ms, on SQLite (WAL, synchronous=FULL) and, when BENCH_POSTGRES_URL names a server, on
# PostgreSQL; then the same steps against a bare axum + SQLite insert of one row
# (crates/server/examples/bare_insert.rs), the limit of this machine, and the ratio of the two.
#
# Load comes from wrk (Debian's package, installed when missing), closed loop: each step runs
# C connections for STEP_SECONDS; the rate of a step is what the server answered. Each dose is
# for a client not yet dosed today (the clients and their orders are made through the API first,
# by bench/dose_load.py --setup-only; that part is not timed).
#
#   bash bench/capacity.sh
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres bash bench/capacity.sh
#
# Knobs: STEPS ("1 2 4 8 16 32"), STEP_SECONDS (3), CLIENTS_PER_STEP (5000), BARE_ONLY=1 (only
# the bare insert).
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=${STEPS:-"1 2 4 8 16 32"}
STEP_SECONDS=${STEP_SECONDS:-3}
CLIENTS_PER_STEP=${CLIENTS_PER_STEP:-5000}

. bench/common.sh
echo "== building (release)"
cargo build --release --locked -p anxin --bin anxin -q
cargo build --release --locked -p anxin-server --example bare_insert -q
bin=${CARGO_TARGET_DIR:-target}/release

# One wrk step; prints "connections rate p99_ms non2xx".
step() { # URL UICS_FILE TOKEN CONNECTIONS
    local threads=$(( $4 < 2 ? 1 : 2 ))
    local out
    out=$(wrk -t "$threads" -c "$4" -d "${STEP_SECONDS}s" --latency -s bench/dose.lua \
        "$1/api/v1/doses" -- "$2" "$3" "$threads")
    local rate p99 bad
    rate=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {v=$2; u=v; gsub(/[0-9.]/, "", u); gsub(/[a-z]/, "", v);
        if (u == "us") v = v / 1000; else if (u == "s") v = v * 1000; print v}' <<<"$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
    echo "$4 $rate $p99 ${bad:-0}"
}

# Runs every step against URL with UICs from FILE (PER_STEP, default CLIENTS_PER_STEP, per step);
# prints a table and sets BEST to the highest rate with p99 < 10 ms and every answer a 2xx.
steps() { # LABEL URL UICS_FILE TOKEN [PER_STEP]
    local i=0 best=0 at="" per=${5:-$CLIENTS_PER_STEP}
    printf '%-22s %5s %10s %9s %7s\n' "$1" conns "doses/s" "p99 ms" non-2xx
    for c in $STEPS; do
        sed -n "$(( i * per + 1 )),$(( (i + 1) * per ))p" "$3" >"$work/step.txt"
        read -r conns rate p99 bad < <(step "$2" "$work/step.txt" "$4" "$c")
        printf '%-22s %5s %10s %9s %7s\n' "" "$conns" "$rate" "$p99" "$bad"
        if awk -v p="$p99" -v r="$rate" -v b="$best" -v n="$bad" 'BEGIN {exit !(p < 10 && r > b && n == 0)}'; then
            best=$rate
            at="c=$conns p99=${p99}ms"
        fi
        i=$(( i + 1 ))
    done
    echo "   best with p99 < 10 ms: $best doses/s ($at)"
    BEST=$best
}

clients=$(( $(wc -w <<<"$STEPS") * CLIENTS_PER_STEP ))

anxin_run() { # LABEL PORT [DATABASE_URL]
    local dir=$work/$1
    mkdir -p "$dir"
    env ANXIN_DATA_DIR="$dir" ${3:+ANXIN_DATABASE_URL="$3"} ANXIN_LOG=warn \
        "$bin/anxin" serve --demo --listen "127.0.0.1:$2" >"$dir/server.log" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$2/healthz"
    python3 bench/dose_load.py "http://127.0.0.1:$2" doctor "$PASSWORD" \
        --clients "$clients" --setup-only "$dir/uics.txt"
    local token
    token=$(login "http://127.0.0.1:$2" nurse)
    steps "anxin ($1)" "http://127.0.0.1:$2" "$dir/uics.txt" "$token"
    kill "${pids[-1]}"
}

sqlite_best=0 pg_best=""
if [ -z "${BARE_ONLY:-}" ]; then
    echo "== anxin on SQLite"
    anxin_run sqlite 18181
    sqlite_best=$BEST
fi

if [ -n "${BENCH_POSTGRES_URL:-}" ] && [ -z "${BARE_ONLY:-}" ]; then
    echo "== anxin on PostgreSQL"
    psql "$BENCH_POSTGRES_URL" -qc 'DROP DATABASE IF EXISTS anxin_bench' -c 'CREATE DATABASE anxin_bench'
    anxin_run postgres 18182 "${BENCH_POSTGRES_URL%/*}/anxin_bench"
    pg_best=$BEST
fi

echo "== bare axum + SQLite insert"
"$bin/examples/bare_insert" 127.0.0.1:18183 "$work/bare.sqlite3" >/dev/null &
pids+=($!)
sleep 0.5
# The bare server is fast: each step gets enough UICs for 20,000 inserts a second.
bare_per=$(( STEP_SECONDS * 20000 ))
seq -f 'BARE-%07g' 1 $(( $(wc -w <<<"$STEPS") * bare_per )) >"$work/bare.txt"
steps "bare insert (sqlite)" "http://127.0.0.1:18183" "$work/bare.txt" - "$bare_per"
bare_best=$BEST

echo "== summary (doses/s at p99 < 10 ms, $(nproc) cores)"
echo "   anxin SQLite:     $sqlite_best"
[ -n "$pg_best" ] && echo "   anxin PostgreSQL: $pg_best"
echo "   bare insert:      $bare_best"
awk -v a="$sqlite_best" -v b="$bare_best" 'BEGIN { if (b > 0) printf "   anxin SQLite / bare insert: %.2f\n", a / b }'
