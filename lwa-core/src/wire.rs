//! Byte layouts of the three LWA1 messages (LWA.md section 4):
//!
//! ```text
//! offer    = version(1)=0x01 | record_limit_log2(1) | id_len(1) | identity(id_len) | e_c(32)
//! response = version(1)=0x01 | chosen_record_limit_log2(1) | e_b(32) | broker_mac(16)
//! finished = client_mac(16)
//! ```
//!
//! Parsing checks layout only (lengths, version, ranges, UTF-8); keys and MACs
//! are judged by the handshake.

use alloc::vec::Vec;

use crate::error::{LwaError, WireDefect, WireMessage};
use crate::{
    MAC_LEN, MAX_IDENTITY_LEN, MAX_RECORD_LIMIT_LOG2, MIN_RECORD_LIMIT_LOG2, OFFER_FIXED_LEN,
    PUBLIC_KEY_LEN, RESPONSE_LEN, VERSION,
};

/// The client's first flight, carried as CONNECT Authentication Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer<'a> {
    /// Proposed record limit exponent (1..=48).
    pub record_limit_log2: u8,
    /// The client's LWA identity (1..=255 bytes of UTF-8, no U+0000).
    pub identity: &'a str,
    /// The client's ephemeral X25519 public key e_c.
    pub ephemeral: [u8; PUBLIC_KEY_LEN],
}

/// The broker's answer, carried as CONNACK Authentication Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Chosen record limit exponent: min(offered, broker's).
    pub record_limit_log2: u8,
    /// The broker's ephemeral X25519 public key e_b.
    pub ephemeral: [u8; PUBLIC_KEY_LEN],
    /// HMAC-SHA256(k_broker_mac, TH) truncated to 16 bytes.
    pub broker_mac: [u8; MAC_LEN],
}

/// The client's key confirmation, carried as AUTH (Re-authenticate) Authentication Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// HMAC-SHA256(k_client_mac, TH | broker_mac) truncated to 16 bytes.
    pub client_mac: [u8; MAC_LEN],
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

/// Checks the version byte first, so a future version is reported as such and not as malformed.
fn check_version(message: WireMessage, bytes: &[u8]) -> Result<(), LwaError> {
    match bytes.first() {
        None => Err(LwaError::Malformed(message, WireDefect::Truncated)),
        Some(&VERSION) => Ok(()),
        Some(&other) => Err(LwaError::UnsupportedVersion(other)),
    }
}

fn exact_len(message: WireMessage, bytes: &[u8], len: usize) -> Result<(), LwaError> {
    match bytes.len().cmp(&len) {
        core::cmp::Ordering::Less => Err(LwaError::Malformed(message, WireDefect::Truncated)),
        core::cmp::Ordering::Greater => {
            Err(LwaError::Malformed(message, WireDefect::TrailingBytes))
        }
        core::cmp::Ordering::Equal => Ok(()),
    }
}

/// An identity is acceptable on the wire: 1..=255 bytes of UTF-8 without U+0000.
pub fn validate_identity(identity: &str) -> Result<(), WireDefect> {
    if identity.is_empty() {
        Err(WireDefect::EmptyIdentity)
    } else if identity.len() > MAX_IDENTITY_LEN {
        Err(WireDefect::IdentityTooLong)
    } else if identity.contains('\0') {
        Err(WireDefect::IdentityNotUtf8)
    } else {
        Ok(())
    }
}

fn key32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

