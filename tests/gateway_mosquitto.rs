//! `mqtt-lwa gateway` in front of Debian's Mosquitto (issue 16), driven as a
//! user would: the real binaries, stock clients where a mode has them
//! (mosquitto_pub/mosquitto_sub for plaintext, password, TLS and mutual TLS),
//! our client for LWA1 and LWA2 (nothing else speaks LWA), and a subscriber
//! directly on the upstream to see what reached it.

mod cli_support;
mod common;
mod gateway_support;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqtt_lwa::codec::{
    encode, ConnAck, Decoder, Packet, Properties, ProtocolVersion, PubResponse, Publish, QoS,
    ReasonCode,
};

use common::{mqtt_lwa_bin, publish_packet, unique, RawClient, Read1};
use gateway_support::{
    dead_port, next_message, open_gateway, our_pub, our_sub, our_sub_resuming, stock_pub,
    stock_sub, stock_sub_resuming, succeeded, GatewayProc, Upstream,
};

const WAIT: Duration = Duration::from_secs(15);

/// Credentials for every client mode, in `dir`: a CA with broker and client
/// (`alice`) certificates, a password file (alice/apple) with an ACL, and
/// an LWA PSK store with identities `dev1` and `dev2`.
fn credentials(dir: &std::path::Path) {
    let certs = Command::new(mqtt_lwa_bin())
        .args(["certs", "init"])
        .arg(dir.join("certs"))
        .args(["--client", "alice"])
        .output()
        .expect("certs init");
    succeeded("certs init", &certs);
    let passwd = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(dir.join("passwd"))
        .args(["alice", "apple"])
        .output()
        .expect("mosquitto_passwd (Debian package mosquitto)");
    succeeded("mosquitto_passwd", &passwd);
    std::fs::write(
        dir.join("acl"),
        "user alice\ntopic write gw/password\ntopic read down/password\n",
    )
    .expect("acl");
    for id in ["dev1", "dev2"] {
        let out = Command::new(mqtt_lwa_bin())
            .args(["psk", "add", "lwa.psk", id])
            .current_dir(dir)
            .output()
            .expect("psk add");
        succeeded("psk add", &out);
    }
}

/// A gateway with one listener per client mode, in front of `upstream`:
/// plain, password (+ACL), TLS, mutual TLS, LWA; listener order as written.
fn every_mode_config(dir: &std::path::Path, upstream: &[u16]) -> String {
    let d = dir.display();
    let list: Vec<String> = upstream
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    format!(
        r#"
[[listener]]
name = "plain"
bind = "127.0.0.1:0"
allow_anonymous = true

[[listener]]
name = "password"
bind = "127.0.0.1:0"
password_file = "{d}/passwd"
acl_file = "{d}/acl"

[[listener]]
name = "tls"
bind = "127.0.0.1:0"
mode = "tls"
allow_anonymous = true
[listener.tls]
certfile = "{d}/certs/broker.crt"
keyfile = "{d}/certs/broker.key"

[[listener]]
name = "mtls"
bind = "127.0.0.1:0"
mode = "tls"
[listener.tls]
certfile = "{d}/certs/broker.crt"
keyfile = "{d}/certs/broker.key"
cafile = "{d}/certs/ca.crt"
require_certificate = true
use_identity_as_username = true

[[listener]]
name = "lwa"
bind = "127.0.0.1:0"
lwa_psk_file = "{d}/lwa.psk"

[gateway]
upstream = [{}]
client_id_template = "{{principal}}-{{client_id}}"
"#,
        list.join(", ")
    )
}

/// A gateway with every client mode ([`every_mode_config`]) in front of a
/// fresh Mosquitto, with the credentials in the returned directory.
fn every_mode_behind_mosquitto() -> (tempfile::TempDir, Upstream, GatewayProc) {
    let dir = tempfile::tempdir().unwrap();
    credentials(dir.path());
    let upstream = Upstream::start_in(dir.path(), "mosquitto", "");
    let gw = GatewayProc::start(
        dir.path(),
        "gw",
        &every_mode_config(dir.path(), &[upstream.port]),
    );
    (dir, upstream, gw)
}

