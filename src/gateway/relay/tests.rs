//! Unit tests of the relay: a client [`Connection`] on one side, upstream
//! bytes on the other, no sockets.

use super::*;
use crate::auth::{AllowAll, AuthDecision, Authenticated};
use crate::broker::connection::{Action, ConnectionSettings};
use crate::broker::Stats;
use crate::codec::{LastWill, SubscribeFilter, SubscriptionOptions};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

/// Refuses publishing and subscribing under `secret/`, receiving under `private/`.
struct Policy;

impl AccessPolicy for Policy {
    fn can_publish(&self, _: &Principal, _: &str, topic: &str) -> bool {
        !topic.starts_with("secret/")
    }
    fn can_subscribe(&self, _: &Principal, _: &str, filter: &str) -> Option<QoS> {
        if filter.starts_with("secret/") {
            None
        } else if filter.starts_with("capped/") {
            Some(QoS::AtLeastOnce)
        } else {
            Some(QoS::ExactlyOnce)
        }
    }
    fn can_receive(&self, _: &Principal, _: &str, topic: &str) -> bool {
        !topic.starts_with("private/")
    }
}

fn settings() -> Arc<RelaySettings> {
    Arc::new(RelaySettings {
        client_id_template: Template::parse("{principal}/{client_id}").unwrap(),
        username: Some(Template::parse("gw-{listener}").unwrap()),
        password: Some(Zeroizing::new(b"upstream-secret".to_vec())),
        limits: Limits::default(),
    })
}

fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    codec::encode(packet, version, &mut out).unwrap();
    out.to_vec()
}

fn decode_all(bytes: &[u8], version: ProtocolVersion) -> Vec<Packet> {
    let mut buf = BytesMut::from(bytes);
    let mut d = Decoder::with_version(1 << 20, version);
    let mut v = Vec::new();
    while let Some(p) = d.decode(&mut buf).unwrap() {
        v.push(p);
    }
    v
}

fn connect_packet(version: ProtocolVersion) -> Connect {
    Connect {
        protocol_version: version,
        clean_start: true,
        keep_alive: 30,
        client_id: "dev1".into(),
        will: None,
        username: Some("alice".into()),
        password: None,
        properties: Properties::default(),
    }
}

/// A client connection and its relay, the client authenticated as alice.
struct Rig {
    client: Connection,
    relay: Relay,
    version: ProtocolVersion,
    upstream_version: ProtocolVersion,
    now: Instant,
}

impl Rig {
    /// Runs `connect` through the connection and the relay: returns the rig
    /// and what the relay asked to open.
    fn start(connect: Connect, policy: Arc<dyn AccessPolicy>) -> (Rig, Step) {
        let now = Instant::now();
        let version = connect.protocol_version;
        let mut client = Connection::new(
            ConnectionSettings {
                conn: 1,
                listener: "edge".into(),
                policy,
                limits: Limits::default(),
                over_quota: false,
                stats: Arc::new(Stats::default()),
            },
            now,
        );
        let relay = Relay::new(settings(), "gw-assigned".into(), now);
        let actions = client.receive(&encode(&Packet::Connect(Box::new(connect)), version), now);
        assert!(matches!(actions.as_slice(), [Action::Authenticate(_)]));
        let decision = AuthDecision::Accept {
            authenticated: Authenticated {
                principal: Principal {
                    username: Some("alice".into()),
                    lwa_identity: None,
                },
                protection: None,
                auth_response: None,
            },
            connack_auth: None,
        };
        let mut actions = client.auth_decided(decision, None, now);
        let Some(Action::CoreConnect(req)) = actions.pop() else {
            panic!("no CoreConnect");
        };
        let mut rig = Rig {
            client,
            relay,
            version,
            upstream_version: V5,
            now,
        };
        let step = rig.relay.client_connected(*req, &mut rig.client);
        (rig, step)
    }

    /// Connected to a 5.0 upstream that answered with `connack`.
    fn up(policy: Arc<dyn AccessPolicy>, version: ProtocolVersion, connack: ConnAck) -> Rig {
        let (mut rig, step) = Rig::start(connect_packet(version), policy);
        assert!(matches!(step, Step::OpenUpstream(_)));
        rig.upstream_answers(connack);
        let connack = rig.client_got();
        assert!(
            matches!(connack.as_slice(), [Packet::ConnAck(c)] if c.reason_code == ReasonCode::SUCCESS),
            "{connack:?}"
        );
        rig
    }

