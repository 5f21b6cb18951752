//! Unit tests of the connection state machine: bytes in, bytes and actions out.

use std::sync::atomic::Ordering;

use super::*;
use crate::auth::{AllowAll, AuthDecision, Authenticated, Principal};
use crate::codec::{Auth, Publish};
use crate::codec::{QoS, Subscribe};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

fn settings(over_quota: bool) -> ConnectionSettings {
    ConnectionSettings {
        conn: 7,
        listener: "test".into(),
        policy: Arc::new(AllowAll),
        limits: Limits {
            connect_timeout_secs: 5,
            max_packet_size: 1000,
            ..Limits::default()
        },
        over_quota,
        stats: Arc::new(Stats::default()),
    }
}

fn bytes_of(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    codec::encode(packet, version, &mut out).unwrap();
    out.to_vec()
}

fn packets(c: &mut Connection, version: ProtocolVersion) -> Vec<Packet> {
    let mut buf = BytesMut::from(c.take_output().unwrap_or_default().as_ref());
    let mut d = Decoder::with_version(1 << 20, version);
    let mut v = Vec::new();
    while let Some(p) = d.decode(&mut buf).unwrap() {
        v.push(p);
    }
    v
}

fn connect(version: ProtocolVersion, keep_alive: u16) -> Connect {
    Connect {
        protocol_version: version,
        clean_start: true,
        keep_alive,
        client_id: "c1".into(),
        will: None,
        username: Some("u".into()),
        password: None,
        properties: Properties::default(),
    }
}

fn publish(topic: &str, alias: Option<u16>, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        packet_id: 0,
        properties: Properties {
            topic_alias: alias,
            ..Properties::default()
        }
        .into(),
        payload: Bytes::from_static(payload),
    }
}

fn accept() -> AuthDecision {
    AuthDecision::Accept {
        authenticated: Authenticated {
            principal: Principal {
                username: Some("u".into()),
                lwa_identity: None,
            },
            protection: None,
            auth_response: None,
        },
        connack_auth: None,
    }
}

fn success_connack(props: Properties) -> Packet {
    Packet::ConnAck(Box::new(ConnAck {
        session_present: false,
        reason_code: ReasonCode::SUCCESS,
        properties: props,
    }))
}

/// A connection that went through CONNECT + Accept + the core's CONNACK.
fn connected(c: Connect, connack_props: Properties, now: Instant) -> Connection {
    let version = c.protocol_version;
    let mut conn = Connection::new(settings(false), now);
    let actions = conn.receive(&bytes_of(&Packet::Connect(Box::new(c)), version), now);
    assert!(matches!(actions.as_slice(), [Action::Authenticate(_)]));
    let actions = conn.auth_decided(accept(), None, now);
    assert!(matches!(actions.as_slice(), [Action::CoreConnect(_)]));
    conn.deliver(success_connack(connack_props));
    assert!(matches!(
        packets(&mut conn, version).as_slice(),
        [Packet::ConnAck(_)]
    ));
    conn
}

