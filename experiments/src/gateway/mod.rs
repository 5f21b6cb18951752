//! `mqtt-lwa experiment gateway` (issue 16, "Experiment"): what `mqtt-lwa gateway` in front
//! of Debian's Mosquitto costs, beside our broker alone and Mosquitto alone, per client-side
//! security mode, on loopback.
//!
//! Three routes a message takes from publisher to subscriber ([`Route`]): through our
//! gateway to Mosquitto (gateway to Mosquitto is plain anonymous MQTT 5 on loopback),
//! through `mqtt-lwa broker` alone, through Mosquitto alone (which has no LWA). Every
//! (route, mode) block starts fresh processes and measures the added latency (QoS 1, 30 B,
//! one message in flight), throughput at QoS 0 and 1 with the front process' and the
//! upstream's CPU time, and a connection storm. A scaling phase puts one, then two
//! gateways in front of the same Mosquitto. Every figure is repeated; the report gives
//! medians with bootstrap intervals ([`super::stats`]).
//!
//! - [`measure`]: one block, one scaling block.
//! - [`report`]: `report.md` and the CSV files, from [`GatewayResults`] alone.
//! - [`plot`]: the PNG/SVG figures.

pub mod measure;
pub mod plot;
pub mod report;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::broker::Credentials;
use super::matrix::Mode;
use super::progress::Progress;
use super::results::Percentiles;
use super::run::ExperimentError;
use super::{affinity, storm};

/// The value of `experiment` in a gateway run's results.json (how `experiment report`
/// tells it from a matrix run).
pub const KIND: &str = "gateway";

/// The modes the gateway experiment measures by default (the five).
pub const MODES: [Mode; 5] = [
    Mode::Plain,
    Mode::Password,
    Mode::Tls13,
    Mode::Lwa,
    Mode::Lwa2,
];

/// How a message travels from publisher to subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// Clients reach `mqtt-lwa gateway`, which relays to Mosquitto (plain, anonymous).
    #[serde(rename = "gateway+mosquitto")]
    GatewayMosquitto,
    /// Clients reach `mqtt-lwa broker`.
    MqttLwa,
    /// Clients reach Mosquitto.
    Mosquitto,
}

impl Route {
    /// Every route, in report order.
    pub const ALL: [Route; 3] = [Route::GatewayMosquitto, Route::MqttLwa, Route::Mosquitto];

    /// Name in tables and files.
    pub fn name(self) -> &'static str {
        match self {
            Route::GatewayMosquitto => "gateway+mosquitto",
            Route::MqttLwa => "mqtt-lwa",
            Route::Mosquitto => "mosquitto",
        }
    }

    /// Whether the route serves `mode` (Mosquitto has no LWA).
    pub fn supports(self, mode: Mode) -> bool {
        match self {
            Route::Mosquitto => super::matrix::BrokerKind::Mosquitto.supports(mode),
            _ => super::matrix::BrokerKind::MqttLwa.supports(mode),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewaySettings {
    /// Rounds over every block.
    pub repeats: usize,
    /// Shortest throughput cell, seconds.
    pub cell_seconds: f64,
    /// Connection-storm window, seconds (password mode too).
    pub storm_seconds: f64,
    /// Concurrent storm clients.
    pub storm_clients: usize,
    /// Messages per latency cell (one in flight, QoS 1).
    pub latency_messages: usize,
    /// Payload bytes of every message.
    pub payload: usize,
    /// Client-side modes.
    pub modes: Vec<Mode>,
    /// Modes of the 1-to-2-gateway scaling phase (empty: none).
    pub scaling_modes: Vec<Mode>,
    /// `--pin-cpus`.
    pub pin_cpus: bool,
}

/// One throughput cell: a publisher and a subscriber through the route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputCell {
    /// QoS of every message.
    pub qos: u8,
    /// Messages published.
    pub sent: u64,
    /// Messages the subscriber got.
    pub received: u64,
    /// First publish until the last message arrived.
    pub seconds: f64,
    /// received / seconds.
    pub msgs_per_s: f64,
    /// CPU ticks (10 ms) of the process the clients reach (the gateway, or the lone broker).
    pub front_cpu_ticks: u64,
    /// CPU ticks of Mosquitto behind the gateway (`None` for a lone broker).
    pub upstream_cpu_ticks: Option<u64>,
    /// CPU ticks of the runner (publisher, subscriber).
    pub runner_cpu_ticks: u64,
}

/// One connection storm through a route (or through every gateway of a scaling block).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StormCell {
    /// Concurrent clients.
    pub clients: usize,
    /// Seconds in which handshakes were started.
    pub window_seconds: f64,
    /// Seconds until the last one ended.
    pub seconds: f64,
    /// Handshakes that reached "may publish" (CONNACK; LWA: verified).
    pub handshakes: u64,
    /// Handshakes that failed.
    pub failed: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// CPU ticks of the front process(es) over the storm.
    pub front_cpu_ticks: u64,
    /// CPU ticks of Mosquitto behind the gateway(s) (`None` for a lone broker).
    pub upstream_cpu_ticks: Option<u64>,
}

