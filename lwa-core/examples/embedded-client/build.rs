//! With the feature `qemu`: link with qemu.ld (QEMU `mps2-an386` memory map, vector table at 0).

fn main() {
    println!("cargo:rerun-if-changed=qemu.ld");
    if std::env::var_os("CARGO_FEATURE_QEMU").is_some() {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-arg=-T{dir}/qemu.ld");
    }
}
