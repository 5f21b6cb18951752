//! One client's relay to the upstream broker, sans-IO: the client side is
//! the broker's own [`Connection`] (authentication, LWA records, aliases,
//! keep-alive), this side speaks to the upstream broker in bytes.
//!
//! The relay is one client connection to one upstream connection, packet ids
//! passed through in both directions, so every acknowledgement the client
//! gets is the upstream's (QoS 1 and 2 hold end to end) and nothing of a
//! session lives in the gateway: the upstream keeps sessions, queues and
//! retained messages, and a client may come back through any gateway.
//!
//! What the gateway adds on the way: the listener's ACL (publish, subscribe,
//! receive; a will the client may not publish is not passed on, as the
//! broker drops it), the upstream client id and user name from templates,
//! and the upstream's Receive Maximum (PUBLISH packets beyond it wait here).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zeroize::Zeroizing;

use crate::auth::{AccessPolicy, Principal};
use crate::broker::connection::Connection;
use crate::broker::{ConnectRequest, Limits};
use crate::codec::{
    self, CompactProperties, ConnAck, Connect, Decoder, Disconnect, Packet, Properties,
    ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, SubAck, Subscribe,
};

use super::template::{Fields, Template};

/// Client packets held while the upstream connection is being opened, in
/// bytes of payload; more ends the client's connection with 0x97.
pub const MAX_EARLY_BYTES: usize = 1 << 20;

/// What every relay of one gateway shares.
pub struct RelaySettings {
    /// Upstream client id of a client.
    pub client_id_template: Template,
    /// Upstream user name (the gateway's account), if any.
    pub username: Option<Template>,
    /// Upstream password, if any (zeroized when the gateway stops; each
    /// CONNECT carries a copy for as long as it takes to encode it).
    pub password: Option<Zeroizing<Vec<u8>>>,
    /// The gateway's limits (what it announces to clients).
    pub limits: Limits,
}

/// The two CONNECT packets the task may send upstream: MQTT 5.0 first, and
/// 3.1.1 for an upstream that refuses 5.0.
pub struct UpstreamConnect {
    /// MQTT 5.0.
    pub v5: Connect,
    /// MQTT 3.1.1 (no properties; Clean Session from Clean Start).
    pub v311: Connect,
}

/// The upstream answered CONNECT with this CONNACK, on an MQTT `version`
/// connection; `rest` is whatever it sent after the CONNACK.
pub struct UpstreamUp {
    /// Version spoken.
    pub version: ProtocolVersion,
    /// The upstream's CONNACK (success or refusal).
    pub connack: ConnAck,
    /// Bytes read after the CONNACK.
    pub rest: BytesMut,
    /// `HOST:PORT` reached, for logs and reason strings.
    pub addr: String,
}

/// The relay asks its task to do this.
pub enum Step {
    /// Nothing to do.
    None,
    /// Open the upstream connection with these CONNECT packets and call
    /// [`Relay::upstream_connected`] or [`Relay::upstream_unreachable`].
    OpenUpstream(Box<UpstreamConnect>),
}

/// Where the upstream side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    /// The client has not finished authenticating.
    NotYet,
    /// The task is connecting.
    Opening,
    /// Connected: packets flow.
    Up,
    /// Closed (or refused); nothing more goes up.
    Closed,
}

