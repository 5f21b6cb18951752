//! TLS and mutual TLS over real sockets (issue 3): Debian's mosquitto_pub /
//! mosquitto_sub, openssl s_client and our own `mqtt-lwa pub/sub` against
//! `mqtt-lwa broker`'s TLS listeners, and every rejection the issue lists,
//! each next to the same command succeeding with only the offending part fixed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{unique, Broker, LineProcess};
use mqtt_lwa::auth::certs::{CertificateAuthority, IssuedCert, KeyAlgorithm, Validity};
use time::{Duration, OffsetDateTime};

const ALG: KeyAlgorithm = KeyAlgorithm::EcdsaP256;

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
    fn save(&self, stem: &str, issued: &IssuedCert) {
        std::fs::write(self.path(&format!("{stem}.crt")), &issued.cert_pem).unwrap();
        std::fs::write(self.path(&format!("{stem}.key")), issued.key_pem.as_bytes()).unwrap();
    }
}

fn expired() -> Validity {
    let now = OffsetDateTime::now_utc();
    Validity {
        not_before: now - Duration::days(10),
        not_after: now - Duration::days(1),
    }
}

/// ca.crt; broker (127.0.0.1, ::1, localhost);
/// oldbroker (expired); clients alice, bob (valid), oldalice (expired);
/// mallory from another CA (othe-ca.crt).
fn make_pki() -> Pki {
    let pki = Pki {
        dir: tempfile::tempdir().unwrap(),
    };
    let ok = Validity::days_from_now(30);
    let ca = CertificateAuthority::new("modes test CA", ALG, ok).unwrap();
    std::fs::write(pki.path("ca.crt"), ca.cert_pem()).unwrap();
    pki.save(
        "broker",
        &ca.issue_server(&["127.0.0.1", "localhost"], ALG, ok)
            .unwrap(),
    );
    pki.save(
        "oldbroker",
        &ca.issue_server(&["127.0.0.1", "localhost"], ALG, expired())
            .unwrap(),
    );
    pki.save("alice", &ca.issue_client("alice", ALG, ok).unwrap());
    pki.save("bob", &ca.issue_client("bob", ALG, ok).unwrap());
    pki.save(
        "oldalice",
        &ca.issue_client("alice", ALG, expired()).unwrap(),
    );
    let other = CertificateAuthority::new("other CA", ALG, ok).unwrap();
    std::fs::write(pki.path("other-ca.crt"), other.cert_pem()).unwrap();
    pki.save("mallory", &other.issue_client("alice", ALG, ok).unwrap());
    std::fs::write(pki.path("acl"), "user alice\ntopic readwrite tls/#\n").unwrap();
    pki
}

/// Listener order: 0 tls, 1 mtls (CN as user name, ACL), 2 otherip (on 127.0.0.2),
/// 3 expired, 4 tls13 only.
fn start_broker(pki: &Pki) -> Broker {
    let tls = |name: &str, cert: &str, extra: &str| {
        // 127.0.0.2 is loopback too, but not a name in the broker certificate.
        let ip = if name == "otherip" {
            "127.0.0.2"
        } else {
            "127.0.0.1"
        };
        format!(
            "[[listener]]\nname = \"{name}\"\nbind = \"{ip}:0\"\nmode = \"tls\"\nallow_anonymous = true\n[listener.tls]\ncertfile = \"{}\"\nkeyfile = \"{}\"\n{extra}\n",
            pki.p(&format!("{cert}.crt")),
            pki.p(&format!("{cert}.key")),
        )
    };
    let mut text = tls("tls", "broker", "");
    text.push_str(&format!(
        "[[listener]]\nname = \"mtls\"\nbind = \"127.0.0.1:0\"\nmode = \"tls\"\nallow_anonymous = false\nacl_file = \"{}\"\n[listener.tls]\ncertfile = \"{}\"\nkeyfile = \"{}\"\ncafile = \"{}\"\nrequire_certificate = true\nuse_identity_as_username = true\n",
        pki.p("acl"),
        pki.p("broker.crt"),
        pki.p("broker.key"),
        pki.p("ca.crt")
    ));
    text.push_str(&tls("otherip", "broker", ""));
    text.push_str(&tls("expired", "oldbroker", ""));
    text.push_str(&tls("tls13", "broker", "tls_version = \"tlsv1.3\""));
    let config = pki.path("broker.toml");
    std::fs::write(&config, text).unwrap();
    Broker::start_listeners(&["-c", config.to_str().unwrap()], 5)
}

