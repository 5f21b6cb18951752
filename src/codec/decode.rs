//! Streaming decoder: bytes in, packets out.
//!
//! The fixed header is checked byte by byte as it arrives (packet type,
//! reserved flags, remaining length, size limit), so a hostile peer is refused
//! before it can make us buffer a body. The body is parsed only once all of
//! it is in the buffer, by [`super::decode_body`].

use bytes::BytesMut;

use super::decode_body::decode_body;
use super::decode_fields::Reader;
use super::error::CodecError;
use super::packet::{Packet, ProtocolVersion, QoS};

/// Streaming MQTT decoder for one connection.
///
/// A server-side decoder starts without a protocol version and accepts only
/// CONNECT, from which it learns the version; a client-side decoder is created
/// with the version it sent. The version is learnt from CONNECT's protocol
/// name and level even when the rest of that CONNECT is malformed, so the
/// server can answer in the client's version.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_packet_size: usize,
    version: Option<ProtocolVersion>,
}

impl Decoder {
    /// A server-side decoder: the first packet must be CONNECT; packets larger
    /// than `max_packet_size` bytes (whole packet) are refused.
    pub fn new(max_packet_size: usize) -> Self {
        Decoder {
            max_packet_size,
            version: None,
        }
    }

    /// A decoder for a known protocol version (client side, or after CONNECT).
    pub fn with_version(max_packet_size: usize, version: ProtocolVersion) -> Self {
        Decoder {
            max_packet_size,
            version: Some(version),
        }
    }

    /// The protocol version in force, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Sets the protocol version (a client learns nothing from CONNACK).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = Some(version);
    }

    /// Changes the maximum accepted packet size.
    pub fn set_max_packet_size(&mut self, max_packet_size: usize) {
        self.max_packet_size = max_packet_size;
    }

    /// Takes one complete packet off the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed (nothing is consumed). On error
    /// the connection must be closed; the buffer's contents are unspecified.
    /// A packet is rejected as too large as soon as its fixed header says so,
    /// before its body arrives.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let packet_type = first >> 4;
        let flags = first & 0x0F;
        if self.version.is_none() && packet_type != CONNECT {
            return Err(CodecError::ExpectedConnect);
        }
        check_fixed_header(packet_type, flags, self.version)?;
        let Some((remaining, len_bytes)) = remaining_length(buf.get(1..).unwrap_or_default())?
        else {
            return Ok(None);
        };
        let header_len = 1 + len_bytes;
        let total = header_len.saturating_add(remaining);
        if total > self.max_packet_size {
            return Err(CodecError::PacketTooLarge {
                size: total,
                max: self.max_packet_size,
            });
        }
        if buf.len() < total {
            // No reserve() for the announced size here: a peer could make us
            // allocate max_packet_size per connection with five bytes.
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        let body = frame.split_off(header_len);
        if self.version.is_none() {
            // Learn the version before the rest of CONNECT is checked, so that
            // a server can still answer a malformed CONNECT with a CONNACK in
            // the version the client speaks.
            self.version = connect_version(&body);
        }
        decode_body(packet_type, flags, self.version, Reader::new(body)).map(Some)
    }
}

const CONNECT: u8 = 1;
const PUBLISH: u8 = 3;
const PUBREL: u8 = 6;
const SUBSCRIBE: u8 = 8;
const UNSUBSCRIBE: u8 = 10;
const AUTH: u8 = 15;

/// Checks the first byte: a defined packet type and the flags the standard
/// prescribes for it (MQTT 5.0 section 2.1.3, 3.1.1 section 2.2.2).
fn check_fixed_header(
    packet_type: u8,
    flags: u8,
    version: Option<ProtocolVersion>,
) -> Result<(), CodecError> {
    match packet_type {
        0 => return Err(CodecError::InvalidPacketType(0)),
        AUTH if version == Some(ProtocolVersion::V311) => {
            return Err(CodecError::InvalidPacketType(AUTH))
        }
        PUBLISH => {
            let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(CodecError::InvalidQoS)?;
            let dup = flags & 0x08 != 0;
            // MQTT-3.3.1-2: DUP must be 0 for QoS 0 messages.
            if dup && qos == QoS::AtMostOnce {
                return Err(CodecError::InvalidFlags { packet_type, flags });
            }
            return Ok(());
        }
        _ => {}
    }
    let expected = match packet_type {
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 0b0010,
        _ => 0,
    };
    if flags != expected {
        return Err(CodecError::InvalidFlags { packet_type, flags });
    }
    Ok(())
}

