//! LWA1 and LWA2 glue (the Authentication Method selects the version,
//! [`LwaVersion`]): the sans-IO core in [`crate::lwa`] (the `lwa-core` crate)
//! behind the broker's and the client's authentication hooks (LWA.md
//! sections 6 and 7). What needs both MQTT and LWA types is here:
//!
//! - [`connect_context`]: the CONNECT fields the transcript binds.
//! - [`LwaReasonCode`]: the MQTT reason code of every [`LwaError`].
//! - the QoS of a record enters `lwa-core` as its byte (`qos as u8`).
//!
//! - [`LwaAuthenticator`]: a [`ConnectAuthenticator`] that answers an LWA1
//!   CONNECT with [`AuthDecision::Pending`] (the response goes into CONNACK)
//!   and authenticates the client only when its AUTH finished verifies.
//! - [`LwaProtection`]: [`PayloadProtection`] over the record sealer/opener.
//! - [`LwaClientAuthenticator`]: the client side; refuses any CONNACK without
//!   LWA1 authentication (downgrade).

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use rand_core::OsRng;

use super::failure_log::{FailureLog, LogVerdict};
use super::psk::KeyId;
use super::rate_limit::{ConnectRateLimiter, RateLimitConfig};
use super::{
    AuthDecision, Authenticated, ClientAuthError, ClientAuthStep, ClientAuthenticator,
    ConnectAuthenticator, PayloadProtection, PeerInfo, PendingAuth, Principal,
};
use crate::codec::{Auth, ConnAck, Connect, Properties, ProtocolVersion, QoS, ReasonCode};
use crate::lwa::{
    lwa2, BrokerAwaitingFinished, BrokerRecords, BrokerResponder, ClientAwaitingResponse,
    ClientOffer, ConnectContext, LwaError, Psk, RecordOpener, RecordSealer, WillContext,
    RECORD_OVERHEAD,
};

mod reason_codes;
mod store;
pub use reason_codes::LwaReasonCode;
pub use store::SharedPskStore;

/// The connect context (LWA.md 5.1) of a decoded (broker) or about-to-be-encoded
/// (client) CONNECT: the fields outside Authentication Data that the transcript binds.
pub fn connect_context(connect: &Connect) -> ConnectContext<'_> {
    ConnectContext {
        client_id: &connect.client_id,
        clean_start: connect.clean_start,
        will: connect.will.as_ref().map(|w| WillContext {
            topic: &w.topic,
            qos: w.qos as u8,
            retain: w.retain,
            payload: &w.payload,
        }),
    }
}

/// Which LWA version a connection runs, selected by the CONNECT's
/// Authentication Method (LWA2.md section 11): `LWA1` or `L2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LwaVersion {
    /// LWA1 (LWA.md), method `LWA1`.
    #[default]
    V1,
    /// LWA2 (LWA2.md), method `L2`.
    V2,
}

impl LwaVersion {
    /// The Authentication Method that names this version.
    pub fn method(self) -> &'static str {
        match self {
            LwaVersion::V1 => crate::lwa::METHOD,
            LwaVersion::V2 => lwa2::METHOD,
        }
    }

    /// The version a CONNECT's Authentication Method selects.
    pub fn from_method(method: Option<&str>) -> Result<Self, LwaError> {
        match method {
            Some(crate::lwa::METHOD) => Ok(LwaVersion::V1),
            Some(lwa2::METHOD) => Ok(LwaVersion::V2),
            Some(_) => Err(LwaError::MethodMismatch),
            None => Err(LwaError::MissingAuthentication),
        }
    }
}

/// The record limit exponent a broker configures unless told otherwise (LWA.md 7.3).
pub const DEFAULT_BROKER_RECORD_LIMIT_LOG2: u8 = 32;
/// The record limit exponent a client offers unless told otherwise (the maximum).
pub const DEFAULT_CLIENT_RECORD_LIMIT_LOG2: u8 = crate::lwa::MAX_RECORD_LIMIT_LOG2;

