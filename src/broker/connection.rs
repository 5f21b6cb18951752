//! One client connection as a sans-IO state machine: bytes and core outputs
//! in, bytes and core inputs out.
//!
//! It owns everything that is per connection and below the broker core: the
//! streaming decoder, the CONNECT timeout, the keep-alive deadline, the
//! authentication exchange (including LWA's extra AUTH flight), topic aliases
//! in both directions, payload protection and encoding. The tokio glue in
//! [`super::server`] only moves bytes and [`Action`]s; time is passed in, so
//! every rule here is unit-tested without sockets.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::auth::{metadata, AccessPolicy, PayloadProtection, PendingAuth};
use crate::broker::limits::Limits;
use crate::codec::{
    self, Auth, CodecError, ConnAck, Connect, Decoder, Disconnect, Packet, Properties,
    ProtocolVersion, Publish, QoS, ReasonCode,
};

use super::core::{ConnId, ConnectRequest};
use super::stats::{DropReason, Stats};
use crate::codec::alias::{InboundAliases, OutboundAliases};

/// Output buffer capacity kept between writes; a burst's larger buffer is
/// let go once written, so a connection that went quiet does not hold it.
pub const OUT_KEEP: usize = 4096;

/// What a connection needs to know about where it came in.
#[derive(Clone)]
pub struct ConnectionSettings {
    /// Server-wide connection id.
    pub conn: ConnId,
    /// Listener name, for the core and logs.
    pub listener: String,
    /// The listener's access policy, handed to the core with the CONNECT.
    pub policy: Arc<dyn AccessPolicy>,
    /// Broker limits (maximum packet size, CONNECT timeout, advertised capabilities).
    pub limits: Limits,
    /// True when the broker is at its connection limit: the CONNECT is refused.
    pub over_quota: bool,
    /// Shared counters (drops, authentication and record failures).
    pub stats: Arc<Stats>,
}

/// Work the connection asks its driver to do, in order.
// Packets travel by value like the core's `Output`; boxing would cost an
// allocation per message.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Run the listener's authenticator on this CONNECT, then call
    /// [`Connection::auth_decided`]. Nothing is decoded until then.
    Authenticate(Box<Connect>),
    /// The client is authenticated: hand this CONNECT to the core.
    CoreConnect(Box<ConnectRequest>),
    /// A packet from the connected client for the core (aliases resolved,
    /// payload opened).
    CorePacket(Packet),
}

/// Where the connection is in its life.
enum Phase {
    /// Waiting for CONNECT.
    AwaitConnect,
    /// CONNECT received, authenticator running.
    Authenticating(Box<Connect>),
    /// CONNACK sent with the broker's authentication data; waiting for the
    /// client's AUTH. No MQTT side effect has happened for this client.
    AwaitAuth {
        connect: Box<Connect>,
        method: String,
        continuation: Box<dyn PendingAuth>,
        /// The Session Present flag the CONNACK carried (bound into LWA1's transcript).
        session_present: bool,
    },
    /// The core knows the client.
    Connected,
    /// Nothing more is read or written (except pending output).
    Closed,
}

/// PUBLISH packets a connection holds unsealed while its b2c keys are used up
/// and the client's key update is awaited; one more ends the connection (0x83).
pub const MAX_HELD_FOR_KEY_UPDATE: usize = 1024;

/// A connection's payload protection (LWA) and the PUBLISH packets it holds
/// unsealed while its b2c keys are used up and the client's key update is
/// awaited (LWA2.md 8.2). One thin box: an unprotected connection carries 8
/// bytes for both, where the trait object alone took 16 (issue 17).
pub(super) struct Protected {
    pub(super) protection: Box<dyn PayloadProtection>,
    held: VecDeque<Publish>,
    /// QoS 1/2 PUBLISH packets sealed on this connection whose PUBACK or
    /// PUBREC has not come back: an LWA1 connection out of b2c records
    /// waits for them before it ends with 0x83 (LWA.md section 8), or they
    /// would be resent on the next connection and use its records up again.
    unacked: u32,
}

impl Protected {
    /// Wraps `protection`, holding nothing.
    pub(super) fn new(protection: Box<dyn PayloadProtection>) -> Box<Self> {
        Box::new(Protected {
            protection,
            held: VecDeque::new(),
            unacked: 0,
        })
    }
}

