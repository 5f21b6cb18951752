//! Handshake CPU per security mode, client and broker side separately, in
//! memory (no sockets, no MQTT framing): LWA1, LWA2 and LWA2's key update
//! (what replaces a reconnect at counter exhaustion), TLS 1.3 and 1.2 with rustls
//! (server-auth and mutual, ECDSA P-256 and RSA-2048), password verification
//! at the broker's PBKDF2 cost, and the X25519 floor LWA cannot go below.
//!
//! Each iteration runs a complete, fresh handshake between the two peers
//! (neither side can replay recorded peer messages: both contribute fresh
//! randomness that the other side's next step depends on). The time of one
//! side's calls is summed with `iter_custom`, so `client` and `broker`
//! benchmarks report that side's CPU alone and `both` the whole exchange.
//!
//! `cargo bench --bench handshake` (add `-- --warm-up-time 1 --measurement-time 2`
//! for a quick look). Under `cargo test --all-targets` every benchmark runs once.
// criterion_group! defines a public function without a doc line.
#![allow(missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mqtt_lwa::auth::certs::{CertificateAuthority, KeyAlgorithm, Validity};
use mqtt_lwa::auth::password::{PasswordHash, DEFAULT_ITERATIONS, MOSQUITTO_DEFAULT_ITERATIONS};
use mqtt_lwa::lwa::{
    lwa2, BrokerRecords, BrokerResponder, ClientOffer, ClientRecords, ConnectContext, Psk,
};
use mqtt_lwa::transport::tls::client::{client_config, server_name, ClientTlsOptions};
use mqtt_lwa::transport::tls::{server_config, ServerTlsOptions, TlsVersion};
use rand_core::OsRng;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use x25519_dalek::{EphemeralSecret, PublicKey};

/// Which side's calls an iteration's reported time covers.
#[derive(Clone, Copy, Debug)]
enum Side {
    Client,
    Broker,
    Both,
}

impl Side {
    const ALL: [Side; 3] = [Side::Client, Side::Broker, Side::Both];

    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Broker => "broker",
            Side::Both => "both",
        }
    }

    /// The part of one handshake this side is charged for.
    fn charge(self, client: Duration, broker: Duration) -> Duration {
        match self {
            Side::Client => client,
            Side::Broker => broker,
            Side::Both => client + broker,
        }
    }
}

/// Times `f`, adding its duration to `acc`.
fn timed<T>(acc: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    *acc += start.elapsed();
    out
}

// ---------------------------------------------------------------- LWA1

const LWA_IDENTITY: &str = "sensor-01";
const LWA_CLIENT_ID: &str = "sensor-01";
/// The record limit exponent the client offers and the broker allows.
const LWA_LIMIT_LOG2: u8 = 32;

/// One LWA1 handshake as the broker and client run it; returns (client, broker) time.
fn lwa_handshake(psk: &Psk, responder: &BrokerResponder) -> (Duration, Duration) {
    let (mut client_t, mut broker_t) = (Duration::ZERO, Duration::ZERO);
    let ctx = ConnectContext::new(LWA_CLIENT_ID, true);
    let offer = timed(&mut client_t, || {
        ClientOffer::new(LWA_IDENTITY, psk, &ctx, LWA_LIMIT_LOG2, &mut OsRng)
    })
    .expect("offer");
    let (awaiting, response) = timed(&mut broker_t, || {
        responder.respond(
            &offer.offer_bytes,
            &ctx,
            false,
            |id| (id == LWA_IDENTITY).then(|| psk.clone()),
            &mut OsRng,
        )
    })
    .expect("response");
    let (finished, client_records) = timed(&mut client_t, || {
        offer.awaiting_response.on_response(&response, false)
    })
    .expect("client verifies broker");
    let broker_records = timed(&mut broker_t, || {
        awaiting.on_finished(&finished.finished_bytes)
    })
    .expect("broker verifies client");
    std::hint::black_box((client_records, broker_records));
    (client_t, broker_t)
}

