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
//! Per-identity policy (LWA.md 12.10): a name that is an LWA identity is
//! refused as a password user name (0x86), even if the password file also
//! has it, and cannot be claimed as an unauthenticated user name either:
//! on a listener with a PSK store but no password file every CONNECT with a
//! user name is refused with 0x86, whatever the name, so the answer does not
//! tell LWA identities from other names; those refusals, like password and
//! LWA1 failures, draw on the per-source `auth_failure_*` budget.
//! Without a password file, a CONNECT's user name is not authenticated, so
//! it is dropped from the principal whenever an ACL file or a PSK store
//! gives names a meaning (otherwise anyone could claim any ACL user).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::acl::AclPolicy;
use super::lwa::{LwaAuthenticator, SharedPskStore, DEFAULT_BROKER_RECORD_LIMIT_LOG2};
use super::password::{PasswordAuthenticator, PasswordFile};
use super::rate_limit::{ConnectRateLimiter, RateLimitConfig};
use super::tls::CertificateAuthenticator;
use super::{
    AllowAll, AuthDecision, Authenticated, ConnectAuthenticator, ListenerSecurity, PeerInfo,
    Principal,
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
    users: Mutex<BTreeSet<String>>,
}

fn user_names(file: &PasswordFile) -> BTreeSet<String> {
    file.entries().map(|(u, _)| u.to_owned()).collect()
}

/// The [`ConnectAuthenticator`] of one listener (see the module docs).
pub struct ListenerAuthenticator {
    name: String,
    lwa: Option<LwaAuthenticator>,
    psk: Option<Arc<SharedPskStore>>,
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
        self.psk
            .as_ref()
            .is_some_and(|store| store.current().contains(name))
    }

    fn without_credentials(&self, connect: &Connect, peer: &PeerInfo) -> AuthDecision {
        if let (Some(user), true) = (connect.username.as_deref(), self.psk.is_some()) {
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
        let names_matter = self.acl.is_some() || self.psk.is_some();
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
                if let (Some(lwa), crate::lwa::METHOD) = (&self.lwa, method) {
                    return lwa.authenticate(connect, peer);
                }
                tracing::info!(addr = ?peer.remote_addr, method, listener = %self.name, "authentication method not offered here");
                AuthDecision::Reject(ReasonCode::BAD_AUTHENTICATION_METHOD)
            }
            None if self.certificate_username => {
                CertificateAuthenticator.authenticate(connect, peer)
            }
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
                        let now = user_names(&file);
                        let mut users = match mode.users.lock() {
                            Ok(g) => g,
                            Err(poisoned) => poisoned.into_inner(),
                        };
                        for gone in users.difference(&now) {
                            closed.push(Principal {
                                username: Some(gone.clone()),
                                lwa_identity: None,
                            });
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

/// Builds a listener's authenticator and access policy from its configuration.
pub fn from_config(config: &ListenerConfig) -> anyhow::Result<ListenerSecurity> {
    let name = &config.name;
    let psk = match &config.lwa_psk_file {
        Some(path) => {
            Some(Arc::new(SharedPskStore::load(path).map_err(|e| {
                anyhow::anyhow!("listener {name:?}: lwa_psk_file: {e}")
            })?))
        }
        None => None,
    };
    let lwa = match &psk {
        Some(store) => Some(
            LwaAuthenticator::new(Arc::clone(store), DEFAULT_BROKER_RECORD_LIMIT_LOG2)
                .map_err(|e| anyhow::anyhow!("listener {name:?}: {e}"))?
                .with_rate_limiter(failure_limiter(config)),
        ),
        None => None,
    };
    let password = match &config.password_file {
        Some(path) => {
            let file = PasswordFile::load(path)
                .map_err(|e| anyhow::anyhow!("listener {name:?}: password_file: {e}"))?;
            let users = user_names(&file);
            let mut authenticator = PasswordAuthenticator::new(file, config.allow_anonymous)
                .with_rate_limiter(failure_limiter(config));
            if let Some(store) = &psk {
                let store = Arc::clone(store);
                authenticator =
                    authenticator.with_lwa_only(move |user| store.current().contains(user));
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
            let policy = AclPolicy::load(path)
                .map_err(|e| anyhow::anyhow!("listener {name:?}: acl_file: {e}"))?;
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
        psk,
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
