//! The tokio driver over an in-memory pipe, with a scripted broker on the
//! other end: connect, QoS flows both ways, broker DISCONNECT, timeouts.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::codec::{Disconnect, PubResponse, Publish};

/// The broker's end of the pipe: decodes what the client sends, encodes replies.
struct ScriptedBroker {
    stream: BoxStream,
    decoder: Decoder,
    buf: BytesMut,
    version: crate::codec::ProtocolVersion,
}

impl ScriptedBroker {
    fn new(stream: DuplexStream) -> Self {
        Self::over(Box::new(stream))
    }

    fn over(stream: BoxStream) -> Self {
        ScriptedBroker {
            stream,
            decoder: Decoder::new(1 << 20),
            buf: BytesMut::new(),
            version: crate::codec::ProtocolVersion::V5,
        }
    }

    async fn recv(&mut self) -> Packet {
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf).unwrap() {
                if let Packet::Connect(c) = &p {
                    self.version = c.protocol_version;
                }
                return p;
            }
            let n = self.stream.read_buf(&mut self.buf).await.unwrap();
            assert!(n > 0, "client closed the pipe");
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        encode(&packet, self.version, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    async fn accept(&mut self, properties: Properties) {
        assert!(matches!(self.recv().await, Packet::Connect(_)));
        self.send(Packet::ConnAck(Box::new(ConnAck {
            session_present: false,
            reason_code: ReasonCode::SUCCESS,
            properties,
        })))
        .await;
    }
}

fn pipe_options() -> ConnectOptions {
    let mut o = ConnectOptions::new("unused", 0);
    o.client_id = "pipe".into();
    o
}

async fn connect_pipe(
    opts: ConnectOptions,
) -> (Result<(Client, ConnAck), ClientError>, ScriptedBroker) {
    let (client_end, broker_end) = tokio::io::duplex(64 * 1024);
    let mut broker = ScriptedBroker::new(broker_end);
    let (client, ()) = tokio::join!(
        Client::connect_with_stream(Box::new(client_end), opts),
        broker.accept(Properties::default())
    );
    (client, broker)
}

#[tokio::test]
async fn qos1_both_ways_over_an_in_memory_pipe() {
    let (client, mut broker) = connect_pipe(pipe_options()).await;
    let (mut client, connack) = client.unwrap();
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    let handle = client.handle();
    let publishing = tokio::spawn(async move {
        handle
            .publish(
                "pipe/out",
                "ping",
                QoS::AtLeastOnce,
                false,
                Properties::default(),
            )
            .await
    });
    let Packet::Publish(p) = broker.recv().await else {
        panic!("expected PUBLISH")
    };
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("pipe/out", &b"ping"[..])
    );
    broker
        .send(Packet::PubAck(PubResponse {
            packet_id: p.packet_id,
            reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
            properties: Default::default(),
        }))
        .await;
    let outcome = publishing.await.unwrap().unwrap();
    assert_eq!(outcome.reason_code, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    broker
        .send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "pipe/in".into(),
            packet_id: 42,
            properties: Default::default(),
            payload: Bytes::from_static(b"pong"),
        }))
        .await;
    let m = client.recv().await.unwrap();
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("pipe/in", &b"pong"[..])
    );
    assert_eq!(
        broker.recv().await,
        Packet::PubAck(PubResponse::success(42))
    );
    let (closed, ()) = tokio::join!(
        client.disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default()),
        async {
            assert!(matches!(broker.recv().await, Packet::Disconnect(_)));
        }
    );
    closed.unwrap();
}

#[tokio::test]
async fn broker_disconnect_reason_reaches_waiting_requests() {
    let (client, mut broker) = connect_pipe(pipe_options()).await;
    let (mut client, _) = client.unwrap();
    let handle = client.handle();
    let publishing = tokio::spawn(async move {
        handle
            .publish("t", "x", QoS::ExactlyOnce, false, Properties::default())
            .await
    });
    assert!(matches!(broker.recv().await, Packet::Publish(_)));
    broker
        .send(Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::SERVER_SHUTTING_DOWN,
            properties: Properties {
                reason_string: Some("maintenance".into()),
                ..Properties::default()
            }
            .into(),
        }))
        .await;
    let err = publishing.await.unwrap().unwrap_err();
    assert!(matches!(
        err,
        ClientError::Disconnected {
            reason: Some(ReasonCode::SERVER_SHUTTING_DOWN),
            ..
        }
    ));
    assert!(client.recv().await.is_none());
    let ended = client.closed().await.unwrap_err();
    assert_eq!(
        ended.to_string(),
        "disconnected by the broker: Server shutting down (0x8B) (maintenance)"
    );
    // Requests after the end fail at once.
    assert!(client
        .publish("t", "late", QoS::AtMostOnce, false, Properties::default())
        .await
        .is_err());
}

#[tokio::test]
async fn refused_connack_is_an_error() {
    let (client_end, broker_end) = tokio::io::duplex(4096);
    let mut broker = ScriptedBroker::new(broker_end);
    let mut opts = pipe_options();
    opts.version = crate::codec::ProtocolVersion::V311;
    let (result, ()) = tokio::join!(
        Client::connect_with_stream(Box::new(client_end), opts),
        async {
            assert!(matches!(broker.recv().await, Packet::Connect(_)));
            broker
                .send(Packet::ConnAck(Box::new(ConnAck {
                    session_present: false,
                    reason_code: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                    properties: Properties::default(),
                })))
                .await;
        }
    );
    let err = result.err().expect("refused");
    assert!(err.is_auth_failure());
    assert_eq!(
        err.to_string(),
        "connection refused: bad user name or password (0x86)"
    );
}

