//! PUBLISH and delivery: QoS flows both ways, retained messages, message
//! expiry, queues and windows, Maximum Packet Size, properties.

use super::test_support::*;
use super::*;
use crate::codec::{LastWill, PubResponse};

fn two_clients(h: &mut Harness, filter: &str, qos: QoS) {
    h.connect(1, v5("sub"));
    h.subscribe(1, filter, opts(qos));
    h.connect(2, v5("pub"));
}

#[test]
fn qos0_in_and_out() {
    let mut h = Harness::new();
    two_clients(&mut h, "a/+", QoS::ExactlyOnce);
    let out = h.publish(2, msg("a/b", "hi", QoS::AtMostOnce, 0));
    assert!(to(&out, 2).is_empty(), "no ack for QoS 0");
    let p = &pubs(&out, 1)[0];
    assert_eq!(
        (p.qos, p.packet_id, p.dup, p.retain),
        (QoS::AtMostOnce, 0, false, false)
    );
    assert_eq!(p.topic, "a/b");
    assert_eq!(Stats::get(&h.stats.messages_received), 1);
    assert_eq!(Stats::get(&h.stats.messages_sent), 1);
}

#[test]
fn qos1_both_directions_and_id_reuse() {
    let mut h = Harness::new();
    two_clients(&mut h, "t", QoS::AtLeastOnce);
    let out = h.publish(2, msg("t", "1", QoS::AtLeastOnce, 7));
    assert_eq!(to(&out, 2), [Packet::PubAck(PubResponse::success(7))]);
    let p = &pubs(&out, 1)[0];
    assert_eq!((p.qos, p.packet_id), (QoS::AtLeastOnce, 1));
    assert!(h
        .send(1, Packet::PubAck(PubResponse::success(1)))
        .is_empty());
    let out = h.publish(2, msg("t", "2", QoS::AtLeastOnce, 8));
    assert_eq!(pubs(&out, 1)[0].packet_id, 2, "ids advance");
}

#[test]
fn qos2_both_directions() {
    let mut h = Harness::new();
    two_clients(&mut h, "t", QoS::ExactlyOnce);
    let out = h.publish(2, msg("t", "x", QoS::ExactlyOnce, 5));
    assert_eq!(to(&out, 2), [Packet::PubRec(PubResponse::success(5))]);
    let p = pubs(&out, 1).remove(0);
    assert_eq!(p.qos, QoS::ExactlyOnce);
    // Retransmission before PUBREL: acknowledged, not forwarded again.
    let mut dup = msg("t", "x", QoS::ExactlyOnce, 5);
    dup.dup = true;
    let out = h.publish(2, dup);
    assert_eq!(to(&out, 2), [Packet::PubRec(PubResponse::success(5))]);
    assert!(pubs(&out, 1).is_empty());
    let out = h.send(2, Packet::PubRel(PubResponse::success(5)));
    assert_eq!(to(&out, 2), [Packet::PubComp(PubResponse::success(5))]);
    // Unknown PUBREL: 0x92 in 5.0.
    let out = h.send(2, Packet::PubRel(PubResponse::success(5)));
    let Packet::PubComp(c) = &to(&out, 2)[0] else {
        panic!()
    };
    assert_eq!(c.reason_code, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND);
    // Same id after PUBCOMP is a new message.
    let out = h.publish(2, msg("t", "y", QoS::ExactlyOnce, 5));
    assert_eq!(payloads(&out, 1), ["y"]);
    // Outbound: PUBREC -> PUBREL -> PUBCOMP frees the id.
    let out = h.send(1, Packet::PubRec(PubResponse::success(p.packet_id)));
    assert_eq!(
        to(&out, 1),
        [Packet::PubRel(PubResponse::success(p.packet_id))]
    );
    assert!(h
        .send(1, Packet::PubComp(PubResponse::success(p.packet_id)))
        .is_empty());
}

#[test]
fn qos_downgraded_to_granted() {
    let mut h = Harness::new();
    two_clients(&mut h, "t", QoS::AtLeastOnce);
    let out = h.publish(2, msg("t", "x", QoS::ExactlyOnce, 1));
    assert_eq!(pubs(&out, 1)[0].qos, QoS::AtLeastOnce);
    let out = h.publish(2, msg("t", "x", QoS::AtMostOnce, 0));
    assert_eq!(pubs(&out, 1)[0].qos, QoS::AtMostOnce);
}

