//! mqtt-lwa: an MQTT 3.1.1 / 5.0 broker and client with four security modes,
//! built to measure what securing MQTT costs.
//!
//! Data flows one way:
//! socket -> [`transport`] -> [`codec`] -> ([`auth`] / [`lwa`]) -> [`broker`] -> [`codec`] -> [`transport`].
//!
//! - [`codec`]: bytes <-> packets for MQTT 3.1.1 and 5.0; no IO.
//! - [`broker`]: sessions, subscription tree, retained store, QoS state (sans-IO core)
//!   and the tokio server that drives it.
//! - [`client`]: the async client used by the CLI, tests and benchmarks.
//! - [`auth`]: the hooks every security mode plugs into, and the modes themselves.
//! - [`lwa`]: the LWA protocol core, the `lwa-core` workspace crate (`no_std`, sans-IO:
//!   handshake, key schedule, records) with its ring backend, re-exported.
//! - [`transport`]: TCP and TLS (rustls) listeners and streams, the lowest layer; knows no
//!   MQTT, no configuration and no security mode.
//! - [`config`]: the TOML configuration, validated into typed structs; above transport
//!   (it checks TLS settings with [`transport::tls`]), below auth (which sets up each
//!   configured listener: `auth::acceptor`). The broker core takes its limits as the plain
//!   [`broker::Limits`].
//! - [`gateway`]: `mqtt-lwa gateway`, the client side of the broker (every mode,
//!   LWA included) relayed to an upstream MQTT broker or cluster.
//! - [`build_info`]: the commit, compiler, target and profile this build came from.
//!
//! The end-to-end cost experiment (`mqtt-lwa experiment`) is its own crate,
//! `mqtt-lwa-experiments` under experiments/, over this crate's public API.

pub mod auth;
pub mod broker;
pub mod build_info;
pub mod client;
pub mod codec;
pub mod config;
pub mod gateway;
pub mod lwa;
pub mod transport;
