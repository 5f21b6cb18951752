//! Unit tests for the client session: packets in, packets and events out.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::auth::{ClientAuthError, ClientAuthStep, PayloadProtection};
use crate::codec::{
    Auth, LastWill, Publish, SubAck, SubscribeFilter, SubscriptionOptions, UnsubAck,
};

fn connect(version: ProtocolVersion, clean_start: bool, keep_alive: u16) -> Connect {
    Connect {
        protocol_version: version,
        clean_start,
        keep_alive,
        client_id: "c1".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

fn session_with(connect: Connect, auth: Option<Box<dyn ClientAuthenticator>>) -> ClientSession {
    ClientSession::new(
        SessionConfig {
            connect,
            outbound_topic_aliases: true,
            auth,
        },
        Instant::now(),
    )
}

fn connack(session_present: bool, properties: Properties) -> Packet {
    Packet::ConnAck(Box::new(ConnAck {
        session_present,
        reason_code: ReasonCode::SUCCESS,
        properties,
    }))
}

/// A 5.0 session that sent CONNECT and accepted a CONNACK with `props`.
fn connected(props: Properties) -> (ClientSession, Instant) {
    let now = Instant::now();
    let mut s = session_with(connect(ProtocolVersion::V5, true, 0), None);
    s.connect_packet(now).unwrap();
    s.handle_packet(connack(false, props), now).unwrap();
    (s, now)
}

fn drain(s: &mut ClientSession) -> Vec<Packet> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

fn events(s: &mut ClientSession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn request(topic: &str, payload: &'static [u8], qos: QoS) -> PublishRequest {
    PublishRequest {
        topic: topic.into(),
        payload: Bytes::from_static(payload),
        qos,
        retain: false,
        properties: Properties::default(),
    }
}

fn publish_packet(topic: &str, packet_id: u16, qos: QoS, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id,
        properties: Default::default(),
        payload: Bytes::from_static(payload),
    })
}

fn expect_publish(p: &Packet) -> &Publish {
    match p {
        Packet::Publish(p) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

fn published(e: &Event) -> (RequestId, &PublishOutcome) {
    match e {
        Event::Published { id, outcome } => (*id, outcome),
        other => panic!("expected Published, got {other:?}"),
    }
}

#[test]
fn connect_packet_is_the_configured_connect() {
    let mut c = connect(ProtocolVersion::V5, false, 30);
    c.will = Some(LastWill {
        topic: "w".into(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::default(),
    });
    let mut s = session_with(c.clone(), None);
    assert_eq!(
        s.connect_packet(Instant::now()).unwrap(),
        Packet::Connect(Box::new(c))
    );
    assert!(!s.is_connected());
}

#[test]
fn refused_connack_is_an_error() {
    let now = Instant::now();
    let mut s = session_with(connect(ProtocolVersion::V311, true, 0), None);
    s.connect_packet(now).unwrap();
    let refused = Packet::ConnAck(Box::new(ConnAck {
        session_present: false,
        reason_code: ReasonCode::NOT_AUTHORIZED,
        properties: Properties::default(),
    }));
    assert_eq!(
        s.handle_packet(refused, now),
        Err(SessionError::Refused(ReasonCode::NOT_AUTHORIZED, None))
    );
    assert!(!s.is_connected());
    assert_eq!(
        s.publish(request("t", b"x", QoS::AtMostOnce), now),
        Err(SessionError::NotConnected)
    );
}

#[test]
fn assigned_client_identifier_is_adopted() {
    let now = Instant::now();
    let mut c = connect(ProtocolVersion::V5, true, 0);
    c.client_id = String::new();
    let mut s = session_with(c, None);
    s.connect_packet(now).unwrap();
    let props = Properties {
        assigned_client_identifier: Some("auto-1".into()),
        ..Properties::default()
    };
    s.handle_packet(connack(false, props), now).unwrap();
    assert_eq!(s.client_id(), "auto-1");
}

#[test]
fn qos0_publish_completes_at_once() {
    let (mut s, now) = connected(Properties::default());
    let id = s
        .publish(request("a/b", b"hi", QoS::AtMostOnce), now)
        .unwrap();
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 1);
    let p = expect_publish(&sent[0]);
    assert_eq!(
        (p.topic.as_str(), p.packet_id, &p.payload[..]),
        ("a/b", 0, &b"hi"[..])
    );
    let ev = events(&mut s);
    assert_eq!(
        published(&ev[0]),
        (
            id,
            &PublishOutcome {
                packet_id: 0,
                reason_code: ReasonCode::SUCCESS,
                properties: Properties::default(),
            }
        )
    );
}

#[test]
fn qos1_publish_completes_on_puback_with_its_reason() {
    let (mut s, now) = connected(Properties::default());
    let id = s
        .publish(request("t", b"1", QoS::AtLeastOnce), now)
        .unwrap();
    let sent = drain(&mut s);
    let pid = expect_publish(&sent[0]).packet_id;
    assert_ne!(pid, 0);
    assert!(events(&mut s).is_empty(), "not complete before PUBACK");
    let ack = PubResponse {
        packet_id: pid,
        reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        properties: Default::default(),
    };
    s.handle_packet(Packet::PubAck(ack), now).unwrap();
    let ev = events(&mut s);
    let (got, outcome) = published(&ev[0]);
    assert_eq!(got, id);
    assert_eq!(outcome.reason_code, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    // A second PUBACK for the same id is ignored.
    s.handle_packet(Packet::PubAck(PubResponse::success(pid)), now)
        .unwrap();
    assert!(events(&mut s).is_empty());
}

#[test]
fn qos2_publish_runs_the_four_step_flow() {
    let (mut s, now) = connected(Properties::default());
    let id = s
        .publish(request("t", b"2", QoS::ExactlyOnce), now)
        .unwrap();
    let pid = expect_publish(&drain(&mut s)[0]).packet_id;
    s.handle_packet(Packet::PubRec(PubResponse::success(pid)), now)
        .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Packet::PubRel(PubResponse::success(pid))]
    );
    assert!(events(&mut s).is_empty());
    // A repeated PUBREC gets the PUBREL again.
    s.handle_packet(Packet::PubRec(PubResponse::success(pid)), now)
        .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Packet::PubRel(PubResponse::success(pid))]
    );
    s.handle_packet(Packet::PubComp(PubResponse::success(pid)), now)
        .unwrap();
    let ev = events(&mut s);
    assert_eq!(published(&ev[0]).0, id);
    assert_eq!(published(&ev[0]).1.reason_code, ReasonCode::SUCCESS);
}