impl<'a> Offer<'a> {
    /// Parses CONNECT Authentication Data.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LwaError> {
        let m = WireMessage::Offer;
        check_version(m, bytes)?;
        let (&limit, rest) = bytes
            .get(1..)
            .and_then(<[u8]>::split_first)
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let (&id_len, rest) = rest
            .split_first()
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let id_len = usize::from(id_len);
        if id_len == 0 {
            return Err(LwaError::Malformed(m, WireDefect::EmptyIdentity));
        }
        exact_len(m, bytes, OFFER_FIXED_LEN + id_len)?;
        let id_bytes = rest
            .get(..id_len)
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let identity = core::str::from_utf8(id_bytes)
            .map_err(|_| LwaError::Malformed(m, WireDefect::IdentityNotUtf8))?;
        validate_identity(identity).map_err(|d| LwaError::Malformed(m, d))?;
        let ephemeral = rest
            .get(id_len..)
            .and_then(key32)
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        Ok(Offer {
            record_limit_log2: check_limit(m, limit)?,
            identity,
            ephemeral,
        })
    }

    /// Serialises the offer; fails on an identity or limit the layout cannot carry.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LwaError> {
        validate_identity(self.identity)
            .map_err(|_| LwaError::InvalidParameter("identity must be 1..=255 bytes, no U+0000"))?;
        check_limit(WireMessage::Offer, self.record_limit_log2)
            .map_err(|_| LwaError::InvalidParameter("record_limit_log2 outside 1..=48"))?;
        let id_len = u8::try_from(self.identity.len())
            .map_err(|_| LwaError::InvalidParameter("identity longer than 255 bytes"))?;
        let mut out = Vec::with_capacity(OFFER_FIXED_LEN + self.identity.len());
        out.push(VERSION);
        out.push(self.record_limit_log2);
        out.push(id_len);
        out.extend_from_slice(self.identity.as_bytes());
        out.extend_from_slice(&self.ephemeral);
        Ok(out)
    }
}

impl Response {
    /// Bytes of the response covered by the transcript (everything but broker_mac).
    pub const WITHOUT_MAC_LEN: usize = RESPONSE_LEN - MAC_LEN;

    /// Parses CONNACK Authentication Data.
    pub fn parse(bytes: &[u8]) -> Result<Self, LwaError> {
        let m = WireMessage::Response;
        check_version(m, bytes)?;
        exact_len(m, bytes, RESPONSE_LEN)?;
        let limit = *bytes
            .get(1)
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let ephemeral = bytes
            .get(2..2 + PUBLIC_KEY_LEN)
            .and_then(key32)
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        let broker_mac = bytes
            .get(Self::WITHOUT_MAC_LEN..)
            .and_then(|s| <[u8; MAC_LEN]>::try_from(s).ok())
            .ok_or(LwaError::Malformed(m, WireDefect::Truncated))?;
        Ok(Response {
            record_limit_log2: check_limit(m, limit)?,
            ephemeral,
            broker_mac,
        })
    }

