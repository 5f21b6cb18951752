//! Unit tests for TLS configuration building (handshakes are in tests/tls_handshake.rs).

use super::*;
use crate::auth::certs::{CertificateAuthority, KeyAlgorithm, Validity};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn suites_by_iana_or_rustls_name() {
    let p = provider_with_suites(&names(&[
        "TLS_AES_128_GCM_SHA256",
        "tls_ecdhe_ecdsa_with_aes_256_gcm_sha384",
    ]))
    .unwrap();
    let got: Vec<String> = p.cipher_suites.iter().map(|s| iana_name(*s)).collect();
    assert_eq!(
        got,
        [
            "TLS_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        ]
    );
    let p = provider_with_suites(&names(&["TLS13_CHACHA20_POLY1305_SHA256"])).unwrap();
    assert_eq!(p.cipher_suites.len(), 1);
    match provider_with_suites(&names(&["TLS_RSA_WITH_RC4_128_MD5"])) {
        Err(TlsError::CipherSuite { available, .. }) => {
            assert!(available.contains("TLS_AES_256_GCM_SHA384"))
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_eq!(
        provider_with_suites(&[]).unwrap().cipher_suites.len(),
        rustls::crypto::ring::default_provider().cipher_suites.len()
    );
}

#[test]
fn version_names() {
    assert_eq!("tlsv1.2".parse::<TlsVersion>().unwrap(), TlsVersion::Tls12);
    assert_eq!("TLSv1.3".parse::<TlsVersion>().unwrap(), TlsVersion::Tls13);
    assert!("tlsv1.1".parse::<TlsVersion>().is_err());
    assert_eq!(versions_from(TlsVersion::Tls13).len(), 1);
    assert_eq!(versions_from(TlsVersion::Tls12).len(), 2);
}

struct Files {
    _dir: tempfile::TempDir,
    opts: ServerTlsOptions,
    client_der: Vec<u8>,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let v = Validity::days_from_now(1);
    let ca = CertificateAuthority::new("ca", KeyAlgorithm::EcdsaP256, v).unwrap();
    let server = ca.issue_server(&[], KeyAlgorithm::EcdsaP256, v).unwrap();
    let client = ca
        .issue_client("device-7", KeyAlgorithm::EcdsaP256, v)
        .unwrap();
    let w = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let opts = ServerTlsOptions {
        cert_file: w("s.crt", &server.cert_pem),
        key_file: w("s.key", &server.key_pem),
        ca_file: Some(w("ca.crt", &ca.cert_pem())),
        require_certificate: true,
        min_version: TlsVersion::Tls12,
        cipher_suites: vec![],
    };
    let client_der = CertificateDer::from_pem_slice(client.cert_pem.as_bytes())
        .unwrap()
        .to_vec();
    Files {
        _dir: dir,
        opts,
        client_der,
    }
}

#[test]
fn server_config_checks_its_inputs() {
    let f = files();
    server_config(&f.opts).unwrap();
    let mut o = f.opts.clone();
    o.ca_file = None;
    assert!(matches!(server_config(&o), Err(TlsError::Verifier(_))));
    o.require_certificate = false;
    server_config(&o).unwrap();
    let mut o = f.opts.clone();
    o.min_version = TlsVersion::Tls13;
    o.cipher_suites = names(&["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
    assert!(matches!(
        server_config(&o),
        Err(TlsError::NoSuiteFor(TlsVersion::Tls13))
    ));
    let mut o = f.opts.clone();
    o.key_file = o.cert_file.clone();
    assert!(matches!(server_config(&o), Err(TlsError::Pem { .. })));
    let mut o = f.opts.clone();
    o.cert_file = o.cert_file.with_file_name("missing.crt");
    assert!(matches!(server_config(&o), Err(TlsError::Io { .. })));
}

#[test]
fn common_name_of_client_cert() {
    let f = files();
    assert_eq!(common_name(&f.client_der).as_deref(), Some("device-7"));
    assert_eq!(common_name(b"garbage"), None);
}
