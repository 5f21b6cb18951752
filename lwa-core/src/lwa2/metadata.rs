//! Metadata protection (LWA2.md section 7.1): with `M` negotiated in the
//! offer, a PUBLISH shows the network only the placeholder topic `"L"` and
//! an empty property block, and its record's plaintext carries the rest:
//!
//! ```text
//! inner  = lp(topic) | vbi(n) | properties(n) | payload
//! sealed = record(aad with the placeholder topic, inner)
//! ```
//!
//! `properties` is the PUBLISH's MQTT 5 property block content, opaque here
//! (the glue encodes and checks it with its MQTT codec); `vbi` is MQTT's
//! Variable Byte Integer. The layout is what MQTT 5 puts after the fixed
//! header of a QoS 0 PUBLISH, so a receiver needs no new parser.

use alloc::vec::Vec;

use crate::crypto::Crypto;
use crate::error::{LwaError, WireDefect, WireMessage};
use crate::record::{RecordOpener, RecordSealer};

/// The Topic Name every PUBLISH carries on the wire under metadata protection.
pub const PLACEHOLDER_TOPIC: &str = "L";

/// Bytes metadata protection adds to a sealed PUBLISH, beyond the record's
/// 16-byte tag: the placeholder topic (2-byte length and `"L"`) and the
/// length of the property block inside the record, less nothing: the real
/// topic and properties move from the header into the record unchanged.
pub const METADATA_OVERHEAD: usize = 2 + PLACEHOLDER_TOPIC.len() + 1;

/// The largest Variable Byte Integer (MQTT 5.0 section 1.5.5).
const MAX_VBI: usize = 268_435_455;

/// What a record under metadata protection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inner<'a> {
    /// The real Topic Name (UTF-8; its MQTT rules are the glue's to check).
    pub topic: &'a str,
    /// The PUBLISH property block content, without its length.
    pub properties: &'a [u8],
    /// The application payload.
    pub payload: &'a [u8],
}

fn vbi_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn put_vbi(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 {
            break;
        }
    }
}

fn malformed(defect: WireDefect) -> LwaError {
    LwaError::Malformed(WireMessage::Metadata, defect)
}

/// Reads a Variable Byte Integer at the front of `bytes`: (value, bytes used).
fn read_vbi(bytes: &[u8]) -> Result<(usize, usize), LwaError> {
    let mut value = 0usize;
    let mut multiplier = 1usize;
    for (i, &b) in bytes.iter().enumerate().take(4) {
        value += usize::from(b & 0x7F) * multiplier;
        if b & 0x80 == 0 {
            // MQTT 5.0 1.5.5: the encoding must be the shortest one.
            if i > 0 && b == 0 {
                return Err(malformed(WireDefect::NotMinimal));
            }
            return Ok((value, i + 1));
        }
        multiplier *= 128;
    }
    Err(malformed(if bytes.len() < 4 {
        WireDefect::Truncated
    } else {
        WireDefect::NotMinimal
    }))
}

impl<'a> Inner<'a> {
    /// Bytes of the encoding.
    pub fn encoded_len(&self) -> usize {
        2 + self.topic.len()
            + vbi_len(self.properties.len())
            + self.properties.len()
            + self.payload.len()
    }

    /// The plaintext of the record; fails on an empty topic, a topic over
    /// 65 535 bytes or a property block over MQTT's largest length.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LwaError> {
        if self.topic.is_empty() {
            return Err(LwaError::InvalidParameter("empty topic"));
        }
        let topic_len = u16::try_from(self.topic.len())
            .map_err(|_| LwaError::InvalidParameter("topic longer than 65535 bytes"))?;
        if self.properties.len() > MAX_VBI {
            return Err(LwaError::InvalidParameter("property block too long"));
        }
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&topic_len.to_be_bytes());
        out.extend_from_slice(self.topic.as_bytes());
        put_vbi(&mut out, self.properties.len());
        out.extend_from_slice(self.properties);
        out.extend_from_slice(self.payload);
        Ok(out)
    }

    /// Parses an opened record's plaintext. Checks the layout and that the
    /// topic is UTF-8 and not empty; the rest of MQTT's rules for topics
    /// and properties are the caller's.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LwaError> {
        let (len, rest) = bytes
            .split_first_chunk::<2>()
            .ok_or(malformed(WireDefect::Truncated))?;
        let topic_len = usize::from(u16::from_be_bytes(*len));
        if topic_len == 0 {
            return Err(malformed(WireDefect::EmptyTopic));
        }
        let (topic, rest) = rest
            .split_at_checked(topic_len)
            .ok_or(malformed(WireDefect::Truncated))?;
        let topic = core::str::from_utf8(topic).map_err(|_| malformed(WireDefect::TopicNotUtf8))?;
        let (props_len, used) = read_vbi(rest)?;
        let (properties, payload) = rest
            .get(used..)
            .and_then(|r| r.split_at_checked(props_len))
            .ok_or(malformed(WireDefect::Truncated))?;
        Ok(Inner {
            topic,
            properties,
            payload,
        })
    }

    /// Seals this inner plaintext as the next record of `sealer`, bound to
    /// the placeholder topic (the PUBLISH's Topic Name on the wire).
    pub fn seal<C: Crypto>(
        &self,
        sealer: &mut RecordSealer<C>,
        qos: u8,
        retain: bool,
    ) -> Result<Vec<u8>, LwaError> {
        sealer.seal(PLACEHOLDER_TOPIC, qos, retain, &self.to_bytes()?)
    }
}

