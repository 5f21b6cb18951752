//! What the broker keeps across restarts, as plain records, and how they
//! map to and from the core's sessions and messages. No IO here: the redb
//! store that writes these records is [`super::persist_store`].
//!
//! # Design: durable before acknowledged
//!
//! The core stays sans-IO. It only *records which keys changed* (session
//! client ids and retained topics) while it handles one input; after each
//! input the core task takes that [`PersistBatch`] from the core
//! ([`super::BrokerCore::take_persist_batch`]) and commits it in **one redb
//! transaction** (fsynced) *before* it hands any of that input's outputs to
//! the connections. PUBACK / PUBREC for a QoS 1/2 PUBLISH are outputs of
//! that same input, so they leave the broker only once the forwarded
//! message (queued or in flight at every subscriber session) and the
//! inbound QoS 2 packet id are on disk. This was chosen over a
//! `SessionStore` trait called from inside the core so that the core never
//! blocks on a disk and the batch naturally spans one input.
//!
//! When the commit fails, the outputs that acknowledge the input (PUBACK,
//! PUBREC, PUBCOMP, SUBACK, UNSUBACK, CONNACK) are not sent: the core task
//! closes the connections that asked for them (5.0: DISCONNECT 0x80) and
//! hands the batch's keys back to the core to be written by the next
//! commit (`server_core::refuse_uncommitted`). The message is already
//! routed in memory, so deliveries to other clients still go out; the
//! unacknowledged publisher sends it again when it reconnects.
//!
//! Group commit: when more events are already waiting in the core task's
//! queue, up to 64 of them are handled before one commit, and none of their
//! outputs is sent before it; the guarantee is the same, with one fsync per
//! group instead of per input.
//!
//! # What is durable
//!
//! - Retained messages.
//! - Sessions with a non-zero Session Expiry Interval: subscriptions,
//!   queued QoS 1/2 messages, outbound in-flight QoS 1/2 messages (PUBLISH
//!   awaiting PUBACK/PUBREC, and PUBREL awaiting PUBCOMP), inbound QoS 2
//!   packet ids awaiting PUBREL, the next packet id, and the principal and
//!   listener name of the last connection (to re-attach the listener's ACL).
//!
//! Not durable: QoS 0 messages (queued or not), wills (pending or not),
//! sessions with expiry 0 (they end with their connection anyway), and
//! `$SYS/` counters.
//!
//! # Time across a restart
//!
//! `Instant`s do not survive a process. A restored offline session's expiry
//! clock **restarts** at load time (it gets its full Session Expiry Interval
//! again); a message's remaining Message Expiry Interval is saved in seconds
//! and counts again from load time (time spent down is not counted).

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::codec::{
    encode, Decoder, Packet, ProtocolVersion, Publish, QoS, RetainHandling, SubscriptionOptions,
};

use super::session::{Delivery, Inflight, Message, OutboundState, Session};
use super::subscriptions::SubscriptionEntry;

/// The changes of one core input, to be committed in one transaction.
#[derive(Debug, Default)]
pub struct PersistBatch {
    /// Sessions to write (`Some`) or delete (`None`), by client id.
    pub sessions: Vec<(String, Option<SessionRecord>)>,
    /// Retained messages to write (`Some`) or delete (`None`), by topic.
    pub retained: Vec<(String, Option<MessageRecord>)>,
}

impl PersistBatch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.retained.is_empty()
    }
}

/// Why a stored record could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The JSON envelope is malformed.
    #[error("malformed record: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored PUBLISH does not decode.
    #[error("stored message does not decode")]
    Publish,
    /// A field holds a value out of range.
    #[error("invalid field {0}")]
    Field(&'static str),
}

/// A message as stored: the PUBLISH (MQTT 5.0 encoding, which carries every
/// property; base64) plus what a PUBLISH cannot say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The encoded PUBLISH, base64.
    pub publish: String,
    /// Publishing client id (for No Local), if any.
    pub publisher: Option<String>,
}