fn core_packets(actions: Vec<Action>) -> Vec<Packet> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::CorePacket(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn last_disconnect(c: &mut Connection, version: ProtocolVersion) -> Option<ReasonCode> {
    packets(c, version).into_iter().rev().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

#[test]
fn accept_hands_connect_to_core_and_then_packets() {
    let now = Instant::now();
    let mut c = Connection::new(settings(false), now);
    let mut wire = bytes_of(&Packet::Connect(Box::new(connect(V5, 30))), V5);
    // A PUBLISH that arrives in the same read as CONNECT waits for the auth decision.
    wire.extend(bytes_of(&Packet::Publish(publish("a/b", None, b"hi")), V5));
    let (first, second) = wire.split_at(3);
    assert!(c.receive(first, now).is_empty());
    let actions = c.receive(second, now);
    assert_eq!(actions.len(), 1);
    let actions = c.auth_decided(accept(), None, now);
    match actions.as_slice() {
        [Action::CoreConnect(req), Action::CorePacket(Packet::Publish(p))] => {
            assert_eq!(req.conn, 7);
            assert!(!req.connack_sent);
            assert_eq!(req.principal.username.as_deref(), Some("u"));
            assert_eq!(req.payload_overhead, 0);
            assert_eq!(p.topic, "a/b");
        }
        _ => panic!("unexpected actions"),
    }
    assert!(c.core_connected());
}

#[test]
fn an_idle_connection_holds_no_buffer() {
    let now = Instant::now();
    let mut c = connected(connect(V5, 30), Properties::default(), now);
    assert_eq!(c.buffered_capacity(), 0);
    // A partial packet is kept; once it completes, the buffer goes again.
    let ping = bytes_of(&Packet::PingReq, V5);
    let wire = [
        bytes_of(&Packet::Publish(publish("a/b", None, b"hi")), V5),
        ping,
    ]
    .concat();
    let (first, second) = wire.split_at(wire.len() - 1);
    let actions = c.receive(first, now);
    assert_eq!(core_packets(actions).len(), 1);
    assert!(c.buffered_capacity() > 0);
    assert!(c.receive(second, now).is_empty());
    assert!(matches!(packets(&mut c, V5).as_slice(), [Packet::PingResp]));
    assert_eq!(c.buffered_capacity(), 0);
}

#[test]
fn output_is_written_in_place_and_a_burst_buffer_let_go() {
    let now = Instant::now();
    let mut c = connected(connect(V5, 30), Properties::default(), now);
    assert!(c.output().is_empty());
    assert!(c.receive(&bytes_of(&Packet::PingReq, V5), now).is_empty());
    assert_eq!(c.output(), bytes_of(&Packet::PingResp, V5).as_slice());
    c.output_written();
    assert!(c.output().is_empty());
    // A small buffer is kept for the next packet ...
    assert!(c.buffered_capacity() > 0 && c.buffered_capacity() <= OUT_KEEP);
    // ... a burst's is not.
    let big: &'static [u8] = Box::leak(vec![7u8; 2 * OUT_KEEP].into_boxed_slice());
    c.deliver(Packet::Publish(publish("a/b", None, big)));
    assert!(c.output().len() > OUT_KEEP);
    c.output_written();
    assert_eq!(c.buffered_capacity(), 0);
}

#[test]
fn connect_timeout_closes_silently() {
    let now = Instant::now();
    let mut c = Connection::new(settings(false), now);
    assert!(c.receive(&[0x10], now).is_empty());
    assert_eq!(c.next_deadline(), Some(now + Duration::from_secs(5)));
    c.poll_timeout(now + Duration::from_secs(4));
    assert!(!c.is_closed());
    c.poll_timeout(now + Duration::from_secs(5));
    assert!(c.is_closed());
    assert!(c.take_output().is_none());
    assert!(!c.core_connected());
}

#[test]
fn keep_alive_is_one_and_a_half_times_and_server_keep_alive_wins() {
    let now = Instant::now();
    let mut c = connected(connect(V5, 10), Properties::default(), now);
    assert_eq!(c.next_deadline(), Some(now + Duration::from_secs(15)));
    let later = now + Duration::from_secs(12);
    c.receive(&bytes_of(&Packet::PingReq, V5), later);
    assert!(matches!(packets(&mut c, V5).as_slice(), [Packet::PingResp]));
    assert_eq!(c.next_deadline(), Some(later + Duration::from_secs(15)));
    c.poll_timeout(later + Duration::from_secs(15));
    assert!(c.is_closed());
    assert_eq!(
        last_disconnect(&mut c, V5),
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );

    let props = Properties {
        server_keep_alive: Some(2),
        ..Properties::default()
    };
    let c = connected(connect(V5, 10), props, now);
    assert_eq!(c.next_deadline(), Some(now + Duration::from_secs(3)));
    let c = connected(connect(V311, 0), Properties::default(), now);
    assert_eq!(c.next_deadline(), None);
}

#[test]
fn over_quota_is_refused_in_each_version() {
    let now = Instant::now();
    for (version, code) in [(V5, 0x97), (V311, 3)] {
        let mut c = Connection::new(settings(true), now);
        let wire = bytes_of(&Packet::Connect(Box::new(connect(version, 0))), version);
        assert!(c.receive(&wire, now).is_empty());
        assert!(c.is_closed());
        let out = c.take_output().unwrap();
        // CONNACK: type, length, flags, code.
        assert_eq!(out[0], 0x20);
        assert_eq!(out[3], code);
    }
}

#[test]
fn reject_sends_connack_and_counts() {
    let now = Instant::now();
    for (version, code) in [(V5, 0x86), (V311, 4)] {
        let mut c = Connection::new(settings(false), now);
        c.receive(
            &bytes_of(&Packet::Connect(Box::new(connect(version, 0))), version),
            now,
        );
        let actions = c.auth_decided(
            AuthDecision::Reject(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            None,
            now,
        );
        assert!(actions.is_empty());
        assert!(c.is_closed());
        assert_eq!(c.take_output().unwrap()[3], code);
        assert_eq!(c.settings.stats.auth_failures.load(Ordering::Relaxed), 1);
    }
}

struct FakePending {
    protection: bool,
}

impl PendingAuth for FakePending {
    fn method(&self) -> &str {
        "TEST"
    }
    fn finish(self: Box<Self>, auth_data: &[u8]) -> Result<Authenticated, ReasonCode> {
        if auth_data != b"proof" {
            return Err(ReasonCode::NOT_AUTHORIZED);
        }
        Ok(Authenticated {
            principal: Principal {
                username: None,
                lwa_identity: Some("dev1".into()),
            },
            protection: self
                .protection
                .then(|| Box::new(SuffixProtection) as Box<dyn PayloadProtection>),
            auth_response: Some(Bytes::from_static(b"server-finished")),
        })
    }
}

fn pending(protection: bool) -> AuthDecision {
    AuthDecision::Pending {
        connack_auth: ("TEST".into(), Bytes::from_static(b"server-hello")),
        continuation: Box::new(FakePending { protection }),
    }
}

fn auth(method: &str, reason: ReasonCode, data: &'static [u8]) -> Packet {
    Packet::Auth(Box::new(Auth {
        reason_code: reason,
        properties: Properties {
            authentication_method: Some(method.into()),
            authentication_data: Some(Bytes::from_static(data)),
            ..Properties::default()
        },
    }))
}

/// A connection whose CONNACK (with the broker's auth data) was sent and
/// that waits for the client's AUTH.
fn awaiting_auth(protection: bool, now: Instant) -> Connection {
    let mut c = Connection::new(settings(false), now);
    let mut cn = connect(V5, 0);
    cn.properties.authentication_method = Some("TEST".into());
    cn.properties.topic_alias_maximum = Some(4);
    c.receive(&bytes_of(&Packet::Connect(Box::new(cn)), V5), now);
    let preview = ConnAck {
        session_present: true,
        reason_code: ReasonCode::SUCCESS,
        properties: Properties {
            topic_alias_maximum: Some(8),
            ..Properties::default()
        },
    };
    assert!(c
        .auth_decided(pending(protection), Some(preview), now)
        .is_empty());
    match packets(&mut c, V5).as_slice() {
        [Packet::ConnAck(a)] => {
            assert!(a.session_present);
            assert_eq!(a.properties.authentication_method.as_deref(), Some("TEST"));
            assert_eq!(
                a.properties.authentication_data.as_deref(),
                Some(&b"server-hello"[..])
            );
            assert_eq!(a.properties.topic_alias_maximum, Some(8));
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    c
}

#[test]
fn pending_auth_has_no_side_effect_until_finish() {
    let now = Instant::now();
    let mut c = awaiting_auth(false, now);
    // A PUBLISH instead of the AUTH: protocol error, the core never hears of it.
    let actions = c.receive(
        &bytes_of(&Packet::Publish(publish("t", None, b"x")), V5),
        now,
    );
    assert!(actions.is_empty());
    assert!(c.is_closed() && !c.core_connected());
    assert_eq!(
        last_disconnect(&mut c, V5),
        Some(ReasonCode::PROTOCOL_ERROR)
    );

    let mut c = awaiting_auth(false, now);
    let actions = c.receive(
        &bytes_of(&auth("OTHER", ReasonCode::RE_AUTHENTICATE, b"proof"), V5),
        now,
    );
    assert!(actions.is_empty() && !c.core_connected());
    // 0x8C is not allowed in DISCONNECT: a method mismatch is a Protocol Error.
    assert_eq!(
        last_disconnect(&mut c, V5),
        Some(ReasonCode::PROTOCOL_ERROR)
    );

    let mut c = awaiting_auth(false, now);
    let actions = c.receive(
        &bytes_of(&auth("TEST", ReasonCode::RE_AUTHENTICATE, b"forged"), V5),
        now,
    );
    assert!(actions.is_empty() && !c.core_connected());
    assert_eq!(
        last_disconnect(&mut c, V5),
        Some(ReasonCode::NOT_AUTHORIZED)
    );
    assert_eq!(c.settings.stats.auth_failures.load(Ordering::Relaxed), 1);

    // The timeout still applies while waiting for AUTH.
    let mut c = awaiting_auth(false, now);
    c.poll_timeout(now + Duration::from_secs(5));
    assert!(c.is_closed() && !c.core_connected());
}

#[test]
fn pending_auth_success_sends_auth_then_connects_core() {
    let now = Instant::now();
    let mut c = awaiting_auth(false, now);
    let mut wire = bytes_of(&auth("TEST", ReasonCode::RE_AUTHENTICATE, b"proof"), V5);
    // The client publishes right behind its AUTH (no extra round trip).
    wire.extend(bytes_of(&Packet::Publish(publish("t", None, b"x")), V5));
    let actions = c.receive(&wire, now);
    match actions.as_slice() {
        [Action::CoreConnect(req), Action::CorePacket(Packet::Publish(_))] => {
            assert!(req.connack_sent);
            assert!(req.connack_auth.is_none());
            assert_eq!(req.principal.lwa_identity.as_deref(), Some("dev1"));
        }
        _ => panic!("unexpected actions"),
    }
    match packets(&mut c, V5).as_slice() {
        [Packet::Auth(a)] => {
            assert_eq!(a.reason_code, ReasonCode::SUCCESS);
            assert_eq!(
                a.properties.authentication_data.as_deref(),
                Some(&b"server-finished"[..])
            );
        }
        other => panic!("expected AUTH success, got {other:?}"),
    }
}

/// Test protection: appends `|topic` on seal and checks it on open, so the
/// tests see which topic (full name or alias) protection was given.
struct SuffixProtection;

impl PayloadProtection for SuffixProtection {
    fn seal(&mut self, topic: &str, _: QoS, _: bool, payload: &[u8]) -> Result<Bytes, ReasonCode> {
        Ok(Bytes::from([payload, b"|", topic.as_bytes()].concat()))
    }
    fn open(&mut self, topic: &str, _: QoS, _: bool, payload: &[u8]) -> Result<Bytes, ReasonCode> {
        let suffix = [b"|", topic.as_bytes()].concat();
        payload
            .strip_suffix(suffix.as_slice())
            .map(Bytes::copy_from_slice)
            .ok_or(ReasonCode::PAYLOAD_FORMAT_INVALID)
    }
    fn overhead(&self) -> usize {
        16
    }
}

#[test]
fn protection_opens_after_alias_resolution_and_seals_before_aliasing() {
    let now = Instant::now();
    let mut c = awaiting_auth(true, now);
    let actions = c.receive(
        &bytes_of(&auth("TEST", ReasonCode::RE_AUTHENTICATE, b"proof"), V5),
        now,
    );
    match actions.as_slice() {
        [Action::CoreConnect(req)] => assert_eq!(req.payload_overhead, 16),
        _ => panic!("expected CoreConnect"),
    }
    packets(&mut c, V5);
    let mut wire = bytes_of(&Packet::Publish(publish("a/b", Some(3), b"one|a/b")), V5);
    wire.extend(bytes_of(
        &Packet::Publish(publish("", Some(3), b"two|a/b")),
        V5,
    ));
    let got = core_packets(c.receive(&wire, now));
    let payloads: Vec<_> = got
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.topic.clone(), p.payload.clone(), p.properties.topic_alias),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        payloads,
        vec![
            ("a/b".into(), Bytes::from_static(b"one"), None),
            ("a/b".into(), Bytes::from_static(b"two"), None)
        ]
    );
    // Outbound: sealed with the full topic, then aliased (client allows 4).
    c.deliver(Packet::Publish(publish("x/y", None, b"p1")));
    c.deliver(Packet::Publish(publish("x/y", None, b"p2")));
    let out = packets(&mut c, V5);
    match out.as_slice() {
        [Packet::Publish(a), Packet::Publish(b)] => {
            assert_eq!(
                (a.topic.as_str(), a.properties.topic_alias),
                ("x/y", Some(1))
            );
            assert_eq!(a.payload, Bytes::from_static(b"p1|x/y"));
            assert_eq!((b.topic.as_str(), b.properties.topic_alias), ("", Some(1)));
            assert_eq!(b.payload, Bytes::from_static(b"p2|x/y"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // A record that does not open closes the connection and is counted.
    let actions = c.receive(
        &bytes_of(&Packet::Publish(publish("a/b", None, b"tampered")), V5),
        now,
    );
    assert!(core_packets(actions).is_empty());
    assert!(c.is_closed());
    assert_eq!(
        last_disconnect(&mut c, V5),
        Some(ReasonCode::PAYLOAD_FORMAT_INVALID)
    );
    assert_eq!(c.settings.stats.record_failures.load(Ordering::Relaxed), 1);
}

#[test]
fn inbound_alias_limit_comes_from_the_connack() {
    let now = Instant::now();
    let props = Properties {
        topic_alias_maximum: Some(2),
        ..Properties::default()
    };
    let mut c = connected(connect(V5, 0), props, now);
    let got = core_packets(c.receive(
        &bytes_of(&Packet::Publish(publish("t", Some(2), b"x")), V5),
        now,
    ));
    assert_eq!(got.len(), 1);
    c.receive(
        &bytes_of(&Packet::Publish(publish("t", Some(3), b"x")), V5),
        now,
    );
    assert_eq!(
        last_disconnect(&mut c, V5),
        Some(ReasonCode::TOPIC_ALIAS_INVALID)
    );

    // No Topic Alias Maximum in CONNACK: no alias is acceptable.
    let mut c = connected(connect(V5, 0), Properties::default(), now);
    c.receive(
        &bytes_of(&Packet::Publish(publish("t", Some(1), b"x")), V5),
        now,
    );
    assert_eq!(
        last_disconnect(&mut c, V5),
        Some(ReasonCode::TOPIC_ALIAS_INVALID)
    );
}

#[test]
fn publish_over_the_client_maximum_is_dropped_and_counted() {
    let now = Instant::now();
    let mut cn = connect(V5, 0);
    cn.properties.maximum_packet_size = Some(20);
    let mut c = connected(cn, Properties::default(), now);
    c.deliver(Packet::Publish(publish(
        "t",
        None,
        b"this payload is far too long",
    )));
    c.deliver(Packet::Publish(publish("t", None, b"ok")));
    let out = packets(&mut c, V5);
    assert!(
        matches!(out.as_slice(), [Packet::Publish(p)] if p.payload == Bytes::from_static(b"ok"))
    );
    assert_eq!(c.settings.stats.messages_dropped.load(Ordering::Relaxed), 1);
}

#[test]
fn second_connect_auth_and_server_packets_are_protocol_errors() {
    let now = Instant::now();
    let bad = [
        Packet::Connect(Box::new(connect(V5, 0))),
        auth("TEST", ReasonCode::RE_AUTHENTICATE, b"x"),
        Packet::PingResp,
    ];
    for packet in bad {
        let mut c = connected(connect(V5, 0), Properties::default(), now);
        let actions = c.receive(&bytes_of(&packet, V5), now);
        assert!(core_packets(actions).is_empty());
        assert_eq!(
            last_disconnect(&mut c, V5),
            Some(ReasonCode::PROTOCOL_ERROR),
            "{packet:?}"
        );
    }
}

#[test]
fn disconnect_codes_are_valid_for_disconnect() {
    assert!(valid_in_disconnect(ReasonCode::SERVER_SHUTTING_DOWN));
    assert!(valid_in_disconnect(ReasonCode::TOPIC_ALIAS_INVALID));
    assert!(!valid_in_disconnect(ReasonCode::BAD_AUTHENTICATION_METHOD));
    assert!(!valid_in_disconnect(ReasonCode::BANNED));
    assert!(!valid_in_disconnect(ReasonCode::PACKET_IDENTIFIER_IN_USE));
}

#[test]
fn malformed_input_closes_with_the_codec_reason_or_silently_for_311() {
    let now = Instant::now();
    let mut c = connected(connect(V5, 0), Properties::default(), now);
    c.receive(&[0x00, 0x00], now);
    assert!(c.is_closed());
    assert!(last_disconnect(&mut c, V5).is_some());
    let mut c = connected(connect(V311, 0), Properties::default(), now);
    c.receive(&[0x00, 0x00], now);
    assert!(c.is_closed());
    assert!(c.take_output().is_none());
}

#[test]
fn client_disconnect_is_kept_for_the_core_and_forwarded_packets_pass() {
    let now = Instant::now();
    let mut c = connected(connect(V5, 0), Properties::default(), now);
    let sub = Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![codec::SubscribeFilter {
            filter: "a/#".into(),
            options: codec::SubscriptionOptions::qos(QoS::AtLeastOnce),
        }],
        properties: Default::default(),
    });
    let got = core_packets(c.receive(&bytes_of(&sub, V5), now));
    assert_eq!(got, vec![sub]);
    let d = Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL);
    c.receive(&bytes_of(&Packet::Disconnect(d.clone()), V5), now);
    assert!(c.is_closed());
    assert_eq!(c.take_client_disconnect(), Some(d));
    assert!(c.take_output().is_none());
}

#[test]
fn core_close_sends_disconnect_only_to_v5() {
    let now = Instant::now();
    let mut c = connected(connect(V5, 0), Properties::default(), now);
    c.close(Some(ReasonCode::SESSION_TAKEN_OVER));
    assert_eq!(
        last_disconnect(&mut c, V5),
        Some(ReasonCode::SESSION_TAKEN_OVER)
    );
    let mut c = connected(connect(V311, 0), Properties::default(), now);
    c.close(Some(ReasonCode::SESSION_TAKEN_OVER));
    assert!(c.is_closed());
    assert!(c.take_output().is_none());
}

#[test]
fn pending_auth_hands_the_announced_assigned_client_id_to_the_core() {
    let now = Instant::now();
    let mut c = Connection::new(settings(false), now);
    let mut cn = connect(V5, 0);
    cn.client_id = String::new();
    cn.properties.authentication_method = Some("TEST".into());
    c.receive(&bytes_of(&Packet::Connect(Box::new(cn)), V5), now);
    let preview = ConnAck {
        session_present: false,
        reason_code: ReasonCode::SUCCESS,
        properties: Properties {
            assigned_client_identifier: Some("mqtt-lwa-00000000002a".into()),
            ..Properties::default()
        },
    };
    assert!(c
        .auth_decided(pending(false), Some(preview), now)
        .is_empty());
    let actions = c.receive(
        &bytes_of(&auth("TEST", ReasonCode::RE_AUTHENTICATE, b"proof"), V5),
        now,
    );
    match actions.as_slice() {
        [Action::CoreConnect(req)] => {
            assert_eq!(req.connect.client_id, "mqtt-lwa-00000000002a");
        }
        _ => panic!("expected CoreConnect"),
    }
}

#[test]
fn a_pipelined_second_connect_gets_no_connack_in_another_version() {
    // Found by fuzz/broker_session: a 3.1.1 CONNECT and, in the same read, a
    // CONNECT naming level 0x82; the second one used to be answered with a
    // 5.0 CONNACK 0x84 that the 3.1.1 client cannot parse.
    let now = Instant::now();
    let mut c = Connection::new(settings(false), now);
    let mut wire = bytes_of(&Packet::Connect(Box::new(connect(V311, 0))), V311);
    wire.extend_from_slice(&[
        0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x82, 0x02, 0x00, 0x3c, 0x00, 0x00,
    ]);
    c.receive(&wire, now);
    c.auth_decided(accept(), None, now);
    assert!(c.is_closed());
    assert!(packets(&mut c, V311).is_empty());
}
