//! Runs one security-relevant operation N times in memory, for counting
//! instructions under `qemu-aarch64 -plugin` (scripts/insn-count.sh): the
//! difference between two run lengths is the cost of N2 - N1 operations with
//! start-up and set-up cancelled out.
//!
//! `cost_ops OP N`, OP one of: x25519, handshake-plain, handshake-password,
//! handshake-lwa, handshake-tls13, handshake-mtls13, handshake-tls12,
//! message-plain, message-lwa, message-tls13 (a 30-byte QoS 1 PUBLISH from
//! client to broker: encode, protect, unprotect, decode).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mqtt_lwa::auth::certs::{self, KeyAlgorithm};
use mqtt_lwa::auth::password::{PasswordHash, DEFAULT_ITERATIONS};
use mqtt_lwa::auth::tls::client::{client_config, server_name, ClientTlsOptions};
use mqtt_lwa::auth::tls::{server_config, ServerTlsOptions, TlsVersion};
use mqtt_lwa::codec::{
    encode, ConnAck, Connect, Decoder, Packet, Properties, ProtocolVersion, Publish, QoS,
    ReasonCode,
};
use mqtt_lwa::lwa::{
    BrokerResponder, ClientOffer, ConnectContext, Direction, Psk, RecordOpener, RecordSealer,
};
use rand_core::OsRng;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use x25519_dalek::{EphemeralSecret, PublicKey};

const PAYLOAD: &[u8] = b"temperature=21.5C;humidity=40%";
const TOPIC: &str = "sensors/greenhouse-3/temperature";
const V5: ProtocolVersion = ProtocolVersion::V5;

fn tls_configs(
    dir: &Path,
    version: TlsVersion,
    mutual: bool,
) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    certs::init(dir, &[], KeyAlgorithm::EcdsaP256, &["client"], 30).expect("certs");
    let server = server_config(&ServerTlsOptions {
        cert_file: dir.join("broker.crt"),
        key_file: dir.join("broker.key"),
        ca_file: mutual.then(|| dir.join("ca.crt")),
        require_certificate: mutual,
        min_version: TlsVersion::Tls12,
        cipher_suites: Vec::new(),
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
    client.resumption = rustls::client::Resumption::disabled();
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

fn connect_packet(client_id: &str) -> Packet {
    Packet::Connect(Connect {
        protocol_version: V5,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    })
}

/// Encodes and decodes CONNECT and CONNACK: the MQTT part every mode shares.
fn mqtt_connect_exchange() {
    let mut wire = BytesMut::new();
    encode(&connect_packet("sensor-01"), V5, &mut wire).expect("encode");
    let mut broker = Decoder::new(1 << 20);
    broker.decode(&mut wire).expect("decode").expect("connect");
    encode(
        &Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }),
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
        properties: Properties::default(),
        payload,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(op), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: cost_ops OP N");
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
        "handshake-tls13" | "handshake-mtls13" | "handshake-tls12" => {
            let version = if op == "handshake-tls12" {
                TlsVersion::Tls12
            } else {
                TlsVersion::Tls13
            };
            let (server, client) = tls_configs(dir.path(), version, op == "handshake-mtls13");
            for _ in 0..n {
                std::hint::black_box(tls_pair(&server, &client));
                mqtt_connect_exchange();
            }
        }
        "message-plain" => {
            let mut decoder = Decoder::with_version(1 << 20, V5);
            let mut wire = BytesMut::new();
            for _ in 0..n {
                encode(&publish(Bytes::from_static(PAYLOAD)), V5, &mut wire).expect("encode");
                std::hint::black_box(decoder.decode(&mut wire).expect("decode"));
            }
        }
        "message-lwa" => {
            let d = Direction::ClientToBroker;
            let mut sealer = RecordSealer::new(d, &[1; 32], &[2; 12], 48).expect("sealer");
            let mut opener = RecordOpener::new(d, &[1; 32], &[2; 12], 48).expect("opener");
            let mut decoder = Decoder::with_version(1 << 20, V5);
            let mut wire = BytesMut::new();
            for _ in 0..n {
                let sealed = sealer
                    .seal(TOPIC, QoS::AtLeastOnce, false, PAYLOAD)
                    .expect("seal");
                encode(&publish(Bytes::from(sealed)), V5, &mut wire).expect("encode");
                let Some(Packet::Publish(p)) = decoder.decode(&mut wire).expect("decode") else {
                    panic!("not a publish");
                };
                let opened = opener
                    .open(&p.topic, p.qos, p.retain, &p.payload)
                    .expect("open");
                std::hint::black_box(opened);
            }
        }
        "message-tls13" => {
            let (server, client) = tls_configs(dir.path(), TlsVersion::Tls13, false);
            let (mut c, mut s) = tls_pair(&server, &client);
            let mut decoder = Decoder::with_version(1 << 20, V5);
            let mut wire = BytesMut::new();
            let mut plain = vec![0u8; 4096];
            for _ in 0..n {
                encode(&publish(Bytes::from_static(PAYLOAD)), V5, &mut wire).expect("encode");
                c.writer().write_all(&wire).expect("tls write");
                wire.clear();
                pump(&mut c, &mut s);
                let got = s.reader().read(&mut plain).expect("tls read");
                wire.extend_from_slice(&plain[..got]);
                std::hint::black_box(decoder.decode(&mut wire).expect("decode"));
            }
        }
        other => {
            eprintln!("unknown operation {other:?}");
            std::process::exit(2);
        }
    }
}
