//! Decoder unit tests: one per packet shape and one per malformed case, with
//! hand-written bytes (hex, spaces for readability) and the error each must give.

use bytes::{Bytes, BytesMut};

use super::*;
use ProtocolVersion::{V311, V5};

fn buf(hex: &str) -> BytesMut {
    let clean: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    BytesMut::from(&hex::decode(clean).expect("test hex")[..])
}

fn decode_v(v: ProtocolVersion, hex: &str) -> Result<Option<Packet>, CodecError> {
    Decoder::with_version(1 << 16, v).decode(&mut buf(hex))
}

fn ok(v: ProtocolVersion, hex: &str) -> Packet {
    match decode_v(v, hex) {
        Ok(Some(p)) => p,
        other => panic!("{hex}: {other:?}"),
    }
}

fn err(v: ProtocolVersion, hex: &str) -> CodecError {
    match decode_v(v, hex) {
        Err(e) => e,
        other => panic!("{hex}: expected an error, got {other:?}"),
    }
}

/// A 5.0 CONNECT for client id "c" with the given flags, property block and payload tail.
fn connect5(flags: &str, props: &str, tail: &str) -> String {
    let body = format!("0004 4d515454 05 {flags} 003c {props} 0001 63 {tail}");
    let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    format!("10 {:02x} {clean}", clean.len() / 2)
}

/// A 3.1.1 CONNECT for client id "c".
fn connect311(flags: &str, tail: &str) -> String {
    let body = format!("0004 4d515454 04 {flags} 003c 0001 63 {tail}");
    let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    format!("10 {:02x} {clean}", clean.len() / 2)
}

#[test]
fn server_side_requires_connect_first() {
    let mut dec = Decoder::new(1024);
    // Judged on the first byte alone.
    assert_eq!(dec.decode(&mut buf("30")), Err(CodecError::ExpectedConnect));
    assert_eq!(
        Decoder::new(1024).decode(&mut buf("f0 00")),
        Err(CodecError::ExpectedConnect)
    );
    let mut dec = Decoder::new(1024);
    let mut b = buf(&format!(
        "{} c0 00 {}",
        connect5("02", "00", ""),
        connect311("02", "")
    ));
    assert!(matches!(dec.decode(&mut b), Ok(Some(Packet::Connect(_)))));
    assert_eq!(dec.version(), Some(V5));
    assert_eq!(dec.decode(&mut b), Ok(Some(Packet::PingReq)));
    // A second CONNECT still decodes (the broker answers it with a Protocol
    // Error) and does not change the version in force.
    match dec.decode(&mut b) {
        Ok(Some(Packet::Connect(c))) => assert_eq!(c.protocol_version, V311),
        other => panic!("{other:?}"),
    }
    assert_eq!(dec.version(), Some(V5));
    assert_eq!(dec.decode(&mut b), Ok(None));
}

#[test]
fn version_known_even_when_connect_is_malformed() {
    // A 5.0 CONNECT with a reserved flag set: the error comes back, and the
    // decoder already knows to answer in 5.0.
    let mut dec = Decoder::new(1024);
    assert!(dec.decode(&mut buf(&connect5("03", "00", ""))).is_err());
    assert_eq!(dec.version(), Some(V5));
    let mut dec = Decoder::new(1024);
    assert!(dec.decode(&mut buf(&connect311("c0", ""))).is_err());
    assert_eq!(dec.version(), Some(V311));
}

#[test]
fn protocol_name_and_level() {
    let mut dec = Decoder::new(1024);
    // MQTT 3.1: "MQIsdp", level 3.
    let mqtt31 = "10 11 0006 4d5149736470 03 02 003c 0003 636964";
    assert_eq!(
        dec.decode(&mut buf(mqtt31)),
        Err(CodecError::UnsupportedProtocolVersion(3))
    );
    assert_eq!(dec.version(), None);
    let level6 = "10 0d 0004 4d515454 06 02 003c 0001 63";
    assert_eq!(
        Decoder::new(1024).decode(&mut buf(level6)),
        Err(CodecError::UnsupportedProtocolVersion(6))
    );
    let wrong_name = "10 0d 0004 4d515453 04 02 003c 0001 63";
    assert_eq!(
        Decoder::new(1024).decode(&mut buf(wrong_name)),
        Err(CodecError::InvalidProtocolName)
    );
    assert_eq!(
        CodecError::UnsupportedProtocolVersion(3).reason_code(),
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
    );
}

