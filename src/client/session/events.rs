//! What the application hands the session and what it gets back: requests,
//! outcomes, received messages, events and errors.

use bytes::Bytes;

use crate::auth::ClientAuthError;
use crate::codec::{Properties, QoS, ReasonCode, SubAck, UnsubAck};

/// Identifies one application request (publish, subscribe, unsubscribe) in events.
pub type RequestId = u64;

/// An application message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// Full topic name (the session chooses topic aliases itself).
    pub topic: String,
    /// Plaintext payload (sealed by the session when LWA protection is active).
    pub payload: Bytes,
    /// QoS level.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// PUBLISH properties (5.0); a Topic Alias set here is ignored.
    pub properties: Properties,
}

/// How a publish flow ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Packet identifier used (0 for QoS 0).
    pub packet_id: u16,
    /// PUBACK reason (QoS 1), PUBREC reason when it failed or PUBCOMP/PUBREC
    /// reason (QoS 2), Success for QoS 0 and 3.1.1.
    pub reason_code: ReasonCode,
    /// Properties of the final acknowledgement (reason string, user properties).
    pub properties: Properties,
}

/// An application message received from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Full topic name (topic alias resolved).
    pub topic: String,
    /// Payload, opened when LWA protection is active.
    pub payload: Bytes,
    /// QoS the broker delivered at.
    pub qos: QoS,
    /// RETAIN flag as delivered.
    pub retain: bool,
    /// DUP flag as delivered.
    pub dup: bool,
    /// PUBLISH properties (5.0), Topic Alias removed.
    pub properties: Properties,
}

/// Something the application should hear about.
#[derive(Debug)]
pub enum Event {
    /// An application message arrived.
    Message(Message),
    /// A publish flow completed (for QoS 0: the packet was queued for sending).
    Published {
        /// The request.
        id: RequestId,
        /// Its outcome.
        outcome: PublishOutcome,
    },
    /// SUBACK for a subscribe request.
    Subscribed {
        /// The request.
        id: RequestId,
        /// The broker's answer.
        suback: SubAck,
    },
    /// UNSUBACK for an unsubscribe request.
    Unsubscribed {
        /// The request.
        id: RequestId,
        /// The broker's answer.
        unsuback: UnsubAck,
    },
    /// A request that will not complete.
    Failed {
        /// The request.
        id: RequestId,
        /// Why.
        error: SessionError,
    },
}

/// Why the session refused a request or ended the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// A request arrived while no connection was established.
    #[error("not connected")]
    NotConnected,
    /// CONNACK carried a failure reason code (and maybe a Reason String).
    #[error("connection refused: {code}{}", .1.as_ref().map(|s| format!(": {s}")).unwrap_or_default(), code = .0)]
    Refused(ReasonCode, Option<String>),
    /// The client authenticator rejected the broker's answer.
    #[error("authentication failed: {0}")]
    Auth(ClientAuthError),
    /// The broker broke a protocol rule; `reason` is sent in DISCONNECT (5.0).
    #[error("protocol error by the broker ({reason}): {detail}")]
    Protocol {
        /// Reason code for our DISCONNECT.
        reason: ReasonCode,
        /// What went wrong.
        detail: &'static str,
    },
    /// The broker sent DISCONNECT (5.0).
    #[error("disconnected by the broker: {reason}{}", reason_string.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
    Disconnected {
        /// Its reason code.
        reason: ReasonCode,
        /// Its Reason String, if any.
        reason_string: Option<String>,
    },
    /// The connection ended (socket closed) while a request was outstanding.
    #[error("connection lost")]
    ConnectionLost,
    /// No PINGRESP arrived in time: the broker or the path is dead.
    #[error("keep-alive timeout: the broker did not answer PINGREQ")]
    KeepAliveTimeout,
    /// The request is not valid (topic, QoS or retain not allowed, empty list).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The packet would exceed the broker's Maximum Packet Size.
    #[error("packet of {size} bytes exceeds the broker's maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Encoded size.
        size: usize,
        /// The broker's limit.
        max: usize,
    },
    /// All 65535 packet identifiers are in use.
    #[error("no free packet identifier")]
    NoPacketId,
    /// Payload protection (LWA) refused to seal a payload.
    #[error("payload protection failed: {0}")]
    Protection(ReasonCode),
}
