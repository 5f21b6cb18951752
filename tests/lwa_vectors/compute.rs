//! Computes a handshake vector from its inputs by running the real
//! typestates (with a fixed RNG) and the public key-schedule functions, and
//! runs invalid cases. Used both to generate the JSON files and to check them.
//!
//! Generic over the crypto backend `B`, so the same checks run against every
//! backend of `lwa-core` (the wire format must not depend on it); the files
//! are generated with [`Gen`], the backend mqtt-lwa runs.

use std::collections::BTreeMap;

use lwa_core::handshake::{BrokerResponder, ClientOffer};
use lwa_core::record::{record_aad, record_nonce, RecordOpener, RecordSealer};
use lwa_core::schedule::{transcript_hash, KeySchedule, TRANSCRIPT_LABEL};
use lwa_core::{Crypto, Direction, LwaError, Psk};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

use super::model::*;

/// The backend the vector files are generated with.
pub type Gen = mqtt_lwa::lwa::Backend;

/// A record to seal in a handshake vector: direction, topic, qos, retain, plaintext.
pub struct PlannedRecord {
    pub direction: Direction,
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub plaintext: Vec<u8>,
}

fn lookup_from(table: &BTreeMap<String, String>) -> impl FnOnce(&str) -> Option<Psk> + '_ {
    move |identity| table.get(identity).map(|k| Psk::new(unh32(k)))
}

pub fn record_json(
    direction: Direction,
    key: &[u8; 32],
    iv: &[u8; 12],
    limit: u8,
    counter: u64,
    plan: &PlannedRecord,
    sealed: &[u8],
) -> RecordJson {
    RecordJson {
        direction: direction.to_string(),
        key: h(key),
        iv: h(iv),
        record_limit_log2: limit,
        counter,
        topic: plan.topic.clone(),
        qos: plan.qos,
        retain: plan.retain,
        plaintext: h(&plan.plaintext),
        nonce: h(&record_nonce(iv, counter)),
        aad: h(&record_aad(direction, counter, plan.qos, plan.retain, &plan.topic).unwrap()),
        sealed: h(sealed),
        metadata: None,
    }
}

