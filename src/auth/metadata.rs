//! PUBLISH packets through a connection's [`PayloadProtection`]: the payload
//! alone, or under LWA2's metadata protection (LWA2.md 7.1) the Topic Name
//! and properties too. The byte layout is `lwa_core::lwa2::metadata`'s; this
//! module maps it to MQTT packets and applies MQTT's rules to what a record
//! carried (topic name, PUBLISH properties), as the decoder does for a
//! PUBLISH's header.

use bytes::Bytes;

use super::PayloadProtection;
use crate::codec::{
    publish_properties_content, publish_properties_from_content, topic::validate_topic_name,
    CompactProperties, Publish, ReasonCode,
};
use crate::lwa::lwa2::metadata::{Inner, PLACEHOLDER_TOPIC};

/// Seals `publish` for the wire. Its topic must be the real one (no alias
/// applied yet); under metadata protection its topic becomes the placeholder
/// and its properties move into the record, so no alias may be applied after.
pub fn seal_publish(
    p: &mut dyn PayloadProtection,
    publish: &mut Publish,
) -> Result<(), ReasonCode> {
    if !p.protects_metadata() {
        publish.payload = p.seal(
            &publish.topic,
            publish.qos,
            publish.retain,
            &publish.payload,
        )?;
        return Ok(());
    }
    let mut properties = std::mem::take(&mut publish.properties).into_inner();
    // An alias names a topic on the wire, and the wire shows none.
    properties.topic_alias = None;
    let content = publish_properties_content(&properties).map_err(|e| {
        tracing::warn!(error = %e, "PUBLISH properties not sealed");
        e.reason_code()
    })?;
    let inner = Inner {
        topic: &publish.topic,
        properties: &content,
        payload: &publish.payload,
    }
    .to_bytes()
    .map_err(|e| {
        tracing::warn!(error = %e, "protected metadata not encoded");
        ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
    })?;
    publish.payload = p.seal(PLACEHOLDER_TOPIC, publish.qos, publish.retain, &inner)?;
    publish.topic = PLACEHOLDER_TOPIC.to_owned();
    Ok(())
}

/// Checks the header of a received PUBLISH under metadata protection before
/// anything else reads it (alias resolution included): the placeholder topic
/// and no property at all, or the peer exposed metadata (0x82).
pub fn check_wire_header(publish: &Publish) -> Result<(), ReasonCode> {
    if publish.topic != PLACEHOLDER_TOPIC || !publish.properties.is_empty() {
        tracing::warn!(
            topic_len = publish.topic.len(),
            "PUBLISH shows a topic or properties under metadata protection"
        );
        return Err(ReasonCode::PROTOCOL_ERROR);
    }
    Ok(())
}

/// Opens a received PUBLISH in place: its payload, and under metadata
/// protection its topic and properties. The topic must be resolved from any
/// alias first (without metadata protection the record binds the real topic).
pub fn open_publish(
    p: &mut dyn PayloadProtection,
    publish: &mut Publish,
) -> Result<(), ReasonCode> {
    if !p.protects_metadata() {
        publish.payload = p.open(
            &publish.topic,
            publish.qos,
            publish.retain,
            &publish.payload,
        )?;
        return Ok(());
    }
    check_wire_header(publish)?;
    let plain = p.open(
        PLACEHOLDER_TOPIC,
        publish.qos,
        publish.retain,
        &publish.payload,
    )?;
    unpack(publish, plain)
}