#[test]
fn receive_maximum_exceeded() {
    let mut h = Harness::with_limits(Limits {
        receive_maximum: 2,
        ..Limits::default()
    });
    h.connect(1, v5("a"));
    h.publish(1, msg("t", "1", QoS::ExactlyOnce, 1));
    h.publish(1, msg("t", "2", QoS::ExactlyOnce, 2));
    let out = h.publish(1, msg("t", "3", QoS::ExactlyOnce, 3));
    assert_eq!(
        closes(&out),
        [(1, Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED))]
    );
}

#[test]
fn retained_set_replace_clear() {
    let mut h = Harness::new();
    h.connect(2, v5("pub"));
    let mut r = msg("r/1", "one", QoS::AtLeastOnce, 1);
    r.retain = true;
    h.publish(2, r.clone());
    r.payload = Bytes::from_static(b"two");
    h.publish(2, r.clone());
    let mut r2 = msg("r/2", "other", QoS::AtMostOnce, 0);
    r2.retain = true;
    h.publish(2, r2);
    h.connect(1, v5("sub"));
    let out = h.subscribe(1, "r/+", opts(QoS::ExactlyOnce));
    assert!(matches!(to(&out, 1)[0], Packet::SubAck(_)), "SUBACK first");
    let got = pubs(&out, 1);
    assert_eq!(payloads(&out, 1), ["two", "other"]);
    assert!(got.iter().all(|p| p.retain));
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    assert_eq!(got[1].qos, QoS::AtMostOnce);
    // Live delivery of a retained publish clears RETAIN (no RAP); empty payload clears.
    r.payload = Bytes::new();
    let out = h.publish(2, r);
    let live = pubs(&out, 1);
    assert_eq!(live.len(), 1, "the clearing message is forwarded");
    assert!(!live[0].retain);
    h.connect(3, v5("late"));
    assert_eq!(
        payloads(&h.subscribe(3, "r/#", opts(QoS::AtMostOnce)), 3),
        ["other"]
    );
}

#[test]
fn properties_pass_through_and_alias_does_not() {
    let mut h = Harness::new();
    two_clients(&mut h, "req", QoS::AtMostOnce);
    let mut m = msg("req", "x", QoS::AtMostOnce, 0);
    m.properties = Properties {
        payload_format_indicator: Some(1),
        content_type: Some("text/plain".into()),
        response_topic: Some("resp/1".into()),
        correlation_data: Some(Bytes::from_static(b"c")),
        user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
        topic_alias: Some(3),
        ..Properties::default()
    }
    .into();
    let got = pubs(&h.publish(2, m.clone()), 1).remove(0);
    let p = got.properties;
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.response_topic.as_deref(), Some("resp/1"));
    assert_eq!(p.correlation_data, m.properties.correlation_data);
    assert_eq!(p.user_properties, m.properties.user_properties);
    assert_eq!(p.topic_alias, None);
}

#[test]
fn message_expiry_counts_down_and_expired_are_dropped() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("sub", 1000));
    h.subscribe(1, "t", opts(QoS::AtLeastOnce));
    h.core.disconnected(1, None, h.now);
    h.connect(2, v5("pub"));
    let mut m = msg("t", "short", QoS::AtLeastOnce, 1);
    m.properties.message_expiry_interval = Some(5);
    h.publish(2, m);
    let mut m = msg("t", "long", QoS::AtLeastOnce, 2);
    m.properties.message_expiry_interval = Some(60);
    m.retain = true;
    h.publish(2, m);
    h.advance(10);
    let out = h.connect_with(3, v5_persistent("sub", 1000));
    let got = pubs(&out, 3);
    assert_eq!(payloads(&out, 3), ["long"]);
    assert_eq!(got[0].properties.message_expiry_interval, Some(50));
    // The retained copy expires too.
    h.advance(60);
    assert!(pubs(&h.subscribe(3, "t", opts(QoS::AtMostOnce)), 3).is_empty());
}

