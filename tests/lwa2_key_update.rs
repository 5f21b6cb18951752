//! LWA2 key update (LWA2.md section 8.2) against `mqtt-lwa broker` over real
//! sockets: the raw exchange renews both directions; a replayed, forged,
//! malformed or misplaced update ends only that connection with the right
//! reason code; clients with a tiny record limit keep a burst whole and in
//! order by updating instead of reconnecting; and `mqtt-lwa pub`/`sub` do it
//! from the command line.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::{connect_packet, unique, Broker, LineProcess, RawClient, Read1, WAIT};
use mqtt_lwa::auth::lwa::{LwaClientAuthenticator, LwaVersion};
use mqtt_lwa::auth::psk::PskStore;
use mqtt_lwa::auth::{ClientAuthStep, ClientAuthenticator, PayloadProtection};
use mqtt_lwa::client::{Client, ClientError, ConnectOptions, SessionError};
use mqtt_lwa::codec::{
    Auth, Packet, Properties, ProtocolVersion, Publish, QoS, ReasonCode, SubscribeFilter,
    SubscriptionOptions,
};
use mqtt_lwa::lwa::Psk;

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");
const V5: ProtocolVersion = ProtocolVersion::V5;
const DEV_KEY: [u8; 32] = [0x22; 32];

fn start() -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let psk_path = dir.path().join("lwa.psk");
    let mut store = PskStore::new();
    for id in ["dev", "pub", "sub"] {
        store.set(id, Psk::new(DEV_KEY)).unwrap();
    }
    store.save(&psk_path).unwrap();
    std::fs::write(dir.path().join("dev.key"), hex(&DEV_KEY)).unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"lwa\"\nbind = \"127.0.0.1\"\nallow_anonymous = true\nlwa_psk_file = \"{}\"\n",
            psk_path.display()
        ),
    )
    .unwrap();
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    (dir, broker)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An LWA2 connection confirmed by a first sealed PUBLISH on `topic` (the watcher sees it).
fn confirmed(broker: &Broker, w: &mut RawClient, topic: &str) -> (RawClient, ClientAuthStep) {
    let mut auth = LwaClientAuthenticator::new("dev", Psk::new(DEV_KEY))
        .unwrap()
        .with_version(LwaVersion::V2);
    let mut connect = connect_packet(V5, &unique("ku"), true);
    auth.prepare_connect(&mut connect).unwrap();
    let mut raw = RawClient::tcp(broker.addr, V5);
    raw.send(&Packet::Connect(Box::new(connect)));
    let ack = match raw.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    let mut step = auth.on_connack(&ack).expect("broker authenticated");
    let sealed = protection(&mut step)
        .seal(topic, QoS::AtMostOnce, false, b"hello")
        .unwrap();
    raw.send(&publish(topic, sealed));
    assert_eq!(
        next_message(w),
        (topic.to_owned(), Bytes::from_static(b"hello"))
    );
    (raw, step)
}

fn protection(step: &mut ClientAuthStep) -> &mut Box<dyn PayloadProtection> {
    step.protection.as_mut().unwrap()
}

fn publish(topic: &str, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        packet_id: 0,
        properties: Properties::default().into(),
        payload,
    })
}

fn auth(reason: ReasonCode, method: &str, data: Bytes) -> Packet {
    Packet::Auth(Box::new(Auth {
        reason_code: reason,
        properties: Properties {
            authentication_method: Some(method.into()),
            authentication_data: Some(data),
            ..Properties::default()
        },
    }))
}

fn closed_with(raw: &mut RawClient) -> Option<ReasonCode> {
    raw.expect_close().into_iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

fn watcher(broker: &Broker, filter: &str) -> RawClient {
    let mut w = RawClient::connect(broker.addr, V5, &unique("watch"));
    w.subscribe(filter, QoS::AtMostOnce);
    w
}

fn next_message(w: &mut RawClient) -> (String, Bytes) {
    match w.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))) {
        Packet::Publish(p) => (p.topic, p.payload),
        _ => unreachable!(),
    }
}

/// The broker's AUTH 0x00 answering a key update: its 16-byte data.
fn expect_answer(raw: &mut RawClient) -> Bytes {
    match raw.expect("AUTH", |p| matches!(p, Packet::Auth(_))) {
        Packet::Auth(a) => {
            assert_eq!(a.reason_code, ReasonCode::SUCCESS);
            assert_eq!(a.properties.authentication_method.as_deref(), Some("L2"));
            let data = a.properties.authentication_data.unwrap();
            assert_eq!(data.len(), 16);
            data
        }
        _ => unreachable!(),
    }
}

