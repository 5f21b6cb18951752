//! What the report says about the repeats: load warnings, the settings row, spread tables.

use super::*;

/// Which machine's load a warning is about: the client's, or the remote broker's.
pub(super) type LoadOf = fn(&BlockLoad) -> [Option<LoadAvg>; 2];

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

pub(super) fn machine_warning(
    d: &RepeatData,
    of: LoadOf,
    cores: usize,
    whose: &str,
) -> Option<String> {
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
pub(super) fn other_cpu_line(d: &RepeatData) -> String {
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
                let mut row = vec![crate::report::size(payload), qos.to_string()];
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
        crate::report::table(out, &header, &rows);
    }
}
