//! Handshake unit tests: honest runs, tampering with every field, wrong and
//! unknown PSKs, low-order points, limit negotiation.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_core::RngCore;
use x25519_dalek::{PublicKey, StaticSecret};

use super::*;
use crate::backend::rustcrypto::{
    transcript_hash, BrokerAwaitingFinished, BrokerRecords, BrokerResponder,
    ClientAwaitingResponse, ClientOffer, ClientRecords, KeySchedule,
};
use crate::schedule::WillContext;
use crate::{offer_len, FINISHED_LEN, RESPONSE_LEN};

const PSK: [u8; 32] = [0x42; 32];
const IDENTITY: &str = "sensor-01";

fn lookup(identity: &str) -> Option<Psk> {
    match identity {
        IDENTITY => Some(Psk::new(PSK)),
        "sensor-02" => Some(Psk::new([0x43; 32])),
        _ => None,
    }
}

const WILL: WillContext<'static> = WillContext {
    topic: "status/sensor-01",
    qos: 1,
    retain: true,
    payload: b"offline",
};

fn ctx() -> ConnectContext<'static> {
    ConnectContext {
        client_id: "client-1",
        clean_start: false,
        will: Some(WILL),
    }
}

/// What an active attacker (or a misconfiguration) changes in one run.
struct Run {
    identity: &'static str,
    client_psk: [u8; 32],
    client_ctx: ConnectContext<'static>,
    broker_ctx: ConnectContext<'static>,
    client_session_present: bool,
    broker_session_present: bool,
    client_limit: u8,
    broker_limit: u8,
    offer_flip: Option<(usize, u8)>,
    response_flip: Option<(usize, u8)>,
    finished_flip: Option<(usize, u8)>,
    seed: u64,
}

impl Default for Run {
    fn default() -> Self {
        Run {
            identity: IDENTITY,
            client_psk: PSK,
            client_ctx: ctx(),
            broker_ctx: ctx(),
            client_session_present: true,
            broker_session_present: true,
            client_limit: 20,
            broker_limit: 16,
            offer_flip: None,
            response_flip: None,
            finished_flip: None,
            seed: 7,
        }
    }
}

fn flip(bytes: &mut [u8], at: Option<(usize, u8)>) {
    if let Some((i, mask)) = at {
        bytes[i] ^= mask;
    }
}

impl Run {
    fn go(self) -> Result<(ClientRecords, BrokerRecords), LwaError> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let offer = ClientOffer::new(
            self.identity,
            &Psk::new(self.client_psk),
            &self.client_ctx,
            self.client_limit,
            &mut rng,
        )?;
        let mut offer_bytes = offer.offer_bytes.clone();
        flip(&mut offer_bytes, self.offer_flip);
        let responder = BrokerResponder::new(self.broker_limit)?;
        let (awaiting, mut response) = responder.respond(
            &offer_bytes,
            &self.broker_ctx,
            self.broker_session_present,
            lookup,
            &mut rng,
        )?;
        flip(&mut response, self.response_flip);
        let (finished, client) = offer
            .awaiting_response
            .on_response(&response, self.client_session_present)?;
        let mut finished = finished.finished_bytes;
        flip(&mut finished, self.finished_flip);
        let broker = awaiting.on_finished(&finished)?;
        Ok((client, broker))
    }
}

#[test]
fn honest_handshake_yields_matching_records_both_ways() {
    let (mut client, mut broker) = Run::default().go().unwrap();
    assert_eq!(broker.identity, IDENTITY);
    assert_eq!(client.record_limit_log2, 16);
    assert_eq!(broker.record_limit_log2, 16);
    for i in 0..3u8 {
        let up = client.sealer.seal("up/t", 1, false, &[i; 5]).unwrap();
        assert_eq!(
            broker.opener.open("up/t", 1, false, &up).unwrap(),
            vec![i; 5]
        );
        let down = broker.sealer.seal("down/t", 2, true, &[i; 7]).unwrap();
        assert_eq!(
            client.opener.open("down/t", 2, true, &down).unwrap(),
            vec![i; 7]
        );
    }
}

