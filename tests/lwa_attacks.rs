//! LWA1 attacked over real sockets against `mqtt-lwa broker` (issue 4):
//! each test is one attack from the list, and checks both that the attack
//! fails with the spec's reason code and that honest clients are unharmed.
//!
//! The honest and the attacking LWA1 clients are raw MQTT clients driven by
//! the library's client glue (`LwaClientAuthenticator`), so the attacker can
//! replay, reorder and alter bytes at will.

mod common;

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use common::{connect_packet, unique, Broker, RawClient, Read1, WAIT};
use mqtt_lwa::auth::lwa::LwaClientAuthenticator;
use mqtt_lwa::auth::psk::PskStore;
use mqtt_lwa::auth::{ClientAuthenticator, PayloadProtection};
use mqtt_lwa::codec::{
    encode, Auth, Connect, LastWill, Packet, Properties, ProtocolVersion, Publish, QoS, ReasonCode,
};
use mqtt_lwa::lwa::Psk;

const V5: ProtocolVersion = ProtocolVersion::V5;
const DEV_KEY: [u8; 32] = [0x11; 32];
const DEV2_KEY: [u8; 32] = [0x22; 32];

struct Setup {
    _dir: tempfile::TempDir,
    broker: Broker,
}

fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let psk_path = dir.path().join("lwa.psk");
    let mut store = PskStore::new();
    store.set("dev", Psk::new(DEV_KEY)).unwrap();
    store.set("dev2", Psk::new(DEV2_KEY)).unwrap();
    store.save(&psk_path).unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"lwa\"\nbind = \"127.0.0.1\"\nallow_anonymous = true\nlwa_psk_file = \"{}\"\n",
            psk_path.display()
        ),
    )
    .unwrap();
    let config: PathBuf = config;
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    Setup { _dir: dir, broker }
}

/// An authenticated LWA1 connection: the socket and its record layer.
struct LwaConn {
    raw: RawClient,
    protection: Box<dyn PayloadProtection>,
    /// The CONNECT exactly as sent (for replay attacks).
    connect_bytes: Vec<u8>,
}

fn lwa_connect_packet(
    identity: &str,
    key: [u8; 32],
    client_id: &str,
    will: Option<LastWill>,
    limit_log2: u8,
) -> (LwaClientAuthenticator, Connect) {
    let mut auth = LwaClientAuthenticator::new(identity, Psk::new(key))
        .unwrap()
        .with_record_limit_log2(limit_log2);
    let mut connect = connect_packet(V5, client_id, true);
    connect.will = will;
    auth.prepare_connect(&mut connect).unwrap();
    (auth, connect)
}

fn encoded(packet: &Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(packet, V5, &mut out).unwrap();
    out.to_vec()
}

fn connack(raw: &mut RawClient) -> mqtt_lwa::codec::ConnAck {
    match raw.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => *ack,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

fn lwa_connect_with(
    broker: &Broker,
    identity: &str,
    key: [u8; 32],
    client_id: &str,
    will: Option<LastWill>,
    limit_log2: u8,
) -> LwaConn {
    let (mut auth, connect) = lwa_connect_packet(identity, key, client_id, will, limit_log2);
    let connect_bytes = encoded(&Packet::Connect(Box::new(connect)));
    let mut raw = RawClient::tcp(broker.addr, V5);
    raw.send_raw(&connect_bytes);
    let ack = connack(&mut raw);
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    let step = auth.on_connack(&ack).expect("broker authenticated");
    raw.send(&Packet::Auth(Box::new(step.auth_to_send.unwrap())));
    match raw.read(WAIT) {
        Read1::Packet(Packet::Auth(a)) => {
            assert_eq!(a.reason_code, ReasonCode::SUCCESS);
            auth.on_auth(&a).unwrap();
        }
        other => panic!("expected AUTH 0x00, got {other:?}"),
    }
    LwaConn {
        raw,
        protection: step.protection.unwrap(),
        connect_bytes,
    }
}

fn lwa_connect(broker: &Broker, identity: &str, key: [u8; 32], client_id: &str) -> LwaConn {
    lwa_connect_with(broker, identity, key, client_id, None, 48)
}

fn publish(topic: &str, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        packet_id: 0,
        properties: Default::default(),
        payload,
    })
}

