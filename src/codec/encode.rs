//! Packet encoder. (API fixed; body being written.)

use bytes::BytesMut;

use super::error::CodecError;
use super::packet::{Packet, ProtocolVersion};

/// Appends `packet`, encoded for `version`, to `out`.
///
/// 5.0-only fields (properties, reason codes) are dropped for 3.1.1; an AUTH
/// packet cannot be encoded for 3.1.1.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    let _ = (packet, version, out);
    Err(CodecError::Protocol("encoder not yet implemented"))
}

/// Size in bytes of `packet` encoded for `version` (fixed header included).
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let _ = (packet, version);
    0
}
