//! LWA2 handshake unit tests: honest runs over both confirmations, tampering
//! with every byte of every message and with every bound field, wrong and
//! unknown PSKs, low-order points, limit negotiation.

use alloc::vec;
use alloc::vec::Vec;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::error::{LwaError, WireDefect, WireMessage};
use crate::handshake::{BrokerRecords, ClientRecords};
use crate::schedule::{ConnectContext, Psk, WillContext};

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

/// How the client confirms its keys to the broker.
#[derive(Clone, Copy)]
enum Confirm {
    /// AUTH 0x19 with the finished.
    Finished,
    /// A first sealed PUBLISH (topic, qos, retain as the broker sees them).
    FirstRecord {
        topic: &'static str,
        qos: u8,
        retain: bool,
    },
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
    confirmation_flip: Option<(usize, u8)>,
    confirm: Confirm,
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
            confirmation_flip: None,
            confirm: Confirm::Finished,
            seed: 7,
        }
    }
}

fn flip(bytes: &mut [u8], at: Option<(usize, u8)>) {
    if let Some((i, mask)) = at {
        bytes[i] ^= mask;
    }
}

const FIRST_TOPIC: &str = "up/first";
const FIRST_PAYLOAD: &[u8] = b"21.5 C";

impl Run {
    fn go(self) -> Result<(ClientRecords, BrokerRecords), LwaError> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let offer: ClientOffer = ClientOffer::new(
            self.identity,
            &Psk::new(self.client_psk),
            &self.client_ctx,
            self.client_limit,
            &mut rng,
        )?;
        let mut offer_bytes = offer.offer_bytes.clone();
        flip(&mut offer_bytes, self.offer_flip);
        let responder: BrokerResponder = BrokerResponder::new(self.broker_limit)?;
        let (awaiting, mut response) = responder.respond(
            &offer_bytes,
            &self.broker_ctx,
            self.broker_session_present,
            lookup,
            &mut rng,
        )?;
        flip(&mut response, self.response_flip);
        let (finished, mut client) = offer
            .awaiting_response
            .on_response(&response, self.client_session_present)?;
        match self.confirm {
            Confirm::Finished => {
                let mut finished = finished.finished_bytes;
                flip(&mut finished, self.confirmation_flip);
                let broker = awaiting.on_finished(&finished)?;
                Ok((client, broker))
            }
            Confirm::FirstRecord { topic, qos, retain } => {
                let mut sealed = client.sealer.seal(FIRST_TOPIC, 1, false, FIRST_PAYLOAD)?;
                flip(&mut sealed, self.confirmation_flip);
                let (broker, len) = awaiting.on_first_record(topic, qos, retain, &mut sealed)?;
                assert_eq!(&sealed[..len], FIRST_PAYLOAD);
                Ok((client, broker))
            }
        }
    }
}

const FIRST: Confirm = Confirm::FirstRecord {
    topic: FIRST_TOPIC,
    qos: 1,
    retain: false,
};

