//! Runs one security-relevant operation N times in memory, for counting
//! instructions under `qemu-aarch64 -plugin` (experiments/insn-count/run.sh):
//! the difference between two run lengths is the cost of N2 - N1 operations
//! with start-up and set-up cancelled out.
//!
//! `cost_ops OP N`, OP one of:
//! - `x25519` (key generation and shared secret, what one handshake side does),
//!   `x25519-shared` (the shared secret alone, comparable with published cycle counts);
//! - `handshake-MODE`, MODE one of plain, password, lwa, lwa2, lwa2-publish, tls12, tls13,
//!   mtls13, tls13-resume (both sides in memory, with MQTT CONNECT/CONNACK encoding and
//!   decoding). `lwa` is LWA1 and `lwa2` LWA2 with the client's AUTH finished (explicit key
//!   confirmation), both as this crate runs them (`mqtt_lwa::lwa`, lwa-core's ring backend:
//!   ring's SHA-256, HMAC and HKDF for LWA1, the blake3 crate for LWA2, x25519-dalek and ring's
//!   ChaCha20-Poly1305 for both). `lwa2-publish` is LWA2 with implicit key confirmation: no
//!   finished, the client seals its first PUBLISH payload (30 bytes) and the broker opens it as
//!   the confirmation, so it includes one record seal and open;
//! - `kdf-lwa1`, `kdf-lwa1-rustcrypto`, `kdf-lwa2`: the hash work of one handshake alone,
//!   without X25519, records or MQTT: on both sides, the transcript hash, the key schedule and
//!   both MACs. `kdf-lwa1` on ring's SHA-256/HMAC/HKDF (the backend `handshake-lwa` runs),
//!   `kdf-lwa1-rustcrypto` on lwa-core's portable default (the `sha2`, `hmac` and `hkdf`
//!   crates; `sha2` without its `asm` feature never uses the SHA-2 instructions), `kdf-lwa2` on
//!   the blake3 crate (both backends share it; inputs under 1 KiB take its portable Rust
//!   compression function, NEON or not);
//! - `message-MODE-SIZE`, MODE one of plain, lwa (ChaCha20-Poly1305 LWA record),
//!   tls13-aes128gcm, tls13-chacha20 (TLS 1.3 records), SIZE the payload in bytes: one QoS 1
//!   PUBLISH from client to broker, encoded, protected, unprotected and decoded;
//! - `aead-aes128gcm-SIZE`, `aead-chacha20poly1305-SIZE`: ring's AEAD alone, seal and open.
//!
//! `cost_ops --list` prints every OP with the two run lengths the counting script uses.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use lwa_core::crypto::{Blake3, Crypto};
use mqtt_lwa::auth::certs::{self, KeyAlgorithm};
use mqtt_lwa::auth::password::{PasswordHash, DEFAULT_ITERATIONS};
use mqtt_lwa::codec::{
    encode, ConnAck, Connect, Decoder, Packet, Properties, ProtocolVersion, Publish, QoS,
    ReasonCode,
};
use mqtt_lwa::lwa::{
    lwa2, BrokerResponder, ClientOffer, ConnectContext, Direction, Psk, RecordOpener, RecordSealer,
    MAC_LEN,
};
use mqtt_lwa::transport::tls::client::{client_config, server_name, ClientTlsOptions};
use mqtt_lwa::transport::tls::{server_config, ServerTlsOptions, TlsVersion};
use rand_core::OsRng;
use ring::aead;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection};
use x25519_dalek::{EphemeralSecret, PublicKey, StaticSecret};