fn port(broker: &Broker, listener: usize) -> String {
    broker.addrs[listener].port().to_string()
}

/// mosquitto_pub at QoS 1 (so success means the broker acknowledged it).
fn mosquitto_pub(host: &str, port: &str, topic: &str, tls: &[&str]) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", host, "-p", port, "-t", topic, "-m", "m", "-q", "1"])
        .args(tls)
        .output()
        .expect("mosquitto_pub (package mosquitto-clients)")
}

fn ours_pub(host: &str, port: &str, topic: &str, tls: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .args([
            "pub", "-h", host, "-p", port, "-t", topic, "-m", "m", "-q", "1",
        ])
        .args(["-W", "20"])
        .args(tls)
        .output()
        .unwrap()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} should succeed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_refused(out: &Output, what: &str) {
    assert!(
        !out.status.success(),
        "{what} should be refused; stdout {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// mosquitto_sub with `-d` (its "Subscribed" line says the SUBACK arrived), line-buffered.
fn mosquitto_sub(host: &str, port: &str, topic: &str, tls: &[&str]) -> LineProcess {
    let mut args = vec![
        "-oL",
        "mosquitto_sub",
        "-d",
        "-h",
        host,
        "-p",
        port,
        "-t",
        topic,
        "-C",
        "1",
        "-F",
        "MSG|%t|%p",
    ];
    args.extend_from_slice(tls);
    let mut sub = LineProcess::spawn("stdbuf", &args);
    sub.expect_line("Subscribed", |l| l.starts_with("Subscribed"));
    sub
}

#[test]
fn mosquitto_clients_over_tls_and_mutual_tls() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let ca = pki.p("ca.crt");

    // Server-authenticated TLS, by name and by IP address.
    let p = port(&broker, 0);
    let topic = unique("tls/t");
    let mut sub = mosquitto_sub("localhost", &p, &topic, &["--cafile", &ca]);
    assert_ok(
        &mosquitto_pub("127.0.0.1", &p, &topic, &["--cafile", &ca]),
        "mosquitto_pub --cafile",
    );
    sub.expect_line("the message", |l| l == format!("MSG|{topic}|m"));

    // Mutual TLS: alice's CN is her user name, and the ACL lets her use tls/#.
    let p = port(&broker, 1);
    let alice = [
        "--cafile",
        &ca,
        "--cert",
        &pki.p("alice.crt"),
        "--key",
        &pki.p("alice.key"),
    ];
    let mut sub = mosquitto_sub("localhost", &p, &topic, &alice);
    assert_ok(&mosquitto_pub("localhost", &p, &topic, &alice), "alice");
    sub.expect_line("the message", |l| l == format!("MSG|{topic}|m"));
}

#[test]
fn our_client_over_tls_and_mutual_tls() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let ca = pki.p("ca.crt");
    assert_ok(
        &ours_pub("localhost", &port(&broker, 0), "tls/x", &["--cafile", &ca]),
        "mqtt-lwa pub --cafile",
    );
    let alice = [
        "--cafile",
        &ca,
        "--cert",
        &pki.p("alice.crt"),
        "--key",
        &pki.p("alice.key"),
    ];
    assert_ok(
        &ours_pub("127.0.0.1", &port(&broker, 1), "tls/x", &alice),
        "mqtt-lwa pub mTLS",
    );
    let tls12 = ["--cafile", &ca, "--tls-version", "tlsv1.2"];
    assert_ok(
        &ours_pub("localhost", &port(&broker, 0), "tls/x", &tls12),
        "mqtt-lwa pub --tls-version tlsv1.2",
    );
}

