//! What this binary was built from (set by `build.rs`): shown by
//! `mqtt-lwa --version` and recorded in every experiment's provenance, so
//! that a result names the code that produced it wherever it was run.

/// Full git commit hash, or `unknown` outside a git checkout.
pub const COMMIT: &str = env!("MQTT_LWA_COMMIT");
/// `clean`, `dirty` (tracked files differed from the commit) or `unknown`.
pub const TREE: &str = env!("MQTT_LWA_TREE");
/// `rustc -V` of the compiler that built it.
pub const RUSTC: &str = env!("MQTT_LWA_RUSTC");
/// Target triple.
pub const TARGET: &str = env!("MQTT_LWA_TARGET");
/// Cargo profile: `debug` or `release`.
pub const PROFILE: &str = env!("MQTT_LWA_PROFILE");

/// The version line's detail, e.g. `0.1.0 (commit 1d1f81b0..., clean,
/// rustc 1.95.0 (...), x86_64-unknown-linux-gnu, release)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MQTT_LWA_COMMIT"),
    ", ",
    env!("MQTT_LWA_TREE"),
    ", ",
    env!("MQTT_LWA_RUSTC"),
    ", ",
    env!("MQTT_LWA_TARGET"),
    ", ",
    env!("MQTT_LWA_PROFILE"),
    ")"
);

/// The commit shortened to 12 hex digits (or `unknown`).
pub fn short_commit() -> &'static str {
    COMMIT.get(..12).unwrap_or(COMMIT)
}
