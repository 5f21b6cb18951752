#!/usr/bin/env bash
# A64 instruction counts: a cost model for Pi-class cores that does not depend
# on the host (qemu's timings say nothing about a Pi; instruction counts carry
# over). Guest instructions are counted by qemu-user with our plugin
# (insn_count.c). Every figure is the difference of two whole-process counts,
# so start-up, set-up and shutdown cancel.
#
#   experiments/insn-count/run.sh [--out DIR] [--cpus "CPU..."] [--ops "OP..."] [COST_OPS_BINARY]
#     Per operation, in memory: examples/cost_ops.rs runs OP for two lengths
#     N1 < N2 (cost_ops --list names them); instructions per operation =
#     (count(N2) - count(N1)) / (N2 - N1). Every operation on every CPU
#     configuration (default: cortex-a53 cortex-a72 cortex-a53-nocrypto).
#     Writes DIR/insn-counts.csv and DIR/insn-counts.md (default DIR:
#     target/insn-count) and prints the markdown. DIR may be an experiment run
#     directory: `mqtt-lwa experiment report DIR` then renders an "A64
#     instruction counts" section from the CSV.
#     COST_OPS_BINARY defaults to the release aarch64 build of examples/cost_ops.rs,
#     built first when missing (CROSS_PROFILE=release scripts/cross-aarch64.sh --cost-ops).
#
#   experiments/insn-count/run.sh e2e [MODES] [EXTRA]
#     End to end: the real aarch64 broker, subscriber and publisher processes
#     (e2e.sh says how). MODES from plain,lwa,tls13,mtls13,tls12 (default
#     plain,lwa,tls13), EXTRA more messages/connections in the long runs
#     (default 100). INSN_CPU=cortex-a53 (default) or any CPU configuration.
#
# CPU configurations: any `qemu-aarch64 -cpu help` model, or MODEL-nocrypto:
# that model with the ARMv8 crypto extensions hidden (AES, PMULL, SHA1, SHA2,
# ...), as on the Raspberry Pi 3 and 4. qemu 7.2 has no CPU property to turn
# them off, so a guest LD_PRELOAD shim (no_crypto_hwcap.c) clears those bits
# from getauxval(AT_HWCAP), where ring, RustCrypto's cpufeatures and Rust's
# std_detect look; they then run their software code. The run checks that this
# worked: ring's AES-128-GCM must cost at least twice as many instructions
# without the extensions as with them, else it fails.
#
# INSN_JOBS=N counts N processes at a time (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=experiments/insn-count

need_tools() {
    command -v qemu-aarch64 >/dev/null || {
        # The dynamic qemu-user: qemu-user-static cannot load plugins.
        SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
        $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q qemu-user "$@" >&2
    }
    command -v aarch64-linux-gnu-gcc >/dev/null || {
        echo "aarch64-linux-gnu-gcc missing: scripts/cross-aarch64.sh --deps" >&2
        exit 1
    }
}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -n "${INSN_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

build_helpers() {
    gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$WORK/libinsn_count.so" "$HERE/insn_count.c"
    aarch64-linux-gnu-gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$WORK/no_crypto_hwcap.so" \
        "$HERE/no_crypto_hwcap.c"
}

# qemu_cmd CPU: the qemu-aarch64 command line for a CPU configuration, one word a line.
qemu_cmd() {
    local cpu=$1
    printf '%s\n' qemu-aarch64 -cpu "${cpu%-nocrypto}"
    case "$cpu" in *-nocrypto) printf '%s\n' -E "LD_PRELOAD=$WORK/no_crypto_hwcap.so" ;; esac
}

if [ "${1:-}" = e2e ]; then
    shift
    # shellcheck source=experiments/insn-count/e2e.sh
    source "$HERE/e2e.sh"
    exit 0
fi

OUT=target/insn-count
CPUS="cortex-a53 cortex-a72 cortex-a53-nocrypto"
OPS=""
BIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --cpus) CPUS=$2; shift 2 ;;
        --ops) OPS=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) BIN=$1; shift ;;
    esac
done
need_tools
if [ -z "$BIN" ]; then
    BIN=${CROSS_TARGET_DIR:-$PWD/target/cross-aarch64}/aarch64-unknown-linux-gnu/release/examples/cost_ops
    # Debug info does not change the instructions executed and only slows the build.
    CARGO_PROFILE_RELEASE_DEBUG=${CARGO_PROFILE_RELEASE_DEBUG:-0} CROSS_PROFILE=release \
        ./scripts/cross-aarch64.sh --cost-ops >&2
fi
[ -x "$BIN" ] || { echo "no $BIN" >&2; exit 1; }
build_helpers
mkdir -p "$OUT"

