//! PUBLISH, SUBSCRIBE and delivery: QoS flows, retained messages,
//! subscription options, shared subscriptions, expiry, ACL, limits.

use super::tests::*;
use super::*;
use crate::codec::{
    PubResponse, RetainHandling, SubAck, Subscribe, SubscribeFilter, UnsubAck, Unsubscribe,
};

fn suback(out: &[Output], conn: ConnId) -> SubAck {
    to(out, conn)
        .into_iter()
        .find_map(|p| match p {
            Packet::SubAck(s) => Some(s),
            _ => None,
        })
        .expect("SUBACK")
}

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
fn retain_handling_and_retain_as_published() {
    let mut h = Harness::new();
    h.connect(2, v5("pub"));
    let mut r = msg("r", "v", QoS::AtMostOnce, 0);
    r.retain = true;
    h.publish(2, r.clone());
    h.connect(1, v5("sub"));
    let mut o = opts(QoS::AtMostOnce);
    o.retain_handling = RetainHandling::DoNotSend;
    assert!(pubs(&h.subscribe(1, "r", o), 1).is_empty());
    o.retain_handling = RetainHandling::SendIfNew;
    assert!(
        pubs(&h.subscribe(1, "r", o), 1).is_empty(),
        "exists already"
    );
    assert_eq!(
        pubs(&h.subscribe(1, "+", o), 1).len(),
        1,
        "new subscription"
    );
    o.retain_handling = RetainHandling::SendAtSubscribe;
    assert_eq!(pubs(&h.subscribe(1, "r", o), 1).len(), 1);
    // RAP keeps the flag on live delivery.
    h.connect(3, v5("rap"));
    let mut o = opts(QoS::AtMostOnce);
    o.retain_as_published = true;
    o.retain_handling = RetainHandling::DoNotSend;
    h.subscribe(3, "r", o);
    let out = h.publish(2, r);
    assert!(pubs(&out, 3)[0].retain);
    assert!(!pubs(&out, 1)[0].retain);
}

#[test]
fn no_local() {
    let mut h = Harness::new();
    h.connect(1, v5("a"));
    let mut o = opts(QoS::AtMostOnce);
    o.no_local = true;
    h.subscribe(1, "t", o);
    assert!(pubs(&h.publish(1, msg("t", "x", QoS::AtMostOnce, 0)), 1).is_empty());
    h.connect(2, v5("b"));
    assert_eq!(
        pubs(&h.publish(2, msg("t", "x", QoS::AtMostOnce, 0)), 1).len(),
        1
    );
    // Without no-local a client gets its own messages.
    h.subscribe(2, "t", opts(QoS::AtMostOnce));
    assert_eq!(
        pubs(&h.publish(2, msg("t", "x", QoS::AtMostOnce, 0)), 2).len(),
        1
    );
}

#[test]
fn overlapping_subscriptions_deliver_once_with_max_qos_and_all_ids() {
    let mut h = Harness::new();
    h.connect(1, v5("a"));
    h.subscribe_id(1, "t/+", opts(QoS::AtMostOnce), Some(3));
    h.subscribe_id(1, "t/#", opts(QoS::ExactlyOnce), Some(9));
    h.subscribe_id(1, "t/x", opts(QoS::AtLeastOnce), None);
    h.connect(2, v5("b"));
    let out = h.publish(2, msg("t/x", "m", QoS::ExactlyOnce, 1));
    let got = pubs(&out, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qos, QoS::ExactlyOnce);
    let mut ids = got[0].properties.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(ids, [3, 9]);
}

