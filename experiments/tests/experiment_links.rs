//! `mqtt-lwa experiment --link custom:...` over an emulated link with a 5 ms
//! one-way delay: the figures in results.json must show the delay (a
//! property that fails when the shaping is not applied), the link itself
//! must have been measured, and no namespace or veth may be left behind.
//!
//! Needs root (namespaces, veth, tc, iptables); CI and the development
//! machines run as root. Lower bounds only: no timing upper bounds.

mod common;

use std::process::Command;

use serde_json::Value;

const DELAY_MS: f64 = 5.0;

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Our namespaces and root-side veths that still exist, for this process's run.
fn leftovers(pid: u32) -> Vec<String> {
    let out = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let mut found: Vec<String> = out(&["netns", "list"])
        .lines()
        .filter(|l| l.starts_with(&format!("mqttlwa-{pid}-")))
        .map(str::to_owned)
        .collect();
    found.extend(
        out(&["-o", "link", "show"])
            .lines()
            .filter(|l| l.contains(&format!("mlwa{pid}s")))
            .map(str::to_owned),
    );
    found
}

#[test]
fn emulated_link_delay_shows_in_the_figures_and_nothing_is_left() {
    if !is_root() {
        eprintln!("skipped: emulated links need root");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let link = "custom:rate=50mbit:delay=5ms";
    let child = Command::new(common::mqtt_lwa_bin())
        .args([
            "experiment",
            "--profile",
            "quick",
            "--link",
            link,
            "--modes",
            "plain,tls13",
            "--repeat",
            "2",
            "--no-mosquitto",
            "--quiet",
            "--name",
            "t",
            "--out",
        ])
        .arg(out.path())
        .spawn()
        .unwrap();
    let pid = child.id();
    let result = child.wait_with_output().unwrap();
    assert!(result.status.success(), "experiment failed: {result:?}");
    // Deleting a namespace frees its devices asynchronously; the run deletes its veth
    // itself, so everything must already be gone.
    assert_eq!(leftovers(pid), Vec::<String>::new());

    let dir = out.path().join("t");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let links = r["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    let l = &links[0];
    assert_eq!(l["profile"]["name"], link);
    assert_eq!(num(&l["profile"], "delay_us"), 5000.0);
    // A TCP connect takes one round trip: two one-way delays.
    assert!(num(l, "connect_rtt_ms") >= 2.0 * DELAY_MS, "{l}");
    assert!(
        num(l, "iperf_mbit_s") > 0.0,
        "iperf3: {:?}",
        l["notes"].as_array()
    );
    assert!(!l["emulation"].as_str().unwrap().is_empty());

    let modes = r["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 2, "{:?}", r["meta"]["notes"]);
    for m in modes {
        assert_eq!(m["link"], link);
        // TCP handshake + CONNECT/CONNACK: two round trips (TLS 1.3 adds a third).
        let rtts = if m["mode"] == "tls13" { 3.0 } else { 2.0 };
        let setup = num(&m["setup_ms"], "p50");
        assert!(setup >= rtts * 2.0 * DELAY_MS, "{m}");
    }
    let cells = r["cells"].as_array().unwrap();
    // The reduced matrix: 30 B and 1 KiB x QoS 0, 1, 2.
    assert_eq!(cells.len(), 2 * 6, "{:?}", r["meta"]["notes"]);
    for c in cells {
        assert_eq!(c["link"], link);
        assert!(num(c, "received") > 0.0, "{c}");
        // Publisher -> broker -> subscriber crosses the link twice.
        assert!(num(&c["latency_us"], "p50") >= 2.0 * DELAY_MS * 1e3, "{c}");
    }
    // `--repeat` applies on emulated links too (it used to be one pass).
    let rows = r["repeats"]["rows"].as_array().unwrap();
    for c in cells {
        let n = rows
            .iter()
            .filter(|x| {
                x["link"] == link
                    && x["mode"] == c["mode"]
                    && x["payload"] == c["payload"]
                    && x["qos"] == c["qos"]
            })
            .count();
        assert_eq!(n, 2, "repeats of {c}");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("## Links"), "report lacks the link table");
    assert!(report.contains("| custom:rate=50mbit:delay=5ms |"));
}
