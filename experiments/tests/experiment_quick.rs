//! `mqtt-lwa experiment --profile quick` end to end: it starts our broker
//! (and mosquitto, when installed) in every mode, and its report, data files
//! and plots must hold every mode with figures that make sense.
//!
//! Checks shape and sanity only (no speed assertions): every cell delivered
//! messages, handshakes and messages took bytes, LWA's records cost bytes
//! on the wire that plaintext does not, every (broker, mode) completed storm
//! handshakes, and the relay's byte counts of the cross-checked cell equal a
//! tshark capture's.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const MODES: [&str; 6] = ["plain", "password", "tls13", "mtls13", "tls12", "lwa"];

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn quick_profile_writes_a_complete_report() {
    let out = tempfile::tempdir().unwrap();
    // Without --quiet, and stderr a pipe (no terminal): progress comes as plain lines.
    let run = Command::new(common::mqtt_lwa_bin())
        .args(["experiment", "--profile", "quick", "--name", "t", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "experiment failed: {}\n{stderr}",
        run.status
    );
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("progress "))
        .collect();
    assert!(
        progress.first().is_some_and(|l| l.contains(" cells")),
        "no progress line on a pipe:\n{stderr}"
    );
    assert!(
        progress.last().is_some_and(|l| l.ends_with(", done")),
        "no closing progress line:\n{stderr}"
    );
    let dir = out.path().join("t");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();

    // Provenance is the build's, embedded at build time (the run started in
    // a temporary directory's parent, not necessarily this checkout).
    let versions = results["meta"]["versions"].to_string();
    assert!(
        versions.contains(mqtt_lwa::build_info::LONG_VERSION),
        "{versions}"
    );
    let mosquitto = Path::new("/usr/sbin/mosquitto").exists();
    let mut brokers = vec![("mqtt-lwa", MODES.to_vec())];
    if mosquitto {
        brokers.push(("mosquitto", MODES[..5].to_vec()));
    }
    let modes = results["modes"].as_array().unwrap();
    let cells = results["cells"].as_array().unwrap();
    for (broker, broker_modes) in &brokers {
        for mode in broker_modes {
            let m = modes
                .iter()
                .find(|m| m["broker"] == *broker && m["mode"] == *mode)
                .unwrap_or_else(|| {
                    panic!("{broker} {mode} missing: {:?}", results["meta"]["notes"])
                });
            assert!(num(&m["setup_ms"], "p50") > 0.0);
            assert!(num(m, "handshake_bytes_to_broker") > 0.0, "{broker} {mode}");
            assert!(num(m, "handshake_bytes_to_client") > 0.0, "{broker} {mode}");
            // Connection storm: handshakes completed and the broker's CPU read.
            let storm = &m["storm"];
            assert!(num(storm, "handshakes") > 0.0, "{broker} {mode}: {storm}");
            assert!(num(storm, "handshakes_per_s") > 0.0, "{broker} {mode}");
            assert!(storm["failed"].is_u64(), "{broker} {mode}: {storm}");
            // Idle memory at every count of the profile (not in password mode).
            if *mode != "password" {
                let steps = m["idle_memory"].as_array().unwrap();
                assert_eq!(
                    steps.len(),
                    1,
                    "{broker} {mode}: quick profile has one count"
                );
                assert_eq!(
                    steps[0]["opened"], steps[0]["connections"],
                    "{broker} {mode}"
                );
                assert!(steps[0]["bytes_per_connection"].is_f64(), "{broker} {mode}");
            }
            let mode_cells: Vec<&Value> = cells
                .iter()
                .filter(|c| c["broker"] == *broker && c["mode"] == *mode)
                .collect();
            assert_eq!(mode_cells.len(), 12, "{broker} {mode}: 4 payloads x 3 QoS");
            for c in mode_cells {
                assert!(num(c, "received") > 0.0, "{c}");
                assert!(num(c, "msgs_per_s") > 0.0, "{c}");
                // A PUBLISH carries at least its payload.
                assert!(
                    num(c, "wire_bytes_per_msg_publisher") > num(c, "payload"),
                    "{c}"
                );
                // Not a speed check: a message that crossed two TCP connections and a broker
                // process in under 5 µs was a stale one (the subscriber saw other traffic).
                assert!(num(&c["latency_us"], "p50") >= 5.0, "{c}");
                // The latency samples themselves are kept (HdrHistogram V2, base64): the
                // CDF figures and any later analysis read them; their percentiles are the
                // cell's.
                let h = mqtt_lwa_experiments::results::decode_histogram(
                    c["latency_hdr"].as_str().unwrap(),
                )
                .unwrap();
                assert_eq!(h.len() as f64, num(&c["latency_us"], "samples"), "{c}");
                assert_eq!(
                    h.value_at_quantile(0.5) as f64,
                    num(&c["latency_us"], "p50"),
                    "{c}"
                );
            }
        }
    }
    // TLS handshakes carry certificates; LWA records carry a 16-byte tag per PUBLISH.
    let mode = |broker: &str, mode: &str| {
        modes
            .iter()
            .find(|m| m["broker"] == broker && m["mode"] == mode)
            .unwrap()
    };
    let hs = |m: &Value| num(m, "handshake_bytes_to_broker") + num(m, "handshake_bytes_to_client");
    assert!(hs(mode("mqtt-lwa", "tls13")) > hs(mode("mqtt-lwa", "lwa")));
    assert!(hs(mode("mqtt-lwa", "lwa")) > hs(mode("mqtt-lwa", "plain")));
    let cell = |mode: &str| {
        cells
            .iter()
            .find(|c| {
                c["broker"] == "mqtt-lwa"
                    && c["mode"] == mode
                    && c["payload"] == 30
                    && c["qos"] == 0
            })
            .unwrap()
    };
    let per_msg = |mode: &str| num(cell(mode), "wire_bytes_per_msg_publisher");
    assert!(per_msg("lwa") >= per_msg("plain") + 16.0);

    // The relay's byte counts for one cell agree exactly with a tshark capture of it
    // (scripts/install-deps.sh installs tshark; capturing needs root or CAP_NET_RAW).
    let checks: Vec<&Value> = modes
        .iter()
        .map(|m| &m["cross_check"])
        .filter(|c| !c.is_null())
        .collect();
    assert_eq!(
        checks.len(),
        1,
        "tshark cross-check missing: {:?}",
        results["meta"]["notes"]
    );
    let check = checks[0];
    assert_eq!(check["broker"], "mqtt-lwa");
    assert_eq!(check["mode"], "lwa");
    assert_eq!(
        (check["payload"].as_u64(), check["qos"].as_u64()),
        (Some(30), Some(1))
    );
    // Ten 30-byte LWA PUBLISHes and their PUBACKs cannot be fewer bytes than this.
    assert!(num(check, "relay_to_broker") > 10.0 * 46.0, "{check}");
    assert!(num(check, "relay_to_client") > 0.0, "{check}");
    assert_eq!(
        check["relay_to_broker"], check["capture_to_broker"],
        "{check}"
    );
    assert_eq!(
        check["relay_to_client"], check["capture_to_client"],
        "{check}"
    );
    assert_eq!(check["difference"], 0, "{check}");

    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for heading in [
        "## Connection storm",
        "## Broker memory per idle connection",
        "## Cross-check",
    ] {
        assert!(report.contains(heading), "report lacks {heading}");
    }
    for heading in [
        "## Targets",
        "## Broker: mqtt-lwa",
        "## Relation to the seed study",
    ] {
        assert!(report.contains(heading), "report lacks {heading}");
    }
    if mosquitto {
        assert!(report.contains("## Broker: mosquitto"));
        assert!(report.contains("### Throughput relative to mosquitto"));
    }
    // The quick profile claims nothing: its targets are indicative, never
    // met or missed, and its ratios carry no interval (one repeat).
    let targets = &report[report.find("## Targets").unwrap()..report.find("## Broker:").unwrap()];
    assert!(
        targets.contains("| indicative (quick profile) |"),
        "{targets}"
    );
    assert!(!targets.contains("| met"), "{targets}");
    assert!(!targets.contains("| missed"), "{targets}");
    assert!(report.contains("(no interval: 1 repeat)"));
    for mode in MODES {
        assert!(
            report.contains(&format!("| {mode} |")),
            "report lacks {mode}"
        );
    }
    for file in [
        "cells.csv",
        "modes.csv",
        "storm.csv",
        "memory.csv",
        "throughput-mqtt-lwa-qos1.png",
        "throughput-mqtt-lwa-qos1.svg",
        "latency-cdf-mqtt-lwa-qos1.png",
        "latency-cdf-mqtt-lwa-qos2.svg",
    ] {
        let len = std::fs::metadata(dir.join(file)).unwrap().len();
        assert!(len > 100, "{file} is {len} bytes");
    }
    let csv = std::fs::read_to_string(dir.join("cells.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + cells.len());
    // The quick profile measures every cell once: one raw repeat row per cell, and the
    // settings table says how many repeats the medians rest on.
    let rows = results["repeats"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), cells.len());
    assert!(rows.iter().all(|r| r["repeat"] == 0));
    // Histograms live in the merged cells only (results.json stays small).
    assert!(rows.iter().all(|r| r.get("latency_hdr").is_none()));
    let repeats_csv = std::fs::read_to_string(dir.join("repeats.csv")).unwrap();
    assert_eq!(repeats_csv.lines().count(), 1 + cells.len());
    assert!(report.contains("| repeats | 1 per throughput and latency cell"));

    // Stock clients (mosquitto_pub -l to mosquitto_sub): every QoS through our
    // broker, every message delivered.
    assert!(
        report.contains("## Stock clients"),
        "report lacks the stock-client section"
    );
    let stock = results["stock"]
        .as_array()
        .expect("stock bursts in results.json");
    let ours: Vec<_> = stock.iter().filter(|b| b["broker"] == "mqtt-lwa").collect();
    assert_eq!(ours.len(), 3, "{stock:?}");
    for b in &ours {
        assert_eq!(b["received"], b["sent"], "mqtt-lwa lost messages: {b}");
        assert!(b["msgs_per_s"].as_f64().unwrap() > 0.0);
    }
    if mosquitto {
        assert_eq!(stock.len(), 6, "mosquitto measured beside it");
    }
    let stock_csv = std::fs::read_to_string(dir.join("stock.csv")).unwrap();
    assert_eq!(stock_csv.lines().count(), 1 + stock.len());
}

/// Children of `parent` (from `/proc/*/stat`), with their state letter.
fn children(parent: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, so split after its `)`.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if f.next().and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            out.push((pid, state));
        }
    }
    out
}

