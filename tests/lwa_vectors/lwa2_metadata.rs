//! LWA2 metadata protection vectors (LWA2.md section 7.1,
//! `lwa2-metadata.json`): the first two LWA2 handshake vectors with the
//! offer's `M` bit set, and PUBLISH records whose topic is the placeholder
//! and whose plaintext is the inner layout (real topic, property block,
//! payload). The handshakes run through both sides' typestates
//! ([`super::lwa2::handshake_vector`]); the property blocks are encoded by
//! the crate's MQTT codec, so they are real PUBLISH properties.

use lwa_core::crypto::Blake3;
use lwa_core::lwa2::metadata::{Inner, PLACEHOLDER_TOPIC};
use lwa_core::Direction;
use mqtt_lwa::codec::{publish_properties_content, Properties};

use super::compute::PlannedRecord;
use super::model::*;

/// One PUBLISH under metadata protection: what the application sent.
struct MetaPlan {
    direction: Direction,
    qos: u8,
    retain: bool,
    topic: &'static str,
    properties: Properties,
    payload: &'static [u8],
}

fn plans() -> Vec<MetaPlan> {
    let json = Properties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        user_properties: vec![("unit".into(), "celsius".into())],
        ..Properties::default()
    };
    let request = Properties {
        message_expiry_interval: Some(60),
        response_topic: Some("sensors/sensor-01/reply".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"\x00\x01\x02\x03")),
        ..Properties::default()
    };
    let delivered = Properties {
        subscription_identifiers: vec![7],
        ..Properties::default()
    };
    // A property block over 127 bytes: a two-byte inner property length.
    let long = Properties {
        user_properties: (0..8)
            .map(|i| (format!("key-{i}"), "a-value-of-some-length".to_owned()))
            .collect(),
        ..Properties::default()
    };
    vec![
        MetaPlan {
            direction: Direction::ClientToBroker,
            qos: 1,
            retain: false,
            topic: "sensors/sensor-01/temp",
            properties: json,
            payload: b"{\"t\":21.5}",
        },
        MetaPlan {
            direction: Direction::ClientToBroker,
            qos: 0,
            retain: true,
            topic: "sensors/sensor-01/status",
            properties: Properties::default(),
            payload: b"online",
        },
        MetaPlan {
            direction: Direction::BrokerToClient,
            qos: 2,
            retain: false,
            topic: "commands/sensor-01",
            properties: request,
            payload: b"",
        },
        MetaPlan {
            direction: Direction::BrokerToClient,
            qos: 0,
            retain: false,
            topic: "büro/raum 2/temperatur",
            properties: delivered,
            payload: b"x",
        },
        MetaPlan {
            direction: Direction::ClientToBroker,
            qos: 1,
            retain: false,
            topic: "t",
            properties: long,
            payload: b"long properties",
        },
    ]
}

/// The inner plaintext of `plan` and what the vector records of it.
fn inner_of(plan: &MetaPlan) -> (Vec<u8>, MetadataJson) {
    let content = publish_properties_content(&plan.properties).expect("PUBLISH properties");
    let inner = Inner {
        topic: plan.topic,
        properties: &content,
        payload: plan.payload,
    }
    .to_bytes()
    .unwrap();
    (
        inner,
        MetadataJson {
            topic: plan.topic.to_owned(),
            properties: h(&content),
            payload: h(plan.payload),
        },
    )
}

/// A handshake vector with `M` set and `plans` sealed as inner layouts.
fn metadata_vector<B: Blake3>(
    name: &str,
    description: &str,
    mut inputs: HandshakeInputs,
    plans: &[MetaPlan],
) -> HandshakeVector {
    inputs.protect_metadata = true;
    let (planned, metadata): (Vec<PlannedRecord>, Vec<MetadataJson>) = plans
        .iter()
        .map(|p| {
            let (inner, meta) = inner_of(p);
            (
                PlannedRecord {
                    direction: p.direction,
                    topic: PLACEHOLDER_TOPIC.to_owned(),
                    qos: p.qos,
                    retain: p.retain,
                    plaintext: inner,
                },
                meta,
            )
        })
        .unzip();
    let mut v = super::lwa2::handshake_vector::<B>(name, description, inputs, &planned);
    assert_eq!(
        v.inputs.client_record_limit_log2 | 0x80,
        byte0(&v.messages.offer)
    );
    assert_eq!(byte0(&v.messages.response) & 0x80, 0x80, "M granted");
    for (r, meta) in v.records.iter_mut().zip(metadata) {
        // What the record carries parses back to what was sent.
        let plain = unh(&r.plaintext);
        let parsed = Inner::parse(&plain).unwrap();
        assert_eq!(parsed.topic, meta.topic);
        assert_eq!(h(parsed.properties), meta.properties);
        assert_eq!(h(parsed.payload), meta.payload);
        r.metadata = Some(meta);
    }
    v
}

fn byte0(hex_text: &str) -> u8 {
    unh(hex_text)[0]
}

/// The file: the first two LWA2 handshake vectors' inputs with `M`.
pub fn metadata_file<B: Blake3>(lwa2: &HandshakeFile) -> HandshakeFile {
    let plans = plans();
    let vectors = lwa2
        .vectors
        .iter()
        .take(2)
        .map(|base| {
            metadata_vector::<B>(
                &format!("{}-metadata", base.name),
                &format!(
                    "{}; metadata protection asked for and granted (M = 0x80 in the first byte \
                     of offer and response), five PUBLISH records with topic, properties and \
                     payload inside",
                    base.description
                ),
                base.inputs.clone(),
                &plans,
            )
        })
        .collect();
    HandshakeFile {
        lwa_version: 2,
        description: "LWA2 handshakes with metadata protection (protocol-spec/LWA2.md sections \
                      7.1 and 13): records carry the placeholder topic \"L\" and the inner \
                      layout lp(topic) | vbi(n) | properties | payload as plaintext; `metadata` \
                      holds what it encodes; all byte strings lower-case hex"
            .into(),
        vectors,
    }
}

/// Checks the stored file: recomputed from its own inputs and metadata, on backend `B`.
pub fn check<B: Blake3>(stored: &HandshakeFile, lwa2: &HandshakeFile) -> HandshakeFile {
    assert_eq!(stored.lwa_version, 2);
    assert_eq!(stored.vectors.len(), 2);
    for v in &stored.vectors {
        assert!(v.inputs.protect_metadata, "{}", v.name);
        assert!(v.records.iter().all(|r| r.topic == PLACEHOLDER_TOPIC));
        assert!(v.records.iter().all(|r| r.metadata.is_some()));
        // The inner layout, byte for byte, from the metadata alone.
        for r in &v.records {
            let m = r.metadata.as_ref().unwrap();
            let properties = unh(&m.properties);
            let payload = unh(&m.payload);
            let inner = Inner {
                topic: &m.topic,
                properties: &properties,
                payload: &payload,
            };
            assert_eq!(h(&inner.to_bytes().unwrap()), r.plaintext, "{}", v.name);
        }
    }
    metadata_file::<B>(lwa2)
}
