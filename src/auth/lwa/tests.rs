//! Broker and client glue objects talking to each other in memory.

use super::*;
use crate::auth::psk::PskStore;
use crate::codec::LastWill;
use crate::lwa::METHOD;

fn store_with(entries: &[(&str, u8)]) -> Arc<SharedPskStore> {
    let mut store = PskStore::new();
    for (id, byte) in entries {
        store.set(id, Psk::new([*byte; 32])).unwrap();
    }
    Arc::new(SharedPskStore::fixed(store))
}

fn broker(entries: &[(&str, u8)]) -> LwaAuthenticator {
    LwaAuthenticator::new(store_with(entries), DEFAULT_BROKER_RECORD_LIMIT_LOG2).unwrap()
}

fn client(id: &str, byte: u8) -> LwaClientAuthenticator {
    LwaClientAuthenticator::new(id, Psk::new([byte; 32])).unwrap()
}

fn connect(client_id: &str) -> Connect {
    Connect {
        protocol_version: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 30,
        client_id: client_id.into(),
        will: Some(LastWill {
            topic: "dead/sensor".into(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        }),
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

fn peer(session_present: bool) -> PeerInfo {
    PeerInfo {
        listener: "lwa".into(),
        session_present: Some(session_present),
        ..PeerInfo::default()
    }
}

fn connack(session_present: bool, auth: Option<(String, Bytes)>) -> ConnAck {
    let mut properties = Properties::default();
    if let Some((method, data)) = auth {
        properties.authentication_method = Some(method);
        properties.authentication_data = Some(data);
    }
    ConnAck {
        session_present,
        reason_code: ReasonCode::SUCCESS,
        properties,
    }
}

fn broker_auth_ok() -> Auth {
    Auth {
        reason_code: ReasonCode::SUCCESS,
        properties: Properties {
            authentication_method: Some(METHOD.into()),
            ..Properties::default()
        },
    }
}

/// Runs CONNECT -> CONNACK -> AUTH; returns what each side ended with.
fn handshake(
    broker: &LwaAuthenticator,
    client: &mut LwaClientAuthenticator,
    session_present: bool,
) -> (
    Result<Authenticated, ReasonCode>,
    Result<ClientAuthStep, ClientAuthError>,
) {
    let mut c = connect("dev-1");
    client.prepare_connect(&mut c).unwrap();
    assert_eq!(c.properties.authentication_method.as_deref(), Some("LWA1"));
    let (connack_auth, continuation) = match broker.authenticate(&c, &peer(session_present)) {
        AuthDecision::Pending {
            connack_auth,
            continuation,
        } => (connack_auth, continuation),
        AuthDecision::Reject(r) => panic!("rejected at CONNECT: {r:?}"),
        AuthDecision::Accept { .. } => panic!("LWA1 must not accept before the finished"),
    };
    assert_eq!(continuation.method(), "LWA1");
    assert_eq!(connack_auth.1.len(), crate::lwa::RESPONSE_LEN);
    let step = client.on_connack(&connack(session_present, Some(connack_auth)));
    let finished = match &step {
        Ok(s) => s
            .auth_to_send
            .as_ref()
            .and_then(|a| a.properties.authentication_data.clone())
            .unwrap(),
        // Client refused the broker: give the broker a garbage finished so it also fails.
        Err(_) => Bytes::from_static(&[0u8; 16]),
    };
    (continuation.finish(&finished), step)
}

#[test]
fn full_handshake_then_records_both_ways() {
    let broker = broker(&[("dev", 1), ("other", 2)]);
    let mut client = client("dev", 1);
    let (b, c) = handshake(&broker, &mut client, false);
    let b = b.unwrap();
    let c = c.unwrap();
    assert_eq!(b.principal.lwa_identity.as_deref(), Some("dev"));
    assert_eq!(b.principal.username, None);
    let auth = c.auth_to_send.as_ref().unwrap();
    assert_eq!(auth.reason_code, ReasonCode::RE_AUTHENTICATE);
    assert!(client.awaiting_broker_auth());
    client.on_auth(&broker_auth_ok()).unwrap();
    assert!(!client.awaiting_broker_auth());
    let mut bp = b.protection.unwrap();
    let mut cp = c.protection.unwrap();
    assert_eq!(bp.overhead(), 16);
    for i in 0..3u8 {
        let sealed = cp.seal("s/t", QoS::AtLeastOnce, false, &[i; 5]).unwrap();
        assert_eq!(sealed.len(), 21);
        assert_ne!(&sealed[..5], &[i; 5]);
        assert_eq!(
            bp.open("s/t", QoS::AtLeastOnce, false, &sealed).unwrap(),
            &[i; 5][..]
        );
        let down = bp.seal("cmd", QoS::ExactlyOnce, true, b"go").unwrap();
        assert_eq!(
            cp.open("cmd", QoS::ExactlyOnce, true, &down).unwrap(),
            &b"go"[..]
        );
    }
    // A second AUTH is a protocol error.
    assert_eq!(
        client.on_auth(&broker_auth_ok()).unwrap_err().reason,
        ReasonCode::PROTOCOL_ERROR
    );
}

#[test]
fn session_present_is_bound() {
    let broker = broker(&[("dev", 1)]);
    let mut client = client("dev", 1);
    let mut c = connect("dev-1");
    client.prepare_connect(&mut c).unwrap();
    let AuthDecision::Pending { connack_auth, .. } = broker.authenticate(&c, &peer(true)) else {
        panic!("expected pending");
    };
    // An attacker flips Session Present in CONNACK: the client refuses the broker.
    let err = client
        .on_connack(&connack(false, Some(connack_auth)))
        .unwrap_err();
    assert_eq!(err.reason, ReasonCode::NOT_AUTHORIZED);
    assert!(err.message.contains("broker authentication failed"));
}

#[test]
fn wrong_psk_and_unknown_identity_fail_alike() {
    let broker = broker(&[("dev", 1)]);
    for mut client in [client("dev", 9), client("ghost", 1)] {
        let (b, c) = handshake(&broker, &mut client, false);
        // The client cannot verify the broker (different keys): 0x87 on its side.
        let err = c.err().unwrap();
        assert_eq!(err.reason, ReasonCode::NOT_AUTHORIZED);
        // And the broker refuses the finished with 0x87, no principal.
        assert_eq!(b.err(), Some(ReasonCode::NOT_AUTHORIZED));
    }
}

#[test]
fn broker_refuses_a_forged_finished() {
    let broker = broker(&[("dev", 1)]);
    let mut client = client("dev", 1);
    let mut c = connect("dev-1");
    client.prepare_connect(&mut c).unwrap();
    let AuthDecision::Pending { continuation, .. } = broker.authenticate(&c, &peer(false)) else {
        panic!("expected pending");
    };
    // An attacker that replays the CONNECT cannot produce client_mac.
    assert_eq!(
        continuation.finish(&[0x55; 16]).err(),
        Some(ReasonCode::NOT_AUTHORIZED)
    );
}

#[test]
fn replayed_connect_gets_a_fresh_response_and_old_finished_fails() {
    let broker = broker(&[("dev", 1)]);
    let mut client = client("dev", 1);
    let mut c = connect("dev-1");
    client.prepare_connect(&mut c).unwrap();
    let AuthDecision::Pending {
        connack_auth,
        continuation,
    } = broker.authenticate(&c, &peer(false))
    else {
        panic!("expected pending");
    };
    let step = client
        .on_connack(&connack(false, Some(connack_auth)))
        .unwrap();
    let finished = step
        .auth_to_send
        .unwrap()
        .properties
        .authentication_data
        .unwrap();
    continuation.finish(&finished).unwrap();
    // The same CONNECT again (replay): new broker ephemeral, the recorded finished does not fit.
    let AuthDecision::Pending { continuation, .. } = broker.authenticate(&c, &peer(false)) else {
        panic!("expected pending");
    };
    assert_eq!(
        continuation.finish(&finished).err(),
        Some(ReasonCode::NOT_AUTHORIZED)
    );
}

#[test]
fn client_refuses_connack_without_lwa_data() {
    let mut client = client("dev", 1);
    let mut c = connect("dev-1");
    client.prepare_connect(&mut c).unwrap();
    let err = client.on_connack(&connack(false, None)).unwrap_err();
    assert_eq!(err.reason, ReasonCode::NOT_AUTHORIZED);
    assert!(err.message.contains("downgrade"), "{err}");

    let mut c = connect("dev-1");
    client.prepare_connect(&mut c).unwrap();
    let other = Some(("SCRAM-SHA-1".to_owned(), Bytes::from_static(b"x")));
    let err = client.on_connack(&connack(false, other)).unwrap_err();
    // Sent in DISCONNECT, where 0x8C is not allowed (LWA.md section 9).
    assert_eq!(err.reason, ReasonCode::PROTOCOL_ERROR);

    let mut c = connect("dev-1");
    client.prepare_connect(&mut c).unwrap();
    let truncated = Some(("LWA1".to_owned(), Bytes::from_static(&[1, 32])));
    let err = client.on_connack(&connack(false, truncated)).unwrap_err();
    assert_eq!(err.reason, ReasonCode::PROTOCOL_ERROR);

    // A CONNACK with no handshake in flight.
    assert_eq!(
        client.on_connack(&connack(false, None)).unwrap_err().reason,
        ReasonCode::PROTOCOL_ERROR
    );
}

#[test]
fn client_reports_refused_connack() {
    let mut client = client("dev", 1);
    let mut c = connect("dev-1");
    client.prepare_connect(&mut c).unwrap();
    let mut ack = connack(false, None);
    ack.reason_code = ReasonCode::NOT_AUTHORIZED;
    assert_eq!(
        client.on_connack(&ack).unwrap_err().reason,
        ReasonCode::NOT_AUTHORIZED
    );
}

#[test]
fn broker_auth_must_be_success_with_method() {
    let broker = broker(&[("dev", 1)]);
    let mut client = client("dev", 1);
    let (_, c) = handshake(&broker, &mut client, false);
    c.unwrap();
    let mut bad = broker_auth_ok();
    bad.properties.authentication_method = None;
    assert_eq!(
        client.on_auth(&bad).unwrap_err().reason,
        ReasonCode::PROTOCOL_ERROR
    );
    let mut client2 = self::client("dev", 1);
    let (_, c) = handshake(&broker, &mut client2, false);
    c.unwrap();
    let mut bad = broker_auth_ok();
    bad.reason_code = ReasonCode::CONTINUE_AUTHENTICATION;
    assert_eq!(
        client2.on_auth(&bad).unwrap_err().reason,
        ReasonCode::PROTOCOL_ERROR
    );
}

fn open_pair() -> (Box<dyn PayloadProtection>, Box<dyn PayloadProtection>) {
    let broker = broker(&[("dev", 1)]);
    let mut client = client("dev", 1);
    let (b, c) = handshake(&broker, &mut client, false);
    (
        b.unwrap().protection.unwrap(),
        c.unwrap().protection.unwrap(),
    )
}

#[test]
fn replayed_record_is_refused() {
    let (mut bp, mut cp) = open_pair();
    let r = cp.seal("t", QoS::AtMostOnce, false, b"once").unwrap();
    bp.open("t", QoS::AtMostOnce, false, &r).unwrap();
    assert_eq!(
        bp.open("t", QoS::AtMostOnce, false, &r).unwrap_err(),
        ReasonCode::NOT_AUTHORIZED
    );
}

#[test]
fn reordered_record_is_refused() {
    let (mut bp, mut cp) = open_pair();
    let _first = cp.seal("t", QoS::AtMostOnce, false, b"1").unwrap();
    let second = cp.seal("t", QoS::AtMostOnce, false, b"2").unwrap();
    assert_eq!(
        bp.open("t", QoS::AtMostOnce, false, &second).unwrap_err(),
        ReasonCode::NOT_AUTHORIZED
    );
}

#[test]
fn swapped_topic_is_refused() {
    let (mut bp, mut cp) = open_pair();
    let r = cp.seal("door/open", QoS::AtLeastOnce, false, b"1").unwrap();
    assert_eq!(
        bp.open("door/close", QoS::AtLeastOnce, false, &r)
            .unwrap_err(),
        ReasonCode::NOT_AUTHORIZED
    );
}

#[test]
fn reflected_record_is_refused() {
    let (mut bp, mut cp) = open_pair();
    let down = bp.seal("t", QoS::AtMostOnce, false, b"x").unwrap();
    // The broker's own record sent back to it.
    assert_eq!(
        bp.open("t", QoS::AtMostOnce, false, &down).unwrap_err(),
        ReasonCode::NOT_AUTHORIZED
    );
    let up = cp.seal("t", QoS::AtMostOnce, false, b"x").unwrap();
    assert_eq!(
        cp.open("t", QoS::AtMostOnce, false, &up).unwrap_err(),
        ReasonCode::NOT_AUTHORIZED
    );
}

#[test]
fn record_limit_closes_with_0x83() {
    let broker = LwaAuthenticator::new(store_with(&[("dev", 1)]), 1).unwrap();
    let mut client = client("dev", 1);
    let (b, _) = handshake(&broker, &mut client, false);
    let mut bp = b.unwrap().protection.unwrap();
    bp.seal("t", QoS::AtMostOnce, false, b"0").unwrap();
    bp.seal("t", QoS::AtMostOnce, false, b"1").unwrap();
    assert_eq!(
        bp.seal("t", QoS::AtMostOnce, false, b"2").unwrap_err(),
        ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
    );
}

#[test]
fn connect_level_refusals() {
    let broker = broker(&[("dev", 1)]);
    let reject = |c: &Connect, p: &PeerInfo| match broker.authenticate(c, p) {
        AuthDecision::Reject(r) => r,
        _ => panic!("expected a refusal"),
    };
    let mut c = connect("dev-1");
    client("dev", 1).prepare_connect(&mut c).unwrap();
    // The server forgot the session lookup.
    let mut no_lookup = peer(false);
    no_lookup.session_present = None;
    assert_eq!(
        reject(&c, &no_lookup),
        ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
    );
    // Another method.
    let mut other = c.clone();
    other.properties.authentication_method = Some("LWA2".into());
    assert_eq!(
        reject(&other, &peer(false)),
        ReasonCode::BAD_AUTHENTICATION_METHOD
    );
    // Method without data: malformed offer.
    let mut nodata = c.clone();
    nodata.properties.authentication_data = None;
    assert_eq!(
        reject(&nodata, &peer(false)),
        ReasonCode::BAD_AUTHENTICATION_METHOD
    );
    // Empty client id (checked after the offer parses).
    let mut anon = c.clone();
    anon.client_id.clear();
    assert_eq!(
        reject(&anon, &peer(false)),
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID
    );
    // Low-order point as the client's ephemeral key.
    let mut low = c.clone();
    let mut offer = low.properties.authentication_data.clone().unwrap().to_vec();
    let n = offer.len();
    offer[n - 32..].fill(0);
    low.properties.authentication_data = Some(Bytes::from(offer));
    assert_eq!(reject(&low, &peer(false)), ReasonCode::NOT_AUTHORIZED);
    // MQTT 3.1.1 cannot carry LWA1.
    let mut old = c.clone();
    old.protocol_version = ProtocolVersion::V311;
    assert_eq!(reject(&old, &peer(false)), ReasonCode::NOT_AUTHORIZED);
}

#[test]
fn client_needs_mqtt5_and_a_client_id() {
    let mut client = client("dev", 1);
    let mut c = connect("dev-1");
    c.protocol_version = ProtocolVersion::V311;
    assert!(client.prepare_connect(&mut c).is_err());
    let mut c = connect("");
    assert_eq!(
        client.prepare_connect(&mut c).unwrap_err().reason,
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID
    );
    assert!(LwaClientAuthenticator::new("bad:id", Psk::new([0; 32])).is_err());
}

#[test]
fn will_is_bound_into_the_handshake() {
    let broker = broker(&[("dev", 1)]);
    let mut client = client("dev", 1);
    let mut c = connect("dev-1");
    client.prepare_connect(&mut c).unwrap();
    // An attacker swaps the will before it reaches the broker.
    if let Some(w) = c.will.as_mut() {
        w.payload = Bytes::from_static(b"evil");
    }
    let AuthDecision::Pending { connack_auth, .. } = broker.authenticate(&c, &peer(false)) else {
        panic!("expected pending");
    };
    assert_eq!(
        client
            .on_connack(&connack(false, Some(connack_auth)))
            .unwrap_err()
            .reason,
        ReasonCode::NOT_AUTHORIZED
    );
}

#[test]
fn reload_reports_revoked_identities() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("psk");
    let mut store = PskStore::new();
    store.set("a", Psk::new([1; 32])).unwrap();
    store.set("b", Psk::new([2; 32])).unwrap();
    store.save(&path).unwrap();
    let shared = Arc::new(SharedPskStore::load(&path).unwrap());
    let auth = LwaAuthenticator::new(Arc::clone(&shared), 8).unwrap();
    assert!(auth.reload().is_empty(), "unchanged file revokes nobody");
    store.remove("a");
    store.save(&path).unwrap();
    let revoked = auth.reload();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].lwa_identity.as_deref(), Some("a"));
    // A broken file keeps the old keys.
    std::fs::write(&path, "garbage\n").unwrap();
    assert!(auth.reload().is_empty());
    assert!(shared.current().contains("b"));
}

