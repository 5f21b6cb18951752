//! LWA2 metadata protection (LWA2.md 7.1, issue 15 C) against a real
//! `mqtt-lwa broker`: through `mqtt-lwa pub/sub --lwa-protect-metadata` the
//! network sees only the placeholder topic, while subscribers in other modes
//! get the real topic and properties; over raw sockets, a PUBLISH that shows
//! its topic or properties, or whose record carries no valid PUBLISH header,
//! ends the connection with the spec's reason code and delivers nothing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::{
    connect_packet, contains, psk_cli, recording_proxy, unique, Broker, LineProcess, RawClient,
    Read1, WAIT,
};
use mqtt_lwa::auth::lwa::{LwaClientAuthenticator, LwaVersion};
use mqtt_lwa::auth::metadata::{open_publish, seal_publish};
use mqtt_lwa::auth::psk::PskStore;
use mqtt_lwa::auth::{ClientAuthStep, ClientAuthenticator};
use mqtt_lwa::codec::{
    publish_properties_content, Packet, Properties, ProtocolVersion, Publish, QoS, ReasonCode,
    Subscribe, SubscribeFilter, SubscriptionOptions,
};
use mqtt_lwa::lwa::lwa2::metadata::{Inner, PLACEHOLDER_TOPIC};
use mqtt_lwa::lwa::Psk;

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");
const V5: ProtocolVersion = ProtocolVersion::V5;
const DEV_KEY: [u8; 32] = [0x22; 32];

/// An LWA listener that also takes anonymous plaintext clients (the watchers).
fn broker_config(dir: &Path, psk_file: &Path) -> std::path::PathBuf {
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"lwa\"\nbind = \"127.0.0.1\"\nallow_anonymous = true\n\
             lwa_psk_file = \"{}\"\n",
            psk_file.display()
        ),
    )
    .unwrap();
    config
}

fn lwa_args<'a>(port: &'a str, id: &'a str, key: &'a str) -> Vec<&'a str> {
    vec![
        "-h",
        "127.0.0.1",
        "-p",
        port,
        "--lwa-id",
        id,
        "--lwa-key",
        key,
        "--lwa-version",
        "2",
    ]
}