const PAYLOAD: &[u8] = b"temperature=21.5C;humidity=40%";
const TOPIC: &str = "sensors/greenhouse-3/temperature";
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Every operation with the two run lengths N1 < N2 the counting script differences
/// (`--list`): longer for cheap operations, so the difference dwarfs the noise of set-up.
const OPERATIONS: &[(&str, u64, u64)] = &[
    ("x25519", 10, 110),
    ("x25519-shared", 10, 110),
    ("handshake-plain", 10, 110),
    ("handshake-password", 1, 3),
    ("handshake-lwa", 10, 110),
    ("handshake-lwa2", 10, 110),
    ("handshake-lwa2-publish", 10, 110),
    ("kdf-lwa1", 100, 1100),
    ("kdf-lwa1-rustcrypto", 100, 1100),
    ("kdf-lwa2", 100, 1100),
    ("handshake-tls12", 5, 25),
    ("handshake-tls13", 5, 25),
    ("handshake-mtls13", 5, 25),
    ("handshake-tls13-resume", 5, 25),
    ("message-plain-30", 100, 1100),
    ("message-plain-1024", 100, 1100),
    ("message-lwa-30", 100, 1100),
    ("message-lwa-1024", 100, 1100),
    ("message-tls13-aes128gcm-30", 100, 1100),
    ("message-tls13-aes128gcm-1024", 100, 1100),
    ("message-tls13-chacha20-30", 100, 1100),
    ("message-tls13-chacha20-1024", 100, 1100),
    ("aead-aes128gcm-1024", 100, 1100),
    ("aead-chacha20poly1305-1024", 100, 1100),
];

fn tls_configs(
    dir: &Path,
    version: TlsVersion,
    mutual: bool,
    suites: &[&str],
    resumption: bool,
) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    certs::init(dir, &[], KeyAlgorithm::EcdsaP256, &["client"], 30).expect("certs");
    let server = server_config(&ServerTlsOptions {
        cert_file: dir.join("broker.crt"),
        key_file: dir.join("broker.key"),
        ca_file: mutual.then(|| dir.join("ca.crt")),
        require_certificate: mutual,
        // A TLS 1.3 suite alone covers no TLS 1.2: then the server offers 1.3 only.
        min_version: if suites.is_empty() {
            TlsVersion::Tls12
        } else {
            version
        },
        cipher_suites: suites.iter().map(|s| s.to_string()).collect(),
    })
    .expect("server config");
    let mut client = (*client_config(&ClientTlsOptions {
        ca_file: Some(dir.join("ca.crt")),
        cert_file: mutual.then(|| dir.join("client.crt")),
        key_file: mutual.then(|| dir.join("client.key")),
        version: Some(version),
        insecure: false,
    })
    .expect("client config"))
    .clone();
    if !resumption {
        client.resumption = rustls::client::Resumption::disabled();
    }
    (server, Arc::new(client))
}

/// Moves bytes between the two sides until neither has anything to send.
fn pump(client: &mut ClientConnection, server: &mut ServerConnection) {
    let mut buf = Vec::new();
    loop {
        let mut moved = false;
        while client.wants_write() {
            buf.clear();
            client.write_tls(&mut buf).expect("write_tls");
            let mut rd = &buf[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).expect("read_tls");
                server.process_new_packets().expect("server");
            }
            moved = true;
        }
        while server.wants_write() {
            buf.clear();
            server.write_tls(&mut buf).expect("write_tls");
            let mut rd = &buf[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).expect("read_tls");
                client.process_new_packets().expect("client");
            }
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn tls_pair(
    server: &Arc<ServerConfig>,
    client: &Arc<ClientConfig>,
) -> (ClientConnection, ServerConnection) {
    let mut c = ClientConnection::new(Arc::clone(client), server_name("localhost").expect("name"))
        .expect("client");
    let mut s = ServerConnection::new(Arc::clone(server)).expect("server");
    pump(&mut c, &mut s);
    assert!(!c.is_handshaking() && !s.is_handshaking());
    (c, s)
}

/// Says on stderr what a TLS connection negotiated (the counting script logs it).
fn describe(c: &ClientConnection) {
    eprintln!(
        "cost_ops: {:?} {:?} {:?}",
        c.protocol_version(),
        c.negotiated_cipher_suite().map(|s| s.suite()),
        c.handshake_kind()
    );
}

fn connect_packet(client_id: &str) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol_version: V5,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }))
}

/// Encodes and decodes CONNECT and CONNACK: the MQTT part every mode shares.
fn mqtt_connect_exchange() {
    let mut wire = BytesMut::new();
    encode(&connect_packet("sensor-01"), V5, &mut wire).expect("encode");
    let mut broker = Decoder::new(1 << 20);
    broker.decode(&mut wire).expect("decode").expect("connect");
    encode(
        &Packet::ConnAck(Box::new(ConnAck {
            session_present: false,
            reason_code: ReasonCode::SUCCESS,
            properties: Properties::default(),
        })),
        V5,
        &mut wire,
    )
    .expect("encode");
    let mut client = Decoder::with_version(1 << 20, V5);
    client.decode(&mut wire).expect("decode").expect("connack");
}

