//! What one experiment run measures: security modes, brokers, payload sizes,
//! QoS levels, and how much of each a profile does.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::link::LinkProfile;
use super::storm::StormProfile;

/// A security mode, as a client and a broker listener are configured for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// MQTT over TCP, anonymous.
    Plain,
    /// Username and PBKDF2 password, ACL.
    Password,
    /// TLS 1.3, broker certificate only.
    Tls13,
    /// TLS 1.3 with client certificates.
    Mtls13,
    /// TLS 1.2, broker certificate only.
    Tls12,
    /// TLS 1.3 resumed from a session ticket (psk_dhe_ke): the fast TLS
    /// handshake a returning client makes; every measured connection resumes.
    #[serde(rename = "tls13-resume")]
    Tls13Resume,
    /// TLS 1.3 restricted to X25519 and ChaCha20-Poly1305, LWA's primitives.
    #[serde(rename = "tls13-chacha")]
    Tls13Chacha,
    /// TLS 1.3 with an external PSK and X25519 (psk_dhe_ke), no certificates:
    /// what Mosquitto offers as `psk_file`. rustls has no external PSK
    /// (rustls issue 174), so the client is OpenSSL and only Mosquitto serves it.
    #[serde(rename = "tls13-psk")]
    Tls13Psk,
    /// PSK + X25519 in MQTT 5 enhanced auth, ChaCha20-Poly1305 payload records.
    Lwa,
    /// LWA2 (protocol-spec/LWA2.md): LWA with BLAKE3 and a 107-byte handshake.
    Lwa2,
}

impl Mode {
    /// Every mode, in report order.
    pub const ALL: [Mode; 10] = [
        Mode::Plain,
        Mode::Password,
        Mode::Tls13,
        Mode::Mtls13,
        Mode::Tls12,
        Mode::Tls13Resume,
        Mode::Tls13Chacha,
        Mode::Tls13Psk,
        Mode::Lwa,
        Mode::Lwa2,
    ];

    /// Name in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Password => "password",
            Mode::Tls13 => "tls13",
            Mode::Mtls13 => "mtls13",
            Mode::Tls12 => "tls12",
            Mode::Tls13Resume => "tls13-resume",
            Mode::Tls13Chacha => "tls13-chacha",
            Mode::Tls13Psk => "tls13-psk",
            Mode::Lwa => "lwa",
            Mode::Lwa2 => "lwa2",
        }
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            Mode::Tls13
                | Mode::Mtls13
                | Mode::Tls12
                | Mode::Tls13Resume
                | Mode::Tls13Chacha
                | Mode::Tls13Psk
        )
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The broker under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// This crate's broker (`mqtt-lwa broker`, a child process).
    #[serde(rename = "mqtt-lwa")]
    MqttLwa,
    /// Debian's mosquitto (external baseline; has no LWA).
    Mosquitto,
}

impl BrokerKind {
    /// Both brokers.
    pub const ALL: [BrokerKind; 2] = [BrokerKind::MqttLwa, BrokerKind::Mosquitto];

