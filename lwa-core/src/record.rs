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

use core::fmt;

use alloc::vec::Vec;
use zeroize::Zeroizing;

use crate::backend::rustcrypto::RustCrypto;
use crate::counter::RecordCounter;
use crate::crypto::{Crypto, RecordKey, AEAD_TAG_LEN};
use crate::error::LwaError;
use crate::schedule::put_lp;
use crate::RECORD_OVERHEAD;

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
///
/// `qos` is the QoS byte of the PUBLISH (0, 1 or 2).
pub fn record_aad(
    direction: Direction,
    counter: u64,
    qos: u8,
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
    qos: u8,
    retain: bool,
    topic: &str,
) -> Result<(), LwaError> {
    aad.clear();
    aad.extend_from_slice(b"LWA1");
    aad.push(direction.byte());
    aad.extend_from_slice(&counter.to_be_bytes());
    aad.push(qos);
    aad.push(u8::from(retain));
    put_lp(aad, topic.as_bytes())
}

/// Key material of one direction, shared by the sealer and the opener.
///
/// The backend's key object is built once, when the direction is keyed, and
/// used for every record (issue 15: it used to be rebuilt per record).
struct DirectionCipher<C: Crypto> {
    key: C::RecordKey,
    iv: Zeroizing<[u8; 12]>,
    direction: Direction,
    counter: RecordCounter,
    /// Reused AAD buffer (not secret).
    aad: Vec<u8>,
}

impl<C: Crypto> DirectionCipher<C> {
    fn new(
        direction: Direction,
        key: &[u8; 32],
        iv: &[u8; 12],
        limit_log2: u8,
    ) -> Result<Self, LwaError> {
        Ok(DirectionCipher {
            key: C::record_key(key)
                .map_err(|_| LwaError::InvalidParameter("ChaCha20-Poly1305 key"))?,
            iv: Zeroizing::new(*iv),
            direction,
            counter: RecordCounter::new(limit_log2)?,
            aad: Vec::new(),
        })
    }

    fn limit_log2(&self) -> u8 {
        self.counter.limit().trailing_zeros() as u8
    }

    fn skip_to(&mut self, next: u64) -> Result<(), LwaError> {
        let log2 = self.counter.limit().trailing_zeros() as u8;
        self.counter = RecordCounter::starting_at(log2, next)?;
        Ok(())
    }
}

/// Seals outgoing PUBLISH payloads of one direction, in wire order.
///
/// Its counter only moves forward: [`RecordSealer::starting_at`] refuses to
/// move it back, so no sealer seals two records under one nonce (issue 13):
///
/// ```
/// use lwa_core::backend::rustcrypto::RecordSealer;
/// use lwa_core::Direction;
/// let sealer = RecordSealer::new(Direction::BrokerToClient, &[7; 32], &[9; 12], 8).unwrap();
/// let mut sealer = sealer.starting_at(5).unwrap(); // forward: allowed
/// sealer.seal("t", 0, false, b"x").unwrap(); // record 5
/// assert!(sealer.starting_at(5).is_err()); // back to a used counter: refused
/// ```
pub struct RecordSealer<C: Crypto = RustCrypto>(DirectionCipher<C>);

/// Opens incoming PUBLISH payloads of one direction, in wire order.
///
/// The counter advances only when a record opens; after one failure the
/// opener refuses everything, because the connection must close anyway.
pub struct RecordOpener<C: Crypto = RustCrypto> {
    inner: DirectionCipher<C>,
    poisoned: bool,
}

