//! Resource limits over sockets, with the real binary (limits already shown
//! elsewhere: max connections and maximum packet size in
//! `broker_bad_input.rs`, the CONNECT timeout (slowloris) there too, QoS 0
//! drops for a client that does not read in `broker_server_api.rs`):
//!
//! - the per-session queue limit: an offline persistent session keeps at
//!   most `max_queued_messages`, newer QoS 1 messages are dropped and counted
//!   in `$SYS/broker/messages/dropped`;
//! - the per-session in-flight limit: a subscriber that does not acknowledge
//!   gets `max_inflight` messages and no more until it does;
//! - failed-authentication rate limiting per source: after the burst of
//!   failed logins, CONNECT is refused with 0x9F before any password hashing;
//! - LWA work before proof: one offer (one X25519) per connection, and a
//!   client that starts the handshake and never finishes is closed at the
//!   CONNECT timeout (pending handshakes are thus bounded by
//!   `max_connections` in number and `connect_timeout_secs` in time);
//! - TLS work before proof: a stalled TLS handshake is closed at the
//!   CONNECT timeout too;
//! - `max_pending_auth`: connections not yet authenticated are bounded in
//!   number; beyond it a new socket is closed before any handshake work.

mod common;

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use common::{Broker, RawClient, Read1, WAIT};
use mqtt_lwa::auth::lwa::LwaClientAuthenticator;
use mqtt_lwa::auth::psk::PskStore;
use mqtt_lwa::auth::ClientAuthenticator;
use mqtt_lwa::codec::{
    Connect, Disconnect, Packet, Properties, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode,
};
use mqtt_lwa::lwa::Psk;

const V5: ProtocolVersion = ProtocolVersion::V5;

fn broker_with(dir: &Path, config: &str) -> Broker {
    let path = dir.join("broker.toml");
    std::fs::write(&path, config).unwrap();
    Broker::start(&["-c", path.to_str().unwrap()])
}

fn connect(client_id: &str, clean: bool, expiry: Option<u32>) -> Connect {
    let properties = Properties {
        session_expiry_interval: expiry,
        ..Properties::default()
    };
    Connect {
        protocol_version: V5,
        clean_start: clean,
        keep_alive: 0,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties,
    }
}

fn connack(c: &mut RawClient) -> mqtt_lwa::codec::ConnAck {
    match c.read(WAIT) {
        Read1::Packet(Packet::ConnAck(a)) => *a,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

fn publish(topic: &str, qos: QoS, id: u16, payload: String) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Default::default(),
        payload: Bytes::from(payload),
    })
}

/// Publishes QoS 1 messages `payloads` and waits for each PUBACK.
fn publish_acked(publisher: &mut RawClient, topic: &str, payloads: &[String]) {
    for (i, p) in payloads.iter().enumerate() {
        let id = u16::try_from(i + 1).unwrap();
        publisher.send(&publish(topic, QoS::AtLeastOnce, id, p.clone()));
        publisher.expect(
            "PUBACK",
            |p| matches!(p, Packet::PubAck(a) if a.packet_id == id),
        );
    }
}

fn next_publish(c: &mut RawClient) -> Publish {
    match c.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))) {
        Packet::Publish(p) => p,
        _ => unreachable!(),
    }
}