/// One client's relay (see the module docs).
pub struct Relay {
    settings: Arc<RelaySettings>,
    upstream: Upstream,
    /// Id the gateway assigns to a client that sent an empty one.
    assign_id: String,
    /// Who the client is, for ACLs and templates (set at CoreConnect).
    principal: Principal,
    policy: Option<Arc<dyn AccessPolicy>>,
    client_id: String,
    client_version: ProtocolVersion,
    /// The client's CONNACK went out before the upstream was asked (LWA:
    /// the handshake signs it), with this Session Present.
    signed_session_present: Option<bool>,
    /// The gateway assigned the client its id (CONNACK must say so).
    assigned: bool,
    /// Client packets waiting for the upstream connection.
    early: VecDeque<Packet>,
    early_bytes: usize,
    decoder: Decoder,
    inbuf: BytesMut,
    out: BytesMut,
    version: ProtocolVersion,
    /// Upstream Receive Maximum and the QoS 1/2 PUBLISH ids it has not finished.
    receive_maximum: u16,
    /// The upstream's Maximum Packet Size (5.0 CONNACK), if it set one.
    upstream_max_packet: Option<u32>,
    inflight: HashMap<u16, QoS>,
    /// QoS 1/2 PUBLISH packets waiting for room under the Receive Maximum.
    held: VecDeque<Publish>,
    /// SUBSCRIBE ids whose filters the ACL partly refused: the codes to merge
    /// into the upstream's SUBACK (`None`: the upstream's next code).
    sub_codes: HashMap<u16, Vec<Option<ReasonCode>>>,
    /// Client QoS 2 PUBLISH ids the gateway acknowledged itself (refused by
    /// the ACL on 3.1.1): their PUBREL is answered here.
    local_c2b: HashSet<u16>,
    /// Upstream QoS 2 PUBLISH ids the client may not receive, acknowledged here.
    local_b2c: HashSet<u16>,
    keep_alive: Option<Duration>,
    last_sent: Instant,
    ping_since: Option<Instant>,
    /// Why the upstream side closed, for logs.
    cause: Option<String>,
}

impl Relay {
    /// A relay for a connection accepted at `now`; `assign_id` is the id a
    /// client that sends none gets (random, chosen by the caller).
    pub fn new(settings: Arc<RelaySettings>, assign_id: String, now: Instant) -> Self {
        let max = settings.limits.max_packet_size as usize;
        Relay {
            settings,
            upstream: Upstream::NotYet,
            assign_id,
            principal: Principal::default(),
            policy: None,
            client_id: String::new(),
            client_version: ProtocolVersion::V5,
            signed_session_present: None,
            assigned: false,
            early: VecDeque::new(),
            early_bytes: 0,
            decoder: Decoder::with_version(max, ProtocolVersion::V5),
            inbuf: BytesMut::new(),
            out: BytesMut::new(),
            version: ProtocolVersion::V5,
            receive_maximum: u16::MAX,
            upstream_max_packet: None,
            inflight: HashMap::new(),
            held: VecDeque::new(),
            sub_codes: HashMap::new(),
            local_c2b: HashSet::new(),
            local_b2c: HashSet::new(),
            keep_alive: None,
            last_sent: now,
            ping_since: None,
            cause: None,
        }
    }

    /// The CONNACK a client authenticating with LWA gets before the upstream
    /// is asked (the handshake signs it). Session Present is what the client
    /// asked for: resuming (Clean Start 0) is presumed to find the session
    /// the upstream keeps (README, "Gateway": what this costs when it does not).
    pub fn preview(&self, connect: &Connect) -> ConnAck {
        let limits = &self.settings.limits;
        let mut properties = Properties {
            receive_maximum: Some(limits.receive_maximum),
            topic_alias_maximum: Some(limits.topic_alias_maximum),
            maximum_packet_size: Some(limits.max_packet_size),
            ..Properties::default()
        };
        if connect.client_id.is_empty() {
            properties.assigned_client_identifier = Some(self.assign_id.clone());
        }
        ConnAck {
            session_present: !connect.clean_start,
            reason_code: ReasonCode::SUCCESS,
            properties,
        }
    }

    /// Who the client authenticated as, once it has.
    pub fn principal(&self) -> Option<&Principal> {
        self.policy.as_ref().map(|_| &self.principal)
    }

    /// True once nothing more goes up (the task may drop the upstream stream).
    pub fn upstream_closed(&self) -> bool {
        self.upstream == Upstream::Closed
    }

    /// True while the upstream connection is up.
    pub fn upstream_up(&self) -> bool {
        self.upstream == Upstream::Up
    }

    /// Why the upstream side closed, for logs.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    /// Bytes to write upstream (empty when none); then [`Self::output_written`].
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The bytes [`Self::output`] gave were written at `now`.
    pub fn output_written(&mut self, now: Instant) {
        self.last_sent = now;
        if self.out.capacity() > crate::broker::connection::OUT_KEEP {
            self.out = BytesMut::new();
        } else {
            self.out.clear();
        }
    }

    fn upstream_password(&self) -> Option<Bytes> {
        self.settings
            .password
            .as_ref()
            .map(|p| Bytes::copy_from_slice(p))
    }

