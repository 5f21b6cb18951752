//! The vector catalogue: which handshakes and records the JSON files
//! contain (invalid cases are in invalid_cases.rs).

use mqtt_lwa::lwa::Direction;

use super::compute::*;
use super::model::*;

/// RFC 7748 section 6.1 key pairs: the dh of the first vector is a published value.
pub const RFC7748_ALICE_SECRET: &str =
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
pub const RFC7748_BOB_SECRET: &str =
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
pub const RFC7748_SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

pub fn pattern(start: u8, len: usize) -> String {
    h(&(0..len)
        .map(|i| start.wrapping_add(i as u8))
        .collect::<Vec<_>>())
}

pub fn plan(
    direction: Direction,
    topic: &str,
    qos: u8,
    retain: bool,
    plaintext: &[u8],
) -> PlannedRecord {
    PlannedRecord {
        direction,
        topic: topic.to_owned(),
        qos,
        retain,
        plaintext: plaintext.to_vec(),
    }
}

pub fn basic_inputs() -> HandshakeInputs {
    HandshakeInputs {
        psk: pattern(0x00, 32),
        identity: "sensor-01".into(),
        client_id: "sensor-01".into(),
        clean_start: true,
        will: None,
        session_present: false,
        client_record_limit_log2: 20,
        broker_record_limit_log2: 16,
        client_ephemeral_secret: RFC7748_ALICE_SECRET.into(),
        broker_ephemeral_secret: RFC7748_BOB_SECRET.into(),
        protect_metadata: false,
    }
}

pub fn handshakes() -> HandshakeFile {
    use Direction::{BrokerToClient as B2C, ClientToBroker as C2B};
    let long: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let v1 = handshake_vector::<Gen>(
        "rfc7748-keys",
        "RFC 7748 6.1 key pairs as ephemerals (dh is the RFC's shared secret); no will; \
         Session Present 0; limits 20 (client) / 16 (broker) -> 16",
        basic_inputs(),
        &[
            plan(C2B, "sensors/sensor-01/temp", 0, false, b""),
            plan(C2B, "sensors/sensor-01/temp", 1, false, b"21.5"),
            plan(B2C, "cmd/sensor-01", 1, false, b"reboot"),
            plan(C2B, "sensors/sensor-01/temp", 2, true, &[0xAB; 64]),
            plan(B2C, "cmd/sensor-01", 2, true, &long),
            plan(B2C, "cmd/sensor-01", 0, false, &[0x00; 16]),
        ],
    );
    let v2 = handshake_vector::<Gen>(
        "will-and-session-present",
        "Clean Start 0 with a Will (QoS 1, retain) and Session Present 1; limits 16 / 24 -> 16",
        HandshakeInputs {
            psk: pattern(0x80, 32),
            identity: "plant/line-3/unit-42".into(),
            client_id: "unit-42".into(),
            clean_start: false,
            will: Some(WillJson {
                topic: "plant/line-3/unit-42/status".into(),
                qos: 1,
                retain: true,
                payload: h(b"offline"),
            }),
            session_present: true,
            client_record_limit_log2: 16,
            broker_record_limit_log2: 24,
            client_ephemeral_secret: pattern(0x10, 32),
            broker_ephemeral_secret: pattern(0xA0, 32),
            protect_metadata: false,
        },
        &[
            plan(C2B, "plant/line-3/unit-42/rpm", 1, false, b"1450"),
            plan(B2C, "plant/line-3/setpoint", 1, true, b"{\"rpm\":1500}"),
            plan(C2B, "plant/line-3/unit-42/rpm", 1, false, b"1499"),
        ],
    );
    let v3 = handshake_vector::<Gen>(
        "utf8-identity-max-limit",
        "Multi-byte UTF-8 identity and topics, QoS 0 will with empty payload, limits 48 / 48",
        HandshakeInputs {
            psk: "ff".repeat(32),
            identity: "capteur-é-温度".into(),
            client_id: "capteur-1".into(),
            clean_start: true,
            will: Some(WillJson {
                topic: "état/capteur-1".into(),
                qos: 0,
                retain: false,
                payload: String::new(),
            }),
            session_present: false,
            client_record_limit_log2: 48,
            broker_record_limit_log2: 48,
            client_ephemeral_secret: pattern(0x31, 32),
            broker_ephemeral_secret: pattern(0xC7, 32),
            protect_metadata: false,
        },
        &[
            plan(C2B, "温度/β", 0, false, "température".as_bytes()),
            plan(B2C, "温度/β", 0, false, b"ok"),
        ],
    );
    let v4 = handshake_vector::<Gen>(
        "longest-identity",
        "255-byte identity (largest offer, 290 bytes), limits 1 / 48 -> 1 (two records per direction)",
        HandshakeInputs {
            psk: pattern(0x55, 32),
            identity: "i".repeat(255),
            client_id: "c".into(),
            clean_start: true,
            will: None,
            session_present: false,
            client_record_limit_log2: 1,
            broker_record_limit_log2: 48,
            client_ephemeral_secret: pattern(0x01, 32),
            broker_ephemeral_secret: pattern(0xF0, 32),
            protect_metadata: false,
        },
        &[
            plan(C2B, "t", 0, false, b"first"),
            plan(C2B, "t", 0, false, b"second"),
            plan(B2C, "t", 0, false, b"only"),
        ],
    );
    assert_eq!(v1.intermediate.dh, RFC7748_SHARED);
    HandshakeFile {
        lwa_version: 1,
        description: "Complete LWA1 handshakes from fixed PSKs and ephemeral secrets, with every \
                      intermediate value, and records sealed in order by the resulting sessions."
            .into(),
        vectors: vec![v1, v2, v3, v4],
    }
}