fn exchange(client: &mut ClientRecords, broker: &mut BrokerRecords) {
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
fn honest_handshake_with_finished_yields_matching_records() {
    let (mut client, mut broker) = Run::default().go().unwrap();
    assert_eq!(broker.identity, IDENTITY);
    assert_eq!(
        (client.record_limit_log2, broker.record_limit_log2),
        (16, 16)
    );
    exchange(&mut client, &mut broker);
}

#[test]
fn honest_handshake_with_first_record_yields_matching_records() {
    let (mut client, mut broker) = Run {
        confirm: FIRST,
        ..Run::default()
    }
    .go()
    .unwrap();
    assert_eq!(broker.identity, IDENTITY);
    // Record 0 was the confirmation: both sides continue at 1.
    assert_eq!(client.sealer.counter().used(), 1);
    assert_eq!(broker.opener.counter().used(), 1);
    exchange(&mut client, &mut broker);
}

#[test]
fn message_sizes_are_the_published_constants() {
    let mut rng = StdRng::seed_from_u64(1);
    let offer: ClientOffer =
        ClientOffer::new(IDENTITY, &Psk::new(PSK), &ctx(), 20, &mut rng).unwrap();
    assert_eq!(offer.offer_bytes.len(), offer_len(9));
    assert_eq!(offer_len(9), 42);
    let (_, response) = BrokerResponder::<crate::RustCrypto>::new(16)
        .unwrap()
        .respond(&offer.offer_bytes, &ctx(), false, lookup, &mut rng)
        .unwrap();
    assert_eq!(response.len(), RESPONSE_LEN);
    assert_eq!(RESPONSE_LEN, 49);
    let (finished, _) = offer
        .awaiting_response
        .on_response(&response, false)
        .unwrap();
    assert_eq!(finished.finished_bytes.len(), FINISHED_LEN);
}

fn offer_size() -> usize {
    offer_len(IDENTITY.len())
}

#[test]
fn every_offer_byte_is_authenticated() {
    for confirm in [Confirm::Finished, FIRST] {
        for i in 0..offer_size() {
            let err = Run {
                offer_flip: Some((i, 0x01)),
                confirm,
                ..Run::default()
            }
            .go()
            .map(|_| ())
            .unwrap_err();
            // Limit 20 ^ 1 = 21 is still valid; the identity byte may become
            // another (unknown) identity: either way the handshake fails.
            assert!(
                matches!(
                    err,
                    LwaError::BrokerAuthFailed
                        | LwaError::Malformed(..)
                        | LwaError::ClientAuthFailed
                ),
                "offer byte {i}: {err:?}"
            );
        }
    }
}

#[test]
fn every_response_byte_is_authenticated() {
    for i in 0..RESPONSE_LEN {
        let err = Run {
            response_flip: Some((i, 0x80)),
            ..Run::default()
        }
        .go()
        .map(|_| ())
        .unwrap_err();
        assert!(
            matches!(err, LwaError::BrokerAuthFailed | LwaError::Malformed(..)),
            "response byte {i}: {err:?}"
        );
    }
    // The chosen limit lowered by the attacker: still caught by the MAC.
    let err = Run {
        response_flip: Some((0, 0x01)),
        ..Run::default()
    }
    .go()
    .map(|_| ())
    .unwrap_err();
    assert_eq!(err, LwaError::BrokerAuthFailed);
}

#[test]
fn every_finished_byte_and_record_byte_is_checked() {
    for i in 0..FINISHED_LEN {
        let err = Run {
            confirmation_flip: Some((i, 0x04)),
            ..Run::default()
        }
        .go()
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err, LwaError::ClientAuthFailed, "finished byte {i}");
    }
    for i in 0..FIRST_PAYLOAD.len() + crate::RECORD_OVERHEAD {
        let err = Run {
            confirmation_flip: Some((i, 0x04)),
            confirm: FIRST,
            ..Run::default()
        }
        .go()
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err, LwaError::ClientAuthFailed, "record byte {i}");
    }
}

#[test]
fn first_record_binds_topic_qos_retain() {
    for confirm in [
        Confirm::FirstRecord {
            topic: "up/other",
            qos: 1,
            retain: false,
        },
        Confirm::FirstRecord {
            topic: FIRST_TOPIC,
            qos: 0,
            retain: false,
        },
        Confirm::FirstRecord {
            topic: FIRST_TOPIC,
            qos: 1,
            retain: true,
        },
    ] {
        let err = Run {
            confirm,
            ..Run::default()
        }
        .go()
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err, LwaError::ClientAuthFailed);
    }
}

#[test]
fn malformed_confirmations_fail() {
    let mut rng = StdRng::seed_from_u64(3);
    let offer: ClientOffer =
        ClientOffer::new(IDENTITY, &Psk::new(PSK), &ctx(), 20, &mut rng).unwrap();
    let responder: BrokerResponder = BrokerResponder::new(16).unwrap();
    for data in [&[][..], &[0u8; 15][..], &[0u8; 17][..]] {
        let (awaiting, _) = responder
            .respond(&offer.offer_bytes, &ctx(), false, lookup, &mut rng)
            .unwrap();
        assert!(matches!(
            awaiting.on_finished(data).unwrap_err(),
            LwaError::Malformed(WireMessage::Finished, _)
        ));
    }
    // A first PUBLISH shorter than a tag.
    let (awaiting, _) = responder
        .respond(&offer.offer_bytes, &ctx(), false, lookup, &mut rng)
        .unwrap();
    assert_eq!(
        awaiting
            .on_first_record("t", 0, false, &mut [0u8; 15])
            .unwrap_err(),
        LwaError::ClientAuthFailed
    );
}

#[test]
fn wrong_psk_fails_at_the_client_and_unknown_identity_at_the_broker() {
    for confirm in [Confirm::Finished, FIRST] {
        let err = Run {
            client_psk: [0x99; 32],
            confirm,
            ..Run::default()
        }
        .go()
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err, LwaError::BrokerAuthFailed);
        // Another registered identity's key.
        let err = Run {
            identity: "sensor-02",
            confirm,
            ..Run::default()
        }
        .go()
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err, LwaError::BrokerAuthFailed);
        // Unknown identity: the dummy PSK makes the client fail first.
        let err = Run {
            identity: "ghost",
            confirm,
            ..Run::default()
        }
        .go()
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err, LwaError::BrokerAuthFailed);
    }
}

