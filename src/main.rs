//! The `mqtt-lwa` command line: parses arguments, calls the library, prints.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// MQTT broker and client with plaintext, password, TLS and LWA security modes.
#[derive(Parser, Debug)]
#[command(name = "mqtt-lwa", version = mqtt_lwa::build_info::LONG_VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the MQTT broker.
    Broker(cmd::broker::BrokerArgs),
    /// Run an MQTT gateway: clients in any mode (LWA included) relayed to an upstream broker.
    Gateway(cmd::gateway::GatewayArgs),
    /// Publish messages (like mosquitto_pub).
    Pub(cmd::pubsub::PubArgs),
    /// Subscribe and print messages (like mosquitto_sub).
    Sub(cmd::pubsub::SubArgs),
    /// Manage a mosquitto-compatible password file (like mosquitto_passwd).
    Passwd(cmd::passwd::PasswdArgs),
    /// Create a private CA with broker and client certificates, or check expiry.
    Certs(cmd::certs::CertsArgs),
    /// Manage the LWA1 PSK store: add, rotate, revoke, list identities.
    Psk(cmd::psk::PskArgs),
    /// Measure what every security mode costs; writes experiments/results/<run>/ (runs
    /// mqtt-lwa-experiment, the harness, with these arguments).
    Experiment(cmd::experiment::ExperimentArgs),
}

/// True when the subcommand is `pub` or `sub`.
fn is_pubsub() -> bool {
    matches!(std::env::args().nth(1).as_deref(), Some("pub" | "sub"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `pub` and `sub` promise exit code 1 for usage errors (2 means refused).
        Err(e) if e.use_stderr() && is_pubsub() => {
            let _ = e.print();
            return ExitCode::from(1);
        }
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Broker(args) => cmd::broker::run(args),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Pub(args) => cmd::pubsub::run_pub(args),
        Command::Sub(args) => cmd::pubsub::run_sub(args),
        Command::Passwd(args) => cmd::passwd::run(args),
        Command::Certs(args) => cmd::certs::run(args),
        Command::Psk(args) => cmd::psk::run(args),
        Command::Experiment(args) => cmd::experiment::run(args),
    }
}
