//! LWA2 key update (LWA2.md section 8.2): new record keys on a live
//! connection, carried in MQTT 5 re-authentication, instead of a reconnect.
//!
//! ```text
//! u_0      = key("update", 32)                              (with the handshake's keys)
//! u_g      = BLAKE3-keyed(u_{g-1}, "next")
//! m_g      = BLAKE3-keyed(u_{g-1}, "update mac")
//! k_dir_g  = BLAKE3-keyed(u_g, "c2b key" | "b2c key"), iv_dir_g = BLAKE3-keyed(u_g, "c2b iv" | "b2c iv")[0..12]
//! request  = BLAKE3-keyed(m_g, "request"  | be32(g) | be64(c))[0..16]            client -> broker, AUTH 0x19
//! response = BLAKE3-keyed(m_g, "response" | be32(g) | be64(b) | request)[0..16]  broker -> client, AUTH 0x00
//! ```
//!
//! `c` is the number of client-to-broker records of generation `g - 1` and
//! `b` that of broker-to-client records; neither is sent: each side counts
//! them itself, and TCP's order makes the counts agree. The client moves its
//! sealer to generation `g` as it writes the request and its opener when the
//! response arrives; the broker moves its opener when the request arrives
//! and its sealer as it writes the response. A record is therefore always
//! sealed and opened under one generation, with counters from 0 again.
//!
//! Only the newest `u_g` is kept, so a key compromised later does not open
//! records of earlier generations (BLAKE3 is one-way).

use core::marker::PhantomData;

use alloc::boxed::Box;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::backend::rustcrypto::RustCrypto;
use crate::crypto::Blake3;
use crate::error::{LwaError, WireDefect, WireMessage};
use crate::record::{RecordOpener, RecordSealer};
use crate::MAC_LEN;

use super::schedule::{truncated_mac, LABEL_B2C_IV, LABEL_B2C_KEY, LABEL_C2B_IV, LABEL_C2B_KEY};

/// Label of `u_0`, derived from `prk` beside the handshake's keys.
pub const LABEL_UPDATE: &[u8] = b"update";
/// Label of the next generation's secret.
pub const LABEL_NEXT: &[u8] = b"next";
/// Label of the MAC key of one update.
pub const LABEL_UPDATE_MAC: &[u8] = b"update mac";
/// First input of the request MAC.
pub const LABEL_REQUEST: &[u8] = b"request";
/// First input of the response MAC.
pub const LABEL_RESPONSE: &[u8] = b"response";
/// Size of a request and of a response (AUTH Authentication Data).
pub const KEY_UPDATE_LEN: usize = MAC_LEN;

fn keyed<C: Blake3, const N: usize>(key: &[u8; 32], parts: &[&[u8]]) -> Zeroizing<[u8; N]> {
    let full = C::blake3_keyed_hash(key, parts);
    let mut out = Zeroizing::new([0u8; N]);
    out.copy_from_slice(&full[..N]);
    out
}

/// The keys and MAC key of one generation, derived from the one before it.
pub struct Generation<C: Blake3 = RustCrypto> {
    /// The generation number `g` (1 for the first update).
    pub number: u32,
    secret: Zeroizing<[u8; 32]>,
    mac_key: Zeroizing<[u8; 32]>,
    c2b_key: Zeroizing<[u8; 32]>,
    c2b_iv: Zeroizing<[u8; 12]>,
    b2c_key: Zeroizing<[u8; 32]>,
    b2c_iv: Zeroizing<[u8; 12]>,
    backend: PhantomData<C>,
}

impl<C: Blake3> Generation<C> {
    /// Generation `number`, from the secret `previous` (`u_{number-1}`) of
    /// the generation before it (the state machines below call this; test
    /// vectors call it directly).
    pub fn derive(previous: &[u8; 32], number: u32) -> Self {
        let secret = keyed::<C, 32>(previous, &[LABEL_NEXT]);
        Generation {
            number,
            mac_key: keyed::<C, 32>(previous, &[LABEL_UPDATE_MAC]),
            c2b_key: keyed::<C, 32>(&secret, &[LABEL_C2B_KEY]),
            c2b_iv: keyed::<C, 12>(&secret, &[LABEL_C2B_IV]),
            b2c_key: keyed::<C, 32>(&secret, &[LABEL_B2C_KEY]),
            b2c_iv: keyed::<C, 12>(&secret, &[LABEL_B2C_IV]),
            secret,
            backend: PhantomData,
        }
    }

    /// request = BLAKE3-keyed(m_g, "request" | be32(g) | be64(c2b records))[0..16].
    pub fn request(&self, c2b_records: u64) -> [u8; KEY_UPDATE_LEN] {
        truncated_mac::<C>(
            &self.mac_key,
            &[
                LABEL_REQUEST,
                &self.number.to_be_bytes(),
                &c2b_records.to_be_bytes(),
            ],
        )
    }