/// Runs an honest handshake from `inputs` and seals `plan` in order.
pub fn handshake_vector<B: Crypto>(
    name: &str,
    description: &str,
    inputs: HandshakeInputs,
    plan: &[PlannedRecord],
) -> HandshakeVector {
    let owned = inputs.owned_context();
    let ctx = owned.context();
    let c_secret = unh32(&inputs.client_ephemeral_secret);
    let b_secret = unh32(&inputs.broker_ephemeral_secret);
    let psk = inputs.psk();

    let mut crng = FixedRng::new(&[&c_secret]);
    let offer = ClientOffer::<B>::new(
        &inputs.identity,
        &psk,
        &ctx,
        inputs.client_record_limit_log2,
        &mut crng,
    )
    .unwrap();
    assert_eq!(crng.remaining(), 0, "client draws exactly e_c");
    let offer_bytes = offer.offer_bytes.clone();
    let mut brng = FixedRng::new(&[&b_secret]);
    let table = BTreeMap::from([(inputs.identity.clone(), inputs.psk.clone())]);
    let (awaiting, response) = BrokerResponder::<B>::new(inputs.broker_record_limit_log2)
        .unwrap()
        .respond(
            &offer_bytes,
            &ctx,
            inputs.session_present,
            lookup_from(&table),
            &mut brng,
        )
        .unwrap();
    assert_eq!(
        brng.remaining(),
        0,
        "broker draws exactly e_b for a known identity"
    );
    let (finished, mut client) = offer
        .awaiting_response
        .on_response(&response, inputs.session_present)
        .unwrap();
    let mut broker = awaiting.on_finished(&finished.finished_bytes).unwrap();
    assert_eq!(broker.identity, inputs.identity);

    // Intermediate values through the public pure functions.
    let c_pub = PublicKey::from(&StaticSecret::from(c_secret));
    let b_pub = PublicKey::from(&StaticSecret::from(b_secret));
    let dh = StaticSecret::from(c_secret).diffie_hellman(&b_pub);
    let dh_other = StaticSecret::from(b_secret).diffie_hellman(&c_pub);
    assert_eq!(dh.as_bytes(), dh_other.as_bytes());
    let ctx_bytes = ctx.encode().unwrap();
    let rwm = &response[..34];
    let transcript_input = [
        TRANSCRIPT_LABEL,
        &ctx_bytes,
        &offer_bytes,
        rwm,
        &[u8::from(inputs.session_present)],
    ]
    .concat();
    let th = transcript_hash::<B>(&ctx_bytes, &offer_bytes, rwm, inputs.session_present);
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&transcript_input)), th);
    let ks = KeySchedule::<B>::derive(&psk, dh.as_bytes(), &th).unwrap();
    let broker_mac = ks.broker_mac().unwrap();
    assert_eq!(&response[34..], &broker_mac);
    let client_mac = ks.client_mac(&broker_mac).unwrap();
    assert_eq!(finished.finished_bytes, client_mac);
    let chosen = client.record_limit_log2;

    let mut records = Vec::new();
    for p in plan {
        let (sealer, opener, key, iv) = match p.direction {
            Direction::ClientToBroker => (
                &mut client.sealer,
                &mut broker.opener,
                ks.c2b_key(),
                ks.c2b_iv(),
            ),
            Direction::BrokerToClient => (
                &mut broker.sealer,
                &mut client.opener,
                ks.b2c_key(),
                ks.b2c_iv(),
            ),
        };
        let counter = sealer.counter().used();
        let sealed = sealer
            .seal(&p.topic, p.qos, p.retain, &p.plaintext)
            .unwrap();
        let opened = opener.open(&p.topic, p.qos, p.retain, &sealed).unwrap();
        assert_eq!(opened, p.plaintext);
        records.push(record_json(
            p.direction,
            key,
            iv,
            chosen,
            counter,
            p,
            &sealed,
        ));
    }

    HandshakeVector {
        name: name.to_owned(),
        description: description.to_owned(),
        intermediate: Intermediate {
            client_ephemeral_public: h(c_pub.as_bytes()),
            broker_ephemeral_public: h(b_pub.as_bytes()),
            connect_context: h(&ctx_bytes),
            chosen_record_limit_log2: chosen,
            response_without_mac: h(rwm),
            transcript_input: h(&transcript_input),
            th: h(&th),
            dh: h(dh.as_bytes()),
            prk: h(ks.prk()),
            c2b_key: h(ks.c2b_key()),
            c2b_iv: h(ks.c2b_iv()),
            b2c_key: h(ks.b2c_key()),
            b2c_iv: h(ks.b2c_iv()),
            broker_mac_key: h(ks.broker_mac_key()),
            client_mac_key: h(ks.client_mac_key()),
            broker_mac: h(&broker_mac),
            client_mac: h(&client_mac),
        },
        messages: Messages {
            offer: h(&offer_bytes),
            response: h(&response),
            finished: h(&finished.finished_bytes),
        },
        inputs,
        records: records.clone(),
    }
}

/// Seals one standalone record from explicit key material at an explicit counter.
pub fn standalone_record<B: Crypto>(
    direction: Direction,
    key: [u8; 32],
    iv: [u8; 12],
    limit: u8,
    counter: u64,
    plan: &PlannedRecord,
) -> RecordJson {
    let mut sealer = RecordSealer::<B>::new(direction, &key, &iv, limit)
        .unwrap()
        .starting_at(counter)
        .unwrap();
    let sealed = sealer
        .seal(&plan.topic, plan.qos, plan.retain, &plan.plaintext)
        .unwrap();
    let mut opener = RecordOpener::<B>::new(direction, &key, &iv, limit)
        .unwrap()
        .starting_at(counter)
        .unwrap();
    assert_eq!(
        opener
            .open(&plan.topic, plan.qos, plan.retain, &sealed)
            .unwrap(),
        plan.plaintext
    );
    record_json(direction, &key, &iv, limit, counter, plan, &sealed)
}

/// Re-derives a standalone record from its JSON fields (plan + key material).
pub fn recompute_record<B: Crypto>(r: &RecordJson) -> RecordJson {
    let plan = PlannedRecord {
        direction: direction(&r.direction),
        topic: r.topic.clone(),
        qos: r.qos,
        retain: r.retain,
        plaintext: unh(&r.plaintext),
    };
    standalone_record::<B>(
        plan.direction,
        unh32(&r.key),
        unh12(&r.iv),
        r.record_limit_log2,
        r.counter,
        &plan,
    )
}

