//! Malformed and hostile input over real sockets: each bad client gets the
//! right DISCONNECT / CONNACK reason code (5.0) or a plain close (3.1.1),
//! while a well-behaved subscriber on the same broker keeps receiving, and
//! QoS 1/2 messages accepted before the garbage are still delivered.

mod common;

use std::io::Write;

use bytes::Bytes;
use common::{connect_packet, publish_packet, unique, Broker, RawClient};
use mqtt_lwa::codec::{Packet, ProtocolVersion, PubResponse, QoS, ReasonCode};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

/// A subscriber that must keep receiving whatever the bad clients do.
struct Watcher {
    sub: RawClient,
    topic: String,
    addr: std::net::SocketAddr,
    n: u32,
}

impl Watcher {
    fn new(broker: &Broker) -> Watcher {
        let topic = unique("watch");
        let mut sub = RawClient::connect(broker.addr, V5, &unique("watcher"));
        sub.subscribe(&topic, QoS::AtLeastOnce);
        Watcher {
            sub,
            topic,
            addr: broker.addr,
            n: 0,
        }
    }

    /// Receives the next message on the watched topic, acknowledging it.
    fn receive(&mut self) -> Bytes {
        let p = self.sub.expect("PUBLISH to the watcher", |p| {
            matches!(p, Packet::Publish(_))
        });
        let Packet::Publish(p) = p else {
            unreachable!()
        };
        if p.qos != QoS::AtMostOnce {
            self.sub
                .send(&Packet::PubAck(PubResponse::success(p.packet_id)));
        }
        p.payload
    }

    /// A fresh client publishes; the watcher must get it.
    fn still_served(&mut self) {
        self.n += 1;
        let payload = format!("alive-{}", self.n);
        let mut publisher = RawClient::connect(self.addr, V5, &unique("pub"));
        let mut p = publish_packet(&self.topic, QoS::AtLeastOnce, 1, b"");
        p.payload = Bytes::from(payload.clone());
        publisher.send(&Packet::Publish(p));
        publisher.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)));
        assert_eq!(self.receive(), Bytes::from(payload));
    }
}

/// The broker's last word before closing must be DISCONNECT with `code`.
fn expect_disconnect(client: &mut RawClient, code: ReasonCode) {
    let seen = client.expect_close();
    match seen.last() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, code, "seen {seen:?}"),
        _ => panic!("expected DISCONNECT {code:?} before the close, got {seen:?}"),
    }
}

/// The broker closes a 3.1.1 connection without sending anything.
fn expect_silent_close(client: &mut RawClient) {
    let seen = client.expect_close();
    assert!(
        seen.is_empty(),
        "3.1.1 has no DISCONNECT from the server: {seen:?}"
    );
}

