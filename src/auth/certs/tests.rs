//! Unit tests for certificate generation and inspection.
use super::*;

#[test]
fn init_writes_ca_broker_clients_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(
        dir.path(),
        &["broker.example", "10.0.0.5"],
        KeyAlgorithm::EcdsaP256,
        &["sensor-1"],
        30,
    )
    .unwrap();
    assert_eq!(out.certificates.len(), 3);
    assert_eq!(out.keys.len(), 3);
    #[cfg(unix)]
    for key in &out.keys {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    let infos = check(&out.certificates).unwrap();
    assert!(infos[0].is_ca);
    let broker = &infos[1];
    assert!(!broker.is_ca);
    for san in [
        "DNS:localhost",
        "IP:127.0.0.1",
        "IP:::1",
        "DNS:broker.example",
        "IP:10.0.0.5",
    ] {
        assert!(
            broker.sans.iter().any(|s| s == san),
            "{san} missing from {:?}",
            broker.sans
        );
    }
    assert_eq!(broker.issuer, infos[0].subject);
    assert!(
        infos[2].subject.contains("CN=sensor-1"),
        "{}",
        infos[2].subject
    );
    assert!(
        (29..=30).contains(&broker.days_left),
        "{}",
        broker.days_left
    );
    // Refuses to overwrite.
    match init(dir.path(), &[], KeyAlgorithm::EcdsaP256, &[], 30) {
        Err(CertError::Exists(p)) => assert!(p.ends_with("ca.crt")),
        other => panic!("{:?}", other.map(|_| ())),
    }
    let expiry = cert_expiry(&out.certificates[1]).unwrap();
    assert_eq!(expiry, broker.not_after);
}

#[test]
fn rsa2048_keys_are_generated_and_usable() {
    let ca = CertificateAuthority::new("rsa", KeyAlgorithm::Rsa2048, Validity::days_from_now(1))
        .unwrap();
    assert!(ca.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    let leaf = ca
        .issue_server(&[], KeyAlgorithm::EcdsaP256, Validity::days_from_now(1))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("leaf.crt");
    std::fs::write(&p, &leaf.cert_pem).unwrap();
    let der = read_pem_certs(&p).unwrap().remove(0);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    // sha256WithRSAEncryption: signed by the RSA CA key.
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.11"
    );
}

#[test]
fn names_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["../x", "ca", "broker", ".hidden", "a b", ""] {
        assert!(
            matches!(
                init(dir.path(), &[], KeyAlgorithm::EcdsaP256, &[bad], 1),
                Err(CertError::InvalidName(..))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        init(dir.path(), &["bad host"], KeyAlgorithm::EcdsaP256, &[], 1),
        Err(CertError::InvalidName(..))
    ));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn expired_certificate_reports_negative_days() {
    let now = OffsetDateTime::now_utc();
    let ca = CertificateAuthority::new("t", KeyAlgorithm::EcdsaP256, Validity::days_from_now(10))
        .unwrap();
    let old = ca
        .issue_client(
            "old",
            KeyAlgorithm::EcdsaP256,
            Validity {
                not_before: now - Duration::days(30),
                not_after: now - Duration::days(2),
            },
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("old.crt");
    std::fs::write(&p, &old.cert_pem).unwrap();
    let info = &check_at(std::slice::from_ref(&p), now).unwrap()[0];
    assert!(info.is_expired());
    assert_eq!(info.days_left, -2);
    let garbage = dir.path().join("g.crt");
    std::fs::write(&garbage, "not a pem").unwrap();
    assert!(matches!(check(&[garbage]), Err(CertError::Parse { .. })));
}
