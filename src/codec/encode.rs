//! Packet encoder: the exact inverse of the decoder.
//!
//! Sizes are computed first (so the fixed header can be written without a
//! scratch buffer), then the body; both use the same per-field helpers. 5.0
//! acknowledgements use the short forms the standard allows (a PUBACK with
//! Success and no properties is two bytes, a normal DISCONNECT is empty).

use bytes::{BufMut, BytesMut};

use super::decode_properties::PropertyContext;
use super::encode_properties::{
    prefixed_len, properties_block_len, properties_len, put_prefixed, put_properties,
    put_variable_int, variable_int_len,
};
use super::error::CodecError;
use super::packet::*;
use super::properties::Properties;
use super::reason::ReasonCode;
use super::MAX_REMAINING_LENGTH;

use ProtocolVersion::{V311, V5};

/// Appends `packet`, encoded for `version`, to `out`.
///
/// 5.0-only fields (properties, reason codes) are dropped for 3.1.1; an AUTH
/// packet cannot be encoded for 3.1.1. CONNECT is always encoded in the
/// version it names (`Connect::protocol_version`).
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    let v = effective_version(packet, version)?;
    let body = body_len(packet, v)?;
    out.reserve(1 + variable_int_len(body) + body);
    out.put_u8(first_byte(packet));
    put_variable_int(out, body);
    put_body(packet, v, out)
}

/// The encoded size of `packet` once payload protection (LWA) has added
/// `publish_overhead` bytes to a PUBLISH payload; its Remaining Length may then
/// need a longer varint. Other packets are not protected. This is the size the
/// broker and the client hold to the peer's Maximum Packet Size.
pub fn protected_len(packet: &Packet, version: ProtocolVersion, publish_overhead: usize) -> usize {
    let len = encoded_len(packet, version);
    if publish_overhead == 0 || !matches!(packet, Packet::Publish(_)) {
        return len;
    }
    grown_len(len, publish_overhead)
}

/// `Err(size)` when `packet`, protected ([`protected_len`]), is larger than the
/// peer's Maximum Packet Size `max` (`None`: the peer set none).
pub fn check_max_packet(
    packet: &Packet,
    version: ProtocolVersion,
    publish_overhead: usize,
    max: Option<usize>,
) -> Result<(), usize> {
    let Some(max) = max else { return Ok(()) };
    let size = protected_len(packet, version, publish_overhead);
    if size > max {
        Err(size)
    } else {
        Ok(())
    }
}

/// Size of a packet of `len` bytes whose payload grows by `extra` bytes
/// (the Remaining Length field may grow by a byte or more).
fn grown_len(len: usize, extra: usize) -> usize {
    let varint_len = |n: usize| match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    let remaining = (1..=4)
        .filter_map(|v| len.checked_sub(1 + v).filter(|&rl| varint_len(rl) == v))
        .next();
    match remaining {
        Some(rl) => 1 + varint_len(rl + extra) + rl + extra,
        None => len + extra,
    }
}

#[cfg(test)]
#[test]
fn grown_len_accounts_for_remaining_length_growth() {
    // 1 + 1 + 127 -> 1 + 2 + 128
    assert_eq!(grown_len(129, 1), 131);
    assert_eq!(grown_len(10, 16), 26);
    assert_eq!(grown_len(10, 0), 10);
}

/// Size in bytes of `packet` encoded for `version` (fixed header included);
/// 0 when [`encode`] would refuse the packet.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    effective_version(packet, version)
        .and_then(|v| body_len(packet, v))
        .map(|body| 1 + variable_int_len(body) + body)
        .unwrap_or(0)
}

/// CONNECT carries its own version; AUTH does not exist in 3.1.1.
fn effective_version(
    packet: &Packet,
    version: ProtocolVersion,
) -> Result<ProtocolVersion, CodecError> {
    match packet {
        Packet::Connect(c) => Ok(c.protocol_version),
        Packet::Auth(_) if version == V311 => Err(CodecError::InvalidPacketType(15)),
        _ => Ok(version),
    }
}

