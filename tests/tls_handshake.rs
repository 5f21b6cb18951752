//! Real TLS handshakes between our broker `ServerConfig` and client
//! `ClientConfig` over an in-memory duplex pipe: what must connect does, and
//! every misconfiguration or attack listed here is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mqtt_lwa::auth::certs::{CertificateAuthority, IssuedCert, KeyAlgorithm, Validity};
use mqtt_lwa::transport::tls::client::{client_config, server_name, ClientTlsOptions};
use mqtt_lwa::transport::tls::{
    client_common_name, server_config, ReloadableServerConfig, ServerTlsOptions, TlsVersion,
};
use rustls::{CertificateError, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateAuthority,
}

impl Pki {
    fn new(alg: KeyAlgorithm) -> Self {
        Self::named("test CA", alg)
    }
    fn named(ca_name: &str, alg: KeyAlgorithm) -> Self {
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: CertificateAuthority::new(ca_name, alg, Validity::days_from_now(10)).unwrap(),
        }
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn ca_file(&self) -> PathBuf {
        self.write("ca.crt", &self.ca.cert_pem())
    }
    /// Writes a cert/key pair, returns (cert, key) paths.
    fn save(&self, stem: &str, issued: &IssuedCert) -> (PathBuf, PathBuf) {
        (
            self.write(&format!("{stem}.crt"), &issued.cert_pem),
            self.write(&format!("{stem}.key"), &issued.key_pem),
        )
    }
    fn server(&self, stem: &str, names: &[&str], validity: Validity) -> (PathBuf, PathBuf) {
        let issued = self
            .ca
            .issue_server(names, KeyAlgorithm::EcdsaP256, validity)
            .unwrap();
        self.save(stem, &issued)
    }
    fn client(&self, cn: &str, validity: Validity) -> (PathBuf, PathBuf) {
        let issued = self
            .ca
            .issue_client(cn, KeyAlgorithm::EcdsaP256, validity)
            .unwrap();
        self.save(cn, &issued)
    }
}

fn valid() -> Validity {
    Validity::days_from_now(10)
}

fn expired() -> Validity {
    let now = time::OffsetDateTime::now_utc();
    Validity {
        not_before: now - time::Duration::days(20),
        not_after: now - time::Duration::days(1),
    }
}

fn server_opts(cert: &Path, key: &Path, ca: Option<&Path>, require: bool) -> ServerTlsOptions {
    ServerTlsOptions {
        cert_file: cert.to_owned(),
        key_file: key.to_owned(),
        ca_file: ca.map(Path::to_owned),
        require_certificate: require,
        min_version: TlsVersion::Tls12,
        cipher_suites: vec![],
    }
}

fn client_opts(ca: &Path, cert: Option<&(PathBuf, PathBuf)>) -> ClientTlsOptions {
    ClientTlsOptions {
        ca_file: Some(ca.to_owned()),
        cert_file: cert.map(|c| c.0.clone()),
        key_file: cert.map(|c| c.1.clone()),
        version: None,
        insecure: false,
    }
}

/// What a successful handshake established.
#[derive(Debug)]
struct Session {
    client_cn: Option<String>,
    version: rustls::ProtocolVersion,
    suite: rustls::CipherSuite,
    server_cert_cn: Option<String>,
}

/// The failure seen on each side (a side may succeed while the other refuses).
#[derive(Debug)]
struct Failure {
    server: Option<rustls::Error>,
    client: Option<rustls::Error>,
}

fn rustls_error(e: &std::io::Error) -> Option<rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
}

