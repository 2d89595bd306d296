#!/usr/bin/env bash
# The monthly indicator report at province size on SQLite and PostgreSQL, and the same figures
# computed by DuckDB from the same data, in one run (the indicators issue).
#
# Usage: bench/indicators_vs_duckdb.sh            (from the workspace root)
#   CLIENTS=50000       clients to generate (50,000 gives ~14.6M dose rows)
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres   (SKIP_PG=1 to skip PostgreSQL)
# DuckDB is installed from PyPI into a venv under /tmp, for this script only.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="${CLIENTS:-50000}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bench}"
WORK="$(mktemp -d /tmp/anxin-indicator-bench.XXXXXX)"
VENV=/tmp/anxin-bench-venv
TODAY="$(date -u +%F)"
FROM="$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%F)"
TO="$(date -u -d "$(date -u +%Y-%m-01) -1 day" +%F)"
PG_DB="anxin_bench_$$"
PG_URL="${PG_ADMIN_URL%/*}/$PG_DB"

cleanup() {
  if [[ "${SKIP_PG:-0}" != 1 ]]; then
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $PG_DB" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q duckdb

cargo build --release -q -p anxin-server --example indicator_bench
BENCH="$CARGO_TARGET_DIR/release/examples/indicator_bench"
echo "== $CLIENTS clients, today $TODAY, report month $FROM .. $TO"

echo "== SQLite"
"$BENCH" --url "sqlite://$WORK/anxin.sqlite3?mode=rwc" --today "$TODAY" --clients "$CLIENTS" \
  --generate --report --export-csv "$WORK/csv" | tee "$WORK/sqlite.out"
ls -l "$WORK"/anxin.sqlite3

if [[ "${SKIP_PG:-0}" != 1 ]]; then
  echo "== PostgreSQL ($PG_DB)"
  psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $PG_DB"
  "$BENCH" --url "$PG_URL" --today "$TODAY" --clients "$CLIENTS" --generate
  # The steady state of a running deployment rather than the minute after a 14-million-row
  # load: autovacuum has set the visibility map (so the report's index-only scans skip the
  # heap) and the checkpointer has written the load out.
  psql "$PG_URL" -qc "VACUUM (ANALYZE)"
  psql "$PG_URL" -qc "CHECKPOINT"
  "$BENCH" --url "$PG_URL" --today "$TODAY" --clients "$CLIENTS" --report | tee "$WORK/pg.out"
fi

echo "== DuckDB (on the CSV export of the SQLite database)"
"$VENV/bin/python" bench/duckdb_indicators.py "$WORK/csv" "$FROM" "$TO" | tee "$WORK/duckdb.out"

echo "== Agreement of the figures"
ref="$(grep '^FIGURES' "$WORK/duckdb.out")"
for f in "$WORK"/sqlite.out "$WORK"/pg.out; do
  [[ -f "$f" ]] || continue
  if [[ "$(grep '^FIGURES' "$f")" == "$ref" ]]; then
    echo "$(basename "$f" .out): same as DuckDB"
  else
    echo "$(basename "$f" .out): DIFFERS from DuckDB"; grep '^FIGURES' "$f"; echo "$ref"
  fi
done