#[test]
fn key_file_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.key");
    crate::auth::psk::save_client_key(&path, &Psk::new([1; 32])).unwrap();
    let mut client = LwaClientAuthenticator::from_key_file("dev", &path).unwrap();
    assert_eq!(client.identity(), "dev");
    let (b, c) = handshake(&broker(&[("dev", 1)]), &mut client, false);
    assert!(b.is_ok() && c.is_ok());
    let missing = dir.path().join("none");
    assert!(LwaClientAuthenticator::from_key_file("dev", &missing).is_err());
}

#[test]
fn failed_attempts_are_rate_limited_per_source_and_successes_refunded() {
    use crate::auth::rate_limit::{ConnectRateLimiter, RateLimitConfig};
    let config = RateLimitConfig {
        burst: 2,
        refill_every: std::time::Duration::from_secs(3600),
        max_sources: 16,
    };
    let broker = broker(&[("dev", 1)]).with_rate_limiter(ConnectRateLimiter::new(config));
    let mut p = peer(false);
    p.remote_addr = Some("192.0.2.7:4000".parse().unwrap());
    // Successful handshakes give their token back: any number of them.
    for _ in 0..5 {
        let mut cl = client("dev", 1);
        let mut c = connect("dev-1");
        cl.prepare_connect(&mut c).unwrap();
        let AuthDecision::Pending {
            continuation,
            connack_auth,
        } = broker.authenticate(&c, &p)
        else {
            panic!("expected pending")
        };
        let step = cl.on_connack(&connack(false, Some(connack_auth))).unwrap();
        let finished = step
            .auth_to_send
            .unwrap()
            .properties
            .authentication_data
            .unwrap();
        continuation.finish(&finished).unwrap();
    }
    // Failures do not: after the burst the source is refused before any key work.
    let wrong = |broker: &LwaAuthenticator, p: &PeerInfo| {
        let mut c = connect("dev-1");
        client("dev", 9).prepare_connect(&mut c).unwrap();
        broker.authenticate(&c, p)
    };
    let mut refused = 0;
    for _ in 0..4 {
        match wrong(&broker, &p) {
            AuthDecision::Pending { continuation, .. } => {
                assert!(continuation.finish(&[0; 16]).is_err())
            }
            AuthDecision::Reject(r) => {
                assert_eq!(r, ReasonCode::CONNECTION_RATE_EXCEEDED);
                refused += 1;
            }
            AuthDecision::Accept { .. } => panic!("accepted"),
        }
    }
    assert_eq!(refused, 2, "burst of 2, then refused");
    // Another source is unaffected.
    p.remote_addr = Some("198.51.100.1:4000".parse().unwrap());
    assert!(matches!(wrong(&broker, &p), AuthDecision::Pending { .. }));
}

