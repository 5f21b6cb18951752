//! Counters shared by the server (bytes, connections) and the core
//! (messages, sessions); published under `$SYS/` and, with their labels,
//! on the Prometheus endpoint ([`super::metrics`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why a message was dropped, as labelled on the metrics endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The session's queue was full (the new message, or an older QoS 0
    /// one pushed out to make room).
    QueueFull,
    /// Larger than the client's Maximum Packet Size.
    TooLarge,
    /// The connection's send queue was full (QoS 0 to a slow client) or closed.
    SlowClient,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 3] = [
        DropReason::QueueFull,
        DropReason::TooLarge,
        DropReason::SlowClient,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::TooLarge => "too_large",
            DropReason::SlowClient => "slow_client",
        }
    }
}

/// Open connections of one listener.
#[derive(Debug)]
pub struct ListenerGauge {
    /// Listener name from the configuration.
    pub listener: String,
    /// Its security mode (`plain`, `password`, `tls`, `lwa`).
    pub mode: &'static str,
    /// Connections open now.
    pub open: Arc<AtomicU64>,
}

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
    /// `messages_dropped` by [`DropReason`], in [`DropReason::ALL`] order.
    pub dropped_by_reason: [AtomicU64; 3],
    /// Failed authentications.
    pub auth_failures: AtomicU64,
    /// Failed authentications and TLS handshakes by (mode, reason); rare
    /// events, so a lock is cheap enough.
    pub auth_failures_by: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// LWA records that failed to open.
    pub record_failures: AtomicU64,
    /// Persistence commits that failed (their inputs were not acknowledged).
    pub store_errors: AtomicU64,
    /// Open connections per listener.
    pub listeners: Mutex<Vec<ListenerGauge>>,
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

    /// Counts one dropped message.
    pub fn dropped(&self, reason: DropReason) {
        Stats::add(&self.messages_dropped, 1);
        let i = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default();
        if let Some(c) = self.dropped_by_reason.get(i) {
            Stats::add(c, 1);
        }
    }

    /// Counts one failed MQTT authentication (also in `auth_failures`).
    pub fn auth_failed(&self, mode: &'static str, reason: &'static str) {
        Stats::add(&self.auth_failures, 1);
        self.auth_failure_by(mode, reason);
    }

    /// Counts one failed TLS handshake: labelled with the authentication
    /// failures on the metrics endpoint, but not in `$SYS/broker/auth/failures`
    /// (which counts MQTT-level refusals).
    pub fn tls_handshake_failed(&self, reason: &'static str) {
        self.auth_failure_by("tls", reason);
    }

    fn auth_failure_by(&self, mode: &'static str, reason: &'static str) {
        if let Ok(mut by) = self.auth_failures_by.lock() {
            *by.entry((mode, reason)).or_default() += 1;
        }
    }

    /// A gauge of `listener`'s open connections, registered for the metrics.
    pub fn listener_gauge(&self, listener: &str, mode: &'static str) -> Arc<AtomicU64> {
        let open = Arc::new(AtomicU64::new(0));
        if let Ok(mut all) = self.listeners.lock() {
            all.push(ListenerGauge {
                listener: listener.to_owned(),
                mode,
                open: open.clone(),
            });
        }
        open
    }
}

/// The authentication mode a refused CONNECT tried, for the failure label:
/// `lwa` (or another enhanced method), `password` when it carried
/// credentials, `anonymous` when it carried none.
pub fn auth_mode(connect: &crate::codec::Connect) -> &'static str {
    match connect.properties.authentication_method.as_deref() {
        Some(m) if m.starts_with("LWA") => "lwa",
        Some(_) => "enhanced",
        None if connect.username.is_some() || connect.password.is_some() => "password",
        None => "anonymous",
    }
}

/// The failure label of a refusing reason code.
pub fn refusal_reason(code: crate::codec::ReasonCode) -> &'static str {
    match code.0 {
        0x86 => "bad_credentials",
        0x87 => "not_authorized",
        0x8C => "bad_method",
        0x9F => "rate_limited",
        0x88 | 0x89 => "server_unavailable",
        _ => "refused",
    }
}