/// Per-connection protocol state (see the module docs).
pub struct Connection {
    settings: ConnectionEnv,
    phase: Phase,
    decoder: Decoder,
    inbuf: BytesMut,
    out: BytesMut,
    version: Option<ProtocolVersion>,
    connect_deadline: Instant,
    keep_alive: Option<Duration>,
    last_packet: Instant,
    inbound: InboundAliases,
    outbound: OutboundAliases,
    protection: Option<Box<Protected>>,
    client_max_packet: Option<usize>,
    connack_sent: bool,
    core_connected: bool,
    /// Boxed: set only on the way out, so an idle connection holds a pointer.
    client_disconnect: Option<Box<Disconnect>>,
    close_cause: Option<String>,
}

/// What a [`Connection`] keeps of its [`ConnectionSettings`]: the limits
/// are read once, in [`Connection::new`], and a copy of them would be part
/// of every idle connection (issue 17).
struct ConnectionEnv {
    conn: ConnId,
    listener: String,
    policy: Arc<dyn AccessPolicy>,
    over_quota: bool,
    stats: Arc<Stats>,
}

impl From<ConnectionSettings> for ConnectionEnv {
    fn from(settings: ConnectionSettings) -> Self {
        let ConnectionSettings {
            conn,
            listener,
            policy,
            limits: _,
            over_quota,
            stats,
        } = settings;
        ConnectionEnv {
            conn,
            listener,
            policy,
            over_quota,
            stats,
        }
    }
}

impl Connection {
    /// A freshly accepted connection at `now`.
    pub fn new(settings: ConnectionSettings, now: Instant) -> Self {
        let max_packet = settings.limits.max_packet_size as usize;
        let connect_deadline = now + Duration::from_secs(settings.limits.connect_timeout_secs);
        Connection {
            decoder: Decoder::new(max_packet),
            inbound: InboundAliases::new(settings.limits.topic_alias_maximum),
            settings: ConnectionEnv::from(settings),
            phase: Phase::AwaitConnect,
            inbuf: BytesMut::new(),
            out: BytesMut::new(),
            version: None,
            connect_deadline,
            keep_alive: None,
            last_packet: now,
            outbound: OutboundAliases::new(0),
            protection: None,
            client_max_packet: None,
            connack_sent: false,
            core_connected: false,
            client_disconnect: None,
            close_cause: None,
        }
    }

    /// The connection id.
    pub fn id(&self) -> ConnId {
        self.settings.conn
    }

    /// True once the connection must be closed (after writing pending output).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// True when the core was told about this client (so it must be told it left).
    pub fn core_connected(&self) -> bool {
        self.core_connected
    }

    /// The client's DISCONNECT, if it sent one.
    pub fn take_client_disconnect(&mut self) -> Option<Disconnect> {
        self.client_disconnect.take().map(|d| *d)
    }

    /// Why the connection closed, for logs.
    pub fn close_cause(&self) -> Option<&str> {
        self.close_cause.as_deref()
    }

