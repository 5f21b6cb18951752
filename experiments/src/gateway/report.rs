//! The gateway run's `report.md` and CSV files, drawn from [`GatewayResults`] alone (so
//! `mqtt-lwa experiment report DIR` re-renders them byte for byte).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Block, GatewayResults, Route, ScalingBlock, StormCell, ThroughputCell};
use crate::matrix::Mode;
use crate::procstat::TICKS_PER_SECOND;
use crate::report::table;
use crate::stats::{difference_ci, median_ci, ratio_ci, Estimate, RatioCi};

/// A per-repeat figure of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Latency p50, µs.
    LatencyP50,
    /// Latency p99, µs.
    LatencyP99,
    /// Messages per second at this QoS.
    MsgsPerS(u8),
    /// Messages per CPU-second of the front process (gateway or lone broker).
    MsgsPerFrontCpuS(u8),
    /// Messages per CPU-second of Mosquitto behind the gateway.
    MsgsPerUpstreamCpuS(u8),
    /// Front process CPU-seconds per wall second during the cell (cores busy).
    FrontCores(u8),
    /// Completed storm handshakes per second.
    HandshakesPerS,
    /// Storm handshakes per front CPU-second.
    HandshakesPerFrontCpuS,
    /// CPU milliseconds of Mosquitto behind the gateway per 1000 storm handshakes (defined
    /// where it used no tick at all, which LWA storms through the gateway do).
    UpstreamCpuMsPer1000Handshakes,
}

fn per_cpu_s(count: u64, ticks: Option<u64>) -> Option<f64> {
    let ticks = ticks.filter(|&t| t > 0)?;
    Some(count as f64 / (ticks as f64 / TICKS_PER_SECOND))
}

fn cell_metric(c: &ThroughputCell, m: Metric) -> Option<f64> {
    match m {
        Metric::MsgsPerS(_) => Some(c.msgs_per_s),
        Metric::MsgsPerFrontCpuS(_) => per_cpu_s(c.received, Some(c.front_cpu_ticks)),
        Metric::MsgsPerUpstreamCpuS(_) => per_cpu_s(c.received, c.upstream_cpu_ticks),
        Metric::FrontCores(_) => {
            Some(c.front_cpu_ticks as f64 / TICKS_PER_SECOND / c.seconds.max(1e-9))
        }
        _ => None,
    }
}

fn storm_metric(s: &StormCell, m: Metric) -> Option<f64> {
    match m {
        Metric::HandshakesPerS => Some(s.handshakes as f64 / s.seconds.max(1e-9)),
        Metric::HandshakesPerFrontCpuS => per_cpu_s(s.handshakes, Some(s.front_cpu_ticks)),
        Metric::UpstreamCpuMsPer1000Handshakes => {
            let ms = s.upstream_cpu_ticks? as f64 * 1000.0 / TICKS_PER_SECOND;
            (s.handshakes > 0).then(|| ms / s.handshakes as f64 * 1000.0)
        }
        _ => None,
    }
}

impl Metric {
    fn qos(self) -> Option<u8> {
        match self {
            Metric::MsgsPerS(q)
            | Metric::MsgsPerFrontCpuS(q)
            | Metric::MsgsPerUpstreamCpuS(q)
            | Metric::FrontCores(q) => Some(q),
            _ => None,
        }
    }

    /// The figure of one block.
    pub fn of(self, b: &Block) -> Option<f64> {
        match self {
            Metric::LatencyP50 => (b.latency_us.samples > 0).then_some(b.latency_us.p50),
            Metric::LatencyP99 => (b.latency_us.samples > 0).then_some(b.latency_us.p99),
            m => match m.qos() {
                Some(q) => cell_metric(b.throughput.iter().find(|c| c.qos == q)?, m),
                None => storm_metric(b.storm.as_ref()?, m),
            },
        }
    }

