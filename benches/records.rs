//! LWA1 record sealing and opening (ChaCha20-Poly1305 over a PUBLISH payload,
//! topic and flags in the AAD) per payload size, 16 B to 64 KiB, as throughput,
//! with each crypto backend of `lwa-core`: `seal`/`open` are ring's (what
//! mqtt-lwa runs; the ids older runs used), `seal-rustcrypto`/`open-rustcrypto`
//! the portable RustCrypto backend a microcontroller build uses.
//!
//! Beside them, group `aead`: the bare AEAD (ring's ChaCha20-Poly1305 against
//! ring's AES-128-GCM, and RustCrypto's ChaCha20-Poly1305) sealing the same
//! payload sizes in place, so a run on a
//! core without the ARMv8 crypto extensions (Raspberry Pi 3/4: Cortex-A53/A72
//! in BCM2837/BCM2711) shows AES-GCM falling behind ChaCha20, while on x86
//! with AES-NI and CLMUL it is the other way round.
//!
//! Group `publish`: a whole 30-byte PUBLISH through the glue the broker and
//! the client run (`mqtt_lwa::auth::metadata::{seal_publish, open_publish}`
//! over `LwaProtection`, ring backend), LWA2 with and without metadata
//! protection (LWA2.md 7.1), with no properties and with a content type and
//! a user property: what protecting the topic and properties costs.
//!
//! `cargo bench --bench records`. Under `cargo test --all-targets` every
//! benchmark runs once.
// criterion_group! defines a public function without a doc line.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use lwa_core::backend::ring::Ring;
use lwa_core::{Crypto, Direction, RecordKey, RecordOpener, RecordSealer, RustCrypto};
use mqtt_lwa::auth::lwa::LwaProtection;
use mqtt_lwa::auth::metadata::{open_publish, seal_publish};
use mqtt_lwa::codec::{Properties, Publish, QoS};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, CHACHA20_POLY1305};

/// Payload sizes: the seed study's 30 B reading up to a 64 KiB blob.
const SIZES: [usize; 7] = [16, 30, 256, 1024, 4096, 16 * 1024, 64 * 1024];
const TOPIC: &str = "sensors/greenhouse-3/temperature";
const KEY: [u8; 32] = [7; 32];
const IV: [u8; 12] = [9; 12];
/// The largest allowed limit, so a long measurement never exhausts the counter.
const LIMIT_LOG2: u8 = 48;

/// The QoS byte the records bind (QoS 1).
const QOS: u8 = QoS::AtLeastOnce as u8;

/// A sealer and the opener of the same direction and keys, both at counter 0.
fn pair<B: Crypto>() -> (RecordSealer<B>, RecordOpener<B>) {
    let d = Direction::ClientToBroker;
    (
        RecordSealer::new(d, &KEY, &IV, LIMIT_LOG2).expect("sealer"),
        RecordOpener::new(d, &KEY, &IV, LIMIT_LOG2).expect("opener"),
    )
}

fn bench_records(c: &mut Criterion) {
    let mut g = c.benchmark_group("records");
    for size in SIZES {
        let payload = vec![0xa5u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        bench_backend::<Ring>(&mut g, "", &payload);
        bench_backend::<RustCrypto>(&mut g, "-rustcrypto", &payload);
    }
    g.finish();
}

/// `seal{suffix}` and `open{suffix}` of one payload with backend `B`.
fn bench_backend<B: Crypto>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    suffix: &str,
    payload: &Vec<u8>,
) {
    let size = payload.len();
    g.bench_with_input(
        BenchmarkId::new(format!("seal{suffix}"), size),
        payload,
        |b, payload| {
            let (mut sealer, _) = pair::<B>();
            b.iter(|| sealer.seal(TOPIC, QOS, false, payload).expect("seal"))
        },
    );
    // The opener only accepts records in counter order, so each measured
    // open gets the record its twin sealer produced for that counter
    // (sealing happens in the untimed set-up, in the same order).
    g.bench_with_input(
        BenchmarkId::new(format!("open{suffix}"), size),
        payload,
        |b, payload| {
            let (mut sealer, mut opener) = pair::<B>();
            b.iter_batched(
                || sealer.seal(TOPIC, QOS, false, payload).expect("seal"),
                |sealed| opener.open(TOPIC, QOS, false, &sealed).expect("open"),
                BatchSize::SmallInput,
            )
        },
    );
}

