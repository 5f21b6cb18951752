//! The report's link sections: what each link was (profile, emulation,
//! iperf3 capacity, round trips), the figures measured over every link
//! after the first, and the seed comparison on the `pi-wifi` link.

use std::fmt::Write as _;

use super::matrix::{BrokerKind, Mode};
use super::report::{brokers_of, cell_table, modes_of, size, table};
use super::results::RunResults;

/// The seed study's iperf Mbit/s next to the modes it measured (plain, password, TLS).
fn seed_figure(mode: Mode) -> &'static str {
    match mode {
        Mode::Plain => "13.4",
        Mode::Password => "10.4",
        Mode::Tls13 | Mode::Tls12 => "8.48 (TLS)",
        _ => "-",
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or("-".into())
}

/// Appends the link sections to `out` (nothing for a loopback-only run).
pub fn render(out: &mut String, all: &RunResults) {
    if all.links.iter().all(|l| l.profile.is_loopback()) {
        return;
    }
    out.push_str("\n## Links\n\n");
    out.push_str(
        "Each emulated link is a router network namespace between the clients (root \
         namespace) and a broker namespace, created and removed by the run. Before MQTT runs \
         over it, the link itself is measured: an iperf3 TCP transfer (client here, server in \
         the broker's namespace, the seed study's instrument) and TCP connect times to the \
         broker (one round trip each). Delay is per direction, so the round trip is twice the \
         one-way delay. iperf3's RTTs are the sender's smoothed RTT while the transfer fills \
         the shaper's queue (up to 100 ms of data), so they include queueing; the connect \
         round trip is the idle link's.\n\n",
    );
    let rows: Vec<Vec<String>> = all
        .links
        .iter()
        .map(|l| {
            vec![
                l.profile.name.clone(),
                l.profile.summary(),
                if l.emulation.is_empty() {
                    "-".into()
                } else {
                    l.emulation.clone()
                },
                opt(l.iperf_mbit_s, 2),
                l.iperf_retransmits
                    .map(|r| r.to_string())
                    .unwrap_or("-".into()),
                format!(
                    "{} / {}",
                    opt(l.iperf_min_rtt_ms, 2),
                    opt(l.iperf_mean_rtt_ms, 2)
                ),
                opt(l.connect_rtt_ms, 2),
                format!("{:.2}", 2.0 * l.profile.delay_us as f64 / 1e3),
            ]
        })
        .collect();
    table(
        out,
        &[
            "link",
            "profile",
            "emulated with",
            "iperf3 Mbit/s",
            "retransmits",
            "iperf3 smoothed RTT min / mean ms, under load",
            "connect RTT ms (median)",
            "profile RTT ms",
        ]
        .map(String::from),
        &rows,
    );
    for l in &all.links {
        for n in &l.notes {
            let _ = writeln!(out, "- {}: {n}", l.profile.name);
        }
        let _ = writeln!(out, "- {}: {}", l.profile.name, l.profile.about);
    }
    out.push('\n');

    let primary = all.primary_link();
    for l in all.links.iter().filter(|l| l.profile.name != primary) {
        let r = all.for_link(&l.profile.name);
        let _ = writeln!(out, "## Link: {}\n", l.profile);
        let p = &r.meta.profile;
        let _ = writeln!(
            out,
            "Reduced matrix: payloads {}, QoS {:?}, {} throughput msgs/cell, {} latency \
             msgs/cell, {} set-ups/mode.\n",
            p.payloads
                .iter()
                .map(|&b| size(b))
                .collect::<Vec<_>>()
                .join(", "),
            p.qos,
            p.throughput_messages,
            p.latency_messages,
            p.setup_samples
        );
        for broker in brokers_of(&r) {
            let _ = writeln!(out, "### {broker}: set-up and handshake bytes\n");
            let rows: Vec<Vec<String>> = modes_of(&r, broker)
                .into_iter()
                .filter_map(|mode| r.mode(broker, mode))
                .map(|x| {
                    vec![
                        x.mode.to_string(),
                        format!("{:.2}", x.setup_ms.p50),
                        format!("{:.2}", x.setup_ms.p99),
                        (x.handshake_bytes_to_broker + x.handshake_bytes_to_client).to_string(),
                    ]
                })
                .collect();
            table(
                out,
                &["mode", "set-up p50 ms", "set-up p99 ms", "handshake bytes"].map(String::from),
                &rows,
            );
            let _ = writeln!(
                out,
                "### {broker}: messages/s, payload Mbit/s, latency p50 ms\n"
            );
            cell_table(out, &r, broker, &|c| {
                let lost = if c.received < c.sent {
                    format!(", {} lost", c.sent - c.received)
                } else {
                    String::new()
                };
                format!(
                    "{:.0} msg/s, {:.3} Mbit/s, {:.1} ms{lost}",
                    c.msgs_per_s,
                    c.payload_mbit_s,
                    c.latency_us.p50 / 1e3
                )
            });
        }
    }
    seed_comparison(out, all);
}

/// 30-byte payload Mbit/s per mode on `pi-wifi` beside the seed's iperf figures.
fn seed_comparison(out: &mut String, all: &RunResults) {
    let Some(link) = all.links.iter().find(|l| l.profile.name == "pi-wifi") else {
        return;
    };
    let r = all.for_link("pi-wifi");
    let b = BrokerKind::MqttLwa;
    if r.modes.iter().all(|m| m.broker != b) {
        return;
    }
    out.push_str("## Seed comparison (pi-wifi link)\n\n");
    let _ = writeln!(
        out,
        "The seed's Table 1 gives iperf Mbit/s between two Raspberry Pi 3B while a 30-byte \
         payload was published every 3 s: the link's capacity, not MQTT's. Here the emulated \
         link's own iperf3 capacity was {} Mbit/s; beside it, the 30-byte payload rate MQTT \
         itself achieved over the same link on mqtt-lwa, per QoS (messages as fast as the \
         client allows).\n",
        opt(link.iperf_mbit_s, 2)
    );
    let qos = &r.meta.profile.qos;
    let mut header = vec![
        "mode".to_string(),
        "seed iperf Mbit/s".into(),
        "link iperf3 Mbit/s".into(),
    ];
    header.extend(qos.iter().map(|q| format!("30 B payload Mbit/s QoS {q}")));
    let rows: Vec<Vec<String>> = modes_of(&r, b)
        .into_iter()
        .map(|m| {
            let mut row = vec![
                m.to_string(),
                seed_figure(m).into(),
                opt(link.iperf_mbit_s, 2),
            ];
            row.extend(qos.iter().map(|&q| {
                r.cell(b, m, 30, q)
                    .map(|c| format!("{:.3}", c.payload_mbit_s))
                    .unwrap_or("-".into())
            }));
            row
        })
        .collect();
    table(out, &header, &rows);
}
