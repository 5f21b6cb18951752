//! `mqtt-lwa broker` as a command: the `listening on` lines, CLI overrides,
//! configuration errors, and exit on SIGTERM.

mod common;

use std::process::Command;

use common::{Broker, RawClient};
use mqtt_lwa::codec::ProtocolVersion;

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");

#[test]
fn one_line_per_listener_with_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let status = Command::new(BIN)
        .args(["certs", "init"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n\n\
             [[listener]]\nname = \"b\"\nbind = \"127.0.0.1:0\"\nmode = \"tls\"\nallow_anonymous = true\n\
             [listener.tls]\ncertfile = \"{0}/broker.crt\"\nkeyfile = \"{0}/broker.key\"\n",
            certs.display()
        ),
    )
    .unwrap();
    // -p 0 overrides the first listener only; the second keeps its own bind.
    let broker = Broker::start_listeners(&["-c", config.to_str().unwrap()], 2);
    assert_eq!(broker.addrs.len(), 2);
    assert_ne!(broker.addrs[0], broker.addrs[1]);
    // The plain listener speaks MQTT.
    RawClient::connect(broker.addrs[0], ProtocolVersion::V5, "cli-check");
    let (status, _) = broker.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn bind_and_port_flags() {
    let broker = Broker::start(&["--bind", "127.0.0.1"]);
    assert!(broker.addr.ip().is_loopback());
    assert_ne!(broker.port(), 0);
    RawClient::connect(broker.addr, ProtocolVersion::V311, "flags");
}

#[test]
fn bad_config_names_the_file_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    std::fs::write(&config, "[limits]\nmax_connections = \"lots\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["broker", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&config.display().to_string()), "{err}");
    assert!(out.stdout.is_empty());

    let missing = dir.path().join("missing.toml");
    let out = Command::new(BIN)
        .args(["broker", "-c"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn port_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["broker", "-p", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&port));
}

/// The SIGTERM handler is in place by the time the `listening on` line is
/// printed: a script that signals the moment it reads the line gets a clean
/// exit, not death by the default action (CI once saw wait status 15 here).
#[test]
fn sigterm_right_after_the_listening_line_exits_cleanly() {
    // Several at once, so that the brokers compete for the CPU as they do
    // in a loaded suite run: that is when the window was wide enough to hit.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..8 {
                    let broker = Broker::start(&["--bind", "127.0.0.1"]);
                    let (status, err) = broker.terminate();
                    assert!(status.success(), "{status:?} {err}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}
