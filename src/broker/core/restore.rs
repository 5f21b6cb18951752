//! Putting saved state back into a core (persistence, issue 7): sessions
//! come back offline with their subscriptions, queues and QoS state.

use std::sync::Arc;
use std::time::Instant;

use super::super::session::{Message, Session};
use super::{after, BrokerCore, Timer};

impl BrokerCore {
    /// Puts back a session saved earlier (at start-up, before any client
    /// connects): it is offline, its subscriptions rejoin the tree and its
    /// expiry restarts from `now`. A session with that client id already
    /// present is replaced. Set `session.access` (the policy of its
    /// `listener`) first, or messages queue for it unchecked until it reconnects.
    pub fn restore_session(&mut self, mut session: Session, now: Instant) {
        let cid = session.client_id.clone();
        if session.expiry_interval == 0 {
            // Such a session ends with its connection; there is nothing to restore.
            return;
        }
        if self.sessions.contains_key(&cid) {
            let mut ignored = Vec::new();
            self.end_session(&cid, now, &mut ignored);
        }
        session.link = None;
        session.will = None;
        session.reindex();
        let will_due = session.will_due.take();
        let _ = session.expires_at.take();
        let expiry = session.expiry_interval;
        for (filter, entry) in &session.subscriptions {
            self.tree.insert(filter, &cid, *entry);
        }
        let has_will = session.pending_will.is_some();
        self.sessions.insert(cid.clone(), Box::new(session));
        if has_will {
            self.schedule(Timer::Will, &cid, Some(will_due.unwrap_or(now)));
        }
        if expiry != u32::MAX {
            self.schedule(Timer::Expiry, &cid, after(now, expiry));
        }
    }

    /// Puts back a retained message saved earlier.
    pub fn restore_retained(&mut self, message: Message) {
        if message.retain {
            self.retained.apply(Arc::new(message));
        }
    }
}
