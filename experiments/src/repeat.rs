//! Repeated measurements: every throughput and latency cell runs
//! `profile.repeats` times, with the (broker, mode) blocks interleaved
//! between repeats so that slow drift of the machine's load spreads over all
//! modes instead of biasing one. Tables show the median; the raw value of
//! every repeat, the spread, and the load average around each block are kept.
//!
//! A throughput cell also lasts at least `profile.min_cell_ms`: a run that
//! ended sooner is redone with proportionally more messages (the shorter run
//! then served as warm-up and is discarded).

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::broker::TOPIC_PREFIX;
use super::matrix::{BrokerKind, Mode, Profile};
use super::memory::IdleMemory;
use super::procstat::{cpu_ticks, Process};
use super::results::{decode_histogram, encode_histogram, CellResult, Percentiles, RunResults};
use super::storm::StormResult;
use super::workload::{latency, throughput, Pair, Target, WorkloadError};

/// Upper bound on messages in one throughput run (the broker may queue a QoS 0 backlog).
const MAX_CELL_MESSAGES: usize = 5_000_000;

/// `/proc/loadavg`'s three averages (runnable and waiting tasks over 1, 5, 15 minutes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadAvg {
    /// 1-minute average.
    pub one: f64,
    /// 5-minute average.
    pub five: f64,
    /// 15-minute average.
    pub fifteen: f64,
}

impl LoadAvg {
    /// This machine's load average now (`None` where `/proc/loadavg` is unreadable).
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/loadavg").ok()?)
    }

    /// Parses the first three fields of a `/proc/loadavg` line.
    pub fn parse(text: &str) -> Option<Self> {
        let mut f = text.split_ascii_whitespace().map(|v| v.parse::<f64>().ok());
        Some(LoadAvg {
            one: f.next()??,
            five: f.next()??,
            fifteen: f.next()??,
        })
    }
}

/// One (broker, mode) block of one repeat: when the load was read around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockLoad {
    /// Link the block ran over.
    #[serde(default)]
    pub link: String,
    /// Repeat index (0-based).
    pub repeat: usize,
    /// Broker measured in the block.
    pub broker: BrokerKind,
    /// Mode measured in the block.
    pub mode: Mode,
    /// Load average before the block's first cell.
    pub start: Option<LoadAvg>,
    /// Load average after its last cell.
    pub end: Option<LoadAvg>,
    /// The broker machine's load average before the block (remote broker only).
    #[serde(default)]
    pub broker_host_start: Option<LoadAvg>,
    /// The broker machine's load average after the block (remote broker only).
    #[serde(default)]
    pub broker_host_end: Option<LoadAvg>,
    /// Share of this machine's CPU time that processes other than the runner and a
    /// local broker used during the block (0..1; `None` where `/proc/stat` is unreadable).
    #[serde(default)]
    pub other_cpu_share: Option<f64>,
}

/// CPU time of the whole machine and of the measured processes at one moment, so
/// that a block can tell how much of the CPU other processes took meanwhile (the
/// load average cannot: it counts the run's own broker and clients too).
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    busy: u64,
    total: u64,
    own: u64,
}

impl CpuSnapshot {
    /// Reads `/proc/stat` and the CPU ticks of `own` (the runner and a local broker).
    pub fn take(own: &[Process]) -> Option<Self> {
        let (busy, total) = parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let own = own.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).sum();
        Some(CpuSnapshot { busy, total, own })
    }

    /// Share of all CPU time between `self` and `later` used by other processes.
    pub fn other_share(&self, later: &CpuSnapshot) -> Option<f64> {
        let total = later.total.checked_sub(self.total).filter(|t| *t > 0)?;
        let busy = later.busy.saturating_sub(self.busy);
        let own = later.own.saturating_sub(self.own);
        Some(busy.saturating_sub(own) as f64 / total as f64)
    }
}

/// (busy, total) ticks of all CPUs from `/proc/stat`'s `cpu` line.
fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    // Busy is process time only (user, nice, system): interrupt and softirq time is
    // kernel work not charged to any process (on loopback, much of it is the run's own
    // TCP traffic) and steal is time the hypervisor gave to other guests, so counting
    // them as "other processes" flagged quiet runs as loaded.
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2);
    let total = busy + get(3) + get(4) + get(5) + get(6) + get(7);
    Some((busy, total))
}

