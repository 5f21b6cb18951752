//! LWA2 (`protocol-spec/LWA2.md`), beside LWA1: the same PSK + ephemeral
//! X25519 handshake and the same ChaCha20-Poly1305 records, with BLAKE3 as
//! the one hash, a shorter method name, no version or length bytes, and no
//! closing broker AUTH: the client's key confirmation is either its AUTH
//! finished or, implicitly, its first sealed record.
//!
//! ```text
//! client: ClientOffer::new(..) -> offer into CONNECT (method "L2")
//!         awaiting_response.on_response(data, session_present)
//!           -> ClientFinished (AUTH 0x19 data, unless the first packet is a sealed PUBLISH) + ClientRecords
//! broker: BrokerResponder::respond(..) -> (BrokerAwaitingConfirmation, response into CONNACK)
//!         on_finished(data) | on_first_record(topic, qos, retain, sealed) -> BrokerRecords
//! ```
//!
//! - [`wire`]: byte layouts of offer, response and finished.
//! - [`schedule`]: transcript hash and BLAKE3 key schedule.
//! - [`handshake`]: client and broker typestates.
//! - [`update`]: key update on a live connection (MQTT 5 re-authentication).
//! - [`metadata`]: the record plaintext under metadata protection (topic and properties inside).

pub mod handshake;
pub mod metadata;
pub mod schedule;
pub mod update;
pub mod wire;

pub use handshake::{
    BrokerAwaitingConfirmation, BrokerResponder, ClientAwaitingResponse, ClientOffer,
};
pub use schedule::KeySchedule;
pub use update::{KeyUpdate, KEY_UPDATE_LEN};

use crate::error::LwaError;
use crate::{MAC_LEN, PUBLIC_KEY_LEN};

/// Authentication Method carried in CONNECT, CONNACK and AUTH (two bytes, LWA2.md 4).
pub const METHOD: &str = "L2";
/// Offer size without the identity: metadata bit and record limit, e_c.
pub const OFFER_FIXED_LEN: usize = 1 + PUBLIC_KEY_LEN;
/// Response size: chosen record limit, e_b, broker_mac.
pub const RESPONSE_LEN: usize = 1 + PUBLIC_KEY_LEN + MAC_LEN;
/// Response bytes covered by the transcript (all but broker_mac).
pub const RESPONSE_WITHOUT_MAC_LEN: usize = 1 + PUBLIC_KEY_LEN;
/// Finished size: client_mac.
pub const FINISHED_LEN: usize = MAC_LEN;

/// Offer size for an identity of `identity_len` bytes.
pub const fn offer_len(identity_len: usize) -> usize {
    OFFER_FIXED_LEN + identity_len
}

/// Checks the Authentication Method of a CONNECT, CONNACK or AUTH that should carry LWA2.
pub fn check_method(method: Option<&str>) -> Result<(), LwaError> {
    match method {
        Some(METHOD) => Ok(()),
        Some(_) => Err(LwaError::MethodMismatch),
        None => Err(LwaError::MissingAuthentication),
    }
}

#[cfg(test)]
mod handshake_tests;
