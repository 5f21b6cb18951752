//! SUBSCRIBE and UNSUBSCRIBE requests and their acknowledgements.

use std::time::Instant;

use super::{ClientSession, Event, Outstanding, Phase, RequestId, SessionError};
use crate::codec::topic::validate_topic_filter;
use crate::codec::{
    encoded_len, Packet, Properties, ReasonCode, SubAck, Subscribe, SubscribeFilter, UnsubAck,
    Unsubscribe,
};

impl ClientSession {
    /// Subscribes; completes with [`Event::Subscribed`].
    pub fn subscribe(
        &mut self,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
        now: Instant,
    ) -> Result<RequestId, SessionError> {
        if self.phase != Phase::Connected {
            return Err(SessionError::NotConnected);
        }
        if filters.is_empty() {
            return Err(SessionError::InvalidRequest(
                "SUBSCRIBE needs at least one filter".into(),
            ));
        }
        for f in &filters {
            validate_topic_filter(&f.filter).map_err(|_| {
                SessionError::InvalidRequest(format!("invalid topic filter {:?}", f.filter))
            })?;
        }
        let packet_id = self.allocate_packet_id().ok_or(SessionError::NoPacketId)?;
        let count = filters.len();
        let packet = Packet::Subscribe(Subscribe {
            packet_id,
            filters,
            properties: properties.into(),
        });
        self.check_size(encoded_len(&packet, self.version))?;
        let id = self.new_request_id();
        self.outstanding
            .insert(packet_id, Outstanding::Subscribe { id, filters: count });
        self.send(packet, now);
        Ok(id)
    }

    /// Unsubscribes; completes with [`Event::Unsubscribed`].
    pub fn unsubscribe(
        &mut self,
        filters: Vec<String>,
        properties: Properties,
        now: Instant,
    ) -> Result<RequestId, SessionError> {
        if self.phase != Phase::Connected {
            return Err(SessionError::NotConnected);
        }
        if filters.is_empty() {
            return Err(SessionError::InvalidRequest(
                "UNSUBSCRIBE needs at least one filter".into(),
            ));
        }
        for f in &filters {
            validate_topic_filter(f)
                .map_err(|_| SessionError::InvalidRequest(format!("invalid topic filter {f:?}")))?;
        }
        let packet_id = self.allocate_packet_id().ok_or(SessionError::NoPacketId)?;
        let packet = Packet::Unsubscribe(Unsubscribe {
            packet_id,
            filters,
            properties: properties.into(),
        });
        self.check_size(encoded_len(&packet, self.version))?;
        let id = self.new_request_id();
        self.outstanding
            .insert(packet_id, Outstanding::Unsubscribe { id });
        self.send(packet, now);
        Ok(id)
    }

    pub(super) fn on_suback(&mut self, suback: SubAck, now: Instant) -> Result<(), SessionError> {
        match self.outstanding.get(&suback.packet_id) {
            Some(Outstanding::Subscribe { id, filters }) => {
                if suback.reason_codes.len() != *filters {
                    return Err(self.fail(
                        SessionError::Protocol {
                            reason: ReasonCode::PROTOCOL_ERROR,
                            detail: "SUBACK reason code count differs from the filter count",
                        },
                        now,
                    ));
                }
                let id = *id;
                self.outstanding.remove(&suback.packet_id);
                self.events.push_back(Event::Subscribed { id, suback });
            }
            _ => tracing::debug!(packet_id = suback.packet_id, "SUBACK for no SUBSCRIBE"),
        }
        Ok(())
    }

    pub(super) fn on_unsuback(
        &mut self,
        unsuback: UnsubAck,
        _now: Instant,
    ) -> Result<(), SessionError> {
        match self.outstanding.get(&unsuback.packet_id) {
            Some(Outstanding::Unsubscribe { id }) => {
                let id = *id;
                self.outstanding.remove(&unsuback.packet_id);
                self.events.push_back(Event::Unsubscribed { id, unsuback });
            }
            _ => tracing::debug!(
                packet_id = unsuback.packet_id,
                "UNSUBACK for no UNSUBSCRIBE"
            ),
        }
        Ok(())
    }
}