#[test]
fn offline_queue_limit_drops_and_counts() {
    let mut h = Harness::with_limits(Limits {
        max_queued_messages: 3,
        ..Limits::default()
    });
    h.connect(1, v5_persistent("sub", 100));
    h.subscribe(1, "t", opts(QoS::AtLeastOnce));
    h.core.disconnected(1, None, h.now);
    h.connect(2, v5("pub"));
    h.publish(2, msg("t", "a0", QoS::AtMostOnce, 0));
    h.publish(2, msg("t", "b1", QoS::AtLeastOnce, 1));
    h.publish(2, msg("t", "c1", QoS::AtLeastOnce, 2));
    h.publish(2, msg("t", "d1", QoS::AtLeastOnce, 3)); // drops a0
    h.publish(2, msg("t", "e1", QoS::AtLeastOnce, 4)); // dropped itself
    assert_eq!(Stats::get(&h.stats.messages_dropped), 2);
    let out = h.connect_with(3, v5_persistent("sub", 100));
    assert_eq!(payloads(&out, 3), ["b1", "c1", "d1"]);
}

#[test]
fn slow_subscriber_window_then_queue() {
    let mut h = Harness::with_limits(Limits {
        max_inflight: 2,
        max_queued_messages: 1,
        ..Limits::default()
    });
    two_clients(&mut h, "t", QoS::AtLeastOnce);
    let mut sent = Vec::new();
    for (i, p) in ["1", "2", "3", "4"].into_iter().enumerate() {
        sent.extend(payloads(
            &h.publish(2, msg("t", p, QoS::AtLeastOnce, i as u16 + 1)),
            1,
        ));
    }
    assert_eq!(sent, ["1", "2"]);
    // Online, the queue holds more than the offline limit while the
    // publisher is paused (`flow`): nothing is dropped.
    assert_eq!(Stats::get(&h.stats.messages_dropped), 0);
    let out = h.send(1, Packet::PubAck(PubResponse::success(1)));
    assert_eq!(payloads(&out, 1), ["3"]);
    assert_eq!(pubs(&out, 1)[0].packet_id, 3);
    let out = h.send(1, Packet::PubAck(PubResponse::success(3)));
    assert_eq!(payloads(&out, 1), ["4"]);
    assert_eq!(pubs(&out, 1)[0].packet_id, 4);
    let out = h.send(1, Packet::PubAck(PubResponse::success(4)));
    assert!(pubs(&out, 1).is_empty());
    // Ids 1 and 3 are free again; the next one continues past 4.
    let out = h.publish(2, msg("t", "5", QoS::AtLeastOnce, 9));
    assert_eq!(pubs(&out, 1)[0].packet_id, 5);
}

#[test]
fn maximum_packet_size_of_the_client() {
    let mut h = Harness::new();
    let mut c = v5("small");
    c.properties.maximum_packet_size = Some(64);
    h.connect(1, c);
    h.subscribe(1, "t", opts(QoS::AtLeastOnce));
    h.connect(2, v5("pub"));
    let out = h.publish(2, msg("t", "short", QoS::AtLeastOnce, 1));
    assert_eq!(payloads(&out, 1), ["short"]);
    let big: &'static str = Box::leak("x".repeat(100).into_boxed_str());
    let out = h.publish(2, msg("t", big, QoS::AtLeastOnce, 2));
    assert!(pubs(&out, 1).is_empty());
    assert_eq!(Stats::get(&h.stats.messages_dropped), 1);
    // The limit is exact: a PUBLISH of 64 bytes passes, 65 does not.
    let fill = |n: usize| -> &'static str { Box::leak("y".repeat(n).into_boxed_str()) };
    let base = crate::codec::encoded_len(
        &Packet::Publish(msg("t", "", QoS::AtLeastOnce, 1)),
        ProtocolVersion::V5,
    );
    let out = h.publish(2, msg("t", fill(64 - base), QoS::AtLeastOnce, 3));
    assert_eq!(pubs(&out, 1).len(), 1);
    let out = h.publish(2, msg("t", fill(65 - base), QoS::AtLeastOnce, 4));
    assert!(pubs(&out, 1).is_empty());
    assert_eq!(Stats::get(&h.stats.messages_dropped), 2);
}