    /// The figure of one scaling block.
    pub fn of_scaling(self, b: &ScalingBlock) -> Option<f64> {
        match self.qos() {
            Some(q) if q == b.throughput.qos => cell_metric(&b.throughput, self),
            Some(_) => None,
            None => storm_metric(b.storm.as_ref()?, self),
        }
    }

    /// Name in summary.csv.
    fn name(self) -> String {
        match self {
            Metric::LatencyP50 => "latency_p50_us".into(),
            Metric::LatencyP99 => "latency_p99_us".into(),
            Metric::MsgsPerS(q) => format!("msgs_per_s_qos{q}"),
            Metric::MsgsPerFrontCpuS(q) => format!("msgs_per_front_cpu_s_qos{q}"),
            Metric::MsgsPerUpstreamCpuS(q) => format!("msgs_per_upstream_cpu_s_qos{q}"),
            Metric::FrontCores(q) => format!("front_cores_busy_qos{q}"),
            Metric::HandshakesPerS => "handshakes_per_s".into(),
            Metric::HandshakesPerFrontCpuS => "handshakes_per_front_cpu_s".into(),
            Metric::UpstreamCpuMsPer1000Handshakes => "upstream_cpu_ms_per_1000_handshakes".into(),
        }
    }
}

/// Every metric summary.csv lists.
const METRICS: [Metric; 13] = [
    Metric::LatencyP50,
    Metric::LatencyP99,
    Metric::MsgsPerS(0),
    Metric::MsgsPerS(1),
    Metric::MsgsPerFrontCpuS(0),
    Metric::MsgsPerFrontCpuS(1),
    Metric::MsgsPerUpstreamCpuS(0),
    Metric::MsgsPerUpstreamCpuS(1),
    Metric::FrontCores(0),
    Metric::FrontCores(1),
    Metric::HandshakesPerS,
    Metric::HandshakesPerFrontCpuS,
    Metric::UpstreamCpuMsPer1000Handshakes,
];

/// (repeat, value) of `metric` for (route, mode).
pub fn values(r: &GatewayResults, route: Route, mode: Mode, metric: Metric) -> Vec<(usize, f64)> {
    r.blocks_of(route, mode)
        .filter_map(|b| Some((b.repeat, metric.of(b)?)))
        .collect()
}

/// Median of `metric` over the repeats of (route, mode) with its interval.
pub fn estimate(r: &GatewayResults, route: Route, mode: Mode, metric: Metric) -> Option<Estimate> {
    median_ci(&values(r, route, mode, metric))
}

fn scaling_values(
    r: &GatewayResults,
    mode: Mode,
    gateways: usize,
    metric: Metric,
) -> Vec<(usize, f64)> {
    r.scaling
        .iter()
        .filter(|b| b.mode == mode && b.gateways == gateways)
        .filter_map(|b| Some((b.repeat, metric.of_scaling(b)?)))
        .collect()
}

/// Median of `metric` over the scaling blocks of (mode, gateways) with its interval.
pub fn scaling_estimate(
    r: &GatewayResults,
    mode: Mode,
    gateways: usize,
    metric: Metric,
) -> Option<Estimate> {
    median_ci(&scaling_values(r, mode, gateways, metric))
}

/// A cell: the estimate, "n/a" where the route lacks the mode, "-" where nothing was measured.
fn cell(r: &GatewayResults, route: Route, mode: Mode, metric: Metric, digits: usize) -> String {
    if !route.supports(mode) {
        return "n/a".into();
    }
    estimate(r, route, mode, metric).map_or_else(|| "-".into(), |e| e.show(digits))
}

fn show_ratio(ci: Option<RatioCi>) -> String {
    ci.map_or_else(|| "-".into(), |c| c.show())
}

/// `a - b` of `metric` between two routes, paired by repeat.
fn added(r: &GatewayResults, a: Route, b: Route, mode: Mode, metric: Metric) -> String {
    if !a.supports(mode) || !b.supports(mode) {
        return "n/a".into();
    }
    difference_ci(&values(r, a, mode, metric), &values(r, b, mode, metric))
        .map_or_else(|| "-".into(), |e| e.show(0))
}

