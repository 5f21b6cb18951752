//! The vector catalogue: which handshakes, records and invalid cases the
//! JSON files contain. Every invalid case states the error the spec
//! requires; generation fails if the implementation disagrees.

use std::collections::BTreeMap;

use mqtt_lwa::lwa::schedule::{transcript_hash, KeySchedule};
use mqtt_lwa::lwa::wire::{Offer, Response};
use mqtt_lwa::lwa::Direction;
use x25519_dalek::{PublicKey, StaticSecret};

use super::compute::*;
use super::model::*;

/// RFC 7748 section 6.1 key pairs: the dh of the first vector is a published value.
pub const RFC7748_ALICE_SECRET: &str =
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
pub const RFC7748_BOB_SECRET: &str =
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
pub const RFC7748_SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

fn pattern(start: u8, len: usize) -> String {
    h(&(0..len)
        .map(|i| start.wrapping_add(i as u8))
        .collect::<Vec<_>>())
}

fn plan(
    direction: Direction,
    topic: &str,
    qos: u8,
    retain: bool,
    plaintext: &[u8],
) -> PlannedRecord {
    PlannedRecord {
        direction,
        topic: topic.to_owned(),
        qos,
        retain,
        plaintext: plaintext.to_vec(),
    }
}

pub fn basic_inputs() -> HandshakeInputs {
    HandshakeInputs {
        psk: pattern(0x00, 32),
        identity: "sensor-01".into(),
        client_id: "sensor-01".into(),
        clean_start: true,
        will: None,
        session_present: false,
        client_record_limit_log2: 20,
        broker_record_limit_log2: 16,
        client_ephemeral_secret: RFC7748_ALICE_SECRET.into(),
        broker_ephemeral_secret: RFC7748_BOB_SECRET.into(),
    }
}

pub fn handshakes() -> HandshakeFile {
    use Direction::{BrokerToClient as B2C, ClientToBroker as C2B};
    let long: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let v1 = handshake_vector(
        "rfc7748-keys",
        "RFC 7748 6.1 key pairs as ephemerals (dh is the RFC's shared secret); no will; \
         Session Present 0; limits 20 (client) / 16 (broker) -> 16",
        basic_inputs(),
        &[
            plan(C2B, "sensors/sensor-01/temp", 0, false, b""),
            plan(C2B, "sensors/sensor-01/temp", 1, false, b"21.5"),
            plan(B2C, "cmd/sensor-01", 1, false, b"reboot"),
            plan(C2B, "sensors/sensor-01/temp", 2, true, &[0xAB; 64]),
            plan(B2C, "cmd/sensor-01", 2, true, &long),
            plan(B2C, "cmd/sensor-01", 0, false, &[0x00; 16]),
        ],
    );
    let v2 = handshake_vector(
        "will-and-session-present",
        "Clean Start 0 with a Will (QoS 1, retain) and Session Present 1; limits 16 / 24 -> 16",
        HandshakeInputs {
            psk: pattern(0x80, 32),
            identity: "plant/line-3/unit-42".into(),
            client_id: "unit-42".into(),
            clean_start: false,
            will: Some(WillJson {
                topic: "plant/line-3/unit-42/status".into(),
                qos: 1,
                retain: true,
                payload: h(b"offline"),
            }),
            session_present: true,
            client_record_limit_log2: 16,
            broker_record_limit_log2: 24,
            client_ephemeral_secret: pattern(0x10, 32),
            broker_ephemeral_secret: pattern(0xA0, 32),
        },
        &[
            plan(C2B, "plant/line-3/unit-42/rpm", 1, false, b"1450"),
            plan(B2C, "plant/line-3/setpoint", 1, true, b"{\"rpm\":1500}"),
            plan(C2B, "plant/line-3/unit-42/rpm", 1, false, b"1499"),
        ],
    );
    let v3 = handshake_vector(
        "utf8-identity-max-limit",
        "Multi-byte UTF-8 identity and topics, QoS 0 will with empty payload, limits 48 / 48",
        HandshakeInputs {
            psk: "ff".repeat(32),
            identity: "capteur-é-温度".into(),
            client_id: "capteur-1".into(),
            clean_start: true,
            will: Some(WillJson {
                topic: "état/capteur-1".into(),
                qos: 0,
                retain: false,
                payload: String::new(),
            }),
            session_present: false,
            client_record_limit_log2: 48,
            broker_record_limit_log2: 48,
            client_ephemeral_secret: pattern(0x31, 32),
            broker_ephemeral_secret: pattern(0xC7, 32),
        },
        &[
            plan(C2B, "温度/β", 0, false, "température".as_bytes()),
            plan(B2C, "温度/β", 0, false, b"ok"),
        ],
    );
    let v4 = handshake_vector(
        "longest-identity",
        "255-byte identity (largest offer, 290 bytes), limits 1 / 48 -> 1 (two records per direction)",
        HandshakeInputs {
            psk: pattern(0x55, 32),
            identity: "i".repeat(255),
            client_id: "c".into(),
            clean_start: true,
            will: None,
            session_present: false,
            client_record_limit_log2: 1,
            broker_record_limit_log2: 48,
            client_ephemeral_secret: pattern(0x01, 32),
            broker_ephemeral_secret: pattern(0xF0, 32),
        },
        &[
            plan(C2B, "t", 0, false, b"first"),
            plan(C2B, "t", 0, false, b"second"),
            plan(B2C, "t", 0, false, b"only"),
        ],
    );
    assert_eq!(v1.intermediate.dh, RFC7748_SHARED);
    HandshakeFile {
        lwa_version: 1,
        description: "Complete LWA1 handshakes from fixed PSKs and ephemeral secrets, with every \
                      intermediate value, and records sealed in order by the resulting sessions."
            .into(),
        vectors: vec![v1, v2, v3, v4],
    }
}

