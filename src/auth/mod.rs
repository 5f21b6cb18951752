//! Authentication and authorisation hooks shared by every security mode.
//!
//! The connection driver asks a [`ConnectAuthenticator`] what to do with a
//! CONNECT; the broker core asks an [`AccessPolicy`] before every publish,
//! subscribe and delivery. Modes plug in here: anonymous (allow all),
//! password (+ ACL), TLS client certificates, and LWA, whose handshake needs
//! one more step after CONNACK ([`PendingAuth`]) and which protects every
//! PUBLISH payload ([`PayloadProtection`]).

use bytes::Bytes;

pub mod acceptor;
pub mod acl;
mod atomic_write;
pub mod certs;
pub mod failure_log;
pub mod line_file;
pub mod listener;
mod listener_error;
pub mod lwa;
pub mod metadata;
pub mod password;
pub mod psk;
pub mod rate_limit;
pub mod tls;

pub use listener_error::ListenerError;

pub(crate) use atomic_write::write_file_atomic;

use crate::codec::{Connect, QoS, ReasonCode};

/// Who a connection is, as far as authorisation is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// Authenticated user name (password mode, TLS CN-as-username), if any.
    pub username: Option<String>,
    /// LWA identity, if the client authenticated with LWA.
    pub lwa_identity: Option<String>,
}

impl Principal {
    /// True when `live` is the identity this (revoked) principal names: the same
    /// user name or the same LWA identity.
    pub fn names_same_identity(&self, live: &Principal) -> bool {
        (self.username.is_some() && self.username == live.username)
            || (self.lwa_identity.is_some() && self.lwa_identity == live.lwa_identity)
    }

    /// The name ACL rules are matched against: the user name, else the LWA identity.
    pub fn acl_name(&self) -> Option<&str> {
        self.username.as_deref().or(self.lwa_identity.as_deref())
    }
}

/// Facts about the transport that authenticators may use.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    /// Remote socket address as text, for logs and rate limiting.
    pub remote_addr: Option<std::net::SocketAddr>,
    /// Listener name from the configuration.
    pub listener: String,
    /// True when the connection arrived over TLS.
    pub tls: bool,
    /// Common Name of a verified TLS client certificate (mutual TLS).
    pub tls_client_cn: Option<String>,
    /// The Session Present flag the CONNACK will carry, from the core's
    /// read-only `connack_preview`. LWA1 binds it into the handshake, so the
    /// server fills it in before calling `authenticate` on an MQTT 5 CONNECT
    /// with an Authentication Method; `None` makes LWA1 refuse (0x83).
    pub session_present: Option<bool>,
}

