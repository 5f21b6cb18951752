//! Publisher flow control: a connected subscriber that falls behind slows
//! its publishers down instead of losing their messages.
//!
//! A session's queue grows while its client's in-flight window is full.
//! Once an online session holds [`high_water`] of its queue limits
//! (`max_queued_messages`, `max_queued_bytes_per_session`), the core
//! asks the server to pause reading from each publisher that feeds it
//! ([`Output::Pause`]); once the queue is back at [`low_water`], or the
//! session goes offline, each of those publishers is resumed
//! ([`Output::Resume`]). A paused connection's socket is not read, so TCP
//! pushes back on the publisher whatever its QoS or protocol version, and a
//! well-behaved MQTT 5 publisher also stops at its Receive Maximum because
//! nothing more of its is acknowledged.
//!
//! Messages already read from a publisher when the pause takes effect still
//! arrive; an online session's queue therefore may hold up to
//! [`online_queue_limit`] messages before the drop policy of
//! `Session::enqueue` applies. The server bounds a pause in time (a
//! subscriber that stops acknowledging must not stall its publishers for
//! ever); past that bound the queue limit drops, counted in
//! `$SYS/broker/messages/dropped` (README, "Flow control and drops").

use super::{BrokerCore, ConnId, Output};

/// Queue length of an online session at which its publishers are paused.
pub(crate) fn high_water(max_queued: usize) -> usize {
    (max_queued / 2).max(1)
}

/// Queue length at which paused publishers are resumed.
pub(crate) fn low_water(max_queued: usize) -> usize {
    max_queued / 4
}

/// Most messages an online session queues before dropping: room for what
/// its publishers had in flight when they were paused.
pub(crate) fn online_queue_limit(max_queued: usize) -> usize {
    max_queued.saturating_mul(4).max(1)
}

impl BrokerCore {
    /// The connection of the client that published `publisher`'s message,
    /// if it is online (wills and `$SYS/` have none).
    pub(super) fn source_conn(&self, publisher: Option<&str>) -> Option<ConnId> {
        publisher
            .and_then(|p| self.sessions.get(p))
            .and_then(|s| s.conn())
    }

    /// After a delivery to `cid`: pauses `source` when the session is online
    /// and its queue reached the high-water mark.
    pub(super) fn throttle_if_backed_up(
        &mut self,
        cid: &str,
        source: Option<ConnId>,
        out: &mut Vec<Output>,
    ) {
        let high = high_water(self.limits.max_queued_messages);
        let high_bytes = high_water(self.limits.max_queued_bytes_per_session);
        let Some(source) = source else { return };
        let Some(s) = self.sessions.get_mut(cid) else {
            return;
        };
        let Some(own) = s.conn() else { return };
        // A client that floods itself is paced by its own window instead.
        if own == source || (s.queue.len() < high && s.queued_bytes() < high_bytes) {
            return;
        }
        if s.throttled.insert(source) {
            out.push(Output::Pause { conn: source });
        }
    }

    /// Resumes the publishers `cid` paused once its queue is back at the
    /// low-water mark, or it is offline.
    pub(super) fn release_flow(&mut self, cid: &str, out: &mut Vec<Output>) {
        let low = low_water(self.limits.max_queued_messages);
        let low_bytes = low_water(self.limits.max_queued_bytes_per_session);
        let Some(s) = self.sessions.get_mut(cid) else {
            return;
        };
        let backed_up = s.queue.len() > low || s.queued_bytes() > low_bytes;
        if s.throttled.is_empty() || (s.link.is_some() && backed_up) {
            return;
        }
        for conn in std::mem::take(&mut s.throttled) {
            out.push(Output::Resume { conn });
        }
    }
}