    /// Name in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::MqttLwa => "mqtt-lwa",
            BrokerKind::Mosquitto => "mosquitto",
        }
    }

    /// Whether this broker can serve `mode`.
    pub fn supports(self, mode: Mode) -> bool {
        match self {
            // Mosquitto has no LWA.
            BrokerKind::Mosquitto => !matches!(mode, Mode::Lwa | Mode::Lwa2),
            // rustls has no external PSK, so our TLS listener has none either.
            BrokerKind::MqttLwa => mode != Mode::Tls13Psk,
        }
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The payload sizes of the matrix: the seed study's 30-byte reading up to 16 KiB.
pub const PAYLOAD_SIZES: [usize; 4] = [30, 256, 1024, 16 * 1024];

/// How much a run measures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// `quick` or `full`.
    pub name: String,
    /// Modes measured.
    pub modes: Vec<Mode>,
    /// Brokers measured (mosquitto only where it is installed).
    pub brokers: Vec<BrokerKind>,
    /// Payload sizes in bytes.
    pub payloads: Vec<usize>,
    /// QoS levels.
    pub qos: Vec<u8>,
    /// Messages per throughput cell.
    pub throughput_messages: usize,
    /// Messages per latency cell (one in flight at a time).
    pub latency_messages: usize,
    /// Messages per cell on the byte-counting connections.
    pub wire_messages: usize,
    /// Connection set-ups timed per mode.
    pub setup_samples: usize,
    /// Idle-connection counts at which broker memory per connection is read, ascending (empty: skip).
    pub idle_connections: Vec<usize>,
    /// Connection storm (handshakes per second).
    pub storm: StormProfile,
    /// Whether one cell's relay byte counts are checked against a tshark capture.
    #[serde(default)]
    pub cross_check: bool,
    /// Times every throughput and latency cell is measured (modes interleaved between repeats).
    #[serde(default = "one")]
    pub repeats: usize,
    /// Shortest throughput cell in milliseconds: shorter runs are redone with more messages.
    #[serde(default)]
    pub min_cell_ms: u64,
    /// Links measured, in order (`loopback` or a [`super::link::LinkProfile`] name).
    #[serde(default = "loopback_only")]
    pub links: Vec<String>,
    /// The reduced matrix measured on emulated links.
    #[serde(default)]
    pub emulated: EmulatedMatrix,
    /// Messages per stock-client burst (`mosquitto_pub -l` to `mosquitto_sub`,
    /// plaintext, loopback; 0: skip).
    #[serde(default)]
    pub stock_messages: usize,
}

fn one() -> usize {
    1
}

fn loopback_only() -> Vec<String> {
    vec![LinkProfile::LOOPBACK.into()]
}

/// What a profile measures on an emulated link: every QoS, the seed's 30-byte
/// reading and 1 KiB, fewer messages, the listed modes only (all where empty),
/// and no idle-memory phase (broker memory does not depend on the link). On the `constrained`
/// link (1 Mbit/s, 100 ms round trip) a latency sample takes ~0.2 s and a
/// 1 KiB message ~8 ms of link time, so the loopback counts would take hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmulatedMatrix {
    /// Payload sizes in bytes.
    pub payloads: Vec<usize>,
    /// Messages per throughput cell.
    pub throughput_messages: usize,
    /// Messages per latency cell.
    pub latency_messages: usize,
    /// Messages per cell on the byte-counting connections.
    pub wire_messages: usize,
    /// Connection set-ups timed per mode.
    pub setup_samples: usize,
    /// Times every throughput and latency cell is measured.
    pub repeats: usize,
    /// Modes measured on emulated links (empty: every mode of the run).
    #[serde(default)]
    pub modes: Vec<Mode>,
}

impl Default for EmulatedMatrix {
    /// The quick profile's reduction.
    fn default() -> Self {
        EmulatedMatrix {
            payloads: vec![30, 1024],
            throughput_messages: 100,
            latency_messages: 10,
            wire_messages: 5,
            setup_samples: 3,
            repeats: 1,
            modes: Vec::new(),
        }
    }
}

impl Profile {
    /// Every cell, few messages: a valid report in under two minutes on a debug build.
    pub fn quick() -> Self {
        Profile {
            name: "quick".into(),
            modes: Mode::ALL.to_vec(),
            brokers: vec![BrokerKind::MqttLwa, BrokerKind::Mosquitto],
            payloads: PAYLOAD_SIZES.to_vec(),
            qos: vec![0, 1, 2],
            throughput_messages: 200,
            latency_messages: 30,
            wire_messages: 10,
            setup_samples: 3,
            idle_connections: vec![100],
            storm: StormProfile {
                clients_per_core: 2,
                millis: 1000,
                password_millis: 500,
            },
            cross_check: true,
            repeats: 1,
            min_cell_ms: 0,
            links: loopback_only(),
            emulated: EmulatedMatrix::default(),
            stock_messages: 2_000,
        }
    }

