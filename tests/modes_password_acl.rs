//! Password and ACL mode over real sockets (issue 3): a password file made
//! by Debian's mosquitto_passwd accepted by `mqtt-lwa broker`, the refusals
//! with their 3.1.1 and 5.0 codes, and ACL-denied publish and subscribe
//! reaching nobody. The other direction (our client and our password file
//! against Debian's mosquitto, with TLS) is at the end.

mod cli_support;
mod common;

use std::path::Path;
use std::process::{Command, Output};

use bytes::Bytes;
use cli_support::Mosquitto;
use common::{connect_packet, unique, Broker, LineProcess, RawClient, Read1, WAIT};
use mqtt_lwa::codec::{Packet, ProtocolVersion, Publish, QoS, ReasonCode};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

/// A 0755 temp dir with world-readable files: Debian's mosquitto started as
/// root drops to user `mosquitto` before reading some of them.
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    dir
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Password file from Debian's mosquitto_passwd: alice/apple, bob/banana, carol/cherry.
fn mosquitto_password_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("passwd");
    run_ok(
        Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(&path)
            .args(["alice", "apple"]),
    );
    for (u, p) in [("bob", "banana"), ("carol", "cherry")] {
        run_ok(
            Command::new("mosquitto_passwd")
                .arg("-b")
                .arg(&path)
                .args([u, p]),
        );
    }
    path
}

/// Our broker with the mosquitto-made password file and an ACL.
fn start_password_broker(dir: &Path) -> Broker {
    let passwd = mosquitto_password_file(dir);
    let acl = dir.join("acl");
    std::fs::write(
        &acl,
        "user alice\ntopic readwrite public/#\ntopic read secret/#\n\nuser bob\ntopic readwrite #\n\nuser carol\ntopic read public/#\n",
    )
    .unwrap();
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"pw\"\nbind = \"127.0.0.1\"\nallow_anonymous = false\npassword_file = \"{}\"\nacl_file = \"{}\"\n",
            passwd.display(),
            acl.display()
        ),
    )
    .unwrap();
    Broker::start(&["-c", config.to_str().unwrap()])
}

fn login(
    broker: &Broker,
    version: ProtocolVersion,
    user: Option<&str>,
    pw: Option<&str>,
) -> ReasonCode {
    let mut c = connect_packet(version, &unique("pw"), true);
    c.username = user.map(str::to_owned);
    c.password = pw.map(|p| Bytes::copy_from_slice(p.as_bytes()));
    let mut raw = RawClient::tcp(broker.addr, version);
    raw.send(&Packet::Connect(Box::new(c)));
    match raw.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => ack.reason_code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

fn session(broker: &Broker, user: &str, pw: &str) -> RawClient {
    let mut c = connect_packet(V5, &unique(user), true);
    c.username = Some(user.into());
    c.password = Some(Bytes::copy_from_slice(pw.as_bytes()));
    let mut raw = RawClient::tcp(broker.addr, V5);
    raw.send(&Packet::Connect(Box::new(c)));
    match raw.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::SUCCESS),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    raw
}

fn publish_qos1(raw: &mut RawClient, topic: &str, payload: &'static [u8], id: u16) -> ReasonCode {
    raw.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Default::default(),
        payload: Bytes::from_static(payload),
    }));
    match raw.expect("PUBACK", |p| matches!(p, Packet::PubAck(_))) {
        Packet::PubAck(ack) => ack.reason_code,
        _ => unreachable!(),
    }
}

fn next_publish(raw: &mut RawClient) -> (String, Bytes) {
    match raw.expect("PUBLISH", |p| matches!(p, Packet::Publish(_))) {
        Packet::Publish(p) => (p.topic, p.payload),
        _ => unreachable!(),
    }
}

