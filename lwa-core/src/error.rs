//! Everything that can go wrong in LWA1. Which MQTT reason code each failure
//! becomes (LWA.md section 9) is decided in one place by the MQTT glue
//! (`mqtt_lwa::auth::lwa::LwaReasonCode`), since this crate knows no MQTT types.

use core::fmt;

use crate::record::Direction;

/// Which LWA message a malformed-input error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireMessage {
    /// CONNECT Authentication Data.
    Offer,
    /// CONNACK Authentication Data.
    Response,
    /// AUTH (Re-authenticate) Authentication Data.
    Finished,
    /// An LWA2 key update request (AUTH 0x19) or response (AUTH 0x00).
    KeyUpdate,
    /// The plaintext of an LWA2 record under metadata protection.
    Metadata,
}

impl fmt::Display for WireMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireMessage::Offer => "offer",
            WireMessage::Response => "response",
            WireMessage::Finished => "finished",
            WireMessage::KeyUpdate => "key update",
            WireMessage::Metadata => "protected metadata",
        })
    }
}

/// What exactly is wrong with a malformed LWA message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireDefect {
    /// Fewer bytes than the layout needs.
    Truncated,
    /// Bytes left over after the layout.
    TrailingBytes,
    /// id_len is 0.
    EmptyIdentity,
    /// The identity is longer than 255 bytes (only possible when building).
    IdentityTooLong,
    /// The identity is not UTF-8 or contains U+0000.
    IdentityNotUtf8,
    /// A record_limit_log2 outside 1..=48.
    RecordLimitOutOfRange,
    /// The broker chose a larger record limit than the client offered.
    RecordLimitAboveOffer,
    /// The response's metadata protection bit differs from the offer's.
    MetadataFlagMismatch,
    /// Protected metadata with an empty topic.
    EmptyTopic,
    /// Protected metadata whose topic is not UTF-8.
    TopicNotUtf8,
    /// A Variable Byte Integer in more bytes than it needs, or in more than four.
    NotMinimal,
}

impl fmt::Display for WireDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireDefect::Truncated => "truncated",
            WireDefect::TrailingBytes => "trailing bytes",
            WireDefect::EmptyIdentity => "empty identity",
            WireDefect::IdentityTooLong => "identity longer than 255 bytes",
            WireDefect::IdentityNotUtf8 => "identity is not valid UTF-8 without U+0000",
            WireDefect::RecordLimitOutOfRange => "record_limit_log2 outside 1..=48",
            WireDefect::RecordLimitAboveOffer => "chosen record limit above the offered one",
            WireDefect::MetadataFlagMismatch => {
                "metadata protection granted differently from the offer"
            }
            WireDefect::EmptyTopic => "empty topic",
            WireDefect::TopicNotUtf8 => "topic is not valid UTF-8",
            WireDefect::NotMinimal => "variable byte integer not in its shortest form",
        })
    }
}

/// An LWA1 failure; [`LwaError::reason_code`] is what goes into CONNACK or DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LwaError {
    /// The Authentication Method is not "LWA1".
    #[error("authentication method is not LWA1")]
    MethodMismatch,
    /// The peer sent no Authentication Method/Data where LWA1 is required (downgrade).
    #[error("peer did not use LWA1 authentication (downgrade refused)")]
    MissingAuthentication,
    /// The version byte of an offer or response is not 0x01.
    #[error("unsupported LWA version byte 0x{0:02x}")]
    UnsupportedVersion(u8),
    /// An offer, response or finished does not follow its byte layout.
    #[error("malformed LWA {0}: {1}")]
    Malformed(WireMessage, WireDefect),
    /// LWA1 binds the Client Identifier, so it cannot be left for the broker to assign.
    #[error("LWA1 needs a non-empty Client Identifier")]
    EmptyClientId,
    /// A local parameter (identity, record limit, field length) is out of range.
    #[error("invalid local LWA parameter: {0}")]
    InvalidParameter(&'static str),
    /// The peer's X25519 share gave the all-zero shared secret (low-order point).
    #[error("peer X25519 share is a low-order point")]
    LowOrderPoint,
    /// The broker's MAC did not verify.
    #[error("broker authentication failed (wrong PSK or impostor broker)")]
    BrokerAuthFailed,
    /// The client's MAC did not verify (wrong PSK or unknown identity; deliberately one error).
    #[error("client authentication failed (wrong PSK or unknown identity)")]
    ClientAuthFailed,
    /// A record failed to open (forged, replayed, reordered, truncated, or context changed).
    #[error("{direction} record {counter} failed to open")]
    RecordOpenFailed {
        /// The direction of the opener.
        direction: Direction,
        /// The counter the opener expected.
        counter: u64,
    },
    /// An earlier record failed to open; the connection must be closed.
    #[error("{0} opener refuses records after a failure")]
    OpenerPoisoned(Direction),
    /// 2^record_limit_log2 records were sealed or opened in this direction.
    #[error("{0} record limit reached: reconnect for fresh keys")]
    RecordLimitReached(Direction),
    /// An LWA2 key update request or response did not verify (forged, or the
    /// two sides counted different numbers of records).
    #[error("LWA2 key update did not verify")]
    KeyUpdateFailed,
    /// An LWA2 key update response without a request, or a second request
    /// before the first was answered.
    #[error("LWA2 key update out of order")]
    UnexpectedKeyUpdate,
}

impl LwaError {
    /// Stable snake_case name used by the test vectors (`expected_error`).
    pub fn vector_name(&self) -> &'static str {
        match self {
            LwaError::MethodMismatch => "method_mismatch",
            LwaError::MissingAuthentication => "missing_authentication",
            LwaError::UnsupportedVersion(_) => "unsupported_version",
            LwaError::Malformed(..) => "malformed",
            LwaError::EmptyClientId => "empty_client_id",
            LwaError::InvalidParameter(_) => "invalid_parameter",
            LwaError::LowOrderPoint => "low_order_point",
            LwaError::BrokerAuthFailed => "broker_auth_failed",
            LwaError::ClientAuthFailed => "client_auth_failed",
            LwaError::RecordOpenFailed { .. } => "record_open_failed",
            LwaError::OpenerPoisoned(_) => "opener_poisoned",
            LwaError::RecordLimitReached(_) => "record_limit_reached",
            LwaError::KeyUpdateFailed => "key_update_failed",
            LwaError::UnexpectedKeyUpdate => "unexpected_key_update",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn client_side_broker_failure_message_is_the_documented_one() {
        assert_eq!(
            LwaError::BrokerAuthFailed.to_string(),
            "broker authentication failed (wrong PSK or impostor broker)"
        );
    }
}
