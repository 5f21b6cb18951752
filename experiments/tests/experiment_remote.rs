//! The two-device set-up on one machine: `mqtt-lwa experiment serve` in one
//! process (credentials, our broker in every mode, mosquitto where installed,
//! one process per broker and mode, the stats port), `mqtt-lwa experiment --remote 127.0.0.1
//! --dir DIR` in another, run through the CLI. Checks that the report says
//! the broker was remote, that broker CPU and memory came through the stats
//! port, that repeats are kept, that the link (`remote:127.0.0.1`) was
//! measured (iperf3 against serve's server, MQTT PINGREQ round trips) and
//! compared with the seed study, and that stopping `serve` stops its brokers
//! and its iperf3 server. A second test serves without iperf3 on PATH.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_exit, wait_until, LineProcess, WAIT};
use serde_json::Value;

fn bin() -> &'static str {
    common::mqtt_lwa_bin()
}

/// `serve` plus its brokers' pids; all stopped on drop even when the test fails.
struct Served {
    serve: LineProcess,
    broker_pids: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        for pid in &self.broker_pids {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn remote_run_measures_a_served_broker_and_serve_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("serve");
    let out = tmp.path().join("out");
    let dir_arg = dir.to_str().unwrap();
    let serve = LineProcess::spawn(
        bin(),
        &[
            "experiment",
            "serve",
            "--dir",
            dir_arg,
            "--bind",
            "127.0.0.1",
            "--port-base",
            "0",
        ],
    );
    let mut served = Served {
        serve,
        broker_pids: Vec::new(),
    };
    // `stats on ADDR (mqtt-lwa plain pid N, ..., mosquitto tls12 pid M)`
    let stats = served
        .serve
        .expect_line("stats on", |l| l.starts_with("stats on "));
    served.broker_pids = stats
        .split(" pid ")
        .skip(1)
        .map(|p| p.chars().take_while(char::is_ascii_digit).collect())
        .collect();
    let mosquitto = Path::new("/usr/sbin/mosquitto").exists();
    // One process per (broker, mode): ours in 9 modes (no TLS with an external PSK;
    // lwa and lwa2), mosquitto in 8 (no LWA of either version).
    let processes = 9 + if mosquitto { 8 } else { 0 };
    assert_eq!(served.broker_pids.len(), processes, "{stats}");
    // `iperf3 on 127.0.0.1:PORT (pid N)`: stopped with serve, killed here if the test fails.
    let iperf3 = served
        .serve
        .expect_line("iperf3 on", |l| l.starts_with("iperf3 "));
    assert!(iperf3.starts_with("iperf3 on 127.0.0.1:"), "{iperf3}");
    served.broker_pids.extend(
        iperf3
            .split(" pid ")
            .nth(1)
            .map(|p| p.chars().take_while(char::is_ascii_digit).collect()),
    );
    served
        .serve
        .expect_line("ready", |l| l.starts_with("ready"));
    let info: Value =
        serde_json::from_slice(&std::fs::read(dir.join("serve.json")).unwrap()).unwrap();
    let iperf3_port = info["iperf3"]["port"]
        .as_u64()
        .unwrap_or_else(|| panic!("no iperf3 port in serve.json: {info}"));
    assert!(
        iperf3.contains(&format!(":{iperf3_port} ")),
        "{iperf3} vs {info}"
    );
    let mut listeners = info["listeners"].as_array().unwrap().clone();
    assert_eq!(listeners.len(), 9, "{info}");
    let served_mosquitto = info["mosquitto_listeners"].as_array().unwrap();
    assert_eq!(
        served_mosquitto.len(),
        if mosquitto { 8 } else { 0 },
        "{info}"
    );
    listeners.extend(served_mosquitto.iter().cloned());
    listeners.push(serde_json::json!(["iperf3", iperf3_port]));

    let status = Command::new(bin())
        .args([
            "experiment",
            "--remote",
            "127.0.0.1",
            "--dir",
            dir_arg,
            "--modes",
            "plain,lwa,tls13-psk",
            "--repeat",
            "2",
            // Fewer sequential LWA handshakes against the one long-lived broker: its
            // per-source limiter counts handshakes whose AUTH is not yet processed.
            "--idle-connections",
            "20",
            "--quiet",
            "--name",
            "r",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "experiment --remote failed: {status}");
    let run = out.join("r");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let notes = &results["meta"]["notes"];
    // The connection storm runs in every repeat, so its rates get intervals.
    let storms = results["repeats"]["storms"].as_array().unwrap();
    for repeat in 0..2 {
        assert!(
            storms.iter().any(|s| s["broker"] == "mqtt-lwa"
                && s["mode"] == "plain"
                && s["repeat"] == repeat
                && s["storm"]["handshakes"].as_u64() > Some(0)),
            "no storm in repeat {repeat}: {storms:?}"
        );
    }
    assert!(
        results["meta"]["remote_broker"]
            .as_str()
            .is_some_and(|h| h.starts_with("127.0.0.1")),
        "{}",
        results["meta"]
    );
    // Versions: the broker host's build and mosquitto come from serve.json,
    // not from the client machine's copies.
    let versions: Vec<(String, String)> =
        serde_json::from_value(results["meta"]["versions"].clone()).unwrap();
    let get = |k: &str| {
        versions
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    let host_build = get("mqtt-lwa (broker host)").expect("broker host's build recorded");
    assert!(
        host_build.contains(mqtt_lwa::build_info::COMMIT),
        "{host_build}"
    );
    assert!(get("mosquitto").is_none(), "{versions:?}");
    let host_mosquitto = get("mosquitto (broker host)").unwrap();
    assert_eq!(
        host_mosquitto.starts_with("mosquitto version"),
        mosquitto,
        "{host_mosquitto}"
    );
    // The link is the network to the served host, named as such everywhere, and it was
    // measured before the matrix: iperf3 both ways, TCP connects, MQTT round trips.
    const LINK: &str = "remote:127.0.0.1";
    assert!(
        results["meta"]["link"]
            .as_str()
            .is_some_and(|l| l.starts_with(LINK)),
        "{}",
        results["meta"]["link"]
    );
    assert_eq!(
        results["meta"]["profile"]["links"],
        serde_json::json!([LINK])
    );
    let links = results["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    let link = &links[0];
    assert_eq!(link["profile"]["name"], LINK, "{link}");
    assert!(num(link, "iperf_mbit_s") > 0.0, "{link}");
    assert!(num(link, "iperf_reverse_mbit_s") > 0.0, "{link}");
    assert!(num(link, "connect_rtt_ms") > 0.0, "{link}");
    let rtt = &link["mqtt_ping_rtt_ms"];
    assert_eq!(rtt["samples"], 50, "{link}");
    assert!(
        num(rtt, "p50") > 0.0 && num(rtt, "p50") <= num(rtt, "p90"),
        "{link}"
    );
    assert!(
        link["notes"].as_array().unwrap().is_empty(),
        "{link} {notes}"
    );
    let modes = results["modes"].as_array().unwrap();
    // Our broker in plain and LWA; mosquitto (no LWA) in plain and TLS with an external
    // PSK (only it serves that) where it is installed.
    let blocks = 2 + 2 * usize::from(mosquitto);
    assert_eq!(modes.len(), blocks, "{notes}");
    for m in modes {
        assert_eq!(m["link"], LINK, "{m}");
        assert!(
            (m["broker"] == "mqtt-lwa" && m["mode"] != "tls13-psk") || m["mode"] != "lwa",
            "{m}"
        );
        // Read through the stats port while 20 idle connections were open.
        assert!(m["rss_bytes_per_idle_connection"].is_f64(), "{m} {notes}");
    }
    let cells = results["cells"].as_array().unwrap();
    assert_eq!(
        cells.len(),
        blocks * 12,
        "4 payloads x 3 QoS per block: {notes}"
    );
    assert!(cells.iter().all(|c| c["link"] == LINK), "{cells:?}");
    let rows = results["repeats"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), blocks * 24, "every cell twice: {notes}");
    for r in [0, 1] {
        assert_eq!(
            rows.iter().filter(|x| x["repeat"] == r).count(),
            blocks * 12
        );
    }
    for s in results["repeats"]["spreads"].as_array().unwrap() {
        assert_eq!(s["repeats"], 2);
        let t = &s["msgs_per_s"];
        assert!(
            num(t, "min") > 0.0 && num(t, "min") <= num(t, "median"),
            "{s}"
        );
        assert!(num(t, "median") <= num(t, "max"), "{s}");
    }
    // Broker CPU came from the other process's /proc via `serve`: over 24 throughput runs
    // per broker it cannot all be zero.
    for broker in ["mqtt-lwa", "mosquitto"]
        .iter()
        .take(1 + usize::from(mosquitto))
    {
        let ticks: f64 = rows
            .iter()
            .filter(|r| r["broker"] == *broker)
            .map(|r| num(r, "broker_cpu_ticks"))
            .sum();
        assert!(ticks > 0.0, "no {broker} CPU read remotely");
    }

    // Both machines' load averages around every block (here the same machine).
    for l in results["repeats"]["loads"].as_array().unwrap() {
        assert!(
            l["start"].is_object() && l["broker_host_start"].is_object(),
            "{l}"
        );
    }
    assert!(results["repeats"]["broker_host_cores"].as_u64().unwrap() > 0);

    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("**Remote broker.** The broker ran on 127.0.0.1"));
    assert!(report.contains("Throughput over repeats"));
    assert_eq!(report.contains("## Broker: mosquitto"), mosquitto);
    if mosquitto {
        // Our broker beside Mosquitto: handshakes per broker CPU second over both repeats' storms.
        assert!(
            report.contains("| plain handshakes per broker CPU second (storms: 2 / 2) |"),
            "{report}"
        );
    }
    // The seed's iperf figures beside this link's iperf3 capacity and MQTT's goodput.
    let seed = report
        .split("## Seed comparison (remote:127.0.0.1 link)")
        .nth(1)
        .unwrap_or_else(|| panic!("no seed comparison in the report:\n{report}"));
    let plain_row = seed
        .lines()
        .find(|l| l.starts_with("| plain |"))
        .unwrap_or_else(|| panic!("no plain row:\n{seed}"));
    let capacity = format!("{:.2}", num(link, "iperf_mbit_s"));
    assert!(
        plain_row.starts_with(&format!("| plain | 13.4 | {capacity} | ")),
        "{plain_row}"
    );
    assert!(report.contains("MQTT PINGREQ RTT ms p50 / p90 (samples)"));
    assert!(!report.contains("loopback"), "{report}");
    for file in ["repeats.csv", "spread.csv", "cells.csv", "modes.csv"] {
        let text = std::fs::read_to_string(run.join(file)).unwrap();
        assert!(
            text.lines()
                .skip(1)
                .all(|l| l.starts_with("remote:127.0.0.1,")),
            "{file}:\n{text}"
        );
    }

    // Serve's brokers log nothing per connection in any mode while measuring
    // (a line per LWA handshake used to charge its cost to LWA alone): the
    // run made hundreds of connections; what serve printed is a handful of
    // start-up lines.
    while served
        .serve
        .wait_line(Duration::from_millis(300), |_| false)
        .is_some()
    {}
    let logged: Vec<&String> = served
        .serve
        .seen
        .iter()
        .filter(|l| l.starts_with("stderr: "))
        .collect();
    assert!(
        !logged.iter().any(|l| l.contains("authenticated")),
        "{logged:#?}"
    );
    assert!(
        logged.len() < 20,
        "{} stderr lines: {logged:#?}",
        logged.len()
    );

    // SIGTERM to serve stops it and its broker: the listeners close.
    let pid = served.serve.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let exited = wait_exit(&mut served.serve.child, WAIT).expect("serve exits after SIGTERM");
    assert!(exited.success(), "{exited}");
    for l in listeners {
        let port = l[1].as_u64().unwrap() as u16;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            wait_until(WAIT, || TcpStream::connect_timeout(
                &addr,
                Duration::from_millis(200)
            )
            .is_err()),
            "{addr} still accepts after serve stopped"
        );
    }
}

/// `serve` on a machine without iperf3 still serves, and says so in
/// `serve.json` (the runner then reports the capacity as not measured).
#[test]
fn serve_without_iperf3_says_so_in_serve_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("serve");
    let empty = tmp.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let mut child = Command::new(bin())
        .args(["experiment", "serve", "--dir"])
        .arg(&dir)
        .args(["--bind", "127.0.0.1", "--port-base", "0", "--no-mosquitto"])
        .env("PATH", &empty)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Killed (serve, then its brokers) if the test fails before serve stops them.
    let mut guard = KillOnDrop(vec![child.id().to_string()]);
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(stats) = line.strip_prefix("stats on ") {
            guard.0 = stats
                .split(" pid ")
                .skip(1)
                .map(|p| p.chars().take_while(char::is_ascii_digit).collect())
                .collect();
            guard.0.insert(0, child.id().to_string());
        }
        let ready = line.starts_with("ready");
        lines.push(line);
        if ready {
            break;
        }
    }
    assert_eq!(guard.0.len(), 1 + 9, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("iperf3 not served: iperf3 missing on broker host")),
        "{lines:#?}"
    );
    let info: Value =
        serde_json::from_slice(&std::fs::read(dir.join("serve.json")).unwrap()).unwrap();
    assert_eq!(info["iperf3"], "missing", "{info}");
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let exited = wait_exit(&mut child, WAIT).expect("serve exits after SIGTERM");
    assert!(exited.success(), "{exited}");
    // Serve stopped its brokers itself.
    guard.0.clear();
}

/// Processes (by pid) that get SIGKILL on drop.
struct KillOnDrop(Vec<String>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
}