fn ratio(r: &GatewayResults, a: Route, b: Route, mode: Mode, metric: Metric) -> String {
    if !a.supports(mode) || !b.supports(mode) {
        return "n/a".into();
    }
    show_ratio(ratio_ci(
        &values(r, a, mode, metric),
        &values(r, b, mode, metric),
    ))
}

const GW: Route = Route::GatewayMosquitto;
const OURS: Route = Route::MqttLwa;
const MOSQ: Route = Route::Mosquitto;

fn h(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|c| c.to_string()).collect()
}

fn latency_section(out: &mut String, r: &GatewayResults) {
    let s = &r.meta.settings;
    let _ = writeln!(
        out,
        "## 1. Added latency\n\nPublish call until the subscriber has the message, QoS 1, {} B, one message \
         in flight, {} messages per block; µs, median over {} repeats [95 % bootstrap interval]. \
         \"adds\" = gateway+mosquitto minus the lone broker, paired by repeat.\n",
        s.payload, s.latency_messages, s.repeats
    );
    for (label, metric) in [("p50", Metric::LatencyP50), ("p99", Metric::LatencyP99)] {
        let _ = writeln!(out, "### Latency {label} (µs)\n");
        let rows: Vec<Vec<String>> = s
            .modes
            .iter()
            .map(|&m| {
                vec![
                    m.to_string(),
                    cell(r, GW, m, metric, 0),
                    cell(r, OURS, m, metric, 0),
                    cell(r, MOSQ, m, metric, 0),
                    added(r, GW, MOSQ, m, metric),
                    added(r, GW, OURS, m, metric),
                ]
            })
            .collect();
        table(
            out,
            &h(&[
                "mode",
                "(a) gateway+mosquitto",
                "(b) mqtt-lwa",
                "(c) mosquitto",
                "gateway adds: (a) - (c)",
                "(a) - (b)",
            ]),
            &rows,
        );
    }
}

fn throughput_section(out: &mut String, r: &GatewayResults) {
    let s = &r.meta.settings;
    let _ = writeln!(
        out,
        "## 2. Throughput and messages per gateway CPU-second\n\n\
         One publisher and one subscriber on direct connections ({} B; QoS 0: one publishing \
         stream, QoS 1: 64 publishes in flight), from the first publish until the subscriber \
         has the last message, each cell at least {} s. Per CPU-second: messages delivered / \
         (user + system CPU of the process, `/proc/<pid>/stat`, over the cell); for (a) the \
         front process is the gateway and the upstream is Mosquitto behind it. \"cores busy\": \
         the front process' CPU-seconds per wall second. Median [95 % interval]; ratios are \
         ratios of medians with paired bootstrap intervals.\n",
        s.payload, s.cell_seconds
    );
    for q in [0u8, 1] {
        let _ = writeln!(out, "### QoS {q}: messages/s\n");
        let rows: Vec<Vec<String>> = s
            .modes
            .iter()
            .map(|&m| {
                vec![
                    m.to_string(),
                    cell(r, GW, m, Metric::MsgsPerS(q), 0),
                    cell(r, OURS, m, Metric::MsgsPerS(q), 0),
                    cell(r, MOSQ, m, Metric::MsgsPerS(q), 0),
                    ratio(r, GW, MOSQ, m, Metric::MsgsPerS(q)),
                    ratio(r, GW, OURS, m, Metric::MsgsPerS(q)),
                ]
            })
            .collect();
        table(
            out,
            &h(&[
                "mode",
                "(a) gateway+mosquitto",
                "(b) mqtt-lwa",
                "(c) mosquitto",
                "(a) / (c)",
                "(a) / (b)",
            ]),
            &rows,
        );
        let _ = writeln!(out, "### QoS {q}: messages per CPU-second\n");
        let rows: Vec<Vec<String>> = s
            .modes
            .iter()
            .map(|&m| {
                vec![
                    m.to_string(),
                    cell(r, GW, m, Metric::MsgsPerFrontCpuS(q), 0),
                    cell(r, GW, m, Metric::FrontCores(q), 2),
                    cell(r, GW, m, Metric::MsgsPerUpstreamCpuS(q), 0),
                    cell(r, OURS, m, Metric::MsgsPerFrontCpuS(q), 0),
                    cell(r, MOSQ, m, Metric::MsgsPerFrontCpuS(q), 0),
                ]
            })
            .collect();
        table(
            out,
            &h(&[
                "mode",
                "(a) per gateway CPU-s",
                "(a) gateway cores busy",
                "(a) per upstream mosquitto CPU-s",
                "(b) per mqtt-lwa CPU-s",
                "(c) per mosquitto CPU-s",
            ]),
            &rows,
        );
    }
}

