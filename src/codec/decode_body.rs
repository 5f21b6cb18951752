//! Variable header and payload of each control packet, once the whole packet
//! is buffered. Section numbers refer to MQTT 5.0; 3.1.1 differences are noted.

use super::decode_fields::Reader;
use super::decode_properties::{decode_compact_properties, decode_properties, PropertyContext};
use super::error::CodecError;
use super::packet::*;
use super::properties::{CompactProperties, Properties};
use super::reason::ReasonCode;
use super::topic::{parse_shared, validate_topic_filter, validate_topic_name};

use ProtocolVersion::{V311, V5};

/// Decodes the body of a packet whose fixed header was already checked.
///
/// `version` is `None` only before CONNECT, when nothing but CONNECT gets here.
pub(super) fn decode_body(
    packet_type: u8,
    flags: u8,
    version: Option<ProtocolVersion>,
    mut r: Reader,
) -> Result<Packet, CodecError> {
    if packet_type == 1 {
        return connect(&mut r).map(|c| Packet::Connect(Box::new(c)));
    }
    let v = version.ok_or(CodecError::ExpectedConnect)?;
    let packet = match packet_type {
        2 => Packet::ConnAck(Box::new(connack(&mut r, v)?)),
        3 => Packet::Publish(publish(flags, &mut r, v)?),
        4 => Packet::PubAck(pub_response(&mut r, v, PropertyContext::PubAck)?),
        5 => Packet::PubRec(pub_response(&mut r, v, PropertyContext::PubRec)?),
        6 => Packet::PubRel(pub_response(&mut r, v, PropertyContext::PubRel)?),
        7 => Packet::PubComp(pub_response(&mut r, v, PropertyContext::PubComp)?),
        8 => Packet::Subscribe(subscribe(&mut r, v)?),
        9 => Packet::SubAck(suback(&mut r, v)?),
        10 => Packet::Unsubscribe(unsubscribe(&mut r, v)?),
        11 => Packet::UnsubAck(unsuback(&mut r, v)?),
        12 => Packet::PingReq,
        13 => Packet::PingResp,
        14 => Packet::Disconnect(disconnect(&mut r, v)?),
        15 if v == V5 => Packet::Auth(Box::new(auth(&mut r)?)),
        other => return Err(CodecError::InvalidPacketType(other)),
    };
    r.finish()?;
    Ok(packet)
}

/// [`read_properties`] for the packets that hold [`CompactProperties`].
fn read_compact_properties(
    r: &mut Reader,
    v: ProtocolVersion,
    ctx: PropertyContext,
) -> Result<CompactProperties, CodecError> {
    match v {
        V5 => decode_compact_properties(r, ctx),
        V311 => Ok(CompactProperties::new()),
    }
}

/// Properties for 5.0, nothing for 3.1.1.
fn read_properties(
    r: &mut Reader,
    v: ProtocolVersion,
    ctx: PropertyContext,
) -> Result<Properties, CodecError> {
    match v {
        V5 => decode_properties(r, ctx),
        V311 => Ok(Properties::default()),
    }
}

/// A Packet Identifier where one is required: never 0 (MQTT-2.2.1-3).
fn packet_id(r: &mut Reader) -> Result<u16, CodecError> {
    match r.u16("packet identifier")? {
        0 => Err(CodecError::Protocol("packet identifier 0")),
        id => Ok(id),
    }
}

/// Is `code` one of the reason codes 5.0 defines for this packet (section 2.4)?
fn reason_allowed(ctx: PropertyContext, code: u8) -> bool {
    use PropertyContext as C;
    match ctx {
        C::ConnAck => matches!(
            code,
            0x00 | 0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F
        ),
        C::PubAck | C::PubRec => {
            matches!(
                code,
                0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99
            )
        }
        C::PubRel | C::PubComp => matches!(code, 0x00 | 0x92),
        C::SubAck => matches!(
            code,
            0x00..=0x02 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91 | 0x97 | 0x9E | 0xA1 | 0xA2
        ),
        C::UnsubAck => matches!(code, 0x00 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91),
        C::Disconnect => matches!(
            code,
            0x00 | 0x04 | 0x80..=0x83 | 0x87 | 0x89 | 0x8B | 0x8D..=0x90 | 0x93..=0xA2
        ),
        C::Auth => matches!(code, 0x00 | 0x18 | 0x19),
        C::Connect | C::Will | C::Publish | C::Subscribe | C::Unsubscribe => false,
    }
}

/// A reason code byte, checked against the codes allowed in this packet.
fn reason(r: &mut Reader, ctx: PropertyContext) -> Result<ReasonCode, CodecError> {
    let code = r.u8("reason code")?;
    if !reason_allowed(ctx, code) {
        return Err(CodecError::InvalidReasonCode(code));
    }
    Ok(ReasonCode(code))
}

