//! `mqtt-lwa psk add | rotate | revoke | list` driven through the real binary.

use std::path::Path;
use std::process::{Command, Output};

use mqtt_lwa::auth::psk::{load_client_key, PskStore};

fn psk(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"))
        .arg("psk")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn add_rotate_revoke_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("lwa.psk");

    ok(&psk(d, &["add", "lwa.psk", "sensor-1"]));
    ok(&psk(d, &["add", "lwa.psk", "gw", "-o", "keys-gw"]));
    assert_eq!(ok(&psk(d, &["list", "lwa.psk"])), "sensor-1\ngw\n");

    // The client key file holds the same key as the store, both 0600.
    let loaded = PskStore::load(&store).unwrap();
    let client = load_client_key(&d.join("sensor-1.key"), "sensor-1").unwrap();
    assert_eq!(
        loaded.lookup("sensor-1").unwrap().as_bytes(),
        client.as_bytes()
    );
    let gw = load_client_key(&d.join("keys-gw"), "gw").unwrap();
    assert_ne!(gw.as_bytes(), client.as_bytes(), "fresh key per identity");
    #[cfg(unix)]
    {
        assert_eq!(mode(&store), 0o600);
        assert_eq!(mode(&d.join("sensor-1.key")), 0o600);
    }
    // Keys never appear in list output.
    let listing = ok(&psk(d, &["list", "lwa.psk"]));
    assert!(!listing.contains(&hex::encode(client.as_bytes())));

    // Adding twice is refused; so is clobbering a key file.
    assert!(err(&psk(d, &["add", "lwa.psk", "sensor-1"])).contains("psk rotate"));
    assert!(err(&psk(d, &["add", "lwa.psk", "other", "-o", "keys-gw"])).contains("--force"));
    assert!(err(&psk(d, &["add", "lwa.psk", "bad:id"])).contains("':'"));

    // Rotation gives a new key, in the store and in the key file.
    ok(&psk(d, &["rotate", "lwa.psk", "sensor-1"]));
    let rotated = load_client_key(&d.join("sensor-1.key"), "sensor-1").unwrap();
    assert_ne!(rotated.as_bytes(), client.as_bytes());
    let after = PskStore::load(&store).unwrap();
    assert_eq!(
        after.lookup("sensor-1").unwrap().as_bytes(),
        rotated.as_bytes()
    );
    assert_eq!(
        loaded.revoked_by(&after).into_iter().collect::<Vec<_>>(),
        ["sensor-1"]
    );

    // Revoke (and its alias del).
    ok(&psk(d, &["revoke", "lwa.psk", "sensor-1"]));
    ok(&psk(d, &["del", "lwa.psk", "gw"]));
    assert_eq!(ok(&psk(d, &["list", "lwa.psk"])), "");
    assert!(err(&psk(d, &["revoke", "lwa.psk", "gw"])).contains("not found"));
    assert!(err(&psk(d, &["rotate", "lwa.psk", "gw"])).contains("not found"));
    assert!(err(&psk(d, &["list", "missing.psk"])).contains("missing.psk"));
}

#[test]
fn comments_survive_edits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.psk"), "# fleet A\n").unwrap();
    ok(&psk(d, &["add", "s.psk", "a"]));
    ok(&psk(d, &["revoke", "s.psk", "a"]));
    assert_eq!(
        std::fs::read_to_string(d.join("s.psk")).unwrap(),
        "# fleet A\n"
    );
}