/// The raw figures of one cell in one repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRepeat {
    /// Repeat index (0-based).
    pub repeat: usize,
    /// The figures of that repeat (wire bytes come from repeat 0: they are exact).
    #[serde(flatten)]
    pub cell: CellResult,
}

/// Median, quartiles and range of one figure over the repeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// First quartile (linear interpolation).
    pub q1: f64,
    /// Third quartile (linear interpolation).
    pub q3: f64,
}

impl Spread {
    /// The spread of `values` (all zero when empty).
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = p * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            let (a, b) = (
                v.get(lo).copied().unwrap_or(0.0),
                v.get(hi).copied().unwrap_or(0.0),
            );
            a + (b - a) * (pos - lo as f64)
        };
        Spread {
            median: q(0.5),
            min: v.first().copied().unwrap_or(0.0),
            max: v.last().copied().unwrap_or(0.0),
            q1: q(0.25),
            q3: q(0.75),
        }
    }

    /// (max - min) / median: the relative range, 0 for a single repeat.
    pub fn relative_range(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// Spreads of one cell over its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSpread {
    /// Link the cell ran over.
    #[serde(default)]
    pub link: String,
    /// Broker under test.
    pub broker: BrokerKind,
    /// Security mode.
    pub mode: Mode,
    /// Payload bytes.
    pub payload: usize,
    /// QoS.
    pub qos: u8,
    /// Repeats measured.
    pub repeats: usize,
    /// Delivered messages per second.
    pub msgs_per_s: Spread,
    /// Latency median, µs.
    pub latency_p50_us: Spread,
    /// Latency 99th percentile, µs.
    pub latency_p99_us: Spread,
    /// Broker CPU seconds per 10^5 messages.
    pub broker_cpu_s_per_1e5: Spread,
}

/// Everything the repeats add to a run: raw rows, spreads, load around each block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepeatData {
    /// CPU cores of the machine that ran the clients (the load warning's threshold).
    pub cores: usize,
    /// CPU cores of the broker machine when the broker was remote.
    #[serde(default)]
    pub broker_host_cores: Option<usize>,
    /// Every repeat of every cell.
    pub rows: Vec<CellRepeat>,
    /// Spread per cell.
    pub spreads: Vec<CellSpread>,
    /// Load average around every (repeat, broker, mode) block.
    pub loads: Vec<BlockLoad>,
    /// Every repeat's connection storm (runs before storms were repeated have none: their
    /// one storm is the mode's).
    #[serde(default)]
    pub storms: Vec<StormRepeat>,
    /// Every repeat's idle-memory steps (runs from before 2026-12-05 have none: their one
    /// measurement is the mode's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idle_memory: Vec<MemoryRepeat>,
}

/// The order blocks run in: every (broker, mode) of `plan` once per repeat, the order
/// reversed on odd repeats so no mode always runs first or last.
pub fn schedule(plan: &[(BrokerKind, Mode)], repeats: usize) -> Vec<(usize, BrokerKind, Mode)> {
    let mut out = Vec::new();
    for r in 0..repeats.max(1) {
        let mut block: Vec<_> = plan.iter().map(|&(b, m)| (r, b, m)).collect();
        if r % 2 == 1 {
            block.reverse();
        }
        out.extend(block);
    }
    out
}

fn same_cell(a: &CellResult, b: &CellResult) -> bool {
    a.link == b.link
        && a.broker == b.broker
        && a.mode == b.mode
        && a.payload == b.payload
        && a.qos == b.qos
}

/// Gives every repeat the wire bytes of its cell's repeat 0 (only repeat 0 counts them).
pub fn fill_wire_bytes(rows: &mut [CellRepeat]) {
    let first: Vec<CellResult> = rows
        .iter()
        .filter(|r| r.repeat == 0)
        .map(|r| r.cell.clone())
        .collect();
    for row in rows.iter_mut().filter(|r| r.repeat > 0) {
        if let Some(f) = first.iter().find(|f| same_cell(f, &row.cell)) {
            row.cell.wire_bytes_per_msg_publisher = f.wire_bytes_per_msg_publisher;
            row.cell.wire_bytes_per_msg_subscriber = f.wire_bytes_per_msg_subscriber;
            row.cell.wire_mbit_s = row.cell.msgs_per_s * f.wire_bytes_per_msg_publisher * 8.0 / 1e6;
        }
    }
}