/// Handshakes, then proves the channel works with a round trip.
async fn connect(
    server: Arc<ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<Session, Failure> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = TlsAcceptor::from(server);
    let connector = TlsConnector::from(client);
    let name = server_name(host).unwrap();
    let server_side = async move {
        let mut tls = acceptor.accept(server_io).await?;
        let cn = client_common_name(tls.get_ref().1);
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        tls.write_all(&buf).await?;
        tls.flush().await?;
        Ok::<_, std::io::Error>(cn)
    };
    let client_side = async move {
        let mut tls = connector.connect(name, client_io).await?;
        let (_, conn) = tls.get_ref();
        let version = conn.protocol_version();
        let suite = conn.negotiated_cipher_suite().map(|s| s.suite());
        let server_cert_cn = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| mqtt_lwa::transport::tls::common_name(c.as_ref()));
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        Ok::<_, std::io::Error>((version, suite, server_cert_cn))
    };
    let (s, c) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(server_side, client_side)
    })
    .await
    .expect("handshake hung");
    match (s, c) {
        (Ok(client_cn), Ok((Some(version), Some(suite), server_cert_cn))) => Ok(Session {
            client_cn,
            version,
            suite,
            server_cert_cn,
        }),
        (s, c) => Err(Failure {
            server: s.as_ref().err().and_then(rustls_error),
            client: c.as_ref().err().and_then(rustls_error),
        }),
    }
}

#[tokio::test]
async fn server_authenticated_tls_works_with_both_versions() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let (cert, key) = pki.server("broker", &["broker.test"], valid());
    let ca = pki.ca_file();
    let server = server_config(&server_opts(&cert, &key, None, false)).unwrap();
    for (version, expected) in [
        (None, rustls::ProtocolVersion::TLSv1_3),
        (Some(TlsVersion::Tls13), rustls::ProtocolVersion::TLSv1_3),
        (Some(TlsVersion::Tls12), rustls::ProtocolVersion::TLSv1_2),
    ] {
        let mut opts = client_opts(&ca, None);
        opts.version = version;
        for host in ["broker.test", "localhost", "127.0.0.1", "::1"] {
            let s = connect(Arc::clone(&server), client_config(&opts).unwrap(), host)
                .await
                .unwrap_or_else(|f| panic!("{host} {version:?}: {f:?}"));
            assert_eq!(s.version, expected);
            assert_eq!(s.client_cn, None);
        }
    }
}

#[tokio::test]
async fn mutual_tls_gives_the_client_cn() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let (cert, key) = pki.server("broker", &[], valid());
    let ca = pki.ca_file();
    let device = pki.client("device-42", valid());
    let server = server_config(&server_opts(&cert, &key, Some(&ca), true)).unwrap();
    let s = connect(
        server,
        client_config(&client_opts(&ca, Some(&device))).unwrap(),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(s.client_cn.as_deref(), Some("device-42"));
}

#[tokio::test]
async fn mutual_tls_without_client_cert_is_refused() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let (cert, key) = pki.server("broker", &[], valid());
    let ca = pki.ca_file();
    let server = server_config(&server_opts(&cert, &key, Some(&ca), true)).unwrap();
    let f = connect(
        server,
        client_config(&client_opts(&ca, None)).unwrap(),
        "localhost",
    )
    .await
    .unwrap_err();
    assert_eq!(
        f.server,
        Some(rustls::Error::NoCertificatesPresented),
        "{f:?}"
    );
}

#[tokio::test]
async fn optional_client_cert_when_ca_given_without_require() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let (cert, key) = pki.server("broker", &[], valid());
    let ca = pki.ca_file();
    let device = pki.client("device-1", valid());
    let server = server_config(&server_opts(&cert, &key, Some(&ca), false)).unwrap();
    let anon = connect(
        Arc::clone(&server),
        client_config(&client_opts(&ca, None)).unwrap(),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(anon.client_cn, None);
    let with = connect(
        server,
        client_config(&client_opts(&ca, Some(&device))).unwrap(),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(with.client_cn.as_deref(), Some("device-1"));
}

/// A rogue CA with another name is an unknown issuer; one that copies our
/// CA's name is caught by the signature check.
/// Recognises the refusal a rogue PKI should cause.
type Expectation = fn(&Option<rustls::Error>) -> bool;

fn rogue_cases() -> [(Pki, Expectation); 2] {
    [
        (Pki::named("rogue CA", KeyAlgorithm::EcdsaP256), |e| {
            matches!(
                e,
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer
                ))
            )
        }),
        (Pki::named("test CA", KeyAlgorithm::EcdsaP256), |e| {
            matches!(
                e,
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::BadSignature
                ))
            )
        }),
    ]
}

