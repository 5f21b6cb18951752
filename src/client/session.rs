//! The client side of one MQTT session as a sans-IO state machine.
//!
//! [`ClientSession`] consumes decoded packets, application requests and the
//! current time, and produces packets to send ([`ClientSession::poll_transmit`])
//! and events for the application ([`ClientSession::poll_event`]). It owns
//! everything MQTT asks a client to remember: packet identifiers, the QoS 1/2
//! flows in both directions (with duplicate suppression for inbound QoS 2),
//! topic aliases in both directions, the keep-alive schedule, the broker's
//! limits from CONNACK and, for LWA, the payload protection. The tokio driver
//! in [`super`] only moves bytes.
//!
//! Packets are queued for sending in wire order, so payloads are sealed in
//! wire order too (LWA record counters depend on it). A QoS 1/2 message keeps
//! its plaintext until acknowledged, so a retransmission after a reconnect is
//! sealed anew under the new connection's keys.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::auth::{ClientAuthenticator, PayloadProtection};
use crate::codec::alias::{InboundAliases, OutboundAliases};
use crate::codec::topic::validate_topic_name;
use crate::codec::{
    CompactProperties, ConnAck, Connect, Disconnect, Packet, Properties, ProtocolVersion,
    PubResponse, QoS, ReasonCode,
};

mod events;
mod inbound;
mod keyupdate;
mod outbound;
mod subscribe;

pub use events::{Event, Message, PublishOutcome, PublishRequest, RequestId, SessionError};

/// How long an LWA2 client holds its AUTH finished back waiting for a first
/// PUBLISH to confirm with instead (LWA2.md 6.1); short against the broker's
/// CONNECT timeout, long enough for `connect` then `publish`.
pub const CONFIRM_WAIT: Duration = Duration::from_millis(200);

/// What the session needs to know to build CONNECT and run the connection.
pub struct SessionConfig {
    /// The CONNECT to send (client id, clean start, keep-alive, credentials,
    /// will, 5.0 properties). Authentication Method/Data are added by `auth`.
    pub connect: Connect,
    /// Use topic aliases for outgoing PUBLISH when the broker allows them (5.0).
    pub outbound_topic_aliases: bool,
    /// Enhanced authentication (LWA), if any.
    pub auth: Option<Box<dyn ClientAuthenticator>>,
}

/// Where the current connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No connection (before the first, or after one ended).
    Idle,
    /// CONNECT sent, waiting for CONNACK.
    AwaitConnAck,
    /// CONNACK accepted.
    Connected,
}

/// The broker's limits and capabilities from CONNACK.
#[derive(Debug, Clone, Copy)]
struct BrokerLimits {
    receive_maximum: u16,
    maximum_packet_size: Option<usize>,
    topic_alias_maximum: u16,
    maximum_qos: QoS,
    retain_available: bool,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        BrokerLimits {
            receive_maximum: u16::MAX,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
        }
    }
}

/// Stage of an outgoing QoS 1/2 PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// QoS 1 sent, waiting for PUBACK.
    Qos1Sent,
    /// QoS 2 sent, waiting for PUBREC.
    Qos2Sent,
    /// PUBREL sent, waiting for PUBCOMP; the PUBREC's reason is kept for the outcome.
    Released(ReasonCode),
}

/// An outgoing PUBLISH that is not yet fully acknowledged.
#[derive(Debug, Clone)]
struct InFlight {
    id: RequestId,
    request: PublishRequest,
    stage: Stage,
    /// Send order, so retransmissions after a reconnect keep the original order.
    seq: u64,
}

/// What a packet identifier is in use for.
#[derive(Debug, Clone)]
enum Outstanding {
    Publish(Box<InFlight>),
    Subscribe { id: RequestId, filters: usize },
    Unsubscribe { id: RequestId },
}

/// Keep-alive bookkeeping for the current connection.
#[derive(Debug, Clone, Copy)]
struct KeepAlive {
    /// Interval in force (ours, or the broker's Server Keep Alive); zero disables it.
    interval: Duration,
    /// When we last queued a packet.
    last_sent: Instant,
    /// When the unanswered PINGREQ was sent.
    ping_sent: Option<Instant>,
}