    /// The client is authenticated: what to open upstream.
    pub fn client_connected(&mut self, req: ConnectRequest, client: &mut Connection) -> Step {
        let ConnectRequest {
            connect,
            principal,
            policy,
            listener,
            connack_sent,
            signed_session_present,
            payload_overhead,
            ..
        } = req;
        self.client_version = connect.protocol_version;
        self.principal = principal;
        self.policy = Some(policy);
        self.signed_session_present = signed_session_present.filter(|_| connack_sent);
        if connect.client_id.is_empty() {
            if connect.protocol_version == ProtocolVersion::V311 && !connect.clean_start {
                // 3.1.1 section 3.1.3-8: a server-assigned id needs Clean Session.
                self.refuse(
                    client,
                    ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                    "an empty client id needs Clean Session",
                );
                return Step::None;
            }
            self.assigned = true;
            self.client_id = self.assign_id.clone();
        } else {
            self.client_id = connect.client_id.clone();
        }
        let fields = Fields {
            client_id: &self.client_id,
            principal: &self.principal,
            listener: &listener,
        };
        let upstream_id = self.settings.client_id_template.render(&fields);
        let username = self.settings.username.as_ref().map(|t| t.render(&fields));
        let will = connect.will.clone().filter(|w| {
            let allowed = self.may_publish(&w.topic);
            if !allowed {
                tracing::debug!(
                    client_id = self.client_id,
                    topic = w.topic,
                    "will not passed upstream: the ACL refuses its topic"
                );
            }
            allowed
        });
        let p = &connect.properties;
        // What the upstream may send: the client's limit, less the record
        // overhead LWA adds to every payload on the way down, and never more
        // than the gateway decodes (a bigger packet would end the relay; with
        // this limit a 5.0 upstream drops it instead, as MQTT 5 says).
        let own = self.settings.limits.max_packet_size;
        let maximum_packet_size = Some(p.maximum_packet_size.map_or(own, |m| {
            m.saturating_sub(payload_overhead as u32).clamp(1, own)
        }));
        let v5 = Connect {
            protocol_version: ProtocolVersion::V5,
            clean_start: connect.clean_start,
            keep_alive: connect.keep_alive,
            client_id: upstream_id.clone(),
            will: will.clone(),
            username: username.clone(),
            password: self.upstream_password(),
            properties: Properties {
                session_expiry_interval: match connect.protocol_version {
                    ProtocolVersion::V5 => p.session_expiry_interval,
                    // A 3.1.1 session without Clean Session never expires.
                    ProtocolVersion::V311 => (!connect.clean_start).then_some(u32::MAX),
                },
                receive_maximum: p.receive_maximum,
                maximum_packet_size,
                request_problem_information: p.request_problem_information,
                request_response_information: p.request_response_information,
                user_properties: p.user_properties.clone(),
                ..Properties::default()
            },
        };
        // 3.1.1 keeps a session until a Clean Session connect: a 5.0 client's
        // session that ends with its connection (expiry 0) is a clean one.
        let ends_with_connection = connect.protocol_version == ProtocolVersion::V5
            && p.session_expiry_interval.unwrap_or(0) == 0;
        let v311 = Connect {
            protocol_version: ProtocolVersion::V311,
            clean_start: connect.clean_start || ends_with_connection,
            keep_alive: connect.keep_alive,
            client_id: upstream_id,
            will: will.map(|mut w| {
                w.properties = Properties::default();
                w
            }),
            username,
            password: self.upstream_password(),
            properties: Properties::default(),
        };
        self.keep_alive =
            (connect.keep_alive > 0).then(|| Duration::from_secs(u64::from(connect.keep_alive)));
        self.upstream = Upstream::Opening;
        Step::OpenUpstream(Box::new(UpstreamConnect { v5, v311 }))
    }

    /// No upstream address answered: the client is refused (0x88) or, if it
    /// has its CONNACK, disconnected.
    pub fn upstream_unreachable(&mut self, why: &str, client: &mut Connection) {
        self.upstream = Upstream::Closed;
        self.cause = Some(format!("no upstream reachable: {why}"));
        self.refuse(
            client,
            ReasonCode::SERVER_UNAVAILABLE,
            &format!("gateway: no upstream broker reachable ({why})"),
        );
    }

