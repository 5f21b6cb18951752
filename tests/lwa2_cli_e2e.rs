//! LWA2 end to end with the real binaries (issue 15 C): one `mqtt-lwa broker`
//! listener accepts both versions, selected by the Authentication Method;
//! `mqtt-lwa sub/pub --lwa-version 2` round-trip messages at QoS 0, 1 and 2,
//! an LWA1 publisher reaches the LWA2 subscriber through the same broker, and
//! a recording proxy shows method `L2` on the wire but no payload.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{contains, psk_cli, recording_proxy, unique, Broker, LineProcess};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");

fn lwa_pub(
    port: u16,
    version: &str,
    id: &str,
    key: &Path,
    topic: &str,
    msg: &str,
    qos: &str,
) -> Output {
    Command::new(BIN)
        .args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["--lwa-id", id, "--lwa-key"])
        .arg(key)
        .args(["--lwa-version", version, "-i", &unique(id)])
        .args(["-t", topic, "-m", msg, "-q", qos, "-W", "30"])
        .output()
        .unwrap()
}

#[test]
fn lwa2_pub_sub_round_trip_beside_lwa1_with_no_plaintext_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["pub1", "pub2", "sub2"] {
        psk_cli(dir.path(), &["add", "lwa.psk", id]);
    }
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"lwa\"\nbind = \"127.0.0.1\"\nlwa_psk_file = \"{}\"\n",
            dir.path().join("lwa.psk").display()
        ),
    )
    .unwrap();
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    let (proxy, wire) = recording_proxy(broker.addr);
    let key = |id: &str| dir.path().join(format!("{id}.key"));
    let topic = unique("lwa2/e2e");
    let port = proxy.to_string();
    let sub_key = key("sub2");
    let sub_id = unique("sub2");
    let mut sub = LineProcess::spawn(
        BIN,
        &[
            "sub",
            "-d",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--lwa-id",
            "sub2",
            "--lwa-key",
            sub_key.to_str().unwrap(),
            "--lwa-version",
            "2",
            "-i",
            &sub_id,
            "-t",
            &topic,
            "-q",
            "2",
            "-C",
            "4",
            "-W",
            "60",
        ],
    );
    sub.expect_line("SUBACK", |l| l.contains("received SUBACK"));
    for qos in ["0", "1", "2"] {
        let msg = format!("top secret lwa2 reading {qos}");
        let out = lwa_pub(proxy, "2", "pub2", &key("pub2"), &topic, &msg, qos);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        sub.expect_line("the message", |l| l == msg);
    }
    // An LWA1 publisher on the same listener reaches the LWA2 subscriber.
    let msg = "top secret from lwa1";
    let out = lwa_pub(proxy, "1", "pub1", &key("pub1"), &topic, msg, "1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sub.expect_line("the message", |l| l == msg);
    assert!(sub.wait().success());
    let wire = wire.lock().unwrap();
    assert!(contains(&wire, topic.as_bytes()));
    // Method property 0x15, length 2, "L2".
    assert!(contains(&wire, b"\x15\x00\x02L2"));
    assert!(contains(&wire, b"\x15\x00\x04LWA1"));
    assert!(
        !contains(&wire, b"top secret"),
        "plaintext payload on the wire"
    );
}

#[test]
fn lwa2_wrong_key_is_refused_as_broker_authentication_failure() {
    let dir = tempfile::tempdir().unwrap();
    psk_cli(dir.path(), &["add", "lwa.psk", "pub2"]);
    psk_cli(
        dir.path(),
        &["add", "other.psk", "pub2", "--key-out", "other.key"],
    );
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"lwa\"\nbind = \"127.0.0.1\"\nlwa_psk_file = \"{}\"\n",
            dir.path().join("lwa.psk").display()
        ),
    )
    .unwrap();
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    // other.key holds another key for pub2 than the broker's store.
    let out = lwa_pub(
        broker.addr.port(),
        "2",
        "pub2",
        &dir.path().join("other.key"),
        "t",
        "x",
        "0",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broker authentication failed"), "{stderr}");
}
