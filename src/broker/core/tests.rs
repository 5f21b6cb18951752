//! Connection lifecycle: CONNECT/CONNACK, takeover, sessions, wills, timers.

use super::test_support::*;
use super::*;
use crate::auth::AllowAll;
use crate::codec::{LastWill, PubResponse, RetainHandling};

fn will(topic: &str, payload: &'static str, delay: Option<u32>) -> LastWill {
    LastWill {
        topic: topic.into(),
        payload: Bytes::from_static(payload.as_bytes()),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: delay,
            ..Properties::default()
        },
    }
}

#[test]
fn connack_v5_properties() {
    let mut h = Harness::with_limits(Limits {
        max_keep_alive: 30,
        max_session_expiry: 100,
        ..Limits::default()
    });
    let mut c = v5_persistent("a", 1000);
    c.keep_alive = 60;
    let ack = h.connect(1, c);
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert!(!ack.session_present);
    let p = &ack.properties;
    assert_eq!(p.receive_maximum, Some(100));
    assert_eq!(p.maximum_packet_size, Some(1 << 20));
    assert_eq!(p.topic_alias_maximum, Some(64));
    assert_eq!(p.retain_available, Some(1));
    assert_eq!(p.wildcard_subscription_available, Some(1));
    assert_eq!(p.subscription_identifier_available, Some(1));
    assert_eq!(p.shared_subscription_available, Some(1));
    assert_eq!(
        p.session_expiry_interval,
        Some(100),
        "capped expiry is announced"
    );
    assert_eq!(p.server_keep_alive, Some(30));
    assert_eq!(p.assigned_client_identifier, None);
}

#[test]
fn connack_v311_has_no_properties_and_auth_goes_into_v5() {
    let mut h = Harness::new();
    let ack = h.connect(1, v311("a", true));
    assert!(ack.properties.is_empty());
    let req = ConnectRequest {
        conn: 2,
        connect: v5("b"),
        principal: Principal::default(),
        policy: Arc::new(AllowAll),
        listener: "l".into(),
        connack_sent: false,
        connack_auth: Some(("LWA1".into(), Bytes::from_static(b"xyz"))),
        signed_session_present: None,
        payload_overhead: 16,
    };
    let out = h.core.connect(req, h.now);
    let Packet::ConnAck(ack) = &to(&out, 2)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        ack.properties.authentication_method.as_deref(),
        Some("LWA1")
    );
    assert_eq!(
        ack.properties.authentication_data.as_deref(),
        Some(&b"xyz"[..])
    );
}

#[test]
fn assigned_client_ids() {
    let mut h = Harness::new();
    let preview = h.core.connack_preview(&v5(""));
    let ack = h.connect(1, v5(""));
    let assigned = ack.properties.assigned_client_identifier.clone().unwrap();
    assert_eq!(
        preview.assigned_client_id.as_deref(),
        Some(assigned.as_str())
    );
    assert_eq!(h.core.client_id(1), Some(assigned.as_str()));
    let ack2 = h.connect(2, v311("", true));
    assert!(ack2.properties.is_empty(), "3.1.1 cannot carry the id");
    let second = h.core.client_id(2).unwrap().to_owned();
    assert_ne!(second, assigned);
    // 3.1.1, empty id and clean session 0: identifier rejected.
    let out = h.connect_with(3, v311("", false));
    let Packet::ConnAck(ack) = &to(&out, 3)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert_eq!(closes(&out), [(3, None)]);
    assert_eq!(h.core.client_id(3), None);
}

#[test]
fn connack_sent_means_no_connack_but_everything_else() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("a", 100));
    h.subscribe(1, "t", opts(QoS::AtLeastOnce));
    h.core.disconnected(1, None, h.now);
    h.connect(2, v5("p"));
    h.publish(2, msg("t", "queued", QoS::AtLeastOnce, 1));
    let c = v5_persistent("a", 100);
    assert!(h.core.connack_preview(&c).session_present);
    let req = ConnectRequest {
        conn: 3,
        connect: c,
        principal: Principal {
            username: Some("user".into()),
            lwa_identity: None,
        },
        policy: Arc::new(AllowAll),
        listener: "l".into(),
        connack_sent: true,
        connack_auth: None,
        signed_session_present: None,
        payload_overhead: 0,
    };
    let out = h.core.connect(req, h.now);
    assert!(!to(&out, 3).iter().any(|p| matches!(p, Packet::ConnAck(_))));
    assert_eq!(payloads(&out, 3), ["queued"]);
}