/// Type nibble and flags (MQTT 5.0 section 2.1.3).
fn first_byte(packet: &Packet) -> u8 {
    let flags = match packet {
        Packet::Publish(p) => {
            // MQTT-3.3.1-2: never DUP on QoS 0.
            let dup = p.dup && p.qos != QoS::AtMostOnce;
            (u8::from(dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
        }
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    (packet.packet_type() << 4) | flags
}

/// Property block size for 5.0, 0 for 3.1.1.
fn props_len(
    p: &Properties,
    v: ProtocolVersion,
    ctx: PropertyContext,
) -> Result<usize, CodecError> {
    match v {
        V5 => properties_block_len(p, ctx),
        V311 => Ok(0),
    }
}

fn put_props(
    out: &mut BytesMut,
    p: &Properties,
    v: ProtocolVersion,
    ctx: PropertyContext,
) -> Result<(), CodecError> {
    if v == V5 {
        let len = properties_len(p, ctx)?;
        put_properties(out, p, len);
    }
    Ok(())
}

fn pub_response_ctx(packet: &Packet) -> PropertyContext {
    match packet {
        Packet::PubRec(_) => PropertyContext::PubRec,
        Packet::PubRel(_) => PropertyContext::PubRel,
        Packet::PubComp(_) => PropertyContext::PubComp,
        _ => PropertyContext::PubAck,
    }
}

/// How much of an optional reason code + properties tail 5.0 lets us send.
#[derive(PartialEq, Eq)]
enum Tail {
    /// Neither (the default reason code, no properties).
    Nothing,
    /// The reason code only.
    Reason,
    /// Reason code, Property Length and properties.
    Full,
}

fn tail(reason: ReasonCode, p: &Properties, reason_alone_ok: bool) -> Tail {
    match (reason == ReasonCode::SUCCESS, p.is_empty()) {
        (true, true) => Tail::Nothing,
        (false, true) if reason_alone_ok => Tail::Reason,
        _ => Tail::Full,
    }
}

fn tail_len(t: &Tail, p: &Properties, ctx: PropertyContext) -> Result<usize, CodecError> {
    Ok(match t {
        Tail::Nothing => 0,
        Tail::Reason => 1,
        Tail::Full => 1 + properties_block_len(p, ctx)?,
    })
}

fn put_tail(
    out: &mut BytesMut,
    t: &Tail,
    reason: ReasonCode,
    p: &Properties,
    ctx: PropertyContext,
) -> Result<(), CodecError> {
    if *t != Tail::Nothing {
        out.put_u8(reason.0);
    }
    if *t == Tail::Full {
        put_props(out, p, V5, ctx)?;
    }
    Ok(())
}

/// Subscription Options byte; 3.1.1 has only the QoS bits.
fn options_byte(o: &SubscriptionOptions, v: ProtocolVersion) -> u8 {
    let qos = o.qos as u8;
    match v {
        V311 => qos,
        V5 => {
            qos | (u8::from(o.no_local) << 2)
                | (u8::from(o.retain_as_published) << 3)
                | ((o.retain_handling as u8) << 4)
        }
    }
}

/// 3.1.1 SUBACK knows granted QoS 0..=2 and 0x80 Failure.
fn v311_suback_code(c: ReasonCode) -> u8 {
    match c.0 {
        c @ 0..=2 => c,
        _ => 0x80,
    }
}

/// Remaining Length of `packet` for version `v`.
fn body_len(packet: &Packet, v: ProtocolVersion) -> Result<usize, CodecError> {
    let len = match packet {
        Packet::Connect(c) => {
            let mut n = prefixed_len(4)? + 1 + 1 + 2;
            n += props_len(&c.properties, v, PropertyContext::Connect)?;
            n += prefixed_len(c.client_id.len())?;
            if let Some(w) = &c.will {
                n += props_len(&w.properties, v, PropertyContext::Will)?;
                n += prefixed_len(w.topic.len())? + prefixed_len(w.payload.len())?;
            }
            if let Some(u) = &c.username {
                n += prefixed_len(u.len())?;
            }
            if let Some(p) = &c.password {
                n += prefixed_len(p.len())?;
            }
            n
        }
        Packet::ConnAck(c) => 2 + props_len(&c.properties, v, PropertyContext::ConnAck)?,
        Packet::Publish(p) => {
            let id = if p.qos == QoS::AtMostOnce { 0 } else { 2 };
            prefixed_len(p.topic.len())?
                + id
                + props_len(&p.properties, v, PropertyContext::Publish)?
                + p.payload.len()
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            let ctx = pub_response_ctx(packet);
            match v {
                V311 => 2,
                V5 => {
                    2 + tail_len(
                        &tail(r.reason_code, &r.properties, true),
                        &r.properties,
                        ctx,
                    )?
                }
            }
        }
        Packet::Subscribe(s) => {
            let mut n = 2 + props_len(&s.properties, v, PropertyContext::Subscribe)?;
            for f in &s.filters {
                n += prefixed_len(f.filter.len())? + 1;
            }
            n
        }
        Packet::SubAck(s) => {
            2 + props_len(&s.properties, v, PropertyContext::SubAck)? + s.reason_codes.len()
        }
        Packet::Unsubscribe(u) => {
            let mut n = 2 + props_len(&u.properties, v, PropertyContext::Unsubscribe)?;
            for f in &u.filters {
                n += prefixed_len(f.len())?;
            }
            n
        }
        Packet::UnsubAck(u) => match v {
            V311 => 2,
            V5 => {
                2 + props_len(&u.properties, v, PropertyContext::UnsubAck)? + u.reason_codes.len()
            }
        },
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => match v {
            V311 => 0,
            V5 => tail_len(
                &tail(d.reason_code, &d.properties, true),
                &d.properties,
                PropertyContext::Disconnect,
            )?,
        },
        Packet::Auth(a) => tail_len(
            &tail(a.reason_code, &a.properties, false),
            &a.properties,
            PropertyContext::Auth,
        )?,
    };
    if len > MAX_REMAINING_LENGTH {
        return Err(CodecError::ValueTooLarge("packet over 268435455 bytes"));
    }
    Ok(len)
}

/// Writes the variable header and payload; sizes were checked by [`body_len`].
fn put_body(packet: &Packet, v: ProtocolVersion, out: &mut BytesMut) -> Result<(), CodecError> {
    match packet {
        Packet::Connect(c) => {
            put_prefixed(out, b"MQTT");
            out.put_u8(v.level());
            let mut flags = 0u8;
            if c.clean_start {
                flags |= 0x02;
            }
            if let Some(w) = &c.will {
                flags |= 0x04 | ((w.qos as u8) << 3);
                if w.retain {
                    flags |= 0x20;
                }
            }
            if c.password.is_some() {
                flags |= 0x40;
            }
            if c.username.is_some() {
                flags |= 0x80;
            }
            out.put_u8(flags);
            out.put_u16(c.keep_alive);
            put_props(out, &c.properties, v, PropertyContext::Connect)?;
            put_prefixed(out, c.client_id.as_bytes());
            if let Some(w) = &c.will {
                put_props(out, &w.properties, v, PropertyContext::Will)?;
                put_prefixed(out, w.topic.as_bytes());
                put_prefixed(out, &w.payload);
            }
            if let Some(u) = &c.username {
                put_prefixed(out, u.as_bytes());
            }
            if let Some(p) = &c.password {
                put_prefixed(out, p);
            }
        }
        Packet::ConnAck(c) => {
            out.put_u8(u8::from(c.session_present));
            out.put_u8(match v {
                V311 => c.reason_code.to_v311_connack(),
                V5 => c.reason_code.0,
            });
            put_props(out, &c.properties, v, PropertyContext::ConnAck)?;
        }
        Packet::Publish(p) => {
            put_prefixed(out, p.topic.as_bytes());
            if p.qos != QoS::AtMostOnce {
                out.put_u16(p.packet_id);
            }
            put_props(out, &p.properties, v, PropertyContext::Publish)?;
            out.put_slice(&p.payload);
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            out.put_u16(r.packet_id);
            if v == V5 {
                let t = tail(r.reason_code, &r.properties, true);
                put_tail(
                    out,
                    &t,
                    r.reason_code,
                    &r.properties,
                    pub_response_ctx(packet),
                )?;
            }
        }
        Packet::Subscribe(s) => {
            out.put_u16(s.packet_id);
            put_props(out, &s.properties, v, PropertyContext::Subscribe)?;
            for f in &s.filters {
                put_prefixed(out, f.filter.as_bytes());
                out.put_u8(options_byte(&f.options, v));
            }
        }
        Packet::SubAck(s) => {
            out.put_u16(s.packet_id);
            put_props(out, &s.properties, v, PropertyContext::SubAck)?;
            for c in &s.reason_codes {
                out.put_u8(match v {
                    V311 => v311_suback_code(*c),
                    V5 => c.0,
                });
            }
        }
        Packet::Unsubscribe(u) => {
            out.put_u16(u.packet_id);
            put_props(out, &u.properties, v, PropertyContext::Unsubscribe)?;
            for f in &u.filters {
                put_prefixed(out, f.as_bytes());
            }
        }
        Packet::UnsubAck(u) => {
            out.put_u16(u.packet_id);
            if v == V5 {
                put_props(out, &u.properties, v, PropertyContext::UnsubAck)?;
                for c in &u.reason_codes {
                    out.put_u8(c.0);
                }
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => {
            if v == V5 {
                let t = tail(d.reason_code, &d.properties, true);
                put_tail(
                    out,
                    &t,
                    d.reason_code,
                    &d.properties,
                    PropertyContext::Disconnect,
                )?;
            }
        }
        Packet::Auth(a) => {
            let t = tail(a.reason_code, &a.properties, false);
            put_tail(out, &t, a.reason_code, &a.properties, PropertyContext::Auth)?;
        }
    }
    Ok(())
}
