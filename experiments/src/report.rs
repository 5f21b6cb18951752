//! `report.md`: the run's tables (absolute figures and ratios against
//! plaintext and against TLS 1.3), the targets checked against the
//! figures, and how the figures relate to the seed study.

use std::fmt::Write as _;

use super::matrix::{BrokerKind, Mode};
use super::results::{CellResult, RunResults};
use super::stats::{judge, ratio_ci, RatioCi};

/// The seed study's iperf figures between two Raspberry Pi 3B (Mbit/s): link, not MQTT.
pub const SEED_MBIT_S: [(&str, f64); 3] = [("plain", 13.4), ("password", 10.4), ("TLS", 8.48)];

pub(super) fn size(bytes: usize) -> String {
    if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// A markdown table: header row, separator, rows.
pub(super) fn table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().map(|_| "---|").collect::<String>()
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
}

/// Modes the run measured on `broker`, in report order.
pub(super) fn modes_of(r: &RunResults, broker: BrokerKind) -> Vec<Mode> {
    Mode::ALL
        .into_iter()
        .filter(|m| r.modes.iter().any(|x| x.broker == broker && x.mode == *m))
        .collect()
}

pub(super) fn brokers_of(r: &RunResults) -> Vec<BrokerKind> {
    [BrokerKind::MqttLwa, BrokerKind::Mosquitto]
        .into_iter()
        .filter(|b| r.modes.iter().any(|x| x.broker == *b))
        .collect()
}

/// One table with a row per (payload, QoS) and a column per mode, filled by `f`.
pub(super) fn cell_table(
    out: &mut String,
    r: &RunResults,
    broker: BrokerKind,
    f: &dyn Fn(&CellResult) -> String,
) {
    let modes = modes_of(r, broker);
    let mut header = vec!["payload".to_string(), "QoS".to_string()];
    header.extend(modes.iter().map(|m| m.to_string()));
    let mut rows = Vec::new();
    for &payload in &r.meta.profile.payloads {
        for &qos in &r.meta.profile.qos {
            let mut row = vec![size(payload), qos.to_string()];
            for &m in &modes {
                row.push(r.cell(broker, m, payload, qos).map(f).unwrap_or("-".into()));
            }
            rows.push(row);
        }
    }
    table(out, &header, &rows);
}

/// Every repeat's `metric` for one cell as (repeat, value); the median cell
/// alone when the run kept no per-repeat rows.
pub(super) fn per_repeat(
    r: &RunResults,
    broker: BrokerKind,
    mode: Mode,
    payload: usize,
    qos: u8,
    metric: fn(&CellResult) -> f64,
) -> Vec<(usize, f64)> {
    let v: Vec<(usize, f64)> = r
        .repeats
        .rows
        .iter()
        .filter(|x| {
            x.cell.broker == broker
                && x.cell.mode == mode
                && x.cell.payload == payload
                && x.cell.qos == qos
        })
        .map(|x| (x.repeat, metric(&x.cell)))
        .collect();
    if v.is_empty() {
        r.cell(broker, mode, payload, qos)
            .map(|c| vec![(0, metric(c))])
            .unwrap_or_default()
    } else {
        v
    }
}

/// `metric` of (broker a, mode a) over (broker b, mode b) for one cell, with
/// its interval over the repeats.
#[allow(clippy::too_many_arguments)]
pub(super) fn cell_ratio(
    r: &RunResults,
    (broker_a, mode_a): (BrokerKind, Mode),
    (broker_b, mode_b): (BrokerKind, Mode),
    payload: usize,
    qos: u8,
    metric: fn(&CellResult) -> f64,
) -> Option<RatioCi> {
    ratio_ci(
        &per_repeat(r, broker_a, mode_a, payload, qos, metric),
        &per_repeat(r, broker_b, mode_b, payload, qos, metric),
    )
}

/// True for the quick profile, whose figures claim nothing.
pub(super) fn indicative(r: &RunResults) -> bool {
    r.meta.profile.name == "quick"
}