#[test]
fn signed_session_present_that_no_longer_holds_closes_without_side_effect() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("a", 100));
    h.core.disconnected(1, None, h.now);
    // CONNACK said Session Present = 0, but a session exists by now.
    let req = ConnectRequest {
        conn: 2,
        connect: v5_persistent("a", 100),
        // The session's own principal (the harness connects every client as
        // "user"), so only the Session Present binding can refuse it.
        principal: Principal {
            username: Some("user".into()),
            lwa_identity: None,
        },
        policy: Arc::new(AllowAll),
        listener: "l".into(),
        connack_sent: true,
        connack_auth: None,
        signed_session_present: Some(false),
        payload_overhead: 0,
    };
    let out = h.core.connect(req, h.now);
    assert_eq!(closes(&out), [(2, Some(ReasonCode::SESSION_TAKEN_OVER))]);
    assert_eq!(h.core.client_id(2), None);
    // The stored session is untouched: a truthful resume still finds it.
    assert!(
        h.core
            .connack_preview(&v5_persistent("a", 100))
            .session_present
    );
}

#[test]
fn takeover_closes_old_connection_and_publishes_its_will() {
    let mut h = Harness::new();
    h.connect(1, v5("watcher"));
    h.subscribe(1, "will/#", opts(QoS::AtMostOnce));
    let mut c = v5("dev");
    c.will = Some(will("will/dev", "gone", None));
    h.connect(2, c);
    let out = h.connect_with(3, v5("dev"));
    assert_eq!(closes(&out), [(2, Some(ReasonCode::SESSION_TAKEN_OVER))]);
    assert_eq!(payloads(&out, 1), ["gone"]);
    assert_eq!(h.core.client_id(3), Some("dev"));
    assert_eq!(h.core.client_id(2), None);
    // The old connection's later end is a no-op.
    assert!(h.core.disconnected(2, None, h.now).is_empty());
    assert!(h.send(2, Packet::PingReq).is_empty());
}

#[test]
fn takeover_resuming_with_will_delay_cancels_the_will() {
    let mut h = Harness::new();
    h.connect(1, v5("watcher"));
    h.subscribe(1, "will/#", opts(QoS::AtMostOnce));
    let mut c = v5_persistent("dev", 300);
    c.will = Some(will("will/dev", "gone", Some(10)));
    h.connect(2, c);
    let out = h.connect_with(3, v5_persistent("dev", 300));
    assert!(payloads(&out, 1).is_empty());
    let Packet::ConnAck(ack) = &to(&out, 3)[0] else {
        panic!()
    };
    assert!(ack.session_present);
    assert!(payloads(&h.advance(20), 1).is_empty());
}

#[test]
fn v311_persistent_session_resumes_and_clean_session_discards() {
    let mut h = Harness::new();
    h.connect(1, v311("a", false));
    h.subscribe(1, "t", opts(QoS::AtLeastOnce));
    h.core.disconnected(1, None, h.now);
    assert_eq!(h.core.session_count(), 1);
    let ack = h.connect(2, v311("a", false));
    assert!(ack.session_present);
    h.connect(3, v311("p", true));
    assert_eq!(
        payloads(&h.publish(3, msg("t", "x", QoS::AtMostOnce, 0)), 2),
        ["x"]
    );
    h.core.disconnected(2, None, h.now);
    let ack = h.connect(4, v311("a", true));
    assert!(!ack.session_present);
    assert!(payloads(&h.publish(3, msg("t", "y", QoS::AtMostOnce, 0)), 4).is_empty());
    h.core.disconnected(4, None, h.now);
    assert_eq!(h.core.session_count(), 1, "only p remains");
}