fn run_pub(args: &[&str]) {
    let out = Command::new(BIN).arg("pub").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "pub {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn publish_of(p: Packet) -> Publish {
    match p {
        Packet::Publish(p) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

#[test]
fn the_network_sees_the_placeholder_and_other_modes_the_real_topic() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["pubm", "subm", "subm2", "pubx"] {
        psk_cli(dir.path(), &["add", "lwa.psk", id]);
    }
    let key = |id: &str| dir.path().join(format!("{id}.key")).display().to_string();
    let config = broker_config(dir.path(), &dir.path().join("lwa.psk"));
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    // Only the clients with metadata protection go through the recording proxy.
    let (proxy, wire) = recording_proxy(broker.addr);
    let proxy = proxy.to_string();
    let direct = broker.port().to_string();

    // A plaintext subscriber sees what the protected publisher sent: topic and properties.
    let mut watcher = RawClient::connect(broker.addr, V5, &unique("watch"));
    watcher.subscribe("meta/#", QoS::AtLeastOnce);

    let (subm_key, subm_id) = (key("subm"), unique("subm"));
    let mut args = vec!["sub", "-d", "-v"];
    args.extend(lwa_args(&proxy, "subm", &subm_key));
    args.extend([
        "--lwa-protect-metadata",
        "-i",
        &subm_id,
        "-t",
        "meta/#",
        "-q",
        "2",
        "-C",
        "5",
        "-W",
        "60",
    ]);
    let mut sub = LineProcess::spawn(BIN, &args);
    sub.expect_line("SUBACK", |l| l.contains("received SUBACK"));

    let topic = "meta/room-7f3a/temp";
    let pubm_key = key("pubm");
    for qos in ["0", "1", "2"] {
        let msg = format!("reading-{qos}-c0ffee");
        let id = unique("pubm");
        let mut args = lwa_args(&proxy, "pubm", &pubm_key);
        args.extend(["--lwa-protect-metadata", "-i", &id, "-t", topic, "-m", &msg]);
        args.extend([
            "-q",
            qos,
            "-D",
            "publish",
            "user-property",
            "model",
            "xk-42-secret",
        ]);
        run_pub(&args);
        sub.expect_line("the message", |l| l == format!("{topic} {msg}"));
        let seen = publish_of(watcher.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))));
        assert_eq!(
            (seen.topic.as_str(), &seen.payload[..]),
            (topic, msg.as_bytes())
        );
        assert_eq!(
            seen.properties.user_properties,
            vec![("model".to_owned(), "xk-42-secret".to_owned())]
        );
        if seen.qos != QoS::AtMostOnce {
            watcher.send(&Packet::PubAck(mqtt_lwa::codec::PubResponse::success(
                seen.packet_id,
            )));
        }
    }
    // LWA2 without metadata protection, straight to the broker: the protected
    // subscriber gets it with the topic inside its record.
    let (pubx_key, pubx_id) = (key("pubx"), unique("pubx"));
    let mut args = lwa_args(&direct, "pubx", &pubx_key);
    args.extend([
        "-i",
        &pubx_id,
        "-t",
        topic,
        "-m",
        "from-lwa2-plain",
        "-q",
        "1",
    ]);
    run_pub(&args);
    sub.expect_line("the message", |l| l == format!("{topic} from-lwa2-plain"));
    // Retained under protection: stored opened, delivered live and later sealed again.
    let id = unique("pubm");
    let mut args = lwa_args(&proxy, "pubm", &pubm_key);
    args.extend([
        "--lwa-protect-metadata",
        "-i",
        &id,
        "-t",
        "meta/retained-9b1e",
    ]);
    args.extend(["-m", "kept-9b1e", "-r", "-q", "1"]);
    run_pub(&args);
    sub.expect_line("the message", |l| l == "meta/retained-9b1e kept-9b1e");
    assert!(sub.wait().success());
    let (subm2_key, subm2_id) = (key("subm2"), unique("subm2"));
    let mut args = vec!["sub", "-v"];
    args.extend(lwa_args(&proxy, "subm2", &subm2_key));
    args.extend([
        "--lwa-protect-metadata",
        "-i",
        &subm2_id,
        "-t",
        "meta/+",
        "-C",
        "1",
    ]);
    args.extend(["-W", "30"]);
    let mut late = LineProcess::spawn(BIN, &args);
    late.expect_line("the retained message", |l| {
        l == "meta/retained-9b1e kept-9b1e"
    });
    assert!(late.wait().success());

    let wire = wire.lock().unwrap();
    for secret in [
        &b"room-7f3a"[..],
        b"xk-42-secret",
        b"model",
        b"reading-",
        b"from-lwa2-plain",
        b"retained-9b1e",
    ] {
        assert!(
            !contains(&wire, secret),
            "{:?} on the wire",
            String::from_utf8_lossy(secret)
        );
    }
    // What the network does see: method L2, the placeholder topic, and the
    // SUBSCRIBE filters (section 7.1 leaves them in clear).
    assert!(contains(&wire, b"\x15\x00\x02L2"));
    assert!(contains(&wire, b"\x00\x01L"));
    assert!(contains(&wire, b"meta/#") && contains(&wire, b"meta/+"));
}