#[test]
fn maximum_packet_size_counts_payload_protection_overhead() {
    let mut h = Harness::new();
    let mut c = v5("sealed");
    c.properties.maximum_packet_size = Some(100);
    let req = ConnectRequest {
        conn: 1,
        connect: c,
        principal: Principal::default(),
        policy: Arc::clone(&h.policy),
        listener: "l".into(),
        connack_sent: false,
        connack_auth: None,
        signed_session_present: None,
        payload_overhead: 16,
    };
    h.core.connect(req, h.now);
    h.subscribe(1, "t", opts(QoS::AtMostOnce));
    h.connect(2, v5("pub"));
    let base = crate::codec::encoded_len(
        &Packet::Publish(msg("t", "", QoS::AtMostOnce, 0)),
        ProtocolVersion::V5,
    );
    let fill = |n: usize| -> &'static str { Box::leak("z".repeat(n).into_boxed_str()) };
    let out = h.publish(2, msg("t", fill(100 - 16 - base), QoS::AtMostOnce, 0));
    assert_eq!(pubs(&out, 1).len(), 1);
    let out = h.publish(2, msg("t", fill(100 - 16 - base + 1), QoS::AtMostOnce, 0));
    assert!(pubs(&out, 1).is_empty());
}

#[test]
fn invalid_publish_topic_closes() {
    let mut h = Harness::new();
    h.connect(1, v5("a"));
    let out = h.publish(1, msg("a/+", "x", QoS::AtMostOnce, 0));
    assert_eq!(closes(&out), [(1, Some(ReasonCode::TOPIC_NAME_INVALID))]);
}

#[test]
fn qos1_queued_for_offline_v311_session_and_delivered_on_reconnect() {
    let mut h = Harness::new();
    h.connect(1, v311("sub", false));
    h.subscribe(1, "t", opts(QoS::ExactlyOnce));
    h.core.disconnected(1, None, h.now);
    h.connect(2, v311("pub", true));
    h.publish(2, msg("t", "q1", QoS::AtLeastOnce, 1));
    h.publish(2, msg("t", "q2", QoS::ExactlyOnce, 2));
    h.publish(2, msg("t", "q0", QoS::AtMostOnce, 0));
    let out = h.connect_with(3, v311("sub", false));
    assert_eq!(payloads(&out, 3), ["q1", "q2", "q0"]);
    let got = pubs(&out, 3);
    assert_eq!(got[0].packet_id, 1);
    assert_eq!(got[1].packet_id, 2);
    assert!(got.iter().all(|p| !p.dup && p.properties.is_empty()));
}

#[test]
fn v311_resume_resends_unacknowledged_qos1_with_dup() {
    let mut h = Harness::new();
    h.connect(1, v311("sub", false));
    h.subscribe(1, "t", opts(QoS::AtLeastOnce));
    h.connect(2, v311("pub", true));
    let out = h.publish(2, msg("t", "x", QoS::AtLeastOnce, 1));
    let first = pubs(&out, 1).remove(0);
    assert!(!first.dup);
    h.core.disconnected(1, None, h.now);
    let out = h.connect_with(3, v311("sub", false));
    let again = pubs(&out, 3).remove(0);
    assert!(again.dup);
    assert_eq!(again.packet_id, first.packet_id);
    assert_eq!(again.payload, first.payload);
    h.send(3, Packet::PubAck(PubResponse::success(first.packet_id)));
    h.core.disconnected(3, None, h.now);
    let out = h.connect_with(4, v311("sub", false));
    assert!(pubs(&out, 4).is_empty(), "acknowledged: not resent");
}

#[test]
fn resume_with_smaller_receive_maximum_resends_all_then_waits() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("sub", 100));
    h.subscribe(1, "t", opts(QoS::AtLeastOnce));
    h.connect(2, v5("pub"));
    for i in 1..=3u16 {
        h.publish(2, msg("t", "m", QoS::AtLeastOnce, i));
    }
    h.core.disconnected(1, None, h.now);
    h.publish(2, msg("t", "later", QoS::AtLeastOnce, 4));
    let mut c = v5_persistent("sub", 100);
    c.properties.receive_maximum = Some(1);
    let out = h.connect_with(3, c);
    let got = pubs(&out, 3);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|p| p.dup));
    assert!(pubs(&h.send(3, Packet::PubAck(PubResponse::success(1))), 3).is_empty());
    assert!(pubs(&h.send(3, Packet::PubAck(PubResponse::success(2))), 3).is_empty());
    let out = h.send(3, Packet::PubAck(PubResponse::success(3)));
    assert_eq!(payloads(&out, 3), ["later"]);
}

