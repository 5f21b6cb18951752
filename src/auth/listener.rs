//! A listener's security assembled from its configuration: which CONNECTs
//! go to which mode, and the per-identity policy across modes.
//!
//! Dispatch on the CONNECT's Authentication Method:
//!
//! | CONNECT                          | handled by                                            |
//! |----------------------------------|-------------------------------------------------------|
//! | method `LWA1`, PSK store set     | [`LwaAuthenticator`] (enhanced auth, `Pending`)       |
//! | any other method                 | refused, 0x8C Bad authentication method               |
//! | no method, `use_identity_as_username` | [`CertificateAuthenticator`] (CN is the user name) |
//! | no method, password file set     | [`PasswordAuthenticator`] (+ `allow_anonymous`)       |
//! | no method, no password file      | anonymous if `allow_anonymous`, else 0x87             |
//!
//! Per-identity policy (LWA.md 12.10), broker-wide (issue 13): a name that
//! is an LWA identity on *any* listener is refused as a password user name
//! (0x86, even if the password file also has it), as a TLS certificate CN
//! (0x87), and cannot be claimed as an unauthenticated user name either; so
//! ACL rules written for an LWA identity never apply to another mode. On a
//! listener with a PSK store but no password file every CONNECT with a user
//! name is refused with 0x86, whatever the name, so the answer does not tell
//! LWA identities from other names; those refusals, like password and LWA1
//! failures, draw on the per-source `auth_failure_*` budget.
//! Without a password file, a CONNECT's user name is not authenticated, so
//! it is dropped from the principal whenever any listener of the broker has
//! an ACL file, a password file, certificate logins or a PSK store (names
//! mean something there; otherwise anyone could claim any user's rights or
//! session).
//!
//! Client ids of LWA identities belong to them (LWA.md 12.4): a client id
//! that is an LWA identity or starts with `<identity>/` is not refused
//! before authentication (that answer would list the identities to anyone
//! who probes client ids), but when the identity connects it takes the id
//! back from a session another principal made there: that session ends
//! (its connection is closed with 0x8E) and the device starts afresh (the
//! broker core, `BrokerCore::reclaims`). Another LWA identity asking for it
//! is refused with 0x87 once its proof is in, before any side effect (after
//! CONNACK: DISCONNECT 0x87).
//! With `lwa_own_client_ids_only = true` on a listener, its LWA identities
//! may use no other client ids at all (LWA.md 12.4's SHOULD; off by default). The broker core binds every other session to the principal
//! that created it (`Limits::bind_client_ids`).

use super::ListenerError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::acl::AclPolicy;
use super::lwa::{LwaAuthenticator, SharedPskStore, DEFAULT_BROKER_RECORD_LIMIT_LOG2};
use super::password::{PasswordAuthenticator, PasswordFile, PasswordHash};
use super::rate_limit::{ConnectRateLimiter, RateLimitConfig};
use super::tls::CertificateAuthenticator;
use super::{
    AllowAll, AuthDecision, Authenticated, ConnectAuthenticator, ListenerSecurity, PeerInfo,
    PendingAuth, Principal,
};
use crate::codec::{Connect, ReasonCode};
use crate::config::{ListenerConfig, ListenerMode};

/// Notices content changes of a file (digest, not mtime: same-second edits count).
struct FileWatch {
    path: PathBuf,
    digest: Mutex<Option<[u8; 32]>>,
}

impl FileWatch {
    fn new(path: &Path) -> Self {
        let watch = FileWatch {
            path: path.to_owned(),
            digest: Mutex::new(None),
        };
        watch.changed();
        watch
    }

    /// True (once) when the content differs from the last call.
    fn changed(&self) -> bool {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return false;
        };
        let now: [u8; 32] = Sha256::digest(&bytes).into();
        let mut last = match self.digest.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let changed = *last != Some(now);
        *last = Some(now);
        changed
    }
}

struct PasswordMode {
    authenticator: PasswordAuthenticator,
    watch: FileWatch,
    /// Each user's hash at the last reload: a user whose entry is gone or
    /// changed (a new password) has live sessions closed.
    users: Mutex<BTreeMap<String, PasswordHash>>,
}

fn user_hashes(file: &PasswordFile) -> BTreeMap<String, PasswordHash> {
    file.entries()
        .map(|(u, h)| (u.to_owned(), h.clone()))
        .collect()
}

/// The LWA identities of every listener of the broker (issue 13: identity
/// names and their client ids must not cross listeners or modes).
#[derive(Clone, Default)]
pub struct LwaIdentities {
    stores: Arc<Vec<Arc<SharedPskStore>>>,
}

