//! LWA2's confirmation attacked over real sockets against `mqtt-lwa broker`
//! (LWA2.md sections 6.2 and 12): a tampered, re-topiced or replayed first
//! PUBLISH and a packet that is neither PUBLISH nor AUTH end the connection
//! with no side effect; honest clients on both paths are served and the
//! broker sends no AUTH 0x00.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{connect_packet, unique, Broker, RawClient, Read1, WAIT};
use mqtt_lwa::auth::lwa::{LwaClientAuthenticator, LwaVersion};
use mqtt_lwa::auth::psk::PskStore;
use mqtt_lwa::auth::{ClientAuthStep, ClientAuthenticator};
use mqtt_lwa::codec::{Packet, Properties, ProtocolVersion, Publish, QoS, ReasonCode};
use mqtt_lwa::lwa::Psk;

const V5: ProtocolVersion = ProtocolVersion::V5;
const DEV_KEY: [u8; 32] = [0x11; 32];

fn start() -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let psk_path = dir.path().join("lwa.psk");
    let mut store = PskStore::new();
    store.set("dev", Psk::new(DEV_KEY)).unwrap();
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
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    (dir, broker)
}

/// CONNECT with LWA2 and a verified CONNACK; nothing sent after it yet.
fn handshake(broker: &Broker, client_id: &str) -> (RawClient, ClientAuthStep) {
    let mut auth = LwaClientAuthenticator::new("dev", Psk::new(DEV_KEY))
        .unwrap()
        .with_version(LwaVersion::V2);
    let mut connect = connect_packet(V5, client_id, true);
    auth.prepare_connect(&mut connect).unwrap();
    let mut raw = RawClient::tcp(broker.addr, V5);
    raw.send(&Packet::Connect(Box::new(connect)));
    let ack = match raw.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(ack.properties.authentication_method.as_deref(), Some("L2"));
    let step = auth.on_connack(&ack).expect("broker authenticated");
    assert!(step.confirm_by_first_publish);
    (raw, step)
}

fn publish(topic: &str, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        packet_id: 0,
        properties: Properties::default().into(),
        payload,
    })
}

fn closed_with(raw: &mut RawClient) -> Option<ReasonCode> {
    raw.expect_close().into_iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

fn watcher(broker: &Broker, filter: &str) -> RawClient {
    let mut w = RawClient::connect(broker.addr, V5, &unique("watch"));
    w.subscribe(filter, QoS::AtMostOnce);
    w
}

fn next_message(w: &mut RawClient) -> (String, Bytes) {
    match w.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))) {
        Packet::Publish(p) => (p.topic, p.payload),
        _ => unreachable!(),
    }
}

/// The honest PUBLISH path: delivered, and no AUTH from the broker.
fn honest_first_publish(broker: &Broker, w: &mut RawClient, topic: &str) {
    let (mut raw, mut step) = handshake(broker, &unique("honest"));
    let protection = step.protection.as_mut().unwrap();
    let sealed = protection
        .seal(topic, QoS::AtMostOnce, false, b"fine")
        .unwrap();
    raw.send(&publish(topic, sealed));
    assert_eq!(
        next_message(w),
        (topic.to_owned(), Bytes::from_static(b"fine"))
    );
    assert!(
        matches!(raw.read(Duration::from_millis(200)), Read1::Timeout),
        "the broker sends nothing after an LWA2 confirmation"
    );
}

#[test]
fn tampered_retopiced_and_replayed_first_publish_are_refused() {
    let (_dir, broker) = start();
    let mut w = watcher(&broker, "l2/#");
    // Tampered payload or tag, or moved to another topic.
    for case in 0..3 {
        let (mut raw, mut step) = handshake(&broker, &unique("bad"));
        let protection = step.protection.as_mut().unwrap();
        let mut sealed = protection
            .seal("l2/a", QoS::AtMostOnce, false, b"payload")
            .unwrap()
            .to_vec();
        let topic = match case {
            0 => {
                sealed[0] ^= 1;
                "l2/a"
            }
            1 => {
                let last = sealed.len() - 1;
                sealed[last] ^= 0x80;
                "l2/a"
            }
            _ => "l2/b",
        };
        raw.send(&publish(topic, Bytes::from(sealed)));
        assert_eq!(closed_with(&mut raw), Some(ReasonCode::NOT_AUTHORIZED));
    }
    // Another connection's first PUBLISH, replayed as this one's.
    let (mut first, mut step) = handshake(&broker, &unique("victim"));
    let sealed = step
        .protection
        .as_mut()
        .unwrap()
        .seal("l2/replayed", QoS::AtMostOnce, false, b"once")
        .unwrap();
    first.send(&publish("l2/replayed", sealed.clone()));
    assert_eq!(
        next_message(&mut w),
        ("l2/replayed".to_owned(), Bytes::from_static(b"once"))
    );
    let (mut replayer, _) = handshake(&broker, &unique("replayer"));
    replayer.send(&publish("l2/replayed", sealed));
    assert_eq!(closed_with(&mut replayer), Some(ReasonCode::NOT_AUTHORIZED));
    // Nothing of the refused ones was delivered: the next message is the honest one.
    honest_first_publish(&broker, &mut w, "l2/ok");
}

#[test]
fn a_first_packet_other_than_publish_or_auth_is_a_protocol_error() {
    let (_dir, broker) = start();
    let (mut raw, _) = handshake(&broker, &unique("ping"));
    raw.send(&Packet::PingReq);
    assert_eq!(closed_with(&mut raw), Some(ReasonCode::PROTOCOL_ERROR));
}

#[test]
fn the_finished_path_gets_no_auth_back_and_records_flow() {
    let (_dir, broker) = start();
    let mut w = watcher(&broker, "l2f/#");
    let (mut raw, mut step) = handshake(&broker, &unique("fin"));
    raw.send(&Packet::Auth(Box::new(step.auth_to_send.take().unwrap())));
    assert!(
        matches!(raw.read(Duration::from_millis(200)), Read1::Timeout),
        "no AUTH 0x00 in LWA2"
    );
    let protection = step.protection.as_mut().unwrap();
    for i in 0..2u8 {
        let sealed = protection
            .seal("l2f/t", QoS::AtMostOnce, false, &[b'0' + i])
            .unwrap();
        raw.send(&publish("l2f/t", sealed));
        assert_eq!(next_message(&mut w).1, Bytes::from(vec![b'0' + i]));
    }
}
