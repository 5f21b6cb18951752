//! The one place that maps each LWA1 failure to the MQTT reason code the spec
//! prescribes (LWA.md section 9). `lwa-core` knows no MQTT types, so the
//! mapping lives here, in the MQTT glue, as a trait on its error type.

use crate::codec::ReasonCode;
use crate::lwa::{LwaError, WireMessage};

/// The MQTT 5 reason codes of an [`LwaError`].
pub trait LwaReasonCode {
    /// The MQTT 5 reason code for CONNACK (broker, before CONNACK) or DISCONNECT (after it).
    fn reason_code(&self) -> ReasonCode;

    /// The reason code when this error ends the connection with DISCONNECT
    /// (after CONNACK; LWA.md section 9). MQTT 5 allows neither 0x8C nor
    /// 0x85 in DISCONNECT (section 3.14.2.1), so the errors that CONNACK
    /// reports with those codes (a peer that does not speak LWA1 as we do,
    /// determined from public data only) are 0x82 Protocol Error here; the
    /// cryptographic failures stay 0x87, so the two classes stay apart.
    fn disconnect_reason_code(&self) -> ReasonCode;
}

impl LwaReasonCode for LwaError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            // An opened record that carries no PUBLISH header (LWA2.md 7.1):
            // after CONNACK, on a connection that is up.
            LwaError::Malformed(WireMessage::Metadata, _) => ReasonCode::MALFORMED_PACKET,
            LwaError::MethodMismatch
            | LwaError::UnsupportedVersion(_)
            | LwaError::Malformed(..) => ReasonCode::BAD_AUTHENTICATION_METHOD,
            // Only after CONNACK, on a connection that is up.
            LwaError::UnexpectedKeyUpdate => ReasonCode::PROTOCOL_ERROR,
            LwaError::EmptyClientId => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            LwaError::InvalidParameter(_) | LwaError::RecordLimitReached(_) => {
                ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
            }
            LwaError::MissingAuthentication
            | LwaError::LowOrderPoint
            | LwaError::BrokerAuthFailed
            | LwaError::ClientAuthFailed
            | LwaError::RecordOpenFailed { .. }
            | LwaError::OpenerPoisoned(_)
            | LwaError::KeyUpdateFailed => ReasonCode::NOT_AUTHORIZED,
        }
    }

    fn disconnect_reason_code(&self) -> ReasonCode {
        match self.reason_code() {
            ReasonCode::BAD_AUTHENTICATION_METHOD | ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => {
                ReasonCode::PROTOCOL_ERROR
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lwa::{check_method, Direction, WireDefect, WireMessage};

    #[test]
    fn disconnect_reason_codes_are_allowed_in_disconnect() {
        let cases = [
            (LwaError::MethodMismatch, 0x82),
            (LwaError::UnsupportedVersion(2), 0x82),
            (
                LwaError::Malformed(WireMessage::Offer, WireDefect::Truncated),
                0x82,
            ),
            (LwaError::EmptyClientId, 0x82),
            (LwaError::BrokerAuthFailed, 0x87),
            (LwaError::ClientAuthFailed, 0x87),
            (LwaError::MissingAuthentication, 0x87),
            // LWA2 key update (LWA2.md 8.2): a malformed one is 0x82 like any message.
            (
                LwaError::Malformed(WireMessage::KeyUpdate, WireDefect::TrailingBytes),
                0x82,
            ),
            (LwaError::KeyUpdateFailed, 0x87),
            (LwaError::UnexpectedKeyUpdate, 0x82),
        ];
        for (err, code) in cases {
            assert_eq!(err.disconnect_reason_code(), ReasonCode(code), "{err}");
        }
    }

    #[test]
    fn reason_codes_follow_the_spec_table() {
        let cases = [
            (LwaError::MethodMismatch, 0x8C),
            (LwaError::UnsupportedVersion(2), 0x8C),
            (
                LwaError::Malformed(WireMessage::Offer, WireDefect::Truncated),
                0x8C,
            ),
            (LwaError::EmptyClientId, 0x85),
            (LwaError::MissingAuthentication, 0x87),
            (LwaError::LowOrderPoint, 0x87),
            (LwaError::BrokerAuthFailed, 0x87),
            (LwaError::ClientAuthFailed, 0x87),
            (
                LwaError::RecordOpenFailed {
                    direction: Direction::ClientToBroker,
                    counter: 3,
                },
                0x87,
            ),
            (LwaError::OpenerPoisoned(Direction::BrokerToClient), 0x87),
            (
                LwaError::RecordLimitReached(Direction::BrokerToClient),
                0x83,
            ),
            (LwaError::InvalidParameter("x"), 0x83),
        ];
        for (err, code) in cases {
            assert_eq!(err.reason_code(), ReasonCode(code), "{err}");
        }
    }

    #[test]
    fn method_check_codes() {
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
