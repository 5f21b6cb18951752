//! The async MQTT client used by the CLI, tests and benchmarks.
//!
//! [`session::ClientSession`] holds all protocol logic as a sans-IO state
//! machine; a tokio task (`driver`) moves its bytes. [`Client`] is the
//! application's side:
//!
//! ```no_run
//! # async fn demo() -> Result<(), mqtt_lwa::client::ClientError> {
//! use mqtt_lwa::client::{Client, ConnectOptions};
//! use mqtt_lwa::codec::{Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions};
//!
//! let (mut client, _connack) = Client::connect(ConnectOptions::new("127.0.0.1", 1883)).await?;
//! let filter = SubscribeFilter { filter: "a/#".into(), options: SubscriptionOptions::qos(QoS::AtLeastOnce) };
//! client.subscribe(vec![filter], Properties::default()).await?;
//! let outcome = client
//!     .publish("a/b", "hello", QoS::ExactlyOnce, false, Properties::default())
//!     .await?; // resolves on PUBCOMP
//! let message = client.recv().await; // Some(Message) until the connection ends
//! client.disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default()).await?;
//! # Ok(()) }
//! ```
//!
//! Requests may be issued concurrently from other tasks through a
//! [`ClientHandle`] ([`Client::handle`]). QoS 1/2 publishes beyond the
//! broker's Receive Maximum wait for quota inside the session. Received
//! messages are buffered up to a bound; an application that does not call
//! `recv` makes the task stop reading the socket (the broker sees TCP
//! backpressure) while acknowledgements and pings still go out. With
//! [`ConnectOptions::reconnect`] the same session survives a lost
//! connection; otherwise the first loss ends the client and
//! [`Client::closed`] says why.

mod driver;
mod options;
pub mod session;

use std::io;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use options::{random_client_id, ConnectOptions, ReconnectPolicy};
pub use session::{Message, PublishOutcome, SessionError};

use crate::auth::ClientAuthError;
use crate::codec::{
    encode, CodecError, ConnAck, Decoder, Packet, Properties, QoS, ReasonCode, SubAck,
    SubscribeFilter, UnsubAck, MAX_REMAINING_LENGTH,
};
use crate::transport::tls::TlsError;
use crate::transport::BoxStream;
use driver::{Command, Driver};
use session::{ClientSession, PublishRequest};

/// Why a client operation failed or the connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket error (connect, read, write, TLS handshake).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// TLS configuration error (files, versions, server name).
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The connect timeout or the keep-alive expired.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// CONNACK refused the connection with this reason code (and the
    /// broker's Reason String, if it gave one).
    #[error("connection refused: {}{}", refusal_text(*.0), .1.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
    Refused(ReasonCode, Option<String>),
    /// Enhanced authentication (LWA) failed on our side.
    #[error("authentication failed: {0}")]
    Auth(ClientAuthError),
    /// The broker broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The broker sent DISCONNECT (5.0); `None` when it closed without one.
    #[error("disconnected by the broker{}{}",
        reason.map(|r| format!(": {r}")).unwrap_or_default(),
        reason_string.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    Disconnected {
        /// Its reason code.
        reason: Option<ReasonCode>,
        /// Its Reason String.
        reason_string: Option<String>,
    },
    /// The connection is gone (socket closed, or after our own DISCONNECT).
    #[error("connection closed: {0}")]
    ConnectionClosed(String),
    /// Bytes from the broker that are not MQTT, or a packet we cannot encode.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// The session refused the request (invalid topic, QoS above the broker's
    /// maximum, packet too large, payload protection).
    #[error("{0}")]
    Request(SessionError),
}

/// `Not authorized (0x87)`, the 3.1.1 return codes named as 5.0 reasons.
fn refusal_text(code: ReasonCode) -> String {
    format!("{} (0x{:02x})", code.name().to_lowercase(), code.0)
}

impl ClientError {
    /// True when the broker refused our credentials or authentication
    /// (CONNACK or DISCONNECT 0x86, 0x87, 0x8A, 0x8C, or our LWA check failed).
    pub fn is_auth_failure(&self) -> bool {
        let auth_code = |r: ReasonCode| {
            matches!(
                r,
                ReasonCode::BAD_USER_NAME_OR_PASSWORD
                    | ReasonCode::NOT_AUTHORIZED
                    | ReasonCode::BANNED
                    | ReasonCode::BAD_AUTHENTICATION_METHOD
            )
        };
        match self {
            ClientError::Refused(..) | ClientError::Auth(_) => true,
            ClientError::Disconnected {
                reason: Some(r), ..
            } => auth_code(*r),
            _ => false,
        }
    }

