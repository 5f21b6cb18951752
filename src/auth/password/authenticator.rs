//! The password-mode [`ConnectAuthenticator`]: CONNECT credentials against a [`PasswordFile`].

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use super::PasswordFile;
use crate::auth::rate_limit::{ConnectRateLimiter, RateLimitConfig};
use crate::auth::{AuthDecision, Authenticated, ConnectAuthenticator, PeerInfo, Principal};
use crate::codec::{Connect, ReasonCode};

/// Username/password mode: checks CONNECT credentials against a [`PasswordFile`].
///
/// Reason codes (3.1.1 return codes via [`ReasonCode::to_v311_connack`]):
/// - no user name while anonymous access is off: 0x87 Not authorized (5);
/// - unknown user, wrong or missing password, or an LWA-only identity trying a
///   password: 0x86 Bad User Name or Password (4) — all alike on the wire and
///   in timing, so names cannot be enumerated;
/// - an Authentication Method (MQTT 5 enhanced auth) this mode does not do:
///   0x8C Bad authentication method;
/// - a source over its attempt budget: 0x9F Connection rate exceeded (3.1.1: 3
///   Server unavailable), answered without hashing. 0x9F rather than 0x8A
///   Banned because the refusal is temporary and says nothing about the
///   identity; MQTT 5 clients are told to back off, not that they are barred.
pub struct PasswordAuthenticator {
    file: RwLock<Arc<PasswordFile>>,
    allow_anonymous: bool,
    lwa_only: Box<dyn Fn(&str) -> bool + Send + Sync>,
    limiter: Mutex<ConnectRateLimiter>,
}

impl PasswordAuthenticator {
    /// Checks logins against `file`; `allow_anonymous` admits clients without a user name.
    pub fn new(file: PasswordFile, allow_anonymous: bool) -> Self {
        PasswordAuthenticator {
            file: RwLock::new(Arc::new(file)),
            allow_anonymous,
            lwa_only: Box::new(|_| false),
            limiter: Mutex::new(ConnectRateLimiter::new(RateLimitConfig::default())),
        }
    }

    /// Refuses password logins for these LWA identities (they must use LWA).
    pub fn with_lwa_identities(self, identities: HashSet<String>) -> Self {
        self.with_lwa_only(move |name| identities.contains(name))
    }

    /// Refuses password logins for every name the predicate calls LWA-only.
    pub fn with_lwa_only(
        mut self,
        is_lwa_only: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.lwa_only = Box::new(is_lwa_only);
        self
    }

    /// Replaces the per-source attempt limiter (its configuration and clock).
    pub fn with_rate_limiter(mut self, limiter: ConnectRateLimiter) -> Self {
        self.limiter = Mutex::new(limiter);
        self
    }

    /// Swaps in a reloaded password file; connections already accepted are unaffected.
    pub fn replace_file(&self, file: PasswordFile) {
        let mut guard = match self.file.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(file);
    }

    fn current_file(&self) -> Arc<PasswordFile> {
        match self.file.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, ConnectRateLimiter> {
        match self.limiter.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn accept(username: Option<String>) -> AuthDecision {
    AuthDecision::Accept {
        authenticated: Authenticated {
            principal: Principal {
                username,
                lwa_identity: None,
            },
            protection: None,
            auth_response: None,
        },
        connack_auth: None,
    }
}

impl ConnectAuthenticator for PasswordAuthenticator {
    fn authenticate(&self, connect: &Connect, peer: &PeerInfo) -> AuthDecision {
        let addr = peer.remote_addr;
        if let Some(method) = &connect.properties.authentication_method {
            tracing::info!(
                ?addr,
                method,
                "password mode: refusing unsupported authentication method"
            );
            return AuthDecision::Reject(ReasonCode::BAD_AUTHENTICATION_METHOD);
        }
        let Some(user) = connect.username.as_deref() else {
            if self.allow_anonymous {
                return accept(None);
            }
            tracing::info!(?addr, client_id = %connect.client_id, "anonymous CONNECT refused");
            return AuthDecision::Reject(ReasonCode::NOT_AUTHORIZED);
        };
        let source: Option<IpAddr> = addr.map(|a| a.ip());
        if !self.limiter().try_acquire(source) {
            tracing::warn!(
                ?addr,
                user,
                "password attempt refused: source over its rate limit"
            );
            return AuthDecision::Reject(ReasonCode::CONNECTION_RATE_EXCEEDED);
        }
        let file = self.current_file();
        let password = connect.password.as_deref().unwrap_or(&[]);
        // Hash even when the answer is already known, so every refusal costs the same time.
        let password_ok = file.verify(user, password) && connect.password.is_some();
        if (self.lwa_only)(user) {
            tracing::warn!(?addr, user, "password login refused: identity is LWA-only");
            return AuthDecision::Reject(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        }
        if !password_ok {
            tracing::warn!(?addr, user, "bad user name or password");
            return AuthDecision::Reject(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        }
        self.limiter().refund(source);
        tracing::debug!(?addr, user, "password login accepted");
        accept(Some(user.to_owned()))
    }

    fn is_blocking(&self) -> bool {
        true
    }
}
