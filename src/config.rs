//! The broker's configuration: a TOML file plus CLI flags, validated once at
//! start-up into the typed structs below.
//!
//! ```toml
//! [limits]
//! max_connections = 10000
//!
//! [[listener]]
//! name = "plain"
//! bind = "127.0.0.1:1883"
//! mode = "plain"          # plain | tls
//! allow_anonymous = true  # default false: a listener admits nobody it cannot authenticate
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

mod exposure;
mod gateway;
pub use gateway::{split_host_port, GatewayConfig, UpstreamProtocol, UpstreamTlsConfig};

/// The `[limits]` table: the broker's own plain struct (the sans-IO core takes it without
/// knowing this module), read from TOML here.
pub use crate::broker::limits::Limits;
mod load;

pub use exposure::{security_label, weaker_modes};
pub use load::{ConfigError, Problem, DEFAULT_PLAIN_PORT, DEFAULT_TLS_PORT};

/// Whole broker configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Listeners; at least one.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Resource limits and MQTT 5 capabilities advertised in CONNACK.
    pub limits: Limits,
    /// Seconds between `$SYS/` updates; 0 disables `$SYS/`.
    pub sys_interval_secs: u64,
    /// Keep retained messages and persistent sessions in `persistence_file`
    /// (see `broker::persist` for what is durable and when).
    pub persistence: bool,
    /// The persistence store (redb); default `mqtt-lwa.redb` when `persistence` is on.
    pub persistence_file: Option<PathBuf>,
    /// The Prometheus endpoint (`[metrics]`); off unless `listen` is set.
    pub metrics: MetricsConfig,
    /// `[gateway]`: makes this the configuration of `mqtt-lwa gateway`, which forwards
    /// its clients to an upstream broker instead of serving them itself.
    pub gateway: Option<GatewayConfig>,
}

/// `[metrics]`: an HTTP listener serving `GET /metrics` in the
/// OpenMetrics text format, for Prometheus.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address to serve on, e.g. `127.0.0.1:9100`; none (the default) turns it off.
    /// Nothing authenticates the scraper: bind it to a private address.
    pub listen: Option<SocketAddr>,
}

impl BrokerConfig {
    /// The store file to use, if persistence is on (a file alone turns it on).
    pub fn persistence_path(&self) -> Option<PathBuf> {
        match (&self.persistence_file, self.persistence) {
            (Some(p), _) => Some(p.clone()),
            (None, true) => Some(PathBuf::from("mqtt-lwa.redb")),
            (None, false) => None,
        }
    }
}

impl Default for BrokerConfig {
    /// Without a configuration file: one anonymous plain listener on
    /// 127.0.0.1:1883. Only a file can add LWA, so nothing secret is exposed.
    fn default() -> Self {
        BrokerConfig {
            listeners: vec![ListenerConfig {
                allow_anonymous: true,
                ..ListenerConfig::default()
            }],
            limits: Limits::default(),
            sys_interval_secs: 10,
            persistence: false,
            persistence_file: None,
            metrics: MetricsConfig::default(),
            gateway: None,
        }
    }
}

/// Transport of a listener.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListenerMode {
    /// MQTT over TCP.
    #[default]
    Plain,
    /// MQTT over TLS (rustls).
    Tls,
}

/// One listening socket and the security that applies to it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    /// Name used in logs and `$SYS/`.
    pub name: String,
    /// Address and port.
    pub bind: SocketAddr,
    /// plain or tls.
    pub mode: ListenerMode,
    /// Accept clients without credentials (default false: secure unless stated;
    /// see README "Security defaults and what each listener exposes").
    pub allow_anonymous: bool,
    /// Mosquitto-format password file.
    pub password_file: Option<PathBuf>,
    /// Mosquitto-format ACL file.
    pub acl_file: Option<PathBuf>,
    /// LWA PSK store; when set, LWA clients are accepted on this listener.
    pub lwa_psk_file: Option<PathBuf>,
    /// LWA identities may use only their own client ids: the identity, or
    /// `<identity>/...` (LWA.md 12.4); others are refused with 0x87. Default
    /// false: only ids reserved for another identity are refused.
    pub lwa_own_client_ids_only: bool,
    /// TLS settings (mode = "tls").
    pub tls: Option<TlsListenerConfig>,
    /// Failed password logins one source IP (IPv6: /64) may make in a burst
    /// before CONNECT is refused with 0x9F (at least 1).
    pub auth_failure_burst: u32,
    /// Seconds to earn back one failed login after the burst (0: no limit).
    pub auth_failure_refill_secs: u64,
    /// Unauthenticated connections this listener may hold at once (its
    /// budget of `[limits] max_pending_auth`); 0 = an equal share,
    /// max_pending_auth / number of listeners, so a flood on one listener
    /// leaves the others room.
    pub max_pending_auth: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            name: "default".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 1883)),
            mode: ListenerMode::Plain,
            allow_anonymous: false,
            password_file: None,
            acl_file: None,
            lwa_psk_file: None,
            lwa_own_client_ids_only: false,
            tls: None,
            auth_failure_burst: 10,
            auth_failure_refill_secs: 6,
            max_pending_auth: 0,
        }
    }
}

/// TLS settings of a listener (Mosquitto's names where they exist).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsListenerConfig {
    /// Broker certificate chain (PEM).
    pub certfile: PathBuf,
    /// Broker private key (PEM).
    pub keyfile: PathBuf,
    /// CA bundle for client certificates (mutual TLS).
    pub cafile: Option<PathBuf>,
    /// Require and verify a client certificate.
    #[serde(default)]
    pub require_certificate: bool,
    /// Use the client certificate's CN as the user name.
    #[serde(default)]
    pub use_identity_as_username: bool,
    /// Minimum TLS version: "tlsv1.2" or "tlsv1.3".
    pub tls_version: Option<String>,
    /// rustls cipher suite names to allow.
    #[serde(default)]
    pub ciphers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistence_and_auth_rate_keys_parse() {
        let path = std::path::Path::new("t.toml");
        let c = BrokerConfig::from_toml(
            "persistence_file = \"/var/lib/b.redb\"\n[[listener]]\nallow_anonymous = true\nauth_failure_burst = 3\n",
            path,
        )
        .unwrap();
        assert_eq!(c.persistence_path(), Some(PathBuf::from("/var/lib/b.redb")));
        assert_eq!(c.listeners[0].auth_failure_burst, 3);
        assert_eq!(c.listeners[0].auth_failure_refill_secs, 6);
        let on = BrokerConfig::from_toml(
            "persistence = true\n[[listener]]\nallow_anonymous = true\n",
            path,
        )
        .unwrap();
        assert_eq!(on.persistence_path(), Some(PathBuf::from("mqtt-lwa.redb")));
        assert_eq!(BrokerConfig::default().persistence_path(), None);
    }

    #[test]
    fn metrics_section_parses_and_is_off_by_default() {
        let path = std::path::Path::new("t.toml");
        assert_eq!(BrokerConfig::default().metrics.listen, None);
        let c = BrokerConfig::from_toml(
            "[metrics]\nlisten = \"127.0.0.1:9100\"\n[[listener]]\nallow_anonymous = true\n",
            path,
        )
        .unwrap();
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9100".parse().unwrap()));
        let unknown_key = "[metrics]\nport = 1\n[[listener]]\nallow_anonymous = true\n";
        assert!(BrokerConfig::from_toml(unknown_key, path).is_err());
    }
}