impl<C: Crypto> RecordSealer<C> {
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
        self.0.skip_to(next)?;
        Ok(self)
    }

    /// A sealer for the same direction and record limit under a new key and
    /// IV, at counter 0: an LWA2 key update (LWA2.md section 8.2). Its
    /// counter restarts, which is safe for the nonces because the key is new.
    pub fn rekeyed(&self, key: &[u8; 32], iv: &[u8; 12]) -> Result<Self, LwaError> {
        Self::new(self.0.direction, key, iv, self.0.limit_log2())
    }

    /// Encrypts `payload` in place as the next record and returns its tag,
    /// which goes after the ciphertext on the wire (no allocation once the
    /// AAD buffer has grown to the longest topic).
    ///
    /// Fails with `RecordLimitReached` once 2^n records were sealed; a failed
    /// call uses no counter.
    pub fn seal_in_place(
        &mut self,
        topic: &str,
        qos: u8,
        retain: bool,
        payload: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], LwaError> {
        let c = &mut self.0;
        let counter = c
            .counter
            .peek()
            .ok_or(LwaError::RecordLimitReached(c.direction))?;
        write_record_aad(&mut c.aad, c.direction, counter, qos, retain, topic)?;
        let tag = c
            .key
            .seal_in_place(&record_nonce(&c.iv, counter), &c.aad, payload)
            .map_err(|_| LwaError::InvalidParameter("payload too long for ChaCha20-Poly1305"))?;
        c.counter.advance();
        Ok(tag)
    }

    /// Seals one payload into a new buffer of exactly `payload.len() + 16` bytes.
    pub fn seal(
        &mut self,
        topic: &str,
        qos: u8,
        retain: bool,
        payload: &[u8],
    ) -> Result<Vec<u8>, LwaError> {
        let mut out = Vec::with_capacity(payload.len() + RECORD_OVERHEAD);
        out.extend_from_slice(payload);
        let tag = self.seal_in_place(topic, qos, retain, &mut out)?;
        out.extend_from_slice(&tag);
        Ok(out)
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

impl<C: Crypto> RecordOpener<C> {
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
        self.inner.skip_to(next)?;
        Ok(self)
    }

    /// An opener for the same direction and record limit under a new key and
    /// IV, at counter 0: an LWA2 key update (LWA2.md section 8.2). Refused
    /// once this opener failed, since that connection must end.
    pub fn rekeyed(&self, key: &[u8; 32], iv: &[u8; 12]) -> Result<Self, LwaError> {
        if self.poisoned {
            return Err(LwaError::OpenerPoisoned(self.inner.direction));
        }
        Self::new(self.inner.direction, key, iv, self.inner.limit_log2())
    }

    /// Opens the next record in place: `sealed` is `ciphertext | tag`, and the
    /// plaintext is returned as the front of it. Any failure is final for
    /// this opener, and leaves `sealed` unspecified.
    pub fn open_in_place<'a>(
        &mut self,
        topic: &str,
        qos: u8,
        retain: bool,
        sealed: &'a mut [u8],
    ) -> Result<&'a mut [u8], LwaError> {
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
        let Some(split) = sealed.len().checked_sub(RECORD_OVERHEAD) else {
            self.poisoned = true;
            return Err(failed);
        };
        let (ciphertext, tag) = sealed.split_at_mut(split);
        let opened = <[u8; AEAD_TAG_LEN]>::try_from(&*tag)
            .ok()
            .filter(|_| {
                write_record_aad(&mut c.aad, c.direction, counter, qos, retain, topic).is_ok()
            })
            .and_then(|tag| {
                c.key
                    .open_in_place(&record_nonce(&c.iv, counter), &c.aad, ciphertext, &tag)
                    .ok()
            });
        match opened {
            Some(()) => {
                c.counter.advance();
                Ok(ciphertext)
            }
            None => {
                self.poisoned = true;
                Err(failed)
            }
        }
    }

    /// Opens one sealed payload into a new buffer of exactly its plaintext length.
    pub fn open(
        &mut self,
        topic: &str,
        qos: u8,
        retain: bool,
        sealed: &[u8],
    ) -> Result<Vec<u8>, LwaError> {
        let mut buf = sealed.to_vec();
        let len = self.open_in_place(topic, qos, retain, &mut buf)?.len();
        buf.truncate(len);
        Ok(buf)
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

impl<C: Crypto> fmt::Debug for RecordSealer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordSealer")
            .field("direction", &self.0.direction)
            .field("counter", &self.0.counter)
            .finish_non_exhaustive()
    }
}

impl<C: Crypto> fmt::Debug for RecordOpener<C> {
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
    use alloc::vec;

