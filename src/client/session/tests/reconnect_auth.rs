//! Session tests: reconnects with retransmission, enhanced authentication and payload protection.

use super::*;

/// A persistent session with a QoS 1 publish awaiting PUBACK and a QoS 2
/// publish awaiting PUBCOMP, then the connection drops.
fn persistent_with_flows(
    version: ProtocolVersion,
) -> (ClientSession, Instant, RequestId, RequestId, u16, u16) {
    let now = Instant::now();
    let mut s = session_with(connect(version, false, 0), None);
    s.connect_packet(now).unwrap();
    s.handle_packet(connack(false, Properties::default()), now)
        .unwrap();
    let q1 = s
        .publish(request("a", b"one", QoS::AtLeastOnce), now)
        .unwrap();
    let q2 = s
        .publish(request("b", b"two", QoS::ExactlyOnce), now)
        .unwrap();
    let sent = drain(&mut s);
    let (p1, p2) = (
        expect_publish(&sent[0]).packet_id,
        expect_publish(&sent[1]).packet_id,
    );
    s.handle_packet(Packet::PubRec(PubResponse::success(p2)), now)
        .unwrap();
    drain(&mut s);
    s.connection_lost();
    (s, now, q1, q2, p1, p2)
}

#[test]
fn reconnect_with_session_present_retransmits_with_dup() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let (mut s, now, q1, q2, p1, p2) = persistent_with_flows(version);
        assert!(matches!(s.connect_packet(now).unwrap(), Packet::Connect(c) if !c.clean_start));
        s.handle_packet(connack(true, Properties::default()), now)
            .unwrap();
        let sent = drain(&mut s);
        assert_eq!(sent.len(), 2);
        let p = expect_publish(&sent[0]);
        assert_eq!((p.packet_id, p.dup, &p.topic[..]), (p1, true, "a"));
        assert_eq!(sent[1], Packet::PubRel(PubResponse::success(p2)));
        s.handle_packet(Packet::PubAck(PubResponse::success(p1)), now)
            .unwrap();
        s.handle_packet(Packet::PubComp(PubResponse::success(p2)), now)
            .unwrap();
        let done: Vec<RequestId> = events(&mut s).iter().map(|e| published(e).0).collect();
        assert_eq!(done, vec![q1, q2]);
    }
}

#[test]
fn reconnect_without_session_sends_unacknowledged_messages_anew() {
    let (mut s, now, q1, q2, _, _) = persistent_with_flows(ProtocolVersion::V5);
    s.connect_packet(now).unwrap();
    s.handle_packet(connack(false, Properties::default()), now)
        .unwrap();
    // The QoS 2 message was already accepted (PUBREC): it completes.
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1);
    assert_eq!(published(&ev[0]).0, q2);
    // The QoS 1 message is sent again as a new message.
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 1);
    let p = expect_publish(&sent[0]);
    assert_eq!((p.dup, &p.topic[..]), (false, "a"));
    s.handle_packet(Packet::PubAck(PubResponse::success(p.packet_id)), now)
        .unwrap();
    assert_eq!(published(&events(&mut s)[0]).0, q1);
}

#[test]
fn session_present_after_clean_start_is_a_protocol_error() {
    let now = Instant::now();
    let mut s = session_with(connect(ProtocolVersion::V5, true, 0), None);
    s.connect_packet(now).unwrap();
    assert!(matches!(
        s.handle_packet(connack(true, Properties::default()), now),
        Err(SessionError::Protocol { .. })
    ));
}

