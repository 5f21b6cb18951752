//! The in-process `Server` API over real sockets: several listeners, custom
//! authenticators (blocking, rejecting, enhanced authentication with a
//! pending step), credential revocation, keep-alive, counters and shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{connect_packet, publish_packet, unique, RawClient, Read1, WAIT};
use mqtt_lwa::auth::{
    AllowAll, AuthDecision, Authenticated, ConnectAuthenticator, ListenerSecurity, PeerInfo,
    PendingAuth, Principal,
};
use mqtt_lwa::broker::{Server, ServerHandle, Stats};
use mqtt_lwa::codec::{
    Auth, Connect, LastWill, Packet, Properties, ProtocolVersion, QoS, ReasonCode,
};
use mqtt_lwa::config::{BrokerConfig, ListenerConfig};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

/// A server running on its own runtime thread.
struct Running {
    addrs: Vec<SocketAddr>,
    handle: ServerHandle,
    stats: Arc<Stats>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    fn start(listeners: usize, security: ListenerSecurity) -> Running {
        let config = BrokerConfig {
            listeners: (0..listeners)
                .map(|i| ListenerConfig {
                    name: format!("l{i}"),
                    bind: "127.0.0.1:0".parse().unwrap(),
                    ..ListenerConfig::default()
                })
                .collect(),
            ..BrokerConfig::default()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let securities = vec![security; listeners];
                let server = Server::bind_with(config, securities).await?;
                let _ = tx.send((server.local_addrs(), server.handle(), server.stats()));
                Ok(server.run().await?)
            })
        });
        let (addrs, handle, stats) = rx.recv().expect("server bound");
        Running {
            addrs,
            handle,
            stats,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.handle.shutdown();
        let thread = self.thread.take().unwrap();
        assert!(
            common::wait_until(WAIT, || thread.is_finished()),
            "run did not return"
        );
        thread.join().unwrap().expect("run returned an error");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Accepts everyone except user "bad"; revokes user "victim" on demand;
/// records what it saw of each peer. Runs on a blocking thread.
#[derive(Default)]
struct TestAuthenticator {
    peers: Mutex<Vec<(String, PeerInfo)>>,
    revoke_victim: AtomicBool,
}

impl ConnectAuthenticator for TestAuthenticator {
    fn authenticate(&self, connect: &Connect, peer: &PeerInfo) -> AuthDecision {
        self.peers
            .lock()
            .unwrap()
            .push((connect.client_id.clone(), peer.clone()));
        if connect.properties.authentication_method.as_deref() == Some("TEST") {
            return AuthDecision::Pending {
                connack_auth: ("TEST".into(), Bytes::from_static(b"challenge")),
                continuation: Box::new(TestPending),
            };
        }
        if connect.username.as_deref() == Some("bad") {
            return AuthDecision::Reject(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        }
        AuthDecision::Accept {
            authenticated: Authenticated {
                principal: Principal {
                    username: connect.username.clone(),
                    lwa_identity: None,
                },
                protection: None,
                auth_response: None,
            },
            connack_auth: None,
        }
    }
    fn is_blocking(&self) -> bool {
        true
    }
    fn reload(&self) -> Vec<Principal> {
        if self.revoke_victim.swap(false, Ordering::SeqCst) {
            vec![Principal {
                username: Some("victim".into()),
                lwa_identity: None,
            }]
        } else {
            Vec::new()
        }
    }
}

struct TestPending;

impl PendingAuth for TestPending {
    fn method(&self) -> &str {
        "TEST"
    }
    fn finish(self: Box<Self>, auth_data: &[u8]) -> Result<Authenticated, ReasonCode> {
        if auth_data != b"response" {
            return Err(ReasonCode::NOT_AUTHORIZED);
        }
        Ok(Authenticated {
            principal: Principal {
                username: None,
                lwa_identity: Some("dev".into()),
            },
            protection: None,
            auth_response: None,
        })
    }
}

fn security(auth: Arc<TestAuthenticator>) -> ListenerSecurity {
    ListenerSecurity {
        authenticator: auth,
        policy: Arc::new(AllowAll),
    }
}

fn connect_as(addr: SocketAddr, version: ProtocolVersion, id: &str, user: &str) -> RawClient {
    let mut c = RawClient::tcp(addr, version);
    let mut cn = connect_packet(version, id, true);
    cn.username = Some(user.into());
    c.send(&Packet::Connect(Box::new(cn)));
    c
}

fn expect_connack(c: &mut RawClient) -> mqtt_lwa::codec::ConnAck {
    match c.expect("CONNACK", |p| matches!(p, Packet::ConnAck(_))) {
        Packet::ConnAck(a) => *a,
        _ => unreachable!(),
    }
}

fn expect_disconnect(c: &mut RawClient, code: ReasonCode) {
    let seen = c.expect_close();
    assert!(
        matches!(seen.last(), Some(Packet::Disconnect(d)) if d.reason_code == code),
        "expected DISCONNECT {code:?}, got {seen:?}"
    );
}

#[test]
fn listeners_peer_info_rejections_and_counters() {
    let auth = Arc::new(TestAuthenticator::default());
    let server = Running::start(2, security(auth.clone()));
    assert_eq!(server.addrs.len(), 2);
    assert_ne!(server.addrs[0], server.addrs[1]);
    for (i, addr) in server.addrs.iter().enumerate() {
        let mut ok = connect_as(*addr, V5, &format!("ok{i}"), "alice");
        assert!(!expect_connack(&mut ok).reason_code.is_error());
    }
    {
        let peers = auth.peers.lock().unwrap();
        let listeners: Vec<&str> = peers.iter().map(|(_, p)| p.listener.as_str()).collect();
        assert_eq!(listeners, ["l0", "l1"]);
        assert!(peers.iter().all(|(_, p)| p.remote_addr.is_some() && !p.tls));
    }
    let mut bad = connect_as(server.addrs[0], V5, "b5", "bad");
    assert_eq!(
        expect_connack(&mut bad).reason_code,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    bad.expect_close();
    // 3.1.1 return code 4: bad user name or password.
    let mut bad = connect_as(server.addrs[1], V311, "b3", "bad");
    let seen = bad.expect_close();
    assert!(
        matches!(seen.first(), Some(Packet::ConnAck(a)) if a.reason_code == ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        "{seen:?}"
    );
    assert_eq!(Stats::get(&server.stats.auth_failures), 2);
    assert!(Stats::get(&server.stats.bytes_received) > 0);
    assert!(Stats::get(&server.stats.bytes_sent) > 0);
    assert!(Stats::get(&server.stats.connections_total) >= 4);
    server.stop();
}

#[test]
fn revoked_principal_is_disconnected_with_administrative_action() {
    let auth = Arc::new(TestAuthenticator::default());
    let server = Running::start(1, security(auth.clone()));
    let addr = server.addrs[0];
    let mut victim = connect_as(addr, V5, "v", "victim");
    expect_connack(&mut victim);
    let mut bystander = connect_as(addr, V5, "b", "bystander");
    expect_connack(&mut bystander);
    auth.revoke_victim.store(true, Ordering::SeqCst);
    expect_disconnect(&mut victim, ReasonCode::ADMINISTRATIVE_ACTION);
    bystander.send(&Packet::PingReq);
    bystander.expect("PINGRESP", |p| matches!(p, Packet::PingResp));
    server.stop();
}

fn lwa_like_connect(addr: SocketAddr, id: &str, will_topic: &str) -> RawClient {
    let mut c = RawClient::tcp(addr, V5);
    let mut cn = connect_packet(V5, id, true);
    cn.properties.authentication_method = Some("TEST".into());
    cn.will = Some(LastWill {
        topic: will_topic.into(),
        payload: Bytes::from_static(b"pending-will"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    });
    c.send(&Packet::Connect(Box::new(cn)));
    let ack = expect_connack(&mut c);
    assert_eq!(
        ack.properties.authentication_method.as_deref(),
        Some("TEST")
    );
    assert_eq!(
        ack.properties.authentication_data.as_deref(),
        Some(&b"challenge"[..])
    );
    c
}

fn auth_packet(data: &'static [u8]) -> Packet {
    Packet::Auth(Box::new(Auth {
        reason_code: ReasonCode::RE_AUTHENTICATE,
        properties: Properties {
            authentication_method: Some("TEST".into()),
            authentication_data: Some(Bytes::from_static(data)),
            ..Properties::default()
        },
    }))
}

#[test]
fn pending_authentication_has_no_side_effect_until_it_finishes() {
    let auth = Arc::new(TestAuthenticator::default());
    let server = Running::start(1, security(auth));
    let addr = server.addrs[0];
    let will_topic = unique("pending/will");
    // The live session of client id "dev" (authenticated as identity "dev"),
    // also watching for wills.
    let mut live = lwa_like_connect(addr, "dev", &unique("live/will"));
    live.send(&auth_packet(b"response"));
    live.expect(
        "AUTH success",
        |p| matches!(p, Packet::Auth(a) if a.reason_code == ReasonCode::SUCCESS),
    );
    live.subscribe(&will_topic, QoS::AtLeastOnce);

    // A replayed / forged CONNECT for "dev" that never proves anything.
    let mut forged = lwa_like_connect(addr, "dev", &will_topic);
    forged.send(&auth_packet(b"wrong"));
    expect_disconnect(&mut forged, ReasonCode::NOT_AUTHORIZED);
    // One that just goes away after CONNACK.
    let silent = lwa_like_connect(addr, "dev", &will_topic);
    drop(silent);
    // Both are gone (so a wrongly published will would already be queued).
    assert!(common::wait_until(WAIT, || Stats::get(
        &server.stats.connections
    ) == 1));

    // No takeover, no will: the live session still works and sees only its own marker.
    let mut marker = publish_packet(&will_topic, QoS::AtLeastOnce, 1, b"marker");
    marker.payload = Bytes::from_static(b"marker");
    live.send(&Packet::Publish(marker));
    live.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)));
    match live.expect("the marker", |p| matches!(p, Packet::Publish(_))) {
        Packet::Publish(p) => assert_eq!(p.payload, Bytes::from_static(b"marker")),
        _ => unreachable!(),
    }

    // A client that proves the same identity takes the session over, after AUTH success.
    let mut real = lwa_like_connect(addr, "dev", &unique("other/will"));
    real.send(&auth_packet(b"response"));
    match real.expect("AUTH", |p| matches!(p, Packet::Auth(_))) {
        Packet::Auth(a) => assert_eq!(a.reason_code, ReasonCode::SUCCESS),
        _ => unreachable!(),
    }
    expect_disconnect(&mut live, ReasonCode::SESSION_TAKEN_OVER);
    real.send(&Packet::PingReq);
    real.expect("PINGRESP", |p| matches!(p, Packet::PingResp));
    server.stop();
}

#[test]
fn keep_alive_timeout_disconnects_and_publishes_the_will() {
    let auth = Arc::new(TestAuthenticator::default());
    let server = Running::start(1, security(auth));
    let addr = server.addrs[0];
    let topic = unique("ka/will");
    let mut watcher = RawClient::connect(addr, V5, &unique("watcher"));
    watcher.subscribe(&topic, QoS::AtLeastOnce);
    let mut quiet = RawClient::tcp(addr, V5);
    let mut cn = connect_packet(V5, &unique("quiet"), true);
    cn.keep_alive = 1;
    cn.will = Some(LastWill {
        topic: topic.clone(),
        payload: Bytes::from_static(b"timed-out"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    });
    quiet.send(&Packet::Connect(Box::new(cn)));
    expect_connack(&mut quiet);
    // Silent for longer than 1.5 x keep-alive.
    expect_disconnect(&mut quiet, ReasonCode::KEEP_ALIVE_TIMEOUT);
    match watcher.expect("the will", |p| matches!(p, Packet::Publish(_))) {
        Packet::Publish(p) => assert_eq!(p.payload, Bytes::from_static(b"timed-out")),
        _ => unreachable!(),
    }
    server.stop();
}

#[test]
fn shutdown_handle_disconnects_clients_and_run_returns() {
    let auth = Arc::new(TestAuthenticator::default());
    let server = Running::start(1, security(auth));
    let addr = server.addrs[0];
    let mut c = RawClient::connect(addr, V5, &unique("bye"));
    // A connection that has not sent CONNECT is not the core's client: it
    // closes itself on the shutdown command, without waiting for its CONNECT
    // timeout.
    let mut silent = RawClient::tcp(addr, V5);
    let stats = server.stats.clone();
    assert!(common::wait_until(WAIT, || Stats::get(&stats.connections) == 2));
    let stopped_at = std::time::Instant::now();
    server.stop();
    expect_disconnect(&mut c, ReasonCode::SERVER_SHUTTING_DOWN);
    assert!(matches!(silent.read(WAIT), Read1::Closed));
    assert!(
        stopped_at.elapsed() < std::time::Duration::from_secs(2),
        "closed by the shutdown, not by a timeout: {:?}",
        stopped_at.elapsed()
    );
    assert!(common::wait_until(WAIT, || Stats::get(&stats.connections) == 0));
    // The listener is gone.
    assert!(
        std::net::TcpStream::connect(addr).is_err() || {
            let mut probe = RawClient::tcp(addr, V5);
            probe.send(&Packet::Connect(Box::new(connect_packet(V5, "late", true))));
            matches!(probe.read(WAIT), Read1::Closed)
        }
    );
}

#[test]
fn qos0_to_a_client_that_does_not_read_is_dropped_and_counted() {
    let auth = Arc::new(TestAuthenticator::default());
    let server = Running::start(1, security(auth));
    let addr = server.addrs[0];
    let flood = unique("flood");
    // Subscribes, then never reads again.
    let mut stuck = RawClient::connect(addr, V5, &unique("stuck"));
    stuck.subscribe(&format!("{flood}/#"), QoS::AtMostOnce);
    let marker = unique("marker");
    let mut good = RawClient::connect(addr, V5, &unique("good"));
    good.subscribe(&marker, QoS::AtLeastOnce);
    let mut publisher = RawClient::connect(addr, V5, &unique("flooder"));
    let payload = Bytes::from(vec![b'x'; 1000]);
    // 20 MB: more than loopback socket buffers and the 1000-message queue hold.
    let mut wire = bytes::BytesMut::new();
    for _ in 0..20_000 {
        let mut p = publish_packet(&format!("{flood}/t"), QoS::AtMostOnce, 0, b"");
        p.payload = payload.clone();
        mqtt_lwa::codec::encode(&Packet::Publish(p), V5, &mut wire).unwrap();
    }
    publisher.send_raw(&wire);
    assert!(
        common::wait_until(WAIT, || Stats::get(&server.stats.messages_dropped) > 0),
        "nothing was dropped"
    );
    // The broker still serves everyone else.
    let mut m = publish_packet(&marker, QoS::AtLeastOnce, 1, b"still-here");
    m.payload = Bytes::from_static(b"still-here");
    publisher.send(&Packet::Publish(m));
    publisher.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)));
    match good.expect("the marker", |p| matches!(p, Packet::Publish(_))) {
        Packet::Publish(p) => assert_eq!(p.payload, Bytes::from_static(b"still-here")),
        _ => unreachable!(),
    }
    drop(stuck);
    server.stop();
}