/// CONNECT (section 3.1). Works without a known version: it carries its own.
fn connect(r: &mut Reader) -> Result<Connect, CodecError> {
    let name = r.binary("protocol name")?;
    let level = r.u8("protocol level")?;
    let version = match (name.as_ref(), level) {
        (b"MQTT", 4) => V311,
        (b"MQTT", 5) => V5,
        // "MQIsdp" is MQTT 3.1 (level 3): a known protocol at a level we do
        // not serve, so the broker can answer with return code 0x01.
        (b"MQTT", other) | (b"MQIsdp", other) => {
            return Err(CodecError::UnsupportedProtocolVersion(other))
        }
        _ => return Err(CodecError::InvalidProtocolName),
    };
    let flags = r.u8("connect flags")?;
    if flags & 0x01 != 0 {
        return Err(CodecError::Malformed("reserved CONNECT flag set"));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = QoS::from_u8((flags >> 3) & 0x03).ok_or(CodecError::InvalidQoS)?;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
        return Err(CodecError::Malformed("will QoS or retain without a will"));
    }
    if version == V311 && password_flag && !username_flag {
        return Err(CodecError::Malformed("password without user name"));
    }
    let keep_alive = r.u16("keep alive")?;
    let properties = read_properties(r, version, PropertyContext::Connect)?;
    let client_id = r.string("client identifier")?;
    let will = if will_flag {
        let properties = read_properties(r, version, PropertyContext::Will)?;
        let topic = r.string("will topic")?;
        validate_topic_name(&topic)?;
        let payload = r.binary("will payload")?;
        Some(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = match username_flag {
        true => Some(r.string("user name")?),
        false => None,
    };
    let password = match password_flag {
        true => Some(r.binary("password")?),
        false => None,
    };
    r.finish()?;
    Ok(Connect {
        protocol_version: version,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

/// CONNACK (section 3.2); 3.1.1 return codes are mapped to 5.0 reason codes.
fn connack(r: &mut Reader, v: ProtocolVersion) -> Result<ConnAck, CodecError> {
    let ack_flags = r.u8("connect acknowledge flags")?;
    if ack_flags & 0xFE != 0 {
        return Err(CodecError::Malformed("reserved CONNACK flags set"));
    }
    let session_present = ack_flags & 0x01 != 0;
    let code = r.u8("connect reason code")?;
    let reason_code = match v {
        V311 => ReasonCode::from_v311_connack(code).ok_or(CodecError::InvalidReasonCode(code))?,
        V5 if reason_allowed(PropertyContext::ConnAck, code) => ReasonCode(code),
        V5 => return Err(CodecError::InvalidReasonCode(code)),
    };
    // MQTT-3.2.2-4 (3.1.1) / MQTT-3.2.2-6 (5.0).
    if session_present && reason_code.is_error() {
        return Err(CodecError::Protocol("session present on a refused CONNACK"));
    }
    let properties = read_properties(r, v, PropertyContext::ConnAck)?;
    Ok(ConnAck {
        session_present,
        reason_code,
        properties,
    })
}

/// PUBLISH (section 3.3); the fixed-header flags were checked already.
fn publish(flags: u8, r: &mut Reader, v: ProtocolVersion) -> Result<Publish, CodecError> {
    let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(CodecError::InvalidQoS)?;
    let topic = r.string("topic name")?;
    let packet_id = match qos {
        QoS::AtMostOnce => 0,
        _ => packet_id(r)?,
    };
    let properties = read_compact_properties(r, v, PropertyContext::Publish)?;
    // 5.0 3.3.2.1: an empty topic is how a Topic Alias is used after it was set.
    if !(topic.is_empty() && v == V5 && properties.topic_alias.is_some()) {
        validate_topic_name(&topic)?;
    }
    Ok(Publish {
        dup: flags & 0x08 != 0,
        qos,
        retain: flags & 0x01 != 0,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP (sections 3.4-3.7).
///
/// 5.0 lets the sender stop after the packet id (Success, no properties) or
/// after the reason code (no properties).
fn pub_response(
    r: &mut Reader,
    v: ProtocolVersion,
    ctx: PropertyContext,
) -> Result<PubResponse, CodecError> {
    let packet_id = packet_id(r)?;
    let mut response = PubResponse::success(packet_id);
    if v == V5 && !r.is_empty() {
        response.reason_code = reason(r, ctx)?;
        if !r.is_empty() {
            response.properties = decode_compact_properties(r, ctx)?;
        }
    }
    Ok(response)
}

/// Subscription Options byte (section 3.8.3.1; 3.1.1: QoS only).
fn subscription_options(byte: u8, v: ProtocolVersion) -> Result<SubscriptionOptions, CodecError> {
    let reserved = match v {
        V311 => 0xFC,
        V5 => 0xC0,
    };
    if byte & reserved != 0 {
        return Err(CodecError::Malformed(
            "reserved subscription option bits set",
        ));
    }
    let qos = QoS::from_u8(byte & 0x03).ok_or(CodecError::InvalidQoS)?;
    let retain_handling = match (byte >> 4) & 0x03 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(CodecError::Protocol("retain handling 3")),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0x04 != 0,
        retain_as_published: byte & 0x08 != 0,
        retain_handling,
    })
}

/// SUBSCRIBE (section 3.8).
fn subscribe(r: &mut Reader, v: ProtocolVersion) -> Result<Subscribe, CodecError> {
    let packet_id = packet_id(r)?;
    let properties = read_compact_properties(r, v, PropertyContext::Subscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        let options = subscription_options(r.u8("subscription options")?, v)?;
        validate_topic_filter(&filter)?;
        // MQTT-3.8.3-4: No Local on a shared subscription is a Protocol Error.
        if options.no_local && parse_shared(&filter)?.is_some() {
            return Err(CodecError::Protocol("no local on a shared subscription"));
        }
        filters.push(SubscribeFilter { filter, options });
    }
    if filters.is_empty() {
        return Err(CodecError::Protocol("SUBSCRIBE without topic filters"));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

/// Reads the rest of the packet as a non-empty list of reason codes.
fn reason_list(
    r: &mut Reader,
    allowed: impl Fn(u8) -> bool,
) -> Result<Vec<ReasonCode>, CodecError> {
    let codes = r.rest();
    if codes.is_empty() {
        return Err(CodecError::Protocol("acknowledgement without reason codes"));
    }
    codes
        .iter()
        .map(|&c| match allowed(c) {
            true => Ok(ReasonCode(c)),
            false => Err(CodecError::InvalidReasonCode(c)),
        })
        .collect()
}

/// SUBACK (section 3.9); 3.1.1 knows only 0, 1, 2 and 0x80.
fn suback(r: &mut Reader, v: ProtocolVersion) -> Result<SubAck, CodecError> {
    let packet_id = packet_id(r)?;
    let properties = read_compact_properties(r, v, PropertyContext::SubAck)?;
    let reason_codes = match v {
        V311 => reason_list(r, |c| matches!(c, 0x00..=0x02 | 0x80))?,
        V5 => reason_list(r, |c| reason_allowed(PropertyContext::SubAck, c))?,
    };
    Ok(SubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

/// UNSUBSCRIBE (section 3.10).
fn unsubscribe(r: &mut Reader, v: ProtocolVersion) -> Result<Unsubscribe, CodecError> {
    let packet_id = packet_id(r)?;
    let properties = read_compact_properties(r, v, PropertyContext::Unsubscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        validate_topic_filter(&filter)?;
        filters.push(filter);
    }
    if filters.is_empty() {
        return Err(CodecError::Protocol("UNSUBSCRIBE without topic filters"));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

/// UNSUBACK (section 3.11); 3.1.1 has only the packet id.
fn unsuback(r: &mut Reader, v: ProtocolVersion) -> Result<UnsubAck, CodecError> {
    let packet_id = packet_id(r)?;
    let properties = read_compact_properties(r, v, PropertyContext::UnsubAck)?;
    let reason_codes = match v {
        V311 => Vec::new(),
        V5 => reason_list(r, |c| reason_allowed(PropertyContext::UnsubAck, c))?,
    };
    Ok(UnsubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

/// DISCONNECT (section 3.14); 5.0 may omit the reason code (Normal) and the properties.
fn disconnect(r: &mut Reader, v: ProtocolVersion) -> Result<Disconnect, CodecError> {
    let mut packet = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    if v == V5 && !r.is_empty() {
        packet.reason_code = reason(r, PropertyContext::Disconnect)?;
        if !r.is_empty() {
            packet.properties = decode_compact_properties(r, PropertyContext::Disconnect)?;
        }
    }
    Ok(packet)
}

/// AUTH (section 3.15, 5.0 only); an empty body means Success without properties.
fn auth(r: &mut Reader) -> Result<Auth, CodecError> {
    let mut packet = Auth {
        reason_code: ReasonCode::SUCCESS,
        properties: Properties::default(),
    };
    if !r.is_empty() {
        packet.reason_code = reason(r, PropertyContext::Auth)?;
        if !r.is_empty() {
            packet.properties = decode_properties(r, PropertyContext::Auth)?;
        }
    }
    Ok(packet)
}