fn storm_section(out: &mut String, r: &GatewayResults) {
    let s = &r.meta.settings;
    let _ = writeln!(
        out,
        "## 3. Handshakes per gateway CPU-second\n\n\
         Connection storm: {} clients connect (TCP, TLS or the LWA handshake, CONNECT, \
         CONNACK; LWA: until the client has verified the gateway's AUTH), then DISCONNECT, in \
         a loop for {} s. Through the gateway every handshake also opens an upstream MQTT \
         connection to Mosquitto (CONNECT/CONNACK, plain) and closes it. Median [95 % interval].\n",
        s.storm_clients, s.storm_seconds
    );
    let rows: Vec<Vec<String>> = s
        .modes
        .iter()
        .map(|&m| {
            let failed: u64 = r
                .blocks
                .iter()
                .filter(|b| b.mode == m)
                .filter_map(|b| b.storm.as_ref())
                .map(|s| s.failed)
                .sum();
            vec![
                m.to_string(),
                cell(r, GW, m, Metric::HandshakesPerS, 0),
                cell(r, OURS, m, Metric::HandshakesPerS, 0),
                cell(r, MOSQ, m, Metric::HandshakesPerS, 0),
                cell(r, GW, m, Metric::HandshakesPerFrontCpuS, 0),
                cell(r, GW, m, Metric::UpstreamCpuMsPer1000Handshakes, 0),
                cell(r, OURS, m, Metric::HandshakesPerFrontCpuS, 0),
                cell(r, MOSQ, m, Metric::HandshakesPerFrontCpuS, 0),
                failed.to_string(),
            ]
        })
        .collect();
    table(
        out,
        &h(&[
            "mode",
            "(a) handshakes/s",
            "(b) handshakes/s",
            "(c) handshakes/s",
            "(a) per gateway CPU-s",
            "(a) upstream mosquitto CPU ms per 1000",
            "(b) per mqtt-lwa CPU-s",
            "(c) per mosquitto CPU-s",
            "failed (all routes, repeats)",
        ]),
        &rows,
    );
}

fn cores(r: &GatewayResults) -> String {
    r.meta
        .machine
        .iter()
        .find(|(k, _)| k == "cores available")
        .map_or_else(|| "?".into(), |(_, v)| v.clone())
}

