#!/usr/bin/env bash
# Checks that lwa-core is what it claims to be, a no_std core that fits a
# microcontroller (issue 15 B): installs the bare-metal targets with rustup,
# builds lwa-core with its RustCrypto backend (no ring, no std) for a
# Cortex-M4F/M7 (thumbv7em-none-eabihf) and a RISC-V MCU without atomics
# (riscv32imc-unknown-none-elf), then links the bare-metal example client
# (lwa-core/examples/embedded-client: handshake + one record each way) for
# thumbv7em and prints its flash and RAM sections (lwa-core/README.md has the table).
# Then it runs the example on an emulated Cortex-M4 (QEMU's mps2-an386, the
# example's `qemu` feature): each variant must exit 0 (every record came back
# right), and a QEMU TCG plugin of ours (experiments/insn-count/insn_count.c)
# counts the instructions it executed; by difference between a variant that
# stops before the handshake, one that stops after it and the whole run, the
# instructions per handshake (client and broker side) and per record pair, for
# LWA1 and for LWA2.
#
# Builds in target/embedded, so it does not wait for the host build's lock
# when scripts/test.sh runs it as a background phase.
#
#   scripts/embedded-check.sh           build, sizes, then run under qemu-system-arm
#   scripts/embedded-check.sh --build   build and sizes only (the suite's background phase)
#   scripts/embedded-check.sh --run     only the qemu runs of what --build built (needs
#                                       qemu-system-arm and gcc: scripts/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(thumbv7em-none-eabihf riscv32imc-unknown-none-elf)
target_dir=${EMBEDDED_TARGET_DIR:-$PWD/target/embedded}
what=${1:-all}
variants=(none handshake all handshake2 all2)
example=lwa-core/examples/embedded-client/Cargo.toml

# run_qemu: each variant under qemu-system-arm with the counting plugin; the counts and
# their differences.
run_qemu() {
    command -v qemu-system-arm >/dev/null || { echo "embedded: qemu-system-arm missing (scripts/install-deps.sh)" >&2; return 1; }
    local plugin=$target_dir/libinsn_count.so
    gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$plugin" experiments/insn-count/insn_count.c
    declare -A count
    for ops in "${variants[@]}"; do
        local elf=$target_dir/qemu-$ops.elf
        rm -f "$target_dir/insn-$ops.txt"
        timeout 120 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
            -semihosting-config enable=on,target=native \
            -plugin "$plugin,out=$target_dir/insn-$ops.txt" -kernel "$elf" || {
            echo "embedded: the $ops variant failed on the emulated Cortex-M4 (exit $?)" >&2
            return 1
        }
        count[$ops]=$(cat "$target_dir/insn-$ops.txt")
    done
    echo "== embedded: Cortex-M4 (qemu-system-arm mps2-an386, $(qemu-system-arm --version | head -n1 | awk '{print $4}')): every variant exited 0"
    echo "== embedded: instructions: boot and exit ${count[none]}, with the handshake ${count[handshake]}, with one record each way ${count[all]}"
    echo "== embedded: per LWA1 handshake (client and broker side) $((count[handshake] - count[none])) instructions; per record pair (seal + open of 30 B up and 2 B down) $((count[all] - count[handshake]))"
    echo "== embedded: per LWA2 handshake (finished path, both sides) $((count[handshake2] - count[none])) instructions; per record pair $((count[all2] - count[handshake2]))"
}

if [ "$what" = --run ]; then
    run_qemu
    exit 0
fi

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

# The same example, booting on QEMU's mps2-an386 (feature `qemu`), in three variants
# (LWA_QEMU_OPS, read at build time: a change rebuilds only the example, not lwa-core).
for ops in "${variants[@]}"; do
    echo "== embedded: example client for mps2-an386 (qemu), LWA_QEMU_OPS=$ops"
    LWA_QEMU_OPS=$ops cargo build --locked --release --target thumbv7em-none-eabihf \
        --target-dir "$target_dir/qemu" --manifest-path "$example" --features qemu
    cp "$target_dir/qemu/thumbv7em-none-eabihf/release/lwa-embedded-client" "$target_dir/qemu-$ops.elf"
done
[ "$what" = --build ] || run_qemu
