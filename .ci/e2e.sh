#!/usr/bin/env bash
# The end-to-end suite (e2e/run.mjs): installs Debian's Chromium and CJK fonts when missing,
# installs playwright-core from e2e/package-lock.json, builds the anxin binary and walks the
# centre's day in both languages in headless Chromium, on SQLite and, when
# ANXIN_TEST_POSTGRES_URL is set, again on PostgreSQL. Exits non-zero when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then
    echo "== e2e: installing chromium and fonts-noto-cjk"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
command -v node >/dev/null && command -v npm >/dev/null || {
    echo "== e2e: installing nodejs and npm"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
}

echo "== e2e: npm ci"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)

echo "== e2e: cargo build -p anxin"
cargo build -p anxin --bin anxin --locked
bin="${CARGO_TARGET_DIR:-target}/debug/anxin"

echo "== e2e: the centre's day in headless Chromium (zh-CN, en), embedded SQLite"
ANXIN_BIN="$bin" node --test --test-concurrency=1 e2e/run.mjs

# The same day on PostgreSQL, the backend of a city's centres (ANXIN_TEST_POSTGRES_URL, which
# .ci/run sets after starting the server).
if [ -n "${ANXIN_TEST_POSTGRES_URL:-}" ]; then
    echo "== e2e: the centre's day in headless Chromium (zh-CN, en), PostgreSQL"
    E2E_POSTGRES_URL="$ANXIN_TEST_POSTGRES_URL" ANXIN_BIN="$bin" \
        node --test --test-concurrency=1 e2e/run.mjs
fi
