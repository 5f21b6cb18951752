//! Byte layouts of the three LWA2 messages (LWA2.md section 4):
//!
//! ```text
//! offer    = M(1 bit) | record_limit_log2(7 bits) | e_c(32) | identity(1..=255)
//! response = M(1 bit) | chosen_record_limit_log2(7 bits) | e_b(32) | broker_mac(16)
//! finished = client_mac(16)
//! ```
//!
//! `M` (the top bit of the first byte) asks for, and in the response grants,
//! metadata protection (LWA2.md 7.1): the topic and the PUBLISH properties
//! travel inside the record.
//!
//! No version byte (the Authentication Method names the version) and no
//! identity length (the identity is what follows e_c in the Authentication
//! Data). Parsing checks layout only; keys and MACs are judged by the handshake.

use alloc::vec::Vec;

use super::{OFFER_FIXED_LEN, RESPONSE_LEN, RESPONSE_WITHOUT_MAC_LEN};
use crate::error::{LwaError, WireDefect, WireMessage};
use crate::wire::validate_identity;
use crate::{
    MAC_LEN, MAX_IDENTITY_LEN, MAX_RECORD_LIMIT_LOG2, MIN_RECORD_LIMIT_LOG2, PUBLIC_KEY_LEN,
};

pub use crate::wire::Finished;

/// The client's first flight, carried as CONNECT Authentication Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer<'a> {
    /// Proposed record limit exponent (1..=48).
    pub record_limit_log2: u8,
    /// Metadata protection asked for (bit `M`).
    pub protect_metadata: bool,
    /// The client's ephemeral X25519 public key e_c.
    pub ephemeral: [u8; PUBLIC_KEY_LEN],
    /// The client's LWA identity (1..=255 bytes of UTF-8, no U+0000).
    pub identity: &'a str,
}

/// The broker's answer, carried as CONNACK Authentication Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Chosen record limit exponent: min(offered, broker's).
    pub record_limit_log2: u8,
    /// Metadata protection granted (bit `M`): always the offer's.
    pub protect_metadata: bool,
    /// The broker's ephemeral X25519 public key e_b.
    pub ephemeral: [u8; PUBLIC_KEY_LEN],
    /// BLAKE3-keyed(k_broker_mac, TH) truncated to 16 bytes.
    pub broker_mac: [u8; MAC_LEN],
}

/// The top bit of the first byte of offer and response: metadata protection.
pub const METADATA_FLAG: u8 = 0x80;

/// Splits the first byte of an offer or response into (M, record limit exponent).
fn split_first_byte(message: WireMessage, byte: u8) -> Result<(bool, u8), LwaError> {
    let limit = check_limit(message, byte & !METADATA_FLAG)?;
    Ok((byte & METADATA_FLAG != 0, limit))
}

/// The first byte of an offer or response.
fn first_byte(protect_metadata: bool, limit: u8) -> u8 {
    limit | if protect_metadata { METADATA_FLAG } else { 0 }
}

fn check_limit(message: WireMessage, limit: u8) -> Result<u8, LwaError> {
    if (MIN_RECORD_LIMIT_LOG2..=MAX_RECORD_LIMIT_LOG2).contains(&limit) {
        Ok(limit)
    } else {
        Err(LwaError::Malformed(
            message,
            WireDefect::RecordLimitOutOfRange,
        ))
    }
}

fn key32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