/// Encrypts and authenticates PUBLISH payloads on one connection (LWA records).
///
/// `seal` is applied to every PUBLISH the broker sends on the connection, in
/// wire order; `open` to every PUBLISH it receives, in wire order. The topic is
/// always the full topic name (after topic-alias resolution).
pub trait PayloadProtection: Send {
    /// Seals an outgoing payload.
    fn seal(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<Bytes, ReasonCode>;
    /// Opens an incoming payload; an error closes the connection with that reason.
    fn open(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<Bytes, ReasonCode>;
    /// Bytes added to each PUBLISH by sealing it ([`metadata::seal_publish`]):
    /// the record's tag, and under metadata protection the placeholder topic
    /// and the inner property length.
    fn overhead(&self) -> usize;

    /// Whether the Topic Name and the PUBLISH properties travel inside the
    /// record (LWA2 with metadata protection, LWA2.md 7.1): then every PUBLISH
    /// goes through [`metadata::seal_publish`] / [`metadata::open_publish`],
    /// which call `seal` and `open` with the placeholder topic. False by default.
    fn protects_metadata(&self) -> bool {
        false
    }

    /// The Authentication Method of key update AUTH packets, when this
    /// protection can update its keys on the live connection (LWA2: `L2`,
    /// LWA2.md section 8.2); `None` (the default) when it cannot.
    fn key_update_method(&self) -> Option<&'static str> {
        None
    }

    /// Client: whether a key update is due (half the records of a direction
    /// used under the current keys) and none is in flight.
    fn key_update_due(&self) -> bool {
        false
    }

    /// Client: starts a key update and returns the Authentication Data of
    /// the AUTH 0x19 to send; from now on `seal` uses the new keys, so that
    /// AUTH must be written before the next sealed PUBLISH.
    fn start_key_update(&mut self) -> Result<Bytes, ReasonCode> {
        Err(ReasonCode::PROTOCOL_ERROR)
    }

    /// Client: the broker's AUTH 0x00 data answering the key update; from
    /// now on `open` uses the new keys.
    fn finish_key_update(&mut self, _data: &[u8]) -> Result<(), ReasonCode> {
        Err(ReasonCode::PROTOCOL_ERROR)
    }

    /// Whether `seal` has no records left and no key update can renew them
    /// (LWA1): the client then ends the connection with DISCONNECT 0x00 and
    /// reconnects for fresh keys (LWA.md section 8). False by default.
    fn records_exhausted(&self) -> bool {
        false
    }

    /// Whether `open` has no records left and no key update can renew them
    /// (LWA1): the peer cannot seal another record either, so its DISCONNECT
    /// 0x83 means "reconnect for fresh keys" (LWA.md section 8). False by default.
    fn peer_records_exhausted(&self) -> bool {
        false
    }

    /// Whether `seal` has no records left under the current keys and a key
    /// update can renew them (broker: the client's request; client: the
    /// update in flight), so that an outgoing PUBLISH should wait for it
    /// instead of ending the connection.
    fn awaits_key_update(&self) -> bool {
        false
    }

    /// Broker: answers a client's key update (AUTH 0x19 data) with the data
    /// of the AUTH 0x00 to send; `open` uses the new keys at once, `seal`
    /// too, so that AUTH must be written before the next sealed PUBLISH.
    fn answer_key_update(&mut self, _data: &[u8]) -> Result<Bytes, ReasonCode> {
        Err(ReasonCode::PROTOCOL_ERROR)
    }
}

/// A CONNECT that has been answered with CONNACK but is not yet authenticated.
///
/// The broker causes no MQTT side effect for such a connection (no takeover,
/// no will, no session changes, no deliveries) until `finish` succeeds.
pub trait PendingAuth: Send {
    /// Authentication Method the continuation expects in AUTH packets.
    fn method(&self) -> &str;
    /// Consumes the client's AUTH (Re-authenticate) data.
    fn finish(self: Box<Self>, auth_data: &[u8]) -> Result<Authenticated, ReasonCode>;
    /// Whether the broker answers a successful `finish` with AUTH 0x00 (LWA1:
    /// yes; LWA2 omits it, LWA2.md section 6.3).
    fn sends_auth_success(&self) -> bool {
        true
    }
    /// Whether the client may confirm with its first PUBLISH instead of AUTH
    /// (LWA2's implicit confirmation, LWA2.md section 6.2).
    fn confirms_by_publish(&self) -> bool {
        false
    }
    /// Whether the handshake granted metadata protection (LWA2.md 7.1): then
    /// the confirming PUBLISH shows only the placeholder topic, and the
    /// plaintext `finish_with_publish` returns is the record's inner layout.
    fn protects_metadata(&self) -> bool {
        false
    }
    /// Consumes the client's first PUBLISH (topic after alias resolution) as
    /// its authentication; on success returns the opened payload too.
    fn finish_with_publish(
        self: Box<Self>,
        _topic: &str,
        _qos: QoS,
        _retain: bool,
        _payload: &[u8],
    ) -> Result<(Authenticated, Bytes), ReasonCode> {
        Err(ReasonCode::PROTOCOL_ERROR)
    }
}

/// A successful authentication.
pub struct Authenticated {
    /// Who the client is.
    pub principal: Principal,
    /// Payload protection for this connection, if the mode has one.
    pub protection: Option<Box<dyn PayloadProtection>>,
    /// Authentication Data for the AUTH Success packet the broker answers with, if any.
    pub auth_response: Option<Bytes>,
}

/// What to do with a CONNECT.
pub enum AuthDecision {
    /// Accept now; `connack_auth` is (method, data) to put in CONNACK, if any.
    Accept {
        /// The authenticated connection.
        authenticated: Authenticated,
        /// Authentication Method and Data for CONNACK.
        connack_auth: Option<(String, Bytes)>,
    },
    /// Send CONNACK with this method and data, then wait for the client's AUTH.
    Pending {
        /// Authentication Method and Data for CONNACK.
        connack_auth: (String, Bytes),
        /// The continuation that verifies the client's proof.
        continuation: Box<dyn PendingAuth>,
    },
    /// Refuse with this CONNACK reason code.
    Reject(ReasonCode),
}

/// Decides whether a CONNECT is allowed.
pub trait ConnectAuthenticator: Send + Sync {
    /// Looks at a CONNECT. Called off the async reactor when [`Self::is_blocking`] is true.
    fn authenticate(&self, connect: &Connect, peer: &PeerInfo) -> AuthDecision;
    /// True when `authenticate` does slow work (password hashing) and must run on a blocking thread.
    fn is_blocking(&self) -> bool {
        false
    }
    /// Re-reads credential files that changed on disk (called periodically by
    /// the server); returns the principals whose live sessions must now be
    /// closed (revoked identities, deleted users).
    fn reload(&self) -> Vec<Principal> {
        Vec::new()
    }
}

/// The security that applies to one listener: who may connect, and what they may do.
#[derive(Clone)]
pub struct ListenerSecurity {
    /// Decides on each CONNECT.
    pub authenticator: std::sync::Arc<dyn ConnectAuthenticator>,
    /// Authorises publishes, subscriptions and deliveries.
    pub policy: std::sync::Arc<dyn AccessPolicy>,
}

impl ListenerSecurity {
    /// Anonymous clients, no access control (the plaintext baseline).
    pub fn anonymous() -> Self {
        ListenerSecurity {
            authenticator: std::sync::Arc::new(AllowAnonymous),
            policy: std::sync::Arc::new(AllowAll),
        }
    }