/// A PUBLISH to `topic` encoded by hand (the encoder refuses wildcards).
fn raw_publish_v5(topic: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.push(0); // no properties
    body.extend_from_slice(b"payload");
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn garbage_after_connect_is_malformed_and_others_keep_working() {
    let broker = Broker::start(&[]);
    let mut watcher = Watcher::new(&broker);
    let mut bad = RawClient::connect(broker.addr, V5, &unique("bad"));
    // Type 15 (AUTH) with flags 0xF: reserved flags wrong -> malformed.
    bad.send_raw(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
    expect_disconnect(&mut bad, ReasonCode::MALFORMED_PACKET);
    watcher.still_served();

    let mut bad311 = RawClient::connect(broker.addr, V311, &unique("bad311"));
    bad311.send_raw(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
    expect_silent_close(&mut bad311);
    watcher.still_served();
}

#[test]
fn garbage_instead_of_connect_is_closed() {
    let broker = Broker::start(&[]);
    let mut watcher = Watcher::new(&broker);
    let mut bad = RawClient::tcp(broker.addr, V5);
    bad.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let seen = bad.expect_close();
    assert!(
        seen.iter()
            .all(|p| !matches!(p, Packet::ConnAck(a) if !a.reason_code.is_error())),
        "{seen:?}"
    );
    watcher.still_served();
}

#[test]
fn second_connect_is_a_protocol_error() {
    let broker = Broker::start(&[]);
    let mut watcher = Watcher::new(&broker);
    let id = unique("twice");
    let mut bad = RawClient::connect(broker.addr, V5, &id);
    bad.send(&Packet::Connect(Box::new(connect_packet(V5, &id, true))));
    expect_disconnect(&mut bad, ReasonCode::PROTOCOL_ERROR);

    let mut bad311 = RawClient::connect(broker.addr, V311, &id);
    bad311.send(&Packet::Connect(Box::new(connect_packet(V311, &id, true))));
    expect_silent_close(&mut bad311);
    watcher.still_served();
}

#[test]
fn oversize_packet_is_refused_before_its_body_arrives() {
    let broker = Broker::start(&["--max-packet-size", "1024"]);
    let mut watcher = Watcher::new(&broker);
    let mut bad = RawClient::connect(broker.addr, V5, &unique("big"));
    // Fixed header announcing 100 000 bytes; the body never comes.
    bad.send_raw(&[0x30, 0xA0, 0x8D, 0x06]);
    expect_disconnect(&mut bad, ReasonCode::PACKET_TOO_LARGE);
    watcher.still_served();
}

#[test]
fn publish_to_a_wildcard_topic_is_refused() {
    let broker = Broker::start(&[]);
    let mut watcher = Watcher::new(&broker);
    for topic in ["a/+", "a/#"] {
        let mut bad = RawClient::connect(broker.addr, V5, &unique("wild"));
        bad.send_raw(&raw_publish_v5(topic));
        expect_disconnect(&mut bad, ReasonCode::TOPIC_NAME_INVALID);
    }
    watcher.still_served();
}

#[test]
fn unknown_packet_type_zero_is_refused() {
    let broker = Broker::start(&[]);
    let mut watcher = Watcher::new(&broker);
    let mut bad = RawClient::connect(broker.addr, V5, &unique("type0"));
    bad.send_raw(&[0x00, 0x00]);
    expect_disconnect(&mut bad, ReasonCode::PROTOCOL_ERROR);
    let mut bad311 = RawClient::connect(broker.addr, V311, &unique("type0"));
    bad311.send_raw(&[0x00, 0x00]);
    expect_silent_close(&mut bad311);
    watcher.still_served();
}

#[test]
fn reserved_flags_are_malformed() {
    let broker = Broker::start(&[]);
    let mut watcher = Watcher::new(&broker);
    let mut bad = RawClient::connect(broker.addr, V5, &unique("flags"));
    // SUBSCRIBE must have flags 0b0010; 0b0000 is malformed.
    bad.send_raw(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00]);
    expect_disconnect(&mut bad, ReasonCode::MALFORMED_PACKET);
    watcher.still_served();
}

#[test]
fn slowloris_without_connect_is_closed_after_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "[limits]\nconnect_timeout_secs = 1\n\n[[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n",
    )
    .unwrap();
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    let mut watcher = Watcher::new(&broker);
    let mut silent = RawClient::tcp(broker.addr, V5);
    let mut trickle = RawClient::tcp(broker.addr, V5);
    // The first byte of a CONNECT, then nothing.
    trickle.stream.write_all(&[0x10]).unwrap();
    assert!(silent.expect_close().is_empty());
    assert!(trickle.expect_close().is_empty());
    watcher.still_served();
}

#[test]
fn unsupported_protocol_versions_get_connack_in_a_readable_format() {
    let broker = Broker::start(&[]);
    let mut watcher = Watcher::new(&broker);
    // MQTT 3.1 ("MQIsdp", level 3) is not supported: 3.1.1-style return code 1.
    let mut old = RawClient::tcp(broker.addr, V311);
    let mut connect = vec![0x10, 0x00, 0x00, 0x06];
    connect.extend_from_slice(b"MQIsdp");
    connect.extend_from_slice(&[0x03, 0x02, 0x00, 0x3C, 0x00, 0x01, b'x']);
    connect[1] = (connect.len() - 2) as u8;
    old.send_raw(&connect);
    let seen = old.expect_close();
    assert!(
        matches!(seen.first(), Some(Packet::ConnAck(a)) if a.reason_code == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        "{seen:?}"
    );
    // Level 6 (from the future): 5.0-style 0x84.
    let mut future = RawClient::tcp(broker.addr, V5);
    let mut connect = vec![0x10, 0x00, 0x00, 0x04];
    connect.extend_from_slice(b"MQTT");
    connect.extend_from_slice(&[0x06, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x01, b'x']);
    connect[1] = (connect.len() - 2) as u8;
    future.send_raw(&connect);
    let seen = future.expect_close();
    assert!(
        matches!(seen.first(), Some(Packet::ConnAck(a)) if a.reason_code == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        "{seen:?}"
    );
    watcher.still_served();
}

#[test]
fn connections_over_the_limit_are_refused_with_quota_exceeded() {
    let broker = Broker::start(&["--max-connections", "2"]);
    let mut watcher = Watcher::new(&broker);
    let mut second = RawClient::connect(broker.addr, V5, &unique("second"));
    let mut third = RawClient::tcp(broker.addr, V5);
    third.send(&Packet::Connect(Box::new(connect_packet(
        V5,
        &unique("third"),
        true,
    ))));
    let seen = third.expect_close();
    assert!(
        matches!(seen.first(), Some(Packet::ConnAck(a)) if a.reason_code == ReasonCode::QUOTA_EXCEEDED),
        "{seen:?}"
    );
    let mut third = RawClient::tcp(broker.addr, V311);
    third.send(&Packet::Connect(Box::new(connect_packet(
        V311,
        &unique("third"),
        true,
    ))));
    let seen = third.expect_close();
    assert!(
        matches!(seen.first(), Some(Packet::ConnAck(a)) if a.reason_code == ReasonCode::SERVER_UNAVAILABLE),
        "{seen:?}"
    );
    // The refusals left the admitted clients alone.
    second.send(&Packet::Publish(publish_packet(
        &watcher.topic,
        QoS::AtLeastOnce,
        1,
        b"from-second",
    )));
    second.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)));
    assert_eq!(watcher.receive(), Bytes::from_static(b"from-second"));
}

