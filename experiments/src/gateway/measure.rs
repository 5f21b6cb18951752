//! One block of the gateway experiment: fresh processes for a (route, mode), then latency,
//! throughput at QoS 0 and 1, and a connection storm through them; and one scaling block
//! (one or two gateways in front of one Mosquitto, two client pairs).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::{Block, GatewaySettings, Route, ScalingBlock, StormCell, ThroughputCell};
use crate::affinity;
use crate::broker::{BrokerError, BrokerProcess, Credentials, TOPIC_PREFIX};
use crate::matrix::Mode;
use crate::procstat::{cpu_ticks, Process};
use crate::results::{encode_histogram, Percentiles};
use crate::workload::{latency, throughput, Pair, Target, TlsClient, WorkloadError};

/// Messages of the first try of a throughput cell (then sized to last the cell's seconds).
const PILOT_MESSAGES: usize = 5_000;
/// Upper bound on one cell's messages.
const MAX_MESSAGES: usize = 2_000_000;

/// What every block shares.
pub struct Context<'a> {
    /// The runner's runtime.
    pub runtime: &'a tokio::runtime::Runtime,
    /// Credentials of every mode.
    pub creds: &'a Credentials,
    /// `mqtt-lwa`, broker and gateway.
    pub mqtt_lwa_bin: &'a Path,
    /// What to measure.
    pub settings: &'a GatewaySettings,
    /// This machine's cores (scaling: gateway k on CPU (k-1) mod cores).
    pub cores: usize,
}