    /// The upstream answers CONNECT with `connack` on a 5.0 connection.
    fn upstream_answers(&mut self, connack: ConnAck) {
        let up = UpstreamUp {
            version: V5,
            connack,
            rest: BytesMut::new(),
            addr: "up:1883".into(),
        };
        self.relay
            .upstream_connected(up, &mut self.client, self.now);
    }

    fn client_sends(&mut self, packet: Packet) {
        let actions = self
            .client
            .receive(&encode(&packet, self.version), self.now);
        for action in actions {
            match action {
                Action::CorePacket(p) => self.relay.client_packet(p, &mut self.client),
                _ => panic!("unexpected action"),
            }
        }
    }

    fn upstream_sends(&mut self, packet: Packet) {
        let bytes = encode(&packet, self.upstream_version);
        self.relay
            .upstream_receive(&bytes, &mut self.client, self.now);
    }

    fn client_got(&mut self) -> Vec<Packet> {
        let out = self.client.output().to_vec();
        self.client.output_written();
        decode_all(&out, self.version)
    }

    fn upstream_got(&mut self) -> Vec<Packet> {
        let out = self.relay.output().to_vec();
        self.relay.output_written(self.now);
        decode_all(&out, self.upstream_version)
    }
}

fn ok_connack() -> ConnAck {
    ConnAck {
        session_present: true,
        reason_code: ReasonCode::SUCCESS,
        properties: Properties::default(),
    }
}

fn publish(topic: &str, qos: QoS, id: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: CompactProperties::new(),
        payload: Bytes::from_static(b"payload"),
    }
}

fn ack(id: u16) -> PubResponse {
    PubResponse::success(id)
}

#[test]
fn acknowledgements_reach_the_client_only_from_the_upstream() {
    let mut rig = Rig::up(Arc::new(AllowAll), V5, ok_connack());
    rig.client_sends(Packet::Publish(publish("a/b", QoS::AtLeastOnce, 5)));
    assert!(
        rig.client_got().is_empty(),
        "no PUBACK before the upstream's"
    );
    assert!(
        matches!(rig.upstream_got().as_slice(), [Packet::Publish(p)] if p.packet_id == 5 && p.topic == "a/b")
    );
    rig.upstream_sends(Packet::PubAck(ack(5)));
    assert_eq!(rig.client_got(), vec![Packet::PubAck(ack(5))]);
    // QoS 2: every step is the peer's own.
    rig.client_sends(Packet::Publish(publish("a/b", QoS::ExactlyOnce, 6)));
    assert!(rig.client_got().is_empty());
    assert_eq!(rig.upstream_got().len(), 1);
    rig.upstream_sends(Packet::PubRec(ack(6)));
    assert_eq!(rig.client_got(), vec![Packet::PubRec(ack(6))]);
    rig.client_sends(Packet::PubRel(ack(6)));
    assert_eq!(rig.upstream_got(), vec![Packet::PubRel(ack(6))]);
    assert!(rig.client_got().is_empty());
    rig.upstream_sends(Packet::PubComp(ack(6)));
    assert_eq!(rig.client_got(), vec![Packet::PubComp(ack(6))]);
    // Downstream: the upstream's PUBLISH, the client's PUBACK back up.
    rig.upstream_sends(Packet::Publish(publish("x", QoS::AtLeastOnce, 9)));
    assert!(matches!(rig.client_got().as_slice(), [Packet::Publish(p)] if p.packet_id == 9));
    assert!(
        rig.upstream_got().is_empty(),
        "the gateway does not acknowledge for the client"
    );
    rig.client_sends(Packet::PubAck(ack(9)));
    assert_eq!(rig.upstream_got(), vec![Packet::PubAck(ack(9))]);
    // Downstream QoS 2: PUBREC and PUBCOMP are the client's, PUBREL the upstream's.
    rig.upstream_sends(Packet::Publish(publish("x", QoS::ExactlyOnce, 10)));
    assert!(matches!(rig.client_got().as_slice(), [Packet::Publish(p)] if p.packet_id == 10));
    rig.client_sends(Packet::PubRec(ack(10)));
    assert_eq!(rig.upstream_got(), vec![Packet::PubRec(ack(10))]);
    rig.upstream_sends(Packet::PubRel(ack(10)));
    assert_eq!(rig.client_got(), vec![Packet::PubRel(ack(10))]);
    rig.client_sends(Packet::PubComp(ack(10)));
    assert_eq!(rig.upstream_got(), vec![Packet::PubComp(ack(10))]);
    assert!(rig.relay.upstream_up());
}

