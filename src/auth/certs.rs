//! A small private PKI for the TLS modes: `mqtt-lwa certs init` and `certs check`.
//!
//! [`init`] writes a CA, a broker certificate (SANs 127.0.0.1, ::1, localhost
//! and any given names) and client certificates (CN = client name, used as
//! the MQTT user name under mutual TLS). Private keys are written 0600.
//!
//! RSA-2048 keys come from the `rsa` crate (PKCS#8), because rcgen's ring
//! backend cannot generate RSA keys; ring then signs with them. The `rsa`
//! crate's known timing issue (RUSTSEC-2023-0071, Marvin) concerns its
//! decryption and signing, which we never use: it only generates the key.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use zeroize::Zeroizing;

/// Key algorithm for generated certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256 (small and fast: the default).
    #[default]
    EcdsaP256,
    /// RSA-2048 with SHA-256 (for old peers).
    Rsa2048,
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ecdsa-p256" => Ok(KeyAlgorithm::EcdsaP256),
            "rsa2048" => Ok(KeyAlgorithm::Rsa2048),
            other => Err(format!(
                "unknown algorithm {other:?} (expected ecdsa-p256 or rsa2048)"
            )),
        }
    }
}

/// Errors generating, writing or reading certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Refusing to overwrite an existing file.
    #[error("{} already exists (refusing to overwrite keys; choose an empty directory)", .0.display())]
    Exists(PathBuf),
    /// A client or host name unusable as a file name or certificate name.
    #[error("invalid name {0:?}: {1}")]
    InvalidName(String, &'static str),
    /// Key generation or signing failed.
    #[error("certificate generation failed: {0}")]
    Generate(String),
    /// A file holds no parsable certificate.
    #[error("{}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Validity period of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before.
    pub not_before: OffsetDateTime,
    /// Not valid after.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From one hour ago (clock skew) to `days` days from now.
    pub fn days_from_now(days: u32) -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(i64::from(days)),
        }
    }
}

/// A certificate and its private key, both PEM.
pub struct IssuedCert {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// PKCS#8 private key, PEM.
    pub key_pem: Zeroizing<String>,
}

/// A CA that signs broker and client certificates.
pub struct CertificateAuthority {
    cert: Certificate,
    key: KeyPair,
}

fn generate_key(algorithm: KeyAlgorithm) -> Result<KeyPair, CertError> {
    let gen_err = |e: &dyn std::fmt::Display| CertError::Generate(e.to_string());
    match algorithm {
        KeyAlgorithm::EcdsaP256 => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| gen_err(&e))
        }
        KeyAlgorithm::Rsa2048 => {
            use rsa::pkcs8::{EncodePrivateKey, LineEnding};
            let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| gen_err(&e))?;
            let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| gen_err(&e))?;
            KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).map_err(|e| gen_err(&e))
        }
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    // Positive and without a leading zero byte, so DER keeps all 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn base_params(common_name: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "mqtt-lwa");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    params
}

impl CertificateAuthority {
    /// A new self-signed CA that may only sign end-entity certificates.
    pub fn new(
        common_name: &str,
        algorithm: KeyAlgorithm,
        validity: Validity,
    ) -> Result<Self, CertError> {
        let key = generate_key(algorithm)?;
        let mut params = base_params(common_name, validity);
        params.use_authority_key_identifier_extension = false;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(|e| CertError::Generate(e.to_string()))?;
        Ok(CertificateAuthority { cert, key })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA private key, PEM.
    pub fn key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.key.serialize_pem())
    }

    /// A broker certificate for 127.0.0.1, ::1, localhost and `names` (IPs or DNS names).
    pub fn issue_server(
        &self,
        names: &[&str],
        algorithm: KeyAlgorithm,
        validity: Validity,
    ) -> Result<IssuedCert, CertError> {
        let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        for n in names {
            validate_host(n)?;
            if !sans.iter().any(|s| s == n) {
                sans.push((*n).to_owned());
            }
        }
        let cn = names.first().copied().unwrap_or("localhost");
        let mut params = base_params(cn, validity);
        params.subject_alt_names = CertificateParams::new(sans)
            .map_err(|e| CertError::Generate(e.to_string()))?
            .subject_alt_names;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, algorithm)
    }

    /// A client certificate whose CN (the MQTT user name under mTLS) is `name`.
    pub fn issue_client(
        &self,
        name: &str,
        algorithm: KeyAlgorithm,
        validity: Validity,
    ) -> Result<IssuedCert, CertError> {
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(CertError::InvalidName(
                name.to_owned(),
                "empty or has control characters",
            ));
        }
        let mut params = base_params(name, validity);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, algorithm)
    }

    fn sign(
        &self,
        params: CertificateParams,
        algorithm: KeyAlgorithm,
    ) -> Result<IssuedCert, CertError> {
        let key = generate_key(algorithm)?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(|e| CertError::Generate(e.to_string()))?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }
}

fn validate_host(name: &str) -> Result<(), CertError> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        });
    if ok {
        Ok(())
    } else {
        Err(CertError::InvalidName(
            name.to_owned(),
            "not an IP address or DNS name",
        ))
    }
}

/// Client names become file names: keep them boring.
fn validate_client_file_name(name: &str) -> Result<(), CertError> {
    let bad = |why| Err(CertError::InvalidName(name.to_owned(), why));
    if name.is_empty() || name.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with('.')
    {
        return bad("use letters, digits, '-', '_' and '.' (not first)");
    }
    if name == "ca" || name == "broker" {
        return bad("reserved for the CA and broker files");
    }
    Ok(())
}