    /// response = BLAKE3-keyed(m_g, "response" | be32(g) | be64(b2c records) | request)[0..16].
    pub fn response(
        &self,
        b2c_records: u64,
        request: &[u8; KEY_UPDATE_LEN],
    ) -> [u8; KEY_UPDATE_LEN] {
        truncated_mac::<C>(
            &self.mac_key,
            &[
                LABEL_RESPONSE,
                &self.number.to_be_bytes(),
                &b2c_records.to_be_bytes(),
                request,
            ],
        )
    }

    /// The generation's secret `u_g` (test vectors only).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
    /// The update's MAC key `m_g` (test vectors only).
    pub fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }
    /// Client-to-broker record key of this generation.
    pub fn c2b_key(&self) -> &[u8; 32] {
        &self.c2b_key
    }
    /// Client-to-broker nonce base of this generation.
    pub fn c2b_iv(&self) -> &[u8; 12] {
        &self.c2b_iv
    }
    /// Broker-to-client record key of this generation.
    pub fn b2c_key(&self) -> &[u8; 32] {
        &self.b2c_key
    }
    /// Broker-to-client nonce base of this generation.
    pub fn b2c_iv(&self) -> &[u8; 12] {
        &self.b2c_iv
    }
}

/// One side's key update state on one LWA2 connection: the newest generation
/// secret and, on the client between request and response, what the
/// response must prove.
pub struct KeyUpdate<C: Blake3 = RustCrypto> {
    secret: Zeroizing<[u8; 32]>,
    generation: u32,
    /// Client only: the update in flight (its MAC key, its b2c keys, the
    /// request sent); boxed, so that an idle connection keeps 48 bytes here.
    in_flight: Option<Box<InFlight<C>>>,
}

struct InFlight<C: Blake3> {
    next: Generation<C>,
    request: [u8; KEY_UPDATE_LEN],
}

fn parse(data: &[u8]) -> Result<[u8; KEY_UPDATE_LEN], LwaError> {
    let defect = if data.len() < KEY_UPDATE_LEN {
        WireDefect::Truncated
    } else {
        WireDefect::TrailingBytes
    };
    data.try_into()
        .map_err(|_| LwaError::Malformed(WireMessage::KeyUpdate, defect))
}

impl<C: Blake3> KeyUpdate<C> {
    /// Generation 0, from `u_0` (the handshake's [`super::KeySchedule::update_secret`]).
    pub fn new(update_secret: &[u8; 32]) -> Self {
        KeyUpdate {
            secret: Zeroizing::new(*update_secret),
            generation: 0,
            in_flight: None,
        }
    }

    /// The generation records are sealed under by the side that moved first
    /// (the client's sealer, the broker's opener): 0 until the first update.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Client: whether a request is waiting for its response.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Client: whether an update is due: half the records of either direction
    /// used in this generation (LWA2.md 8.2 says SHOULD), none in flight.
    pub fn due(&self, sealer: &RecordSealer<C>, opener: &RecordOpener<C>) -> bool {
        let half = |c: &crate::RecordCounter| c.used() >= c.limit() / 2;
        self.in_flight.is_none() && (half(sealer.counter()) || half(opener.counter()))
    }

    /// The next generation, or an error once 2^32 - 1 updates were made.
    fn next(&self) -> Result<Generation<C>, LwaError> {
        let number = self
            .generation
            .checked_add(1)
            .ok_or(LwaError::InvalidParameter("no key update generation left"))?;
        Ok(Generation::derive(&self.secret, number))
    }

    /// Client: starts an update. Returns the request (AUTH 0x19 data) and moves
    /// `sealer` to the new generation at once: the caller writes the request
    /// before any record it seals from now on.
    pub fn start(
        &mut self,
        sealer: &mut RecordSealer<C>,
    ) -> Result<[u8; KEY_UPDATE_LEN], LwaError> {
        if self.in_flight.is_some() {
            return Err(LwaError::UnexpectedKeyUpdate);
        }
        let next = self.next()?;
        let request = next.request(sealer.counter().used());
        *sealer = sealer.rekeyed(next.c2b_key(), next.c2b_iv())?;
        self.generation = next.number;
        self.secret = Zeroizing::new(*next.secret());
        self.in_flight = Some(Box::new(InFlight { next, request }));
        Ok(request)
    }