#[test]
fn subscription_identifier_on_retained_and_not_for_v311() {
    let mut h = Harness::new();
    h.connect(2, v5("pub"));
    let mut r = msg("r", "v", QoS::AtMostOnce, 0);
    r.retain = true;
    h.publish(2, r);
    h.connect(1, v5("a"));
    let out = h.subscribe_id(1, "r", opts(QoS::AtMostOnce), Some(42));
    assert_eq!(pubs(&out, 1)[0].properties.subscription_identifiers, [42]);
    h.connect(3, v311("old", true));
    h.subscribe_id(3, "r", opts(QoS::AtMostOnce), Some(42));
    let out = h.publish(2, msg("r", "w", QoS::AtMostOnce, 0));
    assert!(pubs(&out, 3)[0].properties.is_empty());
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
    };
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
    assert_eq!(Stats::get(&h.stats.messages_dropped), 1);
    let out = h.send(1, Packet::PubAck(PubResponse::success(1)));
    assert_eq!(payloads(&out, 1), ["3"]);
    assert_eq!(pubs(&out, 1)[0].packet_id, 3);
    let out = h.send(1, Packet::PubAck(PubResponse::success(3)));
    assert!(pubs(&out, 1).is_empty());
    // Id 1 is free again and gets reused after wrapping past 3.
    let out = h.publish(2, msg("t", "5", QoS::AtLeastOnce, 9));
    assert_eq!(pubs(&out, 1)[0].packet_id, 4);
}

#[test]
fn shared_subscription_round_robin_prefers_online() {
    let mut h = Harness::new();
    for (conn, id) in [(1, "m1"), (2, "m2"), (3, "m3")] {
        h.connect(conn, v5_persistent(id, 100));
        h.subscribe(conn, "$share/g/jobs/+", opts(QoS::AtLeastOnce));
    }
    h.connect(9, v5("pub"));
    let mut who = Vec::new();
    for i in 0..6u16 {
        let out = h.publish(9, msg("jobs/x", "j", QoS::AtLeastOnce, i + 1));
        for c in [1, 2, 3] {
            who.extend(std::iter::repeat_n(c, pubs(&out, c).len()));
        }
    }
    assert_eq!(who, [1, 2, 3, 1, 2, 3]);
    h.core.disconnected(2, None, h.now);
    let mut who = Vec::new();
    for i in 0..4u16 {
        let out = h.publish(9, msg("jobs/x", "j", QoS::AtLeastOnce, i + 10));
        for c in [1, 3] {
            who.extend(std::iter::repeat_n(c, pubs(&out, c).len()));
        }
    }
    assert_eq!(who, [1, 3, 1, 3]);
}

#[test]
fn shared_subscriptions_get_no_retained_and_forbid_no_local() {
    let mut h = Harness::new();
    h.connect(2, v5("pub"));
    let mut r = msg("s", "v", QoS::AtMostOnce, 0);
    r.retain = true;
    h.publish(2, r);
    h.connect(1, v5("a"));
    let out = h.subscribe(1, "$share/g/s", opts(QoS::AtMostOnce));
    assert!(pubs(&out, 1).is_empty());
    assert_eq!(suback(&out, 1).reason_codes, [ReasonCode::GRANTED_QOS_0]);
    let mut o = opts(QoS::AtMostOnce);
    o.no_local = true;
    let out = h.subscribe(1, "$share/g/s", o);
    assert_eq!(closes(&out), [(1, Some(ReasonCode::PROTOCOL_ERROR))]);
}

#[test]
fn subscribe_validation_and_unsubscribe_codes() {
    let mut h = Harness::new();
    h.connect(1, v5("a"));
    let out = h.send(
        1,
        Packet::Subscribe(Subscribe {
            packet_id: 4,
            filters: vec![
                SubscribeFilter {
                    filter: "ok/#".into(),
                    options: opts(QoS::ExactlyOnce),
                },
                SubscribeFilter {
                    filter: "bad/#/x".into(),
                    options: opts(QoS::AtMostOnce),
                },
            ],
            properties: Properties::default(),
        }),
    );
    let ack = suback(&out, 1);
    assert_eq!(ack.packet_id, 4);
    assert_eq!(
        ack.reason_codes,
        [ReasonCode::GRANTED_QOS_2, ReasonCode::TOPIC_FILTER_INVALID]
    );
    let out = h.send(
        1,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 5,
            filters: vec!["ok/#".into(), "never".into()],
            properties: Properties::default(),
        }),
    );
    assert_eq!(
        to(&out, 1),
        [Packet::UnsubAck(UnsubAck {
            packet_id: 5,
            reason_codes: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
            properties: Properties::default(),
        })]
    );
    h.connect(2, v5("b"));
    assert!(pubs(&h.publish(2, msg("ok/1", "x", QoS::AtMostOnce, 0)), 1).is_empty());
    // 3.1.1: 0x80 for a bad filter, no UNSUBACK codes.
    h.connect(3, v311("c", true));
    let out = h.subscribe(3, "a/#/b", opts(QoS::AtMostOnce));
    assert_eq!(
        suback(&out, 3).reason_codes,
        [ReasonCode::UNSPECIFIED_ERROR]
    );
}