/// Puts what an opened record under metadata protection carried into
/// `publish`: the topic and properties, checked as the MQTT decoder checks a
/// PUBLISH header, and the payload (a slice of `plain`, no copy).
pub fn unpack(publish: &mut Publish, plain: Bytes) -> Result<(), ReasonCode> {
    let inner = Inner::parse(&plain).map_err(|e| {
        tracing::warn!(error = %e, "protected metadata refused");
        ReasonCode::MALFORMED_PACKET
    })?;
    validate_topic_name(inner.topic).map_err(|e| e.reason_code())?;
    let topic = inner.topic.to_owned();
    let props_at = plain.len() - inner.payload.len() - inner.properties.len();
    let content = plain.slice(props_at..props_at + inner.properties.len());
    let properties: CompactProperties =
        publish_properties_from_content(content).map_err(|e| e.reason_code())?;
    if properties.topic_alias.is_some() {
        // Inside a record an alias would name nothing (LWA2.md 7.1).
        return Err(ReasonCode::PROTOCOL_ERROR);
    }
    publish.payload = plain.slice(plain.len() - inner.payload.len()..);
    publish.topic = topic;
    publish.properties = properties;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Properties, QoS};

    /// A stand-in protection: "seals" by appending 16 zero bytes, and
    /// remembers the topic each call bound.
    #[derive(Default)]
    struct Fake {
        metadata: bool,
        topics: Vec<String>,
    }

    impl PayloadProtection for Fake {
        fn seal(
            &mut self,
            topic: &str,
            _: QoS,
            _: bool,
            payload: &[u8],
        ) -> Result<Bytes, ReasonCode> {
            self.topics.push(topic.to_owned());
            Ok([payload, &[0u8; 16]].concat().into())
        }
        fn open(
            &mut self,
            topic: &str,
            _: QoS,
            _: bool,
            payload: &[u8],
        ) -> Result<Bytes, ReasonCode> {
            self.topics.push(topic.to_owned());
            let n = payload
                .len()
                .checked_sub(16)
                .ok_or(ReasonCode::NOT_AUTHORIZED)?;
            Ok(Bytes::copy_from_slice(&payload[..n]))
        }
        fn overhead(&self) -> usize {
            16
        }
        fn protects_metadata(&self) -> bool {
            self.metadata
        }
    }

    fn publish(topic: &str, properties: Properties) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.into(),
            packet_id: 7,
            properties: properties.into(),
            payload: Bytes::from_static(b"21.5"),
        }
    }

    fn props() -> Properties {
        Properties {
            content_type: Some("text/plain".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..Properties::default()
        }
    }

    #[test]
    fn without_metadata_only_the_payload_changes() {
        let mut p = Fake::default();
        let mut m = publish("a/b", props());
        seal_publish(&mut p, &mut m).unwrap();
        assert_eq!((m.topic.as_str(), m.payload.len()), ("a/b", 4 + 16));
        assert_eq!(*m.properties, props());
        open_publish(&mut p, &mut m).unwrap();
        assert_eq!(&m.payload[..], b"21.5");
        assert_eq!(p.topics, ["a/b", "a/b"]);
    }

    #[test]
    fn with_metadata_topic_and_properties_go_inside_and_come_back() {
        let mut p = Fake {
            metadata: true,
            ..Fake::default()
        };
        let mut with_alias = props();
        with_alias.topic_alias = Some(3);
        let mut m = publish("a/b", with_alias);
        seal_publish(&mut p, &mut m).unwrap();
        assert_eq!(m.topic, PLACEHOLDER_TOPIC);
        assert!(m.properties.is_empty());
        let inner = Inner::parse(&m.payload[..m.payload.len() - 16]).unwrap();
        assert_eq!((inner.topic, inner.payload), ("a/b", &b"21.5"[..]));
        // What it adds over sealing the payload alone: the placeholder's 3
        // bytes and the inner property length's 1, beside the properties and
        // topic that left the header (the alias is dropped, not moved).
        let content = publish_properties_content(&props()).unwrap();
        assert_eq!(inner.properties, &content[..]);
        open_publish(&mut p, &mut m).unwrap();
        assert_eq!(m.topic, "a/b");
        assert_eq!(*m.properties, props());
        assert_eq!(&m.payload[..], b"21.5");
        assert_eq!(p.topics, [PLACEHOLDER_TOPIC, PLACEHOLDER_TOPIC]);
    }

    #[test]
    fn a_header_that_shows_metadata_is_a_protocol_error() {
        let mut p = Fake {
            metadata: true,
            ..Fake::default()
        };
        for shown in [
            publish("a/b", Properties::default()),
            publish(PLACEHOLDER_TOPIC, props()),
            publish(
                "",
                Properties {
                    topic_alias: Some(1),
                    ..Properties::default()
                },
            ),
        ] {
            let mut m = shown;
            assert_eq!(
                open_publish(&mut p, &mut m),
                Err(ReasonCode::PROTOCOL_ERROR)
            );
        }
        // Refused before anything was opened.
        assert!(p.topics.is_empty());
    }

    #[test]
    fn what_a_record_carries_is_checked_as_a_publish_header() {
        let inner = |topic: &str, properties: &[u8]| {
            let mut b = Inner {
                topic,
                properties,
                payload: b"x",
            }
            .to_bytes()
            .unwrap();
            b.extend_from_slice(&[0; 16]);
            Bytes::from(b)
        };
        let alias = publish_properties_content(&Properties {
            topic_alias: Some(1),
            ..Properties::default()
        })
        .unwrap();
        let cases = [
            (Bytes::from(vec![0; 3 + 16]), ReasonCode::MALFORMED_PACKET),
            (inner("a/+", &[]), ReasonCode::TOPIC_NAME_INVALID),
            (inner("a\u{0}b", &[]), ReasonCode::TOPIC_NAME_INVALID),
            (inner("a", &alias), ReasonCode::PROTOCOL_ERROR),
            // Session Expiry Interval (0x11) is not a PUBLISH property.
            (
                inner("a", &[0x11, 0, 0, 0, 1]),
                ReasonCode::MALFORMED_PACKET,
            ),
        ];
        for (sealed, code) in cases {
            let mut p = Fake {
                metadata: true,
                ..Fake::default()
            };
            let mut m = publish(PLACEHOLDER_TOPIC, Properties::default());
            m.payload = sealed;
            assert_eq!(open_publish(&mut p, &mut m), Err(code));
        }
    }
}
