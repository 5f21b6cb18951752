//! `mqtt-lwa pub` / `mqtt-lwa sub` as scripts use them: the real binary
//! against Debian's mosquitto broker and against `mqtt-lwa broker`, over
//! 127.0.0.1 sockets, MQTT 3.1.1 and 5.0; exit codes and error messages.

mod cli_support;

use std::process::Output;

use cli_support::{run, Mosquitto, OwnBroker, Sub};

/// Either broker, started for one test.
enum Broker {
    Mosquitto(Mosquitto),
    Own(OwnBroker),
}

impl Broker {
    fn port(&self) -> String {
        match self {
            Broker::Mosquitto(m) => m.port.to_string(),
            Broker::Own(o) => o.port.to_string(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Broker::Mosquitto(_) => "mosquitto",
            Broker::Own(_) => "mqtt-lwa broker",
        }
    }
}

fn both_brokers() -> [Broker; 2] {
    [
        Broker::Mosquitto(Mosquitto::start("")),
        Broker::Own(OwnBroker::start(&[])),
    ]
}

const VERSIONS: [&str; 2] = ["311", "5"];

/// `mqtt-lwa pub -h 127.0.0.1 -p PORT ARGS`.
fn publish(port: &str, args: &[&str]) -> Output {
    publish_stdin(port, args, b"")
}

fn publish_stdin(port: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut all = vec!["pub", "-h", "127.0.0.1", "-p", port];
    all.extend_from_slice(args);
    run(&all, stdin)
}

/// `mqtt-lwa sub -d -h 127.0.0.1 -p PORT ARGS`, returned once subscribed.
fn subscribe(port: &str, args: &[&str]) -> Sub {
    let mut all = vec!["-h", "127.0.0.1", "-p", port];
    all.extend_from_slice(args);
    let mut sub = Sub::spawn(&all);
    sub.wait_subscribed();
    sub
}

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Reads `n` lines from `sub` and checks it then exits 0 (its `-C` count).
fn expect_lines(sub: Sub, n: usize) -> Vec<String> {
    let lines: Vec<String> = (0..n).map_while(|_| sub.line()).collect();
    let (code, rest, err) = sub.finish();
    assert_eq!(lines.len(), n, "got {lines:?}; stderr: {err}");
    assert!(rest.is_empty(), "extra output {rest:?}");
    assert_eq!(code, Some(0), "stderr: {err}");
    lines
}

#[test]
fn qos_0_1_2_through_both_brokers_and_versions() {
    for broker in both_brokers() {
        let port = broker.port();
        for v in VERSIONS {
            let sub = subscribe(&port, &["-t", "cli/#", "-q", "2", "-v", "-C", "3", "-V", v]);
            for q in ["0", "1", "2"] {
                let topic = format!("cli/q{q}");
                let msg = format!("v{v} qos {q}");
                ok(&publish(
                    &port,
                    &["-t", &topic, "-m", &msg, "-q", q, "-V", v],
                ));
            }
            let lines = expect_lines(sub, 3);
            assert_eq!(
                lines,
                vec![
                    format!("cli/q0 v{v} qos 0"),
                    format!("cli/q1 v{v} qos 1"),
                    format!("cli/q2 v{v} qos 2")
                ],
                "{} MQTT {v}",
                broker.name()
            );
        }
    }
}

#[test]
fn payload_sources_file_stdin_lines_null_and_repeat() {
    for broker in both_brokers() {
        let port = broker.port();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("payload.txt");
        std::fs::write(&file, "from a file").unwrap();
        let sub = subscribe(&port, &["-t", "src", "-q", "1", "-C", "7"]);
        ok(&publish(
            &port,
            &["-t", "src", "-f", file.to_str().unwrap(), "-q", "1"],
        ));
        ok(&publish_stdin(
            &port,
            &["-t", "src", "-s", "-q", "1"],
            b"all of stdin",
        ));
        ok(&publish_stdin(
            &port,
            &["-t", "src", "-l", "-q", "1"],
            b"line one\nline two\n",
        ));
        ok(&publish(&port, &["-t", "src", "-n", "-q", "1"]));
        ok(&publish(
            &port,
            &[
                "-t",
                "src",
                "-m",
                "again",
                "--repeat",
                "2",
                "--repeat-delay",
                "0.01",
            ],
        ));
        let lines = expect_lines(sub, 7);
        assert_eq!(
            lines,
            [
                "from a file",
                "all of stdin",
                "line one",
                "line two",
                "",
                "again",
                "again"
            ],
            "{}",
            broker.name()
        );
    }
}

#[test]
fn retained_messages_no_stale_and_retained_only() {
    for broker in both_brokers() {
        let port = broker.port();
        ok(&publish(
            &port,
            &["-t", "ret/a", "-m", "old", "-r", "-q", "1"],
        ));
        // A new subscriber gets the retained message.
        let sub = subscribe(&port, &["-t", "ret/#", "-v", "-C", "1"]);
        assert_eq!(expect_lines(sub, 1), ["ret/a old"], "{}", broker.name());
        // -R skips it and prints only the live one.
        let sub = subscribe(&port, &["-t", "ret/#", "-v", "-C", "1", "-R"]);
        ok(&publish(&port, &["-t", "ret/b", "-m", "live"]));
        assert_eq!(expect_lines(sub, 1), ["ret/b live"], "{}", broker.name());
        // --retained-only prints the retained one and exits at the first live one.
        let sub = subscribe(&port, &["-t", "ret/#", "-v", "--retained-only"]);
        ok(&publish(&port, &["-t", "ret/b", "-m", "live"]));
        assert_eq!(expect_lines(sub, 1), ["ret/a old"], "{}", broker.name());
        // An empty retained message clears it: nothing arrives before -W.
        ok(&publish(&port, &["-t", "ret/a", "-n", "-r", "-q", "1"]));
        let out = run(
            &[
                "sub",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "ret/#",
                "-W",
                "1",
            ],
            b"",
        );
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    }
}

#[test]
fn will_is_published_when_a_client_dies() {
    for broker in both_brokers() {
        let port = broker.port();
        for v in VERSIONS {
            let watcher = subscribe(&port, &["-t", "will/#", "-v", "-C", "1", "-q", "1"]);
            let mut doomed = subscribe(
                &port,
                &[
                    "-t",
                    "elsewhere",
                    "-V",
                    v,
                    "--will-topic",
                    "will/dead",
                    "--will-payload",
                    "gone",
                    "--will-qos",
                    "1",
                ],
            );
            doomed.kill();
            assert_eq!(
                expect_lines(watcher, 1),
                ["will/dead gone"],
                "{} MQTT {v}",
                broker.name()
            );
        }
    }
}

#[test]
fn persistent_session_keeps_messages_while_offline() {
    for broker in both_brokers() {
        let port = broker.port();
        for v in VERSIONS {
            let id = format!("cli-persist-{v}");
            let args = [
                "-t",
                "persist/#",
                "-q",
                "1",
                "-c",
                "-i",
                &id,
                "-V",
                v,
                "-C",
                "1",
            ];
            // First connection creates the session and its subscription.
            let sub = subscribe(&port, &args);
            ok(&publish(
                &port,
                &["-t", "persist/x", "-m", "online", "-q", "1"],
            ));
            assert_eq!(expect_lines(sub, 1), ["online"]);
            // Offline: the broker queues for the session.
            ok(&publish(
                &port,
                &["-t", "persist/x", "-m", "queued", "-q", "1", "-V", v],
            ));
            let mut all = vec!["-h", "127.0.0.1", "-p", &port];
            all.extend_from_slice(&args);
            let sub = Sub::spawn(&all);
            assert_eq!(
                expect_lines(sub, 1),
                ["queued"],
                "{} MQTT {v}",
                broker.name()
            );
        }
    }
}

#[test]
fn filter_out_and_no_newline() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let sub = subscribe(
        &port,
        &["-t", "f/#", "-T", "f/noise/#", "-N", "-C", "2", "-q", "1"],
    );
    for (topic, msg) in [
        ("f/noise/a", "x"),
        ("f/a", "A"),
        ("f/noise/b", "y"),
        ("f/b", "B"),
    ] {
        ok(&publish(&port, &["-t", topic, "-m", msg, "-q", "1"]));
    }
    // Without newlines both payloads arrive as one line when the process exits.
    let (code, rest, err) = sub.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rest, ["AB"]);
}

