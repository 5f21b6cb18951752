#!/usr/bin/env bash
# Cross-builds mqtt-lwa, its benches and the experiment runner for
# aarch64-unknown-linux-gnu (Raspberry Pi 3/4, Cortex-A53) with Debian's
# rustc/cargo (rustup cannot fetch other targets here), then runs a smoke test
# under qemu-user.
#
#   scripts/cross-aarch64.sh            install (as root, once), build bins + benches, smoke
#   scripts/cross-aarch64.sh --smoke    only the mqtt-lwa binary without the experiment
#                                       harness (the smoke does not use it), then the broker +
#                                       LWA publish/subscribe smoke (what scripts/test.sh runs)
#   scripts/cross-aarch64.sh --smoke-build  only build what --smoke runs (scripts/test.sh
#                                       builds it in the background, then runs --smoke)
#   scripts/cross-aarch64.sh --bin      only build the mqtt-lwa binary (experiments/insn-count/
#                                       run.sh e2e)
#   scripts/cross-aarch64.sh --cost-ops only build examples/cost_ops.rs, without the CLI and the
#                                       experiment harness (experiments/insn-count/run.sh)
#   scripts/cross-aarch64.sh --deps     only install the packages (scripts/test.sh runs it
#                                       early, in the background, while it compiles)
#   CROSS_NO_INSTALL=1 ...              skip the apt step
#   CROSS_PROFILE=release ...           optimised build (default: dev)
#   CROSS_TARGET_DIR=DIR ...            where to build (default: target/cross-aarch64)
#
# qemu runs WITHOUT `-L /usr/aarch64-linux-gnu`: with it, any program that
# starts a thread hangs (the loader and libc there do not match). The
# binaries find the arm64 loader and libc that `libc6:arm64` installs under
# /lib/aarch64-linux-gnu through the multiarch path instead.
set -euo pipefail
cd "$(dirname "$0")/.."

WHAT=all
case "${1:-}" in
    "") ;;
    --smoke) WHAT=smoke ;;
    --smoke-build) WHAT=smoke-build ;;
    --bin) WHAT=bin ;;
    --cost-ops) WHAT=cost-ops ;;
    --deps) WHAT=deps ;;
    *) echo "usage: $0 [--smoke|--smoke-build|--bin|--cost-ops|--deps]" >&2; exit 1 ;;
esac
script_start=$(date +%s)

TARGET=aarch64-unknown-linux-gnu
PROFILE=${CROSS_PROFILE:-dev}
TARGET_DIR=${CROSS_TARGET_DIR:-$PWD/target/cross-aarch64}
PACKAGES=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
    libc6-dev-arm64-cross qemu-user-static)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ -z "${CROSS_NO_INSTALL:-}" ]; then
    echo "== installing ${missing[*]}"
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
elif [ ${#missing[@]} -gt 0 ]; then
    echo "missing packages: ${missing[*]}" >&2
    exit 1
fi
[ "$WHAT" = deps ] && exit 0

# Debian's toolchain, not rustup's shims (which come first on PATH).
export PATH=/usr/bin:$PATH
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# Incremental artefacts would double the cross target directory for nothing.
export CARGO_INCREMENTAL=0
CARGO=/usr/bin/cargo
echo "== $($CARGO --version), $(/usr/bin/rustc --version)"

# The experiment harness is its own workspace member (experiments/, binary
# mqtt-lwa-experiment, which `mqtt-lwa experiment` runs from the same directory).
case "$WHAT" in
    # Without the `tls-psk` feature (default on the host): it links OpenSSL, and no arm64
    # libssl is installed here; a native build on the Pi has it once libssl-dev is in.
    all) BUILD_WHAT=(--workspace --bins --benches --examples --no-default-features --features mqtt-lwa/cli) ;;
    # The smoke runs psk, broker, pub and sub only: without the experiment harness the
    # build skips plotters, its image and font crates, hdrhistogram, indicatif and nfq.
    smoke | smoke-build) BUILD_WHAT=(-p mqtt-lwa --bin mqtt-lwa --no-default-features --features cli) ;;
    cost-ops) BUILD_WHAT=(-p mqtt-lwa --example cost_ops --no-default-features) ;;
    *) BUILD_WHAT=(-p mqtt-lwa -p mqtt-lwa-experiments --bins --no-default-features --features mqtt-lwa/cli) ;;