    /// The upstream answered the CONNECT.
    pub fn upstream_connected(&mut self, up: UpstreamUp, client: &mut Connection, now: Instant) {
        let UpstreamUp {
            version,
            connack,
            rest,
            addr,
        } = up;
        if connack.reason_code.is_error() {
            self.upstream = Upstream::Closed;
            let per_client = self
                .settings
                .username
                .as_ref()
                .is_some_and(Template::names_the_client);
            let (code, why) = refusal_for_client(connack.reason_code, per_client);
            self.cause = Some(format!(
                "upstream {addr} refused CONNECT with {}",
                connack.reason_code
            ));
            self.refuse(
                client,
                code,
                &format!(
                    "gateway: upstream {addr} refused the connection with {} ({why})",
                    connack.reason_code.name()
                ),
            );
            return;
        }
        self.upstream = Upstream::Up;
        self.version = version;
        self.decoder.set_version(version);
        self.last_sent = now;
        if version == ProtocolVersion::V5 {
            self.receive_maximum = connack.properties.receive_maximum.unwrap_or(u16::MAX);
            self.upstream_max_packet = connack.properties.maximum_packet_size;
            if let Some(ka) = connack.properties.server_keep_alive {
                self.keep_alive = (ka > 0).then(|| Duration::from_secs(u64::from(ka)));
            }
        }
        match self.signed_session_present {
            Some(signed) => {
                if signed != connack.session_present {
                    tracing::warn!(
                        client_id = self.client_id,
                        told = signed,
                        upstream = connack.session_present,
                        "LWA client told Session Present before the upstream answered; the upstream disagrees"
                    );
                }
            }
            None => client.deliver(Packet::ConnAck(Box::new(self.client_connack(&connack)))),
        }
        self.inbuf = rest;
        for packet in std::mem::take(&mut self.early) {
            self.forward_up(packet, client);
        }
        self.early_bytes = 0;
        self.process(client, now);
    }

    /// The client's CONNACK from the upstream's: its Session Present and
    /// capabilities, the gateway's own alias and size limits.
    fn client_connack(&self, up: &ConnAck) -> ConnAck {
        let u = &up.properties;
        let limits = &self.settings.limits;
        let properties = Properties {
            receive_maximum: u.receive_maximum,
            maximum_qos: u.maximum_qos,
            retain_available: u.retain_available,
            wildcard_subscription_available: u.wildcard_subscription_available,
            subscription_identifier_available: u.subscription_identifier_available,
            shared_subscription_available: u.shared_subscription_available,
            response_information: u.response_information.clone(),
            server_reference: u.server_reference.clone(),
            reason_string: u.reason_string.clone(),
            user_properties: u.user_properties.clone(),
            topic_alias_maximum: Some(limits.topic_alias_maximum),
            maximum_packet_size: Some(
                u.maximum_packet_size
                    .map_or(limits.max_packet_size, |m| m.min(limits.max_packet_size)),
            ),
            assigned_client_identifier: self.assigned.then(|| self.assign_id.clone()),
            ..Properties::default()
        };
        ConnAck {
            session_present: up.session_present,
            reason_code: ReasonCode::SUCCESS,
            properties,
        }
    }

    /// Refuses the client: CONNACK `code` when it has none yet, else
    /// DISCONNECT (with a code a DISCONNECT may carry).
    fn refuse(&mut self, client: &mut Connection, code: ReasonCode, why: &str) {
        self.upstream = Upstream::Closed;
        if self.signed_session_present.is_none() {
            let connack = ConnAck {
                session_present: false,
                reason_code: code,
                properties: Properties {
                    reason_string: Some(why.to_owned()),
                    ..Properties::default()
                },
            };
            client.deliver(Packet::ConnAck(Box::new(connack)));
        } else {
            disconnect_client(client, code, why);
        }
    }

    /// A packet from the authenticated client (aliases resolved, payload opened).
    pub fn client_packet(&mut self, packet: Packet, client: &mut Connection) {
        match self.upstream {
            Upstream::Up => self.forward_up(packet, client),
            Upstream::NotYet | Upstream::Opening => {
                if let Packet::Publish(p) = &packet {
                    self.early_bytes += p.payload.len() + p.topic.len();
                }
                self.early.push_back(packet);
                if self.early_bytes > MAX_EARLY_BYTES {
                    self.upstream = Upstream::Closed;
                    self.cause = Some("client sent too much before the upstream answered".into());
                    client.close(Some(ReasonCode::QUOTA_EXCEEDED));
                }
            }
            Upstream::Closed => {}
        }
    }