#[test]
fn message_sizes_are_the_published_constants() {
    let mut rng = StdRng::seed_from_u64(1);
    let offer = ClientOffer::new(IDENTITY, &Psk::new(PSK), &ctx(), 20, &mut rng).unwrap();
    assert_eq!(offer.offer_bytes.len(), offer_len(IDENTITY.len()));
    let (awaiting, response) = BrokerResponder::new(16)
        .unwrap()
        .respond(&offer.offer_bytes, &ctx(), false, lookup, &mut rng)
        .unwrap();
    assert_eq!(response.len(), RESPONSE_LEN);
    let (fin, _) = offer
        .awaiting_response
        .on_response(&response, false)
        .unwrap();
    assert_eq!(fin.finished_bytes.len(), FINISHED_LEN);
    awaiting.on_finished(&fin.finished_bytes).unwrap();
}

#[test]
fn fresh_randomness_gives_fresh_keys() {
    let (mut a, _) = Run::default().go().unwrap();
    let (mut b, _) = Run {
        seed: 8,
        ..Run::default()
    }
    .go()
    .unwrap();
    let ra = a.sealer.seal("t", 0, false, b"x").unwrap();
    let rb = b.sealer.seal("t", 0, false, b"x").unwrap();
    assert_ne!(ra, rb);
}

#[test]
fn every_bit_of_the_offer_is_authenticated() {
    let len = offer_len(IDENTITY.len());
    for i in 0..len {
        for bit in 0..8 {
            let res = Run {
                offer_flip: Some((i, 1 << bit)),
                ..Run::default()
            }
            .go();
            assert!(res.is_err(), "offer byte {i} bit {bit} went unnoticed");
        }
    }
}

#[test]
fn offer_field_tampering_gives_the_right_error() {
    let err = |at| {
        Run {
            offer_flip: Some(at),
            ..Run::default()
        }
        .go()
        .unwrap_err()
    };
    assert_eq!(err((0, 0x03)), LwaError::UnsupportedVersion(0x02));
    // limit 20 -> 21: still valid, so only the transcript catches it.
    assert_eq!(err((1, 0x01)), LwaError::BrokerAuthFailed);
    assert!(matches!(
        err((2, 0x01)),
        LwaError::Malformed(WireMessage::Offer, _)
    ));
    // "sensor-01" -> "sensor-02": another registered identity with another PSK.
    assert_eq!(err((11, 0x03)), LwaError::BrokerAuthFailed);
    // e_c changed.
    assert_eq!(err((20, 0x10)), LwaError::BrokerAuthFailed);
}

#[test]
fn every_bit_of_the_response_is_authenticated() {
    for i in 0..RESPONSE_LEN {
        for bit in 0..8 {
            let res = Run {
                response_flip: Some((i, 1 << bit)),
                ..Run::default()
            }
            .go();
            assert!(res.is_err(), "response byte {i} bit {bit} went unnoticed");
        }
    }
}

#[test]
fn response_field_tampering_gives_the_right_error() {
    let err = |at| {
        Run {
            response_flip: Some(at),
            ..Run::default()
        }
        .go()
        .unwrap_err()
    };
    assert_eq!(err((0, 0x01)), LwaError::UnsupportedVersion(0x00));
    // 16 -> 17: still below the offered 20, so the MAC catches it.
    assert_eq!(err((1, 0x01)), LwaError::BrokerAuthFailed);
    // 16 -> 48: above the offer.
    assert_eq!(
        err((1, 0x20)),
        LwaError::Malformed(WireMessage::Response, WireDefect::RecordLimitAboveOffer)
    );
    assert_eq!(err((10, 0x01)), LwaError::BrokerAuthFailed);
    assert_eq!(err((40, 0x80)), LwaError::BrokerAuthFailed);
}

