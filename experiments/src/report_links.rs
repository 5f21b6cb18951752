//! The report's link sections: what each link was (profile, emulation,
//! iperf3 capacity, round trips), the figures measured over every link
//! after the first, and the seed comparison on the `pi-wifi` link and on a
//! remote broker's real network (`remote:HOST`).

use std::fmt::Write as _;

use super::linkprobe::LinkResult;
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
    if all.links.iter().any(|l| l.profile.is_emulated()) {
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
        let p = &all.meta.profile;
        let e = &p.emulated;
        let modes = if e.modes.is_empty() {
            "every mode of the run".to_string()
        } else {
            e.modes
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "On emulated links the profile measures a reduced matrix: {modes}, payloads {:?} B, \
             {} throughput messages per cell (a cell shorter than {} ms is redone with more), \
             {} latency messages per cell, {} set-ups per mode, {} repeat(s); no idle-memory, \
             storm or capture phase (they measure the broker, not the link).\n",
            e.payloads,
            e.throughput_messages,
            p.min_cell_ms,
            e.latency_messages,
            e.setup_samples,
            e.repeats,
        );
    }
    let remote = all.links.iter().any(|l| l.profile.is_remote());
    if remote {
        let _ = writeln!(
            out,
            "A `remote:HOST` link is the real network between the client machine and the broker \
             host of `experiment --remote`; nothing is emulated. Before the matrix, the runner \
             measured it as an emulated link is measured: an iperf3 TCP transfer of {s} s from \
             this machine to the iperf3 server `experiment serve` runs beside the brokers (client \
             to broker, the seed study's direction), then {s} s the other way (`iperf3 -R`, \
             broker to client), and the median of TCP connects to the plaintext broker. The MQTT \
             round trip is the time from sending a PINGREQ to receiving the PINGRESP, {n} times \
             one after the other on one plaintext MQTT 5 connection to our broker (after one \
             unrecorded warm-up ping): the network's round trip plus the broker's smallest \
             exchange, on an idle link.\n",
            s = super::linkprobe::IPERF_SECONDS,
            n = super::linkprobe::MQTT_PINGS,
        );
    }
    let rows: Vec<Vec<String>> = all
        .links
        .iter()
        .map(|l| {
            let mut row = vec![
                l.profile.name.clone(),
                l.profile.summary(),
                if l.emulation.is_empty() {
                    "-".into()
                } else {
                    l.emulation.clone()
                },
                opt(l.iperf_mbit_s, 2),
            ];
            if remote {
                row.push(opt(l.iperf_reverse_mbit_s, 2));
            }
            row.extend([
                l.iperf_retransmits
                    .map(|r| r.to_string())
                    .unwrap_or("-".into()),
                format!(
                    "{} / {}",
                    opt(l.iperf_min_rtt_ms, 2),
                    opt(l.iperf_mean_rtt_ms, 2)
                ),
                opt(l.connect_rtt_ms, 2),
            ]);
            if remote {
                row.push(match &l.mqtt_ping_rtt_ms {
                    Some(p) => format!("{:.2} / {:.2} ({})", p.p50, p.p90, p.samples),
                    None => "-".into(),
                });
            }
            row.push(if l.profile.is_emulated() {
                format!("{:.2}", 2.0 * l.profile.delay_us as f64 / 1e3)
            } else if l.profile.is_loopback() {
                "0.00".into()
            } else {
                "-".into()
            });
            row
        })
        .collect();
    let mut header = vec!["link", "profile", "emulated with", "iperf3 Mbit/s"];
    if remote {
        header[3] = "iperf3 Mbit/s client to broker";
        header.push("iperf3 Mbit/s broker to client");
    }
    header.extend([
        "retransmits",
        "iperf3 smoothed RTT min / mean ms, under load",
        "connect RTT ms (median)",
    ]);
    if remote {
        header.push("MQTT PINGREQ RTT ms p50 / p90 (samples)");
    }
    header.push("profile RTT ms");
    let header: Vec<String> = header.into_iter().map(String::from).collect();
    table(out, &header, &rows);
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

