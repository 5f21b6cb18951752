//! Byte-exact vectors: bytes that Debian's mosquitto_pub / mosquitto_sub
//! (2.0) actually sent, captured with a fake broker that recorded the stream,
//! checked field by field against MQTT 3.1.1 / 5.0 and re-encoded to the
//! same bytes.

use bytes::{Bytes, BytesMut};
use mqtt_lwa::codec::*;

use ProtocolVersion::{V311, V5};

fn unhex(s: &str) -> BytesMut {
    BytesMut::from(&hex::decode(s.replace([' ', '\n'], "")).expect("hex")[..])
}

/// Decodes a whole client stream with a server-side decoder.
fn decode_stream(hex: &str) -> (Vec<Packet>, Decoder) {
    let mut buf = unhex(hex);
    let mut dec = Decoder::new(1 << 20);
    let mut out = Vec::new();
    while let Some(p) = dec.decode(&mut buf).expect("valid stream") {
        out.push(p);
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    (out, dec)
}

/// Re-encodes `packets` and compares with the captured bytes.
fn assert_reencodes(packets: &[Packet], v: ProtocolVersion, hex: &str) {
    let mut out = BytesMut::new();
    for p in packets {
        encode(p, v, &mut out).expect("encode");
    }
    assert_eq!(hex::encode(&out), hex.replace([' ', '\n'], ""));
}

/// `mosquitto_pub -V 5 -i cid -t a/b -m hello -q 1 -D publish message-expiry-interval 60
///  -D connect session-expiry-interval 30`
const PUB_V5: &str = "
    10 18 0004 4d515454 05 02 003c
       08 11 0000001e 21 0014
       0003 636964
    32 12 0003 612f62 0001 05 02 0000003c 68656c6c6f
    e0 00";

#[test]
fn mosquitto_pub_v5() {
    let (packets, dec) = decode_stream(PUB_V5);
    assert_eq!(dec.version(), Some(V5));
    let [Packet::Connect(c), Packet::Publish(p), Packet::Disconnect(d)] = &packets[..] else {
        panic!("unexpected packets {packets:?}");
    };
    // CONNECT: protocol "MQTT" level 5, flags 0x02 (clean start), keep alive 60,
    // properties: Session Expiry Interval 30, Receive Maximum 20 (mosquitto's default).
    assert_eq!(c.protocol_version, V5);
    assert!(c.clean_start);
    assert_eq!(c.keep_alive, 60);
    assert_eq!(c.client_id, "cid");
    assert_eq!(c.properties.session_expiry_interval, Some(30));
    assert_eq!(c.properties.receive_maximum, Some(20));
    assert!(c.will.is_none() && c.username.is_none() && c.password.is_none());
    // PUBLISH 0x32: QoS 1, no DUP/RETAIN; packet id 1; Message Expiry Interval 60.
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert!(!p.dup && !p.retain);
    assert_eq!(p.topic, "a/b");
    assert_eq!(p.packet_id, 1);
    assert_eq!(p.properties.message_expiry_interval, Some(60));
    assert_eq!(p.payload, Bytes::from_static(b"hello"));
    // DISCONNECT with Remaining Length 0: Normal disconnection.
    assert_eq!(*d, Disconnect::new(ReasonCode::NORMAL_DISCONNECTION));
    assert_reencodes(&packets, V5, PUB_V5);
}

/// `mosquitto_pub -V 311 -i cid -t a/b -m hello -q 1 -u user -P pw --will-topic w/t
///  --will-payload bye --will-qos 1 --will-retain`
const PUB_V311: &str = "
    10 23 0004 4d515454 04 ee 003c
       0003 636964 0003 772f74 0003 627965 0004 75736572 0002 7077
    32 0c 0003 612f62 0001 68656c6c6f
    e0 00";

#[test]
fn mosquitto_pub_v311_with_will_and_credentials() {
    let (packets, dec) = decode_stream(PUB_V311);
    assert_eq!(dec.version(), Some(V311));
    let [Packet::Connect(c), Packet::Publish(p), Packet::Disconnect(_)] = &packets[..] else {
        panic!("unexpected packets {packets:?}");
    };
    // Flags 0xEE = user name, password, will retain, will QoS 1, will flag, clean session.
    assert_eq!(c.protocol_version, V311);
    assert!(c.clean_start);
    let will = c.will.as_ref().expect("will");
    assert_eq!(will.topic, "w/t");
    assert_eq!(will.payload, Bytes::from_static(b"bye"));
    assert_eq!(will.qos, QoS::AtLeastOnce);
    assert!(will.retain);
    assert_eq!(c.username.as_deref(), Some("user"));
    assert_eq!(c.password, Some(Bytes::from_static(b"pw")));
    assert!(c.properties.is_empty());
    assert_eq!((p.topic.as_str(), p.packet_id), ("a/b", 1));
    assert_reencodes(&packets, V311, PUB_V311);
}

/// `mosquitto_pub -V 5 -i cid -t a/b -m hi -q 2 -r -D publish user-property k v
///  -D publish content-type text/plain`, including the PUBREL of the QoS 2 flow.
const PUB_V5_QOS2: &str = "
    10 13 0004 4d515454 05 02 003c 03 21 0014 0003 636964
    35 1e 0003 612f62 0001 14 26 0001 6b 0001 76 03 000a 746578742f706c61696e 6869
    62 02 0001
    e0 00";

#[test]
fn mosquitto_pub_v5_qos2_user_property() {
    let (packets, _) = decode_stream(PUB_V5_QOS2);
    let [Packet::Connect(_), Packet::Publish(p), Packet::PubRel(rel), Packet::Disconnect(_)] =
        &packets[..]
    else {
        panic!("unexpected packets {packets:?}");
    };
    // 0x35: QoS 2 + RETAIN.
    assert_eq!(p.qos, QoS::ExactlyOnce);
    assert!(p.retain);
    assert_eq!(p.properties.user_properties, vec![("k".into(), "v".into())]);
    assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
    // PUBREL in the two-byte short form: Success, no properties.
    assert_eq!(*rel, PubResponse::success(1));
    // Our encoder orders properties by identifier (0x03 before 0x26), mosquitto
    // by insertion, so compare the PUBLISH semantically and the rest byte-exact.
    let mut out = BytesMut::new();
    encode(&packets[1], V5, &mut out).expect("encode");
    let mut dec = Decoder::with_version(1024, V5);
    assert_eq!(dec.decode(&mut out), Ok(Some(packets[1].clone())));
    assert_reencodes(
        &[packets[2].clone(), packets[3].clone()],
        V5,
        "62 02 0001 e0 00",
    );
}

/// `mosquitto_sub -V 5 -i sid -t 'a/+' -t 'b/#' -q 2 -k 30
///  -D subscribe subscription-identifier 7 -W 1` (ends with DISCONNECT 0x04 on timeout).
const SUB_V5: &str = "
    10 13 0004 4d515454 05 02 001e 03 21 0014 0003 736964
    82 11 0001 02 0b 07 0003 612f2b 02 0003 622f23 02
    e0 01 04";

#[test]
fn mosquitto_sub_v5_subscription_identifier() {
    let (packets, _) = decode_stream(SUB_V5);
    let [Packet::Connect(c), Packet::Subscribe(s), Packet::Disconnect(d)] = &packets[..] else {
        panic!("unexpected packets {packets:?}");
    };
    assert_eq!(c.keep_alive, 30);
    assert_eq!(s.packet_id, 1);
    assert_eq!(s.properties.subscription_identifiers, vec![7]);
    let filters: Vec<_> = s
        .filters
        .iter()
        .map(|f| (f.filter.as_str(), f.options))
        .collect();
    let q2 = SubscriptionOptions::qos(QoS::ExactlyOnce);
    assert_eq!(filters, vec![("a/+", q2), ("b/#", q2)]);
    // One-byte DISCONNECT: reason 0x04 and no properties.
    assert_eq!(d.reason_code, ReasonCode::DISCONNECT_WITH_WILL);
    assert_reencodes(&packets, V5, SUB_V5);
}

/// `mosquitto_sub -V 311 -i sid -t 'a/+' -t '$share/g/b/#' -q 1 -c -W 1`
const SUB_V311: &str = "
    10 0f 0004 4d515454 04 00 003c 0003 736964
    82 17 0001 0003 612f2b 01 000c 2473686172652f672f622f23 01
    e0 00";

#[test]
fn mosquitto_sub_v311_persistent_shared() {
    let (packets, _) = decode_stream(SUB_V311);
    let [Packet::Connect(c), Packet::Subscribe(s), Packet::Disconnect(_)] = &packets[..] else {
        panic!("unexpected packets {packets:?}");
    };
    // -c: Clean Session 0.
    assert!(!c.clean_start);
    assert_eq!(s.filters.len(), 2);
    assert_eq!(s.filters[1].filter, "$share/g/b/#");
    assert_eq!(s.filters[1].options.qos, QoS::AtLeastOnce);
    assert_reencodes(&packets, V311, SUB_V311);
}

/// `mosquitto_pub -V 5 -i wid -t t -m x -q 0 --will-topic w/t --will-payload bye --will-qos 2
///  -D will will-delay-interval 10 -D will content-type ct -u u -P p`
const PUB_V5_WILL: &str = "
    10 2e 0004 4d515454 05 d6 003c 03 21 0014 0003 776964
       0a 18 0000000a 03 0002 6374 0003 772f74 0003 627965 0001 75 0001 70
    30 05 0001 74 00 78
    e0 00";

#[test]
fn mosquitto_pub_v5_will_properties() {
    let (packets, _) = decode_stream(PUB_V5_WILL);
    let [Packet::Connect(c), Packet::Publish(p), Packet::Disconnect(_)] = &packets[..] else {
        panic!("unexpected packets {packets:?}");
    };
    // Flags 0xD6: user name, password, will QoS 2, will flag, clean start.
    let will = c.will.as_ref().expect("will");
    assert_eq!(will.qos, QoS::ExactlyOnce);
    assert!(!will.retain);
    assert_eq!(will.properties.will_delay_interval, Some(10));
    assert_eq!(will.properties.content_type.as_deref(), Some("ct"));
    assert_eq!(c.password, Some(Bytes::from_static(b"p")));
    // QoS 0 PUBLISH: no packet id, empty property block.
    assert_eq!((p.qos, p.packet_id), (QoS::AtMostOnce, 0));
    assert_eq!(p.payload, Bytes::from_static(b"x"));
    // Will properties are written by identifier (0x03 before 0x18), so
    // compare the re-encoded stream after a second decode instead.
    let mut out = BytesMut::new();
    for p in &packets {
        encode(p, V5, &mut out).expect("encode");
    }
    assert_eq!(out.len(), unhex(PUB_V5_WILL).len());
    let mut dec = Decoder::new(1024);
    let mut again = Vec::new();
    while let Some(p) = dec.decode(&mut out).expect("decode") {
        again.push(p);
    }
    assert_eq!(again, packets);
}

/// What Debian's mosquitto 2.0 broker sent to `mosquitto_sub -V 5 -t 'r/#' -q 2 -C 1
/// -D subscribe subscription-identifier 3` with a retained message on `r/1`
/// (recorded by a proxy between the two).
const BROKER_TO_SUB_V5: &str = "
    20 35 00 00 32 22 000a
       12 0029 6175746f2d42313034384343342d333141312d363031462d394438462d453935373430374639373237
       21 0014
    90 04 0001 00 02
    33 12 0003 722f31 0001 02 0b 03 72657461696e6564";

#[test]
fn mosquitto_broker_to_v5_subscriber() {
    let mut buf = unhex(BROKER_TO_SUB_V5);
    let mut dec = Decoder::with_version(1 << 20, V5);
    let mut packets = Vec::new();
    while let Some(p) = dec.decode(&mut buf).expect("valid stream") {
        packets.push(p);
    }
    let [Packet::ConnAck(ack), Packet::SubAck(sub), Packet::Publish(p)] = &packets[..] else {
        panic!("unexpected packets {packets:?}");
    };
    // CONNACK: Topic Alias Maximum 10, an assigned client id, Receive Maximum 20.
    assert!(!ack.session_present);
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(ack.properties.topic_alias_maximum, Some(10));
    assert_eq!(ack.properties.receive_maximum, Some(20));
    assert_eq!(
        ack.properties.assigned_client_identifier.as_deref(),
        Some("auto-B1048CC4-31A1-601F-9D8F-E957407F9727")
    );
    // SUBACK: empty property block, Granted QoS 2.
    assert_eq!(sub.reason_codes, vec![ReasonCode::GRANTED_QOS_2]);
    // The retained PUBLISH (0x33: QoS 1 + RETAIN) carries the subscription identifier.
    assert!(p.retain);
    assert_eq!(p.properties.subscription_identifiers, vec![3]);
    assert_eq!(p.payload, Bytes::from_static(b"retained"));
    // mosquitto orders CONNACK properties 0x22, 0x12, 0x21; we write them by
    // identifier, so SUBACK and PUBLISH compare byte-exact and CONNACK by value.
    assert_reencodes(
        &packets[1..],
        V5,
        "90 04 0001 00 02 33 12 0003 722f31 0001 02 0b 03 72657461696e6564",
    );
    let mut out = BytesMut::new();
    encode(&packets[0], V5, &mut out).expect("encode");
    assert_eq!(out.len(), 0x37);
    assert_eq!(
        Decoder::with_version(1024, V5).decode(&mut out),
        Ok(Some(packets[0].clone()))
    );
}

/// mosquitto 2.0's answers to 3.1.1 clients: CONNACK, SUBACK (QoS 1), and the
/// PUBREC/PUBCOMP of a QoS 2 publish.
#[test]
fn mosquitto_broker_to_v311_clients() {
    let stream = "20 02 00 00 90 03 0001 01 20 02 00 00 50 02 0001 70 02 0001";
    let mut buf = unhex(stream);
    let mut dec = Decoder::with_version(1024, V311);
    let mut packets = Vec::new();
    while let Some(p) = dec.decode(&mut buf).expect("valid stream") {
        packets.push(p);
    }
    assert!(
        matches!(&packets[1], Packet::SubAck(s) if s.reason_codes == vec![ReasonCode::GRANTED_QOS_1])
    );
    assert_eq!(packets[3], Packet::PubRec(PubResponse::success(1)));
    assert_eq!(packets[4], Packet::PubComp(PubResponse::success(1)));
    assert_reencodes(&packets, V311, stream);
}

/// `mosquitto_pub -V mqttv31 -i cid -t a -m x`: MQTT 3.1 ("MQIsdp", level 3).
/// The server-side decoder refuses it with Unsupported Protocol Version, which
/// the broker answers with the 3.1.1 CONNACK return code 0x01.
#[test]
fn mosquitto_pub_mqtt31_is_unsupported_protocol_version() {
    let mut buf = unhex("10 11 0006 4d5149736470 03 02 003c 0003 636964 30 04 0001 61 78 e0 00");
    let err = Decoder::new(1024).decode(&mut buf).expect_err("MQTT 3.1");
    assert_eq!(err, CodecError::UnsupportedProtocolVersion(3));
    assert_eq!(err.reason_code(), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(err.reason_code().to_v311_connack(), 0x01);
}