/// What each mode's clients add to a mosquitto_pub/sub or mqtt-lwa pub/sub command line.
struct ModeClient {
    name: &'static str,
    listener: usize,
    /// True: our client (LWA); false: Debian's mosquitto clients.
    ours: bool,
    args: Vec<String>,
}

fn mode_clients(dir: &std::path::Path) -> Vec<ModeClient> {
    let p = |s: &std::path::Path| s.display().to_string();
    let ca = p(&dir.join("certs/ca.crt"));
    let mut v = Vec::new();
    for version in ["311", "5"] {
        v.push(ModeClient {
            name: if version == "5" { "plain5" } else { "plain311" },
            listener: 0,
            ours: false,
            args: vec!["-V".into(), version.into()],
        });
    }
    v.push(ModeClient {
        name: "password",
        listener: 1,
        ours: false,
        args: ["-V", "5", "-u", "alice", "-P", "apple"]
            .map(String::from)
            .to_vec(),
    });
    v.push(ModeClient {
        name: "tls",
        listener: 2,
        ours: false,
        args: vec!["-V".into(), "5".into(), "--cafile".into(), ca.clone()],
    });
    v.push(ModeClient {
        name: "mtls",
        listener: 3,
        ours: false,
        args: vec![
            "-V".into(),
            "311".into(),
            "--cafile".into(),
            ca,
            "--cert".into(),
            p(&dir.join("certs/alice.crt")),
            "--key".into(),
            p(&dir.join("certs/alice.key")),
        ],
    });
    for (name, id, version) in [("lwa1", "dev1", "1"), ("lwa2", "dev2", "2")] {
        v.push(ModeClient {
            name,
            listener: 4,
            ours: true,
            args: vec![
                "--lwa-id".into(),
                id.into(),
                "--lwa-key".into(),
                p(&dir.join(format!("{id}.key"))),
                "--lwa-version".into(),
                version.into(),
            ],
        });
    }
    v
}

