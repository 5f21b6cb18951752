//! Reading and checking a configuration file at start-up: every problem is
//! reported as `FILE:LINE: reason`, before any socket is bound.
//!
//! Defaults applied here: a listener without `bind` listens on 127.0.0.1,
//! and a `bind` without a port (or no `bind`) gets 1883 for plain and 8883
//! for TLS listeners.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use toml_edit::ImDocument;

use super::{BrokerConfig, ListenerConfig, ListenerMode};

/// Default port of a plain listener.
pub const DEFAULT_PLAIN_PORT: u16 = 1883;
/// Default port of a TLS listener.
pub const DEFAULT_TLS_PORT: u16 = 8883;

/// A configuration problem, with the file and (when known) the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The configuration file.
    pub path: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

/// Where a problem sits: listener index and key (`tls.certfile` for nested keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Index in `[[listener]]` order, or `None` for the whole file.
    pub listener: Option<usize>,
    /// The offending key inside the listener table, if any.
    pub key: Option<&'static str>,
    /// What is wrong.
    pub reason: String,
}

fn default_port(mode: ListenerMode) -> u16 {
    match mode {
        ListenerMode::Plain => DEFAULT_PLAIN_PORT,
        ListenerMode::Tls => DEFAULT_TLS_PORT,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

impl BrokerConfig {
    /// Reads, parses, applies the port defaults and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            reason: format!("cannot read: {e}"),
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates configuration text; `path` names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let doc = ImDocument::parse(text).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: e.span().map(|s| line_of(text, s.start)),
            reason: e.message().trim().to_owned(),
        })?;
        // A bind without a port gets the mode's default; spliced into the
        // text on the same line, so later error lines stay right.
        let mut patched = String::with_capacity(text.len() + 16);
        let mut copied = 0;
        let mut bind_given = Vec::new();
        if let Some(listeners) = doc.get("listener").and_then(|i| i.as_array_of_tables()) {
            for table in listeners.iter() {
                let mode = match table.get("mode").and_then(|m| m.as_str()) {
                    Some("tls") => ListenerMode::Tls,
                    _ => ListenerMode::Plain,
                };
                let bind = table.get("bind");
                bind_given.push(bind.is_some());
                let (Some(value), Some(span)) = (
                    bind.and_then(|b| b.as_str()),
                    bind.and_then(toml_edit::Item::span),
                ) else {
                    continue;
                };
                if let Ok(ip) = value.parse::<IpAddr>() {
                    if let Some(before) = text.get(copied..span.start) {
                        patched.push_str(before);
                        patched
                            .push_str(&format!("\"{}\"", SocketAddr::new(ip, default_port(mode))));
                        copied = span.end;
                    }
                }
            }
        }
        patched.push_str(text.get(copied..).unwrap_or_default());
        let mut config: BrokerConfig = toml::from_str(&patched).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: e.span().map(|s| line_of(&patched, s.start)),
            reason: e.message().trim().to_owned(),
        })?;
        for (listener, given) in config.listeners.iter_mut().zip(bind_given) {
            if !given {
                listener.bind.set_port(default_port(listener.mode));
            }
        }
        if let Some(problem) = config.problems().into_iter().next() {
            return Err(ConfigError {
                path: path.to_owned(),
                line: locate(&doc, text, &problem),
                reason: problem.reason,
            });
        }
        Ok(config)
    }

    /// Checks what the types cannot: at least one listener, unique names,
    /// TLS settings present exactly for TLS listeners, files readable, a
    /// known TLS version, and a way in for every listener.
    pub fn validate(&self) -> Result<(), String> {
        match self.problems().into_iter().next() {
            None => Ok(()),
            Some(p) => Err(match p.listener.and_then(|i| self.listeners.get(i)) {
                Some(l) => format!("listener {:?}: {}", l.name, p.reason),
                None => p.reason,
            }),
        }
    }

    /// Every problem [`Self::validate`] would report, in file order.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.listeners.is_empty() {
            out.push(Problem {
                listener: None,
                key: None,
                reason: "at least one [[listener]] is required".into(),
            });
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let mut push = |key: Option<&'static str>, reason: String| {
                out.push(Problem {
                    listener: Some(i),
                    key,
                    reason,
                })
            };
            if let Some(first) = names.insert(&l.name, i) {
                push(
                    Some("name"),
                    format!(
                        "listener name {:?} already used by listener {}",
                        l.name,
                        first + 1
                    ),
                );
            }
            listener_problems(l, &mut push);
        }
        if let Some(g) = &self.gateway {
            for (key, reason) in g.problems() {
                out.push(Problem {
                    listener: None,
                    key: Some(key),
                    reason: format!("[gateway] {reason}"),
                });
            }
            // Said rather than ignored: a gateway keeps no state and has no
            // metrics endpoint of its own (README, "The gateway").
            if self.persistence || self.persistence_file.is_some() {
                out.push(Problem {
                    listener: None,
                    key: None,
                    reason: "persistence has no meaning for a gateway: sessions and retained messages live upstream".into(),
                });
            }
            if self.metrics.listen.is_some() {
                out.push(Problem {
                    listener: None,
                    key: None,
                    reason: "[metrics] is not offered by the gateway yet".into(),
                });
            }
        }
        out
    }
}

