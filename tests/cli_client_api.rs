//! The client library against Debian's mosquitto broker, over real sockets:
//! QoS 0/1/2 both ways, topic aliases, retained messages, wills, persistent
//! sessions, refusals and keep-alive, for MQTT 3.1.1 and 5.0.

mod cli_support;

use std::time::Duration;

use bytes::Bytes;
use cli_support::{wait_for, Mosquitto, OwnBroker};
use mqtt_lwa::client::{Client, ClientError, ConnectOptions, Message, SessionError};
use mqtt_lwa::codec::{
    LastWill, Properties, ProtocolVersion, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions,
};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

fn options(port: u16, version: ProtocolVersion, id: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new("127.0.0.1", port);
    o.version = version;
    o.client_id = id.into();
    o
}

fn filter(f: &str, qos: QoS) -> Vec<SubscribeFilter> {
    vec![SubscribeFilter {
        filter: f.into(),
        options: SubscriptionOptions::qos(qos),
    }]
}

async fn next(client: &mut Client) -> Message {
    tokio::time::timeout(Duration::from_secs(10), client.recv())
        .await
        .expect("a message within 10 s")
        .expect("connection still open")
}

#[tokio::test]
async fn qos_0_1_2_round_trip_both_versions() {
    let broker = Mosquitto::start("");
    for version in VERSIONS {
        let (mut sub, connack) = Client::connect(options(broker.port, version, "api-sub"))
            .await
            .unwrap();
        assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
        let suback = sub
            .subscribe(filter("api/#", QoS::ExactlyOnce), Properties::default())
            .await
            .unwrap();
        assert_eq!(suback.reason_codes, vec![ReasonCode::GRANTED_QOS_2]);
        let (publisher, _) = Client::connect(options(broker.port, version, "api-pub"))
            .await
            .unwrap();
        for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            let payload = format!("{version:?} message {i}");
            let outcome = publisher
                .publish("api/t", payload.clone(), qos, false, Properties::default())
                .await
                .unwrap();
            assert!(!outcome.reason_code.is_error());
            let m = next(&mut sub).await;
            assert_eq!(
                (m.topic.as_str(), &m.payload[..]),
                ("api/t", payload.as_bytes())
            );
            assert_eq!(m.qos, qos);
        }
        publisher
            .disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default())
            .await
            .unwrap();
        sub.disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn many_concurrent_qos2_publishes_with_topic_aliases_both_ways() {
    // mosquitto offers Topic Alias Maximum 10 and Receive Maximum 20 and sends
    // no aliases; mqtt-lwa broker also aliases what it delivers.
    let mosquitto = Mosquitto::start("");
    let own = OwnBroker::start(&[]);
    for port in [mosquitto.port, own.port] {
        let mut o = options(port, ProtocolVersion::V5, "alias-sub");
        o.properties.topic_alias_maximum = Some(2);
        let (mut sub, _) = Client::connect(o).await.unwrap();
        sub.subscribe(filter("alias/#", QoS::ExactlyOnce), Properties::default())
            .await
            .unwrap();
        let (publisher, _) = Client::connect(options(port, ProtocolVersion::V5, "alias-pub"))
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..60u32 {
            let handle = publisher.handle();
            tasks.spawn(async move {
                let topic = format!("alias/{}", i % 3);
                handle
                    .publish(
                        topic,
                        i.to_string(),
                        QoS::ExactlyOnce,
                        false,
                        Properties::default(),
                    )
                    .await
            });
        }
        while let Some(result) = tasks.join_next().await {
            assert!(!result.unwrap().unwrap().reason_code.is_error());
        }
        let mut seen = Vec::new();
        for _ in 0..60 {
            let m = next(&mut sub).await;
            let i: u32 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
            assert_eq!(
                m.topic,
                format!("alias/{}", i % 3),
                "alias resolved to the right topic"
            );
            assert_eq!(m.properties.topic_alias, None);
            seen.push(i);
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..60).collect::<Vec<_>>(),
            "each message exactly once"
        );
    }
}