#[test]
fn failed_pubrec_ends_the_qos2_flow() {
    let (mut s, now) = connected(Properties::default());
    s.publish(request("t", b"2", QoS::ExactlyOnce), now)
        .unwrap();
    let pid = expect_publish(&drain(&mut s)[0]).packet_id;
    let rec = PubResponse {
        packet_id: pid,
        reason_code: ReasonCode::NOT_AUTHORIZED,
        properties: Default::default(),
    };
    s.handle_packet(Packet::PubRec(rec), now).unwrap();
    assert!(drain(&mut s).is_empty(), "no PUBREL after a failed PUBREC");
    let ev = events(&mut s);
    assert_eq!(published(&ev[0]).1.reason_code, ReasonCode::NOT_AUTHORIZED);
}

#[test]
fn packet_ids_are_distinct_while_in_flight() {
    let (mut s, now) = connected(Properties::default());
    for _ in 0..3 {
        s.publish(request("t", b"x", QoS::AtLeastOnce), now)
            .unwrap();
    }
    let ids: Vec<u16> = drain(&mut s)
        .iter()
        .map(|p| expect_publish(p).packet_id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
}

#[test]
fn receive_maximum_holds_back_publishes_until_acknowledged() {
    let props = Properties {
        receive_maximum: Some(2),
        ..Properties::default()
    };
    let (mut s, now) = connected(props);
    let ids: Vec<RequestId> = (0..3)
        .map(|_| {
            s.publish(request("t", b"x", QoS::AtLeastOnce), now)
                .unwrap()
        })
        .collect();
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 2, "third publish waits for quota");
    let first = expect_publish(&sent[0]).packet_id;
    s.handle_packet(Packet::PubAck(PubResponse::success(first)), now)
        .unwrap();
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 1, "PUBACK frees one slot");
    assert_eq!(published(&events(&mut s)[0]).0, ids[0]);
    // QoS 0 is not limited by Receive Maximum.
    s.publish(request("t", b"x", QoS::AtMostOnce), now).unwrap();
    assert_eq!(drain(&mut s).len(), 1);
}

