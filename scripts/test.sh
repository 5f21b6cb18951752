#!/usr/bin/env bash
# The whole test suite: installs what the tests need, checks formatting and
# lints, runs every test (unit, property, interop against Debian's mosquitto
# and paho-mqtt, the CI model checks of proofs/, the quick experiment), then a
# short run of every fuzz target and the aarch64 cross-build smoke under qemu;
# beside them, lwa-core's bare-metal builds (scripts/embedded-check.sh), whose example then
# runs on an emulated Cortex-M4.
# README's second command and .ci/run call this.
#
# It has to finish within 20 minutes on a fresh 2-core CI machine, so the long
# phases overlap where a core or the network would otherwise sit idle: the apt
# installs run while cargo compiles, and the fuzz build (cargo-fuzz, ASan) and
# the aarch64 cross build (and the small bare-metal build of lwa-core) run in the
# background at the lowest priority, taking
# the cores that the host build and the socket-bound tests leave idle. Their
# output goes to target/suite-logs/ and is printed when they are waited for.
# SUITE_SERIAL=1 runs every phase in the foreground, one after the other.
# At the end every lock file must be as committed, and a table gives each phase's wall time
# and the suite's CPU time.
set -euo pipefail
set -m # every background phase in its own process group, so a failure can stop it whole
cd "$(dirname "$0")/.."

suite_start=$SECONDS
echo "== suite: $(df -h --output=avail . | tail -n1 | tr -d ' ') free on the disk at the start"
logs=target/suite-logs
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs"/*.time
phase_rows=()

# phase NAME COMMAND...: runs COMMAND in the foreground and records its wall time.
phase() {
    local name=$1 start=$SECONDS
    shift
    echo "== suite: $name"
    "$@" || {
        local rc=$?
        phase_rows+=("$(printf '%-14s %5d s FAILED' "$name" $((SECONDS - start)))")
        return "$rc"
    }
    phase_rows+=("$(printf '%-14s %5d s' "$name" $((SECONDS - start)))")
}

# bg_phase NAME COMMAND...: starts COMMAND in the background at nice 19 (foreground
# with SUITE_SERIAL=1); wait_phase NAME prints its log and fails if it failed.
declare -A bg_pid=()
bg_phase() {
    local name=$1
    shift
    if [ -n "${SUITE_SERIAL:-}" ]; then
        phase "$name" "$@"
        return
    fi
    echo "== suite: $name (background, log in $logs/$name.log)"
    (
        start=$SECONDS
        rc=0
        nice -n 19 "$@" >"$logs/$name.log" 2>&1 || rc=$?
        echo "$((SECONDS - start))" >"$logs/$name.time"
        exit "$rc"
    ) &
    bg_pid[$name]=$!
}
wait_phase() {
    local name=$1 rc=0
    [ -n "${bg_pid[$name]:-}" ] || return 0
    wait "${bg_pid[$name]}" || rc=$?
    unset "bg_pid[$name]"
    echo "== suite: $name (background) finished, rc $rc:"
    cat "$logs/$name.log"
    phase_rows+=("$(printf '%-14s %5d s (background)' "$name" "$(cat "$logs/$name.time" 2>/dev/null || echo 0)")")
    return "$rc"
}

summary() {
    local rc=$?
    for name in "${!bg_pid[@]}"; do
        kill -- "-${bg_pid[$name]}" 2>/dev/null || true
        echo "== suite: stopped background phase $name (log in $logs/$name.log)"
    done
    wait 2>/dev/null || true
    echo "== suite: phases (wall time)"
    printf '   %s\n' "${phase_rows[@]}"
    # bash's `times` (a builtin, not in a subshell, which would count nothing): user and
    # system CPU time of the script's finished children.
    times >"$logs/times"
    echo "   total $((SECONDS - suite_start)) s wall; CPU of all phases (user, system): $(tail -n1 "$logs/times")"
    # A full disk shows as odd failures (a linker killed by SIGBUS): say how much was left.
    echo "   disk: $(df -h --output=avail,size . | tail -n1 | awk '{print $1 " free of " $2}'), target/ $(du -sh target 2>/dev/null | cut -f1), fuzz/target $(du -sh fuzz/target 2>/dev/null | cut -f1)"
    if [ "$rc" -eq 0 ]; then echo "== suite: ok"; else echo "== suite: FAILED (exit status $rc)" >&2; fi
}
trap summary EXIT

# What cargo itself needs to compile (OpenSSL's headers for the `tls-psk` feature), first;
# then the rest of apt (install-deps.sh, then the cross toolchain) while fmt, clippy and the
# builds run; both use apt, so one after the other.
phase build-deps ./scripts/install-deps.sh --build
bg_phase deps bash -c './scripts/install-deps.sh && ./scripts/cross-aarch64.sh --deps'
phase fmt cargo fmt --all --check
# cargo-fuzz and the release + ASan build of the fuzz targets (their own workspace).
bg_phase fuzz-build ./scripts/fuzz-smoke.sh --build
# lwa-core (RustCrypto backend, no_std) for thumbv7em and riscv32imc, and the bare-metal
# example client's flash/RAM sections (issue 15 B); its own target dir, so no lock waits.
# Measured from cold: 51 s wall, 29 s user CPU (2 cores, another build running).
bg_phase embedded ./scripts/embedded-check.sh --build
phase clippy cargo clippy --workspace --all-targets -- -D warnings
phase test-build cargo test --workspace --all-targets --no-run
wait_phase deps
# The aarch64 build needs the cross toolchain from the deps phase.
bg_phase cross-build ./scripts/cross-aarch64.sh --smoke-build
phase test cargo test --workspace --all-targets
wait_phase embedded
# The bare-metal example on an emulated Cortex-M4 (qemu-system-arm from the deps phase):
# it must run through, and its instruction counts are printed.
phase embedded-run ./scripts/embedded-check.sh --run
# libFuzzer smoke: every target briefly (FUZZ_SECONDS each, default 10).
wait_phase fuzz-build
phase fuzz ./scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-10}"
# aarch64 (Raspberry Pi): broker + LWA pub/sub under qemu, with the binary built above.
wait_phase cross-build
phase cross-smoke ./scripts/cross-aarch64.sh --smoke
# Every lock file is committed as the builds above need it: a build that had to rewrite one
# (a dependency added or dropped without committing its lock) fails here, not on a user's
# `--locked` build.
locks_unchanged() {
    git diff --exit-code --stat -- Cargo.lock fuzz/Cargo.lock lwa-core/examples/embedded-client/Cargo.lock || {
        echo "a build rewrote the lock files above: commit them" >&2
        return 1
    }
}
if git rev-parse --git-dir >/dev/null 2>&1; then phase locks locks_unchanged; fi
