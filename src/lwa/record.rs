//! LWA1 records (LWA.md section 7): each PUBLISH payload becomes
//! `ChaCha20-Poly1305(key_dir, nonce, aad, payload) | tag(16)`.
//!
//! ```text
//! nonce = iv_dir XOR (0x00000000 | be64(counter))
//! aad   = "LWA1" | dir(1) | be64(counter) | qos(1) | retain(1) | lp(topic)
//! ```
//!
//! The counter is implicit (see [`super::counter`]), so replayed, dropped,
//! reordered or reflected records fail to open, and so do records moved to
//! another topic or with changed QoS/retain.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use zeroize::Zeroizing;

use super::counter::RecordCounter;
use super::error::LwaError;
use super::schedule::put_lp;
use super::RECORD_OVERHEAD;
use crate::codec::QoS;

/// Which way a record travels; each direction has its own key, IV and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to broker (dir byte 0x01).
    ClientToBroker,
    /// Broker to client (dir byte 0x02).
    BrokerToClient,
}

impl Direction {
    /// The dir byte bound in the AAD.
    pub fn byte(self) -> u8 {
        match self {
            Direction::ClientToBroker => 0x01,
            Direction::BrokerToClient => 0x02,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::ClientToBroker => "c2b",
            Direction::BrokerToClient => "b2c",
        })
    }
}

/// The AEAD nonce of record `counter`: the IV with be64(counter) XORed into its last 8 bytes.
pub fn record_nonce(iv: &[u8; 12], counter: u64) -> [u8; 12] {
    let mut nonce = *iv;
    for (n, c) in nonce[4..].iter_mut().zip(counter.to_be_bytes()) {
        *n ^= c;
    }
    nonce
}

/// The additional data of a record: what the tag binds besides the payload.
pub fn record_aad(
    direction: Direction,
    counter: u64,
    qos: QoS,
    retain: bool,
    topic: &str,
) -> Result<Vec<u8>, LwaError> {
    let mut aad = Vec::with_capacity(17 + topic.len());
    write_record_aad(&mut aad, direction, counter, qos, retain, topic)?;
    Ok(aad)
}

/// Replaces `aad`'s contents with the additional data of a record (a reused buffer: no
/// allocation per record once it has grown to the longest topic).
fn write_record_aad(
    aad: &mut Vec<u8>,
    direction: Direction,
    counter: u64,
    qos: QoS,
    retain: bool,
    topic: &str,
) -> Result<(), LwaError> {
    aad.clear();
    aad.extend_from_slice(b"LWA1");
    aad.push(direction.byte());
    aad.extend_from_slice(&counter.to_be_bytes());
    aad.push(qos as u8);
    aad.push(u8::from(retain));
    put_lp(aad, topic.as_bytes())
}

/// Key material of one direction, shared by the sealer and the opener.
///
/// The AEAD is ring's ChaCha20-Poly1305 (the assembly also behind rustls):
/// for a 30-byte payload it costs about a fifth of the instructions of
/// RustCrypto's `chacha20poly1305` 0.10, whose AVX2 Poly1305 pays a fixed
/// set-up and finalisation of several thousand instructions per record
/// (callgrind, experiments/README.md). ring's key type is not zeroized on
/// drop, so the key is kept here in a [`Zeroizing`] buffer and ring's key is
/// built per record (for ChaCha20 that is a 32-byte copy) and lives only in
/// that call's stack frame.
struct DirectionCipher {
    key: Zeroizing<[u8; 32]>,
    iv: Zeroizing<[u8; 12]>,
    direction: Direction,
    counter: RecordCounter,
    /// Reused AAD buffer (not secret).
    aad: Vec<u8>,
}

impl DirectionCipher {
    fn new(
        direction: Direction,
        key: &[u8; 32],
        iv: &[u8; 12],
        limit_log2: u8,
    ) -> Result<Self, LwaError> {
        Ok(DirectionCipher {
            key: Zeroizing::new(*key),
            iv: Zeroizing::new(*iv),
            direction,
            counter: RecordCounter::new(limit_log2)?,
            aad: Vec::new(),
        })
    }