#[test]
fn an_update_renews_both_directions_and_a_replayed_one_ends_the_connection() {
    let (_dir, broker) = start();
    let mut w = watcher(&broker, "ku/#");
    let (mut raw, mut step) = confirmed(&broker, &mut w, "ku/up");
    raw.subscribe("kd/#", QoS::AtMostOnce);
    // One record each way under the handshake's keys.
    let down = |w: &mut RawClient, raw: &mut RawClient, text: &'static [u8]| {
        w.send(&publish("kd/x", Bytes::from_static(text)));
        match raw.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))) {
            Packet::Publish(p) => p.payload,
            _ => unreachable!(),
        }
    };
    let sealed = down(&mut w, &mut raw, b"gen 0");
    let opened = protection(&mut step)
        .open("kd/x", QoS::AtMostOnce, false, &sealed)
        .unwrap();
    assert_eq!(&opened[..], b"gen 0");

    let request = protection(&mut step).start_key_update().unwrap();
    assert_eq!(request.len(), 16);
    raw.send(&auth(ReasonCode::RE_AUTHENTICATE, "L2", request.clone()));
    let answer = expect_answer(&mut raw);
    protection(&mut step).finish_key_update(&answer).unwrap();

    // Both directions under generation 1, counters from 0.
    let sealed = protection(&mut step)
        .seal("ku/up", QoS::AtMostOnce, false, b"gen 1")
        .unwrap();
    raw.send(&publish("ku/up", sealed));
    assert_eq!(
        next_message(&mut w),
        ("ku/up".into(), Bytes::from_static(b"gen 1"))
    );
    let sealed = down(&mut w, &mut raw, b"gen 1 down");
    let opened = protection(&mut step)
        .open("kd/x", QoS::AtMostOnce, false, &sealed)
        .unwrap();
    assert_eq!(&opened[..], b"gen 1 down");
    // The first request replayed: the broker expects generation 2's MAC.
    raw.send(&auth(ReasonCode::RE_AUTHENTICATE, "L2", request));
    assert_eq!(closed_with(&mut raw), Some(ReasonCode::NOT_AUTHORIZED));
    // Everyone else is still served.
    let (_other, _) = confirmed(&broker, &mut w, "ku/after");
}

