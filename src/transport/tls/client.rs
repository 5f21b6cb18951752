//! Client-side TLS for `mqtt-lwa pub/sub` and the client library
//! (mosquitto_pub's `--cafile --cert --key --tls-version --insecure`).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{
    load_certs, load_private_key, load_roots, provider_with_suites, versions_exact, TlsError,
    TlsVersion,
};

/// Debian's system CA bundle, used when no `--cafile` is given.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Client TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsOptions {
    /// CA bundle the broker certificate must chain to (default: the system bundle).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// Client private key for mutual TLS.
    pub key_file: Option<PathBuf>,
    /// Use exactly this TLS version (`--tls-version`); both when `None`.
    pub version: Option<TlsVersion>,
    /// Accept any broker certificate and name. Testing only: no authentication at all.
    pub insecure: bool,
}

/// Builds a rustls `ClientConfig`.
pub fn client_config(opts: &ClientTlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    Ok(Arc::new(client_config_with_provider(
        opts,
        provider_with_suites(&[])?,
    )?))
}

/// As [`client_config`], with the cipher suites and key-exchange groups of `provider`
/// (the experiment restricts them for its `tls13-chacha` baseline), returned unshared so
/// the caller can still set e.g. resumption.
pub fn client_config_with_provider(
    opts: &ClientTlsOptions,
    provider: Arc<CryptoProvider>,
) -> Result<ClientConfig, TlsError> {
    let versions = versions_exact(opts.version);
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)?;
    let builder = if opts.insecure {
        let warning = "TLS certificate verification is DISABLED (--insecure): the broker is not \
                       authenticated and anyone on the path can read and change this connection";
        tracing::warn!("{warning}");
        eprintln!("WARNING: {warning}");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { provider }))
    } else {
        let ca = opts
            .ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
        builder.with_root_certificates(load_roots(&ca)?)
    };
    let config = match (&opts.cert_file, &opts.key_file) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(load_certs(cert)?, load_private_key(key)?)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(TlsError::Verifier(
                "a client certificate needs both --cert and --key".into(),
            ))
        }
    };
    Ok(config)
}

/// The name the client checks the broker certificate against (DNS name or IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned()).map_err(|_| TlsError::ServerName(host.to_owned()))
}

/// `--insecure`: accepts any certificate for any name, but still checks that
/// the handshake is signed by the key in the certificate presented.
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