#[test]
fn every_bit_of_the_finished_is_authenticated() {
    for i in 0..FINISHED_LEN {
        for bit in 0..8 {
            let err = Run {
                finished_flip: Some((i, 1 << bit)),
                ..Run::default()
            }
            .go()
            .unwrap_err();
            assert_eq!(err, LwaError::ClientAuthFailed);
        }
    }
}

#[test]
fn changed_connect_and_connack_fields_are_detected() {
    let other_will = |f: fn(&mut WillContext<'static>)| {
        let mut w = WILL;
        f(&mut w);
        ConnectContext {
            will: Some(w),
            ..ctx()
        }
    };
    let broker_sides = [
        ConnectContext {
            client_id: "client-2",
            ..ctx()
        },
        ConnectContext {
            clean_start: true,
            ..ctx()
        },
        ConnectContext {
            will: None,
            ..ctx()
        },
        other_will(|w| w.topic = "status/other"),
        other_will(|w| w.payload = b"online!"),
        other_will(|w| w.qos = 0),
        other_will(|w| w.retain = false),
    ];
    for broker_ctx in broker_sides {
        let err = Run {
            broker_ctx,
            ..Run::default()
        }
        .go()
        .unwrap_err();
        assert_eq!(err, LwaError::BrokerAuthFailed, "{broker_ctx:?}");
    }
    let err = Run {
        client_session_present: false,
        ..Run::default()
    }
    .go()
    .unwrap_err();
    assert_eq!(err, LwaError::BrokerAuthFailed);
}

#[test]
fn wrong_psk_fails_at_the_client_with_the_documented_message() {
    let err = Run {
        client_psk: [0x41; 32],
        ..Run::default()
    }
    .go()
    .unwrap_err();
    assert_eq!(err, LwaError::BrokerAuthFailed);
    assert_eq!(
        err.to_string(),
        "broker authentication failed (wrong PSK or impostor broker)"
    );
}

/// Builds the client side by hand so a client that ignores broker_mac can be simulated.
fn manual_client_mac(psk: [u8; 32], secret: [u8; 32], offer: &[u8], response: &[u8]) -> [u8; 16] {
    let r = Response::parse(response).unwrap();
    let dh = StaticSecret::from(secret).diffie_hellman(&PublicKey::from(r.ephemeral));
    let th = transcript_hash(&ctx().encode().unwrap(), offer, &r.without_mac(), true);
    let keys = KeySchedule::derive(&Psk::new(psk), dh.as_bytes(), &th).unwrap();
    keys.client_mac(&r.broker_mac).unwrap()
}

fn manual_offer(identity: &str, secret: [u8; 32]) -> Vec<u8> {
    Offer {
        record_limit_log2: 20,
        identity,
        ephemeral: PublicKey::from(&StaticSecret::from(secret)).to_bytes(),
    }
    .to_bytes()
    .unwrap()
}

#[test]
fn wrong_psk_fails_at_the_broker_too() {
    let secret = [5u8; 32];
    let offer = manual_offer(IDENTITY, secret);
    let mut rng = StdRng::seed_from_u64(3);
    let (awaiting, response) = BrokerResponder::new(16)
        .unwrap()
        .respond(&offer, &ctx(), true, lookup, &mut rng)
        .unwrap();
    let bad = manual_client_mac([0x41; 32], secret, &offer, &response);
    assert_eq!(
        awaiting.on_finished(&bad).unwrap_err(),
        LwaError::ClientAuthFailed
    );
    // Control: the right PSK through the same manual path is accepted.
    let (awaiting, response) = BrokerResponder::new(16)
        .unwrap()
        .respond(&offer, &ctx(), true, lookup, &mut rng)
        .unwrap();
    let good = manual_client_mac(PSK, secret, &offer, &response);
    assert_eq!(awaiting.on_finished(&good).unwrap().identity, IDENTITY);
}

