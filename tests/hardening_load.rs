//! Load: 10,000 concurrent idle MQTT connections to the real broker binary,
//! plus publishers and subscribers whose messages must all arrive while the
//! idle connections stay open; the broker's RSS is reported (and bounded by
//! a generous 1 GiB). No assertion on speed.

mod common;
mod hardening_support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use hardening_support::start_broker;
use mqtt_lwa::client::{Client, ConnectOptions};
use mqtt_lwa::codec::{
    encode, Connect, Packet, Properties, ProtocolVersion, QoS, SubscribeFilter, SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDLE: usize = 10_000;
const BATCH: usize = 250;
const PUBLISHERS: usize = 4;
const SUBSCRIBERS: usize = 4;
const PER_PUBLISHER: usize = 50;

/// Opens one connection, sends CONNECT (keep-alive 0: idle forever) and
/// waits for a successful CONNACK. Returns the open stream.
async fn idle_connection(port: u16, n: usize) -> TcpStream {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("connect #{n}: {e}"));
    let connect = Connect {
        protocol_version: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 0,
        client_id: format!("idle-{n}"),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    let mut buf = BytesMut::new();
    encode(
        &Packet::Connect(Box::new(connect)),
        ProtocolVersion::V5,
        &mut buf,
    )
    .unwrap();
    tcp.write_all(&buf).await.unwrap();
    // CONNACK: 0x20, remaining length, flags, reason code, properties.
    let mut head = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(60), tcp.read_exact(&mut head))
        .await
        .unwrap_or_else(|_| panic!("CONNACK #{n} timed out"))
        .unwrap_or_else(|e| panic!("CONNACK #{n}: {e}"));
    assert_eq!(head[0], 0x20, "CONNACK #{n}");
    assert_eq!(head[3], 0, "CONNACK #{n} reason code");
    let mut rest = vec![0u8; usize::from(head[1]).saturating_sub(2)];
    tcp.read_exact(&mut rest).await.unwrap();
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_and_active_clients() {
    // Each connection is a descriptor here and one in the broker, which
    // inherits this limit (and raises its own to the hard limit too).
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit >= IDLE as u64 + 200,
        "RLIMIT_NOFILE hard limit {limit} is too low for {IDLE} connections"
    );
    // All the load comes from one source, BATCH handshakes at a time: more
    // than the default per-source share of pending authentications (issue 13).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[limits]\nmax_pending_auth_per_source = {BATCH}\n\n\
             [[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n"
        ),
    )
    .unwrap();
    let broker = start_broker(0, None, &["-c", config.to_str().unwrap()]);
    let port = broker.addr.port();
    let rss_before = broker.rss_kib().unwrap_or(0);
    let started = Instant::now();

    let mut idle = Vec::with_capacity(IDLE);
    for batch in 0..IDLE.div_ceil(BATCH) {
        let mut set = tokio::task::JoinSet::new();
        for i in batch * BATCH..((batch + 1) * BATCH).min(IDLE) {
            set.spawn(idle_connection(port, i));
        }
        while let Some(tcp) = set.join_next().await {
            idle.push(tcp.unwrap());
        }
    }
    let connected_in = started.elapsed();
    assert_eq!(idle.len(), IDLE);
    let rss_idle = broker.rss_kib().unwrap_or(0);

    // Active traffic alongside the idle crowd.
    let mut subs = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut o = ConnectOptions::new("127.0.0.1", port);
        o.client_id = format!("load-sub-{i}");
        let (c, _) = Client::connect(o).await.unwrap();
        c.subscribe(
            vec![SubscribeFilter {
                filter: "load/#".into(),
                options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            }],
            Properties::default(),
        )
        .await
        .unwrap();
        subs.push(c);
    }
    let mut pubs = tokio::task::JoinSet::new();
    for p in 0..PUBLISHERS {
        pubs.spawn(async move {
            let mut o = ConnectOptions::new("127.0.0.1", port);
            o.client_id = format!("load-pub-{p}");
            let (c, _) = Client::connect(o).await.unwrap();
            for n in 0..PER_PUBLISHER {
                let qos = if n % 2 == 0 {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                c.publish(
                    format!("load/{p}"),
                    format!("{p}:{n}"),
                    qos,
                    false,
                    Properties::default(),
                )
                .await
                .unwrap();
            }
            c
        });
    }
    let mut publishers = Vec::new();
    while let Some(c) = pubs.join_next().await {
        publishers.push(c.unwrap());
    }
    let expected = PUBLISHERS * PER_PUBLISHER;
    for (i, sub) in subs.iter_mut().enumerate() {
        let mut got = std::collections::HashSet::new();
        while got.len() < expected {
            let m = tokio::time::timeout(Duration::from_secs(30), sub.recv())
                .await
                .unwrap_or_else(|_| panic!("subscriber {i}: {} of {expected}", got.len()))
                .expect("subscriber connection open");
            got.insert(m.payload);
        }
    }
    let rss_active = broker.rss_kib().unwrap_or(0);

    // The idle connections are all still open: nothing was sent to them and
    // they did not get closed (a read would return 0 bytes at EOF).
    let mut probe = [0u8; 1];
    for (i, tcp) in idle.iter_mut().enumerate().step_by(997) {
        let r = tokio::time::timeout(Duration::from_millis(50), tcp.read(&mut probe)).await;
        assert!(
            r.is_err(),
            "idle connection {i} was closed or written to: {r:?}"
        );
    }
    eprintln!(
        "load: {IDLE} idle connections in {connected_in:?}; {expected} messages x {SUBSCRIBERS} \
         subscribers delivered; broker RSS {rss_before} KiB at start, {rss_idle} KiB with \
         {IDLE} idle connections, {rss_active} KiB after the traffic; total {:?}",
        started.elapsed()
    );
    assert!(rss_active > 0, "RSS readable from /proc");
    assert!(
        rss_active < 1024 * 1024,
        "broker RSS {rss_active} KiB exceeds 1 GiB"
    );
    drop(idle);
    drop(publishers);
}