#[test]
fn qos1_and_qos2_accepted_before_garbage_are_delivered() {
    let broker = Broker::start(&[]);
    let mut watcher = Watcher::new(&broker);
    let mut bad = RawClient::connect(broker.addr, V5, &unique("acked"));
    bad.send(&Packet::Publish(publish_packet(
        &watcher.topic,
        QoS::AtLeastOnce,
        7,
        b"qos1-before-garbage",
    )));
    bad.expect(
        "PUBACK",
        |p| matches!(p, Packet::PubAck(a) if a.packet_id == 7),
    );
    bad.send(&Packet::Publish(publish_packet(
        &watcher.topic,
        QoS::ExactlyOnce,
        8,
        b"qos2-before-garbage",
    )));
    bad.expect(
        "PUBREC",
        |p| matches!(p, Packet::PubRec(a) if a.packet_id == 8),
    );
    bad.send(&Packet::PubRel(PubResponse::success(8)));
    bad.expect(
        "PUBCOMP",
        |p| matches!(p, Packet::PubComp(a) if a.packet_id == 8),
    );
    bad.send_raw(&[0x00, 0x00]);
    bad.expect_close();
    let mut got = vec![watcher.receive(), watcher.receive()];
    got.sort();
    assert_eq!(
        got,
        vec![
            Bytes::from_static(b"qos1-before-garbage"),
            Bytes::from_static(b"qos2-before-garbage")
        ]
    );
    watcher.still_served();
}

#[test]
fn bad_topic_alias_is_refused() {
    let broker = Broker::start(&[]);
    let mut watcher = Watcher::new(&broker);
    let mut bad = RawClient::connect(broker.addr, V5, &unique("alias"));
    // An alias that was never set, with an empty topic.
    let mut p = publish_packet("", QoS::AtMostOnce, 0, b"x");
    p.properties.topic_alias = Some(1);
    bad.send(&Packet::Publish(p));
    expect_disconnect(&mut bad, ReasonCode::TOPIC_ALIAS_INVALID);
    watcher.still_served();
}

#[test]
fn sigterm_disconnects_v5_clients_with_server_shutting_down() {
    let broker = Broker::start(&[]);
    let mut v5 = RawClient::connect(broker.addr, V5, &unique("v5"));
    let mut v311 = RawClient::connect(broker.addr, V311, &unique("v311"));
    let (status, _) = broker.terminate();
    assert!(status.success(), "{status:?}");
    expect_disconnect(&mut v5, ReasonCode::SERVER_SHUTTING_DOWN);
    expect_silent_close(&mut v311);
}

#[test]
fn unacknowledged_qos1_to_a_misbehaving_persistent_subscriber_is_redelivered() {
    let broker = Broker::start(&[]);
    let topic = unique("redeliver");
    let id = unique("flaky");
    let persistent = |clean: bool| {
        let mut c = RawClient::tcp(broker.addr, V5);
        let mut cn = connect_packet(V5, &id, clean);
        cn.properties.session_expiry_interval = Some(300);
        c.send(&Packet::Connect(Box::new(cn)));
        let ack = c.expect("CONNACK", |p| matches!(p, Packet::ConnAck(_)));
        (c, ack)
    };
    let (mut flaky, _) = persistent(true);
    flaky.subscribe(&topic, QoS::AtLeastOnce);
    let mut publisher = RawClient::connect(broker.addr, V5, &unique("pub"));
    publisher.send(&Packet::Publish(publish_packet(
        &topic,
        QoS::AtLeastOnce,
        1,
        b"must-survive",
    )));
    publisher.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)));
    flaky.expect("the PUBLISH", |p| matches!(p, Packet::Publish(_)));
    // No PUBACK; garbage instead.
    flaky.send_raw(&[0x00, 0x00]);
    expect_disconnect(&mut flaky, ReasonCode::PROTOCOL_ERROR);
    let (mut back, ack) = persistent(false);
    assert!(
        matches!(&ack, Packet::ConnAck(a) if a.session_present),
        "{ack:?}"
    );
    match back.expect("the redelivery", |p| matches!(p, Packet::Publish(_))) {
        Packet::Publish(p) => {
            assert!(p.dup, "a redelivery carries DUP");
            assert_eq!(p.payload, Bytes::from_static(b"must-survive"));
        }
        _ => unreachable!(),
    }
}
