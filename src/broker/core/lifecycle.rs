//! Connections ending, wills, session end and shutdown.
//!
//! Will handling follows MQTT 5.0 section 3.1.2.5: a will is published when
//! the connection ends without a normal DISCONNECT (or with reason 0x04),
//! after its Will Delay Interval or when the session ends, whichever comes
//! first; a new connection to the session within the delay cancels it.

use std::time::Instant;

use crate::codec::{topic, LastWill, ProtocolVersion};

use super::super::session::{Access, Message};
use super::{after, BrokerCore, ConnId, Output, ReasonCode, Timer};

impl BrokerCore {
    /// Detaches `conn` from its session: will handling, then the session ends
    /// now (expiry 0) or is scheduled to.
    pub(super) fn detach(
        &mut self,
        conn: ConnId,
        publish_will: bool,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(cid) = self.detach_keep_session(conn, publish_will, now, out) else {
            return;
        };
        let Some(expiry) = self.sessions.get(&cid).map(|s| s.expiry_interval) else {
            return;
        };
        match expiry {
            0 => self.end_session(&cid, now, out),
            u32::MAX => {}
            secs => self.schedule(Timer::Expiry, &cid, after(now, secs)),
        }
    }

    /// Detaches `conn` and handles its will, leaving the session in place.
    pub(super) fn detach_keep_session(
        &mut self,
        conn: ConnId,
        publish_will: bool,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Option<String> {
        let cid = self.conns.remove(&conn)?;
        let s = self.sessions.get_mut(&cid)?;
        if s.conn() != Some(conn) {
            return None;
        }
        let v5 = s
            .link
            .as_ref()
            .is_some_and(|l| l.version == ProtocolVersion::V5);
        s.link = None;
        let resumed = std::mem::take(&mut s.throttled);
        out.extend(resumed.into_iter().map(|conn| Output::Resume { conn }));
        let will = s.will.take();
        if let (true, Some(will)) = (publish_will, will) {
            let delay = if v5 {
                will.properties.will_delay_interval.unwrap_or(0)
            } else {
                0
            };
            if delay == 0 {
                self.publish_will(&cid, will, now, out);
            } else {
                s.pending_will = Some(will);
                self.schedule(Timer::Will, &cid, after(now, delay));
            }
        }
        Some(cid)
    }

    /// Sets (or clears) a session's timer, keeping the timer set in step.
    pub(super) fn schedule(&mut self, kind: Timer, cid: &str, at: Option<Instant>) {
        let Some(s) = self.sessions.get_mut(cid) else {
            return;
        };
        let slot = match kind {
            Timer::Will => &mut s.will_due,
            Timer::Expiry => &mut s.expires_at,
        };
        if let Some(old) = slot.take() {
            self.timers.remove(&(old, kind, cid.to_owned()));
        }
        *slot = at;
        if let Some(t) = at {
            self.timers.insert((t, kind, cid.to_owned()));
        }
    }

    /// Ends a session: its subscriptions go, a pending will is published.
    pub(super) fn end_session(&mut self, cid: &str, now: Instant, out: &mut Vec<Output>) {
        self.journal.session(cid);
        self.schedule(Timer::Will, cid, None);
        self.schedule(Timer::Expiry, cid, None);
        let Some(mut s) = self.sessions.remove(cid) else {
            return;
        };
        let resumed = std::mem::take(&mut s.throttled);
        out.extend(resumed.into_iter().map(|conn| Output::Resume { conn }));
        if let Some(conn) = s.conn() {
            self.conns.remove(&conn);
        }
        for filter in s.subscriptions.keys() {
            self.tree.remove(filter, cid);
        }
        for (share, message) in s.take_undelivered_shared() {
            if let Some(group) = self.tree.shared_group(&share) {
                self.deliver_shared(group, &message, now, out);
            }
        }
        if let Some(will) = s.pending_will {
            self.publish_will_as(cid, s.access.as_ref(), will, now, out);
        }
    }

    pub(super) fn publish_will(
        &mut self,
        cid: &str,
        will: Box<LastWill>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let access = self.sessions.get(cid).and_then(|s| s.access.clone());
        self.publish_will_as(cid, access.as_ref(), will, now, out);
    }

    /// Publishes a will if the client may publish to its topic.
    pub(super) fn publish_will_as(
        &mut self,
        cid: &str,
        access: Option<&Access>,
        will: Box<LastWill>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        if topic::validate_topic_name(&will.topic).is_err() {
            return;
        }
        if let Some(a) = access {
            if !a.policy.can_publish(&a.principal, cid, &will.topic) {
                return;
            }
        }
        let retain = will.retain && self.limits.retain_available;
        let message = Message::new(
            will.topic,
            will.payload,
            will.qos,
            retain,
            &will.properties,
            Some(cid.to_owned()),
            now,
        );
        self.publish_message(message, now, out);
    }

    /// The server is stopping: every will is published now (delays are cut
    /// short, the broker is going away), then every client is closed with
    /// 0x8B Server shutting down.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for &conn in &conns {
            let will = self
                .conns
                .get(&conn)
                .and_then(|cid| self.sessions.get_mut(cid))
                .and_then(|s| s.will.take());
            if let (Some(will), Some(cid)) = (will, self.conns.get(&conn).cloned()) {
                self.publish_will(&cid, will, now, &mut out);
            }
        }
        let mut pending: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.pending_will.is_some())
            .map(|s| s.client_id.clone())
            .collect();
        pending.sort();
        for cid in pending {
            self.schedule(Timer::Will, &cid, None);
            let will = self
                .sessions
                .get_mut(&cid)
                .and_then(|s| s.pending_will.take());
            if let Some(will) = will {
                self.publish_will(&cid, will, now, &mut out);
            }
        }
        for conn in conns {
            out.push(Output::Close {
                conn,
                reason: Some(ReasonCode::SERVER_SHUTTING_DOWN),
            });
            self.detach(conn, false, now, &mut out);
        }
        out
    }
}
