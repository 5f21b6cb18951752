#!/usr/bin/env bash
# A64 instructions per handshake and per message for each mode, counted on
# a Cortex-A53 model by qemu-user with our own counting plugin: a cost model
# that does not depend on the host (qemu's timings say nothing about a Pi;
# instruction counts carry over).
#
#   experiments/insn-count/run.sh [COST_OPS_BINARY]
#
# COST_OPS_BINARY defaults to the release aarch64 build of examples/cost_ops.rs
# (CROSS_PROFILE=release scripts/cross-aarch64.sh). Each operation runs for two
# lengths N1 < N2; (count(N2) - count(N1)) / (N2 - N1) cancels start-up and set-up.
# Prints a markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/cross-aarch64/aarch64-unknown-linux-gnu/release/examples/cost_ops}
[ -x "$BIN" ] || { echo "no $BIN: run CROSS_PROFILE=release scripts/cross-aarch64.sh" >&2; exit 1; }
command -v qemu-aarch64 >/dev/null || { echo "qemu-aarch64 missing (apt-get install qemu-user)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
gcc -shared -fPIC -O2 -Wall -Wextra -o "$TMP/libinsn_count.so" experiments/insn-count/insn_count.c

count() {
    qemu-aarch64 -cpu cortex-a53 -plugin "$TMP/libinsn_count.so,out=$TMP/count" "$BIN" "$1" "$2" >/dev/null
    cat "$TMP/count"
}

echo "| operation | A64 instructions per operation | N1, N2 |"
echo "|---|---|---|"
while read -r op n1 n2; do
    c1=$(count "$op" "$n1")
    c2=$(count "$op" "$n2")
    echo "| $op | $(( (c2 - c1) / (n2 - n1) )) | $n1, $n2 |"
done <<'OPS'
x25519 10 110
handshake-plain 10 110
handshake-lwa 10 110
handshake-tls13 5 25
handshake-mtls13 5 25
handshake-tls12 5 25
handshake-password 1 3
message-plain 100 1100
message-lwa 100 1100
message-tls13 100 1100
OPS