/// Whether `pid` is gone (or a zombie nobody reaped: it runs no more).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// The pid of the first `mqtt-lwa broker` child of `parent`, polled every
/// `poll` until it appears (at most 60 s; `parent` must not end meanwhile).
fn first_broker_child(parent: &mut std::process::Child, poll: std::time::Duration) -> u32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let is_broker = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"broker"))
    };
    loop {
        if let Some(&(pid, _)) = children(parent.id())
            .iter()
            .find(|(pid, _)| is_broker(*pid))
        {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "no broker started");
        assert!(parent.try_wait().unwrap().is_none(), "it ended early");
        std::thread::sleep(poll);
    }
}

/// Waits up to 5 s for `pid` to be gone; `what` says why it should be.
fn assert_gone_soon(pid: u32, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gone(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "broker {pid} still runs after {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn an_interrupted_run_stops_its_brokers() {
    let out = tempfile::tempdir().unwrap();
    let mut run = Command::new(common::mqtt_lwa_bin())
        .args([
            "experiment",
            "--modes",
            "plain",
            "--no-mosquitto",
            "--repeat",
            "50",
            "--idle-connections",
            "10",
            "--storm-seconds",
            "0",
            "--stock-messages",
            "0",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .spawn()
        .unwrap();
    // Wait for the broker the run starts.
    let broker = first_broker_child(&mut run, std::time::Duration::from_millis(50));
    let interrupt = Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    assert_gone_soon(broker, "the run was interrupted");
}

#[test]
fn a_full_run_refuses_to_start_without_its_tools_and_a_quick_run_warns() {
    // An empty PATH: no mosquitto clients, tshark, iproute2, iperf3 or iptables.
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let full = Command::new(common::mqtt_lwa_bin())
        .args(["experiment", "--profile", "full", "--out"])
        .arg(out.path())
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(2), "{stderr}");
    for expected in [
        "mosquitto_pub, mosquitto_sub (mosquitto-clients): the stock-client bursts not measured",
        "iperf3 (Debian package iperf3): the emulated links (lan, pi-wifi, constrained)",
        "tshark",
        "--allow-partial",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in\n{stderr}");
    }
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "a refused run measures nothing"
    );

    let quick = Command::new(common::mqtt_lwa_bin())
        .args([
            "experiment",
            "--modes",
            "plain",
            "--no-mosquitto",
            "--idle-connections",
            "10",
            "--storm-seconds",
            "0",
            "--stock-messages",
            "50",
            "--quiet",
            "--name",
            "partial",
            "--out",
        ])
        .arg(out.path())
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&quick.stderr);
    assert!(quick.status.success(), "{stderr}");
    assert!(
        stderr.contains("the stock-client bursts not measured")
            && stderr.contains("going on without them"),
        "{stderr}"
    );
    let report = std::fs::read_to_string(out.path().join("partial/report.md")).unwrap();
    assert!(
        report.contains("stock-client bursts: not measured"),
        "{report}"
    );
}