impl LwaConn {
    fn sealed(&mut self, topic: &str, payload: &[u8]) -> Bytes {
        self.protection
            .seal(topic, QoS::AtMostOnce, false, payload)
            .unwrap()
    }
    fn publish(&mut self, topic: &str, payload: &[u8]) {
        let sealed = self.sealed(topic, payload);
        self.raw.send(&publish(topic, sealed));
    }
    /// Waits for a PUBLISH and opens it.
    fn receive(&mut self) -> (String, Bytes) {
        let Packet::Publish(p) = self
            .raw
            .expect("PUBLISH", |p| matches!(p, Packet::Publish(_)))
        else {
            unreachable!()
        };
        let plain = self
            .protection
            .open(&p.topic, p.qos, p.retain, &p.payload)
            .expect("broker record opens");
        (p.topic, plain)
    }
}

/// A plaintext anonymous watcher subscribed to `filter`.
fn watcher(broker: &Broker, filter: &str) -> RawClient {
    let mut w = RawClient::connect(broker.addr, V5, &unique("watch"));
    w.subscribe(filter, QoS::AtMostOnce);
    w
}

/// The next PUBLISH the watcher gets, as (topic, payload).
fn next_message(w: &mut RawClient) -> (String, Bytes) {
    match w.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))) {
        Packet::Publish(p) => (p.topic, p.payload),
        _ => unreachable!(),
    }
}

