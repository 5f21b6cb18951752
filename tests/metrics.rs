//! The `[metrics]` Prometheus endpoint of `mqtt-lwa broker`: a TLS listener
//! and a password listener, a good and a bad login on each, some
//! publishes, then a plain-TCP `GET /metrics` checked family by family.

mod cli_support;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use cli_support::{ok, publish, run, stderr};
use common::{connect_packet, publish_packet, RawClient, Read1, WAIT};
use mqtt_lwa::codec::{Packet, ProtocolVersion, QoS, ReasonCode};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// The broker child, killed on drop, with its listener and metrics addresses.
struct Broker {
    child: Child,
    listeners: Vec<SocketAddr>,
    metrics: SocketAddr,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &std::path::Path) -> Broker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .args(["broker", "-c", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mqtt-lwa broker");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut listeners = Vec::new();
    let metrics = loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => panic!("broker exited before its metrics line"),
        };
        if let Some(rest) = line.strip_prefix("listening on ") {
            listeners.push(rest.split(' ').next().unwrap().parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("metrics on http://") {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        } else {
            panic!("unexpected broker output {line:?}");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Broker {
        child,
        listeners,
        metrics,
    }
}

/// `GET path` over a plain TCP socket: (status line, body).
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample line `name{labels}` (or `name`), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn login(addr: SocketAddr, password: &'static [u8]) -> (RawClient, ReasonCode) {
    let mut c = RawClient::tcp(addr, V5);
    let mut connect = connect_packet(V5, &common::unique("m"), true);
    connect.username = Some("alice".into());
    connect.password = Some(Bytes::from_static(password));
    c.send(&Packet::Connect(Box::new(connect)));
    match c.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => (c, ack.reason_code),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[test]
fn metrics_endpoint_reports_connections_failures_messages_and_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    ok(&run(&["certs", "init", pki.to_str().unwrap()], b""));
    let pwfile = dir.path().join("passwd");
    ok(&run(
        &[
            "passwd",
            "-c",
            "-b",
            pwfile.to_str().unwrap(),
            "alice",
            "s3cret",
        ],
        b"",
    ));
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "sys_interval_secs = 0\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\
             [[listener]]\nname = \"secure\"\nbind = \"127.0.0.1:0\"\nmode = \"tls\"\n\
             allow_anonymous = true\n\
             [listener.tls]\ncertfile = \"{}\"\nkeyfile = \"{}\"\n\
             [[listener]]\nname = \"pw\"\nbind = \"127.0.0.1:0\"\n\
             allow_anonymous = false\npassword_file = \"{}\"\n",
            pki.join("broker.crt").display(),
            pki.join("broker.key").display(),
            pwfile.display()
        ),
    )
    .unwrap();
    let b = start(&config);
    let (tls, pw) = (b.listeners[0], b.listeners[1]);

    // Password listener: one refused login, one accepted that stays open
    // and publishes three QoS 1 messages.
    let (_refused, code) = login(pw, b"wrong");
    assert_eq!(code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    let (mut alice, code) = login(pw, b"s3cret");
    assert!(!code.is_error(), "{code:?}");
    for id in 1..=3 {
        alice.send(&Packet::Publish(publish_packet(
            "m/t",
            QoS::AtLeastOnce,
            id,
            b"x",
        )));
        alice.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)));
    }
    // TLS listener: one publish with the right CA, one client that refuses
    // the broker's certificate (a failed handshake).
    let ca = pki.join("ca.crt").display().to_string();
    let port = tls.port().to_string();
    ok(&publish(
        &port,
        &["-t", "m/t", "-m", "tls", "--cafile", &ca],
    ));
    let untrusted = publish(&port, &["-t", "m/t", "-m", "x"]);
    assert_ne!(untrusted.status.code(), Some(0), "{}", stderr(&untrusted));

    let (status, _) = get(b.metrics, "/");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    // The broker counts the failed handshake once its side of it ends.
    let mut body = String::new();
    let counted = cli_support::wait_for(Duration::from_secs(5), || {
        let (status, text) = get(b.metrics, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        body = text;
        sample(
            &body,
            "mqtt_lwa_auth_failures_total{mode=\"tls\",reason=\"handshake_failed\"}",
        ) == Some(1.0)
            && sample(
                &body,
                "mqtt_lwa_connections{listener=\"secure\",mode=\"tls\"}",
            ) == Some(0.0)
            // The refused login's connection is gone once the broker's
            // close (which lingers up to 1 s for the client) has ended.
            && sample(
                &body,
                "mqtt_lwa_connections{listener=\"pw\",mode=\"password\"}",
            ) == Some(1.0)
    });
    assert!(counted, "TLS handshake failure not counted:\n{body}");
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&body, series), Some(value), "{series} in\n{body}");
    };
    expect(
        "mqtt_lwa_connections{listener=\"pw\",mode=\"password\"}",
        1.0,
    );
    expect(
        "mqtt_lwa_auth_failures_total{mode=\"password\",reason=\"bad_credentials\"}",
        1.0,
    );
    expect("mqtt_lwa_messages_received_total", 4.0);
    expect("mqtt_lwa_messages_sent_total", 0.0);
    for reason in ["queue_full", "too_large", "slow_client"] {
        expect(
            &format!("mqtt_lwa_messages_dropped_total{{reason=\"{reason}\"}}"),
            0.0,
        );
    }
    expect("mqtt_lwa_store_errors_total", 0.0);
    for family in [
        "# TYPE mqtt_lwa_messages_received counter",
        "# TYPE mqtt_lwa_connections gauge",
        "# TYPE mqtt_lwa_tls_certificate_expiry_seconds gauge",
        "# UNIT mqtt_lwa_tls_certificate_expiry_seconds seconds",
    ] {
        assert!(
            body.lines().any(|l| l == family),
            "{family:?} missing in\n{body}"
        );
    }
    let expiry = sample(
        &body,
        "mqtt_lwa_tls_certificate_expiry_seconds{listener=\"secure\"}",
    )
    .expect("certificate expiry of the TLS listener");
    assert!(expiry > 14.0 * 86_400.0, "{expiry}");
    assert!(body.ends_with("# EOF\n"), "{body}");
}