/// Everything one (route, mode, repeat) block measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// The route.
    pub route: Route,
    /// Client-side mode.
    pub mode: Mode,
    /// Round, from 0.
    pub repeat: usize,
    /// Publish-to-receive latency, QoS 1, µs.
    pub latency_us: Percentiles,
    /// The latency histogram (HdrHistogram V2, compressed, base64).
    pub latency_hdr: Option<String>,
    /// QoS 0 and QoS 1.
    pub throughput: Vec<ThroughputCell>,
    /// The connection storm.
    pub storm: Option<StormCell>,
}

/// One scaling block: `gateways` gateways in front of one Mosquitto, two client pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingBlock {
    /// Client-side mode.
    pub mode: Mode,
    /// Gateways (1 or 2).
    pub gateways: usize,
    /// Round, from 0.
    pub repeat: usize,
    /// Throughput of the two pairs together, QoS 1; `front_cpu_ticks` sums the gateways.
    pub throughput: ThroughputCell,
    /// The storm, its clients split evenly over the gateways.
    pub storm: Option<StormCell>,
    /// Where each process ran (CPU lists, or "not pinned").
    pub placement: String,
}

/// Where and with what the run ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayMeta {
    /// Run directory name.
    pub run: String,
    /// UTC start.
    pub started_utc: String,
    /// Wall-clock seconds the run took.
    pub seconds: f64,
    /// The command line.
    pub command: String,
    /// CPU, cores, memory, kernel.
    pub machine: Vec<(String, String)>,
    /// mqtt-lwa, harness, mosquitto, rustc.
    pub versions: Vec<(String, String)>,
    /// What was asked.
    pub settings: GatewaySettings,
    /// What failed or was left out.
    pub notes: Vec<String>,
}

/// A gateway run's results.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayResults {
    /// Always [`KIND`].
    pub experiment: String,
    /// Context.
    pub meta: GatewayMeta,
    /// Every (route, mode, repeat) block.
    pub blocks: Vec<Block>,
    /// Every scaling block.
    pub scaling: Vec<ScalingBlock>,
}

impl GatewayResults {
    /// Blocks of (route, mode), every repeat.
    pub fn blocks_of(&self, route: Route, mode: Mode) -> impl Iterator<Item = &Block> {
        self.blocks
            .iter()
            .filter(move |b| b.route == route && b.mode == mode)
    }

    /// Writes results.json, the report, the CSV files and the plots into `dir`.
    pub fn write_all(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("results.json"), json)?;
        self.render(dir)
    }

    /// Writes everything but results.json (`experiment report DIR` calls this).
    pub fn render(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let (mut files, plot_error) = match plot::draw_all(self, dir) {
            Ok(f) => (f, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        if let Some(e) = &plot_error {
            eprintln!("plots not drawn: {e}");
        }
        files.extend(report::write(self, dir, plot_error.as_deref())?);
        Ok(files)
    }
}

/// How the gateway run is started.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// What to measure.
    pub settings: GatewaySettings,
    /// Parent of the run directory.
    pub results_dir: PathBuf,
    /// Run directory name (default `gateway-<UTC date>`).
    pub run_name: Option<String>,
    /// The `mqtt-lwa` binary (broker and gateway).
    pub mqtt_lwa_bin: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// Progress on stderr.
    pub progress: bool,
}