    /// Client: checks the broker's response (AUTH 0x00 data) against the
    /// broker-to-client records opened so far and moves `opener` to the new
    /// generation. Nothing changes on an error; the connection must end.
    pub fn on_response(
        &mut self,
        data: &[u8],
        opener: &mut RecordOpener<C>,
    ) -> Result<(), LwaError> {
        let response = parse(data)?;
        let Some(flight) = &self.in_flight else {
            return Err(LwaError::UnexpectedKeyUpdate);
        };
        let expected = flight
            .next
            .response(opener.counter().used(), &flight.request);
        if !bool::from(expected.ct_eq(&response)) {
            return Err(LwaError::KeyUpdateFailed);
        }
        let rekeyed = opener.rekeyed(flight.next.b2c_key(), flight.next.b2c_iv())?;
        *opener = rekeyed;
        self.in_flight = None;
        Ok(())
    }

    /// Broker: checks a client's request (AUTH 0x19 data) against the
    /// client-to-broker records opened so far, moves `opener` to the new
    /// generation, computes the response (AUTH 0x00 data) and moves `sealer`
    /// too: the caller writes the response before any record it seals from
    /// now on. Nothing changes on an error; the connection must end.
    pub fn answer(
        &mut self,
        data: &[u8],
        opener: &mut RecordOpener<C>,
        sealer: &mut RecordSealer<C>,
    ) -> Result<[u8; KEY_UPDATE_LEN], LwaError> {
        let request = parse(data)?;
        let next = self.next()?;
        let expected = next.request(opener.counter().used());
        if !bool::from(expected.ct_eq(&request)) {
            return Err(LwaError::KeyUpdateFailed);
        }
        let new_opener = opener.rekeyed(next.c2b_key(), next.c2b_iv())?;
        let new_sealer = sealer.rekeyed(next.b2c_key(), next.b2c_iv())?;
        let response = next.response(sealer.counter().used(), &request);
        *opener = new_opener;
        *sealer = new_sealer;
        self.generation = next.number;
        self.secret = Zeroizing::new(*next.secret());
        Ok(response)
    }
}

