//! `mqtt-lwa experiment ARGS`: runs `mqtt-lwa-experiment ARGS`, the experiment harness
//! (its own crate under experiments/, so this binary carries none of its plotting, netns
//! or NFQUEUE code), the way `git foo` runs `git-foo`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Arguments of `mqtt-lwa experiment`: everything goes to `mqtt-lwa-experiment`, `--help`
/// included.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct ExperimentArgs {
    /// Arguments of `mqtt-lwa-experiment` (its `--help` lists them).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

const HARNESS: &str = "mqtt-lwa-experiment";

/// The harness binary: the one beside this binary (where `cargo build` puts both), else
/// whatever `PATH` finds.
fn harness() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|me| me.with_file_name(format!("{HARNESS}{}", std::env::consts::EXE_SUFFIX)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(HARNESS))
}

/// Replaces this process with the harness; returns only when that fails.
pub fn run(args: ExperimentArgs) -> ExitCode {
    let bin = harness();
    let mut cmd = Command::new(&bin);
    cmd.args(&args.args);
    // The harness measures this binary as our broker, and names the command as typed.
    if let Ok(me) = std::env::current_exe() {
        cmd.env("MQTT_LWA_BIN", me);
    }
    if let Some(argv0) = std::env::args_os().next() {
        cmd.env("MQTT_LWA_EXPERIMENT_ARGV0", argv0);
    }
    let e = cmd.exec();
    eprintln!(
        "mqtt-lwa experiment: cannot run {}: {e} (the harness is the `mqtt-lwa-experiments` \
         crate: `cargo build --release` at the top of the workspace builds it beside mqtt-lwa)",
        bin.display()
    );
    ExitCode::FAILURE
}
