//! Load around each block: `/proc/loadavg` and `/proc/stat` snapshots (whose CPU ran what).

use super::*;

/// `/proc/loadavg`'s three averages (runnable and waiting tasks over 1, 5, 15 minutes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadAvg {
    /// 1-minute average.
    pub one: f64,
    /// 5-minute average.
    pub five: f64,
    /// 15-minute average.
    pub fifteen: f64,
}

impl LoadAvg {
    /// This machine's load average now (`None` where `/proc/loadavg` is unreadable).
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/loadavg").ok()?)
    }

    /// Parses the first three fields of a `/proc/loadavg` line.
    pub fn parse(text: &str) -> Option<Self> {
        let mut f = text.split_ascii_whitespace().map(|v| v.parse::<f64>().ok());
        Some(LoadAvg {
            one: f.next()??,
            five: f.next()??,
            fifteen: f.next()??,
        })
    }
}

/// One (broker, mode) block of one repeat: when the load was read around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockLoad {
    /// Link the block ran over.
    #[serde(default)]
    pub link: String,
    /// Repeat index (0-based).
    pub repeat: usize,
    /// Broker measured in the block.
    pub broker: BrokerKind,
    /// Mode measured in the block.
    pub mode: Mode,
    /// Load average before the block's first cell.
    pub start: Option<LoadAvg>,
    /// Load average after its last cell.
    pub end: Option<LoadAvg>,
    /// The broker machine's load average before the block (remote broker only).
    #[serde(default)]
    pub broker_host_start: Option<LoadAvg>,
    /// The broker machine's load average after the block (remote broker only).
    #[serde(default)]
    pub broker_host_end: Option<LoadAvg>,
    /// Share of this machine's CPU time that processes other than the runner and a
    /// local broker used during the block (0..1; `None` where `/proc/stat` is unreadable).
    #[serde(default)]
    pub other_cpu_share: Option<f64>,
}

/// CPU time of the whole machine and of the measured processes at one moment, so
/// that a block can tell how much of the CPU other processes took meanwhile (the
/// load average cannot: it counts the run's own broker and clients too).
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    pub(super) busy: u64,
    pub(super) total: u64,
    pub(super) own: u64,
}

impl CpuSnapshot {
    /// Reads `/proc/stat` and the CPU ticks of `own` (the runner and a local broker).
    pub fn take(own: &[Process]) -> Option<Self> {
        let (busy, total) = parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let own = own.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).sum();
        Some(CpuSnapshot { busy, total, own })
    }

    /// Share of all CPU time between `self` and `later` used by other processes.
    pub fn other_share(&self, later: &CpuSnapshot) -> Option<f64> {
        let total = later.total.checked_sub(self.total).filter(|t| *t > 0)?;
        let busy = later.busy.saturating_sub(self.busy);
        let own = later.own.saturating_sub(self.own);
        Some(busy.saturating_sub(own) as f64 / total as f64)
    }
}

/// (busy, total) ticks of all CPUs from `/proc/stat`'s `cpu` line.
pub(super) fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    // Busy is process time only (user, nice, system): interrupt and softirq time is
    // kernel work not charged to any process (on loopback, much of it is the run's own
    // TCP traffic) and steal is time the hypervisor gave to other guests, so counting
    // them as "other processes" flagged quiet runs as loaded.
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2);
    let total = busy + get(3) + get(4) + get(5) + get(6) + get(7);
    Some((busy, total))
}
