//! The sans-IO broker core: every MQTT side effect happens here, driven by
//! inputs from the server and answered with [`Output`]s.
//!
//! No clock, no IO: time comes in as the `now` arguments, so the core is
//! deterministic and can be driven by tests and fuzzers packet by packet.
//! This file holds CONNECT, takeover, the packet dispatch and timers;
//! `lifecycle` holds connection end, wills, session end and shutdown;
//! `routing` holds PUBLISH, SUBSCRIBE and delivery.
//!
//! Choices where the standard leaves room (each explained where it is made):
//! overlapping subscriptions deliver once per client (max QoS, all
//! identifiers); inbound QoS 2 is forwarded on receipt and its packet id kept
//! until PUBREL; clients may not publish to `$SYS/`; a full session queue
//! drops its oldest QoS 0 message first, else the new message; shared groups
//! prefer online members and hand a departing member's undelivered messages
//! on. Re-authentication is the connection's business (LWA2's key update,
//! `connection.rs`), never the core's: an AUTH reaching the core is a
//! protocol error. Not offered: Response Information, validation of UTF-8 payloads marked
//! with Payload Format Indicator 1 (passed through unchecked).

mod connack;
mod flow;
mod lifecycle;
mod persist;
mod restore;
mod routing;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_delivery;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_random;
#[cfg(test)]
mod tests_subscribe;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::auth::{AccessPolicy, Principal};
use crate::broker::limits::Limits;
use crate::codec::{
    topic, ConnAck, Connect, Disconnect, Packet, Properties, ProtocolVersion, QoS, ReasonCode,
};

use super::retained::RetainedStore;
use super::session::{Access, Link, Message, Session};
use super::stats::Stats;
use super::subscriptions::SubscriptionTree;
use super::sys::{SessionCounts, SysTopics};

/// Identifies one network connection for the lifetime of the server.
pub type ConnId = u64;

/// An authenticated CONNECT, handed to the core only once the client has
/// proved who it is (for LWA: after its Finished verified).
///
/// When `connack_sent` is true and the client sent an empty client id, the
/// server puts the id from [`BrokerCore::connack_preview`] (the one its
/// CONNACK announced) into `connect.client_id` before calling
/// [`BrokerCore::connect`].
pub struct ConnectRequest {
    /// The connection.
    pub conn: ConnId,
    /// The CONNECT as received.
    pub connect: Connect,
    /// Who the client is.
    pub principal: Principal,
    /// Access policy of the listener the client came in on.
    pub policy: Arc<dyn AccessPolicy>,
    /// Listener name, for `$SYS/` and logs.
    pub listener: String,
    /// True when CONNACK was already sent (enhanced auth with a further
    /// flight): the core must not send another one.
    pub connack_sent: bool,
    /// Authentication Method and Data to put in CONNACK (when the core sends it).
    pub connack_auth: Option<(String, Bytes)>,
    /// The Session Present flag of the CONNACK already sent, when the
    /// client authenticated it (LWA1 binds it into the handshake): the core
    /// must resume exactly when it said so, or close without side effect.
    pub signed_session_present: Option<bool>,
    /// Bytes that payload protection adds to every outgoing PUBLISH payload
    /// (LWA: 16), so that the client's Maximum Packet Size is honoured.
    pub payload_overhead: usize,
}

/// What CONNACK would say for a CONNECT, computed without side effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnackPreview {
    /// Session Present, as it would be sent.
    pub session_present: bool,
    /// Client id the core would assign (empty client id in CONNECT), if any.
    pub assigned_client_id: Option<String>,
}

/// What the core asks the server to do.
// Nearly every output is a `Send`; boxing the packet would add an allocation
// per message for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write this packet to the connection (in order).
    Send {
        /// Destination.
        conn: ConnId,
        /// The packet; PUBLISH payloads are plaintext and topics are full names.
        packet: Packet,
    },
    /// Close the connection, after sending DISCONNECT with this reason when
    /// the client speaks 5.0 and a reason is given.
    Close {
        /// The connection to close.
        conn: ConnId,
        /// DISCONNECT reason for a 5.0 client.
        reason: Option<ReasonCode>,
    },
    /// Stop reading from this publisher: a subscriber it feeds is behind
    /// (`flow`). Every `Pause` is followed by one `Resume` for the same
    /// connection, unless the connection closes first.
    Pause {
        /// The publisher's connection.
        conn: ConnId,
    },
    /// One reason to pause this publisher is gone.
    Resume {
        /// The publisher's connection.
        conn: ConnId,
    },
}

