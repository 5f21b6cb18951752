//! Helpers for the hardening tests: a broker child that can be SIGKILLed and
//! restarted on the same port and persistence file (on top of `tests/common`).
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::time::{Duration, Instant};

/// The broker child of the hardening tests: `tests/common`'s `Broker`
/// (killed on drop; `kill`, `terminate`, `rss_kib`).
pub use crate::common::Broker as BrokerProc;

/// Starts `mqtt-lwa broker -p PORT --sys-interval 0 EXTRA...`; with
/// `persistence`, `--persistence FILE` too. PORT 0 picks a free port; a
/// restart passes the port the first start printed.
pub fn start_broker(port: u16, persistence: Option<&Path>, extra: &[&str]) -> BrokerProc {
    let mut args = vec![
        "-p".to_string(),
        port.to_string(),
        "--sys-interval".to_string(),
        "0".to_string(),
    ];
    if let Some(file) = persistence {
        args.push("--persistence".to_string());
        args.push(file.display().to_string());
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    BrokerProc::spawn(&args, 1)
}

/// Polls `cond` every 20 ms until it holds or `within` passes.
pub async fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
