//! Writing the MQTT data types and 5.0 property blocks.
//!
//! Sizes and bytes come from one walk over the properties
//! ([`for_each_property`]), so `encoded_len` cannot drift from `encode`.

use bytes::{BufMut, BytesMut};

use super::decode_fields::MAX_VARIABLE_BYTE_INTEGER;
use super::decode_properties::PropertyContext;
use super::error::CodecError;
use super::properties::{id, Properties};

/// Bytes a Variable Byte Integer of `value` occupies (value already checked).
pub(super) fn variable_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends a Variable Byte Integer (value at most 268,435,455, checked by the caller).
pub(super) fn put_variable_int(out: &mut BytesMut, mut value: usize) {
    loop {
        let byte = (value % 128) as u8;
        value /= 128;
        if value == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

/// Length of a length-prefixed string or binary field, refusing over 65,535 bytes.
pub(super) fn prefixed_len(len: usize) -> Result<usize, CodecError> {
    if len > usize::from(u16::MAX) {
        return Err(CodecError::ValueTooLarge(
            "string or binary field over 65535 bytes",
        ));
    }
    Ok(2 + len)
}

/// Appends a two-byte length and the bytes (length already checked).
pub(super) fn put_prefixed(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u16(bytes.len() as u16);
    out.put_slice(bytes);
}

/// One property value, borrowed from [`Properties`].
enum Value<'a> {
    Byte(u8),
    Two(u16),
    Four(u32),
    Variable(u32),
    Text(&'a str),
    Binary(&'a [u8]),
    Pair(&'a str, &'a str),
}

impl Value<'_> {
    /// Encoded size of the value (identifier not included).
    fn len(&self) -> Result<usize, CodecError> {
        Ok(match self {
            Value::Byte(_) => 1,
            Value::Two(_) => 2,
            Value::Four(_) => 4,
            Value::Variable(v) => {
                if *v > MAX_VARIABLE_BYTE_INTEGER {
                    return Err(CodecError::ValueTooLarge("subscription identifier"));
                }
                variable_int_len(*v as usize)
            }
            Value::Text(s) => prefixed_len(s.len())?,
            Value::Binary(b) => prefixed_len(b.len())?,
            Value::Pair(k, v) => prefixed_len(k.len())? + prefixed_len(v.len())?,
        })
    }

    fn put(&self, out: &mut BytesMut) {
        match self {
            Value::Byte(b) => out.put_u8(*b),
            Value::Two(v) => out.put_u16(*v),
            Value::Four(v) => out.put_u32(*v),
            Value::Variable(v) => put_variable_int(out, *v as usize),
            Value::Text(s) => put_prefixed(out, s.as_bytes()),
            Value::Binary(b) => put_prefixed(out, b),
            Value::Pair(k, v) => {
                put_prefixed(out, k.as_bytes());
                put_prefixed(out, v.as_bytes());
            }
        }
    }
}

/// Calls `f` for every property that is set, in identifier order (user
/// properties and subscription identifiers in their stored order).
fn for_each_property<'a>(
    p: &'a Properties,
    mut f: impl FnMut(u8, Value<'a>) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    if let Some(v) = p.payload_format_indicator {
        f(id::PAYLOAD_FORMAT_INDICATOR, Value::Byte(v))?;
    }
    if let Some(v) = p.message_expiry_interval {
        f(id::MESSAGE_EXPIRY_INTERVAL, Value::Four(v))?;
    }
    if let Some(v) = &p.content_type {
        f(id::CONTENT_TYPE, Value::Text(v))?;
    }
    if let Some(v) = &p.response_topic {
        f(id::RESPONSE_TOPIC, Value::Text(v))?;
    }
    if let Some(v) = &p.correlation_data {
        f(id::CORRELATION_DATA, Value::Binary(v))?;
    }
    for v in &p.subscription_identifiers {
        f(id::SUBSCRIPTION_IDENTIFIER, Value::Variable(*v))?;
    }
    if let Some(v) = p.session_expiry_interval {
        f(id::SESSION_EXPIRY_INTERVAL, Value::Four(v))?;
    }
    if let Some(v) = &p.assigned_client_identifier {
        f(id::ASSIGNED_CLIENT_IDENTIFIER, Value::Text(v))?;
    }
    if let Some(v) = p.server_keep_alive {
        f(id::SERVER_KEEP_ALIVE, Value::Two(v))?;
    }
    if let Some(v) = &p.authentication_method {
        f(id::AUTHENTICATION_METHOD, Value::Text(v))?;
    }
    if let Some(v) = &p.authentication_data {
        f(id::AUTHENTICATION_DATA, Value::Binary(v))?;
    }
    if let Some(v) = p.request_problem_information {
        f(id::REQUEST_PROBLEM_INFORMATION, Value::Byte(v))?;
    }
    if let Some(v) = p.will_delay_interval {
        f(id::WILL_DELAY_INTERVAL, Value::Four(v))?;
    }
    if let Some(v) = p.request_response_information {
        f(id::REQUEST_RESPONSE_INFORMATION, Value::Byte(v))?;
    }
    if let Some(v) = &p.response_information {
        f(id::RESPONSE_INFORMATION, Value::Text(v))?;
    }
    if let Some(v) = &p.server_reference {
        f(id::SERVER_REFERENCE, Value::Text(v))?;
    }
    if let Some(v) = &p.reason_string {
        f(id::REASON_STRING, Value::Text(v))?;
    }
    if let Some(v) = p.receive_maximum {
        f(id::RECEIVE_MAXIMUM, Value::Two(v))?;
    }
    if let Some(v) = p.topic_alias_maximum {
        f(id::TOPIC_ALIAS_MAXIMUM, Value::Two(v))?;
    }
    if let Some(v) = p.topic_alias {
        f(id::TOPIC_ALIAS, Value::Two(v))?;
    }
    if let Some(v) = p.maximum_qos {
        f(id::MAXIMUM_QOS, Value::Byte(v))?;
    }
    if let Some(v) = p.retain_available {
        f(id::RETAIN_AVAILABLE, Value::Byte(v))?;
    }
    for (k, v) in &p.user_properties {
        f(id::USER_PROPERTY, Value::Pair(k, v))?;
    }
    if let Some(v) = p.maximum_packet_size {
        f(id::MAXIMUM_PACKET_SIZE, Value::Four(v))?;
    }
    if let Some(v) = p.wildcard_subscription_available {
        f(id::WILDCARD_SUBSCRIPTION_AVAILABLE, Value::Byte(v))?;
    }
    if let Some(v) = p.subscription_identifier_available {
        f(id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, Value::Byte(v))?;
    }
    if let Some(v) = p.shared_subscription_available {
        f(id::SHARED_SUBSCRIPTION_AVAILABLE, Value::Byte(v))?;
    }
    Ok(())
}

/// Size of the property block content (without its Property Length).
///
/// Refuses properties that `ctx` may not carry, so we never send what a
/// strict peer (our own decoder included) would reject as malformed.
pub(super) fn properties_len(p: &Properties, ctx: PropertyContext) -> Result<usize, CodecError> {
    if ctx == PropertyContext::Subscribe && p.subscription_identifiers.len() > 1 {
        return Err(CodecError::DuplicateProperty(id::SUBSCRIPTION_IDENTIFIER));
    }
    let mut total = 0usize;
    for_each_property(p, |pid, value| {
        if !ctx.allows(pid) {
            return Err(CodecError::InvalidProperty {
                packet: ctx.name(),
                id: pid,
            });
        }
        total = total.saturating_add(1 + value.len()?);
        Ok(())
    })?;
    if total > MAX_VARIABLE_BYTE_INTEGER as usize {
        return Err(CodecError::ValueTooLarge("properties"));
    }
    Ok(total)
}

/// Size of the whole property block: Property Length plus content.
pub(super) fn properties_block_len(
    p: &Properties,
    ctx: PropertyContext,
) -> Result<usize, CodecError> {
    let len = properties_len(p, ctx)?;
    Ok(variable_int_len(len) + len)
}

/// Appends the Property Length (`content_len`, from [`properties_len`]) and the properties.
pub(super) fn put_properties(out: &mut BytesMut, p: &Properties, content_len: usize) {
    put_variable_int(out, content_len);
    // Cannot fail: the closure never returns an error.
    let _ = for_each_property(p, |pid, value| {
        out.put_u8(pid);
        value.put(out);
        Ok(())
    });
}
