//! Issue 13: LWA and authentication findings of the attack review, each
//! attacked over real sockets against `mqtt-lwa broker` or through the
//! `mqtt-lwa psk` CLI. Every test here failed before its fix.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{connect_packet, unique, Broker, RawClient, Read1, WAIT};
use mqtt_lwa::auth::lwa::LwaClientAuthenticator;
use mqtt_lwa::auth::psk::{load_client_key, PskStore};
use mqtt_lwa::auth::{ClientAuthStep, ClientAuthenticator};
use mqtt_lwa::codec::{Auth, Packet, ProtocolVersion, ReasonCode};
use mqtt_lwa::lwa::Psk;

const V5: ProtocolVersion = ProtocolVersion::V5;

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run mqtt-lwa")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Setup {
    dir: tempfile::TempDir,
    psk_path: PathBuf,
    broker: Broker,
}

impl Setup {
    /// A broker with one LWA listener whose store holds `ids`, keys made by `psk add`.
    fn start(ids: &[&str], extra_listener_toml: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let psk_path = dir.path().join("lwa.psk");
        for id in ids {
            ok(&cli(dir.path(), &["psk", "add", "lwa.psk", id]));
        }
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            format!(
                "[[listener]]\nname = \"lwa\"\nbind = \"127.0.0.1\"\nallow_anonymous = true\nlwa_psk_file = \"{}\"\n{extra_listener_toml}",
                psk_path.display()
            ),
        )
        .unwrap();
        let broker = Broker::start(&["-c", config.to_str().unwrap()]);
        Setup {
            dir,
            psk_path,
            broker,
        }
    }

    fn key(&self, id: &str) -> Psk {
        load_client_key(&self.dir.path().join(format!("{id}.key")), id).unwrap()
    }

    fn psk(&self, args: &[&str]) -> String {
        let mut all = vec!["psk"];
        all.extend_from_slice(args);
        ok(&cli(self.dir.path(), &all))
    }
}

/// An LWA1 handshake up to the client's finished, which is not sent yet.
struct Parked {
    raw: RawClient,
    auth: LwaClientAuthenticator,
    step: ClientAuthStep,
    /// The Session Present flag of the authenticated CONNACK.
    session_present: bool,
}

fn park(broker: &Broker, id: &str, key: Psk) -> Parked {
    park_with(broker, id, key, connect_packet(V5, &unique("c"), true))
}

fn park_with(broker: &Broker, id: &str, key: Psk, mut connect: mqtt_lwa::codec::Connect) -> Parked {
    let mut auth = LwaClientAuthenticator::new(id, key).unwrap();
    auth.prepare_connect(&mut connect).unwrap();
    let mut raw = RawClient::tcp(broker.addr, V5);
    raw.send(&Packet::Connect(Box::new(connect)));
    let ack = match raw.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    let step = auth.on_connack(&ack).expect("broker's response verifies");
    Parked {
        raw,
        auth,
        step,
        session_present: ack.session_present,
    }
}

impl Parked {
    /// Sends the finished; the broker's answer (AUTH, DISCONNECT, close).
    fn finish(mut self) -> (Read1, RawClient) {
        let finished: Auth = self.step.auth_to_send.take().unwrap();
        self.raw.send(&Packet::Auth(Box::new(finished)));
        let answer = self.raw.read(WAIT);
        if let Read1::Packet(Packet::Auth(a)) = &answer {
            self.auth.on_auth(a).unwrap();
        }
        (answer, self.raw)
    }
}

fn lwa_connect(broker: &Broker, id: &str, key: Psk) -> RawClient {
    match park(broker, id, key).finish() {
        (Read1::Packet(Packet::Auth(a)), raw) if a.reason_code == ReasonCode::SUCCESS => raw,
        (other, _) => panic!("expected AUTH 0x00, got {other:?}"),
    }
}

fn refused(answer: &Read1) -> bool {
    match answer {
        Read1::Packet(Packet::Disconnect(d)) => d.reason_code.is_error(),
        Read1::Closed => true,
        _ => false,
    }
}