/// The client side of one MQTT session (see the module documentation).
pub struct ClientSession {
    config: SessionConfig,
    version: ProtocolVersion,
    phase: Phase,
    limits: BrokerLimits,
    keep_alive: KeepAlive,
    next_packet_id: u16,
    next_request_id: RequestId,
    next_seq: u64,
    outstanding: BTreeMap<u16, Outstanding>,
    /// Number of `Outstanding::Publish` entries (the broker's Receive Maximum quota).
    in_flight_publishes: usize,
    /// QoS 1/2 publishes waiting for quota.
    pending: VecDeque<(RequestId, PublishRequest)>,
    /// Inbound QoS 2 packet ids received and not yet released (duplicate suppression).
    inbound_qos2: HashSet<u16>,
    /// Topic -> alias we assigned on this connection (maximum: the broker's,
    /// from CONNACK, where we use aliases).
    alias_out: OutboundAliases,
    /// Alias -> topic the broker assigned on this connection (maximum: ours,
    /// from CONNECT).
    alias_in: InboundAliases,
    protection: Option<Box<dyn PayloadProtection>>,
    /// LWA2's AUTH finished held back until the next packet (dropped if that
    /// is a PUBLISH) or the deadline, whichever comes first.
    deferred_auth: Option<(Packet, Instant)>,
    transmit: VecDeque<Packet>,
    events: VecDeque<Event>,
    /// True once a CONNACK has ever been accepted (there may be session state).
    had_session: bool,
    /// QoS 1/2 packet ids sealed and sent on this connection whose PUBACK or
    /// PUBREC has not arrived: an LWA1 connection out of records waits for
    /// them before it ends for fresh keys (LWA.md section 8).
    unacked_here: HashSet<u16>,
    /// This session ended its connection because its records were used up
    /// (LWA1): the driver reconnects at once ([`Self::take_reconnect_for_keys`]).
    reconnect_for_keys: bool,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("client_id", &self.config.connect.client_id)
            .field("phase", &self.phase)
            .field("outstanding", &self.outstanding.len())
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A session that has not connected yet.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let version = config.connect.protocol_version;
        ClientSession {
            config,
            version,
            phase: Phase::Idle,
            limits: BrokerLimits::default(),
            keep_alive: KeepAlive {
                interval: Duration::ZERO,
                last_sent: now,
                ping_sent: None,
            },
            next_packet_id: 1,
            next_request_id: 1,
            next_seq: 0,
            outstanding: BTreeMap::new(),
            in_flight_publishes: 0,
            pending: VecDeque::new(),
            inbound_qos2: HashSet::new(),
            alias_out: OutboundAliases::new(0),
            alias_in: InboundAliases::new(0),
            protection: None,
            deferred_auth: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            had_session: false,
            unacked_here: HashSet::new(),
            reconnect_for_keys: false,
        }
    }

    /// Whether the connection just ended because its LWA1 records were used
    /// up (LWA.md section 8): the caller should reconnect now; what waits is
    /// sent on the new connection, sealed under its keys. Reading clears it.
    pub fn take_reconnect_for_keys(&mut self) -> bool {
        std::mem::take(&mut self.reconnect_for_keys)
    }

    /// The protocol version of this session.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The client identifier (the broker's assigned one once CONNACK named it).
    pub fn client_id(&self) -> &str {
        &self.config.connect.client_id
    }

    /// True between an accepted CONNACK and the end of that connection.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// Largest packet we accept from the broker (our Maximum Packet Size), if limited.
    pub fn inbound_maximum_packet_size(&self) -> Option<usize> {
        self.config
            .connect
            .properties
            .maximum_packet_size
            .map(|m| m as usize)
    }

    /// Builds the CONNECT for a new connection and resets per-connection state.
    ///
    /// The authenticator (if any) sees the final CONNECT. Call again for a
    /// reconnect: unacknowledged publishes are retransmitted once the broker
    /// confirms the session.
    pub fn connect_packet(&mut self, now: Instant) -> Result<Packet, SessionError> {
        self.end_connection();
        // Whatever the old connection did not get to send (sealed under its
        // keys, aliased for its tables) must not reach the new one.
        self.transmit.clear();
        let mut connect = self.config.connect.clone();
        if let Some(auth) = self.config.auth.as_mut() {
            if self.version != ProtocolVersion::V5 {
                return Err(SessionError::InvalidRequest(
                    "enhanced authentication needs MQTT 5.0".into(),
                ));
            }
            auth.prepare_connect(&mut connect)
                .map_err(SessionError::Auth)?;
        }
        self.phase = Phase::AwaitConnAck;
        // The broker may alias topics up to the maximum this CONNECT offers (5.0 only).
        if self.version == ProtocolVersion::V5 {
            self.alias_in =
                InboundAliases::new(connect.properties.topic_alias_maximum.unwrap_or(0));
        }
        self.keep_alive = KeepAlive {
            interval: Duration::from_secs(u64::from(connect.keep_alive)),
            last_sent: now,
            ping_sent: None,
        };
        Ok(Packet::Connect(Box::new(connect)))
    }

    /// The connection ended (socket closed, error, or after DISCONNECT).
    ///
    /// Subscribe and unsubscribe requests fail; unacknowledged publishes stay
    /// for a reconnect (the driver fails them if it will not reconnect).
    pub fn connection_lost(&mut self) {
        self.end_connection();
    }

    fn end_connection(&mut self) {
        if self.phase == Phase::Idle {
            return;
        }
        self.phase = Phase::Idle;
        self.protection = None;
        self.unacked_here.clear();
        self.deferred_auth = None;
        self.alias_in = InboundAliases::new(0);
        self.alias_out = OutboundAliases::new(0);
        self.keep_alive.ping_sent = None;
        let ids: Vec<u16> = self
            .outstanding
            .iter()
            .filter(|(_, o)| !matches!(o, Outstanding::Publish(_)))
            .map(|(&pid, _)| pid)
            .collect();
        for pid in ids {
            if let Some(Outstanding::Subscribe { id, .. } | Outstanding::Unsubscribe { id }) =
                self.outstanding.remove(&pid)
            {
                self.events.push_back(Event::Failed {
                    id,
                    error: SessionError::ConnectionLost,
                });
            }
        }
    }

    /// Request ids of every publish not yet completed (in flight or waiting for quota).
    pub fn unfinished_publishes(&self) -> Vec<RequestId> {
        let mut ids: Vec<RequestId> = self
            .outstanding
            .values()
            .filter_map(|o| match o {
                Outstanding::Publish(f) => Some(f.id),
                _ => None,
            })
            .collect();
        ids.extend(self.pending.iter().map(|(id, _)| *id));
        ids
    }

    /// Next packet to write to the socket, in order.
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        self.transmit.pop_front()
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queues a packet and restarts the keep-alive interval.
    fn send(&mut self, packet: Packet, now: Instant) {
        if let Some((auth, _)) = self.deferred_auth.take() {
            // A PUBLISH (sealed as c2b record 0) confirms the keys by itself.
            if !matches!(packet, Packet::Publish(_)) {
                self.transmit.push_back(auth);
            }
        }
        self.keep_alive.last_sent = now;
        let sealed = matches!(packet, Packet::Publish(_));
        self.transmit.push_back(packet);
        if sealed {
            self.update_keys_if_due(now);
        }
    }

    /// Ends the connection because of `error`, telling a 5.0 broker why.
    fn fail(&mut self, error: SessionError, now: Instant) -> SessionError {
        let reason = match &error {
            SessionError::Protocol { reason, .. } => Some(*reason),
            SessionError::Auth(e) => Some(e.reason),
            SessionError::KeepAliveTimeout => Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
            SessionError::Protection(r) => Some(*r),
            _ => None,
        };
        if let (Some(reason), ProtocolVersion::V5, Phase::Connected | Phase::AwaitConnAck) =
            (reason, self.version, self.phase)
        {
            self.send(Packet::Disconnect(Disconnect::new(reason)), now);
        }
        self.end_connection();
        error
    }

    /// Bytes from the broker could not be decoded: tells a 5.0 broker why
    /// (DISCONNECT with `reason`) and ends the connection.
    pub fn decode_failed(&mut self, reason: ReasonCode, now: Instant) {
        let _ = self.fail(
            SessionError::Protocol {
                reason,
                detail: "undecodable packet",
            },
            now,
        );
    }

    /// Handles CONNACK: refusal, authentication, the broker's limits, session
    /// present, and retransmission of unacknowledged publishes.
    fn on_connack(&mut self, connack: ConnAck, now: Instant) -> Result<(), SessionError> {
        if connack.reason_code.is_error() {
            self.end_connection();
            return Err(SessionError::Refused(
                connack.reason_code,
                connack.properties.reason_string,
            ));
        }
        match self.config.auth.as_mut() {
            Some(auth) => {
                let step = auth.on_connack(&connack).map_err(SessionError::Auth);
                let step = match step {
                    Ok(step) => step,
                    Err(e) => return Err(self.fail(e, now)),
                };
                match step.auth_to_send {
                    Some(auth) if step.confirm_by_first_publish => {
                        self.deferred_auth =
                            Some((Packet::Auth(Box::new(auth)), now + CONFIRM_WAIT));
                    }
                    Some(auth) => self.send(Packet::Auth(Box::new(auth)), now),
                    None => {}
                }
                self.protection = step.protection;
            }
            None if connack.properties.authentication_method.is_some() => {
                return Err(self.fail(
                    SessionError::Protocol {
                        reason: ReasonCode::PROTOCOL_ERROR,
                        detail:
                            "CONNACK carries an authentication method the client did not ask for",
                    },
                    now,
                ));
            }
            None => {}
        }
        if connack.session_present && self.config.connect.clean_start {
            return Err(self.fail(
                SessionError::Protocol {
                    reason: ReasonCode::PROTOCOL_ERROR,
                    detail: "session present after a clean start",
                },
                now,
            ));
        }
        let p = &connack.properties;
        self.limits = BrokerLimits {
            receive_maximum: p.receive_maximum.unwrap_or(u16::MAX).max(1),
            maximum_packet_size: p.maximum_packet_size.map(|m| m as usize),
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            maximum_qos: p
                .maximum_qos
                .and_then(QoS::from_u8)
                .unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available != Some(0),
        };
        if self.config.outbound_topic_aliases && self.version == ProtocolVersion::V5 {
            self.alias_out = OutboundAliases::new(self.limits.topic_alias_maximum);
        }
        if let Some(ka) = p.server_keep_alive {
            self.keep_alive.interval = Duration::from_secs(u64::from(ka));
        }
        if let Some(id) = &p.assigned_client_identifier {
            self.config.connect.client_id = id.clone();
        }
        self.phase = Phase::Connected;
        if connack.session_present && self.had_session {
            self.retransmit(now);
        } else {
            self.discard_session_state();
        }
        self.had_session = true;
        self.pump(now);
        Ok(())
    }

    /// Handles one packet from the broker.
    ///
    /// An error ends the connection: send what [`Self::poll_transmit`] still
    /// yields (a DISCONNECT with the reason, 5.0), then close the socket.
    pub fn handle_packet(&mut self, packet: Packet, now: Instant) -> Result<(), SessionError> {
        let awaiting_auth = self
            .config
            .auth
            .as_ref()
            .is_some_and(|a| a.awaiting_broker_auth());
        if self.phase == Phase::Connected
            && awaiting_auth
            && !matches!(packet, Packet::Auth(_) | Packet::Disconnect(_))
        {
            // LWA.md 6.1: the broker's AUTH 0x00 is its proof that it
            // verified our finished and attached the session; anything
            // first would be acted on before that proof.
            return Err(self.fail(
                SessionError::Protocol {
                    reason: ReasonCode::PROTOCOL_ERROR,
                    detail: "broker's first packet after CONNACK is not AUTH",
                },
                now,
            ));
        }
        match (self.phase, packet) {
            (Phase::AwaitConnAck, Packet::ConnAck(connack)) => self.on_connack(*connack, now),
            (Phase::Connected, Packet::Publish(publish)) => {
                self.on_publish(publish, now)?;
                // An opened record may make a key update due (b2c half used).
                self.update_keys_if_due(now);
                Ok(())
            }
            (Phase::Connected, Packet::PubAck(ack)) => {
                self.on_puback(ack);
                self.pump(now);
                Ok(())
            }
            (Phase::Connected, Packet::PubRec(rec)) => {
                self.on_pubrec(rec, now);
                self.pump(now);
                Ok(())
            }
            (Phase::Connected, Packet::PubComp(comp)) => {
                self.on_pubcomp(comp);
                self.pump(now);
                Ok(())
            }
            (Phase::Connected, Packet::PubRel(rel)) => {
                self.on_pubrel(rel, now);
                Ok(())
            }
            (Phase::Connected, Packet::SubAck(suback)) => self.on_suback(suback, now),
            (Phase::Connected, Packet::UnsubAck(unsuback)) => self.on_unsuback(unsuback, now),
            (Phase::Connected, Packet::PingResp) => {
                self.keep_alive.ping_sent = None;
                Ok(())
            }
            (Phase::Connected | Phase::AwaitConnAck, Packet::Disconnect(d)) => {
                // LWA.md section 8: a broker out of b2c records (we opened all
                // it may seal, and LWA1 has no key update) ends with 0x83, and
                // we reconnect for fresh keys.
                if d.reason_code == ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
                    && self
                        .protection
                        .as_ref()
                        .is_some_and(|p| p.peer_records_exhausted())
                {
                    tracing::info!(
                        "the broker's LWA1 records are used up: reconnecting for fresh keys"
                    );
                    self.reconnect_for_keys = true;
                }
                self.end_connection();
                Err(SessionError::Disconnected {
                    reason: d.reason_code,
                    reason_string: d.properties.into_inner().reason_string,
                })
            }
            (Phase::Connected, Packet::Auth(auth))
                if !awaiting_auth && self.is_key_update_answer() =>
            {
                let result = self.on_key_update_answer(&auth, now);
                result.map_err(|e| self.fail(e, now))
            }
            (Phase::Connected, Packet::Auth(auth)) => {
                let result = match self.config.auth.as_mut() {
                    Some(a) => a.on_auth(&auth).map_err(SessionError::Auth),
                    None => Err(SessionError::Protocol {
                        reason: ReasonCode::PROTOCOL_ERROR,
                        detail: "AUTH without enhanced authentication",
                    }),
                };
                result.map_err(|e| self.fail(e, now))
            }
            (Phase::Idle, _) => Err(SessionError::NotConnected),
            (_, _) => Err(self.fail(
                SessionError::Protocol {
                    reason: ReasonCode::PROTOCOL_ERROR,
                    detail: "unexpected packet from the broker",
                },
                now,
            )),
        }
    }

    /// When [`Self::handle_timeout`] must next be called, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let keep_alive = self.keep_alive_deadline();
        match (self.deferred_auth.as_ref().map(|(_, at)| *at), keep_alive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn keep_alive_deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Connected || self.keep_alive.interval.is_zero() {
            return None;
        }
        let ka = &self.keep_alive;
        Some(match ka.ping_sent {
            Some(sent) => sent + ka.interval,
            None => ka.last_sent + ka.interval,
        })
    }

    /// Sends PINGREQ when the keep-alive interval passed without traffic from
    /// us; fails when a PINGREQ stayed unanswered for a whole interval.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        if self
            .deferred_auth
            .as_ref()
            .is_some_and(|(_, at)| now >= *at)
        {
            if let Some((auth, _)) = self.deferred_auth.take() {
                self.send(auth, now);
            }
        }
        if self.phase != Phase::Connected || self.keep_alive.interval.is_zero() {
            return Ok(());
        }
        let interval = self.keep_alive.interval;
        match self.keep_alive.ping_sent {
            Some(sent) if now >= sent + interval => {
                Err(self.fail(SessionError::KeepAliveTimeout, now))
            }
            Some(_) => Ok(()),
            None if now >= self.keep_alive.last_sent + interval => {
                self.send(Packet::PingReq, now);
                self.keep_alive.ping_sent = Some(now);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Sends DISCONNECT and ends the connection (the will is not published,
    /// unless a 5.0 `reason` of 0x04 asks for it).
    pub fn disconnect(&mut self, reason: ReasonCode, properties: Properties, now: Instant) {
        if self.phase == Phase::Connected {
            self.send(
                Packet::Disconnect(Disconnect {
                    reason_code: reason,
                    properties: properties.into(),
                }),
                now,
            );
        }
        self.end_connection();
    }

    fn new_request_id(&mut self) -> RequestId {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// Finds a free packet identifier (1..=65535, shared by every flow).
    fn allocate_packet_id(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            let candidate = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.outstanding.contains_key(&candidate) {
                return Some(candidate);
            }
        }
        None
    }

    /// Refuses a packet larger than the broker's Maximum Packet Size.
    fn check_size(&self, size: usize) -> Result<(), SessionError> {
        match self.limits.maximum_packet_size {
            Some(max) if size > max => Err(SessionError::PacketTooLarge { size, max }),
            _ => Ok(()),
        }
    }
}

/// Builds a PUBACK/PUBREC/PUBREL/PUBCOMP with the given reason.
fn pub_response(packet_id: u16, reason_code: ReasonCode) -> PubResponse {
    PubResponse {
        packet_id,
        reason_code,
        properties: CompactProperties::new(),
    }
}

/// Checks a topic name for an outgoing PUBLISH.
fn check_topic(topic: &str) -> Result<(), SessionError> {
    validate_topic_name(topic)
        .map_err(|_| SessionError::InvalidRequest(format!("invalid topic name {topic:?}")))
}

#[cfg(test)]
mod tests;