#[test]
fn broker_maximum_qos_and_retain_are_respected() {
    let props = Properties {
        maximum_qos: Some(1),
        retain_available: Some(0),
        ..Properties::default()
    };
    let (mut s, now) = connected(props);
    assert!(matches!(
        s.publish(request("t", b"x", QoS::ExactlyOnce), now),
        Err(SessionError::InvalidRequest(_))
    ));
    let mut retained = request("t", b"x", QoS::AtMostOnce);
    retained.retain = true;
    assert!(matches!(
        s.publish(retained, now),
        Err(SessionError::InvalidRequest(_))
    ));
    assert!(matches!(
        s.publish(request("a/+", b"x", QoS::AtMostOnce), now),
        Err(SessionError::InvalidRequest(_))
    ));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn broker_maximum_packet_size_is_respected() {
    let props = Properties {
        maximum_packet_size: Some(64),
        ..Properties::default()
    };
    let (mut s, now) = connected(props);
    let big = PublishRequest {
        payload: Bytes::from(vec![0u8; 100]),
        ..request("t", b"", QoS::AtLeastOnce)
    };
    assert!(matches!(
        s.publish(big, now),
        Err(SessionError::PacketTooLarge { max: 64, .. })
    ));
    assert!(drain(&mut s).is_empty());
    s.publish(request("t", b"small", QoS::AtLeastOnce), now)
        .unwrap();
    assert_eq!(drain(&mut s).len(), 1);
}

#[test]
fn outbound_topic_aliases_within_the_broker_maximum() {
    let props = Properties {
        topic_alias_maximum: Some(1),
        ..Properties::default()
    };
    let (mut s, now) = connected(props);
    for topic in ["sensors/1", "sensors/1", "sensors/2"] {
        s.publish(request(topic, b"x", QoS::AtMostOnce), now)
            .unwrap();
    }
    let sent = drain(&mut s);
    let shape: Vec<(&str, Option<u16>)> = sent
        .iter()
        .map(expect_publish)
        .map(|p| (p.topic.as_str(), p.properties.topic_alias))
        .collect();
    assert_eq!(
        shape,
        vec![("sensors/1", Some(1)), ("", Some(1)), ("sensors/2", None)]
    );
}

#[test]
fn no_outbound_aliases_without_broker_support() {
    let (mut s, now) = connected(Properties::default());
    let mut req = request("t", b"x", QoS::AtMostOnce);
    req.properties.topic_alias = Some(3); // the application's alias is ignored
    s.publish(req.clone(), now).unwrap();
    s.publish(req, now).unwrap();
    for p in drain(&mut s) {
        let p = expect_publish(&p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("t", None));
    }
}

fn with_inbound_aliases(max: u16) -> (ClientSession, Instant) {
    let now = Instant::now();
    let mut c = connect(ProtocolVersion::V5, true, 0);
    c.properties.topic_alias_maximum = Some(max);
    let mut s = session_with(c, None);
    s.connect_packet(now).unwrap();
    s.handle_packet(connack(false, Properties::default()), now)
        .unwrap();
    (s, now)
}

fn aliased(topic: &str, alias: u16) -> Packet {
    let mut p = publish_packet(topic, 0, QoS::AtMostOnce, b"v");
    if let Packet::Publish(p) = &mut p {
        p.properties.topic_alias = Some(alias);
    }
    p
}

#[test]
fn inbound_topic_aliases_are_learned_and_resolved() {
    let (mut s, now) = with_inbound_aliases(4);
    s.handle_packet(aliased("room/temp", 2), now).unwrap();
    s.handle_packet(aliased("", 2), now).unwrap();
    let topics: Vec<(String, Option<u16>)> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            Event::Message(m) => (m.topic, m.properties.topic_alias),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        topics,
        vec![("room/temp".into(), None), ("room/temp".into(), None)]
    );
}

