//! Expiry of each TLS listener's certificate, for `$SYS/` monitoring.
//!
//! The server publishes, per TLS listener, the retained topics of
//! [`CertificateExpiry::sys_messages`]; files are read on every call, so a
//! reloaded certificate shows up at the next `$SYS/` interval.

use std::path::PathBuf;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::{BrokerConfig, ListenerMode};

/// When one TLS listener's certificate chain stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateExpiry {
    /// Listener name from the configuration.
    pub listener: String,
    /// The certificate chain file.
    pub certfile: PathBuf,
    /// Earliest `notAfter` of the certificates in the file.
    pub not_after: OffsetDateTime,
    /// Whole days from now to `not_after` (negative once expired).
    pub days_left: i64,
}

impl CertificateExpiry {
    /// `(topic, payload)` pairs to publish under `$SYS/broker/tls/<listener>/certificate/`:
    /// `expiry` (RFC 3339 UTC time) and `days_left` (integer).
    pub fn sys_messages(&self) -> Vec<(String, String)> {
        let base = format!("$SYS/broker/tls/{}/certificate", self.listener);
        let when = self
            .not_after
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.not_after.unix_timestamp().to_string());
        vec![
            (format!("{base}/expiry"), when),
            (format!("{base}/days_left"), self.days_left.to_string()),
        ]
    }
}

/// The certificate expiry of every TLS listener of `config`, in listener
/// order; a listener whose file cannot be read is logged and left out.
pub fn certificate_expiry(config: &BrokerConfig) -> Vec<CertificateExpiry> {
    certificate_expiry_at(config, OffsetDateTime::now_utc())
}

/// [`certificate_expiry`] as of `now`.
pub fn certificate_expiry_at(config: &BrokerConfig, now: OffsetDateTime) -> Vec<CertificateExpiry> {
    let mut out = Vec::new();
    for listener in &config.listeners {
        let (ListenerMode::Tls, Some(tls)) = (listener.mode, &listener.tls) else {
            continue;
        };
        match crate::auth::certs::cert_expiry(&tls.certfile) {
            Ok(not_after) => out.push(CertificateExpiry {
                listener: listener.name.clone(),
                certfile: tls.certfile.clone(),
                not_after,
                days_left: (not_after - now).whole_seconds().div_euclid(86_400),
            }),
            Err(e) => {
                tracing::warn!(listener = %listener.name, error = %e, "certificate expiry unknown");
            }
        }
    }
    out
}
