//! Bytes <-> MQTT packets for 3.1.1 and 5.0. No IO, no tokio.
//!
//! [`Decoder`] is a streaming decoder: feed it whatever the socket produced
//! and take complete packets out; [`encode`] writes one packet.

pub mod packet;
pub mod properties;
pub mod reason;

pub use packet::*;
pub use properties::Properties;
pub use reason::ReasonCode;
