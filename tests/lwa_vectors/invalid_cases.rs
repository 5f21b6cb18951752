//! The invalid-case catalogue of invalid.json. Every case states the error
//! the spec requires; the checker fails if the implementation disagrees.

use std::collections::BTreeMap;

use mqtt_lwa::lwa::schedule::{transcript_hash, KeySchedule};
use mqtt_lwa::lwa::wire::{Offer, Response};
use mqtt_lwa::lwa::Direction;
use x25519_dalek::{PublicKey, StaticSecret};

use super::compute::*;
use super::generate::{basic_inputs, pattern, plan};
use super::model::*;

fn err_name_code(name: &str) -> (String, u8) {
    let code = match name {
        "unsupported_version" | "malformed" => 0x8C,
        "empty_client_id" => 0x85,
        "record_limit_reached" => 0x83,
        _ => 0x87,
    };
    (name.to_owned(), code)
}

pub fn invalid() -> InvalidFile {
    let base = basic_inputs();
    let hv = handshake_vector::<Gen>("base", "", base.clone(), &[]);
    let offer = unh(&hv.messages.offer);
    let response = unh(&hv.messages.response);
    let psks = BTreeMap::from([(base.identity.clone(), base.psk.clone())]);
    let mut cases = Vec::new();

    let mut broker_respond =
        |name: &str, description: &str, offer: Vec<u8>, inputs: HandshakeInputs, err: &str| {
            let (expected_error, reason_code) = err_name_code(err);
            cases.push(InvalidCase::BrokerRespond {
                name: name.into(),
                description: description.into(),
                inputs,
                psks: psks.clone(),
                offer: h(&offer),
                expected_error,
                reason_code,
            });
        };
    for (i, p) in super::LOW_ORDER_POINTS.iter().enumerate() {
        let o = Offer {
            record_limit_log2: 20,
            identity: &base.identity,
            ephemeral: unh32(p),
        }
        .to_bytes()
        .unwrap();
        broker_respond(
            &format!("offer-low-order-point-{i}"),
            &format!("e_c = {p} gives an all-zero X25519 output"),
            o,
            base.clone(),
            "low_order_point",
        );
    }
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut o = offer.clone();
        f(&mut o);
        o
    };
    broker_respond(
        "offer-version-2",
        "version byte 0x02",
        edit(&|o| o[0] = 2),
        base.clone(),
        "unsupported_version",
    );
    broker_respond(
        "offer-empty",
        "zero-length Authentication Data",
        Vec::new(),
        base.clone(),
        "malformed",
    );
    broker_respond(
        "offer-truncated",
        "last byte of e_c missing",
        edit(&|o| {
            o.pop();
        }),
        base.clone(),
        "malformed",
    );
    broker_respond(
        "offer-trailing-byte",
        "one byte after e_c",
        edit(&|o| o.push(0)),
        base.clone(),
        "malformed",
    );
    broker_respond(
        "offer-limit-0",
        "record_limit_log2 = 0",
        edit(&|o| o[1] = 0),
        base.clone(),
        "malformed",
    );
    broker_respond(
        "offer-limit-49",
        "record_limit_log2 = 49",
        edit(&|o| o[1] = 49),
        base.clone(),
        "malformed",
    );
    broker_respond(
        "offer-identity-not-utf8",
        "identity byte 0xFF",
        edit(&|o| o[3] = 0xFF),
        base.clone(),
        "malformed",
    );
    broker_respond(
        "offer-identity-nul",
        "identity contains U+0000",
        edit(&|o| o[3] = 0),
        base.clone(),
        "malformed",
    );
    broker_respond(
        "offer-id-len-0",
        "id_len = 0 (and no identity bytes)",
        [&[1u8, 20, 0][..], &offer[12..]].concat(),
        base.clone(),
        "malformed",
    );
    broker_respond(
        "empty-client-id",
        "CONNECT Client Identifier is empty",
        offer.clone(),
        HandshakeInputs {
            client_id: String::new(),
            ..base.clone()
        },
        "empty_client_id",
    );

    let mut client_response = |name: &str,
                               description: &str,
                               resp: Vec<u8>,
                               session_present: bool,
                               inputs: HandshakeInputs,
                               err: &str| {
        let (expected_error, reason_code) = err_name_code(err);
        cases.push(InvalidCase::ClientResponse {
            name: name.into(),
            description: description.into(),
            inputs,
            response: h(&resp),
            session_present,
            expected_error,
            reason_code,
        });
    };
    let redit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut r = response.clone();
        f(&mut r);
        r
    };
    client_response(
        "client-wrong-psk",
        "client holds a different PSK than the broker (broker_mac fails)",
        response.clone(),
        false,
        HandshakeInputs {
            psk: "11".repeat(32),
            ..base.clone()
        },
        "broker_auth_failed",
    );
    client_response(
        "broker-mac-tampered",
        "last bit of broker_mac flipped",
        redit(&|r| r[49] ^= 1),
        false,
        base.clone(),
        "broker_auth_failed",
    );
    client_response(
        "e_b-tampered",
        "first byte of e_b changed",
        redit(&|r| r[2] ^= 0x40),
        false,
        base.clone(),
        "broker_auth_failed",
    );
    client_response(
        "chosen-limit-changed",
        "chosen limit 16 -> 17 (still <= offered 20)",
        redit(&|r| r[1] = 17),
        false,
        base.clone(),
        "broker_auth_failed",
    );
    client_response(
        "chosen-limit-above-offer",
        "chosen limit 21 > offered 20",
        redit(&|r| r[1] = 21),
        false,
        base.clone(),
        "malformed",
    );
    client_response(
        "session-present-flipped",
        "CONNACK Session Present 1 instead of 0",
        response.clone(),
        true,
        base.clone(),
        "broker_auth_failed",
    );
    client_response(
        "response-version-2",
        "version byte 0x02",
        redit(&|r| r[0] = 2),
        false,
        base.clone(),
        "unsupported_version",
    );
    client_response(
        "response-truncated",
        "49 bytes",
        redit(&|r| {
            r.pop();
        }),
        false,
        base.clone(),
        "malformed",
    );
    for (i, p) in super::LOW_ORDER_POINTS.iter().enumerate().take(4) {
        let resp = Response {
            record_limit_log2: 16,
            ephemeral: unh32(p),
            broker_mac: [0; 16],
        }
        .to_bytes();
        client_response(
            &format!("response-low-order-point-{i}"),
            &format!("e_b = {p}"),
            resp,
            false,
            base.clone(),
            "low_order_point",
        );
    }

    // Finished computed by a client that ignores broker_mac, with `psk`.
    let forged_finished = |psk: &str| -> Vec<u8> {
        let r = Response::parse(&response).unwrap();
        let dh = StaticSecret::from(unh32(&base.client_ephemeral_secret))
            .diffie_hellman(&PublicKey::from(r.ephemeral));
        let owned = base.owned_context();
        let th = transcript_hash(
            &owned.context().encode().unwrap(),
            &offer,
            &r.without_mac(),
            false,
        );
        let ks = KeySchedule::derive(&mirror_psk(psk), dh.as_bytes(), &th).unwrap();
        ks.client_mac(&r.broker_mac).unwrap().to_vec()
    };
    let dummy = pattern(0xD0, 32);
    let unknown_response = {
        let owned = base.owned_context();
        let mut rng = FixedRng::new(&[&unh32(&base.broker_ephemeral_secret), &unh32(&dummy)]);
        let (_, r) = mqtt_lwa::lwa::BrokerResponder::new(16)
            .unwrap()
            .respond(&offer, &owned.context(), false, |_| None, &mut rng)
            .unwrap();
        r
    };
    let forged_unknown = |psk: &str| -> Vec<u8> {
        let r = Response::parse(&unknown_response).unwrap();
        let dh = StaticSecret::from(unh32(&base.client_ephemeral_secret))
            .diffie_hellman(&PublicKey::from(r.ephemeral));
        let owned = base.owned_context();
        let th = transcript_hash(
            &owned.context().encode().unwrap(),
            &offer,
            &r.without_mac(),
            false,
        );
        let ks = KeySchedule::derive(&mirror_psk(psk), dh.as_bytes(), &th).unwrap();
        ks.client_mac(&r.broker_mac).unwrap().to_vec()
    };
    let finished = unh(&hv.messages.finished);
    let mut broker_finished = |name: &str,
                               description: &str,
                               table: BTreeMap<String, String>,
                               dummy: Option<String>,
                               resp: &[u8],
                               fin: Vec<u8>,
                               err: &str| {
        let (expected_error, reason_code) = err_name_code(err);
        cases.push(InvalidCase::BrokerFinished {
            name: name.into(),
            description: description.into(),
            inputs: base.clone(),
            psks: table,
            broker_dummy_psk: dummy,
            offer: h(&offer),
            response: h(resp),
            finished: h(&fin),
            expected_error,
            reason_code,
        });
    };
    let mut flipped = finished.clone();
    flipped[0] ^= 0x80;
    broker_finished(
        "client-mac-tampered",
        "first bit of client_mac flipped",
        psks.clone(),
        None,
        &response,
        flipped,
        "client_auth_failed",
    );
    broker_finished(
        "finished-wrong-psk",
        "client_mac computed with a wrong PSK by a client that ignored broker_mac",
        psks.clone(),
        None,
        &response,
        forged_finished(&"11".repeat(32)),
        "client_auth_failed",
    );
    broker_finished(
        "unknown-identity",
        "identity not in the PSK table: broker answers under the dummy PSK; client_mac under the client's PSK fails",
        BTreeMap::new(),
        Some(dummy.clone()),
        &unknown_response,
        forged_unknown(&base.psk),
        "client_auth_failed",
    );
    broker_finished(
        "unknown-identity-dummy-guessed",
        "even a client_mac under the dummy PSK itself is refused for an unknown identity",
        BTreeMap::new(),
        Some(dummy.clone()),
        &unknown_response,
        forged_unknown(&dummy),
        "client_auth_failed",
    );
    broker_finished(
        "finished-truncated",
        "15-byte finished",
        psks.clone(),
        None,
        &response,
        finished[..15].to_vec(),
        "malformed",
    );

    let c2b = &hv.records_state(Direction::ClientToBroker);
    let rec = |direction: Direction, counter: u64, topic: &str, qos: u8, retain: bool, p: &[u8]| {
        let (key, iv) = hv.keys(direction);
        standalone_record::<Gen>(
            direction,
            key,
            iv,
            16,
            counter,
            &plan(direction, topic, qos, retain, p),
        )
    };
    let good = rec(Direction::ClientToBroker, 0, "sensors/t", 1, false, b"21.5");
    let sealed = unh(&good.sealed);
    let mut record_open = |name: &str,
                           description: &str,
                           state: RecordState,
                           topic: &str,
                           qos: u8,
                           retain: bool,
                           sealed: Vec<u8>| {
        let (expected_error, reason_code) = err_name_code("record_open_failed");
        cases.push(InvalidCase::RecordOpen {
            name: name.into(),
            description: description.into(),
            state,
            topic: topic.into(),
            qos,
            retain,
            sealed: h(&sealed),
            expected_error,
            reason_code,
        });
    };
    let mut tampered_tag = sealed.clone();
    *tampered_tag.last_mut().unwrap() ^= 1;
    let mut tampered_body = sealed.clone();
    tampered_body[0] ^= 1;
    let at = |counter: u64| RecordState {
        counter,
        ..c2b.clone()
    };
    record_open(
        "tag-tampered",
        "last tag bit flipped",
        at(0),
        "sensors/t",
        1,
        false,
        tampered_tag,
    );
    record_open(
        "ciphertext-tampered",
        "first ciphertext bit flipped",
        at(0),
        "sensors/t",
        1,
        false,
        tampered_body,
    );
    record_open(
        "wrong-counter",
        "record sealed at counter 0 opened at counter 1 (replay)",
        at(1),
        "sensors/t",
        1,
        false,
        sealed.clone(),
    );
    record_open(
        "wrong-topic",
        "record moved from sensors/t to sensors/u",
        at(0),
        "sensors/u",
        1,
        false,
        sealed.clone(),
    );
    record_open(
        "changed-qos",
        "QoS 1 -> 2",
        at(0),
        "sensors/t",
        2,
        false,
        sealed.clone(),
    );
    record_open(
        "changed-retain",
        "retain 0 -> 1",
        at(0),
        "sensors/t",
        1,
        true,
        sealed.clone(),
    );
    record_open(
        "truncated",
        "last byte removed",
        at(0),
        "sensors/t",
        1,
        false,
        sealed[..sealed.len() - 1].to_vec(),
    );
    record_open(
        "shorter-than-tag",
        "15 bytes",
        at(0),
        "sensors/t",
        1,
        false,
        sealed[..15].to_vec(),
    );
    let reflected = rec(Direction::BrokerToClient, 0, "sensors/t", 1, false, b"21.5");
    record_open(
        "reflected",
        "b2c record fed to the c2b opener",
        at(0),
        "sensors/t",
        1,
        false,
        unh(&reflected.sealed),
    );
    let same_key_other_dir = standalone_record::<Gen>(
        Direction::BrokerToClient,
        hv.keys(Direction::ClientToBroker).0,
        hv.keys(Direction::ClientToBroker).1,
        16,
        0,
        &plan(Direction::BrokerToClient, "sensors/t", 1, false, b"21.5"),
    );
    record_open(
        "direction-byte",
        "sealed under the c2b key and iv but with dir byte 0x02 in the AAD",
        at(0),
        "sensors/t",
        1,
        false,
        unh(&same_key_other_dir.sealed),
    );
    let limit_state = RecordState {
        record_limit_log2: 16,
        counter: 1 << 16,
        ..c2b.clone()
    };
    let (expected_error, reason_code) = err_name_code("record_limit_reached");
    cases.push(InvalidCase::RecordOpen {
        name: "open-past-limit".into(),
        description: "opener already opened 2^16 records".into(),
        state: limit_state.clone(),
        topic: "sensors/t".into(),
        qos: 1,
        retain: false,
        sealed: h(&sealed),
        expected_error: expected_error.clone(),
        reason_code,
    });
    cases.push(InvalidCase::RecordSeal {
        name: "seal-past-limit".into(),
        description: "sealer already sealed 2^16 records".into(),
        state: limit_state,
        topic: "sensors/t".into(),
        qos: 1,
        retain: false,
        plaintext: h(b"one too many"),
        expected_error,
        reason_code,
    });

    InvalidFile {
        lwa_version: 1,
        description: "Inputs every LWA1 implementation must reject, with the error and the MQTT \
                      reason code. Handshake cases reuse the inputs of handshake vector \
                      rfc7748-keys."
            .into(),
        cases,
    }
}

fn mirror_psk(hex_psk: &str) -> mqtt_lwa::lwa::Psk {
    mqtt_lwa::lwa::Psk::new(unh32(hex_psk))
}
