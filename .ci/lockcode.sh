#!/usr/bin/env bash
# Checks specific to the lockcode / anxin-boxsim crates that
# `cargo test --workspace` does not cover. Called by .ci/run.
#
# 1. no_std build: crates/lockcode-nostd-check (feature `check`) is #![no_std]
#    with its own #[panic_handler], built as a staticlib with -C panic=abort.
#    Any std dependency under lockcode brings std's panic handler and the
#    build fails. Own target dir, so RUSTFLAGS do not invalidate other builds;
#    explicit --target, so RUSTFLAGS do not reach proc-macros/build scripts.
# 2. The crate builds with no default features and clippy is clean.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_TRIPLE="${LOCKCODE_TARGET:-x86_64-unknown-linux-gnu}"
NOSTD_TARGET_DIR="${LOCKCODE_NOSTD_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/lockcode-nostd}"

echo "== lockcode: no_std staticlib build (panic=abort)"
RUSTFLAGS="-C panic=abort -D warnings" CARGO_TARGET_DIR="$NOSTD_TARGET_DIR" \
    cargo build -p lockcode-nostd-check --features check \
    --target "$TARGET_TRIPLE" --release

lib="$NOSTD_TARGET_DIR/$TARGET_TRIPLE/release/liblockcode_nostd_check.a"
test -f "$lib" || { echo "missing $lib" >&2; exit 1; }
if command -v nm >/dev/null; then
    syms="$(nm -g --defined-only "$lib" 2>/dev/null || true)"
    grep -q anxin_lockcode_check <<<"$syms" \
        || { echo "anxin_lockcode_check not exported from $lib" >&2; exit 1; }
fi

echo "== lockcode: no default features"
cargo build -p lockcode --no-default-features

echo "== lockcode/boxsim: clippy"
cargo clippy -p lockcode -p anxin-boxsim -p lockcode-nostd-check --all-targets -- -D warnings

echo "lockcode checks passed"