/// A ratio table of `metric` against `base` mode on the same broker, payload and QoS.
fn ratio_table(
    out: &mut String,
    r: &RunResults,
    broker: BrokerKind,
    base: Mode,
    metric: fn(&CellResult) -> f64,
) {
    cell_table(out, r, broker, &|c| {
        cell_ratio(
            r,
            (broker, c.mode),
            (broker, base),
            c.payload,
            c.qos,
            metric,
        )
        .map_or_else(|| "-".into(), |ci| ci.show())
    });
}

fn targets(out: &mut String, r: &RunResults) {
    let b = BrokerKind::MqttLwa;
    let (Some(lwa), Some(plain)) = (r.mode(b, Mode::Lwa), r.mode(b, Mode::Plain)) else {
        out.push_str("Not checked: LWA or plaintext was not measured on mqtt-lwa.\n\n");
        return;
    };
    let mut rows = Vec::new();
    let hs_lwa = lwa.handshake_bytes_to_broker + lwa.handshake_bytes_to_client;
    let hs_plain = plain.handshake_bytes_to_broker + plain.handshake_bytes_to_client;
    let extra = hs_lwa as i64 - hs_plain as i64;
    rows.push(vec![
        "LWA handshake bytes over plaintext CONNECT/CONNACK".into(),
        "<= 128".into(),
        format!("{extra} ({hs_lwa} vs {hs_plain})"),
        exact_verdict(r, extra <= 128),
    ]);
    if let Some(tls) = r.mode(b, Mode::Tls13) {
        let hs_tls = tls.handshake_bytes_to_broker + tls.handshake_bytes_to_client;
        rows.push(vec![
            "TLS 1.3 handshake bytes over plaintext (context)".into(),
            "-".into(),
            format!(
                "{} ({hs_tls} vs {hs_plain})",
                hs_tls as i64 - hs_plain as i64
            ),
            "-".into(),
        ]);
    }
    for &qos in &r.meta.profile.qos {
        let payload = r.meta.profile.payloads.first().copied().unwrap_or(30);
        if let (Some(l), Some(p)) = (
            r.cell(b, Mode::Lwa, payload, qos),
            r.cell(b, Mode::Plain, payload, qos),
        ) {
            let over = l.wire_bytes_per_msg_publisher - p.wire_bytes_per_msg_publisher;
            rows.push(vec![
                format!(
                    "LWA bytes per message over plaintext ({}, QoS {qos}, publisher link)",
                    size(payload)
                ),
                "<= 24".into(),
                format!("{over:.1}"),
                exact_verdict(r, over <= 24.0),
            ]);
            let msgs = |c: &CellResult| c.msgs_per_s;
            for (base, label, goal) in [
                (Mode::Plain, "plaintext", 0.9),
                (Mode::Tls13, "TLS 1.3", 1.0),
            ] {
                if let Some(ci) = cell_ratio(r, (b, Mode::Lwa), (b, base), payload, qos, msgs) {
                    rows.push(vec![
                        format!("LWA / {label} throughput ({}, QoS {qos})", size(payload)),
                        format!(">= {goal:.2}"),
                        ci.show(),
                        judge(&ci, goal, false, indicative(r)).word().into(),
                    ]);
                }
            }
        }
    }
    rows.extend(super::report_extra::memory_target_rows(r));
    table(
        out,
        &["target".into(), "goal".into(), "measured".into(), "".into()],
        &rows,
    );
    out.push_str(
        "Round trips before the first publish are fixed by the protocols, not measured: \
         plaintext and password MQTT need CONNECT/CONNACK (1 RTT after TCP); LWA carries its \
         offer in CONNECT and its response in CONNACK, and the client's AUTH travels in front of \
         its first PUBLISH, so it adds 0; TLS 1.3 adds 1 and TLS 1.2 adds 2. The set-up times \
         above show what that costs on this link.\n\n",
    );
}

/// For a figure counted exactly (bytes on the socket): `met` or `missed`;
/// in the quick profile, which claims nothing, `indicative`.
pub(super) fn exact_verdict(r: &RunResults, ok: bool) -> String {
    if indicative(r) {
        return super::stats::Claim::Indicative.word().into();
    }
    if ok {
        "met (exact count)"
    } else {
        "missed (exact count)"
    }
    .into()
}

