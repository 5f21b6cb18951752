//! SUBSCRIBE and subscription options: retain handling, retain as
//! published, no local, overlapping subscriptions, identifiers, shared
//! subscriptions, filter validation and access control.

use super::test_support::*;
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
            properties: Default::default(),
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
            filters: vec!["ok/#".into(), "never".into(), "a/#/b".into()],
            properties: Default::default(),
        }),
    );
    assert_eq!(
        to(&out, 1),
        [Packet::UnsubAck(UnsubAck {
            packet_id: 5,
            reason_codes: vec![
                ReasonCode::SUCCESS,
                ReasonCode::NO_SUBSCRIPTION_EXISTED,
                ReasonCode::TOPIC_FILTER_INVALID,
            ],
            properties: Default::default(),
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

/// A password user's principal.
fn user(name: &str) -> Principal {
    Principal {
        username: Some(name.into()),
        lwa_identity: None,
    }
}

#[test]
fn acl_publish_subscribe_receive() {
    let mut h = Harness::new();
    h.policy = Arc::new(TestPolicy);
    h.connect_as(1, v5("one"), user("user1"), false);
    h.subscribe(1, "#", opts(QoS::ExactlyOnce));
    h.connect_as(2, v5("two"), user("user2"), false);
    h.subscribe(2, "#", opts(QoS::ExactlyOnce));
    h.connect_as(3, v311("three", true), user("user3"), false);
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
fn shared_group_with_nobody_online_queues_on_an_offline_member() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("m1", 100));
    h.subscribe(1, "$share/g/t", opts(QoS::AtLeastOnce));
    h.core.disconnected(1, None, h.now);
    h.connect(2, v5("m2"));
    h.subscribe(2, "$share/g/t", opts(QoS::AtLeastOnce));
    h.connect(9, v5("pub"));
    // m2 is online: it gets everything while m1 is away.
    let out = h.publish(9, msg("t", "a", QoS::AtLeastOnce, 1));
    assert_eq!(payloads(&out, 2), ["a"]);
    let out = h.publish(9, msg("t", "b", QoS::AtLeastOnce, 2));
    assert_eq!(payloads(&out, 2), ["b"]);
    // m2 leaves (its session ends) without acknowledging a and b: they move
    // to m1's session, as does c, and wait there.
    h.core.disconnected(2, None, h.now);
    h.publish(9, msg("t", "c", QoS::AtLeastOnce, 3));
    let out = h.connect_with(3, v5_persistent("m1", 100));
    assert_eq!(payloads(&out, 3), ["a", "b", "c"]);
    // Unsubscribing leaves the group.
    h.send(
        3,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 3,
            filters: vec!["$share/g/t".into()],
            properties: Default::default(),
        }),
    );
    assert!(pubs(&h.publish(9, msg("t", "d", QoS::AtLeastOnce, 4)), 3).is_empty());
}

#[test]
fn shared_messages_of_an_ending_session_go_to_another_member() {
    let mut h = Harness::new();
    let mut c = v5("m1");
    c.properties.receive_maximum = Some(1);
    h.connect(1, c);
    h.subscribe(1, "$share/g/t", opts(QoS::AtLeastOnce));
    h.connect(2, v5("m2"));
    h.subscribe(2, "$share/g/t", opts(QoS::AtLeastOnce));
    h.connect(9, v5("pub"));
    let mut first = Vec::new();
    for (i, p) in ["1", "2", "3"].into_iter().enumerate() {
        let out = h.publish(9, msg("t", p, QoS::AtLeastOnce, i as u16 + 1));
        first.extend(payloads(&out, 1));
    }
    assert_eq!(first, ["1"], "3 waits behind m1's window of 1");
    // m1's session ends with 1 unacknowledged and 3 queued: m2 gets both.
    let out = h.core.disconnected(1, None, h.now);
    assert_eq!(payloads(&out, 2), ["1", "3"]);
    // A QoS 2 message m2 may already hold is not handed on.
    h.connect(3, v5("m3"));
    h.subscribe(3, "$share/g/t", opts(QoS::ExactlyOnce));
    h.subscribe(2, "$share/g/t", opts(QoS::ExactlyOnce));
    let mut got3 = Vec::new();
    for i in 0..2u16 {
        let out = h.publish(9, msg("t", "q2", QoS::ExactlyOnce, 10 + i));
        got3.extend(payloads(&out, 3));
    }
    assert_eq!(got3.len(), 1);
    // m2 leaves: its unacknowledged QoS 1 messages move on, its QoS 2 one does not.
    let out = h.core.disconnected(2, None, h.now);
    assert_eq!(payloads(&out, 3), ["2", "1", "3"]);
}