# Jobs: CPU OP N, one per count.
qemu-aarch64 -cpu cortex-a53 "$BIN" --list >"$WORK/ops"
if [ -n "$OPS" ]; then
    for op in $OPS; do
        grep -q "^$op " "$WORK/ops" || { echo "cost_ops has no operation $op" >&2; exit 1; }
    done
    grep -E "^($(echo "$OPS" | tr ' ' '|')) " "$WORK/ops" >"$WORK/ops.chosen"
    mv "$WORK/ops.chosen" "$WORK/ops"
fi
for cpu in $CPUS; do
    while read -r op n1 n2; do
        printf '%s %s %s\n%s %s %s\n' "$cpu" "$op" "$n1" "$cpu" "$op" "$n2"
    done <"$WORK/ops"
done >"$WORK/jobs"

# count CPU OP N: writes WORK/CPU/OP.N (the count) and appends cost_ops's stderr to the log.
count() {
    local cpu=$1 op=$2 n=$3 qemu
    mkdir -p "$WORK/$cpu"
    mapfile -t qemu < <(qemu_cmd "$cpu")
    "${qemu[@]}" -plugin "$WORK/libinsn_count.so,out=$WORK/$cpu/$op.$n" "$BIN" "$op" "$n" \
        >/dev/null 2>"$WORK/$cpu/$op.$n.err" || {
        echo "$cpu $op $n failed:" >&2
        cat "$WORK/$cpu/$op.$n.err" >&2
        return 1
    }
    echo "$cpu $op $n: $(cat "$WORK/$cpu/$op.$n") instructions $(sort -u "$WORK/$cpu/$op.$n.err" | tr '\n' ' ')" >&2
}
export -f count qemu_cmd
export WORK BIN
start=$SECONDS
xargs -P "${INSN_JOBS:-2}" -L 1 bash -c 'count "$@"' _ <"$WORK/jobs"
echo "counted $(wc -l <"$WORK/jobs") runs in $((SECONDS - start)) s" >&2

CSV=$OUT/insn-counts.csv
echo "operation,cpu,instructions,n1,n2,count_n1,count_n2" >"$CSV"
for cpu in $CPUS; do
    while read -r op n1 n2; do
        c1=$(cat "$WORK/$cpu/$op.$n1")
        c2=$(cat "$WORK/$cpu/$op.$n2")
        # Rounded to the nearest instruction.
        per=$(((c2 - c1 + (n2 - n1) / 2) / (n2 - n1)))
        echo "$op,$cpu,$per,$n1,$n2,$c1,$c2"
    done <"$WORK/ops"
done >>"$CSV"

# The no-crypto configuration must really have taken ring's software AES-GCM.
for cpu in $CPUS; do
    case "$cpu" in *-nocrypto) ;; *) continue ;; esac
    base=${cpu%-nocrypto}
    with=$(awk -F, -v c="$base" '$1 == "aead-aes128gcm-1024" && $2 == c { print $3 }' "$CSV")
    without=$(awk -F, -v c="$cpu" '$1 == "aead-aes128gcm-1024" && $2 == c { print $3 }' "$CSV")
    [ -n "$with" ] && [ -n "$without" ] || continue
    if [ "$without" -lt $((2 * with)) ]; then
        echo "$cpu: AES-128-GCM took $without instructions against $with on $base:" \
            "the crypto extensions were not hidden" >&2
        exit 1
    fi
    echo "$cpu: AES-128-GCM (1024 B) $without instructions against $with with the extensions: software path taken" >&2
done

{
    echo "A64 instructions per operation, counted by qemu-aarch64 $(qemu-aarch64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')"
    echo "with experiments/insn-count/insn_count.c; $(cd "$(dirname "$BIN")" && sha256sum "$(basename "$BIN")" | cut -c1-12) is the cost_ops binary's SHA-256 prefix."
    echo
    printf '| operation |'
    for cpu in $CPUS; do printf ' %s |' "$cpu"; done
    printf ' N1, N2 |\n|---|'
    for _ in $CPUS; do printf -- '---:|'; done
    printf -- '---|\n'
    while read -r op n1 n2; do
        printf '| %s |' "$op"
        for cpu in $CPUS; do
            printf ' %s |' "$(awk -F, -v o="$op" -v c="$cpu" '$1 == o && $2 == c { print $3 }' "$CSV")"
        done
        printf ' %s, %s |\n' "$n1" "$n2"
    done <"$WORK/ops"
    echo
    echo "Cited, not measured: an X25519 shared secret (the x25519-shared row) costs about 514k cycles"
    echo "on Cortex-A53 and 425k on Cortex-A72 (OpenSSL; lib25519-20241004 doc/speed.md)."
} >"$OUT/insn-counts.md"
cat "$OUT/insn-counts.md"
echo "wrote $CSV and $OUT/insn-counts.md" >&2
