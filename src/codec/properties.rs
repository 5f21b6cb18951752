//! MQTT 5.0 properties.
//!
//! A single struct holds every property; the decoder checks that each packet
//! carries only the properties the standard allows for it and none twice
//! (except User Property and Subscription Identifier).

use bytes::Bytes;

/// Property identifiers from MQTT 5.0 section 2.2.2.2.
pub mod id {
    /// 0x01 Payload Format Indicator (property identifier).
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    /// 0x02 Message Expiry Interval (property identifier).
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    /// 0x03 Content Type (property identifier).
    pub const CONTENT_TYPE: u8 = 0x03;
    /// 0x08 Response Topic (property identifier).
    pub const RESPONSE_TOPIC: u8 = 0x08;
    /// 0x09 Correlation Data (property identifier).
    pub const CORRELATION_DATA: u8 = 0x09;
    /// 0x0B Subscription Identifier (property identifier).
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    /// 0x11 Session Expiry Interval (property identifier).
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    /// 0x12 Assigned Client Identifier (property identifier).
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    /// 0x13 Server Keep Alive (property identifier).
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// 0x15 Authentication Method (property identifier).
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    /// 0x16 Authentication Data (property identifier).
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    /// 0x17 Request Problem Information (property identifier).
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    /// 0x18 Will Delay Interval (property identifier).
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    /// 0x19 Request Response Information (property identifier).
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    /// 0x1A Response Information (property identifier).
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    /// 0x1C Server Reference (property identifier).
    pub const SERVER_REFERENCE: u8 = 0x1C;
    /// 0x1F Reason String (property identifier).
    pub const REASON_STRING: u8 = 0x1F;
    /// 0x21 Receive Maximum (property identifier).
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    /// 0x22 Topic Alias Maximum (property identifier).
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// 0x23 Topic Alias (property identifier).
    pub const TOPIC_ALIAS: u8 = 0x23;
    /// 0x24 Maximum QoS (property identifier).
    pub const MAXIMUM_QOS: u8 = 0x24;
    /// 0x25 Retain Available (property identifier).
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    /// 0x26 User Property (property identifier).
    pub const USER_PROPERTY: u8 = 0x26;
    /// 0x27 Maximum Packet Size (property identifier).
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// 0x28 Wildcard Subscription Available (property identifier).
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    /// 0x29 Subscription Identifier Available (property identifier).
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    /// 0x2A Shared Subscription Available (property identifier).
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// All MQTT 5.0 properties; `None`/empty means absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties {
    /// 0x01 Payload Format Indicator (0 = bytes, 1 = UTF-8).
    pub payload_format_indicator: Option<u8>,
    /// 0x02 Message Expiry Interval, seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<String>,
    /// 0x08 Response Topic.
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// 0x0B Subscription Identifier(s); several on a forwarded PUBLISH, one on SUBSCRIBE.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11 Session Expiry Interval, seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x12 Assigned Client Identifier.
    pub assigned_client_identifier: Option<String>,
    /// 0x13 Server Keep Alive, seconds.
    pub server_keep_alive: Option<u16>,
    /// 0x15 Authentication Method.
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data.
    pub authentication_data: Option<Bytes>,
    /// 0x17 Request Problem Information.
    pub request_problem_information: Option<u8>,
    /// 0x18 Will Delay Interval, seconds.
    pub will_delay_interval: Option<u32>,
    /// 0x19 Request Response Information.
    pub request_response_information: Option<u8>,
    /// 0x1A Response Information.
    pub response_information: Option<String>,
    /// 0x1C Server Reference.
    pub server_reference: Option<String>,
    /// 0x1F Reason String.
    pub reason_string: Option<String>,
    /// 0x21 Receive Maximum.
    pub receive_maximum: Option<u16>,
    /// 0x22 Topic Alias Maximum.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 Topic Alias.
    pub topic_alias: Option<u16>,
    /// 0x24 Maximum QoS (0 or 1).
    pub maximum_qos: Option<u8>,
    /// 0x25 Retain Available.
    pub retain_available: Option<u8>,
    /// 0x26 User Property pairs, order preserved.
    pub user_properties: Vec<(String, String)>,
    /// 0x27 Maximum Packet Size.
    pub maximum_packet_size: Option<u32>,
    /// 0x28 Wildcard Subscription Available.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29 Subscription Identifier Available.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A Shared Subscription Available.
    pub shared_subscription_available: Option<u8>,
}

