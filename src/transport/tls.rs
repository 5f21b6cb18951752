//! TLS and mutual TLS with rustls (ring provider only, never aws-lc).
//!
//! Server side: [`server_config`] builds a `ServerConfig` from PEM files;
//! [`ReloadableServerConfig`] holds it and rebuilds it when the files change
//! (new handshakes get the new certificate; open connections keep theirs).
//! [`client_common_name`] extracts the client certificate's CN, which
//! `auth::tls::CertificateAuthenticator` uses as the MQTT user name (mosquitto's
//! `use_identity_as_username`). The client side lives in [`client`]. Below config and auth:
//! neither the configuration's validation nor the listeners' set-up is this module's.
//!
//! Protocol versions are TLS 1.3 and 1.2 only (rustls has nothing older);
//! the minimum is configurable. Cipher suites are chosen by IANA name
//! (`TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`, ...).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

pub mod client;

/// A TLS protocol version we allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[default]
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl std::str::FromStr for TlsVersion {
    type Err = TlsError;
    /// Accepts mosquitto's spellings (`tlsv1.2`, `tlsv1.3`) and bare `1.2`/`1.3`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tlsv1.2" | "1.2" | "tls1.2" => Ok(TlsVersion::Tls12),
            "tlsv1.3" | "1.3" | "tls1.3" => Ok(TlsVersion::Tls13),
            _ => Err(TlsError::Version(s.to_owned())),
        }
    }
}

/// Errors building TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A PEM file holds no usable item.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// Unknown TLS version name.
    #[error("unknown TLS version {0:?} (expected tlsv1.2 or tlsv1.3)")]
    Version(String),
    /// Unknown cipher suite name.
    #[error("unknown cipher suite {name:?}; available: {available}")]
    CipherSuite {
        /// The name given.
        name: String,
        /// Names the provider offers.
        available: String,
    },
    /// The chosen suites leave a permitted version without any suite.
    #[error("no cipher suite left for {0:?}")]
    NoSuiteFor(TlsVersion),
    /// Building a certificate verifier failed.
    #[error("certificate verifier: {0}")]
    Verifier(String),
    /// rustls refused the configuration (e.g. key does not match certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Not a valid server name for the client to verify.
    #[error("invalid server name {0:?}")]
    ServerName(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads every certificate in a PEM file (leaf first for a chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// Reads a PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key from a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        reason: format!("no private key: {e}"),
    })
}

/// Builds a root store from a PEM CA bundle.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: format!("unusable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// IANA name of a rustls suite (rustls spells TLS 1.3 suites `TLS13_...`).
fn iana_name(suite: rustls::SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or("UNKNOWN");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_owned(),
    }
}

/// The ring provider, restricted to the named suites (all of ring's when `names` is empty).
pub fn provider_with_suites(names: &[String]) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !names.is_empty() {
        let all = provider.cipher_suites.clone();
        let mut chosen = Vec::new();
        for name in names {
            let found = all.iter().find(|s| {
                iana_name(**s).eq_ignore_ascii_case(name)
                    || s.suite()
                        .as_str()
                        .is_some_and(|r| r.eq_ignore_ascii_case(name))
            });
            match found {
                Some(s) => chosen.push(*s),
                None => {
                    return Err(TlsError::CipherSuite {
                        name: name.clone(),
                        available: all
                            .iter()
                            .map(|s| iana_name(*s))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        }
        provider.cipher_suites = chosen;
    }
    Ok(Arc::new(provider))
}

static TLS13_AND_12: [&SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];
static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
static TLS12_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];

/// The protocol versions from `min` upwards.
pub fn versions_from(min: TlsVersion) -> &'static [&'static SupportedProtocolVersion] {
    match min {
        TlsVersion::Tls12 => &TLS13_AND_12,
        TlsVersion::Tls13 => &TLS13_ONLY,
    }
}

/// Exactly one version, or both when `None` (the client's `--tls-version`).
pub fn versions_exact(version: Option<TlsVersion>) -> &'static [&'static SupportedProtocolVersion] {
    match version {
        None => &TLS13_AND_12,
        Some(TlsVersion::Tls13) => &TLS13_ONLY,
        Some(TlsVersion::Tls12) => &TLS12_ONLY,
    }
}

fn check_suites_cover(
    provider: &CryptoProvider,
    versions: &[&SupportedProtocolVersion],
) -> Result<(), TlsError> {
    for v in versions {
        if !provider.cipher_suites.iter().any(|s| s.version() == *v) {
            let which = if v.version == rustls::ProtocolVersion::TLSv1_3 {
                TlsVersion::Tls13
            } else {
                TlsVersion::Tls12
            };
            return Err(TlsError::NoSuiteFor(which));
        }
    }
    Ok(())
}