#[tokio::test]
async fn connect_times_out_without_connack() {
    let (client_end, broker_end) = tokio::io::duplex(4096);
    let mut opts = pipe_options();
    opts.connect_timeout = Duration::from_millis(100);
    let result = Client::connect_with_stream(Box::new(client_end), opts).await;
    assert!(matches!(result, Err(ClientError::Timeout(_))));
    drop(broker_end);
}

#[tokio::test]
async fn broker_closing_before_connack_is_reported() {
    let (client_end, broker_end) = tokio::io::duplex(4096);
    drop(broker_end);
    let result = Client::connect_with_stream(Box::new(client_end), pipe_options()).await;
    assert!(matches!(
        result,
        Err(ClientError::Io(_) | ClientError::ConnectionClosed(_))
    ));
}

#[tokio::test]
async fn malformed_bytes_from_the_broker_end_the_connection_with_a_reason() {
    let (client, mut broker) = connect_pipe(pipe_options()).await;
    let (mut client, _) = client.unwrap();
    // Packet type 0 is reserved.
    broker.stream.write_all(&[0x00, 0x00]).await.unwrap();
    assert_eq!(
        broker.recv().await,
        Packet::Disconnect(Disconnect::new(ReasonCode::PROTOCOL_ERROR))
    );
    assert!(matches!(client.closed().await, Err(ClientError::Codec(_))));
}

/// A QoS 1 PUBLISH for the scripted broker to send.
fn qos1(topic: &str, packet_id: u16, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: topic.into(),
        packet_id,
        properties: Default::default(),
        payload: Bytes::from_static(payload),
    })
}

#[tokio::test]
async fn reconnect_resends_unacknowledged_qos1_with_dup() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut opts = ConnectOptions::new("127.0.0.1", port);
    opts.client_id = "reconnecting".into();
    opts.clean_start = false;
    opts.properties.session_expiry_interval = Some(300);
    opts.reconnect = Some(ReconnectPolicy {
        delay: Duration::from_millis(10),
        max_attempts: 5,
    });
    let broker = tokio::spawn(async move {
        // First connection: take the PUBLISH, then drop the connection unanswered.
        let (tcp, _) = listener.accept().await.unwrap();
        let mut first = ScriptedBroker::over(Box::new(tcp));
        first.accept(Properties::default()).await;
        let Packet::Publish(p) = first.recv().await else {
            panic!("expected PUBLISH")
        };
        assert!(!p.dup);
        drop(first);
        // Second connection: the session is resumed and the PUBLISH comes again.
        let (tcp, _) = listener.accept().await.unwrap();
        let mut second = ScriptedBroker::over(Box::new(tcp));
        let Packet::Connect(c) = second.recv().await else {
            panic!("expected CONNECT")
        };
        assert!(!c.clean_start);
        assert_eq!(c.client_id, "reconnecting");
        second
            .send(Packet::ConnAck(Box::new(ConnAck {
                session_present: true,
                reason_code: ReasonCode::SUCCESS,
                properties: Properties::default(),
            })))
            .await;
        let Packet::Publish(again) = second.recv().await else {
            panic!("expected the PUBLISH again")
        };
        assert!(again.dup);
        assert_eq!(
            (again.packet_id, &again.payload[..]),
            (p.packet_id, &b"survives"[..])
        );
        second
            .send(Packet::PubAck(PubResponse::success(p.packet_id)))
            .await;
        second.send(qos1("after", 5, b"hello again")).await;
        assert_eq!(second.recv().await, Packet::PubAck(PubResponse::success(5)));
        second
    });
    let (mut client, _) = Client::connect(opts).await.unwrap();
    let outcome = client
        .publish(
            "t",
            "survives",
            QoS::AtLeastOnce,
            false,
            Properties::default(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.reason_code, ReasonCode::SUCCESS);
    let m = client.recv().await.unwrap();
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("after", &b"hello again"[..])
    );
    let _second = broker.await.unwrap();
}

#[tokio::test]
async fn reconnect_gives_up_after_its_attempts() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut opts = ConnectOptions::new("127.0.0.1", port);
    opts.reconnect = Some(ReconnectPolicy {
        delay: Duration::from_millis(10),
        max_attempts: 2,
    });
    let broker = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut only = ScriptedBroker::over(Box::new(tcp));
        only.accept(Properties::default()).await;
        // Connection and listener close: every reconnect attempt is refused.
    });
    let (mut client, _) = Client::connect(opts).await.unwrap();
    broker.await.unwrap();
    let ended = client.closed().await.unwrap_err();
    assert!(matches!(ended, ClientError::Io(_)), "{ended:?}");
}

#[tokio::test]
async fn a_slow_reader_gets_every_message_in_order_then_the_end() {
    let (client, broker) = connect_pipe(pipe_options()).await;
    let (mut client, _) = client.unwrap();
    const COUNT: u32 = 3000; // more than the channel and the backlog hold together
    let mut broker = broker;
    let sender = tokio::spawn(async move {
        for i in 0..COUNT {
            let p = Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "many".into(),
                packet_id: 0,
                properties: Default::default(),
                payload: Bytes::from(i.to_string()),
            });
            broker.send(p).await;
        }
        broker
            .send(Packet::Disconnect(Disconnect::new(
                ReasonCode::SERVER_SHUTTING_DOWN,
            )))
            .await;
        broker
    });
    // Read nothing until the broker has written everything: the driver must
    // hold back (not lose) what does not fit.
    let _broker = sender.await.unwrap();
    for i in 0..COUNT {
        let m = client.recv().await.expect("message");
        assert_eq!(&m.payload[..], i.to_string().as_bytes());
    }
    assert!(client.recv().await.is_none());
    assert!(matches!(
        client.closed().await,
        Err(ClientError::Disconnected {
            reason: Some(ReasonCode::SERVER_SHUTTING_DOWN),
            ..
        })
    ));
}