esac
start=$(date +%s)
$CARGO build --locked --target "$TARGET" --target-dir "$TARGET_DIR" --profile "$PROFILE" "${BUILD_WHAT[@]}"
echo "== build took $(($(date +%s) - start)) s"

case "$PROFILE" in dev) OUT=debug ;; *) OUT=$PROFILE ;; esac
BIN_DIR="$TARGET_DIR/$TARGET/$OUT"
QEMU=(qemu-aarch64-static -cpu cortex-a53)

BUILT=$BIN_DIR/mqtt-lwa
[ "$WHAT" = cost-ops ] && BUILT=$BIN_DIR/examples/cost_ops
aarch64-linux-gnu-readelf -h "$BUILT" | grep -q 'AArch64' || {
    echo "$BUILT is not an AArch64 executable" >&2
    exit 1
}
case "$WHAT" in bin | smoke-build | cost-ops) exit 0 ;; esac
echo "== smoke: mqtt-lwa --version under ${QEMU[*]}"
"${QEMU[@]}" "$BIN_DIR/mqtt-lwa" --version

if [ "$WHAT" = all ]; then
    # One bench binary in criterion's test mode: every benchmark runs once.
    bench=$(find "$BIN_DIR/deps" -maxdepth 1 -type f -executable -name 'records-*' -printf '%T@ %p\n' |
        sort -rn | head -n1 | cut -d' ' -f2-)
    [ -n "$bench" ] || { echo "records bench binary not found in $BIN_DIR/deps" >&2; exit 1; }
    echo "== smoke: $(basename "$bench") --test under qemu"
    "${QEMU[@]}" "$bench" --test
fi

# Broker and an LWA client exchanging a message, all three under qemu.
WORK=$(mktemp -d)
BROKER_PID=""
SUB_PID=""
cleanup() {
    for pid in $SUB_PID $BROKER_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
"${QEMU[@]}" "$BIN_DIR/mqtt-lwa" psk add "$WORK/psk" pi-sensor --key-out "$WORK/pi-sensor.key" >/dev/null
printf '[[listener]]\nname = "lwa"\nbind = "127.0.0.1:1883"\nallow_anonymous = false\nlwa_psk_file = "%s"\n' \
    "$WORK/psk" >"$WORK/broker.toml"
echo "== smoke: broker + LWA publish/subscribe under qemu"
smoke_start=$(date +%s)
"${QEMU[@]}" "$BIN_DIR/mqtt-lwa" broker -c "$WORK/broker.toml" -p 0 >"$WORK/broker.out" 2>"$WORK/broker.err" &
BROKER_PID=$!
for _ in $(seq 1 300); do
    grep -q '^listening on' "$WORK/broker.out" 2>/dev/null && break
    kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker.err" >&2; exit 1; }
    sleep 0.1
done
PORT=$(sed -n 's/^listening on [^ ]*:\([0-9]*\) .*/\1/p' "$WORK/broker.out" | head -n1)
[ -n "$PORT" ] || { echo "broker printed no port" >&2; cat "$WORK/broker.err" >&2; exit 1; }
LWA=(-p "$PORT" -V 5 --lwa-id pi-sensor --lwa-key "$WORK/pi-sensor.key")
"${QEMU[@]}" "$BIN_DIR/mqtt-lwa" sub "${LWA[@]}" -t pi/smoke -C 1 -W 60 -q 1 >"$WORK/sub.out" 2>"$WORK/sub.err" &
SUB_PID=$!
# The subscriber is ready once the broker has its subscription: publish until it has the message.
for _ in $(seq 1 60); do
    "${QEMU[@]}" "$BIN_DIR/mqtt-lwa" pub "${LWA[@]}" -t pi/smoke -m "hello from aarch64" -q 1 2>>"$WORK/pub.err" || true
    grep -qx "hello from aarch64" "$WORK/sub.out" 2>/dev/null && break
    sleep 0.5
done
sub_ok=0
wait "$SUB_PID" && sub_ok=1
SUB_PID=""
if [ "$sub_ok" = 1 ] && grep -qx "hello from aarch64" "$WORK/sub.out"; then
    echo "   LWA message delivered through the aarch64 broker ($(($(date +%s) - smoke_start)) s)"
else
    echo "LWA smoke failed" >&2
    cat "$WORK/sub.err" "$WORK/pub.err" "$WORK/broker.err" >&2
    exit 1
fi
echo "== aarch64 cross-build and smoke OK (${BIN_DIR}); $(($(date +%s) - script_start)) s in all"
