//! MQTT 5 PUBLISH encoding and decoding per payload size, and topic matching
//! in the broker's subscription tree holding 10^5 subscriptions.
//!
//! `cargo bench --bench codec`. Under `cargo test --all-targets` every
//! benchmark runs once.
// criterion_group! defines a public function without a doc line.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mqtt_lwa::broker::subscriptions::{SubscriptionEntry, SubscriptionTree};
use mqtt_lwa::codec::{
    encode, Decoder, Packet, ProtocolVersion, Publish, QoS, SubscriptionOptions,
};

const SIZES: [usize; 4] = [30, 256, 1024, 16 * 1024];
const TOPIC: &str = "sensors/greenhouse-3/temperature";
const MAX_PACKET: usize = 1 << 20;

fn publish(size: usize) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TOPIC.into(),
        packet_id: 1,
        properties: Default::default(),
        payload: Bytes::from(vec![0x5a; size]),
    })
}

fn bench_publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/publish_v5");
    for size in SIZES {
        let packet = publish(size);
        let mut wire = BytesMut::new();
        encode(&packet, ProtocolVersion::V5, &mut wire).expect("encode");
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("encode", size), &packet, |b, packet| {
            let mut out = BytesMut::with_capacity(size + 64);
            b.iter(|| {
                out.clear();
                encode(packet, ProtocolVersion::V5, &mut out).expect("encode");
            })
        });
        g.bench_with_input(BenchmarkId::new("decode", size), &wire, |b, wire| {
            let mut decoder = Decoder::with_version(MAX_PACKET, ProtocolVersion::V5);
            b.iter_batched(
                || wire.clone(),
                |mut buf| {
                    decoder
                        .decode(&mut buf)
                        .expect("decode")
                        .expect("whole packet")
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// 10^5 subscriptions of 10^5 clients: 99 000 exact filters `site/{s}/device/{d}/temp`,
/// 500 `site/{s}/#` and 500 `site/+/device/{d}/+`, the shapes a fleet of sensors produces.
fn fleet_tree() -> SubscriptionTree {
    let mut tree = SubscriptionTree::new();
    let entry = SubscriptionEntry {
        options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        identifier: None,
    };
    let mut n = 0;
    for s in 0..99 {
        for d in 0..1000 {
            tree.insert(
                &format!("site/{s}/device/{d}/temp"),
                &format!("c{n}"),
                entry,
            );
            n += 1;
        }
    }
    for i in 0..500 {
        tree.insert(&format!("site/{i}/#"), &format!("c{n}"), entry);
        n += 1;
        tree.insert(&format!("site/+/device/{i}/+"), &format!("c{n}"), entry);
        n += 1;
    }
    assert_eq!(n, 100_000);
    tree
}

fn bench_matching(c: &mut Criterion) {
    let tree = fleet_tree();
    let mut g = c.benchmark_group("subscriptions/100k");
    // One exact filter, one `site/{s}/#` and one `site/+/device/{d}/+` match.
    g.bench_function("match_3_hits", |b| {
        b.iter(|| {
            let m = tree.matches("site/42/device/317/temp");
            assert_eq!(m.normal.len(), 3);
            m
        })
    });
    g.bench_function("match_miss", |b| {
        b.iter(|| tree.matches("factory/42/line/7/pressure"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = bench_publish, bench_matching
}
criterion_main!(benches);