    /// The transcript part: version | chosen limit | e_b.
    pub fn without_mac(&self) -> [u8; Self::WITHOUT_MAC_LEN] {
        let mut out = [0u8; Self::WITHOUT_MAC_LEN];
        out[0] = VERSION;
        out[1] = self.record_limit_log2;
        out[2..].copy_from_slice(&self.ephemeral);
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

impl Finished {
    /// Parses AUTH Authentication Data.
    pub fn parse(bytes: &[u8]) -> Result<Self, LwaError> {
        let m = WireMessage::Finished;
        exact_len(m, bytes, MAC_LEN)?;
        let client_mac = <[u8; MAC_LEN]>::try_from(bytes)
            .map_err(|_| LwaError::Malformed(m, WireDefect::Truncated))?;
        Ok(Finished { client_mac })
    }

    /// Serialises the finished message.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.client_mac.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn offer_bytes() -> Vec<u8> {
        Offer {
            record_limit_log2: 20,
            identity: "sensor-01",
            ephemeral: [7; 32],
        }
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn offer_layout_is_exact() {
        let b = offer_bytes();
        assert_eq!(b.len(), 35 + 9);
        assert_eq!(&b[..3], &[0x01, 20, 9]);
        assert_eq!(&b[3..12], b"sensor-01");
        assert_eq!(&b[12..], &[7; 32]);
        let o = Offer::parse(&b).unwrap();
        assert_eq!(o.identity, "sensor-01");
        assert_eq!(o.record_limit_log2, 20);
        assert_eq!(o.ephemeral, [7; 32]);
    }

    #[test]
    fn offer_rejects_every_truncation_and_extension() {
        let b = offer_bytes();
        for n in 0..b.len() {
            let err = Offer::parse(&b[..n]).unwrap_err();
            assert!(
                matches!(
                    err,
                    LwaError::Malformed(WireMessage::Offer, WireDefect::Truncated)
                ),
                "{n}: {err:?}"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            Offer::parse(&long).unwrap_err(),
            LwaError::Malformed(WireMessage::Offer, WireDefect::TrailingBytes)
        );
    }

    #[test]
    fn offer_field_checks() {
        let mut b = offer_bytes();
        b[0] = 0x02;
        assert_eq!(
            Offer::parse(&b).unwrap_err(),
            LwaError::UnsupportedVersion(2)
        );
        for bad in [0u8, 49, 255] {
            let mut b = offer_bytes();
            b[1] = bad;
            assert_eq!(
                Offer::parse(&b).unwrap_err(),
                LwaError::Malformed(WireMessage::Offer, WireDefect::RecordLimitOutOfRange)
            );
        }
        let mut b = offer_bytes();
        b[3] = 0xFF;
        assert_eq!(
            Offer::parse(&b).unwrap_err(),
            LwaError::Malformed(WireMessage::Offer, WireDefect::IdentityNotUtf8)
        );
        let mut b = offer_bytes();
        b[3] = 0;
        assert_eq!(
            Offer::parse(&b).unwrap_err(),
            LwaError::Malformed(WireMessage::Offer, WireDefect::IdentityNotUtf8)
        );
        let mut zero = vec![0x01, 20, 0];
        zero.extend_from_slice(&[7; 32]);
        assert_eq!(
            Offer::parse(&zero).unwrap_err(),
            LwaError::Malformed(WireMessage::Offer, WireDefect::EmptyIdentity)
        );
    }

    #[test]
    fn offer_builder_refuses_what_the_layout_cannot_carry() {
        let long = "x".repeat(256);
        for identity in ["", long.as_str(), "a\0b"] {
            let o = Offer {
                record_limit_log2: 20,
                identity,
                ephemeral: [0; 32],
            };
            assert!(matches!(o.to_bytes(), Err(LwaError::InvalidParameter(_))));
        }
        let max = "x".repeat(255);
        let o = Offer {
            record_limit_log2: 48,
            identity: &max,
            ephemeral: [0; 32],
        };
        assert_eq!(Offer::parse(&o.to_bytes().unwrap()).unwrap(), o);
    }

    #[test]
    fn response_layout_is_exact() {
        let r = Response {
            record_limit_log2: 16,
            ephemeral: [9; 32],
            broker_mac: [5; 16],
        };
        let b = r.to_bytes();
        assert_eq!(b.len(), 50);
        assert_eq!(&b[..2], &[0x01, 16]);
        assert_eq!(&b[2..34], &[9; 32]);
        assert_eq!(&b[34..], &[5; 16]);
        assert_eq!(&r.without_mac()[..], &b[..34]);
        assert_eq!(Response::parse(&b).unwrap(), r);
        for n in 0..b.len() {
            assert!(Response::parse(&b[..n]).is_err());
        }
        let mut long = b.clone();
        long.push(1);
        assert!(Response::parse(&long).is_err());
        let mut v = b.clone();
        v[0] = 0;
        assert_eq!(
            Response::parse(&v).unwrap_err(),
            LwaError::UnsupportedVersion(0)
        );
        let mut l = b;
        l[1] = 0;
        assert!(Response::parse(&l).is_err());
    }

    #[test]
    fn finished_layout_is_exact() {
        let f = Finished {
            client_mac: [3; 16],
        };
        assert_eq!(Finished::parse(&f.to_bytes()).unwrap(), f);
        assert!(Finished::parse(&[0; 15]).is_err());
        assert!(Finished::parse(&[0; 17]).is_err());
        assert!(Finished::parse(&[]).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Offer::parse(&bytes);
            let _ = Response::parse(&bytes);
            let _ = Finished::parse(&bytes);
        }

        #[test]
        fn offer_round_trips(identity in "[a-z0-9/_-]{1,60}", limit in 1u8..=48, key in any::<[u8; 32]>()) {
            let o = Offer { record_limit_log2: limit, identity: &identity, ephemeral: key };
            let b = o.to_bytes().unwrap();
            prop_assert_eq!(b.len(), 35 + identity.len());
            prop_assert_eq!(Offer::parse(&b).unwrap(), o);
        }
    }
}
