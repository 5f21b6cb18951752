//! Incoming PUBLISH flows: topic aliases the broker assigns, opening sealed
//! payloads, acknowledgements, QoS 2 duplicate suppression and our Receive
//! Maximum.

use std::time::Instant;

use super::{pub_response, ClientSession, Event, Message, SessionError};
use crate::auth::metadata::open_publish;
use crate::codec::{Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode};

impl ClientSession {
    /// Handles a PUBLISH from the broker.
    pub(super) fn on_publish(
        &mut self,
        publish: Publish,
        now: Instant,
    ) -> Result<(), SessionError> {
        let mut publish = publish;
        // Under metadata protection the record holds topic and properties,
        // and the wire header may show nothing else (LWA2.md 7.1).
        let protected = match self.protection.as_mut() {
            Some(p) if p.protects_metadata() => {
                if let Err(reason) = open_publish(p.as_mut(), &mut publish) {
                    return Err(self.fail(SessionError::Protection(reason), now));
                }
                true
            }
            _ => false,
        };
        let Publish {
            dup,
            qos,
            retain,
            topic,
            packet_id,
            mut properties,
            payload,
        } = publish;
        let (topic, payload) = if protected {
            (topic, payload)
        } else {
            let topic = match self.resolve_alias(
                topic,
                properties.get_mut().and_then(|p| p.topic_alias.take()),
            ) {
                Ok(topic) => topic,
                Err(e) => return Err(self.fail(e, now)),
            };
            // Every PUBLISH is opened, duplicates included: the broker seals each
            // transmission as a new record.
            let payload = match self.protection.as_mut() {
                Some(p) => match p.open(&topic, qos, retain, &payload) {
                    Ok(opened) => opened,
                    Err(reason) => return Err(self.fail(SessionError::Protection(reason), now)),
                },
                None => payload,
            };
            (topic, payload)
        };
        let message = Message {
            topic,
            payload,
            qos,
            retain,
            dup,
            properties: properties.into_inner(),
        };
        match qos {
            QoS::AtMostOnce => self.events.push_back(Event::Message(message)),
            QoS::AtLeastOnce => {
                self.events.push_back(Event::Message(message));
                let ack = pub_response(packet_id, ReasonCode::SUCCESS);
                self.send(Packet::PubAck(ack), now);
            }
            QoS::ExactlyOnce => {
                if !self.inbound_qos2.contains(&packet_id) {
                    let limit = self.config.connect.properties.receive_maximum;
                    let limit = usize::from(limit.unwrap_or(u16::MAX));
                    if self.inbound_qos2.len() >= limit {
                        return Err(self.fail(
                            SessionError::Protocol {
                                reason: ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                                detail: "more unreleased QoS 2 messages than our Receive Maximum",
                            },
                            now,
                        ));
                    }
                    self.inbound_qos2.insert(packet_id);
                    self.events.push_back(Event::Message(message));
                }
                let rec = pub_response(packet_id, ReasonCode::SUCCESS);
                self.send(Packet::PubRec(rec), now);
            }
        }
        Ok(())
    }

    /// The full topic of an incoming PUBLISH, learning or applying a broker alias.
    fn resolve_alias(&mut self, topic: String, alias: Option<u16>) -> Result<String, SessionError> {
        self.alias_in
            .resolve_topic(topic, alias)
            .map_err(|reason| SessionError::Protocol {
                reason,
                detail: if reason == ReasonCode::PROTOCOL_ERROR {
                    "PUBLISH with an empty topic and no topic alias"
                } else {
                    "topic alias 0, above our Topic Alias Maximum, or never set"
                },
            })
    }

    /// PUBREL from the broker: release the packet id and complete with PUBCOMP.
    pub(super) fn on_pubrel(&mut self, rel: PubResponse, now: Instant) {
        let reason =
            if self.inbound_qos2.remove(&rel.packet_id) || self.version == ProtocolVersion::V311 {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
            };
        self.send(Packet::PubComp(pub_response(rel.packet_id, reason)), now);
    }
}