#[test]
fn the_cli_refuses_metadata_protection_with_lwa1() {
    let dir = tempfile::tempdir().unwrap();
    psk_cli(dir.path(), &["add", "lwa.psk", "dev"]);
    let key = dir.path().join("dev.key");
    let out = Command::new(BIN)
        .args([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            "1",
            "--lwa-id",
            "dev",
            "--lwa-key",
        ])
        .arg(&key)
        .args(["--lwa-protect-metadata", "-t", "t", "-m", "m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs --lwa-version 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start() -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let psk_path = dir.path().join("lwa.psk");
    let mut store = PskStore::new();
    store.set("dev", Psk::new(DEV_KEY)).unwrap();
    store.save(&psk_path).unwrap();
    let config = broker_config(dir.path(), &psk_path);
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    (dir, broker)
}

/// CONNECT with LWA2 and metadata protection, and a verified CONNACK.
fn handshake(broker: &Broker, client_id: &str) -> (RawClient, ClientAuthStep) {
    let mut auth = LwaClientAuthenticator::new("dev", Psk::new(DEV_KEY))
        .unwrap()
        .with_version(LwaVersion::V2)
        .with_metadata_protection(true);
    let mut connect = connect_packet(V5, client_id, true);
    auth.prepare_connect(&mut connect).unwrap();
    // The offer's first byte carries M.
    let offer = connect.properties.authentication_data.clone().unwrap();
    assert_eq!(offer[0] & 0x80, 0x80);
    let mut raw = RawClient::tcp(broker.addr, V5);
    raw.send(&Packet::Connect(Box::new(connect)));
    let ack = match raw.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    let step = auth.on_connack(&ack).expect("broker granted M");
    assert!(step.protection.as_ref().unwrap().protects_metadata());
    (raw, step)
}

fn message(topic: &str, payload: &'static [u8], properties: Properties) -> Publish {
    Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        packet_id: 0,
        properties: properties.into(),
        payload: Bytes::from_static(payload),
    }
}

fn user(k: &str, v: &str) -> Properties {
    Properties {
        user_properties: vec![(k.into(), v.into())],
        ..Properties::default()
    }
}

fn closed_with(raw: &mut RawClient) -> Option<ReasonCode> {
    raw.expect_close().into_iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

/// An honest client: its first PUBLISH (sealed with metadata) confirms it.
fn confirmed(broker: &Broker, w: &mut RawClient) -> (RawClient, ClientAuthStep) {
    let (mut raw, mut step) = handshake(broker, &unique("m"));
    let mut first = message("m/first", b"hello", user("k", "v"));
    seal_publish(step.protection.as_mut().unwrap().as_mut(), &mut first).unwrap();
    assert_eq!(first.topic, PLACEHOLDER_TOPIC);
    assert!(first.properties.is_empty());
    raw.send(&Packet::Publish(first));
    let seen = publish_of(w.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))));
    assert_eq!(seen.topic, "m/first");
    assert_eq!(&seen.payload[..], b"hello");
    assert_eq!(
        seen.properties.user_properties,
        user("k", "v").user_properties
    );
    (raw, step)
}

/// A QoS 0 PUBLISH packet as it goes on the wire.
fn wire(topic: &str, payload: Bytes, properties: Properties) -> Packet {
    let mut p = message(topic, b"", properties);
    p.payload = payload;
    Packet::Publish(p)
}

/// A PUBLISH with the placeholder topic whose record carries `inner`.
fn sealed_inner(step: &mut ClientAuthStep, inner: &[u8]) -> Bytes {
    let p = step.protection.as_mut().unwrap();
    p.seal(PLACEHOLDER_TOPIC, QoS::AtMostOnce, false, inner)
        .unwrap()
}

