//! LWA1 end to end with the real binaries (issue 4 acceptance 1 and 2, key
//! management): `mqtt-lwa psk` makes the keys, `mqtt-lwa sub/pub --lwa-id
//! --lwa-key` talk through `mqtt-lwa broker` at QoS 0, 1 and 2 while a
//! recording proxy shows that no payload crosses the wire in plaintext;
//! plaintext and LWA clients share a topic; a revoked identity is cut off
//! without a restart; a wrong key and a downgraded CONNACK are refused.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use bytes::BytesMut;
use common::{contains, psk_cli, recording_proxy, unique, Broker, LineProcess, WAIT};
use mqtt_lwa::codec::{encode, ConnAck, Decoder, Packet, ProtocolVersion, ReasonCode};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");

struct Setup {
    dir: tempfile::TempDir,
    broker: Broker,
}

impl Setup {
    fn key(&self, id: &str) -> String {
        self.dir
            .path()
            .join(format!("{id}.key"))
            .display()
            .to_string()
    }
    fn store(&self) -> PathBuf {
        self.dir.path().join("lwa.psk")
    }
}

/// A broker accepting LWA1 identities pub1, sub1 and anonymous plaintext clients.
fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    for id in ["pub1", "sub1"] {
        psk_cli(dir.path(), &["add", "lwa.psk", id]);
    }
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"lwa\"\nbind = \"127.0.0.1\"\nallow_anonymous = true\nlwa_psk_file = \"{}\"\n",
            dir.path().join("lwa.psk").display()
        ),
    )
    .unwrap();
    let broker = Broker::start(&["-c", config.to_str().unwrap()]);
    Setup { dir, broker }
}

fn lwa_sub(port: u16, id: &str, key: &str, topic: &str, count: &str) -> LineProcess {
    let port = port.to_string();
    let mut sub = LineProcess::spawn(
        BIN,
        &[
            "sub",
            "-d",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--lwa-id",
            id,
            "--lwa-key",
            key,
            "-i",
            &unique(id),
            "-t",
            topic,
            "-q",
            "2",
            "-C",
            count,
            "-W",
            "60",
        ],
    );
    sub.expect_line("SUBACK", |l| l.contains("received SUBACK"));
    sub
}

fn lwa_pub(port: u16, id: &str, key: &str, topic: &str, message: &str, qos: &str) -> Output {
    Command::new(BIN)
        .args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["--lwa-id", id, "--lwa-key", key, "-i", &unique(id)])
        .args(["-t", topic, "-m", message, "-q", qos, "-W", "30"])
        .output()
        .unwrap()
}

#[test]
fn lwa_pub_sub_at_every_qos_with_no_plaintext_on_the_wire() {
    let s = start();
    let (proxy, wire) = recording_proxy(s.broker.addr);
    let topic = unique("lwa/e2e");
    let mut sub = lwa_sub(proxy, "sub1", &s.key("sub1"), &topic, "3");
    for qos in ["0", "1", "2"] {
        let msg = format!("top secret reading {qos}");
        let out = lwa_pub(proxy, "pub1", &s.key("pub1"), &topic, &msg, qos);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        sub.expect_line("the message", |l| l == msg);
    }
    assert!(sub.wait().success());
    let wire = wire.lock().unwrap();
    // The capture is real: topics and the method name are visible (LWA.md 12.1)...
    assert!(contains(&wire, topic.as_bytes()));
    assert!(contains(&wire, b"LWA1"));
    // ...but no payload, in either direction.
    assert!(
        !contains(&wire, b"top secret"),
        "plaintext payload on the wire"
    );
}

