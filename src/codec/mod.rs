//! Bytes <-> MQTT packets for 3.1.1 and 5.0. No IO, no tokio.
//!
//! [`Decoder`] is a streaming decoder: feed it whatever the socket produced
//! and take complete packets out; [`encode`] writes one packet.

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
pub use encode::{encode, encoded_len};
pub use error::CodecError;
pub use packet::*;
pub use properties::Properties;
pub use reason::ReasonCode;

/// Largest packet the fixed header can describe: 268,435,455 bytes of remaining length.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
