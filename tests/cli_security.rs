//! `mqtt-lwa pub` / `mqtt-lwa sub` with security: refused connections,
//! mosquitto password files made by `mqtt-lwa passwd`, TLS and mutual TLS
//! against Debian's mosquitto, and LWA through `mqtt-lwa broker`.

mod cli_support;

use cli_support::{
    expect_lines, ok, publish, run, stderr, subscribe, Mosquitto, OwnBroker, VERSIONS,
};

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
    // The LWA clients go through a recorder, so the test can look at the wire.
    let wire = cli_support::Recorder::start(broker.port);
    let wire_port = wire.port.to_string();
    let mut args = vec!["-t", "lwa/#", "-q", "2", "-v", "-C", "3"];
    args.extend_from_slice(&lwa);
    let sealed_sub = subscribe(&wire_port, &args);
    // A plaintext subscriber on the same topics gets the messages opened by the broker.
    let plain_sub = subscribe(
        &port,
        &["-t", "lwa/#", "-q", "2", "-v", "-C", "3", "-V", "5"],
    );
    for q in ["0", "1", "2"] {
        let topic = format!("lwa/q{q}");
        let mut args = vec!["-t", &topic, "-m", "top-secret-reading", "-q", q];
        args.extend_from_slice(&lwa);
        ok(&publish(&wire_port, &args));
    }
    let expected = [
        "lwa/q0 top-secret-reading",
        "lwa/q1 top-secret-reading",
        "lwa/q2 top-secret-reading",
    ];
    assert_eq!(expect_lines(sealed_sub, 3), expected);
    assert_eq!(expect_lines(plain_sub, 3), expected);
    // On the wire of the LWA clients: topics in the clear (LWA protects payloads
    // only), payloads never.
    let captured = wire.bytes();
    assert!(cli_support::contains(&captured, b"lwa/q2"));
    assert!(!cli_support::contains(&captured, b"top-secret"));
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
fn mutual_tls_and_tls_version_against_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("pki");
    ok(&run(
        &["certs", "init", certs.to_str().unwrap(), "--client", "dev"],
        b"",
    ));
    cli_support::share_with_mosquitto(dir.path());
    let path = |f: &str| certs.join(f).display().to_string();
    let broker = Mosquitto::start_with(
        "",
        &format!(
            "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\n\
             require_certificate true\ntls_version tlsv1.3\n",
            path("ca.crt"),
            path("broker.crt"),
            path("broker.key")
        ),
    );
    let port = broker.port.to_string();
    let (ca, cert, key) = (path("ca.crt"), path("dev.crt"), path("dev.key"));
    let mtls = ["--cafile", &ca, "--cert", &cert, "--key", &key];
    let sub = subscribe(&port, &[&["-t", "m", "-C", "1"][..], &mtls].concat());
    ok(&publish(
        &port,
        &[
            &["-t", "m", "-m", "mutual", "--tls-version", "tlsv1.3"][..],
            &mtls,
        ]
        .concat(),
    ));
    assert_eq!(expect_lines(sub, 1), ["mutual"]);
    // No client certificate: the broker ends the handshake.
    let out = publish(&port, &["-t", "m", "-m", "x", "--cafile", &ca]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The broker requires TLS 1.3 (mosquitto's tls_version is a minimum); a client pinned to 1.2 cannot connect.
    let out = publish(
        &port,
        &[
            &["-t", "m", "-m", "x", "--tls-version", "tlsv1.2"][..],
            &mtls,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Half a key pair is a usage error.
    let out = publish(
        &port,
        &["-t", "m", "-m", "x", "--cafile", &ca, "--cert", &cert],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn password_and_acl_denials_on_our_broker_exit_2() {
    let dir = tempfile::tempdir().unwrap();
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
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "user alice\ntopic readwrite demo/#\n").unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"password\"\nbind = \"127.0.0.1:0\"\n\
             allow_anonymous = false\npassword_file = {:?}\nacl_file = {:?}\n",
            pwfile.display().to_string(),
            acl.display().to_string()
        ),
    )
    .unwrap();
    let broker = OwnBroker::start(&["-c", config.to_str().unwrap()]);
    let port = broker.port.to_string();
    let alice = ["-u", "alice", "-P", "s3cret", "-V", "5", "-q", "1"];
    ok(&publish(
        &port,
        &[&["-t", "demo/x", "-m", "hi"][..], &alice].concat(),
    ));
    let denied = publish(
        &port,
        &[&["-t", "secret/x", "-m", "hi"][..], &alice].concat(),
    );
    assert_eq!(denied.status.code(), Some(2), "{}", stderr(&denied));
    assert_eq!(
        stderr(&denied).trim(),
        "Error: publish refused: Not authorized (0x87)"
    );
    let denied = run(
        &[
            &["sub", "-h", "127.0.0.1", "-p", &port, "-t", "secret/#"][..],
            &alice,
        ]
        .concat(),
        b"",
    );
    assert_eq!(denied.status.code(), Some(2), "{}", stderr(&denied));
    assert!(stderr(&denied).contains("every subscription was refused"));
    let wrong = publish(
        &port,
        &[
            "-t", "demo/x", "-m", "hi", "-u", "alice", "-P", "nope", "-V", "5",
        ],
    );
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    assert_eq!(
        stderr(&wrong).trim(),
        "Error: connection refused: bad user name or password (0x86)"
    );
}
