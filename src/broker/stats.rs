//! Counters shared by the server (bytes, connections) and the core
//! (messages, sessions); published under `$SYS/`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Broker-wide counters; relaxed atomics, read for `$SYS/` and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes read from all sockets.
    pub bytes_received: AtomicU64,
    /// Bytes written to all sockets.
    pub bytes_sent: AtomicU64,
    /// Connections currently open (before and after CONNECT).
    pub connections: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// PUBLISH packets received from clients.
    pub messages_received: AtomicU64,
    /// PUBLISH packets sent to clients.
    pub messages_sent: AtomicU64,
    /// Messages dropped (queue full, QoS 0 to a slow client, too large for the client).
    pub messages_dropped: AtomicU64,
    /// Failed authentications.
    pub auth_failures: AtomicU64,
    /// LWA records that failed to open.
    pub record_failures: AtomicU64,
    /// Persistence commits that failed (their inputs were not acknowledged).
    pub store_errors: AtomicU64,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