#[test]
fn the_acl_is_applied_at_the_gateway() {
    let mut rig = Rig::up(Arc::new(Policy), V5, ok_connack());
    // A refused PUBLISH is answered here (0x87 to 5.0) and never goes up.
    rig.client_sends(Packet::Publish(publish("secret/x", QoS::AtLeastOnce, 1)));
    assert!(rig.upstream_got().is_empty());
    assert!(
        matches!(rig.client_got().as_slice(), [Packet::PubAck(a)] if a.packet_id == 1 && a.reason_code == ReasonCode::NOT_AUTHORIZED)
    );
    // SUBSCRIBE: refused filters answered here, the others capped and merged.
    let filter = |f: &str| SubscribeFilter {
        filter: f.into(),
        options: SubscriptionOptions::qos(QoS::ExactlyOnce),
    };
    rig.client_sends(Packet::Subscribe(Subscribe {
        packet_id: 3,
        filters: vec![filter("a/#"), filter("secret/#"), filter("capped/#")],
        properties: CompactProperties::new(),
    }));
    let up = rig.upstream_got();
    let [Packet::Subscribe(s)] = up.as_slice() else {
        panic!("{up:?}");
    };
    let sent: Vec<_> = s
        .filters
        .iter()
        .map(|f| (f.filter.as_str(), f.options.qos))
        .collect();
    assert_eq!(
        sent,
        [("a/#", QoS::ExactlyOnce), ("capped/#", QoS::AtLeastOnce)]
    );
    rig.upstream_sends(Packet::SubAck(SubAck {
        packet_id: 3,
        reason_codes: vec![ReasonCode::GRANTED_QOS_2, ReasonCode::GRANTED_QOS_1],
        properties: CompactProperties::new(),
    }));
    let client = rig.client_got();
    let [Packet::SubAck(a)] = client.as_slice() else {
        panic!("{client:?}");
    };
    assert_eq!(
        a.reason_codes,
        [
            ReasonCode::GRANTED_QOS_2,
            ReasonCode::NOT_AUTHORIZED,
            ReasonCode::GRANTED_QOS_1
        ]
    );
    // All refused: answered here alone.
    rig.client_sends(Packet::Subscribe(Subscribe {
        packet_id: 4,
        filters: vec![filter("secret/a")],
        properties: CompactProperties::new(),
    }));
    assert!(rig.upstream_got().is_empty());
    assert!(matches!(rig.client_got().as_slice(), [Packet::SubAck(a)] if a.packet_id == 4));
    // A message the client may not receive is acknowledged upstream, not delivered.
    rig.upstream_sends(Packet::Publish(publish("private/p", QoS::AtLeastOnce, 7)));
    assert!(rig.client_got().is_empty());
    assert_eq!(rig.upstream_got(), vec![Packet::PubAck(ack(7))]);
    rig.upstream_sends(Packet::Publish(publish("private/p", QoS::ExactlyOnce, 8)));
    assert_eq!(rig.upstream_got(), vec![Packet::PubRec(ack(8))]);
    rig.upstream_sends(Packet::PubRel(ack(8)));
    assert_eq!(rig.upstream_got(), vec![Packet::PubComp(ack(8))]);
    assert!(rig.client_got().is_empty());
}

#[test]
fn a_refused_qos2_publish_from_a_311_client_completes_at_the_gateway() {
    let mut rig = Rig::up(Arc::new(Policy), V311, ok_connack());
    rig.client_sends(Packet::Publish(publish("secret/x", QoS::ExactlyOnce, 2)));
    assert_eq!(rig.client_got(), vec![Packet::PubRec(ack(2))]);
    rig.client_sends(Packet::PubRel(ack(2)));
    assert_eq!(rig.client_got(), vec![Packet::PubComp(ack(2))]);
    assert!(
        rig.upstream_got().is_empty(),
        "the upstream never heard of id 2"
    );
}

#[test]
fn publishes_beyond_the_upstream_receive_maximum_wait_here() {
    let connack = ConnAck {
        properties: Properties {
            receive_maximum: Some(1),
            ..Properties::default()
        },
        ..ok_connack()
    };
    let mut rig = Rig::up(Arc::new(AllowAll), V5, connack);
    rig.client_sends(Packet::Publish(publish("a", QoS::AtLeastOnce, 1)));
    rig.client_sends(Packet::Publish(publish("a", QoS::AtLeastOnce, 2)));
    rig.client_sends(Packet::Publish(publish("a", QoS::AtMostOnce, 0)));
    let ids: Vec<_> = rig
        .upstream_got()
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [1, 0], "id 2 waits for room; QoS 0 does not count");
    rig.upstream_sends(Packet::PubAck(ack(1)));
    assert!(matches!(rig.upstream_got().as_slice(), [Packet::Publish(p)] if p.packet_id == 2));
}