#[test]
fn unknown_identity_looks_like_a_wrong_psk() {
    let secret = [6u8; 32];
    let respond = |identity: &str| {
        let offer = manual_offer(identity, secret);
        let mut rng = StdRng::seed_from_u64(11);
        let (awaiting, response) = BrokerResponder::new(16)
            .unwrap()
            .respond(&offer, &ctx(), true, lookup, &mut rng)
            .unwrap();
        (offer, awaiting, response)
    };
    let (known_offer, known, known_resp) = respond("sensor-02");
    let (unknown_offer, unknown, unknown_resp) = respond("sensor-03");
    assert_eq!(known_resp.len(), unknown_resp.len());
    assert_eq!(known_resp[..2], unknown_resp[..2]);
    // Same draw order for known and unknown identities: e_b comes first either way.
    assert_eq!(known_resp[2..34], unknown_resp[2..34]);
    // A client holding sensor-01's PSK fails identically against both.
    for (offer, response) in [(&known_offer, &known_resp), (&unknown_offer, &unknown_resp)] {
        let r = Response::parse(response).unwrap();
        let dh = StaticSecret::from(secret).diffie_hellman(&PublicKey::from(r.ephemeral));
        let th = transcript_hash(&ctx().encode().unwrap(), offer, &r.without_mac(), true);
        let keys = KeySchedule::derive(&Psk::new(PSK), dh.as_bytes(), &th).unwrap();
        assert!(!bool::from(keys.broker_mac().unwrap().ct_eq(&r.broker_mac)));
    }
    let bad_known = manual_client_mac(PSK, secret, &known_offer, &known_resp);
    let bad_unknown = manual_client_mac(PSK, secret, &unknown_offer, &unknown_resp);
    assert_eq!(
        known.on_finished(&bad_known).unwrap_err(),
        LwaError::ClientAuthFailed
    );
    assert_eq!(
        unknown.on_finished(&bad_unknown).unwrap_err(),
        LwaError::ClientAuthFailed
    );
}

#[test]
fn unknown_identity_is_refused_even_if_the_dummy_key_were_guessed() {
    let secret = [8u8; 32];
    let offer = manual_offer("nobody", secret);
    let mut rng = StdRng::seed_from_u64(12);
    // Predict the dummy PSK: it is the second 32-byte draw after e_b.
    let mut probe = rng.clone();
    probe.fill_bytes(&mut [0u8; 32]);
    let mut dummy = [0u8; 32];
    probe.fill_bytes(&mut dummy);
    let (awaiting, response) = BrokerResponder::new(16)
        .unwrap()
        .respond(&offer, &ctx(), true, lookup, &mut rng)
        .unwrap();
    assert_eq!(awaiting.claimed_identity(), "nobody");
    let mac = manual_client_mac(dummy, secret, &offer, &response);
    assert_eq!(
        awaiting.on_finished(&mac).unwrap_err(),
        LwaError::ClientAuthFailed
    );
}

/// Small-order u-coordinates from the curve25519 literature (libsodium's
/// blocklist: 0, 1, the two points of order 8, p-1, p, p+1) and the same
/// values with bit 255 set, which X25519 masks off (RFC 7748 section 5).
pub(crate) const LOW_ORDER_POINTS: [&str; 14] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

fn point(hex_str: &str) -> [u8; 32] {
    let mut p = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut p).unwrap();
    p
}

#[test]
fn broker_rejects_low_order_client_shares() {
    for p in LOW_ORDER_POINTS {
        let offer = Offer {
            record_limit_log2: 20,
            identity: IDENTITY,
            ephemeral: point(p),
        }
        .to_bytes()
        .unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let err = BrokerResponder::new(16)
            .unwrap()
            .respond(&offer, &ctx(), true, lookup, &mut rng)
            .unwrap_err();
        assert_eq!(err, LwaError::LowOrderPoint, "{p}");
    }
}

