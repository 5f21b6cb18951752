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

/// Largest packet the fixed header can describe: 268,435,455 bytes of remaining length.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