fn publish(payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TOPIC.into(),
        packet_id: 1,
        properties: Default::default(),
        payload,
    })
}

fn payload(size: usize) -> Bytes {
    Bytes::from(
        PAYLOAD
            .iter()
            .copied()
            .cycle()
            .take(size)
            .collect::<Vec<u8>>(),
    )
}

/// The CONNECT context, offer and response (without its MAC) of one handshake: the transcript
/// hash input, with the lengths of identity `sensor-01`.
fn transcript_inputs(offer_len: usize, response_without_mac_len: usize) -> [Vec<u8>; 3] {
    let context = ConnectContext::new("sensor-01", true)
        .encode()
        .expect("context");
    [
        context,
        vec![3; offer_len],
        vec![4; response_without_mac_len],
    ]
}

/// A shared secret that differs in every iteration, so nothing can be hoisted out of the loop.
fn varying_dh(i: u64) -> [u8; 32] {
    let mut dh = [5u8; 32];
    dh[..8].copy_from_slice(&i.to_le_bytes());
    std::hint::black_box(dh)
}

/// `kdf-lwa1*`: LWA1's hash work of one handshake on backend `C`, both sides: each computes
/// the transcript hash (SHA-256), the key schedule (HKDF-Extract, six HKDF-Expand) and both
/// MACs (HMAC-SHA256).
fn kdf_lwa1<C: Crypto>(psk: &Psk, n: u64) {
    let [context, offer, response] = transcript_inputs(
        mqtt_lwa::lwa::offer_len(9),
        mqtt_lwa::lwa::RESPONSE_LEN - MAC_LEN,
    );
    for i in 0..n {
        let dh = varying_dh(i);
        for _side in 0..2 {
            let th = lwa_core::schedule::transcript_hash::<C>(
                std::hint::black_box(&context),
                &offer,
                &response,
                false,
            );
            let keys = lwa_core::schedule::KeySchedule::<C>::derive(psk, &dh, &th).expect("keys");
            let broker_mac = keys.broker_mac().expect("mac");
            let client_mac = keys.client_mac(&broker_mac).expect("mac");
            std::hint::black_box((&keys, broker_mac, client_mac));
        }
    }
}

/// `kdf-lwa2`: LWA2's hash work of one handshake on backend `C` (BLAKE3 either way), both
/// sides: the transcript hash, the key schedule (derive_key, six keyed_hash) and both MACs.
fn kdf_lwa2<C: Blake3>(psk: &Psk, n: u64) {
    let [context, offer, response] =
        transcript_inputs(lwa2::offer_len(9), lwa_core::lwa2::RESPONSE_WITHOUT_MAC_LEN);
    for i in 0..n {
        let dh = varying_dh(i);
        for _side in 0..2 {
            let th = lwa_core::lwa2::schedule::transcript_hash::<C>(
                std::hint::black_box(&context),
                &offer,
                &response,
                false,
            );
            let keys = lwa_core::lwa2::KeySchedule::<C>::derive(psk, &dh, &th);
            let broker_mac = keys.broker_mac();
            let client_mac = keys.client_mac(&broker_mac);
            std::hint::black_box((&keys, broker_mac, client_mac));
        }
    }
}