#[test]
fn subscribe_and_unsubscribe_complete_on_their_acks() {
    let (mut s, now) = connected(Properties::default());
    let filters = vec![
        SubscribeFilter {
            filter: "a/#".into(),
            options: SubscriptionOptions::qos(QoS::ExactlyOnce),
        },
        SubscribeFilter {
            filter: "b/+".into(),
            options: SubscriptionOptions::qos(QoS::AtMostOnce),
        },
    ];
    let id = s.subscribe(filters, Properties::default(), now).unwrap();
    let pid = match &drain(&mut s)[..] {
        [Packet::Subscribe(sub)] => sub.packet_id,
        other => panic!("{other:?}"),
    };
    let suback = SubAck {
        packet_id: pid,
        reason_codes: vec![ReasonCode::GRANTED_QOS_2, ReasonCode::NOT_AUTHORIZED],
        properties: Default::default(),
    };
    s.handle_packet(Packet::SubAck(suback.clone()), now)
        .unwrap();
    match &events(&mut s)[..] {
        [Event::Subscribed {
            id: got,
            suback: sa,
        }] => assert_eq!((*got, sa), (id, &suback)),
        other => panic!("{other:?}"),
    }
    let id = s
        .unsubscribe(vec!["a/#".into()], Properties::default(), now)
        .unwrap();
    let pid = match &drain(&mut s)[..] {
        [Packet::Unsubscribe(u)] => u.packet_id,
        other => panic!("{other:?}"),
    };
    let unsuback = UnsubAck {
        packet_id: pid,
        reason_codes: vec![ReasonCode::SUCCESS],
        properties: Default::default(),
    };
    s.handle_packet(Packet::UnsubAck(unsuback), now).unwrap();
    assert!(matches!(&events(&mut s)[..], [Event::Unsubscribed { id: got, .. }] if *got == id));
    assert!(matches!(
        s.subscribe(vec![], Properties::default(), now),
        Err(SessionError::InvalidRequest(_))
    ));
    let bad = vec![SubscribeFilter {
        filter: "a/#/b".into(),
        options: SubscriptionOptions::qos(QoS::AtMostOnce),
    }];
    assert!(s.subscribe(bad, Properties::default(), now).is_err());
}

#[test]
fn suback_with_wrong_count_is_a_protocol_error() {
    let (mut s, now) = connected(Properties::default());
    let filters = vec![SubscribeFilter {
        filter: "a".into(),
        options: SubscriptionOptions::qos(QoS::AtMostOnce),
    }];
    s.subscribe(filters, Properties::default(), now).unwrap();
    let pid = match &drain(&mut s)[..] {
        [Packet::Subscribe(sub)] => sub.packet_id,
        other => panic!("{other:?}"),
    };
    let suback = SubAck {
        packet_id: pid,
        reason_codes: vec![],
        properties: Default::default(),
    };
    assert!(s.handle_packet(Packet::SubAck(suback), now).is_err());
}

#[test]
fn connection_loss_fails_pending_subscribes() {
    let (mut s, now) = connected(Properties::default());
    let filters = vec![SubscribeFilter {
        filter: "a".into(),
        options: SubscriptionOptions::qos(QoS::AtMostOnce),
    }];
    let id = s.subscribe(filters, Properties::default(), now).unwrap();
    s.connection_lost();
    assert!(matches!(
        &events(&mut s)[..],
        [Event::Failed { id: got, error: SessionError::ConnectionLost }] if *got == id
    ));
}

#[test]
fn broker_disconnect_reports_its_reason() {
    let (mut s, now) = connected(Properties::default());
    let d = Disconnect {
        reason_code: ReasonCode::SESSION_TAKEN_OVER,
        properties: Properties {
            reason_string: Some("another client".into()),
            ..Properties::default()
        }
        .into(),
    };
    let err = s.handle_packet(Packet::Disconnect(d), now).unwrap_err();
    assert_eq!(
        err,
        SessionError::Disconnected {
            reason: ReasonCode::SESSION_TAKEN_OVER,
            reason_string: Some("another client".into())
        }
    );
    assert!(err.to_string().contains("another client"));
    assert!(!s.is_connected());
}

#[test]
fn client_disconnect_sends_disconnect() {
    let (mut s, now) = connected(Properties::default());
    s.disconnect(ReasonCode::DISCONNECT_WITH_WILL, Properties::default(), now);
    assert_eq!(
        drain(&mut s),
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::DISCONNECT_WITH_WILL
        ))]
    );
    assert!(!s.is_connected());
}

#[test]
fn unexpected_packet_is_a_protocol_error() {
    let (mut s, now) = connected(Properties::default());
    assert!(s.handle_packet(Packet::PingReq, now).is_err());
    assert_eq!(
        drain(&mut s),
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::PROTOCOL_ERROR
        ))]
    );
}

/// Test protection: prefixes each sealed payload with a counter byte and
/// checks it on open, so order and re-sealing are visible.
struct CountingProtection {
    sealed: u8,
    opened: u8,
}

impl PayloadProtection for CountingProtection {
    fn seal(&mut self, _: &str, _: QoS, _: bool, payload: &[u8]) -> Result<Bytes, ReasonCode> {
        let mut out = vec![self.sealed];
        out.extend_from_slice(payload);
        self.sealed += 1;
        Ok(Bytes::from(out))
    }
    fn open(&mut self, _: &str, _: QoS, _: bool, payload: &[u8]) -> Result<Bytes, ReasonCode> {
        match payload.split_first() {
            Some((&c, rest)) if c == self.opened => {
                self.opened += 1;
                Ok(Bytes::copy_from_slice(rest))
            }
            _ => Err(ReasonCode::NOT_AUTHORIZED),
        }
    }
    fn overhead(&self) -> usize {
        1
    }
}