    /// ring's key for one record.
    fn aead_key(&self) -> Result<LessSafeKey, LwaError> {
        UnboundKey::new(&CHACHA20_POLY1305, self.key.as_slice())
            .map(LessSafeKey::new)
            .map_err(|_| LwaError::InvalidParameter("ChaCha20-Poly1305 key"))
    }
}

/// Seals outgoing PUBLISH payloads of one direction, in wire order.
///
/// Its counter only moves forward: [`RecordSealer::starting_at`] refuses to
/// move it back, so no sealer seals two records under one nonce (issue 13):
///
/// ```
/// use mqtt_lwa::codec::QoS;
/// use mqtt_lwa::lwa::{Direction, RecordSealer};
/// let sealer = RecordSealer::new(Direction::BrokerToClient, &[7; 32], &[9; 12], 8).unwrap();
/// let mut sealer = sealer.starting_at(5).unwrap(); // forward: allowed
/// sealer.seal("t", QoS::AtMostOnce, false, b"x").unwrap(); // record 5
/// assert!(sealer.starting_at(5).is_err()); // back to a used counter: refused
/// ```
pub struct RecordSealer(DirectionCipher);

/// Opens incoming PUBLISH payloads of one direction, in wire order.
///
/// The counter advances only when a record opens; after one failure the
/// opener refuses everything, because the connection must close anyway.
pub struct RecordOpener {
    inner: DirectionCipher,
    poisoned: bool,
}

impl RecordSealer {
    /// A sealer at counter 0 allowing `2^limit_log2` records.
    pub fn new(
        direction: Direction,
        key: &[u8; 32],
        iv: &[u8; 12],
        limit_log2: u8,
    ) -> Result<Self, LwaError> {
        Ok(RecordSealer(DirectionCipher::new(
            direction, key, iv, limit_log2,
        )?))
    }

    /// Skips the counter forward to `next` (test vectors with large counters).
    ///
    /// Refuses to move it back (issue 13: it used to, and a sealer moved back
    /// to a counter it already used seals two records under one nonce, which
    /// breaks ChaCha20-Poly1305).
    pub fn starting_at(mut self, next: u64) -> Result<Self, LwaError> {
        if next < self.0.counter.used() {
            return Err(LwaError::InvalidParameter(
                "a sealer's counter only moves forward (nonce reuse)",
            ));
        }
        let log2 = self.0.counter.limit().trailing_zeros() as u8;
        self.0.counter = RecordCounter::starting_at(log2, next)?;
        Ok(self)
    }

