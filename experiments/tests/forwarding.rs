//! `mqtt-lwa experiment ARGS` runs `mqtt-lwa-experiment ARGS` from its own directory and has
//! it measure that `mqtt-lwa` (src/cmd/experiment.rs): `--help` and the exit code come through
//! unchanged, and without the harness beside it or on PATH it says what to build.

mod common;

use std::process::Command;

#[test]
fn help_and_exit_codes_come_from_the_harness() {
    let out = Command::new(common::mqtt_lwa_bin())
        .args(["experiment", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: mqtt-lwa-experiment"), "{help}");
    assert!(help.contains("--pin-cpus"), "{help}");

    // A usage error is the harness's (clap's exit code 2), not the forwarder's.
    let out = Command::new(common::mqtt_lwa_bin())
        .args(["experiment", "--profile", "medium"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("medium"),
        "{out:?}"
    );
}

#[test]
fn the_harness_finds_the_broker_that_forwarded() {
    // `mqtt-lwa` copied where no harness is, with the harness on PATH: the forwarder finds it
    // there, and the harness measures the copy (MQTT_LWA_BIN), not the one beside itself.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("mqtt-lwa");
    std::fs::copy(common::mqtt_lwa_bin(), &copy).unwrap();
    let harness_dir = std::path::Path::new(env!("CARGO_BIN_EXE_mqtt-lwa-experiment"))
        .parent()
        .unwrap();
    let out_dir = dir.path().join("results");
    let out = Command::new(&copy)
        .args([
            "experiment",
            "--profile",
            "quick",
            "--modes",
            "plain",
            "--no-mosquitto",
        ])
        .args([
            "--payloads",
            "30",
            "--stock-messages",
            "0",
            "--storm-seconds",
            "0",
        ])
        .args([
            "--idle-connections",
            "5",
            "--quiet",
            "--name",
            "fwd",
            "--out",
        ])
        .arg(&out_dir)
        .env("PATH", harness_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("fwd/results.json")).unwrap()).unwrap();
    let command = results["meta"]["command"].as_str().unwrap_or_default();
    assert!(
        command.starts_with(&format!("{} experiment --profile quick", copy.display())),
        "the report names the command as typed: {command:?}"
    );
    let broker = results["meta"]["versions"][0].to_string();
    assert!(
        broker.contains("mqtt-lwa") && broker.contains(&format!("({})", copy.display())),
        "the broker measured is the copy that forwarded: {broker}"
    );

    // Neither beside it nor on PATH: a clear error, not a panic.
    let out = Command::new(&copy)
        .args(["experiment", "--help"])
        .env("PATH", dir.path().join("nothing-here"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot run mqtt-lwa-experiment") && err.contains("cargo build --release"),
        "{err}"
    );
}