    type RecordSealer = super::RecordSealer<RustCrypto>;
    type RecordOpener = super::RecordOpener<RustCrypto>;

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
            let sealed = s.seal("a/b", 1, false, &payload).unwrap();
            assert_eq!(sealed.len(), len + RECORD_OVERHEAD);
            if len > 0 {
                assert_ne!(&sealed[..len], &payload[..], "payload in clear");
            }
            assert_eq!(o.open("a/b", 1, false, &sealed).unwrap(), payload);
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
        let aad = record_aad(Direction::BrokerToClient, 258, 2, true, "t").unwrap();
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
        let a = s.seal("t", 0, false, b"same").unwrap();
        let b = s.seal("t", 0, false, b"same").unwrap();
        assert_ne!(a, b);
    }

    fn assert_rejected(o: &mut RecordOpener, topic: &str, qos: u8, retain: bool, sealed: &[u8]) {
        let before = o.counter().used();
        let err = o.open(topic, qos, retain, sealed).unwrap_err();
        assert!(matches!(err, LwaError::RecordOpenFailed { .. }), "{err:?}");
        assert_eq!(o.counter().used(), before, "failed open must not advance");
        assert!(o.is_poisoned());
    }

    #[test]
    fn replayed_record_is_rejected() {
        let (mut s, mut o) = pair(8);
        let r0 = s.seal("t", 0, false, b"x").unwrap();
        o.open("t", 0, false, &r0).unwrap();
        assert_rejected(&mut o, "t", 0, false, &r0);
    }

    #[test]
    fn reordered_records_are_rejected() {
        let (mut s, mut o) = pair(8);
        let _r0 = s.seal("t", 0, false, b"0").unwrap();
        let r1 = s.seal("t", 0, false, b"1").unwrap();
        assert_rejected(&mut o, "t", 0, false, &r1);
    }

    #[test]
    fn dropped_record_makes_the_next_fail() {
        let (mut s, mut o) = pair(8);
        let r0 = s.seal("t", 0, false, b"0").unwrap();
        let _dropped = s.seal("t", 0, false, b"1").unwrap();
        let r2 = s.seal("t", 0, false, b"2").unwrap();
        o.open("t", 0, false, &r0).unwrap();
        assert_rejected(&mut o, "t", 0, false, &r2);
    }

    #[test]
    fn truncated_or_extended_record_is_rejected() {
        for cut in [1usize, 15, 16, 17, 36] {
            let (mut s, mut o) = pair(8);
            let r = s.seal("t", 0, false, b"twenty bytes payload").unwrap();
            assert_eq!(r.len(), 36);
            assert_rejected(&mut o, "t", 0, false, &r[..r.len() - cut]);
        }
        let (mut s, mut o) = pair(8);
        let mut r = s.seal("t", 0, false, b"p").unwrap();
        r.push(0);
        assert_rejected(&mut o, "t", 0, false, &r);
        let (_, mut o) = pair(8);
        assert_rejected(&mut o, "t", 0, false, &[]);
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let (mut s, _) = pair(8);
        let r = s.seal("t", 0, false, b"abc").unwrap();
        for byte in 0..r.len() {
            for bit in 0..8 {
                let (_, mut o) = pair(8);
                let mut bad = r.clone();
                bad[byte] ^= 1 << bit;
                assert_rejected(&mut o, "t", 0, false, &bad);
            }
        }
    }

    #[test]
    fn moved_topic_and_changed_flags_are_rejected() {
        let variants: [(&str, u8, bool); 5] = [
            ("a/c", 1, false),
            ("a/b/", 1, false),
            ("a/b", 0, false),
            ("a/b", 2, false),
            ("a/b", 1, true),
        ];
        for (topic, qos, retain) in variants {
            let (mut s, mut o) = pair(8);
            let r = s.seal("a/b", 1, false, b"m").unwrap();
            assert_rejected(&mut o, topic, qos, retain, &r);
        }
    }

    #[test]
    fn reflected_record_is_rejected() {
        // Even with identical key material, the dir byte in the AAD separates directions.
        let mut b2c = RecordSealer::new(Direction::BrokerToClient, &KEY, &IV, 8).unwrap();
        let mut c2b_opener = RecordOpener::new(Direction::ClientToBroker, &KEY, &IV, 8).unwrap();
        let r = b2c.seal("t", 0, false, b"m").unwrap();
        assert_rejected(&mut c2b_opener, "t", 0, false, &r);
    }

    #[test]
    fn wrong_key_or_iv_is_rejected() {
        let (mut s, _) = pair(8);
        let r = s.seal("t", 0, false, b"m").unwrap();
        let mut o = RecordOpener::new(Direction::ClientToBroker, &[0x12; 32], &IV, 8).unwrap();
        assert_rejected(&mut o, "t", 0, false, &r);
        let mut o = RecordOpener::new(Direction::ClientToBroker, &KEY, &[0x23; 12], 8).unwrap();
        assert_rejected(&mut o, "t", 0, false, &r);
    }

    #[test]
    fn opener_stays_poisoned_after_a_failure() {
        let (mut s, mut o) = pair(8);
        let r0 = s.seal("t", 0, false, b"0").unwrap();
        let mut bad = r0.clone();
        bad[0] ^= 1;
        assert_rejected(&mut o, "t", 0, false, &bad);
        assert_eq!(
            o.open("t", 0, false, &r0).unwrap_err(),
            LwaError::OpenerPoisoned(Direction::ClientToBroker)
        );
    }

    #[test]
    fn sealer_stops_at_the_limit_and_so_does_the_opener() {
        let (mut s, mut o) = pair(1);
        for i in 0..2u8 {
            let r = s.seal("t", 0, false, &[i]).unwrap();
            assert_eq!(o.open("t", 0, false, &r).unwrap(), vec![i]);
        }
        let err = s.seal("t", 0, false, b"x").unwrap_err();
        assert_eq!(err, LwaError::RecordLimitReached(Direction::ClientToBroker));
        assert_eq!(
            o.open("t", 0, false, &[0; 17]).unwrap_err(),
            LwaError::RecordLimitReached(Direction::ClientToBroker)
        );
    }

    #[test]
    fn counters_only_move_forward() {
        let (s, o) = pair(8);
        let mut s = s.starting_at(3).unwrap();
        let r = s.seal("t", 0, false, b"x").unwrap();
        assert!(s.starting_at(3).is_err());
        let mut o = o.starting_at(3).unwrap();
        assert_eq!(o.open("t", 0, false, &r).unwrap(), b"x".to_vec());
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
        let r = s.seal("t", 0, false, b"last").unwrap();
        assert_eq!(o.open("t", 0, false, &r).unwrap(), b"last");
        assert!(matches!(
            s.seal("t", 0, false, b"x"),
            Err(LwaError::RecordLimitReached(_))
        ));
        // The same record does not open at counter 0.
        let mut fresh = RecordOpener::new(Direction::BrokerToClient, &KEY, &IV, 48).unwrap();
        assert_rejected(&mut fresh, "t", 0, false, &r);
    }

    #[test]
    fn in_place_api_matches_the_allocating_one() {
        let (mut s, mut o) = pair(8);
        let (mut s2, _) = pair(8);
        let mut buf = *b"hello records";
        let tag = s.seal_in_place("t", 1, true, &mut buf).unwrap();
        let sealed = s2.seal("t", 1, true, b"hello records").unwrap();
        assert_eq!([&buf[..], &tag[..]].concat(), sealed);
        let mut wire = sealed.clone();
        let plain = o.open_in_place("t", 1, true, &mut wire).unwrap();
        assert_eq!(plain, b"hello records");
    }

    #[cfg(feature = "ring")]
    #[test]
    fn ring_and_rustcrypto_seal_the_same_bytes_and_open_each_other() {
        use crate::backend::ring::Ring;
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 1000, 4096] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut rc =
                super::RecordSealer::<RustCrypto>::new(Direction::BrokerToClient, &KEY, &IV, 48)
                    .unwrap()
                    .starting_at(len as u64 * 1_000_003)
                    .unwrap();
            let mut rg = super::RecordSealer::<Ring>::new(Direction::BrokerToClient, &KEY, &IV, 48)
                .unwrap()
                .starting_at(len as u64 * 1_000_003)
                .unwrap();
            let a = rc.seal("a/b", 2, true, &payload).unwrap();
            let b = rg.seal("a/b", 2, true, &payload).unwrap();
            assert_eq!(a, b, "payload of {len} bytes");
            let mut open_rg =
                super::RecordOpener::<Ring>::new(Direction::BrokerToClient, &KEY, &IV, 48)
                    .unwrap()
                    .starting_at(len as u64 * 1_000_003)
                    .unwrap();
            assert_eq!(open_rg.open("a/b", 2, true, &a).unwrap(), payload);
            let mut bad = a.clone();
            if let Some(last) = bad.last_mut() {
                *last ^= 1;
            }
            let mut open_rc =
                super::RecordOpener::<RustCrypto>::new(Direction::BrokerToClient, &KEY, &IV, 48)
                    .unwrap()
                    .starting_at(len as u64 * 1_000_003)
                    .unwrap();
            assert!(open_rc.open("a/b", 2, true, &bad).is_err());
        }
    }
}