/// The latency histograms of `group` merged into one, encoded; `None` when a repeat has none
/// (or one does not decode, or they cannot be added: then no merged figure is better than a
/// partial one).
fn merged_latency(group: &[&CellResult]) -> Option<String> {
    let mut merged: Option<hdrhistogram::Histogram<u64>> = None;
    for c in group {
        let h = decode_histogram(c.latency_hdr.as_deref()?).ok()?;
        match merged.as_mut() {
            None => merged = Some(h),
            Some(m) => m.add(&h).ok()?,
        }
    }
    encode_histogram(&merged?)
}

/// One cell per (broker, mode, payload, QoS) holding the median of each figure over
/// its repeats (sent and received summed), and the spreads.
pub fn aggregate(rows: &[CellRepeat]) -> (Vec<CellResult>, Vec<CellSpread>) {
    let mut cells: Vec<CellResult> = Vec::new();
    let mut spreads = Vec::new();
    for row in rows {
        if cells.iter().any(|c| same_cell(c, &row.cell)) {
            continue;
        }
        let group: Vec<&CellResult> = rows
            .iter()
            .map(|r| &r.cell)
            .filter(|c| same_cell(c, &row.cell))
            .collect();
        let spread =
            |f: fn(&CellResult) -> f64| Spread::of(&group.iter().map(|c| f(c)).collect::<Vec<_>>());
        let med = |f: fn(&CellResult) -> f64| spread(f).median;
        let msgs = spread(|c| c.msgs_per_s);
        let lat = Percentiles {
            samples: group.iter().map(|c| c.latency_us.samples).sum(),
            p50: med(|c| c.latency_us.p50),
            p90: med(|c| c.latency_us.p90),
            p99: med(|c| c.latency_us.p99),
            max: med(|c| c.latency_us.max),
        };
        let first = &row.cell;
        cells.push(CellResult {
            sent: group.iter().map(|c| c.sent).sum(),
            received: group.iter().map(|c| c.received).sum(),
            seconds: med(|c| c.seconds),
            msgs_per_s: msgs.median,
            payload_mbit_s: med(|c| c.payload_mbit_s),
            wire_mbit_s: msgs.median * first.wire_bytes_per_msg_publisher * 8.0 / 1e6,
            latency_us: lat,
            latency_hdr: merged_latency(&group),
            broker_cpu_s_per_1e5: med(|c| c.broker_cpu_s_per_1e5),
            client_cpu_s_per_1e5: med(|c| c.client_cpu_s_per_1e5),
            broker_cpu_ticks: med(|c| c.broker_cpu_ticks as f64).round() as u64,
            ..first.clone()
        });
        spreads.push(CellSpread {
            link: first.link.clone(),
            broker: first.broker,
            mode: first.mode,
            payload: first.payload,
            qos: first.qos,
            repeats: group.len(),
            msgs_per_s: msgs,
            latency_p50_us: spread(|c| c.latency_us.p50),
            latency_p99_us: spread(|c| c.latency_us.p99),
            broker_cpu_s_per_1e5: spread(|c| c.broker_cpu_s_per_1e5),
        });
    }
    (cells, spreads)
}

/// A throughput run of at least `n` messages lasting at least `min` (up to four tries).
pub(super) async fn sustained_throughput(
    t: &Target<'_>,
    pair: &mut Pair,
    topic: &str,
    body: &Bytes,
    q: u8,
    n: usize,
    min: Duration,
) -> Result<CellResult, WorkloadError> {
    let mut n = n.max(1);
    let mut cell = throughput(t, pair, topic, body, q, n).await?;
    for _ in 0..3 {
        if cell.seconds >= min.as_secs_f64() || n >= MAX_CELL_MESSAGES || cell.received == 0 {
            break;
        }
        // Aim 20 % past the minimum at the rate just seen; at least double.
        let wanted = (cell.msgs_per_s * min.as_secs_f64() * 1.2).ceil() as usize;
        n = wanted.max(n * 2).min(MAX_CELL_MESSAGES);
        cell = throughput(t, pair, topic, body, q, n).await?;
    }
    Ok(cell)
}

