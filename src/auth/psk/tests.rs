use super::*;

const HEX_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn key(byte: u8) -> Psk {
    Psk::new([byte; 32])
}

#[test]
fn parses_hex_base64_comments_and_keeps_them_on_write() {
    let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let text = format!("# sensors\nsensor-1:{HEX_A}\n\ngateway:{b64}\r\n");
    let store = PskStore::parse(text.as_bytes(), Path::new("psk")).unwrap();
    assert_eq!(
        store.identities().collect::<Vec<_>>(),
        ["sensor-1", "gateway"]
    );
    assert_eq!(store.lookup("sensor-1").unwrap().as_bytes()[31], 0x1f);
    assert_eq!(store.lookup("gateway").unwrap().as_bytes(), &[7u8; 32]);
    assert!(store.lookup("nobody").is_none());
    let written = store.to_text();
    assert!(written.starts_with("# sensors\nsensor-1:"));
    assert!(written.contains(&format!("gateway:{}", hex::encode([7u8; 32]))));
    let again = PskStore::parse(written.as_bytes(), Path::new("psk")).unwrap();
    assert_eq!(again.to_text(), written);
}

#[test]
fn bad_lines_name_file_and_line() {
    let cases: [(&str, &str); 6] = [
        ("a:00\n", "psk:1: key is not 32 bytes"),
        ("ok:{HEX}\nnocolon\n", "psk:2: expected identity:key"),
        (
            "ok:{HEX}\nok:{HEX}\n",
            "psk:2: duplicate identity \"ok\" (first defined on line 1)",
        ),
        (
            " sp:{HEX}\n#c\nx y :{HEX}\n",
            "psk:3: invalid identity \"x y \"",
        ),
        (":{HEX}\n", "psk:1: invalid identity \"\": empty"),
        ("a:{HEX}zz\n", "psk:1: key is not"),
    ];
    for (text, want) in cases {
        let text = text.replace("{HEX}", HEX_A);
        let err = PskStore::parse(text.as_bytes(), Path::new("psk")).unwrap_err();
        assert!(err.to_string().starts_with(want), "{text:?}: {err}");
    }
    let err = PskStore::parse(b"\xff:x\n", Path::new("psk")).unwrap_err();
    assert_eq!(err.to_string(), "psk:1: not valid UTF-8");
}

#[test]
fn identity_rules() {
    for bad in [
        "",
        "a:b",
        "#x",
        "tab\there",
        " lead",
        "nul\0",
        &"x".repeat(256),
    ] {
        assert!(validate_identity(bad).is_err(), "{bad:?}");
    }
    for good in ["a", "sensor-17", "ünïcode", &"x".repeat(255)] {
        validate_identity(good).unwrap();
    }
}

#[test]
fn set_remove_and_revocation() {
    let mut old = PskStore::new();
    assert!(old.set("a", key(1)).unwrap());
    assert!(old.set("b", key(2)).unwrap());
    assert!(old.set("c", key(3)).unwrap());
    assert!(old.set("bad:id", key(4)).is_err());
    let mut new = old.clone();
    assert!(!new.set("b", key(9)).unwrap(), "rotation replaces");
    assert!(new.remove("c"));
    assert!(!new.remove("c"));
    assert!(new.set("d", key(4)).unwrap());
    assert_eq!(
        old.revoked_by(&new).into_iter().collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert!(new.revoked_by(&new).is_empty());
    assert!(new.contains("d") && !new.contains("c"));
    assert_eq!(new.len(), 3);
}

#[cfg(unix)]
#[test]
fn save_is_0600_and_round_trips() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lwa.psk");
    let mut store = PskStore::new();
    store.set("dev", key(5)).unwrap();
    store.save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let loaded = PskStore::load(&path).unwrap();
    assert_eq!(loaded.lookup("dev").unwrap().as_bytes(), &[5u8; 32]);

    let key_path = dir.path().join("dev.key");
    save_client_key(&key_path, &key(5)).unwrap();
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        load_client_key(&key_path, "dev").unwrap().as_bytes(),
        &[5u8; 32]
    );
}

#[test]
fn client_key_file_forms() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let bare = write("bare", &format!("# mine\n{HEX_A}\n"));
    assert_eq!(load_client_key(&bare, "x").unwrap().as_bytes()[1], 1);
    let line = write("line", &format!("dev:{HEX_A}\n"));
    assert!(load_client_key(&line, "dev").is_ok());
    let err = load_client_key(&line, "other").unwrap_err().to_string();
    assert!(err.contains("another identity"), "{err}");
    let two = write("two", &format!("{HEX_A}\n{HEX_A}\n"));
    assert!(load_client_key(&two, "x")
        .unwrap_err()
        .to_string()
        .contains("more than one key"));
    let empty = write("empty", "# nothing\n");
    assert!(load_client_key(&empty, "x").is_err());
    let missing = dir.path().join("missing");
    assert!(load_client_key(&missing, "x")
        .unwrap_err()
        .to_string()
        .contains("missing"));
}
