//! What a run measured, as serialisable records, and their CSV and JSON files.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::crosscheck::CrossCheck;
use super::link::LinkProfile;
use super::linkprobe::LinkResult;
use super::matrix::{BrokerKind, Mode, Profile};
use super::memory::IdleMemory;
use super::storm::StormResult;

fn loopback() -> String {
    LinkProfile::LOOPBACK.into()
}

/// Percentiles of one distribution, in the unit its field name says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples behind the figures.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of an HdrHistogram recorded in microseconds, reported in `scale` units per µs.
    pub fn from_histogram(h: &hdrhistogram::Histogram<u64>, scale: f64) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            samples: h.len(),
            p50: h.value_at_quantile(0.50) as f64 * scale,
            p90: h.value_at_quantile(0.90) as f64 * scale,
            p99: h.value_at_quantile(0.99) as f64 * scale,
            max: h.max() as f64 * scale,
        }
    }
}

/// HdrHistogram's compressed V2 encoding of `h`, base64 (`HISTFAAA...`); `None` if it cannot
/// be encoded (never for the experiment's histograms).
pub fn encode_histogram(h: &hdrhistogram::Histogram<u64>) -> Option<String> {
    use base64::Engine as _;
    let mut bytes = Vec::new();
    hdrhistogram::serialization::Serializer::serialize(
        &mut hdrhistogram::serialization::V2DeflateSerializer::new(),
        h,
        &mut bytes,
    )
    .ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram [`encode_histogram`] encoded.
pub fn decode_histogram(text: &str) -> Result<hdrhistogram::Histogram<u64>, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("latency histogram: not base64: {e}"))?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("latency histogram: {e:?}"))
}

/// Per (broker, mode) figures that do not depend on payload or QoS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeResult {
    /// Link the clients reached the broker over (a [`LinkProfile`] name).
    #[serde(default = "loopback")]
    pub link: String,
    /// Broker under test.
    pub broker: BrokerKind,
    /// Security mode.
    pub mode: Mode,
    /// Time from TCP connect to the client being able to publish, in milliseconds.
    pub setup_ms: Percentiles,
    /// Bytes client to broker from TCP connect until the client may publish (settled).
    pub handshake_bytes_to_broker: u64,
    /// Bytes broker to client over the same span.
    pub handshake_bytes_to_client: u64,
    /// Idle connections held while broker memory was measured (0: not measured).
    pub idle_connections: u64,
    /// Broker RSS growth per idle connection, in bytes (at the first of `idle_memory`).
    pub rss_bytes_per_idle_connection: Option<f64>,
    /// Broker memory at each idle-connection count of the profile.
    #[serde(default)]
    pub idle_memory: Vec<IdleMemory>,
    /// Connection storm: handshakes per second and per broker CPU second.
    #[serde(default)]
    pub storm: Option<StormResult>,
    /// The tshark cross-check of the relay's counts, on the one cell that had it.
    #[serde(default)]
    pub cross_check: Option<CrossCheck>,
}