#[test]
fn session_expiry_removes_offline_session_and_its_queue() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("a", 10));
    h.subscribe(1, "t", opts(QoS::AtLeastOnce));
    h.core.disconnected(1, None, h.now);
    assert_eq!(
        h.core.next_deadline(),
        Some(h.now + Duration::from_secs(10))
    );
    h.connect(2, v5("p"));
    h.publish(2, msg("t", "q", QoS::AtLeastOnce, 1));
    h.advance(9);
    assert_eq!(h.core.session_count(), 2);
    h.advance(1);
    assert_eq!(h.core.session_count(), 1);
    let ack = h.connect(3, v5_persistent("a", 10));
    assert!(!ack.session_present);
    assert!(h.core.next_deadline().is_none());
}

#[test]
fn reconnect_before_expiry_keeps_the_session() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("a", 10));
    h.core.disconnected(1, None, h.now);
    h.advance(5);
    assert!(h.connect(2, v5_persistent("a", 10)).session_present);
    assert!(h.core.next_deadline().is_none());
    h.advance(100);
    assert_eq!(h.core.session_count(), 1);
}

#[test]
fn will_on_network_error_not_on_normal_disconnect() {
    let mut h = Harness::new();
    h.connect(1, v5("watcher"));
    h.subscribe(1, "w", opts(QoS::AtLeastOnce));
    for (conn, disconnect, expect) in [
        (2, None, vec!["will"]),
        (
            3,
            Some(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION)),
            vec![],
        ),
        (
            4,
            Some(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL)),
            vec!["will"],
        ),
    ] {
        let mut c = v5("dev");
        c.will = Some(will("w", "will", None));
        h.connect(conn, c);
        let out = h.core.disconnected(conn, disconnect, h.now);
        assert_eq!(payloads(&out, 1), expect, "conn {conn}");
    }
}

#[test]
fn will_delay_publishes_later_or_at_session_end() {
    let mut h = Harness::new();
    h.connect(1, v5("watcher"));
    h.subscribe(1, "w", opts(QoS::AtMostOnce));
    // Delay 5 s, session lasts 100 s: published after 5 s.
    let mut c = v5_persistent("a", 100);
    c.will = Some(will("w", "a", Some(5)));
    h.connect(2, c);
    assert!(payloads(&h.core.disconnected(2, None, h.now), 1).is_empty());
    assert_eq!(h.core.next_deadline(), Some(h.now + Duration::from_secs(5)));
    assert!(payloads(&h.advance(4), 1).is_empty());
    assert_eq!(payloads(&h.advance(1), 1), ["a"]);
    // Delay 50 s, session lasts 3 s: published when the session ends.
    let mut c = v5_persistent("b", 3);
    c.will = Some(will("w", "b", Some(50)));
    h.connect(3, c);
    h.core.disconnected(3, None, h.now);
    assert_eq!(payloads(&h.advance(3), 1), ["b"]);
    assert!(payloads(&h.advance(100), 1).is_empty());
    // Delay 50 s, session expiry 0: published at once.
    let mut c = v5("c");
    c.will = Some(will("w", "c", Some(50)));
    h.connect(4, c);
    assert_eq!(payloads(&h.core.disconnected(4, None, h.now), 1), ["c"]);
}

#[test]
fn will_delay_cancelled_by_reconnect_or_published_by_clean_start() {
    let mut h = Harness::new();
    h.connect(1, v5("watcher"));
    h.subscribe(1, "w", opts(QoS::AtMostOnce));
    let mut c = v5_persistent("a", 100);
    c.will = Some(will("w", "a", Some(10)));
    h.connect(2, c.clone());
    h.core.disconnected(2, None, h.now);
    h.advance(5);
    h.connect(3, v5_persistent("a", 100));
    assert!(payloads(&h.advance(20), 1).is_empty());
    h.core.disconnected(3, None, h.now);
    h.connect(4, c);
    h.core.disconnected(4, None, h.now);
    // Clean start ends the old session, so its will goes out now.
    let out = h.connect_with(5, v5("a"));
    assert_eq!(payloads(&out, 1), ["a"]);
}

