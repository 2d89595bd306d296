#!/usr/bin/env bash
# The lock box firmware (firmware/, its own workspace): installs the ARM
# toolchain and QEMU from Debian if missing, builds the firmware for
# thumbv7m-none-eabi, checks its size budget, and runs the QEMU tests
# (crates/boxproto/tests/qemu.rs with ANXIN_FIRMWARE set, so they never skip
# here). Called by .ci/run; runnable alone: `bash .ci/firmware.sh`.
#
# Why this toolchain: the rustup toolchains on these machines have no ARM
# target and no library source. Debian's rustc-web/cargo-web (1.96) with
# rust-web-src compile `core` for the target with -Z build-std=core
# (RUSTC_BOOTSTRAP=1); Debian has no rust-lld, so arm-none-eabi-ld links.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
[ -x /usr/bin/rustc ] && /usr/bin/rustc --version | grep -q '^rustc 1\.9[6-9]' || need+=(rustc-web)
[ -x /usr/bin/cargo ] || need+=(cargo-web)
[ -d /usr/lib/rustlib/src/rust/library/core ] || need+=(rust-web-src)
command -v arm-none-eabi-ld >/dev/null || need+=(binutils-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
if [ "${#need[@]}" -gt 0 ]; then
    echo "== firmware: installing ${need[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== firmware: cargo fmt --check"
(cd firmware && cargo fmt -- --check)

echo "== firmware: build (thumbv7m-none-eabi, -Z build-std=core)"
export FIRMWARE_TARGET_DIR="${FIRMWARE_TARGET_DIR:-$PWD/firmware/target}"
(cd firmware && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$FIRMWARE_TARGET_DIR" \
    /usr/bin/cargo build --release --locked -j "${CARGO_BUILD_JOBS:-1}" -Z build-std=core)
FW="$FIRMWARE_TARGET_DIR/thumbv7m-none-eabi/release/anxin-box-firmware"
test -f "$FW" || { echo "missing $FW" >&2; exit 1; }

echo "== firmware: size (budget: flash 65536; RAM 16384 = statics below + the stack high-water mark the QEMU tests print)"
arm-none-eabi-size -A "$FW" | grep -E '^\.(vector_table|text|rodata|data|bss|uninit) ' || true
read -r text data bss _ < <(arm-none-eabi-size "$FW" | awk 'NR==2 {print $1, $2, $3}')
echo "flash=$((text + data)) bytes, static RAM=$((data + bss)) bytes"
[ $((text + data)) -le 65536 ] || { echo "firmware flash $((text + data)) > 65536" >&2; exit 1; }
# The QEMU tests hold the stack to 15 KiB; the statics get the rest of the 16 KiB.
[ $((data + bss)) -le 1024 ] || { echo "firmware statics $((data + bss)) > 1024" >&2; exit 1; }

echo "== firmware: QEMU tests"
ANXIN_FIRMWARE="$FW" ANXIN_ENTRY_BUDGET=15000 cargo test -p boxproto --test qemu --locked -- --test-threads=1 --nocapture
