//! Limits and advertised MQTT 5 capabilities: what the sans-IO core, the connections and the
//! server enforce. A plain struct with defaults; `config` reads it from the `[limits]` table
//! (hence `Deserialize`), and nothing here knows TOML or imports the configuration module.

use serde::Deserialize;

/// Limits and advertised MQTT 5 capabilities.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Concurrent connections over all listeners; more are refused (0x97 Quota exceeded / 3.1.1: 0x03).
    pub max_connections: usize,
    /// Largest packet accepted (bytes, whole packet); advertised as Maximum Packet Size.
    pub max_packet_size: u32,
    /// Receive Maximum advertised to clients (QoS 1/2 publishes in flight towards the broker).
    pub receive_maximum: u16,
    /// Outgoing QoS 1/2 messages in flight per client (further capped by the client's Receive Maximum).
    pub max_inflight: u16,
    /// Messages queued per session (offline or over the in-flight window); the oldest QoS 0 is dropped first.
    pub max_queued_messages: usize,
    /// Topic Alias Maximum advertised to clients.
    pub topic_alias_maximum: u16,
    /// Keep-alive the broker imposes on MQTT 5 clients that ask for more or
    /// for none (Server Keep Alive in CONNACK); 0 accepts the client's. The
    /// default, 60 s, is what MQTT conformance suites expect of a broker.
    pub max_keep_alive: u16,
    /// Upper bound on Session Expiry Interval (seconds); default 86,400 (one
    /// day), so an abandoned or squatted session does not live for ever.
    pub max_session_expiry: u32,
    /// A session belongs to the principal that created it: a CONNECT by
    /// another principal with its client id is refused with 0x87 Not
    /// authorized (default true). False keeps MQTT's plain takeover for
    /// non-LWA sessions; LWA sessions are always bound (LWA.md 12.4).
    pub bind_client_ids: bool,
    /// Sessions (connected plus offline) the broker keeps; a CONNECT that
    /// would create one more is refused with 0x97 Quota exceeded (3.1.1: 3).
    pub max_sessions: usize,
    /// Payload bytes queued per session (offline or over the in-flight
    /// window); beyond it the oldest queued message is dropped (counted in
    /// `$SYS/broker/messages/dropped`).
    pub max_queued_bytes_per_session: usize,
    /// Payload bytes queued for offline sessions, all together; beyond it a
    /// message for an offline session is dropped (counted as above).
    pub max_queued_bytes_total: usize,
    /// Seconds a connection may take to send CONNECT (and finish authentication).
    pub connect_timeout_secs: u64,
    /// Connections accepted but not yet authenticated, over all listeners;
    /// more are closed at once, before any TLS or LWA work (0 = no limit).
    pub max_pending_auth: usize,
    /// Of those, at most this many from one source address (IPv6: one /64);
    /// 0 = the default, half the smallest listener budget, at most 32.
    pub max_pending_auth_per_source: usize,
    /// Whether retained messages are supported.
    pub retain_available: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_packet_size: 1 << 20,
            receive_maximum: 100,
            max_inflight: 100,
            max_queued_messages: 1000,
            topic_alias_maximum: 64,
            max_keep_alive: 60,
            max_session_expiry: 86_400,
            bind_client_ids: true,
            max_sessions: 100_000,
            max_queued_bytes_per_session: 1 << 20,
            max_queued_bytes_total: 256 << 20,
            connect_timeout_secs: 10,
            max_pending_auth: 1024,
            max_pending_auth_per_source: 0,
            retain_available: true,
        }
    }
}
