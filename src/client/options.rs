//! Everything `Client::connect` needs to know.

use std::time::Duration;

use bytes::Bytes;

use super::session::SessionConfig;
use crate::auth::ClientAuthenticator;
use crate::codec::{Connect, LastWill, Properties, ProtocolVersion};
use crate::transport::tls::client::ClientTlsOptions;

/// Connection and session options (the CONNECT contents plus transport settings).
pub struct ConnectOptions {
    /// Broker host name or IP address (also the TLS server name).
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client identifier; empty asks a 5.0 broker to assign one.
    pub client_id: String,
    /// Clean Start (5.0) / Clean Session (3.1.1).
    pub clean_start: bool,
    /// Keep-alive in seconds; 0 disables PINGREQ and dead-broker detection.
    pub keep_alive: u16,
    /// User Name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// Last will.
    pub will: Option<LastWill>,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// CONNECT properties (5.0): session expiry, receive maximum, maximum
    /// packet size, topic alias maximum, user properties, request problem /
    /// response information. Authentication Method/Data come from `auth`.
    pub properties: Properties,
    /// Use topic aliases for outgoing PUBLISH when the broker offers them (5.0).
    pub outbound_topic_aliases: bool,
    /// TLS settings; plain TCP when `None`.
    pub tls: Option<ClientTlsOptions>,
    /// Enhanced authentication (LWA) for CONNECT, if any.
    pub auth: Option<Box<dyn ClientAuthenticator>>,
    /// Limit for TCP connect, TLS handshake and CONNACK together.
    pub connect_timeout: Duration,
    /// Reconnect after a lost connection (not after our DISCONNECT, a refusal
    /// or the broker taking the session over); `None`: the client ends.
    /// Only for [`super::Client::connect`], which knows where to reconnect to.
    pub reconnect: Option<ReconnectPolicy>,
}

/// How [`super::Client`] reconnects after losing the connection.
///
/// The session survives: with `clean_start = false` (and a session expiry
/// for 5.0) unacknowledged QoS 1/2 messages are sent again with DUP set and
/// their `publish` calls complete on the new connection; received messages
/// keep arriving through the same `recv`. Subscribe requests in flight when
/// the connection dropped fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Wait before each attempt.
    pub delay: Duration,
    /// Attempts per lost connection before giving up.
    pub max_attempts: u32,
}

impl ConnectOptions {
    /// Options for `host:port` with a random client id, clean start,
    /// keep-alive 60 s, MQTT 5.0, plain TCP and a 10 s connect timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            client_id: random_client_id("mqtt-lwa-"),
            clean_start: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            version: ProtocolVersion::V5,
            properties: Properties::default(),
            outbound_topic_aliases: true,
            tls: None,
            auth: None,
            connect_timeout: Duration::from_secs(10),
            reconnect: None,
        }
    }

    /// Splits the options into the session's part and the transport's part.
    pub(super) fn into_session_config(self) -> (SessionConfig, Transport) {
        let reconnect = self.reconnect;
        let connect_timeout = self.connect_timeout;
        let connect = Connect {
            protocol_version: self.version,
            clean_start: self.clean_start,
            keep_alive: self.keep_alive,
            client_id: self.client_id,
            will: self.will,
            username: self.username,
            password: self.password,
            properties: self.properties,
        };
        (
            SessionConfig {
                connect,
                outbound_topic_aliases: self.outbound_topic_aliases,
                auth: self.auth,
            },
            Transport {
                host: self.host,
                port: self.port,
                tls: self.tls,
                connect_timeout,
                reconnect,
            },
        )
    }
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs.
        f.debug_struct("ConnectOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("username", &self.username)
            .field("version", &self.version)
            .field("tls", &self.tls)
            .field("auth", &self.auth.is_some())
            .field("reconnect", &self.reconnect)
            .finish_non_exhaustive()
    }
}

/// Where and how to open the byte stream.
#[derive(Debug, Clone)]
pub(super) struct Transport {
    pub host: String,
    pub port: u16,
    pub tls: Option<ClientTlsOptions>,
    pub connect_timeout: Duration,
    pub reconnect: Option<ReconnectPolicy>,
}

/// `prefix` followed by 8 random hex digits (mosquitto_pub's `-I` style).
pub fn random_client_id(prefix: &str) -> String {
    format!("{prefix}{:08x}", rand::random::<u32>())
}
