//! `mqtt-lwa-experiment`, the experiment harness's command line (README "Experiment"):
//! measures every security mode end to end and writes `experiments/results/<run>/` (CSV,
//! JSON, plots, report.md); `serve` is the broker side of a two-machine run, `report`
//! re-renders a run. `mqtt-lwa experiment ARGS` forwards here (the harness is its own crate,
//! so the broker's library and binary carry none of its plotting, netns or NFQUEUE code).
//!
//! The `mqtt-lwa` binary it measures as our broker is, in this order: `$MQTT_LWA_BIN` (set by
//! `mqtt-lwa experiment`), or `mqtt-lwa` in this binary's own directory (where
//! `cargo build` puts both).

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mqtt_lwa_experiments::linkem::{run_linkem, LinkemOptions};
use mqtt_lwa_experiments::preflight;
use mqtt_lwa_experiments::remote::RemoteSpec;
use mqtt_lwa_experiments::serve::{serve, ServeOptions, DEFAULT_PORT_BASE};
use mqtt_lwa_experiments::{run, BrokerKind, LinkProfile, Mode, Profile, RunOptions};

/// Measure what every security mode costs; writes experiments/results/<run>/.
#[derive(Parser, Debug)]
#[command(
    name = "mqtt-lwa-experiment",
    version = mqtt_lwa::build_info::LONG_VERSION,
    about = "Measure what every security mode costs; writes experiments/results/<run>/ (also run as `mqtt-lwa experiment`)."
)]
struct Cli {
    #[command(flatten)]
    args: ExperimentArgs,
}

fn main() -> ExitCode {
    run_experiment(Cli::parse().args)
}

/// The largest payload `--payloads` takes: 1 MiB, far under every broker's packet limit
/// in the run, and a cell of 20,000 such messages is still seconds on loopback.
const MAX_PAYLOAD: usize = 1 << 20;

/// Subcommands of `mqtt-lwa-experiment`.
#[derive(clap::Subcommand, Debug)]
enum ExperimentCommand {
    /// Broker side of a two-machine run: write credentials into DIR and serve every mode.
    Serve(ServeArgs),
    /// Re-render a run directory's report, CSV, LaTeX and plots from its results.json (measures nothing).
    Report(ReportArgs),
    /// `mqtt-lwa gateway` in front of Mosquitto beside both brokers alone: added latency,
    /// throughput and handshakes per gateway CPU-second, 1 to 2 gateways.
    Gateway(GatewayArgs),
    /// NFQUEUE delay line of an emulated link (started by the runner inside a namespace).
    #[command(hide = true)]
    Linkem(LinkemArgs),
}

/// Arguments of `mqtt-lwa experiment report`.
#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// Run directory holding results.json (e.g. experiments/results/full-...).
    dir: PathBuf,
}

/// Arguments of `mqtt-lwa experiment gateway`.
#[derive(clap::Args, Debug)]
struct GatewayArgs {
    /// Rounds over every block (intervals need 2 or more).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Shortest throughput cell, and the storm window, in seconds.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Client-side modes, comma-separated (default plain,password,tls13,lwa,lwa2).
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
    /// Modes of the 1-to-2-gateway scaling phase (default plain,lwa; `none` skips it).
    #[arg(long, value_delimiter = ',')]
    scaling_modes: Vec<String>,
    /// Messages per latency cell (QoS 1, one in flight).
    #[arg(long, default_value_t = 1000)]
    latency_messages: usize,
    /// Pin the process the clients reach to CPU 0 (scaling: gateway k to CPU k-1).
    #[arg(long)]
    pin_cpus: bool,
    /// Directory that receives the run directory.
    #[arg(long, default_value = "experiments/results")]
    out: PathBuf,
    /// Run directory name (default `gateway-<UTC date>`).
    #[arg(long)]
    name: Option<String>,
    /// No progress.
    #[arg(long, short)]
    quiet: bool,
}

/// Modes by name (`none`: no mode); the error names the first unknown one.
fn parse_modes(names: &[String], default: &[Mode]) -> Result<Vec<Mode>, String> {
    if names.is_empty() {
        return Ok(default.to_vec());
    }
    if names.len() == 1 && names[0] == "none" {
        return Ok(Vec::new());
    }
    names
        .iter()
        .map(|name| {
            mqtt_lwa_experiments::gateway::MODES
                .into_iter()
                .find(|m| m.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown or unsupported mode {name:?} (plain, password, tls13, lwa, lwa2)"
                    )
                })
        })
        .collect()
}

