//! LWA2 invalid cases (lwa2-invalid.json, LWA2.md section 13): each case is
//! one change to an honest run of the first LWA2 handshake vector, at one
//! stage, with the error LWA2.md requires.

use std::collections::BTreeMap;

use lwa_core::crypto::Blake3;
use lwa_core::lwa2::{BrokerAwaitingConfirmation, BrokerResponder, ClientOffer};
use lwa_core::{LwaError, Psk, RustCrypto};
use serde::{Deserialize, Serialize};

use super::model::*;

/// Where the invalid input is fed in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The broker (inputs, `psks`) answers `offer` and must fail.
    BrokerRespond,
    /// The client (inputs) receives `response` and must fail.
    ClientResponse,
    /// The broker answers `offer` (randomness: `e_b` secret, then for an
    /// unknown identity the dummy PSK `pattern(0x77)`), then receives `finished`.
    BrokerFinished,
    /// As `broker_finished`, then receives the first PUBLISH `record`.
    BrokerFirstRecord,
}

/// A first PUBLISH as the broker sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirstRecord {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub sealed: String,
}

/// One invalid case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lwa2Case {
    pub name: String,
    pub description: String,
    pub stage: Stage,
    pub inputs: HandshakeInputs,
    pub psks: BTreeMap<String, String>,
    pub offer: String,
    pub response: Option<String>,
    pub finished: Option<String>,
    pub record: Option<FirstRecord>,
    pub expected_error: String,
    pub reason_code: u8,
}

/// lwa2-invalid.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lwa2InvalidFile {
    pub lwa_version: u8,
    pub description: String,
    pub cases: Vec<Lwa2Case>,
}

const DUMMY_PSK: [u8; 32] = [0x77; 32];

fn awaiting<B: Blake3>(case: &Lwa2Case) -> Result<BrokerAwaitingConfirmation<B>, LwaError> {
    let owned = case.inputs.owned_context();
    let mut rng = FixedRng::new(&[&unh32(&case.inputs.broker_ephemeral_secret), &DUMMY_PSK]);
    BrokerResponder::<B>::new(case.inputs.broker_record_limit_log2)?
        .respond(
            &unh(&case.offer),
            &owned.context(),
            case.inputs.session_present,
            |id: &str| case.psks.get(id).map(|k| Psk::new(unh32(k))),
            &mut rng,
        )
        .map(|(a, _)| a)
}

/// The finished of a client whose PSK is the broker's dummy PSK, answered by a
/// broker that does not know the identity (so it draws that dummy PSK): the MAC
/// check passes, and only the broker's unknown-identity flag refuses it.
fn dummy_psk_finished(inputs: &HandshakeInputs) -> String {
    let owned = inputs.owned_context();
    let dummy = Psk::new(DUMMY_PSK);
    let mut client_rng = FixedRng::new(&[&unh32(&inputs.client_ephemeral_secret)]);
    let offer = ClientOffer::<RustCrypto>::new(
        &inputs.identity,
        &dummy,
        &owned.context(),
        inputs.client_record_limit_log2,
        &mut client_rng,
    )
    .expect("the first vector's inputs make an offer");
    let mut broker_rng = FixedRng::new(&[&unh32(&inputs.broker_ephemeral_secret), &DUMMY_PSK]);
    let (_, response) = BrokerResponder::<RustCrypto>::new(inputs.broker_record_limit_log2)
        .and_then(|b| {
            b.respond(
                &offer.offer_bytes,
                &owned.context(),
                inputs.session_present,
                |_| None,
                &mut broker_rng,
            )
        })
        .expect("the broker answers an unknown identity");
    let (finished, _) = offer
        .awaiting_response
        .on_response(&response, inputs.session_present)
        .expect("the dummy PSK's broker_mac verifies");
    h(&finished.finished_bytes)
}

/// Runs a case; `None` if the implementation accepted it.
pub fn run<B: Blake3>(case: &Lwa2Case) -> Option<LwaError> {
    let result = match case.stage {
        Stage::BrokerRespond => awaiting::<B>(case).map(|_| ()),
        Stage::ClientResponse => {
            let owned = case.inputs.owned_context();
            let mut rng = FixedRng::new(&[&unh32(&case.inputs.client_ephemeral_secret)]);
            ClientOffer::<B>::new(
                &case.inputs.identity,
                &case.inputs.psk(),
                &owned.context(),
                case.inputs.client_record_limit_log2,
                &mut rng,
            )
            .and_then(|o| {
                o.awaiting_response.on_response(
                    &unh(case.response.as_deref().unwrap_or_default()),
                    case.inputs.session_present,
                )
            })
            .map(|_| ())
        }
        Stage::BrokerFinished => awaiting::<B>(case)
            .and_then(|a| a.on_finished(&unh(case.finished.as_deref().unwrap_or_default())))
            .map(|_| ()),
        Stage::BrokerFirstRecord => {
            let r = case.record.as_ref().expect("a record case has a record");
            let mut sealed = unh(&r.sealed);
            awaiting::<B>(case)
                .and_then(|a| a.on_first_record(&r.topic, r.qos, r.retain, &mut sealed))
                .map(|_| ())
        }
    };
    result.err()
}