#[test]
fn offline_queue_is_bounded_and_drops_are_counted_in_sys() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(
        dir.path(),
        "sys_interval_secs = 1\n[limits]\nmax_queued_messages = 5\n\n[[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n",
    );
    let mut sys = RawClient::connect(broker.addr, V5, "sys-watch");
    sys.subscribe("$SYS/broker/messages/dropped", QoS::AtMostOnce);

    let mut sub = RawClient::tcp(broker.addr, V5);
    sub.send(&Packet::Connect(Box::new(connect(
        "slow-sub",
        true,
        Some(600),
    ))));
    connack(&mut sub);
    sub.subscribe("limits/q", QoS::AtLeastOnce);
    sub.send(&Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
    assert!(sub.expect_close().is_empty());
    // The broker closes the socket before its core has processed the DISCONNECT: a
    // publish racing that would still go to the live connection (in flight there,
    // redelivered on reconnect) rather than to the offline queue. Wait until the core
    // counts the session as disconnected, so all 20 meet the offline queue.
    let mut watch = RawClient::connect(broker.addr, V5, "disc-watch");
    watch.subscribe("$SYS/broker/clients/disconnected", QoS::AtMostOnce);
    watch.expect(
        "$SYS clients/disconnected = 1",
        |p| matches!(p, Packet::Publish(p) if p.payload.as_ref() == b"1"),
    );

    let mut publisher = RawClient::connect(broker.addr, V5, "limits-pub");
    let payloads: Vec<String> = (0..20).map(|n| format!("m{n}")).collect();
    publish_acked(&mut publisher, "limits/q", &payloads);

    // 20 offered to a queue of 5: the 15 newest are dropped (no QoS 0 to evict).
    sys.expect(
        "$SYS dropped = 15",
        |p| matches!(p, Packet::Publish(p) if p.payload.as_ref() == b"15"),
    );

    let mut sub = RawClient::tcp(broker.addr, V5);
    sub.send(&Packet::Connect(Box::new(connect(
        "slow-sub",
        false,
        Some(600),
    ))));
    assert!(connack(&mut sub).session_present);
    for n in 0..5 {
        let p = next_publish(&mut sub);
        assert_eq!(p.payload, Bytes::from(format!("m{n}")));
        sub.send(&Packet::PubAck(PubResponse::success(p.packet_id)));
    }
    // Nothing else was queued: the next message is a new one.
    publish_acked(&mut publisher, "limits/q", &["after".to_string()]);
    assert_eq!(next_publish(&mut sub).payload, Bytes::from_static(b"after"));
}

#[test]
fn inflight_window_holds_messages_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(
        dir.path(),
        "[limits]\nmax_inflight = 3\n\n[[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n",
    );
    let mut sub = RawClient::connect(broker.addr, V5, "no-ack-sub");
    sub.subscribe("limits/w", QoS::AtLeastOnce);
    let mut publisher = RawClient::connect(broker.addr, V5, "window-pub");
    let payloads: Vec<String> = (0..10).map(|n| format!("w{n}")).collect();
    publish_acked(&mut publisher, "limits/w", &payloads);

    let first: Vec<Publish> = (0..3).map(|_| next_publish(&mut sub)).collect();
    // Every PUBLISH the broker sent before this PINGREQ's answer is already
    // in the connection's queue: PINGRESP next means no fourth one.
    sub.send(&Packet::PingReq);
    match sub.read(WAIT) {
        Read1::Packet(Packet::PingResp) => {}
        other => panic!("expected PINGRESP (window full), got {other:?}"),
    }
    sub.send(&Packet::PubAck(PubResponse::success(first[0].packet_id)));
    assert_eq!(next_publish(&mut sub).payload, Bytes::from_static(b"w3"));
}

fn mqtt_lwa(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
}

#[test]
fn failed_logins_are_rate_limited_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let passwd_s = passwd.to_str().unwrap();
    // Few iterations: the test is about the limiter, not the hash cost.
    mqtt_lwa(&[
        "passwd", "-c", "-b", "-I", "1000", passwd_s, "alice", "apple",
    ]);
    let broker = broker_with(
        dir.path(),
        &format!(
            "[[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = false\npassword_file = \"{passwd_s}\"\nauth_failure_burst = 3\nauth_failure_refill_secs = 600\n"
        ),
    );
    let attempt = |password: &str| {
        let mut c = RawClient::tcp(broker.addr, V5);
        let mut p = connect(&common::unique("rl"), true, None);
        p.username = Some("alice".into());
        p.password = Some(Bytes::from(password.to_owned()));
        c.send(&Packet::Connect(Box::new(p)));
        connack(&mut c).reason_code
    };
    // A correct login costs nothing.
    assert_eq!(attempt("apple"), ReasonCode::SUCCESS);
    // A burst of 3 failures per source (configured above; default 10).
    for _ in 0..3 {
        assert_eq!(attempt("wrong"), ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    }
    assert_eq!(attempt("wrong"), ReasonCode::CONNECTION_RATE_EXCEEDED);
    // Refused before the password is checked, so right guesses do not get through either.
    assert_eq!(attempt("apple"), ReasonCode::CONNECTION_RATE_EXCEEDED);
}

/// A CONNECT carrying an LWA1 offer for `identity` made with `key`.
fn lwa_connect(identity: &str, key: [u8; 32]) -> Connect {
    let mut auth = LwaClientAuthenticator::new(identity, Psk::new(key)).unwrap();
    let mut c = connect(&common::unique("lwa"), true, None);
    auth.prepare_connect(&mut c).unwrap();
    c
}

