//! Encoder unit tests: exact bytes for the short forms, what 3.1.1 drops,
//! and what the encoder refuses.

use bytes::{Bytes, BytesMut};

use super::*;
use ProtocolVersion::{V311, V5};

fn hex_of(p: &Packet, v: ProtocolVersion) -> String {
    let mut out = BytesMut::new();
    encode(p, v, &mut out).expect("encodes");
    assert_eq!(out.len(), encoded_len(p, v), "encoded_len for {p:?}");
    hex::encode(&out)
}

fn reason_string(s: &str) -> Properties {
    Properties {
        reason_string: Some(s.into()),
        ..Properties::default()
    }
}

#[test]
fn short_forms_in_v5() {
    assert_eq!(
        hex_of(&Packet::PubAck(PubResponse::success(1)), V5),
        "40020001"
    );
    let rec = PubResponse {
        packet_id: 1,
        reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        properties: Default::default(),
    };
    assert_eq!(hex_of(&Packet::PubRec(rec), V5), "5003000110");
    let rel = PubResponse {
        packet_id: 2,
        reason_code: ReasonCode::SUCCESS,
        properties: reason_string("x").into(),
    };
    assert_eq!(
        hex_of(&Packet::PubRel(rel), V5),
        concat!("62080002", "00041f000178")
    );
    let normal = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    assert_eq!(hex_of(&Packet::Disconnect(normal), V5), "e000");
    let taken = Disconnect::new(ReasonCode::SESSION_TAKEN_OVER);
    assert_eq!(hex_of(&Packet::Disconnect(taken), V5), "e0018e");
    let success = Auth {
        reason_code: ReasonCode::SUCCESS,
        properties: Properties::default(),
    };
    assert_eq!(hex_of(&Packet::Auth(Box::new(success)), V5), "f000");
    // AUTH has no "reason code only" form: the Property Length follows.
    let cont = Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: Properties::default(),
    };
    assert_eq!(hex_of(&Packet::Auth(Box::new(cont)), V5), "f0021800");
}

#[test]
fn v311_drops_v5_fields() {
    let ack = PubResponse {
        packet_id: 7,
        reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        properties: reason_string("x").into(),
    };
    assert_eq!(hex_of(&Packet::PubAck(ack), V311), "40020007");
    let connack = ConnAck {
        session_present: false,
        reason_code: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        properties: reason_string("no"),
    };
    assert_eq!(
        hex_of(&Packet::ConnAck(Box::new(connack)), V311),
        "20020004"
    );
    let suback = SubAck {
        packet_id: 1,
        reason_codes: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::NOT_AUTHORIZED],
        properties: Default::default(),
    };
    assert_eq!(hex_of(&Packet::SubAck(suback), V311), "900400010180");
    let unsuback = UnsubAck {
        packet_id: 1,
        reason_codes: vec![ReasonCode::SUCCESS],
        properties: reason_string("x").into(),
    };
    assert_eq!(hex_of(&Packet::UnsubAck(unsuback), V311), "b0020001");
    let bye = Disconnect {
        reason_code: ReasonCode::DISCONNECT_WITH_WILL,
        properties: reason_string("x").into(),
    };
    assert_eq!(hex_of(&Packet::Disconnect(bye), V311), "e000");
    let mut options = SubscriptionOptions::qos(QoS::AtLeastOnce);
    options.no_local = true;
    options.retain_handling = RetainHandling::DoNotSend;
    let sub = Subscribe {
        packet_id: 3,
        filters: vec![SubscribeFilter {
            filter: "a".into(),
            options,
        }],
        properties: Default::default(),
    };
    assert_eq!(
        hex_of(&Packet::Subscribe(sub.clone()), V311),
        concat!("82060003000161", "01")
    );
    assert_eq!(
        hex_of(&Packet::Subscribe(sub), V5),
        concat!("8207000300000161", "25")
    );
}

