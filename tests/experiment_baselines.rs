//! The TLS baselines beside the full handshake: `tls13-resume` (every
//! measured connection resumes a TLS 1.3 session from a ticket; a full
//! handshake under that name fails the connection) and `tls13-chacha`
//! (X25519 + ChaCha20-Poly1305, LWA's primitives; anything else negotiated
//! fails it), measured like every other mode, and the report's cited
//! reference protocols.

use std::process::Command;

use serde_json::Value;

fn mode<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["broker"] == "mqtt-lwa" && m["mode"] == name)
        .unwrap_or_else(|| panic!("{name} not measured: {}", results["meta"]["notes"]))
}

#[test]
fn resumption_and_chacha_baselines_are_measured_as_what_they_claim() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .args([
            "experiment",
            "--modes",
            "plain,tls13,tls13-resume,tls13-chacha",
            "--no-mosquitto",
            "--idle-connections",
            "20",
            "--storm-seconds",
            "0.3",
            "--stock-messages",
            "0",
            "--quiet",
            "--name",
            "b",
            "--out",
        ])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let dir = out.path().join("b");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let notes = results["meta"]["notes"].to_string();
    // A connection that did not resume, or negotiated other primitives,
    // fails and leaves a note: there must be none.
    assert!(!notes.contains("did not resume"), "{notes}");
    assert!(!notes.contains("negotiated"), "{notes}");
    let full = mode(&results, "tls13");
    let resumed = mode(&results, "tls13-resume");
    let chacha = mode(&results, "tls13-chacha");
    let bytes = |m: &Value, k: &str| m[k].as_u64().unwrap();
    // No certificate on resumption: the broker sends far less.
    assert!(
        bytes(resumed, "handshake_bytes_to_client")
            < bytes(full, "handshake_bytes_to_client") / 2 + 100,
        "resumed {resumed} vs full {full}"
    );
    assert!(bytes(chacha, "handshake_bytes_to_client") > 500, "{chacha}");
    for m in [resumed, chacha] {
        let storm = &m["storm"];
        assert!(storm["handshakes"].as_u64().unwrap() > 0, "{m}");
        assert_eq!(storm["failed"].as_u64().unwrap(), 0, "{m}");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    // What a run writes is what its results.json re-renders to (floats read
    // back exactly; nothing in the report that the JSON lacks).
    let again = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("results.json"), again.path().join("results.json")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .args(["experiment", "report"])
        .arg(again.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    for name in [
        "report.md",
        "cells.csv",
        "modes.csv",
        "headline.csv",
        "headline.tex",
        "storm.csv",
        "memory.csv",
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            std::fs::read_to_string(again.path().join(name)).unwrap(),
            "{name}: the run's file and its re-render differ"
        );
    }
    assert!(report.contains("| tls13-resume |"));
    assert!(report.contains("| tls13-chacha |"));
    assert!(report.contains("## Handshake bytes beside the literature (cited, not measured)"));
    assert!(report.contains("| EDHOC-PSK (test vectors) | 85 |"));
    assert!(report.contains("| WireGuard (Noise IK) | 240 |"));
}
