//! Mosquitto `acl_file` access control: [`AclFile`] (parsed rules) and
//! [`AclPolicy`] (the broker's [`AccessPolicy`]).
//!
//! # File syntax (mosquitto 2.0, plus one extension)
//!
//! ```text
//! # comment (a line whose first non-blank character is '#')
//! topic read $SYS/#            # rules before the first `user` line: anonymous clients only
//! user alice                   # following rules: clients whose user name is `alice`
//! topic readwrite alice/#
//! topic deny alice/secret
//! topic sensors/#              # no access word = readwrite
//! pattern write devices/%c/up  # every client; %c = client id, %u = user name
//! topic readwrite sensors/# qos 1   # extension: cap the QoS of this rule
//! ```
//!
//! Access words: `read` (subscribe and receive), `write` (publish),
//! `readwrite`, `deny` (overrides every grant). The user name matched is
//! [`Principal::acl_name`] (the user name, else the LWA identity).
//!
//! **QoS cap extension**: a rule ending in `qos 0|1|2` caps the QoS granted
//! through it. A file using it is no longer a mosquitto file (mosquitto would
//! read `sensors/# qos 1` as part of the topic and refuse it), and a topic
//! whose last two words are `qos <digit>` cannot be written.
//!
//! # Semantics, and where they differ from mosquitto 2.0.11
//! - Publish needs a matching `write` rule, delivery a matching `read` rule,
//!   checked per delivered topic (retained messages and wills included).
//! - `deny` wins over any grant regardless of order (mosquitto stops at the
//!   first matching rule, so a `deny` after a grant has no effect there).
//! - Subscribe: mosquitto 2.0 grants every SUBSCRIBE and filters deliveries.
//!   We do the same for wildcard filters wider than the rules (they are
//!   granted and filtered per delivery), but refuse (0x87) a filter that no
//!   readable rule overlaps, or that a `deny` rule covers entirely, so the
//!   client learns at SUBACK time that it will never get anything. The
//!   granted QoS is the lowest cap among the readable rules the filter
//!   overlaps. `$share/<group>/<filter>` is checked as `<filter>`.
//! - Patterns: as in mosquitto, a user name or client id containing `+` or
//!   `#` gets no access through patterns; we also refuse `/` in a
//!   substituted value (mosquitto 1.x did), because client `a/b` would
//!   otherwise reach into client `a`'s `devices/%c/#` tree. A `deny` pattern
//!   whose substitution is unsafe denies everything (fail closed).
//! - A file with no rules at all denies everything (mosquitto before 1.5.3
//!   allowed everything: CVE-2018-12550).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::{AccessPolicy, Principal};
use crate::codec::QoS;

/// What a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclAccess {
    /// Subscribe and receive.
    Read,
    /// Publish.
    Write,
    /// Both.
    ReadWrite,
    /// Nothing; overrides grants.
    Deny,
}

impl AclAccess {
    fn reads(self) -> bool {
        matches!(self, AclAccess::Read | AclAccess::ReadWrite)
    }
    fn writes(self) -> bool {
        matches!(self, AclAccess::Write | AclAccess::ReadWrite)
    }
}

/// One `topic` or `pattern` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// Access granted (or denied).
    pub access: AclAccess,
    /// Topic filter; for patterns it may contain `%u` and `%c`.
    pub filter: String,
    /// QoS cap from the `qos N` extension.
    pub max_qos: Option<QoS>,
    /// Line in the file (for logs).
    pub line: usize,
}

/// Why an ACL file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclLineError {
    /// The line is not UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// `topic`/`pattern` with nothing after it.
    #[error("empty topic")]
    EmptyTopic,
    /// Unknown access word.
    #[error("invalid access type {0:?} (expected read, write, readwrite or deny)")]
    Access(String),
    /// The filter is not a valid MQTT topic filter.
    #[error("invalid topic filter {filter:?}: {reason}")]
    Filter {
        /// The filter.
        filter: String,
        /// Why.
        reason: &'static str,
    },
    /// `qos` followed by something other than 0, 1 or 2.
    #[error("invalid QoS cap {0:?} (expected 0, 1 or 2)")]
    Qos(String),
    /// `user` without a name.
    #[error("missing user name")]
    MissingUser,
    /// A keyword other than `topic`, `pattern` or `user`.
    #[error("unknown keyword {0:?} (expected topic, pattern or user)")]
    Keyword(String),
}

