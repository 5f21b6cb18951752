//! Repeated measurements: every throughput and latency cell runs
//! `profile.repeats` times, with the (broker, mode) blocks interleaved
//! between repeats so that slow drift of the machine's load spreads over all
//! modes instead of biasing one. Tables show the median; the raw value of
//! every repeat, the spread, and the load average around each block are kept.
//!
//! A throughput cell also lasts at least `profile.min_cell_ms`: a run that
//! ended sooner is redone with proportionally more messages (the shorter run
//! then served as warm-up and is discarded).
//!
//! One job per submodule: `measure` runs a repeat, `load` samples the machine's load
//! around each block, `aggregate` turns repeats into medians and spreads, `csv` writes
//! the repeats' files and `report` the report's text about them; the repeats' own data
//! types are here.

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

mod aggregate;
mod csv;
mod load;
mod measure;
mod report;

pub use self::aggregate::*;
pub use self::csv::*;
pub use self::load::*;
pub use self::measure::*;
pub use self::report::*;

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

#[cfg(test)]
mod tests {
    use super::load::parse_proc_stat;
    use super::report::{machine_warning, other_cpu_line, LoadOf};
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