/// Reads until close and returns the DISCONNECT reason the broker sent.
fn closed_with(raw: &mut RawClient) -> Option<ReasonCode> {
    raw.expect_close().into_iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

/// An honest second publisher proves the broker still serves others.
fn still_serving(broker: &Broker, w: &mut RawClient, topic: &str) {
    let mut other = lwa_connect(broker, "dev2", DEV2_KEY, &unique("honest"));
    other.publish(topic, b"still here");
    assert_eq!(
        next_message(w),
        (topic.to_owned(), Bytes::from_static(b"still here"))
    );
}

#[test]
fn replayed_connect_takes_nothing_over_and_fires_no_will() {
    let s = start();
    let id = unique("victim");
    let mut w = watcher(&s.broker, "#");
    let will = LastWill {
        topic: format!("will/{id}"),
        payload: Bytes::from_static(b"victim died"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    };
    let mut victim = lwa_connect_with(&s.broker, "dev", DEV_KEY, &id, Some(will), 48);
    victim.raw.subscribe(&format!("to/{id}"), QoS::AtMostOnce);

    // Attacker 1 replays the CONNECT, gets a CONNACK it cannot verify, and hangs up.
    let mut replay = RawClient::tcp(s.broker.addr, V5);
    replay.send_raw(&victim.connect_bytes);
    let ack = connack(&mut replay);
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert!(ack.properties.authentication_data.is_some());
    drop(replay);
    // Attacker 2 replays it and answers with a made-up finished.
    let mut replay = RawClient::tcp(s.broker.addr, V5);
    replay.send_raw(&victim.connect_bytes);
    connack(&mut replay);
    replay.send(&Packet::Auth(Box::new(Auth {
        reason_code: ReasonCode::RE_AUTHENTICATE,
        properties: Properties {
            authentication_method: Some("LWA1".into()),
            authentication_data: Some(Bytes::from_static(&[0x42; 16])),
            ..Properties::default()
        },
    })));
    assert_eq!(closed_with(&mut replay), Some(ReasonCode::NOT_AUTHORIZED));

    // The victim's connection is intact both ways, and its will never fired:
    // the watcher's first message is the victim's marker, not the will.
    victim.publish(&format!("mark/{id}"), b"alive");
    assert_eq!(
        next_message(&mut w),
        (format!("mark/{id}"), Bytes::from_static(b"alive"))
    );
    w.send(&publish(&format!("to/{id}"), Bytes::from_static(b"ping")));
    assert_eq!(
        victim.receive(),
        (format!("to/{id}"), Bytes::from_static(b"ping"))
    );
    // The watcher saw the ping it sent, and still no will.
    assert_eq!(next_message(&mut w).0, format!("to/{id}"));
}

#[test]
fn forged_connect_gets_no_side_effect_before_the_finished() {
    let s = start();
    let mut w = watcher(&s.broker, "forged/#");
    // A forged offer for a real identity: the attacker has no PSK.
    let (_, connect) = lwa_connect_packet("dev", [0x99; 32], &unique("forged"), None, 48);
    let mut forged = RawClient::tcp(s.broker.addr, V5);
    forged.send(&Packet::Connect(Box::new(connect)));
    assert_eq!(connack(&mut forged).reason_code, ReasonCode::SUCCESS);
    // Publishing before authenticating is a protocol error and reaches nobody.
    forged.send(&publish("forged/x", Bytes::from_static(b"injected")));
    assert_eq!(closed_with(&mut forged), Some(ReasonCode::PROTOCOL_ERROR));
    still_serving(&s.broker, &mut w, "forged/ok");
}

#[test]
fn wrong_psk_and_unknown_identity_get_the_same_answer() {
    let s = start();
    let mut answers = Vec::new();
    for (identity, key) in [("dev", [0x12; 32]), ("nobody", DEV_KEY)] {
        let (mut auth, connect) = lwa_connect_packet(identity, key, &unique("c"), None, 48);
        let mut raw = RawClient::tcp(s.broker.addr, V5);
        raw.send(&Packet::Connect(Box::new(connect)));
        let ack = connack(&mut raw);
        // The client cannot verify the broker: it would disconnect with 0x87.
        let err = auth.on_connack(&ack).unwrap_err();
        assert_eq!(err.reason, ReasonCode::NOT_AUTHORIZED);
        // An attacker that carries on anyway is refused by the broker with 0x87.
        raw.send(&Packet::Auth(Box::new(Auth {
            reason_code: ReasonCode::RE_AUTHENTICATE,
            properties: Properties {
                authentication_method: Some("LWA1".into()),
                authentication_data: Some(Bytes::from_static(&[0; 16])),
                ..Properties::default()
            },
        })));
        let reason = closed_with(&mut raw);
        answers.push((
            ack.reason_code,
            ack.session_present,
            ack.properties.authentication_method.clone(),
            ack.properties.authentication_data.map(|d| d.len()),
            ack.properties.reason_string.clone(),
            reason,
        ));
    }
    assert_eq!(answers[0], answers[1], "wrong PSK vs unknown identity");
    assert_eq!(answers[0].5, Some(ReasonCode::NOT_AUTHORIZED));
}

#[test]
fn low_order_point_is_refused_at_connect() {
    let s = start();
    let (_, mut connect) = lwa_connect_packet("dev", DEV_KEY, &unique("low"), None, 48);
    let mut offer = connect
        .properties
        .authentication_data
        .clone()
        .unwrap()
        .to_vec();
    let n = offer.len();
    offer[n - 32..].fill(0);
    connect.properties.authentication_data = Some(Bytes::from(offer));
    let mut raw = RawClient::tcp(s.broker.addr, V5);
    raw.send(&Packet::Connect(Box::new(connect)));
    assert_eq!(connack(&mut raw).reason_code, ReasonCode::NOT_AUTHORIZED);
}

#[test]
fn stripped_authentication_method_is_refused_for_an_lwa_identity() {
    let s = start();
    let mut connect = connect_packet(V5, &unique("strip"), true);
    connect.username = Some("dev".into());
    connect.password = Some(Bytes::from_static(b"anything"));
    let mut raw = RawClient::tcp(s.broker.addr, V5);
    raw.send(&Packet::Connect(Box::new(connect)));
    assert_eq!(
        connack(&mut raw).reason_code,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
}

#[test]
fn replayed_record_closes_the_connection_and_others_keep_being_served() {
    let s = start();
    let mut w = watcher(&s.broker, "rec/#");
    let mut a = lwa_connect(&s.broker, "dev", DEV_KEY, &unique("a"));
    let sealed = a.sealed("rec/a", b"once");
    a.raw.send(&publish("rec/a", sealed.clone()));
    assert_eq!(
        next_message(&mut w),
        ("rec/a".into(), Bytes::from_static(b"once"))
    );
    a.raw.send(&publish("rec/a", sealed));
    assert_eq!(closed_with(&mut a.raw), Some(ReasonCode::NOT_AUTHORIZED));
    still_serving(&s.broker, &mut w, "rec/ok");
}

#[test]
fn reordered_records_are_refused() {
    let s = start();
    let mut w = watcher(&s.broker, "ord/#");
    let mut a = lwa_connect(&s.broker, "dev", DEV_KEY, &unique("a"));
    let first = a.sealed("ord/a", b"1");
    let second = a.sealed("ord/a", b"2");
    a.raw.send(&publish("ord/a", second));
    a.raw.send(&publish("ord/a", first));
    assert_eq!(closed_with(&mut a.raw), Some(ReasonCode::NOT_AUTHORIZED));
    // Neither record was delivered: the honest marker is the first message.
    still_serving(&s.broker, &mut w, "ord/ok");
}

#[test]
fn record_moved_to_another_topic_is_refused() {
    let s = start();
    let mut w = watcher(&s.broker, "mv/#");
    let mut a = lwa_connect(&s.broker, "dev", DEV_KEY, &unique("a"));
    let sealed = a.sealed("mv/door/open", b"1");
    a.raw.send(&publish("mv/door/close", sealed));
    assert_eq!(closed_with(&mut a.raw), Some(ReasonCode::NOT_AUTHORIZED));
    still_serving(&s.broker, &mut w, "mv/ok");
}

#[test]
fn tampered_and_truncated_records_are_refused() {
    let s = start();
    let mut w = watcher(&s.broker, "tt/#");
    let cuts: [fn(&mut Vec<u8>); 3] = [
        |r| r[0] ^= 1,
        |r| {
            let last = r.len() - 1;
            r[last] ^= 0x80
        },
        |r| r.truncate(r.len() - 1),
    ];
    for cut in cuts {
        let mut a = lwa_connect(&s.broker, "dev", DEV_KEY, &unique("a"));
        let mut bad = a.sealed("tt/a", b"payload").to_vec();
        cut(&mut bad);
        a.raw.send(&publish("tt/a", Bytes::from(bad)));
        assert_eq!(closed_with(&mut a.raw), Some(ReasonCode::NOT_AUTHORIZED));
    }
    still_serving(&s.broker, &mut w, "tt/ok");
}

#[test]
fn reflected_record_is_refused() {
    let s = start();
    let mut a = lwa_connect(&s.broker, "dev", DEV_KEY, &unique("a"));
    a.raw.subscribe("refl/t", QoS::AtMostOnce);
    let mut w = RawClient::connect(s.broker.addr, V5, &unique("w"));
    w.send(&publish("refl/t", Bytes::from_static(b"down")));
    // A captures the broker's sealed record and sends it straight back.
    let Packet::Publish(p) = a.raw.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))) else {
        unreachable!()
    };
    assert_eq!(p.payload.len(), 4 + 16);
    a.raw.send(&publish("refl/t", p.payload));
    assert_eq!(closed_with(&mut a.raw), Some(ReasonCode::NOT_AUTHORIZED));
}

