//! Per-session QoS state: the outbound in-flight window, packet identifiers,
//! the queue of messages waiting for the window or for the client to come
//! back, and inbound QoS 2 packet identifiers awaiting PUBREL.
//!
//! Everything here is plain data (no IO, no clock, no shared pointers besides
//! immutable `Arc<Message>` bodies), so a session can be serialized later.
//!
//! Queue drop policy (documented in `Limits::max_queued_messages`): when the
//! queue is full, expired messages are purged first; then the oldest queued
//! QoS 0 message is dropped to make room; if there is none, the new message
//! is dropped. The same holds for payload bytes (`Limits::
//! max_queued_bytes_per_session`): while the new message would not fit, the
//! oldest queued QoS 0 message goes, and if none is left the new message is
//! dropped. Every drop is counted in `Stats::messages_dropped`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::auth::{AccessPolicy, Principal};
use crate::codec::{
    check_max_packet, CompactProperties, LastWill, Packet, Properties, ProtocolVersion,
    PubResponse, Publish, QoS,
};

use super::core::ConnId;
use super::delivery_queue::DeliveryQueue;
use super::stats::{DropReason, Stats};
use super::subscriptions::SubscriptionEntry;

/// An application message as the broker holds it between receipt and delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name.
    pub topic: String,
    /// Payload (plaintext).
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// RETAIN flag it was published with.
    pub retain: bool,
    /// Properties passed through to subscribers (no alias, no subscription
    /// identifiers, no expiry: those are per delivery).
    pub properties: CompactProperties,
    /// When the message expires (Message Expiry Interval counted from receipt).
    pub expires_at: Option<Instant>,
    /// Publishing client id, for No Local; `None` for broker-made messages.
    pub publisher: Option<String>,
}

impl Message {
    /// A message from a received PUBLISH (or a will), keeping only the
    /// properties that travel to subscribers.
    pub fn new(
        topic: String,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        props: &Properties,
        publisher: Option<String>,
        now: Instant,
    ) -> Message {
        let passed_on = props.payload_format_indicator.is_some()
            || props.content_type.is_some()
            || props.response_topic.is_some()
            || props.correlation_data.is_some()
            || !props.user_properties.is_empty();
        let properties = if passed_on {
            CompactProperties::from(Properties {
                payload_format_indicator: props.payload_format_indicator,
                content_type: props.content_type.clone(),
                response_topic: props.response_topic.clone(),
                correlation_data: props.correlation_data.clone(),
                user_properties: props.user_properties.clone(),
                ..Properties::default()
            })
        } else {
            CompactProperties::new()
        };
        let expires_at = props
            .message_expiry_interval
            .and_then(|s| now.checked_add(Duration::from_secs(u64::from(s))));
        Message {
            topic,
            payload,
            qos,
            retain,
            properties,
            expires_at,
            publisher,
        }
    }

    /// True once the Message Expiry Interval has passed.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// Seconds left of the Message Expiry Interval, rounded up (what a
    /// forwarded PUBLISH carries).
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|t| {
            let left = t.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }
}

/// One message on its way to one session, with what its subscriptions decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message.
    pub message: Arc<Message>,
    /// QoS for this delivery: min(published, granted).
    pub qos: QoS,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Subscription Identifiers of the matching subscriptions (5.0).
    pub subscription_ids: Vec<u32>,
    /// The `$share/...` subscription that chose this session, if any (so the
    /// message can go to another member if this session ends undelivered).
    pub share: Option<String>,
}

/// Where an outbound QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundState {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    AwaitPubAck,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    AwaitPubRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitPubComp,
}

/// An outbound message holding a packet identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inflight {
    /// The PUBLISH as sent (resent with DUP=1 on reconnect).
    pub publish: Publish,
    /// Progress of the exchange.
    pub state: OutboundState,
    /// For a message chosen by a shared subscription: the group and the
    /// message, to hand to another member if this session ends first.
    pub shared: Option<(String, Arc<Message>)>,
}