/// One cell's timed figures on `pair`: latency (one message in flight), then
/// sustained throughput; every repeat measures a cell this way.
pub(super) async fn timed_cell(
    t: &Target<'_>,
    pair: &mut Pair,
    topic: &str,
    body: &Bytes,
    q: u8,
    profile: &Profile,
) -> Result<CellResult, WorkloadError> {
    let lat = latency(pair, topic, body, q, profile.latency_messages).await?;
    let mut cell = sustained_throughput(
        t,
        pair,
        topic,
        body,
        q,
        profile.throughput_messages,
        Duration::from_millis(profile.min_cell_ms),
    )
    .await?;
    cell.latency_us = Percentiles::from_histogram(&lat, 1.0);
    cell.latency_hdr = encode_histogram(&lat);
    Ok(cell)
}

/// A later repeat of every (payload, QoS) cell of `t`: idle memory, latency, throughput
/// and the connection storm (set-up and bytes are measured once, in repeat 0).
pub async fn measure_repeat(
    t: &Target<'_>,
    profile: &Profile,
    repeat: usize,
    tick: &(dyn Fn(&str) + Sync),
) -> Result<RepeatMeasurement, WorkloadError> {
    let mut notes = Vec::new();
    let idle_memory = if profile.idle_connections.iter().any(|&n| n > 0) {
        tick(&format!(
            "{} {}: idle connections (repeat {})",
            t.broker,
            t.mode,
            repeat + 1
        ));
        super::workload::idle_phase(t, profile, &mut notes).await
    } else {
        Vec::new()
    };
    let tag = format!("direct{repeat}");
    let mut direct = Pair::open(t, t.addr, &tag).await?;
    let mut cells = Vec::new();
    for &payload in &profile.payloads {
        for &q in &profile.qos {
            tick(&format!(
                "{} {} {payload} B QoS {q} (repeat {})",
                t.broker,
                t.mode,
                repeat + 1
            ));
            let topic = format!("{TOPIC_PREFIX}/{tag}/{payload}/{q}");
            let body = Bytes::from(vec![0x5a; payload]);
            cells.push(timed_cell(t, &mut direct, &topic, &body, q, profile).await?);
        }
    }
    direct.close().await;
    let storm = super::workload::storm_phase(t, profile, tick, &mut notes).await?;
    Ok(RepeatMeasurement {
        cells,
        storm,
        idle_memory,
        notes: notes
            .into_iter()
            .map(|n| format!("repeat {}: {n}", repeat + 1))
            .collect(),
    })
}

/// What a later repeat of one (broker, mode) measured.
pub struct RepeatMeasurement {
    /// Latency and throughput of every (payload, QoS) cell.
    pub cells: Vec<CellResult>,
    /// The connection storm, where the profile runs one for the mode.
    pub storm: Option<StormResult>,
    /// Broker memory per idle connection (empty where the profile weighs none).
    pub idle_memory: Vec<IdleMemory>,
    /// What failed, for the report.
    pub notes: Vec<String>,
}

/// One repeat's connection storm of one (link, broker, mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StormRepeat {
    /// Link the block ran over.
    pub link: String,
    /// Repeat index (0-based).
    pub repeat: usize,
    /// Broker measured.
    pub broker: BrokerKind,
    /// Mode measured.
    pub mode: Mode,
    /// What the storm measured.
    pub storm: StormResult,
}

/// One repeat's idle-memory steps of one (link, broker, mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRepeat {
    /// Link the block ran over.
    pub link: String,
    /// Repeat index (0-based).
    pub repeat: usize,
    /// Broker measured.
    pub broker: BrokerKind,
    /// Mode measured.
    pub mode: Mode,
    /// Broker memory at each connection count.
    pub steps: Vec<IdleMemory>,
}

