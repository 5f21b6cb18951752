//! MQTT control packets as plain Rust values, shared by 3.1.1 and 5.0.
//!
//! One representation for both protocol versions: fields that exist only in
//! 5.0 (properties, reason codes on acknowledgements) are simply left at their
//! defaults when a 3.1.1 peer is involved, and the encoder drops them.

use bytes::Bytes;

use super::properties::{CompactProperties, Properties};
use super::reason::ReasonCode;

/// The protocol level carried in CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte on the wire.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }
}

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// Fire and forget.
    AtMostOnce = 0,
    /// Acknowledged delivery, duplicates possible.
    AtLeastOnce = 1,
    /// Four-step exactly-once delivery.
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses the two QoS bits; 3 is not a QoS.
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Any MQTT control packet.
///
/// Packets move by value through the broker's queues, so the enum is kept
/// small (under 100 bytes on 64-bit targets): the once-per-connection packets
/// that carry full [`Properties`] (CONNECT, CONNACK, AUTH) are boxed, and the
/// others hold [`CompactProperties`], one pointer that is null while empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (client to server).
    Connect(Box<Connect>),
    /// CONNACK (server to client).
    ConnAck(Box<ConnAck>),
    /// PUBLISH (both directions).
    Publish(Publish),
    /// PUBACK, QoS 1 acknowledgement.
    PubAck(PubResponse),
    /// PUBREC, QoS 2 step 2.
    PubRec(PubResponse),
    /// PUBREL, QoS 2 step 3.
    PubRel(PubResponse),
    /// PUBCOMP, QoS 2 step 4.
    PubComp(PubResponse),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT (client to server in 3.1.1; both directions in 5.0).
    Disconnect(Disconnect),
    /// AUTH (5.0 only): enhanced authentication exchange.
    Auth(Box<Auth>),
}

impl Packet {
    /// Control packet type number (1..=15) as in the fixed header.
    pub fn packet_type(&self) -> u8 {
        match self {
            Packet::Connect(_) => 1,
            Packet::ConnAck(_) => 2,
            Packet::Publish(_) => 3,
            Packet::PubAck(_) => 4,
            Packet::PubRec(_) => 5,
            Packet::PubRel(_) => 6,
            Packet::PubComp(_) => 7,
            Packet::Subscribe(_) => 8,
            Packet::SubAck(_) => 9,
            Packet::Unsubscribe(_) => 10,
            Packet::UnsubAck(_) => 11,
            Packet::PingReq => 12,
            Packet::PingResp => 13,
            Packet::Disconnect(_) => 14,
            Packet::Auth(_) => 15,
        }
    }

    /// Human-readable packet name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

/// CONNECT: the first packet a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// 3.1.1 or 5.0.
    pub protocol_version: ProtocolVersion,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    /// Keep-alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier; may be empty (server assigns one).
    pub client_id: String,
    /// Last will, published if the connection ends without DISCONNECT.
    pub will: Option<LastWill>,
    /// User Name.
    pub username: Option<String>,
    /// Password (binary data).
    pub password: Option<Bytes>,
    /// CONNECT properties (5.0).
    pub properties: Properties,
}

/// The will message carried in CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Will Topic.
    pub topic: String,
    /// Will Payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// Will properties (5.0): will delay, expiry, content type, ...
    pub properties: Properties,
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present flag.
    pub session_present: bool,
    /// 5.0 reason code; for 3.1.1 mapped to and from the return codes 0..=5.
    pub reason_code: ReasonCode,
    /// CONNACK properties (5.0).
    pub properties: Properties,
}

/// PUBLISH: an application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag: this may be a redelivery.
    pub dup: bool,
    /// QoS level.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic Name; may be empty in 5.0 when a Topic Alias property is set.
    pub topic: String,
    /// Packet Identifier; 0 for QoS 0 (and never 0 otherwise).
    pub packet_id: u16,
    /// PUBLISH properties (5.0).
    pub properties: CompactProperties,
    /// Application payload.
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share this shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResponse {
    /// Packet Identifier being acknowledged.
    pub packet_id: u16,
    /// Reason code (5.0); Success for 3.1.1.
    pub reason_code: ReasonCode,
    /// Properties (5.0).
    pub properties: CompactProperties,
}

impl PubResponse {
    /// A successful acknowledgement with no properties.
    pub fn success(packet_id: u16) -> Self {
        PubResponse {
            packet_id,
            reason_code: ReasonCode::SUCCESS,
            properties: CompactProperties::new(),
        }
    }
}

/// Retain Handling subscription option (5.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// Send retained messages only if the subscription did not exist.
    SendIfNew = 1,
    /// Never send retained messages for this subscribe.
    DoNotSend = 2,
}

/// Subscription options byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// Maximum QoS granted for this subscription.
    pub qos: QoS,
    /// No Local (5.0): do not deliver this client's own publications.
    pub no_local: bool,
    /// Retain As Published (5.0): keep the RETAIN flag when forwarding.
    pub retain_as_published: bool,
    /// Retain Handling (5.0).
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with only a QoS set (the 3.1.1 case).
    pub fn qos(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

/// One topic filter in a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// Topic Filter, possibly with wildcards or a `$share/` prefix.
    pub filter: String,
    /// Options for this filter.
    pub options: SubscriptionOptions,
}

/// SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet Identifier.
    pub packet_id: u16,
    /// At least one filter.
    pub filters: Vec<SubscribeFilter>,
    /// Properties (5.0): subscription identifier, user properties.
    pub properties: CompactProperties,
}

/// SUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet Identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// One per filter: granted QoS (0x00..0x02) or a failure code (>= 0x80).
    pub reason_codes: Vec<ReasonCode>,
    /// Properties (5.0).
    pub properties: CompactProperties,
}

/// UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet Identifier.
    pub packet_id: u16,
    /// At least one filter.
    pub filters: Vec<String>,
    /// Properties (5.0).
    pub properties: CompactProperties,
}

/// UNSUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet Identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// One per filter (5.0); empty for 3.1.1.
    pub reason_codes: Vec<ReasonCode>,
    /// Properties (5.0).
    pub properties: CompactProperties,
}

/// DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Reason code (5.0); Normal disconnection for 3.1.1.
    pub reason_code: ReasonCode,
    /// Properties (5.0).
    pub properties: CompactProperties,
}

impl Disconnect {
    /// A DISCONNECT with the given reason and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Disconnect {
            reason_code,
            properties: CompactProperties::new(),
        }
    }
}

/// AUTH (5.0 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Success (0x00), Continue authentication (0x18) or Re-authenticate (0x19).
    pub reason_code: ReasonCode,
    /// Properties: Authentication Method and Data, reason string, user properties.
    pub properties: Properties,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets are moved by value through the broker's queues: every move
    /// copies the whole enum. It was 840 bytes while `Properties` was inline.
    #[test]
    fn packets_stay_small_enough_to_move_by_value() {
        let size = size_of::<Packet>();
        eprintln!(
            "size_of::<Packet>() = {size}, Publish {}",
            size_of::<Publish>()
        );
        assert!(size <= 12 * size_of::<usize>(), "Packet is {size} bytes");
    }
}