#[test]
fn a_publish_that_exposes_or_garbles_its_metadata_ends_the_connection() {
    let (_dir, broker) = start();
    let mut w = RawClient::connect(broker.addr, V5, &unique("watch"));
    w.subscribe("m/#", QoS::AtMostOnce);

    // The first PUBLISH with its real topic on the wire: refused at confirmation.
    let (mut raw, mut step) = handshake(&broker, &unique("exposed"));
    let sealed = step
        .protection
        .as_mut()
        .unwrap()
        .seal("m/exposed", QoS::AtMostOnce, false, b"x")
        .unwrap();
    raw.send(&wire("m/exposed", sealed, Properties::default()));
    assert_eq!(closed_with(&mut raw), Some(ReasonCode::PROTOCOL_ERROR));

    // After an honest confirmation: a property on the wire.
    let (mut raw, mut step) = confirmed(&broker, &mut w);
    let inner = Inner {
        topic: "m/t",
        properties: &[],
        payload: b"p",
    }
    .to_bytes()
    .unwrap();
    let sealed = sealed_inner(&mut step, &inner);
    raw.send(&wire(PLACEHOLDER_TOPIC, sealed, user("a", "b")));
    assert_eq!(closed_with(&mut raw), Some(ReasonCode::PROTOCOL_ERROR));

    // Records that open but carry no valid PUBLISH header.
    let alias = publish_properties_content(&Properties {
        topic_alias: Some(1),
        ..Properties::default()
    })
    .unwrap();
    let cases: [(Vec<u8>, ReasonCode); 4] = [
        (vec![0, 0], ReasonCode::MALFORMED_PACKET),
        (vec![0, 1, b't', 0x80, 0x00], ReasonCode::MALFORMED_PACKET),
        (
            Inner {
                topic: "m/#",
                properties: &[],
                payload: b"",
            }
            .to_bytes()
            .unwrap(),
            ReasonCode::TOPIC_NAME_INVALID,
        ),
        (
            Inner {
                topic: "m/a",
                properties: &alias,
                payload: b"",
            }
            .to_bytes()
            .unwrap(),
            ReasonCode::PROTOCOL_ERROR,
        ),
    ];
    for (inner, code) in cases {
        let (mut raw, mut step) = confirmed(&broker, &mut w);
        let sealed = sealed_inner(&mut step, &inner);
        raw.send(&wire(PLACEHOLDER_TOPIC, sealed, Properties::default()));
        assert_eq!(closed_with(&mut raw), Some(code), "{inner:?}");
    }
    // None of the refused PUBLISHes reached the watcher: the next message is an honest one.
    confirmed(&broker, &mut w);
}

#[test]
fn deliveries_to_a_protected_subscriber_carry_topic_and_properties_inside() {
    let (_dir, broker) = start();
    let (mut sub, mut step) = handshake(&broker, &unique("msub"));
    // The finished path: a subscriber's first packet is not a PUBLISH.
    sub.send(&Packet::Auth(Box::new(step.auth_to_send.take().unwrap())));
    sub.send(&Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![SubscribeFilter {
            filter: "d/#".into(),
            options: SubscriptionOptions::qos(QoS::AtMostOnce),
        }],
        properties: Properties {
            subscription_identifiers: vec![42],
            ..Properties::default()
        }
        .into(),
    }));
    sub.expect("SUBACK", |p| matches!(p, Packet::SubAck(_)));
    // A plaintext publisher with a topic alias and properties.
    let mut plain = RawClient::connect(broker.addr, V5, &unique("plain"));
    let mut props = user("room", "7f3a");
    props.content_type = Some("text/plain".into());
    props.topic_alias = Some(1);
    plain.send(&Packet::Publish(message("d/secret-topic", b"one", props)));
    plain.send(&Packet::Publish(message(
        "",
        b"two",
        Properties {
            topic_alias: Some(1),
            ..Properties::default()
        },
    )));
    for payload in [&b"one"[..], b"two"] {
        let mut got = publish_of(sub.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))));
        // On the wire: the placeholder, no properties (no alias, no subscription id).
        assert_eq!(got.topic, PLACEHOLDER_TOPIC);
        assert!(got.properties.is_empty());
        open_publish(step.protection.as_mut().unwrap().as_mut(), &mut got).unwrap();
        assert_eq!(got.topic, "d/secret-topic");
        assert_eq!(&got.payload[..], payload);
        assert_eq!(got.properties.subscription_identifiers, vec![42]);
        if payload == b"one" {
            assert_eq!(got.properties.content_type.as_deref(), Some("text/plain"));
            assert_eq!(
                got.properties.user_properties,
                user("room", "7f3a").user_properties
            );
        }
        assert_eq!(got.properties.topic_alias, None);
    }
    assert!(matches!(
        sub.read(Duration::from_millis(200)),
        Read1::Timeout
    ));
}
