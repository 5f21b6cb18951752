//! `mqtt-lwa experiment`: measures every security mode end to end and writes
//! `experiments/results/<run>/` (CSV, JSON, plots, report.md).

use std::path::PathBuf;
use std::process::ExitCode;

use mqtt_lwa::experiment::{run, BrokerKind, Mode, Profile, RunOptions};

/// Arguments of `mqtt-lwa experiment`.
#[derive(clap::Args, Debug)]
pub struct ExperimentArgs {
    /// `quick` (every cell, few messages, under 2 minutes) or `full`.
    #[arg(long, default_value = "quick", value_parser = ["quick", "full"])]
    profile: String,
    /// Directory that receives the run directory.
    #[arg(long, default_value = "experiments/results")]
    out: PathBuf,
    /// Run directory name (default: `<profile>-<UTC time>`).
    #[arg(long)]
    name: Option<String>,
    /// Measure only these modes (comma-separated: plain,password,tls13,mtls13,tls12,lwa).
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
    /// Times every throughput and latency cell runs (default: the profile's, full 3, quick 1).
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: Option<u32>,
    /// Shortest throughput cell in seconds (default: the profile's, full 2, quick 0).
    #[arg(long, value_name = "SECONDS")]
    min_cell_seconds: Option<f64>,
    /// Leave out the mosquitto baseline.
    #[arg(long)]
    no_mosquitto: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs the experiment; prints the run directory.
pub fn run_experiment(args: ExperimentArgs) -> ExitCode {
    let Some(mut profile) = Profile::named(&args.profile) else {
        eprintln!("unknown profile {:?}", args.profile);
        return ExitCode::FAILURE;
    };
    if !args.modes.is_empty() {
        let mut modes = Vec::new();
        for name in &args.modes {
            match Mode::ALL.into_iter().find(|m| m.name() == name) {
                Some(m) => modes.push(m),
                None => {
                    eprintln!("unknown mode {name:?}");
                    return ExitCode::FAILURE;
                }
            }
        }
        profile.modes = modes;
    }
    if let Some(r) = args.repeat {
        profile.repeats = r as usize;
    }
    if let Some(s) = args.min_cell_seconds {
        if !(0.0..=600.0).contains(&s) {
            eprintln!("--min-cell-seconds must be between 0 and 600");
            return ExitCode::FAILURE;
        }
        profile.min_cell_ms = (s * 1000.0).round() as u64;
    }
    if args.no_mosquitto {
        profile.brokers.retain(|b| *b != BrokerKind::Mosquitto);
    }
    let mqtt_lwa_bin = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot find the mqtt-lwa binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = RunOptions {
        profile,
        results_dir: args.out,
        run_name: args.name,
        mqtt_lwa_bin,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        progress: !args.quiet,
    };
    match run(&opts) {
        Ok(dir) => {
            println!("{}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("experiment failed: {e}");
            ExitCode::FAILURE
        }
    }
}