#[test]
fn pending_lwa_handshakes_end_at_the_connect_timeout_and_allow_one_offer() {
    let dir = tempfile::tempdir().unwrap();
    let psk_path = dir.path().join("lwa.psk");
    let mut store = PskStore::new();
    store.set("dev", Psk::new([0x11; 32])).unwrap();
    store.save(&psk_path).unwrap();
    let broker = broker_with(
        dir.path(),
        &format!(
            "[limits]\nconnect_timeout_secs = 1\n\n[[listener]]\nbind = \"127.0.0.1:0\"\nlwa_psk_file = \"{}\"\n",
            psk_path.display()
        ),
    );
    // An attacker without the PSK makes the broker answer one offer (one
    // X25519), then never proves anything: closed at the CONNECT timeout.
    let mut silent = RawClient::tcp(broker.addr, V5);
    silent.send(&Packet::Connect(Box::new(lwa_connect("dev", [0x99; 32]))));
    assert_eq!(connack(&mut silent).reason_code, ReasonCode::SUCCESS);
    let seen = silent.expect_close();
    assert!(seen.is_empty(), "{seen:?}");

    // A second offer on the same connection is not answered.
    let mut greedy = RawClient::tcp(broker.addr, V5);
    greedy.send(&Packet::Connect(Box::new(lwa_connect("dev", [0x99; 32]))));
    assert_eq!(connack(&mut greedy).reason_code, ReasonCode::SUCCESS);
    greedy.send(&Packet::Connect(Box::new(lwa_connect("dev", [0x98; 32]))));
    let seen = greedy.expect_close();
    assert!(
        !seen
            .iter()
            .any(|p| matches!(p, Packet::ConnAck(_) | Packet::Auth(_))),
        "{seen:?}"
    );
}

#[test]
fn stalled_tls_handshakes_are_closed_at_the_connect_timeout() {
    use mqtt_lwa::auth::certs::{CertificateAuthority, KeyAlgorithm, Validity};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let alg = KeyAlgorithm::EcdsaP256;
    let ok = Validity::days_from_now(30);
    let ca = CertificateAuthority::new("hardening CA", alg, ok).unwrap();
    let issued = ca.issue_server(&["127.0.0.1"], alg, ok).unwrap();
    let (crt, key) = (dir.path().join("b.crt"), dir.path().join("b.key"));
    std::fs::write(&crt, &issued.cert_pem).unwrap();
    std::fs::write(&key, issued.key_pem.as_bytes()).unwrap();
    let broker = broker_with(
        dir.path(),
        &format!(
            "[limits]\nconnect_timeout_secs = 1\n\n[[listener]]\nbind = \"127.0.0.1:0\"\nmode = \"tls\"\nallow_anonymous = true\n[listener.tls]\ncertfile = \"{}\"\nkeyfile = \"{}\"\n",
            crt.display(),
            key.display()
        ),
    );
    // No ClientHello at all, and a ClientHello record header whose body never comes.
    let mut silent = RawClient::tcp(broker.addr, V5);
    let mut partial = RawClient::tcp(broker.addr, V5);
    partial
        .stream
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .unwrap();
    assert!(silent.expect_close().is_empty());
    assert!(partial.expect_close().is_empty());
}

#[test]
fn unauthenticated_connections_beyond_max_pending_auth_are_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(
        dir.path(),
        "[limits]\nmax_pending_auth = 2\nmax_pending_auth_per_source = 2\nconnect_timeout_secs = 30\n\n[[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n",
    );
    let mut first = RawClient::tcp(broker.addr, V5);
    let _second = RawClient::tcp(broker.addr, V5);
    // Both places are taken by clients that have sent nothing.
    let mut third = RawClient::tcp(broker.addr, V5);
    third.send(&Packet::Connect(Box::new(connect("third", true, None))));
    assert!(third.expect_close().is_empty(), "closed without CONNACK");
    // Once a pending client authenticates, its place is free again.
    first.send(&Packet::Connect(Box::new(connect("first", true, None))));
    assert_eq!(connack(&mut first).reason_code, ReasonCode::SUCCESS);
    let mut fourth = RawClient::tcp(broker.addr, V5);
    fourth.send(&Packet::Connect(Box::new(connect("fourth", true, None))));
    assert_eq!(connack(&mut fourth).reason_code, ReasonCode::SUCCESS);
}
