//! CPU time and resident memory of a process, read from Linux's `/proc`.
//!
//! The broker under test runs as a child process (ours or mosquitto), so its
//! CPU and memory are counted apart from the clients that load it. `/proc`
//! gives both without `unsafe`; CPU comes in clock ticks (10 ms on Debian's
//! kernels), so short cells are coarse and the report says how many ticks a
//! figure rests on.

use std::io;
use std::path::PathBuf;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`; 100 on every Linux port we target).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The calling process.
    Current,
    /// Another process by id.
    Pid(u32),
    /// A broker of `mqtt-lwa experiment serve` on another machine, by its stats port.
    Remote(
        std::net::SocketAddr,
        super::matrix::BrokerKind,
        super::matrix::Mode,
    ),
}

impl Process {
    /// Its `/proc` directory; `None` for a remote process.
    fn dir(self) -> Option<PathBuf> {
        match self {
            Process::Current => Some(PathBuf::from("/proc/self")),
            Process::Pid(pid) => Some(PathBuf::from(format!("/proc/{pid}"))),
            Process::Remote(..) => None,
        }
    }
}

/// User plus system CPU time of all threads of `process`, in clock ticks.
pub fn cpu_ticks(process: Process) -> io::Result<u64> {
    let Some(dir) = process.dir() else {
        return remote_stats(process).map(|s| s.cpu_ticks);
    };
    let text = std::fs::read_to_string(dir.join("stat"))?;
    parse_stat_cpu(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad stat"))
}

/// `utime + stime` from a `/proc/<pid>/stat` line (fields 14 and 15, after the parenthesised name).
fn parse_stat_cpu(text: &str) -> Option<u64> {
    // The command name may contain spaces and parentheses: skip to the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // rest starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of `process` in bytes (`VmRSS`).
pub fn rss_bytes(process: Process) -> io::Result<u64> {
    let Some(dir) = process.dir() else {
        return remote_stats(process).map(|s| s.rss_bytes);
    };
    let text = std::fs::read_to_string(dir.join("status"))?;
    parse_vm_rss(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

/// Asks the stats port of a remote broker (blocking; one short TCP exchange).
fn remote_stats(process: Process) -> io::Result<super::remote::StatsReply> {
    match process {
        Process::Remote(addr, kind, mode) => super::remote::query_stats(addr, kind, mode),
        _ => Err(io::Error::other("not a remote process")),
    }
}

fn parse_vm_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_odd_name() {
        let line = "1234 (a b) c)) S 1 1 1 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0 42 1000 10";
        assert_eq!(parse_stat_cpu(line), Some(22));
    }

    #[test]
    fn vm_rss_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn own_process_is_readable() {
        assert!(rss_bytes(Process::Current).unwrap() > 0);
        cpu_ticks(Process::Current).unwrap();
    }
}