#[test]
fn unknown_identity_is_refused_even_with_the_right_keys() {
    // A broker whose lookup misses, fed the client's real finished: the
    // dummy key already breaks the MAC; the flag makes the refusal certain.
    let mut rng = StdRng::seed_from_u64(5);
    let offer: ClientOffer =
        ClientOffer::new("ghost", &Psk::new(PSK), &ctx(), 20, &mut rng).unwrap();
    let responder: BrokerResponder = BrokerResponder::new(16).unwrap();
    let (awaiting, _) = responder
        .respond(&offer.offer_bytes, &ctx(), false, |_| None, &mut rng)
        .unwrap();
    assert_eq!(
        awaiting.on_finished(&[0; 16]).unwrap_err(),
        LwaError::ClientAuthFailed
    );
}

#[test]
fn bound_mqtt_fields_are_authenticated() {
    let other_will = WillContext {
        payload: b"online",
        ..WILL
    };
    let changes: Vec<Run> = vec![
        Run {
            broker_ctx: ConnectContext {
                client_id: "client-2",
                ..ctx()
            },
            ..Run::default()
        },
        Run {
            broker_ctx: ConnectContext {
                clean_start: true,
                ..ctx()
            },
            ..Run::default()
        },
        Run {
            broker_ctx: ConnectContext {
                will: Some(other_will),
                ..ctx()
            },
            ..Run::default()
        },
        Run {
            broker_ctx: ConnectContext {
                will: None,
                ..ctx()
            },
            ..Run::default()
        },
        Run {
            client_session_present: false,
            ..Run::default()
        },
    ];
    for run in changes {
        assert_eq!(
            run.go().map(|_| ()).unwrap_err(),
            LwaError::BrokerAuthFailed
        );
    }
}

#[test]
fn low_order_points_are_refused_on_both_sides() {
    let mut rng = StdRng::seed_from_u64(9);
    let offer: ClientOffer =
        ClientOffer::new(IDENTITY, &Psk::new(PSK), &ctx(), 20, &mut rng).unwrap();
    let mut bad_offer = offer.offer_bytes.clone();
    bad_offer[1..33].copy_from_slice(&[0; 32]);
    let responder: BrokerResponder = BrokerResponder::new(16).unwrap();
    assert_eq!(
        responder
            .respond(&bad_offer, &ctx(), false, lookup, &mut rng)
            .unwrap_err(),
        LwaError::LowOrderPoint
    );
    let mut bad_response = vec![16u8];
    bad_response.extend_from_slice(&[0; 32]);
    bad_response.extend_from_slice(&[0; 16]);
    assert_eq!(
        offer
            .awaiting_response
            .on_response(&bad_response, false)
            .unwrap_err(),
        LwaError::LowOrderPoint
    );
}

#[test]
fn record_limit_is_negotiated_down_only() {
    let (client, broker) = Run {
        client_limit: 8,
        broker_limit: 32,
        ..Run::default()
    }
    .go()
    .unwrap();
    assert_eq!((client.record_limit_log2, broker.record_limit_log2), (8, 8));
    // A response with a chosen limit above the offer (MAC aside) is malformed.
    let mut rng = StdRng::seed_from_u64(11);
    let offer: ClientOffer =
        ClientOffer::new(IDENTITY, &Psk::new(PSK), &ctx(), 8, &mut rng).unwrap();
    let mut response = vec![9u8];
    response.extend_from_slice(&[0x55; 48]);
    assert_eq!(
        offer
            .awaiting_response
            .on_response(&response, false)
            .unwrap_err(),
        LwaError::Malformed(WireMessage::Response, WireDefect::RecordLimitAboveOffer)
    );
    assert!(BrokerResponder::<crate::RustCrypto>::new(0).is_err());
    assert!(BrokerResponder::<crate::RustCrypto>::new(49).is_err());
}

#[test]
fn lwa1_and_lwa2_do_not_interoperate() {
    // An LWA1 offer is not an LWA2 offer with the same meaning: the
    // versions are told apart by the method, and their keys differ anyway.
    let mut rng = StdRng::seed_from_u64(13);
    let v1 = crate::handshake::ClientOffer::<crate::RustCrypto>::new(
        IDENTITY,
        &Psk::new(PSK),
        &ctx(),
        20,
        &mut rng,
    )
    .unwrap();
    let responder: BrokerResponder = BrokerResponder::new(16).unwrap();
    // byte 0 of an LWA1 offer is 0x01, a valid LWA2 limit; the rest misparses or fails later.
    if let Ok((_, response)) = responder.respond(&v1.offer_bytes, &ctx(), false, lookup, &mut rng) {
        assert!(v1.awaiting_response.on_response(&response, false).is_err());
    }
    assert!(check_method(Some("LWA1")).is_err());
    assert!(check_method(Some(METHOD)).is_ok());
    assert_eq!(
        check_method(None).unwrap_err(),
        LwaError::MissingAuthentication
    );
}