/// Errors loading an ACL file.
/// Errors loading an ACL file.
pub type AclFileError = super::line_file::LineFileError<AclLineError>;

/// A parsed ACL file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFile {
    /// Rules before the first `user` line: clients without a user name.
    pub anonymous: Vec<AclRule>,
    /// `topic` rules per user name.
    pub users: HashMap<String, Vec<AclRule>>,
    /// `pattern` rules: every client.
    pub patterns: Vec<AclRule>,
}

impl AclFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, AclFileError> {
        let bytes = std::fs::read(path).map_err(AclFileError::io(path))?;
        Self::parse(&bytes, path)
    }

    /// Parses file contents; `path` is only used in error messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, AclFileError> {
        let mut file = AclFile::default();
        let mut user: Option<String> = None;
        for (idx, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = idx + 1;
            let err = |reason| AclFileError::line(path, line, reason);
            let text = std::str::from_utf8(raw).map_err(|_| err(AclLineError::NotUtf8))?;
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_word(text);
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(err(AclLineError::MissingUser));
                    }
                    file.users.entry(rest.to_owned()).or_default();
                    user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(rest, keyword == "pattern", line).map_err(err)?;
                    if keyword == "pattern" {
                        file.patterns.push(rule);
                    } else if let Some(u) = &user {
                        file.users.entry(u.clone()).or_default().push(rule);
                    } else {
                        file.anonymous.push(rule);
                    }
                }
                other => return Err(err(AclLineError::Keyword(other.to_owned()))),
            }
        }
        Ok(file)
    }

    /// Number of `topic` and `pattern` rules.
    pub fn rule_count(&self) -> usize {
        self.anonymous.len()
            + self.patterns.len()
            + self.users.values().map(Vec::len).sum::<usize>()
    }
}

fn split_word(s: &str) -> (&str, &str) {
    match s.split_once(char::is_whitespace) {
        Some((w, rest)) => (w, rest.trim()),
        None => (s, ""),
    }
}

fn parse_rule(rest: &str, pattern: bool, line: usize) -> Result<AclRule, AclLineError> {
    if rest.is_empty() {
        return Err(AclLineError::EmptyTopic);
    }
    let (first, after) = split_word(rest);
    // As in mosquitto, a single word is the topic (access readwrite), even if it reads "read".
    let (access, mut topic) = if after.is_empty() {
        (AclAccess::ReadWrite, first)
    } else {
        let access = match first {
            "read" => AclAccess::Read,
            "write" => AclAccess::Write,
            "readwrite" => AclAccess::ReadWrite,
            "deny" => AclAccess::Deny,
            other => return Err(AclLineError::Access(other.to_owned())),
        };
        (access, after)
    };
    let mut max_qos = None;
    if let Some((head, qos_word)) = topic.rsplit_once(char::is_whitespace) {
        let head = head.trim_end();
        if let Some(filter) = head.strip_suffix(" qos").or(head.strip_suffix("\tqos")) {
            let q = qos_word
                .parse::<u8>()
                .ok()
                .and_then(QoS::from_u8)
                .ok_or_else(|| AclLineError::Qos(qos_word.to_owned()))?;
            max_qos = Some(q);
            topic = filter.trim_end();
        }
    }
    let check = if pattern {
        topic.replace("%u", "u").replace("%c", "c")
    } else {
        topic.to_owned()
    };
    validate_filter(&check).map_err(|reason| AclLineError::Filter {
        filter: topic.to_owned(),
        reason,
    })?;
    Ok(AclRule {
        access,
        filter: topic.to_owned(),
        max_qos,
        line,
    })
}