    /// A copy for every request that was waiting when the connection ended.
    fn for_waiters(&self) -> ClientError {
        match self {
            ClientError::Io(e) => ClientError::Io(io::Error::new(e.kind(), e.to_string())),
            ClientError::Tls(e) => ClientError::ConnectionClosed(e.to_string()),
            ClientError::Timeout(t) => ClientError::Timeout(t),
            ClientError::Refused(r, s) => ClientError::Refused(*r, s.clone()),
            ClientError::Auth(e) => ClientError::Auth(e.clone()),
            ClientError::Protocol(p) => ClientError::Protocol(p.clone()),
            ClientError::Disconnected {
                reason,
                reason_string,
            } => ClientError::Disconnected {
                reason: *reason,
                reason_string: reason_string.clone(),
            },
            ClientError::ConnectionClosed(s) => ClientError::ConnectionClosed(s.clone()),
            ClientError::Codec(e) => ClientError::Codec(e.clone()),
            ClientError::Request(e) => ClientError::Request(e.clone()),
        }
    }
}

impl From<SessionError> for ClientError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refused(r, s) => ClientError::Refused(r, s),
            SessionError::Auth(e) => ClientError::Auth(e),
            SessionError::Protocol { reason, detail } => {
                ClientError::Protocol(format!("{detail} ({reason})"))
            }
            SessionError::Disconnected {
                reason,
                reason_string,
            } => ClientError::Disconnected {
                reason: Some(reason),
                reason_string,
            },
            SessionError::NotConnected | SessionError::ConnectionLost => {
                ClientError::ConnectionClosed(e.to_string())
            }
            SessionError::KeepAliveTimeout => {
                ClientError::Timeout("keep-alive: the broker did not answer PINGREQ")
            }
            other => ClientError::Request(other),
        }
    }
}

/// A connected MQTT client (see the module documentation).
pub struct Client {
    handle: ClientHandle,
    messages: mpsc::Receiver<Message>,
    task: Option<JoinHandle<Result<(), ClientError>>>,
}

/// A cloneable way to issue requests on a [`Client`]'s connection from other tasks.
#[derive(Clone)]
pub struct ClientHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl Client {
    /// Opens TCP (and TLS when `opts.tls` is set), sends CONNECT and waits for
    /// CONNACK, all within `opts.connect_timeout`.
    pub async fn connect(opts: ConnectOptions) -> Result<(Client, ConnAck), ClientError> {
        let timeout = opts.connect_timeout;
        let started = tokio::time::Instant::now();
        let (session_config, transport) = opts.into_session_config();
        let stream = tokio::time::timeout(timeout, open_stream(&transport))
            .await
            .map_err(|_| ClientError::Timeout("connecting to the broker"))??;
        let left = timeout.saturating_sub(started.elapsed());
        // The driver keeps the transport: it reconnects after a lost connection
        // when `reconnect` is set, and always when an LWA1 connection has used
        // up its records (LWA.md section 8).
        Self::start(stream, session_config, left, Some(transport)).await
    }

    /// Speaks MQTT over an already open stream (in-memory pipes, pre-made
    /// TLS streams); `opts.host`, `port`, `tls` and `reconnect` are not used.
    pub async fn connect_with_stream(
        stream: BoxStream,
        opts: ConnectOptions,
    ) -> Result<(Client, ConnAck), ClientError> {
        let timeout = opts.connect_timeout;
        let (session_config, _) = opts.into_session_config();
        Self::start(stream, session_config, timeout, None).await
    }

    async fn start(
        stream: BoxStream,
        config: session::SessionConfig,
        timeout: std::time::Duration,
        transport: Option<options::Transport>,
    ) -> Result<(Client, ConnAck), ClientError> {
        let mut session = ClientSession::new(config, Instant::now());
        let (connection, connack) = establish(stream, &mut session, timeout).await?;
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (messages_tx, messages_rx) = mpsc::channel(256);
        let driver = Driver::new(session, connection, commands_rx, messages_tx, transport);
        let task = tokio::spawn(driver.run());
        Ok((
            Client {
                handle: ClientHandle {
                    commands: commands_tx,
                },
                messages: messages_rx,
                task: Some(task),
            },
            connack,
        ))
    }

    /// A cloneable handle for requests from other tasks.
    pub fn handle(&self) -> ClientHandle {
        self.handle.clone()
    }

    /// Publishes; resolves when the QoS flow completes (QoS 0: once queued).
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Result<PublishOutcome, ClientError> {
        self.handle
            .publish(topic, payload, qos, retain, properties)
            .await
    }

    /// Subscribes; resolves with the SUBACK.
    pub async fn subscribe(
        &self,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
    ) -> Result<SubAck, ClientError> {
        self.handle.subscribe(filters, properties).await
    }

    /// Unsubscribes; resolves with the UNSUBACK.
    pub async fn unsubscribe(
        &self,
        filters: Vec<String>,
        properties: Properties,
    ) -> Result<UnsubAck, ClientError> {
        self.handle.unsubscribe(filters, properties).await
    }

    /// Updates the LWA2 record keys on the live connection (LWA2.md section
    /// 8.2); resolves once the AUTH 0x19 is queued (the broker's answer moves
    /// the other direction). The client also does this by itself when half
    /// of a direction's records are used. Other modes: `InvalidRequest`.
    pub async fn update_keys(&self) -> Result<(), ClientError> {
        self.handle.update_keys().await
    }