/// Timers kept in one ordered set so that `next_deadline` is O(log n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A delayed will is due.
    Will,
    /// An offline session expires.
    Expiry,
}

/// The outcome of CONNECT before anything changes.
struct ConnectPlan {
    client_id: String,
    assigned: bool,
    session_present: bool,
    expiry: u32,
    connack: ConnAck,
}

/// All broker state: sessions, subscriptions, retained messages, QoS state.
pub struct BrokerCore {
    limits: Limits,
    stats: Arc<Stats>,
    /// Boxed: an entry is then a key and a pointer (32 bytes), so the table's
    /// spare buckets (it doubles) cost 32 bytes each rather than a whole
    /// `Session` (measured with massif, experiments/README.md).
    sessions: HashMap<String, Box<Session>>,
    conns: HashMap<ConnId, String>,
    tree: SubscriptionTree,
    retained: RetainedStore,
    timers: BTreeSet<(Instant, Timer, String)>,
    sys: SysTopics,
    next_assigned: u64,
    /// Keys changed since the last persistence batch.
    journal: persist::Journal,
    /// Payload bytes queued for offline sessions, recounted at most once a
    /// second and only added to in between (so an over-estimate, never an
    /// under-estimate): what `Limits::max_queued_bytes_total` bounds.
    offline_bytes: usize,
    offline_bytes_recounted: Option<Instant>,
}

/// Pushes `packets` as sends to `conn`.
fn sends(out: &mut Vec<Output>, conn: ConnId, packets: Vec<Packet>) {
    out.extend(
        packets
            .into_iter()
            .map(|packet| Output::Send { conn, packet }),
    );
}

fn after(now: Instant, secs: u32) -> Option<Instant> {
    now.checked_add(Duration::from_secs(u64::from(secs)))
}

impl BrokerCore {
    /// A core with no sessions.
    pub fn new(limits: Limits, stats: Arc<Stats>, now: Instant) -> Self {
        BrokerCore {
            limits,
            stats,
            sessions: HashMap::new(),
            conns: HashMap::new(),
            tree: SubscriptionTree::new(),
            retained: RetainedStore::new(),
            timers: BTreeSet::new(),
            sys: SysTopics::new(now),
            next_assigned: 1,
            journal: persist::Journal::default(),
            offline_bytes: 0,
            offline_bytes_recounted: None,
        }
    }

    /// Publishes `$SYS/broker/...` every `interval` from `now` on (`None` or zero: never, the default).
    pub fn set_sys_interval(&mut self, interval: Option<Duration>, now: Instant) {
        self.sys.set_interval(interval, now);
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Shared counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Number of sessions (online and offline).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Every session, online or not (for persistence and diagnostics).
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values().map(|s| &**s)
    }

    /// The retained messages (for persistence and diagnostics).
    pub fn retained(&self) -> &RetainedStore {
        &self.retained
    }

