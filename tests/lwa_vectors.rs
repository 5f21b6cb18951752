//! Checks protocol-spec/test-vectors/*.json against the implementation:
//! every handshake is re-run from its inputs and every intermediate value,
//! message and record must match; every invalid case must fail with the
//! stated error and reason code.
//!
//! Every check runs once per crypto backend of `lwa-core`: ring (what
//! mqtt-lwa runs) and RustCrypto (the portable `no_std` default). The wire
//! format must not depend on the backend, so both must match byte for byte.
//!
//! `LWA_REGENERATE_VECTORS=1 cargo test --test lwa_vectors` rewrites the
//! files instead (review the diff: a changed vector is a protocol change).

#[path = "lwa_vectors/compute.rs"]
mod compute;
#[path = "lwa_vectors/generate.rs"]
mod generate;
#[path = "lwa_vectors/invalid_cases.rs"]
mod invalid_cases;
#[path = "lwa_vectors/lwa2.rs"]
mod lwa2;
#[path = "lwa_vectors/lwa2_invalid.rs"]
mod lwa2_invalid;
#[path = "lwa_vectors/lwa2_metadata.rs"]
mod lwa2_metadata;
#[path = "lwa_vectors/lwa2_update.rs"]
mod lwa2_update;
#[path = "lwa_vectors/model.rs"]
mod model;

use std::path::PathBuf;

use compute::*;
use lwa_core::backend::ring::Ring;
use lwa_core::crypto::Blake3;
use lwa_core::{Crypto, RustCrypto};
use model::*;
use mqtt_lwa::auth::lwa::LwaReasonCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Small-order X25519 u-coordinates (libsodium's list) and their bit-255 variants.
pub const LOW_ORDER_POINTS: [&str; 14] = [
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

fn vector_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("protocol-spec/test-vectors")
        .join(file)
}

/// With `LWA_REGENERATE_VECTORS=1`, rewrites all files once before any test reads them.
fn regenerate_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var("LWA_REGENERATE_VECTORS").is_ok_and(|v| v == "1") {
            store("handshake.json", &generate::handshakes());
            store("records.json", &generate::records());
            store("invalid.json", &invalid_cases::invalid());
            let lwa2_handshakes = lwa2::handshakes();
            store(
                "lwa2-invalid.json",
                &lwa2_invalid::invalid(&lwa2_handshakes),
            );
            store(
                "lwa2-key-update.json",
                &lwa2_update::updates::<Gen>(&lwa2_handshakes),
            );
            store(
                "lwa2-metadata.json",
                &lwa2_metadata::metadata_file::<Gen>(&lwa2_handshakes),
            );
            store("lwa2-handshake.json", &lwa2_handshakes);
        }
    });
}