/// The connection a session is currently attached to and its negotiated limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The connection.
    pub conn: ConnId,
    /// Protocol version of the connection.
    pub version: ProtocolVersion,
    /// Outbound in-flight window: min(client Receive Maximum, limits.max_inflight), at least 1.
    pub window: usize,
    /// Client's Maximum Packet Size, if it set one.
    pub max_packet_size: Option<u32>,
    /// Bytes payload protection adds to each outgoing PUBLISH.
    pub payload_overhead: usize,
    /// Session Expiry Interval in CONNECT was 0 (DISCONNECT may then not raise it).
    pub connect_expiry_zero: bool,
}

impl Link {
    /// Whether `packet`, protected as this connection protects it, is within
    /// the client's Maximum Packet Size ([`crate::codec::check_max_packet`]).
    pub fn fits(&self, packet: &Packet) -> bool {
        check_max_packet(
            packet,
            self.version,
            self.payload_overhead,
            self.max_packet_size.map(|m| m as usize),
        )
        .is_ok()
    }
}

/// Who a session belongs to, for authorisation of its deliveries and will.
#[derive(Clone)]
pub struct Access {
    /// The authenticated principal of the last connection.
    pub principal: Principal,
    /// Access policy of the listener it came in on.
    pub policy: Arc<dyn AccessPolicy>,
    /// That listener's name (to find the policy again after a restore).
    pub listener: String,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("principal", &self.principal)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

/// What [`Session::offer`] did with a delivery.
#[derive(Debug, Default)]
pub struct Offered {
    /// Packets to send now.
    pub packets: Vec<Packet>,
    /// The durable part of the session (QoS 1/2 queue or in-flight window)
    /// changed: the caller journals the session for persistence.
    pub durable_changed: bool,
}

/// What happened to a message offered to the window.
// Short-lived return value; boxing `Sent` would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
enum Attempt {
    Sent(Publish),
    Blocked(Delivery),
    Dropped,
}

/// One client's session state.
#[derive(Debug, Clone)]
pub struct Session {
    /// Client identifier.
    pub client_id: String,
    /// Subscriptions by the filter text as subscribed (`$share/...` included).
    pub subscriptions: BTreeMap<String, SubscriptionEntry>,
    /// Session Expiry Interval in seconds; `u32::MAX` never expires.
    pub expiry_interval: u32,
    /// Outbound QoS 1/2 messages holding packet identifiers, in send order.
    pub inflight: VecDeque<Inflight>,
    /// Packet identifiers held by `inflight` (an index, so that allocation
    /// stays cheap with large windows); rebuilt with [`Self::reindex`].
    in_use: BTreeSet<u16>,
    /// Messages waiting for the window or for the client to reconnect.
    pub queue: DeliveryQueue,
    /// Inbound QoS 2 packet identifiers for which PUBREC was sent and PUBREL not yet received.
    pub inbound_qos2: BTreeSet<u16>,
    /// Next candidate outbound packet identifier.
    pub next_packet_id: u16,
    /// The attached connection, if online.
    pub link: Option<Link>,
    /// When the session expires (set while offline).
    pub expires_at: Option<Instant>,
    /// Authorisation context of the last connection.
    pub access: Option<Access>,
    /// Will of the attached connection (boxed: most clients set none, and
    /// the broker's session map holds every `Session` inline).
    pub will: Option<Box<LastWill>>,
    /// A will waiting for its Will Delay Interval after the connection ended.
    pub pending_will: Option<Box<LastWill>>,
    /// When `pending_will` is due.
    pub will_due: Option<Instant>,
    /// Publishers' connections paused because this session's queue backed up
    /// while it was online (see `core::flow`); not persisted.
    pub throttled: BTreeSet<ConnId>,
}

impl Session {
    /// A fresh session.
    pub fn new(client_id: String, expiry_interval: u32) -> Session {
        Session {
            client_id,
            subscriptions: BTreeMap::new(),
            expiry_interval,
            inflight: VecDeque::new(),
            in_use: BTreeSet::new(),
            queue: DeliveryQueue::new(),
            inbound_qos2: BTreeSet::new(),
            next_packet_id: 1,
            link: None,
            expires_at: None,
            access: None,
            will: None,
            pending_will: None,
            will_due: None,
            throttled: BTreeSet::new(),
        }
    }