    /// The client id attached to `conn`, if it completed CONNECT.
    pub fn client_id(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).map(String::as_str)
    }

    /// An authenticated client connects: takeover, clean start, session
    /// resumption, CONNACK (unless already sent), redelivery of queued and
    /// in-flight messages.
    pub fn connect(&mut self, req: ConnectRequest, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let conn = req.conn;
        let c = &req.connect;
        let claimant = req.principal.lwa_identity.as_deref();
        let plan = match self.plan(c, req.connack_auth.as_ref(), claimant) {
            Ok(p) => p,
            Err(code) => {
                if !req.connack_sent {
                    let packet = Packet::ConnAck(Box::new(ConnAck {
                        session_present: false,
                        reason_code: code,
                        properties: Properties::default(),
                    }));
                    out.push(Output::Send { conn, packet });
                }
                out.push(Output::Close { conn, reason: None });
                return out;
            }
        };
        if let Some(code) = self.foreign_session(&plan.client_id, &req.principal) {
            if req.connack_sent {
                out.push(Output::Close {
                    conn,
                    reason: Some(code),
                });
            } else {
                let packet = Packet::ConnAck(Box::new(ConnAck {
                    session_present: false,
                    reason_code: code,
                    properties: Properties::default(),
                }));
                out.push(Output::Send { conn, packet });
                out.push(Output::Close { conn, reason: None });
            }
            return out;
        }
        if let Some(signed) = req.signed_session_present {
            let would_resume = plan.session_present && self.sessions.contains_key(&plan.client_id);
            if would_resume != signed {
                // The session expired, was cleaned or created by another
                // connection between the preview and the client's finished:
                // the flag the client verified would now be a lie (issue 13).
                tracing::info!(
                    client_id = %plan.client_id,
                    signed,
                    "session changed during the handshake; closing instead of contradicting the authenticated CONNACK"
                );
                out.push(Output::Close {
                    conn,
                    reason: Some(ReasonCode::SESSION_TAKEN_OVER),
                });
                return out;
            }
        }
        if plan.assigned {
            self.next_assigned = self.assigned_id_candidate().1.wrapping_add(1);
        }
        // A connection id reused by the server without `disconnected` first.
        if self.conns.contains_key(&conn) {
            self.detach(conn, true, now, &mut out);
        }
        let cid = plan.client_id;
        let resume = plan.session_present && self.sessions.contains_key(&cid);
        let mut connack = plan.connack;
        connack.session_present = resume;

        // Takeover: the old connection ends as if its network failed; its will
        // follows MQTT 5.0 section 3.1.2.5 (sent unless delayed and the session resumes now).
        if let Some(old) = self.sessions.get(&cid).and_then(|s| s.conn()) {
            out.push(Output::Close {
                conn: old,
                reason: Some(ReasonCode::SESSION_TAKEN_OVER),
            });
            self.detach_keep_session(old, true, now, &mut out);
        }
        if resume {
            self.schedule(Timer::Expiry, &cid, None);
            self.schedule(Timer::Will, &cid, None);
            if let Some(s) = self.sessions.get_mut(&cid) {
                s.pending_will = None;
            }
        } else if self.sessions.contains_key(&cid) {
            self.end_session(&cid, now, &mut out);
        }
        let v5 = c.protocol_version == ProtocolVersion::V5;
        let client_receive_max = if v5 {
            c.properties.receive_maximum.unwrap_or(u16::MAX)
        } else {
            u16::MAX
        };
        let link = Link {
            conn,
            version: c.protocol_version,
            window: usize::from(client_receive_max.min(self.limits.max_inflight).max(1)),
            max_packet_size: if v5 {
                c.properties.maximum_packet_size
            } else {
                None
            },
            payload_overhead: req.payload_overhead,
            connect_expiry_zero: c.properties.session_expiry_interval.unwrap_or(0) == 0,
        };
        let session = self
            .sessions
            .entry(cid.clone())
            .or_insert_with(|| Box::new(Session::new(cid.clone(), plan.expiry)));
        session.expiry_interval = plan.expiry;
        session.link = Some(link);
        session.will = c.will.clone().map(Box::new);
        session.access = Some(Access {
            principal: req.principal,
            policy: req.policy,
            listener: req.listener,
        });
        self.conns.insert(conn, cid.clone());
        self.journal.session(&cid);
        if !req.connack_sent {
            out.push(Output::Send {
                conn,
                packet: Packet::ConnAck(Box::new(connack)),
            });
        }
        if let Some(s) = self.sessions.get_mut(&cid) {
            let packets = s.resume(now, &self.stats);
            sends(&mut out, conn, packets);
        }
        out
    }

    /// A packet from a connected client (after CONNECT), with inbound topic
    /// aliases resolved and protected payloads opened.
    pub fn packet(&mut self, conn: ConnId, packet: Packet, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(cid) = self.conns.get(&conn).cloned() else {
            return out;
        };
        self.journal.packet(&cid, &packet);
        match packet {
            Packet::Publish(p) => self.on_publish(conn, &cid, p, now, &mut out),
            Packet::PubAck(r) => {
                if let Some(s) = self.sessions.get_mut(&cid) {
                    let packets = s.on_puback(r.packet_id, now, &self.stats);
                    sends(&mut out, conn, packets);
                }
            }
            Packet::PubRec(r) => {
                if let Some(s) = self.sessions.get_mut(&cid) {
                    let error = r.reason_code.is_error();
                    let packets = s.on_pubrec(r.packet_id, error, now, &self.stats);
                    sends(&mut out, conn, packets);
                }
            }
            Packet::PubRel(r) => self.on_pubrel(conn, &cid, r.packet_id, &mut out),
            Packet::PubComp(r) => {
                if let Some(s) = self.sessions.get_mut(&cid) {
                    let packets = s.on_pubcomp(r.packet_id, now, &self.stats);
                    sends(&mut out, conn, packets);
                }
            }
            Packet::Subscribe(s) => self.on_subscribe(conn, &cid, s, now, &mut out),
            Packet::Unsubscribe(u) => self.on_unsubscribe(conn, &cid, u, &mut out),
            Packet::PingReq => out.push(Output::Send {
                conn,
                packet: Packet::PingResp,
            }),
            Packet::Disconnect(d) => {
                out.extend(self.disconnected(conn, Some(d), now));
                if !out
                    .iter()
                    .any(|o| matches!(o, Output::Close { conn: c, .. } if *c == conn))
                {
                    out.push(Output::Close { conn, reason: None });
                }
            }
            // A second CONNECT, packets only a server sends, and AUTH (the
            // connection answers LWA2's key update itself; nothing else re-authenticates).
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp
            | Packet::Auth(_) => self.fail(conn, ReasonCode::PROTOCOL_ERROR, now, &mut out),
        }
        // Acknowledgements drain the queue; publishers it paused may go on.
        self.release_flow(&cid, &mut out);
        out
    }

    /// Closes `conn` for a protocol violation; its will is published.
    fn fail(&mut self, conn: ConnId, reason: ReasonCode, now: Instant, out: &mut Vec<Output>) {
        out.push(Output::Close {
            conn,
            reason: Some(reason),
        });
        self.detach(conn, true, now, out);
    }

    /// The connection ended: `disconnect` is the client's DISCONNECT if it
    /// sent one (no will unless its reason is 0x04), `None` for a network
    /// error, keep-alive timeout or protocol error (will is published).
    pub fn disconnected(
        &mut self,
        conn: ConnId,
        disconnect: Option<Disconnect>,
        now: Instant,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(cid) = self.conns.get(&conn).cloned() else {
            return out;
        };
        self.journal.session(&cid);
        let Some(d) = disconnect else {
            self.detach(conn, true, now, &mut out);
            return out;
        };
        let cap = self.limits.max_session_expiry;
        if let Some(s) = self.sessions.get_mut(&cid) {
            let link = s.link.as_ref();
            let v5 = link.is_some_and(|l| l.version == ProtocolVersion::V5);
            let was_zero = link.is_some_and(|l| l.connect_expiry_zero);
            if let (true, Some(new)) = (v5, d.properties.session_expiry_interval) {
                if was_zero && new != 0 {
                    // Not a valid DISCONNECT (MQTT 5.0 section 3.14.2.2.2).
                    self.fail(conn, ReasonCode::PROTOCOL_ERROR, now, &mut out);
                    return out;
                }
                s.expiry_interval = new.min(cap);
            }
        }
        let will = d.reason_code == ReasonCode::DISCONNECT_WITH_WILL;
        self.detach(conn, will, now, &mut out);
        out
    }

    /// Publishes a message made by the broker itself (`$SYS/`, notices from
    /// the server); subscribers' access policies still apply.
    pub fn internal_publish(
        &mut self,
        topic_name: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        now: Instant,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if topic::validate_topic_name(topic_name).is_err() {
            return out;
        }
        let retain = retain && self.limits.retain_available;
        let props = Properties::default();
        let message = Message::new(
            topic_name.to_owned(),
            payload,
            qos,
            retain,
            &props,
            None,
            now,
        );
        self.publish_message(message, now, &mut out);
        out
    }

    /// Time passes: will delays, session and message expiry, `$SYS/` updates.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some((at, kind, cid)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, kind, cid.clone()));
            match kind {
                Timer::Will => {
                    let will = self.sessions.get_mut(&cid).and_then(|s| {
                        s.will_due = None;
                        s.pending_will.take()
                    });
                    if let Some(will) = will {
                        self.publish_will(&cid, will, now, &mut out);
                    }
                }
                Timer::Expiry => {
                    let offline = self.sessions.get(&cid).is_some_and(|s| s.link.is_none());
                    if let Some(s) = self.sessions.get_mut(&cid) {
                        s.expires_at = None;
                    }
                    if offline {
                        self.end_session(&cid, now, &mut out);
                    }
                }
            }
        }
        if !self.sys.is_due(now) {
            return out;
        }
        self.retained.purge_expired(now);
        let counts = self.session_counts();
        let updates = self.sys.due(now, &self.stats, counts);
        for (t, value) in updates {
            out.extend(self.internal_publish(&t, Bytes::from(value), QoS::AtMostOnce, true, now));
        }
        out
    }

    fn session_counts(&self) -> SessionCounts {
        let connected = self.conns.len() as u64;
        SessionCounts {
            connected,
            disconnected: (self.sessions.len() as u64).saturating_sub(connected),
            retained: self.retained.len() as u64,
            subscriptions: self
                .sessions
                .values()
                .map(|s| s.subscriptions.len() as u64)
                .sum(),
        }
    }

    /// When the next [`Self::tick`] has something to do, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.first().map(|(t, _, _)| *t);
        match (timer, self.sys.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