/// Broker side of LWA1 and LWA2: answers offers of either version (by
/// Authentication Method), verifies the client's finished.
///
/// Each CONNECT costs the broker two X25519 operations before the client
/// has proved anything (LWA.md 12.7), so attempts are rate limited per
/// source address: an attempt takes a token, a completed handshake gives it
/// back, and a source out of tokens is refused with 0x9F Connection rate
/// exceeded before any key work.
pub struct LwaAuthenticator {
    store: Arc<SharedPskStore>,
    responder: BrokerResponder,
    responder2: lwa2::BrokerResponder,
    limiter: Arc<Mutex<ConnectRateLimiter>>,
    failure_log: Arc<FailureLog>,
}

/// One operator log line per LWA1 authentication failure, at the level of
/// the password mode's ("bad user name or password"), rate limited.
/// The same line for an unknown identity and a wrong key (LWA.md 12.8).
fn log_failure(
    log: &FailureLog,
    peer: &PeerInfo,
    identity: Option<&str>,
    reason: &dyn std::fmt::Display,
    code: ReasonCode,
) {
    if let LogVerdict::Write { suppressed } = log.admit(std::time::Instant::now()) {
        tracing::warn!(
            addr = ?peer.remote_addr,
            identity = %identity.unwrap_or("-"),
            reason = %reason,
            code = format_args!("0x{:02x}", code.0),
            suppressed,
            "LWA1 authentication failed"
        );
    }
}

fn lock(limiter: &Mutex<ConnectRateLimiter>) -> std::sync::MutexGuard<'_, ConnectRateLimiter> {
    match limiter.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl LwaAuthenticator {
    /// An authenticator over `store` allowing `2^record_limit_log2` (1..=48)
    /// records per direction ([`DEFAULT_BROKER_RECORD_LIMIT_LOG2`] is the usual choice).
    pub fn new(store: Arc<SharedPskStore>, record_limit_log2: u8) -> Result<Self, LwaError> {
        Ok(LwaAuthenticator {
            store,
            responder: BrokerResponder::new(record_limit_log2)?,
            responder2: lwa2::BrokerResponder::new(record_limit_log2)?,
            limiter: Arc::new(Mutex::new(ConnectRateLimiter::new(
                RateLimitConfig::default(),
            ))),
            failure_log: Arc::new(FailureLog::default()),
        })
    }

    /// Replaces the per-source attempt limiter (its configuration and clock).
    pub fn with_rate_limiter(mut self, limiter: ConnectRateLimiter) -> Self {
        self.limiter = Arc::new(Mutex::new(limiter));
        self
    }

    /// The PSK store this authenticator reads.
    pub fn store(&self) -> &Arc<SharedPskStore> {
        &self.store
    }

    fn reject(&self, peer: &PeerInfo, connect: &Connect, err: &LwaError) -> AuthDecision {
        tracing::debug!(addr = ?peer.remote_addr, client_id = %connect.client_id, error = %err, "LWA1 CONNECT refused");
        log_failure(&self.failure_log, peer, None, err, err.reason_code());
        AuthDecision::Reject(err.reason_code())
    }
}

impl ConnectAuthenticator for LwaAuthenticator {
    fn authenticate(&self, connect: &Connect, peer: &PeerInfo) -> AuthDecision {
        if connect.protocol_version != ProtocolVersion::V5 {
            return self.reject(peer, connect, &LwaError::MissingAuthentication);
        }
        let version =
            match LwaVersion::from_method(connect.properties.authentication_method.as_deref()) {
                Ok(version) => version,
                Err(e) => return self.reject(peer, connect, &e),
            };
        // A missing Authentication Data is an empty, hence truncated, offer.
        let offer = connect
            .properties
            .authentication_data
            .clone()
            .unwrap_or_default();
        let Some(session_present) = peer.session_present else {
            // The response MAC covers Session Present: without the server's
            // read-only lookup the handshake could not verify on the client.
            tracing::error!("LWA1: server did not fill in PeerInfo::session_present");
            return AuthDecision::Reject(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR);
        };
        let source: Option<IpAddr> = peer.remote_addr.map(|a| a.ip());
        if !lock(&self.limiter).try_acquire(source) {
            log_failure(
                &self.failure_log,
                peer,
                None,
                &"source over its auth_failure_* rate limit",
                ReasonCode::CONNECTION_RATE_EXCEEDED,
            );
            return AuthDecision::Reject(ReasonCode::CONNECTION_RATE_EXCEEDED);
        }
        // The file as it is now, so a `psk rotate` that has returned is in
        // force for the next handshake, before the reload notices it.
        let store = self.store.freshest();
        let context = connect_context(connect);
        let mut key_id = None;
        let lookup = |id: &str| {
            let psk = store.lookup(id);
            key_id = psk.as_ref().map(|k| KeyId::of(id, k));
            psk
        };
        let answered = match version {
            LwaVersion::V1 => self
                .responder
                .respond(&offer, &context, session_present, lookup, &mut OsRng)
                .map(|(a, r)| (Awaiting::V1(a), r)),
            LwaVersion::V2 => self
                .responder2
                .respond(&offer, &context, session_present, lookup, &mut OsRng)
                .map(|(a, r)| (Awaiting::V2(a), r)),
        };
        match answered {
            Ok((awaiting, response)) => {
                tracing::debug!(
                    addr = ?peer.remote_addr,
                    claimed = awaiting.claimed_identity(),
                    "LWA1 offer answered; waiting for the client's finished"
                );
                AuthDecision::Pending {
                    connack_auth: (version.method().to_owned(), Bytes::from(response)),
                    continuation: Box::new(LwaPending {
                        awaiting,
                        done: PendingDone {
                            key_id,
                            store: Arc::clone(&self.store),
                            peer: peer.clone(),
                            limiter: Arc::clone(&self.limiter),
                            failure_log: Arc::clone(&self.failure_log),
                        },
                    }),
                }
            }
            Err(e) => self.reject(peer, connect, &e),
        }
    }

