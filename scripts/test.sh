#!/usr/bin/env bash
# The whole test suite: installs what the tests need, checks formatting and
# lints, then runs every test. README's second command and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