fn sealer_from<B: Crypto>(state: &RecordState) -> RecordSealer<B> {
    RecordSealer::new(
        direction(&state.direction),
        &unh32(&state.key),
        &unh12(&state.iv),
        state.record_limit_log2,
    )
    .unwrap()
    .starting_at(state.counter)
    .unwrap()
}

fn opener_from<B: Crypto>(state: &RecordState) -> RecordOpener<B> {
    RecordOpener::new(
        direction(&state.direction),
        &unh32(&state.key),
        &unh12(&state.iv),
        state.record_limit_log2,
    )
    .unwrap()
    .starting_at(state.counter)
    .unwrap()
}

/// Runs an invalid case; returns the error the implementation reports (None if it accepted).
pub fn run_invalid<B: Crypto>(case: &InvalidCase) -> Option<LwaError> {
    match case {
        InvalidCase::BrokerRespond {
            inputs,
            psks,
            offer,
            ..
        } => {
            let owned = inputs.owned_context();
            let mut rng = FixedRng::new(&[&unh32(&inputs.broker_ephemeral_secret), &[0; 32]]);
            BrokerResponder::<B>::new(inputs.broker_record_limit_log2)
                .unwrap()
                .respond(
                    &unh(offer),
                    &owned.context(),
                    inputs.session_present,
                    lookup_from(psks),
                    &mut rng,
                )
                .err()
        }
        InvalidCase::ClientResponse {
            inputs,
            response,
            session_present,
            ..
        } => {
            let owned = inputs.owned_context();
            let mut rng = FixedRng::new(&[&unh32(&inputs.client_ephemeral_secret)]);
            let offer = ClientOffer::<B>::new(
                &inputs.identity,
                &inputs.psk(),
                &owned.context(),
                inputs.client_record_limit_log2,
                &mut rng,
            )
            .unwrap();
            offer
                .awaiting_response
                .on_response(&unh(response), *session_present)
                .err()
        }
        InvalidCase::BrokerFinished {
            inputs,
            psks,
            broker_dummy_psk,
            offer,
            response,
            finished,
            ..
        } => {
            let owned = inputs.owned_context();
            let dummy = broker_dummy_psk.as_deref().map(unh).unwrap_or_default();
            let mut rng = FixedRng::new(&[&unh32(&inputs.broker_ephemeral_secret), &dummy]);
            let (awaiting, actual_response) =
                BrokerResponder::<B>::new(inputs.broker_record_limit_log2)
                    .unwrap()
                    .respond(
                        &unh(offer),
                        &owned.context(),
                        inputs.session_present,
                        lookup_from(psks),
                        &mut rng,
                    )
                    .unwrap();
            assert_eq!(h(&actual_response), *response, "{}: response", case.name());
            awaiting.on_finished(&unh(finished)).err()
        }
        InvalidCase::RecordOpen {
            state,
            topic,
            qos: q,
            retain,
            sealed,
            ..
        } => opener_from::<B>(state)
            .open(topic, *q, *retain, &unh(sealed))
            .err(),
        InvalidCase::RecordSeal {
            state,
            topic,
            qos: q,
            retain,
            plaintext,
            ..
        } => sealer_from::<B>(state)
            .seal(topic, *q, *retain, &unh(plaintext))
            .err(),
    }
}

/// The (expected_error, reason_code) a case declares.
pub fn expectation(case: &InvalidCase) -> (&str, u8) {
    match case {
        InvalidCase::BrokerRespond {
            expected_error,
            reason_code,
            ..
        }
        | InvalidCase::ClientResponse {
            expected_error,
            reason_code,
            ..
        }
        | InvalidCase::BrokerFinished {
            expected_error,
            reason_code,
            ..
        }
        | InvalidCase::RecordOpen {
            expected_error,
            reason_code,
            ..
        }
        | InvalidCase::RecordSeal {
            expected_error,
            reason_code,
            ..
        } => (expected_error, *reason_code),
    }
}
