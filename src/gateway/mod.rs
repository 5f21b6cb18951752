//! `mqtt-lwa gateway`: LWA (and every other mode) in front of any MQTT
//! broker. Each authenticated client connection is relayed to an upstream
//! broker over a connection of its own; the gateway keeps no session state,
//! so several gateways behind a TCP load balancer scale out on a broker
//! cluster and a client may reconnect through any of them.
//!
//! - [`relay`]: one client's relay, sans-IO: the broker's per-connection
//!   machine ([`crate::broker::connection::Connection`]) on the client side,
//!   ACLs, packet ids passed through, upstream bytes on the other side.
//! - [`upstream`]: opening an upstream connection (failover, TLS, 5.0 or 3.1.1).
//! - [`template`]: the upstream client id and user name of a client.
//! - [`server`]: the tokio side: listeners and one task per client.
//!
//! The gateway sits beside [`crate::broker`], not above it: it reuses the
//! broker's connection machine (authentication, LWA records, aliases,
//! keep-alive) and replaces its core with the upstream broker.

pub mod relay;
pub mod server;
pub mod template;
pub mod upstream;

pub use server::{Gateway, GatewayError, GatewayHandle};
