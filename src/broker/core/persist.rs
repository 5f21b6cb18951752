//! The core's side of persistence: it notes which sessions and retained
//! topics one input changed, hands them over as a
//! [`PersistBatch`](crate::broker::persist::PersistBatch) and restores
//! stored state at start-up. No IO: see [`crate::broker::persist`] for the
//! ordering guarantee (the batch is committed before the input's outputs
//! are sent).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::AccessPolicy;
use crate::codec::{Packet, QoS};

use super::super::persist::{MessageRecord, PersistBatch, RecordError, SessionRecord};
use super::super::session::Access;
use super::BrokerCore;

/// Keys changed since the last batch (only tracked while enabled).
#[derive(Debug, Default)]
pub(crate) struct Journal {
    enabled: bool,
    sessions: BTreeSet<String>,
    retained: BTreeSet<String>,
}

impl Journal {
    /// Notes a changed session.
    pub(crate) fn session(&mut self, cid: &str) {
        if self.enabled && !self.sessions.contains(cid) {
            self.sessions.insert(cid.to_owned());
        }
    }

    /// Notes a changed retained topic.
    pub(crate) fn retained(&mut self, topic: &str) {
        if self.enabled {
            self.retained.insert(topic.to_owned());
        }
    }

    /// Notes the sender's session when `packet` changes its durable state
    /// (PINGREQ and QoS 0 PUBLISH do not).
    pub(crate) fn packet(&mut self, cid: &str, packet: &Packet) {
        let durable = match packet {
            Packet::Publish(p) => p.qos == QoS::ExactlyOnce,
            Packet::PingReq => false,
            _ => true,
        };
        if durable {
            self.session(cid);
        }
    }
}

impl BrokerCore {
    /// Starts tracking changes for [`Self::take_persist_batch`] (off by
    /// default, so a broker without persistence does no bookkeeping).
    pub fn enable_persistence(&mut self) {
        self.journal.enabled = true;
    }

    /// The durable changes made since the last call: sessions with a
    /// non-zero expiry are written, ended or non-persistent ones deleted.
    pub fn take_persist_batch(&mut self, now: Instant) -> PersistBatch {
        let mut batch = PersistBatch::default();
        for cid in std::mem::take(&mut self.journal.sessions) {
            let record = self
                .sessions
                .get(&cid)
                .filter(|s| s.expiry_interval > 0)
                .map(|s| SessionRecord::from_session(s, now));
            batch.sessions.push((cid, record));
        }
        for topic in std::mem::take(&mut self.journal.retained) {
            let record = self
                .retained
                .get(&topic)
                .map(|m| MessageRecord::from_message(m, now));
            batch.retained.push((topic, record));
        }
        batch
    }

    /// A batch from [`Self::take_persist_batch`] was not committed: its keys
    /// are changed again, so the next batch writes them from the state of
    /// that time (a key deleted since is written as deleted).
    pub fn persist_failed(&mut self, batch: PersistBatch) {
        for (cid, _) in batch.sessions {
            self.journal.sessions.insert(cid);
        }
        for (topic, _) in batch.retained {
            self.journal.retained.insert(topic);
        }
    }

    /// Loads stored state into an empty core: sessions come back offline,
    /// their expiry clock restarted at `now`; `policy_of` gives a listener's
    /// access policy by name (a session whose listener is gone keeps none,
    /// so its deliveries are not filtered until it reconnects).
    pub fn restore(
        &mut self,
        sessions: Vec<(String, SessionRecord)>,
        retained: Vec<MessageRecord>,
        policy_of: &dyn Fn(&str) -> Option<Arc<dyn AccessPolicy>>,
        now: Instant,
    ) -> Result<(), RecordError> {
        for record in retained {
            self.restore_retained(record.to_message(now)?);
        }
        for (cid, record) in sessions {
            let mut session = record.to_session(&cid, now)?;
            session.access = record.listener.as_deref().and_then(|listener| {
                policy_of(listener).map(|policy| Access {
                    principal: record.principal(),
                    policy,
                    listener: listener.to_owned(),
                })
            });
            self.restore_session(session, now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{msg, v5_persistent, Harness};
    use crate::codec::QoS;

    #[test]
    fn a_failed_batch_is_written_again_from_the_current_state() {
        let mut h = Harness::new();
        h.core.enable_persistence();
        h.connect(1, v5_persistent("a", 60));
        h.publish(1, {
            let mut m = msg("r/1", "v", QoS::AtLeastOnce, 1);
            m.retain = true;
            m
        });
        let failed = h.core.take_persist_batch(h.now);
        assert!(!failed.is_empty());
        assert!(h.core.take_persist_batch(h.now).is_empty());
        h.core.persist_failed(failed);
        let again = h.core.take_persist_batch(h.now);
        assert_eq!(again.sessions.len(), 1);
        assert!(again.sessions[0].1.is_some());
        assert_eq!(again.retained.len(), 1);
        assert!(again.retained[0].1.is_some());
    }
}
