//! The Python paho-mqtt client (v2 API) against `mqtt-lwa broker`, 3.1.1 and
//! 5.0: one test per scenario of `tests/python/paho_interop.py`.

mod common;

use std::process::Command;

use common::Broker;

fn scenario(name: &str) {
    let broker = Broker::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/paho_interop.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(broker.port().to_string())
        .arg(name)
        .output()
        .expect("run python3 (paho-mqtt is installed by scripts/install-deps.sh)");
    assert!(
        out.status.success(),
        "paho scenario {name} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ok {name}")
    );
}

#[test]
fn paho_basic_mqtt311() {
    scenario("basic311");
}

#[test]
fn paho_basic_mqtt5() {
    scenario("basic5");
}

#[test]
fn paho_shared_subscriptions() {
    scenario("shared");
}

#[test]
fn paho_topic_alias_client_to_broker() {
    scenario("alias_client_to_broker");
}

#[test]
fn paho_topic_alias_broker_to_client() {
    scenario("alias_broker_to_client");
}

#[test]
fn paho_receive_maximum() {
    scenario("receive_maximum");
}

#[test]
fn paho_subscription_identifiers() {
    scenario("subscription_identifiers");
}

#[test]
fn paho_no_local() {
    scenario("no_local");
}

#[test]
fn paho_retain_handling_and_retain_as_published() {
    scenario("retain_handling");
}