    fn reload(&self) -> Vec<Principal> {
        self.store
            .reload()
            .into_iter()
            .map(|id| Principal {
                username: None,
                lwa_identity: Some(id),
            })
            .collect()
    }
}

/// A broker handshake of either version waiting for the client's finished.
enum Awaiting {
    V1(BrokerAwaitingFinished),
    V2(lwa2::BrokerAwaitingConfirmation),
}

impl Awaiting {
    fn version(&self) -> LwaVersion {
        match self {
            Awaiting::V1(_) => LwaVersion::V1,
            Awaiting::V2(_) => LwaVersion::V2,
        }
    }

    fn claimed_identity(&self) -> &str {
        match self {
            Awaiting::V1(a) => a.claimed_identity(),
            Awaiting::V2(a) => a.claimed_identity(),
        }
    }

    fn on_finished(self, data: &[u8]) -> Result<BrokerRecords, LwaError> {
        match self {
            Awaiting::V1(a) => a.on_finished(data),
            Awaiting::V2(a) => a.on_finished(data),
        }
    }
}

/// The broker between CONNACK and the client's confirmation.
struct LwaPending {
    awaiting: Awaiting,
    done: PendingDone,
}

/// What the broker needs once the confirmation has been checked.
struct PendingDone {
    /// The key the response was computed with (None: unknown identity).
    key_id: Option<KeyId>,
    store: Arc<SharedPskStore>,
    peer: PeerInfo,
    limiter: Arc<Mutex<ConnectRateLimiter>>,
    failure_log: Arc<FailureLog>,
}

impl PendingAuth for LwaPending {
    fn method(&self) -> &str {
        self.awaiting.version().method()
    }

    fn sends_auth_success(&self) -> bool {
        self.awaiting.version() == LwaVersion::V1
    }

    fn confirms_by_publish(&self) -> bool {
        self.awaiting.version() == LwaVersion::V2
    }

    fn protects_metadata(&self) -> bool {
        matches!(&self.awaiting, Awaiting::V2(a) if a.protects_metadata())
    }

    fn finish(self: Box<Self>, auth_data: &[u8]) -> Result<Authenticated, ReasonCode> {
        let LwaPending { awaiting, done } = *self;
        let claimed = awaiting.claimed_identity().to_owned();
        done.complete(&claimed, awaiting.on_finished(auth_data))
    }