    /// Seals one payload; fails with `RecordLimitReached` once 2^n records were sealed.
    pub fn seal(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<Vec<u8>, LwaError> {
        self.seal_bytes(topic, qos, retain, payload)
            .map(|sealed| sealed.to_vec())
    }

    /// Seals one payload into a buffer of exactly `payload.len() + 16` bytes
    /// (one allocation, the payload copied once and encrypted in place).
    pub fn seal_bytes(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<Bytes, LwaError> {
        let c = &mut self.0;
        let counter = c
            .counter
            .peek()
            .ok_or(LwaError::RecordLimitReached(c.direction))?;
        write_record_aad(&mut c.aad, c.direction, counter, qos, retain, topic)?;
        let mut buf = BytesMut::with_capacity(payload.len() + RECORD_OVERHEAD);
        buf.put_slice(payload);
        let nonce = Nonce::assume_unique_for_key(record_nonce(&c.iv, counter));
        let tag = c
            .aead_key()?
            .seal_in_place_separate_tag(nonce, Aad::from(c.aad.as_slice()), &mut buf)
            .map_err(|_| LwaError::InvalidParameter("payload too long for ChaCha20-Poly1305"))?;
        buf.put_slice(tag.as_ref());
        c.counter.advance();
        Ok(buf.freeze())
    }

    /// This sealer's direction.
    pub fn direction(&self) -> Direction {
        self.0.direction
    }

    /// Records sealed and still allowed.
    pub fn counter(&self) -> &RecordCounter {
        &self.0.counter
    }
}

impl RecordOpener {
    /// An opener at counter 0 allowing `2^limit_log2` records.
    pub fn new(
        direction: Direction,
        key: &[u8; 32],
        iv: &[u8; 12],
        limit_log2: u8,
    ) -> Result<Self, LwaError> {
        Ok(RecordOpener {
            inner: DirectionCipher::new(direction, key, iv, limit_log2)?,
            poisoned: false,
        })
    }

    /// Skips the counter forward to `next` (test vectors with large
    /// counters); moving it back would accept replayed records, so it is refused.
    pub fn starting_at(mut self, next: u64) -> Result<Self, LwaError> {
        if next < self.inner.counter.used() {
            return Err(LwaError::InvalidParameter(
                "an opener's counter only moves forward (replay)",
            ));
        }
        let log2 = self.inner.counter.limit().trailing_zeros() as u8;
        self.inner.counter = RecordCounter::starting_at(log2, next)?;
        Ok(self)
    }

    /// Opens one sealed payload; any failure is final for this opener.
    pub fn open(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        sealed: &[u8],
    ) -> Result<Vec<u8>, LwaError> {
        self.open_bytes(topic, qos, retain, sealed)
            .map(|plain| plain.to_vec())
    }

    /// Opens one sealed payload into a buffer of exactly its plaintext length
    /// (one allocation: the ciphertext is copied once and decrypted in place).
    pub fn open_bytes(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        sealed: &[u8],
    ) -> Result<Bytes, LwaError> {
        let c = &mut self.inner;
        if self.poisoned {
            return Err(LwaError::OpenerPoisoned(c.direction));
        }
        let counter = c
            .counter
            .peek()
            .ok_or(LwaError::RecordLimitReached(c.direction))?;
        let failed = LwaError::RecordOpenFailed {
            direction: c.direction,
            counter,
        };
        let opened = (|| {
            let split = sealed.len().checked_sub(RECORD_OVERHEAD)?;
            let (ciphertext, tag) = sealed.split_at(split);
            let tag = Tag::try_from(tag).ok()?;
            write_record_aad(&mut c.aad, c.direction, counter, qos, retain, topic).ok()?;
            let mut buf = BytesMut::from(ciphertext);
            let nonce = Nonce::assume_unique_for_key(record_nonce(&c.iv, counter));
            c.aead_key()
                .ok()?
                .open_in_place_separate_tag(nonce, Aad::from(c.aad.as_slice()), tag, &mut buf, 0..)
                .ok()?;
            Some(buf.freeze())
        })();
        match opened {
            Some(plain) => {
                c.counter.advance();
                Ok(plain)
            }
            None => {
                self.poisoned = true;
                Err(failed)
            }
        }
    }

    /// This opener's direction.
    pub fn direction(&self) -> Direction {
        self.inner.direction
    }

    /// Records opened and still allowed.
    pub fn counter(&self) -> &RecordCounter {
        &self.inner.counter
    }

    /// True after a record failed to open.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

impl fmt::Debug for RecordSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordSealer")
            .field("direction", &self.0.direction)
            .field("counter", &self.0.counter)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RecordOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordOpener")
            .field("direction", &self.inner.direction)
            .field("counter", &self.inner.counter)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0x11; 32];
    const IV: [u8; 12] = [0x22; 12];

    fn pair(log2: u8) -> (RecordSealer, RecordOpener) {
        (
            RecordSealer::new(Direction::ClientToBroker, &KEY, &IV, log2).unwrap(),
            RecordOpener::new(Direction::ClientToBroker, &KEY, &IV, log2).unwrap(),
        )
    }

    #[test]
    fn round_trip_adds_exactly_the_tag() {
        let (mut s, mut o) = pair(8);
        for len in [0usize, 1, 15, 16, 17, 256, 4096] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = s.seal("a/b", QoS::AtLeastOnce, false, &payload).unwrap();
            assert_eq!(sealed.len(), len + RECORD_OVERHEAD);
            if len > 0 {
                assert_ne!(&sealed[..len], &payload[..], "payload in clear");
            }
            assert_eq!(
                o.open("a/b", QoS::AtLeastOnce, false, &sealed).unwrap(),
                payload
            );
        }
        assert_eq!(s.counter().used(), 7);
        assert_eq!(o.counter().used(), 7);
    }

