//! `experiment --pin-cpus`: the broker under test on one CPU, the runner (its
//! clients, relays and runtime) on another, so the two never preempt each
//! other and the scheduler cannot move them between cores mid-cell.
//!
//! Affinity is per thread. The runner pins its main thread before it builds
//! the tokio runtime, so every thread it starts later inherits the mask; a
//! broker child is already running, so each of its threads
//! (`/proc/<pid>/task/*`) is pinned, and threads it starts later inherit
//! from their creator. rustix wraps `sched_setaffinity` without `unsafe`.

use std::io;

use rustix::thread::{sched_setaffinity, CpuSet, Pid};

/// The CPU the broker runs on.
pub const BROKER_CPU: usize = 0;
/// The CPU the runner and its clients run on.
pub const RUNNER_CPU: usize = 1;

fn only(cpu: usize) -> CpuSet {
    let mut set = CpuSet::new();
    set.set(cpu);
    set
}

/// Pins the calling thread (and every thread it starts afterwards) to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    sched_setaffinity(None, &only(cpu)).map_err(io::Error::from)
}

/// Pins every thread of process `pid` to `cpu`; returns how many threads were pinned.
pub fn pin_process(pid: u32, cpu: usize) -> io::Result<usize> {
    let set = only(cpu);
    let mut pinned = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let tid = entry?
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
            .and_then(Pid::from_raw);
        let Some(tid) = tid else { continue };
        match sched_setaffinity(Some(tid), &set) {
            Ok(()) => pinned += 1,
            // A thread that ended since the listing.
            Err(rustix::io::Errno::SRCH) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(pinned)
}

/// The settings-table line for a pinned run.
pub fn pinned() -> String {
    format!(
        "broker processes on CPU {BROKER_CPU}, runner (clients, relays) on CPU {RUNNER_CPU} \
         (sched_setaffinity)"
    )
}

/// The settings-table line for a run without pinning.
pub fn unpinned() -> String {
    "none (the scheduler places broker and clients; `--pin-cpus` pins them)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_process_is_pinned_thread_by_thread() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let n = pin_process(child.id(), 0).unwrap();
        assert_eq!(n, 1);
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let allowed = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .unwrap();
        assert!(allowed.ends_with("\t0"), "{allowed}");
    }
}