fn scaling_section(out: &mut String, r: &GatewayResults) {
    let s = &r.meta.settings;
    if s.scaling_modes.is_empty() {
        return;
    }
    let mut placements: Vec<(usize, &str)> = r
        .scaling
        .iter()
        .map(|b| (b.gateways, b.placement.as_str()))
        .collect();
    placements.sort_unstable();
    placements.dedup();
    let _ = writeln!(
        out,
        "## 4. Scaling from 1 to 2 gateways\n\n\
         One Mosquitto (plain, anonymous) behind one or two `mqtt-lwa gateway` processes; two \
         publisher/subscriber pairs at QoS 1, {} B (pair k through gateway k mod n), each cell \
         at least {} s; then the storm's {} clients split evenly over the gateways. \
         \"per gateway CPU-s\" divides by the CPU time of all gateways together.\n\n\
         **This machine has {} cores**: the gateways, Mosquitto and the runner (both client \
         pairs) share them, so the second gateway can add at most what the runner and \
         Mosquitto leave of the second core; the ratio below is bounded by that and is not \
         what 2 gateways give on a machine with a core per gateway. **A run on a machine with \
         more cores is still to do** (none was available for this run).\n",
        s.payload,
        s.cell_seconds,
        s.storm_clients,
        cores(r)
    );
    let _ = writeln!(out, "Placement (CPU pinning) per configuration:\n");
    for (g, p) in &placements {
        let _ = writeln!(out, "- {g} gateway(s): {p}");
    }
    out.push('\n');
    let metrics = [
        Metric::MsgsPerS(1),
        Metric::MsgsPerFrontCpuS(1),
        Metric::FrontCores(1),
        Metric::HandshakesPerS,
        Metric::HandshakesPerFrontCpuS,
    ];
    let mut rows = Vec::new();
    for &m in &s.scaling_modes {
        for g in [1usize, 2] {
            let mut row = vec![m.to_string(), g.to_string()];
            for metric in metrics {
                let digits = if matches!(metric, Metric::FrontCores(_)) {
                    2
                } else {
                    0
                };
                row.push(
                    scaling_estimate(r, m, g, metric)
                        .map_or_else(|| "-".into(), |e| e.show(digits)),
                );
            }
            rows.push(row);
        }
        let mut row = vec![m.to_string(), "2 / 1".into()];
        for metric in metrics {
            row.push(show_ratio(ratio_ci(
                &scaling_values(r, m, 2, metric),
                &scaling_values(r, m, 1, metric),
            )));
        }
        rows.push(row);
    }
    table(
        out,
        &h(&[
            "mode",
            "gateways",
            "messages/s (QoS 1, both pairs)",
            "per gateway CPU-s",
            "gateway cores busy",
            "handshakes/s",
            "handshakes per gateway CPU-s",
        ]),
        &rows,
    );
}

fn settings_section(out: &mut String, r: &GatewayResults) {
    let s = &r.meta.settings;
    let modes = |m: &[Mode]| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let rows = vec![
        vec!["repeats (rounds over every block; odd rounds in reverse order)".into(), s.repeats.to_string()],
        vec!["shortest throughput cell".into(), format!("{} s", s.cell_seconds)],
        vec!["latency messages per block (QoS 1, one in flight; after 50 unrecorded)".into(), s.latency_messages.to_string()],
        vec!["payload".into(), format!("{} B", s.payload)],
        vec!["storm window / clients".into(), format!("{} s / {}", s.storm_seconds, s.storm_clients)],
        vec!["client-side modes".into(), modes(&s.modes)],
        vec!["scaling modes".into(), modes(&s.scaling_modes)],
        vec![
            "gateway to Mosquitto".into(),
            "plain MQTT 5 over TCP on 127.0.0.1, anonymous, client id = the client's (`protocol = \"5\"`, `client_id_template = \"{client_id}\"`)".into(),
        ],
        vec![
            "processes".into(),
            "fresh for every block: (a) Mosquitto (plain) + `mqtt-lwa gateway` with the same `[[listener]]` table as (b); (b) `mqtt-lwa broker`; (c) Mosquitto in the mode".into(),
        ],
        vec!["clients".into(), "the runner (mqtt-lwa's client, MQTT 5) on the same machine".into()],
        vec!["--pin-cpus".into(), if s.pin_cpus { "yes".into() } else { "no".into() }],
    ];
    table(out, &h(&["setting", "value"]), &rows);
}

