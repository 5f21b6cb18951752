//! `## Against Mosquitto`: our broker and Mosquitto side by side on the figures where a
//! broker for small devices is judged first (memory per idle connection, 30-byte
//! messages per second, handshakes per broker CPU second), each as a ratio with its
//! interval and whether "at least Mosquitto's" is shown.

use std::fmt::Write as _;

use super::matrix::{BrokerKind, Mode};
use super::report::{cell_ratio, indicative, table};
use super::results::RunResults;
use super::stats::{judge, median, ratio_ci, RatioCi};

const OURS: BrokerKind = BrokerKind::MqttLwa;
const THEIRS: BrokerKind = BrokerKind::Mosquitto;

/// Idle memory per connection of (broker, mode) at `count` connections, bytes, one value
/// per repeat (`r` holds one link), and the fewest connections any of them held open.
/// Runs from before memory was repeated give the mode's one measurement.
pub(super) fn memory_repeats(
    r: &RunResults,
    broker: BrokerKind,
    mode: Mode,
    count: u64,
) -> (Vec<(usize, f64)>, u64) {
    let step = |steps: &[super::memory::IdleMemory]| {
        let s = steps.iter().find(|s| s.connections == count)?;
        Some((s.bytes_per_connection?, s.opened))
    };
    let repeated: Vec<(usize, (f64, u64))> = r
        .repeats
        .idle_memory
        .iter()
        .filter(|m| m.broker == broker && m.mode == mode)
        .filter_map(|m| Some((m.repeat, step(&m.steps)?)))
        .collect();
    let values = if r.repeats.idle_memory.is_empty() {
        r.mode(broker, mode)
            .and_then(|m| step(&m.idle_memory))
            .map(|v| vec![(0, v)])
            .unwrap_or_default()
    } else {
        repeated
    };
    let opened = values.iter().map(|v| v.1 .1).min().unwrap_or(0);
    (values.into_iter().map(|(i, v)| (i, v.0)).collect(), opened)
}

/// Handshakes per broker CPU second of (broker, mode), one value per repeat's storm
/// (`r` holds one link, [`RunResults::for_link`]).
fn storm_rates(r: &RunResults, broker: BrokerKind, mode: Mode) -> Vec<(usize, f64)> {
    let repeated: Vec<(usize, f64)> = r
        .repeats
        .storms
        .iter()
        .filter(|s| s.broker == broker && s.mode == mode)
        .filter_map(|s| Some((s.repeat, s.storm.handshakes_per_broker_cpu_s?)))
        .collect();
    if !repeated.is_empty() {
        return repeated;
    }
    // Runs from before storms were repeated: the one storm of the mode.
    r.mode(broker, mode)
        .and_then(|m| m.storm.as_ref()?.handshakes_per_broker_cpu_s)
        .map(|v| vec![(0, v)])
        .unwrap_or_default()
}

/// The last column: whether the whole interval is at or above 1.0.
fn verdict(r: &RunResults, ci: &RatioCi) -> String {
    judge(ci, 1.0, false, indicative(r)).word().to_string()
}

