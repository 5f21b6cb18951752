//! Load-independent probes of the broker's per-connection and per-message
//! costs, for the figures in experiments/README.md ("targets"):
//!
//! - `broker_probe idle BROKER_BIN N MODES`: starts `mqtt-lwa broker` per
//!   mode, reads its `VmRSS`, opens N idle MQTT 5 connections (each finishes
//!   its handshake: TLS, LWA's AUTH exchange), waits 500 ms and prints the
//!   RSS growth per connection (the experiment's idle-memory column alone).
//! - `broker_probe icount BROKER_BIN MODES QOS PAYLOAD N1 N2`: runs the broker
//!   under `valgrind --tool=callgrind` twice per mode, relays N1 and then N2
//!   messages (one publisher, one subscriber, 16 in flight) and prints the
//!   broker's instructions per message, (Ir(N2) - Ir(N1)) / (N2 - N1), so
//!   start-up and connection set-up cancel out. The callgrind files stay in
//!   `$PROBE_OUT` (default `/tmp/broker-probe`) for `callgrind_annotate`.
//! - `broker_probe syscalls BROKER_BIN MODES QOS PAYLOAD N1 N2`: the same
//!   relay under `strace -f -c` (every thread): system calls per message, in
//!   all and by name.
//! - `broker_probe icount-connect BROKER_BIN MODES N1 N2` and `syscalls-connect
//!   ...`: N1 and then N2 sequential connections (CONNECT, CONNACK and the
//!   mode's handshake, then DISCONNECT): instructions or system calls per
//!   connection, the load-independent side of the experiment's handshakes per
//!   broker CPU second.
//!
//! BROKER_BIN may be `/usr/sbin/mosquitto` (any path whose file name is
//! `mosquitto`): it is started with the experiment's mosquitto.conf for the
//! mode, under the same tool, so both brokers are counted alike. Both counts
//! are user space only for callgrind; strace counts the calls, not their cost.
//!
//! `cargo run --release --example broker_probe -- icount target/release/mqtt-lwa plain,lwa 0 30 2000 12000`

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use mqtt_lwa::auth::lwa::{LwaClientAuthenticator, LwaVersion};
use mqtt_lwa::client::{Client, ConnectOptions};
use mqtt_lwa::codec::{Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions};
use mqtt_lwa::transport::tls::client::ClientTlsOptions;
use mqtt_lwa::transport::tls::TlsVersion;
use mqtt_lwa_experiments::broker::{BrokerProcess, Credentials, LWA_IDENTITY, PASSWORD, USER};
use mqtt_lwa_experiments::procstat::{rss_bytes, Process};
use mqtt_lwa_experiments::Mode;

/// Messages in flight during an icount run (QoS 0 ones are never dropped at this depth).
const WINDOW: usize = 16;
/// The topic every probe message goes to (32 bytes after `probe/`, like the experiment's).
const TOPIC: &str = "probe/sensors/greenhouse-3/temperature";

fn options(mode: Mode, creds: &Credentials, broker: &BrokerProcess, id: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new(broker.addr.ip().to_string(), broker.addr.port());
    o.client_id = id.to_owned();
    let tls = |version, mutual: bool| ClientTlsOptions {
        ca_file: Some(creds.ca.clone()),
        cert_file: mutual.then(|| creds.client_cert.clone()),
        key_file: mutual.then(|| creds.client_key.clone()),
        version: Some(version),
        insecure: false,
    };
    match mode {
        Mode::Plain => {}
        Mode::Password => {
            o.username = Some(USER.into());
            o.password = Some(Bytes::from_static(PASSWORD.as_bytes()));
        }
        Mode::Tls13 => o.tls = Some(tls(TlsVersion::Tls13, false)),
        Mode::Mtls13 => o.tls = Some(tls(TlsVersion::Tls13, true)),
        Mode::Tls12 => o.tls = Some(tls(TlsVersion::Tls12, false)),
        // Each probe connection builds its own configuration: no tickets to
        // resume from and rustls's default suites; the experiment measures
        // these two (`workload::TlsClient`).
        Mode::Tls13Resume | Mode::Tls13Chacha | Mode::Tls13Psk => {
            panic!("{mode}: not probed here; use `mqtt-lwa experiment --modes {mode}`")
        }
        Mode::Lwa | Mode::Lwa2 => {
            let version = if mode == Mode::Lwa2 {
                LwaVersion::V2
            } else {
                LwaVersion::V1
            };
            let auth = LwaClientAuthenticator::new(LWA_IDENTITY, creds.psk.clone())
                .unwrap_or_else(|e| panic!("LWA client: {}", e.message))
                .with_version(version);
            o.auth = Some(Box::new(auth));
        }
    }
    o
}