#[test]
fn record_limit_closes_with_0x83() {
    let s = start();
    // The client offers 2^1 records per direction; the broker may seal two.
    let mut a = lwa_connect_with(&s.broker, "dev", DEV_KEY, &unique("a"), None, 1);
    a.raw.subscribe("lim/t", QoS::AtMostOnce);
    let mut w = RawClient::connect(s.broker.addr, V5, &unique("w"));
    for m in [&b"0"[..], b"1", b"2"] {
        w.send(&publish("lim/t", Bytes::copy_from_slice(m)));
    }
    assert_eq!(a.receive().1, Bytes::from_static(b"0"));
    assert_eq!(a.receive().1, Bytes::from_static(b"1"));
    assert_eq!(
        closed_with(&mut a.raw),
        Some(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR)
    );
    // And the client's own sealer stops at its limit too.
    let mut b = lwa_connect_with(&s.broker, "dev2", DEV2_KEY, &unique("b"), None, 1);
    b.sealed("lim/x", b"0");
    b.sealed("lim/x", b"1");
    assert_eq!(
        b.protection
            .seal("lim/x", QoS::AtMostOnce, false, b"2")
            .unwrap_err(),
        ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
    );
}

#[test]
fn other_principals_cannot_take_over_an_lwa_session() {
    let s = start();
    let id = unique("owned");
    let mut w = watcher(&s.broker, "own/#");
    let mut owner = lwa_connect(&s.broker, "dev", DEV_KEY, &id);
    // An anonymous plaintext client with the same Client Identifier: refused, no takeover.
    let mut anon = RawClient::tcp(s.broker.addr, V5);
    anon.send(&Packet::Connect(Box::new(connect_packet(V5, &id, false))));
    assert_eq!(connack(&mut anon).reason_code, ReasonCode::NOT_AUTHORIZED);
    // Another LWA identity that authenticates correctly: also refused (after its handshake).
    let (mut auth, connect) = lwa_connect_packet("dev2", DEV2_KEY, &id, None, 48);
    let mut other = RawClient::tcp(s.broker.addr, V5);
    other.send(&Packet::Connect(Box::new(connect)));
    let ack = connack(&mut other);
    let step = auth.on_connack(&ack).unwrap();
    other.send(&Packet::Auth(Box::new(step.auth_to_send.unwrap())));
    assert_eq!(closed_with(&mut other), Some(ReasonCode::NOT_AUTHORIZED));
    // The owner is still connected and served.
    owner.publish("own/mark", b"still mine");
    assert_eq!(
        next_message(&mut w),
        ("own/mark".to_owned(), Bytes::from_static(b"still mine"))
    );
    // The owner itself may reconnect and take its own session over.
    let again = lwa_connect(&s.broker, "dev", DEV_KEY, &id);
    assert_eq!(
        closed_with(&mut owner.raw),
        Some(ReasonCode::SESSION_TAKEN_OVER)
    );
    drop(again);
}
