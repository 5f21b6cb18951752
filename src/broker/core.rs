//! The sans-IO broker core: every MQTT side effect happens here, driven by
//! inputs from the server and answered with [`Output`]s. (API fixed; body
//! being written.)

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::auth::{AccessPolicy, Principal};
use crate::codec::{Connect, Disconnect, Packet, ReasonCode};
use crate::config::Limits;

use super::stats::Stats;

/// Identifies one network connection for the lifetime of the server.
pub type ConnId = u64;

/// An authenticated CONNECT, handed to the core only once the client has
/// proved who it is (for LWA: after its Finished verified).
pub struct ConnectRequest {
    /// The connection.
    pub conn: ConnId,
    /// The CONNECT as received.
    pub connect: Connect,
    /// Who the client is.
    pub principal: Principal,
    /// Access policy of the listener the client came in on.
    pub policy: Arc<dyn AccessPolicy>,
    /// Listener name, for `$SYS/` and logs.
    pub listener: String,
    /// True when CONNACK was already sent (enhanced auth with a further
    /// flight): the core must not send another one.
    pub connack_sent: bool,
    /// Authentication Method and Data to put in CONNACK (when the core sends it).
    pub connack_auth: Option<(String, Bytes)>,
    /// Bytes that payload protection adds to every outgoing PUBLISH payload
    /// (LWA: 16), so that the client's Maximum Packet Size is honoured.
    pub payload_overhead: usize,
}

/// What CONNACK would say for a CONNECT, computed without side effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnackPreview {
    /// Session Present, as it would be sent.
    pub session_present: bool,
    /// Client id the core would assign (empty client id in CONNECT), if any.
    pub assigned_client_id: Option<String>,
}

/// What the core asks the server to do.
// Nearly every output is a `Send`; boxing the packet would add an allocation
// per message for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write this packet to the connection (in order).
    Send {
        /// Destination.
        conn: ConnId,
        /// The packet; PUBLISH payloads are plaintext and topics are full names.
        packet: Packet,
    },
    /// Close the connection, after sending DISCONNECT with this reason when
    /// the client speaks 5.0 and a reason is given.
    Close {
        /// The connection to close.
        conn: ConnId,
        /// DISCONNECT reason for a 5.0 client.
        reason: Option<ReasonCode>,
    },
}

/// All broker state: sessions, subscriptions, retained messages, QoS state.
pub struct BrokerCore {
    limits: Limits,
    stats: Arc<Stats>,
}

impl BrokerCore {
    /// A core with no sessions.
    pub fn new(limits: Limits, stats: Arc<Stats>, now: Instant) -> Self {
        let _ = now;
        BrokerCore { limits, stats }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Shared counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// What CONNACK would say for `connect`; changes nothing.
    pub fn connack_preview(&self, connect: &Connect) -> ConnackPreview {
        let _ = connect;
        ConnackPreview {
            session_present: false,
            assigned_client_id: None,
        }
    }

    /// An authenticated client connects: takeover, clean start, session
    /// resumption, CONNACK (unless already sent), redelivery of queued and
    /// in-flight messages.
    pub fn connect(&mut self, req: ConnectRequest, now: Instant) -> Vec<Output> {
        let _ = (req, now);
        Vec::new()
    }

    /// A packet from a connected client (after CONNECT), with inbound topic
    /// aliases resolved and protected payloads opened.
    pub fn packet(&mut self, conn: ConnId, packet: Packet, now: Instant) -> Vec<Output> {
        let _ = (conn, packet, now);
        Vec::new()
    }

    /// The connection ended: `disconnect` is the client's DISCONNECT if it
    /// sent one (no will unless its reason is 0x04), `None` for a network
    /// error, keep-alive timeout or protocol error (will is published).
    pub fn disconnected(
        &mut self,
        conn: ConnId,
        disconnect: Option<Disconnect>,
        now: Instant,
    ) -> Vec<Output> {
        let _ = (conn, disconnect, now);
        Vec::new()
    }

    /// Time passes: will delays, session and message expiry, `$SYS/` updates.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let _ = now;
        Vec::new()
    }

    /// When the next [`Self::tick`] has something to do, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        None
    }
}