/// Renders the whole report: the first link in full, the others in [`super::report_links`],
/// and the A64 instruction counts when the run directory has them.
pub fn render(all: &RunResults, insn: Option<&super::insn_counts::InsnCounts>) -> String {
    let primary = all.for_link(&all.primary_link());
    let r = &primary;
    let m = &r.meta;
    let mut out = String::new();
    let _ = writeln!(out, "# What securing MQTT costs: run `{}`\n", m.run);
    let _ = writeln!(
        out,
        "Profile `{}`, link `{}`, started {} UTC, took {:.0} s.\n\nCommand: `{}`\n",
        m.profile.name, m.link, m.started_utc, m.seconds, m.command
    );
    let where_brokers = if m.remote_broker.is_some() {
        "The broker ran on another machine (below)"
    } else if all.links.iter().any(|l| !l.profile.is_loopback()) {
        "Brokers run as child processes, on loopback or behind an emulated link (Links, below)"
    } else {
        "Brokers run as child processes on loopback"
    };
    let _ = writeln!(
        out,
        "Every figure below was measured in this run by `mqtt-lwa experiment`; CSV and JSON \
         beside this file hold them unrounded. {where_brokers}; the clients are \
         `mqtt_lwa::client` in the runner process, MQTT 5 in every mode so that only security \
         differs.\n"
    );
    if let Some(host) = &m.remote_broker {
        let _ = writeln!(
            out,
            "**Remote broker.** The broker ran on {host}, reached over the network; the \
             clients ran on the machine in the table below. Broker CPU and memory were read on \
             the broker machine by `mqtt-lwa experiment serve`.\n"
        );
    }
    if m.versions
        .iter()
        .any(|(k, v)| k == "build" && v.starts_with("debug"))
    {
        out.push_str(
            "**Debug build.** The RustCrypto code behind LWA records and password hashing runs \
             largely unoptimised here while ring (TLS) is always optimised, so ratios involving \
             LWA or password mode say nothing about their cost; this run checks the pipeline. \
             Use an optimised build (`cargo build --release`, which builds the broker and the \
             harness, then `target/release/mqtt-lwa experiment`) for figures.\n\n",
        );
    }
    // Every link's blocks: a loaded machine taints the whole run.
    if let Some(warning) = super::repeat::load_warning(all) {
        out.push_str(&warning);
    }
    out.push_str("## Machine, versions, settings\n\n");
    let mut rows: Vec<Vec<String>> = m
        .machine
        .iter()
        .chain(m.versions.iter())
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    let p = &m.profile;
    rows.push(vec![
        "profile".into(),
        format!(
            "{} throughput msgs/cell, {} latency msgs/cell (one in flight), {} msgs/cell on the \
             byte-counting connections, {} set-ups/mode, idle connections {:?}, storm {} \
             clients/core for {} ms ({} ms in password mode)",
            p.throughput_messages,
            p.latency_messages,
            p.wire_messages,
            p.setup_samples,
            p.idle_connections,
            p.storm.clients_per_core,
            p.storm.millis,
            p.storm.password_millis
        ),
    ]);
    rows.push(super::repeat::settings_row(p));
    table(&mut out, &["".into(), "".into()], &rows);

    out.push_str("## Targets (issue 6)\n\n");
    let _ = writeln!(
        out,
        "Ratios here and below are ratios of medians over the repeats, shown as `ratio [95 % \
         interval]`: a paired percentile bootstrap over repeats ({} resamples, fixed seed, so a \
         re-render gives the same digits; `experiments/src/stats.rs`). A target is met only when \
         its whole interval is on the goal's side, missed only when the whole interval is on \
         the other side, and otherwise not shown; with one repeat there is no interval and no \
         claim.{}\n",
        super::stats::RESAMPLES,
        if indicative(r) {
            " This is the quick profile: its figures are indicative and it claims nothing; run \
             `--profile full` (5 interleaved repeats) for claims."
        } else {
            ""
        }
    );
    targets(&mut out, r);

    for broker in brokers_of(r) {
        let _ = writeln!(out, "## Broker: {broker}\n");
        out.push_str("### Connection set-up, handshake bytes, memory\n\n");
        out.push_str(
            "Set-up: TCP connect until the client may publish (CONNACK; for LWA, CONNACK \
             verified and AUTH sent). Handshake bytes: counted on the socket by a relay, \
             both directions. Memory: broker RSS growth divided by the idle connections held, \
             at the profile's first count (every count: see the memory section).\n\n",
        );
        let rows: Vec<Vec<String>> = modes_of(r, broker)
            .into_iter()
            .filter_map(|mode| r.mode(broker, mode))
            .map(|x| {
                vec![
                    x.mode.to_string(),
                    format!("{:.2}", x.setup_ms.p50),
                    format!("{:.2}", x.setup_ms.p99),
                    x.setup_ms.samples.to_string(),
                    x.handshake_bytes_to_broker.to_string(),
                    x.handshake_bytes_to_client.to_string(),
                    x.rss_bytes_per_idle_connection
                        .map(|v| format!("{v:.0}"))
                        .unwrap_or("-".into()),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "mode",
                "set-up p50 ms",
                "set-up p99 ms",
                "n",
                "bytes to broker",
                "bytes to client",
                "RSS B/idle conn",
            ]
            .map(String::from),
            &rows,
        );
        out.push_str("### Throughput, messages/s (median over the repeats)\n\n");
        cell_table(&mut out, r, broker, &|c| {
            if c.received < c.sent {
                format!("{:.0} ({} lost)", c.msgs_per_s, c.sent - c.received)
            } else {
                format!("{:.0}", c.msgs_per_s)
            }
        });
        out.push_str("### Throughput relative to plaintext (same broker, payload, QoS)\n\n");
        ratio_table(&mut out, r, broker, Mode::Plain, |c| c.msgs_per_s);
        if r.mode(broker, Mode::Tls13).is_some() {
            out.push_str("### Throughput relative to TLS 1.3\n\n");
            ratio_table(&mut out, r, broker, Mode::Tls13, |c| c.msgs_per_s);
        }
        if broker == BrokerKind::MqttLwa && brokers_of(r).contains(&BrokerKind::Mosquitto) {
            out.push_str(
                "### Throughput relative to mosquitto (same mode, payload, QoS; ours / theirs)\n\n",
            );
            cell_table(&mut out, r, broker, &|c| {
                cell_ratio(
                    r,
                    (BrokerKind::MqttLwa, c.mode),
                    (BrokerKind::Mosquitto, c.mode),
                    c.payload,
                    c.qos,
                    |c| c.msgs_per_s,
                )
                .map_or_else(|| "-".into(), |ci| ci.show())
            });
        }
        super::repeat::spread_tables(&mut out, r, broker);
        out.push_str("### Payload and wire rate, Mbit/s (payload / publisher link)\n\n");
        cell_table(&mut out, r, broker, &|c| {
            format!("{:.2} / {:.2}", c.payload_mbit_s, c.wire_mbit_s)
        });
        out.push_str("### Bytes on the wire per message (publisher link / subscriber link)\n\n");
        cell_table(&mut out, r, broker, &|c| {
            format!(
                "{:.0} / {:.0}",
                c.wire_bytes_per_msg_publisher, c.wire_bytes_per_msg_subscriber
            )
        });
        out.push_str("### End-to-end latency, one message in flight, µs (p50 / p99)\n\n");
        cell_table(&mut out, r, broker, &|c| {
            format!("{:.0} / {:.0}", c.latency_us.p50, c.latency_us.p99)
        });
        if r.cells
            .iter()
            .any(|c| c.broker == broker && c.latency_hdr.is_some())
        {
            let _ = writeln!(
                out,
                "Whole distributions: `latency-cdf-{broker}-qos*.png` (smallest payload); every \
                 cell's samples are in `results.json` as `latency_hdr` (HdrHistogram V2, \
                 compressed, base64; all repeats merged).\n"
            );
        }
        out.push_str("### CPU seconds per 10^5 messages (broker / client process)\n\n");
        cell_table(&mut out, r, broker, &|c| {
            format!(
                "{:.2} / {:.2}",
                c.broker_cpu_s_per_1e5, c.client_cpu_s_per_1e5
            )
        });
    }

    {
        let b = BrokerKind::MqttLwa;
        let plain = r
            .mode(b, Mode::Plain)
            .map(|p| p.handshake_bytes_to_broker + p.handshake_bytes_to_client);
        let measured: Vec<(String, u64)> = modes_of(r, b)
            .into_iter()
            .filter(|m| *m != Mode::Plain && *m != Mode::Password)
            .filter_map(|m| {
                let x = r.mode(b, m)?;
                let total = x.handshake_bytes_to_broker + x.handshake_bytes_to_client;
                Some((format!("{m} (mqtt-lwa)"), total.saturating_sub(plain?)))
            })
            .collect();
        // Modes only Mosquitto serves (TLS with an external PSK), over Mosquitto's plaintext.
        let k = BrokerKind::Mosquitto;
        let their_plain = r
            .mode(k, Mode::Plain)
            .map(|p| p.handshake_bytes_to_broker + p.handshake_bytes_to_client);
        let mut measured = measured;
        measured.extend(
            modes_of(r, k)
                .into_iter()
                .filter(|m| !b.supports(*m))
                .filter_map(|m| {
                    let x = r.mode(k, m)?;
                    let total = x.handshake_bytes_to_broker + x.handshake_bytes_to_client;
                    Some((format!("{m} ({k})"), total.saturating_sub(their_plain?)))
                }),
        );
        let payload = r.meta.profile.payloads.first().copied().unwrap_or(30);
        let qos = r.meta.profile.qos.first().copied().unwrap_or(0);
        let overhead = r
            .cell(b, Mode::Lwa, payload, qos)
            .zip(r.cell(b, Mode::Plain, payload, qos))
            .map(|(l, p)| l.wire_bytes_per_msg_publisher - p.wire_bytes_per_msg_publisher);
        super::reference::section(&mut out, &measured, overhead);
    }
    super::stock::section(&mut out, &r.stock, r.meta.profile.repeats.max(1));
    super::report_extra::storm_section(&mut out, r);
    super::report_extra::memory_section(&mut out, r);
    super::report_vs_mosquitto::section(&mut out, r);
    super::report_extra::cross_check_section(&mut out, r);

    out.push_str("## Relation to the seed study\n\n");
    let seed = SEED_MBIT_S
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "The seed study reports {seed} Mbit/s between two Raspberry Pi 3B, measured with iperf \
         while a 30-byte payload was published every 3 s: that is the capacity left on the \
         link, not what MQTT moved, and its ratios (password/plain {:.2}, TLS/plain {:.2}) mix \
         the security cost with Wi-Fi variance. The tables above measure MQTT itself: the same \
         broker and client in every mode, messages actually delivered, bytes counted on the \
         socket. At 30-byte payloads fixed per-packet costs dominate, so the 30 B rows are the \
         ones to set beside the seed's ratios.",
        10.4 / 13.4,
        8.48 / 13.4
    );
    let b = BrokerKind::MqttLwa;
    let ratios: Vec<String> = r
        .meta
        .profile
        .qos
        .iter()
        .filter_map(|&q| {
            r.cell(b, Mode::Plain, 30, q)?;
            let parts: Vec<String> = [Mode::Password, Mode::Tls13, Mode::Lwa]
                .into_iter()
                .filter_map(|m| {
                    r.cell(b, m, 30, q)?;
                    let ci = cell_ratio(r, (b, m), (b, Mode::Plain), 30, q, |c| c.msgs_per_s)?;
                    Some(format!("{m} {}", ci.show()))
                })
                .collect();
            Some(format!("QoS {q}: {}", parts.join(", ")))
        })
        .collect();
    if !ratios.is_empty() {
        let _ = writeln!(
            out,
            "In this run, 30-byte throughput relative to plaintext on mqtt-lwa was: {}.",
            ratios.join("; ")
        );
    }
    super::report_links::render(&mut out, all);
    if let Some(counts) = insn {
        out.push('\n');
        super::insn_counts::section(&mut out, counts);
        // One blank line before what follows, as between the other sections.
        if out.ends_with("\n\n") {
            out.pop();
        }
    }
    if !m.notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in &m.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}