#[tokio::test]
async fn client_cert_from_another_ca_is_refused() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let (cert, key) = pki.server("broker", &[], valid());
    let ca = pki.ca_file();
    let server = server_config(&server_opts(&cert, &key, Some(&ca), true)).unwrap();
    for (rogue, expected) in rogue_cases() {
        let intruder = rogue.client("device-42", valid());
        let f = connect(
            Arc::clone(&server),
            client_config(&client_opts(&ca, Some(&intruder))).unwrap(),
            "localhost",
        )
        .await
        .unwrap_err();
        assert!(expected(&f.server), "{f:?}");
    }
}

#[tokio::test]
async fn broker_cert_from_another_ca_is_refused() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let ca = pki.ca_file();
    for (rogue, expected) in rogue_cases() {
        let (cert, key) = rogue.server("impostor", &[], valid());
        let server = server_config(&server_opts(&cert, &key, None, false)).unwrap();
        let f = connect(
            server,
            client_config(&client_opts(&ca, None)).unwrap(),
            "localhost",
        )
        .await
        .unwrap_err();
        assert!(expected(&f.client), "{f:?}");
    }
}

#[tokio::test]
async fn expired_certificates_are_refused_both_ways() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let ca = pki.ca_file();
    let is_expired = |e: &Option<rustls::Error>| {
        matches!(
            e,
            Some(rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ))
        )
    };
    let (cert, key) = pki.server("old-broker", &[], expired());
    let server = server_config(&server_opts(&cert, &key, None, false)).unwrap();
    let f = connect(
        server,
        client_config(&client_opts(&ca, None)).unwrap(),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(is_expired(&f.client), "{f:?}");

    let (cert, key) = pki.server("broker", &[], valid());
    let old_device = pki.client("old-device", expired());
    let server = server_config(&server_opts(&cert, &key, Some(&ca), true)).unwrap();
    let f = connect(
        server,
        client_config(&client_opts(&ca, Some(&old_device))).unwrap(),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(is_expired(&f.server), "{f:?}");
}

#[tokio::test]
async fn hostname_mismatch_is_refused() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let (cert, key) = pki.server("broker", &["broker.test"], valid());
    let ca = pki.ca_file();
    let server = server_config(&server_opts(&cert, &key, None, false)).unwrap();
    for host in ["other.test", "10.1.2.3"] {
        let f = connect(
            Arc::clone(&server),
            client_config(&client_opts(&ca, None)).unwrap(),
            host,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                f.client,
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{host}: {f:?}"
        );
    }
}

#[tokio::test]
async fn tls12_only_client_is_refused_by_tls13_minimum() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let (cert, key) = pki.server("broker", &[], valid());
    let ca = pki.ca_file();
    let mut opts = server_opts(&cert, &key, None, false);
    opts.min_version = TlsVersion::Tls13;
    let server = server_config(&opts).unwrap();
    let mut copts = client_opts(&ca, None);
    copts.version = Some(TlsVersion::Tls12);
    let f = connect(
        Arc::clone(&server),
        client_config(&copts).unwrap(),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(f.server, Some(rustls::Error::PeerIncompatible(_))),
        "{f:?}"
    );
    // The same client reaches a server that still allows 1.2.
    let lenient = server_config(&server_opts(&cert, &key, None, false)).unwrap();
    connect(lenient, client_config(&copts).unwrap(), "localhost")
        .await
        .unwrap();
}

