//! The tokio task behind a [`super::Client`]: reads bytes into the decoder,
//! feeds packets, requests and timer ticks to the [`ClientSession`], writes
//! what it produces, and routes its events to the waiting callers. No MQTT
//! logic lives here.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::options::{ReconnectPolicy, Transport};
use super::session::{ClientSession, Event, Message, PublishOutcome, PublishRequest, RequestId};
use super::{ClientError, Established};
use crate::codec::{encode, Decoder, Properties, ReasonCode, SubAck, SubscribeFilter, UnsubAck};
use crate::transport::BoxStream;

/// Received messages held for an application that is not calling `recv`;
/// beyond this the driver stops reading the socket (TCP backpressure on the
/// broker) but keeps writing, so keep-alive and acknowledgements go on.
const MESSAGE_BACKLOG: usize = 1024;

/// How long the final DISCONNECT may take to leave before the socket is dropped.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request from a [`super::Client`] handle.
pub(super) enum Command {
    Publish(
        PublishRequest,
        oneshot::Sender<Result<PublishOutcome, ClientError>>,
    ),
    Subscribe(
        Vec<SubscribeFilter>,
        Properties,
        oneshot::Sender<Result<SubAck, ClientError>>,
    ),
    Unsubscribe(
        Vec<String>,
        Properties,
        oneshot::Sender<Result<UnsubAck, ClientError>>,
    ),
    Disconnect(ReasonCode, Properties),
    UpdateKeys(oneshot::Sender<Result<(), ClientError>>),
}

/// A caller waiting for a request to complete.
enum Waiter {
    Publish(oneshot::Sender<Result<PublishOutcome, ClientError>>),
    Subscribe(oneshot::Sender<Result<SubAck, ClientError>>),
    Unsubscribe(oneshot::Sender<Result<UnsubAck, ClientError>>),
}

impl Waiter {
    fn fail(self, error: ClientError) {
        // A caller that stopped waiting is not an error.
        let _ = match self {
            Waiter::Publish(tx) => tx.send(Err(error)).map_err(drop),
            Waiter::Subscribe(tx) => tx.send(Err(error)).map_err(drop),
            Waiter::Unsubscribe(tx) => tx.send(Err(error)).map_err(drop),
        };
    }
}

/// The connection task's state.
pub(super) struct Driver {
    pub session: ClientSession,
    pub reader: ReadHalf<BoxStream>,
    pub writer: WriteHalf<BoxStream>,
    pub decoder: Decoder,
    /// Bytes read but not yet decoded (may already hold packets after CONNACK).
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub messages: mpsc::Sender<Message>,
    /// Messages decoded but not yet taken by the channel (bounded by [`MESSAGE_BACKLOG`]).
    backlog: VecDeque<Message>,
    waiters: HashMap<RequestId, Waiter>,
    /// Where to reconnect to, when a reconnect policy is set.
    transport: Option<Transport>,
}

impl Driver {
    /// A driver for an established connection (CONNACK accepted).
    pub fn new(
        session: ClientSession,
        connection: Established,
        commands: mpsc::UnboundedReceiver<Command>,
        messages: mpsc::Sender<Message>,
        transport: Option<Transport>,
    ) -> Self {
        let (reader, writer) = tokio::io::split(connection.stream);
        Driver {
            session,
            reader,
            writer,
            decoder: connection.decoder,
            rbuf: connection.rbuf,
            wbuf: BytesMut::with_capacity(8 * 1024),
            commands,
            messages,
            backlog: VecDeque::new(),
            waiters: HashMap::new(),
            transport,
        }
    }

    /// Runs until the connection ends for good; `Ok` after our own DISCONNECT.
    pub async fn run(mut self) -> Result<(), ClientError> {
        loop {
            let result = self.serve().await;
            self.close_connection().await;
            // Ours (Ok: we sent DISCONNECT 0x00) or the broker's (its 0x83).
            if self.session.take_reconnect_for_keys() {
                // LWA1 out of records (LWA.md section 8): a new connection, new keys.
                match self.reconnect_for_keys().await {
                    Ok(()) => continue,
                    Err(e) => {
                        let result = Err(e);
                        self.fail_waiters(&result);
                        self.hand_over_backlog();
                        return result;
                    }
                }
            }
            let result = match result {
                Err(lost) if self.may_reconnect(&lost) => {
                    tracing::info!("connection lost ({lost}); reconnecting");
                    match self.reconnect().await {
                        Ok(()) => continue,
                        Err(e) => Err(e),
                    }
                }
                other => other,
            };
            self.fail_waiters(&result);
            self.hand_over_backlog();
            return result;
        }
    }

    /// Messages received before the end still reach `recv` (then `None`),
    /// without keeping the connection task alive for a reader that may never come.
    fn hand_over_backlog(&mut self) {
        let backlog = std::mem::take(&mut self.backlog);
        if backlog.is_empty() {
            return;
        }
        let messages = self.messages.clone();
        tokio::spawn(async move {
            for message in backlog {
                if messages.send(message).await.is_err() {
                    break;
                }
            }
        });
    }