#[test]
fn unknown_or_out_of_range_inbound_alias_disconnects_with_0x94() {
    for packet in [aliased("", 1), aliased("x", 5), aliased("x", 0)] {
        let (mut s, now) = with_inbound_aliases(4);
        let err = s.handle_packet(packet, now).unwrap_err();
        assert!(matches!(
            err,
            SessionError::Protocol {
                reason: ReasonCode::TOPIC_ALIAS_INVALID,
                ..
            }
        ));
        assert_eq!(
            drain(&mut s),
            vec![Packet::Disconnect(Disconnect::new(
                ReasonCode::TOPIC_ALIAS_INVALID
            ))]
        );
        assert!(!s.is_connected());
    }
}

#[test]
fn inbound_qos1_is_delivered_and_acknowledged() {
    let (mut s, now) = connected(Properties::default());
    s.handle_packet(publish_packet("t", 7, QoS::AtLeastOnce, b"m"), now)
        .unwrap();
    assert_eq!(drain(&mut s), vec![Packet::PubAck(PubResponse::success(7))]);
    match &events(&mut s)[..] {
        [Event::Message(m)] => assert_eq!((&m.topic[..], &m.payload[..]), ("t", &b"m"[..])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn inbound_qos2_duplicates_are_delivered_once() {
    let (mut s, now) = connected(Properties::default());
    s.handle_packet(publish_packet("t", 9, QoS::ExactlyOnce, b"once"), now)
        .unwrap();
    let mut dup = publish_packet("t", 9, QoS::ExactlyOnce, b"once");
    if let Packet::Publish(p) = &mut dup {
        p.dup = true;
    }
    s.handle_packet(dup, now).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![
            Packet::PubRec(PubResponse::success(9)),
            Packet::PubRec(PubResponse::success(9))
        ]
    );
    assert_eq!(events(&mut s).len(), 1, "the duplicate is not delivered");
    s.handle_packet(Packet::PubRel(PubResponse::success(9)), now)
        .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Packet::PubComp(PubResponse::success(9))]
    );
    // Once released, the id carries a new message.
    s.handle_packet(publish_packet("t", 9, QoS::ExactlyOnce, b"again"), now)
        .unwrap();
    assert_eq!(events(&mut s).len(), 1);
}