// ---- item 1: revoke / rotate reach parked handshakes and live sessions ----

#[test]
fn handshake_parked_across_psk_revoke_does_not_complete() {
    let s = Setup::start(&["dev"], "");
    let parked = park(&s.broker, "dev", s.key("dev"));
    s.psk(&["revoke", "lwa.psk", "dev"]);
    let (answer, _) = parked.finish();
    assert!(
        refused(&answer),
        "a handshake keyed before `psk revoke` completed after it returned: {answer:?}"
    );
}

#[test]
fn handshake_parked_across_psk_rotate_does_not_complete_and_new_key_works() {
    let s = Setup::start(&["dev"], "");
    let parked = park(&s.broker, "dev", s.key("dev"));
    s.psk(&["rotate", "lwa.psk", "dev"]);
    let (answer, _) = parked.finish();
    assert!(
        refused(&answer),
        "a handshake keyed with the old key completed after `psk rotate` returned: {answer:?}"
    );
    // The new key works at once.
    let _fresh = lwa_connect(&s.broker, "dev", s.key("dev"));
}

#[test]
fn live_session_is_closed_within_one_second_of_psk_revoke() {
    let s = Setup::start(&["dev", "other"], "");
    let mut victim = lwa_connect(&s.broker, "dev", s.key("dev"));
    let mut bystander = lwa_connect(&s.broker, "other", s.key("other"));
    s.psk(&["revoke", "lwa.psk", "dev"]);
    let returned = Instant::now();
    // The documented bound is 1 s; the reload runs every 250 ms, so even a
    // loaded machine closes it well within this (the old 3 s poll missed it
    // two times in three).
    let answer = victim.read(Duration::from_millis(1000));
    assert!(
        refused(&answer),
        "still connected {:?} after `psk revoke` returned: {answer:?}",
        returned.elapsed()
    );
    assert!(matches!(
        bystander.read(Duration::from_millis(300)),
        Read1::Timeout
    ));
    assert!(!PskStore::load(&s.psk_path).unwrap().contains("dev"));
}

// ---- item 2: no identity enumeration on plaintext/password CONNECTs ----