/// A delivery waiting in a session's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecord {
    /// The message.
    pub message: MessageRecord,
    /// QoS of this delivery.
    pub qos: u8,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Subscription Identifiers.
    pub subscription_ids: Vec<u32>,
    /// Shared subscription that chose this session.
    pub share: Option<String>,
}

/// An outbound message holding a packet id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InflightRecord {
    /// The PUBLISH as sent (base64, MQTT 5.0 encoding).
    pub publish: String,
    /// 1 = awaiting PUBACK, 2 = awaiting PUBREC, 3 = PUBREL sent, awaiting PUBCOMP.
    pub state: u8,
    /// Shared group and original message, for hand-over if the session ends.
    pub shared: Option<(String, MessageRecord)>,
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Filter as subscribed (`$share/...` included).
    pub filter: String,
    /// Granted QoS.
    pub qos: u8,
    /// No Local.
    pub no_local: bool,
    /// Retain As Published.
    pub retain_as_published: bool,
    /// Retain Handling (0..=2).
    pub retain_handling: u8,
    /// Subscription Identifier.
    pub identifier: Option<u32>,
}

/// A persistent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Session Expiry Interval (seconds).
    pub expiry_interval: u32,
    /// Subscriptions.
    pub subscriptions: Vec<SubscriptionRecord>,
    /// Outbound in-flight messages, in send order.
    pub inflight: Vec<InflightRecord>,
    /// Queued QoS 1/2 deliveries, in order.
    pub queue: Vec<QueuedRecord>,
    /// Inbound QoS 2 packet ids awaiting PUBREL.
    pub inbound_qos2: Vec<u16>,
    /// Next outbound packet id candidate.
    pub next_packet_id: u16,
    /// User name of the last connection.
    pub username: Option<String>,
    /// LWA identity of the last connection.
    pub lwa_identity: Option<String>,
    /// Listener of the last connection (its ACL is re-attached on load).
    pub listener: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn encode_publish(p: &Publish) -> String {
    let mut buf = BytesMut::new();
    // Encoding a PUBLISH the broker built itself cannot fail; if it ever
    // did, an empty record fails loudly on load rather than silently here.
    let _ = encode(&Packet::Publish(p.clone()), ProtocolVersion::V5, &mut buf);
    b64(&buf)
}

fn decode_publish(text: &str) -> Result<Publish, RecordError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| RecordError::Publish)?;
    let mut buf = BytesMut::from(&raw[..]);
    let mut decoder = Decoder::with_version(usize::MAX, ProtocolVersion::V5);
    match decoder.decode(&mut buf) {
        Ok(Some(Packet::Publish(p))) if buf.is_empty() => Ok(p),
        _ => Err(RecordError::Publish),
    }
}

fn qos_of(v: u8) -> Result<QoS, RecordError> {
    QoS::from_u8(v).ok_or(RecordError::Field("qos"))
}

impl MessageRecord {
    /// Stores `m` with its remaining expiry as of `now`.
    pub fn from_message(m: &Message, now: Instant) -> MessageRecord {
        let mut properties = m.properties.clone();
        let expiry = m.remaining_expiry(now);
        if properties.message_expiry_interval != expiry {
            properties.message_expiry_interval = expiry;
        }
        let publish = Publish {
            dup: false,
            qos: m.qos,
            retain: m.retain,
            topic: m.topic.clone(),
            packet_id: u16::from(m.qos != QoS::AtMostOnce),
            properties,
            payload: m.payload.clone(),
        };
        MessageRecord {
            publish: encode_publish(&publish),
            publisher: m.publisher.clone(),
        }
    }

    /// The message again, its expiry counted from `now`.
    pub fn to_message(&self, now: Instant) -> Result<Message, RecordError> {
        let p = decode_publish(&self.publish)?;
        Ok(Message::new(
            p.topic,
            p.payload,
            p.qos,
            p.retain,
            &p.properties,
            self.publisher.clone(),
            now,
        ))
    }
}