/// `message-MODE-SIZE` and `aead-ALG-SIZE` split into the name and the size.
fn sized(op: &str) -> Option<(&str, usize)> {
    let (name, size) = op.rsplit_once('-')?;
    Some((name, size.parse().ok()?))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--list") {
        for (op, n1, n2) in OPERATIONS {
            println!("{op} {n1} {n2}");
        }
        return;
    }
    let (Some(op), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: cost_ops OP N | cost_ops --list");
        std::process::exit(2);
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let psk = Psk::new([7; 32]);
    match op.as_str() {
        "x25519" => {
            let peer = PublicKey::from(&EphemeralSecret::random_from_rng(OsRng));
            for _ in 0..n {
                let secret = EphemeralSecret::random_from_rng(OsRng);
                let public = PublicKey::from(&secret);
                std::hint::black_box((public, secret.diffie_hellman(&peer)));
            }
        }
        "x25519-shared" => {
            let secret = StaticSecret::random_from_rng(OsRng);
            let peer = PublicKey::from(&StaticSecret::random_from_rng(OsRng));
            for _ in 0..n {
                std::hint::black_box(std::hint::black_box(&secret).diffie_hellman(&peer));
            }
        }
        "handshake-plain" => (0..n).for_each(|_| mqtt_connect_exchange()),
        "handshake-password" => {
            let hash = PasswordHash::new_pbkdf2(b"secret", DEFAULT_ITERATIONS).expect("hash");
            for _ in 0..n {
                mqtt_connect_exchange();
                assert!(hash.verify(b"secret"));
            }
        }
        "handshake-lwa" => {
            let responder = BrokerResponder::new(32).expect("responder");
            for _ in 0..n {
                mqtt_connect_exchange();
                let ctx = ConnectContext::new("sensor-01", true);
                let offer =
                    ClientOffer::new("sensor-01", &psk, &ctx, 32, &mut OsRng).expect("offer");
                let (awaiting, response) = responder
                    .respond(
                        &offer.offer_bytes,
                        &ctx,
                        false,
                        |_| Some(psk.clone()),
                        &mut OsRng,
                    )
                    .expect("respond");
                let (finished, records) = offer
                    .awaiting_response
                    .on_response(&response, false)
                    .expect("client");
                let broker = awaiting
                    .on_finished(&finished.finished_bytes)
                    .expect("broker");
                std::hint::black_box((records, broker));
            }
        }
        "handshake-lwa2" | "handshake-lwa2-publish" => {
            let responder = lwa2::BrokerResponder::new(32).expect("responder");
            for _ in 0..n {
                mqtt_connect_exchange();
                let ctx = ConnectContext::new("sensor-01", true);
                let offer =
                    lwa2::ClientOffer::new("sensor-01", &psk, &ctx, 32, &mut OsRng).expect("offer");
                let (awaiting, response) = responder
                    .respond(
                        &offer.offer_bytes,
                        &ctx,
                        false,
                        |_| Some(psk.clone()),
                        &mut OsRng,
                    )
                    .expect("respond");
                let (finished, mut records) = offer
                    .awaiting_response
                    .on_response(&response, false)
                    .expect("client");
                if op == "handshake-lwa2" {
                    let broker = awaiting
                        .on_finished(&finished.finished_bytes)
                        .expect("broker");
                    std::hint::black_box((records, broker));
                } else {
                    // Implicit confirmation: the first PUBLISH payload, sealed as record 0.
                    let mut sealed = records
                        .sealer
                        .seal(TOPIC, QoS::AtLeastOnce as u8, false, PAYLOAD)
                        .expect("seal");
                    let (broker, len) = awaiting
                        .on_first_record(TOPIC, QoS::AtLeastOnce as u8, false, &mut sealed)
                        .expect("broker");
                    assert_eq!(&sealed[..len], PAYLOAD);
                    std::hint::black_box((records, broker, finished));
                }
            }
        }
        "kdf-lwa1" => kdf_lwa1::<mqtt_lwa::lwa::Backend>(&psk, n),
        "kdf-lwa1-rustcrypto" => kdf_lwa1::<lwa_core::RustCrypto>(&psk, n),
        "kdf-lwa2" => kdf_lwa2::<mqtt_lwa::lwa::Backend>(&psk, n),
        "handshake-tls13" | "handshake-mtls13" | "handshake-tls12" => {
            let version = if op == "handshake-tls12" {
                TlsVersion::Tls12
            } else {
                TlsVersion::Tls13
            };
            let (server, client) =
                tls_configs(dir.path(), version, op == "handshake-mtls13", &[], false);
            describe(&tls_pair(&server, &client).0);
            for _ in 0..n {
                std::hint::black_box(tls_pair(&server, &client));
                mqtt_connect_exchange();
            }
        }
        "handshake-tls13-resume" => {
            // Set-up: one full handshake leaves the client its tickets; every handshake
            // counted is then a resumption (PSK with X25519, rustls's only TLS 1.3 mode).
            let (server, client) = tls_configs(dir.path(), TlsVersion::Tls13, false, &[], true);
            std::hint::black_box(tls_pair(&server, &client));
            let (c, _) = tls_pair(&server, &client);
            describe(&c);
            for _ in 0..n {
                let (c, s) = tls_pair(&server, &client);
                assert_eq!(c.handshake_kind(), Some(HandshakeKind::Resumed));
                std::hint::black_box((c, s));
                mqtt_connect_exchange();
            }
        }
        other => match sized(other) {
            Some(("message-plain", size)) => {
                let body = payload(size);
                let mut decoder = Decoder::with_version(1 << 20, V5);
                let mut wire = BytesMut::new();
                for _ in 0..n {
                    encode(&publish(body.clone()), V5, &mut wire).expect("encode");
                    std::hint::black_box(decoder.decode(&mut wire).expect("decode"));
                }
            }
            Some(("message-lwa", size)) => {
                let body = payload(size);
                let d = Direction::ClientToBroker;
                let mut sealer = RecordSealer::new(d, &[1; 32], &[2; 12], 48).expect("sealer");
                let mut opener = RecordOpener::new(d, &[1; 32], &[2; 12], 48).expect("opener");
                let mut decoder = Decoder::with_version(1 << 20, V5);
                let mut wire = BytesMut::new();
                for _ in 0..n {
                    let sealed = sealer
                        .seal(TOPIC, QoS::AtLeastOnce as u8, false, &body)
                        .expect("seal");
                    encode(&publish(Bytes::from(sealed)), V5, &mut wire).expect("encode");
                    let Some(Packet::Publish(p)) = decoder.decode(&mut wire).expect("decode")
                    else {
                        panic!("not a publish");
                    };
                    let opened = opener
                        .open(&p.topic, p.qos as u8, p.retain, &p.payload)
                        .expect("open");
                    std::hint::black_box(opened);
                }
            }
            Some((tls @ ("message-tls13-aes128gcm" | "message-tls13-chacha20"), size)) => {
                let suite = if tls == "message-tls13-aes128gcm" {
                    "TLS13_AES_128_GCM_SHA256"
                } else {
                    "TLS13_CHACHA20_POLY1305_SHA256"
                };
                let (server, client) =
                    tls_configs(dir.path(), TlsVersion::Tls13, false, &[suite], false);
                let (mut c, mut s) = tls_pair(&server, &client);
                describe(&c);
                let body = payload(size);
                let mut decoder = Decoder::with_version(1 << 20, V5);
                let mut wire = BytesMut::new();
                let mut plain = vec![0u8; size + 4096];
                for _ in 0..n {
                    encode(&publish(body.clone()), V5, &mut wire).expect("encode");
                    c.writer().write_all(&wire).expect("tls write");
                    wire.clear();
                    pump(&mut c, &mut s);
                    let got = s.reader().read(&mut plain).expect("tls read");
                    wire.extend_from_slice(&plain[..got]);
                    std::hint::black_box(decoder.decode(&mut wire).expect("decode"));
                }
            }
            Some((aead @ ("aead-aes128gcm" | "aead-chacha20poly1305"), size)) => {
                let (alg, key_len) = if aead == "aead-aes128gcm" {
                    (&aead::AES_128_GCM, 16)
                } else {
                    (&aead::CHACHA20_POLY1305, 32)
                };
                let key_bytes = [9u8; 32];
                let key = aead::LessSafeKey::new(
                    aead::UnboundKey::new(alg, &key_bytes[..key_len]).expect("key"),
                );
                let body = payload(size);
                let mut buf = Vec::with_capacity(size + 16);
                for i in 0..n {
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&i.to_be_bytes());
                    buf.clear();
                    buf.extend_from_slice(&body);
                    let seal_nonce = aead::Nonce::assume_unique_for_key(nonce);
                    key.seal_in_place_append_tag(seal_nonce, aead::Aad::empty(), &mut buf)
                        .expect("seal");
                    let open_nonce = aead::Nonce::assume_unique_for_key(nonce);
                    let opened = key
                        .open_in_place(open_nonce, aead::Aad::empty(), &mut buf)
                        .expect("open");
                    std::hint::black_box(opened);
                }
            }
            _ => {
                eprintln!("unknown operation {other:?} (cost_ops --list names them)");
                std::process::exit(2);
            }
        },
    }
}