/// Broker TLS settings (mosquitto: certfile, keyfile, cafile, require_certificate, tls_version, ciphers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsOptions {
    /// Broker certificate chain, PEM.
    pub cert_file: PathBuf,
    /// Broker private key, PEM.
    pub key_file: PathBuf,
    /// CA bundle that client certificates must chain to.
    pub ca_file: Option<PathBuf>,
    /// Mutual TLS: refuse clients without a valid certificate.
    pub require_certificate: bool,
    /// Oldest protocol version accepted.
    pub min_version: TlsVersion,
    /// Allowed cipher suites by IANA name; empty = ring's defaults.
    pub cipher_suites: Vec<String>,
}

impl ServerTlsOptions {
    /// Server-authenticated TLS with default versions and suites.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        ServerTlsOptions {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            ca_file: None,
            require_certificate: false,
            min_version: TlsVersion::Tls12,
            cipher_suites: Vec::new(),
        }
    }
}

/// Builds the broker's rustls `ServerConfig`.
pub fn server_config(opts: &ServerTlsOptions) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider_with_suites(&opts.cipher_suites)?;
    let versions = versions_from(opts.min_version);
    check_suites_cover(&provider, versions)?;
    let certs = load_certs(&opts.cert_file)?;
    let key = load_private_key(&opts.key_file)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)?;
    let builder = match (&opts.ca_file, opts.require_certificate) {
        (Some(ca), require) => {
            let roots = Arc::new(load_roots(ca)?);
            let mut vb = WebPkiClientVerifier::builder_with_provider(roots, provider);
            if !require {
                // A CA without require_certificate: verify certificates that are offered.
                vb = vb.allow_unauthenticated();
            }
            let verifier = vb.build().map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        (None, true) => {
            return Err(TlsError::Verifier(
                "require_certificate needs a CA file to verify client certificates".into(),
            ))
        }
        (None, false) => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// Digest of the files a server config was built from, to notice changes.
fn fingerprint(opts: &ServerTlsOptions) -> Result<[u8; 32], TlsError> {
    let mut h = Sha256::new();
    let files = [
        Some(&opts.cert_file),
        Some(&opts.key_file),
        opts.ca_file.as_ref(),
    ];
    for path in files.into_iter().flatten() {
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().into())
}

/// The broker's current `ServerConfig`, rebuilt when its files change.
///
/// The listener asks [`Self::current`] for every accepted connection; a timer
/// (or SIGHUP) calls [`Self::reload_if_changed`]. Files are compared by content
/// digest rather than mtime, so a `cp -p` or a same-second rewrite is noticed.
/// A reload that fails (half-written key, mismatched pair) keeps the old config.
pub struct ReloadableServerConfig {
    opts: ServerTlsOptions,
    current: RwLock<(Arc<ServerConfig>, [u8; 32])>,
}

impl ReloadableServerConfig {
    /// Builds the first config; fails at start-up if the files are bad.
    pub fn new(opts: ServerTlsOptions) -> Result<Self, TlsError> {
        let print = fingerprint(&opts)?;
        let config = server_config(&opts)?;
        Ok(ReloadableServerConfig {
            opts,
            current: RwLock::new((config, print)),
        })
    }

    /// The config to use for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g.0),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().0),
        }
    }

    /// Rebuilds now, whether or not the files changed.
    pub fn reload(&self) -> Result<(), TlsError> {
        let print = fingerprint(&self.opts)?;
        let config = server_config(&self.opts)?;
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = (config, print);
        tracing::info!(cert = %self.opts.cert_file.display(), "TLS configuration reloaded");
        Ok(())
    }

    /// Rebuilds if any file's content changed; `Ok(true)` when it did.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let print = fingerprint(&self.opts)?;
        let unchanged = match self.current.read() {
            Ok(g) => g.1 == print,
            Err(poisoned) => poisoned.into_inner().1 == print,
        };
        if unchanged {
            return Ok(false);
        }
        match self.reload() {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::warn!(error = %e, "TLS files changed but the new set is unusable; keeping the old one");
                Err(e)
            }
        }
    }
}

/// The Common Name of a DER certificate's subject.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// The CN of the verified client certificate on a finished handshake (mTLS).
pub fn client_common_name(conn: &ServerConnection) -> Option<String> {
    let leaf = conn.peer_certificates()?.first()?;
    common_name(leaf.as_ref())
}

#[cfg(test)]
mod tests;