#[tokio::test]
async fn configured_cipher_suite_is_the_one_negotiated() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let (cert, key) = pki.server("broker", &[], valid());
    let ca = pki.ca_file();
    let mut opts = server_opts(&cert, &key, None, false);
    opts.cipher_suites = vec![
        "TLS_CHACHA20_POLY1305_SHA256".into(),
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into(),
    ];
    let server = server_config(&opts).unwrap();
    let s = connect(
        Arc::clone(&server),
        client_config(&client_opts(&ca, None)).unwrap(),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(s.suite, rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
    let mut copts = client_opts(&ca, None);
    copts.version = Some(TlsVersion::Tls12);
    let s = connect(server, client_config(&copts).unwrap(), "localhost")
        .await
        .unwrap();
    assert_eq!(
        s.suite,
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    );
}

#[tokio::test]
async fn rsa2048_pki_works_end_to_end() {
    let pki = Pki::new(KeyAlgorithm::Rsa2048);
    let issued = pki
        .ca
        .issue_server(&[], KeyAlgorithm::Rsa2048, valid())
        .unwrap();
    let (cert, key) = pki.save("rsa-broker", &issued);
    let device = pki.save(
        "rsa-device",
        &pki.ca
            .issue_client("rsa-device", KeyAlgorithm::Rsa2048, valid())
            .unwrap(),
    );
    let ca = pki.ca_file();
    let server = server_config(&server_opts(&cert, &key, Some(&ca), true)).unwrap();
    let s = connect(
        server,
        client_config(&client_opts(&ca, Some(&device))).unwrap(),
        "127.0.0.1",
    )
    .await
    .unwrap();
    assert_eq!(s.client_cn.as_deref(), Some("rsa-device"));
}

#[tokio::test]
async fn insecure_client_accepts_any_broker_but_verified_one_does_not() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let rogue = Pki::new(KeyAlgorithm::EcdsaP256);
    let (cert, key) = rogue.server("impostor", &[], expired());
    let server = server_config(&server_opts(&cert, &key, None, false)).unwrap();
    let insecure = ClientTlsOptions {
        insecure: true,
        ..ClientTlsOptions::default()
    };
    let s = connect(
        Arc::clone(&server),
        client_config(&insecure).unwrap(),
        "wrong.name",
    )
    .await
    .unwrap();
    assert_eq!(s.server_cert_cn.as_deref(), Some("localhost"));
    assert!(connect(
        server,
        client_config(&client_opts(&pki.ca_file(), None)).unwrap(),
        "localhost"
    )
    .await
    .is_err());
}

#[tokio::test]
async fn reloaded_certificate_is_used_for_new_handshakes() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let ca = pki.ca_file();
    let (cert, key) = pki.server("broker", &["first.test"], valid());
    let holder = ReloadableServerConfig::new(server_opts(&cert, &key, None, false)).unwrap();
    let client = client_config(&client_opts(&ca, None)).unwrap();
    let s = connect(holder.current(), Arc::clone(&client), "localhost")
        .await
        .unwrap();
    assert_eq!(s.server_cert_cn.as_deref(), Some("first.test"));
    assert!(!holder.reload_if_changed().unwrap());

    // Rotate the pair in place (same paths), as certbot or an operator would.
    pki.server("broker", &["second.test"], valid());
    assert!(holder.reload_if_changed().unwrap());
    let s = connect(holder.current(), Arc::clone(&client), "localhost")
        .await
        .unwrap();
    assert_eq!(s.server_cert_cn.as_deref(), Some("second.test"));

    // A broken rotation (key not matching the cert) keeps the working config.
    let other = pki.server("other", &["third.test"], valid());
    std::fs::copy(&other.0, &cert).unwrap();
    assert!(holder.reload_if_changed().is_err());
    let s = connect(holder.current(), client, "localhost")
        .await
        .unwrap();
    assert_eq!(s.server_cert_cn.as_deref(), Some("second.test"));
}