#[tokio::test]
async fn retained_message_is_set_and_cleared() {
    let broker = Mosquitto::start("");
    let (publisher, _) = Client::connect(options(broker.port, ProtocolVersion::V5, "ret-pub"))
        .await
        .unwrap();
    publisher
        .publish(
            "ret/x",
            "kept",
            QoS::AtLeastOnce,
            true,
            Properties::default(),
        )
        .await
        .unwrap();
    let (mut sub, _) = Client::connect(options(broker.port, ProtocolVersion::V311, "ret-sub"))
        .await
        .unwrap();
    sub.subscribe(filter("ret/#", QoS::AtLeastOnce), Properties::default())
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert!(m.retain);
    assert_eq!(&m.payload[..], b"kept");
    publisher
        .publish(
            "ret/x",
            Bytes::new(),
            QoS::AtLeastOnce,
            true,
            Properties::default(),
        )
        .await
        .unwrap();
    // The clearing message itself is delivered live (retain flag off), then nothing is retained.
    let m = next(&mut sub).await;
    assert!(m.payload.is_empty());
    let (mut late, _) = Client::connect(options(broker.port, ProtocolVersion::V5, "ret-late"))
        .await
        .unwrap();
    late.subscribe(filter("ret/#", QoS::AtLeastOnce), Properties::default())
        .await
        .unwrap();
    publisher
        .publish(
            "ret/marker",
            "live",
            QoS::AtLeastOnce,
            false,
            Properties::default(),
        )
        .await
        .unwrap();
    let m = next(&mut late).await;
    assert_eq!(
        m.topic, "ret/marker",
        "no retained message left before the live one"
    );
}

#[tokio::test]
async fn will_is_published_when_the_connection_drops() {
    let broker = Mosquitto::start("");
    for version in VERSIONS {
        let (mut sub, _) = Client::connect(options(broker.port, version, "will-sub"))
            .await
            .unwrap();
        sub.subscribe(filter("will/#", QoS::AtLeastOnce), Properties::default())
            .await
            .unwrap();
        let mut o = options(broker.port, version, "will-client");
        o.will = Some(LastWill {
            topic: "will/gone".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        });
        let (client, _) = Client::connect(o).await.unwrap();
        // 5.0: Disconnect with Will Message; 3.1.1: DISCONNECT suppresses the will, so drop the socket.
        match version {
            ProtocolVersion::V5 => client
                .disconnect(ReasonCode::DISCONNECT_WITH_WILL, Properties::default())
                .await
                .unwrap(),
            ProtocolVersion::V311 => client.abort(),
        }
        let m = next(&mut sub).await;
        assert_eq!(
            (m.topic.as_str(), &m.payload[..]),
            ("will/gone", &b"bye"[..])
        );
    }
}

#[tokio::test]
async fn persistent_session_receives_messages_queued_while_offline() {
    let broker = Mosquitto::start("");
    for version in VERSIONS {
        let id = format!("persist-{version:?}");
        let persistent = |port| {
            let mut o = options(port, version, &id);
            o.clean_start = false;
            o.properties.session_expiry_interval = Some(300);
            o
        };
        let (sub, _) = Client::connect(persistent(broker.port)).await.unwrap();
        sub.subscribe(filter("persist/#", QoS::AtLeastOnce), Properties::default())
            .await
            .unwrap();
        sub.disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default())
            .await
            .unwrap();
        let (publisher, _) = Client::connect(options(broker.port, version, "persist-pub"))
            .await
            .unwrap();
        publisher
            .publish(
                "persist/a",
                "queued",
                QoS::AtLeastOnce,
                false,
                Properties::default(),
            )
            .await
            .unwrap();
        let (mut sub, connack) = Client::connect(persistent(broker.port)).await.unwrap();
        assert!(connack.session_present);
        let m = next(&mut sub).await;
        assert_eq!(&m.payload[..], b"queued");
    }
}

