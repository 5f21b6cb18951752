//! MQTT 5.0 topic aliases, both directions, as pure per-connection tables,
//! for the broker's connections and for the client alike.
//!
//! Aliases are a wire-level compression of one connection, so they live next
//! to the codec and never reach the broker core: inbound PUBLISH topics are
//! resolved to full names before the core (or the client's user) sees them,
//! and outbound aliases are chosen at write time, in wire order.

use std::collections::HashMap;

use crate::codec::{Publish, ReasonCode};

/// Alias -> topic map for PUBLISH packets the client sends (bounded by the
/// Topic Alias Maximum the broker advertised in CONNACK).
#[derive(Debug, Default)]
pub struct InboundAliases {
    maximum: u16,
    /// Boxed on first use: most clients never set an alias, and an empty
    /// `HashMap` inline is 48 bytes of every idle connection.
    #[allow(clippy::box_collection)] // 8 bytes inline instead of 48
    topics: Option<Box<HashMap<u16, String>>>,
}

impl InboundAliases {
    /// A table accepting aliases `1..=maximum` (0 disables aliases).
    pub fn new(maximum: u16) -> Self {
        InboundAliases {
            maximum,
            topics: None,
        }
    }

    /// Changes the advertised maximum (only before the first PUBLISH).
    pub fn set_maximum(&mut self, maximum: u16) {
        self.maximum = maximum;
    }

    /// Replaces an aliased PUBLISH's topic by the full name and removes the
    /// Topic Alias property; records new mappings.
    ///
    /// Errors with 0x94 Topic Alias invalid for an alias of 0 or above the
    /// maximum, and for an empty topic with an alias never set; an empty topic
    /// without an alias is a Protocol Error (0x82).
    pub fn resolve(&mut self, publish: &mut Publish) -> Result<(), ReasonCode> {
        // `get_mut`: a PUBLISH without properties stays without an allocation.
        let alias = publish
            .properties
            .get_mut()
            .and_then(|p| p.topic_alias.take());
        let topic = std::mem::take(&mut publish.topic);
        publish.topic = self.resolve_topic(topic, alias)?;
        Ok(())
    }

    /// As [`Self::resolve`], for a topic and Topic Alias already taken apart.
    pub fn resolve_topic(
        &mut self,
        topic: String,
        alias: Option<u16>,
    ) -> Result<String, ReasonCode> {
        let Some(alias) = alias else {
            if topic.is_empty() {
                return Err(ReasonCode::PROTOCOL_ERROR);
            }
            return Ok(topic);
        };
        if alias == 0 || alias > self.maximum {
            return Err(ReasonCode::TOPIC_ALIAS_INVALID);
        }
        if topic.is_empty() {
            match self.topics.as_ref().and_then(|t| t.get(&alias)) {
                Some(known) => Ok(known.clone()),
                None => Err(ReasonCode::TOPIC_ALIAS_INVALID),
            }
        } else {
            (self.topics.get_or_insert_with(Box::default)).insert(alias, topic.clone());
            Ok(topic)
        }
    }
}

/// Topic -> alias map for PUBLISH packets the broker sends (bounded by the
/// client's Topic Alias Maximum from CONNECT).
///
/// Aliases are handed out first come, first served and never reassigned:
/// reassigning would save bytes only for workloads with more hot topics than
/// the client allows, at the cost of sending the full topic again each time.
#[derive(Debug, Default)]
pub struct OutboundAliases {
    maximum: u16,
    /// Boxed on first use, like [`InboundAliases`]' table.
    #[allow(clippy::box_collection)] // 8 bytes inline instead of 48
    aliases: Option<Box<HashMap<String, u16>>>,
}

impl OutboundAliases {
    /// A table that may use aliases `1..=maximum` (0: never alias).
    pub fn new(maximum: u16) -> Self {
        OutboundAliases {
            maximum,
            aliases: None,
        }
    }

    /// Rewrites an outgoing PUBLISH to use an alias where one exists or can
    /// be assigned: a known topic is sent empty with its alias; a new topic is
    /// sent in full together with its newly assigned alias.
    pub fn apply(&mut self, publish: &mut Publish) {
        if let Some(p) = publish.properties.get_mut() {
            p.topic_alias = None;
        }
        match self.choose(&publish.topic) {
            None => {}
            Some((true, alias)) => {
                publish.properties.topic_alias = Some(alias);
                publish.topic.clear();
            }
            Some((false, alias)) => {
                self.record(&publish.topic, alias);
                publish.properties.topic_alias = Some(alias);
            }
        }
    }

