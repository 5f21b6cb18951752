//! The subscription tree: which sessions want a message published on a topic.
//!
//! Filters are stored level by level in an arena of nodes (plain data, no
//! pointers), so that neither matching, insertion, removal nor dropping the
//! tree recurses: a filter with tens of thousands of levels cannot overflow
//! the stack. `+` and `#` are ordinary child keys that the matcher treats
//! specially; a topic starting with `$` is not matched by a filter starting
//! with a wildcard (MQTT 5.0 section 4.7.2).
//!
//! Shared subscriptions (`$share/{group}/{filter}`) live on the node of
//! `{filter}`, one group per share name, each with its members and a
//! round-robin cursor that the core advances as it picks a member.

use std::collections::{BTreeMap, HashMap};

use crate::codec::topic;
use crate::codec::SubscriptionOptions;

/// What one client asked for with one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionEntry {
    /// Subscription options, QoS already capped by the access policy.
    pub options: SubscriptionOptions,
    /// Subscription Identifier from SUBSCRIBE (5.0), if any.
    pub identifier: Option<u32>,
}

/// A non-shared subscription that matched a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Subscribing client.
    pub client_id: String,
    /// Its subscription.
    pub entry: SubscriptionEntry,
}

/// A shared-subscription group that matched a topic; exactly one member gets the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedHit {
    /// The full `$share/{group}/{filter}` text, the key for [`SubscriptionTree::advance_shared`].
    pub share: String,
    /// Members in a stable order.
    pub members: Vec<Hit>,
    /// Index in `members` where the round-robin search starts.
    pub cursor: usize,
}

/// Everything that matched one topic name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    /// Non-shared subscriptions; a client appears once per matching filter.
    pub normal: Vec<Hit>,
    /// Shared groups.
    pub shared: Vec<SharedHit>,
}

#[derive(Debug, Clone, Default)]
struct SharedGroup {
    members: BTreeMap<String, SubscriptionEntry>,
    cursor: usize,
}

#[derive(Debug, Clone, Default)]
struct Node {
    parent: usize,
    level: String,
    children: HashMap<String, usize>,
    clients: BTreeMap<String, SubscriptionEntry>,
    groups: BTreeMap<String, SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.clients.is_empty() && self.groups.is_empty()
    }
}

const ROOT: usize = 0;

/// The subscription tree of the whole broker.
#[derive(Debug, Clone)]
pub struct SubscriptionTree {
    nodes: Vec<Node>,
    free: Vec<usize>,
}

impl Default for SubscriptionTree {
    fn default() -> Self {
        SubscriptionTree {
            nodes: vec![Node::default()],
            free: Vec::new(),
        }
    }
}

/// A filter split into its share group (if any) and the plain filter.
fn split(filter: &str) -> Option<(Option<&str>, &str)> {
    match topic::parse_shared(filter) {
        Ok(Some((group, inner))) => Some((Some(group), inner)),
        Ok(None) => Some((None, filter)),
        Err(_) => None,
    }
}