#[test]
fn mutual_tls_without_a_client_certificate_is_refused() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let ca = pki.p("ca.crt");
    let p = port(&broker, 1);
    assert_refused(
        &mosquitto_pub("localhost", &p, "tls/x", &["--cafile", &ca]),
        "mosquitto_pub without --cert",
    );
    assert_refused(
        &ours_pub("localhost", &p, "tls/x", &["--cafile", &ca]),
        "mqtt-lwa pub without --cert",
    );
}

#[test]
fn client_certificate_from_another_ca_is_refused() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let mallory = [
        "--cafile",
        &pki.p("ca.crt"),
        "--cert",
        &pki.p("mallory.crt"),
        "--key",
        &pki.p("mallory.key"),
    ];
    let p = port(&broker, 1);
    assert_refused(
        &mosquitto_pub("localhost", &p, "tls/x", &mallory),
        "cert from another CA (mosquitto_pub)",
    );
    assert_refused(
        &ours_pub("localhost", &p, "tls/x", &mallory),
        "cert from another CA (mqtt-lwa pub)",
    );
}

#[test]
fn expired_client_certificate_is_refused() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let old = [
        "--cafile",
        &pki.p("ca.crt"),
        "--cert",
        &pki.p("oldalice.crt"),
        "--key",
        &pki.p("oldalice.key"),
    ];
    assert_refused(
        &mosquitto_pub("localhost", &port(&broker, 1), "tls/x", &old),
        "expired client certificate",
    );
}

#[test]
fn expired_broker_certificate_is_refused_by_clients() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let ca = ["--cafile", &pki.p("ca.crt")];
    let p = port(&broker, 3);
    let out = mosquitto_pub("localhost", &p, "tls/x", &ca);
    assert_refused(&out, "expired broker certificate (mosquitto_pub)");
    let out = ours_pub("localhost", &p, "tls/x", &ca);
    assert_refused(&out, "expired broker certificate (mqtt-lwa pub)");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("expired"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hostname_mismatch_is_refused_by_clients() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let ca = pki.p("ca.crt");
    let p = port(&broker, 2);
    assert_refused(
        &mosquitto_pub("127.0.0.2", &p, "tls/x", &["--cafile", &ca]),
        "hostname mismatch (mosquitto_pub)",
    );
    // The same connection without the name check goes through: it was the name.
    assert_ok(
        &mosquitto_pub("127.0.0.2", &p, "tls/x", &["--cafile", &ca, "--insecure"]),
        "mosquitto_pub --insecure",
    );
    let out = ours_pub("127.0.0.2", &p, "tls/x", &["--cafile", &ca]);
    assert_refused(&out, "hostname mismatch (mqtt-lwa pub)");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not valid for name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `openssl s_client` with one protocol version flag; returns (handshake ok, output).
fn s_client(port: &str, version_flag: &str, ca: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([version_flag, "-CAfile", ca.to_str().unwrap(), "-brief"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text.contains("CONNECTION ESTABLISHED"), text)
}

#[test]
fn tls_1_1_only_client_is_refused() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let p = port(&broker, 0);
    let (ok, text) = s_client(&p, "-tls1_1", &pki.path("ca.crt"));
    assert!(!ok, "{text}");
    // The broker answered the TLS 1.1 ClientHello with an alert: refused, not unreachable.
    assert!(text.contains("alert"), "{text}");
    let (ok, text) = s_client(&p, "-tls1_2", &pki.path("ca.crt"));
    assert!(ok, "TLS 1.2 works on the same listener: {text}");
}

#[test]
fn minimum_version_tls_1_3_refuses_tls_1_2() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let p = port(&broker, 4);
    let (ok, text) = s_client(&p, "-tls1_2", &pki.path("ca.crt"));
    assert!(!ok && text.contains("alert"), "{text}");
    let (ok, text) = s_client(&p, "-tls1_3", &pki.path("ca.crt"));
    assert!(ok, "{text}");
}