#[test]
fn every_client_mode_reaches_mosquitto_through_the_gateway_both_ways() {
    let (dir, upstream, gw) = every_mode_behind_mosquitto();
    assert_eq!(gw.addrs.len(), 5);
    let up = upstream.port_arg();
    // What reached the upstream, in plaintext (LWA records were opened at the gateway).
    let mut watcher = stock_sub(&up, &["-V", "5", "-q", "1", "-t", "gw/#"]);
    for m in mode_clients(dir.path()) {
        let port = gw.port(m.listener);
        let args: Vec<&str> = m.args.iter().map(String::as_str).collect();
        // The password ACL allows alice exactly gw/password and down/password.
        let topic = if m.name == "password" {
            "gw/password".to_owned()
        } else {
            format!("gw/{}", m.name)
        };
        let payload = format!("up-{}", m.name);
        let mut pub_args = args.clone();
        pub_args.extend(["-q", "1", "-t", &topic, "-m", &payload]);
        let out = if m.ours {
            our_pub(&port, &pub_args)
        } else {
            stock_pub(&port, &pub_args)
        };
        succeeded(&format!("{} publish", m.name), &out);
        assert_eq!(
            next_message(&mut watcher, WAIT),
            Some(format!("{topic} {payload}")),
            "{}: the upstream did not get the message; gateway log:\n{}",
            m.name,
            gw.log()
        );
        // And down: a subscriber through the gateway gets what the upstream has.
        let down = if m.name == "password" {
            "down/password".to_owned()
        } else {
            format!("down/{}", m.name)
        };
        let mut sub_args = args.clone();
        sub_args.extend(["-q", "1", "-t", &down, "-C", "1"]);
        let mut sub = if m.ours {
            our_sub(&port, &sub_args)
        } else {
            stock_sub(&port, &sub_args)
        };
        let payload = format!("down-{}", m.name);
        succeeded(
            "direct publish",
            &stock_pub(&up, &["-q", "1", "-t", &down, "-m", &payload]),
        );
        assert_eq!(
            next_message(&mut sub, WAIT),
            Some(format!("{down} {payload}")),
            "{}: nothing came down; gateway log:\n{}",
            m.name,
            gw.log()
        );
    }
    // The ACL holds at the gateway: alice's PUBLISH to a topic she may not
    // write never reaches the upstream (the next message there is the allowed one).
    let alice = ["-V", "311", "-u", "alice", "-P", "apple", "-q", "1"];
    let port = gw.port(1);
    for (topic, msg) in [("gw/forbidden", "denied"), ("gw/password", "allowed")] {
        let mut args = alice.to_vec();
        args.extend(["-t", topic, "-m", msg]);
        succeeded("alice publishes", &stock_pub(&port, &args));
    }
    assert_eq!(
        next_message(&mut watcher, WAIT),
        Some("gw/password allowed".to_owned())
    );
    // A wrong password is refused by the gateway itself (0x86), not by the upstream.
    let out = stock_pub(
        &port,
        &[
            "-V", "5", "-u", "alice", "-P", "pear", "-t", "gw/x", "-m", "x",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("bad user name or password"),
        "{err}"
    );
}

/// A fake upstream: accepts one connection, answers CONNECT with CONNACK,
/// then hands the test every packet and lets it answer.
struct FakeUpstream {
    stream: std::net::TcpStream,
    decoder: Decoder,
    buf: BytesMut,
}

impl FakeUpstream {
    fn accept(listener: &TcpListener) -> FakeUpstream {
        let (stream, _) = listener.accept().expect("accept");
        let mut f = FakeUpstream {
            stream,
            decoder: Decoder::new(1 << 20),
            buf: BytesMut::new(),
        };
        let connect = f.read();
        assert!(matches!(connect, Packet::Connect(_)), "{connect:?}");
        f.send(&Packet::ConnAck(Box::new(ConnAck {
            session_present: false,
            reason_code: ReasonCode::SUCCESS,
            properties: Properties::default(),
        })));
        f
    }

    fn read(&mut self) -> Packet {
        use std::io::Read;
        self.stream.set_read_timeout(Some(WAIT)).unwrap();
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf).expect("decode") {
                return p;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read from the gateway");
            assert!(n > 0, "the gateway closed the upstream connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn send(&mut self, packet: &Packet) {
        use std::io::Write;
        let mut out = BytesMut::new();
        encode(packet, ProtocolVersion::V5, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
    }
}

#[test]
fn the_client_is_acknowledged_only_after_the_upstream_acknowledged() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProc::start(
        dir.path(),
        "gw",
        &open_gateway(&[port], "protocol = \"5\"", ""),
    );
    let accept = std::thread::spawn(move || FakeUpstream::accept(&listener));
    let mut client = RawClient::connect(gw.addrs[0], ProtocolVersion::V5, "acker");
    let mut upstream = accept.join().unwrap();
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let id = qos as u16 + 10;
        client.send(&Packet::Publish(publish_packet("e2e/t", qos, id, b"m")));
        let got = upstream.read();
        assert!(
            matches!(&got, Packet::Publish(Publish { packet_id, .. }) if *packet_id == id),
            "{got:?}"
        );
        // The upstream holds its acknowledgement: the client hears nothing.
        assert!(
            matches!(client.read(Duration::from_millis(500)), Read1::Timeout),
            "the gateway acknowledged before the upstream did"
        );
        let ack = PubResponse::success(id);
        let (up_ack, want): (Packet, fn(&Packet) -> bool) = match qos {
            QoS::AtLeastOnce => (Packet::PubAck(ack), |p| matches!(p, Packet::PubAck(_))),
            _ => (Packet::PubRec(ack), |p| matches!(p, Packet::PubRec(_))),
        };
        upstream.send(&up_ack);
        let p = client.expect("the upstream's acknowledgement", want);
        assert!(matches!(p, Packet::PubAck(r) | Packet::PubRec(r) if r.packet_id == id));
        if qos == QoS::ExactlyOnce {
            client.send(&Packet::PubRel(PubResponse::success(id)));
            assert!(matches!(upstream.read(), Packet::PubRel(r) if r.packet_id == id));
            upstream.send(&Packet::PubComp(PubResponse::success(id)));
            client.expect(
                "PUBCOMP",
                |p| matches!(p, Packet::PubComp(r) if r.packet_id == id),
            );
        }
    }
}

#[test]
fn failover_unreachable_upstreams_and_bad_upstream_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("upstream.passwd");
    let made = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args(["gateway", "s3cret"])
        .output()
        .unwrap();
    succeeded("mosquitto_passwd", &made);
    cli_support::share_with_mosquitto(dir.path());
    let upstream = Upstream::start_in(
        dir.path(),
        "mosquitto",
        &format!(
            "allow_anonymous false\npassword_file {}\n",
            passwd.display()
        ),
    );
    let dead = dead_port();
    let config = |upstreams: &[u16], password: &str| {
        open_gateway(
            upstreams,
            &format!("username = \"gateway\"\npassword = \"{password}\"\nconnect_timeout_secs = 2"),
            "",
        )
    };
    // Failover: the first upstream is down, the second serves.
    let good = GatewayProc::start(
        dir.path(),
        "good",
        &config(&[dead, upstream.port], "s3cret"),
    );
    let mut watcher = stock_sub(
        &upstream.port_arg(),
        &["-u", "gateway", "-P", "s3cret", "-t", "fo/#"],
    );
    succeeded(
        "publish through failover",
        &stock_pub(&good.port(0), &["-t", "fo/x", "-m", "over"]),
    );
    assert_eq!(
        next_message(&mut watcher, WAIT),
        Some("fo/x over".to_owned())
    );
    // Wrong upstream password: the client is told the server is unavailable
    // (its own credentials were fine), with the reason.
    let bad = GatewayProc::start(dir.path(), "bad", &config(&[upstream.port], "wrong"));
    let out = stock_pub(&bad.port(0), &["-V", "5", "-t", "fo/x", "-m", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("server unavailable"), "{err}");
    let out = stock_pub(&bad.port(0), &["-V", "311", "-t", "fo/x", "-m", "x"]);
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("unavailable"), "3.1.1 return code 3: {err}");
    let out = our_pub(&bad.port(0), &["-V", "5", "-t", "fo/x", "-m", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("credentials"), "the reason string: {err}");
    // Nothing reachable: 0x88, and the reason names every address tried.
    let dead2 = dead_port();
    let none = GatewayProc::start(dir.path(), "none", &config(&[dead, dead2], "s3cret"));
    let out = our_pub(&none.port(0), &["-V", "5", "-t", "fo/x", "-m", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{dead}")) && err.contains(&format!("127.0.0.1:{dead2}")),
        "{err}"
    );
    // An LWA client has its (signed) CONNACK before the upstream is asked:
    // it is told by DISCONNECT, with the same reason.
    credentials(dir.path());
    let lwa_none = GatewayProc::start(
        dir.path(),
        "lwa-none",
        &every_mode_config(dir.path(), &[dead, dead2]),
    );
    let key = dir.path().join("dev1.key").display().to_string();
    for version in ["1", "2"] {
        let out = our_pub(
            &lwa_none.port(4),
            &[
                "--lwa-id",
                "dev1",
                "--lwa-key",
                &key,
                "--lwa-version",
                version,
                "-q",
                "1",
                "-t",
                "fo/x",
                "-m",
                "x",
            ],
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("disconnected") && err.contains("no upstream broker reachable"),
            "LWA{version}: {err}"
        );
    }
    let out = stock_pub(&none.port(0), &["-V", "5", "-t", "fo/x", "-m", "x"]);
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("server unavailable"), "{err}");
    // The gateway keeps serving the others throughout.
    succeeded(
        "publish after the refusals",
        &stock_pub(&good.port(0), &["-t", "fo/y", "-m", "still"]),
    );
    assert_eq!(
        next_message(&mut watcher, WAIT),
        Some("fo/y still".to_owned())
    );
}

#[test]
fn wills_and_persistent_sessions_survive_a_gateway_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    credentials(dir.path());
    let upstream = Upstream::start_in(dir.path(), "mosquitto", "");
    let config = every_mode_config(dir.path(), &[upstream.port]);
    let mut a = GatewayProc::start(dir.path(), "a", &config);
    let b = GatewayProc::start(dir.path(), "b", &config);
    let up = upstream.port_arg();
    let mut watcher = stock_sub(&up, &["-V", "5", "-t", "status/#"]);
    // A client that vanishes (SIGKILL) through gateway A: its will is published upstream.
    let mut doomed = stock_sub(
        &a.port(0),
        &[
            "-V",
            "5",
            "-t",
            "x/none",
            "--will-topic",
            "status/doomed",
            "--will-payload",
            "gone",
        ],
    );
    doomed.kill();
    assert_eq!(
        next_message(&mut watcher, WAIT),
        Some("status/doomed gone".to_owned())
    );
    // mosquitto_sub -W ends with DISCONNECT 0x04 (with will): passed on, the will is published.
    let mut timed = stock_sub(
        &a.port(0),
        &[
            "-V",
            "5",
            "-t",
            "x/none",
            "-W",
            "1",
            "--will-topic",
            "status/timed",
            "--will-payload",
            "gone",
        ],
    );
    timed.wait();
    assert_eq!(
        next_message(&mut watcher, WAIT),
        Some("status/timed gone".to_owned())
    );
    // A client that says a plain DISCONNECT leaves no will.
    let out = our_pub(
        &a.port(0),
        &[
            "-V",
            "5",
            "-t",
            "x/polite",
            "-m",
            "bye",
            "--will-topic",
            "status/polite",
            "--will-payload",
            "gone",
        ],
    );
    succeeded("polite publisher", &out);
    // Persistent sessions through A: a stock client and an LWA client, QoS 1.
    let lwa_key = dir.path().join("dev1.key").display().to_string();
    let lwa = ["--lwa-id", "dev1", "--lwa-key", &lwa_key];
    let stock_id = unique("persist-stock");
    let lwa_id = unique("persist-lwa");
    let mut s1 = stock_sub(
        &a.port(0),
        &[
            "-V",
            "311",
            "-c",
            "-i",
            &stock_id,
            "-q",
            "1",
            "-t",
            "queue/stock",
        ],
    );
    let mut l1_args = lwa.to_vec();
    l1_args.extend([
        "-c",
        "-x",
        "600",
        "-i",
        &lwa_id,
        "-q",
        "1",
        "-t",
        "queue/lwa",
    ]);
    let mut l1 = our_sub(&a.port(4), &l1_args);
    // Gateway A dies; its clients lose their connections.
    a.kill();
    s1.kill();
    l1.kill();
    // Published while they are away (through gateway B): queued upstream.
    for i in 0..3 {
        for topic in ["queue/stock", "queue/lwa"] {
            let m = format!("m{i}");
            succeeded(
                "publish while away",
                &stock_pub(&b.port(0), &["-q", "1", "-t", topic, "-m", &m]),
            );
        }
    }
    // They come back through gateway B and get what was queued, in order.
    let mut s2 = stock_sub_resuming(
        &b.port(0),
        &[
            "-V",
            "311",
            "-c",
            "-i",
            &stock_id,
            "-q",
            "1",
            "-t",
            "queue/stock",
            "-C",
            "3",
        ],
    );
    let mut l2_args = lwa.to_vec();
    l2_args.extend([
        "-c",
        "-x",
        "600",
        "-i",
        &lwa_id,
        "-q",
        "1",
        "-t",
        "queue/lwa",
        "-C",
        "3",
    ]);
    let mut l2 = our_sub_resuming(&b.port(4), &l2_args);
    for (sub, topic) in [(&mut s2, "queue/stock"), (&mut l2, "queue/lwa")] {
        let got: Vec<_> = (0..3).filter_map(|_| next_message(sub, WAIT)).collect();
        assert_eq!(
            got,
            ["m0", "m1", "m2"].map(|m| format!("{topic} {m}")),
            "queued QoS 1 messages through the other gateway; seen {:#?}\nmosquitto log:\n{}",
            sub.seen,
            upstream.log()
        );
    }
    // No will from the polite client, nothing else on status/.
    assert_eq!(next_message(&mut watcher, Duration::from_millis(300)), None);
}