fn bench_lwa(c: &mut Criterion) {
    let psk = Psk::random(&mut OsRng);
    let responder = BrokerResponder::new(LWA_LIMIT_LOG2).expect("responder");
    let mut g = c.benchmark_group("handshake/lwa1");
    for side in Side::ALL {
        g.bench_function(side.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (ct, bt) = lwa_handshake(&psk, &responder);
                        side.charge(ct, bt)
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------- LWA2

/// One LWA2 handshake (finished path) as the broker and client run it;
/// returns (client, broker) time and both sides' records.
fn lwa2_handshake(
    psk: &Psk,
    responder: &lwa2::BrokerResponder,
) -> (Duration, Duration, ClientRecords, BrokerRecords) {
    let (mut client_t, mut broker_t) = (Duration::ZERO, Duration::ZERO);
    let ctx = ConnectContext::new(LWA_CLIENT_ID, true);
    let offer = timed(&mut client_t, || {
        lwa2::ClientOffer::new(LWA_IDENTITY, psk, &ctx, LWA_LIMIT_LOG2, &mut OsRng)
    })
    .expect("offer");
    let (awaiting, response) = timed(&mut broker_t, || {
        responder.respond(
            &offer.offer_bytes,
            &ctx,
            false,
            |id| (id == LWA_IDENTITY).then(|| psk.clone()),
            &mut OsRng,
        )
    })
    .expect("response");
    let (finished, client_records) = timed(&mut client_t, || {
        offer.awaiting_response.on_response(&response, false)
    })
    .expect("client verifies broker");
    let broker_records = timed(&mut broker_t, || {
        awaiting.on_finished(&finished.finished_bytes)
    })
    .expect("broker verifies client");
    (client_t, broker_t, client_records, broker_records)
}

fn bench_lwa2(c: &mut Criterion) {
    let psk = Psk::random(&mut OsRng);
    let responder = lwa2::BrokerResponder::new(LWA_LIMIT_LOG2).expect("responder");
    let mut g = c.benchmark_group("handshake/lwa2");
    for side in Side::ALL {
        g.bench_function(side.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (ct, bt, cr, br) = lwa2_handshake(&psk, &responder);
                        std::hint::black_box((cr, br));
                        side.charge(ct, bt)
                    })
                    .sum()
            })
        });
    }
    g.finish();

    // Key update (LWA2.md 8.2) on one live connection, update after update:
    // request, answer, response check, and the four record keys rebuilt.
    let (_, _, client, broker) = lwa2_handshake(&psk, &responder);
    let mut cu = lwa2::KeyUpdate::new(client.update_secret.as_deref().expect("LWA2 updates"));
    let mut bu = lwa2::KeyUpdate::new(broker.update_secret.as_deref().expect("LWA2 updates"));
    let (mut cs, mut co) = (client.sealer, client.opener);
    let (mut bs, mut bo) = (broker.sealer, broker.opener);
    let mut g = c.benchmark_group("handshake/lwa2-key-update");
    for side in Side::ALL {
        g.bench_function(side.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (mut ct, mut bt) = (Duration::ZERO, Duration::ZERO);
                        let request = timed(&mut ct, || cu.start(&mut cs)).expect("request");
                        let response = timed(&mut bt, || bu.answer(&request, &mut bo, &mut bs))
                            .expect("answer");
                        timed(&mut ct, || cu.on_response(&response, &mut co)).expect("response");
                        side.charge(ct, bt)
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

/// The X25519 work a handshake cannot avoid: one key generation and one DH per side.
fn bench_x25519(c: &mut Criterion) {
    let peer = PublicKey::from(&EphemeralSecret::random_from_rng(OsRng));
    let mut g = c.benchmark_group("handshake/x25519");
    g.bench_function("keygen", |b| {
        b.iter(|| {
            let secret = EphemeralSecret::random_from_rng(OsRng);
            PublicKey::from(&secret)
        })
    });
    g.bench_function("dh", |b| {
        b.iter_batched(
            || EphemeralSecret::random_from_rng(OsRng),
            |secret| secret.diffie_hellman(&peer),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("keygen+dh", |b| {
        b.iter(|| {
            let secret = EphemeralSecret::random_from_rng(OsRng);
            let public = PublicKey::from(&secret);
            (public, secret.diffie_hellman(&peer))
        })
    });
    g.finish();
}

// ---------------------------------------------------------------- TLS

/// A broker and client TLS configuration pair, built with the crate's own config code.
struct TlsPair {
    name: String,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write PEM");
    path
}

/// Server and client configs for one (algorithm, version, mutual) cell.
fn tls_pair(
    dir: &Path,
    ca: &CertificateAuthority,
    alg: KeyAlgorithm,
    version: TlsVersion,
    mutual: bool,
) -> TlsPair {
    let alg_name = match alg {
        KeyAlgorithm::EcdsaP256 => "p256",
        KeyAlgorithm::Rsa2048 => "rsa2048",
    };
    let ver_name = match version {
        TlsVersion::Tls13 => "tls13",
        TlsVersion::Tls12 => "tls12",
    };
    let stem = format!(
        "{alg_name}-{ver_name}-{}",
        if mutual { "mutual" } else { "server" }
    );
    let validity = Validity::days_from_now(30);
    let ca_file = write(dir, &format!("{alg_name}-ca.crt"), &ca.cert_pem());
    let server_cert = ca
        .issue_server(&[], alg, validity)
        .expect("server certificate");
    let server_opts = ServerTlsOptions {
        cert_file: write(dir, &format!("{stem}-server.crt"), &server_cert.cert_pem),
        key_file: write(dir, &format!("{stem}-server.key"), &server_cert.key_pem),
        ca_file: mutual.then(|| ca_file.clone()),
        require_certificate: mutual,
        min_version: TlsVersion::Tls12,
        cipher_suites: Vec::new(),
    };
    let mut client_opts = ClientTlsOptions {
        ca_file: Some(ca_file),
        version: Some(version),
        ..ClientTlsOptions::default()
    };
    if mutual {
        let client_cert = ca
            .issue_client("bench-client", alg, validity)
            .expect("client certificate");
        client_opts.cert_file = Some(write(
            dir,
            &format!("{stem}-client.crt"),
            &client_cert.cert_pem,
        ));
        client_opts.key_file = Some(write(
            dir,
            &format!("{stem}-client.key"),
            &client_cert.key_pem,
        ));
    }
    let server = server_config(&server_opts).expect("server config");
    // Every benchmarked handshake must be a full one: a client that kept the
    // broker's session tickets would resume instead.
    let mut client = (*client_config(&client_opts).expect("client config")).clone();
    client.resumption = rustls::client::Resumption::disabled();
    TlsPair {
        name: stem,
        server,
        client: Arc::new(client),
    }
}

/// Bytes each side sent during one handshake (post-handshake tickets included).
#[derive(Debug, Default, Clone, Copy)]
struct WireBytes {
    client: usize,
    broker: usize,
}

/// One full TLS handshake in memory; returns (client time, broker time, bytes).
fn tls_handshake(pair: &TlsPair) -> (Duration, Duration, WireBytes) {
    let (mut client_t, mut broker_t) = (Duration::ZERO, Duration::ZERO);
    let mut bytes = WireBytes::default();
    let name = server_name("localhost").expect("server name");
    let mut client = timed(&mut client_t, || {
        ClientConnection::new(Arc::clone(&pair.client), name)
    })
    .expect("client connection");
    let mut server = timed(&mut broker_t, || {
        ServerConnection::new(Arc::clone(&pair.server))
    })
    .expect("server connection");
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let mut moved = 0;
        while client.wants_write() {
            let n = timed(&mut client_t, || {
                buf.clear();
                client.write_tls(&mut buf).expect("client write_tls")
            });
            bytes.client += n;
            moved += n;
            timed(&mut broker_t, || {
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    server.read_tls(&mut rd).expect("server read_tls");
                    server.process_new_packets().expect("server handshake");
                }
            });
        }
        while server.wants_write() {
            let n = timed(&mut broker_t, || {
                buf.clear();
                server.write_tls(&mut buf).expect("server write_tls")
            });
            bytes.broker += n;
            moved += n;
            timed(&mut client_t, || {
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    client.read_tls(&mut rd).expect("client read_tls");
                    client.process_new_packets().expect("client handshake");
                }
            });
        }
        if moved == 0 {
            break;
        }
    }
    assert!(
        !client.is_handshaking() && !server.is_handshaking(),
        "{}: handshake stalled",
        pair.name
    );
    (client_t, broker_t, bytes)
}

fn bench_tls(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pairs = Vec::new();
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let ca =
            CertificateAuthority::new("bench CA", alg, Validity::days_from_now(30)).expect("CA");
        for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
            for mutual in [false, true] {
                pairs.push(tls_pair(dir.path(), &ca, alg, version, mutual));
            }
        }
    }
    // The same handshakes' sizes, for the report (bytes on the wire are
    // counted again on real sockets by the experiment runner).
    for pair in &pairs {
        let (_, _, bytes) = tls_handshake(pair);
        eprintln!(
            "handshake bytes {}: client {} broker {}",
            pair.name, bytes.client, bytes.broker
        );
    }
    let mut g = c.benchmark_group("handshake/tls");
    g.sample_size(20);
    for pair in &pairs {
        for side in Side::ALL {
            g.bench_with_input(
                BenchmarkId::new(&pair.name, side.name()),
                pair,
                |b, pair| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                let (ct, bt, _) = tls_handshake(pair);
                                side.charge(ct, bt)
                            })
                            .sum()
                    })
                },
            );
        }
    }
    g.finish();
}

// ---------------------------------------------------------------- password

/// What the broker pays per CONNECT in password mode: one PBKDF2-HMAC-SHA512 verification.
fn bench_password(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake/password");
    g.sample_size(10);
    for iterations in [DEFAULT_ITERATIONS, MOSQUITTO_DEFAULT_ITERATIONS] {
        let hash = PasswordHash::new_pbkdf2(b"correct horse", iterations).expect("hash");
        g.bench_with_input(
            BenchmarkId::new("verify_pbkdf2_sha512", iterations),
            &hash,
            |b, hash| b.iter(|| assert!(hash.verify(b"correct horse"))),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_x25519, bench_lwa, bench_lwa2, bench_tls, bench_password
}
criterion_main!(benches);