/// Appends the section for the one link of `r` (nothing when it has no Mosquitto figures).
pub fn section(out: &mut String, r: &RunResults) {
    if !r.modes.iter().any(|m| m.broker == THEIRS) {
        return;
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut memory_below = false;
    // A rate row whose interval reaches below 1.0 (or its one value, without an interval).
    let mut rates_below = Vec::new();
    // Memory: theirs / ours, so that >= 1.0 means ours uses at most Mosquitto's.
    let memory_repeated = !r.repeats.idle_memory.is_empty();
    for count in r.meta.profile.idle_connections.iter().map(|&c| c as u64) {
        for mode in Mode::ALL {
            let ((ours, n_ours), (theirs, n_theirs)) = (
                memory_repeats(r, OURS, mode, count),
                memory_repeats(r, THEIRS, mode, count),
            );
            let med = |v: &[(usize, f64)]| median(&v.iter().map(|x| x.1).collect::<Vec<_>>());
            if !memory_repeated {
                // One measurement per count: no interval (runs before 2026-12-05).
                let (Some(&(_, ours)), Some(&(_, theirs))) = (ours.first(), theirs.first()) else {
                    continue;
                };
                let ratio = theirs / ours;
                memory_below |= ratio < 1.0;
                rows.push(vec![
                    format!("memory per idle {mode} connection, B ({count} connections)"),
                    format!("{ours:.0} ({n_ours} open)"),
                    format!("{theirs:.0} ({n_theirs} open)"),
                    format!("{ratio:.2} (one measurement, no interval)"),
                    if ratio >= 1.0 { "at least" } else { "below" }.to_string()
                        + " (one measurement)",
                ]);
                continue;
            }
            let Some(ci) = ratio_ci(&theirs, &ours) else {
                continue;
            };
            memory_below |= below(&ci);
            rows.push(vec![
                format!(
                    "memory per idle {mode} connection, B ({count} connections; repeats: {} / {})",
                    ours.len(),
                    theirs.len()
                ),
                format!("{:.0} ({n_ours} open)", med(&ours)),
                format!("{:.0} ({n_theirs} open)", med(&theirs)),
                ci.show(),
                verdict(r, &ci),
            ]);
        }
    }
    // 30-byte plaintext messages per second: ours / theirs over the repeats.
    for &q in &r.meta.profile.qos {
        let (Some(ours), Some(theirs)) = (
            r.cell(OURS, Mode::Plain, 30, q),
            r.cell(THEIRS, Mode::Plain, 30, q),
        ) else {
            continue;
        };
        let Some(ci) = cell_ratio(r, (OURS, Mode::Plain), (THEIRS, Mode::Plain), 30, q, |c| {
            c.msgs_per_s
        }) else {
            continue;
        };
        if below(&ci) {
            rates_below.push(format!("QoS {q}"));
        }
        rows.push(vec![
            format!("30 B plain messages/s, QoS {q} (median over the repeats)"),
            format!("{:.0}", ours.msgs_per_s),
            format!("{:.0}", theirs.msgs_per_s),
            ci.show(),
            verdict(r, &ci),
        ]);
    }
    // Handshakes per broker CPU second: ours / theirs over the repeated storms.
    for mode in Mode::ALL {
        let (ours, theirs) = (storm_rates(r, OURS, mode), storm_rates(r, THEIRS, mode));
        let Some(ci) = ratio_ci(&ours, &theirs) else {
            continue;
        };
        let med = |v: &[(usize, f64)]| median(&v.iter().map(|x| x.1).collect::<Vec<_>>());
        if below(&ci) {
            rates_below.push(format!("{mode} handshakes"));
        }
        rows.push(vec![
            format!(
                "{mode} handshakes per broker CPU second (storms: {} / {})",
                ours.len(),
                theirs.len()
            ),
            format!("{:.0}", med(&ours)),
            format!("{:.0}", med(&theirs)),
            ci.show(),
            verdict(r, &ci),
        ]);
    }
    if rows.is_empty() {
        return;
    }
    out.push_str("## Against Mosquitto\n\n");
    let _ = writeln!(
        out,
        "Our broker and Mosquitto on the same machine, in the same run, where a broker for \
         small devices is judged first. Rates are ours / Mosquitto's (messages per second: the \
         throughput cells above; handshakes per broker CPU second: the connection storm, run in \
         every repeat), memory is Mosquitto's / ours, so that a ratio of at least 1.0 is in our \
         favour on every row. The interval is the paired bootstrap of the targets above; \"at \
         least 1.0\" is shown (`met`) only when the whole interval is at or above 1.0, refuted \
         (`missed`) only when it is wholly below.{}\n",
        if memory_repeated {
            " Memory is weighed in every repeat too (the median of the repeats; bytes per \
             connection at the count, with the fewest connections any repeat held open), and \
             its ratio is bootstrapped the same way."
        } else {
            " Memory is measured once per count (no interval), so its rows say only on which \
             side the one measurement fell."
        }
    );
    let header = [
        "figure".to_string(),
        "mqtt-lwa".into(),
        "mosquitto".into(),
        "ratio (ours in favour when >= 1.0)".into(),
        ">= 1.0".into(),
    ];
    table(out, &header, &rows);
    if memory_below {
        out.push_str(
            "\nWhat bounds the memory rows below 1.0 is measured apart from this run (massif \
             heap profiles by allocation site, rustc's type sizes, callgrind, each with its date \
             and commit): experiments/README.md, \"Where an idle connection's bytes go\" and \
             \"What bounds it against Mosquitto\".\n",
        );
    }
    if !rates_below.is_empty() {
        let _ = writeln!(
            out,
            "\nRate rows not shown at least 1.0 ({}): what bounds them is counted apart from this \
             run, load-independent (instructions with callgrind and system calls with strace, \
             per message and per connection, both brokers under the same probe): \
             experiments/README.md, \"What bounds the rates against Mosquitto\".",
            rates_below.join(", ")
        );
    }
}

/// Whether a rate's interval reaches below 1.0 (its one value, without an interval).
fn below(ci: &RatioCi) -> bool {
    ci.interval.map_or(ci.point < 1.0, |(lo, _)| lo < 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repeat::StormRepeat;

    /// The committed full run of 2026-11-25 (one storm per mode), given `storms` repeated storms.
    fn run_with_storms(rates: &[(BrokerKind, Mode, [f64; 5])]) -> RunResults {
        let text = include_str!("../results/full-20261125T202541Z/results.json");
        let mut r: RunResults = serde_json::from_str(text).expect("committed results.json");
        let base = r.modes[0].storm.clone().expect("a storm");
        for &(broker, mode, values) in rates {
            for (repeat, v) in values.into_iter().enumerate() {
                let mut storm = base.clone();
                storm.handshakes_per_broker_cpu_s = Some(v);
                r.repeats.storms.push(StormRepeat {
                    link: "loopback".into(),
                    repeat,
                    broker,
                    mode,
                    storm,
                });
            }
        }
        r.for_link("loopback")
    }

    fn row<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(&format!("| {start}")))
            .unwrap_or_else(|| panic!("no row {start} in\n{text}"))
    }

    #[test]
    fn rows_put_both_brokers_side_by_side_with_intervals() {
        let r = run_with_storms(&[
            (OURS, Mode::Tls13, [5000.0, 5100.0, 4900.0, 5050.0, 4950.0]),
            (
                THEIRS,
                Mode::Tls13,
                [3800.0, 3900.0, 3700.0, 3850.0, 3750.0],
            ),
            (
                OURS,
                Mode::Plain,
                [18000.0, 18500.0, 17500.0, 18200.0, 17800.0],
            ),
            (
                THEIRS,
                Mode::Plain,
                [19000.0, 19500.0, 18500.0, 19200.0, 18800.0],
            ),
        ]);
        let mut out = String::new();
        section(&mut out, &r);
        assert!(out.starts_with("## Against Mosquitto"), "{out}");
        // Repeated storms: the medians, a ratio with its interval, and the verdict it allows.
        let tls = row(
            &out,
            "tls13 handshakes per broker CPU second (storms: 5 / 5)",
        );
        assert!(tls.contains("| 5000 | 3800 | 1.32 ["), "{tls}");
        assert!(tls.ends_with("| met |"), "{tls}");
        let plain = row(&out, "plain handshakes per broker CPU second");
        assert!(plain.ends_with("| missed |"), "{plain}");
        // Rows not shown at least 1.0 point to what bounds them; the met TLS row does not.
        let bounds = out
            .lines()
            .find(|l| l.starts_with("Rate rows not shown at least 1.0"))
            .unwrap_or_else(|| panic!("no pointer for the rate rows in\n{out}"));
        assert!(
            bounds.contains("(QoS 0, QoS 1, plain handshakes)")
                && !bounds.contains("tls13 handshakes")
                && bounds.contains("\"What bounds the rates against Mosquitto\""),
            "{bounds}"
        );
        // Modes with one storm each keep their single value and claim nothing.
        let mtls = row(
            &out,
            "mtls13 handshakes per broker CPU second (storms: 1 / 1)",
        );
        assert!(mtls.contains("no interval"), "{mtls}");
        assert!(mtls.ends_with("| not shown |"), "{mtls}");
        // Memory: Mosquitto's over ours, one measurement per count.
        let mem = row(
            &out,
            "memory per idle plain connection, B (10000 connections)",
        );
        assert!(
            mem.contains("| 5082 (10000 open) | 736 (10000 open) | 0.14"),
            "{mem}"
        );
        assert!(mem.ends_with("| below (one measurement) |"), "{mem}");
        assert!(
            out.contains("What bounds the memory rows below 1.0")
                && out.contains("\"Where an idle connection's bytes go\""),
            "{out}"
        );
        // Throughput: the cells' medians and the bootstrap over the repeats.
        let q2 = row(&out, "30 B plain messages/s, QoS 2");
        assert!(q2.contains("| 1.48 [1.27, 1.71] | met |"), "{q2}");
    }

    #[test]
    fn memory_weighed_in_every_repeat_gets_an_interval() {
        use crate::memory::IdleMemory;
        use crate::repeat::MemoryRepeat;
        let mut r = run_with_storms(&[]);
        let step = |bytes: f64, opened: u64| IdleMemory {
            connections: 10_000,
            opened,
            failed: 0,
            first_error: None,
            rss_before: 0,
            rss_after: 0,
            bytes_per_connection: Some(bytes),
            open_seconds: 1.0,
        };
        let series: [(BrokerKind, Mode, [f64; 5]); 4] = [
            (OURS, Mode::Plain, [2500.0, 2530.0, 2510.0, 2560.0, 2490.0]),
            (THEIRS, Mode::Plain, [736.0, 740.0, 730.0, 738.0, 735.0]),
            (
                OURS,
                Mode::Tls13,
                [10100.0, 10200.0, 10150.0, 10120.0, 10180.0],
            ),
            (
                THEIRS,
                Mode::Tls13,
                [14600.0, 14700.0, 14650.0, 14550.0, 14680.0],
            ),
        ];
        for (broker, mode, values) in series {
            for (repeat, v) in values.into_iter().enumerate() {
                r.repeats.idle_memory.push(MemoryRepeat {
                    link: "loopback".into(),
                    repeat,
                    broker,
                    mode,
                    // One repeat held a connection fewer: the row shows the fewest.
                    steps: vec![step(v, if repeat == 3 { 9_999 } else { 10_000 })],
                });
            }
        }
        let mut out = String::new();
        section(&mut out, &r);
        let plain = row(
            &out,
            "memory per idle plain connection, B (10000 connections; repeats: 5 / 5)",
        );
        // Medians 2510 and 736; Mosquitto's over ours, bootstrapped: wholly below 1.0.
        assert!(
            plain.contains("| 2510 (9999 open) | 736 (9999 open) | 0.29 ["),
            "{plain}"
        );
        assert!(plain.ends_with("| missed |"), "{plain}");
        let tls = row(
            &out,
            "memory per idle tls13 connection, B (10000 connections; repeats: 5 / 5)",
        );
        assert!(tls.contains("| 1.44 ["), "{tls}");
        assert!(tls.ends_with("| met |"), "{tls}");
        // Modes measured once (no repeats of theirs) give no memory row at all.
        assert!(!out.contains("memory per idle mtls13"), "{out}");
        assert!(
            out.contains("Memory is weighed in every repeat too"),
            "{out}"
        );
        assert!(
            out.contains("What bounds the memory rows below 1.0"),
            "{out}"
        );
    }

    #[test]
    fn nothing_without_mosquitto() {
        let mut r = run_with_storms(&[]);
        r.modes.retain(|m| m.broker == OURS);
        let mut out = String::new();
        section(&mut out, &r);
        assert!(out.is_empty(), "{out}");
    }
}