#[test]
fn an_upstream_restart_disconnects_clients_who_then_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut upstream = Upstream::start_in(dir.path(), "mosquitto", "");
    let gw = GatewayProc::start(
        dir.path(),
        "gw",
        &open_gateway(&[upstream.port], "connect_timeout_secs = 2", ""),
    );
    let port = gw.port(0);
    let mut sub = our_sub(&port, &["-V", "5", "-t", "r/#", "-q", "1"]);
    upstream.stop();
    // The subscriber is disconnected with the reason.
    let status = sub.wait();
    assert!(!status.success());
    assert!(
        sub.seen.iter().any(|l| l.contains("upstream")),
        "no reason given: {:#?}",
        sub.seen
    );
    // While it is down, a new client is refused as unavailable.
    let out = stock_pub(&port, &["-V", "5", "-t", "r/x", "-m", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .to_lowercase()
        .contains("server unavailable"));
    // Back on the same port: the same gateway serves again.
    upstream.start();
    let mut sub = stock_sub(&port, &["-V", "5", "-t", "r/#", "-C", "1"]);
    succeeded(
        "publish after the restart",
        &stock_pub(&port, &["-t", "r/back", "-m", "again"]),
    );
    assert_eq!(
        next_message(&mut sub, WAIT),
        Some("r/back again".to_owned())
    );
}