    /// The alias [`Self::apply`] would use for `topic`, changing nothing:
    /// `Some((true, alias))` when the topic is already mapped (it is then sent
    /// empty), `Some((false, alias))` for a new mapping that [`Self::record`]
    /// makes once the PUBLISH is sure to be sent, `None` for the full topic.
    pub fn choose(&self, topic: &str) -> Option<(bool, u16)> {
        if self.maximum == 0 || topic.is_empty() {
            return None;
        }
        if let Some(&alias) = self.aliases.as_ref().and_then(|a| a.get(topic)) {
            return Some((true, alias));
        }
        let used = self.aliases.as_ref().map_or(0, |a| a.len());
        // `used < maximum <= u16::MAX`, so the next alias fits.
        (used < usize::from(self.maximum))
            .then(|| u16::try_from(used + 1).unwrap_or(self.maximum))
            .map(|alias| (false, alias))
    }

    /// Records the new mapping `topic` -> `alias` that [`Self::choose`] offered.
    pub fn record(&mut self, topic: &str, alias: u16) {
        self.aliases
            .get_or_insert_with(Box::default)
            .insert(topic.to_owned(), alias);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::codec::{Properties, QoS};

    fn publish(topic: &str, alias: Option<u16>) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            packet_id: 0,
            properties: Properties {
                topic_alias: alias,
                ..Properties::default()
            }
            .into(),
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn inbound_set_then_use() {
        let mut t = InboundAliases::new(4);
        let mut p = publish("a/b", Some(2));
        t.resolve(&mut p).unwrap();
        assert_eq!(p.topic, "a/b");
        assert_eq!(p.properties.topic_alias, None);
        let mut p = publish("", Some(2));
        t.resolve(&mut p).unwrap();
        assert_eq!(p.topic, "a/b");
        // Re-map alias 2 to another topic.
        let mut p = publish("c", Some(2));
        t.resolve(&mut p).unwrap();
        let mut p = publish("", Some(2));
        t.resolve(&mut p).unwrap();
        assert_eq!(p.topic, "c");
    }

    #[test]
    fn inbound_errors() {
        let mut t = InboundAliases::new(4);
        assert_eq!(
            t.resolve(&mut publish("a", Some(0))),
            Err(ReasonCode::TOPIC_ALIAS_INVALID)
        );
        assert_eq!(
            t.resolve(&mut publish("a", Some(5))),
            Err(ReasonCode::TOPIC_ALIAS_INVALID)
        );
        assert_eq!(
            t.resolve(&mut publish("", Some(3))),
            Err(ReasonCode::TOPIC_ALIAS_INVALID)
        );
        assert_eq!(
            t.resolve(&mut publish("", None)),
            Err(ReasonCode::PROTOCOL_ERROR)
        );
        let mut none = InboundAliases::new(0);
        assert_eq!(
            none.resolve(&mut publish("a", Some(1))),
            Err(ReasonCode::TOPIC_ALIAS_INVALID)
        );
        assert!(none.resolve(&mut publish("a", None)).is_ok());
    }

    #[test]
    fn outbound_assigns_then_reuses_until_full() {
        let mut t = OutboundAliases::new(2);
        let mut p = publish("a", None);
        t.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("a", Some(1)));
        let mut p = publish("a", None);
        t.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("", Some(1)));
        let mut p = publish("b", None);
        t.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("b", Some(2)));
        let mut p = publish("c", None);
        t.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("c", None));
        let mut p = publish("b", None);
        t.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("", Some(2)));
    }

    #[test]
    fn outbound_choose_changes_nothing_until_recorded() {
        // The client sizes a PUBLISH with the alias before it commits to it.
        let mut t = OutboundAliases::new(1);
        assert_eq!(t.choose("a"), Some((false, 1)));
        assert_eq!(t.choose("a"), Some((false, 1)));
        t.record("a", 1);
        assert_eq!(t.choose("a"), Some((true, 1)));
        assert_eq!(t.choose("b"), None, "the table is full");
        assert_eq!(t.choose(""), None);
        assert_eq!(OutboundAliases::new(0).choose("a"), None);
    }

    #[test]
    fn inbound_resolve_topic_matches_resolve() {
        let mut t = InboundAliases::new(2);
        assert_eq!(t.resolve_topic("x".into(), Some(2)), Ok("x".into()));
        assert_eq!(t.resolve_topic(String::new(), Some(2)), Ok("x".into()));
        assert_eq!(
            t.resolve_topic(String::new(), None),
            Err(ReasonCode::PROTOCOL_ERROR)
        );
        assert_eq!(
            t.resolve_topic("y".into(), Some(3)),
            Err(ReasonCode::TOPIC_ALIAS_INVALID)
        );
    }

    #[test]
    fn outbound_disabled_strips_alias() {
        let mut t = OutboundAliases::new(0);
        let mut p = publish("a", Some(7));
        t.apply(&mut p);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("a", None));
    }
}