fn code(name: &str) -> u8 {
    match name {
        "malformed" => 0x8C,
        "empty_client_id" => 0x85,
        _ => 0x87,
    }
}

fn flip(hex_bytes: &str, at: usize) -> String {
    let mut b = unh(hex_bytes);
    b[at] ^= 0x01;
    h(&b)
}

/// The catalogue, built from the first vector of lwa2-handshake.json.
pub fn invalid(handshakes: &HandshakeFile) -> Lwa2InvalidFile {
    let v = &handshakes.vectors[0];
    let first = &v.records[0];
    assert_eq!(
        first.direction, "c2b",
        "the first vector starts with a c2b record"
    );
    let psks = BTreeMap::from([(v.inputs.identity.clone(), v.inputs.psk.clone())]);
    let offer = v.messages.offer.clone();
    let response = v.messages.response.clone();
    let mut cases = Vec::new();
    let mut case = |name: &str,
                    description: &str,
                    stage: Stage,
                    edit: &dyn Fn(&mut Lwa2Case),
                    expected: &str| {
        let mut c = Lwa2Case {
            name: name.into(),
            description: description.into(),
            stage,
            inputs: v.inputs.clone(),
            psks: psks.clone(),
            offer: offer.clone(),
            response: None,
            finished: None,
            record: None,
            expected_error: expected.into(),
            reason_code: code(expected),
        };
        edit(&mut c);
        cases.push(c);
    };
    use Stage::*;
    case(
        "offer-short",
        "offer of 32 bytes",
        BrokerRespond,
        &|c| c.offer.truncate(64),
        "malformed",
    );
    case(
        "offer-no-identity",
        "offer of exactly 33 bytes",
        BrokerRespond,
        &|c| c.offer.truncate(66),
        "malformed",
    );
    case(
        "offer-limit-0",
        "record_limit_log2 = 0",
        BrokerRespond,
        &|c| c.offer.replace_range(0..2, "00"),
        "malformed",
    );
    case(
        "offer-limit-49",
        "record_limit_log2 = 49",
        BrokerRespond,
        &|c| c.offer.replace_range(0..2, "31"),
        "malformed",
    );
    case(
        "offer-identity-not-utf8",
        "identity byte 0xff",
        BrokerRespond,
        &|c| c.offer.replace_range(66..68, "ff"),
        "malformed",
    );
    case(
        "offer-identity-nul",
        "identity contains U+0000",
        BrokerRespond,
        &|c| c.offer.replace_range(66..68, "00"),
        "malformed",
    );
    case(
        "offer-too-long",
        "identity of 256 bytes",
        BrokerRespond,
        &|c| {
            let mut b = unh(&c.offer)[..33].to_vec();
            b.extend_from_slice(&[b'x'; 256]);
            c.offer = h(&b);
        },
        "malformed",
    );
    case(
        "offer-low-order",
        "e_c = 0 (low-order point)",
        BrokerRespond,
        &|c| c.offer.replace_range(2..66, &"00".repeat(32)),
        "low_order_point",
    );
    case(
        "empty-client-id",
        "CONNECT with an empty Client Identifier",
        BrokerRespond,
        &|c| c.inputs.client_id.clear(),
        "empty_client_id",
    );
    for (at, what) in [
        (0, "chosen limit"),
        (1, "e_b"),
        (32, "e_b"),
        (33, "broker_mac"),
        (48, "broker_mac"),
    ] {
        let r = flip(&response, at);
        case(
            &format!("response-byte-{at}"),
            &format!("response byte {at} ({what}) flipped"),
            ClientResponse,
            &|c| c.response = Some(r.clone()),
            "broker_auth_failed",
        );
    }
    case(
        "response-session-present",
        "the client saw the other Session Present",
        ClientResponse,
        &|c| {
            c.response = Some(response.clone());
            c.inputs.session_present = !c.inputs.session_present;
        },
        "broker_auth_failed",
    );
    case(
        "response-wrong-psk",
        "the client holds another PSK",
        ClientResponse,
        &|c| {
            c.response = Some(response.clone());
            c.inputs.psk = "ee".repeat(32);
        },
        "broker_auth_failed",
    );
    case(
        "response-short",
        "response of 48 bytes",
        ClientResponse,
        &|c| c.response = Some(response[..96].to_owned()),
        "malformed",
    );
    case(
        "response-long",
        "response of 50 bytes",
        ClientResponse,
        &|c| c.response = Some(format!("{response}00")),
        "malformed",
    );
    for (limit, name) in [("00", "response-limit-0"), ("31", "response-limit-49")] {
        let mut r = response.clone();
        r.replace_range(0..2, limit);
        case(
            name,
            &format!(
                "chosen limit {} (outside 1..=48)",
                u8::from_str_radix(limit, 16).unwrap_or_default()
            ),
            ClientResponse,
            &|c| c.response = Some(r.clone()),
            "malformed",
        );
    }
    case(
        "response-above-offer",
        "chosen limit 21 above the offered 20",
        ClientResponse,
        &|c| {
            let mut r = response.clone();
            r.replace_range(0..2, "15");
            c.response = Some(r);
        },
        "malformed",
    );
    case(
        "response-low-order",
        "e_b = 0 (low-order point)",
        ClientResponse,
        &|c| {
            let mut r = response.clone();
            r.replace_range(2..66, &"00".repeat(32));
            c.response = Some(r);
        },
        "low_order_point",
    );
    for at in [0, 15] {
        let f = flip(&v.messages.finished, at);
        case(
            &format!("finished-byte-{at}"),
            &format!("finished byte {at} flipped"),
            BrokerFinished,
            &|c| c.finished = Some(f.clone()),
            "client_auth_failed",
        );
    }
    case(
        "finished-short",
        "finished of 15 bytes",
        BrokerFinished,
        &|c| c.finished = Some(v.messages.finished[..30].to_owned()),
        "malformed",
    );
    case(
        "finished-long",
        "finished of 17 bytes",
        BrokerFinished,
        &|c| c.finished = Some(format!("{}00", v.messages.finished)),
        "malformed",
    );
    let dummy_finished = dummy_psk_finished(&v.inputs);
    case(
        "finished-dummy-psk",
        "the broker does not know the identity, and the client holds exactly the broker's \
         dummy PSK pattern(0x77), so the finished verifies: it must still be refused",
        BrokerFinished,
        &|c| {
            c.finished = Some(dummy_finished.clone());
            c.psks.clear();
        },
        "client_auth_failed",
    );
    case(
        "finished-unknown-identity",
        "the honest finished, but the broker does not know the identity",
        BrokerFinished,
        &|c| {
            c.finished = Some(v.messages.finished.clone());
            c.psks.clear();
        },
        "client_auth_failed",
    );
    let record = |sealed: String, topic: &str, qos: u8, retain: bool| FirstRecord {
        topic: topic.into(),
        qos,
        retain,
        sealed,
    };
    let sealed = first.sealed.clone();
    let last = unh(&sealed).len() - 1;
    for (name, r) in [
        (
            "record-tag-flipped",
            record(flip(&sealed, last), &first.topic, first.qos, first.retain),
        ),
        (
            "record-other-topic",
            record(sealed.clone(), "other/topic", first.qos, first.retain),
        ),
        (
            "record-other-qos",
            record(
                sealed.clone(),
                &first.topic,
                (first.qos + 1) % 3,
                first.retain,
            ),
        ),
        (
            "record-other-retain",
            record(sealed.clone(), &first.topic, first.qos, !first.retain),
        ),
        (
            "record-short",
            record(
                sealed[..30].to_owned(),
                &first.topic,
                first.qos,
                first.retain,
            ),
        ),
        (
            "record-second",
            record(
                v.records
                    .iter()
                    .filter(|r| r.direction == "c2b")
                    .nth(1)
                    .map(|r| r.sealed.clone())
                    .unwrap_or_default(),
                &first.topic,
                first.qos,
                first.retain,
            ),
        ),
    ] {
        case(
            name,
            "the first PUBLISH does not open as c2b record 0",
            BrokerFirstRecord,
            &|c| c.record = Some(r.clone()),
            "client_auth_failed",
        );
    }
    Lwa2InvalidFile {
        lwa_version: 2,
        description:
            "LWA2 invalid cases (protocol-spec/LWA2.md section 13): each is one change to \
                      the first vector of lwa2-handshake.json; all byte strings lower-case hex"
                .into(),
        cases,
    }
}
