//! JSON shapes of protocol-spec/test-vectors/*.json (documented in LWA.md
//! section 13) and small helpers shared by the generator and the checker.

use std::collections::{BTreeMap, VecDeque};

use mqtt_lwa::lwa::{ConnectContext, Direction, Psk, WillContext};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// An RNG that hands out exactly the bytes it was given (ephemeral secrets, dummy PSK).
pub struct FixedRng(VecDeque<u8>);

impl FixedRng {
    pub fn new(parts: &[&[u8]]) -> Self {
        FixedRng(parts.iter().flat_map(|p| p.iter().copied()).collect())
    }
    pub fn remaining(&self) -> usize {
        self.0.len()
    }
}

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.0.pop_front().expect("vector randomness exhausted");
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FixedRng {}

pub fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub fn unh(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_else(|e| panic!("bad hex {text:?}: {e}"))
}

pub fn unh32(text: &str) -> [u8; 32] {
    unh(text).try_into().expect("32 bytes")
}

pub fn unh12(text: &str) -> [u8; 12] {
    unh(text).try_into().expect("12 bytes")
}

pub fn direction(name: &str) -> Direction {
    match name {
        "c2b" => Direction::ClientToBroker,
        "b2c" => Direction::BrokerToClient,
        other => panic!("unknown direction {other}"),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WillJson {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub payload: String,
}

/// Everything a handshake is computed from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandshakeInputs {
    pub psk: String,
    pub identity: String,
    pub client_id: String,
    pub clean_start: bool,
    pub will: Option<WillJson>,
    pub session_present: bool,
    pub client_record_limit_log2: u8,
    pub broker_record_limit_log2: u8,
    pub client_ephemeral_secret: String,
    pub broker_ephemeral_secret: String,
    /// LWA2 only: the offer asks for metadata protection (LWA2.md 7.1). Absent
    /// (false) in every file but `lwa2-metadata.json`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect_metadata: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Owns the will payload so a `ConnectContext` can borrow it.
pub struct OwnedContext {
    pub client_id: String,
    pub clean_start: bool,
    pub will: Option<(String, u8, bool, Vec<u8>)>,
}

impl HandshakeInputs {
    pub fn owned_context(&self) -> OwnedContext {
        OwnedContext {
            client_id: self.client_id.clone(),
            clean_start: self.clean_start,
            will: self
                .will
                .as_ref()
                .map(|w| (w.topic.clone(), w.qos, w.retain, unh(&w.payload))),
        }
    }
    pub fn psk(&self) -> Psk {
        Psk::new(unh32(&self.psk))
    }
}

impl OwnedContext {
    pub fn context(&self) -> ConnectContext<'_> {
        ConnectContext {
            client_id: &self.client_id,
            clean_start: self.clean_start,
            will: self
                .will
                .as_ref()
                .map(|(topic, qos, retain, payload)| WillContext {
                    topic,
                    qos: *qos,
                    retain: *retain,
                    payload,
                }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Intermediate {
    pub client_ephemeral_public: String,
    pub broker_ephemeral_public: String,
    pub connect_context: String,
    pub chosen_record_limit_log2: u8,
    pub response_without_mac: String,
    pub transcript_input: String,
    pub th: String,
    pub dh: String,
    pub prk: String,
    pub c2b_key: String,
    pub c2b_iv: String,
    pub b2c_key: String,
    pub b2c_iv: String,
    pub broker_mac_key: String,
    pub client_mac_key: String,
    pub broker_mac: String,
    pub client_mac: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Messages {
    pub offer: String,
    pub response: String,
    pub finished: String,
}

/// One sealed record with everything needed to reproduce it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordJson {
    pub direction: String,
    pub key: String,
    pub iv: String,
    pub record_limit_log2: u8,
    pub counter: u64,
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub plaintext: String,
    pub nonce: String,
    pub aad: String,
    pub sealed: String,
    /// Under LWA2 metadata protection: what `plaintext` (the inner layout of
    /// LWA2.md 7.1) encodes; `topic` is then the placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataJson>,
}

/// The real topic, the PUBLISH property block content and the payload that
/// an LWA2 record under metadata protection carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataJson {
    pub topic: String,
    pub properties: String,
    pub payload: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandshakeVector {
    pub name: String,
    pub description: String,
    pub inputs: HandshakeInputs,
    pub intermediate: Intermediate,
    pub messages: Messages,
    /// Records sealed in order by the handshake's own sealers (counters 0, 1, 2 per direction).
    pub records: Vec<RecordJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandshakeFile {
    pub lwa_version: u8,
    pub description: String,
    pub vectors: Vec<HandshakeVector>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordFile {
    pub lwa_version: u8,
    pub description: String,
    pub records: Vec<RecordJson>,
}

/// What the opener (or sealer) state is when the invalid record arrives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordState {
    pub direction: String,
    pub key: String,
    pub iv: String,
    pub record_limit_log2: u8,
    pub counter: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InvalidCase {
    /// The broker answers `offer` (given as bytes) and must fail.
    BrokerRespond {
        name: String,
        description: String,
        inputs: HandshakeInputs,
        psks: BTreeMap<String, String>,
        offer: String,
        expected_error: String,
        reason_code: u8,
    },
    /// The client (from `inputs`) receives `response` with `session_present` and must fail.
    ClientResponse {
        name: String,
        description: String,
        inputs: HandshakeInputs,
        response: String,
        session_present: bool,
        expected_error: String,
        reason_code: u8,
    },
    /// The broker answers the honest offer of `inputs`, then receives `finished` and must fail.
    BrokerFinished {
        name: String,
        description: String,
        inputs: HandshakeInputs,
        psks: BTreeMap<String, String>,
        broker_dummy_psk: Option<String>,
        offer: String,
        response: String,
        finished: String,
        expected_error: String,
        reason_code: u8,
    },
    /// An opener in `state` receives `sealed` for (topic, qos, retain) and must fail.
    RecordOpen {
        name: String,
        description: String,
        state: RecordState,
        topic: String,
        qos: u8,
        retain: bool,
        sealed: String,
        expected_error: String,
        reason_code: u8,
    },
    /// A sealer in `state` (at its limit) must refuse to seal.
    RecordSeal {
        name: String,
        description: String,
        state: RecordState,
        topic: String,
        qos: u8,
        retain: bool,
        plaintext: String,
        expected_error: String,
        reason_code: u8,
    },
}

impl InvalidCase {
    pub fn name(&self) -> &str {
        match self {
            InvalidCase::BrokerRespond { name, .. }
            | InvalidCase::ClientResponse { name, .. }
            | InvalidCase::BrokerFinished { name, .. }
            | InvalidCase::RecordOpen { name, .. }
            | InvalidCase::RecordSeal { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvalidFile {
    pub lwa_version: u8,
    pub description: String,
    pub cases: Vec<InvalidCase>,
}