#[test]
fn plaintext_and_lwa_clients_share_a_topic() {
    let s = start();
    let port = s.broker.port();
    let topic = unique("shared/t");
    // LWA publisher -> plaintext subscriber (the broker opens the record).
    let mut plain_sub = LineProcess::spawn(
        "stdbuf",
        &[
            "-oL",
            "mosquitto_sub",
            "-d",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            &topic,
            "-C",
            "1",
        ],
    );
    plain_sub.expect_line("Subscribed", |l| l.starts_with("Subscribed"));
    let out = lwa_pub(port, "pub1", &s.key("pub1"), &topic, "from lwa", "1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    plain_sub.expect_line("the message", |l| l == "from lwa");
    // Plaintext publisher -> LWA subscriber (the broker seals it for the subscriber).
    let mut lwa = lwa_sub(port, "sub1", &s.key("sub1"), &topic, "1");
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", &topic])
        .args(["-m", "from plaintext", "-q", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    lwa.expect_line("the message", |l| l == "from plaintext");
}

#[test]
fn wrong_key_is_refused_as_broker_authentication_failure() {
    let s = start();
    let wrong = s.dir.path().join("wrong.key");
    std::fs::write(&wrong, format!("{}\n", "ab".repeat(32))).unwrap();
    let out = lwa_pub(
        s.broker.port(),
        "pub1",
        wrong.to_str().unwrap(),
        "t",
        "m",
        "1",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broker authentication failed"), "{err}");
    // The right key on the same broker works.
    let out = lwa_pub(s.broker.port(), "pub1", &s.key("pub1"), "t", "m", "1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn revoked_identity_is_disconnected_without_restart() {
    let s = start();
    let topic = unique("rev/t");
    let mut sub = lwa_sub(s.broker.port(), "sub1", &s.key("sub1"), &topic, "5");
    psk_cli(s.dir.path(), &["revoke", "lwa.psk", "sub1"]);
    assert!(!std::fs::read_to_string(s.store()).unwrap().contains("sub1"));
    // The broker re-reads the store and closes the live session.
    let status = common::wait_exit(&mut sub.child, WAIT).expect("subscriber cut off");
    assert!(!status.success());
    // And the identity can no longer connect.
    let out = lwa_pub(s.broker.port(), "sub1", &s.key("sub1"), &topic, "m", "1");
    assert_eq!(out.status.code(), Some(2));
    // Others are unaffected.
    let out = lwa_pub(s.broker.port(), "pub1", &s.key("pub1"), &topic, "m", "1");
    assert!(out.status.success());
}

#[test]
fn client_refuses_a_connack_without_lwa_authentication() {
    // A fake broker (or an attacker on the path) that strips the LWA1 response.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut decoder = Decoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut packets = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Ok(Some(p)) = decoder.decode(&mut buf) {
                if let Packet::Connect(c) = &p {
                    assert_eq!(c.properties.authentication_method.as_deref(), Some("LWA1"));
                    let mut out = BytesMut::new();
                    let ack = ConnAck {
                        session_present: false,
                        reason_code: ReasonCode::SUCCESS,
                        properties: Default::default(),
                    };
                    encode(
                        &Packet::ConnAck(Box::new(ack)),
                        ProtocolVersion::V5,
                        &mut out,
                    )
                    .unwrap();
                    sock.write_all(&out).unwrap();
                }
                packets.push(p);
            }
            match sock.read(&mut chunk) {
                Ok(0) | Err(_) => return packets,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    psk_cli(dir.path(), &["add", "s.psk", "dev"]);
    let key = dir.path().join("dev.key");
    let out = lwa_pub(port, "dev", key.to_str().unwrap(), "t", "secret", "0");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets = fake.join().unwrap();
    assert!(matches!(packets.first(), Some(Packet::Connect(_))));
    assert!(
        !packets.iter().any(|p| matches!(p, Packet::Publish(_))),
        "published after a downgraded CONNACK: {packets:?}"
    );
    if let Some(Packet::Disconnect(d)) = packets.last() {
        assert_eq!(d.reason_code, ReasonCode::NOT_AUTHORIZED);
    }
}

/// The broker logs nothing per connection in any mode at its default level, so the
/// experiment's LWA cells do not pay for log lines the other modes do not write.
#[test]
fn no_per_connection_log_lines_for_lwa_or_plaintext_clients() {
    let s = start();
    let port = s.broker.port();
    let topic = unique("log/t");
    let out = lwa_pub(port, "pub1", &s.key("pub1"), &topic, "quiet", "1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["pub", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", &topic, "-m", "quiet", "-q", "1", "-W", "30"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_, stderr) = s.broker.terminate();
    for needle in ["pub1", "authenticated", "CONNECT"] {
        assert!(
            !stderr.contains(needle),
            "per-connection log line ({needle}) in broker log:\n{stderr}"
        );
    }
}

/// LWA.md section 8: an LWA1 client whose records are used up ends the
/// connection with DISCONNECT 0x00 and reconnects for fresh keys; nothing it
/// accepted is lost or reordered, at every QoS (2 records per connection:
/// 7 messages take 4 connections).
#[test]
fn lwa1_client_reconnects_for_fresh_keys_when_its_records_run_out() {
    let s = start();
    let topic = unique("lwa1/rekey");
    let mut sub = lwa_sub(s.broker.port(), "sub1", &s.key("sub1"), &topic, "21");
    let port = s.broker.port().to_string();
    let key = s.key("pub1");
    for qos in ["0", "1", "2"] {
        let id = unique("pub1");
        let mut publisher = Command::new(BIN)
            .args(["pub", "-d", "-h", "127.0.0.1", "-p", &port])
            .args(["--lwa-id", "pub1", "--lwa-key", &key, "-i", &id])
            .args([
                "--lwa-record-limit-log2",
                "1",
                "-t",
                &topic,
                "-q",
                qos,
                "-l",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write as _;
            let mut stdin = publisher.stdin.take().unwrap();
            for i in 1..=7 {
                writeln!(stdin, "q{qos}-m{i}").unwrap();
            }
        }
        let out = publisher.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        assert_eq!(log.matches("sending CONNECT").count(), 4, "{log}");
        assert_eq!(log.matches("sending DISCONNECT").count(), 4, "{log}");
        assert!(log.contains("reconnecting for fresh keys"), "{log}");
        for i in 1..=7 {
            let want = format!("q{qos}-m{i}");
            sub.expect_line("the next message, in order", |l| l == want);
        }
    }
    assert!(sub.wait().success());
}

/// LWA.md section 8, the other direction: a broker whose b2c records are used
/// up (the subscriber offered 2 per connection) ends with DISCONNECT 0x83;
/// the LWA1 subscriber, having opened all the broker may seal, reconnects for
/// fresh keys and its persistent session delivers the rest.
#[test]
fn lwa1_subscriber_reconnects_when_the_brokers_records_run_out() {
    let s = start();
    let topic = unique("lwa1/rekey-b2c");
    let port = s.broker.port().to_string();
    let key = s.key("sub1");
    let id = unique("sub1");
    let mut sub = LineProcess::spawn(
        BIN,
        &[
            "sub",
            "-d",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--lwa-id",
            "sub1",
            "--lwa-key",
            &key,
            "--lwa-record-limit-log2",
            "1",
            "-i",
            &id,
            "-c",
            "-x",
            "300",
            "-t",
            &topic,
            "-q",
            "1",
            "-C",
            "7",
            "-W",
            "60",
        ],
    );
    sub.expect_line("SUBACK", |l| l.contains("received SUBACK"));
    let out = Command::new(BIN)
        .args([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            &topic,
            "-q",
            "1",
            "-l",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut p| {
            use std::io::Write as _;
            let mut stdin = p.stdin.take().unwrap();
            for i in 1..=7 {
                writeln!(stdin, "b2c-m{i}").unwrap();
            }
            drop(stdin);
            p.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    for i in 1..=7 {
        let want = format!("b2c-m{i}");
        sub.expect_line("the next message, in order", |l| l == want);
    }
    assert!(sub.wait().success());
}