    /// Builds a listener's security from its configuration: password file,
    /// ACL file, LWA PSK store, TLS client certificates, `allow_anonymous`
    /// (see [`listener`] for the dispatch and the per-identity policy).
    /// Errors name the listener, the file and the reason.
    pub fn from_config(config: &crate::config::ListenerConfig) -> Result<Self, ListenerError> {
        listener::from_config(config)
    }

    /// Every listener's security with the broker-wide policy (LWA identities
    /// and their client ids reserved on every listener; see [`listener`]).
    pub fn from_configs(
        configs: &[crate::config::ListenerConfig],
    ) -> Result<Vec<Self>, ListenerError> {
        listener::from_configs(configs)
    }
}

impl std::fmt::Debug for ListenerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenerSecurity")
    }
}

/// Authorisation checks applied by the broker core.
pub trait AccessPolicy: Send + Sync {
    /// May `principal` (with client id) publish to `topic`? Also applied to wills and retained messages.
    fn can_publish(&self, principal: &Principal, client_id: &str, topic: &str) -> bool;
    /// May it subscribe to `filter`? `Some(max_qos)` grants, `None` denies.
    fn can_subscribe(&self, principal: &Principal, client_id: &str, filter: &str) -> Option<QoS>;
    /// May a message on `topic` be delivered to it (checked per delivery, retained included)?
    fn can_receive(&self, principal: &Principal, client_id: &str, topic: &str) -> bool;
}

/// Anonymous mode: every client is accepted.
#[derive(Debug, Default, Clone)]
pub struct AllowAnonymous;

impl ConnectAuthenticator for AllowAnonymous {
    fn authenticate(&self, connect: &Connect, _peer: &PeerInfo) -> AuthDecision {
        AuthDecision::Accept {
            authenticated: Authenticated {
                principal: Principal {
                    username: connect.username.clone(),
                    lwa_identity: None,
                },
                protection: None,
                auth_response: None,
            },
            connack_auth: None,
        }
    }
}

/// No access control: everything is allowed.
#[derive(Debug, Default, Clone)]
pub struct AllowAll;

impl AccessPolicy for AllowAll {
    fn can_publish(&self, _: &Principal, _: &str, _: &str) -> bool {
        true
    }
    fn can_subscribe(&self, _: &Principal, _: &str, _: &str) -> Option<QoS> {
        Some(QoS::ExactlyOnce)
    }
    fn can_receive(&self, _: &Principal, _: &str, _: &str) -> bool {
        true
    }
}

/// Why a client-side authentication step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ClientAuthError {
    /// Reason code the client sends in DISCONNECT (5.0) before closing.
    pub reason: ReasonCode,
    /// Human-readable cause, for the CLI and logs.
    pub message: String,
}

/// What the client does after CONNACK.
#[derive(Default)]
pub struct ClientAuthStep {
    /// An AUTH packet to send right after CONNACK (LWA: the client Finished).
    pub auth_to_send: Option<crate::codec::Auth>,
    /// Payload protection for this connection (LWA records).
    pub protection: Option<Box<dyn PayloadProtection>>,
    /// LWA2: hold `auth_to_send` back and drop it if the client's next packet
    /// is a PUBLISH, whose sealed payload confirms the keys instead (LWA2.md
    /// 6.1); any other packet, or a short wait, sends it first.
    pub confirm_by_first_publish: bool,
}

impl std::fmt::Debug for ClientAuthStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuthStep")
            .field("auth_to_send", &self.auth_to_send)
            .field("protection", &self.protection.is_some())
            .field("confirm_by_first_publish", &self.confirm_by_first_publish)
            .finish()
    }
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("principal", &self.principal)
            .field("protection", &self.protection.is_some())
            .field("auth_response", &self.auth_response)
            .finish()
    }
}

/// The client side of a CONNECT-time security mode (LWA; anything that uses
/// MQTT 5 enhanced authentication).
///
/// The client calls `prepare_connect` on the fully built CONNECT (client id,
/// clean start and will are bound into LWA's transcript), `on_connack` on the
/// CONNACK, and `on_auth` on every AUTH the broker sends afterwards.
pub trait ClientAuthenticator: Send {
    /// Adds Authentication Method and Data to CONNECT.
    fn prepare_connect(&mut self, connect: &mut Connect) -> Result<(), ClientAuthError>;
    /// Checks CONNACK (a client configured for LWA refuses one without the expected data).
    fn on_connack(
        &mut self,
        connack: &crate::codec::ConnAck,
    ) -> Result<ClientAuthStep, ClientAuthError>;
    /// Checks a broker AUTH packet received after CONNACK.
    fn on_auth(&mut self, auth: &crate::codec::Auth) -> Result<(), ClientAuthError>;
    /// True while the broker's next packet must be AUTH (LWA1: AUTH 0x00 after
    /// the client's finished); the client treats any other packet except
    /// DISCONNECT as a protocol error (DISCONNECT 0x82). PUBLISH may be sent meanwhile.
    fn awaiting_broker_auth(&self) -> bool {
        false
    }
}