/// Denies publishing and receiving on `secret/#`, caps `capped/#` at QoS 0,
/// refuses subscriptions to `secret/#`.
struct TestPolicy;

impl AccessPolicy for TestPolicy {
    fn can_publish(&self, _: &Principal, _: &str, topic: &str) -> bool {
        !topic.starts_with("secret")
    }
    fn can_subscribe(&self, _: &Principal, _: &str, filter: &str) -> Option<QoS> {
        if filter.starts_with("secret") {
            None
        } else if filter.starts_with("capped") {
            Some(QoS::AtMostOnce)
        } else {
            Some(QoS::ExactlyOnce)
        }
    }
    fn can_receive(&self, p: &Principal, _: &str, topic: &str) -> bool {
        !(topic.starts_with("private") && p.username.as_deref() != Some("user1"))
    }
}

#[test]
fn acl_publish_subscribe_receive() {
    let mut h = Harness::new();
    h.policy = Arc::new(TestPolicy);
    h.connect(1, v5("one"));
    h.subscribe(1, "#", opts(QoS::ExactlyOnce));
    h.connect(2, v5("two"));
    h.subscribe(2, "#", opts(QoS::ExactlyOnce));
    h.connect(3, v311("three", true));
    // 5.0: PUBACK / PUBREC 0x87, not forwarded.
    let out = h.publish(2, msg("secret/x", "s", QoS::AtLeastOnce, 1));
    let Packet::PubAck(a) = &to(&out, 2)[0] else {
        panic!()
    };
    assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert!(pubs(&out, 1).is_empty());
    let out = h.publish(2, msg("secret/x", "s", QoS::ExactlyOnce, 2));
    let Packet::PubRec(a) = &to(&out, 2)[0] else {
        panic!()
    };
    assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED);
    // ... and no PUBREL is expected for it: the id is free.
    let out = h.send(2, Packet::PubRel(PubResponse::success(2)));
    let Packet::PubComp(c) = &to(&out, 2)[0] else {
        panic!()
    };
    assert_eq!(c.reason_code, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND);
    // 3.1.1: acknowledged normally, dropped.
    let out = h.publish(3, msg("secret/x", "s", QoS::AtLeastOnce, 1));
    assert_eq!(to(&out, 3), [Packet::PubAck(PubResponse::success(1))]);
    assert!(pubs(&out, 1).is_empty());
    // Subscribe denied / capped.
    let out = h.subscribe(2, "secret/#", opts(QoS::AtLeastOnce));
    assert_eq!(suback(&out, 2).reason_codes, [ReasonCode::NOT_AUTHORIZED]);
    let out = h.subscribe(3, "secret/#", opts(QoS::AtLeastOnce));
    assert_eq!(
        suback(&out, 3).reason_codes,
        [ReasonCode::UNSPECIFIED_ERROR]
    );
    let out = h.subscribe(2, "capped/#", opts(QoS::ExactlyOnce));
    assert_eq!(suback(&out, 2).reason_codes, [ReasonCode::GRANTED_QOS_0]);
    // Receive: only user1 (conn 1) gets private topics.
    let out = h.publish(3, msg("private/p", "p", QoS::AtMostOnce, 0));
    assert_eq!(pubs(&out, 1).len(), 1);
    assert!(pubs(&out, 2).is_empty());
}

#[test]
fn clients_cannot_publish_to_sys() {
    let mut h = Harness::new();
    h.connect(1, v5("a"));
    h.subscribe(1, "$SYS/#", opts(QoS::AtMostOnce));
    let out = h.publish(1, msg("$SYS/broker/uptime", "fake", QoS::AtLeastOnce, 1));
    let Packet::PubAck(a) = &to(&out, 1)[0] else {
        panic!()
    };
    assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert!(pubs(&out, 1).is_empty());
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