async fn connect(mode: Mode, creds: &Credentials, broker: &BrokerProcess, id: &str) -> Client {
    Client::connect(options(mode, creds, broker, id))
        .await
        .unwrap_or_else(|e| panic!("connect {mode}: {e}"))
        .0
}

async fn bye(client: Client) {
    let _ = client
        .disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default())
        .await;
}

fn modes(list: &str) -> Vec<Mode> {
    list.split(',')
        .map(|name| {
            Mode::ALL
                .iter()
                .copied()
                .find(|m| m.name() == name)
                .unwrap_or_else(|| panic!("unknown mode {name}"))
        })
        .collect()
}

async fn idle(bin: &Path, n: usize, modes: &[Mode], creds: &Credentials) {
    for &mode in modes {
        let broker = BrokerProcess::start_mqtt_lwa(bin, mode, creds).expect("broker");
        let pid = Process::Pid(broker.pid());
        // One connection first: allocator arenas and lazily built state are not per connection.
        let warm = connect(mode, creds, &broker, "warm").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = rss_bytes(pid).expect("rss");
        let mut clients = Vec::with_capacity(n);
        for i in 0..n {
            clients.push(connect(mode, creds, &broker, &format!("idle-{i}")).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_bytes(pid).expect("rss");
        println!(
            "idle {mode}: {n} connections, broker VmRSS {} -> {} KiB: {:.2} KiB per connection",
            before / 1024,
            after / 1024,
            (after as f64 - before as f64) / n as f64 / 1024.0
        );
        for c in clients.into_iter().chain([warm]) {
            bye(c).await;
        }
        stop(&broker, false).await;
    }
}

/// SIGTERM, then waits (up to 30 s) for the broker to exit, so that a tool
/// wrapping it (callgrind, massif) writes its file; dropping it would SIGKILL.
async fn stop(broker: &BrokerProcess, traced: bool) {
    // Under strace the broker is strace's child; strace exits after it, and a
    // SIGTERM to strace itself would detach and leave the broker running.
    let target = if traced {
        let children = format!("/proc/{0}/task/{0}/children", broker.pid());
        std::fs::read_to_string(children)
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| broker.pid().to_string())
    } else {
        broker.pid().to_string()
    };
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(target)
        .status();
    let status = format!("/proc/{}/status", broker.pid());
    for _ in 0..300 {
        match std::fs::read_to_string(&status) {
            Ok(s) if !s.contains("State:\tZ") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            _ => return,
        }
    }
}

/// What the broker is run under.
#[derive(Clone, Copy, PartialEq)]
enum Tool {
    /// `valgrind --tool=callgrind`: user-space instructions (Ir).
    Callgrind,
    /// `strace -f -c`: system calls, every thread.
    Strace,
}

/// What the probe makes the broker do `n` times.
#[derive(Clone)]
enum Work {
    /// Relay `n` messages of `payload` at `qos` from one publisher to one subscriber.
    Relay { qos: QoS, payload: Bytes },
    /// Open and close `n` connections one after the other.
    Connect,
}

impl Work {
    fn tag(&self) -> String {
        match self {
            Work::Relay { qos, payload } => format!("q{}.{}", *qos as u8, payload.len()),
            Work::Connect => "connect".into(),
        }
    }
}

/// Whether `bin` is Mosquitto rather than `mqtt-lwa`.
fn is_mosquitto(bin: &Path) -> bool {
    bin.file_name().is_some_and(|n| n == "mosquitto")
}

/// Starts `bin` for `mode` under `tool`, writing the tool's output to `file`.
fn start_under(
    tool: Tool,
    bin: &Path,
    mode: Mode,
    creds: &Credentials,
    file: &Path,
    out: &Path,
) -> BrokerProcess {
    let wrapper = out.join("broker-under-tool.sh");
    let tool_cmd = match tool {
        Tool::Callgrind => format!(
            "valgrind --tool=callgrind --callgrind-out-file={}",
            file.display()
        ),
        Tool::Strace => format!("strace -f -c -o {}", file.display()),
    };
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {tool_cmd} {} \"$@\"\n", bin.display()),
    )
    .expect("wrapper");
    let _ = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status();
    if is_mosquitto(bin) {
        BrokerProcess::start_mosquitto_with(&wrapper, mode, creds).expect("mosquitto")
    } else {
        BrokerProcess::start_mqtt_lwa(&wrapper, mode, creds).expect("broker")
    }
}