    /// Reconnecting helps after a network failure or a broker restart, not
    /// after a refusal, a protocol error or a takeover.
    fn may_reconnect(&self, error: &ClientError) -> bool {
        let policy = self.transport.as_ref().and_then(|t| t.reconnect);
        policy.is_some_and(|p| p.max_attempts > 0)
            && match error {
                ClientError::Io(_) | ClientError::ConnectionClosed(_) | ClientError::Timeout(_) => {
                    true
                }
                ClientError::Disconnected { reason, .. } => matches!(
                    reason,
                    None | Some(ReasonCode::SERVER_SHUTTING_DOWN | ReasonCode::SERVER_BUSY)
                ),
                _ => false,
            }
    }

    /// Reconnects after an LWA1 connection used up its records: whatever the
    /// reconnect policy (the protocol asks for it, LWA.md section 8), with
    /// the policy's attempts and delay where one is set, else three attempts
    /// without delay.
    async fn reconnect_for_keys(&mut self) -> Result<(), ClientError> {
        let Some(transport) = self.transport.as_ref() else {
            return Err(ClientError::ConnectionClosed(
                "LWA1 records of this connection used up, and this client has no broker address \
                 to reconnect to for fresh keys"
                    .into(),
            ));
        };
        let policy = transport.reconnect.unwrap_or(ReconnectPolicy {
            delay: Duration::ZERO,
            max_attempts: 3,
        });
        self.reconnect_with(policy).await
    }

    /// Opens a new connection for the same session; the session retransmits
    /// what is unacknowledged once CONNACK confirms it.
    async fn reconnect(&mut self) -> Result<(), ClientError> {
        let Some(policy) = self.transport.as_ref().and_then(|t| t.reconnect) else {
            return Err(ClientError::ConnectionClosed(
                "reconnecting is not enabled".into(),
            ));
        };
        self.reconnect_with(policy).await
    }

    /// Up to `policy.max_attempts` connection attempts, `policy.delay` apart.
    async fn reconnect_with(&mut self, policy: ReconnectPolicy) -> Result<(), ClientError> {
        let Some(transport) = self.transport.clone() else {
            return Err(ClientError::ConnectionClosed(
                "no broker address to reconnect to".into(),
            ));
        };
        let mut last = ClientError::ConnectionClosed("no reconnect attempt was made".into());
        for attempt in 1..=policy.max_attempts {
            tokio::time::sleep(policy.delay).await;
            let opened =
                tokio::time::timeout(transport.connect_timeout, super::open_stream(&transport))
                    .await;
            let stream = match opened {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    last = e;
                    continue;
                }
                Err(_) => {
                    last = ClientError::Timeout("connecting to the broker");
                    continue;
                }
            };
            match super::establish(stream, &mut self.session, transport.connect_timeout).await {
                Ok((connection, _connack)) => {
                    let (reader, writer) = tokio::io::split(connection.stream);
                    self.reader = reader;
                    self.writer = writer;
                    self.decoder = connection.decoder;
                    self.rbuf = connection.rbuf;
                    self.wbuf.clear();
                    tracing::info!(attempt, "reconnected");
                    return Ok(());
                }
                // Refused credentials will not get better by retrying.
                Err(e) if e.is_auth_failure() => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn serve(&mut self) -> Result<(), ClientError> {
        // Packets that arrived together with CONNACK.
        self.decode_buffered()?;
        let mut unflushed = false;
        loop {
            self.drain_session()?;
            if !self.session.is_connected() {
                // We sent DISCONNECT (or the session ended): leave after writing it.
                return Ok(());
            }
            let deadline = self.session.next_deadline().map(Instant::from_std);
            tokio::select! {
                permit = self.messages.clone().reserve_owned(), if !self.backlog.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(message) = self.backlog.pop_front() {
                            permit.send(message);
                        }
                    }
                    Err(_) => self.backlog.clear(),
                },
                read = self.reader.read_buf(&mut self.rbuf), if self.backlog.len() < MESSAGE_BACKLOG => {
                    if read? == 0 {
                        return Err(ClientError::ConnectionClosed(
                            "the broker closed the connection".into(),
                        ));
                    }
                    self.decode_buffered()?;
                }
                // Writing and flushing are select branches (not awaited in a
                // branch body) so that a broker slow to read never stops us from
                // reading what it sends.
                written = write_or_flush(&mut self.writer, &mut self.wbuf),
                    if unflushed || !self.wbuf.is_empty() => {
                    unflushed = written?;
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    // Every handle is gone: say goodbye properly.
                    None => self.session.disconnect(
                        ReasonCode::NORMAL_DISCONNECTION,
                        Properties::default(),
                        std::time::Instant::now(),
                    ),
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    self.session.handle_timeout(std::time::Instant::now())?;
                }
            }
        }
    }