    #[test]
    fn nonce_xors_counter_into_last_eight_bytes() {
        let iv = [0xFF; 12];
        let n = record_nonce(&iv, 0x0102_0304_0506_0708);
        assert_eq!(&n[..4], &[0xFF; 4]);
        assert_eq!(&n[4..], &[0xFE, 0xFD, 0xFC, 0xFB, 0xFA, 0xF9, 0xF8, 0xF7]);
    }

    #[test]
    fn aad_layout() {
        let aad = record_aad(Direction::BrokerToClient, 258, QoS::ExactlyOnce, true, "t").unwrap();
        assert_eq!(
            aad,
            [
                b"LWA1".as_slice(),
                &[2],
                &258u64.to_be_bytes(),
                &[2, 1, 0, 1, b't']
            ]
            .concat()
        );
    }

    #[test]
    fn same_payload_seals_differently_per_counter() {
        let (mut s, _) = pair(8);
        let a = s.seal("t", QoS::AtMostOnce, false, b"same").unwrap();
        let b = s.seal("t", QoS::AtMostOnce, false, b"same").unwrap();
        assert_ne!(a, b);
    }

    fn assert_rejected(o: &mut RecordOpener, topic: &str, qos: QoS, retain: bool, sealed: &[u8]) {
        let before = o.counter().used();
        let err = o.open(topic, qos, retain, sealed).unwrap_err();
        assert!(matches!(err, LwaError::RecordOpenFailed { .. }), "{err:?}");
        assert_eq!(err.reason_code().0, 0x87);
        assert_eq!(o.counter().used(), before, "failed open must not advance");
        assert!(o.is_poisoned());
    }