/// Opens the next record of `opener` in place (bound to the placeholder
/// topic) and returns the length of the inner plaintext at the front of
/// `sealed`; parse it with [`Inner::parse`]. A record that opens but does
/// not parse has still used its counter.
pub fn open_in_place<C: Crypto>(
    opener: &mut RecordOpener<C>,
    qos: u8,
    retain: bool,
    sealed: &mut [u8],
) -> Result<usize, LwaError> {
    let len = opener
        .open_in_place(PLACEHOLDER_TOPIC, qos, retain, sealed)?
        .len();
    Inner::parse(sealed.get(..len).unwrap_or_default())?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Direction;
    use crate::RustCrypto;
    use proptest::prelude::*;

    #[test]
    fn layout_is_the_publish_variable_header_of_qos_0() {
        let inner = Inner {
            topic: "a/b",
            properties: &[0x01, 0x01],
            payload: b"hi",
        };
        let b = inner.to_bytes().unwrap();
        assert_eq!(b, [0, 3, b'a', b'/', b'b', 2, 0x01, 0x01, b'h', b'i']);
        assert_eq!(b.len(), inner.encoded_len());
        assert_eq!(Inner::parse(&b).unwrap(), inner);
        // No properties: one length byte; an empty payload is allowed.
        let bare = Inner {
            topic: "t",
            properties: &[],
            payload: &[],
        };
        assert_eq!(bare.to_bytes().unwrap(), [0, 1, b't', 0]);
        assert_eq!(METADATA_OVERHEAD, 4);
    }

    #[test]
    fn parse_refuses_what_the_layout_cannot_be() {
        let m = |d| Err(LwaError::Malformed(WireMessage::Metadata, d));
        assert_eq!(Inner::parse(&[]), m(WireDefect::Truncated));
        assert_eq!(Inner::parse(&[0]), m(WireDefect::Truncated));
        assert_eq!(Inner::parse(&[0, 0, 0]), m(WireDefect::EmptyTopic));
        assert_eq!(Inner::parse(&[0, 3, b'a', b'b']), m(WireDefect::Truncated));
        assert_eq!(Inner::parse(&[0, 1, 0xFF, 0]), m(WireDefect::TopicNotUtf8));
        // No property length, a property block longer than what follows.
        assert_eq!(Inner::parse(&[0, 1, b't']), m(WireDefect::Truncated));
        assert_eq!(Inner::parse(&[0, 1, b't', 3, 1]), m(WireDefect::Truncated));
        // A property length in more bytes than needed, or in five.
        assert_eq!(
            Inner::parse(&[0, 1, b't', 0x80, 0x00]),
            m(WireDefect::NotMinimal)
        );
        assert_eq!(
            Inner::parse(&[0, 1, b't', 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            m(WireDefect::NotMinimal)
        );
    }

    #[test]
    fn seal_and_open_bind_the_placeholder_and_hide_the_topic() {
        let key = [3u8; 32];
        let iv = [4u8; 12];
        let mut sealer: RecordSealer<RustCrypto> =
            RecordSealer::new(Direction::ClientToBroker, &key, &iv, 8).unwrap();
        let mut opener: RecordOpener<RustCrypto> =
            RecordOpener::new(Direction::ClientToBroker, &key, &iv, 8).unwrap();
        let inner = Inner {
            topic: "home/secret-room/temperature",
            properties: &[0x03, 0x00, 0x04, b'j', b's', b'o', b'n'],
            payload: b"21.5",
        };
        let mut sealed = inner.seal(&mut sealer, 1, false).unwrap();
        assert_eq!(sealed.len(), inner.encoded_len() + 16);
        assert!(!sealed
            .windows(inner.topic.len())
            .any(|w| w == inner.topic.as_bytes()));
        let len = open_in_place(&mut opener, 1, false, &mut sealed).unwrap();
        assert_eq!(Inner::parse(&sealed[..len]).unwrap(), inner);
        // Bound to the placeholder: a record sealed for a real topic does not open here.
        let mut other = sealer
            .seal("home/x", 1, false, &inner.to_bytes().unwrap())
            .unwrap();
        assert!(open_in_place(&mut opener, 1, false, &mut other).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(topic in "[a-z/]{1,40}", props in proptest::collection::vec(any::<u8>(), 0..300),
                       payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let inner = Inner { topic: &topic, properties: &props, payload: &payload };
            let b = inner.to_bytes().unwrap();
            prop_assert_eq!(b.len(), inner.encoded_len());
            prop_assert_eq!(Inner::parse(&b).unwrap(), inner);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Inner::parse(&bytes);
        }
    }
}
