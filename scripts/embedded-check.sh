#!/usr/bin/env bash
# Checks that lwa-core is what it claims to be, a no_std core that fits a
# microcontroller (issue 15 B): installs the bare-metal targets with rustup,
# builds lwa-core with its RustCrypto backend (no ring, no std) for a
# Cortex-M4F/M7 (thumbv7em-none-eabihf) and a RISC-V MCU without atomics
# (riscv32imc-unknown-none-elf), then links the bare-metal example client
# (lwa-core/examples/embedded-client: handshake + one record each way) for
# thumbv7em and prints its flash and RAM sections (lwa-core/README.md has the table).
#
# Builds in target/embedded, so it does not wait for the host build's lock
# when scripts/test.sh runs it as a background phase.
#
#   scripts/embedded-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(thumbv7em-none-eabihf riscv32imc-unknown-none-elf)
target_dir=${EMBEDDED_TARGET_DIR:-$PWD/target/embedded}

rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
    echo "== embedded: lwa-core (RustCrypto backend, no_std) for $t"
    cargo build --locked -p lwa-core --release --target "$t" --target-dir "$target_dir"
done

echo "== embedded: example client for thumbv7em-none-eabihf"
cargo build --locked --release --target thumbv7em-none-eabihf --target-dir "$target_dir" \
    --manifest-path lwa-core/examples/embedded-client/Cargo.toml
elf=$target_dir/thumbv7em-none-eabihf/release/lwa-embedded-client
# Flash = .text + .rodata + .data (its initial values); RAM = .data + .bss
# (.bss holds the example's 4 KiB heap arena); the stack is not counted.
size -A "$elf"
size -A "$elf" | awk '
    $1 == ".text" { text = $2 } $1 == ".rodata" { ro = $2 }
    $1 == ".data" { data = $2 } $1 == ".bss" { bss = $2 }
    END {
        printf "== embedded: flash %d B (text %d, rodata %d, data %d); RAM %d B (data %d, bss %d incl. 4096 B heap)\n",
            text + ro + data, text, ro, data, data + bss, data, bss
    }'