#[test]
fn pubrel_for_unknown_id_answers_not_found_in_v5() {
    let (mut s, now) = connected(Properties::default());
    s.handle_packet(Packet::PubRel(PubResponse::success(3)), now)
        .unwrap();
    match &drain(&mut s)[..] {
        [Packet::PubComp(c)] => {
            assert_eq!(c.reason_code, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn inbound_qos2_beyond_our_receive_maximum_is_a_protocol_error() {
    let now = Instant::now();
    let mut c = connect(ProtocolVersion::V5, true, 0);
    c.properties.receive_maximum = Some(1);
    let mut s = session_with(c, None);
    s.connect_packet(now).unwrap();
    s.handle_packet(connack(false, Properties::default()), now)
        .unwrap();
    s.handle_packet(publish_packet("t", 1, QoS::ExactlyOnce, b"a"), now)
        .unwrap();
    let err = s
        .handle_packet(publish_packet("t", 2, QoS::ExactlyOnce, b"b"), now)
        .unwrap_err();
    assert!(matches!(
        err,
        SessionError::Protocol {
            reason: ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
            ..
        }
    ));
}

#[test]
fn keep_alive_sends_pingreq_and_detects_a_dead_broker() {
    let now = Instant::now();
    let mut s = session_with(connect(ProtocolVersion::V5, true, 10), None);
    s.connect_packet(now).unwrap();
    s.handle_packet(connack(false, Properties::default()), now)
        .unwrap();
    let ka = Duration::from_secs(10);
    assert_eq!(s.next_deadline(), Some(now + ka));
    s.handle_timeout(now + ka - Duration::from_secs(1)).unwrap();
    assert!(drain(&mut s).is_empty(), "not before the interval");
    s.handle_timeout(now + ka).unwrap();
    assert_eq!(drain(&mut s), vec![Packet::PingReq]);
    s.handle_packet(Packet::PingResp, now + ka).unwrap();
    // Traffic from us postpones the next PINGREQ.
    let t = now + ka + Duration::from_secs(5);
    s.publish(request("t", b"x", QoS::AtMostOnce), t).unwrap();
    drain(&mut s);
    assert_eq!(s.next_deadline(), Some(t + ka));
    s.handle_timeout(t + ka).unwrap();
    assert_eq!(drain(&mut s), vec![Packet::PingReq]);
    // No PINGRESP within another interval: dead broker.
    assert_eq!(
        s.handle_timeout(t + ka + ka),
        Err(SessionError::KeepAliveTimeout)
    );
    assert_eq!(
        drain(&mut s),
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::KEEP_ALIVE_TIMEOUT
        ))]
    );
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn server_keep_alive_overrides_ours() {
    let props = Properties {
        server_keep_alive: Some(5),
        ..Properties::default()
    };
    let now = Instant::now();
    let mut s = session_with(connect(ProtocolVersion::V5, true, 60), None);
    s.connect_packet(now).unwrap();
    s.handle_packet(connack(false, props), now).unwrap();
    assert_eq!(s.next_deadline(), Some(now + Duration::from_secs(5)));
}

#[test]
fn keep_alive_zero_never_pings() {
    let (mut s, now) = connected(Properties::default());
    assert_eq!(s.next_deadline(), None);
    s.handle_timeout(now + Duration::from_secs(3600)).unwrap();
    assert!(drain(&mut s).is_empty());
}

mod reconnect_auth;

#[test]
fn packet_ids_wrap_and_skip_those_in_use() {
    let (mut s, now) = connected(Properties::default());
    s.publish(request("t", b"x", QoS::AtLeastOnce), now)
        .unwrap(); // takes id 1
    s.next_packet_id = u16::MAX;
    s.publish(request("t", b"x", QoS::AtLeastOnce), now)
        .unwrap();
    s.publish(request("t", b"x", QoS::AtLeastOnce), now)
        .unwrap();
    let ids: Vec<u16> = drain(&mut s)
        .iter()
        .map(|p| expect_publish(p).packet_id)
        .collect();
    assert_eq!(
        ids,
        vec![1, u16::MAX, 2],
        "0 is never used and 1 is still in flight"
    );
}

#[test]
fn exhausted_packet_ids_are_reported_not_reused() {
    let (mut s, now) = connected(Properties::default());
    for _ in 0..u16::MAX {
        s.publish(request("t", b"", QoS::AtLeastOnce), now).unwrap();
    }
    assert_eq!(drain(&mut s).len(), usize::from(u16::MAX));
    // The broker's default Receive Maximum (65535) is reached too: the next one waits.
    s.publish(request("t", b"", QoS::AtLeastOnce), now).unwrap();
    assert!(drain(&mut s).is_empty());
    let filters = vec![SubscribeFilter {
        filter: "a".into(),
        options: SubscriptionOptions::qos(QoS::AtMostOnce),
    }];
    assert_eq!(
        s.subscribe(filters, Properties::default(), now),
        Err(SessionError::NoPacketId)
    );
    // One acknowledgement frees an id, and the waiting publish takes it.
    s.handle_packet(Packet::PubAck(PubResponse::success(7)), now)
        .unwrap();
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 1);
    assert_eq!(expect_publish(&sent[0]).packet_id, 7);
}