    /// Bytes to write to the socket, if any, taken (for the close).
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out).freeze())
        }
    }

    /// Bytes to write to the socket (empty when none); once written, call
    /// [`Self::output_written`].
    ///
    /// Written from here rather than split off as `Bytes`: a split turns the
    /// buffer into `bytes`' shared kind, a 40-byte header every idle
    /// connection kept (measured with massif, experiments/README.md), while
    /// writing in place and clearing keeps one plain buffer and no reference
    /// counting on the hot path.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The bytes [`Self::output`] gave were written: the buffer is kept for
    /// the next packets, unless a burst grew it past [`OUT_KEEP`].
    pub fn output_written(&mut self) {
        if self.out.capacity() > OUT_KEEP {
            self.out = BytesMut::new();
        } else {
            self.out.clear();
        }
    }

    /// Bytes this connection holds in its input and output buffers'
    /// capacity (0 when idle).
    #[cfg(test)]
    pub(crate) fn buffered_capacity(&self) -> usize {
        self.inbuf.capacity() + self.out.capacity()
    }

    /// The next instant [`Self::poll_timeout`] must be called at.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitConnect | Phase::Authenticating(_) | Phase::AwaitAuth { .. } => {
                Some(self.connect_deadline)
            }
            Phase::Connected => self.keep_alive.map(|ka| self.last_packet + ka * 3 / 2),
            Phase::Closed => None,
        }
    }

    /// The server reads the socket again after a flow-control pause: the
    /// client's silence meanwhile was the server's doing, so the keep-alive
    /// clock restarts.
    pub fn reading_resumed(&mut self, now: Instant) {
        self.last_packet = now;
    }

    /// Enforces the CONNECT timeout and keep-alive at `now`.
    pub fn poll_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.next_deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        if matches!(self.phase, Phase::Connected) {
            self.close_with(Some(ReasonCode::KEEP_ALIVE_TIMEOUT), "keep-alive timeout");
        } else {
            // Nothing to say to a client that has not finished connecting.
            self.close_with(None, "CONNECT timeout");
        }
    }

    /// Bytes arrived from the socket.
    pub fn receive(&mut self, data: &[u8], now: Instant) -> Vec<Action> {
        if !self.is_closed() {
            self.inbuf.extend_from_slice(data);
        }
        self.process(now)
    }

    /// The socket reached end of stream (or failed).
    pub fn peer_closed(&mut self) {
        if !self.is_closed() {
            self.phase = Phase::Closed;
            self.close_cause = Some("connection closed by peer".into());
        }
    }

    /// The server closes the connection (core decision, shutdown, revocation):
    /// DISCONNECT with `reason` to a 5.0 client that has its CONNACK.
    pub fn close(&mut self, reason: Option<ReasonCode>) {
        self.close_with(reason, "closed by the broker");
    }

    /// A packet from the core for this client: PUBLISH payloads are sealed
    /// and topics aliased here, in wire order.
    pub fn deliver(&mut self, packet: Packet) {
        if self.is_closed() {
            return;
        }
        match packet {
            packet @ Packet::Publish(_) => self.deliver_publish(packet),
            Packet::ConnAck(connack) => {
                self.write(&Packet::ConnAck(connack.clone()));
                if connack.reason_code.is_error() {
                    self.close_with(None, "CONNACK refused the client");
                } else if let Phase::Connected = self.phase {
                    self.note_core_connack(&connack);
                }
            }
            Packet::Disconnect(d) => {
                let reason = d.reason_code;
                let sent = self.version == Some(ProtocolVersion::V5) && self.connack_sent;
                if sent {
                    self.write(&Packet::Disconnect(d));
                }
                self.phase = Phase::Closed;
                // The log says what went on the wire: 3.1.1 has no server DISCONNECT.
                self.close_cause = Some(if sent {
                    format!("broker sent DISCONNECT {reason}")
                } else {
                    format!("closed by the broker ({}), nothing sent", reason.name())
                });
            }
            other => self.write(&other),
        }
    }

    fn deliver_publish(&mut self, packet: Packet) {
        let overhead = self
            .protection
            .as_ref()
            .map_or(0, |p| p.protection.overhead());
        if let (Some(max), Some(version)) = (self.client_max_packet, self.version) {
            // Checked before sealing and aliasing: both change per-connection
            // state that the client must see in order.
            if let Err(size) = codec::check_max_packet(&packet, version, overhead, Some(max)) {
                self.settings.stats.dropped(DropReason::TooLarge);
                // The core counted it as sent when it handed it over.
                let _ = self.settings.stats.messages_sent.fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |n| Some(n.saturating_sub(1)),
                );
                tracing::debug!(
                    conn = self.id(),
                    size,
                    max,
                    "PUBLISH over the client's maximum packet size dropped"
                );
                return;
            }
        }
        let Packet::Publish(publish) = packet else {
            return;
        };
        self.seal_and_write(publish);
    }

    /// Seals (if protected), aliases and writes one PUBLISH; holds it
    /// instead while the b2c keys are used up and a key update can renew them.
    fn seal_and_write(&mut self, mut publish: Publish) {
        if let Some(p) = self.protection.as_mut() {
            let exhausted = p.protection.records_exhausted();
            if !p.held.is_empty() || p.protection.awaits_key_update() || exhausted {
                p.held.push_back(publish);
                if p.held.len() > MAX_HELD_FOR_KEY_UPDATE {
                    self.close_with(
                        Some(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR),
                        "b2c record limit reached and no key update from the client",
                    );
                } else if exhausted {
                    self.close_for_keys_when_acknowledged();
                }
                return;
            }
        }
        let mut protected = false;
        if let Some(p) = self.protection.as_mut() {
            protected = p.protection.protects_metadata();
            if let Err(code) = metadata::seal_publish(p.protection.as_mut(), &mut publish) {
                self.close_with(Some(code), "payload protection refused to seal");
                return;
            }
        }
        if !protected {
            // Under metadata protection the wire shows the placeholder topic
            // only, and an alias for it would add bytes, not save them.
            self.outbound.apply(&mut publish);
        }
        if publish.qos != QoS::AtMostOnce {
            if let Some(p) = self.protection.as_mut() {
                p.unacked = p.unacked.saturating_add(1);
            }
        }
        self.write(&Packet::Publish(publish));
    }

    /// LWA1 out of b2c records (no key update; LWA.md section 8): with PUBLISH
    /// packets waiting and everything sealed here acknowledged, end with 0x83 so
    /// that the client reconnects for fresh keys; the session keeps what waits
    /// (QoS 1/2) for the next connection.
    fn close_for_keys_when_acknowledged(&mut self) {
        let ready = self.protection.as_ref().is_some_and(|p| {
            p.protection.records_exhausted() && !p.held.is_empty() && p.unacked == 0
        });
        if ready {
            self.close_with(
                Some(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR),
                "b2c records used up (LWA1): the client reconnects for fresh keys",
            );
        }
    }

    /// Decodes and handles buffered bytes as far as the phase allows.
    fn process(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        loop {
            if matches!(self.phase, Phase::Authenticating(_) | Phase::Closed) {
                break;
            }
            match self.decoder.decode(&mut self.inbuf) {
                Ok(Some(packet)) => {
                    self.last_packet = now;
                    self.handle(packet, now, &mut actions);
                }
                Ok(None) => break,
                Err(e) => {
                    self.codec_error(&e);
                    break;
                }
            }
        }
        if self.inbuf.is_empty() {
            // Everything read was decoded: let the allocation go (the
            // decoded packets may still share it) rather than keep it, and
            // `bytes`' shared header, for the connection's idle life.
            self.inbuf = BytesMut::new();
        }
        actions
    }

    fn handle(&mut self, packet: Packet, now: Instant, actions: &mut Vec<Action>) {
        match &self.phase {
            Phase::AwaitConnect => match packet {
                Packet::Connect(connect) => self.on_connect(connect, actions),
                // The decoder only lets CONNECT through first; be safe anyway.
                _ => self.close_with(None, "first packet was not CONNECT"),
            },
            Phase::AwaitAuth { .. } => self.on_await_auth(packet, now, actions),
            Phase::Connected => self.on_connected(packet, actions),
            Phase::Authenticating(_) | Phase::Closed => {}
        }
    }

    fn on_connect(&mut self, connect: Box<Connect>, actions: &mut Vec<Action>) {
        let version = connect.protocol_version;
        self.version = Some(version);
        self.decoder.set_version(version);
        if self.settings.over_quota {
            self.refuse(
                version,
                ReasonCode::QUOTA_EXCEEDED,
                "maximum connections reached",
            );
            return;
        }
        self.client_max_packet = connect.properties.maximum_packet_size.map(|m| m as usize);
        self.outbound = OutboundAliases::new(connect.properties.topic_alias_maximum.unwrap_or(0));
        self.phase = Phase::Authenticating(connect.clone());
        actions.push(Action::Authenticate(connect));
    }

    fn on_connected(&mut self, packet: Packet, actions: &mut Vec<Action>) {
        if matches!(packet, Packet::PubAck(_) | Packet::PubRec(_)) {
            if let Some(p) = self.protection.as_mut() {
                p.unacked = p.unacked.saturating_sub(1);
            }
        }
        match packet {
            Packet::Publish(mut publish) => {
                let protected = self
                    .protection
                    .as_ref()
                    .is_some_and(|p| p.protection.protects_metadata());
                if protected {
                    // Before alias resolution: the wire may show nothing but
                    // the placeholder topic (LWA2.md 7.1).
                    if let Err(code) = metadata::check_wire_header(&publish) {
                        self.close_with(Some(code), "PUBLISH exposes metadata");
                        return;
                    }
                } else if let Err(code) = self.inbound.resolve(&mut publish) {
                    self.close_with(Some(code), "bad topic alias");
                    return;
                }
                if let Some(p) = self.protection.as_mut() {
                    match p.protection.open(
                        &publish.topic,
                        publish.qos,
                        publish.retain,
                        &publish.payload,
                    ) {
                        Ok(plain) if protected => {
                            if let Err(code) = metadata::unpack(&mut publish, plain) {
                                self.close_with(Some(code), "protected metadata malformed");
                                return;
                            }
                        }
                        Ok(plain) => publish.payload = plain,
                        Err(code) => {
                            Stats::add(&self.settings.stats.record_failures, 1);
                            self.close_with(Some(code), "payload record failed to open");
                            return;
                        }
                    }
                }
                actions.push(Action::CorePacket(Packet::Publish(publish)));
            }
            Packet::PingReq => self.write(&Packet::PingResp),
            Packet::Disconnect(d) => {
                self.close_cause = Some(format!("client DISCONNECT {}", d.reason_code));
                self.client_disconnect = Some(Box::new(d));
                self.phase = Phase::Closed;
            }
            Packet::Connect(_) => {
                self.close_with(Some(ReasonCode::PROTOCOL_ERROR), "second CONNECT")
            }
            Packet::Auth(auth) => self.on_key_update(&auth),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => self
                .close_with(
                    Some(ReasonCode::PROTOCOL_ERROR),
                    "server-to-client packet from a client",
                ),
            other => {
                let acknowledgement = matches!(other, Packet::PubAck(_) | Packet::PubRec(_));
                actions.push(Action::CorePacket(other));
                if acknowledgement {
                    self.close_for_keys_when_acknowledged();
                }
            }
        }
    }

    /// AUTH on a connection that is up: an LWA2 key update (LWA2.md section
    /// 8.2), the one re-authentication offered; otherwise a protocol error.
    fn on_key_update(&mut self, auth: &Auth) {
        let Some(method) = self
            .protection
            .as_ref()
            .and_then(|p| p.protection.key_update_method())
        else {
            self.close_with(
                Some(ReasonCode::PROTOCOL_ERROR),
                "AUTH after authentication finished",
            );
            return;
        };
        if auth.reason_code != ReasonCode::RE_AUTHENTICATE {
            self.close_with(
                Some(ReasonCode::PROTOCOL_ERROR),
                "AUTH with a wrong reason code",
            );
            return;
        }
        if auth.properties.authentication_method.as_deref() != Some(method) {
            self.close_with(Some(ReasonCode::PROTOCOL_ERROR), "AUTH with another method");
            return;
        }
        let data = auth
            .properties
            .authentication_data
            .as_deref()
            .unwrap_or_default();
        let answered = match self.protection.as_mut() {
            Some(p) => p.protection.answer_key_update(data),
            None => Err(ReasonCode::PROTOCOL_ERROR),
        };
        match answered {
            Ok(response) => {
                // Written before anything sealed under the new keys: then
                // what waited for them, in order.
                self.write(&Packet::Auth(Box::new(Auth {
                    reason_code: ReasonCode::SUCCESS,
                    properties: Properties {
                        authentication_method: Some(method.to_owned()),
                        authentication_data: Some(response),
                        ..Properties::default()
                    },
                })));
                let held = self
                    .protection
                    .as_mut()
                    .map(|p| std::mem::take(&mut p.held))
                    .unwrap_or_default();
                for publish in held {
                    self.seal_and_write(publish);
                }
            }
            Err(code) => self.close_with(Some(code), "key update refused"),
        }
    }

    /// The core's CONNACK: it may set Server Keep Alive and the alias limit.
    fn note_core_connack(&mut self, connack: &ConnAck) {
        self.connack_sent = true;
        if let Some(ka) = connack.properties.server_keep_alive {
            self.keep_alive = keep_alive_duration(ka);
        }
        if self.version == Some(ProtocolVersion::V5) {
            self.inbound
                .set_maximum(connack.properties.topic_alias_maximum.unwrap_or(0));
        }
    }

    /// Refuses a CONNECT with a CONNACK error (mapped for 3.1.1) and closes.
    fn refuse(&mut self, version: ProtocolVersion, code: ReasonCode, cause: &str) {
        let connack = ConnAck {
            session_present: false,
            reason_code: code,
            properties: Properties::default(),
        };
        self.encode_for(&Packet::ConnAck(Box::new(connack)), version);
        self.phase = Phase::Closed;
        self.close_cause = Some(match version {
            ProtocolVersion::V5 => format!("{cause}: sent CONNACK {code}"),
            ProtocolVersion::V311 => format!(
                "{cause}: sent CONNACK return code {} ({})",
                code.to_v311_connack(),
                code.name()
            ),
        });
    }

    fn codec_error(&mut self, e: &CodecError) {
        if !self.connack_sent {
            match (e, self.decoder.version()) {
                // Only a first CONNECT is answered with CONNACK; a later one
                // (pipelined before our CONNACK) just ends the connection.
                (CodecError::UnsupportedProtocolVersion(level), _) if self.version.is_none() => {
                    // Answer in the format the client can read: 3.1.1's return
                    // code 1 for older levels, 5.0's 0x84 for newer ones.
                    let version = if *level < 5 {
                        ProtocolVersion::V311
                    } else {
                        ProtocolVersion::V5
                    };
                    self.refuse(
                        version,
                        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                        "bad CONNECT",
                    );
                }
                (_, Some(ProtocolVersion::V5)) if self.version.is_none() => {
                    self.refuse(ProtocolVersion::V5, e.reason_code(), "malformed CONNECT");
                }
                _ => self.close_with(None, "malformed input before CONNACK"),
            }
            self.note_malformed(e);
            return;
        }
        self.close_with(Some(e.reason_code()), "malformed input");
        self.note_malformed(e);
    }

    /// Keeps what was sent (the reason code, if any) next to the decoding error.
    fn note_malformed(&mut self, e: &CodecError) {
        let sent = self.close_cause.take().unwrap_or_default();
        self.close_cause = Some(format!("malformed input ({e}); {sent}"));
    }

    fn close_with(&mut self, reason: Option<ReasonCode>, cause: &str) {
        if self.is_closed() {
            return;
        }
        let mut sent = None;
        if let (Some(reason), Some(ProtocolVersion::V5), true) =
            (reason, self.version, self.connack_sent)
        {
            // Never put a code into DISCONNECT that the peer must reject.
            let reason = if valid_in_disconnect(reason) {
                reason
            } else {
                ReasonCode::UNSPECIFIED_ERROR
            };
            self.write(&Packet::Disconnect(Disconnect::new(reason)));
            sent = Some(reason);
        }
        self.phase = Phase::Closed;
        // Only a code that went out is logged as one (3.1.1 gets a bare close).
        self.close_cause = Some(match sent {
            Some(r) => format!("{cause}: sent DISCONNECT {r}"),
            None => format!("{cause}: closed, nothing sent"),
        });
    }

    fn write(&mut self, packet: &Packet) {
        if let Some(version) = self.version {
            self.encode_for(packet, version);
        }
    }

    fn encode_for(&mut self, packet: &Packet, version: ProtocolVersion) {
        if let Err(e) = codec::encode(packet, version, &mut self.out) {
            tracing::warn!(conn = self.id(), packet = packet.name(), error = %e, "cannot encode");
            if !self.is_closed() {
                self.phase = Phase::Closed;
                self.close_cause = Some(format!("encoding {} failed: {e}", packet.name()));
            }
        }
    }
}

/// Reason codes MQTT 5.0 allows in DISCONNECT (section 3.14.2.1).
pub(crate) fn valid_in_disconnect(code: ReasonCode) -> bool {
    matches!(
        code.0,
        0x00 | 0x04 | 0x80..=0x83 | 0x87 | 0x89 | 0x8B | 0x8D..=0x90 | 0x93..=0xA2
    )
}

/// 0 disables keep-alive.
fn keep_alive_duration(secs: u16) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
}

mod auth;

#[cfg(test)]
mod tests;