/// `repeats.csv`: every repeat of every cell, with the load average around its block.
pub fn repeats_csv(d: &RepeatData) -> String {
    let mut out = String::from(
        "link,broker,mode,payload,qos,repeat,sent,received,seconds,msgs_per_s,latency_us_p50,\
         latency_us_p99,broker_cpu_s_per_1e5,client_cpu_s_per_1e5,broker_cpu_ticks,\
         load1_start,load1_end,broker_host_load1_start,broker_host_load1_end,other_cpu_share\n",
    );
    for r in &d.rows {
        let c = &r.cell;
        let load = d.loads.iter().find(|l| {
            l.link == c.link && l.repeat == r.repeat && l.broker == c.broker && l.mode == c.mode
        });
        let one = |l: Option<LoadAvg>| l.map(|l| format!("{:.2}", l.one)).unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{:.6},{:.1},{:.1},{:.1},{:.4},{:.4},{},{},{},{},{},{}",
            c.link,
            c.broker,
            c.mode,
            c.payload,
            c.qos,
            r.repeat,
            c.sent,
            c.received,
            c.seconds,
            c.msgs_per_s,
            c.latency_us.p50,
            c.latency_us.p99,
            c.broker_cpu_s_per_1e5,
            c.client_cpu_s_per_1e5,
            c.broker_cpu_ticks,
            one(load.and_then(|l| l.start)),
            one(load.and_then(|l| l.end)),
            one(load.and_then(|l| l.broker_host_start)),
            one(load.and_then(|l| l.broker_host_end)),
            load.and_then(|l| l.other_cpu_share)
                .map(|s| format!("{s:.3}"))
                .unwrap_or_default(),
        );
    }
    out
}

/// `spread.csv`: median, quartiles and range of throughput and latency per cell.
pub fn spread_csv(d: &RepeatData) -> String {
    let mut out =
        String::from("link,broker,mode,payload,qos,repeats,figure,median,min,max,q1,q3\n");
    for s in &d.spreads {
        for (name, v) in [
            ("msgs_per_s", s.msgs_per_s),
            ("latency_us_p50", s.latency_p50_us),
            ("latency_us_p99", s.latency_p99_us),
            ("broker_cpu_s_per_1e5", s.broker_cpu_s_per_1e5),
        ] {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{name},{:.3},{:.3},{:.3},{:.3},{:.3}",
                s.link,
                s.broker,
                s.mode,
                s.payload,
                s.qos,
                s.repeats,
                v.median,
                v.min,
                v.max,
                v.q1,
                v.q3
            );
        }
    }
    out
}

/// Which machine's load a warning is about: the client's, or the remote broker's.
type LoadOf = fn(&BlockLoad) -> [Option<LoadAvg>; 2];