#[test]
fn will_subject_to_publish_acl() {
    struct NoWills;
    impl AccessPolicy for NoWills {
        fn can_publish(&self, _: &Principal, _: &str, topic: &str) -> bool {
            topic != "forbidden"
        }
        fn can_subscribe(&self, _: &Principal, _: &str, _: &str) -> Option<QoS> {
            Some(QoS::ExactlyOnce)
        }
        fn can_receive(&self, _: &Principal, _: &str, _: &str) -> bool {
            true
        }
    }
    let mut h = Harness::new();
    h.policy = Arc::new(NoWills);
    h.connect(1, v5("watcher"));
    h.subscribe(1, "#", opts(QoS::AtMostOnce));
    let mut c = v5("dev");
    c.will = Some(will("forbidden", "x", None));
    h.connect(2, c);
    assert!(payloads(&h.core.disconnected(2, None, h.now), 1).is_empty());
}

#[test]
fn disconnect_may_change_session_expiry_but_not_from_zero() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("a", 10));
    let mut d = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    d.properties.session_expiry_interval = Some(0);
    let out = h.send(1, Packet::Disconnect(d));
    assert_eq!(closes(&out), [(1, None)]);
    assert_eq!(h.core.session_count(), 0, "expiry lowered to 0 ends it now");

    let mut c = v5("b");
    c.will = Some(will("w", "x", None));
    h.connect(2, v5("watcher"));
    h.subscribe(2, "w", opts(QoS::AtMostOnce));
    h.connect(3, c);
    let mut d = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    d.properties.session_expiry_interval = Some(60);
    let out = h.send(3, Packet::Disconnect(d));
    assert_eq!(closes(&out), [(3, Some(ReasonCode::PROTOCOL_ERROR))]);
    assert_eq!(
        payloads(&out, 2),
        ["x"],
        "not a valid DISCONNECT: will published"
    );
}

#[test]
fn second_connect_and_server_only_packets_are_protocol_errors() {
    let mut h = Harness::new();
    h.connect(1, v5("a"));
    let out = h.send(1, Packet::Connect(Box::new(v5("a"))));
    assert_eq!(closes(&out), [(1, Some(ReasonCode::PROTOCOL_ERROR))]);
    assert_eq!(h.core.client_id(1), None);
    h.connect(2, v5("b"));
    let out = h.send(2, Packet::PingResp);
    assert_eq!(closes(&out), [(2, Some(ReasonCode::PROTOCOL_ERROR))]);
}

#[test]
fn ping_and_unknown_connection() {
    let mut h = Harness::new();
    h.connect(1, v5("a"));
    assert_eq!(to(&h.send(1, Packet::PingReq), 1), [Packet::PingResp]);
    assert!(h.send(99, Packet::PingReq).is_empty());
    assert!(h.core.disconnected(99, None, h.now).is_empty());
}

#[test]
fn resume_resends_inflight_with_dup_then_pubrel_order_then_queue() {
    let mut h = Harness::new();
    let mut c = v5_persistent("sub", 100);
    c.properties.receive_maximum = Some(2);
    h.connect(1, c);
    h.subscribe(1, "t", opts(QoS::ExactlyOnce));
    h.connect(2, v5("pub"));
    let mut out = Vec::new();
    for (i, p) in ["m1", "m2", "m3"].into_iter().enumerate() {
        out.extend(h.publish(2, msg("t", p, QoS::ExactlyOnce, i as u16 + 1)));
    }
    let first = pubs(&out, 1);
    assert_eq!(first.len(), 2, "window of 2");
    // m1 is received (PUBREC), m2 not acknowledged at all.
    let rel = h.send(1, Packet::PubRec(PubResponse::success(first[0].packet_id)));
    assert_eq!(
        to(&rel, 1),
        [Packet::PubRel(PubResponse::success(first[0].packet_id))]
    );
    h.core.disconnected(1, None, h.now);
    let mut c = v5_persistent("sub", 100);
    c.properties.receive_maximum = Some(2);
    let out = h.connect_with(3, c);
    let packets = to(&out, 3);
    assert!(matches!(&packets[0], Packet::ConnAck(a) if a.session_present));
    assert_eq!(
        packets[1],
        Packet::PubRel(PubResponse::success(first[0].packet_id))
    );
    match &packets[2] {
        Packet::Publish(p) => {
            assert!(p.dup);
            assert_eq!(p.packet_id, first[1].packet_id);
            assert_eq!(&p.payload[..], b"m2");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(packets.len(), 3, "window still full: m3 waits");
    let out = h.send(3, Packet::PubComp(PubResponse::success(first[0].packet_id)));
    assert_eq!(payloads(&out, 3), ["m3"]);
}

#[test]
fn shutdown_closes_everyone_and_publishes_wills() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("watcher", 100));
    h.subscribe(1, "w", opts(QoS::AtLeastOnce));
    let mut c = v5("dev");
    c.will = Some(will("w", "bye", Some(60)));
    h.connect(2, c);
    let out = h.core.shutdown(h.now);
    assert_eq!(payloads(&out, 1), ["bye"]);
    assert_eq!(
        closes(&out),
        [
            (1, Some(ReasonCode::SERVER_SHUTTING_DOWN)),
            (2, Some(ReasonCode::SERVER_SHUTTING_DOWN))
        ]
    );
    assert!(h.core.disconnected(1, None, h.now).is_empty());
}