impl SubscriptionTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    fn node(&self, i: usize) -> Option<&Node> {
        self.nodes.get(i)
    }

    fn find(&self, plain: &str) -> Option<usize> {
        let mut at = ROOT;
        for level in plain.split('/') {
            at = *self.node(at)?.children.get(level)?;
        }
        Some(at)
    }

    fn alloc(&mut self, parent: usize, level: &str) -> usize {
        let node = Node {
            parent,
            level: level.to_owned(),
            ..Node::default()
        };
        if let Some(i) = self.free.pop() {
            if let Some(slot) = self.nodes.get_mut(i) {
                *slot = node;
                return i;
            }
        }
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn find_or_create(&mut self, plain: &str) -> usize {
        let mut at = ROOT;
        for level in plain.split('/') {
            let existing = self
                .nodes
                .get(at)
                .and_then(|n| n.children.get(level))
                .copied();
            at = match existing {
                Some(child) => child,
                None => {
                    let child = self.alloc(at, level);
                    if let Some(n) = self.nodes.get_mut(at) {
                        n.children.insert(level.to_owned(), child);
                    }
                    child
                }
            };
        }
        at
    }

    /// Adds or replaces `client_id`'s subscription to `filter` (shared or not).
    /// Returns true when it replaced an existing one. An invalid filter is ignored.
    pub fn insert(&mut self, filter: &str, client_id: &str, entry: SubscriptionEntry) -> bool {
        let Some((group, plain)) = split(filter) else {
            return false;
        };
        let at = self.find_or_create(plain);
        let Some(node) = self.nodes.get_mut(at) else {
            return false;
        };
        let previous = match group {
            None => node.clients.insert(client_id.to_owned(), entry),
            Some(g) => node
                .groups
                .entry(g.to_owned())
                .or_default()
                .members
                .insert(client_id.to_owned(), entry),
        };
        previous.is_some()
    }

    /// Removes `client_id`'s subscription to `filter`; true when there was one.
    pub fn remove(&mut self, filter: &str, client_id: &str) -> bool {
        let Some((group, plain)) = split(filter) else {
            return false;
        };
        let Some(at) = self.find(plain) else {
            return false;
        };
        let Some(node) = self.nodes.get_mut(at) else {
            return false;
        };
        let removed = match group {
            None => node.clients.remove(client_id).is_some(),
            Some(g) => {
                let removed = node
                    .groups
                    .get_mut(g)
                    .is_some_and(|grp| grp.members.remove(client_id).is_some());
                if node.groups.get(g).is_some_and(|grp| grp.members.is_empty()) {
                    node.groups.remove(g);
                }
                removed
            }
        };
        self.prune(at);
        removed
    }

    /// Frees empty nodes from `at` upwards.
    fn prune(&mut self, mut at: usize) {
        while at != ROOT {
            let Some(node) = self.nodes.get(at) else {
                return;
            };
            if !node.is_empty() {
                return;
            }
            let parent = node.parent;
            let level = self
                .nodes
                .get_mut(at)
                .map(|n| std::mem::take(&mut n.level))
                .unwrap_or_default();
            if let Some(p) = self.nodes.get_mut(parent) {
                p.children.remove(&level);
            }
            self.free.push(at);
            at = parent;
        }
    }

    /// All subscriptions matching the topic name `name`.
    pub fn matches(&self, name: &str) -> Matches {
        let mut out = Matches::default();
        let levels: Vec<&str> = name.split('/').collect();
        let dollar = name.starts_with('$');
        // (node, index of the next level to match)
        let mut stack = vec![(ROOT, 0usize)];
        while let Some((at, depth)) = stack.pop() {
            let Some(node) = self.node(at) else { continue };
            let wildcards_allowed = !(depth == 0 && dollar);
            if wildcards_allowed {
                if let Some(&hash) = node.children.get("#") {
                    self.collect(hash, &mut out);
                }
            }
            let Some(level) = levels.get(depth) else {
                self.collect(at, &mut out);
                continue;
            };
            if wildcards_allowed {
                if let Some(&plus) = node.children.get("+") {
                    stack.push((plus, depth + 1));
                }
            }
            if *level != "+" && *level != "#" {
                if let Some(&child) = node.children.get(*level) {
                    stack.push((child, depth + 1));
                }
            }
        }
        out
    }

    fn collect(&self, at: usize, out: &mut Matches) {
        let Some(node) = self.node(at) else { return };
        out.normal.extend(node.clients.iter().map(|(c, e)| Hit {
            client_id: c.clone(),
            entry: *e,
        }));
        if node.groups.is_empty() {
            return;
        }
        let plain = self.path(at);
        for (name, group) in &node.groups {
            out.shared.push(SharedHit {
                share: format!("$share/{name}/{plain}"),
                members: group
                    .members
                    .iter()
                    .map(|(c, e)| Hit {
                        client_id: c.clone(),
                        entry: *e,
                    })
                    .collect(),
                cursor: group.cursor,
            });
        }
    }

    /// The filter text leading to node `at`.
    fn path(&self, mut at: usize) -> String {
        let mut levels = Vec::new();
        while at != ROOT {
            let Some(node) = self.node(at) else { break };
            levels.push(node.level.as_str());
            at = node.parent;
        }
        levels.reverse();
        levels.join("/")
    }

    /// The members of the shared group `share` (a `$share/...` filter), if it exists.
    pub fn shared_group(&self, share: &str) -> Option<SharedHit> {
        let Some((Some(group), plain)) = split(share) else {
            return None;
        };
        let g = self.node(self.find(plain)?)?.groups.get(group)?;
        Some(SharedHit {
            share: share.to_owned(),
            members: g
                .members
                .iter()
                .map(|(c, e)| Hit {
                    client_id: c.clone(),
                    entry: *e,
                })
                .collect(),
            cursor: g.cursor,
        })
    }

    /// Sets the round-robin cursor of the shared group `share` (a `$share/...` filter).
    pub fn advance_shared(&mut self, share: &str, cursor: usize) {
        let Some((Some(group), plain)) = split(share) else {
            return;
        };
        let Some(at) = self.find(plain) else { return };
        if let Some(g) = self.nodes.get_mut(at).and_then(|n| n.groups.get_mut(group)) {
            g.cursor = cursor;
        }
    }

    /// Number of live nodes besides the root (for tests and `$SYS/`).
    pub fn node_count(&self) -> usize {
        self.nodes.len() - 1 - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::QoS;

    fn entry(qos: QoS) -> SubscriptionEntry {
        SubscriptionEntry {
            options: SubscriptionOptions::qos(qos),
            identifier: None,
        }
    }

    fn clients(m: &Matches) -> Vec<String> {
        let mut v: Vec<String> = m.normal.iter().map(|h| h.client_id.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn wildcards_and_dollar_rule() {
        let mut t = SubscriptionTree::new();
        t.insert("a/b", "exact", entry(QoS::AtMostOnce));
        t.insert("a/+", "plus", entry(QoS::AtMostOnce));
        t.insert("a/#", "hash", entry(QoS::AtMostOnce));
        t.insert("#", "all", entry(QoS::AtMostOnce));
        t.insert("+/+", "twoplus", entry(QoS::AtMostOnce));
        t.insert("$SYS/#", "sys", entry(QoS::AtMostOnce));
        assert_eq!(
            clients(&t.matches("a/b")),
            ["all", "exact", "hash", "plus", "twoplus"]
        );
        assert_eq!(clients(&t.matches("a")), ["all", "hash"]);
        assert_eq!(clients(&t.matches("a/b/c")), ["all", "hash"]);
        assert_eq!(clients(&t.matches("$SYS/x")), ["sys"]);
        assert_eq!(clients(&t.matches("$SYS")), ["sys"]);
        assert_eq!(clients(&t.matches("/x")), ["all", "twoplus"]);
    }

    #[test]
    fn agrees_with_topic_matches() {
        let filters = [
            "a/b", "a/+", "a/#", "#", "+", "+/+", "/+", "+/b/#", "$SYS/+", "a//c",
        ];
        let names = [
            "a/b", "a", "a/b/c", "/x", "$SYS/u", "x/b", "x/b/c/d", "a//c", "b",
        ];
        let mut t = SubscriptionTree::new();
        for f in filters {
            t.insert(f, f, entry(QoS::AtMostOnce));
        }
        for n in names {
            let mut want: Vec<String> = filters
                .iter()
                .filter(|f| topic::matches(f, n))
                .map(|f| f.to_string())
                .collect();
            want.sort();
            assert_eq!(clients(&t.matches(n)), want, "{n}");
        }
    }

    #[test]
    fn replace_remove_and_prune() {
        let mut t = SubscriptionTree::new();
        assert!(!t.insert("a/b/c", "c1", entry(QoS::AtMostOnce)));
        assert!(t.insert("a/b/c", "c1", entry(QoS::ExactlyOnce)));
        assert_eq!(
            t.matches("a/b/c").normal[0].entry.options.qos,
            QoS::ExactlyOnce
        );
        assert_eq!(t.node_count(), 3);
        assert!(!t.remove("a/b", "c1"));
        assert!(t.remove("a/b/c", "c1"));
        assert!(!t.remove("a/b/c", "c1"));
        assert_eq!(t.node_count(), 0);
        assert!(t.matches("a/b/c").normal.is_empty());
        // Freed nodes are reused.
        t.insert("x/y", "c2", entry(QoS::AtMostOnce));
        assert_eq!(t.nodes.len(), 4);
    }

    #[test]
    fn shared_groups() {
        let mut t = SubscriptionTree::new();
        t.insert("$share/g/a/+", "c1", entry(QoS::AtLeastOnce));
        t.insert("$share/g/a/+", "c2", entry(QoS::AtLeastOnce));
        t.insert("$share/h/a/#", "c3", entry(QoS::AtLeastOnce));
        let m = t.matches("a/b");
        assert!(m.normal.is_empty());
        assert_eq!(m.shared.len(), 2);
        let g = m.shared.iter().find(|s| s.share == "$share/g/a/+").unwrap();
        assert_eq!(g.members.len(), 2);
        assert_eq!(g.cursor, 0);
        t.advance_shared("$share/g/a/+", 1);
        let m = t.matches("a/b");
        let g = m.shared.iter().find(|s| s.share == "$share/g/a/+").unwrap();
        assert_eq!(g.cursor, 1);
        assert!(t.remove("$share/g/a/+", "c1"));
        assert!(t.remove("$share/g/a/+", "c2"));
        assert_eq!(t.matches("a/b").shared.len(), 1);
    }

    proptest::proptest! {
        /// The tree finds exactly the filters that `topic::matches` accepts.
        #[test]
        fn tree_agrees_with_the_matcher_on_random_filters(
            filters in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(vec!["a", "b", "", "+", "#", "$s"]), 1..5),
                0..12),
            names in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(vec!["a", "b", "", "$s"]), 1..5),
                1..8),
        ) {
            let filters: Vec<String> = filters
                .iter()
                .map(|f| f.join("/"))
                .filter(|f| topic::validate_topic_filter(f).is_ok())
                .collect();
            let mut t = SubscriptionTree::new();
            for (i, f) in filters.iter().enumerate() {
                t.insert(f, &format!("{i}"), entry(QoS::AtMostOnce));
            }
            for n in names.iter().map(|n| n.join("/")) {
                if topic::validate_topic_name(&n).is_err() {
                    continue;
                }
                let mut want: Vec<String> = filters
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| topic::matches(f, &n))
                    .map(|(i, _)| format!("{i}"))
                    .collect();
                want.sort();
                proptest::prop_assert_eq!(clients(&t.matches(&n)), want, "{}", n);
            }
            for (i, f) in filters.iter().enumerate() {
                t.remove(f, &format!("{i}"));
            }
            proptest::prop_assert_eq!(t.node_count(), 0);
        }
    }

    #[test]
    fn very_deep_filters_do_not_recurse() {
        let deep = "a/".repeat(50_000) + "b";
        let mut t = SubscriptionTree::new();
        t.insert(&deep, "c", entry(QoS::AtMostOnce));
        t.insert("#", "all", entry(QoS::AtMostOnce));
        assert_eq!(clients(&t.matches(&deep)), ["all", "c"]);
        assert!(t.remove(&deep, "c"));
        assert_eq!(t.node_count(), 1);
    }
}