    /// Feeds every complete packet in `rbuf` to the session.
    fn decode_buffered(&mut self) -> Result<(), ClientError> {
        loop {
            let packet = match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(packet)) => packet,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.session
                        .decode_failed(e.reason_code(), std::time::Instant::now());
                    return Err(e.into());
                }
            };
            tracing::debug!("received {}", packet.name());
            self.session
                .handle_packet(packet, std::time::Instant::now())?;
            self.drain_session()?;
            if !self.session.is_connected() {
                // The session ended the connection (an LWA1 connection out of
                // records): what else arrived belongs to it, not to the next.
                return Ok(());
            }
        }
    }

    /// Encodes what the session wants sent and routes its events.
    fn drain_session(&mut self) -> Result<(), ClientError> {
        let version = self.session.version();
        while let Some(packet) = self.session.poll_transmit() {
            tracing::debug!("sending {}", packet.name());
            encode(&packet, version, &mut self.wbuf)?;
        }
        while let Some(event) = self.session.poll_event() {
            self.event(event);
        }
        Ok(())
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Message(message) => {
                // Nobody listening for messages is fine (a publisher).
                if !self.messages.is_closed() {
                    self.backlog.push_back(message);
                }
            }
            Event::Published { id, outcome } => {
                if let Some(Waiter::Publish(tx)) = self.waiters.remove(&id) {
                    let _ = tx.send(Ok(outcome));
                }
            }
            Event::Subscribed { id, suback } => {
                if let Some(Waiter::Subscribe(tx)) = self.waiters.remove(&id) {
                    let _ = tx.send(Ok(suback));
                }
            }
            Event::Unsubscribed { id, unsuback } => {
                if let Some(Waiter::Unsubscribe(tx)) = self.waiters.remove(&id) {
                    let _ = tx.send(Ok(unsuback));
                }
            }
            Event::Failed { id, error } => {
                if let Some(waiter) = self.waiters.remove(&id) {
                    waiter.fail(error.into());
                }
            }
        }
    }

    fn command(&mut self, command: Command) {
        let now = std::time::Instant::now();
        match command {
            Command::Publish(request, tx) => match self.session.publish(request, now) {
                Ok(id) => {
                    self.waiters.insert(id, Waiter::Publish(tx));
                }
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                }
            },
            Command::Subscribe(filters, properties, tx) => {
                match self.session.subscribe(filters, properties, now) {
                    Ok(id) => {
                        self.waiters.insert(id, Waiter::Subscribe(tx));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                    }
                }
            }
            Command::Unsubscribe(filters, properties, tx) => {
                match self.session.unsubscribe(filters, properties, now) {
                    Ok(id) => {
                        self.waiters.insert(id, Waiter::Unsubscribe(tx));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                    }
                }
            }
            Command::Disconnect(reason, properties) => {
                self.session.disconnect(reason, properties, now)
            }
            Command::UpdateKeys(tx) => {
                let _ = tx.send(self.session.update_keys(now).map_err(ClientError::from));
            }
        }
    }

    /// Writes what is left (our DISCONNECT, acknowledgements) and closes the socket.
    async fn close_connection(&mut self) {
        self.session.connection_lost();
        // Encoding cannot fail for the packets left here (DISCONNECT, acks);
        // if it did, there is nothing more to tell the broker.
        let _ = self.drain_session();
        let wbuf = std::mem::take(&mut self.wbuf);
        let writer = &mut self.writer;
        let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, async move {
            writer.write_all(&wbuf).await?;
            writer.flush().await?;
            writer.shutdown().await
        })
        .await;
    }

    /// Fails every request still waiting, with why the connection ended.
    fn fail_waiters(&mut self, result: &Result<(), ClientError>) {
        let closed = match result {
            Ok(()) => ClientError::ConnectionClosed("the client disconnected".into()),
            Err(e) => e.for_waiters(),
        };
        for (_, waiter) in self.waiters.drain() {
            waiter.fail(closed.for_waiters());
        }
        // Requests that raced with the close.
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            let waiter = match command {
                Command::Publish(_, tx) => Waiter::Publish(tx),
                Command::Subscribe(_, _, tx) => Waiter::Subscribe(tx),
                Command::Unsubscribe(_, _, tx) => Waiter::Unsubscribe(tx),
                Command::Disconnect(..) => continue,
                Command::UpdateKeys(tx) => {
                    let _ = tx.send(Err(closed.for_waiters()));
                    continue;
                }
            };
            waiter.fail(closed.for_waiters());
        }
    }
}

/// Writes some of `wbuf`, or flushes once it is empty (TLS keeps records in
/// its own buffer until flushed). Returns whether a flush is still due.
async fn write_or_flush(
    writer: &mut WriteHalf<BoxStream>,
    wbuf: &mut BytesMut,
) -> std::io::Result<bool> {
    if wbuf.is_empty() {
        writer.flush().await?;
        Ok(false)
    } else {
        writer.write_buf(wbuf).await?;
        Ok(true)
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