/// Runs `work` `n` times against `bin` under `tool`; returns the tool's file.
async fn run_under(
    tool: Tool,
    bin: &Path,
    mode: Mode,
    creds: &Credentials,
    work: &Work,
    n: usize,
    out: &Path,
) -> PathBuf {
    let broker_name = if is_mosquitto(bin) {
        "mosquitto"
    } else {
        "mqtt-lwa"
    };
    let kind = match tool {
        Tool::Callgrind => "callgrind",
        Tool::Strace => "strace",
    };
    let file = out.join(format!("{kind}.{broker_name}.{mode}.{}.{n}", work.tag()));
    let _ = std::fs::remove_file(&file);
    let broker = start_under(tool, bin, mode, creds, &file, out);
    match work {
        Work::Relay { qos, payload } => relay(mode, creds, &broker, *qos, payload, n).await,
        Work::Connect => {
            for i in 0..n {
                bye(connect(mode, creds, &broker, &format!("probe-{i}")).await).await;
            }
        }
    }
    // SIGTERM: the broker shuts down gracefully and the tool writes its file.
    stop(&broker, tool == Tool::Strace).await;
    file
}

/// Relays `n` messages through `broker`, 16 in flight.
async fn relay(
    mode: Mode,
    creds: &Credentials,
    broker: &BrokerProcess,
    qos: QoS,
    payload: &Bytes,
    n: usize,
) {
    let mut sub = connect(mode, creds, broker, "probe-sub").await;
    let filter = SubscribeFilter {
        filter: "probe/#".into(),
        options: SubscriptionOptions::qos(qos),
    };
    sub.subscribe(vec![filter], Properties::default())
        .await
        .expect("subscribe");
    let publisher = connect(mode, creds, broker, "probe-pub").await;
    let mut sent = 0;
    while sent < n {
        let batch = WINDOW.min(n - sent);
        let tasks: Vec<_> = (0..batch)
            .map(|_| {
                let (handle, payload) = (publisher.handle(), payload.clone());
                tokio::spawn(async move {
                    handle
                        .publish(TOPIC, payload, qos, false, Properties::default())
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("publish");
        }
        for _ in 0..batch {
            tokio::time::timeout(Duration::from_secs(60), sub.recv())
                .await
                .expect("message in time")
                .expect("message");
        }
        sent += batch;
    }
    bye(publisher).await;
    bye(sub).await;
}

/// callgrind's total Ir.
fn callgrind_total(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    // `totals:` ends the file (the `summary:` header comes first).
    text.lines()
        .find_map(|l| l.strip_prefix("totals: "))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no callgrind totals in {}", file.display()))
}

/// strace -c's calls by name, and `total`.
fn strace_calls(file: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut calls = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 4 || t[0].parse::<f64>().is_err() {
            continue;
        }
        let Some(&name) = t.last() else { continue };
        // Rows (strace 6): % time, seconds, usecs/call, calls, [errors], name (total too).
        if let Some(n) = t.get(3).and_then(|c| c.parse().ok()) {
            calls.push((name.to_string(), n));
        }
    }
    assert!(
        calls.iter().any(|(n, _)| n == "total"),
        "no strace total in {}",
        file.display()
    );
    calls
}

/// Runs `work` N1 and N2 times under `tool` per mode and prints the difference per unit.
async fn probe(
    tool: Tool,
    bin: &Path,
    modes: &[Mode],
    creds: &Credentials,
    work: Work,
    n1: usize,
    n2: usize,
) {
    let out =
        PathBuf::from(std::env::var("PROBE_OUT").unwrap_or_else(|_| "/tmp/broker-probe".into()));
    std::fs::create_dir_all(&out).expect("PROBE_OUT");
    let broker_name = if is_mosquitto(bin) {
        "mosquitto"
    } else {
        "mqtt-lwa"
    };
    let unit = match work {
        Work::Relay { .. } => "message",
        Work::Connect => "connection",
    };
    let per = |a: u64, b: u64| (b as f64 - a as f64) / (n2 - n1) as f64;
    for &mode in modes {
        let fa = run_under(tool, bin, mode, creds, &work, n1, &out).await;
        let fb = run_under(tool, bin, mode, creds, &work, n2, &out).await;
        let what = format!("{broker_name} {mode} {}", work.tag());
        match tool {
            Tool::Callgrind => {
                let (a, b) = (callgrind_total(&fa), callgrind_total(&fb));
                println!(
                    "icount {what}: Ir {a} ({n1}), {b} ({n2}): {:.0} Ir per {unit}",
                    per(a, b)
                );
            }
            Tool::Strace => {
                let (a, b) = (strace_calls(&fa), strace_calls(&fb));
                let count = |v: &[(String, u64)], name: &str| {
                    v.iter().find(|(n, _)| n == name).map_or(0, |x| x.1)
                };
                let total = per(count(&a, "total"), count(&b, "total"));
                let mut by_name: Vec<(String, f64)> = b
                    .iter()
                    .filter(|(n, _)| n != "total")
                    .map(|(n, _)| (n.clone(), per(count(&a, n), count(&b, n))))
                    .filter(|(_, v)| v.abs() >= 0.05)
                    .collect();
                by_name.sort_by(|x, y| y.1.total_cmp(&x.1));
                let list: Vec<String> =
                    by_name.iter().map(|(n, v)| format!("{n} {v:.2}")).collect();
                println!(
                    "syscalls {what}: {total:.2} per {unit} ({})",
                    list.join(", ")
                );
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let creds = Credentials::create(dir.path()).expect("credentials");
    let bin = std::fs::canonicalize(arg(1)).expect("BROKER_BIN");
    match arg(0) {
        "idle" => {
            let n = arg(2).parse().unwrap_or(1000);
            idle(&bin, n, &modes(arg(3)), &creds).await;
        }
        cmd @ ("icount" | "syscalls") => {
            let qos = match arg(3) {
                "0" => QoS::AtMostOnce,
                "1" => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            };
            let payload = Bytes::from(vec![b'x'; arg(4).parse().expect("PAYLOAD")]);
            let (n1, n2): (usize, usize) = (arg(5).parse().expect("N1"), arg(6).parse().expect("N2"));
            let tool = if cmd == "icount" { Tool::Callgrind } else { Tool::Strace };
            probe(tool, &bin, &modes(arg(2)), &creds, Work::Relay { qos, payload }, n1, n2).await;
        }
        cmd @ ("icount-connect" | "syscalls-connect") => {
            let (n1, n2): (usize, usize) = (arg(3).parse().expect("N1"), arg(4).parse().expect("N2"));
            let tool = if cmd == "icount-connect" { Tool::Callgrind } else { Tool::Strace };
            probe(tool, &bin, &modes(arg(2)), &creds, Work::Connect, n1, n2).await;
        }
        _ => eprintln!("usage: broker_probe idle BROKER_BIN N MODES | icount|syscalls BROKER_BIN MODES QOS PAYLOAD N1 N2 | icount-connect|syscalls-connect BROKER_BIN MODES N1 N2"),
    }
}