pub fn records() -> RecordFile {
    let key: [u8; 32] = unh32(&pattern(0x40, 32));
    let iv: [u8; 12] = unh12(&pattern(0x70, 12));
    let big = (1u64 << 32) + 7;
    let last = (1u64 << 48) - 1;
    let mut out = Vec::new();
    for direction in [Direction::ClientToBroker, Direction::BrokerToClient] {
        for (counter, qos, retain, topic, payload) in [
            (0u64, 0u8, false, "a", Vec::new()),
            (1, 1, false, "a/b", b"x".to_vec()),
            (2, 2, true, "a/b/c", vec![0x5A; 1000]),
            (big, 1, true, "long/counter", b"counter above 2^32".to_vec()),
            (last, 0, false, "last/record", b"counter 2^48-1".to_vec()),
        ] {
            let p = plan(direction, topic, qos, retain, &payload);
            out.push(standalone_record(direction, key, iv, 48, counter, &p));
        }
    }
    RecordFile {
        lwa_version: 1,
        description: "Standalone records from explicit key, iv and counter (both directions; \
                      counters 0, 1, 2, 2^32+7 and 2^48-1; payloads of 0 to 1000 bytes)."
            .into(),
        records: out,
    }
}

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
    let hv = handshake_vector("base", "", base.clone(), &[]);
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
        standalone_record(
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
    let same_key_other_dir = standalone_record(
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

impl HandshakeVector {
    /// (key, iv) of one direction, from the intermediate values.
    pub fn keys(&self, direction: Direction) -> ([u8; 32], [u8; 12]) {
        match direction {
            Direction::ClientToBroker => (
                unh32(&self.intermediate.c2b_key),
                unh12(&self.intermediate.c2b_iv),
            ),
            Direction::BrokerToClient => (
                unh32(&self.intermediate.b2c_key),
                unh12(&self.intermediate.b2c_iv),
            ),
        }
    }

    /// A fresh opener state of one direction of this session.
    pub fn records_state(&self, direction: Direction) -> RecordState {
        let (key, iv) = self.keys(direction);
        RecordState {
            direction: direction.to_string(),
            key: h(&key),
            iv: h(&iv),
            record_limit_log2: self.intermediate.chosen_record_limit_log2,
            counter: 0,
        }
    }
}
