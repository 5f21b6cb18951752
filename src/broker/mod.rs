//! The broker: a sans-IO core that owns sessions, subscriptions, retained
//! messages and QoS state ([`core`]), and the tokio server that feeds it
//! bytes from sockets ([`server`]).
//!
//! Per connection, the server decodes packets, runs authentication, resolves
//! inbound topic aliases and opens protected payloads before the core sees a
//! packet; on the way out it seals payloads, assigns outbound topic aliases
//! and encodes. The core never sees ciphertext or aliases.
//!
//! [`stats`] holds the counters both sides increment; [`sys`] publishes
//! them under `$SYS/` and [`metrics`] serves them to Prometheus.

mod cert_expiry;
mod conn_queue;
pub mod connection;
pub mod core;
pub mod delivery_queue;
pub mod limits;
pub mod metrics;
pub(crate) mod pending;
pub mod persist;
pub mod persist_store;
pub mod retained;
pub mod server;
pub(crate) mod server_conn;
mod server_core;
pub mod session;
pub mod stats;
pub mod subscriptions;
pub mod sys;

pub use self::cert_expiry::{certificate_expiry, certificate_expiry_at, CertificateExpiry};
pub use self::core::{BrokerCore, ConnId, ConnackPreview, ConnectRequest, Output};
pub use self::limits::Limits;
pub use self::server::{Server, ServerError, ServerHandle};
pub use self::stats::Stats;
