//! LWA1, the lightweight PSK + ephemeral X25519 handshake carried in MQTT 5
//! enhanced authentication, and the ChaCha20-Poly1305 records that protect
//! every PUBLISH payload afterwards. `protocol-spec/LWA.md` is normative.
//!
//! Sans-IO: everything here consumes and produces bytes and values, and all
//! randomness is injected, so test vectors and fuzzers drive the same code
//! the broker and client run.
//!
//! - [`wire`]: byte layouts of offer, response and finished.
//! - [`schedule`]: connect context, transcript hash and HKDF key schedule.
//! - [`handshake`]: client and broker typestates (misuse does not compile).
//! - [`record`]: per-direction record sealing and opening.
//! - [`counter`]: the implicit record counter and its limit.
//! - [`error`]: [`LwaError`] and its MQTT reason codes.
//!
//! Integration with `crate::auth` (LWA.md section 6):
//!
//! ```text
//! broker: ConnectAuthenticator::authenticate
//!           check_method(connect.properties.authentication_method)?
//!           BrokerResponder::respond(auth_data, &ConnectContext::from_connect(&connect),
//!                                    session_present /* read-only lookup */, psk_lookup, &mut OsRng)
//!           -> AuthDecision::Pending { connack_auth: (METHOD, response), continuation }
//!         PendingAuth::finish(auth_data) = BrokerAwaitingFinished::on_finished(auth_data)
//!           -> BrokerRecords { identity, sealer, opener } -> Principal + PayloadProtection
//! client: ClientOffer::new(identity, &psk, &ConnectContext::from_connect(&connect), limit, &mut OsRng)
//!         CONNACK: check_method(..)?; awaiting_response.on_response(data, connack.session_present)
//!           -> AUTH 0x19 with finished_bytes, then ClientRecords { sealer, opener }
//! PayloadProtection::seal/open = RecordSealer::seal / RecordOpener::open,
//!   errors via LwaError::reason_code(), overhead() = RECORD_OVERHEAD.
//! ```

#![warn(missing_docs)]
pub mod counter;
pub mod error;
pub mod handshake;
pub mod record;
pub mod schedule;
pub mod wire;

pub use counter::RecordCounter;
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
    use crate::codec::ReasonCode;

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
            check_method(Some("LWA2")).unwrap_err().reason_code(),
            ReasonCode::BAD_AUTHENTICATION_METHOD
        );
        assert_eq!(
            check_method(None).unwrap_err().reason_code(),
            ReasonCode::NOT_AUTHORIZED
        );
    }
}