impl LwaIdentities {
    /// True when `name` is an LWA identity on some listener.
    pub fn contains(&self, name: &str) -> bool {
        self.stores.iter().any(|s| s.current().contains(name))
    }

    /// True when `client_id` is reserved for an LWA identity: the identity
    /// itself, or `<identity>/<anything>`.
    pub fn reserves_client_id(&self, client_id: &str) -> bool {
        let head = client_id.split('/').next().unwrap_or(client_id);
        !head.is_empty() && self.contains(head)
    }
}

/// The client id an LWA connection asked for, checked against the identity it proves.
struct ReservedClientIdCheck {
    identities: LwaIdentities,
    client_id: String,
    /// `lwa_own_client_ids_only`: any client id other than the identity's own is refused.
    own_only: bool,
}

impl ReservedClientIdCheck {
    /// 0x87 when the client id is reserved for an identity other than `principal`'s.
    fn allows(&self, principal: &Principal) -> Result<(), ReasonCode> {
        let head = self.client_id.split('/').next().unwrap_or_default();
        let own = principal.lwa_identity.as_deref() == Some(head);
        if !own && (self.own_only || self.identities.reserves_client_id(&self.client_id)) {
            tracing::warn!(client_id = %self.client_id, identity = ?principal.lwa_identity,
                "client id reserved for another LWA identity; refused");
            return Err(ReasonCode::NOT_AUTHORIZED);
        }
        Ok(())
    }
}

/// An LWA continuation whose result is checked by [`ReservedClientIdCheck`].
struct OwnClientId {
    inner: Box<dyn PendingAuth>,
    check: ReservedClientIdCheck,
}

impl PendingAuth for OwnClientId {
    fn method(&self) -> &str {
        self.inner.method()
    }

    fn sends_auth_success(&self) -> bool {
        self.inner.sends_auth_success()
    }

    fn confirms_by_publish(&self) -> bool {
        self.inner.confirms_by_publish()
    }

    fn protects_metadata(&self) -> bool {
        self.inner.protects_metadata()
    }

    fn finish_with_publish(
        self: Box<Self>,
        topic: &str,
        qos: crate::codec::QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<(Authenticated, bytes::Bytes), ReasonCode> {
        let (authenticated, plain) = self
            .inner
            .finish_with_publish(topic, qos, retain, payload)?;
        self.check.allows(&authenticated.principal)?;
        Ok((authenticated, plain))
    }

    fn finish(self: Box<Self>, auth_data: &[u8]) -> Result<Authenticated, ReasonCode> {
        let authenticated = self.inner.finish(auth_data)?;
        self.check.allows(&authenticated.principal)?;
        Ok(authenticated)
    }
}

/// The [`ConnectAuthenticator`] of one listener (see the module docs).
pub struct ListenerAuthenticator {
    name: String,
    lwa: Option<LwaAuthenticator>,
    identities: LwaIdentities,
    names_matter: bool,
    lwa_own_client_ids_only: bool,
    password: Option<PasswordMode>,
    acl: Option<(Arc<AclPolicy>, FileWatch)>,
    certificate_username: bool,
    allow_anonymous: bool,
    /// Failed user-name logins without a password file (issue 13: they
    /// used to be unlimited, and told LWA identities apart).
    failures: Mutex<ConnectRateLimiter>,
}

fn failure_limiter(config: &ListenerConfig) -> ConnectRateLimiter {
    ConnectRateLimiter::new(RateLimitConfig {
        burst: config.auth_failure_burst.max(1),
        refill_every: std::time::Duration::from_secs(config.auth_failure_refill_secs),
        ..RateLimitConfig::default()
    })
}

impl ListenerAuthenticator {
    fn is_lwa_identity(&self, name: &str) -> bool {
        self.identities.contains(name)
    }

    /// An LWA identity may not take a client id reserved for another one
    /// (checked once the identity is proven, before any side effect).
    fn own_client_id_only(&self, decision: AuthDecision, connect: &Connect) -> AuthDecision {
        let check = ReservedClientIdCheck {
            identities: self.identities.clone(),
            client_id: connect.client_id.clone(),
            own_only: self.lwa_own_client_ids_only,
        };
        match decision {
            AuthDecision::Pending {
                connack_auth,
                continuation,
            } => AuthDecision::Pending {
                connack_auth,
                continuation: Box::new(OwnClientId {
                    inner: continuation,
                    check,
                }),
            },
            AuthDecision::Accept {
                authenticated,
                connack_auth,
            } => match check.allows(&authenticated.principal) {
                Ok(()) => AuthDecision::Accept {
                    authenticated,
                    connack_auth,
                },
                Err(code) => AuthDecision::Reject(code),
            },
            other => other,
        }
    }

