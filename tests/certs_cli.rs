//! `mqtt-lwa certs init/check` through the real binary, and the generated PKI
//! used by an independent TLS stack: Debian's mosquitto (OpenSSL) with
//! mutual TLS and `use_identity_as_username`.
//!
//! The mosquitto part needs `mosquitto` and `mosquitto_pub` (scripts/install-deps.sh).

mod cli_support;

use std::path::Path;
use std::process::{Command, Output};

use cli_support::Mosquitto;
use mqtt_lwa::auth::certs::{CertificateAuthority, KeyAlgorithm, Validity};

fn ours() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_exit_codes_follow_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long");
    let short = dir.path().join("short");
    let out = run(ours()
        .args(["certs", "init"])
        .arg(&long)
        .args(["--days", "400", "--client", "dev1"]));
    assert!(out.status.success(), "{}", describe(&out));
    let out = run(ours()
        .args(["certs", "init"])
        .arg(&short)
        .args(["--days", "10"]));
    assert!(out.status.success(), "{}", describe(&out));

    let check = |files: &[&Path], warn: &str| {
        let mut c = ours();
        c.args(["certs", "check", "--warn-days", warn]);
        for f in files {
            c.arg(f);
        }
        run(&mut c)
    };
    let ok = check(
        &[
            &long.join("ca.crt"),
            &long.join("broker.crt"),
            &long.join("dev1.crt"),
        ],
        "30",
    );
    assert_eq!(ok.status.code(), Some(0), "{}", describe(&ok));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("CN=dev1"), "{text}");
    assert!(
        text.contains("IP:127.0.0.1") && text.contains("DNS:localhost"),
        "{text}"
    );

    let soon = check(&[&long.join("broker.crt"), &short.join("broker.crt")], "30");
    assert_eq!(soon.status.code(), Some(1), "{}", describe(&soon));
    assert!(String::from_utf8_lossy(&soon.stdout).contains("EXPIRES SOON"));
    let relaxed = check(&[&short.join("broker.crt")], "5");
    assert_eq!(relaxed.status.code(), Some(0), "{}", describe(&relaxed));

    // An already expired certificate fails even with --warn-days 0.
    let now = time::OffsetDateTime::now_utc();
    let ca = CertificateAuthority::new("x", KeyAlgorithm::EcdsaP256, Validity::days_from_now(1))
        .unwrap();
    let old = ca
        .issue_client(
            "old",
            KeyAlgorithm::EcdsaP256,
            Validity {
                not_before: now - time::Duration::days(9),
                not_after: now - time::Duration::hours(1),
            },
        )
        .unwrap();
    let old_path = dir.path().join("old.crt");
    std::fs::write(&old_path, old.cert_pem).unwrap();
    let expired = check(&[&old_path], "0");
    assert_eq!(expired.status.code(), Some(1), "{}", describe(&expired));
    assert!(String::from_utf8_lossy(&expired.stdout).contains("EXPIRED"));

    let junk = dir.path().join("junk.crt");
    std::fs::write(&junk, "hello").unwrap();
    let bad = check(&[&junk], "30");
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    let missing = check(&[&dir.path().join("nope.crt")], "30");
    assert_eq!(missing.status.code(), Some(2), "{}", describe(&missing));
}

#[test]
fn init_never_overwrites_and_keys_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out = run(ours().args(["certs", "init"]).arg(&pki).args([
        "--client",
        "a",
        "--algorithm",
        "rsa2048",
    ]));
    assert!(out.status.success(), "{}", describe(&out));
    let before = std::fs::read(pki.join("ca.key")).unwrap();
    assert!(String::from_utf8_lossy(&before).contains("BEGIN PRIVATE KEY"));
    #[cfg(unix)]
    for f in ["ca.key", "broker.key", "a.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(pki.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let again = run(ours().args(["certs", "init"]).arg(&pki));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read(pki.join("ca.key")).unwrap(), before);
    let bad = run(ours()
        .args(["certs", "init"])
        .arg(dir.path().join("x"))
        .args(["--algorithm", "dsa"]));
    assert!(!bad.status.success());
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} || test -x {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "{tool} not installed: run scripts/install-deps.sh");
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn mosquitto_accepts_our_pki_for_mutual_tls() {
    require("/usr/sbin/mosquitto");
    require("mosquitto_pub");
    for algorithm in ["ecdsa-p256", "rsa2048"] {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let out = run(ours().args(["certs", "init"]).arg(&pki).args([
            "--client",
            "sensor-1",
            "--algorithm",
            algorithm,
        ]));
        assert!(out.status.success(), "{}", describe(&out));
        // mosquitto started as root drops to user `mosquitto`: let it read the test PKI.
        chmod(dir.path(), 0o755);
        chmod(&pki, 0o755);
        chmod(&pki.join("broker.key"), 0o644);

        let broker = Mosquitto::start_with(
            "allow_anonymous false\n",
            &format!(
                "cafile {0}/ca.crt\ncertfile {0}/broker.crt\nkeyfile {0}/broker.key\n\
                 require_certificate true\nuse_identity_as_username true\n",
                pki.display()
            ),
        );
        let port = broker.port;
        let publish = |with_cert: bool, host: &str| {
            let mut c = Command::new("mosquitto_pub");
            c.args(["-h", host, "-p", &port.to_string(), "-t", "t", "-m", "m"])
                .arg("--cafile")
                .arg(pki.join("ca.crt"));
            if with_cert {
                c.arg("--cert")
                    .arg(pki.join("sensor-1.crt"))
                    .arg("--key")
                    .arg(pki.join("sensor-1.key"));
            }
            run(&mut c)
        };
        // "localhost" resolves to 127.0.0.1 here; the broker cert names it.
        let ok = publish(true, "localhost");
        assert!(ok.status.success(), "{algorithm}: {}", describe(&ok));
        let no_cert = publish(false, "localhost");
        assert!(
            !no_cert.status.success(),
            "{algorithm}: accepted without a client certificate"
        );
        let log_text = broker.log();
        assert!(
            log_text.contains("u'sensor-1'"),
            "{algorithm}: CN not used as user name:\n{log_text}"
        );
        drop(broker);
    }
}