/// One (broker, mode, payload, QoS) cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Link the clients reached the broker over (a [`LinkProfile`] name).
    #[serde(default = "loopback")]
    pub link: String,
    /// Broker under test.
    pub broker: BrokerKind,
    /// Security mode.
    pub mode: Mode,
    /// PUBLISH payload bytes (before any LWA record overhead).
    pub payload: usize,
    /// QoS of publish and subscription.
    pub qos: u8,
    /// Messages published in the throughput run.
    pub sent: u64,
    /// Messages the subscriber received in the throughput run.
    pub received: u64,
    /// Seconds from the first publish to the last delivery.
    pub seconds: f64,
    /// Delivered messages per second.
    pub msgs_per_s: f64,
    /// Delivered payload, Mbit/s.
    pub payload_mbit_s: f64,
    /// Bytes on the publisher's connection per message, both directions (PUBLISH and its acks).
    pub wire_bytes_per_msg_publisher: f64,
    /// Bytes on the subscriber's connection per message, both directions.
    pub wire_bytes_per_msg_subscriber: f64,
    /// Publisher-link rate implied by the message rate: msgs/s x publisher bytes/msg, Mbit/s.
    pub wire_mbit_s: f64,
    /// End-to-end latency, one message in flight, in microseconds.
    pub latency_us: Percentiles,
    /// The latency samples themselves: an HdrHistogram of microseconds (1 µs .. 100 s,
    /// 3 significant digits) in HdrHistogram's compressed V2 encoding, base64 (as in its
    /// interval logs; every HdrHistogram implementation decodes it). In a cell of several
    /// repeats, all repeats merged. Absent in runs older than 2026-12-04.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_hdr: Option<String>,
    /// Broker CPU seconds per 10^5 messages in the throughput run.
    pub broker_cpu_s_per_1e5: f64,
    /// Client-process CPU seconds (publisher, subscriber and runner) per 10^5 messages.
    pub client_cpu_s_per_1e5: f64,
    /// Clock ticks (10 ms) the broker CPU figure rests on.
    pub broker_cpu_ticks: u64,
}

/// Where and with what a run ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Run directory name.
    pub run: String,
    /// UTC start, RFC 3339.
    pub started_utc: String,
    /// Wall-clock seconds the run took.
    pub seconds: f64,
    /// The command line that produced it.
    pub command: String,
    /// CPU model, core count, memory, kernel.
    pub machine: Vec<(String, String)>,
    /// mqtt-lwa, rustc, mosquitto, build profile.
    pub versions: Vec<(String, String)>,
    /// Link the clients reached the broker over.
    pub link: String,
    /// The profile's settings.
    pub profile: Profile,
    /// Things that were skipped or failed, for the report.
    pub notes: Vec<String>,
    /// The broker machine when the broker was remote (`experiment --remote`), else `None`.
    #[serde(default)]
    pub remote_broker: Option<String>,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// Context.
    pub meta: RunMeta,
    /// Per (broker, mode).
    pub modes: Vec<ModeResult>,
    /// Per cell: the median over its repeats.
    pub cells: Vec<CellResult>,
    /// Every repeat's raw figures, the spreads, the load average around each block.
    #[serde(default)]
    pub repeats: super::repeat::RepeatData,
    /// The links measured and what was measured on each, in run order.
    #[serde(default)]
    pub links: Vec<LinkResult>,
    /// Stock-client bursts (`mosquitto_pub -l` to `mosquitto_sub`), every repeat.
    #[serde(default)]
    pub stock: Vec<super::stock::StockBurst>,
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_default()
}

impl RunResults {
    /// The results of one link only, with the profile as measured there (report tables, plots).
    pub fn for_link(&self, link: &str) -> RunResults {
        let mut r = self.clone();
        r.modes.retain(|m| m.link == link);
        r.cells.retain(|c| c.link == link);
        r.repeats.rows.retain(|c| c.cell.link == link);
        r.repeats.spreads.retain(|s| s.link == link);
        r.repeats.storms.retain(|s| s.link == link);
        r.repeats.idle_memory.retain(|s| s.link == link);
        if let Some(l) = self.links.iter().find(|l| l.profile.name == link) {
            r.meta.profile = self.meta.profile.for_link(&l.profile);
            // A remote broker's description of its network stays.
            if self.meta.remote_broker.is_none() {
                r.meta.link = l.profile.to_string();
            }
        }
        r
    }

    /// The first link of the run (the one the main tables and plots show).
    pub fn primary_link(&self) -> String {
        self.links
            .first()
            .map(|l| l.profile.name.clone())
            .unwrap_or_else(loopback)
    }