    fn certificate_login(&self, connect: &Connect, peer: &PeerInfo) -> AuthDecision {
        let decision = CertificateAuthenticator.authenticate(connect, peer);
        if let AuthDecision::Accept { authenticated, .. } = &decision {
            if let Some(cn) = authenticated.principal.username.as_deref() {
                if self.is_lwa_identity(cn) {
                    tracing::warn!(addr = ?peer.remote_addr, cn, "certificate CN is an LWA identity; refused");
                    return AuthDecision::Reject(ReasonCode::NOT_AUTHORIZED);
                }
            }
        }
        decision
    }

    fn without_credentials(&self, connect: &Connect, peer: &PeerInfo) -> AuthDecision {
        if let (Some(user), true) = (connect.username.as_deref(), self.lwa.is_some()) {
            // With a PSK store and no password file no user name can be
            // authenticated here, and answering LWA identities differently
            // from other names lets anyone list the identities (LWA.md
            // S7). Every user name gets 0x86, and each refusal is a
            // failure that counts against the source's budget.
            let source = peer.remote_addr.map(|a| a.ip());
            let mut limiter = match self.failures.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if !limiter.try_acquire(source) {
                tracing::warn!(addr = ?peer.remote_addr, user, "user name login refused: source over its rate limit");
                return AuthDecision::Reject(ReasonCode::CONNECTION_RATE_EXCEEDED);
            }
            let lwa = self.is_lwa_identity(user);
            tracing::warn!(addr = ?peer.remote_addr, user, lwa_identity = lwa, "bad user name or password (no password file on this listener)");
            return AuthDecision::Reject(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        }
        if !self.allow_anonymous {
            tracing::info!(addr = ?peer.remote_addr, listener = %self.name, "CONNECT without credentials refused");
            return AuthDecision::Reject(ReasonCode::NOT_AUTHORIZED);
        }
        let names_matter = self.names_matter;
        AuthDecision::Accept {
            authenticated: Authenticated {
                principal: Principal {
                    username: if names_matter {
                        None
                    } else {
                        connect.username.clone()
                    },
                    lwa_identity: None,
                },
                protection: None,
                auth_response: None,
            },
            connack_auth: None,
        }
    }
}

impl ConnectAuthenticator for ListenerAuthenticator {
    fn authenticate(&self, connect: &Connect, peer: &PeerInfo) -> AuthDecision {
        match connect.properties.authentication_method.as_deref() {
            Some(method) => {
                // Either LWA version; the authenticator dispatches on the method.
                if let (Some(lwa), Ok(_)) =
                    (&self.lwa, super::lwa::LwaVersion::from_method(Some(method)))
                {
                    return self.own_client_id_only(lwa.authenticate(connect, peer), connect);
                }
                tracing::info!(addr = ?peer.remote_addr, method, listener = %self.name, "authentication method not offered here");
                AuthDecision::Reject(ReasonCode::BAD_AUTHENTICATION_METHOD)
            }
            None if self.certificate_username => self.certificate_login(connect, peer),
            None => match &self.password {
                Some(mode) => mode.authenticator.authenticate(connect, peer),
                None => self.without_credentials(connect, peer),
            },
        }
    }

    fn is_blocking(&self) -> bool {
        self.password.is_some()
    }