impl<'a> Offer<'a> {
    /// Parses CONNECT Authentication Data.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LwaError> {
        let m = WireMessage::Offer;
        if bytes.len() < OFFER_FIXED_LEN {
            return Err(LwaError::Malformed(m, WireDefect::Truncated));
        }
        if bytes.len() == OFFER_FIXED_LEN {
            return Err(LwaError::Malformed(m, WireDefect::EmptyIdentity));
        }
        if bytes.len() > OFFER_FIXED_LEN + MAX_IDENTITY_LEN {
            return Err(LwaError::Malformed(m, WireDefect::TrailingBytes));
        }
        let (&limit, rest) = bytes
            .split_first()
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let ephemeral = rest
            .get(..PUBLIC_KEY_LEN)
            .and_then(key32)
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let id_bytes = rest
            .get(PUBLIC_KEY_LEN..)
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let identity = core::str::from_utf8(id_bytes)
            .map_err(|_| LwaError::Malformed(m, WireDefect::IdentityNotUtf8))?;
        validate_identity(identity).map_err(|d| LwaError::Malformed(m, d))?;
        let (protect_metadata, record_limit_log2) = split_first_byte(m, limit)?;
        Ok(Offer {
            record_limit_log2,
            protect_metadata,
            ephemeral,
            identity,
        })
    }

    /// Serialises the offer; fails on an identity or limit the layout cannot carry.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LwaError> {
        validate_identity(self.identity)
            .map_err(|_| LwaError::InvalidParameter("identity must be 1..=255 bytes, no U+0000"))?;
        check_limit(WireMessage::Offer, self.record_limit_log2)
            .map_err(|_| LwaError::InvalidParameter("record_limit_log2 outside 1..=48"))?;
        let mut out = Vec::with_capacity(OFFER_FIXED_LEN + self.identity.len());
        out.push(first_byte(self.protect_metadata, self.record_limit_log2));
        out.extend_from_slice(&self.ephemeral);
        out.extend_from_slice(self.identity.as_bytes());
        Ok(out)
    }
}

impl Response {
    /// Parses CONNACK Authentication Data.
    pub fn parse(bytes: &[u8]) -> Result<Self, LwaError> {
        let m = WireMessage::Response;
        match bytes.len().cmp(&RESPONSE_LEN) {
            core::cmp::Ordering::Less => return Err(LwaError::Malformed(m, WireDefect::Truncated)),
            core::cmp::Ordering::Greater => {
                return Err(LwaError::Malformed(m, WireDefect::TrailingBytes))
            }
            core::cmp::Ordering::Equal => {}
        }
        let (&limit, rest) = bytes
            .split_first()
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let ephemeral = rest
            .get(..PUBLIC_KEY_LEN)
            .and_then(key32)
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let broker_mac = bytes
            .get(RESPONSE_WITHOUT_MAC_LEN..)
            .and_then(|s| <[u8; MAC_LEN]>::try_from(s).ok())
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let (protect_metadata, record_limit_log2) = split_first_byte(m, limit)?;
        Ok(Response {
            record_limit_log2,
            protect_metadata,
            ephemeral,
            broker_mac,
        })
    }

    /// The transcript part: M and chosen limit | e_b.
    pub fn without_mac(&self) -> [u8; RESPONSE_WITHOUT_MAC_LEN] {
        let mut out = [0u8; RESPONSE_WITHOUT_MAC_LEN];
        out[0] = first_byte(self.protect_metadata, self.record_limit_log2);
        out[1..].copy_from_slice(&self.ephemeral);
        out
    }