    /// The cell for (broker, mode, payload, qos), if measured.
    pub fn cell(
        &self,
        broker: BrokerKind,
        mode: Mode,
        payload: usize,
        qos: u8,
    ) -> Option<&CellResult> {
        self.cells
            .iter()
            .find(|c| c.broker == broker && c.mode == mode && c.payload == payload && c.qos == qos)
    }

    /// The per-mode figures for (broker, mode), if measured.
    pub fn mode(&self, broker: BrokerKind, mode: Mode) -> Option<&ModeResult> {
        self.modes
            .iter()
            .find(|m| m.broker == broker && m.mode == mode)
    }

    /// `cells.csv`: one row per cell.
    pub fn cells_csv(&self) -> String {
        let mut out = String::from(
            "link,broker,mode,payload,qos,sent,received,seconds,msgs_per_s,payload_mbit_s,wire_mbit_s,\
             wire_bytes_per_msg_publisher,wire_bytes_per_msg_subscriber,latency_us_p50,\
             latency_us_p90,latency_us_p99,latency_us_max,broker_cpu_s_per_1e5,\
             client_cpu_s_per_1e5,broker_cpu_ticks\n",
        );
        for c in &self.cells {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{:.6},{:.1},{:.3},{:.3},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.4},{:.4},{}",
                c.link, c.broker, c.mode, c.payload, c.qos, c.sent, c.received, c.seconds, c.msgs_per_s,
                c.payload_mbit_s, c.wire_mbit_s, c.wire_bytes_per_msg_publisher,
                c.wire_bytes_per_msg_subscriber, c.latency_us.p50, c.latency_us.p90,
                c.latency_us.p99, c.latency_us.max, c.broker_cpu_s_per_1e5,
                c.client_cpu_s_per_1e5, c.broker_cpu_ticks
            );
        }
        out
    }

    /// `modes.csv`: one row per (broker, mode).
    pub fn modes_csv(&self) -> String {
        let mut out = String::from(
            "link,broker,mode,setup_samples,setup_ms_p50,setup_ms_p99,setup_ms_max,\
             handshake_bytes_to_broker,handshake_bytes_to_client,idle_connections,\
             rss_bytes_per_idle_connection\n",
        );
        for m in &self.modes {
            let _ = writeln!(
                out,
                "{},{},{},{},{:.3},{:.3},{:.3},{},{},{},{}",
                m.link,
                m.broker,
                m.mode,
                m.setup_ms.samples,
                m.setup_ms.p50,
                m.setup_ms.p99,
                m.setup_ms.max,
                m.handshake_bytes_to_broker,
                m.handshake_bytes_to_client,
                m.idle_connections,
                opt(m.rss_bytes_per_idle_connection)
            );
        }
        out
    }

    /// Writes `results.json` into `dir`.
    pub fn write_json(&self, dir: &Path) -> io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        std::fs::write(dir.join("results.json"), json)
    }

    /// Writes the CSV files drawn from the results into `dir`: `cells.csv`,
    /// `modes.csv`, `stock.csv`, `repeats.csv`, `spread.csv`, `storm.csv`,
    /// `memory.csv`, `memory-repeats.csv` (runs that weighed memory in every repeat).
    pub fn write_tables(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut tables = vec![
            ("cells.csv", self.cells_csv()),
            ("modes.csv", self.modes_csv()),
            ("repeats.csv", super::repeat::repeats_csv(&self.repeats)),
            ("spread.csv", super::repeat::spread_csv(&self.repeats)),
            ("storm.csv", super::report_extra::storm_csv(self)),
            ("memory.csv", super::report_extra::memory_csv(self)),
        ];
        if !self.repeats.idle_memory.is_empty() {
            tables.push((
                "memory-repeats.csv",
                super::report_extra::memory_repeats_csv(self),
            ));
        }
        if !self.stock.is_empty() {
            tables.push(("stock.csv", super::stock::csv(&self.stock)));
        }
        let mut written = Vec::with_capacity(tables.len());
        for (name, text) in tables {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            written.push(path);
        }
        Ok(written)
    }
}