    /// Payload bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// The attached connection, if any.
    pub fn conn(&self) -> Option<ConnId> {
        self.link.as_ref().map(|l| l.conn)
    }

    fn allocate_packet_id(&mut self) -> Option<u16> {
        // At most 65535 identifiers exist; a full scan finds a free one if any.
        for _ in 0..u16::MAX {
            let id = self.next_packet_id;
            self.next_packet_id = if id == u16::MAX { 1 } else { id + 1 };
            if id != 0 && !self.in_use.contains(&id) {
                return Some(id);
            }
        }
        None
    }

    /// Builds the PUBLISH for `d` as it would go to this link (packet id 0).
    fn build(d: &Delivery, link: &Link, now: Instant) -> Publish {
        let properties = match link.version {
            ProtocolVersion::V311 => CompactProperties::new(),
            ProtocolVersion::V5 => {
                // Written only when set, so that the usual message (no
                // expiry, no subscription identifier) allocates nothing.
                let mut p = d.message.properties.clone();
                let expiry = d.message.remaining_expiry(now);
                if p.message_expiry_interval != expiry {
                    p.message_expiry_interval = expiry;
                }
                if p.subscription_identifiers != d.subscription_ids {
                    p.subscription_identifiers.clone_from(&d.subscription_ids);
                }
                p
            }
        };
        Publish {
            dup: false,
            qos: d.qos,
            retain: d.retain,
            topic: d.message.topic.clone(),
            packet_id: 0,
            properties,
            payload: d.message.payload.clone(),
        }
    }

    fn attempt(&mut self, d: Delivery, now: Instant, stats: &Stats) -> Attempt {
        let Some(link) = self.link.as_ref() else {
            return Attempt::Blocked(d);
        };
        if d.message.is_expired(now) {
            return Attempt::Dropped;
        }
        if d.qos != QoS::AtMostOnce && self.inflight.len() >= link.window {
            return Attempt::Blocked(d);
        }
        let mut publish = Self::build(&d, link, now);
        if d.qos != QoS::AtMostOnce {
            // Any non-zero id has the same encoded size.
            publish.packet_id = 1;
        }
        if link.max_packet_size.is_some() {
            let packet = Packet::Publish(publish);
            let fits = link.fits(&packet);
            match packet {
                Packet::Publish(p) if fits => publish = p,
                _ => {
                    stats.dropped(DropReason::TooLarge);
                    return Attempt::Dropped;
                }
            }
        }
        if d.qos == QoS::AtMostOnce {
            Stats::add(&stats.messages_sent, 1);
            return Attempt::Sent(publish);
        }
        let Some(id) = self.allocate_packet_id() else {
            return Attempt::Blocked(d);
        };
        publish.packet_id = id;
        let state = if d.qos == QoS::AtLeastOnce {
            OutboundState::AwaitPubAck
        } else {
            OutboundState::AwaitPubRec
        };
        let shared = d.share.map(|g| (g, d.message));
        self.in_use.insert(id);
        self.inflight.push_back(Inflight {
            publish: publish.clone(),
            state,
            shared,
        });
        Stats::add(&stats.messages_sent, 1);
        Attempt::Sent(publish)
    }

    /// Offers a delivery: sent now if online and the window allows (and
    /// nothing is queued ahead of it), queued otherwise. Returns the packets
    /// to send and whether the session's durable state (QoS 1/2 queue or
    /// in-flight window) changed, which the caller must journal.
    pub fn offer(
        &mut self,
        d: Delivery,
        now: Instant,
        max_queued: usize,
        stats: &Stats,
    ) -> Offered {
        self.offer_bounded(d, now, max_queued, usize::MAX, stats)
    }

