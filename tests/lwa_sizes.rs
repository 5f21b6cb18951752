//! LWA.md section 11 states what LWA1 costs on the wire: for identity and
//! client identifier `sensor-01` (n = 9), CONNECT grows by 45 + n bytes,
//! CONNACK by 60, the client's AUTH is 30 bytes and the broker's AUTH 11;
//! every PUBLISH payload grows by exactly 16 bytes. This test counts the bytes
//! of a plaintext and an LWA connection through a relay in front of our broker
//! (same client id, same work: CONNECT, one 30-byte QoS 1 PUBLISH and its
//! PUBACK) and checks that the differences are those numbers; and the same
//! for LWA2 (LWA2.md section 10: 107 bytes on the PUBLISH path), and an LWA2
//! key update (LWA2.md 8.2: two AUTH packets of 28 bytes).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mqtt_lwa::auth::lwa::{LwaClientAuthenticator, LwaVersion};
use mqtt_lwa::broker::Server;
use mqtt_lwa::client::{Client, ConnectOptions};
use mqtt_lwa::codec::{Properties, ProtocolVersion, QoS, ReasonCode};
use mqtt_lwa::config::BrokerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");
const IDENTITY: &str = "sensor-01";

/// Bytes a relay forwarded: client to broker and broker to client.
#[derive(Default)]
struct Counts {
    to_broker: AtomicU64,
    to_client: AtomicU64,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<Counts>,
    to_broker: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Count before forwarding: once the peer has reacted to these bytes,
        // they are already in the count.
        let counter = if to_broker {
            &count.to_broker
        } else {
            &count.to_client
        };
        counter.fetch_add(n as u64, Ordering::SeqCst);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A one-connection TCP relay to `target` that counts bytes each way.
async fn counting_relay(target: SocketAddr) -> (u16, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counts = Arc::new(Counts::default());
    let c = Arc::clone(&counts);
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let broker = TcpStream::connect(target).await.unwrap();
        let (cr, cw) = client.into_split();
        let (br, bw) = broker.into_split();
        tokio::spawn(pump(cr, bw, Arc::clone(&c), true));
        tokio::spawn(pump(br, cw, c, false));
    });
    (port, counts)
}

/// What follows the first PUBLISH on a connection.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    Nothing,
    /// A second, equal PUBLISH.
    Publish,
    /// A key update, then the second PUBLISH (its PUBACK comes after the
    /// broker's AUTH 0x00, which answers the request before the PUBLISH).
    UpdateAndPublish,
}