/// LWA2 protection of one connection direction pair, metadata protection on or off.
fn protection(metadata: bool) -> (LwaProtection, LwaProtection) {
    let d = Direction::ClientToBroker;
    let seal =
        || mqtt_lwa::lwa::record::RecordSealer::new(d, &KEY, &IV, LIMIT_LOG2).expect("sealer");
    let open =
        || mqtt_lwa::lwa::record::RecordOpener::new(d, &KEY, &IV, LIMIT_LOG2).expect("opener");
    // Each side gets a sealer and an opener; only the c2b pair is exercised.
    (
        LwaProtection::new(seal(), open()).with_metadata_protection(metadata),
        LwaProtection::new(seal(), open()).with_metadata_protection(metadata),
    )
}

fn bench_publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish");
    let payload = Bytes::from(vec![0xa5u8; 30]);
    let with_props = Properties {
        content_type: Some("application/json".into()),
        user_properties: vec![("unit".into(), "celsius".into())],
        ..Properties::default()
    };
    for (props_name, props) in [("", Properties::default()), ("-properties", with_props)] {
        let message = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TOPIC.into(),
            packet_id: 1,
            properties: props.into(),
            payload: payload.clone(),
        };
        for (mode, metadata) in [("lwa2", false), ("lwa2-metadata", true)] {
            g.bench_function(format!("seal-{mode}{props_name}"), |b| {
                let (mut sender, _) = protection(metadata);
                b.iter_batched(
                    || message.clone(),
                    |mut p| {
                        seal_publish(&mut sender, &mut p).expect("seal");
                        p
                    },
                    BatchSize::SmallInput,
                )
            });
            g.bench_function(format!("open-{mode}{props_name}"), |b| {
                let (mut sender, mut receiver) = protection(metadata);
                b.iter_batched(
                    || {
                        let mut p = message.clone();
                        seal_publish(&mut sender, &mut p).expect("seal");
                        p
                    },
                    |mut p| {
                        open_publish(&mut receiver, &mut p).expect("open");
                        p
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

/// Seals each payload size in place with one bare AEAD, a fixed nonce (fine
/// for timing; the record layer never reuses one) and the topic as AAD.
fn bench_aead(c: &mut Criterion) {
    let mut g = c.benchmark_group("aead");
    let algorithms: [(&str, &'static ring::aead::Algorithm, &[u8]); 2] = [
        ("chacha20-poly1305", &CHACHA20_POLY1305, &KEY),
        ("aes-128-gcm", &AES_128_GCM, &KEY[..16]),
    ];
    for (name, algorithm, key) in algorithms {
        let key = LessSafeKey::new(UnboundKey::new(algorithm, key).expect("key length"));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, &size| {
                let mut buf = vec![0xa5u8; size];
                b.iter(|| {
                    key.seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(IV),
                        Aad::from(TOPIC.as_bytes()),
                        &mut buf,
                    )
                    .expect("seal")
                })
            });
        }
    }
    // RustCrypto's ChaCha20-Poly1305 through the backend trait, key expanded once.
    let key = RustCrypto::record_key(&KEY).expect("key");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(
            BenchmarkId::new("chacha20-poly1305-rustcrypto", size),
            &size,
            |b, &size| {
                let mut buf = vec![0xa5u8; size];
                b.iter(|| {
                    key.seal_in_place(&IV, TOPIC.as_bytes(), &mut buf)
                        .expect("seal")
                })
            },
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = bench_records, bench_aead, bench_publish
}
criterion_main!(benches);