impl SessionRecord {
    /// The durable part of `s` as of `now`.
    pub fn from_session(s: &Session, now: Instant) -> SessionRecord {
        let subscriptions = s
            .subscriptions
            .iter()
            .map(|(filter, e)| SubscriptionRecord {
                filter: filter.clone(),
                qos: e.options.qos as u8,
                no_local: e.options.no_local,
                retain_as_published: e.options.retain_as_published,
                retain_handling: e.options.retain_handling as u8,
                identifier: e.identifier,
            })
            .collect();
        let inflight = s
            .inflight
            .iter()
            .map(|f| InflightRecord {
                publish: encode_publish(&f.publish),
                state: match f.state {
                    OutboundState::AwaitPubAck => 1,
                    OutboundState::AwaitPubRec => 2,
                    OutboundState::AwaitPubComp => 3,
                },
                shared: f
                    .shared
                    .as_ref()
                    .map(|(g, m)| (g.clone(), MessageRecord::from_message(m, now))),
            })
            .collect();
        let queue = s
            .queue
            .iter()
            .filter(|d| d.qos != QoS::AtMostOnce)
            .map(|d| QueuedRecord {
                message: MessageRecord::from_message(&d.message, now),
                qos: d.qos as u8,
                retain: d.retain,
                subscription_ids: d.subscription_ids.clone(),
                share: d.share.clone(),
            })
            .collect();
        let access = s.access.as_ref();
        SessionRecord {
            expiry_interval: s.expiry_interval,
            subscriptions,
            inflight,
            queue,
            inbound_qos2: s.inbound_qos2.iter().copied().collect(),
            next_packet_id: s.next_packet_id,
            username: access.and_then(|a| a.principal.username.clone()),
            lwa_identity: access.and_then(|a| a.principal.lwa_identity.clone()),
            listener: access.map(|a| a.listener.clone()),
        }
    }

    /// An offline session from this record (no link, no access: the caller
    /// re-attaches the listener's policy, see [`Self::principal`]).
    pub fn to_session(&self, client_id: &str, now: Instant) -> Result<Session, RecordError> {
        let mut s = Session::new(client_id.to_owned(), self.expiry_interval);
        for r in &self.subscriptions {
            let retain_handling = match r.retain_handling {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendIfNew,
                2 => RetainHandling::DoNotSend,
                _ => return Err(RecordError::Field("retain_handling")),
            };
            let options = SubscriptionOptions {
                qos: qos_of(r.qos)?,
                no_local: r.no_local,
                retain_as_published: r.retain_as_published,
                retain_handling,
            };
            s.subscriptions.insert(
                r.filter.clone(),
                SubscriptionEntry {
                    options,
                    identifier: r.identifier,
                },
            );
        }
        for r in &self.inflight {
            let publish = decode_publish(&r.publish)?;
            let state = match r.state {
                1 => OutboundState::AwaitPubAck,
                2 => OutboundState::AwaitPubRec,
                3 => OutboundState::AwaitPubComp,
                _ => return Err(RecordError::Field("state")),
            };
            if publish.packet_id == 0 {
                return Err(RecordError::Field("packet_id"));
            }
            let shared = match &r.shared {
                Some((g, m)) => Some((g.clone(), Arc::new(m.to_message(now)?))),
                None => None,
            };
            s.inflight.push_back(Inflight {
                publish,
                state,
                shared,
            });
        }
        s.reindex();
        for r in &self.queue {
            s.queue.push_back(Delivery {
                message: Arc::new(r.message.to_message(now)?),
                qos: qos_of(r.qos)?,
                retain: r.retain,
                subscription_ids: r.subscription_ids.clone(),
                share: r.share.clone(),
            });
        }
        s.inbound_qos2 = self.inbound_qos2.iter().copied().collect();
        s.next_packet_id = self.next_packet_id.max(1);
        Ok(s)
    }

    /// The principal of the last connection.
    pub fn principal(&self) -> Principal {
        Principal {
            username: self.username.clone(),
            lwa_identity: self.lwa_identity.clone(),
        }
    }
}

/// Serializes a record for the store.
pub fn to_bytes<T: Serialize>(record: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_vec(record).unwrap_or_default()
}