#[test]
fn internal_publish_reaches_subscribers_and_retains() {
    let mut h = Harness::new();
    h.connect(1, v5("a"));
    h.subscribe(1, "$SYS/broker/notice/#", opts(QoS::AtLeastOnce));
    let out = h.core.internal_publish(
        "$SYS/broker/notice/cert",
        Bytes::from_static(b"expires soon"),
        QoS::AtLeastOnce,
        true,
        h.now,
    );
    let got = pubs(&out, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    assert!(!got[0].retain);
    h.connect(2, v5("b"));
    let out = h.subscribe(2, "$SYS/broker/notice/+", opts(QoS::AtMostOnce));
    assert_eq!(payloads(&out, 2), ["expires soon"]);
    assert!(h
        .core
        .internal_publish("bad/#", Bytes::new(), QoS::AtMostOnce, false, h.now)
        .is_empty());
}

#[test]
fn inbound_qos2_state_survives_reconnect_so_a_resent_publish_is_not_forwarded_twice() {
    let mut h = Harness::new();
    two_clients(&mut h, "t", QoS::ExactlyOnce);
    h.connect(3, v5_persistent("p2", 100));
    let out = h.publish(3, msg("t", "once", QoS::ExactlyOnce, 11));
    assert_eq!(payloads(&out, 1), ["once"]);
    // The publisher loses its connection before PUBREL and resends with DUP.
    h.core.disconnected(3, None, h.now);
    assert!(h.connect(4, v5_persistent("p2", 100)).session_present);
    let mut again = msg("t", "once", QoS::ExactlyOnce, 11);
    again.dup = true;
    let out = h.publish(4, again);
    assert_eq!(to(&out, 4), [Packet::PubRec(PubResponse::success(11))]);
    assert!(pubs(&out, 1).is_empty());
    let out = h.send(4, Packet::PubRel(PubResponse::success(11)));
    assert_eq!(to(&out, 4), [Packet::PubComp(PubResponse::success(11))]);
    // A clean start forgets it: the same id is a new message then.
    h.publish(4, msg("t", "second", QoS::ExactlyOnce, 12));
    h.core.disconnected(4, None, h.now);
    h.connect(5, v5("p2"));
    let out = h.publish(5, msg("t", "third", QoS::ExactlyOnce, 12));
    assert_eq!(payloads(&out, 1), ["third"]);
}

#[test]
fn publish_carrying_a_subscription_identifier_is_a_protocol_error() {
    let mut h = Harness::new();
    h.connect(1, v5("a"));
    let mut m = msg("t", "x", QoS::AtMostOnce, 0);
    m.properties.subscription_identifiers = vec![1];
    let out = h.publish(1, m);
    assert_eq!(closes(&out), [(1, Some(ReasonCode::PROTOCOL_ERROR))]);
}

#[test]
fn retain_unavailable() {
    let mut h = Harness::with_limits(Limits {
        retain_available: false,
        ..Limits::default()
    });
    let ack = h.connect(1, v5("a"));
    assert_eq!(ack.properties.retain_available, Some(0));
    // 5.0: a retained PUBLISH is refused with 0x9A.
    let mut r = msg("t", "x", QoS::AtMostOnce, 0);
    r.retain = true;
    let out = h.publish(1, r.clone());
    assert_eq!(closes(&out), [(1, Some(ReasonCode::RETAIN_NOT_SUPPORTED))]);
    // 3.1.1: forwarded without being kept.
    h.connect(2, v311("b", true));
    h.subscribe(2, "t", opts(QoS::AtMostOnce));
    assert_eq!(payloads(&h.publish(2, r), 2), ["x"]);
    h.connect(3, v311("c", true));
    assert!(pubs(&h.subscribe(3, "t", opts(QoS::AtMostOnce)), 3).is_empty());
    // A will with RETAIN: CONNACK 0x9A.
    let mut c = v5("d");
    c.will = Some(LastWill {
        topic: "w".into(),
        payload: Bytes::new(),
        qos: QoS::AtMostOnce,
        retain: true,
        properties: Properties::default(),
    });
    let out = h.connect_with(4, c);
    let Packet::ConnAck(a) = &to(&out, 4)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(a.reason_code, ReasonCode::RETAIN_NOT_SUPPORTED);
}