    fn may_publish(&self, topic: &str) -> bool {
        self.policy
            .as_ref()
            .is_none_or(|p| p.can_publish(&self.principal, &self.client_id, topic))
    }

    fn forward_up(&mut self, packet: Packet, client: &mut Connection) {
        let v5 = self.client_version == ProtocolVersion::V5;
        match packet {
            Packet::Publish(p) => {
                if !self.may_publish(&p.topic) {
                    // As the broker does: 0x87 to 5.0, a plain acknowledgement to 3.1.1.
                    let code = if v5 {
                        ReasonCode::NOT_AUTHORIZED
                    } else {
                        ReasonCode::SUCCESS
                    };
                    let ack = PubResponse {
                        reason_code: code,
                        ..PubResponse::success(p.packet_id)
                    };
                    match p.qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => client.deliver(Packet::PubAck(ack)),
                        QoS::ExactlyOnce => {
                            if !code.is_error() {
                                self.local_c2b.insert(p.packet_id);
                            }
                            client.deliver(Packet::PubRec(ack));
                        }
                    }
                    return;
                }
                let (qos, id) = (p.qos, p.packet_id);
                let packet = Packet::Publish(p);
                let max = self.upstream_max_packet.map(|m| m as usize);
                if codec::check_max_packet(&packet, self.version, 0, max).is_err() {
                    // Bigger than the upstream takes (an LWA client had its
                    // CONNACK before the upstream said so): as a broker would.
                    self.upstream = Upstream::Closed;
                    self.cause = Some("PUBLISH over the upstream's Maximum Packet Size".into());
                    client.close(Some(ReasonCode::PACKET_TOO_LARGE));
                    return;
                }
                let room = self.inflight.contains_key(&id)
                    || self.inflight.len() < usize::from(self.receive_maximum);
                if qos == QoS::AtMostOnce || room {
                    if qos != QoS::AtMostOnce {
                        self.inflight.insert(id, qos);
                    }
                    self.send(&packet);
                } else if let Packet::Publish(p) = packet {
                    self.held.push_back(p);
                    if self.held.len() > usize::from(self.settings.limits.receive_maximum) {
                        // More in flight than the gateway's CONNACK allowed.
                        self.upstream = Upstream::Closed;
                        self.cause = Some("client exceeded the Receive Maximum".into());
                        client.close(Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED));
                    }
                }
            }
            Packet::PubRel(r) if self.local_c2b.remove(&r.packet_id) => {
                client.deliver(Packet::PubComp(PubResponse::success(r.packet_id)));
            }
            Packet::Subscribe(s) => self.subscribe(s, client),
            other => self.send(&other),
        }
    }

    /// SUBSCRIBE through the ACL: refused filters get their code here, the
    /// others go up (capped at the QoS the ACL allows) and the SUBACK is merged.
    fn subscribe(&mut self, mut s: Subscribe, client: &mut Connection) {
        let denied = if self.client_version == ProtocolVersion::V5 {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::UNSPECIFIED_ERROR
        };
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut allowed = Vec::with_capacity(s.filters.len());
        for mut f in std::mem::take(&mut s.filters) {
            let cap = match &self.policy {
                Some(p) => p.can_subscribe(&self.principal, &self.client_id, &f.filter),
                None => Some(QoS::ExactlyOnce),
            };
            match cap {
                Some(cap) => {
                    f.options.qos = f.options.qos.min(cap);
                    allowed.push(f);
                    codes.push(None);
                }
                None => codes.push(Some(denied)),
            }
        }
        if allowed.is_empty() {
            client.deliver(Packet::SubAck(SubAck {
                packet_id: s.packet_id,
                reason_codes: codes.into_iter().flatten().collect(),
                properties: CompactProperties::new(),
            }));
            return;
        }
        if codes.iter().any(Option::is_some) {
            self.sub_codes.insert(s.packet_id, codes);
        }
        s.filters = allowed;
        self.send(&Packet::Subscribe(s));
    }

    /// Bytes from the upstream.
    pub fn upstream_receive(&mut self, data: &[u8], client: &mut Connection, now: Instant) {
        if self.upstream != Upstream::Up {
            return;
        }
        self.inbuf.extend_from_slice(data);
        self.process(client, now);
    }

    fn process(&mut self, client: &mut Connection, _now: Instant) {
        while self.upstream == Upstream::Up {
            match self.decoder.decode(&mut self.inbuf) {
                Ok(Some(packet)) => {
                    self.ping_since = None;
                    self.forward_down(packet, client);
                }
                Ok(None) => break,
                Err(e) => {
                    self.lost(client, &format!("malformed packet from the upstream: {e}"));
                    break;
                }
            }
        }
        if self.inbuf.is_empty() {
            self.inbuf = BytesMut::new();
        }
    }

    fn forward_down(&mut self, packet: Packet, client: &mut Connection) {
        match packet {
            Packet::Publish(p) => {
                let allowed = self
                    .policy
                    .as_ref()
                    .is_none_or(|pol| pol.can_receive(&self.principal, &self.client_id, &p.topic));
                if allowed {
                    client.deliver(Packet::Publish(p));
                    return;
                }
                match p.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => {
                        self.send(&Packet::PubAck(PubResponse::success(p.packet_id)))
                    }
                    QoS::ExactlyOnce => {
                        self.local_b2c.insert(p.packet_id);
                        self.send(&Packet::PubRec(PubResponse::success(p.packet_id)));
                    }
                }
            }
            Packet::PubRel(r) if self.local_b2c.remove(&r.packet_id) => {
                self.send(&Packet::PubComp(PubResponse::success(r.packet_id)));
            }
            Packet::PubRel(r) => client.deliver(Packet::PubRel(r)),
            Packet::PubAck(r) => {
                self.finished(r.packet_id);
                client.deliver(Packet::PubAck(r));
            }
            Packet::PubComp(r) => {
                self.finished(r.packet_id);
                client.deliver(Packet::PubComp(r));
            }
            Packet::PubRec(r) => {
                if r.reason_code.is_error() {
                    self.finished(r.packet_id);
                }
                client.deliver(Packet::PubRec(r));
            }
            Packet::SubAck(mut s) => {
                if let Some(codes) = self.sub_codes.remove(&s.packet_id) {
                    let mut upstream = std::mem::take(&mut s.reason_codes).into_iter();
                    s.reason_codes = codes
                        .into_iter()
                        .map(|c| {
                            c.or_else(|| upstream.next())
                                .unwrap_or(ReasonCode::UNSPECIFIED_ERROR)
                        })
                        .collect();
                }
                client.deliver(Packet::SubAck(s));
            }
            Packet::PingResp => {}
            Packet::Disconnect(d) => {
                self.upstream = Upstream::Closed;
                self.cause = Some(format!("upstream sent DISCONNECT {}", d.reason_code));
                let why = format!(
                    "gateway: the upstream broker disconnected with {}",
                    d.reason_code.name()
                );
                disconnect_client(client, d.reason_code, &why);
            }
            other @ Packet::UnsubAck(_) => client.deliver(other),
            other => self.lost(
                client,
                &format!(
                    "the upstream sent {} on a connection that is up",
                    other.name()
                ),
            ),
        }
    }

    /// A QoS 1/2 PUBLISH `id` is done upstream: one held back may go.
    fn finished(&mut self, id: u16) {
        if self.inflight.remove(&id).is_none() {
            return;
        }
        if let Some(p) = self.held.pop_front() {
            self.inflight.insert(p.packet_id, p.qos);
            self.send(&Packet::Publish(p));
        }
    }

    /// The upstream connection ended or broke: the client is disconnected.
    pub fn upstream_lost(&mut self, client: &mut Connection) {
        if self.upstream == Upstream::Up || self.upstream == Upstream::Opening {
            self.lost(client, "the upstream connection closed");
        }
    }

    fn lost(&mut self, client: &mut Connection, why: &str) {
        self.upstream = Upstream::Closed;
        self.cause = Some(why.to_owned());
        disconnect_client(
            client,
            ReasonCode::UNSPECIFIED_ERROR,
            &format!("gateway: {why}"),
        );
    }

    /// The client's connection ended; `disconnect` is its DISCONNECT, if it
    /// sent one. Returns true when a DISCONNECT was queued for the upstream
    /// (write it, then close); false means close without one, so that the
    /// upstream publishes the client's will.
    pub fn client_gone(&mut self, disconnect: Option<Disconnect>) -> bool {
        if self.upstream != Upstream::Up {
            return false;
        }
        self.upstream = Upstream::Closed;
        let Some(d) = disconnect else {
            return false;
        };
        if d.reason_code == ReasonCode::DISCONNECT_WITH_WILL
            && self.version == ProtocolVersion::V311
        {
            // 3.1.1 has no such DISCONNECT: a close without one publishes the will.
            return false;
        }
        let mut out = Disconnect::new(d.reason_code);
        if let Some(expiry) = d.properties.session_expiry_interval {
            out.properties.session_expiry_interval = Some(expiry);
        }
        self.send(&Packet::Disconnect(out));
        true
    }

    /// The next instant [`Self::poll`] must be called at (upstream keep-alive).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.upstream != Upstream::Up {
            return None;
        }
        let ka = self.keep_alive?;
        Some(match self.ping_since {
            Some(since) => since + ka,
            None => self.last_sent + ka,
        })
    }

    /// Keeps the upstream connection alive: PINGREQ after a keep-alive
    /// period without sending; the upstream is lost when a further period
    /// passes without a packet from it.
    pub fn poll(&mut self, now: Instant, client: &mut Connection) {
        let Some(deadline) = self.next_deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        if self.ping_since.is_some() {
            self.lost(client, "the upstream stopped answering (keep-alive)");
        } else {
            self.send(&Packet::PingReq);
            self.ping_since = Some(now);
        }
    }

    fn send(&mut self, packet: &Packet) {
        if self.upstream != Upstream::Up && !matches!(packet, Packet::Disconnect(_)) {
            return;
        }
        if let Err(e) = codec::encode(packet, self.version, &mut self.out) {
            tracing::warn!(packet = packet.name(), error = %e, "cannot encode for the upstream");
        }
    }
}