/// Runs the gateway experiment; returns the run directory.
pub fn run(opts: &GatewayOptions) -> Result<PathBuf, ExperimentError> {
    let started = Instant::now();
    let (stamp, readable) = super::run::utc_stamp();
    let name = opts
        .run_name
        .clone()
        .unwrap_or_else(|| format!("gateway-{}", stamp.get(..8).unwrap_or(&stamp)));
    let dir = opts.results_dir.join(&name);
    if dir.join("results.json").exists() {
        return Err(ExperimentError::Io(
            dir.display().to_string(),
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "holds a run already (pass --name)",
            ),
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::Io(dir.display().to_string(), e))?;
    let scratch = std::env::temp_dir().join(format!(
        "mqtt-lwa-gateway-experiment-{}-{stamp}",
        std::process::id()
    ));
    let creds = Credentials::create(&scratch)?;
    let s = &opts.settings;
    let mut notes = Vec::new();
    if !Path::new(super::broker::MOSQUITTO_BIN).exists() {
        let _ = std::fs::remove_dir_all(&scratch);
        return Err(ExperimentError::Io(
            super::broker::MOSQUITTO_BIN.into(),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the gateway experiment needs Debian's mosquitto (scripts/install-deps.sh)",
            ),
        ));
    }
    let plan = plan(s);
    let total = (plan.len() * s.repeats + s.scaling_modes.len() * 2 * s.repeats) as u64;
    let bar = Progress::new(total, opts.progress);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ExperimentError::Io("tokio runtime".into(), e))?;
    super::run::stop_on_signal(&runtime, false);
    let cx = measure::Context {
        runtime: &runtime,
        creds: &creds,
        mqtt_lwa_bin: &opts.mqtt_lwa_bin,
        settings: s,
        cores: storm::machine_cores(),
    };
    let mut blocks = Vec::new();
    let mut scaling = Vec::new();
    for repeat in 0..s.repeats {
        // Odd rounds in reverse, so drift of the machine's load spreads over every block.
        let mut order = plan.clone();
        if repeat % 2 == 1 {
            order.reverse();
        }
        for (route, mode) in order {
            bar.set_message(format!("{route} {mode} (repeat {})", repeat + 1));
            match measure::block(&cx, route, mode, repeat) {
                Ok(b) => blocks.push(b),
                Err(e) => notes.push(format!("{route} {mode}, repeat {}: {e}", repeat + 1)),
            }
            bar.inc(1);
        }
        for &mode in &s.scaling_modes {
            let counts = if repeat % 2 == 0 { [1, 2] } else { [2, 1] };
            for gateways in counts {
                bar.set_message(format!(
                    "scaling: {gateways} gateway(s), {mode} (repeat {})",
                    repeat + 1
                ));
                match measure::scaling_block(&cx, mode, gateways, repeat) {
                    Ok(b) => scaling.push(b),
                    Err(e) => notes.push(format!(
                        "scaling, {gateways} gateway(s), {mode}, repeat {}: {e}",
                        repeat + 1
                    )),
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    drop(runtime);
    let _ = std::fs::remove_dir_all(&scratch);
    for b in &blocks {
        if let Some(e) = b.storm.as_ref().and_then(|s| s.first_error.as_ref()) {
            notes.push(format!(
                "{} {}, repeat {}: storm failures, first: {e}",
                b.route,
                b.mode,
                b.repeat + 1
            ));
        }
        for c in &b.throughput {
            if c.received < c.sent {
                notes.push(format!(
                    "{} {}, repeat {}: QoS {} delivered {} of {} messages",
                    b.route,
                    b.mode,
                    b.repeat + 1,
                    c.qos,
                    c.received,
                    c.sent
                ));
            }
        }
    }
    let mut machine = super::run::machine();
    machine.push((
        "CPU pinning".into(),
        if s.pin_cpus {
            pinning_text()
        } else {
            affinity::unpinned()
        },
    ));
    let results = GatewayResults {
        experiment: KIND.into(),
        meta: GatewayMeta {
            run: name,
            started_utc: readable,
            seconds: started.elapsed().as_secs_f64(),
            command: opts.command.clone(),
            machine,
            versions: super::run::versions(&opts.mqtt_lwa_bin, None, true),
            settings: s.clone(),
            notes,
        },
        blocks,
        scaling,
    };
    results
        .write_all(&dir)
        .map_err(|e| ExperimentError::Io(dir.display().to_string(), e))?;
    Ok(dir)
}

/// The settings line of a pinned run.
fn pinning_text() -> String {
    format!(
        "the process the clients reach (gateway or lone broker) on CPU {}; in the scaling \
         phase gateway k on CPU k-1; Mosquitto behind the gateway and the runner not pinned \
         (sched_setaffinity)",
        affinity::BROKER_CPU
    )
}

/// Every (route, mode) the run measures, routes inner.
fn plan(s: &GatewaySettings) -> Vec<(Route, Mode)> {
    s.modes
        .iter()
        .flat_map(|&m| {
            Route::ALL
                .into_iter()
                .filter(move |r| r.supports(m))
                .map(move |r| (r, m))
        })
        .collect()
}

/// Reads a gateway run's results.json text; `None` when it is another kind of run.
pub fn parse(text: &str) -> Option<Result<GatewayResults, serde_json::Error>> {
    #[derive(Deserialize)]
    struct Probe {
        experiment: Option<String>,
    }
    let probe: Probe = serde_json::from_str(text).ok()?;
    (probe.experiment.as_deref() == Some(KIND)).then(|| serde_json::from_str(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mosquitto_has_no_lwa_route_and_every_mode_has_two_of_ours() {
        let s = GatewaySettings {
            repeats: 1,
            cell_seconds: 0.0,
            storm_seconds: 0.0,
            storm_clients: 1,
            latency_messages: 1,
            payload: 30,
            modes: MODES.to_vec(),
            scaling_modes: Vec::new(),
            pin_cpus: false,
        };
        let p = plan(&s);
        assert_eq!(p.len(), 13);
        assert!(!p.contains(&(Route::Mosquitto, Mode::Lwa)));
        assert!(p.contains(&(Route::GatewayMosquitto, Mode::Lwa2)));
    }

    #[test]
    fn only_gateway_runs_parse_as_such() {
        assert!(parse("{\"meta\": {}}").is_none());
        assert!(parse("{\"experiment\": \"gateway\"}").unwrap().is_err());
    }
}