/// The version a CONNECT body names, if it is one we serve ("MQTT", level 4 or 5).
fn connect_version(body: &[u8]) -> Option<ProtocolVersion> {
    match body.get(..7)? {
        [0, 4, b'M', b'Q', b'T', b'T', 4] => Some(ProtocolVersion::V311),
        [0, 4, b'M', b'Q', b'T', b'T', 5] => Some(ProtocolVersion::V5),
        _ => None,
    }
}

/// Parses the Remaining Length after the first byte.
///
/// Returns `(value, bytes used)`, or `None` when more bytes are needed. At
/// most four bytes; the encoding must be minimal (MQTT-1.5.5-1 in 5.0; 3.1.1
/// defines the same algorithm and no longer form, so we apply it to both).
fn remaining_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, CodecError> {
    let mut value: usize = 0;
    for i in 0..4 {
        let Some(&byte) = bytes.get(i) else {
            return Ok(None);
        };
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(CodecError::MalformedRemainingLength);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(CodecError::MalformedRemainingLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_forms() {
        assert_eq!(remaining_length(&[]), Ok(None));
        assert_eq!(remaining_length(&[0x00]), Ok(Some((0, 1))));
        assert_eq!(remaining_length(&[0x80]), Ok(None));
        assert_eq!(remaining_length(&[0xFF, 0xFF, 0xFF]), Ok(None));
        assert_eq!(remaining_length(&[0xC1, 0x02]), Ok(Some((321, 2))));
        assert_eq!(
            remaining_length(&[0xFF, 0xFF, 0xFF, 0x7F]),
            Ok(Some((super::super::MAX_REMAINING_LENGTH, 4)))
        );
        assert_eq!(
            remaining_length(&[0xFF, 0xFF, 0xFF, 0xFF]),
            Err(CodecError::MalformedRemainingLength)
        );
        assert_eq!(
            remaining_length(&[0x80, 0x00]),
            Err(CodecError::MalformedRemainingLength)
        );
        assert_eq!(
            remaining_length(&[0x81, 0x80, 0x00]),
            Err(CodecError::MalformedRemainingLength)
        );
    }

    #[test]
    fn fixed_header_flags() {
        let v5 = Some(ProtocolVersion::V5);
        let v3 = Some(ProtocolVersion::V311);
        assert!(check_fixed_header(1, 0, None).is_ok());
        assert!(check_fixed_header(1, 1, None).is_err());
        assert!(check_fixed_header(6, 0b0010, v5).is_ok());
        assert!(check_fixed_header(6, 0, v5).is_err());
        assert!(check_fixed_header(8, 0b0010, v5).is_ok());
        assert!(check_fixed_header(8, 0b0011, v5).is_err());
        assert!(check_fixed_header(10, 0b0010, v3).is_ok());
        assert!(check_fixed_header(12, 0b1000, v3).is_err());
        assert!(check_fixed_header(15, 0, v5).is_ok());
        assert_eq!(
            check_fixed_header(15, 0, v3),
            Err(CodecError::InvalidPacketType(15))
        );
        assert_eq!(
            check_fixed_header(0, 0, v3),
            Err(CodecError::InvalidPacketType(0))
        );
        // PUBLISH: any DUP/QoS/RETAIN except QoS 3 and DUP with QoS 0.
        assert!(check_fixed_header(3, 0b1011, v5).is_ok());
        assert!(check_fixed_header(3, 0b0001, v5).is_ok());
        assert_eq!(
            check_fixed_header(3, 0b0110, v5),
            Err(CodecError::InvalidQoS)
        );
        assert!(check_fixed_header(3, 0b1000, v5).is_err());
    }
}
