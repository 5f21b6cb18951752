//! Typed decode/encode errors and the reason code each maps to.

use thiserror::Error;

use super::reason::ReasonCode;

/// Why bytes could not be turned into a packet (or a packet into bytes).
///
/// Every variant maps to exactly one MQTT 5.0 reason code through
/// [`CodecError::reason_code`]; the connection driver sends that code in
/// CONNACK or DISCONNECT (5.0) or simply closes the connection (3.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The variable-length Remaining Length used more than four bytes or a non-minimal form.
    #[error("malformed remaining length")]
    MalformedRemainingLength,
    /// A Variable Byte Integer inside the packet (a property length, a
    /// Subscription Identifier) used more than four bytes or a non-minimal form.
    #[error("malformed variable byte integer")]
    MalformedVariableInt,
    /// The packet is larger than the negotiated Maximum Packet Size.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max}")]
    PacketTooLarge {
        /// Size of the whole packet (fixed header included), as far as known.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// Control packet type 0, or 15 (AUTH) on a 3.1.1 connection.
    #[error("invalid control packet type {0}")]
    InvalidPacketType(u8),
    /// Reserved bits of the fixed header were not as the standard requires.
    #[error("invalid fixed header flags {flags:#06b} for packet type {packet_type}")]
    InvalidFlags {
        /// The control packet type.
        packet_type: u8,
        /// The low nibble of the first byte.
        flags: u8,
    },
    /// The first packet on a connection was not CONNECT, or a version was needed and not known.
    #[error("expected CONNECT as the first packet")]
    ExpectedConnect,
    /// The protocol name in CONNECT was not "MQTT".
    #[error("invalid protocol name")]
    InvalidProtocolName,
    /// The protocol level in CONNECT is neither 4 (3.1.1) nor 5 (5.0).
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolVersion(u8),
    /// A string was not well-formed UTF-8, or held U+0000 or another forbidden code point.
    #[error("invalid UTF-8 string")]
    InvalidUtf8,
    /// QoS bits were 3, or a QoS field held a value above 2.
    #[error("invalid QoS")]
    InvalidQoS,
    /// The packet ended before a field it promised.
    #[error("packet truncated: {0}")]
    Truncated(&'static str),
    /// Bytes were left after the last field of the packet.
    #[error("{0} trailing bytes after the packet")]
    TrailingBytes(usize),
    /// A property appeared twice where only one is allowed.
    #[error("duplicate property {0:#04x}")]
    DuplicateProperty(u8),
    /// A property that this packet may not carry, or an unknown property identifier.
    #[error("property {id:#04x} is not allowed in {packet}")]
    InvalidProperty {
        /// Packet name.
        packet: &'static str,
        /// Property identifier.
        id: u8,
    },
    /// A property value out of range (e.g. Receive Maximum 0, Maximum QoS 2).
    #[error("invalid value for property {0:#04x}")]
    InvalidPropertyValue(u8),
    /// A reason code that this packet type may not carry.
    #[error("reason code {0:#04x} is not valid here")]
    InvalidReasonCode(u8),
    /// A PUBLISH topic name with wildcards, or otherwise invalid.
    #[error("invalid topic name")]
    InvalidTopicName,
    /// A subscription topic filter that is not well-formed.
    #[error("invalid topic filter")]
    InvalidTopicFilter,
    /// A field breaks a rule whose violation the standard calls a Malformed
    /// Packet (e.g. a reserved CONNECT flag, reserved subscription option bits).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// A violation of a packet rule not covered by a more specific variant.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A value cannot be encoded (string longer than 65535 bytes, packet over 256 MiB).
    #[error("value too large to encode: {0}")]
    ValueTooLarge(&'static str),
}

impl CodecError {
    /// The MQTT 5.0 reason code that reports this error to the peer.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            CodecError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            CodecError::UnsupportedProtocolVersion(_) => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            CodecError::InvalidTopicName => ReasonCode::TOPIC_NAME_INVALID,
            CodecError::InvalidTopicFilter => ReasonCode::TOPIC_FILTER_INVALID,
            CodecError::ExpectedConnect
            | CodecError::InvalidPacketType(_)
            | CodecError::DuplicateProperty(_)
            | CodecError::InvalidPropertyValue(_)
            | CodecError::Protocol(_) => ReasonCode::PROTOCOL_ERROR,
            CodecError::ValueTooLarge(_) => ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
            CodecError::MalformedRemainingLength
            | CodecError::MalformedVariableInt
            | CodecError::Malformed(_)
            // 5.0 section 2.2.2.2: an identifier not valid for the packet
            // type makes it a Malformed Packet (duplicates and bad values are
            // Protocol Errors).
            | CodecError::InvalidProperty { .. }
            | CodecError::InvalidFlags { .. }
            | CodecError::InvalidProtocolName
            | CodecError::InvalidUtf8
            | CodecError::InvalidQoS
            | CodecError::Truncated(_)
            | CodecError::TrailingBytes(_)
            | CodecError::InvalidReasonCode(_) => ReasonCode::MALFORMED_PACKET,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_reason_code() {
        use CodecError as E;
        let cases = [
            (E::MalformedRemainingLength, 0x81),
            (E::MalformedVariableInt, 0x81),
            (E::PacketTooLarge { size: 2, max: 1 }, 0x95),
            (E::InvalidPacketType(0), 0x82),
            (
                E::InvalidFlags {
                    packet_type: 6,
                    flags: 0,
                },
                0x81,
            ),
            (E::ExpectedConnect, 0x82),
            (E::InvalidProtocolName, 0x81),
            (E::UnsupportedProtocolVersion(3), 0x84),
            (E::InvalidUtf8, 0x81),
            (E::InvalidQoS, 0x81),
            (E::Truncated("x"), 0x81),
            (E::TrailingBytes(1), 0x81),
            (E::DuplicateProperty(0x11), 0x82),
            (
                E::InvalidProperty {
                    packet: "CONNECT",
                    id: 0x23,
                },
                0x81,
            ),
            (E::InvalidPropertyValue(0x21), 0x82),
            (E::InvalidReasonCode(0x92), 0x81),
            (E::InvalidTopicName, 0x90),
            (E::InvalidTopicFilter, 0x8F),
            (E::Malformed("x"), 0x81),
            (E::Protocol("x"), 0x82),
            (E::ValueTooLarge("x"), 0x83),
        ];
        for (error, code) in cases {
            assert_eq!(error.reason_code(), ReasonCode(code), "{error}");
        }
    }
}