/// Checks MQTT topic filter syntax (`+` a whole level, `#` a whole last level).
fn validate_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("empty");
    }
    if filter.contains('\0') {
        return Err("contains NUL");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len().saturating_sub(1);
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i != last) {
            return Err("'#' must be the whole last level");
        }
        if level.contains('+') && *level != "+" {
            return Err("'+' must be a whole level");
        }
    }
    Ok(())
}

/// True when the first level of a filter is a wildcard (so it matches no `$` topic).
fn starts_with_wildcard(filter: &str) -> bool {
    filter.starts_with('+') || filter.starts_with('#')
}

/// MQTT matching of a topic name against a filter, including the `$` rule.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && starts_with_wildcard(filter) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when every topic matched by `inner` is also matched by `outer`.
pub fn filter_covers(outer: &str, inner: &str) -> bool {
    if inner.starts_with('$') && starts_with_wildcard(outer) {
        return false;
    }
    let mut o = outer.split('/');
    let mut i = inner.split('/');
    loop {
        match (o.next(), i.next()) {
            (Some("#"), _) => return true,
            (_, Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(ol), Some(il)) if ol == il && il != "+" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when some topic name is matched by both filters.
pub fn filters_overlap(a: &str, b: &str) -> bool {
    // A wildcard first level cannot meet a literal `$` first level.
    if (starts_with_wildcard(a) && b.starts_with('$'))
        || (starts_with_wildcard(b) && a.starts_with('$'))
    {
        return false;
    }
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) if p == q => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Strips `$share/<group>/` from a shared subscription filter.
fn subscription_target(filter: &str) -> Option<&str> {
    match filter.strip_prefix("$share/") {
        Some(rest) => {
            let (group, inner) = rest.split_once('/')?;
            if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
                return None;
            }
            Some(inner)
        }
        None => Some(filter),
    }
}

/// The access check applied to one client: its rules with patterns expanded.
struct Applicable {
    rules: Vec<(AclAccess, String, Option<QoS>, usize)>,
    /// A deny pattern could not be expanded safely: deny everything.
    deny_all: bool,
}

fn unsafe_value(v: &str) -> bool {
    v.contains(['+', '#', '/'])
}

/// Substitutes `%u` and `%c` in one pass, so a client id containing "%u" stays literal.
fn expand_pattern(pattern: &str, user: &str, client_id: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + user.len() + client_id.len());
    let mut rest = pattern;
    while let Some((before, after)) = rest.split_once('%') {
        out.push_str(before);
        if let Some(after) = after.strip_prefix('u') {
            out.push_str(user);
            rest = after;
        } else if let Some(after) = after.strip_prefix('c') {
            out.push_str(client_id);
            rest = after;
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

impl AclFile {
    fn applicable(&self, principal: &Principal, client_id: &str) -> Applicable {
        let name = principal.acl_name();
        let own = match name {
            Some(n) => self.users.get(n).map(Vec::as_slice).unwrap_or(&[]),
            None => self.anonymous.as_slice(),
        };
        let mut rules: Vec<_> = own
            .iter()
            .map(|r| (r.access, r.filter.clone(), r.max_qos, r.line))
            .collect();
        let mut deny_all = false;
        let wildcard_in_ids =
            name.is_some_and(|n| n.contains(['+', '#'])) || client_id.contains(['+', '#']);
        for p in &self.patterns {
            let uses_u = p.filter.contains("%u");
            let uses_c = p.filter.contains("%c");
            if uses_u && name.is_none() {
                continue;
            }
            let unsafe_sub = wildcard_in_ids
                || (uses_u && name.is_some_and(unsafe_value))
                || (uses_c && unsafe_value(client_id));
            if unsafe_sub {
                if p.access == AclAccess::Deny {
                    deny_all = true;
                }
                continue;
            }
            let expanded = expand_pattern(&p.filter, name.unwrap_or(""), client_id);
            rules.push((p.access, expanded, p.max_qos, p.line));
        }
        Applicable { rules, deny_all }
    }
}

/// Which way a message flows, for per-topic checks.
#[derive(Clone, Copy)]
enum Direction {
    Publish,
    Receive,
}

/// The [`AccessPolicy`] backed by an [`AclFile`]; reloadable in place.
pub struct AclPolicy {
    file: RwLock<Arc<AclFile>>,
}

impl AclPolicy {
    /// A policy over `file`.
    pub fn new(file: AclFile) -> Self {
        AclPolicy {
            file: RwLock::new(Arc::new(file)),
        }
    }

    /// Loads `path` into a policy.
    pub fn load(path: &Path) -> Result<Self, AclFileError> {
        Ok(Self::new(AclFile::load(path)?))
    }

    /// Swaps in a reloaded file; later checks use it.
    pub fn replace(&self, file: AclFile) {
        let mut guard = match self.file.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(file);
    }

    fn current(&self) -> Arc<AclFile> {
        match self.file.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The QoS cap on publishing to `topic`, `None` when publishing is denied.
    ///
    /// [`AccessPolicy::can_publish`] has no QoS, so a broker that honours
    /// `qos N` on write rules asks this as well.
    pub fn max_publish_qos(
        &self,
        principal: &Principal,
        client_id: &str,
        topic: &str,
    ) -> Option<QoS> {
        self.topic_check(principal, client_id, topic, Direction::Publish)
    }

    fn topic_check(
        &self,
        principal: &Principal,
        client_id: &str,
        topic: &str,
        dir: Direction,
    ) -> Option<QoS> {
        let file = self.current();
        let app = file.applicable(principal, client_id);
        if app.deny_all {
            return None;
        }
        let mut grant: Option<QoS> = None;
        for (access, filter, cap, _) in &app.rules {
            if !filter_matches(filter, topic) {
                continue;
            }
            if *access == AclAccess::Deny {
                return None;
            }
            let allowed = match dir {
                Direction::Publish => access.writes(),
                Direction::Receive => access.reads(),
            };
            if allowed {
                let q = cap.unwrap_or(QoS::ExactlyOnce);
                // Several grants: the most generous applies for an exact topic.
                grant = Some(grant.map_or(q, |g| g.max(q)));
            }
        }
        grant
    }
}

impl AccessPolicy for AclPolicy {
    fn can_publish(&self, principal: &Principal, client_id: &str, topic: &str) -> bool {
        let ok = self
            .topic_check(principal, client_id, topic, Direction::Publish)
            .is_some();
        if !ok {
            tracing::info!(user = ?principal.acl_name(), client_id, topic, "ACL denied publish");
        }
        ok
    }

    fn can_subscribe(&self, principal: &Principal, client_id: &str, filter: &str) -> Option<QoS> {
        let decision = (|| {
            let target = subscription_target(filter)?;
            let file = self.current();
            let app = file.applicable(principal, client_id);
            if app.deny_all {
                return None;
            }
            let mut grant: Option<QoS> = None;
            for (access, rule, cap, _) in &app.rules {
                if *access == AclAccess::Deny && filter_covers(rule, target) {
                    return None;
                }
                if access.reads() && filters_overlap(rule, target) {
                    let q = cap.unwrap_or(QoS::ExactlyOnce);
                    // Deliveries may come through any overlapping rule: take the lowest cap.
                    grant = Some(grant.map_or(q, |g| g.min(q)));
                }
            }
            grant
        })();
        if decision.is_none() {
            tracing::info!(user = ?principal.acl_name(), client_id, filter, "ACL denied subscribe");
        }
        decision
    }

    fn can_receive(&self, principal: &Principal, client_id: &str, topic: &str) -> bool {
        let ok = self
            .topic_check(principal, client_id, topic, Direction::Receive)
            .is_some();
        if !ok {
            // Normal for wildcard subscriptions wider than the rules: keep it out of info logs.
            tracing::debug!(user = ?principal.acl_name(), client_id, topic, "ACL withheld delivery");
        }
        ok
    }
}

#[cfg(test)]
mod tests;