fn load<T: DeserializeOwned>(file: &str) -> T {
    regenerate_if_asked();
    let text = std::fs::read_to_string(vector_path(file))
        .unwrap_or_else(|e| panic!("{file}: {e} (generate with LWA_REGENERATE_VECTORS=1)"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn store<T: Serialize>(file: &str, value: &T) {
    let path = vector_path(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = serde_json::to_string_pretty(value).unwrap();
    text.push('\n');
    std::fs::write(&path, text).unwrap();
}

/// Compares two JSON trees and names the first differing path.
fn assert_same_json(context: &str, stored: &serde_json::Value, computed: &serde_json::Value) {
    use serde_json::Value;
    match (stored, computed) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let here = format!("{context}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => assert_same_json(&here, x, y),
                    _ => panic!("{here}: present on one side only"),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{context}: length");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same_json(&format!("{context}[{i}]"), x, y);
            }
        }
        _ => assert_eq!(stored, computed, "{context}"),
    }
}

fn handshake_vectors_reproduce<B: Crypto>() {
    let file: HandshakeFile = load("handshake.json");
    assert_eq!(file.lwa_version, 1);
    assert!(file.vectors.len() >= 4);
    assert_eq!(
        file.vectors[0].inputs.client_ephemeral_secret,
        generate::RFC7748_ALICE_SECRET
    );
    assert_eq!(
        file.vectors[0].intermediate.dh,
        generate::RFC7748_SHARED,
        "RFC 7748 anchor"
    );
    for v in &file.vectors {
        let plan: Vec<PlannedRecord> = v
            .records
            .iter()
            .map(|r| PlannedRecord {
                direction: direction(&r.direction),
                topic: r.topic.clone(),
                qos: r.qos,
                retain: r.retain,
                plaintext: unh(&r.plaintext),
            })
            .collect();
        let computed = handshake_vector::<B>(&v.name, &v.description, v.inputs.clone(), &plan);
        assert_same_json(
            &v.name,
            &serde_json::to_value(v).unwrap(),
            &serde_json::to_value(&computed).unwrap(),
        );
    }
}

fn record_vectors_reproduce<B: Crypto>() {
    let file: RecordFile = load("records.json");
    assert!(file.records.len() >= 10);
    assert!(file.records.iter().any(|r| r.counter >= 1 << 32));
    for (i, r) in file.records.iter().enumerate() {
        assert_same_json(
            &format!("records[{i}]"),
            &serde_json::to_value(r).unwrap(),
            &serde_json::to_value(recompute_record::<B>(r)).unwrap(),
        );
    }
}

fn invalid_vectors_are_rejected_with_the_stated_error<B: Crypto>() {
    let file: InvalidFile = load("invalid.json");
    assert!(file.cases.len() >= 30);
    let mut seen_kinds = std::collections::BTreeSet::new();
    for case in &file.cases {
        let (expected, code) = expectation(case);
        let err = run_invalid::<B>(case)
            .unwrap_or_else(|| panic!("{}: accepted, expected {expected}", case.name()));
        assert_eq!(err.vector_name(), expected, "{}: {err}", case.name());
        assert_eq!(err.reason_code().0, code, "{}: reason code", case.name());
        seen_kinds.insert(serde_json::to_value(case).unwrap()["kind"].to_string());
    }
    assert_eq!(seen_kinds.len(), 5, "every kind of invalid case present");
}

fn lwa2_handshake_vectors_reproduce<B: Blake3>() {
    let file: HandshakeFile = load("lwa2-handshake.json");
    assert_eq!(file.lwa_version, 2);
    assert!(file.vectors.len() >= 4);
    assert_eq!(
        file.vectors[0].intermediate.dh,
        generate::RFC7748_SHARED,
        "RFC 7748 anchor"
    );
    // Offer and response sizes of LWA2.md section 4 for the 9-byte identity.
    assert_eq!(file.vectors[0].inputs.identity.len(), 9);
    assert_eq!(file.vectors[0].messages.offer.len() / 2, 42);
    assert_eq!(file.vectors[0].messages.response.len() / 2, 49);
    for v in &file.vectors {
        let plan: Vec<PlannedRecord> = v
            .records
            .iter()
            .map(|r| PlannedRecord {
                direction: direction(&r.direction),
                topic: r.topic.clone(),
                qos: r.qos,
                retain: r.retain,
                plaintext: unh(&r.plaintext),
            })
            .collect();
        let computed =
            lwa2::handshake_vector::<B>(&v.name, &v.description, v.inputs.clone(), &plan);
        assert_same_json(
            &format!("lwa2 {}", v.name),
            &serde_json::to_value(v).unwrap(),
            &serde_json::to_value(&computed).unwrap(),
        );
    }
}

/// Key updates (LWA2.md 8.2): re-run on the stored handshakes, byte for byte.
fn lwa2_key_update_vectors_reproduce<B: Blake3>() {
    let handshakes: HandshakeFile = load("lwa2-handshake.json");
    let stored: lwa2_update::UpdateFile = load("lwa2-key-update.json");
    assert_eq!(stored.vectors.len(), 2);
    assert!(stored.vectors.iter().all(|v| v.updates.len() == 2));
    let computed = lwa2_update::updates::<B>(&handshakes);
    assert_same_json(
        "lwa2-key-update",
        &serde_json::to_value(&stored).unwrap(),
        &serde_json::to_value(&computed).unwrap(),
    );
}

#[test]
fn lwa2_key_update_vectors_reproduce_with_ring() {
    lwa2_key_update_vectors_reproduce::<Ring>();
}

#[test]
fn lwa2_key_update_vectors_reproduce_with_rustcrypto() {
    lwa2_key_update_vectors_reproduce::<RustCrypto>();
}

/// Metadata protection (LWA2.md 7.1): re-run from the stored handshakes' inputs, byte for byte.
fn lwa2_metadata_vectors_reproduce<B: Blake3>() {
    let handshakes: HandshakeFile = load("lwa2-handshake.json");
    let stored: HandshakeFile = load("lwa2-metadata.json");
    let computed = lwa2_metadata::check::<B>(&stored, &handshakes);
    assert_same_json(
        "lwa2-metadata",
        &serde_json::to_value(&stored).unwrap(),
        &serde_json::to_value(&computed).unwrap(),
    );
}

#[test]
fn lwa2_metadata_vectors_reproduce_with_ring() {
    lwa2_metadata_vectors_reproduce::<Ring>();
}

#[test]
fn lwa2_metadata_vectors_reproduce_with_rustcrypto() {
    lwa2_metadata_vectors_reproduce::<RustCrypto>();
}

fn lwa2_invalid_vectors_are_rejected<B: Blake3>() {
    let file: lwa2_invalid::Lwa2InvalidFile = load("lwa2-invalid.json");
    assert_eq!(file.lwa_version, 2);
    assert!(file.cases.len() >= 25);
    for case in &file.cases {
        let err = lwa2_invalid::run::<B>(case)
            .unwrap_or_else(|| panic!("{}: accepted, expected {}", case.name, case.expected_error));
        assert_eq!(
            err.vector_name(),
            case.expected_error,
            "{}: {err}",
            case.name
        );
        assert_eq!(
            err.reason_code().0,
            case.reason_code,
            "{}: reason code",
            case.name
        );
    }
    // The stated change is the cause: the untampered first record is accepted.
    let handshakes: HandshakeFile = load("lwa2-handshake.json");
    let first = &handshakes.vectors[0].records[0];
    let mut honest = file
        .cases
        .iter()
        .find(|c| c.stage == lwa2_invalid::Stage::BrokerFirstRecord)
        .expect("a first-record case")
        .clone();
    honest.record = Some(lwa2_invalid::FirstRecord {
        topic: first.topic.clone(),
        qos: first.qos,
        retain: first.retain,
        sealed: first.sealed.clone(),
    });
    assert!(lwa2_invalid::run::<B>(&honest).is_none());
    // finished-dummy-psk is refused only because the identity is unknown: a broker
    // that holds the dummy PSK for it accepts the same finished.
    let mut known = file
        .cases
        .iter()
        .find(|c| c.name == "finished-dummy-psk")
        .expect("the dummy-PSK case")
        .clone();
    known
        .psks
        .insert(known.inputs.identity.clone(), "77".repeat(32));
    assert!(lwa2_invalid::run::<B>(&known).is_none());
}

#[test]
fn lwa2_invalid_vectors_are_rejected_with_ring() {
    lwa2_invalid_vectors_are_rejected::<Ring>();
}

#[test]
fn lwa2_invalid_vectors_are_rejected_with_rustcrypto() {
    lwa2_invalid_vectors_are_rejected::<RustCrypto>();
}

#[test]
fn lwa2_handshake_vectors_reproduce_with_ring() {
    lwa2_handshake_vectors_reproduce::<Ring>();
}

#[test]
fn lwa2_handshake_vectors_reproduce_with_rustcrypto() {
    lwa2_handshake_vectors_reproduce::<RustCrypto>();
}

#[test]
fn handshake_vectors_reproduce_with_ring() {
    handshake_vectors_reproduce::<Ring>();
}

#[test]
fn handshake_vectors_reproduce_with_rustcrypto() {
    handshake_vectors_reproduce::<RustCrypto>();
}

#[test]
fn record_vectors_reproduce_with_ring() {
    record_vectors_reproduce::<Ring>();
}

#[test]
fn record_vectors_reproduce_with_rustcrypto() {
    record_vectors_reproduce::<RustCrypto>();
}

#[test]
fn invalid_vectors_are_rejected_with_the_stated_error_with_ring() {
    invalid_vectors_are_rejected_with_the_stated_error::<Ring>();
}

#[test]
fn invalid_vectors_are_rejected_with_the_stated_error_with_rustcrypto() {
    invalid_vectors_are_rejected_with_the_stated_error::<RustCrypto>();
}

#[test]
fn invalid_cases_are_one_change_away_from_valid() {
    // Guards the vectors themselves: the untampered inputs must succeed, so
    // each rejection above is caused by the stated change.
    let file: HandshakeFile = load("handshake.json");
    let base = &file.vectors[0];
    let computed = handshake_vector::<Gen>("base", "", base.inputs.clone(), &[]);
    assert_eq!(computed.messages.offer, base.messages.offer);
    let honest = InvalidCase::BrokerFinished {
        name: "honest".into(),
        description: String::new(),
        inputs: base.inputs.clone(),
        psks: [(base.inputs.identity.clone(), base.inputs.psk.clone())].into(),
        broker_dummy_psk: None,
        offer: base.messages.offer.clone(),
        response: base.messages.response.clone(),
        finished: base.messages.finished.clone(),
        expected_error: String::new(),
        reason_code: 0,
    };
    assert!(run_invalid::<Ring>(&honest).is_none());
    assert!(run_invalid::<RustCrypto>(&honest).is_none());
}
