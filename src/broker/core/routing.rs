//! PUBLISH in, SUBSCRIBE / UNSUBSCRIBE, and routing messages to sessions.
//!
//! Overlapping subscriptions: when several non-shared subscriptions of one
//! client match a message, the client gets it **once** (MQTT 5.0 section
//! 3.3.4 allows either), with the highest granted QoS of those
//! subscriptions, every one of their Subscription Identifiers, and the
//! RETAIN flag kept if any of them has Retain As Published. A No Local
//! subscription drops out of that set for the client's own messages. Shared
//! subscriptions are delivered independently of non-shared ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{
    topic, Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, RetainHandling, SubAck,
    Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};

use super::super::session::{Delivery, Message};
use super::super::stats::Stats;
use super::super::subscriptions::{Hit, SharedHit, SubscriptionEntry};
use super::{sends, BrokerCore, ConnId, Output};

/// What the matching subscriptions of one client decided for one message.
#[derive(Default)]
struct Combined {
    qos: Option<QoS>,
    ids: Vec<u32>,
    retain_as_published: bool,
}

/// Topics clients may not publish to: the broker's own `$SYS/` tree.
fn reserved(topic_name: &str) -> bool {
    topic_name == "$SYS" || topic_name.starts_with("$SYS/")
}

impl BrokerCore {
    fn version_of(&self, cid: &str) -> ProtocolVersion {
        self.sessions
            .get(cid)
            .and_then(|s| s.link.as_ref())
            .map_or(ProtocolVersion::V5, |l| l.version)
    }