#[test]
fn a_publish_over_the_upstreams_maximum_packet_size_ends_the_client_with_0x95() {
    let connack = ConnAck {
        properties: Properties {
            maximum_packet_size: Some(64),
            ..Properties::default()
        },
        ..ok_connack()
    };
    let (mut rig, _) = Rig::start(connect_packet(V5), Arc::new(AllowAll));
    rig.upstream_answers(connack);
    let out = rig.client_got();
    assert!(
        matches!(out.as_slice(), [Packet::ConnAck(c)] if c.properties.maximum_packet_size == Some(64)),
        "the client is told the upstream's limit: {out:?}"
    );
    rig.client_sends(Packet::Publish(publish("small", QoS::AtLeastOnce, 1)));
    assert_eq!(rig.upstream_got().len(), 1);
    let mut big = publish("big", QoS::AtLeastOnce, 2);
    big.payload = Bytes::from(vec![b'x'; 100]);
    rig.client_sends(Packet::Publish(big));
    assert!(rig.upstream_got().is_empty());
    assert!(
        matches!(rig.client_got().as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PACKET_TOO_LARGE)
    );
}

#[test]
fn the_upstream_connect_carries_templates_credentials_and_the_allowed_will() {
    let mut connect = connect_packet(V5);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(0);
    connect.properties.maximum_packet_size = Some(500);
    connect.properties.receive_maximum = Some(7);
    connect.will = Some(LastWill {
        topic: "secret/will".into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    });
    let (_, step) = Rig::start(connect.clone(), Arc::new(Policy));
    let Step::OpenUpstream(up) = step else {
        panic!("no upstream asked for");
    };
    assert_eq!(up.v5.client_id, "alice/dev1");
    assert_eq!(up.v5.username.as_deref(), Some("gw-edge"));
    assert_eq!(up.v5.password.as_deref(), Some(&b"upstream-secret"[..]));
    assert!(up.v5.will.is_none(), "the ACL refuses the will's topic");
    assert!(!up.v5.clean_start);
    assert_eq!(up.v5.properties.maximum_packet_size, Some(500));
    let (_, step) = Rig::start(connect_packet(V5), Arc::new(AllowAll));
    let Step::OpenUpstream(unlimited) = step else {
        panic!();
    };
    assert_eq!(
        unlimited.v5.properties.maximum_packet_size,
        Some(Limits::default().max_packet_size),
        "never more than the gateway decodes"
    );
    assert_eq!(up.v5.properties.receive_maximum, Some(7));
    assert_eq!(up.v5.properties.authentication_method, None);
    // 3.1.1 cannot end a session with its connection: expiry 0 is a clean session.
    assert!(up.v311.clean_start);
    assert!(up.v311.properties.is_empty());
    // A 3.1.1 client's persistent session never expires upstream.
    let mut old = connect_packet(V311);
    old.clean_start = false;
    let (_, step) = Rig::start(old, Arc::new(AllowAll));
    let Step::OpenUpstream(up) = step else {
        panic!();
    };
    assert_eq!(up.v5.properties.session_expiry_interval, Some(u32::MAX));
    assert!(!up.v311.clean_start);
    // An allowed will goes up.
    connect.will.as_mut().unwrap().topic = "status/dev1".into();
    let (_, step) = Rig::start(connect, Arc::new(Policy));
    let Step::OpenUpstream(up) = step else {
        panic!();
    };
    assert_eq!(up.v5.will.unwrap().topic, "status/dev1");
}