fn run_gateway(args: GatewayArgs) -> ExitCode {
    use mqtt_lwa_experiments::gateway::{self, GatewayOptions, GatewaySettings};
    let (modes, scaling_modes) = match (
        parse_modes(&args.modes, &gateway::MODES),
        parse_modes(&args.scaling_modes, &[Mode::Plain, Mode::Lwa]),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("experiment gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !(0.1..=600.0).contains(&args.seconds) {
        eprintln!("experiment gateway: --seconds must be between 0.1 and 600");
        return ExitCode::FAILURE;
    }
    let Some(mqtt_lwa_bin) = mqtt_lwa_exe() else {
        return ExitCode::FAILURE;
    };
    let opts = GatewayOptions {
        settings: GatewaySettings {
            repeats: args.repeat as usize,
            cell_seconds: args.seconds,
            storm_seconds: args.seconds,
            storm_clients: mqtt_lwa_experiments::storm::clients(
                &mqtt_lwa_experiments::storm::StormProfile {
                    clients_per_core: 2,
                    millis: 0,
                    password_millis: 0,
                },
                mqtt_lwa_experiments::storm::machine_cores(),
            ),
            latency_messages: args.latency_messages.max(1),
            payload: 30,
            modes,
            scaling_modes,
            pin_cpus: args.pin_cpus,
        },
        results_dir: args.out,
        run_name: args.name,
        mqtt_lwa_bin,
        command: command_line(),
        progress: !args.quiet,
    };
    match gateway::run(&opts) {
        Ok(dir) => {
            println!("{}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("experiment gateway failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Arguments of `mqtt-lwa experiment serve`.
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Directory for the credentials, the broker config and serve.json (copy it to the client).
    #[arg(long)]
    dir: PathBuf,
    /// Address every listener binds to.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Address the clients reach this machine by, for the broker certificate (repeatable;
    /// the runner connects to and verifies TLS by the address `--remote HOST` resolves to).
    #[arg(long = "name", value_name = "HOST")]
    names: Vec<String>,
    /// First port: plain, password, tls13, mtls13, tls12, tls13-resume, tls13-chacha, lwa on
    /// consecutive ports, stats on +9, mosquitto's modes from +10, iperf3's server on +17
    /// (0: free ports, printed and written to serve.json).
    #[arg(long, default_value_t = DEFAULT_PORT_BASE)]
    port_base: u16,
    /// Do not serve mosquitto (by default it is served where installed).
    #[arg(long)]
    no_mosquitto: bool,
}

/// Arguments of `mqtt-lwa experiment`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
struct ExperimentArgs {
    #[command(subcommand)]
    command: Option<ExperimentCommand>,
    /// `quick` (every cell, few messages, under 2 minutes) or `full`.
    #[arg(long, default_value = "quick", value_parser = ["quick", "full"])]
    profile: String,
    /// Directory that receives the run directory.
    #[arg(long, default_value = "experiments/results")]
    out: PathBuf,
    /// Run directory name (default: `<profile>-<UTC time>`).
    #[arg(long)]
    name: Option<String>,
    /// Measure only these modes (comma-separated: plain,password,tls13,mtls13,tls12,tls13-resume,tls13-chacha,tls13-psk,lwa,lwa2; tls13-psk: mosquitto only; lwa, lwa2: mqtt-lwa only).
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
    /// Times every throughput and latency cell runs, on every link (default: the profile's, full 5, quick 1).
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: Option<u32>,
    /// Shortest throughput cell in seconds (default: the profile's, full 2, quick 0).
    #[arg(long, value_name = "SECONDS")]
    min_cell_seconds: Option<f64>,
    /// Links to measure on, comma-separated (default: the profile's; quick: loopback, full:
    /// loopback,lan,pi-wifi,constrained). `--link list` prints the profiles. Emulated links
    /// need root, iproute2, iperf3 and, where the kernel has no netem, iptables.
    #[arg(long = "link", value_delimiter = ',')]
    links: Vec<String>,
    /// Payload sizes in bytes of the throughput and latency cells on loopback,
    /// comma-separated (default: the profile's, 30,256,1024,16384). `--payloads 30` measures
    /// only the small messages the comparison against Mosquitto rests on.
    #[arg(long, value_name = "BYTES,...", value_delimiter = ',')]
    payloads: Vec<usize>,
    /// Idle-connection counts at which broker memory per connection is weighed,
    /// comma-separated (default: the profile's; quick 100, full 1000,10000).
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    idle_connections: Vec<usize>,
    /// Connection-storm window per mode in seconds (default: the profile's, quick 1, full 5;
    /// password mode is capped at the profile's shorter window; 0 skips).
    #[arg(long, value_name = "SECONDS")]
    storm_seconds: Option<f64>,
    /// Messages per stock-client burst (Debian's `mosquitto_pub -l` to `mosquitto_sub`
    /// through each broker, plaintext, every QoS; default: the profile's, quick 2000,
    /// full 20000; 0 skips).
    #[arg(long, value_name = "N")]
    stock_messages: Option<usize>,
    /// Pin each broker to CPU 0 and the runner (clients, relays) to CPU 1.
    #[arg(long)]
    pin_cpus: bool,
    /// Leave out the mosquitto baseline.
    #[arg(long)]
    no_mosquitto: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Start even where this machine lacks tools some measurements need (mosquitto, its
    /// clients, tshark, the link tools or root): those are left out and the report's Notes
    /// say so. Without it a `--profile full` run refuses to start; a quick run warns.
    #[arg(long)]
    allow_partial: bool,
    /// Measure the broker of `mqtt-lwa experiment serve` on HOST instead of local brokers.
    #[arg(long, value_name = "HOST", requires = "dir")]
    remote: Option<String>,
    /// With --remote: the copy of serve's directory (credentials and serve.json).
    #[arg(long, requires = "remote")]
    dir: Option<PathBuf>,
}

/// This binary's own path (started again as `linkem` inside a link's namespace).
fn harness_exe() -> Option<PathBuf> {
    match std::env::current_exe() {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("cannot find the mqtt-lwa-experiment binary: {e}");
            None
        }
    }
}

/// The `mqtt-lwa` binary the run measures as our broker: `$MQTT_LWA_BIN`, else the one
/// beside this binary.
fn mqtt_lwa_exe() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MQTT_LWA_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let beside = harness_exe()?.with_file_name(format!("mqtt-lwa{}", std::env::consts::EXE_SUFFIX));
    if beside.is_file() {
        return Some(beside);
    }
    eprintln!(
        "cannot find the mqtt-lwa binary: no {} (build it with `cargo build --release`, \
         which builds both, or name it in MQTT_LWA_BIN)",
        beside.display()
    );
    None
}

/// The command line for the report: as typed, `mqtt-lwa experiment ...` where that
/// forwarded here (it passes its own argv[0] in `MQTT_LWA_EXPERIMENT_ARGV0`).
fn command_line() -> String {
    let mut args: Vec<String> = std::env::args_os()
        .map(|a: OsString| a.to_string_lossy().into_owned())
        .collect();
    if let (Some(first), Some(via)) = (
        args.first_mut(),
        std::env::var_os("MQTT_LWA_EXPERIMENT_ARGV0").filter(|v| !v.is_empty()),
    ) {
        *first = format!("{} experiment", via.to_string_lossy());
    }
    args.join(" ")
}

fn run_serve(args: ServeArgs) -> ExitCode {
    let Some(mqtt_lwa_bin) = mqtt_lwa_exe() else {
        return ExitCode::FAILURE;
    };
    let opts = ServeOptions {
        dir: args.dir,
        bind: args.bind,
        names: args.names,
        port_base: args.port_base,
        mosquitto: !args.no_mosquitto,
        mqtt_lwa_bin,
        iperf3_bin: "iperf3".into(),
    };
    match serve(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("experiment serve failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Arguments of the hidden `mqtt-lwa-experiment linkem` (started by the runner).
#[derive(clap::Args, Debug)]
struct LinkemArgs {
    /// NFQUEUE numbers, one per direction.
    #[arg(long, value_delimiter = ',', required = true)]
    queues: Vec<u16>,
    /// One-way delay in microseconds.
    #[arg(long)]
    delay_us: u64,
    /// Jitter bound in microseconds.
    #[arg(long, default_value_t = 0)]
    jitter_us: u64,
    /// Drop probability per packet (0..1).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
}

/// Serves the NFQUEUE delay line until killed.
fn run_linkem_cmd(args: LinkemArgs) -> ExitCode {
    let opts = LinkemOptions {
        queues: args.queues,
        delay: Duration::from_micros(args.delay_us),
        jitter: Duration::from_micros(args.jitter_us),
        loss: args.loss,
    };
    match run_linkem(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqtt-lwa-experiment linkem: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the experiment; prints the run directory.
fn run_experiment(args: ExperimentArgs) -> ExitCode {
    match args.command {
        Some(ExperimentCommand::Serve(serve_args)) => return run_serve(serve_args),
        Some(ExperimentCommand::Linkem(linkem_args)) => return run_linkem_cmd(linkem_args),
        Some(ExperimentCommand::Gateway(gateway_args)) => return run_gateway(gateway_args),
        Some(ExperimentCommand::Report(report)) => {
            return match mqtt_lwa_experiments::render::rerender(&report.dir) {
                Ok(files) => {
                    for f in files {
                        println!("{}", f.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mqtt-lwa experiment report: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    if args.links.iter().any(|l| l == "list") {
        for l in LinkProfile::builtin() {
            println!("{:<12} {}\n{:<12} {}", l.name, l.summary(), "", l.about);
        }
        println!(
            "{:<12} custom:rate=10mbit:delay=5ms:jitter=1ms:loss=0.5% (any subset of the keys)",
            "custom"
        );
        return ExitCode::SUCCESS;
    }
    let Some(mut profile) = Profile::named(&args.profile) else {
        eprintln!("unknown profile {:?}", args.profile);
        return ExitCode::FAILURE;
    };
    if !args.links.is_empty() {
        profile.links = args.links.clone();
    }
    let mut links = Vec::new();
    for name in &profile.links {
        match LinkProfile::parse(name) {
            Ok(l) => links.push(l),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
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
        // Emulated links too: the seed comparison needs its repeats as much
        // as loopback does (it used to stay at one pass whatever was asked).
        profile.emulated.repeats = r as usize;
    }
    if let Some(s) = args.min_cell_seconds {
        if !(0.0..=600.0).contains(&s) {
            eprintln!("--min-cell-seconds must be between 0 and 600");
            return ExitCode::FAILURE;
        }
        profile.min_cell_ms = (s * 1000.0).round() as u64;
    }
    if !args.payloads.is_empty() {
        if let Some(bad) = args.payloads.iter().find(|&&p| p == 0 || p > MAX_PAYLOAD) {
            eprintln!("--payloads: {bad} B is outside 1 to {MAX_PAYLOAD} B");
            return ExitCode::FAILURE;
        }
        let mut payloads = args.payloads;
        payloads.sort_unstable();
        payloads.dedup();
        profile.payloads = payloads;
    }
    if !args.idle_connections.is_empty() {
        profile.idle_connections = args.idle_connections;
    }
    if let Some(s) = args.storm_seconds {
        if !(0.0..=600.0).contains(&s) {
            eprintln!("--storm-seconds must be between 0 and 600");
            return ExitCode::FAILURE;
        }
        profile.storm.millis = (s * 1000.0).round() as u64;
    }
    if let Some(n) = args.stock_messages {
        profile.stock_messages = n;
    }
    if args.no_mosquitto {
        profile.brokers.retain(|b| *b != BrokerKind::Mosquitto);
    }
    let (Some(mqtt_lwa_bin), Some(harness_bin)) = (mqtt_lwa_exe(), harness_exe()) else {
        return ExitCode::FAILURE;
    };
    let allow_partial = args.allow_partial;
    let opts = RunOptions {
        profile,
        links,
        results_dir: args.out,
        run_name: args.name,
        mqtt_lwa_bin,
        harness_bin,
        command: command_line(),
        progress: !args.quiet,
        pin_cpus: args.pin_cpus,
        remote: args
            .remote
            .zip(args.dir)
            .map(|(host, dir)| RemoteSpec { host, dir }),
    };
    let missing = preflight::missing(&opts);
    if !missing.is_empty() {
        eprintln!(
            "experiment: this machine lacks what part of the run needs \
             (scripts/install-deps.sh installs the tools):"
        );
        for m in &missing {
            eprintln!("  - {m}");
        }
        if opts.profile.name == "full" && !allow_partial {
            eprintln!(
                "experiment: a full run without them would not measure what its profile \
                 promises; install them, narrow the run (--no-mosquitto, --link loopback, \
                 --stock-messages 0) or pass --allow-partial"
            );
            return ExitCode::from(2);
        }
        eprintln!("experiment: going on without them; the report's Notes list what was left out");
    }
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