#[test]
fn connect_flags() {
    // Reserved bit 0.
    assert!(matches!(
        err(V5, &connect5("03", "00", "")),
        CodecError::Malformed(_)
    ));
    // Will QoS / Will Retain without the Will Flag.
    assert!(matches!(
        err(V5, &connect5("0a", "00", "")),
        CodecError::Malformed(_)
    ));
    assert!(matches!(
        err(V311, &connect311("22", "")),
        CodecError::Malformed(_)
    ));
    // Will QoS 3.
    assert_eq!(
        err(V5, &connect5("1e", "00", "00 0001 74 0000")),
        CodecError::InvalidQoS
    );
    // Password without user name: malformed in 3.1.1, allowed in 5.0.
    assert!(matches!(
        err(V311, &connect311("42", "0002 7077")),
        CodecError::Malformed(_)
    ));
    match ok(V5, &connect5("42", "00", "0002 7077")) {
        Packet::Connect(c) => {
            assert_eq!(c.password, Some(Bytes::from_static(b"pw")));
            assert_eq!(c.username, None);
        }
        other => panic!("{other:?}"),
    }
    // Will topic with a wildcard.
    assert_eq!(
        err(V5, &connect5("06", "00", "00 0003 612f23 0000")),
        CodecError::InvalidTopicName
    );
    // Trailing byte after the password, and a payload cut short.
    assert_eq!(
        err(V311, &connect311("c2", "0001 75 0001 70 ff")),
        CodecError::TrailingBytes(1)
    );
    assert!(matches!(
        err(V311, &connect311("c2", "0001 75")),
        CodecError::Truncated(_)
    ));
}

