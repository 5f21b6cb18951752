//! MQTT 5.0 property blocks: which packet may carry which property
//! (table in section 2.2.2.2), duplicate detection and value ranges.

use super::decode_fields::Reader;
use super::error::CodecError;
use super::properties::{id, CompactProperties, Properties};
use super::topic::validate_topic_name;

/// Where a property block sits; decides which identifiers are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PropertyContext {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropertyContext {
    /// Packet name for error messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            PropertyContext::Connect => "CONNECT",
            PropertyContext::Will => "will properties",
            PropertyContext::ConnAck => "CONNACK",
            PropertyContext::Publish => "PUBLISH",
            PropertyContext::PubAck => "PUBACK",
            PropertyContext::PubRec => "PUBREC",
            PropertyContext::PubRel => "PUBREL",
            PropertyContext::PubComp => "PUBCOMP",
            PropertyContext::Subscribe => "SUBSCRIBE",
            PropertyContext::SubAck => "SUBACK",
            PropertyContext::Unsubscribe => "UNSUBSCRIBE",
            PropertyContext::UnsubAck => "UNSUBACK",
            PropertyContext::Disconnect => "DISCONNECT",
            PropertyContext::Auth => "AUTH",
        }
    }

    /// May a property block in this position carry property `pid`?
    pub(super) fn allows(self, pid: u8) -> bool {
        use PropertyContext as C;
        match pid {
            id::PAYLOAD_FORMAT_INDICATOR
            | id::MESSAGE_EXPIRY_INTERVAL
            | id::CONTENT_TYPE
            | id::RESPONSE_TOPIC
            | id::CORRELATION_DATA => matches!(self, C::Publish | C::Will),
            id::SUBSCRIPTION_IDENTIFIER => matches!(self, C::Publish | C::Subscribe),
            id::SESSION_EXPIRY_INTERVAL => matches!(self, C::Connect | C::ConnAck | C::Disconnect),
            id::ASSIGNED_CLIENT_IDENTIFIER
            | id::SERVER_KEEP_ALIVE
            | id::RESPONSE_INFORMATION
            | id::MAXIMUM_QOS
            | id::RETAIN_AVAILABLE
            | id::WILDCARD_SUBSCRIPTION_AVAILABLE
            | id::SUBSCRIPTION_IDENTIFIER_AVAILABLE
            | id::SHARED_SUBSCRIPTION_AVAILABLE => self == C::ConnAck,
            id::AUTHENTICATION_METHOD | id::AUTHENTICATION_DATA => {
                matches!(self, C::Connect | C::ConnAck | C::Auth)
            }
            id::REQUEST_PROBLEM_INFORMATION | id::REQUEST_RESPONSE_INFORMATION => {
                self == C::Connect
            }
            id::WILL_DELAY_INTERVAL => self == C::Will,
            id::SERVER_REFERENCE => matches!(self, C::ConnAck | C::Disconnect),
            id::REASON_STRING => !matches!(
                self,
                C::Connect | C::Will | C::Publish | C::Subscribe | C::Unsubscribe
            ),
            id::RECEIVE_MAXIMUM | id::TOPIC_ALIAS_MAXIMUM | id::MAXIMUM_PACKET_SIZE => {
                matches!(self, C::Connect | C::ConnAck)
            }
            id::TOPIC_ALIAS => self == C::Publish,
            id::USER_PROPERTY => true,
            _ => false,
        }
    }
}

