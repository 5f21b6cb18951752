//! From repeats to tables: the interleaved schedule, medians per cell, spreads.

use super::*;

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