    /// Serialises the response.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RESPONSE_LEN);
        out.extend_from_slice(&self.without_mac());
        out.extend_from_slice(&self.broker_mac);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offer_bytes() -> Vec<u8> {
        Offer {
            record_limit_log2: 20,
            protect_metadata: false,
            ephemeral: [7; 32],
            identity: "sensor-01",
        }
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn metadata_flag_is_the_top_bit_of_the_first_byte() {
        let o = Offer {
            record_limit_log2: 20,
            protect_metadata: true,
            ephemeral: [7; 32],
            identity: "sensor-01",
        };
        let b = o.to_bytes().unwrap();
        assert_eq!(b[0], 0x80 | 20);
        assert_eq!(Offer::parse(&b).unwrap(), o);
        let r = Response {
            record_limit_log2: 16,
            protect_metadata: true,
            ephemeral: [9; 32],
            broker_mac: [5; 16],
        };
        let rb = r.to_bytes();
        assert_eq!((rb[0], r.without_mac()[0]), (0x90, 0x90));
        assert_eq!(Response::parse(&rb).unwrap(), r);
        // The flag does not widen the limit: 0x80 | 0 and 0x80 | 49 stay out of range.
        for bad in [0x80u8, 0x80 | 49, 0x40 | 20] {
            let mut b = b.clone();
            b[0] = bad;
            assert_eq!(
                Offer::parse(&b).unwrap_err(),
                LwaError::Malformed(WireMessage::Offer, WireDefect::RecordLimitOutOfRange)
            );
        }
    }

    #[test]
    fn offer_layout_is_exact() {
        let b = offer_bytes();
        assert_eq!(b.len(), 33 + 9);
        assert_eq!(b[0], 20);
        assert_eq!(&b[1..33], &[7; 32]);
        assert_eq!(&b[33..], b"sensor-01");
        let o = Offer::parse(&b).unwrap();
        assert_eq!(
            (o.identity, o.record_limit_log2, o.ephemeral),
            ("sensor-01", 20, [7; 32])
        );
    }

    #[test]
    fn offer_field_checks() {
        let b = offer_bytes();
        for n in 0..33 {
            assert_eq!(
                Offer::parse(&b[..n]).unwrap_err(),
                LwaError::Malformed(WireMessage::Offer, WireDefect::Truncated)
            );
        }
        assert_eq!(
            Offer::parse(&b[..33]).unwrap_err(),
            LwaError::Malformed(WireMessage::Offer, WireDefect::EmptyIdentity)
        );
        let mut long = b[..33].to_vec();
        long.extend_from_slice(&[b'x'; 256]);
        assert_eq!(
            Offer::parse(&long).unwrap_err(),
            LwaError::Malformed(WireMessage::Offer, WireDefect::TrailingBytes)
        );
        for bad in [0u8, 49, 255] {
            let mut b = offer_bytes();
            b[0] = bad;
            assert_eq!(
                Offer::parse(&b).unwrap_err(),
                LwaError::Malformed(WireMessage::Offer, WireDefect::RecordLimitOutOfRange)
            );
        }
        for bad in [0xFFu8, 0] {
            let mut b = offer_bytes();
            b[35] = bad;
            assert_eq!(
                Offer::parse(&b).unwrap_err(),
                LwaError::Malformed(WireMessage::Offer, WireDefect::IdentityNotUtf8)
            );
        }
    }

    #[test]
    fn response_layout_is_exact() {
        let r = Response {
            record_limit_log2: 16,
            protect_metadata: false,
            ephemeral: [9; 32],
            broker_mac: [5; 16],
        };
        let b = r.to_bytes();
        assert_eq!(b.len(), 49);
        assert_eq!(b[0], 16);
        assert_eq!(&b[1..33], &[9; 32]);
        assert_eq!(&b[33..], &[5; 16]);
        assert_eq!(&r.without_mac()[..], &b[..33]);
        assert_eq!(Response::parse(&b).unwrap(), r);
        for n in 0..b.len() {
            assert!(Response::parse(&b[..n]).is_err());
        }
        let mut long = b.clone();
        long.push(1);
        assert!(Response::parse(&long).is_err());
        let mut l = b;
        l[0] = 49;
        assert!(Response::parse(&l).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Offer::parse(&bytes);
            let _ = Response::parse(&bytes);
        }

        #[test]
        fn offer_round_trips(identity in "[a-z0-9/_-]{1,60}", limit in 1u8..=48, m in any::<bool>(), key in any::<[u8; 32]>()) {
            let o = Offer { record_limit_log2: limit, protect_metadata: m, ephemeral: key, identity: &identity };
            let b = o.to_bytes().unwrap();
            prop_assert_eq!(b.len(), 33 + identity.len());
            prop_assert_eq!(Offer::parse(&b).unwrap(), o);
        }
    }
}
