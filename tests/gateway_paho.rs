//! The paho-mqtt interop scenarios (`tests/python/paho_interop.py`, which
//! `interop_paho.rs` runs against the broker) through `mqtt-lwa gateway`: a
//! stock client that sees a gateway in front of our broker, and in front of
//! Debian's Mosquitto, must see the same MQTT.

mod common;
mod gateway_support;

use std::process::Command;

use common::Broker;
use gateway_support::{open_gateway, GatewayProc, Upstream};

const SCENARIOS: [&str; 9] = [
    "basic311",
    "basic5",
    "shared",
    "alias_client_to_broker",
    "alias_broker_to_client",
    "receive_maximum",
    "subscription_identifiers",
    "no_local",
    "retain_handling",
];

/// Runs every scenario against `port`; returns the failures, with output.
fn failures(port: u16, scenarios: &[&str]) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/paho_interop.py");
    let mut failed = Vec::new();
    for name in scenarios {
        let out = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(name)
            .output()
            .expect("run python3 (paho-mqtt is installed by scripts/install-deps.sh)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || stdout.trim() != format!("ok {name}") {
            failed.push(format!(
                "{name}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    failed
}

fn gateway_config(upstream: u16) -> String {
    open_gateway(&[upstream], "", "")
}

#[test]
fn paho_scenarios_through_the_gateway_in_front_of_our_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&[]);
    let gw = GatewayProc::start(dir.path(), "gw", &gateway_config(broker.port()));
    let failed = failures(gw.addrs[0].port(), &SCENARIOS);
    assert!(failed.is_empty(), "{failed:#?}\ngateway log:\n{}", gw.log());
}

#[test]
fn paho_scenarios_through_the_gateway_in_front_of_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start_in(dir.path(), "mosquitto", "");
    let gw = GatewayProc::start(dir.path(), "gw", &gateway_config(upstream.port));
    // The same scenarios straight against Mosquitto: through the gateway, a
    // stock client must see no more failures than Mosquitto itself gives.
    let direct = failures(upstream.port, &SCENARIOS);
    let through = failures(gw.addrs[0].port(), &SCENARIOS);
    let name = |f: &String| f.split(':').next().unwrap_or_default().to_owned();
    let direct: Vec<_> = direct.iter().map(name).collect();
    let extra: Vec<_> = through
        .iter()
        .filter(|f| !direct.contains(&name(f)))
        .collect();
    assert!(
        extra.is_empty(),
        "failing only through the gateway: {extra:#?}\n(Mosquitto alone fails {direct:?})\ngateway log:\n{}",
        gw.log()
    );
}
