//! `mqtt-lwa pub` and `mqtt-lwa sub` (work in progress).
use std::process::ExitCode;

/// Arguments of `mqtt-lwa pub`.
#[derive(clap::Args, Debug)]
pub struct PubArgs {}

/// Arguments of `mqtt-lwa sub`.
#[derive(clap::Args, Debug)]
pub struct SubArgs {}

/// Runs `pub`.
pub fn run_pub(_args: PubArgs) -> ExitCode {
    ExitCode::FAILURE
}

/// Runs `sub`.
pub fn run_sub(_args: SubArgs) -> ExitCode {
    ExitCode::FAILURE
}