impl Properties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

/// No properties: what an empty [`CompactProperties`] reads as.
static NO_PROPERTIES: Properties = Properties {
    payload_format_indicator: None,
    message_expiry_interval: None,
    content_type: None,
    response_topic: None,
    correlation_data: None,
    subscription_identifiers: Vec::new(),
    session_expiry_interval: None,
    assigned_client_identifier: None,
    server_keep_alive: None,
    authentication_method: None,
    authentication_data: None,
    request_problem_information: None,
    will_delay_interval: None,
    request_response_information: None,
    response_information: None,
    server_reference: None,
    reason_string: None,
    receive_maximum: None,
    topic_alias_maximum: None,
    topic_alias: None,
    maximum_qos: None,
    retain_available: None,
    user_properties: Vec::new(),
    maximum_packet_size: None,
    wildcard_subscription_available: None,
    subscription_identifier_available: None,
    shared_subscription_available: None,
};

/// [`Properties`] behind one pointer, allocated only once a property is set.
///
/// The packets that pass through the broker per message (PUBLISH and its
/// acknowledgements) usually carry no property, and are moved by value
/// through several queues: inline, [`Properties`] made every move copy
/// ~350 bytes. Reads go through `Deref` (an empty value reads as
/// [`Properties::default`]); the first `DerefMut` allocates.
#[derive(Clone, Default)]
pub struct CompactProperties(Option<Box<Properties>>);

impl CompactProperties {
    /// No properties.
    pub const fn new() -> Self {
        CompactProperties(None)
    }

    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(Properties::is_empty)
    }

    /// The properties, if any were ever set; unlike `DerefMut` this never
    /// allocates, for code that only clears or takes a property.
    pub fn get_mut(&mut self) -> Option<&mut Properties> {
        self.0.as_deref_mut()
    }

    /// The properties by value (the default when none are set).
    pub fn into_inner(self) -> Properties {
        self.0.map(|b| *b).unwrap_or_default()
    }
}

impl std::ops::Deref for CompactProperties {
    type Target = Properties;

    fn deref(&self) -> &Properties {
        self.0.as_deref().unwrap_or(&NO_PROPERTIES)
    }
}

impl std::ops::DerefMut for CompactProperties {
    fn deref_mut(&mut self) -> &mut Properties {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<Properties> for CompactProperties {
    fn from(p: Properties) -> Self {
        if p.is_empty() {
            CompactProperties(None)
        } else {
            CompactProperties(Some(Box::new(p)))
        }
    }
}

impl From<CompactProperties> for Properties {
    fn from(p: CompactProperties) -> Self {
        p.into_inner()
    }
}

/// Equal when the properties are: an allocated empty set equals none.
impl PartialEq for CompactProperties {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for CompactProperties {}

impl PartialEq<Properties> for CompactProperties {
    fn eq(&self, other: &Properties) -> bool {
        **self == *other
    }
}

/// Prints as [`Properties`] does.
impl std::fmt::Debug for CompactProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_compact_properties_read_as_default_without_allocating() {
        let p = CompactProperties::new();
        assert!(p.0.is_none());
        assert!(p.is_empty());
        assert_eq!(*p, Properties::default());
        assert_eq!(p, CompactProperties::from(Properties::default()));
        assert!(CompactProperties::from(Properties::default()).0.is_none());
    }

    #[test]
    fn setting_a_property_allocates_and_round_trips() {
        let mut p = CompactProperties::new();
        p.topic_alias = Some(3);
        assert!(p.0.is_some());
        assert!(!p.is_empty());
        let full = p.clone().into_inner();
        assert_eq!(full.topic_alias, Some(3));
        assert_eq!(CompactProperties::from(full), p);
        // Allocated but emptied again: equal to none.
        p.topic_alias = None;
        assert!(p.is_empty());
        assert_eq!(p, CompactProperties::new());
        assert_eq!(format!("{p:?}"), format!("{:?}", Properties::default()));
    }

    #[test]
    fn compact_properties_are_one_pointer() {
        assert_eq!(size_of::<CompactProperties>(), size_of::<usize>());
    }
}
