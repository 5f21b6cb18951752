//! Outgoing PUBLISH flows: the Receive Maximum quota, topic aliases we assign,
//! sealing, QoS 1/2 acknowledgements and retransmission after a reconnect.

use std::time::Instant;

use super::{
    check_topic, pub_response, ClientSession, Event, InFlight, Outstanding, Phase, PublishOutcome,
    PublishRequest, RequestId, SessionError, Stage,
};
use crate::auth::metadata::seal_publish;
use crate::codec::{protected_len, Packet, Properties, PubResponse, Publish, QoS, ReasonCode};

impl ClientSession {
    /// Publishes a message; completes with [`Event::Published`] when the QoS
    /// flow ends (QoS 0: at once). QoS 1/2 messages beyond the broker's
    /// Receive Maximum wait in order until an acknowledgement frees quota.
    pub fn publish(
        &mut self,
        request: PublishRequest,
        now: Instant,
    ) -> Result<RequestId, SessionError> {
        if self.phase != Phase::Connected {
            return Err(SessionError::NotConnected);
        }
        check_topic(&request.topic)?;
        if request.qos > self.limits.maximum_qos {
            return Err(SessionError::InvalidRequest(format!(
                "QoS {} is above the broker's maximum QoS {}",
                request.qos as u8, self.limits.maximum_qos as u8
            )));
        }
        if request.retain && !self.limits.retain_available {
            return Err(SessionError::InvalidRequest(
                "the broker does not support retained messages".into(),
            ));
        }
        // Refuse an oversize message now rather than after it waited for quota.
        self.check_size(self.publish_len(&request, None))?;
        let id = self.new_request_id();
        // LWA2: with this generation's records used up and the key update in
        // flight, a QoS 0 message waits in order with the others (`pump`).
        if request.qos == QoS::AtMostOnce && !self.sealing_blocked() {
            let packet = self.wire_publish(&request, 0, false)?;
            self.send(packet, now);
            self.events.push_back(qos0_published(id));
            return Ok(id);
        }
        self.pending.push_back((id, request));
        self.pump(now);
        Ok(id)
    }

    /// Whether sealing must wait for the key update in flight (LWA2.md 8.2:
    /// this generation's c2b records are used up).
    pub(super) fn sealing_blocked(&self) -> bool {
        self.protection
            .as_ref()
            .is_some_and(|p| p.awaits_key_update() || p.records_exhausted())
    }