/// What a case does to an honest request, and the reason code it must get.
type Case = (&'static str, fn(Bytes) -> Packet, ReasonCode);

#[test]
fn forged_malformed_and_misplaced_updates_end_only_their_connection() {
    let (_dir, broker) = start();
    let mut w = watcher(&broker, "kb/#");
    let cases: [Case; 4] = [
        (
            "forged request",
            |r| {
                let mut b = r.to_vec();
                b[0] ^= 1;
                auth(ReasonCode::RE_AUTHENTICATE, "L2", Bytes::from(b))
            },
            ReasonCode::NOT_AUTHORIZED,
        ),
        (
            "15-byte request",
            |r| auth(ReasonCode::RE_AUTHENTICATE, "L2", r.slice(..15)),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "another method",
            |r| auth(ReasonCode::RE_AUTHENTICATE, "LWA1", r),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "reason 0x00 from the client",
            |r| auth(ReasonCode::SUCCESS, "L2", r),
            ReasonCode::PROTOCOL_ERROR,
        ),
    ];
    for (what, packet, code) in cases {
        let (mut raw, mut step) = confirmed(&broker, &mut w, "kb/t");
        let request = protection(&mut step).start_key_update().unwrap();
        raw.send(&packet(request));
        assert_eq!(closed_with(&mut raw), Some(code), "{what}");
    }
    // A plaintext connection has nothing to update.
    let mut plain = RawClient::connect(broker.addr, V5, &unique("plain"));
    plain.send(&auth(
        ReasonCode::RE_AUTHENTICATE,
        "L2",
        Bytes::from_static(&[0; 16]),
    ));
    assert_eq!(closed_with(&mut plain), Some(ReasonCode::PROTOCOL_ERROR));
    // The honest update still works afterwards.
    let (mut raw, mut step) = confirmed(&broker, &mut w, "kb/ok");
    let request = protection(&mut step).start_key_update().unwrap();
    raw.send(&auth(ReasonCode::RE_AUTHENTICATE, "L2", request));
    let answer = expect_answer(&mut raw);
    protection(&mut step).finish_key_update(&answer).unwrap();
    assert!(matches!(
        raw.read(Duration::from_millis(200)),
        Read1::Timeout
    ));
}

fn lwa2_options(broker: &Broker, id: &str, limit_log2: u8) -> ConnectOptions {
    let mut o = ConnectOptions::new("127.0.0.1", broker.addr.port());
    o.client_id = unique(id);
    let auth = LwaClientAuthenticator::new(id, Psk::new(DEV_KEY))
        .unwrap()
        .with_version(LwaVersion::V2)
        .with_record_limit_log2(limit_log2);
    o.auth = Some(Box::new(auth));
    o
}

/// Two records per direction and generation: the publisher updates after
/// every record it seals, the subscriber after every one it opens, and the
/// broker holds what it cannot seal until the subscriber's update arrives.
#[tokio::test]
async fn a_burst_stays_whole_and_in_order_through_hundreds_of_updates() {
    let (_dir, broker) = start();
    let (mut sub, _) = Client::connect(lwa2_options(&broker, "sub", 1))
        .await
        .unwrap();
    sub.subscribe(
        vec![SubscribeFilter {
            filter: "burst/#".into(),
            options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        }],
        Properties::default(),
    )
    .await
    .unwrap();
    let (publisher, _) = Client::connect(lwa2_options(&broker, "pub", 1))
        .await
        .unwrap();
    const N: usize = 300;
    // Spawned in order on this current-thread runtime: queued in order, in flight together.
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let handle = publisher.handle();
            tokio::spawn(async move {
                handle
                    .publish(
                        "burst/t",
                        format!("m{i}"),
                        QoS::AtLeastOnce,
                        false,
                        Properties::default(),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert_eq!(outcome.reason_code, ReasonCode::SUCCESS);
    }
    for i in 0..N {
        let m = tokio::time::timeout(WAIT, sub.recv())
            .await
            .expect("message in time")
            .expect("connection still up");
        assert_eq!(m.payload, Bytes::from(format!("m{i}")), "message {i}");
    }
    // One connection each: a reconnect would have ended these clients.
    publisher
        .disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default())
        .await
        .unwrap();
    sub.disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn lwa1_and_plaintext_connections_refuse_a_key_update_request() {
    let (_dir, broker) = start();
    let mut o = ConnectOptions::new("127.0.0.1", broker.addr.port());
    o.client_id = unique("v1");
    o.auth = Some(Box::new(
        LwaClientAuthenticator::new("dev", Psk::new(DEV_KEY)).unwrap(),
    ));
    let (v1, _) = Client::connect(o).await.unwrap();
    let refused = |r: Result<(), ClientError>| {
        matches!(
            r,
            Err(ClientError::Request(SessionError::InvalidRequest(_)))
        )
    };
    assert!(refused(v1.update_keys().await));
    let mut o = ConnectOptions::new("127.0.0.1", broker.addr.port());
    o.client_id = unique("plain");
    let (plain, _) = Client::connect(o).await.unwrap();
    assert!(refused(plain.update_keys().await));
}

fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn cli_pub_and_sub_update_their_keys_instead_of_reconnecting() {
    let (dir, broker) = start();
    let key = dir.path().join("dev.key");
    let port = broker.addr.port().to_string();
    let topic = unique("cli/ku");
    let lwa = |id: &'static str| -> Vec<String> {
        vec![
            "--lwa-id".into(),
            id.into(),
            "--lwa-key".into(),
            key.display().to_string(),
            "--lwa-version".into(),
            "2".into(),
            "--lwa-record-limit-log2".into(),
            "2".into(),
        ]
    };
    let mut sub_args: Vec<String> = ["sub", "-d", "-h", "127.0.0.1", "-p", port.as_str(), "-i"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    sub_args.push(unique("sub"));
    sub_args.extend(lwa("dev"));
    sub_args.extend(["-t", topic.as_str(), "-q", "1", "-C", "24", "-W", "60"].map(String::from));
    let sub_refs: Vec<&str> = sub_args.iter().map(String::as_str).collect();
    let mut sub = LineProcess::spawn(BIN, &sub_refs);
    sub.expect_line("SUBACK", |l| l.contains("received SUBACK"));

    let mut publisher = Command::new(BIN)
        .args(["pub", "-d", "-h", "127.0.0.1", "-p", port.as_str(), "-i"])
        .arg(unique("pub"))
        .args(lwa("dev"))
        .args(["-t", topic.as_str(), "-q", "1", "-l", "-W", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: String = (1..=24).map(|i| format!("reading {i}\n")).collect();
    publisher
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = publisher.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    // 4 records per generation, an update after every 2nd PUBLISH: 12 for 24
    // messages (13 AUTH if the finished went first), on one connection. The
    // broker answers update k before the PUBACK of message 2k + 1, so at
    // least 11 answers arrive before the last PUBACK.
    assert_eq!(count(&log, "sending CONNECT"), 1, "{log}");
    assert!(count(&log, "sending AUTH") >= 12, "{log}");
    assert!(count(&log, "LWA2 keys updated") >= 11, "{log}");
    for i in 1..=24 {
        let want = format!("reading {i}");
        sub.expect_line(&want, |l| l == want);
    }
    assert!(sub.wait().success());
}