#[test]
fn mosquitto_passwd_file_logins_and_refusals() {
    let dir = shared_dir();
    let broker = start_password_broker(dir.path());
    // Right password, both protocol versions.
    assert_eq!(
        login(&broker, V5, Some("alice"), Some("apple")),
        ReasonCode::SUCCESS
    );
    assert_eq!(
        login(&broker, V311, Some("bob"), Some("banana")),
        ReasonCode::SUCCESS
    );
    // Wrong password and unknown user: 0x86 / 3.1.1 return code 4, alike.
    for (user, pw) in [("alice", "pear"), ("mallory", "apple")] {
        assert_eq!(
            login(&broker, V5, Some(user), Some(pw)),
            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            "{user}"
        );
        assert_eq!(
            login(&broker, V311, Some(user), Some(pw)).to_v311_connack(),
            4,
            "{user}"
        );
    }
    // No credentials with allow_anonymous = false: 0x87 / 5.
    assert_eq!(login(&broker, V5, None, None), ReasonCode::NOT_AUTHORIZED);
    assert_eq!(login(&broker, V311, None, None).to_v311_connack(), 5);

    // Debian's mosquitto_pub sees the same.
    let port = broker.port().to_string();
    let pub_as = |user: &str, pw: &str| {
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port, "-u", user, "-P", pw])
            .args(["-t", "public/x", "-m", "m", "-q", "1"])
            .output()
            .unwrap()
    };
    assert!(pub_as("alice", "apple").status.success());
    for (user, pw) in [("alice", "wrong"), ("nobody", "apple")] {
        let out = pub_as(user, pw);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("bad user name or password"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn acl_denied_publish_reaches_nobody() {
    let dir = shared_dir();
    let broker = start_password_broker(dir.path());
    let mut bob = session(&broker, "bob", "banana");
    bob.subscribe("#", QoS::AtMostOnce);
    let mut alice = session(&broker, "alice", "apple");
    // alice may only read secret/#: her publish is refused with 0x87...
    assert_eq!(
        publish_qos1(&mut alice, "secret/plans", b"leak", 1),
        ReasonCode::NOT_AUTHORIZED
    );
    // ...and bob, subscribed to everything, gets only her next, allowed message.
    assert_eq!(
        publish_qos1(&mut alice, "public/news", b"hello", 2),
        ReasonCode::SUCCESS
    );
    assert_eq!(
        next_publish(&mut bob),
        ("public/news".to_owned(), Bytes::from_static(b"hello"))
    );
}

#[test]
fn acl_denied_subscribe_gets_0x87_and_nothing() {
    let dir = shared_dir();
    let broker = start_password_broker(dir.path());
    let mut carol = session(&broker, "carol", "cherry");
    carol.send(&Packet::Subscribe(mqtt_lwa::codec::Subscribe {
        packet_id: 7,
        filters: vec![
            mqtt_lwa::codec::SubscribeFilter {
                filter: "secret/#".into(),
                options: mqtt_lwa::codec::SubscriptionOptions::qos(QoS::AtMostOnce),
            },
            mqtt_lwa::codec::SubscribeFilter {
                filter: "public/#".into(),
                options: mqtt_lwa::codec::SubscriptionOptions::qos(QoS::AtMostOnce),
            },
        ],
        properties: Default::default(),
    }));
    match carol.expect("SUBACK", |p| matches!(p, Packet::SubAck(_))) {
        Packet::SubAck(ack) => assert_eq!(
            ack.reason_codes,
            [ReasonCode::NOT_AUTHORIZED, ReasonCode::GRANTED_QOS_0]
        ),
        _ => unreachable!(),
    }
    let mut bob = session(&broker, "bob", "banana");
    publish_qos1(&mut bob, "secret/plans", b"hidden", 1);
    publish_qos1(&mut bob, "public/news", b"open", 2);
    assert_eq!(
        next_publish(&mut carol),
        ("public/news".to_owned(), Bytes::from_static(b"open"))
    );
}

// --- our client and our password file against Debian's mosquitto ---

fn ours(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"));
    c.args(args);
    c
}

#[test]
fn our_client_against_mosquitto_with_tls_and_our_password_file() {
    let dir = shared_dir();
    let d = dir.path();
    let pki = d.join("pki");
    run_ok(&mut ours(&["certs", "init", pki.to_str().unwrap()]));
    for f in ["ca.crt", "broker.crt", "broker.key"] {
        set_mode(&pki.join(f), 0o644);
    }
    set_mode(&pki, 0o755);
    let passwd = d.join("passwd");
    run_ok(&mut ours(&[
        "passwd",
        "-c",
        "-b",
        "-I",
        "1000",
        passwd.to_str().unwrap(),
        "dave",
        "durian",
    ]));
    set_mode(&passwd, 0o644);
    let f = |n: &str| pki.join(n).display().to_string();
    let m = Mosquitto::start_with(
        "allow_anonymous false\n",
        &format!(
            "password_file {}\ncafile {}\ncertfile {}\nkeyfile {}\ntls_version tlsv1.2\n",
            passwd.display(),
            f("ca.crt"),
            f("broker.crt"),
            f("broker.key")
        ),
    );
    let port = m.port.to_string();
    let ca = f("ca.crt");
    let topic = unique("interop/t");
    let mut sub = LineProcess::spawn(
        env!("CARGO_BIN_EXE_mqtt-lwa"),
        &[
            "sub",
            "-d",
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            &ca,
            "-u",
            "dave",
            "-P",
            "durian",
            "-t",
            &topic,
            "-C",
            "1",
            "-W",
            "30",
        ],
    );
    sub.expect_line("SUBACK", |l| l.contains("received SUBACK"));
    let publish = |pw: &str| {
        ours(&["pub", "-h", "localhost", "-p", &port, "--cafile", &ca])
            .args([
                "-u",
                "dave",
                "-P",
                pw,
                "-t",
                &topic,
                "-m",
                "through mosquitto",
                "-q",
                "1",
            ])
            .output()
            .unwrap()
    };
    let out = publish("durian");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sub.expect_line("the message", |l| l == "through mosquitto");
    assert!(sub.wait().success());
    // Mosquitto refuses a wrong password: our client exits 2 (refused).
    assert_eq!(publish("wrong").status.code(), Some(2));
}

#[test]
fn deleted_user_is_disconnected_without_restart() {
    let dir = shared_dir();
    let broker = start_password_broker(dir.path());
    let mut bob = session(&broker, "bob", "banana");
    let mut alice = session(&broker, "alice", "apple");
    // Delete bob with mosquitto_passwd; the broker notices the changed file.
    run_ok(
        Command::new("mosquitto_passwd")
            .arg("-D")
            .arg(dir.path().join("passwd"))
            .arg("bob"),
    );
    let packets = bob.expect_close();
    assert!(
        packets
            .iter()
            .any(|p| matches!(p, Packet::Disconnect(d) if d.reason_code == ReasonCode::ADMINISTRATIVE_ACTION)),
        "{packets:?}"
    );
    assert_eq!(
        login(&broker, V5, Some("bob"), Some("banana")),
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    // alice keeps her connection.
    assert_eq!(
        publish_qos1(&mut alice, "public/x", b"still", 1),
        ReasonCode::SUCCESS
    );
}