    /// LWA1 out of records (LWA.md section 8): once nothing sent on this
    /// connection still waits for its PUBACK or PUBREC, and something waits
    /// to be sent, end the connection with DISCONNECT 0x00 (no will) and ask
    /// the driver to reconnect for fresh keys.
    fn reconnect_for_keys_if_exhausted(&mut self, now: Instant) {
        if self.phase != Phase::Connected
            || !self
                .protection
                .as_ref()
                .is_some_and(|p| p.records_exhausted())
            || !self.unacked_here.is_empty()
        {
            return;
        }
        let unsent_flight = self.outstanding.iter().any(|(pid, o)| {
            matches!(o, Outstanding::Publish(f) if matches!(f.stage, Stage::Qos1Sent | Stage::Qos2Sent))
                && !self.unacked_here.contains(pid)
        });
        if self.pending.is_empty() && !unsent_flight {
            return;
        }
        tracing::info!("LWA1 records of this connection used up: reconnecting for fresh keys");
        self.reconnect_for_keys = true;
        self.disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default(), now);
    }

    /// Sends waiting publishes while the broker's quota allows (QoS 1/2) and
    /// the records of the current keys last.
    pub(super) fn pump(&mut self, now: Instant) {
        while self.phase == Phase::Connected
            && self.in_flight_publishes < usize::from(self.limits.receive_maximum)
            && !self.sealing_blocked()
        {
            let Some((id, request)) = self.pending.pop_front() else {
                break;
            };
            if request.qos == QoS::AtMostOnce {
                // Held back while the keys were being updated.
                match self.wire_publish(&request, 0, false) {
                    Ok(packet) => {
                        self.send(packet, now);
                        self.events.push_back(qos0_published(id));
                    }
                    Err(error) => self.events.push_back(Event::Failed { id, error }),
                }
                continue;
            }
            let Some(packet_id) = self.allocate_packet_id() else {
                self.pending.push_front((id, request));
                break;
            };
            match self.wire_publish(&request, packet_id, false) {
                Ok(packet) => {
                    let stage = if request.qos == QoS::AtLeastOnce {
                        Stage::Qos1Sent
                    } else {
                        Stage::Qos2Sent
                    };
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.outstanding.insert(
                        packet_id,
                        Outstanding::Publish(Box::new(InFlight {
                            id,
                            request,
                            stage,
                            seq,
                        })),
                    );
                    self.in_flight_publishes += 1;
                    self.unacked_here.insert(packet_id);
                    self.send(packet, now);
                }
                Err(error) => self.events.push_back(Event::Failed { id, error }),
            }
        }
        self.reconnect_for_keys_if_exhausted(now);
    }

    /// Encoded size of `request` as a PUBLISH with `alias`, sealing overhead included.
    fn publish_len(&self, request: &PublishRequest, alias: Option<(bool, u16)>) -> usize {
        let mut properties = request.properties.clone();
        properties.topic_alias = alias.map(|(_, a)| a);
        let topic = match alias {
            Some((true, _)) => String::new(),
            _ => request.topic.clone(),
        };
        let packet = Packet::Publish(Publish {
            dup: false,
            qos: request.qos,
            retain: request.retain,
            topic,
            packet_id: if request.qos == QoS::AtMostOnce { 0 } else { 1 },
            properties: properties.into(),
            payload: request.payload.clone(),
        });
        let overhead = self.protection.as_ref().map_or(0, |p| p.overhead());
        protected_len(&packet, self.version, overhead)
    }

    /// Builds the PUBLISH for the wire: alias chosen, size checked, payload
    /// sealed. Nothing changes in the session unless it succeeds.
    pub(super) fn wire_publish(
        &mut self,
        request: &PublishRequest,
        packet_id: u16,
        dup: bool,
    ) -> Result<Packet, SessionError> {
        // Under metadata protection the wire shows only the placeholder
        // topic (LWA2.md 7.1): no alias for it.
        let protected = self
            .protection
            .as_ref()
            .is_some_and(|p| p.protects_metadata());
        let alias = if protected {
            None
        } else {
            self.alias_out.choose(&request.topic)
        };
        self.check_size(self.publish_len(request, alias))?;
        let mut properties = request.properties.clone();
        // Aliases are the session's to choose; the application's is ignored.
        properties.topic_alias = None;
        let mut publish = Publish {
            dup,
            qos: request.qos,
            retain: request.retain,
            topic: request.topic.clone(),
            packet_id,
            properties: properties.into(),
            payload: request.payload.clone(),
        };
        if let Some(p) = self.protection.as_mut() {
            seal_publish(p.as_mut(), &mut publish).map_err(SessionError::Protection)?;
        }
        if let Some((mapped, a)) = alias {
            publish.properties.topic_alias = Some(a);
            if mapped {
                publish.topic = String::new();
            } else {
                self.alias_out.record(&request.topic, a);
            }
        }
        Ok(Packet::Publish(publish))
    }

    /// Removes a completed publish and reports it.
    fn complete(&mut self, packet_id: u16, reason_code: ReasonCode, properties: Properties) {
        if let Some(Outstanding::Publish(f)) = self.outstanding.remove(&packet_id) {
            self.in_flight_publishes = self.in_flight_publishes.saturating_sub(1);
            self.events.push_back(Event::Published {
                id: f.id,
                outcome: PublishOutcome {
                    packet_id,
                    reason_code,
                    properties,
                },
            });
        }
    }

    fn stage_of(&self, packet_id: u16) -> Option<Stage> {
        match self.outstanding.get(&packet_id) {
            Some(Outstanding::Publish(f)) => Some(f.stage),
            _ => None,
        }
    }

    pub(super) fn on_puback(&mut self, ack: PubResponse) {
        self.unacked_here.remove(&ack.packet_id);
        match self.stage_of(ack.packet_id) {
            Some(Stage::Qos1Sent) => {
                self.complete(ack.packet_id, ack.reason_code, ack.properties.into())
            }
            _ => tracing::debug!(packet_id = ack.packet_id, "PUBACK for no QoS 1 PUBLISH"),
        }
    }

    pub(super) fn on_pubrec(&mut self, rec: PubResponse, now: Instant) {
        self.unacked_here.remove(&rec.packet_id);
        match self.stage_of(rec.packet_id) {
            Some(Stage::Qos2Sent) if rec.reason_code.is_error() => {
                // A failed PUBREC ends the flow: no PUBREL.
                self.complete(rec.packet_id, rec.reason_code, rec.properties.into());
            }
            Some(Stage::Qos2Sent) => {
                if let Some(Outstanding::Publish(f)) = self.outstanding.get_mut(&rec.packet_id) {
                    f.stage = Stage::Released(rec.reason_code);
                }
                let rel = pub_response(rec.packet_id, ReasonCode::SUCCESS);
                self.send(Packet::PubRel(rel), now);
            }
            Some(Stage::Released(_)) => {
                // The broker did not see our PUBREL: send it again.
                let rel = pub_response(rec.packet_id, ReasonCode::SUCCESS);
                self.send(Packet::PubRel(rel), now);
            }
            _ => tracing::debug!(packet_id = rec.packet_id, "PUBREC for no QoS 2 PUBLISH"),
        }
    }

    pub(super) fn on_pubcomp(&mut self, comp: PubResponse) {
        match self.stage_of(comp.packet_id) {
            Some(Stage::Released(rec_reason)) => {
                let reason = if comp.reason_code.is_error() {
                    comp.reason_code
                } else {
                    rec_reason
                };
                self.complete(comp.packet_id, reason, comp.properties.into());
            }
            _ => tracing::debug!(packet_id = comp.packet_id, "PUBCOMP for no PUBREL"),
        }
    }

    /// In-flight publishes in the order they were first sent.
    fn in_flight_in_order(&self) -> Vec<(u16, u64)> {
        let mut flights: Vec<(u16, u64)> = self
            .outstanding
            .iter()
            .filter_map(|(&pid, o)| match o {
                Outstanding::Publish(f) => Some((pid, f.seq)),
                _ => None,
            })
            .collect();
        flights.sort_by_key(|&(_, seq)| seq);
        flights
    }

    /// The broker kept our session: resend unacknowledged PUBLISH (DUP set,
    /// sealed anew) and PUBREL, in the original order.
    pub(super) fn retransmit(&mut self, now: Instant) {
        for (pid, _) in self.in_flight_in_order() {
            let Some(Outstanding::Publish(f)) = self.outstanding.get(&pid) else {
                continue;
            };
            match f.stage {
                Stage::Released(_) => {
                    self.send(Packet::PubRel(pub_response(pid, ReasonCode::SUCCESS)), now);
                }
                // Out of records (LWA1): the rest goes on the next connection.
                Stage::Qos1Sent | Stage::Qos2Sent if self.sealing_blocked() => {}
                Stage::Qos1Sent | Stage::Qos2Sent => {
                    let request = f.request.clone();
                    match self.wire_publish(&request, pid, true) {
                        Ok(packet) => {
                            self.unacked_here.insert(pid);
                            self.send(packet, now);
                        }
                        Err(error) => {
                            if let Some(Outstanding::Publish(f)) = self.outstanding.remove(&pid) {
                                self.in_flight_publishes =
                                    self.in_flight_publishes.saturating_sub(1);
                                self.events.push_back(Event::Failed { id: f.id, error });
                            }
                        }
                    }
                }
            }
        }
    }

    /// The broker has no session for us (or we start clean): forget inbound
    /// QoS 2 state; publishes the broker already accepted (PUBREC received)
    /// complete; the others are sent again as new messages, in order.
    pub(super) fn discard_session_state(&mut self) {
        self.inbound_qos2.clear();
        let mut requeue = Vec::new();
        for (pid, _) in self.in_flight_in_order() {
            if let Some(Outstanding::Publish(f)) = self.outstanding.remove(&pid) {
                match f.stage {
                    Stage::Released(reason) => self.events.push_back(Event::Published {
                        id: f.id,
                        outcome: PublishOutcome {
                            packet_id: pid,
                            reason_code: reason,
                            properties: Properties::default(),
                        },
                    }),
                    Stage::Qos1Sent | Stage::Qos2Sent => requeue.push((f.id, f.request)),
                }
            }
        }
        self.in_flight_publishes = 0;
        for item in requeue.into_iter().rev() {
            self.pending.push_front(item);
        }
    }
}

/// A QoS 0 publish completes once written: no acknowledgement follows.
fn qos0_published(id: RequestId) -> Event {
    Event::Published {
        id,
        outcome: PublishOutcome {
            packet_id: 0,
            reason_code: ReasonCode::SUCCESS,
            properties: Properties::default(),
        },
    }
}
