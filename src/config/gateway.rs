//! The `[gateway]` table: what `mqtt-lwa gateway` forwards its clients to.
//!
//! ```toml
//! [gateway]
//! upstream = ["10.0.0.5:1883", "10.0.0.6:1883"]  # tried in order
//! protocol = "auto"                               # auto | 5 | 3.1.1
//! client_id_template = "{principal}/{client_id}"
//! username = "gateway-1"
//! password_file = "/etc/mqtt-lwa/upstream.secret"
//! ```

use std::path::PathBuf;

use serde::Deserialize;

/// Which MQTT version the gateway speaks to its upstream.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    /// MQTT 5.0 first; 3.1.1 when the upstream refuses 5.0 (remembered per address).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// MQTT 5.0 only.
    #[serde(rename = "5")]
    V5,
    /// MQTT 3.1.1 only.
    #[serde(rename = "3.1.1")]
    V311,
}

/// `[gateway]`: the upstream broker(s) and how clients map onto them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Upstream brokers as `HOST:PORT`, tried in this order for every client connection.
    pub upstream: Vec<String>,
    /// MQTT version toward the upstream.
    pub protocol: UpstreamProtocol,
    /// Upstream client id of a client; `{client_id}`, `{principal}`, `{username}`,
    /// `{lwa_identity}` and `{listener}` are replaced (see `gateway::template`).
    pub client_id_template: String,
    /// Upstream user name: the gateway's own account (a template, like the client id).
    pub username: Option<String>,
    /// Upstream password (prefer `password_file`: a config file is often world-readable).
    pub password: Option<String>,
    /// File whose first line is the upstream password.
    pub password_file: Option<PathBuf>,
    /// Seconds to reach one upstream address and get its CONNACK before the next is tried.
    pub connect_timeout_secs: u64,
    /// TLS toward the upstream (absent: plain TCP).
    pub tls: Option<UpstreamTlsConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            upstream: Vec::new(),
            protocol: UpstreamProtocol::Auto,
            client_id_template: "{client_id}".into(),
            username: None,
            password: None,
            password_file: None,
            connect_timeout_secs: 5,
            tls: None,
        }
    }
}

/// `[gateway.tls]`: TLS to the upstream broker.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTlsConfig {
    /// CA bundle the upstream certificate must chain to (default: the system bundle).
    pub cafile: Option<PathBuf>,
    /// Gateway certificate chain, when the upstream asks for one (mutual TLS).
    pub certfile: Option<PathBuf>,
    /// Gateway private key for `certfile`.
    pub keyfile: Option<PathBuf>,
    /// Name the upstream certificate must carry (default: each upstream's host).
    pub server_name: Option<String>,
}

impl GatewayConfig {
    /// What is wrong with this table, in order (empty when it is usable).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.upstream.is_empty() {
            out.push((
                "upstream",
                "at least one upstream broker is required, e.g. upstream = [\"127.0.0.1:1883\"]"
                    .to_owned(),
            ));
        }
        for u in &self.upstream {
            if let Err(e) = split_host_port(u) {
                out.push(("upstream", e));
            }
        }
        if let Err(e) = crate::gateway::template::Template::parse(&self.client_id_template) {
            out.push(("client_id_template", e.to_string()));
        }
        if let Some(u) = &self.username {
            if let Err(e) = crate::gateway::template::Template::parse(u) {
                out.push(("username", e.to_string()));
            }
        }
        if self.password.is_some() && self.password_file.is_some() {
            out.push((
                "password_file",
                "give password or password_file, not both".to_owned(),
            ));
        }
        if let Some(path) = &self.password_file {
            if let Err(e) = std::fs::File::open(path) {
                out.push((
                    "password_file",
                    format!("password_file {}: {e}", path.display()),
                ));
            }
        }
        if self.connect_timeout_secs == 0 {
            out.push(("connect_timeout_secs", "must be at least 1".to_owned()));
        }
        if let Some(tls) = &self.tls {
            for (key, file) in [
                ("tls.cafile", &tls.cafile),
                ("tls.certfile", &tls.certfile),
                ("tls.keyfile", &tls.keyfile),
            ] {
                if let Some(path) = file {
                    if let Err(e) = std::fs::File::open(path) {
                        out.push((key, format!("{key} {}: {e}", path.display())));
                    }
                }
            }
            if tls.certfile.is_some() != tls.keyfile.is_some() {
                out.push((
                    "tls.certfile",
                    "tls.certfile and tls.keyfile go together".to_owned(),
                ));
            }
        }
        out
    }
}

/// `HOST:PORT` (an IPv6 host in brackets) split into host and port.
pub fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let bad = || format!("upstream {addr:?}: expected HOST:PORT, e.g. \"127.0.0.1:1883\"");
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_split_and_bad_ones_are_named() {
        assert_eq!(
            split_host_port("127.0.0.1:1883").unwrap(),
            ("127.0.0.1".to_owned(), 1883)
        );
        assert_eq!(
            split_host_port("[::1]:8883").unwrap(),
            ("::1".to_owned(), 8883)
        );
        assert_eq!(
            split_host_port("broker.example:1883").unwrap(),
            ("broker.example".to_owned(), 1883)
        );
        for bad in ["127.0.0.1", "host:", ":1883", "host:0", "host:99999"] {
            let e = split_host_port(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn problems_name_the_key() {
        let empty = GatewayConfig::default();
        assert_eq!(empty.problems()[0].0, "upstream");
        let c = GatewayConfig {
            upstream: vec!["127.0.0.1:1883".into()],
            client_id_template: "{nope}".into(),
            password: Some("x".into()),
            password_file: Some("/nonexistent/secret".into()),
            ..GatewayConfig::default()
        };
        let keys: Vec<_> = c.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["client_id_template", "password_file", "password_file"]
        );
    }
}