#[test]
fn sys_topics_published_retained_on_tick() {
    let mut h = Harness::new();
    h.core
        .set_sys_interval(Some(Duration::from_secs(10)), h.now);
    h.connect(1, v5("a"));
    let mut o = opts(QoS::AtMostOnce);
    o.retain_handling = RetainHandling::SendAtSubscribe;
    h.subscribe(1, "$SYS/broker/clients/connected", o);
    let out = h.advance(0);
    let got = pubs(&out, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].payload[..], b"1");
    assert_eq!(
        h.core.next_deadline(),
        Some(h.now + Duration::from_secs(10))
    );
    // Retained: a later subscriber gets the last value.
    h.connect(2, v5("b"));
    let out = h.subscribe(2, "$SYS/broker/uptime", opts(QoS::AtMostOnce));
    let got = pubs(&out, 2);
    assert!(got[0].retain);
    assert_eq!(&got[0].payload[..], b"0 seconds");
    // "#" does not see $SYS.
    h.subscribe(2, "#", opts(QoS::AtMostOnce));
    assert!(pubs(&h.advance(10), 2)
        .iter()
        .all(|p| p.topic == "$SYS/broker/uptime"));
}

#[test]
fn saved_sessions_and_retained_messages_can_be_restored_into_a_new_core() {
    let mut h = Harness::new();
    h.connect(1, v5_persistent("sub", 100));
    h.subscribe(1, "t/#", opts(QoS::ExactlyOnce));
    h.connect(2, v5("pub"));
    let out = h.publish(2, msg("t/1", "inflight", QoS::AtLeastOnce, 1));
    let first = pubs(&out, 1).remove(0);
    h.core.disconnected(1, None, h.now);
    h.publish(2, msg("t/2", "queued", QoS::ExactlyOnce, 2));
    let mut r = msg("t/r", "kept", QoS::AtMostOnce, 0);
    r.retain = true;
    h.publish(2, r);
    let saved: Vec<Session> = h
        .core
        .sessions()
        .filter(|s| s.expiry_interval > 0)
        .cloned()
        .collect();
    let retained: Vec<Message> = h.core.retained().iter().map(|m| (**m).clone()).collect();
    assert_eq!(saved.len(), 1);

    let mut fresh = Harness::new();
    for s in saved {
        fresh.core.restore_session(s, fresh.now);
    }
    for m in retained {
        fresh.core.restore_retained(m);
    }
    assert_eq!(
        fresh.core.next_deadline(),
        Some(fresh.now + Duration::from_secs(100))
    );
    let out = fresh.connect_with(7, v5_persistent("sub", 100));
    let got = pubs(&out, 7);
    assert!(matches!(&to(&out, 7)[0], Packet::ConnAck(a) if a.session_present));
    assert_eq!(payloads(&out, 7), ["inflight", "queued", "kept"]);
    assert!(got[0].dup && got[0].packet_id == first.packet_id);
    assert_eq!(&got[1].payload[..], b"queued");
    assert_ne!(got[1].packet_id, got[0].packet_id);
    fresh.connect(8, v5("pub2"));
    assert_eq!(
        payloads(&fresh.publish(8, msg("t/3", "live", QoS::AtMostOnce, 0)), 7),
        ["live"]
    );
    assert_eq!(
        payloads(&fresh.subscribe(8, "t/r", opts(QoS::AtMostOnce)), 8),
        ["kept"]
    );
}