/// Stores a single-valued property, refusing a second occurrence.
fn once<T>(slot: &mut Option<T>, pid: u8, value: T) -> Result<(), CodecError> {
    if slot.is_some() {
        return Err(CodecError::DuplicateProperty(pid));
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property whose only legal values are 0 and 1.
fn boolean(r: &mut Reader, pid: u8) -> Result<u8, CodecError> {
    match r.u8("property value")? {
        v @ (0 | 1) => Ok(v),
        _ => Err(CodecError::InvalidPropertyValue(pid)),
    }
}

/// A two-byte property that may not be zero (Receive Maximum, Topic Alias).
fn nonzero_u16(r: &mut Reader, pid: u8) -> Result<u16, CodecError> {
    match r.u16("property value")? {
        0 => Err(CodecError::InvalidPropertyValue(pid)),
        v => Ok(v),
    }
}

/// Reads a Property Length and the properties it covers.
pub(super) fn decode_properties(
    r: &mut Reader,
    ctx: PropertyContext,
) -> Result<Properties, CodecError> {
    let len = r.variable_int("property length")?;
    let block = r.take(len as usize, "properties")?;
    decode_block(block, ctx)
}

/// [`decode_properties`] into [`CompactProperties`]: an empty block (the
/// usual PUBLISH) allocates nothing.
pub(super) fn decode_compact_properties(
    r: &mut Reader,
    ctx: PropertyContext,
) -> Result<CompactProperties, CodecError> {
    let len = r.variable_int("property length")?;
    let block = r.take(len as usize, "properties")?;
    if block.is_empty() {
        return Ok(CompactProperties::new());
    }
    decode_block(block, ctx).map(CompactProperties::from)
}

/// The properties of one block (its Property Length already read).
pub(super) fn decode_block(
    block: bytes::Bytes,
    ctx: PropertyContext,
) -> Result<Properties, CodecError> {
    let mut r = Reader::new(block);
    let mut p = Properties::default();
    while !r.is_empty() {
        // The identifier is a Variable Byte Integer; all defined ones fit in a byte.
        let raw = r.variable_int("property identifier")?;
        let pid = u8::try_from(raw).unwrap_or(u8::MAX);
        if u32::from(pid) != raw || !ctx.allows(pid) {
            return Err(CodecError::InvalidProperty {
                packet: ctx.name(),
                id: pid,
            });
        }
        read_one(&mut r, ctx, pid, &mut p)?;
    }
    if p.authentication_data.is_some() && p.authentication_method.is_none() {
        return Err(CodecError::Protocol(
            "Authentication Data without Authentication Method",
        ));
    }
    Ok(p)
}

/// Reads the value of property `pid` (already checked as allowed) into `p`.
fn read_one(
    r: &mut Reader,
    ctx: PropertyContext,
    pid: u8,
    p: &mut Properties,
) -> Result<(), CodecError> {
    const V: &str = "property value";
    match pid {
        id::PAYLOAD_FORMAT_INDICATOR => {
            let v = boolean(r, pid)?;
            once(&mut p.payload_format_indicator, pid, v)
        }
        id::MESSAGE_EXPIRY_INTERVAL => once(&mut p.message_expiry_interval, pid, r.u32(V)?),
        id::CONTENT_TYPE => once(&mut p.content_type, pid, r.string(V)?),
        id::RESPONSE_TOPIC => {
            let topic = r.string(V)?;
            // A Response Topic is a Topic Name: no wildcards (MQTT-3.3.2-14).
            validate_topic_name(&topic).map_err(|_| CodecError::InvalidPropertyValue(pid))?;
            once(&mut p.response_topic, pid, topic)
        }
        id::CORRELATION_DATA => once(&mut p.correlation_data, pid, r.binary(V)?),
        id::SUBSCRIPTION_IDENTIFIER => {
            let v = r.variable_int(V)?;
            if v == 0 {
                return Err(CodecError::InvalidPropertyValue(pid));
            }
            // A forwarded PUBLISH may carry one per matching subscription;
            // SUBSCRIBE carries at most one.
            if ctx == PropertyContext::Subscribe && !p.subscription_identifiers.is_empty() {
                return Err(CodecError::DuplicateProperty(pid));
            }
            p.subscription_identifiers.push(v);
            Ok(())
        }
        id::SESSION_EXPIRY_INTERVAL => once(&mut p.session_expiry_interval, pid, r.u32(V)?),
        id::ASSIGNED_CLIENT_IDENTIFIER => {
            once(&mut p.assigned_client_identifier, pid, r.string(V)?)
        }
        id::SERVER_KEEP_ALIVE => once(&mut p.server_keep_alive, pid, r.u16(V)?),
        id::AUTHENTICATION_METHOD => once(&mut p.authentication_method, pid, r.string(V)?),
        id::AUTHENTICATION_DATA => once(&mut p.authentication_data, pid, r.binary(V)?),
        id::REQUEST_PROBLEM_INFORMATION => {
            let v = boolean(r, pid)?;
            once(&mut p.request_problem_information, pid, v)
        }
        id::WILL_DELAY_INTERVAL => once(&mut p.will_delay_interval, pid, r.u32(V)?),
        id::REQUEST_RESPONSE_INFORMATION => {
            let v = boolean(r, pid)?;
            once(&mut p.request_response_information, pid, v)
        }
        id::RESPONSE_INFORMATION => once(&mut p.response_information, pid, r.string(V)?),
        id::SERVER_REFERENCE => once(&mut p.server_reference, pid, r.string(V)?),
        id::REASON_STRING => once(&mut p.reason_string, pid, r.string(V)?),
        id::RECEIVE_MAXIMUM => {
            let v = nonzero_u16(r, pid)?;
            once(&mut p.receive_maximum, pid, v)
        }
        id::TOPIC_ALIAS_MAXIMUM => once(&mut p.topic_alias_maximum, pid, r.u16(V)?),
        id::TOPIC_ALIAS => {
            let v = nonzero_u16(r, pid)?;
            once(&mut p.topic_alias, pid, v)
        }
        id::MAXIMUM_QOS => {
            let v = boolean(r, pid)?;
            once(&mut p.maximum_qos, pid, v)
        }
        id::RETAIN_AVAILABLE => {
            let v = boolean(r, pid)?;
            once(&mut p.retain_available, pid, v)
        }
        id::USER_PROPERTY => {
            let key = r.string(V)?;
            let value = r.string(V)?;
            p.user_properties.push((key, value));
            Ok(())
        }
        id::MAXIMUM_PACKET_SIZE => match r.u32(V)? {
            0 => Err(CodecError::InvalidPropertyValue(pid)),
            v => once(&mut p.maximum_packet_size, pid, v),
        },
        id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
            let v = boolean(r, pid)?;
            once(&mut p.wildcard_subscription_available, pid, v)
        }
        id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
            let v = boolean(r, pid)?;
            once(&mut p.subscription_identifier_available, pid, v)
        }
        id::SHARED_SUBSCRIPTION_AVAILABLE => {
            let v = boolean(r, pid)?;
            once(&mut p.shared_subscription_available, pid, v)
        }
        _ => Err(CodecError::InvalidProperty {
            packet: ctx.name(),
            id: pid,
        }),
    }
}
