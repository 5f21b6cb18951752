//! Measuring one repeat: its cells, each lasting at least the profile's minimum.

use super::*;

/// Upper bound on messages in one throughput run (the broker may queue a QoS 0 backlog).
const MAX_CELL_MESSAGES: usize = 5_000_000;

/// A throughput run of at least `n` messages lasting at least `min` (up to four tries).
pub(crate) async fn sustained_throughput(
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
pub(crate) async fn timed_cell(
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
        crate::workload::idle_phase(t, profile, &mut notes).await
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
    let storm = crate::workload::storm_phase(t, profile, tick, &mut notes).await?;
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
