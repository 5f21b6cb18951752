//! The TLS baselines beside the full handshake: `tls13-resume` (every
//! measured connection resumes a TLS 1.3 session from a ticket; a full
//! handshake under that name fails the connection) and `tls13-chacha`
//! (X25519 + ChaCha20-Poly1305, LWA's primitives; anything else negotiated
//! fails it), measured like every other mode, and the report's cited
//! reference protocols; and `tls13-psk` (TLS 1.3 with an external PSK,
//! OpenSSL against Mosquitto's `psk_file`).

mod common;

use std::process::Command;

use serde_json::Value;

/// Runs `mqtt-lwa experiment ARGS --quiet --name NAME --out OUT` with the short settings
/// these tests share; returns the run directory and its results.json.
fn run(out: &std::path::Path, name: &str, args: &[&str]) -> (std::path::PathBuf, Value) {
    let status = Command::new(common::mqtt_lwa_bin())
        .arg("experiment")
        .args(args)
        .args(["--stock-messages", "0", "--quiet", "--name", name, "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "experiment {args:?}: {status}");
    let dir = out.join(name);
    let results =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    (dir, results)
}

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
    let (dir, results) = run(
        out.path(),
        "b",
        &[
            "--modes",
            "plain,tls13,tls13-resume,tls13-chacha",
            // 20 idle connections: more than the concurrent openers and rustls's 8 tickets
            // per server, so a store that runs dry shows (it did against mosquitto, whose
            // OpenSSL issues one ticket per resumption).
            "--idle-connections",
            "20",
            "--storm-seconds",
            "0.3",
        ],
    );
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
    // Against mosquitto too (installed by scripts/install-deps.sh): every storm and idle
    // connection resumed.
    assert!(
        std::path::Path::new("/usr/sbin/mosquitto").exists(),
        "mosquitto missing: run scripts/install-deps.sh"
    );
    let theirs = results["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["broker"] == "mosquitto" && m["mode"] == "tls13-resume")
        .unwrap_or_else(|| panic!("mosquitto tls13-resume not measured: {notes}"));
    assert_eq!(theirs["storm"]["failed"].as_u64().unwrap(), 0, "{theirs}");
    assert!(
        theirs["storm"]["handshakes"].as_u64().unwrap() > 0,
        "{theirs}"
    );
    for step in theirs["idle_memory"].as_array().unwrap() {
        assert_eq!(step["opened"], step["connections"], "{theirs}");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    // What a run writes is what its results.json re-renders to (floats read
    // back exactly; nothing in the report that the JSON lacks).
    let again = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("results.json"), again.path().join("results.json")).unwrap();
    let status = Command::new(common::mqtt_lwa_bin())
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

/// TLS 1.3 with an external PSK, as Mosquitto offers it (`psk_file`), from
/// OpenSSL (rustls has none): every connection must be a TLS 1.3 PSK
/// handshake without a certificate, or it fails under a note.
#[test]
fn tls_with_an_external_psk_is_measured_against_mosquitto() {
    assert!(
        std::path::Path::new("/usr/sbin/mosquitto").exists(),
        "mosquitto missing: run scripts/install-deps.sh"
    );
    let out = tempfile::tempdir().unwrap();
    let (dir, results) = run(
        out.path(),
        "p",
        &[
            "--modes",
            "plain,tls13,tls13-psk",
            "--idle-connections",
            "20",
            "--storm-seconds",
            "0.3",
        ],
    );
    let notes = results["meta"]["notes"].to_string();
    assert!(!notes.contains("refusing"), "{notes}");
    let theirs = |name: &str| {
        results["modes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["broker"] == "mosquitto" && m["mode"] == name)
            .unwrap_or_else(|| panic!("mosquitto {name} not measured: {notes}"))
            .clone()
    };
    // Our broker has no external PSK: nothing measured under that name.
    assert!(!results["modes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["broker"] == "mqtt-lwa" && m["mode"] == "tls13-psk"));
    let psk = theirs("tls13-psk");
    let full = theirs("tls13");
    let bytes = |m: &Value, k: &str| m[k].as_u64().unwrap();
    // No certificate: the broker's flight is far shorter than with one.
    assert!(
        bytes(&psk, "handshake_bytes_to_client") + 300 < bytes(&full, "handshake_bytes_to_client"),
        "psk {psk} vs certificate {full}"
    );
    // Still a TLS 1.3 handshake with a key share: more than plaintext MQTT's CONNECT.
    assert!(bytes(&psk, "handshake_bytes_to_broker") > 200, "{psk}");
    let storm = &psk["storm"];
    assert!(storm["handshakes"].as_u64().unwrap() > 0, "{psk}");
    assert_eq!(storm["failed"].as_u64().unwrap(), 0, "{psk}");
    let cells = results["cells"].as_array().unwrap();
    assert!(cells
        .iter()
        .filter(|c| c["broker"] == "mosquitto" && c["mode"] == "tls13-psk")
        .all(|c| c["received"].as_u64().unwrap() > 0));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("| tls13-psk (mosquitto) |"), "{report}");

    // Without mosquitto the mode cannot be measured, and the run says so.
    run(
        out.path(),
        "q",
        &[
            "--modes",
            "plain,tls13-psk",
            "--no-mosquitto",
            "--idle-connections",
            "5",
            "--storm-seconds",
            "0",
        ],
    );
    let report = std::fs::read_to_string(out.path().join("q").join("report.md")).unwrap();
    assert!(
        report.contains("tls13-psk not measured: only mosquitto serve it, and none ran"),
        "{report}"
    );
}