/// What a client is told when the upstream refuses the gateway's CONNECT,
/// and why. The client's own credentials were checked by the gateway, so a
/// refusal of the gateway's upstream account is the server's problem (0x88),
/// not the client's.
///
/// `per_client_login`: the upstream user name names the client (its template
/// has fields), so an authorisation refusal is about this client (0x87);
/// with one account for the whole gateway it is the gateway's (0x88).
/// Mosquitto answers a wrong password with 0x87, not 0x86: both are treated alike.
pub fn refusal_for_client(
    upstream: ReasonCode,
    per_client_login: bool,
) -> (ReasonCode, &'static str) {
    match upstream {
        ReasonCode::BAD_USER_NAME_OR_PASSWORD | ReasonCode::NOT_AUTHORIZED if per_client_login => (
            ReasonCode::NOT_AUTHORIZED,
            "the upstream does not accept this client's login",
        ),
        ReasonCode::BAD_USER_NAME_OR_PASSWORD | ReasonCode::NOT_AUTHORIZED => (
            ReasonCode::SERVER_UNAVAILABLE,
            "the upstream refused the gateway's credentials",
        ),
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => (
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            "the upstream refused the client id",
        ),
        ReasonCode::SERVER_BUSY
        | ReasonCode::BANNED
        | ReasonCode::QUOTA_EXCEEDED
        | ReasonCode::CONNECTION_RATE_EXCEEDED
        | ReasonCode::USE_ANOTHER_SERVER
        | ReasonCode::SERVER_MOVED => (upstream, "the upstream's answer, passed on"),
        _ => (
            ReasonCode::SERVER_UNAVAILABLE,
            "the upstream refused the gateway",
        ),
    }
}

/// DISCONNECT to a client that has its CONNACK (MQTT 5.0; a 3.1.1 client's
/// connection just closes), with a code a DISCONNECT may carry.
fn disconnect_client(client: &mut Connection, code: ReasonCode, why: &str) {
    let code = if crate::broker::connection::valid_in_disconnect(code) {
        code
    } else {
        ReasonCode::UNSPECIFIED_ERROR
    };
    let mut d = Disconnect::new(code);
    d.properties.reason_string = Some(why.to_owned());
    client.deliver(Packet::Disconnect(d));
}

#[cfg(test)]
mod tests;