#[test]
fn refusals_and_an_unreachable_upstream_reach_the_client_as_reason_codes() {
    for (upstream, client) in [
        (
            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            ReasonCode::SERVER_UNAVAILABLE,
        ),
        // One account for the gateway (`gw-{listener}`): its refusal is the gateway's.
        (ReasonCode::NOT_AUTHORIZED, ReasonCode::SERVER_UNAVAILABLE),
        (ReasonCode::SERVER_BUSY, ReasonCode::SERVER_BUSY),
        (
            ReasonCode::UNSPECIFIED_ERROR,
            ReasonCode::SERVER_UNAVAILABLE,
        ),
    ] {
        let (mut rig, _) = Rig::start(connect_packet(V5), Arc::new(AllowAll));
        let connack = ConnAck {
            session_present: false,
            reason_code: upstream,
            properties: Properties::default(),
        };
        rig.upstream_answers(connack);
        let out = rig.client_got();
        let [Packet::ConnAck(c)] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert_eq!(c.reason_code, client, "upstream {upstream}");
        let why = c.properties.reason_string.as_deref().unwrap_or_default();
        assert!(why.contains("up:1883"), "{why}");
        assert!(rig.client.is_closed());
    }
    // Nothing reachable: 0x88, return code 3 for 3.1.1.
    for version in [V5, V311] {
        let (mut rig, _) = Rig::start(connect_packet(version), Arc::new(AllowAll));
        rig.relay
            .upstream_unreachable("a:1: connection refused", &mut rig.client);
        let out = rig.client.output().to_vec();
        match version {
            V5 => {
                let packets = decode_all(&out, V5);
                let [Packet::ConnAck(c)] = packets.as_slice() else {
                    panic!("{packets:?}");
                };
                assert_eq!(c.reason_code, ReasonCode::SERVER_UNAVAILABLE);
                assert!(c
                    .properties
                    .reason_string
                    .as_deref()
                    .unwrap_or_default()
                    .contains("connection refused"));
            }
            V311 => assert_eq!(out, [0x20, 2, 0, 3]),
        }
    }
}

#[test]
fn a_refused_login_is_the_gateways_unless_the_user_name_names_the_client() {
    for code in [
        ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        ReasonCode::NOT_AUTHORIZED,
    ] {
        assert_eq!(
            refusal_for_client(code, false).0,
            ReasonCode::SERVER_UNAVAILABLE
        );
        assert_eq!(refusal_for_client(code, true).0, ReasonCode::NOT_AUTHORIZED);
    }
}

#[test]
fn an_lwa_client_is_previewed_its_session_and_disconnected_when_the_upstream_fails() {
    let relay = Relay::new(settings(), "gw-1".into(), Instant::now());
    let mut connect = connect_packet(V5);
    connect.clean_start = false;
    connect.client_id.clear();
    let preview = relay.preview(&connect);
    assert!(preview.session_present, "resuming is presumed");
    assert_eq!(
        preview.properties.assigned_client_identifier.as_deref(),
        Some("gw-1")
    );
    connect.clean_start = true;
    assert!(!relay.preview(&connect).session_present);
}

#[test]
fn the_client_leaving_sends_disconnect_only_if_it_sent_one() {
    let mut rig = Rig::up(Arc::new(AllowAll), V5, ok_connack());
    assert!(
        !rig.relay.client_gone(None),
        "no DISCONNECT: the upstream publishes the will"
    );
    assert!(rig.upstream_got().is_empty());
    let mut rig = Rig::up(Arc::new(AllowAll), V5, ok_connack());
    assert!(rig
        .relay
        .client_gone(Some(Disconnect::new(ReasonCode::SUCCESS))));
    assert!(
        matches!(rig.upstream_got().as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::SUCCESS)
    );
    let mut rig = Rig::up(Arc::new(AllowAll), V5, ok_connack());
    rig.relay.version = V311;
    assert!(
        !rig.relay
            .client_gone(Some(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL))),
        "3.1.1 has no DISCONNECT with will: the close publishes it"
    );
}

#[test]
fn the_upstream_is_pinged_and_given_up_when_silent() {
    let mut rig = Rig::up(Arc::new(AllowAll), V5, ok_connack());
    let first = rig.relay.next_deadline().unwrap();
    assert_eq!(first, rig.now + Duration::from_secs(30));
    rig.relay.poll(first, &mut rig.client);
    assert_eq!(rig.upstream_got(), vec![Packet::PingReq]);
    let second = rig.relay.next_deadline().unwrap();
    rig.relay.poll(second, &mut rig.client);
    assert!(rig.relay.upstream_closed());
    let out = rig.client_got();
    assert!(
        matches!(out.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::UNSPECIFIED_ERROR),
        "{out:?}"
    );
}

#[test]
fn packets_sent_before_the_upstream_answered_follow_it() {
    let (mut rig, _) = Rig::start(connect_packet(V5), Arc::new(AllowAll));
    rig.client_sends(Packet::Publish(publish("early", QoS::AtLeastOnce, 1)));
    assert!(rig.upstream_got().is_empty());
    rig.upstream_answers(ok_connack());
    assert!(matches!(rig.upstream_got().as_slice(), [Packet::Publish(p)] if p.topic == "early"));
    // The client's CONNACK is the upstream's Session Present.
    assert!(matches!(rig.client_got().as_slice(), [Packet::ConnAck(c)] if c.session_present));
}
