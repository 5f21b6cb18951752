//! Report sections and CSV files for the connection storm, idle-connection
//! memory at several counts, and the tshark cross-check (kept apart from
//! `report.rs` so each stays small).

use std::fmt::Write as _;

use super::matrix::{BrokerKind, Mode};
use super::procstat::TICKS_PER_SECOND;
use super::report::table;
use super::results::RunResults;

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or("-".into())
}

/// `## Connection storm`: handshakes per second and per broker CPU second, per (broker, mode).
pub fn storm_section(out: &mut String, r: &RunResults) {
    let rows: Vec<Vec<String>> = r
        .modes
        .iter()
        .filter_map(|m| m.storm.as_ref().map(|s| (m, s)))
        .map(|(m, s)| {
            vec![
                m.broker.to_string(),
                m.mode.to_string(),
                s.clients.to_string(),
                format!("{:.1} / {:.1}", s.window_seconds, s.seconds),
                s.handshakes.to_string(),
                s.failed.to_string(),
                format!("{:.1}", s.handshakes_per_s),
                format!("{:.2}", s.broker_cpu_ticks as f64 / TICKS_PER_SECOND),
                fmt_opt(s.handshakes_per_broker_cpu_s, 1),
            ]
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("## Connection storm: handshakes per second\n\n");
    out.push_str(
        "K clients (the profile's clients per core times this machine's cores, at most 5: our \
         broker's LWA limiter refuses one source address more than 10 unfinished handshakes, a \
         client can hold two, and every client here is 127.0.0.1) each connect, \
         wait until they may publish (CONNACK; for LWA, CONNACK verified), send DISCONNECT and \
         start over, for the window; handshakes begun in the window run to their end, and the \
         wall clock and the broker's CPU (`/proc/<pid>/stat`, 10 ms ticks) are read when the last \
         one has. Handshakes/s is per wall-clock second with the clients on the same cores as the \
         broker; per broker CPU second is the broker's own cost, i.e. handshakes per fully used \
         core. Failed handshakes are counted, never retried into the total. Password mode runs a \
         shorter window: every handshake there is a PBKDF2 verification.\n\n",
    );
    table(
        out,
        &[
            "broker",
            "mode",
            "K",
            "window / total s",
            "handshakes",
            "failed",
            "handshakes/s",
            "broker CPU s",
            "handshakes per broker CPU s",
        ]
        .map(String::from),
        &rows,
    );
    // Relative to plaintext on the same broker: what a mode's handshake costs the broker's CPU.
    let mut rel = Vec::new();
    for b in [BrokerKind::MqttLwa, BrokerKind::Mosquitto] {
        let per_cpu = |mode| {
            r.mode(b, mode)
                .and_then(|m| m.storm.as_ref())
                .and_then(|s| s.handshakes_per_broker_cpu_s)
        };
        let Some(plain) = per_cpu(Mode::Plain) else {
            continue;
        };
        let parts: Vec<String> = Mode::ALL
            .into_iter()
            .filter(|&m| m != Mode::Plain)
            .filter_map(|m| per_cpu(m).map(|v| format!("{m} {:.3}", v / plain)))
            .collect();
        if !parts.is_empty() {
            rel.push(format!("{b}: {}", parts.join(", ")));
        }
    }
    if !rel.is_empty() {
        let _ = writeln!(
            out,
            "Handshakes per broker CPU second relative to plaintext (same broker): {}.\n",
            rel.join("; ")
        );
    }
}

/// `## Broker memory per idle connection`: one column per connection count.
pub fn memory_section(out: &mut String, r: &RunResults) {
    let mut counts: Vec<u64> = r
        .modes
        .iter()
        .flat_map(|m| m.idle_memory.iter().map(|x| x.connections))
        .collect();
    counts.sort_unstable();
    counts.dedup();
    if counts.is_empty() {
        return;
    }
    out.push_str("## Broker memory per idle connection\n\n");
    out.push_str(
        "Broker RSS (`VmRSS`) with the connections open and idle, after it stopped moving, minus \
         RSS before the first one, divided by the connections open; the counts are reached one \
         after the other on the same connections, opened with a bounded number of handshakes in \
         flight. Bytes per connection (connections open). Password mode is left out: after its \
         login a password connection is a plaintext one.\n\n",
    );
    let repeated = !r.repeats.idle_memory.is_empty();
    if repeated {
        let _ = writeln!(
            out,
            "Weighed in every repeat: the median over the repeats, [the smallest, the largest] \
             and the fewest connections any repeat held open; every repeat is in \
             `memory-repeats.csv`.\n"
        );
    }
    let mut header = vec!["broker".to_string(), "mode".to_string()];
    header.extend(counts.iter().map(|n| format!("B/conn at {n}")));
    let rows: Vec<Vec<String>> =
        r.modes
            .iter()
            .filter(|m| !m.idle_memory.is_empty())
            .map(|m| {
                let mut row = vec![m.broker.to_string(), m.mode.to_string()];
                for n in &counts {
                    let cell = if repeated {
                        let (v, opened) =
                            super::report_vs_mosquitto::memory_repeats(r, m.broker, m.mode, *n);
                        let values: Vec<f64> = v.iter().map(|x| x.1).collect();
                        (!values.is_empty()).then(|| {
                            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                            format!(
                                "{:.0} [{lo:.0}, {hi:.0}] ({opened})",
                                super::stats::median(&values)
                            )
                        })
                    } else {
                        m.idle_memory.iter().find(|x| x.connections == *n).map(|x| {
                            format!("{} ({})", fmt_opt(x.bytes_per_connection, 0), x.opened)
                        })
                    };
                    row.push(cell.unwrap_or("-".into()));
                }
                row
            })
            .collect();
    table(out, &header, &rows);
}

/// Target rows: broker RSS per idle LWA connection at each count, TLS 1.3 beside it.
pub fn memory_target_rows(r: &RunResults) -> Vec<Vec<String>> {
    let b = BrokerKind::MqttLwa;
    let Some(lwa) = r.mode(b, Mode::Lwa) else {
        return Vec::new();
    };
    let tls = r.mode(b, Mode::Tls13);
    lwa.idle_memory
        .iter()
        .filter_map(|m| {
            let per = m.bytes_per_connection?;
            let tls = tls
                .and_then(|t| {
                    t.idle_memory
                        .iter()
                        .find(|x| x.connections == m.connections)
                })
                .and_then(|x| x.bytes_per_connection)
                .map(|t| format!("; TLS 1.3: {t:.0} B"))
                .unwrap_or_default();
            let label = format!(
                "Broker RSS per idle LWA connection ({} connections)",
                m.connections
            );
            if !r.repeats.idle_memory.is_empty() {
                // Every repeat: the median with its bootstrap interval (a ratio to 1).
                let median_of = |mode| {
                    let (v, _) =
                        super::report_vs_mosquitto::memory_repeats(r, b, mode, m.connections);
                    let ones: Vec<(usize, f64)> = v.iter().map(|x| (x.0, 1.0)).collect();
                    super::stats::ratio_ci(&v, &ones)
                };
                let ci = median_of(Mode::Lwa)?;
                let tls = median_of(Mode::Tls13)
                    .map(|t| format!("; TLS 1.3: {:.0} B", t.point))
                    .unwrap_or_default();
                let shown = match ci.interval {
                    Some((lo, hi)) => format!("{:.0} B [{lo:.0}, {hi:.0}]", ci.point),
                    None => format!("{:.0} B (no interval: {} repeat)", ci.point, ci.repeats),
                };
                return Some(vec![
                    label,
                    "<= 8192 B".into(),
                    format!("{shown}{tls}"),
                    super::stats::judge(&ci, 8192.0, true, super::report::indicative(r))
                        .word()
                        .into(),
                ]);
            }
            Some(vec![
                label,
                "<= 8192 B".into(),
                format!("{per:.0} B{tls}"),
                if super::report::indicative(r) {
                    super::stats::Claim::Indicative.word().into()
                } else if per <= 8192.0 {
                    "within (one measurement, no interval)".into()
                } else {
                    "over (one measurement, no interval)".into()
                },
            ])
        })
        .collect()
}

/// `## Cross-check`: the relay's byte counts against a tshark capture of the same cell.
pub fn cross_check_section(out: &mut String, r: &RunResults) {
    out.push_str("## Cross-check: relay byte counts against a tshark capture\n\n");
    let Some(c) = r.modes.iter().find_map(|m| m.cross_check.as_ref()) else {
        out.push_str("Not done in this run (the reason is under Notes).\n\n");
        return;
    };
    let _ = writeln!(
        out,
        "Cell: {} {} {} B QoS {}, {} messages, {} connection; capture `tshark -i lo -f '{}'` \
         while the cell's byte-counting phase ran, TCP payload bytes (`tcp.len`) summed per \
         direction; {} TCP segments captured.\n",
        c.broker, c.mode, c.payload, c.qos, c.messages, c.link, c.filter, c.capture_segments
    );
    let rows = vec![
        vec![
            "client to broker".into(),
            c.relay_to_broker.to_string(),
            c.capture_to_broker.to_string(),
            (c.capture_to_broker as i64 - c.relay_to_broker as i64).to_string(),
        ],
        vec![
            "broker to client".into(),
            c.relay_to_client.to_string(),
            c.capture_to_client.to_string(),
            (c.capture_to_client as i64 - c.relay_to_client as i64).to_string(),
        ],
    ];
    table(
        out,
        &["direction", "relay bytes", "tshark bytes", "difference"].map(String::from),
        &rows,
    );
    let _ = writeln!(
        out,
        "{} (total difference {} B).\n",
        if c.agrees() {
            "The counts agree exactly"
        } else {
            "**The counts disagree**"
        },
        c.difference
    );
}

/// `storm.csv`: one row per (broker, mode) with a storm.
pub fn storm_csv(r: &RunResults) -> String {
    let mut out = String::from(
        "broker,mode,clients,window_seconds,seconds,handshakes,failed,broker_cpu_ticks,\
         handshakes_per_s,handshakes_per_broker_cpu_s\n",
    );
    for m in &r.modes {
        if let Some(s) = &m.storm {
            let _ = writeln!(
                out,
                "{},{},{},{:.3},{:.3},{},{},{},{:.2},{}",
                m.broker,
                m.mode,
                s.clients,
                s.window_seconds,
                s.seconds,
                s.handshakes,
                s.failed,
                s.broker_cpu_ticks,
                s.handshakes_per_s,
                s.handshakes_per_broker_cpu_s
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_default()
            );
        }
    }
    out
}

/// The columns of one idle-memory step, shared by `memory.csv` and
/// `memory-repeats.csv`: connections, opened, failed, RSS before and after,
/// bytes per connection, seconds to open.
fn step_columns(x: &super::memory::IdleMemory) -> String {
    format!(
        "{},{},{},{},{},{},{:.3}",
        x.connections,
        x.opened,
        x.failed,
        x.rss_before,
        x.rss_after,
        x.bytes_per_connection
            .map(|v| format!("{v:.1}"))
            .unwrap_or_default(),
        x.open_seconds
    )
}

/// `memory-repeats.csv`: one row per (link, broker, mode, repeat, connection count), for
/// runs that weighed memory in every repeat.
pub fn memory_repeats_csv(r: &RunResults) -> String {
    let mut out = String::from(
        "link,broker,mode,repeat,connections,opened,failed,rss_before,rss_after,\
         bytes_per_connection,open_seconds\n",
    );
    for m in &r.repeats.idle_memory {
        for x in &m.steps {
            let _ = writeln!(
                out,
                "{},{},{},{},{}",
                m.link,
                m.broker,
                m.mode,
                m.repeat,
                step_columns(x)
            );
        }
    }
    out
}

/// `memory.csv`: one row per (broker, mode, connection count).
pub fn memory_csv(r: &RunResults) -> String {
    let mut out = String::from(
        "broker,mode,connections,opened,failed,rss_before,rss_after,bytes_per_connection,\
         open_seconds\n",
    );
    for m in &r.modes {
        for x in &m.idle_memory {
            let _ = writeln!(out, "{},{},{}", m.broker, m.mode, step_columns(x));
        }
    }
    out
}