    pub(super) fn on_publish(
        &mut self,
        conn: ConnId,
        cid: &str,
        p: Publish,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        Stats::add(&self.stats.messages_received, 1);
        let v5 = self.version_of(cid) == ProtocolVersion::V5;
        if topic::validate_topic_name(&p.topic).is_err() {
            return self.fail(conn, ReasonCode::TOPIC_NAME_INVALID, now, out);
        }
        // MQTT 5.0 section 3.3.4: a client never sends Subscription Identifiers.
        let client_sub_ids = !p.properties.subscription_identifiers.is_empty();
        if (p.qos != QoS::AtMostOnce && p.packet_id == 0) || client_sub_ids {
            return self.fail(conn, ReasonCode::PROTOCOL_ERROR, now, out);
        }
        if p.retain && !self.limits.retain_available && v5 {
            return self.fail(conn, ReasonCode::RETAIN_NOT_SUPPORTED, now, out);
        }
        let Some(session) = self.sessions.get(cid) else {
            return;
        };
        if p.qos == QoS::ExactlyOnce {
            if session.inbound_qos2.contains(&p.packet_id) {
                // A retransmission of a message already delivered (method B
                // of MQTT 5.0 figure 4.3): acknowledge again, do not forward.
                let packet = Packet::PubRec(PubResponse::success(p.packet_id));
                out.push(Output::Send { conn, packet });
                return;
            }
            if v5 && session.inbound_qos2.len() >= usize::from(self.limits.receive_maximum.max(1)) {
                return self.fail(conn, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED, now, out);
            }
        }
        let allowed = !reserved(&p.topic)
            && session
                .access
                .as_ref()
                .is_none_or(|a| a.policy.can_publish(&a.principal, cid, &p.topic));
        let code = if allowed || !v5 {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::NOT_AUTHORIZED
        };
        let ack = PubResponse {
            reason_code: code,
            ..PubResponse::success(p.packet_id)
        };
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => out.push(Output::Send {
                conn,
                packet: Packet::PubAck(ack),
            }),
            QoS::ExactlyOnce => {
                if !code.is_error() {
                    if let Some(s) = self.sessions.get_mut(cid) {
                        s.inbound_qos2.insert(p.packet_id);
                    }
                }
                out.push(Output::Send {
                    conn,
                    packet: Packet::PubRec(ack),
                });
            }
        }
        if !allowed {
            return;
        }
        let retain = p.retain && self.limits.retain_available;
        let message = Message::new(
            p.topic,
            p.payload,
            p.qos,
            retain,
            &p.properties,
            Some(cid.to_owned()),
            now,
        );
        self.publish_message(message, now, out);
    }

    pub(super) fn on_pubrel(&mut self, conn: ConnId, cid: &str, id: u16, out: &mut Vec<Output>) {
        let v5 = self.version_of(cid) == ProtocolVersion::V5;
        let known = self
            .sessions
            .get_mut(cid)
            .is_some_and(|s| s.inbound_qos2.remove(&id));
        let mut comp = PubResponse::success(id);
        if !known && v5 {
            comp.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        }
        out.push(Output::Send {
            conn,
            packet: Packet::PubComp(comp),
        });
    }

    /// Stores a retained message (if flagged) and routes it to subscribers.
    pub(super) fn publish_message(
        &mut self,
        message: Message,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let message = Arc::new(message);
        if message.retain {
            self.journal.retained(&message.topic);
            self.retained.apply(Arc::clone(&message));
        }
        self.route(&message, now, out);
    }

    fn route(&mut self, message: &Arc<Message>, now: Instant, out: &mut Vec<Output>) {
        let matches = self.tree.matches(&message.topic);
        let mut per_client: BTreeMap<String, Combined> = BTreeMap::new();
        for Hit { client_id, entry } in matches.normal {
            let opts = entry.options;
            if opts.no_local && message.publisher.as_deref() == Some(client_id.as_str()) {
                continue;
            }
            let c = per_client.entry(client_id).or_default();
            c.qos = Some(c.qos.map_or(opts.qos, |q| q.max(opts.qos)));
            c.ids.extend(entry.identifier);
            c.retain_as_published |= opts.retain_as_published;
        }
        for (cid, c) in per_client {
            let Some(granted) = c.qos else { continue };
            let delivery = Delivery {
                message: Arc::clone(message),
                qos: message.qos.min(granted),
                retain: message.retain && c.retain_as_published,
                subscription_ids: c.ids,
                share: None,
            };
            self.deliver(&cid, delivery, now, out);
        }
        for group in matches.shared {
            self.deliver_shared(group, message, now, out);
        }
    }

    /// Gives a message to one member of a shared group, round robin.
    pub(super) fn deliver_shared(
        &mut self,
        group: SharedHit,
        message: &Arc<Message>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(chosen) = self.pick_member(&group.members, group.cursor, &message.topic) else {
            return;
        };
        let n = group.members.len();
        self.tree.advance_shared(&group.share, (chosen + 1) % n);
        let Some(hit) = group.members.get(chosen) else {
            return;
        };
        let delivery = Delivery {
            message: Arc::clone(message),
            qos: message.qos.min(hit.entry.options.qos),
            retain: message.retain && hit.entry.options.retain_as_published,
            subscription_ids: hit.entry.identifier.into_iter().collect(),
            share: Some(group.share.clone()),
        };
        self.deliver(&hit.client_id, delivery, now, out);
    }

    /// Round robin over a shared group: the next member (from `cursor`) that
    /// is online and may receive the topic; failing that, the next one whose
    /// (offline) session may receive it, so the message waits in its queue.
    fn pick_member(&self, members: &[Hit], cursor: usize, topic_name: &str) -> Option<usize> {
        let n = members.len();
        let may = |i: usize, need_online: bool| {
            let Some(hit) = members.get(i) else {
                return false;
            };
            let Some(s) = self.sessions.get(&hit.client_id) else {
                return false;
            };
            (!need_online || s.link.is_some())
                && s.access.as_ref().is_none_or(|a| {
                    a.policy
                        .can_receive(&a.principal, &hit.client_id, topic_name)
                })
        };
        let order = (0..n).map(|k| (cursor + k) % n);
        order
            .clone()
            .find(|&i| may(i, true))
            .or_else(|| order.clone().find(|&i| may(i, false)))
    }

    /// True when `size` more bytes would take the offline queues over
    /// `max_queued_bytes_total` (recounting them first if a second has passed).
    fn offline_bytes_over(&mut self, now: Instant, size: usize) -> bool {
        let stale = self
            .offline_bytes_recounted
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
        if stale {
            self.offline_bytes = self
                .sessions
                .values()
                .filter(|s| s.link.is_none())
                .flat_map(|s| s.queue.iter())
                .map(|d| d.message.payload.len())
                .sum();
            self.offline_bytes_recounted = Some(now);
        }
        self.offline_bytes.saturating_add(size) > self.limits.max_queued_bytes_total
    }

    /// Hands a delivery to a session after the receive check.
    fn deliver(&mut self, cid: &str, delivery: Delivery, now: Instant, out: &mut Vec<Output>) {
        let source = self.source_conn(delivery.message.publisher.as_deref());
        let max_queued = self.limits.max_queued_messages;
        let Some(s) = self.sessions.get_mut(cid) else {
            return;
        };
        // Online, publishers are paused long before this (`flow`); the
        // larger limit leaves room for what they had already sent.
        let max_queued = if s.link.is_some() {
            super::flow::online_queue_limit(max_queued)
        } else {
            max_queued
        };
        if let Some(a) = &s.access {
            if !a
                .policy
                .can_receive(&a.principal, cid, &delivery.message.topic)
            {
                return;
            }
        }
        let offline = s.link.is_none();
        let size = delivery.message.payload.len();
        if offline && self.offline_bytes_over(now, size) {
            Stats::add(&self.stats.messages_dropped, 1);
            tracing::debug!(
                client_id = cid,
                size,
                "max_queued_bytes_total reached: message for an offline session dropped"
            );
            return;
        }
        let Some(s) = self.sessions.get_mut(cid) else {
            return;
        };
        let max_bytes = if offline {
            self.limits.max_queued_bytes_per_session
        } else {
            super::flow::online_queue_limit(self.limits.max_queued_bytes_per_session)
        };
        let offered = s.offer_bounded(delivery, now, max_queued, max_bytes, &self.stats);
        if offline {
            self.offline_bytes = self.offline_bytes.saturating_add(size);
        }
        if offered.durable_changed {
            self.journal.session(cid);
        }
        if let Some(conn) = s.conn() {
            sends(out, conn, offered.packets);
        }
        self.throttle_if_backed_up(cid, source, out);
    }

    pub(super) fn on_subscribe(
        &mut self,
        conn: ConnId,
        cid: &str,
        sub: Subscribe,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let v5 = self.version_of(cid) == ProtocolVersion::V5;
        let shared_no_local = sub
            .filters
            .iter()
            .any(|f| f.options.no_local && matches!(topic::parse_shared(&f.filter), Ok(Some(_))));
        if v5 && shared_no_local {
            // MQTT 5.0 section 3.8.3.1: a Protocol Error.
            return self.fail(conn, ReasonCode::PROTOCOL_ERROR, now, out);
        }
        let identifier = if v5 {
            sub.properties.subscription_identifiers.first().copied()
        } else {
            None
        };
        let access = self.sessions.get(cid).and_then(|s| s.access.clone());
        let mut codes = Vec::with_capacity(sub.filters.len());
        let mut retained = Vec::new();
        for f in sub.filters {
            if topic::validate_topic_filter(&f.filter).is_err() {
                codes.push(if v5 {
                    ReasonCode::TOPIC_FILTER_INVALID
                } else {
                    ReasonCode::UNSPECIFIED_ERROR
                });
                continue;
            }
            let cap = match &access {
                Some(a) => a.policy.can_subscribe(&a.principal, cid, &f.filter),
                None => Some(QoS::ExactlyOnce),
            };
            let Some(cap) = cap else {
                codes.push(if v5 {
                    ReasonCode::NOT_AUTHORIZED
                } else {
                    ReasonCode::UNSPECIFIED_ERROR
                });
                continue;
            };
            let qos = f.options.qos.min(cap);
            let options = if v5 {
                SubscriptionOptions { qos, ..f.options }
            } else {
                SubscriptionOptions::qos(qos)
            };
            let entry = SubscriptionEntry {
                options,
                identifier,
            };
            let Some(s) = self.sessions.get_mut(cid) else {
                return;
            };
            let existed = s.subscriptions.insert(f.filter.clone(), entry).is_some();
            self.tree.insert(&f.filter, cid, entry);
            codes.push(ReasonCode(qos as u8));
            let shared = matches!(topic::parse_shared(&f.filter), Ok(Some(_)));
            let send_retained = match options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
            if shared || !send_retained {
                continue;
            }
            for m in self.retained.matching(&f.filter, now) {
                retained.push(Delivery {
                    qos: m.qos.min(qos),
                    message: m,
                    retain: true,
                    subscription_ids: identifier.into_iter().collect(),
                    share: None,
                });
            }
        }
        out.push(Output::Send {
            conn,
            packet: Packet::SubAck(SubAck {
                packet_id: sub.packet_id,
                reason_codes: codes,
                properties: Default::default(),
            }),
        });
        for d in retained {
            self.deliver(cid, d, now, out);
        }
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        conn: ConnId,
        cid: &str,
        unsub: Unsubscribe,
        out: &mut Vec<Output>,
    ) {
        let v5 = self.version_of(cid) == ProtocolVersion::V5;
        let mut codes = Vec::new();
        for f in &unsub.filters {
            if topic::validate_topic_filter(f).is_err() {
                if v5 {
                    codes.push(ReasonCode::TOPIC_FILTER_INVALID);
                }
                continue;
            }
            let existed = self
                .sessions
                .get_mut(cid)
                .is_some_and(|s| s.subscriptions.remove(f).is_some());
            self.tree.remove(f, cid);
            if v5 {
                codes.push(if existed {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::NO_SUBSCRIPTION_EXISTED
                });
            }
        }
        out.push(Output::Send {
            conn,
            packet: Packet::UnsubAck(UnsubAck {
                packet_id: unsub.packet_id,
                reason_codes: codes,
                properties: Default::default(),
            }),
        });
    }
}
