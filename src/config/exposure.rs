//! What weaker listeners can see of LWA traffic, worked out from the
//! configuration alone so the broker can say so at start-up (issue 13).
//!
//! LWA seals PUBLISH payloads only between an LWA client and the broker: a
//! client of any other mode that may subscribe to an LWA topic reads its
//! payloads in clear, and one that may publish there reaches LWA
//! subscribers with a record the broker sealed, indistinguishable from an
//! authentic message. The only guard is an `acl_file` on every listener
//! that admits such clients.

use super::{BrokerConfig, ListenerConfig, ListenerMode};

/// The ways in a listener offers other than LWA, as printed in warnings.
pub fn weaker_modes(l: &ListenerConfig) -> Vec<&'static str> {
    let mut modes = Vec::new();
    if l.allow_anonymous {
        modes.push("anonymous");
    }
    if l.password_file.is_some() {
        modes.push("password");
    }
    if l.mode == ListenerMode::Tls && l.tls.as_ref().is_some_and(|t| t.use_identity_as_username) {
        modes.push("certificate");
    }
    modes
}

/// The listener's transport and every way in, as printed on its
/// `listening on ADDR (...)` line: `tls` or `mutual-tls` when TLS, then
/// `anonymous`, `password`, `certificate`, `lwa` as configured.
pub fn security_label(l: &ListenerConfig) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if l.mode == ListenerMode::Tls {
        let mutual = l.tls.as_ref().is_some_and(|t| t.require_certificate);
        parts.push(if mutual { "mutual-tls" } else { "tls" });
    }
    parts.extend(weaker_modes(l));
    if l.lwa_psk_file.is_some() {
        parts.push("lwa");
    }
    parts.join(", ")
}

impl BrokerConfig {
    /// One warning per listener whose non-LWA clients may read and write
    /// every topic (no `acl_file`) while some listener serves LWA clients;
    /// empty when no listener has `lwa_psk_file`.
    pub fn lwa_exposure_warnings(&self) -> Vec<String> {
        let lwa: Vec<&str> = self
            .listeners
            .iter()
            .filter(|l| l.lwa_psk_file.is_some())
            .map(|l| l.name.as_str())
            .collect();
        if lwa.is_empty() {
            return Vec::new();
        }
        self.listeners
            .iter()
            .filter(|l| l.acl_file.is_none())
            .filter_map(|l| {
                let modes = weaker_modes(l);
                (!modes.is_empty()).then(|| {
                    format!(
                        "listener {:?}: {} clients may read and write every topic, including \
                         those of LWA clients on listener(s) {}: they read LWA payloads in clear \
                         and their publishes reach LWA subscribers sealed, as if authentic; \
                         set acl_file on this listener to keep them off LWA topics",
                        l.name,
                        modes.join("/"),
                        lwa.join(", ")
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> BrokerConfig {
        let psk = tempfile::NamedTempFile::new().unwrap();
        let text = text.replace("PSK", &psk.path().display().to_string());
        BrokerConfig::from_toml(&text, std::path::Path::new("t.toml")).unwrap()
    }

    #[test]
    fn weaker_listeners_next_to_lwa_are_reported_unless_acl_bound() {
        let alone = config("[[listener]]\nname = \"a\"\nallow_anonymous = true\n");
        assert!(alone.lwa_exposure_warnings().is_empty());
        let lwa_only = config("[[listener]]\nname = \"l\"\nlwa_psk_file = \"PSK\"\n");
        assert!(lwa_only.lwa_exposure_warnings().is_empty());
        let mixed = config(
            "[[listener]]\nname = \"a\"\nallow_anonymous = true\n\
             [[listener]]\nname = \"l\"\nbind = \"127.0.0.1:1884\"\nlwa_psk_file = \"PSK\"\nallow_anonymous = true\n\
             [[listener]]\nname = \"acl\"\nbind = \"127.0.0.1:1885\"\nallow_anonymous = true\nacl_file = \"PSK\"\n",
        );
        let warnings = mixed.lwa_exposure_warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("listener \"a\": anonymous clients"));
        assert!(warnings[1].starts_with("listener \"l\": anonymous clients"));
    }
}
