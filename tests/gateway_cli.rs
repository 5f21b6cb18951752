//! `mqtt-lwa gateway` on the command line: what it says when it cannot start.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn configuration_mistakes_are_named_before_anything_is_bound() {
    let dir = tempfile::tempdir().unwrap();
    // No upstream at all.
    let (code, err) = run(&["gateway", "-p", "0"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--upstream HOST:PORT"), "{err}");
    // A bad template, with its file and line.
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        "[[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n\n[gateway]\nupstream = [\"127.0.0.1:1883\"]\nclient_id_template = \"{device}\"\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let (code, err) = run(&["gateway", "-c", p]);
    assert_eq!(code, Some(1));
    assert!(err.contains(&format!("{p}:7:")), "{err}");
    assert!(err.contains("unknown template variable {device}"), "{err}");
    // An upstream without a port, on the command line.
    let (code, err) = run(&["gateway", "-p", "0", "-u", "broker.example"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("\"broker.example\": expected HOST:PORT"),
        "{err}"
    );
    // The broker refuses a gateway's file rather than ignoring its [gateway] table.
    std::fs::write(
        &path,
        "[[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n[gateway]\nupstream = [\"127.0.0.1:1883\"]\n",
    )
    .unwrap();
    let (code, err) = run(&["broker", "-c", p]);
    assert_eq!(code, Some(1));
    assert!(err.contains("mqtt-lwa gateway --config"), "{err}");
    // An unknown key in [gateway] is named.
    std::fs::write(
        &path,
        "[[listener]]\nallow_anonymous = true\n[gateway]\nupstream = [\"127.0.0.1:1883\"]\nupstreams = []\n",
    )
    .unwrap();
    let (code, err) = run(&["gateway", "-c", p]);
    assert_eq!(code, Some(1));
    assert!(err.contains("upstreams"), "{err}");
    // Broker settings a gateway cannot honour are refused, not ignored.
    for (extra, said) in [
        (
            "persistence = true\n",
            "persistence has no meaning for a gateway",
        ),
        (
            "[metrics]\nlisten = \"127.0.0.1:0\"\n",
            "[metrics] is not offered by the gateway",
        ),
    ] {
        std::fs::write(
            &path,
            format!("{extra}[[listener]]\nallow_anonymous = true\n[gateway]\nupstream = [\"127.0.0.1:1883\"]\n"),
        )
        .unwrap();
        let (code, err) = run(&["gateway", "-c", p]);
        assert_eq!(code, Some(1));
        assert!(err.contains(said), "{err}");
    }
}