#[test]
fn serve_interrupted_during_start_up_stops_the_brokers_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Command::new(common::mqtt_lwa_bin())
        .args([
            "experiment",
            "serve",
            "--bind",
            "127.0.0.1",
            "--port-base",
            "0",
            "--dir",
        ])
        .arg(dir.path().join("serve"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // SIGTERM as soon as the first broker runs, long before `ready`.
    let broker = first_broker_child(&mut serve, std::time::Duration::from_millis(5));
    let term = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = serve.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_gone_soon(broker, "serve was stopped during start-up");
}

#[test]
fn memory_is_weighed_in_every_repeat_and_payloads_narrow_the_cells() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(common::mqtt_lwa_bin())
        .args([
            "experiment",
            "--modes",
            "plain,lwa2",
            "--repeat",
            "2",
            "--payloads",
            "30",
            "--idle-connections",
            "20",
            "--storm-seconds",
            "0",
            "--stock-messages",
            "0",
            "--allow-partial",
            "--quiet",
            "--name",
            "mem",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{}\n{stderr}", run.status);
    let dir = out.path().join("mem");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    // Only the asked payload: one cell per (broker, mode, QoS).
    let cells = results["cells"].as_array().unwrap();
    assert!(!cells.is_empty());
    assert!(cells.iter().all(|c| c["payload"] == 30), "{cells:?}");
    // Every (broker, mode) weighed memory in both repeats, 20 connections open each time.
    let blocks: Vec<(String, String)> = results["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["broker"].as_str().unwrap().to_owned(),
                m["mode"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let repeated = results["repeats"]["idle_memory"].as_array().unwrap();
    assert_eq!(repeated.len(), 2 * blocks.len(), "{repeated:?}");
    for (broker, mode) in &blocks {
        let mut reps: Vec<u64> = repeated
            .iter()
            .filter(|m| m["broker"] == broker.as_str() && m["mode"] == mode.as_str())
            .map(|m| {
                let steps = m["steps"].as_array().unwrap();
                assert_eq!(steps.len(), 1, "{m}");
                assert_eq!(steps[0]["opened"], 20, "{m}");
                assert!(steps[0]["bytes_per_connection"].as_f64().unwrap() > 0.0);
                m["repeat"].as_u64().unwrap()
            })
            .collect();
        reps.sort_unstable();
        assert_eq!(reps, [0, 1], "{broker} {mode}");
    }
    let csv = std::fs::read_to_string(dir.join("memory-repeats.csv")).unwrap();
    assert!(
        csv.starts_with("link,broker,mode,repeat,connections,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 2 * blocks.len(), "{csv}");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("Weighed in every repeat"), "{report}");
    if blocks.iter().any(|(b, _)| b == "mosquitto") {
        // Both brokers: the plain memory row against Mosquitto rests on both repeats.
        assert!(
            report.contains(
                "| memory per idle plain connection, B (20 connections; repeats: 2 / 2) |"
            ),
            "{report}"
        );
    }

    let refused = Command::new(common::mqtt_lwa_bin())
        .args(["experiment", "--payloads", "0", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--payloads: 0 B is outside"));
}