    /// The next application message; `None` once the connection has ended.
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    /// Sends DISCONNECT and waits for the connection to close.
    pub async fn disconnect(
        mut self,
        reason: ReasonCode,
        properties: Properties,
    ) -> Result<(), ClientError> {
        // If the task already ended, `closed` reports why.
        let _ = self
            .handle
            .commands
            .send(Command::Disconnect(reason, properties));
        self.closed().await
    }

    /// Drops the connection without DISCONNECT, as a crash would (the broker
    /// publishes the will). Dropping a `Client` instead disconnects politely
    /// once every [`ClientHandle`] is gone too.
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Waits until the connection ends; `Ok` after our own DISCONNECT, else why it ended.
    pub async fn closed(&mut self) -> Result<(), ClientError> {
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| ClientError::ConnectionClosed(format!("client task failed: {e}")))?,
            None => Err(ClientError::ConnectionClosed(
                "the connection already ended".into(),
            )),
        }
    }
}

impl ClientHandle {
    fn send(&self, command: Command) -> Result<(), ClientError> {
        self.commands
            .send(command)
            .map_err(|_| ClientError::ConnectionClosed("the connection has ended".into()))
    }

    /// See [`Client::publish`].
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Result<PublishOutcome, ClientError> {
        let request = PublishRequest {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            properties,
        };
        let (tx, rx) = oneshot::channel();
        self.send(Command::Publish(request, tx))?;
        answer(rx).await
    }

    /// See [`Client::update_keys`].
    pub async fn update_keys(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::UpdateKeys(tx))?;
        answer(rx).await
    }

    /// See [`Client::subscribe`].
    pub async fn subscribe(
        &self,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
    ) -> Result<SubAck, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Subscribe(filters, properties, tx))?;
        answer(rx).await
    }

    /// See [`Client::unsubscribe`].
    pub async fn unsubscribe(
        &self,
        filters: Vec<String>,
        properties: Properties,
    ) -> Result<UnsubAck, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Unsubscribe(filters, properties, tx))?;
        answer(rx).await
    }
}

async fn answer<T>(rx: oneshot::Receiver<Result<T, ClientError>>) -> Result<T, ClientError> {
    rx.await
        .map_err(|_| ClientError::ConnectionClosed("the connection has ended".into()))?
}

/// TCP connect, then the TLS handshake when configured (see [`crate::transport::connect`]).
async fn open_stream(transport: &options::Transport) -> Result<BoxStream, ClientError> {
    let tls = match &transport.tls {
        None => None,
        Some(tls) => Some((
            crate::transport::tls::client::client_config(tls)?,
            crate::transport::tls::client::server_name(&transport.host)?,
        )),
    };
    Ok(crate::transport::connect(&transport.host, transport.port, tls).await?)
}

/// A stream on which CONNACK was accepted, with the decoder state and any
/// bytes that arrived after CONNACK.
struct Established {
    stream: BoxStream,
    decoder: Decoder,
    rbuf: BytesMut,
}

/// Runs the CONNECT/CONNACK exchange on `stream` within `timeout`.
async fn establish(
    mut stream: BoxStream,
    session: &mut ClientSession,
    timeout: std::time::Duration,
) -> Result<(Established, ConnAck), ClientError> {
    let max = session
        .inbound_maximum_packet_size()
        .unwrap_or(MAX_REMAINING_LENGTH + 5);
    let mut decoder = Decoder::with_version(max, session.version());
    let mut rbuf = BytesMut::with_capacity(8 * 1024);
    let connack = tokio::time::timeout(
        timeout,
        handshake(&mut stream, session, &mut decoder, &mut rbuf),
    )
    .await
    .map_err(|_| ClientError::Timeout("waiting for CONNACK"))??;
    Ok((
        Established {
            stream,
            decoder,
            rbuf,
        },
        connack,
    ))
}

/// Sends CONNECT and reads until the session accepts (or refuses) CONNACK.
async fn handshake(
    stream: &mut BoxStream,
    session: &mut ClientSession,
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
) -> Result<ConnAck, ClientError> {
    let version = session.version();
    let connect = session.connect_packet(Instant::now())?;
    tracing::debug!("sending CONNECT");
    let mut wbuf = BytesMut::new();
    encode(&connect, version, &mut wbuf)?;
    stream.write_all(&wbuf).await?;
    stream.flush().await?;
    loop {
        while let Some(packet) = decoder.decode(rbuf)? {
            tracing::debug!("received {}", packet.name());
            let connack = match &packet {
                Packet::ConnAck(c) => Some(c.clone()),
                _ => None,
            };
            if let Err(e) = session.handle_packet(packet, Instant::now()) {
                // Tell the broker why we give up (DISCONNECT after an auth failure).
                let mut out = BytesMut::new();
                while let Some(p) = session.poll_transmit() {
                    encode(&p, version, &mut out)?;
                }
                let _ = stream.write_all(&out).await;
                let _ = stream.flush().await;
                return Err(e.into());
            }
            // Anything queued after CONNACK (LWA's AUTH) is sent by the driver, in order.
            if let Some(connack) = connack {
                return Ok(*connack);
            }
        }
        if stream.read_buf(rbuf).await? == 0 {
            return Err(ClientError::ConnectionClosed(
                "the broker closed the connection before CONNACK".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests;
