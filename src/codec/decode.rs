//! Streaming decoder: bytes in, packets out. (API fixed; body being written.)

use bytes::BytesMut;

use super::error::CodecError;
use super::packet::{Packet, ProtocolVersion};

/// Streaming MQTT decoder for one connection.
///
/// A server-side decoder starts without a protocol version and accepts only
/// CONNECT, from which it learns the version; a client-side decoder is created
/// with the version it sent.
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
        let _ = (buf, self.max_packet_size);
        Err(CodecError::Protocol("decoder not yet implemented"))
    }
}