    fn finish_with_publish(
        self: Box<Self>,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<(Authenticated, Bytes), ReasonCode> {
        let LwaPending { awaiting, done } = *self;
        let Awaiting::V2(awaiting) = awaiting else {
            return Err(ReasonCode::PROTOCOL_ERROR);
        };
        let claimed = awaiting.claimed_identity().to_owned();
        // One copy of the record, opened in place.
        let mut buf = BytesMut::from(payload);
        let opened = awaiting
            .on_first_record(topic, qos as u8, retain, &mut buf)
            .map(|(records, len)| {
                buf.truncate(len);
                records
            });
        let authenticated = done.complete(&claimed, opened)?;
        Ok((authenticated, buf.freeze()))
    }
}

impl PendingDone {
    /// The checks after the client's confirmation verified (or failed).
    fn complete(
        self,
        claimed: &str,
        verified: Result<BrokerRecords, LwaError>,
    ) -> Result<Authenticated, ReasonCode> {
        match verified {
            Ok(records) => {
                // Issue 13: a handshake parked between CONNACK and the
                // finished was keyed before a revoke/rotate; it must not
                // complete with the old key.
                let Some(key_id) = self
                    .key_id
                    .filter(|k| self.store.key_is_current(&records.identity, k))
                else {
                    log_failure(
                        &self.failure_log,
                        &self.peer,
                        Some(&records.identity),
                        &"key revoked or rotated during the handshake",
                        ReasonCode::NOT_AUTHORIZED,
                    );
                    return Err(ReasonCode::NOT_AUTHORIZED);
                };
                lock(&self.limiter).refund(self.peer.remote_addr.map(|a| a.ip()));
                // Debug, as every mode's successful login: a line per handshake at
                // info cost LWA alone in `experiment serve` (2,797 lines in 17 s).
                tracing::debug!(addr = ?self.peer.remote_addr, identity = %records.identity, "LWA1 client authenticated");
                let watch = KeyWatch::new(Arc::clone(&self.store), &records.identity, key_id);
                Ok(Authenticated {
                    principal: Principal {
                        username: None,
                        lwa_identity: Some(records.identity),
                    },
                    protection: Some(Box::new(
                        LwaProtection::new(records.sealer, records.opener)
                            .with_key_watch(watch)
                            .with_key_update(records.update_secret.as_deref())
                            .with_metadata_protection(records.protect_metadata),
                    )),
                    auth_response: None,
                })
            }
            Err(e) => {
                // Same log line for unknown identity and wrong PSK (LWA.md 12.8).
                log_failure(
                    &self.failure_log,
                    &self.peer,
                    Some(claimed),
                    &e,
                    e.disconnect_reason_code(),
                );
                // The finished arrives after CONNACK: a DISCONNECT code.
                Err(e.disconnect_reason_code())
            }
        }
    }
}

/// [`PayloadProtection`] by LWA1 records: one sealer for what this side
/// sends, one opener for what it receives.
pub struct LwaProtection {
    sealer: RecordSealer,
    opener: RecordOpener,
    watch: Option<KeyWatch>,
    /// LWA2's key update state (LWA2.md section 8.2); `None` in LWA1.
    /// Boxed: an LWA1 connection keeps a pointer's worth (issue 17).
    update: Option<Box<lwa2::KeyUpdate>>,
    /// LWA2 metadata protection granted (LWA2.md 7.1).
    metadata: bool,
}

/// The broker's check that a live connection's key has not been revoked.
///
/// The reload closes revoked identities' sessions, but a handshake that
/// passed its key check just before the swap can reach the core just after
/// the close went out; such a connection must not move one record.
pub struct KeyWatch {
    store: Arc<SharedPskStore>,
    identity: String,
    key: KeyId,
    generation: u64,
}

impl KeyWatch {
    /// Watches `identity`'s key `key` in `store`.
    pub fn new(store: Arc<SharedPskStore>, identity: &str, key: KeyId) -> Self {
        let generation = store.revocation_generation();
        KeyWatch {
            store,
            identity: identity.to_owned(),
            key,
            generation,
        }
    }

    /// False once `identity` no longer has `key` (one atomic load unless a
    /// revocation happened since the last call).
    fn still_valid(&mut self) -> bool {
        let now = self.store.revocation_generation();
        if now == self.generation {
            return true;
        }
        if self
            .store
            .current()
            .key_is_current(&self.identity, &self.key)
        {
            self.generation = now;
            true
        } else {
            false
        }
    }
}

impl LwaProtection {
    /// Wraps the record layer of one connection.
    pub fn new(sealer: RecordSealer, opener: RecordOpener) -> Self {
        LwaProtection {
            sealer,
            opener,
            watch: None,
            update: None,
            metadata: false,
        }
    }

    /// Seals and opens PUBLISH topics and properties too (LWA2.md 7.1), when
    /// the handshake granted it.
    pub fn with_metadata_protection(mut self, protect: bool) -> Self {
        self.metadata = protect;
        self
    }

