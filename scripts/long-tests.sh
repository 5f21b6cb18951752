#!/usr/bin/env bash
# Long randomized runs kept out of scripts/test.sh so the suite stays fast:
# the broker core's random operation model with MODEL_CASES (default 50 000)
# sequences of up to 120 operations (the suite runs 400 of up to 60, plus every
# committed case in proptest-regressions/). A failure is saved there by
# proptest; commit that line with the fix.
#
#   scripts/long-tests.sh              about 4 minutes on a 2-core machine
#   MODEL_CASES=500000 scripts/long-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p mqtt-lwa --release --lib broker::core::tests_random -- --ignored --nocapture