#[test]
fn certs_init_pki_works_with_mosquitto_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .args(["certs", "init", pki.to_str().unwrap(), "--client", "dev1"])
        .output()
        .unwrap();
    assert_ok(&out, "mqtt-lwa certs init");
    let f = |n: &str| pki.join(n).display().to_string();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"m\"\nbind = \"127.0.0.1\"\nmode = \"tls\"\nallow_anonymous = false\n[listener.tls]\ncertfile = \"{}\"\nkeyfile = \"{}\"\ncafile = \"{}\"\nrequire_certificate = true\nuse_identity_as_username = true\n",
            f("broker.crt"),
            f("broker.key"),
            f("ca.crt")
        ),
    )
    .unwrap();
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    let p = broker.port().to_string();
    let ca = f("ca.crt");
    let (cert, key) = (f("dev1.crt"), f("dev1.key"));
    let tls = ["--cafile", &ca, "--cert", &cert, "--key", &key];
    let topic = unique("init/t");
    let mut sub = mosquitto_sub("localhost", &p, &topic, &tls);
    assert_ok(
        &mosquitto_pub("127.0.0.1", &p, &topic, &tls),
        "certs init PKI",
    );
    sub.expect_line("the message", |l| l == format!("MSG|{topic}|m"));
}

#[test]
fn certificate_and_key_are_reloaded_without_restart() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let p = port(&broker, 0);
    // A second CA and a broker certificate from it, to swap in.
    let ok = Validity::days_from_now(30);
    let ca2 = CertificateAuthority::new("second CA", ALG, ok).unwrap();
    std::fs::write(pki.path("ca2.crt"), ca2.cert_pem()).unwrap();
    let next = ca2.issue_server(&[], ALG, ok).unwrap();
    let ca1 = ["--cafile", &pki.p("ca.crt")];
    let ca2 = ["--cafile", &pki.p("ca2.crt")];
    assert_ok(
        &mosquitto_pub("localhost", &p, "tls/x", &ca1),
        "old CA before",
    );
    assert_refused(
        &mosquitto_pub("localhost", &p, "tls/x", &ca2),
        "new CA before",
    );
    // Key first, then certificate: in between the pair does not match and the
    // broker keeps the old one.
    std::fs::write(pki.path("broker.key"), next.key_pem.as_bytes()).unwrap();
    std::fs::write(pki.path("broker.crt"), &next.cert_pem).unwrap();
    assert!(
        common::wait_until(common::WAIT, || mosquitto_pub(
            "localhost",
            &p,
            "tls/x",
            &ca2
        )
        .status
        .success()),
        "new certificate not served"
    );
    assert_refused(
        &mosquitto_pub("localhost", &p, "tls/x", &ca1),
        "old CA after",
    );
}

/// What a line must satisfy, and what that proves.
type LineCheck = (&'static str, fn(&str) -> bool);

#[test]
fn certificate_expiry_is_published_under_sys() {
    let pki = make_pki();
    let broker = start_broker(&pki);
    let ca = pki.p("ca.crt");
    // Retained, so a late subscriber gets them at once; one pair per TLS listener.
    let mut sub = LineProcess::spawn(
        "stdbuf",
        &[
            "-oL",
            "mosquitto_sub",
            "-h",
            "localhost",
            "-p",
            &port(&broker, 0),
            "--cafile",
            &ca,
            "-t",
            "$SYS/broker/tls/+/certificate/#",
            "-v",
            "-W",
            "30",
        ],
    );
    // Retained messages arrive in no particular order: collect until all three are seen.
    let checks: [LineCheck; 3] = [
        // Issued for 30 days from now (minus an hour of clock-skew margin).
        ("days_left of tls", |l| {
            l == "$SYS/broker/tls/tls/certificate/days_left 29"
                || l == "$SYS/broker/tls/tls/certificate/days_left 30"
        }),
        ("expired listener", |l| {
            l.starts_with("$SYS/broker/tls/expired/certificate/days_left -")
        }),
        ("expiry of mtls", |l| {
            l.starts_with("$SYS/broker/tls/mtls/certificate/expiry ") && l.ends_with('Z')
        }),
    ];
    let mut found = [false; 3];
    while !found.iter().all(|f| *f) {
        let line = sub.expect_line("a $SYS/broker/tls line", |l| l.starts_with("$SYS/"));
        for (i, (_, check)) in checks.iter().enumerate() {
            found[i] |= check(&line);
        }
    }
}
