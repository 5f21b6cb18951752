#!/usr/bin/env bash
# The whole test suite: installs what the tests need, checks formatting and
# lints, runs every test (unit, property, interop against Debian's mosquitto
# and paho-mqtt, the CI model checks of proofs/, the quick experiment), then a
# short run of every fuzz target. README's second command and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
# libFuzzer smoke: every target briefly (FUZZ_SECONDS each, default 10).
./scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-10}"
# aarch64 (Raspberry Pi): cross-build with Debian's toolchain, broker + LWA pub/sub under qemu.
./scripts/cross-aarch64.sh --smoke