/// Test authenticator: adds a method, expects it back in CONNACK, sends an
/// AUTH after CONNACK and installs [`CountingProtection`].
struct TestAuth {
    log: Arc<Mutex<Vec<String>>>,
    /// Asks the session to hold the AUTH back (LWA2's implicit confirmation).
    defer: bool,
}

impl ClientAuthenticator for TestAuth {
    fn prepare_connect(&mut self, connect: &mut Connect) -> Result<(), ClientAuthError> {
        connect.properties.authentication_method = Some("TEST".into());
        connect.properties.authentication_data = Some(Bytes::from(connect.client_id.clone()));
        self.log.lock().unwrap().push("prepare".into());
        Ok(())
    }
    fn on_connack(&mut self, connack: &ConnAck) -> Result<ClientAuthStep, ClientAuthError> {
        if connack.properties.authentication_method.as_deref() != Some("TEST") {
            return Err(ClientAuthError {
                reason: ReasonCode::NOT_AUTHORIZED,
                message: "CONNACK without TEST authentication".into(),
            });
        }
        Ok(ClientAuthStep {
            auth_to_send: Some(Auth {
                reason_code: ReasonCode::RE_AUTHENTICATE,
                properties: Properties::default(),
            }),
            protection: Some(Box::new(CountingProtection {
                sealed: 0,
                opened: 0,
            })),
            confirm_by_first_publish: self.defer,
        })
    }
    fn on_auth(&mut self, auth: &Auth) -> Result<(), ClientAuthError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("auth {:?}", auth.reason_code));
        Ok(())
    }
}

fn auth_session(clean_start: bool) -> (ClientSession, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = session_with(
        connect(ProtocolVersion::V5, clean_start, 0),
        Some(Box::new(TestAuth {
            log: log.clone(),
            defer: false,
        })),
    );
    (s, log)
}

fn auth_connack(session_present: bool) -> Packet {
    connack(
        session_present,
        Properties {
            authentication_method: Some("TEST".into()),
            ..Properties::default()
        },
    )
}

#[test]
fn authenticator_shapes_connect_and_sends_auth_first() {
    let now = Instant::now();
    let (mut s, log) = auth_session(true);
    match s.connect_packet(now).unwrap() {
        Packet::Connect(c) => {
            assert_eq!(c.properties.authentication_method.as_deref(), Some("TEST"))
        }
        other => panic!("{other:?}"),
    }
    s.handle_packet(auth_connack(false), now).unwrap();
    s.publish(request("t", b"secret", QoS::AtMostOnce), now)
        .unwrap();
    s.publish(request("t", b"more", QoS::AtMostOnce), now)
        .unwrap();
    let sent = drain(&mut s);
    assert!(
        matches!(sent[0], Packet::Auth(_)),
        "AUTH goes right after CONNACK"
    );
    assert_eq!(&expect_publish(&sent[1]).payload[..], b"\x00secret");
    assert_eq!(&expect_publish(&sent[2]).payload[..], b"\x01more");
    // Incoming payloads are opened in order; a bad record ends the connection.
    s.handle_packet(publish_packet("t", 0, QoS::AtMostOnce, b"\x00hello"), now)
        .unwrap();
    assert!(matches!(&events(&mut s)[2], Event::Message(m) if &m.payload[..] == b"hello"));
    s.handle_packet(
        Packet::Auth(Box::new(Auth {
            reason_code: ReasonCode::SUCCESS,
            properties: Properties::default(),
        })),
        now,
    )
    .unwrap();
    assert_eq!(
        log.lock().unwrap().last().map(String::as_str),
        Some("auth 0x00 (Success)")
    );
    let err = s
        .handle_packet(
            publish_packet("t", 0, QoS::AtMostOnce, b"\x00replayed"),
            now,
        )
        .unwrap_err();
    assert_eq!(err, SessionError::Protection(ReasonCode::NOT_AUTHORIZED));
    assert_eq!(
        drain(&mut s),
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::NOT_AUTHORIZED
        ))]
    );
}

#[test]
fn authenticator_rejecting_connack_disconnects() {
    let now = Instant::now();
    let (mut s, _) = auth_session(true);
    s.connect_packet(now).unwrap();
    let err = s
        .handle_packet(connack(false, Properties::default()), now)
        .unwrap_err();
    assert!(matches!(err, SessionError::Auth(ref e) if e.reason == ReasonCode::NOT_AUTHORIZED));
    assert_eq!(
        drain(&mut s),
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::NOT_AUTHORIZED
        ))]
    );
}

