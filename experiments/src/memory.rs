//! Broker memory per idle connection at several connection counts (e.g.
//! 1 000 and 10 000): RSS growth of the broker process divided by the
//! connections held.
//!
//! Connections are opened with bounded concurrency (a few handshakes in
//! flight at a time) so that thousands of TLS handshakes on a small machine
//! do not run into the broker's or the client's connect timeout, and the
//! counts are reached one after the other on the same set of connections:
//! 10 000 means the first 1 000 plus 9 000 more.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::procstat::{rss_bytes, Process};
use super::storm::join_all;
use super::workload::{bye, Target, WorkloadError};
use mqtt_lwa::client::{Client, ClientError};
use mqtt_lwa::codec::ReasonCode;

/// Handshakes in flight while opening idle connections: few enough for our
/// broker's LWA limiter (see [`super::storm::MAX_CLIENTS`]), and far under
/// `max_pending_auth`.
pub const OPEN_CONCURRENCY: usize = super::storm::MAX_CLIENTS;
/// Connections closed at a time afterwards.
const CLOSE_CONCURRENCY: usize = 64;

/// Broker memory at one connection count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleMemory {
    /// Connections the step asked for.
    pub connections: u64,
    /// Connections actually open when RSS was read.
    pub opened: u64,
    /// Connection attempts that failed (all steps up to this one).
    pub failed: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Broker RSS before any idle connection, bytes.
    pub rss_before: u64,
    /// Broker RSS with `opened` connections, settled, bytes.
    pub rss_after: u64,
    /// (rss_after - rss_before) / opened, bytes.
    pub bytes_per_connection: Option<f64>,
    /// Seconds spent opening the connections of this step.
    pub open_seconds: f64,
}

/// RSS once it has stopped moving: after 500 ms, two reads 250 ms apart within
/// 64 KiB (or 0.2 %), at most 5 s (post-handshake work: LWA's AUTH, TLS tickets).
async fn settled_rss(pid: Process) -> std::io::Result<u64> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut last = rss_bytes(pid)?;
    for _ in 0..18 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = rss_bytes(pid)?;
        if now.abs_diff(last) <= (64 * 1024).max(last / 500) {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Times a connection refused with 0x9F (Connection rate exceeded) is tried again.
const RATE_LIMIT_RETRIES: u32 = 100;

/// Connects; a 0x9F refusal is retried after a pause. Our broker's LWA limiter
/// gives a source's token back only when it has read the client's closing
/// AUTH, which can lag behind the client's next CONNECT, so even a few
/// handshakes in flight from one address meet it now and then; what this
/// phase measures is memory, not the limiter (the storm counts refusals).
async fn connect_retrying_rate_limit(t: &Target<'_>, id: String) -> Result<Client, WorkloadError> {
    let mut tries = 0;
    loop {
        match t.connect(t.addr, id.clone()).await {
            Err(WorkloadError::Client(ClientError::Refused(code, _)))
                if code == ReasonCode::CONNECTION_RATE_EXCEEDED && tries < RATE_LIMIT_RETRIES =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// Opens idle connections up to each of `counts` (ascending) and reads the broker's RSS at each.
pub async fn idle_memory(
    t: &Target<'_>,
    counts: &[usize],
) -> Result<Vec<IdleMemory>, WorkloadError> {
    let pid = t.process;
    let mut counts: Vec<usize> = counts.iter().copied().filter(|&n| n > 0).collect();
    counts.sort_unstable();
    counts.dedup();
    if counts.is_empty() {
        return Ok(Vec::new());
    }
    let before = settled_rss(pid).await?;
    let clients: Mutex<Vec<Client>> = Mutex::new(Vec::new());
    let failed = AtomicU64::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let mut steps = Vec::new();
    for &n in &counts {
        let started = Instant::now();
        // Give up on a step once failures pass 1 % of it: the figure would not mean much.
        let max_failures = (n as u64 / 100).max(10);
        let workers = (0..OPEN_CONCURRENCY).map(|_| async {
            loop {
                if failed.load(Ordering::Relaxed) > max_failures {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    next.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
                match connect_retrying_rate_limit(t, format!("idle-{i}")).await {
                    Ok(c) => {
                        if let Ok(mut v) = clients.lock() {
                            v.push(c);
                        }
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut first) = first_error.lock() {
                            first.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            }
        });
        join_all(workers.collect()).await;
        let open_seconds = started.elapsed().as_secs_f64();
        let after = settled_rss(pid).await?;
        let opened = clients.lock().map(|v| v.len() as u64).unwrap_or(0);
        steps.push(IdleMemory {
            connections: n as u64,
            opened,
            failed: failed.load(Ordering::Relaxed),
            first_error: first_error.lock().ok().and_then(|g| g.clone()),
            rss_before: before,
            rss_after: after,
            bytes_per_connection: (opened > 0)
                .then(|| (after as f64 - before as f64) / opened as f64),
            open_seconds,
        });
        if failed.load(Ordering::Relaxed) > max_failures {
            break;
        }
    }
    // Close politely with bounded concurrency, so the broker is quiet again for the next phase.
    let all =
        std::mem::take(&mut *clients.lock().map_err(|_| {
            WorkloadError::Io(std::io::Error::other("idle connection list poisoned"))
        })?);
    let queue = Mutex::new(all);
    let closers = (0..CLOSE_CONCURRENCY).map(|_| async {
        loop {
            let c = queue.lock().ok().and_then(|mut q| q.pop());
            match c {
                Some(c) => bye(c).await,
                None => break,
            }
        }
    });
    join_all(closers.collect()).await;
    Ok(steps)
}

/// Report notes for steps that did not open every connection they asked for.
pub fn notes(t: &Target<'_>, steps: &[IdleMemory]) -> Vec<String> {
    steps
        .iter()
        .filter(|m| m.opened < m.connections)
        .map(|m| {
            format!(
                "{} {}: idle-memory step of {} connections opened only {} ({} attempts failed, \
                 first: {})",
                t.broker,
                t.mode,
                m.connections,
                m.opened,
                m.failed,
                m.first_error.as_deref().unwrap_or("?")
            )
        })
        .collect()
}