/// Reads a record from the store.
pub fn from_bytes<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, RecordError> {
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Properties;
    use bytes::Bytes;
    use std::time::Duration;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn payload_of(record: &MessageRecord) -> Option<Bytes> {
        decode_publish(&record.publish).ok().map(|p| p.payload)
    }

    fn message(topic: &str, qos: QoS, expiry: Option<u32>, now: Instant) -> Message {
        let props = Properties {
            message_expiry_interval: expiry,
            content_type: Some("text/plain".into()),
            ..Properties::default()
        };
        Message::new(
            topic.into(),
            Bytes::from_static(b"hello"),
            qos,
            true,
            &props,
            Some("pub".into()),
            now,
        )
    }

    #[test]
    fn message_round_trip_keeps_properties_and_remaining_expiry() {
        let now = Instant::now();
        let m = message("a/b", QoS::ExactlyOnce, Some(100), now);
        let rec = MessageRecord::from_message(&m, now + secs(40));
        let later = now + secs(1000);
        let back = rec.to_message(later).unwrap();
        assert_eq!(back.topic, "a/b");
        assert_eq!(back.payload, m.payload);
        assert_eq!(back.qos, QoS::ExactlyOnce);
        assert!(back.retain);
        assert_eq!(back.publisher.as_deref(), Some("pub"));
        assert_eq!(back.properties.content_type.as_deref(), Some("text/plain"));
        assert_eq!(back.remaining_expiry(later), Some(60));
        assert_eq!(payload_of(&rec), Some(Bytes::from_static(b"hello")));
    }

    #[test]
    fn session_round_trip() {
        let now = Instant::now();
        let mut s = Session::new("c1".into(), 3600);
        s.subscriptions.insert(
            "x/#".into(),
            SubscriptionEntry {
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::SendIfNew,
                },
                identifier: Some(7),
            },
        );
        let m = Arc::new(message("x/1", QoS::AtLeastOnce, None, now));
        let mut p = Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "x/2".into(),
            packet_id: 42,
            properties: Default::default(),
            payload: Bytes::from_static(b"p"),
        };
        s.inflight.push_back(Inflight {
            publish: p.clone(),
            state: OutboundState::AwaitPubComp,
            shared: None,
        });
        p.packet_id = 43;
        s.inflight.push_back(Inflight {
            publish: p,
            state: OutboundState::AwaitPubRec,
            shared: Some(("$share/g/x/#".into(), m.clone())),
        });
        s.reindex();
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            s.queue.push_back(Delivery {
                message: m.clone(),
                qos,
                retain: false,
                subscription_ids: vec![7],
                share: None,
            });
        }
        s.inbound_qos2.insert(9);
        s.next_packet_id = 44;
        let rec: SessionRecord =
            from_bytes(&to_bytes(&SessionRecord::from_session(&s, now))).unwrap();
        let back = rec.to_session("c1", now).unwrap();
        assert_eq!(back.subscriptions, s.subscriptions);
        assert_eq!(back.inflight.len(), 2);
        assert_eq!(back.inflight[0].state, OutboundState::AwaitPubComp);
        assert_eq!(back.inflight[1].publish.packet_id, 43);
        assert!(back.inflight[1].shared.is_some());
        assert!(back.index_consistent());
        // QoS 0 queued messages are not durable.
        assert_eq!(back.queue.len(), 1);
        assert_eq!(back.queue[0].qos, QoS::AtLeastOnce);
        assert_eq!(back.queue[0].subscription_ids, vec![7]);
        assert_eq!(back.inbound_qos2, s.inbound_qos2);
        assert_eq!(back.next_packet_id, 44);
        assert_eq!(back.expiry_interval, 3600);
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        assert!(from_bytes::<SessionRecord>(b"{").is_err());
        let mut rec = SessionRecord::from_session(&Session::new("c".into(), 1), Instant::now());
        rec.inflight.push(InflightRecord {
            publish: "!!!".into(),
            state: 1,
            shared: None,
        });
        assert!(rec.to_session("c", Instant::now()).is_err());
    }
}