/// CONNECT, one 30-byte QoS 1 PUBLISH, its PUBACK, then `then`; returns (to broker, to client).
async fn one_connection(
    broker: SocketAddr,
    lwa_key: Option<&Path>,
    version: LwaVersion,
    then: Then,
    metadata: bool,
    aliases: bool,
) -> (u64, u64) {
    let (port, counts) = counting_relay(broker).await;
    let mut opts = ConnectOptions::new("127.0.0.1", port);
    opts.outbound_topic_aliases = aliases;
    opts.version = ProtocolVersion::V5;
    // The plain client may not use the identity's client id (reserved for
    // LWA since issue 13); a name of the same length keeps the sizes comparable.
    opts.client_id = if lwa_key.is_some() {
        IDENTITY.into()
    } else {
        "plain-cid".into()
    };
    if let Some(key) = lwa_key {
        opts.auth = Some(Box::new(
            LwaClientAuthenticator::from_key_file(IDENTITY, key)
                .unwrap()
                .with_version(version)
                .with_metadata_protection(metadata),
        ));
    }
    let (client, connack) = Client::connect(opts).await.unwrap();
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    let outcome = client
        .publish(
            "sizes/t",
            vec![b'x'; 30],
            QoS::AtLeastOnce,
            false,
            Properties::default(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.reason_code, ReasonCode::SUCCESS);
    if then == Then::UpdateAndPublish {
        client.update_keys().await.unwrap();
    }
    if then != Then::Nothing {
        let outcome = client
            .publish(
                "sizes/t",
                vec![b'x'; 30],
                QoS::AtLeastOnce,
                false,
                Properties::default(),
            )
            .await
            .unwrap();
        assert_eq!(outcome.reason_code, ReasonCode::SUCCESS);
    }
    let seen = (
        counts.to_broker.load(Ordering::SeqCst),
        counts.to_client.load(Ordering::SeqCst),
    );
    client.abort();
    seen
}

#[tokio::test]
async fn handshake_and_record_sizes_match_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lwa.psk");
    let key = dir.path().join("sensor-01.key");
    let out = Command::new(BIN)
        .args(["psk", "add"])
        .arg(&store)
        .arg(IDENTITY)
        .arg("--key-out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut config = BrokerConfig {
        sys_interval_secs: 0,
        ..BrokerConfig::default()
    };
    config.listeners[0].bind = "127.0.0.1:0".parse().unwrap();
    config.listeners[0].allow_anonymous = true;
    config.listeners[0].lwa_psk_file = Some(store);
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let handle = server.handle();
    let running = tokio::spawn(server.run());

    let (plain_up, plain_down) =
        one_connection(addr, None, LwaVersion::V1, Then::Nothing, false, true).await;
    let (lwa_up, lwa_down) =
        one_connection(addr, Some(&key), LwaVersion::V1, Then::Nothing, false, true).await;
    let (lwa2_up, lwa2_down) =
        one_connection(addr, Some(&key), LwaVersion::V2, Then::Nothing, false, true).await;
    let (twice_up, twice_down) =
        one_connection(addr, Some(&key), LwaVersion::V2, Then::Publish, false, true).await;
    let (update_up, update_down) = one_connection(
        addr,
        Some(&key),
        LwaVersion::V2,
        Then::UpdateAndPublish,
        false,
        true,
    )
    .await;

    // The section 11.1 numbers hold without "varint growth", i.e. while the
    // plaintext CONNECT plus the offer stays under 128 bytes of Remaining
    // Length; a 30-byte PUBLISH stays small too.
    let n = IDENTITY.len() as u64;
    assert!(plain_up < 128 - (45 + n), "plaintext traffic {plain_up} B");
    let connect_growth = 45 + n;
    let connack_growth = 60;
    let (auth_client, auth_broker, tag) = (30, 11, 16);
    assert_eq!(
        lwa_up - plain_up,
        connect_growth + auth_client + tag,
        "client to broker: plaintext {plain_up} B, LWA {lwa_up} B"
    );
    assert_eq!(
        lwa_down - plain_down,
        connack_growth + auth_broker,
        "broker to client: plaintext {plain_down} B, LWA {lwa_down} B"
    );
    // The spec's worked example: 155 bytes more for the handshake in total.
    assert_eq!((lwa_up - tag - plain_up) + (lwa_down - plain_down), 155);

    // LWA2 (LWA2.md section 10), PUBLISH path: the client's first packet
    // after CONNACK is the PUBLISH, whose sealed payload confirms its keys,
    // so there is no AUTH either way. CONNECT +50 (method "L2" property 5,
    // data header 3, offer 33 + n), CONNACK +57 (5 + 3 + response 49).
    let (connect2, connack2) = (5 + 3 + 33 + n, 5 + 3 + 49);
    assert_eq!(
        lwa2_up - plain_up,
        connect2 + tag,
        "LWA2 client to broker: plaintext {plain_up} B, LWA2 {lwa2_up} B"
    );
    assert_eq!(
        lwa2_down - plain_down,
        connack2,
        "LWA2 broker to client: plaintext {plain_down} B, LWA2 {lwa2_down} B"
    );
    let lwa2_handshake = (lwa2_up - tag - plain_up) + (lwa2_down - plain_down);
    eprintln!("handshake bytes over plaintext MQTT 5: LWA1 155, LWA2 {lwa2_handshake}");
    assert_eq!(lwa2_handshake, 107);
    // Issue 15 C's budget.
    assert!(lwa2_handshake <= 128);

    // A key update (LWA2.md 8.2): AUTH 0x19 with the 16-byte request each way
    // `2+1+1+5+3+16` = 28 bytes, and nothing else changes (the record after
    // it is as long as before).
    let auth_update = 2 + 1 + 1 + 5 + 3 + 16;
    assert_eq!(
        (update_up - twice_up, update_down - twice_down),
        (auth_update, auth_update),
        "key update: up {twice_up} -> {update_up} B, down {twice_down} -> {update_down} B"
    );

    // Metadata protection (LWA2.md 7.1): the same handshake size, and each
    // PUBLISH 4 bytes longer than without it when neither uses topic aliases
    // (placeholder topic "L" with its length, 3, and the inner property
    // length, 1; the real topic moves into the record).
    let (plain_alias_up, plain_alias_down) = one_connection(
        addr,
        Some(&key),
        LwaVersion::V2,
        Then::Publish,
        false,
        false,
    )
    .await;
    let (meta_up, meta_down) =
        one_connection(addr, Some(&key), LwaVersion::V2, Then::Publish, true, true).await;
    assert_eq!(
        (meta_up - plain_alias_up, meta_down - plain_alias_down),
        (2 * 4, 0),
        "metadata protection against no aliases: up {plain_alias_up} -> {meta_up} B"
    );
    // Against a client that aliases its topic (the default when the broker offers
    // aliases): the first PUBLISH carries the alias property (3 bytes) that metadata
    // protection does not, the second sends no topic at all, so metadata protection
    // costs 4 - 3 = 1 byte more on the first and 1 + the topic's length
    // ("sizes/t", 7) on the second (LWA2.md 7.1, "Cost").
    assert_eq!(
        (meta_up - twice_up, meta_down - twice_down),
        (1 + (1 + 7), 0),
        "metadata protection against aliases: up {twice_up} -> {meta_up} B"
    );

    handle.shutdown();
    running.await.unwrap().unwrap();
}