    /// As [`Self::offer`], with the queue also bounded to `max_bytes` of payload.
    pub fn offer_bounded(
        &mut self,
        d: Delivery,
        now: Instant,
        max_queued: usize,
        max_bytes: usize,
        stats: &Stats,
    ) -> Offered {
        let durable = d.qos != QoS::AtMostOnce;
        if self.link.is_some() && self.queue.is_empty() {
            match self.attempt(d, now, stats) {
                Attempt::Sent(p) => {
                    return Offered {
                        packets: vec![Packet::Publish(p)],
                        durable_changed: durable,
                    }
                }
                Attempt::Dropped => return Offered::default(),
                Attempt::Blocked(d) => {
                    let purged = self.enqueue(d, now, (max_queued, max_bytes), stats);
                    return Offered {
                        packets: Vec::new(),
                        durable_changed: durable || purged,
                    };
                }
            }
        }
        let purged = self.enqueue(d, now, (max_queued, max_bytes), stats);
        Offered {
            packets: Vec::new(),
            durable_changed: durable || purged,
        }
    }

    /// Appends to the queue following the drop policy in the module doc.
    /// Returns whether a durable (QoS 1/2) entry already queued was removed
    /// on the way (an expired one purged to make room), so that the stored
    /// session is rewritten even when the new delivery itself is QoS 0.
    fn enqueue(
        &mut self,
        d: Delivery,
        now: Instant,
        (max_queued, max_bytes): (usize, usize),
        stats: &Stats,
    ) -> bool {
        let mut durable_removed = false;
        let size = d.message.payload.len();
        let over =
            |q: &DeliveryQueue| q.len() >= max_queued || q.bytes().saturating_add(size) > max_bytes;
        if over(&self.queue) {
            self.queue.retain(|q| {
                let keep = !q.message.is_expired(now);
                durable_removed |= !keep && q.qos != QoS::AtMostOnce;
                keep
            });
        }
        while over(&self.queue) {
            match self.queue.iter().position(|q| q.qos == QoS::AtMostOnce) {
                Some(i) if size <= max_bytes => {
                    self.queue.remove(i);
                    stats.dropped(DropReason::QueueFull);
                }
                _ => {
                    stats.dropped(DropReason::QueueFull);
                    tracing::debug!(
                        client_id = %self.client_id,
                        size,
                        "queue full (messages or bytes): message dropped"
                    );
                    return durable_removed;
                }
            }
        }
        self.queue.push_back(d);
        durable_removed
    }

    /// Sends queued messages while the window allows, in order.
    pub fn pump(&mut self, now: Instant, stats: &Stats) -> Vec<Packet> {
        let mut out = Vec::new();
        while self.link.is_some() {
            let Some(d) = self.queue.pop_front() else {
                break;
            };
            match self.attempt(d, now, stats) {
                Attempt::Sent(p) => out.push(Packet::Publish(p)),
                Attempt::Dropped => {}
                Attempt::Blocked(d) => {
                    self.queue.push_front(d);
                    break;
                }
            }
        }
        out
    }

    fn position(&self, id: u16, state: OutboundState) -> Option<usize> {
        self.inflight
            .iter()
            .position(|f| f.publish.packet_id == id && f.state == state)
    }

    fn remove_inflight(&mut self, i: usize) {
        if let Some(f) = self.inflight.remove(i) {
            self.in_use.remove(&f.publish.packet_id);
        }
    }

    /// Rebuilds the packet-identifier index from `inflight` (after the
    /// in-flight list was changed wholesale, e.g. restored from storage).
    pub fn reindex(&mut self) {
        self.in_use = self.inflight.iter().map(|f| f.publish.packet_id).collect();
    }

    /// True when the identifier index matches `inflight` (for invariant tests).
    #[cfg(test)]
    pub(crate) fn index_consistent(&self) -> bool {
        let ids: BTreeSet<u16> = self.inflight.iter().map(|f| f.publish.packet_id).collect();
        ids == self.in_use && ids.len() == self.inflight.len()
    }

    /// PUBACK from the client: frees the identifier and refills the window.
    pub fn on_puback(&mut self, id: u16, now: Instant, stats: &Stats) -> Vec<Packet> {
        match self.position(id, OutboundState::AwaitPubAck) {
            Some(i) => {
                self.remove_inflight(i);
                self.pump(now, stats)
            }
            None => Vec::new(),
        }
    }