#[test]
fn rotated_file_counts_before_the_reload_and_live_records_stop_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("psk");
    let mut store = PskStore::new();
    store.set("dev", Psk::new([1; 32])).unwrap();
    store.save(&path).unwrap();
    let shared = Arc::new(SharedPskStore::load(&path).unwrap());
    let old = KeyId::of("dev", &Psk::new([1; 32]));
    assert!(shared.key_is_current("dev", &old));
    let auth = LwaAuthenticator::new(Arc::clone(&shared), 8).unwrap();
    let (b, c) = handshake(&auth, &mut client("dev", 1), false);
    let mut live = b.unwrap().protection.unwrap();
    assert!(c.is_ok());
    assert!(live.seal("t", QoS::AtMostOnce, false, b"x").is_ok());
    store.set("dev", Psk::new([2; 32])).unwrap();
    store.save(&path).unwrap();
    // The file on disk counts at once, before any reload.
    assert!(!shared.key_is_current("dev", &old));
    let (b, _) = handshake(&auth, &mut client("dev", 2), false);
    assert!(b.is_ok(), "the new key works before the reload");
    assert_eq!(shared.revocation_generation(), 0);
    assert_eq!(auth.reload().len(), 1);
    assert_eq!(shared.revocation_generation(), 1);
    assert_eq!(
        live.seal("t", QoS::AtMostOnce, false, b"x").unwrap_err(),
        ReasonCode::ADMINISTRATIVE_ACTION
    );
}

#[test]
fn the_method_selects_the_version() {
    assert_eq!(LwaVersion::from_method(Some("LWA1")), Ok(LwaVersion::V1));
    assert_eq!(LwaVersion::from_method(Some("L2")), Ok(LwaVersion::V2));
    assert_eq!(
        LwaVersion::from_method(Some("LWA2")),
        Err(LwaError::MethodMismatch)
    );
    assert_eq!(
        LwaVersion::from_method(None),
        Err(LwaError::MissingAuthentication)
    );
    assert_eq!(LwaVersion::V2.method(), "L2");
}
