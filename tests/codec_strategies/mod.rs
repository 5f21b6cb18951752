//! proptest strategies for valid MQTT packets of either version.
//!
//! The property table here is restated from MQTT 5.0 section 2.2.2.2
//! independently of the codec's own table, so a mistake in one shows up as a
//! round-trip failure rather than being copied into the test.

#![allow(dead_code)]

use bytes::Bytes;
use mqtt_lwa::codec::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use ProtocolVersion::{V311, V5};

/// Where a property block sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResponse,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// Any MQTT string: printable characters (no U+0000), some non-ASCII.
pub fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _/é€😀-]{0,8}"
}

/// Binary data.
pub fn binary(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// A valid topic name: one to four levels, no wildcards, not empty.
pub fn topic_name() -> impl Strategy<Value = String> {
    vec("[a-zA-Z0-9 _é$-]{0,4}", 1..4)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("topic names are not empty", |t| !t.is_empty())
}

/// A valid topic filter, sometimes shared.
pub fn topic_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("+".to_string()), "[a-z0-9$]{0,3}"];
    (vec(level, 1..4), any::<bool>(), option::of("[a-z0-9]{1,3}")).prop_map(
        |(mut levels, hash, share)| {
            if hash {
                levels.push("#".into());
            }
            let mut filter = levels.join("/");
            if filter.is_empty() {
                filter.push('e');
            }
            match share {
                Some(group) => format!("$share/{group}/{filter}"),
                None => filter,
            }
        },
    )
}

fn bool01() -> impl Strategy<Value = Option<u8>> {
    option::of(0u8..=1)
}

/// Arbitrary valid properties, then cut down to what `ctx` may carry.
pub fn properties(ctx: Ctx) -> impl Strategy<Value = Properties> {
    let messages = (
        bool01(),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(topic_name()),
        option::of(binary(8)),
        vec(1u32..=268_435_455, 0..3),
        option::of(any::<u32>()),
    );
    let session = (
        option::of(text()),
        option::of(any::<u16>()),
        option::of(text()),
        option::of(binary(8)),
        bool01(),
        option::of(any::<u32>()),
        bool01(),
        option::of(text()),
        option::of(text()),
        option::of(text()),
    );
    let limits = (
        option::of(1u16..),
        option::of(any::<u16>()),
        option::of(1u16..),
        bool01(),
        bool01(),
        vec((text(), text()), 0..3),
        option::of(1u32..),
        bool01(),
        bool01(),
        bool01(),
    );
    (messages, session, limits).prop_map(move |(m, s, l)| {
        let mut p = Properties {
            payload_format_indicator: m.0,
            message_expiry_interval: m.1,
            content_type: m.2,
            response_topic: m.3,
            correlation_data: m.4,
            subscription_identifiers: m.5,
            session_expiry_interval: m.6,
            assigned_client_identifier: s.0,
            server_keep_alive: s.1,
            authentication_method: s.2,
            authentication_data: s.3,
            request_problem_information: s.4,
            will_delay_interval: s.5,
            request_response_information: s.6,
            response_information: s.7,
            server_reference: s.8,
            reason_string: s.9,
            receive_maximum: l.0,
            topic_alias_maximum: l.1,
            topic_alias: l.2,
            maximum_qos: l.3,
            retain_available: l.4,
            user_properties: l.5,
            maximum_packet_size: l.6,
            wildcard_subscription_available: l.7,
            subscription_identifier_available: l.8,
            shared_subscription_available: l.9,
        };
        restrict(&mut p, ctx);
        p
    })
}

