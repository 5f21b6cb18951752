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
//!
//! `cargo run --release --example broker_probe -- icount target/release/mqtt-lwa plain,lwa 0 30 2000 12000`

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use mqtt_lwa::auth::lwa::{LwaClientAuthenticator, LwaVersion};
use mqtt_lwa::auth::tls::client::ClientTlsOptions;
use mqtt_lwa::auth::tls::TlsVersion;
use mqtt_lwa::client::{Client, ConnectOptions};
use mqtt_lwa::codec::{Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions};
use mqtt_lwa::experiment::broker::{BrokerProcess, Credentials, LWA_IDENTITY, PASSWORD, USER};
use mqtt_lwa::experiment::procstat::{rss_bytes, Process};
use mqtt_lwa::experiment::Mode;

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
        stop(&broker).await;
    }
}

/// SIGTERM, then waits (up to 30 s) for the broker to exit, so that a tool
/// wrapping it (callgrind, massif) writes its file; dropping it would SIGKILL.
async fn stop(broker: &BrokerProcess) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(broker.pid().to_string())
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

/// Relays `n` messages through a broker running under callgrind; returns its total Ir.
async fn icount_run(
    bin: &Path,
    mode: Mode,
    creds: &Credentials,
    qos: QoS,
    payload: &Bytes,
    n: usize,
    out: &Path,
) -> u64 {
    let cg = out.join(format!(
        "callgrind.{mode}.q{}.{}.{n}",
        qos as u8,
        payload.len()
    ));
    let _ = std::fs::remove_file(&cg);
    let wrapper = out.join("broker-under-callgrind.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={} {} \"$@\"\n",
            cg.display(),
            bin.display()
        ),
    )
    .expect("wrapper");
    let _ = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status();
    let broker = BrokerProcess::start_mqtt_lwa(&wrapper, mode, creds).expect("broker");
    let mut sub = connect(mode, creds, &broker, "probe-sub").await;
    let filter = SubscribeFilter {
        filter: "probe/#".into(),
        options: SubscriptionOptions::qos(qos),
    };
    sub.subscribe(vec![filter], Properties::default())
        .await
        .expect("subscribe");
    let publisher = connect(mode, creds, &broker, "probe-pub").await;
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
    // SIGTERM: the broker shuts down gracefully and callgrind writes its file.
    stop(&broker).await;
    if let Ok(text) = std::fs::read_to_string(&cg) {
        // `totals:` ends the file (the `summary:` header comes first).
        if let Some(total) = text.lines().find_map(|l| l.strip_prefix("totals: ")) {
            return total.trim().parse().expect("Ir total");
        }
    }
    panic!("no callgrind totals in {}", cg.display());
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
        "icount" => {
            let qos = match arg(3) {
                "0" => QoS::AtMostOnce,
                "1" => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            };
            let payload = Bytes::from(vec![b'x'; arg(4).parse().expect("PAYLOAD")]);
            let (n1, n2): (usize, usize) = (arg(5).parse().expect("N1"), arg(6).parse().expect("N2"));
            let out = PathBuf::from(
                std::env::var("PROBE_OUT").unwrap_or_else(|_| "/tmp/broker-probe".into()),
            );
            std::fs::create_dir_all(&out).expect("PROBE_OUT");
            for mode in modes(arg(2)) {
                let a = icount_run(&bin, mode, &creds, qos, &payload, n1, &out).await;
                let b = icount_run(&bin, mode, &creds, qos, &payload, n2, &out).await;
                println!(
                    "icount {mode} QoS {} {} B: Ir {a} ({n1} msgs), {b} ({n2} msgs): {:.0} Ir per message",
                    qos as u8,
                    payload.len(),
                    (b as f64 - a as f64) / (n2 - n1) as f64
                );
            }
        }
        _ => eprintln!("usage: broker_probe idle BROKER_BIN N MODES | icount BROKER_BIN MODES QOS PAYLOAD N1 N2"),
    }
}