#[test]
fn v5_properties_reach_mosquitto_sub() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let mut watcher = std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            "mqttv5",
            "-t",
            "props",
            "-C",
            "1",
        ])
        .args(["-F", "%p|%P|%E"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (Debian package mosquitto-clients)");
    // mosquitto_sub prints nothing when subscribed; wait until the broker logs its SUBACK.
    assert!(cli_support::wait_for(
        std::time::Duration::from_secs(10),
        || { broker.log().contains("Sending SUBACK") }
    ));
    ok(&publish(
        &port,
        &[
            "-t",
            "props",
            "-m",
            "p",
            "-V",
            "5",
            "-D",
            "publish",
            "user-property",
            "color",
            "blue",
            "-D",
            "publish",
            "message-expiry-interval",
            "3600",
        ],
    ));
    let out = {
        let status = watcher.wait().unwrap();
        assert!(status.success());
        let mut s = String::new();
        std::io::Read::read_to_string(&mut watcher.stdout.take().unwrap(), &mut s).unwrap();
        s
    };
    let fields: Vec<&str> = out.trim_end().split('|').collect();
    assert_eq!(fields[0], "p");
    assert_eq!(fields[1], "color:blue");
    let expiry: u32 = fields[2].parse().unwrap();
    assert!((3500..=3600).contains(&expiry), "{out}");
}

#[test]
fn refused_connection_exits_2_with_a_readable_error() {
    let broker = Mosquitto::start_with("allow_anonymous false\n", "");
    let port = broker.port.to_string();
    for v in VERSIONS {
        let out = publish(&port, &["-t", "a", "-m", "x", "-V", v]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(
            stderr(&out).trim(),
            "Error: connection refused: not authorized (0x87)"
        );
        let out = run(
            &["sub", "-h", "127.0.0.1", "-p", &port, "-t", "a", "-V", v],
            b"",
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    }
}

#[test]
fn password_file_made_by_our_passwd_works_with_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("passwd");
    let made = run(
        &[
            "passwd",
            "-c",
            "-b",
            pwfile.to_str().unwrap(),
            "alice",
            "s3cret",
        ],
        b"",
    );
    ok(&made);
    cli_support::share_with_mosquitto(dir.path());
    let broker = Mosquitto::start_with(
        &format!(
            "allow_anonymous false\npassword_file {}\n",
            pwfile.display()
        ),
        "",
    );
    let port = broker.port.to_string();
    for v in VERSIONS {
        let good = publish(
            &port,
            &["-t", "a", "-m", "x", "-u", "alice", "-P", "s3cret", "-V", v],
        );
        ok(&good);
        let bad = publish(
            &port,
            &["-t", "a", "-m", "x", "-u", "alice", "-P", "wrong", "-V", v],
        );
        assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
        assert!(stderr(&bad).starts_with("Error: connection refused: "));
    }
}

#[test]
fn tls_with_cafile_and_insecure_against_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("pki");
    ok(&run(&["certs", "init", certs.to_str().unwrap()], b""));
    cli_support::share_with_mosquitto(dir.path());
    let path = |f: &str| certs.join(f).display().to_string();
    let broker = Mosquitto::start_with(
        "",
        &format!(
            "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\n",
            path("ca.crt"),
            path("broker.crt"),
            path("broker.key")
        ),
    );
    let port = broker.port.to_string();
    let ca = path("ca.crt");
    let sub = subscribe(&port, &["-t", "tls", "-C", "2", "--cafile", &ca, "-q", "1"]);
    ok(&publish(
        &port,
        &["-t", "tls", "-m", "verified", "--cafile", &ca, "-q", "1"],
    ));
    let insecure = publish(
        &port,
        &["-t", "tls", "-m", "unverified", "--insecure", "-V", "5"],
    );
    ok(&insecure);
    assert!(
        stderr(&insecure).contains("WARNING") && stderr(&insecure).contains("--insecure"),
        "{}",
        stderr(&insecure)
    );
    assert_eq!(expect_lines(sub, 2), ["verified", "unverified"]);
    // The system CA bundle does not vouch for our private CA.
    let untrusted = publish(&port, &["-t", "tls", "-m", "x", "--tls-version", "tlsv1.3"]);
    assert_eq!(untrusted.status.code(), Some(1), "{}", stderr(&untrusted));
    assert!(
        stderr(&untrusted).contains("certificate"),
        "{}",
        stderr(&untrusted)
    );
}

#[test]
fn lwa_pub_sub_through_our_broker() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.psk");
    let key = dir.path().join("dev1.key");
    ok(&run(
        &[
            "psk",
            "add",
            store.to_str().unwrap(),
            "dev1",
            "-o",
            key.to_str().unwrap(),
        ],
        b"",
    ));
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"lwa\"\nbind = \"127.0.0.1:0\"\nmode = \"plain\"\n\
             allow_anonymous = true\nlwa_psk_file = {:?}\n",
            store.display().to_string()
        ),
    )
    .unwrap();
    let broker = OwnBroker::start(&["-c", config.to_str().unwrap()]);
    let port = broker.port.to_string();
    let key = key.to_str().unwrap();
    let lwa = ["--lwa-id", "dev1", "--lwa-key", key];
    let mut args = vec!["-t", "lwa/#", "-q", "2", "-v", "-C", "3"];
    args.extend_from_slice(&lwa);
    let sealed_sub = subscribe(&port, &args);
    // A plaintext subscriber on the same topics gets the messages opened by the broker.
    let plain_sub = subscribe(
        &port,
        &["-t", "lwa/#", "-q", "2", "-v", "-C", "3", "-V", "5"],
    );
    for q in ["0", "1", "2"] {
        let topic = format!("lwa/q{q}");
        let mut args = vec!["-t", &topic, "-m", "secret", "-q", q];
        args.extend_from_slice(&lwa);
        ok(&publish(&port, &args));
    }
    let expected = ["lwa/q0 secret", "lwa/q1 secret", "lwa/q2 secret"];
    assert_eq!(expect_lines(sealed_sub, 3), expected);
    assert_eq!(expect_lines(plain_sub, 3), expected);
    // A wrong key is an authentication failure: exit 2.
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&wrong, format!("{}\n", "00".repeat(32))).unwrap();
    let out = publish(
        &port,
        &[
            "-t",
            "lwa/x",
            "-m",
            "x",
            "-q",
            "1",
            "--lwa-id",
            "dev1",
            "--lwa-key",
            wrong.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("Error: authentication failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn timeout_exits_3() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let out = run(
        &[
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "quiet",
            "-C",
            "1",
            "-W",
            "1",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
}

#[test]
fn bad_flags_exit_1() {
    for args in [
        &["pub", "-t", "a", "-m", "x", "-q", "3"][..],
        &["pub", "-m", "x"],
        &["pub", "-t", "a"],
        &["pub", "-t", "a/+", "-m", "x"],
        &["sub", "-t", "a/#/b"],
        &["sub", "-c", "-t", "a"],
        &[
            "pub",
            "-t",
            "a",
            "-m",
            "x",
            "-V",
            "311",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
        ],
        &[
            "pub",
            "-t",
            "a",
            "-m",
            "x",
            "-V",
            "5",
            "-D",
            "connect",
            "no-such-thing",
            "1",
        ],
        &["pub", "-t", "a", "-m", "x", "-V", "4"],
        &[
            "sub",
            "-t",
            "a",
            "--lwa-id",
            "dev1",
            "--lwa-key",
            "/nonexistent/key",
        ],
        &["sub", "-t", "a", "--no-such-flag"],
    ] {
        let out = run(args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} explains itself");
    }
}