/// Clears every property `ctx` may not carry (MQTT 5.0 section 2.2.2.2).
fn restrict(p: &mut Properties, ctx: Ctx) {
    use Ctx::*;
    let message = matches!(ctx, Publish | Will);
    if !message {
        p.payload_format_indicator = None;
        p.message_expiry_interval = None;
        p.content_type = None;
        p.response_topic = None;
        p.correlation_data = None;
    }
    match ctx {
        Publish => {}
        Subscribe => p.subscription_identifiers.truncate(1),
        _ => p.subscription_identifiers.clear(),
    }
    if !matches!(ctx, Connect | ConnAck | Disconnect) {
        p.session_expiry_interval = None;
    }
    if ctx != ConnAck {
        p.assigned_client_identifier = None;
        p.server_keep_alive = None;
        p.response_information = None;
        p.maximum_qos = None;
        p.retain_available = None;
        p.wildcard_subscription_available = None;
        p.subscription_identifier_available = None;
        p.shared_subscription_available = None;
    }
    if !matches!(ctx, Connect | ConnAck | Auth) || p.authentication_method.is_none() {
        p.authentication_method = None;
        p.authentication_data = None;
    }
    if ctx != Connect {
        p.request_problem_information = None;
        p.request_response_information = None;
    }
    if ctx != Will {
        p.will_delay_interval = None;
    }
    if !matches!(ctx, ConnAck | Disconnect) {
        p.server_reference = None;
    }
    if matches!(ctx, Connect | Will | Publish | Subscribe | Unsubscribe) {
        p.reason_string = None;
    }
    if !matches!(ctx, Connect | ConnAck) {
        p.receive_maximum = None;
        p.topic_alias_maximum = None;
        p.maximum_packet_size = None;
    }
    if ctx != Publish {
        p.topic_alias = None;
    }
}

/// Properties for `v`: always empty for 3.1.1.
fn props_for(v: ProtocolVersion, ctx: Ctx) -> BoxedStrategy<Properties> {
    match v {
        V311 => Just(Properties::default()).boxed(),
        V5 => properties(ctx).boxed(),
    }
}

pub fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn reason_from(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    proptest::sample::select(codes).prop_map(ReasonCode)
}

/// Reason codes 5.0 allows per packet (section 2.4 and each packet's section).
pub const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
pub const V311_CONNACK_CODES: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
pub const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
pub const PUBREL_CODES: &[u8] = &[0x00, 0x92];
pub const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
pub const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
pub const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
pub const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

pub fn connect(v: ProtocolVersion) -> impl Strategy<Value = Connect> {
    let will = option::of((
        topic_name(),
        binary(16),
        qos(),
        any::<bool>(),
        props_for(v, Ctx::Will),
    ));
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        will,
        option::of(text()),
        option::of(binary(8)),
        props_for(v, Ctx::Connect),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // 3.1.1 forbids a password without a user name (MQTT-3.1.2-22).
                let password = if v == V311 && username.is_none() {
                    None
                } else {
                    password
                };
                Connect {
                    protocol_version: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will: will.map(|(topic, payload, qos, retain, properties)| LastWill {
                        topic,
                        payload,
                        qos,
                        retain,
                        properties,
                    }),
                    username,
                    password,
                    properties,
                }
            },
        )
}

pub fn connack(v: ProtocolVersion) -> impl Strategy<Value = ConnAck> {
    let codes = match v {
        V311 => V311_CONNACK_CODES,
        V5 => CONNACK_CODES,
    };
    (
        any::<bool>(),
        reason_from(codes),
        props_for(v, Ctx::ConnAck),
    )
        .prop_map(|(session_present, reason_code, properties)| ConnAck {
            // A refused CONNACK never has Session Present (MQTT-3.2.2-6).
            session_present: session_present && !reason_code.is_error(),
            reason_code,
            properties,
        })
}

pub fn publish(v: ProtocolVersion) -> impl Strategy<Value = Publish> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        1u16..,
        props_for(v, Ctx::Publish),
        binary(64),
        any::<bool>(),
    )
        .prop_map(
            move |(dup, qos, retain, topic, id, properties, payload, alias_only)| {
                // With a Topic Alias, 5.0 lets the topic be empty.
                let topic = if alias_only && properties.topic_alias.is_some() {
                    String::new()
                } else {
                    topic
                };
                Publish {
                    dup: dup && qos != QoS::AtMostOnce,
                    qos,
                    retain,
                    topic,
                    packet_id: if qos == QoS::AtMostOnce { 0 } else { id },
                    properties: properties.into(),
                    payload,
                }
            },
        )
}

pub fn pub_response(v: ProtocolVersion, codes: &'static [u8]) -> BoxedStrategy<PubResponse> {
    match v {
        V311 => (1u16..).prop_map(PubResponse::success).boxed(),
        V5 => (1u16.., reason_from(codes), properties(Ctx::PubResponse))
            .prop_map(|(packet_id, reason_code, properties)| PubResponse {
                packet_id,
                reason_code,
                properties: properties.into(),
            })
            .boxed(),
    }
}