#[test]
fn connect_properties() {
    // Topic Alias (0x23) is not a CONNECT property: malformed (5.0 2.2.2.2).
    let e = err(V5, &connect5("02", "03 23 0001", ""));
    assert_eq!(
        e,
        CodecError::InvalidProperty {
            packet: "CONNECT",
            id: 0x23
        }
    );
    assert_eq!(e.reason_code(), ReasonCode::MALFORMED_PACKET);
    // Unknown identifier.
    assert!(matches!(
        err(V5, &connect5("02", "02 7f 00", "")),
        CodecError::InvalidProperty { id: 0x7f, .. }
    ));
    // Session Expiry Interval twice: Protocol Error.
    let e = err(V5, &connect5("02", "0a 11 00000001 11 00000002", ""));
    assert_eq!(e, CodecError::DuplicateProperty(0x11));
    assert_eq!(e.reason_code(), ReasonCode::PROTOCOL_ERROR);
    // User Property may repeat, order kept.
    match ok(
        V5,
        &connect5("02", "0e 26 0001 61 0001 62 26 0001 61 0001 63", ""),
    ) {
        Packet::Connect(c) => assert_eq!(
            c.properties.user_properties,
            vec![("a".into(), "b".into()), ("a".into(), "c".into())]
        ),
        other => panic!("{other:?}"),
    }
    // Values: Receive Maximum 0, Maximum Packet Size 0, Request Problem Information 2.
    for (props, pid) in [
        ("03 21 0000", 0x21),
        ("05 27 00000000", 0x27),
        ("02 17 02", 0x17),
    ] {
        assert_eq!(
            err(V5, &connect5("02", props, "")),
            CodecError::InvalidPropertyValue(pid)
        );
    }
    // Authentication Data without Authentication Method.
    assert!(matches!(
        err(V5, &connect5("02", "04 16 0001 00", "")),
        CodecError::Protocol(_)
    ));
    // Property length longer than the packet; non-minimal property length.
    assert!(matches!(
        err(V5, &connect5("02", "09 11 00000001", "")),
        CodecError::Truncated(_) | CodecError::TrailingBytes(_)
    ));
    assert_eq!(
        err(V5, &connect5("02", "80 00", "")),
        CodecError::MalformedVariableInt
    );
    // Will Delay Interval belongs to the will properties, not CONNECT's.
    assert!(matches!(
        err(V5, &connect5("02", "05 18 00000001", "")),
        CodecError::InvalidProperty { .. }
    ));
    match ok(V5, &connect5("06", "00", "05 18 0000000a 0001 74 0000")) {
        Packet::Connect(c) => {
            let will = c.will.expect("will");
            assert_eq!(will.properties.will_delay_interval, Some(10));
            assert_eq!(will.topic, "t");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fixed_header_errors() {
    assert_eq!(err(V5, "00 00"), CodecError::InvalidPacketType(0));
    assert_eq!(err(V311, "f0 00"), CodecError::InvalidPacketType(15));
    assert!(matches!(
        err(V5, "60 02 0001"),
        CodecError::InvalidFlags { .. }
    ));
    assert!(matches!(
        err(V5, "80 06 0001 00 0001 61 00"),
        CodecError::InvalidFlags { .. }
    ));
    assert!(matches!(
        err(V311, "c1 00"),
        CodecError::InvalidFlags { .. }
    ));
    assert!(matches!(
        err(V311, "e2 00"),
        CodecError::InvalidFlags { .. }
    ));
    assert_eq!(err(V5, "36"), CodecError::InvalidQoS);
    assert!(matches!(err(V5, "38"), CodecError::InvalidFlags { .. }));
    assert_eq!(
        err(V5, "30 ff ff ff ff 01"),
        CodecError::MalformedRemainingLength
    );
    assert_eq!(err(V5, "c0 80 00"), CodecError::MalformedRemainingLength);
    for e in [
        CodecError::InvalidFlags {
            packet_type: 6,
            flags: 0,
        },
        CodecError::MalformedRemainingLength,
        CodecError::InvalidQoS,
    ] {
        assert_eq!(e.reason_code(), ReasonCode::MALFORMED_PACKET);
    }
}

#[test]
fn packet_too_large_from_the_header_alone() {
    let mut dec = Decoder::with_version(100, V5);
    // Remaining length 1000: refused with only the fixed header buffered.
    let e = dec.decode(&mut buf("30 e8 07")).expect_err("too large");
    assert_eq!(
        e,
        CodecError::PacketTooLarge {
            size: 1003,
            max: 100
        }
    );
    assert_eq!(e.reason_code(), ReasonCode::PACKET_TOO_LARGE);
    // Exactly at the limit is fine: 2 + 98 = 100 bytes.
    let mut b = buf(&format!("30 62 0001 61 {}", "00".repeat(95)));
    assert!(matches!(
        Decoder::with_version(100, V311).decode(&mut b),
        Ok(Some(Packet::Publish(_)))
    ));
}

#[test]
fn partial_input_consumes_nothing_and_packets_come_one_per_call() {
    let mut dec = Decoder::with_version(1024, V5);
    let whole = buf("30 06 0001 61 00 6869 c0 00 d0 00");
    for cut in 0..8 {
        let mut b = BytesMut::from(&whole[..cut]);
        assert_eq!(dec.decode(&mut b), Ok(None), "cut {cut}");
        assert_eq!(b.len(), cut);
    }
    let mut b = whole.clone();
    assert!(matches!(dec.decode(&mut b), Ok(Some(Packet::Publish(_)))));
    assert_eq!(dec.decode(&mut b), Ok(Some(Packet::PingReq)));
    assert_eq!(dec.decode(&mut b), Ok(Some(Packet::PingResp)));
    assert_eq!(dec.decode(&mut b), Ok(None));
}

#[test]
fn publish() {
    match ok(V5, "3b 0d 0003 612f62 1234 03 23 0005 6869") {
        Packet::Publish(p) => {
            assert!(p.dup && p.retain);
            assert_eq!(p.qos, QoS::AtLeastOnce);
            assert_eq!((p.topic.as_str(), p.packet_id), ("a/b", 0x1234));
            assert_eq!(p.properties.topic_alias, Some(5));
            assert_eq!(p.payload, Bytes::from_static(b"hi"));
        }
        other => panic!("{other:?}"),
    }
    // 3.1.1: no property block; everything after the topic is payload.
    match ok(V311, "30 05 0001 61 0068") {
        Packet::Publish(p) => assert_eq!(p.payload, Bytes::from_static(b"\x00h")),
        other => panic!("{other:?}"),
    }
    // Packet id 0 with QoS 1.
    assert!(matches!(
        err(V5, "32 06 0001 61 0000 00"),
        CodecError::Protocol(_)
    ));
    // Wildcards in the topic name.
    let e = err(V5, "30 06 0003 612f2b 00");
    assert_eq!(e, CodecError::InvalidTopicName);
    assert_eq!(e.reason_code(), ReasonCode::TOPIC_NAME_INVALID);
    assert_eq!(err(V311, "30 03 0001 23"), CodecError::InvalidTopicName);
    // Empty topic: only with a Topic Alias, and only in 5.0.
    assert_eq!(err(V5, "30 03 0000 00"), CodecError::InvalidTopicName);
    assert_eq!(err(V311, "30 02 0000"), CodecError::InvalidTopicName);
    match ok(V5, "30 06 0000 03 23 0001") {
        Packet::Publish(p) => assert_eq!(p.topic, ""),
        other => panic!("{other:?}"),
    }
    // Topic Alias 0, Payload Format Indicator 2, Response Topic with a wildcard.
    assert_eq!(
        err(V5, "30 07 0001 61 03 23 0000"),
        CodecError::InvalidPropertyValue(0x23)
    );
    assert_eq!(
        err(V5, "30 06 0001 61 02 01 02"),
        CodecError::InvalidPropertyValue(0x01)
    );
    assert_eq!(
        err(V5, "30 09 0001 61 05 08 0002 612b"),
        CodecError::InvalidPropertyValue(0x08)
    );
    // Several Subscription Identifiers are fine on PUBLISH; 0 is not.
    match ok(V5, "30 09 0001 61 05 0b 01 0b 80 01") {
        Packet::Publish(p) => assert_eq!(p.properties.subscription_identifiers, vec![1, 128]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err(V5, "30 06 0001 61 02 0b 00"),
        CodecError::InvalidPropertyValue(0x0b)
    );
}

#[test]
fn utf8_rules() {
    // U+0000, an encoded surrogate (U+D800), an overlong '/', a lone continuation byte.
    for topic in ["0001 00", "0003 eda080", "0002 c0af", "0001 80"] {
        let body = format!("{topic} 00");
        let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let hex = format!("30 {:02x} {clean}", clean.len() / 2);
        let e = err(V5, &hex);
        assert_eq!(e, CodecError::InvalidUtf8, "{topic}");
        assert_eq!(e.reason_code(), ReasonCode::MALFORMED_PACKET);
    }
    // Non-ASCII is fine: "é/😀".
    match ok(V5, "30 0a 0007 c3a92ff09f9880 00") {
        Packet::Publish(p) => assert_eq!(p.topic, "é/😀"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn publish_acknowledgements() {
    // 5.0 short forms: 2 bytes (Success), 3 bytes (reason only), full.
    let expect = |code: u8, props: Properties| PubResponse {
        packet_id: 1,
        reason_code: ReasonCode(code),
        properties: props.into(),
    };
    assert_eq!(
        ok(V5, "40 02 0001"),
        Packet::PubAck(expect(0, Properties::default()))
    );
    assert_eq!(
        ok(V5, "50 03 0001 10"),
        Packet::PubRec(expect(0x10, Properties::default()))
    );
    let reason = Properties {
        reason_string: Some("x".into()),
        ..Properties::default()
    };
    assert_eq!(
        ok(V5, "62 08 0001 92 04 1f 0001 78"),
        Packet::PubRel(expect(0x92, reason))
    );
    assert_eq!(
        ok(V5, "70 04 0001 00 00"),
        Packet::PubComp(expect(0, Properties::default()))
    );
    // Reason codes valid for one ack only.
    assert_eq!(
        err(V5, "40 03 0001 92"),
        CodecError::InvalidReasonCode(0x92)
    );
    assert_eq!(
        err(V5, "62 03 0001 10"),
        CodecError::InvalidReasonCode(0x10)
    );
    // Packet id 0; 3.1.1 takes exactly two bytes.
    assert!(matches!(err(V311, "40 02 0000"), CodecError::Protocol(_)));
    assert_eq!(err(V311, "40 03 0001 00"), CodecError::TrailingBytes(1));
    assert!(matches!(err(V311, "40 01 00"), CodecError::Truncated(_)));
    // Properties not allowed on acks.
    assert!(matches!(
        err(V5, "40 09 0001 00 05 11 00000001"),
        CodecError::InvalidProperty { .. }
    ));
}

#[test]
fn subscribe() {
    match ok(V5, "82 11 0001 02 0b 05 0003 612f2b 2e 0003 622f23 00") {
        Packet::Subscribe(s) => {
            assert_eq!(s.properties.subscription_identifiers, vec![5]);
            let o = s.filters[0].options;
            // 0x2E: QoS 2, No Local, Retain As Published, Retain Handling 2.
            assert_eq!(o.qos, QoS::ExactlyOnce);
            assert!(o.no_local && o.retain_as_published);
            assert_eq!(o.retain_handling, RetainHandling::DoNotSend);
            assert_eq!(s.filters[1].filter, "b/#");
        }
        other => panic!("{other:?}"),
    }
    // No filter at all.
    assert!(matches!(err(V5, "82 03 0001 00"), CodecError::Protocol(_)));
    assert!(matches!(err(V311, "82 02 0001"), CodecError::Protocol(_)));
    // Malformed filter.
    let e = err(V311, "82 0a 0001 0005 612f232f62 00");
    assert_eq!(e, CodecError::InvalidTopicFilter);
    assert_eq!(e.reason_code(), ReasonCode::TOPIC_FILTER_INVALID);
    assert_eq!(
        err(V311, "82 05 0001 0000 00"),
        CodecError::InvalidTopicFilter
    );
    // Reserved option bits: 3.1.1 uses only the QoS bits, 5.0 reserves bits 6-7.
    assert!(matches!(
        err(V311, "82 06 0001 0001 61 04"),
        CodecError::Malformed(_)
    ));
    assert!(matches!(
        err(V5, "82 07 0001 00 0001 61 40"),
        CodecError::Malformed(_)
    ));
    // QoS 3, Retain Handling 3, two Subscription Identifiers.
    assert_eq!(err(V5, "82 07 0001 00 0001 61 03"), CodecError::InvalidQoS);
    assert!(matches!(
        err(V5, "82 07 0001 00 0001 61 30"),
        CodecError::Protocol(_)
    ));
    assert_eq!(
        err(V5, "82 0b 0001 04 0b 01 0b 02 0001 61 00"),
        CodecError::DuplicateProperty(0x0b)
    );
    // No Local on a shared subscription.
    assert!(matches!(
        err(V5, "82 10 0001 00 000a 2473686172652f672f61 04"),
        CodecError::Protocol(_)
    ));
    // Truncated options byte.
    assert!(matches!(
        err(V5, "82 06 0001 00 0001 61"),
        CodecError::Truncated(_)
    ));
}

#[test]
fn suback_unsubscribe_unsuback() {
    match ok(V311, "90 05 0001 00 02 80") {
        Packet::SubAck(s) => assert_eq!(
            s.reason_codes,
            vec![ReasonCode(0), ReasonCode(2), ReasonCode(0x80)]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err(V311, "90 03 0001 87"),
        CodecError::InvalidReasonCode(0x87)
    );
    assert!(matches!(ok(V5, "90 04 0001 00 a2"), Packet::SubAck(_)));
    assert_eq!(
        err(V5, "90 04 0001 00 03"),
        CodecError::InvalidReasonCode(0x03)
    );
    assert!(matches!(err(V5, "90 03 0001 00"), CodecError::Protocol(_)));

    match ok(V5, "a2 09 0001 00 0001 61 0001 62") {
        Packet::Unsubscribe(u) => assert_eq!(u.filters, vec!["a", "b"]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(err(V5, "a2 03 0001 00"), CodecError::Protocol(_)));
    assert!(matches!(
        err(V311, "a0 05 0001 0001 61"),
        CodecError::InvalidFlags { .. }
    ));
    assert_eq!(
        err(V311, "a2 05 0001 0002 2b"),
        CodecError::Truncated("topic filter")
    );
    assert_eq!(
        err(V311, "a2 06 0001 0002 2b2b"),
        CodecError::InvalidTopicFilter
    );

    match ok(V311, "b0 02 0001") {
        Packet::UnsubAck(u) => assert!(u.reason_codes.is_empty()),
        other => panic!("{other:?}"),
    }
    match ok(V5, "b0 05 0001 00 00 11") {
        Packet::UnsubAck(u) => assert_eq!(u.reason_codes, vec![ReasonCode(0), ReasonCode(0x11)]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(err(V5, "b0 03 0001 00"), CodecError::Protocol(_)));
    assert_eq!(
        err(V5, "b0 04 0001 00 10"),
        CodecError::InvalidReasonCode(0x10)
    );
}

#[test]
fn connack() {
    match ok(V311, "20 02 01 00") {
        Packet::ConnAck(c) => {
            assert!(c.session_present);
            assert_eq!(c.reason_code, ReasonCode::SUCCESS);
        }
        other => panic!("{other:?}"),
    }
    // 3.1.1 return codes map onto 5.0 reason codes.
    for (code, reason) in [(1, 0x84), (2, 0x85), (3, 0x88), (4, 0x86), (5, 0x87)] {
        match ok(V311, &format!("20 02 00 {code:02x}")) {
            Packet::ConnAck(c) => assert_eq!(c.reason_code, ReasonCode(reason)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(err(V311, "20 02 00 06"), CodecError::InvalidReasonCode(6));
    assert!(matches!(err(V311, "20 02 02 00"), CodecError::Malformed(_)));
    assert!(matches!(err(V311, "20 02 01 05"), CodecError::Protocol(_)));
    match ok(V5, "20 0d 00 00 0a 24 01 12 0003 616263 25 00") {
        Packet::ConnAck(c) => {
            assert_eq!(c.properties.maximum_qos, Some(1));
            assert_eq!(
                c.properties.assigned_client_identifier.as_deref(),
                Some("abc")
            );
            assert_eq!(c.properties.retain_available, Some(0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err(V5, "20 05 00 00 02 24 02"),
        CodecError::InvalidPropertyValue(0x24)
    );
    assert_eq!(err(V5, "20 03 00 04 00"), CodecError::InvalidReasonCode(4));
    assert!(matches!(err(V5, "20 02 00 00"), CodecError::Truncated(_)));
}

#[test]
fn disconnect_ping_and_auth() {
    assert_eq!(
        ok(V5, "e0 00"),
        Packet::Disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION))
    );
    assert_eq!(
        ok(V5, "e0 01 8e"),
        Packet::Disconnect(Disconnect::new(ReasonCode::SESSION_TAKEN_OVER))
    );
    match ok(V5, "e0 07 00 05 11 0000003c") {
        Packet::Disconnect(d) => assert_eq!(d.properties.session_expiry_interval, Some(60)),
        other => panic!("{other:?}"),
    }
    assert_eq!(err(V5, "e0 01 05"), CodecError::InvalidReasonCode(5));
    assert_eq!(err(V311, "e0 01 00"), CodecError::TrailingBytes(1));
    assert_eq!(err(V311, "c0 01 00"), CodecError::TrailingBytes(1));
    assert_eq!(err(V5, "d0 01 00"), CodecError::TrailingBytes(1));

    let auth = ok(V5, "f0 0c 19 0a 15 0003 4c5741 16 0001 aa");
    match auth {
        Packet::Auth(a) => {
            assert_eq!(a.reason_code, ReasonCode::RE_AUTHENTICATE);
            assert_eq!(a.properties.authentication_method.as_deref(), Some("LWA"));
            assert_eq!(
                a.properties.authentication_data,
                Some(Bytes::from_static(&[0xaa]))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ok(V5, "f0 00"),
        Packet::Auth(Box::new(Auth {
            reason_code: ReasonCode::SUCCESS,
            properties: Properties::default()
        }))
    );
    assert_eq!(err(V5, "f0 02 01 00"), CodecError::InvalidReasonCode(1));
    assert!(matches!(
        err(V5, "f0 05 18 03 23 0001"),
        CodecError::InvalidProperty { .. }
    ));
}