    /// The run whose report is committed: enough messages for stable rates and tails.
    pub fn full() -> Self {
        Profile {
            name: "full".into(),
            throughput_messages: 20_000,
            latency_messages: 2_000,
            wire_messages: 200,
            setup_samples: 200,
            idle_connections: vec![1_000, 10_000],
            storm: StormProfile {
                clients_per_core: 2,
                millis: 5000,
                password_millis: 2000,
            },
            // Five interleaved repeats: enough for a bootstrap interval
            // on every ratio (stats.rs).
            repeats: 5,
            min_cell_ms: 2_000,
            stock_messages: 20_000,
            links: LinkProfile::builtin().into_iter().map(|l| l.name).collect(),
            emulated: EmulatedMatrix {
                payloads: vec![30, 1024],
                // A throughput cell still lasts at least `min_cell_ms` (shorter runs are
                // redone with more messages): 300 messages of 1 KiB are ~2.5 s of the
                // `constrained` link, where 2,000 took ~18 s per cell.
                throughput_messages: 300,
                latency_messages: 25,
                wire_messages: 20,
                setup_samples: 20,
                // Repeated like loopback, so the seed comparison has intervals.
                repeats: 5,
                // The seed study's three modes, the fast TLS handshake and both LWA
                // versions: what a link changes (round trips, bytes per message) shows
                // in these. Every mode of the run, measured with every mode of the
                // emulated links, took ~4 h on 2 cores (the `constrained` link ~2.3 min per
                // (broker, mode) and repeat), longer than a working session.
                modes: vec![
                    Mode::Plain,
                    Mode::Password,
                    Mode::Tls13,
                    Mode::Tls13Resume,
                    Mode::Lwa,
                    Mode::Lwa2,
                ],
            },
            ..Profile::quick()
        }
    }

    /// What this profile measures on `link`: itself on loopback and on a remote broker's
    /// network (the whole matrix, as before remote links had a name), its
    /// [`EmulatedMatrix`] on emulated links.
    pub fn for_link(&self, link: &LinkProfile) -> Profile {
        if !link.is_emulated() {
            return self.clone();
        }
        let e = &self.emulated;
        Profile {
            modes: if e.modes.is_empty() {
                self.modes.clone()
            } else {
                self.modes
                    .iter()
                    .filter(|m| e.modes.contains(m))
                    .copied()
                    .collect()
            },
            payloads: e.payloads.clone(),
            throughput_messages: e.throughput_messages,
            latency_messages: e.latency_messages,
            wire_messages: e.wire_messages,
            setup_samples: e.setup_samples,
            repeats: e.repeats,
            // Memory, storms and the capture check measure the broker, not the link: loopback only.
            idle_connections: Vec::new(),
            storm: StormProfile {
                millis: 0,
                ..self.storm.clone()
            },
            cross_check: false,
            ..self.clone()
        }
    }

    /// The profile called `name`.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "quick" => Some(Profile::quick()),
            "full" => Some(Profile::full()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_names_are_the_display_names() {
        for b in [BrokerKind::MqttLwa, BrokerKind::Mosquitto] {
            assert_eq!(serde_json::to_value(b).unwrap(), b.name());
        }
        for m in Mode::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
        }
    }

    #[test]
    fn emulated_links_get_the_reduced_matrix() {
        let full = Profile::full();
        assert_eq!(full.links[0], "loopback");
        assert!(full.links.iter().any(|l| l == "pi-wifi"));
        assert_eq!(full.for_link(&LinkProfile::loopback()), full);
        let wifi = full.for_link(&LinkProfile::pi_wifi());
        assert_eq!(wifi.payloads, vec![30, 1024]);
        // The full profile's emulated links measure a subset of the modes, in the run's order;
        // a `--modes` choice narrows it further, and an empty subset keeps every mode.
        assert_eq!(
            wifi.modes,
            vec![
                Mode::Plain,
                Mode::Password,
                Mode::Tls13,
                Mode::Tls13Resume,
                Mode::Lwa,
                Mode::Lwa2
            ]
        );
        let narrowed = Profile {
            modes: vec![Mode::Lwa, Mode::Tls12, Mode::Plain],
            ..full.clone()
        };
        assert_eq!(
            narrowed.for_link(&LinkProfile::pi_wifi()).modes,
            vec![Mode::Lwa, Mode::Plain]
        );
        let mut every = full.clone();
        every.emulated.modes.clear();
        assert_eq!(every.for_link(&LinkProfile::pi_wifi()).modes, full.modes);
        assert_eq!(wifi.qos, vec![0, 1, 2]);
        assert!(wifi.idle_connections.is_empty());
        assert_eq!(wifi.storm.millis, 0);
        assert!(!wifi.cross_check);
        assert!(wifi.throughput_messages < full.throughput_messages);
        assert_eq!(Profile::quick().links, vec!["loopback".to_string()]);
    }
}