pub fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Subscribe> {
    let filter = (topic_filter(), qos(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(
        move |(filter, qos, no_local, rap, rh)| {
            let mut options = SubscriptionOptions::qos(qos);
            if v == V5 {
                // No Local on a shared subscription is a Protocol Error (MQTT-3.8.3-4).
                options.no_local = no_local && !filter.starts_with("$share/");
                options.retain_as_published = rap;
                options.retain_handling = match rh {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendIfNew,
                    _ => RetainHandling::DoNotSend,
                };
            }
            SubscribeFilter { filter, options }
        },
    );
    (1u16.., vec(filter, 1..4), props_for(v, Ctx::Subscribe)).prop_map(
        |(packet_id, filters, properties)| Subscribe {
            packet_id,
            filters,
            properties: properties.into(),
        },
    )
}

pub fn suback(v: ProtocolVersion) -> impl Strategy<Value = SubAck> {
    let codes: &'static [u8] = match v {
        V311 => &[0x00, 0x01, 0x02, 0x80],
        V5 => SUBACK_CODES,
    };
    (
        1u16..,
        vec(reason_from(codes), 1..5),
        props_for(v, Ctx::SubAck),
    )
        .prop_map(|(packet_id, reason_codes, properties)| SubAck {
            packet_id,
            reason_codes,
            properties: properties.into(),
        })
}

pub fn unsubscribe(v: ProtocolVersion) -> impl Strategy<Value = Unsubscribe> {
    (
        1u16..,
        vec(topic_filter(), 1..4),
        props_for(v, Ctx::Unsubscribe),
    )
        .prop_map(|(packet_id, filters, properties)| Unsubscribe {
            packet_id,
            filters,
            properties: properties.into(),
        })
}

pub fn unsuback(v: ProtocolVersion) -> BoxedStrategy<UnsubAck> {
    match v {
        V311 => (1u16..)
            .prop_map(|packet_id| UnsubAck {
                packet_id,
                reason_codes: Vec::new(),
                properties: Default::default(),
            })
            .boxed(),
        V5 => (
            1u16..,
            vec(reason_from(UNSUBACK_CODES), 1..5),
            properties(Ctx::UnsubAck),
        )
            .prop_map(|(packet_id, reason_codes, properties)| UnsubAck {
                packet_id,
                reason_codes,
                properties: properties.into(),
            })
            .boxed(),
    }
}

pub fn disconnect(v: ProtocolVersion) -> BoxedStrategy<Disconnect> {
    match v {
        V311 => Just(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION)).boxed(),
        V5 => (reason_from(DISCONNECT_CODES), properties(Ctx::Disconnect))
            .prop_map(|(reason_code, properties)| Disconnect {
                reason_code,
                properties: properties.into(),
            })
            .boxed(),
    }
}

pub fn auth() -> impl Strategy<Value = Auth> {
    (reason_from(AUTH_CODES), properties(Ctx::Auth)).prop_map(|(reason_code, properties)| Auth {
        reason_code,
        properties,
    })
}

/// Any valid packet for `v` (AUTH only for 5.0).
pub fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connect(v).prop_map(|c| Packet::Connect(Box::new(c))),
        connack(v).prop_map(|c| Packet::ConnAck(Box::new(c))),
        publish(v).prop_map(Packet::Publish),
        pub_response(v, PUBACK_CODES).prop_map(Packet::PubAck),
        pub_response(v, PUBACK_CODES).prop_map(Packet::PubRec),
        pub_response(v, PUBREL_CODES).prop_map(Packet::PubRel),
        pub_response(v, PUBREL_CODES).prop_map(Packet::PubComp),
        subscribe(v).prop_map(Packet::Subscribe),
        suback(v).prop_map(Packet::SubAck),
        unsubscribe(v).prop_map(Packet::Unsubscribe),
        unsuback(v).prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(v).prop_map(Packet::Disconnect),
    ];
    match v {
        V311 => common.boxed(),
        V5 => {
            prop_oneof![13 => common, 1 => auth().prop_map(|a| Packet::Auth(Box::new(a)))].boxed()
        }
    }
}

/// Either protocol version.
pub fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(V311), Just(V5)]
}