    /// PUBREC from the client: answers PUBREL, or ends the exchange on an error reason.
    pub fn on_pubrec(&mut self, id: u16, error: bool, now: Instant, stats: &Stats) -> Vec<Packet> {
        match self.position(id, OutboundState::AwaitPubRec) {
            Some(i) if error => {
                self.remove_inflight(i);
                self.pump(now, stats)
            }
            Some(i) => {
                if let Some(f) = self.inflight.get_mut(i) {
                    f.state = OutboundState::AwaitPubComp;
                }
                vec![Packet::PubRel(PubResponse::success(id))]
            }
            None if error => Vec::new(),
            // A PUBREC we already answered (duplicate) gets the same PUBREL;
            // an unknown one is told so (5.0), per MQTT 5.0 section 4.3.3.
            None => {
                let mut rel = PubResponse::success(id);
                if self.position(id, OutboundState::AwaitPubComp).is_none()
                    && self.link.as_ref().map(|l| l.version) == Some(ProtocolVersion::V5)
                {
                    rel.reason_code = crate::codec::ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
                }
                vec![Packet::PubRel(rel)]
            }
        }
    }

    /// PUBCOMP from the client: the QoS 2 exchange is over.
    pub fn on_pubcomp(&mut self, id: u16, now: Instant, stats: &Stats) -> Vec<Packet> {
        match self.position(id, OutboundState::AwaitPubComp) {
            Some(i) => {
                self.remove_inflight(i);
                self.pump(now, stats)
            }
            None => Vec::new(),
        }
    }

    /// Messages chosen for this session by shared subscriptions that it has
    /// not received yet: queued ones, and QoS 1 ones in flight (MQTT 5.0
    /// section 4.8.2: they should go to another member when this session
    /// ends; QoS 2 ones are not, so as not to risk a second delivery).
    /// Removes them from the session.
    pub fn take_undelivered_shared(&mut self) -> Vec<(String, Arc<Message>)> {
        let mut out = Vec::new();
        for f in std::mem::take(&mut self.inflight) {
            match f.shared {
                Some(shared) if f.state == OutboundState::AwaitPubAck => out.push(shared),
                shared => self.inflight.push_back(Inflight { shared, ..f }),
            }
        }
        for d in std::mem::take(&mut self.queue) {
            match d.share {
                Some(g) => out.push((g, d.message)),
                None => self.queue.push_back(d),
            }
        }
        self.reindex();
        out
    }

    /// After (re)attaching a connection: resend unacknowledged PUBLISH with
    /// DUP=1 and PUBREL, in their original order, then queued messages.
    ///
    /// Every in-flight message is resent even when the client now announces
    /// a smaller Receive Maximum (its identifiers are already in use); no new
    /// message is sent until the window has room again. A PUBLISH that no
    /// longer fits the client's Maximum Packet Size is dropped and counted.
    pub fn resume(&mut self, now: Instant, stats: &Stats) -> Vec<Packet> {
        let Some(link) = self.link.clone() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut kept = VecDeque::with_capacity(self.inflight.len());
        for f in std::mem::take(&mut self.inflight) {
            if f.state == OutboundState::AwaitPubComp {
                out.push(Packet::PubRel(PubResponse::success(f.publish.packet_id)));
                kept.push_back(f);
                continue;
            }
            let mut p = f.publish.clone();
            p.dup = true;
            if link.version == ProtocolVersion::V311 {
                p.properties = CompactProperties::new();
            }
            let packet = Packet::Publish(p);
            if !link.fits(&packet) {
                stats.dropped(DropReason::TooLarge);
                continue;
            }
            Stats::add(&stats.messages_sent, 1);
            out.push(packet);
            kept.push_back(f);
        }
        self.inflight = kept;
        self.reindex();
        out.extend(self.pump(now, stats));
        out
    }
}

#[cfg(test)]
mod tests;