/// The seed comparison for every link that stands for the seed's two Pis: the
/// emulated `pi-wifi` and a remote broker's real network.
fn seed_comparison(out: &mut String, all: &RunResults) {
    for link in all
        .links
        .iter()
        .filter(|l| l.profile.name == "pi-wifi" || l.profile.is_remote())
    {
        seed_table(out, all, link);
    }
}

/// 30-byte payload Mbit/s per mode on `link` beside the seed's iperf figures
/// and the link's iperf3 capacity; on a remote link also the largest payload's
/// rate as a share of that capacity.
fn seed_table(out: &mut String, all: &RunResults, link: &LinkResult) {
    let name = &link.profile.name;
    let r = all.for_link(name);
    let b = BrokerKind::MqttLwa;
    if r.modes.iter().all(|m| m.broker != b) {
        return;
    }
    let _ = writeln!(out, "## Seed comparison ({name} link)\n");
    let capacity = opt(link.iperf_mbit_s, 2);
    let remote = link.profile.is_remote();
    if remote {
        let measured = match link.iperf_mbit_s {
            Some(_) => format!("{capacity} Mbit/s client to broker"),
            None => {
                let why = link
                    .notes
                    .iter()
                    .find(|n| n.starts_with("iperf3 not measured"))
                    .map_or("iperf3 not measured", String::as_str);
                format!("not known ({why})")
            }
        };
        let _ = writeln!(
            out,
            "The seed's Table 1 gives iperf Mbit/s between two Raspberry Pi 3B while a 30-byte \
             payload was published every 3 s: the link's capacity, not MQTT's. Here the two \
             machines are real and iperf3 measured their link before the matrix: {measured} \
             (Links, above). Beside it, the payload rate MQTT itself achieved over the same link \
             on mqtt-lwa (messages as fast as the client allows): the seed's 30-byte reading per \
             QoS and, at QoS 0, the largest payload with its share of the iperf3 capacity.\n"
        );
    } else {
        let _ = writeln!(
            out,
            "The seed's Table 1 gives iperf Mbit/s between two Raspberry Pi 3B while a 30-byte \
             payload was published every 3 s: the link's capacity, not MQTT's. Here the emulated \
             link's own iperf3 capacity was {capacity} Mbit/s; beside it, the 30-byte payload rate MQTT \
             itself achieved over the same link on mqtt-lwa, per QoS (messages as fast as the \
             client allows).\n"
        );
    }
    let qos = &r.meta.profile.qos;
    let largest = r
        .meta
        .profile
        .payloads
        .iter()
        .copied()
        .max()
        .filter(|&p| remote && p > 30);
    let mut header = vec![
        "mode".to_string(),
        "seed iperf Mbit/s".into(),
        "link iperf3 Mbit/s".into(),
    ];
    header.extend(qos.iter().map(|q| format!("30 B payload Mbit/s QoS {q}")));
    if let Some(p) = largest {
        header.push(format!(
            "{} payload Mbit/s QoS 0 (share of iperf3)",
            size(p)
        ));
    }
    let rows: Vec<Vec<String>> = modes_of(&r, b)
        .into_iter()
        .map(|m| {
            let mut row = vec![m.to_string(), seed_figure(m).into(), capacity.clone()];
            row.extend(qos.iter().map(|&q| {
                r.cell(b, m, 30, q)
                    .map(|c| format!("{:.3}", c.payload_mbit_s))
                    .unwrap_or("-".into())
            }));
            if let Some(p) = largest {
                row.push(match (r.cell(b, m, p, 0), link.iperf_mbit_s) {
                    (Some(c), Some(cap)) if cap > 0.0 => format!(
                        "{:.3} ({:.1} %)",
                        c.payload_mbit_s,
                        100.0 * c.payload_mbit_s / cap
                    ),
                    (Some(c), _) => format!("{:.3}", c.payload_mbit_s),
                    (None, _) => "-".into(),
                });
            }
            row
        })
        .collect();
    table(out, &header, &rows);
}