    /// Lets the connection update its keys (LWA2: `u_0` from the handshake;
    /// `None`, LWA1, leaves it without).
    pub fn with_key_update(mut self, update_secret: Option<&[u8; 32]>) -> Self {
        self.update = update_secret.map(|u| Box::new(lwa2::KeyUpdate::new(u)));
        self
    }

    /// The key generation records are sealed under (0 until the first update).
    pub fn key_generation(&self) -> u32 {
        self.update.as_ref().map_or(0, |u| u.generation())
    }

    /// Refuses every record once the connection's key is revoked (broker side).
    pub fn with_key_watch(mut self, watch: KeyWatch) -> Self {
        self.watch = Some(watch);
        self
    }

    fn check_key(&mut self) -> Result<(), ReasonCode> {
        let Some(w) = &mut self.watch else {
            return Ok(());
        };
        if w.still_valid() {
            return Ok(());
        }
        tracing::info!(identity = %w.identity, "LWA1 record refused: key revoked or rotated");
        Err(ReasonCode::ADMINISTRATIVE_ACTION)
    }
}

impl PayloadProtection for LwaProtection {
    fn seal(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<Bytes, ReasonCode> {
        self.check_key()?;
        // One allocation of exactly the record's size; the payload is copied
        // once and encrypted in place.
        let mut buf = BytesMut::with_capacity(payload.len() + RECORD_OVERHEAD);
        buf.put_slice(payload);
        let tag = self
            .sealer
            .seal_in_place(topic, qos as u8, retain, &mut buf)
            .map_err(|e| {
                tracing::warn!(error = %e, topic, "LWA1 record not sealed");
                e.reason_code()
            })?;
        buf.put_slice(&tag);
        Ok(buf.freeze())
    }

    fn open(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<Bytes, ReasonCode> {
        self.check_key()?;
        // One allocation: the record is copied once and decrypted in place.
        let mut buf = BytesMut::from(payload);
        let plain_len = self
            .opener
            .open_in_place(topic, qos as u8, retain, &mut buf)
            .map_err(|e| {
                tracing::warn!(error = %e, topic, "LWA1 record refused");
                e.reason_code()
            })?
            .len();
        buf.truncate(plain_len);
        Ok(buf.freeze())
    }

    fn overhead(&self) -> usize {
        if self.metadata {
            RECORD_OVERHEAD + lwa2::metadata::METADATA_OVERHEAD
        } else {
            RECORD_OVERHEAD
        }
    }

    fn protects_metadata(&self) -> bool {
        self.metadata
    }

    fn key_update_method(&self) -> Option<&'static str> {
        self.update.as_ref().map(|_| lwa2::METHOD)
    }

    fn key_update_due(&self) -> bool {
        self.update
            .as_ref()
            .is_some_and(|u| u.due(&self.sealer, &self.opener))
    }

    fn records_exhausted(&self) -> bool {
        self.update.is_none() && self.sealer.counter().remaining() == 0
    }

    fn peer_records_exhausted(&self) -> bool {
        self.update.is_none() && self.opener.counter().remaining() == 0
    }

    fn awaits_key_update(&self) -> bool {
        self.update.is_some() && self.sealer.counter().remaining() == 0
    }

    fn start_key_update(&mut self) -> Result<Bytes, ReasonCode> {
        let update = self.update.as_mut().ok_or(ReasonCode::PROTOCOL_ERROR)?;
        let request = update
            .start(&mut self.sealer)
            .map_err(|e| e.disconnect_reason_code())?;
        Ok(Bytes::copy_from_slice(&request))
    }

    fn finish_key_update(&mut self, data: &[u8]) -> Result<(), ReasonCode> {
        let update = self.update.as_mut().ok_or(ReasonCode::PROTOCOL_ERROR)?;
        update.on_response(data, &mut self.opener).map_err(|e| {
            tracing::warn!(error = %e, "LWA2 key update response refused");
            e.disconnect_reason_code()
        })?;
        tracing::debug!(generation = update.generation(), "LWA2 keys updated");
        Ok(())
    }

    fn answer_key_update(&mut self, data: &[u8]) -> Result<Bytes, ReasonCode> {
        // A revoked or rotated key gets no new keys either.
        self.check_key()?;
        let update = self.update.as_mut().ok_or(ReasonCode::PROTOCOL_ERROR)?;
        let response = update
            .answer(data, &mut self.opener, &mut self.sealer)
            .map_err(|e| {
                tracing::warn!(error = %e, "LWA2 key update request refused");
                e.disconnect_reason_code()
            })?;
        tracing::debug!(generation = update.generation(), "LWA2 keys updated");
        Ok(Bytes::copy_from_slice(&response))
    }
}

/// A client handshake of either version waiting for CONNACK.
enum ClientAwaiting {
    V1(ClientAwaitingResponse),
    V2(lwa2::ClientAwaitingResponse),
}

enum ClientState {
    Idle,
    AwaitingConnack(ClientAwaiting),
    /// Finished sent; the broker's AUTH 0x00 not seen yet.
    AwaitingBrokerAuth,
    Open,
    Failed,
}

/// Client side of LWA1: identity and PSK; one handshake per connection.
///
/// `prepare_connect` may be called again for a new connection (reconnect);
/// each call draws a fresh ephemeral key.
pub struct LwaClientAuthenticator {
    identity: String,
    psk: Psk,
    record_limit_log2: u8,
    version: LwaVersion,
    protect_metadata: bool,
    state: ClientState,
}

/// An LWA1 error after CONNACK, where it ends the connection with
/// DISCONNECT: hence the DISCONNECT reason code.
fn client_err(err: LwaError) -> ClientAuthError {
    ClientAuthError {
        reason: err.disconnect_reason_code(),
        message: err.to_string(),
    }
}

impl LwaClientAuthenticator {
    /// A client for `identity` with `psk`.
    pub fn new(identity: &str, psk: Psk) -> Result<Self, ClientAuthError> {
        super::psk::validate_identity(identity).map_err(|e| ClientAuthError {
            reason: ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
            message: e.to_string(),
        })?;
        Ok(LwaClientAuthenticator {
            identity: identity.to_owned(),
            psk,
            record_limit_log2: DEFAULT_CLIENT_RECORD_LIMIT_LOG2,
            version: LwaVersion::V1,
            protect_metadata: false,
            state: ClientState::Idle,
        })
    }

