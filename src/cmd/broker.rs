//! `mqtt-lwa broker` (work in progress).
use std::process::ExitCode;

/// Arguments of `mqtt-lwa broker`.
#[derive(clap::Args, Debug)]
pub struct BrokerArgs {}

/// Runs the broker.
pub fn run(_args: BrokerArgs) -> ExitCode {
    ExitCode::FAILURE
}
