//! Helpers for the harness's behaviour tests: those of the broker's own behaviour tests
//! (one copy, in the top-level tests/common; `mqtt_lwa_bin()` there is the `mqtt-lwa` beside
//! this package's `mqtt-lwa-experiment`, run as `mqtt-lwa experiment ...` the way a user does),
//! and where the committed runs are.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

// Shared rather than copied: a test-support crate for one module would be more machinery
// than this one path.
#[path = "../../../tests/common/mod.rs"]
mod broker_common;
pub use broker_common::*;

/// The workspace's top directory (the committed runs are under experiments/results/).
pub fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}