/// Errors of one block.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// A process did not start.
    #[error("{0}")]
    Broker(#[from] BrokerError),
    /// The clients failed.
    #[error("{0}")]
    Workload(#[from] WorkloadError),
}

/// The processes of one route: the one the clients reach, and Mosquitto behind a gateway.
struct Processes {
    front: Vec<BrokerProcess>,
    upstream: Option<BrokerProcess>,
}

impl Processes {
    fn start(
        cx: &Context<'_>,
        route: Route,
        mode: Mode,
        gateways: usize,
    ) -> Result<Self, BrokerError> {
        Ok(match route {
            Route::GatewayMosquitto => {
                let upstream = BrokerProcess::start_mosquitto(Mode::Plain, cx.creds)?;
                let front = (0..gateways)
                    .map(|i| {
                        BrokerProcess::start_gateway(
                            cx.mqtt_lwa_bin,
                            mode,
                            cx.creds,
                            upstream.addr,
                            &format!("g{i}"),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Processes {
                    front,
                    upstream: Some(upstream),
                }
            }
            Route::MqttLwa => Processes {
                front: vec![BrokerProcess::start_mqtt_lwa(
                    cx.mqtt_lwa_bin,
                    mode,
                    cx.creds,
                )?],
                upstream: None,
            },
            Route::Mosquitto => Processes {
                front: vec![BrokerProcess::start_mosquitto(mode, cx.creds)?],
                upstream: None,
            },
        })
    }

    /// Pins front process k to CPU k mod `cores`; returns the placement for the record.
    fn pin(&self, cores: usize) -> String {
        let mut parts = Vec::new();
        for (k, p) in self.front.iter().enumerate() {
            let cpu = (affinity::BROKER_CPU + k) % cores.max(1);
            match affinity::pin_process(p.pid(), cpu) {
                Ok(_) => parts.push(format!("front {} on CPU {cpu}", k + 1)),
                Err(e) => parts.push(format!("front {} not pinned ({e})", k + 1)),
            }
        }
        parts.push("upstream and runner not pinned".into());
        parts.join(", ")
    }

    fn front_ticks(&self) -> std::io::Result<u64> {
        self.front
            .iter()
            .map(|p| cpu_ticks(Process::Pid(p.pid())))
            .sum()
    }

    fn upstream_ticks(&self) -> std::io::Result<Option<u64>> {
        self.upstream
            .as_ref()
            .map(|p| cpu_ticks(Process::Pid(p.pid())))
            .transpose()
    }

    fn target<'a>(
        &self,
        k: usize,
        mode: Mode,
        cx: &Context<'a>,
        tls: Option<&'a TlsClient>,
    ) -> Target<'a> {
        let p = &self.front[k % self.front.len()];
        Target {
            broker: p.kind,
            process: Process::Pid(p.pid()),
            addr: p.addr,
            mode,
            creds: cx.creds,
            tls,
        }
    }
}

/// `later - earlier` of two optional tick readings.
fn since(later: Option<u64>, earlier: Option<u64>) -> Option<u64> {
    Some(later?.saturating_sub(earlier?))
}

/// Measures one (route, mode) block with fresh processes.
pub fn block(
    cx: &Context<'_>,
    route: Route,
    mode: Mode,
    repeat: usize,
) -> Result<Block, BlockError> {
    let procs = Processes::start(cx, route, mode, 1)?;
    if cx.settings.pin_cpus {
        procs.pin(cx.cores);
    }
    let tls = TlsClient::for_mode(mode, cx.creds)?;
    let t = procs.target(0, mode, cx, tls.as_ref());
    let s = cx.settings;
    let body = Bytes::from(vec![0x5a; s.payload]);
    cx.runtime.block_on(async {
        let tag = format!("gw{repeat}");
        let mut pair = Pair::open(&t, t.addr, &tag).await?;
        let topic = format!("{TOPIC_PREFIX}/{tag}/latency");
        // A short warm-up (connection buffers, the first allocations), not recorded.
        latency(&mut pair, &topic, &body, 1, 50).await?;
        let lat = latency(&mut pair, &topic, &body, 1, s.latency_messages).await?;
        let mut cells = Vec::new();
        for q in [0u8, 1] {
            let topics = [format!("{TOPIC_PREFIX}/{tag}/{q}")];
            let cell = sustained(
                &[&t],
                &procs,
                &mut [&mut pair],
                &topics,
                &body,
                q,
                s.cell_seconds,
            )
            .await?;
            cells.push(cell);
        }
        pair.close().await;
        let storm = storm_of(&[&t], &procs, s).await?;
        Ok(Block {
            route,
            mode,
            repeat,
            latency_us: Percentiles::from_histogram(&lat, 1.0),
            latency_hdr: encode_histogram(&lat),
            throughput: cells,
            storm,
        })
    })
}

/// Measures `gateways` gateways in front of one Mosquitto: two client pairs (pair k through
/// gateway k mod `gateways`) at QoS 1, then a storm with its clients split over the gateways.
pub fn scaling_block(
    cx: &Context<'_>,
    mode: Mode,
    gateways: usize,
    repeat: usize,
) -> Result<ScalingBlock, BlockError> {
    let procs = Processes::start(cx, Route::GatewayMosquitto, mode, gateways)?;
    let placement = if cx.settings.pin_cpus {
        procs.pin(cx.cores)
    } else {
        "not pinned".into()
    };
    let tls = TlsClient::for_mode(mode, cx.creds)?;
    let t0 = procs.target(0, mode, cx, tls.as_ref());
    let t1 = procs.target(1, mode, cx, tls.as_ref());
    let s = cx.settings;
    let body = Bytes::from(vec![0x5a; s.payload]);
    cx.runtime.block_on(async {
        let tag0 = format!("scale{repeat}a");
        let tag1 = format!("scale{repeat}b");
        let mut p0 = Pair::open(&t0, t0.addr, &tag0).await?;
        let mut p1 = Pair::open(&t1, t1.addr, &tag1).await?;
        let topics = [
            format!("{TOPIC_PREFIX}/{tag0}/1"),
            format!("{TOPIC_PREFIX}/{tag1}/1"),
        ];
        let cell = sustained(
            &[&t0, &t1],
            &procs,
            &mut [&mut p0, &mut p1],
            &topics,
            &body,
            1,
            s.cell_seconds,
        )
        .await?;
        p0.close().await;
        p1.close().await;
        let storm = storm_of(&[&t0, &t1][..gateways.min(2)], &procs, s).await?;
        Ok(ScalingBlock {
            mode,
            gateways,
            repeat,
            throughput: cell,
            storm,
            placement,
        })
    })
}

/// Throughput of every pair at once (pair k on target k and topic k), first with [`PILOT_MESSAGES`] per pair, then sized to
/// last `seconds` (up to three more tries; the shorter runs are warm-up and discarded).
async fn sustained(
    targets: &[&Target<'_>],
    procs: &Processes,
    pairs: &mut [&mut Pair],
    topics: &[String],
    body: &Bytes,
    q: u8,
    seconds: f64,
) -> Result<ThroughputCell, WorkloadError> {
    let mut n = PILOT_MESSAGES;
    let mut cell = throughput_once(targets, procs, pairs, topics, body, q, n).await?;
    for _ in 0..3 {
        if cell.seconds >= seconds || n >= MAX_MESSAGES || cell.received == 0 {
            break;
        }
        let per_pair = cell.msgs_per_s / pairs.len().max(1) as f64;
        let wanted = (per_pair * seconds * 1.2).ceil() as usize;
        n = wanted.max(n * 2).min(MAX_MESSAGES);
        cell = throughput_once(targets, procs, pairs, topics, body, q, n).await?;
    }
    Ok(cell)
}

async fn throughput_once(
    targets: &[&Target<'_>],
    procs: &Processes,
    pairs: &mut [&mut Pair],
    topics: &[String],
    body: &Bytes,
    q: u8,
    n: usize,
) -> Result<ThroughputCell, WorkloadError> {
    let front0 = procs.front_ticks()?;
    let up0 = procs.upstream_ticks()?;
    let runner0 = cpu_ticks(Process::Current)?;
    let runs = pairs.iter_mut().enumerate().map(|(k, pair)| {
        let t = targets[k % targets.len()];
        let topic = &topics[k % topics.len()];
        async move { throughput(t, pair, topic, body, q, n).await }
    });
    let cells = crate::storm::join_all(runs.collect()).await;
    let front1 = procs.front_ticks()?;
    let up1 = procs.upstream_ticks()?;
    let runner1 = cpu_ticks(Process::Current)?;
    let mut sent = 0;
    let mut received = 0;
    let mut seconds: f64 = 0.0;
    for c in cells {
        let c = c?;
        sent += c.sent;
        received += c.received;
        seconds = seconds.max(c.seconds);
    }
    Ok(ThroughputCell {
        qos: q,
        sent,
        received,
        seconds,
        msgs_per_s: received as f64 / seconds.max(1e-9),
        front_cpu_ticks: front1.saturating_sub(front0),
        upstream_cpu_ticks: since(up1, up0),
        runner_cpu_ticks: runner1.saturating_sub(runner0),
    })
}

/// A connection storm of `settings.storm_clients` clients split over `targets`.
async fn storm_of(
    targets: &[&Target<'_>],
    procs: &Processes,
    s: &GatewaySettings,
) -> Result<Option<StormCell>, WorkloadError> {
    if s.storm_seconds <= 0.0 || targets.is_empty() {
        return Ok(None);
    }
    let window = Duration::from_secs_f64(s.storm_seconds);
    let per = (s.storm_clients / targets.len()).max(1);
    let front0 = procs.front_ticks()?;
    let up0 = procs.upstream_ticks()?;
    let storms = targets
        .iter()
        .map(|t| crate::storm::storm(t, per, window))
        .collect();
    let results = crate::storm::join_all(storms).await;
    let front1 = procs.front_ticks()?;
    let up1 = procs.upstream_ticks()?;
    let mut cell = StormCell {
        clients: 0,
        window_seconds: s.storm_seconds,
        seconds: 0.0,
        handshakes: 0,
        failed: 0,
        first_error: None,
        front_cpu_ticks: front1.saturating_sub(front0),
        upstream_cpu_ticks: since(up1, up0),
    };
    for r in results {
        let r = r?;
        cell.clients += r.clients;
        cell.seconds = cell.seconds.max(r.seconds);
        cell.handshakes += r.handshakes;
        cell.failed += r.failed;
        if cell.first_error.is_none() {
            cell.first_error = r.first_error;
        }
    }
    Ok(Some(cell))
}