fn check_file(path: &Path, key: &'static str, push: &mut impl FnMut(Option<&'static str>, String)) {
    if let Err(e) = std::fs::File::open(path) {
        push(Some(key), format!("{key} {}: {e}", path.display()));
    }
}

fn listener_problems(l: &ListenerConfig, push: &mut impl FnMut(Option<&'static str>, String)) {
    for (key, file) in [
        ("password_file", &l.password_file),
        ("acl_file", &l.acl_file),
        ("lwa_psk_file", &l.lwa_psk_file),
    ] {
        if let Some(path) = file {
            check_file(path, key, push);
        }
    }
    match (l.mode, &l.tls) {
        (ListenerMode::Tls, None) => push(
            Some("mode"),
            "mode = \"tls\" needs a [listener.tls] table with certfile and keyfile".into(),
        ),
        (ListenerMode::Plain, Some(_)) => push(
            Some("tls"),
            "a [listener.tls] table on a plain listener (set mode = \"tls\")".into(),
        ),
        (ListenerMode::Plain, None) => {}
        (ListenerMode::Tls, Some(tls)) => {
            check_file(&tls.certfile, "tls.certfile", push);
            check_file(&tls.keyfile, "tls.keyfile", push);
            if let Some(ca) = &tls.cafile {
                check_file(ca, "tls.cafile", push);
            }
            if let Some(v) = &tls.tls_version {
                if let Err(e) = v.parse::<crate::transport::tls::TlsVersion>() {
                    push(Some("tls.tls_version"), e.to_string());
                }
            }
            if let Err(e) = crate::transport::tls::provider_with_suites(&tls.ciphers) {
                push(Some("tls.ciphers"), e.to_string());
            }
            if tls.require_certificate && tls.cafile.is_none() {
                push(
                    Some("tls.require_certificate"),
                    "require_certificate needs tls.cafile to verify client certificates".into(),
                );
            }
            if tls.use_identity_as_username && !tls.require_certificate {
                push(
                    Some("tls.use_identity_as_username"),
                    "use_identity_as_username needs require_certificate = true".into(),
                );
            }
        }
    }
    let cert_login =
        l.tls.as_ref().is_some_and(|t| t.use_identity_as_username) && l.mode == ListenerMode::Tls;
    if !l.allow_anonymous && l.password_file.is_none() && l.lwa_psk_file.is_none() && !cert_login {
        push(
            Some("allow_anonymous"),
            "no way in: allow_anonymous is false (the default) and there is no password_file, lwa_psk_file or use_identity_as_username; set allow_anonymous = true for an open listener".into(),
        );
    }
}

/// The line of a problem: its key, else its listener's header, else none.
fn locate(doc: &ImDocument<&str>, text: &str, problem: &Problem) -> Option<usize> {
    if problem.listener.is_none() {
        // A `[gateway]` key: `upstream`, or `tls.cafile` inside `[gateway.tls]`;
        // a problem of the whole file has no line.
        let key = problem.key?;
        let gateway = doc.get("gateway")?.as_table()?;
        let span = (|| {
            let (table, key) = match key.split_once('.') {
                Some((outer, inner)) => (gateway.get(outer)?.as_table()?, inner),
                None => (gateway, key),
            };
            table.key(key)?.span()
        })();
        return Some(line_of(text, span.or_else(|| gateway.span())?.start));
    }
    let table = doc
        .get("listener")
        .and_then(|i| i.as_array_of_tables())
        .and_then(|a| a.get(problem.listener?))?;
    let key_span = problem.key.and_then(|key| {
        let (table, key) = match key.split_once('.') {
            Some((outer, inner)) => (table.get(outer)?.as_table()?, inner),
            None => (table, key),
        };
        table.key(key)?.span()
    });
    let span = key_span.or_else(|| table.span())?;
    Some(line_of(text, span.start))
}

#[cfg(test)]
mod tests;