/// Files written by [`init`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOutput {
    /// Certificates (ca.crt, broker.crt, one per client).
    pub certificates: Vec<PathBuf>,
    /// Private keys, mode 0600.
    pub keys: Vec<PathBuf>,
}

/// Creates `dir` (if needed) with ca.crt/ca.key, broker.crt/broker.key and
/// `<client>.crt`/`<client>.key`; refuses to overwrite any existing file.
pub fn init(
    dir: &Path,
    names: &[&str],
    algorithm: KeyAlgorithm,
    clients: &[&str],
    days: u32,
) -> Result<InitOutput, CertError> {
    for c in clients {
        validate_client_file_name(c)?;
    }
    for n in names {
        validate_host(n)?;
    }
    let mut stems = vec!["ca", "broker"];
    stems.extend_from_slice(clients);
    for stem in &stems {
        for ext in ["crt", "key"] {
            let p = dir.join(format!("{stem}.{ext}"));
            if p.exists() {
                return Err(CertError::Exists(p));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let validity = Validity::days_from_now(days);
    let ca = CertificateAuthority::new("mqtt-lwa CA", algorithm, validity)?;
    let mut issued = vec![(
        "ca".to_owned(),
        IssuedCert {
            cert_pem: ca.cert_pem(),
            key_pem: ca.key_pem(),
        },
    )];
    issued.push((
        "broker".to_owned(),
        ca.issue_server(names, algorithm, validity)?,
    ));
    for c in clients {
        issued.push(((*c).to_owned(), ca.issue_client(c, algorithm, validity)?));
    }
    let mut out = InitOutput {
        certificates: Vec::new(),
        keys: Vec::new(),
    };
    for (stem, cert) in issued {
        let crt = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        write_new(&key, cert.key_pem.as_bytes(), 0o600)?;
        write_new(&crt, cert.cert_pem.as_bytes(), 0o644)?;
        out.certificates.push(crt);
        out.keys.push(key);
    }
    Ok(out)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    if path.exists() {
        return Err(CertError::Exists(path.to_owned()));
    }
    super::write_file_atomic(path, bytes, mode).map_err(|source| CertError::Io {
        path: path.to_owned(),
        source,
    })
}

/// What `certs check` reports about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The file it came from.
    pub path: PathBuf,
    /// Position in the file (0 = first certificate).
    pub index: usize,
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Subject Alternative Names (DNS names and IP addresses).
    pub sans: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Whole days from `now` to `not_after` (negative once expired).
    pub days_left: i64,
    /// True for CA certificates.
    pub is_ca: bool,
}

impl CertInfo {
    /// True once `not_after` has passed.
    pub fn is_expired(&self) -> bool {
        self.days_left < 0
    }
}

fn read_pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut ders = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|e| CertError::Parse {
            path: path.to_owned(),
            reason: format!("bad PEM: {e}"),
        })?;
        if pem.label == "CERTIFICATE" {
            ders.push(pem.contents);
        }
    }
    if ders.is_empty() {
        return Err(CertError::Parse {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(ders)
}

fn describe(
    path: &Path,
    index: usize,
    der: &[u8],
    now: OffsetDateTime,
) -> Result<CertInfo, CertError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::Parse {
        path: path.to_owned(),
        reason: format!("certificate {index}: {e}"),
    })?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::IPAddress(ip) => sans.push(match ip.len() {
                    4 => <[u8; 4]>::try_from(*ip)
                        .map_or_else(|_| "IP:?".into(), |a| format!("IP:{}", IpAddr::from(a))),
                    16 => <[u8; 16]>::try_from(*ip)
                        .map_or_else(|_| "IP:?".into(), |a| format!("IP:{}", IpAddr::from(a))),
                    _ => "IP:?".into(),
                }),
                other => sans.push(format!("{other:?}")),
            }
        }
    }
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    Ok(CertInfo {
        path: path.to_owned(),
        index,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before,
        not_after,
        days_left: (not_after - now).whole_seconds().div_euclid(86_400),
        is_ca: cert.is_ca(),
    })
}

/// Describes every certificate in the given PEM files, as of `now`.
pub fn check_at(files: &[PathBuf], now: OffsetDateTime) -> Result<Vec<CertInfo>, CertError> {
    let mut out = Vec::new();
    for path in files {
        for (i, der) in read_pem_certs(path)?.iter().enumerate() {
            out.push(describe(path, i, der, now)?);
        }
    }
    Ok(out)
}

/// Describes every certificate in the given PEM files, as of now.
pub fn check(files: &[PathBuf]) -> Result<Vec<CertInfo>, CertError> {
    check_at(files, OffsetDateTime::now_utc())
}

/// The earliest `not_after` among the certificates in a PEM file (what the broker publishes in $SYS).
pub fn cert_expiry(path: &Path) -> Result<OffsetDateTime, CertError> {
    let infos = check_at(&[path.to_owned()], OffsetDateTime::now_utc())?;
    infos
        .iter()
        .map(|i| i.not_after)
        .min()
        .ok_or_else(|| CertError::Parse {
            path: path.to_owned(),
            reason: "no certificate".into(),
        })
}

#[cfg(test)]
mod tests;