#[tokio::test]
async fn refused_connection_reports_the_reason() {
    let broker = Mosquitto::start_with("allow_anonymous false\n", "");
    for version in VERSIONS {
        let err = Client::connect(options(broker.port, version, "nobody"))
            .await
            .err()
            .expect("anonymous refused");
        assert!(
            matches!(err, ClientError::Refused(ReasonCode::NOT_AUTHORIZED, _)),
            "{err:?}"
        );
        assert!(err.is_auth_failure());
        assert_eq!(err.to_string(), "connection refused: not authorized (0x87)");
    }
}

#[tokio::test]
async fn keep_alive_pings_keep_the_connection_open() {
    let broker = Mosquitto::start("");
    let mut o = options(broker.port, ProtocolVersion::V5, "pinger");
    o.keep_alive = 1;
    let (client, _) = Client::connect(o).await.unwrap();
    let pinged = tokio::task::spawn_blocking(move || {
        let seen = wait_for(Duration::from_secs(10), || {
            broker.log().matches("Received PINGREQ from pinger").count() >= 2
        });
        (seen, broker)
    })
    .await
    .unwrap();
    assert!(pinged.0, "two PINGREQs: {}", pinged.1.log());
    // The broker would have dropped us after 1.5 s without them.
    let outcome = client
        .publish(
            "ka/t",
            "alive",
            QoS::AtLeastOnce,
            false,
            Properties::default(),
        )
        .await
        .unwrap();
    assert!(!outcome.reason_code.is_error());
}

#[tokio::test]
async fn dead_broker_is_detected_by_keep_alive() {
    // A TCP peer that accepts and answers CONNACK, then never says anything again.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf).await.unwrap();
        s.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap(); // 3.1.1 CONNACK accepted
                                                               // Keep reading (PINGREQs) without answering.
        while s.read(&mut buf).await.unwrap_or(0) > 0 {}
    });
    let mut o = options(port, ProtocolVersion::V311, "lonely");
    o.keep_alive = 1;
    let (mut client, _) = Client::connect(o).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .expect("dead broker detected within 10 s");
    assert!(matches!(ended, Err(ClientError::Timeout(_))), "{ended:?}");
    silent.abort();
}

#[tokio::test]
async fn large_payloads_cross_both_brokers_intact() {
    let mosquitto = Mosquitto::start("");
    let own = OwnBroker::start(&["--max-packet-size", "4000000"]);
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    for port in [mosquitto.port, own.port] {
        let (mut sub, _) = Client::connect(options(port, ProtocolVersion::V5, "big-sub"))
            .await
            .unwrap();
        sub.subscribe(filter("big", QoS::AtLeastOnce), Properties::default())
            .await
            .unwrap();
        let (publisher, _) = Client::connect(options(port, ProtocolVersion::V311, "big-pub"))
            .await
            .unwrap();
        publisher
            .publish(
                "big",
                payload.clone(),
                QoS::AtLeastOnce,
                false,
                Properties::default(),
            )
            .await
            .unwrap();
        let m = next(&mut sub).await;
        assert!(m.payload[..] == payload[..], "payload intact");
    }
}

#[tokio::test]
async fn broker_maximum_packet_size_is_enforced_before_sending() {
    let own = OwnBroker::start(&["--max-packet-size", "1000"]);
    let (client, connack) = Client::connect(options(own.port, ProtocolVersion::V5, "small"))
        .await
        .unwrap();
    assert_eq!(connack.properties.maximum_packet_size, Some(1000));
    let err = client
        .publish(
            "t",
            vec![0u8; 2000],
            QoS::AtLeastOnce,
            false,
            Properties::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Request(SessionError::PacketTooLarge { max: 1000, .. })
        ),
        "{err:?}"
    );
    // The connection is still good for messages that fit.
    let outcome = client
        .publish(
            "t",
            vec![0u8; 500],
            QoS::AtLeastOnce,
            false,
            Properties::default(),
        )
        .await
        .unwrap();
    assert!(!outcome.reason_code.is_error());
}