    fn reload(&self) -> Vec<Principal> {
        let mut closed = Vec::new();
        if let Some(lwa) = &self.lwa {
            closed.extend(lwa.reload());
        }
        if let Some(mode) = &self.password {
            if mode.watch.changed() {
                match PasswordFile::load(&mode.watch.path) {
                    Ok(file) => {
                        let now = user_hashes(&file);
                        let mut users = match mode.users.lock() {
                            Ok(g) => g,
                            Err(poisoned) => poisoned.into_inner(),
                        };
                        // Deleted users and changed passwords alike: whoever
                        // logged in with the old credentials is logged out.
                        for (user, hash) in users.iter() {
                            if now.get(user) != Some(hash) {
                                closed.push(Principal {
                                    username: Some(user.clone()),
                                    lwa_identity: None,
                                });
                            }
                        }
                        *users = now;
                        mode.authenticator.replace_file(file);
                        tracing::info!(file = %mode.watch.path.display(), "password file reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "password file unusable; keeping the previous one")
                    }
                }
            }
        }
        if let Some((policy, watch)) = &self.acl {
            if watch.changed() {
                match super::acl::AclFile::load(&watch.path) {
                    Ok(file) => {
                        policy.replace(file);
                        tracing::info!(file = %watch.path.display(), "ACL file reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ACL file unusable; keeping the previous rules")
                    }
                }
            }
        }
        closed
    }
}

fn load_psk(config: &ListenerConfig) -> Result<Option<Arc<SharedPskStore>>, ListenerError> {
    let name = &config.name;
    Ok(match &config.lwa_psk_file {
        Some(path) => Some(Arc::new(SharedPskStore::load(path).map_err(|error| {
            ListenerError::PskFile {
                listener: name.clone(),
                error,
            }
        })?)),
        None => None,
    })
}

/// True when user names carry rights or sessions somewhere on the broker,
/// so a name nobody authenticated must not be kept.
fn names_matter(config: &ListenerConfig) -> bool {
    config.acl_file.is_some()
        || config.lwa_psk_file.is_some()
        || config.password_file.is_some()
        || (config.mode == ListenerMode::Tls
            && config
                .tls
                .as_ref()
                .is_some_and(|t| t.use_identity_as_username))
}

/// Builds a listener's authenticator and access policy from its
/// configuration alone (as if it were the broker's only listener).
pub fn from_config(config: &ListenerConfig) -> Result<ListenerSecurity, ListenerError> {
    from_configs(std::slice::from_ref(config)).map(|mut v| v.remove(0))
}

/// Builds every listener's security, with the broker-wide policy of the
/// module docs (LWA identities and their client ids reserved on every
/// listener; unauthenticated names dropped wherever names matter).
pub fn from_configs(configs: &[ListenerConfig]) -> Result<Vec<ListenerSecurity>, ListenerError> {
    let stores = configs
        .iter()
        .map(load_psk)
        .collect::<Result<Vec<_>, _>>()?;
    let identities = LwaIdentities {
        stores: Arc::new(stores.iter().flatten().cloned().collect()),
    };
    let matter = configs.iter().any(names_matter);
    configs
        .iter()
        .zip(stores)
        .map(|(config, psk)| build(config, psk, identities.clone(), matter))
        .collect()
}

fn build(
    config: &ListenerConfig,
    psk: Option<Arc<SharedPskStore>>,
    identities: LwaIdentities,
    names_matter: bool,
) -> Result<ListenerSecurity, ListenerError> {
    let name = &config.name;
    let lwa = match &psk {
        Some(store) => Some(
            LwaAuthenticator::new(Arc::clone(store), DEFAULT_BROKER_RECORD_LIMIT_LOG2)
                .map_err(|error| ListenerError::Lwa {
                    listener: name.clone(),
                    error,
                })?
                .with_rate_limiter(failure_limiter(config)),
        ),
        None => None,
    };
    let password = match &config.password_file {
        Some(path) => {
            let file = PasswordFile::load(path).map_err(|error| ListenerError::PasswordFile {
                listener: name.clone(),
                error,
            })?;
            let users = user_hashes(&file);
            let mut authenticator = PasswordAuthenticator::new(file, config.allow_anonymous)
                .with_rate_limiter(failure_limiter(config));
            if !identities.stores.is_empty() {
                let identities = identities.clone();
                authenticator = authenticator.with_lwa_only(move |user| identities.contains(user));
            }
            Some(PasswordMode {
                authenticator,
                watch: FileWatch::new(path),
                users: Mutex::new(users),
            })
        }
        None => None,
    };
    let acl = match &config.acl_file {
        Some(path) => {
            let policy = AclPolicy::load(path).map_err(|error| ListenerError::AclFile {
                listener: name.clone(),
                error,
            })?;
            Some((Arc::new(policy), FileWatch::new(path)))
        }
        None => None,
    };
    let certificate_username = match (&config.tls, config.mode) {
        (Some(tls), ListenerMode::Tls) => tls.use_identity_as_username,
        _ => false,
    };
    let policy: Arc<dyn super::AccessPolicy> = match &acl {
        Some((policy, _)) => Arc::clone(policy) as Arc<dyn super::AccessPolicy>,
        None => Arc::new(AllowAll),
    };
    let authenticator = ListenerAuthenticator {
        name: name.clone(),
        lwa,
        identities,
        names_matter,
        lwa_own_client_ids_only: config.lwa_own_client_ids_only,
        password,
        acl,
        certificate_username,
        allow_anonymous: config.allow_anonymous,
        failures: Mutex::new(failure_limiter(config)),
    };
    Ok(ListenerSecurity {
        authenticator: Arc::new(authenticator),
        policy,
    })
}

#[cfg(test)]
mod tests;