#[test]
fn an_lwa_session_cannot_be_taken_over_by_another_principal() {
    let lwa = |id: &str| Principal {
        username: None,
        lwa_identity: Some(id.into()),
    };
    let mut h = Harness::new();
    h.connect_as(1, v5_persistent("dev", 100), lwa("dev1"), false);
    // Anonymous (or another user) with the same client id: refused, no side effect.
    let out = h.connect_with(2, v5_persistent("dev", 100));
    let Packet::ConnAck(ack) = &to(&out, 2)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert_eq!(closes(&out), [(2, None)]);
    assert_eq!(h.core.client_id(1), Some("dev"));
    // Another LWA identity after enhanced auth (CONNACK already sent): DISCONNECT 0x87.
    let out = h.connect_as(3, v5("dev"), lwa("dev2"), true);
    assert_eq!(
        out,
        [Output::Close {
            conn: 3,
            reason: Some(ReasonCode::NOT_AUTHORIZED)
        }]
    );
    // The owner may take its own session over.
    let out = h.connect_as(4, v5_persistent("dev", 100), lwa("dev1"), false);
    assert_eq!(closes(&out), [(1, Some(ReasonCode::SESSION_TAKEN_OVER))]);
    assert!(matches!(&to(&out, 4)[0], Packet::ConnAck(a) if a.session_present));
    // The same non-LWA principal takes its client id over as in MQTT...
    h.connect(5, v5("plain"));
    let out = h.connect_with(6, v5("plain"));
    assert_eq!(closes(&out), [(5, Some(ReasonCode::SESSION_TAKEN_OVER))]);
    // ...another is refused while client ids are bound (the default)...
    let other = Principal {
        username: Some("other".into()),
        lwa_identity: None,
    };
    let out = h.connect_as(7, v5("plain"), other.clone(), false);
    assert_eq!(closes(&out), [(7, None)]);
    // ...and takes it over when they are not.
    let mut h = Harness::with_limits(Limits {
        bind_client_ids: false,
        ..Limits::default()
    });
    h.connect(1, v5("plain"));
    let out = h.connect_as(2, v5("plain"), other, false);
    assert_eq!(closes(&out), [(1, Some(ReasonCode::SESSION_TAKEN_OVER))]);
}

#[test]
fn an_lwa_identity_reclaims_its_client_id_from_another_principals_session() {
    let mut h = Harness::new();
    // A squatter (the harness principal "user") made a persistent session "dev".
    h.connect(1, v5_persistent("dev", 100));
    h.subscribe(1, "#", opts(QoS::AtMostOnce));
    let device = Principal {
        username: None,
        lwa_identity: Some("dev".into()),
    };
    // What the LWA1 preview binds: no session to resume for the device ...
    let c = v5_persistent("dev", 100);
    assert!(!h.core.connack_for(&c, None, Some("dev")).session_present);
    // ... while anyone else would be told it exists.
    assert!(h.core.connack_for(&c, None, None).session_present);
    let out = h.connect_as(2, c, device, false);
    assert_eq!(closes(&out), [(1, Some(ReasonCode::SESSION_TAKEN_OVER))]);
    match to(&out, 2).first() {
        Some(Packet::ConnAck(ack)) => {
            assert!(!ack.session_present);
            assert!(!ack.reason_code.is_error());
        }
        other => panic!("{other:?}"),
    }
    // The squatter's subscription went with its session.
    assert!(h.core.sessions().all(|s| s.subscriptions.is_empty()));
    // A client id outside the identity's own is still bound to its owner.
    h.connect(3, v5_persistent("other", 100));
    let stranger = Principal {
        username: None,
        lwa_identity: Some("dev".into()),
    };
    let out = h.connect_as(4, v5_persistent("other", 100), stranger, false);
    assert!(matches!(
        to(&out, 4).first(),
        Some(Packet::ConnAck(a)) if a.reason_code == ReasonCode::NOT_AUTHORIZED
    ));
}