pub fn records() -> RecordFile {
    let key: [u8; 32] = unh32(&pattern(0x40, 32));
    let iv: [u8; 12] = unh12(&pattern(0x70, 12));
    let big = (1u64 << 32) + 7;
    let last = (1u64 << 48) - 1;
    let mut out = Vec::new();
    for direction in [Direction::ClientToBroker, Direction::BrokerToClient] {
        for (counter, qos, retain, topic, payload) in [
            (0u64, 0u8, false, "a", Vec::new()),
            (1, 1, false, "a/b", b"x".to_vec()),
            (2, 2, true, "a/b/c", vec![0x5A; 1000]),
            (big, 1, true, "long/counter", b"counter above 2^32".to_vec()),
            (last, 0, false, "last/record", b"counter 2^48-1".to_vec()),
        ] {
            let p = plan(direction, topic, qos, retain, &payload);
            out.push(standalone_record::<Gen>(
                direction, key, iv, 48, counter, &p,
            ));
        }
    }
    RecordFile {
        lwa_version: 1,
        description: "Standalone records from explicit key, iv and counter (both directions; \
                      counters 0, 1, 2, 2^32+7 and 2^48-1; payloads of 0 to 1000 bytes)."
            .into(),
        records: out,
    }
}

impl HandshakeVector {
    /// (key, iv) of one direction, from the intermediate values.
    pub fn keys(&self, direction: Direction) -> ([u8; 32], [u8; 12]) {
        match direction {
            Direction::ClientToBroker => (
                unh32(&self.intermediate.c2b_key),
                unh12(&self.intermediate.c2b_iv),
            ),
            Direction::BrokerToClient => (
                unh32(&self.intermediate.b2c_key),
                unh12(&self.intermediate.b2c_iv),
            ),
        }
    }

    /// A fresh opener state of one direction of this session.
    pub fn records_state(&self, direction: Direction) -> RecordState {
        let (key, iv) = self.keys(direction);
        RecordState {
            direction: direction.to_string(),
            key: h(&key),
            iv: h(&iv),
            record_limit_log2: self.intermediate.chosen_record_limit_log2,
            counter: 0,
        }
    }
}
