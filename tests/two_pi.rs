//! `scripts/two-pi.sh` with both roles on loopback: `broker 127.0.0.1` serves,
//! `client 127.0.0.1` runs a tiny plaintext matrix against it through the same
//! directory (standing in for `copy`), and the report says the broker was
//! remote. SIGTERM to the broker role stops serve (the script execs it).

mod common;

use std::path::Path;
use std::process::Command;

use common::{wait_exit, LineProcess, WAIT};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");

fn script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/two-pi.sh")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn broker_and_client_roles_on_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("serve");
    let out = tmp.path().join("out");
    std::env::set_var("MQTT_LWA", BIN);
    std::env::set_var("LWA_DIR", &dir);
    std::env::set_var("BIND", "127.0.0.1");

    // Without the copy step the client role refuses, naming it.
    let early = Command::new(script())
        .args(["client", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("copy 127.0.0.1"));

    let mut broker = LineProcess::spawn(
        &script(),
        &["broker", "127.0.0.1", "--port-base", "0", "--no-mosquitto"],
    );
    broker.expect_line("ready", |l| l.starts_with("ready"));
    let status = Command::new(script())
        .args([
            "client",
            "127.0.0.1",
            "--modes",
            "plain",
            "--no-mosquitto",
            "--repeat",
            "1",
            "--idle-connections",
            "5",
            "--storm-seconds",
            "1",
            "--stock-messages",
            "0",
            "--quiet",
            "--name",
            "r",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "client role failed: {status}");
    let report = std::fs::read_to_string(out.join("r").join("report.md")).unwrap();
    assert!(report.contains("**Remote broker.** The broker ran on 127.0.0.1"));

    let pid = broker.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let exited = wait_exit(&mut broker.child, WAIT).expect("broker role exits after SIGTERM");
    assert!(exited.success(), "{exited}");
}