impl<C: Blake3> core::fmt::Debug for KeyUpdate<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("lwa2::KeyUpdate")
            .field("generation", &self.generation)
            .field("in_flight", &self.in_flight.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Direction;
    use alloc::vec::Vec;

    type Ku = KeyUpdate<RustCrypto>;

    /// A connected pair at generation 0: (client update, sealer c2b, opener b2c), (broker ...).
    fn pair(
        limit_log2: u8,
    ) -> (
        (Ku, RecordSealer, RecordOpener),
        (Ku, RecordSealer, RecordOpener),
    ) {
        let (k_c2b, iv_c2b, k_b2c, iv_b2c) = ([1u8; 32], [2u8; 12], [3u8; 32], [4u8; 12]);
        let u0 = [5u8; 32];
        let client = (
            Ku::new(&u0),
            RecordSealer::new(Direction::ClientToBroker, &k_c2b, &iv_c2b, limit_log2).unwrap(),
            RecordOpener::new(Direction::BrokerToClient, &k_b2c, &iv_b2c, limit_log2).unwrap(),
        );
        let broker = (
            Ku::new(&u0),
            RecordSealer::new(Direction::BrokerToClient, &k_b2c, &iv_b2c, limit_log2).unwrap(),
            RecordOpener::new(Direction::ClientToBroker, &k_c2b, &iv_c2b, limit_log2).unwrap(),
        );
        (client, broker)
    }

    fn send(
        sealer: &mut RecordSealer,
        opener: &mut RecordOpener,
        text: &[u8],
    ) -> Result<Vec<u8>, LwaError> {
        let mut buf = text.to_vec();
        let tag = sealer.seal_in_place("t/x", 1, false, &mut buf)?;
        buf.extend_from_slice(&tag);
        let len = opener.open_in_place("t/x", 1, false, &mut buf)?.len();
        buf.truncate(len);
        Ok(buf)
    }

    #[test]
    fn an_update_moves_both_directions_to_new_keys_at_counter_zero() {
        let ((mut cu, mut cs, mut co), (mut bu, mut bs, mut bo)) = pair(8);
        for _ in 0..3 {
            send(&mut cs, &mut bo, b"up").unwrap();
        }
        send(&mut bs, &mut co, b"down").unwrap();
        let request = cu.start(&mut cs).unwrap();
        assert!(cu.in_flight());
        assert_eq!(cs.counter().used(), 0);
        // A b2c record the broker sealed before it saw the request: still generation 0.
        send(&mut bs, &mut co, b"old").unwrap();
        let response = bu.answer(&request, &mut bo, &mut bs).unwrap();
        assert_eq!((bo.counter().used(), bs.counter().used()), (0, 0));
        // c2b records after the request: generation 1.
        assert_eq!(send(&mut cs, &mut bo, b"new up").unwrap(), b"new up");
        cu.on_response(&response, &mut co).unwrap();
        assert!(!cu.in_flight());
        assert_eq!(send(&mut bs, &mut co, b"new down").unwrap(), b"new down");
        assert_eq!((cu.generation(), bu.generation()), (1, 1));
        // And again.
        let request = cu.start(&mut cs).unwrap();
        let response = bu.answer(&request, &mut bo, &mut bs).unwrap();
        cu.on_response(&response, &mut co).unwrap();
        assert_eq!(send(&mut cs, &mut bo, b"g2").unwrap(), b"g2");
        assert_eq!(send(&mut bs, &mut co, b"g2").unwrap(), b"g2");
        assert_eq!(cu.generation(), 2);
    }

    #[test]
    fn generations_have_distinct_keys_from_each_other_and_the_handshake() {
        let g1 = Generation::<RustCrypto>::derive(&[5; 32], 1);
        let g2 = Generation::<RustCrypto>::derive(g1.secret(), 2);
        let keys = [
            g1.c2b_key(),
            g1.b2c_key(),
            g1.secret(),
            g1.mac_key(),
            g2.c2b_key(),
            g2.b2c_key(),
            g2.secret(),
            g2.mac_key(),
            &[5u8; 32],
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(g1.c2b_iv(), g1.b2c_iv());
        assert_ne!(g1.c2b_iv(), g2.c2b_iv());
        let manual = blake3::keyed_hash(&[5; 32], b"next");
        assert_eq!(g1.secret(), manual.as_bytes());
        // The MACs bind the generation number and the counts.
        let r = g1.request(3);
        assert_ne!(r, g1.request(4));
        assert_ne!(r, Generation::<RustCrypto>::derive(&[5; 32], 2).request(3));
        assert_ne!(g1.response(1, &r), g1.response(2, &r));
        assert_ne!(g1.response(1, &r), g1.response(1, &[0; 16]));
    }

    #[test]
    fn a_request_that_does_not_match_the_broker_s_count_is_refused_and_changes_nothing() {
        let ((mut cu, mut cs, _co), (mut bu, mut bs, mut bo)) = pair(8);
        // The client sealed one record the broker never opened (dropped on the way).
        let mut lost = b"lost".to_vec();
        cs.seal_in_place("t/x", 1, false, &mut lost).unwrap();
        let request = cu.start(&mut cs).unwrap();
        assert_eq!(
            bu.answer(&request, &mut bo, &mut bs).unwrap_err(),
            LwaError::KeyUpdateFailed
        );
        assert_eq!(bu.generation(), 0);
        // A forged or truncated request.
        let mut forged = request;
        forged[0] ^= 1;
        assert_eq!(
            bu.answer(&forged, &mut bo, &mut bs).unwrap_err(),
            LwaError::KeyUpdateFailed
        );
        assert!(matches!(
            bu.answer(&request[..15], &mut bo, &mut bs).unwrap_err(),
            LwaError::Malformed(WireMessage::KeyUpdate, WireDefect::Truncated)
        ));
    }

    #[test]
    fn the_client_refuses_a_response_it_did_not_ask_for_or_that_does_not_verify() {
        let ((mut cu, mut cs, mut co), (mut bu, mut bs, mut bo)) = pair(8);
        assert_eq!(
            cu.on_response(&[0; 16], &mut co).unwrap_err(),
            LwaError::UnexpectedKeyUpdate
        );
        let request = cu.start(&mut cs).unwrap();
        // One request at a time.
        assert_eq!(
            cu.start(&mut cs).unwrap_err(),
            LwaError::UnexpectedKeyUpdate
        );
        let mut response = bu.answer(&request, &mut bo, &mut bs).unwrap();
        response[15] ^= 1;
        assert_eq!(
            cu.on_response(&response, &mut co).unwrap_err(),
            LwaError::KeyUpdateFailed
        );
        assert!(cu.in_flight());
    }

    #[test]
    fn an_update_is_due_at_half_the_record_limit() {
        // 2^3 records per direction: due from the 4th on, in either direction.
        let ((cu, mut cs, co), (_, _, mut bo)) = pair(3);
        for _ in 0..3 {
            send(&mut cs, &mut bo, b"x").unwrap();
            assert!(!cu.due(&cs, &co));
        }
        send(&mut cs, &mut bo, b"x").unwrap();
        assert!(cu.due(&cs, &co));
        let ((cu, cs, mut co), (_, mut bs, _)) = pair(3);
        for _ in 0..4 {
            send(&mut bs, &mut co, b"y").unwrap();
        }
        assert!(cu.due(&cs, &co));
    }
}