    #[test]
    fn replayed_record_is_rejected() {
        let (mut s, mut o) = pair(8);
        let r0 = s.seal("t", QoS::AtMostOnce, false, b"x").unwrap();
        o.open("t", QoS::AtMostOnce, false, &r0).unwrap();
        assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &r0);
    }

    #[test]
    fn reordered_records_are_rejected() {
        let (mut s, mut o) = pair(8);
        let _r0 = s.seal("t", QoS::AtMostOnce, false, b"0").unwrap();
        let r1 = s.seal("t", QoS::AtMostOnce, false, b"1").unwrap();
        assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &r1);
    }

    #[test]
    fn dropped_record_makes_the_next_fail() {
        let (mut s, mut o) = pair(8);
        let r0 = s.seal("t", QoS::AtMostOnce, false, b"0").unwrap();
        let _dropped = s.seal("t", QoS::AtMostOnce, false, b"1").unwrap();
        let r2 = s.seal("t", QoS::AtMostOnce, false, b"2").unwrap();
        o.open("t", QoS::AtMostOnce, false, &r0).unwrap();
        assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &r2);
    }

    #[test]
    fn truncated_or_extended_record_is_rejected() {
        for cut in [1usize, 15, 16, 17, 36] {
            let (mut s, mut o) = pair(8);
            let r = s
                .seal("t", QoS::AtMostOnce, false, b"twenty bytes payload")
                .unwrap();
            assert_eq!(r.len(), 36);
            assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &r[..r.len() - cut]);
        }
        let (mut s, mut o) = pair(8);
        let mut r = s.seal("t", QoS::AtMostOnce, false, b"p").unwrap();
        r.push(0);
        assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &r);
        let (_, mut o) = pair(8);
        assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &[]);
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let (mut s, _) = pair(8);
        let r = s.seal("t", QoS::AtMostOnce, false, b"abc").unwrap();
        for byte in 0..r.len() {
            for bit in 0..8 {
                let (_, mut o) = pair(8);
                let mut bad = r.clone();
                bad[byte] ^= 1 << bit;
                assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &bad);
            }
        }
    }

    #[test]
    fn moved_topic_and_changed_flags_are_rejected() {
        let variants: [(&str, QoS, bool); 5] = [
            ("a/c", QoS::AtLeastOnce, false),
            ("a/b/", QoS::AtLeastOnce, false),
            ("a/b", QoS::AtMostOnce, false),
            ("a/b", QoS::ExactlyOnce, false),
            ("a/b", QoS::AtLeastOnce, true),
        ];
        for (topic, qos, retain) in variants {
            let (mut s, mut o) = pair(8);
            let r = s.seal("a/b", QoS::AtLeastOnce, false, b"m").unwrap();
            assert_rejected(&mut o, topic, qos, retain, &r);
        }
    }

    #[test]
    fn reflected_record_is_rejected() {
        // Even with identical key material, the dir byte in the AAD separates directions.
        let mut b2c = RecordSealer::new(Direction::BrokerToClient, &KEY, &IV, 8).unwrap();
        let mut c2b_opener = RecordOpener::new(Direction::ClientToBroker, &KEY, &IV, 8).unwrap();
        let r = b2c.seal("t", QoS::AtMostOnce, false, b"m").unwrap();
        assert_rejected(&mut c2b_opener, "t", QoS::AtMostOnce, false, &r);
    }

    #[test]
    fn wrong_key_or_iv_is_rejected() {
        let (mut s, _) = pair(8);
        let r = s.seal("t", QoS::AtMostOnce, false, b"m").unwrap();
        let mut o = RecordOpener::new(Direction::ClientToBroker, &[0x12; 32], &IV, 8).unwrap();
        assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &r);
        let mut o = RecordOpener::new(Direction::ClientToBroker, &KEY, &[0x23; 12], 8).unwrap();
        assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &r);
    }

    #[test]
    fn opener_stays_poisoned_after_a_failure() {
        let (mut s, mut o) = pair(8);
        let r0 = s.seal("t", QoS::AtMostOnce, false, b"0").unwrap();
        let mut bad = r0.clone();
        bad[0] ^= 1;
        assert_rejected(&mut o, "t", QoS::AtMostOnce, false, &bad);
        assert_eq!(
            o.open("t", QoS::AtMostOnce, false, &r0).unwrap_err(),
            LwaError::OpenerPoisoned(Direction::ClientToBroker)
        );
    }

    #[test]
    fn sealer_stops_at_the_limit_and_so_does_the_opener() {
        let (mut s, mut o) = pair(1);
        for i in 0..2u8 {
            let r = s.seal("t", QoS::AtMostOnce, false, &[i]).unwrap();
            assert_eq!(o.open("t", QoS::AtMostOnce, false, &r).unwrap(), vec![i]);
        }
        let err = s.seal("t", QoS::AtMostOnce, false, b"x").unwrap_err();
        assert_eq!(err, LwaError::RecordLimitReached(Direction::ClientToBroker));
        assert_eq!(err.reason_code().0, 0x83);
        assert_eq!(
            o.open("t", QoS::AtMostOnce, false, &[0; 17]).unwrap_err(),
            LwaError::RecordLimitReached(Direction::ClientToBroker)
        );
    }

    #[test]
    fn counters_only_move_forward() {
        let (s, o) = pair(8);
        let mut s = s.starting_at(3).unwrap();
        let r = s.seal("t", QoS::AtMostOnce, false, b"x").unwrap();
        assert!(s.starting_at(3).is_err());
        let mut o = o.starting_at(3).unwrap();
        assert_eq!(
            o.open("t", QoS::AtMostOnce, false, &r).unwrap(),
            b"x".to_vec()
        );
        assert!(o.starting_at(0).is_err());
    }

    #[test]
    fn large_counter_near_the_limit() {
        let top = (1u64 << 48) - 1;
        let mut s = RecordSealer::new(Direction::BrokerToClient, &KEY, &IV, 48)
            .unwrap()
            .starting_at(top)
            .unwrap();
        let mut o = RecordOpener::new(Direction::BrokerToClient, &KEY, &IV, 48)
            .unwrap()
            .starting_at(top)
            .unwrap();
        let r = s.seal("t", QoS::AtMostOnce, false, b"last").unwrap();
        assert_eq!(o.open("t", QoS::AtMostOnce, false, &r).unwrap(), b"last");
        assert!(matches!(
            s.seal("t", QoS::AtMostOnce, false, b"x"),
            Err(LwaError::RecordLimitReached(_))
        ));
        // The same record does not open at counter 0.
        let mut fresh = RecordOpener::new(Direction::BrokerToClient, &KEY, &IV, 48).unwrap();
        assert_rejected(&mut fresh, "t", QoS::AtMostOnce, false, &r);
    }
}