    /// A client whose key is read from `key_file` (`--lwa-key`, see [`super::psk::load_client_key`]).
    pub fn from_key_file(identity: &str, key_file: &Path) -> Result<Self, ClientAuthError> {
        let psk = super::psk::load_client_key(key_file, identity).map_err(|e| ClientAuthError {
            reason: ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
            message: e.to_string(),
        })?;
        Self::new(identity, psk)
    }

    /// Offers `2^record_limit_log2` (1..=48) records per direction.
    pub fn with_record_limit_log2(mut self, record_limit_log2: u8) -> Self {
        self.record_limit_log2 = record_limit_log2;
        self
    }

    /// Runs `version` (LWA1 unless told otherwise); the broker must accept its method.
    pub fn with_version(mut self, version: LwaVersion) -> Self {
        self.version = version;
        self
    }

    /// Asks for metadata protection (LWA2 only, LWA2.md 7.1): topic names and
    /// PUBLISH properties travel inside the records; the handshake fails
    /// unless the broker grants it. `prepare_connect` refuses it with LWA1.
    pub fn with_metadata_protection(mut self, protect: bool) -> Self {
        self.protect_metadata = protect;
        self
    }

    /// The LWA identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn fail(&mut self, err: ClientAuthError) -> ClientAuthError {
        self.state = ClientState::Failed;
        err
    }
}

impl ClientAuthenticator for LwaClientAuthenticator {
    fn prepare_connect(&mut self, connect: &mut Connect) -> Result<(), ClientAuthError> {
        if connect.protocol_version != ProtocolVersion::V5 {
            return Err(ClientAuthError {
                reason: ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                message: "LWA1 needs MQTT 5 (enhanced authentication)".into(),
            });
        }
        if self.protect_metadata && self.version == LwaVersion::V1 {
            return Err(ClientAuthError {
                reason: ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
                message: "metadata protection needs LWA2 (LWA1 protects payloads only)".into(),
            });
        }
        let context = connect_context(connect);
        let (identity, psk, limit) = (&self.identity, &self.psk, self.record_limit_log2);
        let started = match self.version {
            LwaVersion::V1 => ClientOffer::new(identity, psk, &context, limit, &mut OsRng)
                .map(|o| (o.offer_bytes, ClientAwaiting::V1(o.awaiting_response))),
            LwaVersion::V2 => lwa2::ClientOffer::new_with_metadata(
                identity,
                psk,
                &context,
                limit,
                self.protect_metadata,
                &mut OsRng,
            )
            .map(|o| (o.offer_bytes, ClientAwaiting::V2(o.awaiting_response))),
        };
        // Nothing is sent yet: the error's own code, not a DISCONNECT code.
        let (offer_bytes, awaiting) = started.map_err(|e| ClientAuthError {
            reason: e.reason_code(),
            message: e.to_string(),
        })?;
        connect.properties.authentication_method = Some(self.version.method().to_owned());
        connect.properties.authentication_data = Some(Bytes::from(offer_bytes));
        self.state = ClientState::AwaitingConnack(awaiting);
        Ok(())
    }

