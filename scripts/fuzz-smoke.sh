#!/usr/bin/env bash
# Short fuzz run of every cargo-fuzz target (issue 7): SECONDS each (default 20),
# starting from the committed seeds in fuzz/seeds/<target>; new inputs go to a
# scratch directory, a crash leaves its reproducer in fuzz/artifacts/<target>/
# and fails the script. Needs the nightly toolchain; installs cargo-fuzz if missing.
#
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET...]
#   scripts/fuzz-smoke.sh --build      only install cargo-fuzz and build the targets
#                                      (scripts/test.sh runs it in the background early)
#   FUZZ_JOBS=N ...                    targets fuzzed at once (default 1); each is one
#                                      single-threaded libFuzzer process, so N up to the
#                                      number of idle cores keeps every target's
#                                      executions and divides the wall time by N. With
#                                      other work on the cores it cuts executions: on the
#                                      shared build machine FUZZ_JOBS=2 ran in 75 s
#                                      instead of 134 s but each target got about half a
#                                      core (57 s CPU for 110 target-seconds); so the
#                                      suite keeps 1 until a CI run shows 2 idle cores
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
build_only=
if [ "${1:-}" = --build ]; then
    build_only=1
    shift
fi
secs=${1:-20}
shift || true

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz build
[ -n "$build_only" ] && exit 0

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
jobs=${FUZZ_JOBS:-1}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# One target: its libFuzzer output goes to a log, its summary to $scratch/<target>.out,
# a crash leaves $scratch/<target>.failed.
fuzz_one() {
    local target=$1
    local corpus=("$scratch/$target")
    mkdir -p "${corpus[0]}"
    if [ -d "seeds/$target" ]; then
        corpus+=("seeds/$target")
    fi
    {
        echo "== $target (${secs}s)"
        # -rss_limit_mb guards against unbounded allocation; -max_len keeps inputs
        # near real packet sizes; the final stats line reports executions.
        if ! cargo +nightly fuzz run "$target" "${corpus[@]}" -- \
            -max_total_time="$secs" -rss_limit_mb=2048 -max_len=8192 \
            -print_final_stats=1 2>"$scratch/$target.log"; then
            touch "$scratch/$target.failed"
            tail -40 "$scratch/$target.log"
        fi
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|cov: " "$scratch/$target.log" \
            | tail -3 || true
    } >"$scratch/$target.out" 2>&1
}

# The targets run in $jobs lanes; each target's report is printed in list order.
running=0
for target in "${targets[@]}"; do
    fuzz_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
failed=()
for target in "${targets[@]}"; do
    cat "$scratch/$target.out"
    [ -e "$scratch/$target.failed" ] && failed+=("$target")
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-smoke: crashes in: ${failed[*]} (reproducers in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: ${#targets[@]} targets ran ${secs}s each without a crash ($jobs at a time)"
