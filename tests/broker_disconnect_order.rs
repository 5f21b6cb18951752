//! A client's DISCONNECT reaches the broker core before its socket closes
//! (issue 13 item 4.2): once the client sees the connection end, its
//! session is offline, so a message published right then is queued for it
//! and arrives when it comes back, instead of being handed to the dying
//! connection (where a QoS 0 message was lost).

mod common;

use common::{connect_packet, publish_packet, unique, Broker, RawClient, Read1, WAIT};
use mqtt_lwa::codec::{Disconnect, Packet, ProtocolVersion, QoS, ReasonCode};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn persistent(broker: &Broker, id: &str) -> RawClient {
    let mut c = RawClient::tcp(broker.addr, V5);
    let mut connect = connect_packet(V5, id, false);
    connect.properties.session_expiry_interval = Some(60);
    c.send(&Packet::Connect(Box::new(connect)));
    c.expect(
        "CONNACK",
        |p| matches!(p, Packet::ConnAck(a) if !a.reason_code.is_error()),
    );
    c
}

#[test]
fn a_message_published_once_the_disconnect_is_seen_waits_for_the_session() {
    let broker = Broker::start(&[]);
    let mut publisher = RawClient::connect(broker.addr, V5, &unique("pub"));
    // The race is narrow: repeat it; every round must hold.
    for round in 0..40 {
        let id = unique("sub");
        let topic = format!("order/{id}");
        let mut sub = persistent(&broker, &id);
        sub.subscribe(&topic, QoS::AtMostOnce);
        sub.send(&Packet::Disconnect(Disconnect::new(
            ReasonCode::NORMAL_DISCONNECTION,
        )));
        assert!(matches!(sub.read(WAIT), Read1::Closed), "round {round}");
        publisher.send(&Packet::Publish(publish_packet(
            &topic,
            QoS::AtMostOnce,
            0,
            b"after",
        )));
        // A PINGREQ round trip: the publish has been routed by now.
        publisher.send(&Packet::PingReq);
        publisher.expect("PINGRESP", |p| matches!(p, Packet::PingResp));
        let mut back = persistent(&broker, &id);
        let got = back.expect("the queued message", |p| matches!(p, Packet::Publish(_)));
        match got {
            Packet::Publish(p) => assert_eq!(&p.payload[..], b"after", "round {round}"),
            other => panic!("{other:?}"),
        }
        back.send(&Packet::Disconnect(Disconnect::new(
            ReasonCode::NORMAL_DISCONNECTION,
        )));
    }
}