#[cfg(feature = "ring")]
#[test]
fn both_backends_agree() {
    use crate::backend::ring::Ring;
    let run = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        let a = ClientOffer::<Ring>::new(IDENTITY, &Psk::new(PSK), &ctx(), 20, &mut rng).unwrap();
        let mut rng2 = StdRng::seed_from_u64(seed);
        let b =
            ClientOffer::<crate::RustCrypto>::new(IDENTITY, &Psk::new(PSK), &ctx(), 20, &mut rng2)
                .unwrap();
        assert_eq!(a.offer_bytes, b.offer_bytes);
        let (_, ra) = BrokerResponder::<Ring>::new(16)
            .unwrap()
            .respond(&a.offer_bytes, &ctx(), true, lookup, &mut rng)
            .unwrap();
        let (_, rb) = BrokerResponder::<crate::RustCrypto>::new(16)
            .unwrap()
            .respond(&b.offer_bytes, &ctx(), true, lookup, &mut rng2)
            .unwrap();
        assert_eq!(ra, rb);
    };
    run(1);
    run(2);
}

/// Metadata protection (LWA2.md 7.1): granted exactly when asked, and the
/// `M` bit cannot be set or cleared on the way without a failure.
mod metadata_flag {
    use super::*;
    use crate::lwa2::metadata::{self, Inner};

    /// Offer with `offer_m`; the attacker XORs `offer_xor` into the offer's
    /// first byte and `response_xor` into the response's. The client's result.
    fn run(offer_m: bool, offer_xor: u8, response_xor: u8) -> Result<bool, LwaError> {
        let mut rng = StdRng::seed_from_u64(7);
        let offer = ClientOffer::<crate::RustCrypto>::new_with_metadata(
            IDENTITY,
            &Psk::new(PSK),
            &ctx(),
            20,
            offer_m,
            &mut rng,
        )
        .unwrap();
        let mut offer_bytes = offer.offer_bytes.clone();
        offer_bytes[0] ^= offer_xor;
        let (awaiting, mut response) = BrokerResponder::<crate::RustCrypto>::new(16)
            .unwrap()
            .respond(&offer_bytes, &ctx(), false, lookup, &mut rng)?;
        assert_eq!(awaiting.protects_metadata(), offer_bytes[0] & 0x80 != 0);
        response[0] ^= response_xor;
        let (finished, client) = offer.awaiting_response.on_response(&response, false)?;
        let broker = awaiting.on_finished(&finished.finished_bytes)?;
        assert_eq!(client.protect_metadata, broker.protect_metadata);
        Ok(client.protect_metadata)
    }

    #[test]
    fn granted_exactly_when_asked() {
        assert_eq!(run(true, 0, 0), Ok(true));
        assert_eq!(run(false, 0, 0), Ok(false));
    }

    #[test]
    fn stripping_or_adding_the_bit_is_noticed() {
        let mismatch = Err(LwaError::Malformed(
            WireMessage::Response,
            WireDefect::MetadataFlagMismatch,
        ));
        // One message changed: the response's bit no longer matches the offer.
        assert_eq!(run(true, 0x80, 0), mismatch);
        assert_eq!(run(false, 0x80, 0), mismatch);
        assert_eq!(run(true, 0, 0x80), mismatch);
        assert_eq!(run(false, 0, 0x80), mismatch);
        // Both changed so the bits match again: the transcripts differ.
        assert_eq!(run(true, 0x80, 0x80), Err(LwaError::BrokerAuthFailed));
        assert_eq!(run(false, 0x80, 0x80), Err(LwaError::BrokerAuthFailed));
    }

    #[test]
    fn the_first_record_confirms_with_the_inner_layout() {
        let mut rng = StdRng::seed_from_u64(9);
        let offer = ClientOffer::<crate::RustCrypto>::new_with_metadata(
            IDENTITY,
            &Psk::new(PSK),
            &ctx(),
            20,
            true,
            &mut rng,
        )
        .unwrap();
        let (awaiting, response) = BrokerResponder::<crate::RustCrypto>::new(16)
            .unwrap()
            .respond(&offer.offer_bytes, &ctx(), false, lookup, &mut rng)
            .unwrap();
        let (_, mut client) = offer
            .awaiting_response
            .on_response(&response, false)
            .unwrap();
        let inner = Inner {
            topic: "a/b",
            properties: &[],
            payload: b"p",
        };
        let mut sealed = inner.seal(&mut client.sealer, 0, false).unwrap();
        let (mut broker, len) = awaiting
            .on_first_record(metadata::PLACEHOLDER_TOPIC, 0, false, &mut sealed)
            .unwrap();
        assert_eq!(Inner::parse(&sealed[..len]).unwrap(), inner);
        let mut second = inner.seal(&mut client.sealer, 0, false).unwrap();
        let n = metadata::open_in_place(&mut broker.opener, 0, false, &mut second).unwrap();
        assert_eq!(Inner::parse(&second[..n]).unwrap(), inner);
    }
}
