//! Bytes <-> MQTT packets for 3.1.1 and 5.0. No IO, no tokio.
//!
//! [`Decoder`] is a streaming decoder: feed it whatever the socket produced
//! and take complete packets out; [`encode`] writes one packet.
//!
//! Strict by design: every MUST of both standards that a receiver can check
//! on one packet is checked here (fixed-header flags, remaining length, UTF-8,
//! topic rules, the per-packet property and reason-code tables), and each
//! violation is a [`CodecError`] that names its reason code. Rules that need
//! connection state (topic alias ranges, Receive Maximum, a second CONNECT,
//! packets only a server may send) belong to the connection and the broker.
//!
//! - `decode`: the fixed header, size limit and the version learnt from CONNECT.
//! - `decode_body`: variable header and payload of each packet type.
//! - `decode_fields` / `decode_properties`: data types and 5.0 properties.
//! - `encode` / `encode_properties`: the inverse, with the 5.0 short forms.

pub mod alias;
mod decode;
mod decode_body;
mod decode_fields;
mod decode_properties;
#[cfg(test)]
mod decode_tests;
mod encode;
mod encode_properties;
#[cfg(test)]
mod encode_tests;
pub mod error;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod topic;

pub use decode::Decoder;
pub use encode::{check_max_packet, encode, encoded_len, protected_len};
pub use error::CodecError;
pub use packet::*;
pub use properties::{CompactProperties, Properties};
pub use reason::ReasonCode;

/// The content of a PUBLISH's property block, without its Property Length:
/// what LWA2's metadata protection carries inside a record (LWA2.md 7.1).
/// Refuses properties a PUBLISH may not carry.
pub fn publish_properties_content(p: &Properties) -> Result<bytes::BytesMut, CodecError> {
    use decode_properties::PropertyContext;
    let len = encode_properties::properties_len(p, PropertyContext::Publish)?;
    let mut out = bytes::BytesMut::with_capacity(len + 4);
    encode_properties::put_properties(&mut out, p, len);
    Ok(out.split_off(encode_properties::variable_int_len(len)))
}

/// PUBLISH properties from a block's content (its Property Length already
/// read), checked as the decoder checks a PUBLISH's: the inverse of
/// [`publish_properties_content`].
pub fn publish_properties_from_content(
    content: bytes::Bytes,
) -> Result<CompactProperties, CodecError> {
    if content.is_empty() {
        return Ok(CompactProperties::new());
    }
    decode_properties::decode_block(content, decode_properties::PropertyContext::Publish)
        .map(CompactProperties::from)
}

/// Largest packet the fixed header can describe: 268,435,455 bytes of remaining length.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