fn plain_connect(broker: &Broker, user: &str) -> ReasonCode {
    let mut connect = connect_packet(V5, &unique("plain"), true);
    connect.username = Some(user.into());
    connect.password = Some(bytes::Bytes::from_static(b"guess"));
    let mut raw = RawClient::tcp(broker.addr, V5);
    raw.send(&Packet::Connect(Box::new(connect)));
    match raw.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => ack.reason_code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[test]
fn user_name_login_answers_lwa_identities_like_any_other_name() {
    let s = Setup::start(&["dev"], "auth_failure_burst = 100\n");
    let for_identity = plain_connect(&s.broker, "dev");
    let for_other = plain_connect(&s.broker, "no-such-name");
    assert_eq!(
        for_identity, for_other,
        "an LWA identity is told apart from other names"
    );
    assert!(for_identity.is_error());
}

#[test]
fn failed_user_name_logins_are_rate_limited_per_source() {
    let s = Setup::start(
        &["dev"],
        "auth_failure_burst = 3\nauth_failure_refill_secs = 600\n",
    );
    let codes: Vec<ReasonCode> = (0..6)
        .map(|i| plain_connect(&s.broker, &format!("guess-{i}")))
        .collect();
    assert!(
        codes[3..]
            .iter()
            .all(|c| *c == ReasonCode::CONNECTION_RATE_EXCEEDED),
        "guesses past the budget of 3 were answered: {codes:?}"
    );
}

// ---- item 4: the LWA1 limiter honours auth_failure_* ----

fn bogus_offer(broker: &Broker) -> ReasonCode {
    let mut connect = connect_packet(V5, &unique("bogus"), true);
    connect.properties.authentication_method = Some("LWA1".into());
    connect.properties.authentication_data = Some(bytes::Bytes::from_static(b"\x01garbage"));
    let mut raw = RawClient::tcp(broker.addr, V5);
    raw.send(&Packet::Connect(Box::new(connect)));
    match raw.read(WAIT) {
        Read1::Packet(Packet::ConnAck(ack)) => ack.reason_code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[test]
fn lwa_limiter_uses_the_configured_failure_budget() {
    let s = Setup::start(&["dev"], "auth_failure_burst = 40\n");
    for _ in 0..15 {
        let code = bogus_offer(&s.broker);
        assert!(
            code.is_error() && code != ReasonCode::CONNECTION_RATE_EXCEEDED,
            "{code:?}"
        );
    }
    // A device behind the same address still gets in (the old fixed
    // budget of 10 had locked it out).
    let _dev = lwa_connect(&s.broker, "dev", s.key("dev"));
}

#[test]
fn lwa_limiter_locks_out_on_failures_only() {
    let s = Setup::start(
        &["dev"],
        "auth_failure_burst = 2\nauth_failure_refill_secs = 600\n",
    );
    for _ in 0..5 {
        let _ok = lwa_connect(&s.broker, "dev", s.key("dev"));
    }
    assert!(bogus_offer(&s.broker) != ReasonCode::CONNECTION_RATE_EXCEEDED);
    assert!(bogus_offer(&s.broker) != ReasonCode::CONNECTION_RATE_EXCEEDED);
    assert_eq!(bogus_offer(&s.broker), ReasonCode::CONNECTION_RATE_EXCEEDED);
}

// ---- item 7: `psk add` fixes a readable store and refuses path identities ----

#[cfg(unix)]
#[test]
fn psk_add_makes_a_readable_store_private_and_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    ok(&cli(dir.path(), &["psk", "add", "lwa.psk", "a"]));
    let store = dir.path().join("lwa.psk");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli(dir.path(), &["psk", "add", "lwa.psk", "b"]);
    ok(&out);
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "PSK store left readable by others");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mode is now 600"),
        "the operator is not told: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn psk_add_refuses_an_identity_that_escapes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("keys");
    std::fs::create_dir(&sub).unwrap();
    let out = cli(&sub, &["psk", "add", "lwa.psk", "../x"]);
    assert!(!out.status.success(), "`psk add ../x` succeeded");
    assert!(String::from_utf8_lossy(&out.stderr).contains("-o"));
    assert!(!dir.path().join("x.key").exists());
    // With an explicit key file the identity itself is fine.
    ok(&cli(
        &sub,
        &["psk", "add", "lwa.psk", "../x", "-o", "x.key"],
    ));
}

// ---- item 8: LWA1 failures are logged, rate limited ----

#[test]
fn lwa_failures_are_logged_with_identity_source_and_reason_rate_limited() {
    let s = Setup::start(&["dev"], "auth_failure_burst = 1000\n");
    for _ in 0..30 {
        // A finished the broker cannot verify (as from a wrong key).
        let mut parked = park(&s.broker, "dev", s.key("dev"));
        let finished = parked.step.auth_to_send.as_mut().unwrap();
        let data = finished.properties.authentication_data.take().unwrap();
        let mut forged = data.to_vec();
        forged[0] ^= 1;
        finished.properties.authentication_data = Some(forged.into());
        let (answer, _) = parked.finish();
        assert!(refused(&answer), "{answer:?}");
    }
    let log = s.broker.kill();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("LWA1 authentication failed"))
        .collect();
    assert!(!lines.is_empty(), "no LWA1 failure logged:\n{log}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert!(lines[0].contains("identity=dev"), "{}", lines[0]);
    assert!(lines[0].contains("127.0.0.1"), "{}", lines[0]);
    assert!(lines[0].contains("reason="), "{}", lines[0]);
    assert!(
        lines.len() <= 20,
        "{} failure lines: not rate limited",
        lines.len()
    );
}

// ---- item 5: the client requires AUTH 0x00 as the broker's first packet ----

/// The broker end of one accepted socket, driven by hand.
struct FakeBroker {
    stream: std::net::TcpStream,
    decoder: mqtt_lwa::codec::Decoder,
    buf: bytes::BytesMut,
}

impl FakeBroker {
    fn send(&mut self, packet: &Packet) {
        use std::io::Write;
        let mut out = bytes::BytesMut::new();
        mqtt_lwa::codec::encode(packet, V5, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
    }

    fn read(&mut self, within: Duration) -> Read1 {
        use std::io::Read;
        let deadline = Instant::now() + within;
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf).unwrap() {
                return Read1::Packet(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Read1::Timeout;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Read1::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Read1::Timeout
                }
                Err(_) => return Read1::Closed,
            }
        }
    }
}