/// The highest 1-minute load average read during the run, with where it was read.
fn peak_load(d: &RepeatData, of: LoadOf) -> Option<(f64, &BlockLoad)> {
    d.loads
        .iter()
        .flat_map(|l| of(l).into_iter().flatten().map(move |v| (v.one, l)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// Warning paragraphs when the 1-minute load average exceeded the core count of the
/// client machine or of a remote broker's machine.
pub fn load_warning(r: &RunResults) -> Option<String> {
    let d = &r.repeats;
    let client: LoadOf = |l| [l.start, l.end];
    let broker: LoadOf = |l| [l.broker_host_start, l.broker_host_end];
    let text: String = [
        (client, Some(d.cores), "this machine's"),
        (broker, d.broker_host_cores, "the broker machine's"),
    ]
    .into_iter()
    .filter_map(|(of, cores, whose)| machine_warning(d, of, cores?, whose))
    .collect();
    (!text.is_empty()).then(|| text + &other_cpu_line(d))
}

fn machine_warning(d: &RepeatData, of: LoadOf, cores: usize, whose: &str) -> Option<String> {
    let (peak, at) = peak_load(d, of)?;
    if cores == 0 || peak <= cores as f64 {
        return None;
    }
    let over: Vec<String> = d
        .loads
        .iter()
        .filter(|l| of(l).into_iter().flatten().any(|v| v.one > cores as f64))
        .map(|l| format!("{} {} {} repeat {}", l.link, l.broker, l.mode, l.repeat + 1))
        .collect();
    Some(format!(
        "**Load warning.** The 1-minute load average exceeded {whose} {cores} cores during \
         the run (peak {peak:.2}, around {} {} {} repeat {}): other processes competed for the \
         CPU, so throughput, latency and CPU figures of the affected blocks are not to be \
         trusted ({} of {} blocks: {}). The run itself keeps about two tasks runnable (broker \
         and clients), so on a 2-core machine only a peak well above 2 means outside load; rerun \
         on a quiet machine.\n\n",
        at.link,
        at.broker,
        at.mode,
        at.repeat + 1,
        over.len(),
        d.loads.len(),
        over.join(", ")
    ))
}

/// What other processes took of the CPU, for judging a load warning (empty if unknown).
fn other_cpu_line(d: &RepeatData) -> String {
    let shares: Vec<(f64, &BlockLoad)> = d
        .loads
        .iter()
        .filter_map(|l| Some((l.other_cpu_share?, l)))
        .collect();
    let Some(&(max, at)) = shares.iter().max_by(|a, b| a.0.total_cmp(&b.0)) else {
        return String::new();
    };
    let mean = shares.iter().map(|(s, _)| s).sum::<f64>() / shares.len() as f64;
    format!(
        "Processes other than the runner and the broker used {:.0} % of this machine's CPU \
         time on average over the blocks, at most {:.0} % ({} {} {} repeat {}; \
         `other_cpu_share` in `results.json`).\n\n",
        mean * 100.0,
        max * 100.0,
        at.link,
        at.broker,
        at.mode,
        at.repeat + 1
    )
}

/// The settings-table row describing repeats and cell duration.
pub fn settings_row(p: &Profile) -> Vec<String> {
    vec![
        "repeats".into(),
        format!(
            "{} per throughput and latency cell, (broker, mode) blocks interleaved between \
             repeats (order reversed on odd repeats); tables show the median, ratios are ratios \
             of medians; {}",
            p.repeats.max(1),
            if p.min_cell_ms == 0 {
                "throughput cells have no minimum duration".to_string()
            } else {
                format!(
                    "throughput cells last at least {} ms (shorter runs are redone with more \
                     messages, the short run serving as warm-up)",
                    p.min_cell_ms
                )
            }
        ),
    ]
}

/// Picks one figure's spread out of a cell's.
type SpreadOf = fn(&CellSpread) -> Spread;

/// Per-broker tables of the spread over repeats (nothing when every cell ran once).
pub fn spread_tables(out: &mut String, r: &RunResults, broker: BrokerKind) {
    let spreads: Vec<&CellSpread> = r
        .repeats
        .spreads
        .iter()
        .filter(|s| s.broker == broker)
        .collect();
    if spreads.iter().all(|s| s.repeats < 2) {
        return;
    }
    let modes: Vec<Mode> = Mode::ALL
        .into_iter()
        .filter(|m| spreads.iter().any(|s| s.mode == *m))
        .collect();
    let tables: [(&str, SpreadOf); 2] = [
        ("Throughput over repeats, messages/s", |s| s.msgs_per_s),
        ("Latency p50 over repeats, µs", |s| s.latency_p50_us),
    ];
    for (title, f) in tables {
        let _ = writeln!(
            out,
            "### {title}: min - max (range / median)\n\nEvery repeat's value is in \
             `repeats.csv`, quartiles in `spread.csv`.\n"
        );
        let mut header = vec!["payload".to_string(), "QoS".to_string()];
        header.extend(modes.iter().map(|m| m.to_string()));
        let mut rows = Vec::new();
        for &payload in &r.meta.profile.payloads {
            for &qos in &r.meta.profile.qos {
                let mut row = vec![super::report::size(payload), qos.to_string()];
                for &m in &modes {
                    row.push(
                        spreads
                            .iter()
                            .find(|s| s.mode == m && s.payload == payload && s.qos == qos)
                            .map(|s| {
                                let v = f(s);
                                format!(
                                    "{:.0} - {:.0} ({:.0} %)",
                                    v.min,
                                    v.max,
                                    v.relative_range() * 100.0
                                )
                            })
                            .unwrap_or("-".into()),
                    );
                }
                rows.push(row);
            }
        }
        super::report::table(out, &header, &rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(mode: Mode, msgs: f64, repeat: usize) -> CellRepeat {
        CellRepeat {
            repeat,
            cell: CellResult {
                link: "loopback".into(),
                broker: BrokerKind::MqttLwa,
                mode,
                payload: 30,
                qos: 1,
                sent: 100,
                received: 100,
                seconds: 100.0 / msgs,
                msgs_per_s: msgs,
                payload_mbit_s: msgs * 30.0 * 8.0 / 1e6,
                wire_bytes_per_msg_publisher: if repeat == 0 { 50.0 } else { 0.0 },
                wire_bytes_per_msg_subscriber: if repeat == 0 { 40.0 } else { 0.0 },
                wire_mbit_s: 0.0,
                latency_us: Percentiles {
                    samples: 10,
                    p50: msgs / 10.0,
                    p90: 0.0,
                    p99: msgs / 5.0,
                    max: 0.0,
                },
                latency_hdr: None,
                broker_cpu_s_per_1e5: 1.0,
                client_cpu_s_per_1e5: 2.0,
                broker_cpu_ticks: 3,
            },
        }
    }

    #[test]
    fn spread_of_odd_even_and_empty() {
        let s = Spread::of(&[5.0, 1.0, 3.0]);
        assert_eq!(
            (s.median, s.min, s.max, s.q1, s.q3),
            (3.0, 1.0, 5.0, 2.0, 4.0)
        );
        assert_eq!(Spread::of(&[1.0, 2.0, 3.0, 10.0]).median, 2.5);
        assert_eq!(Spread::of(&[]), Spread::default());
        assert_eq!(Spread::of(&[7.0]).relative_range(), 0.0);
        assert!((Spread::of(&[1.0, 2.0, 3.0]).relative_range() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn aggregate_takes_medians_and_keeps_every_repeat_apart() {
        let mut rows = vec![
            cell(Mode::Plain, 100.0, 0),
            cell(Mode::Lwa, 50.0, 0),
            cell(Mode::Lwa, 80.0, 1),
            cell(Mode::Plain, 300.0, 1),
            cell(Mode::Plain, 200.0, 2),
            cell(Mode::Lwa, 10.0, 2),
        ];
        fill_wire_bytes(&mut rows);
        assert!(rows
            .iter()
            .all(|r| r.cell.wire_bytes_per_msg_publisher == 50.0));
        let (cells, spreads) = aggregate(&rows);
        assert_eq!(cells.len(), 2);
        let plain = cells.iter().find(|c| c.mode == Mode::Plain).unwrap();
        assert_eq!(plain.msgs_per_s, 200.0);
        assert_eq!(plain.sent, 300);
        assert_eq!(plain.latency_us.p50, 20.0);
        assert_eq!(plain.latency_us.samples, 30);
        assert!((plain.wire_mbit_s - 200.0 * 50.0 * 8.0 / 1e6).abs() < 1e-9);
        let lwa = spreads.iter().find(|s| s.mode == Mode::Lwa).unwrap();
        assert_eq!(lwa.repeats, 3);
        assert_eq!((lwa.msgs_per_s.min, lwa.msgs_per_s.max), (10.0, 80.0));
        assert_eq!(lwa.msgs_per_s.median, 50.0);
    }

    #[test]
    fn repeats_csv_takes_each_link_its_own_load() {
        let load = |link: &str, one: f64| BlockLoad {
            link: link.into(),
            repeat: 0,
            broker: BrokerKind::MqttLwa,
            mode: Mode::Plain,
            start: LoadAvg::parse(&format!("{one} 0 0 1/1 1")),
            end: None,
            broker_host_start: None,
            broker_host_end: None,
            other_cpu_share: None,
        };
        let mut lan = cell(Mode::Plain, 100.0, 0);
        lan.cell.link = "lan".into();
        let d = RepeatData {
            cores: 2,
            broker_host_cores: None,
            rows: vec![cell(Mode::Plain, 100.0, 0), lan],
            spreads: Vec::new(),
            loads: vec![load("loopback", 1.25), load("lan", 3.5)],
            storms: Vec::new(),
            idle_memory: Vec::new(),
        };
        let csv = repeats_csv(&d);
        let load1 = |link: &str| -> String {
            let line = csv.lines().find(|l| l.starts_with(link)).unwrap();
            line.split(',').nth(15).unwrap().to_owned()
        };
        // The lan block's row used to show loopback's load.
        assert_eq!(load1("loopback"), "1.25");
        assert_eq!(load1("lan"), "3.50");
    }

    #[test]
    fn schedule_alternates_the_order() {
        let plan = [
            (BrokerKind::MqttLwa, Mode::Plain),
            (BrokerKind::MqttLwa, Mode::Lwa),
        ];
        let s = schedule(&plan, 3);
        let modes: Vec<_> = s.iter().map(|&(r, _, m)| (r, m)).collect();
        assert_eq!(
            modes,
            [
                (0, Mode::Plain),
                (0, Mode::Lwa),
                (1, Mode::Lwa),
                (1, Mode::Plain),
                (2, Mode::Plain),
                (2, Mode::Lwa)
            ]
        );
        assert_eq!(schedule(&plan, 0).len(), 2);
    }

    #[test]
    fn load_warning_names_the_blocks_over_the_core_count() {
        let load = |one| {
            Some(LoadAvg {
                one,
                five: 0.0,
                fifteen: 0.0,
            })
        };
        let block = |mode, client: f64, broker: f64| BlockLoad {
            other_cpu_share: Some(client / 10.0),
            link: "lan".into(),
            repeat: 0,
            broker: BrokerKind::MqttLwa,
            mode,
            start: load(client),
            end: load(client),
            broker_host_start: load(broker),
            broker_host_end: load(broker),
        };
        let d = RepeatData {
            cores: 2,
            broker_host_cores: Some(4),
            loads: vec![block(Mode::Plain, 1.0, 5.0), block(Mode::Lwa, 4.0, 1.0)],
            ..RepeatData::default()
        };
        let client: LoadOf = |l| [l.start, l.end];
        let broker: LoadOf = |l| [l.broker_host_start, l.broker_host_end];
        let w = machine_warning(&d, client, 2, "this machine's").unwrap();
        assert!(w.contains("peak 4.00"));
        assert!(
            w.contains("(1 of 2 blocks: lan mqtt-lwa lwa repeat 1)"),
            "{w}"
        );
        let w = machine_warning(&d, broker, 4, "the broker machine's").unwrap();
        assert!(w.contains("mqtt-lwa plain repeat 1") && !w.contains("lwa repeat"));
        assert!(machine_warning(&d, client, 4, "x").is_none());
        assert!(other_cpu_line(&d).contains("25 % of this machine's CPU time on average"));
        assert!(other_cpu_line(&d).contains("at most 40 % (lan mqtt-lwa lwa repeat 1"));
    }

    #[test]
    fn other_processes_share_from_proc_stat() {
        let a = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n";
        let b = "cpu  200 0 100 900 50 0 0 0 0 0\n";
        // irq, softirq and steal count towards the total, not towards busy.
        assert_eq!(
            parse_proc_stat("cpu  10 0 5 70 0 3 7 5 0 0\n"),
            Some((15, 100))
        );
        let (busy, total) = parse_proc_stat(a).unwrap();
        assert_eq!((busy, total), (150, 1000));
        let s0 = CpuSnapshot {
            busy,
            total,
            own: 10,
        };
        let (busy, total) = parse_proc_stat(b).unwrap();
        let s1 = CpuSnapshot {
            busy,
            total,
            own: 60,
        };
        // 250 ticks in all, 150 busy of which 50 ours: 100 / 250.
        assert!((s0.other_share(&s1).unwrap() - 0.4).abs() < 1e-12);
        assert!(CpuSnapshot::take(&[Process::Current]).is_some());
    }

    #[test]
    fn load_average_parses() {
        let l = LoadAvg::parse("16.85 16.06 15.79 18/237 9700\n").unwrap();
        assert_eq!((l.one, l.five, l.fifteen), (16.85, 16.06, 15.79));
        assert!(LoadAvg::parse("x").is_none());
        assert!(LoadAvg::now().is_some());
    }
}
