//! Connection storm: handshakes per second, and per broker CPU second (per
//! core), while K clients connect, reach "may publish", and disconnect in a
//! loop for a fixed time.
//!
//! The clients run in the runner process on the same machine as the broker,
//! so on a small machine they compete with it for the cores: the wall-clock
//! rate is what this machine sustains with both sides on it, while
//! handshakes per broker CPU second (`/proc/<pid>/stat` of the broker over the
//! same window) is the broker's own cost and carries over to a machine where
//! the broker has a core to itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::matrix::Mode;
use super::procstat::{cpu_ticks, TICKS_PER_SECOND};
use super::workload::{Target, WorkloadError};

/// How long a storm runs and with how many clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StormProfile {
    /// Concurrent clients per core of this machine (K = this x cores).
    pub clients_per_core: usize,
    /// Storm length per (broker, mode), milliseconds (0: no storm).
    pub millis: u64,
    /// Storm length in password mode, where every handshake is a PBKDF2 verification.
    pub password_millis: u64,
}

/// What one storm measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StormResult {
    /// Concurrent clients (K).
    pub clients: usize,
    /// Seconds during which new handshakes were started.
    pub window_seconds: f64,
    /// Seconds from the start until the last handshake begun in the window had ended.
    pub seconds: f64,
    /// Handshakes that reached "may publish" (CONNACK; for LWA, verified).
    pub handshakes: u64,
    /// Handshakes that failed (refused, timed out, broken connection).
    pub failed: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Broker CPU clock ticks (10 ms) over `seconds`.
    pub broker_cpu_ticks: u64,
    /// Completed handshakes per wall-clock second.
    pub handshakes_per_s: f64,
    /// Completed handshakes per broker CPU second, i.e. per fully used core (none without a tick).
    pub handshakes_per_broker_cpu_s: Option<f64>,
}

/// Polls every future in `futures` to completion on the calling task; outputs in order.
///
/// The futures borrow the measurement's [`Target`], so they cannot be spawned.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut busy = false;
        for (slot, out) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => busy = true,
                }
            }
        }
        if busy {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Most concurrent storm clients. Our broker's LWA limiter lets one source
/// address (every client here is 127.0.0.1) hold 10 unfinished handshakes and
/// refuses more with 0x9F; a client holds two or more at once when it starts
/// its next handshake (once CONNACK is verified) before the broker has read its
/// closing AUTH and returned the token, so with more clients the storm would
/// measure the limiter. Refusals that still happen are counted as failures and
/// named in the report. The same cap applies to every mode and broker so that
/// they compare.
pub const MAX_CLIENTS: usize = 5;

/// Concurrent clients for a machine with `cores` cores (at most [`MAX_CLIENTS`]).
pub fn clients(profile: &StormProfile, cores: usize) -> usize {
    (profile.clients_per_core * cores.max(1)).clamp(1, MAX_CLIENTS)
}

/// This machine's cores (`/proc/cpuinfo`), not the runner's affinity: with
/// `--pin-cpus` the runner may use one core, but K stays the same across runs.
pub fn machine_cores() -> usize {
    let listed = std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    if listed > 0 {
        listed
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// The storm's window for `mode` (`None`: no storm).
pub fn window(profile: &StormProfile, mode: Mode) -> Option<Duration> {
    let ms = if mode == Mode::Password {
        profile.password_millis.min(profile.millis)
    } else {
        profile.millis
    };
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Pause after a failed handshake, so a refusing broker is not hammered in a tight loop.
const FAILURE_BACKOFF: Duration = Duration::from_millis(10);

/// Runs `clients` connect-disconnect loops against `t` for `window`.
///
/// A loop starts no handshake after the window; one begun inside it runs to
/// its end (bounded by the client's connect timeout), and the broker's CPU
/// and the wall clock are read when the last loop has stopped.
pub async fn storm(
    t: &Target<'_>,
    clients: usize,
    window: Duration,
) -> Result<StormResult, WorkloadError> {
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let cpu0 = cpu_ticks(t.process)?;
    let start = Instant::now();
    let deadline = start + window;
    let loops = (0..clients).map(|k| {
        let (done, failed, first_error) = (&done, &failed, &first_error);
        async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                match t.connect(t.addr, format!("storm-{k}-{i}")).await {
                    Ok(client) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        super::workload::bye(client).await;
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut first) = first_error.lock() {
                            first.get_or_insert_with(|| e.to_string());
                        }
                        tokio::time::sleep(FAILURE_BACKOFF).await;
                    }
                }
            }
        }
    });
    join_all(loops.collect()).await;
    let seconds = start.elapsed().as_secs_f64();
    let ticks = cpu_ticks(t.process)?.saturating_sub(cpu0);
    let handshakes = done.load(Ordering::Relaxed);
    Ok(StormResult {
        clients,
        window_seconds: window.as_secs_f64(),
        seconds,
        handshakes,
        failed: failed.load(Ordering::Relaxed),
        first_error: first_error.lock().ok().and_then(|g| g.clone()),
        broker_cpu_ticks: ticks,
        handshakes_per_s: handshakes as f64 / seconds.max(1e-9),
        handshakes_per_broker_cpu_s: (ticks > 0)
            .then(|| handshakes as f64 / (ticks as f64 / TICKS_PER_SECOND)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_all_keeps_order_and_runs_concurrently() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        // The first future can only finish once the second has run.
        let first = Box::pin(async move { rx.await.unwrap_or(0) + 1 })
            as Pin<Box<dyn Future<Output = u32>>>;
        let second = Box::pin(async move {
            let _ = tx.send(41);
            7u32
        }) as Pin<Box<dyn Future<Output = u32>>>;
        assert_eq!(join_all(vec![first, second]).await, vec![42, 7]);
    }

    #[test]
    fn password_storm_is_bounded() {
        let p = StormProfile {
            clients_per_core: 2,
            millis: 5000,
            password_millis: 2000,
        };
        assert_eq!(window(&p, Mode::Plain), Some(Duration::from_secs(5)));
        assert_eq!(window(&p, Mode::Password), Some(Duration::from_secs(2)));
        assert_eq!(clients(&p, 2), 4);
        assert_eq!(clients(&p, 64), MAX_CLIENTS);
        let off = StormProfile { millis: 0, ..p };
        assert_eq!(window(&off, Mode::Lwa), None);
        assert!(machine_cores() >= 1);
    }
}