/// `mqtt-lwa sub --lwa-id dev` started against a hand-driven broker; the
/// CONNECT it sent, already read.
fn sub_against_fake_broker(
    dir: &Path,
) -> (
    std::process::Child,
    FakeBroker,
    mqtt_lwa::codec::Connect,
    std::net::SocketAddr,
) {
    ok(&cli(dir, &["psk", "add", "lwa.psk", "dev"]));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let client = Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .args(["sub", "-h", "127.0.0.1", "-p", &port, "--lwa-id", "dev"])
        .args(["--lwa-key", "dev.key", "-t", "x", "-v"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (stream, remote) = listener.accept().unwrap();
    let mut b = FakeBroker {
        stream,
        decoder: mqtt_lwa::codec::Decoder::new(1 << 20),
        buf: bytes::BytesMut::new(),
    };
    let connect = match b.read(WAIT) {
        Read1::Packet(Packet::Connect(c)) => c,
        other => panic!("expected CONNECT, got {other:?}"),
    };
    b.decoder.set_version(V5);
    (client, b, *connect, remote)
}

#[test]
fn client_refuses_a_broker_whose_first_packet_after_connack_is_not_auth() {
    use mqtt_lwa::auth::lwa::{LwaAuthenticator, SharedPskStore};
    use mqtt_lwa::auth::{AuthDecision, ConnectAuthenticator, PeerInfo};
    use mqtt_lwa::codec::{ConnAck, Properties, SubAck};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let (mut client, mut b, connect, remote) = sub_against_fake_broker(dir.path());
    let store = PskStore::load(&dir.path().join("lwa.psk")).unwrap();
    let lwa = LwaAuthenticator::new(Arc::new(SharedPskStore::fixed(store)), 32).unwrap();
    let peer = PeerInfo {
        remote_addr: Some(remote),
        session_present: Some(false),
        ..PeerInfo::default()
    };
    let AuthDecision::Pending {
        connack_auth,
        continuation,
    } = lwa.authenticate(&connect, &peer)
    else {
        panic!("offer refused");
    };
    b.send(&Packet::ConnAck(Box::new(ConnAck {
        session_present: false,
        reason_code: ReasonCode::SUCCESS,
        properties: Properties {
            authentication_method: Some(connack_auth.0),
            authentication_data: Some(connack_auth.1),
            ..Properties::default()
        },
    })));
    let mut finished = None;
    let mut subscribe = None;
    while finished.is_none() || subscribe.is_none() {
        match b.read(WAIT) {
            Read1::Packet(Packet::Auth(a)) => finished = a.properties.authentication_data,
            Read1::Packet(Packet::Subscribe(s)) => subscribe = Some(s.packet_id),
            other => panic!("expected AUTH and SUBSCRIBE, got {other:?}"),
        }
    }
    assert!(continuation.finish(&finished.unwrap()).is_ok());
    // A SUBACK instead of the AUTH 0x00 that proves the broker verified us.
    b.send(&Packet::SubAck(SubAck {
        packet_id: subscribe.unwrap(),
        reason_codes: vec![ReasonCode::SUCCESS],
        properties: Default::default(),
    }));
    let answer = b.read(Duration::from_secs(5));
    let _ = client.kill();
    let _ = client.wait();
    match answer {
        Read1::Packet(Packet::Disconnect(d)) => {
            assert_eq!(d.reason_code, ReasonCode::PROTOCOL_ERROR)
        }
        other => panic!("client accepted a SUBACK before the broker's AUTH: {other:?}"),
    }
}

// ---- item 6: no DISCONNECT 0x8C (a CONNACK-only code) ----

#[test]
fn client_says_protocol_error_not_0x8c_for_a_malformed_response() {
    use mqtt_lwa::codec::{ConnAck, Properties};
    let dir = tempfile::tempdir().unwrap();
    let (mut client, mut b, _connect, _) = sub_against_fake_broker(dir.path());
    b.send(&Packet::ConnAck(Box::new(ConnAck {
        session_present: false,
        reason_code: ReasonCode::SUCCESS,
        properties: Properties {
            authentication_method: Some("LWA1".into()),
            authentication_data: Some(bytes::Bytes::from_static(&[1, 32])),
            ..Properties::default()
        },
    })));
    let answer = b.read(WAIT);
    let _ = client.kill();
    let _ = client.wait();
    match answer {
        Read1::Packet(Packet::Disconnect(d)) => {
            assert_eq!(d.reason_code, ReasonCode::PROTOCOL_ERROR)
        }
        other => panic!("expected DISCONNECT 0x82, got {other:?}"),
    }
}

#[test]
fn broker_says_protocol_error_not_0x8c_for_a_malformed_finished_or_another_method() {
    let s = Setup::start(&["dev"], "auth_failure_burst = 100\n");
    for method in ["LWA1", "LWA2"] {
        let mut parked = park(&s.broker, "dev", s.key("dev"));
        let finished = parked.step.auth_to_send.as_mut().unwrap();
        finished.properties.authentication_method = Some(method.into());
        finished.properties.authentication_data = Some(bytes::Bytes::from_static(b"abc"));
        let (answer, _) = parked.finish();
        match answer {
            Read1::Packet(Packet::Disconnect(d)) => {
                assert_eq!(d.reason_code, ReasonCode::PROTOCOL_ERROR, "{method}")
            }
            other => panic!("{method}: expected DISCONNECT 0x82, got {other:?}"),
        }
    }
}

// ---- item 3: the broker does what the authenticated Session Present said ----

fn persistent(client_id: &str, clean_start: bool, expiry: u32) -> mqtt_lwa::codec::Connect {
    let mut c = connect_packet(V5, client_id, clean_start);
    c.properties.session_expiry_interval = Some(expiry);
    c
}

fn disconnect(mut raw: RawClient) {
    raw.send(&Packet::Disconnect(mqtt_lwa::codec::Disconnect::new(
        ReasonCode::SUCCESS,
    )));
    let _ = raw.expect_close();
}

#[test]
fn session_gone_between_connack_and_finished_closes_instead_of_lying() {
    let s = Setup::start(&["dev"], "");
    let cid = unique("sp");
    // A stored session for `cid`.
    let first = park_with(&s.broker, "dev", s.key("dev"), persistent(&cid, true, 300));
    let (answer, raw) = first.finish();
    assert!(
        matches!(answer, Read1::Packet(Packet::Auth(_))),
        "{answer:?}"
    );
    disconnect(raw);
    // A resuming handshake is told Session Present = 1 and parks.
    let parked = park_with(&s.broker, "dev", s.key("dev"), persistent(&cid, false, 300));
    assert!(parked.session_present);
    // Meanwhile the session is cleaned and ends with the connection.
    let other = park_with(&s.broker, "dev", s.key("dev"), persistent(&cid, true, 0));
    let (answer, raw) = other.finish();
    assert!(
        matches!(answer, Read1::Packet(Packet::Auth(_))),
        "{answer:?}"
    );
    disconnect(raw);
    // The parked client must not be admitted under a flag that is now false.
    let (answer, mut raw) = parked.finish();
    let closed = match answer {
        Read1::Packet(Packet::Disconnect(d)) => Some(d.reason_code),
        Read1::Closed => None,
        Read1::Packet(Packet::Auth(_)) => match raw.read(Duration::from_secs(2)) {
            Read1::Packet(Packet::Disconnect(d)) => Some(d.reason_code),
            other => panic!("admitted with a stale Session Present = 1 (then {other:?})"),
        },
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(closed, Some(ReasonCode::SESSION_TAKEN_OVER));
}
