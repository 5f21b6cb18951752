//! LWA1, the lightweight PSK + ephemeral X25519 handshake carried in MQTT 5
//! enhanced authentication, and the ChaCha20-Poly1305 records that protect
//! every PUBLISH payload afterwards. `protocol-spec/LWA.md` is normative.
//!
//! `no_std` with `alloc`, sans-IO and free of MQTT types: everything here
//! consumes and produces bytes and values, all randomness is injected, and
//! the few MQTT fields LWA1 binds enter as plain values (the QoS of a record
//! is its byte, 0..=2). Test vectors, fuzzers, the `mqtt-lwa` broker and a
//! microcontroller run the same code.
//!
//! - [`wire`]: byte layouts of offer, response and finished.
//! - [`schedule`]: connect context, transcript hash and HKDF key schedule.
//! - [`handshake`]: client and broker typestates (misuse does not compile).
//! - [`record`]: per-direction record sealing and opening, in place.
//! - [`counter`]: the implicit record counter and its limit.
//! - [`error`]: [`LwaError`]; mapping it to MQTT reason codes is the MQTT glue's job.
//! - [`crypto`]: the [`Crypto`] trait every primitive goes through.
//! - [`backend`]: its implementations, RustCrypto (default, portable) and ring (feature `ring`).
//! - [`lwa2`]: LWA2 (`protocol-spec/LWA2.md`), beside LWA1: BLAKE3 key schedule, shorter
//!   messages, implicit client confirmation, key update on a live connection
//!   ([`lwa2::KeyUpdate`]); same records ([`crypto::Blake3`] is its hash).
//!
//! The protocol types are generic over the backend, defaulting to
//! [`RustCrypto`]; [`backend::rustcrypto`] and [`backend::ring`] name them
//! with the backend fixed:
//!
//! ```text
//! client: ClientOffer::new(identity, &psk, &ConnectContext { .. }, limit, &mut rng)
//!           -> offer_bytes into CONNECT; awaiting_response.on_response(data, session_present)
//!           -> ClientFinished (AUTH 0x19 data) + ClientRecords { sealer, opener }
//! broker: BrokerResponder::respond(offer, &context, session_present, psk_lookup, &mut rng)
//!           -> (BrokerAwaitingFinished, response into CONNACK)
//!         BrokerAwaitingFinished::on_finished(data) -> BrokerRecords { identity, sealer, opener }
//! records: RecordSealer::seal_in_place(topic, qos, retain, buf) -> tag
//!          RecordOpener::open_in_place(topic, qos, retain, sealed) -> plaintext length
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod backend;
pub mod counter;
pub mod crypto;
pub mod error;
pub mod handshake;
pub mod lwa2;
pub mod record;
pub mod schedule;
pub mod wire;

pub use backend::rustcrypto::RustCrypto;
pub use counter::RecordCounter;
pub use crypto::{Crypto, CryptoError, RecordKey};
pub use error::{LwaError, WireDefect, WireMessage};
pub use handshake::{
    BrokerAwaitingFinished, BrokerRecords, BrokerResponder, ClientAwaitingResponse, ClientFinished,
    ClientOffer, ClientRecords,
};
pub use record::{Direction, RecordOpener, RecordSealer};
pub use schedule::{ConnectContext, KeySchedule, Psk, WillContext};

/// Authentication Method carried in CONNECT, CONNACK and AUTH.
pub const METHOD: &str = "LWA1";
/// Version byte that starts offer and response.
pub const VERSION: u8 = 0x01;
/// Bytes a sealed record adds to a PUBLISH payload (the Poly1305 tag).
pub const RECORD_OVERHEAD: usize = 16;
/// Smallest allowed `record_limit_log2`.
pub const MIN_RECORD_LIMIT_LOG2: u8 = 1;
/// Largest allowed `record_limit_log2`.
pub const MAX_RECORD_LIMIT_LOG2: u8 = 48;
/// Longest identity in bytes (its length is one byte on the wire).
pub const MAX_IDENTITY_LEN: usize = 255;
/// Offer size without the identity: version, limit, id_len, e_c.
pub const OFFER_FIXED_LEN: usize = 3 + PUBLIC_KEY_LEN;
/// Response size: version, chosen limit, e_b, broker_mac.
pub const RESPONSE_LEN: usize = 2 + PUBLIC_KEY_LEN + MAC_LEN;
/// Finished size: client_mac.
pub const FINISHED_LEN: usize = MAC_LEN;
/// X25519 public key size.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Truncated HMAC-SHA256 size used for broker_mac and client_mac.
pub const MAC_LEN: usize = 16;

/// Offer size for an identity of `identity_len` bytes.
pub const fn offer_len(identity_len: usize) -> usize {
    OFFER_FIXED_LEN + identity_len
}

/// Checks the Authentication Method of a CONNECT, CONNACK or AUTH that should carry LWA1.
///
/// `None` is a downgrade attempt when LWA is required, hence an authentication failure.
pub fn check_method(method: Option<&str>) -> Result<(), LwaError> {
    match method {
        Some(METHOD) => Ok(()),
        Some(_) => Err(LwaError::MethodMismatch),
        None => Err(LwaError::MissingAuthentication),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_design() {
        assert_eq!(offer_len(9), 44);
        assert_eq!(RESPONSE_LEN, 50);
        assert_eq!(FINISHED_LEN, 16);
    }

    #[test]
    fn method_check() {
        assert!(check_method(Some("LWA1")).is_ok());
        assert_eq!(
            check_method(Some("LWA2")).unwrap_err(),
            LwaError::MethodMismatch
        );
        assert_eq!(
            check_method(None).unwrap_err(),
            LwaError::MissingAuthentication
        );
    }
}