/// `report.md`.
pub fn render(r: &GatewayResults, plot_error: Option<&str>) -> String {
    let mut out = String::new();
    let m = &r.meta;
    let _ = writeln!(
        out,
        "# Gateway experiment `{}`\n\n`mqtt-lwa gateway` in front of Debian's Mosquitto, beside \
         `mqtt-lwa broker` alone and Mosquitto alone, per client-side security mode, on \
         loopback (issue 16, \"Experiment\"). Routes: **(a)** gateway+mosquitto, **(b)** \
         mqtt-lwa, **(c)** mosquitto (no LWA: \"n/a\").\n\n\
         Started {} (UTC), took {:.0} s.\n\n```\n{}\n```\n",
        m.run, m.started_utc, m.seconds, m.command
    );
    latency_section(&mut out, r);
    throughput_section(&mut out, r);
    storm_section(&mut out, r);
    scaling_section(&mut out, r);
    out.push_str("## Settings\n\n");
    settings_section(&mut out, r);
    out.push_str("## Machine and versions\n\n");
    let rows: Vec<Vec<String>> = m
        .machine
        .iter()
        .chain(m.versions.iter())
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    table(&mut out, &h(&["", ""]), &rows);
    out.push_str(
        "## What the numbers mean, and their limits\n\n\
         - Everything runs on one loopback machine: the clients (the runner), the gateway and \
         the broker(s) share its cores, so messages/s and handshakes/s are what this machine \
         sustains with all of them on it. The per-CPU-second figures are each process' own \
         cost and carry over better to a machine where the gateway has cores of its own.\n\
         - CPU time comes from `/proc/<pid>/stat` in 10 ms ticks; a cell of a few seconds rests \
         on tens to hundreds of ticks (`throughput.csv`, `storm.csv` hold them).\n\
         - Added latency is a difference of medians over repeats (each repeat's median of its \
         latency messages), paired by repeat: rounds measure every block back to back. On \
         loopback it is the gateway's processing and its extra hop through the kernel, no \
         network delay.\n\
         - (a) and (c) share Mosquitto; (a) - (c) isolates the gateway, (a) - (b) compares \
         gateway+mosquitto with our own broker doing everything. For LWA there is no (c): \
         Mosquitto has no LWA, which is what the gateway adds.\n\
         - Through the gateway, QoS 1 PUBACKs come from Mosquitto, so QoS 1 latency covers the \
         whole path publisher - gateway - Mosquitto - gateway - subscriber.\n\
         - LWA through the gateway: the client's CONNACK is signed by the LWA handshake, so \
         the gateway sends it before it asks the upstream (`src/gateway/relay.rs`, \
         `Relay::preview`; README, \"Gateway\"), and publishes wait for the upstream \
         connection. A storm handshake in `lwa`/`lwa2` therefore ends before Mosquitto has \
         answered; what the gateway does with the upstream connection of a client that \
         leaves at once depends on its version (the versions table has the commit; before \
         a9add01 it could drop it unopened). The upstream's CPU per LWA handshake is therefore \
         not comparable with plain, password and TLS, where the client's CONNACK is \
         Mosquitto's.\n\
         - Intervals: percentile bootstrap (2000 resamples, fixed seed) of the median over \
         repeats; with so few repeats they are wide and describe the run-to-run spread of this \
         machine, not of other machines.\n\n",
    );
    if let Some(e) = plot_error {
        let _ = writeln!(out, "Plots were not drawn: {e}.\n");
    } else {
        out.push_str(
            "Figures: `gateway-latency-p50.png`, `gateway-latency-p99.png`, \
             `gateway-throughput-qos0.png`, `gateway-throughput-qos1.png`, \
             `gateway-msgs-per-cpu-second-qos1.png`, `gateway-handshakes-per-cpu-second.png`",
        );
        if !r.scaling.is_empty() {
            out.push_str(", `gateway-scaling.png`");
        }
        out.push_str(" (and SVG); whiskers are the 95 % intervals.\n\n");
    }
    out.push_str("## Notes\n\n");
    if m.notes.is_empty() {
        out.push_str("Nothing failed: every block and scaling block was measured.\n");
    } else {
        for n in &m.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

fn opt_u(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn throughput_csv(r: &GatewayResults) -> String {
    let mut out = String::from(
        "route,mode,repeat,gateways,qos,sent,received,seconds,msgs_per_s,front_cpu_ticks,upstream_cpu_ticks,runner_cpu_ticks\n",
    );
    let rows = r
        .blocks
        .iter()
        .flat_map(|b| {
            b.throughput
                .iter()
                .map(move |c| (b.route, b.mode, b.repeat, 1, c))
        })
        .chain(r.scaling.iter().map(|b| {
            (
                Route::GatewayMosquitto,
                b.mode,
                b.repeat,
                b.gateways,
                &b.throughput,
            )
        }));
    for (route, mode, repeat, g, c) in rows {
        let _ = writeln!(
            out,
            "{route},{mode},{repeat},{g},{},{},{},{:.4},{:.1},{},{},{}",
            c.qos,
            c.sent,
            c.received,
            c.seconds,
            c.msgs_per_s,
            c.front_cpu_ticks,
            opt_u(c.upstream_cpu_ticks),
            c.runner_cpu_ticks
        );
    }
    out
}

fn latency_csv(r: &GatewayResults) -> String {
    let mut out = String::from("route,mode,repeat,samples,p50_us,p90_us,p99_us,max_us\n");
    for b in &r.blocks {
        let l = &b.latency_us;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            b.route, b.mode, b.repeat, l.samples, l.p50, l.p90, l.p99, l.max
        );
    }
    out
}

fn storm_csv(r: &GatewayResults) -> String {
    let mut out = String::from(
        "route,mode,repeat,gateways,clients,window_seconds,seconds,handshakes,failed,front_cpu_ticks,upstream_cpu_ticks\n",
    );
    let rows = r
        .blocks
        .iter()
        .filter_map(|b| Some((b.route, b.mode, b.repeat, 1, b.storm.as_ref()?)))
        .chain(r.scaling.iter().filter_map(|b| {
            Some((
                Route::GatewayMosquitto,
                b.mode,
                b.repeat,
                b.gateways,
                b.storm.as_ref()?,
            ))
        }));
    for (route, mode, repeat, g, s) in rows {
        let _ = writeln!(
            out,
            "{route},{mode},{repeat},{g},{},{},{:.4},{},{},{},{}",
            s.clients,
            s.window_seconds,
            s.seconds,
            s.handshakes,
            s.failed,
            s.front_cpu_ticks,
            opt_u(s.upstream_cpu_ticks)
        );
    }
    out
}

/// Every estimate of the report: one row per (metric, route, mode), medians with intervals.
fn summary_csv(r: &GatewayResults) -> String {
    let mut out = String::from("metric,route,mode,gateways,point,ci_low,ci_high,repeats\n");
    let mut row = |metric: Metric, route: Route, mode: Mode, g: usize, e: Option<Estimate>| {
        let Some(e) = e else { return };
        let (lo, hi) = e.interval.map_or((String::new(), String::new()), |(l, h)| {
            (format!("{l:.3}"), format!("{h:.3}"))
        });
        let _ = writeln!(
            out,
            "{},{route},{mode},{g},{:.3},{lo},{hi},{}",
            metric.name(),
            e.point,
            e.repeats
        );
    };
    for metric in METRICS {
        for &mode in &r.meta.settings.modes {
            for route in Route::ALL {
                row(metric, route, mode, 1, estimate(r, route, mode, metric));
            }
        }
    }
    for metric in METRICS {
        for &mode in &r.meta.settings.scaling_modes {
            for g in [1, 2] {
                row(
                    metric,
                    Route::GatewayMosquitto,
                    mode,
                    g,
                    scaling_estimate(r, mode, g, metric),
                );
            }
        }
    }
    out
}

/// Writes report.md and the CSV files into `dir`.
pub fn write(
    r: &GatewayResults,
    dir: &Path,
    plot_error: Option<&str>,
) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (name, text) in [
        ("throughput.csv", throughput_csv(r)),
        ("latency.csv", latency_csv(r)),
        ("storm.csv", storm_csv(r)),
        ("summary.csv", summary_csv(r)),
        ("report.md", render(r, plot_error)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        files.push(path);
    }
    Ok(files)
}