    fn on_connack(&mut self, connack: &ConnAck) -> Result<ClientAuthStep, ClientAuthError> {
        let state = std::mem::replace(&mut self.state, ClientState::Failed);
        let ClientState::AwaitingConnack(awaiting) = state else {
            return Err(ClientAuthError {
                reason: ReasonCode::PROTOCOL_ERROR,
                message: "CONNACK without a pending LWA1 offer".into(),
            });
        };
        if connack.reason_code != ReasonCode::SUCCESS {
            return Err(ClientAuthError {
                reason: connack.reason_code,
                message: format!(
                    "broker refused the connection (reason 0x{:02x})",
                    connack.reason_code.0
                ),
            });
        }
        let props = &connack.properties;
        let (Some(method), Some(data)) = (&props.authentication_method, &props.authentication_data)
        else {
            return Err(self.fail(client_err(LwaError::MissingAuthentication)));
        };
        if method != self.version.method() {
            return Err(self.fail(client_err(LwaError::MethodMismatch)));
        }
        let answered = match awaiting {
            ClientAwaiting::V1(a) => a.on_response(data, connack.session_present),
            ClientAwaiting::V2(a) => a.on_response(data, connack.session_present),
        };
        let (finished, records) = answered.map_err(|e| self.fail(client_err(e)))?;
        // LWA2 has no closing broker AUTH (LWA2.md 6.3): any AUTH is then unexpected.
        self.state = match self.version {
            LwaVersion::V1 => ClientState::AwaitingBrokerAuth,
            LwaVersion::V2 => ClientState::Open,
        };
        Ok(ClientAuthStep {
            auth_to_send: Some(Auth {
                reason_code: ReasonCode::RE_AUTHENTICATE,
                properties: Properties {
                    authentication_method: Some(self.version.method().to_owned()),
                    authentication_data: Some(Bytes::copy_from_slice(&finished.finished_bytes)),
                    ..Properties::default()
                },
            }),
            protection: Some(Box::new(
                LwaProtection::new(records.sealer, records.opener)
                    .with_key_update(records.update_secret.as_deref())
                    .with_metadata_protection(records.protect_metadata),
            )),
            confirm_by_first_publish: self.version == LwaVersion::V2,
        })
    }

    fn on_auth(&mut self, auth: &Auth) -> Result<(), ClientAuthError> {
        let state = &mut self.state;
        if !matches!(*state, ClientState::AwaitingBrokerAuth) {
            *state = ClientState::Failed;
            return Err(ClientAuthError {
                reason: ReasonCode::PROTOCOL_ERROR,
                message: "unexpected AUTH from the broker".into(),
            });
        }
        if auth.properties.authentication_method.as_deref() != Some(self.version.method()) {
            *state = ClientState::Failed;
            return Err(client_err(LwaError::MethodMismatch));
        }
        if auth.reason_code != ReasonCode::SUCCESS {
            *state = ClientState::Failed;
            return Err(ClientAuthError {
                reason: ReasonCode::PROTOCOL_ERROR,
                message: format!(
                    "broker AUTH with reason 0x{:02x} instead of 0x00",
                    auth.reason_code.0
                ),
            });
        }
        *state = ClientState::Open;
        Ok(())
    }

    fn awaiting_broker_auth(&self) -> bool {
        matches!(self.state, ClientState::AwaitingBrokerAuth)
    }
}

#[cfg(test)]
mod tests;