#[test]
fn a_stock_qos1_burst_through_the_gateway_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start_in(dir.path(), "mosquitto", "");
    let gw = GatewayProc::start(dir.path(), "gw", &open_gateway(&[upstream.port], "", ""));
    let port = gw.port(0);
    const N: usize = 5000;
    let mut sub = stock_sub(
        &port,
        &["-V", "311", "-q", "1", "-t", "burst", "-C", &N.to_string()],
    );
    let lines: String = (0..N).map(|i| format!("{i:030}\n")).collect();
    let mut publisher = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "1",
            "-t",
            "burst",
            "-l",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = publisher.stdin.take().unwrap();
        stdin.write_all(lines.as_bytes()).unwrap();
    }
    assert!(publisher.wait().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut got = std::collections::HashSet::new();
    while got.len() < N && Instant::now() < deadline {
        match next_message(&mut sub, Duration::from_secs(20)) {
            Some(m) => {
                got.insert(m);
            }
            None => break,
        }
    }
    assert_eq!(
        got.len(),
        N,
        "distinct messages delivered through the gateway"
    );
}

#[test]
fn lwa_keys_renew_through_the_gateway_and_a_revoked_identity_is_cut_off() {
    let (dir, upstream, gw) = every_mode_behind_mosquitto();
    let lwa_port = gw.port(4);
    let up = upstream.port_arg();
    // Four records per direction: LWA2 updates its keys on the live
    // connection, LWA1 reconnects; 20 messages need several renewals.
    for (id, version) in [("dev2", "2"), ("dev1", "1")] {
        let key = dir.path().join(format!("{id}.key")).display().to_string();
        let topic = format!("renew/{id}");
        let client_id = unique(id);
        let mut sub = our_sub(
            &lwa_port,
            &[
                "--lwa-id",
                id,
                "--lwa-key",
                &key,
                "--lwa-version",
                version,
                "--lwa-record-limit-log2",
                "2",
                "-c",
                "-x",
                "600",
                "-i",
                &client_id,
                "-q",
                "1",
                "-t",
                &topic,
                "-C",
                "20",
            ],
        );
        for i in 0..20 {
            let m = format!("n{i}");
            succeeded(
                "direct publish",
                &stock_pub(&up, &["-q", "1", "-t", &topic, "-m", &m]),
            );
        }
        let got: Vec<_> = (0..20)
            .filter_map(|_| next_message(&mut sub, WAIT))
            .collect();
        let want: Vec<_> = (0..20).map(|i| format!("{topic} n{i}")).collect();
        assert_eq!(
            got, want,
            "LWA{version} through renewals; seen {:#?}",
            sub.seen
        );
    }
    // The renewals happened: LWA1 reconnected for fresh keys.
    let log = gw.log();
    assert!(
        log.matches("b2c records used up (LWA1)").count() >= 4,
        "LWA1 reconnects: {log}"
    );
    // Revoking an identity closes its live connection through the gateway (0x98).
    let key = dir.path().join("dev1.key").display().to_string();
    let mut sub = our_sub(
        &lwa_port,
        &["--lwa-id", "dev1", "--lwa-key", &key, "-t", "revoke/x"],
    );
    let out = Command::new(mqtt_lwa_bin())
        .args(["psk", "revoke", "lwa.psk", "dev1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    succeeded("psk revoke", &out);
    let status = sub.wait();
    assert!(!status.success());
    assert!(
        sub.seen
            .iter()
            .any(|l| l.to_lowercase().contains("administrative action")),
        "{:#?}",
        sub.seen
    );
    // And it cannot come back; the other identity still can.
    let out = our_pub(
        &lwa_port,
        &[
            "--lwa-id",
            "dev1",
            "--lwa-key",
            &key,
            "-t",
            "revoke/x",
            "-m",
            "x",
        ],
    );
    assert!(!out.status.success());
    let key2 = dir.path().join("dev2.key").display().to_string();
    let out = our_pub(
        &lwa_port,
        &[
            "--lwa-id",
            "dev2",
            "--lwa-key",
            &key2,
            "-t",
            "revoke/y",
            "-m",
            "y",
        ],
    );
    succeeded("the other identity", &out);
}

#[test]
fn the_upstream_link_can_be_tls_and_mqtt_3_1_1() {
    let dir = tempfile::tempdir().unwrap();
    for (name, ca) in [("certs", "ours"), ("other", "a stranger")] {
        let out = Command::new(mqtt_lwa_bin())
            .args(["certs", "init"])
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        succeeded(&format!("certs init ({ca})"), &out);
    }
    cli_support::share_with_mosquitto(dir.path());
    let d = dir.path().display();
    let upstream = Upstream::start_in(
        dir.path(),
        "mosquitto",
        &format!("certfile {d}/certs/broker.crt\nkeyfile {d}/certs/broker.key\n"),
    );
    let config = |ca: &str| {
        open_gateway(
            &[upstream.port],
            &format!("protocol = \"3.1.1\"\n[gateway.tls]\ncafile = \"{d}/{ca}/ca.crt\""),
            "",
        )
    };
    let gw = GatewayProc::start(dir.path(), "tls", &config("certs"));
    let ca = format!("{d}/certs/ca.crt");
    let mut watcher = stock_sub(&upstream.port_arg(), &["--cafile", &ca, "-t", "tls/#"]);
    succeeded(
        "publish through a TLS upstream link",
        &stock_pub(
            &gw.port(0),
            &["-V", "5", "-q", "1", "-t", "tls/x", "-m", "wrapped"],
        ),
    );
    assert_eq!(
        next_message(&mut watcher, WAIT),
        Some("tls/x wrapped".to_owned())
    );
    assert!(gw.log().contains("version=V311"), "{}", gw.log());
    // An upstream certificate from another CA: refused, and the client is told why.
    let wrong = GatewayProc::start(dir.path(), "wrong", &config("other"));
    let out = our_pub(&wrong.port(0), &["-V", "5", "-t", "tls/x", "-m", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn the_gateway_limits_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start_in(dir.path(), "mosquitto", "");
    let gw = GatewayProc::start(
        dir.path(),
        "gw",
        &open_gateway(&[upstream.port], "", "max_connections = 1"),
    );
    let _first = stock_sub(&gw.port(0), &["-V", "5", "-t", "x"]);
    let out = stock_pub(&gw.port(0), &["-V", "5", "-t", "x", "-m", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("quota exceeded"), "{err}");
    // Unauthenticated connections: two sockets that never send CONNECT fill
    // max_pending_auth; the next client is closed at once, and gets in once they go.
    let gw = GatewayProc::start(
        dir.path(),
        "pending",
        &open_gateway(
            &[upstream.port],
            "",
            "max_pending_auth = 2\nmax_pending_auth_per_source = 2",
        ),
    );
    let idle: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(gw.addrs[0]).unwrap())
        .collect();
    // Both hold their slots once the gateway has accepted them.
    let end = Instant::now() + WAIT;
    while gw.log().matches("accepted").count() < 2 {
        assert!(
            Instant::now() < end,
            "the idle sockets were not accepted: {}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = stock_pub(&gw.port(0), &["-V", "5", "-t", "x", "-m", "x"]);
    assert!(
        !out.status.success(),
        "a third unauthenticated connection got in"
    );
    drop(idle);
    let end = Instant::now() + WAIT;
    while !stock_pub(&gw.port(0), &["-V", "5", "-t", "x", "-m", "x"])
        .status
        .success()
    {
        assert!(Instant::now() < end, "the freed slots were not given back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_qos0_publisher_that_leaves_at_once_loses_nothing() {
    // A client may say DISCONNECT right after its PUBLISH, before the
    // gateway's upstream connection is open: what it sent still goes up.
    let (dir, upstream, gw) = every_mode_behind_mosquitto();
    let mut watcher = stock_sub(&upstream.port_arg(), &["-V", "5", "-t", "q0/#"]);
    let mut want = Vec::new();
    for (id, version) in [("dev1", "1"), ("dev2", "2")] {
        let key = dir.path().join(format!("{id}.key")).display().to_string();
        for i in 0..3 {
            let m = format!("lwa{version}-{i}");
            let args = [
                "--lwa-id",
                id,
                "--lwa-key",
                &key,
                "--lwa-version",
                version,
                "-q",
                "0",
                "-t",
                "q0/lwa",
                "-m",
                &m,
            ];
            succeeded("LWA QoS 0 publish", &our_pub(&gw.port(4), &args));
            want.push(format!("q0/lwa {m}"));
        }
    }
    for version in ["311", "5"] {
        let m = format!("stock{version}");
        succeeded(
            "stock QoS 0 publish",
            &stock_pub(
                &gw.port(0),
                &["-V", version, "-q", "0", "-t", "q0/stock", "-m", &m],
            ),
        );
        want.push(format!("q0/stock {m}"));
    }
    // CONNECT, PUBLISH and DISCONNECT in one write, without waiting for CONNACK.
    let mut raw = RawClient::tcp(gw.addrs[0], ProtocolVersion::V5);
    let mut bytes = BytesMut::new();
    for packet in [
        Packet::Connect(Box::new(common::connect_packet(
            ProtocolVersion::V5,
            "pipelined",
            true,
        ))),
        Packet::Publish(publish_packet("q0/raw", QoS::AtMostOnce, 0, b"pipelined")),
        Packet::Disconnect(mqtt_lwa::codec::Disconnect::new(ReasonCode::SUCCESS)),
    ] {
        encode(&packet, ProtocolVersion::V5, &mut bytes).unwrap();
    }
    raw.send_raw(&bytes);
    want.push("q0/raw pipelined".to_owned());
    let mut got: Vec<_> = (0..want.len())
        .filter_map(|_| next_message(&mut watcher, WAIT))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "gateway log:\n{}", gw.log());
}

#[test]
fn stopping_the_gateway_tells_clients_and_publishes_their_wills() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start_in(dir.path(), "mosquitto", "");
    let mut gw = GatewayProc::start(dir.path(), "gw", &open_gateway(&[upstream.port], "", ""));
    let mut watcher = stock_sub(&upstream.port_arg(), &["-V", "5", "-t", "status/#"]);
    let mut sub = our_sub(
        &gw.port(0),
        &[
            "-V",
            "5",
            "-t",
            "x",
            "--will-topic",
            "status/sub",
            "--will-payload",
            "cut off",
        ],
    );
    let status = gw.terminate().expect("the gateway exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    sub.wait();
    assert!(
        sub.seen
            .iter()
            .any(|l| l.to_lowercase().contains("server shutting down")),
        "{:#?}",
        sub.seen
    );
    assert_eq!(
        next_message(&mut watcher, WAIT),
        Some("status/sub cut off".to_owned())
    );
}