#[test]
fn client_rejects_low_order_broker_shares() {
    for p in LOW_ORDER_POINTS {
        let mut rng = StdRng::seed_from_u64(5);
        let offer = ClientOffer::new(IDENTITY, &Psk::new(PSK), &ctx(), 20, &mut rng).unwrap();
        let response = Response {
            record_limit_log2: 16,
            ephemeral: point(p),
            broker_mac: [0; 16],
        }
        .to_bytes();
        let err = offer
            .awaiting_response
            .on_response(&response, true)
            .unwrap_err();
        assert_eq!(err, LwaError::LowOrderPoint, "{p}");
    }
}

#[test]
fn record_limit_is_the_minimum_of_both_sides() {
    for (client, broker, chosen) in [(20, 16, 16), (10, 16, 10), (1, 48, 1), (48, 48, 48)] {
        let (c, b) = Run {
            client_limit: client,
            broker_limit: broker,
            ..Run::default()
        }
        .go()
        .unwrap();
        assert_eq!(c.record_limit_log2, chosen);
        assert_eq!(b.record_limit_log2, chosen);
        assert_eq!(c.sealer.counter().limit(), 1u64 << chosen);
        assert_eq!(b.opener.counter().limit(), 1u64 << chosen);
    }
    for bad in [0u8, 49] {
        assert!(matches!(
            BrokerResponder::new(bad),
            Err(LwaError::InvalidParameter(_))
        ));
        let mut rng = StdRng::seed_from_u64(1);
        assert!(matches!(
            ClientOffer::new(IDENTITY, &Psk::new(PSK), &ctx(), bad, &mut rng),
            Err(LwaError::InvalidParameter(_))
        ));
    }
}

#[test]
fn reflected_records_fail_after_a_real_handshake() {
    let (mut client, mut broker) = Run::default().go().unwrap();
    let down = broker.sealer.seal("t", 0, false, b"m").unwrap();
    assert!(matches!(
        broker.opener.open("t", 0, false, &down),
        Err(LwaError::RecordOpenFailed { .. })
    ));
    let up = client.sealer.seal("t", 0, false, b"m").unwrap();
    assert!(matches!(
        client.opener.open("t", 0, false, &up),
        Err(LwaError::RecordOpenFailed { .. })
    ));
}

#[test]
fn empty_client_id_is_refused_on_both_sides() {
    let empty = ConnectContext::new("", true);
    let mut rng = StdRng::seed_from_u64(1);
    let err = ClientOffer::new(IDENTITY, &Psk::new(PSK), &empty, 20, &mut rng).unwrap_err();
    assert_eq!(err, LwaError::EmptyClientId);
    let offer = manual_offer(IDENTITY, [1; 32]);
    let err = BrokerResponder::new(16)
        .unwrap()
        .respond(&offer, &empty, false, lookup, &mut rng)
        .unwrap_err();
    assert_eq!(err, LwaError::EmptyClientId);
}

#[test]
fn malformed_finished_is_a_format_error() {
    let secret = [9u8; 32];
    let offer = manual_offer(IDENTITY, secret);
    let mut rng = StdRng::seed_from_u64(2);
    let (awaiting, _) = BrokerResponder::new(16)
        .unwrap()
        .respond(&offer, &ctx(), true, lookup, &mut rng)
        .unwrap();
    let err = awaiting.on_finished(&[0; 15]).unwrap_err();
    assert!(matches!(err, LwaError::Malformed(WireMessage::Finished, _)));
}

#[test]
fn states_can_move_between_threads() {
    // The auth hooks (PendingAuth, PayloadProtection) require Send.
    fn assert_send<T: Send>() {}
    assert_send::<ClientAwaitingResponse>();
    assert_send::<BrokerAwaitingFinished>();
    assert_send::<ClientRecords>();
    assert_send::<BrokerRecords>();
}