#[test]
fn publish_flags_and_multi_byte_remaining_length() {
    let publish = Publish {
        dup: true,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: "t".into(),
        packet_id: 0,
        properties: Default::default(),
        payload: Bytes::from(vec![0u8; 200]),
    };
    let hex = hex_of(&Packet::Publish(publish), V311);
    // DUP is never sent with QoS 0; 203 = 0xCB 0x01 as a Variable Byte Integer.
    assert!(hex.starts_with(concat!("31cb01", "000174")), "{hex}");
    assert_eq!(hex.len(), 2 * (3 + 203));
}

#[test]
fn connect_uses_its_own_version_and_appends() {
    let connect = Connect {
        protocol_version: V311,
        clean_start: true,
        keep_alive: 60,
        client_id: "c".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    let mut out = BytesMut::from(&b"\xc0\x00"[..]);
    encode(&Packet::Connect(Box::new(connect)), V5, &mut out).expect("encodes");
    assert_eq!(
        hex::encode(&out),
        concat!("c000", "100d00044d51545404", "02003c000163")
    );
}

#[test]
fn refusals() {
    let auth = Packet::Auth(Box::new(Auth {
        reason_code: ReasonCode::SUCCESS,
        properties: Properties::default(),
    }));
    let mut out = BytesMut::new();
    assert_eq!(
        encode(&auth, V311, &mut out),
        Err(CodecError::InvalidPacketType(15))
    );
    assert_eq!(encoded_len(&auth, V311), 0);
    assert!(out.is_empty());

    let long = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "a".repeat(65_536),
        packet_id: 0,
        properties: Default::default(),
        payload: Bytes::new(),
    });
    assert!(matches!(
        encode(&long, V5, &mut out),
        Err(CodecError::ValueTooLarge(_))
    ));
    assert_eq!(encoded_len(&long, V5), 0);
    assert!(out.is_empty(), "nothing written on refusal");

    // A property the packet may not carry (Topic Alias on CONNACK).
    let connack = Packet::ConnAck(Box::new(ConnAck {
        session_present: false,
        reason_code: ReasonCode::SUCCESS,
        properties: Properties {
            topic_alias: Some(1),
            ..Properties::default()
        },
    }));
    assert!(matches!(
        encode(&connack, V5, &mut out),
        Err(CodecError::InvalidProperty { id: 0x23, .. })
    ));
    // ...which 3.1.1 simply drops with the rest of the properties.
    assert_eq!(hex_of(&connack, V311), "20020000");

    let sub = |ids: Vec<u32>| {
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![SubscribeFilter {
                filter: "a".into(),
                options: SubscriptionOptions::qos(QoS::AtMostOnce),
            }],
            properties: Properties {
                subscription_identifiers: ids,
                ..Properties::default()
            }
            .into(),
        })
    };
    assert_eq!(
        encode(&sub(vec![1, 2]), V5, &mut out),
        Err(CodecError::DuplicateProperty(0x0b))
    );
    assert!(matches!(
        encode(&sub(vec![268_435_456]), V5, &mut out),
        Err(CodecError::ValueTooLarge(_))
    ));
    assert_eq!(
        hex_of(&sub(vec![268_435_455]), V5),
        concat!("820c0001050bffffff7f000161", "00")
    );
    assert!(out.is_empty());
}

#[test]
fn protected_size_counts_the_longer_remaining_length() {
    // Remaining Length 3 + 110 = 113 fits one varint byte; with LWA's 16 bytes
    // it is 129, which takes two: 1 + 2 + 129, not 1 + 1 + 129.
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: 0,
        properties: CompactProperties::new(),
        payload: Bytes::from(vec![0u8; 110]),
    });
    assert_eq!(encoded_len(&packet, V311), 115);
    assert_eq!(protected_len(&packet, V311, 16), 132);
    assert_eq!(check_max_packet(&packet, V311, 16, Some(131)), Err(132));
    assert_eq!(check_max_packet(&packet, V311, 16, Some(132)), Ok(()));
    assert_eq!(check_max_packet(&packet, V311, 16, None), Ok(()));
    // Only PUBLISH payloads are protected.
    let ping = Packet::PingReq;
    assert_eq!(protected_len(&ping, V311, 16), encoded_len(&ping, V311));
}
