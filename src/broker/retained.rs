//! The retained-message store: the last retained message per topic name.
//!
//! A plain ordered map from topic to message. Lookups for a filter without
//! wildcards are direct; wildcard filters scan the store, which is fine for
//! the store sizes this broker targets and keeps the data trivially
//! serializable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::codec::topic;

use super::session::Message;

/// Retained messages by topic name.
#[derive(Debug, Clone, Default)]
pub struct RetainedStore {
    messages: BTreeMap<String, Arc<Message>>,
}

impl RetainedStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a retained PUBLISH: an empty payload clears the topic,
    /// anything else sets or replaces it.
    pub fn apply(&mut self, message: Arc<Message>) {
        if message.payload.is_empty() {
            self.messages.remove(&message.topic);
        } else {
            self.messages.insert(message.topic.clone(), message);
        }
    }

    /// Unexpired retained messages matching a (non-shared) filter, in topic order.
    pub fn matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        if !topic::has_wildcard(filter) {
            return self
                .messages
                .get(filter)
                .filter(|m| !m.is_expired(now))
                .cloned()
                .into_iter()
                .collect();
        }
        self.messages
            .iter()
            .filter(|(t, m)| topic::matches(filter, t) && !m.is_expired(now))
            .map(|(_, m)| Arc::clone(m))
            .collect()
    }

    /// Drops expired messages.
    pub fn purge_expired(&mut self, now: Instant) {
        self.messages.retain(|_, m| !m.is_expired(now));
    }

    /// The message retained on `topic`, if any.
    pub fn get(&self, topic: &str) -> Option<&Arc<Message>> {
        self.messages.get(topic)
    }

    /// All retained messages in topic order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Message>> {
        self.messages.values()
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Properties, QoS};
    use bytes::Bytes;
    use std::time::Duration;

    fn msg(topic: &str, payload: &'static str, expiry: Option<u32>, now: Instant) -> Arc<Message> {
        let props = Properties {
            message_expiry_interval: expiry,
            ..Properties::default()
        };
        Arc::new(Message::new(
            topic.into(),
            Bytes::from_static(payload.as_bytes()),
            QoS::AtLeastOnce,
            true,
            &props,
            None,
            now,
        ))
    }

    #[test]
    fn set_replace_clear() {
        let now = Instant::now();
        let mut r = RetainedStore::new();
        r.apply(msg("a/b", "1", None, now));
        r.apply(msg("a/b", "2", None, now));
        r.apply(msg("a/c", "3", None, now));
        r.apply(msg("$SYS/x", "4", None, now));
        let got: Vec<_> = r
            .matching("a/+", now)
            .iter()
            .map(|m| m.payload.clone())
            .collect();
        assert_eq!(got, ["2", "3"]);
        assert_eq!(r.matching("#", now).len(), 2, "# does not match $SYS");
        assert_eq!(r.matching("a/b", now).len(), 1);
        r.apply(msg("a/b", "", None, now));
        assert!(r.get("a/b").is_none());
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn expiry() {
        let now = Instant::now();
        let mut r = RetainedStore::new();
        r.apply(msg("a", "x", Some(5), now));
        assert_eq!(r.matching("a", now + Duration::from_secs(4)).len(), 1);
        assert!(r.matching("a", now + Duration::from_secs(5)).is_empty());
        r.purge_expired(now + Duration::from_secs(6));
        assert!(r.is_empty());
    }
}
