//! `mqtt-lwa pub` / `mqtt-lwa sub` as scripts use them: the real binary
//! against Debian's mosquitto broker and against `mqtt-lwa broker`, over
//! 127.0.0.1 sockets, MQTT 3.1.1 and 5.0; exit codes and error messages.

mod cli_support;

use cli_support::{
    expect_lines, ok, publish, publish_stdin, run, stderr, subscribe, Mosquitto, OwnBroker, Sub,
    VERSIONS,
};

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
            b"line one\n\nline two\n",
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
            "-i",
            "cli-timeout",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    // It said goodbye (DISCONNECT) rather than dropping the connection.
    assert!(cli_support::wait_for(
        std::time::Duration::from_secs(10),
        || broker.log().contains("Client cli-timeout disconnected")
    ));
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
