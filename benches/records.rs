//! LWA1 record sealing and opening (ChaCha20-Poly1305 over a PUBLISH payload,
//! topic and flags in the AAD) per payload size, 16 B to 64 KiB, as throughput.
//!
//! `cargo bench --bench records`. Under `cargo test --all-targets` every
//! benchmark runs once.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mqtt_lwa::codec::QoS;
use mqtt_lwa::lwa::{Direction, RecordOpener, RecordSealer};

/// Payload sizes: the seed study's 30 B reading up to a 64 KiB blob.
const SIZES: [usize; 7] = [16, 30, 256, 1024, 4096, 16 * 1024, 64 * 1024];
const TOPIC: &str = "sensors/greenhouse-3/temperature";
const KEY: [u8; 32] = [7; 32];
const IV: [u8; 12] = [9; 12];
/// The largest allowed limit, so a long measurement never exhausts the counter.
const LIMIT_LOG2: u8 = 48;

/// A sealer and the opener of the same direction and keys, both at counter 0.
fn pair() -> (RecordSealer, RecordOpener) {
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
        g.bench_with_input(BenchmarkId::new("seal", size), &payload, |b, payload| {
            let (mut sealer, _) = pair();
            b.iter(|| {
                sealer
                    .seal(TOPIC, QoS::AtLeastOnce, false, payload)
                    .expect("seal")
            })
        });
        // The opener only accepts records in counter order, so each measured
        // open gets the record its twin sealer produced for that counter
        // (sealing happens in the untimed set-up, in the same order).
        g.bench_with_input(BenchmarkId::new("open", size), &payload, |b, payload| {
            let (mut sealer, mut opener) = pair();
            b.iter_batched(
                || {
                    sealer
                        .seal(TOPIC, QoS::AtLeastOnce, false, payload)
                        .expect("seal")
                },
                |sealed| {
                    opener
                        .open(TOPIC, QoS::AtLeastOnce, false, &sealed)
                        .expect("open")
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = bench_records
}
criterion_main!(benches);
