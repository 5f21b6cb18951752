//! `mqtt-lwa experiment gateway`, a tiny run end to end through the real binaries: our
//! gateway in front of Debian's Mosquitto, our broker alone and Mosquitto alone, in
//! plaintext and LWA, with the 1-to-2-gateway phase. Checks shape and sanity only (no
//! speed assertions): every cell delivered every message, the gateway used CPU time, LWA
//! through the gateway delivers, every storm completed handshakes, the report holds its
//! sections with intervals, and `experiment report` re-renders the run byte for byte.

mod common;

use std::process::Command;

use serde_json::Value;

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn tiny_gateway_run_is_complete_and_rerenders() {
    assert!(
        std::path::Path::new("/usr/sbin/mosquitto").exists(),
        "mosquitto missing: run scripts/install-deps.sh"
    );
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(common::mqtt_lwa_bin())
        .args([
            "experiment",
            "gateway",
            "--repeat",
            "2",
            "--seconds",
            "0.3",
            "--modes",
            "plain,lwa",
            "--scaling-modes",
            "lwa",
            "--latency-messages",
            "30",
            "--pin-cpus",
            "--name",
            "t",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{}\n{stderr}", run.status);
    assert!(stderr.contains("progress "), "no progress lines: {stderr}");
    let dir = out.path().join("t");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["experiment"], "gateway");
    let notes = &results["meta"]["notes"];
    assert_eq!(notes.as_array().map(Vec::len), Some(0), "{notes}");
    let blocks = results["blocks"].as_array().unwrap();
    // (plain: 3 routes + lwa: 2 routes, mosquitto has no LWA) x 2 repeats.
    assert_eq!(blocks.len(), 10, "{notes}");
    let mut gateway_ticks = 0;
    for b in blocks {
        assert!(u(&b["latency_us"], "samples") >= 30, "{b}");
        let cells = b["throughput"].as_array().unwrap();
        assert_eq!(cells.len(), 2, "QoS 0 and 1: {b}");
        for c in cells {
            assert!(u(c, "received") > 0, "{c}");
            assert_eq!(u(c, "received"), u(c, "sent"), "{c}");
        }
        let storm = &b["storm"];
        assert!(u(storm, "handshakes") > 0, "{b}");
        assert_eq!(u(storm, "failed"), 0, "{storm}");
        if b["route"] == "gateway+mosquitto" {
            gateway_ticks += cells.iter().map(|c| u(c, "front_cpu_ticks")).sum::<u64>();
            gateway_ticks += u(storm, "front_cpu_ticks");
            assert!(c_has_upstream(cells), "{b}");
        }
    }
    assert!(gateway_ticks > 0, "the gateway used no CPU time");
    let lwa_through_gateway = blocks
        .iter()
        .filter(|b| b["mode"] == "lwa" && b["route"] == "gateway+mosquitto")
        .count();
    assert_eq!(lwa_through_gateway, 2, "LWA through the gateway");
    let scaling = results["scaling"].as_array().unwrap();
    assert_eq!(scaling.len(), 4, "1 and 2 gateways x 2 repeats");
    for s in scaling {
        assert!(u(&s["throughput"], "received") > 0, "{s}");
        assert!(u(&s["storm"], "handshakes") > 0, "{s}");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for section in [
        "## 1. Added latency",
        "## 2. Throughput and messages per gateway CPU-second",
        "## 3. Handshakes per gateway CPU-second",
        "## 4. Scaling from 1 to 2 gateways",
        "## Settings",
        "A run on a machine with more cores is still to do",
    ] {
        assert!(report.contains(section), "{section} missing:\n{report}");
    }
    // Every estimate has its interval (two repeats), and Mosquitto's LWA cells say n/a.
    assert!(
        report.contains("| lwa |") && report.contains("| n/a |"),
        "{report}"
    );
    assert!(!report.contains("no interval"), "{report}");
    for f in [
        "throughput.csv",
        "latency.csv",
        "storm.csv",
        "summary.csv",
        "gateway-latency-p50.png",
        "gateway-scaling.png",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }

    // `experiment report` re-renders the run from results.json alone, byte for byte.
    let again = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("results.json"), again.path().join("results.json")).unwrap();
    let rerender = Command::new(common::mqtt_lwa_bin())
        .args(["experiment", "report"])
        .arg(again.path())
        .output()
        .unwrap();
    assert!(rerender.status.success(), "{rerender:?}");
    let mut compared = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name();
        let want = std::fs::read(dir.join(&name)).unwrap();
        let got = std::fs::read(again.path().join(&name)).unwrap();
        assert!(want == got, "{name:?} differs from its re-render");
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} files");
}

/// Through the gateway, every throughput cell also read Mosquitto's CPU time behind it.
fn c_has_upstream(cells: &[Value]) -> bool {
    cells.iter().all(|c| c["upstream_cpu_ticks"].is_u64())
}