#[test]
fn unrequested_authentication_in_connack_is_refused() {
    let now = Instant::now();
    let mut s = session_with(connect(ProtocolVersion::V5, true, 0), None);
    s.connect_packet(now).unwrap();
    assert!(s.handle_packet(auth_connack(false), now).is_err());
}

#[test]
fn retransmission_is_sealed_anew_under_the_new_connection() {
    let now = Instant::now();
    let (mut s, _) = auth_session(false);
    s.connect_packet(now).unwrap();
    s.handle_packet(auth_connack(false), now).unwrap();
    s.publish(request("t", b"m", QoS::AtLeastOnce), now)
        .unwrap();
    let sent = drain(&mut s);
    assert_eq!(&expect_publish(&sent[1]).payload[..], b"\x00m");
    s.connection_lost();
    s.connect_packet(now).unwrap();
    s.handle_packet(auth_connack(true), now).unwrap();
    let sent = drain(&mut s);
    let p = expect_publish(&sent[1]);
    assert!(p.dup);
    // The new connection's protection starts from its own first record.
    assert_eq!(&p.payload[..], b"\x00m");
}

#[test]
fn enhanced_auth_needs_mqtt5() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut s = session_with(
        connect(ProtocolVersion::V311, true, 0),
        Some(Box::new(TestAuth { log, defer: false })),
    );
    assert!(matches!(
        s.connect_packet(Instant::now()),
        Err(SessionError::InvalidRequest(_))
    ));
}

#[test]
fn packets_left_unsent_by_a_dead_connection_are_not_sent_on_the_next() {
    let now = Instant::now();
    let (mut s, _) = auth_session(false);
    s.connect_packet(now).unwrap();
    s.handle_packet(auth_connack(false), now).unwrap();
    drain(&mut s);
    s.publish(request("t", b"lost", QoS::AtMostOnce), now)
        .unwrap();
    s.publish(request("t", b"kept", QoS::AtLeastOnce), now)
        .unwrap();
    s.connection_lost();
    assert!(matches!(s.connect_packet(now).unwrap(), Packet::Connect(_)));
    assert_eq!(s.poll_transmit(), None);
    s.handle_packet(auth_connack(true), now).unwrap();
    let sent = drain(&mut s);
    assert!(matches!(sent[0], Packet::Auth(_)));
    // Only the QoS 1 message comes back, sealed as the new connection's first record.
    assert_eq!(sent.len(), 2);
    let p = expect_publish(&sent[1]);
    assert_eq!((&p.payload[..], p.dup), (&b"\x00kept"[..], true));
}

fn deferring_session(now: Instant) -> ClientSession {
    let mut s = session_with(
        connect(ProtocolVersion::V5, true, 0),
        Some(Box::new(TestAuth {
            log: Arc::new(Mutex::new(Vec::new())),
            defer: true,
        })),
    );
    s.connect_packet(now).unwrap();
    s.handle_packet(auth_connack(false), now).unwrap();
    s
}

#[test]
fn a_deferred_auth_is_replaced_by_a_first_publish() {
    let now = Instant::now();
    let mut s = deferring_session(now);
    assert!(drain(&mut s).is_empty(), "the AUTH waits");
    assert_eq!(s.next_deadline(), Some(now + CONFIRM_WAIT));
    s.publish(request("t", b"x", QoS::AtMostOnce), now).unwrap();
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 1);
    assert!(matches!(sent[0], Packet::Publish(_)), "{sent:?}");
    // Record 0 is the PUBLISH; the AUTH is gone for good.
    assert_eq!(expect_publish(&sent[0]).payload[0], 0);
    s.handle_timeout(now + CONFIRM_WAIT).unwrap();
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn a_deferred_auth_goes_before_any_other_packet_or_at_its_deadline() {
    let now = Instant::now();
    let mut s = deferring_session(now);
    s.disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default(), now);
    let sent = drain(&mut s);
    assert!(matches!(sent[0], Packet::Auth(_)), "{sent:?}");
    assert!(matches!(sent[1], Packet::Disconnect(_)), "{sent:?}");

    let mut s = deferring_session(now);
    s.handle_timeout(now + CONFIRM_WAIT / 2).unwrap();
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(now + CONFIRM_WAIT).unwrap();
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 1);
    assert!(matches!(sent[0], Packet::Auth(_)), "{sent:?}");
    s.publish(request("t", b"x", QoS::AtMostOnce), now).unwrap();
    assert!(matches!(drain(&mut s)[..], [Packet::Publish(_)]));
}
