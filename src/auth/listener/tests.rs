use super::*;
use crate::auth::psk::PskStore;
use crate::auth::ClientAuthenticator;
use crate::codec::{Properties, ProtocolVersion, QoS};
use crate::config::TlsListenerConfig;
use crate::lwa::Psk;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn passwords(&self, users: &[(&str, &str)]) -> PathBuf {
        let mut file = PasswordFile::new();
        for (u, p) in users {
            file.set_password(u, p.as_bytes(), 2).unwrap();
        }
        let path = self.dir.path().join("passwd");
        file.save(&path).unwrap();
        path
    }
    fn psk(&self, ids: &[&str]) -> PathBuf {
        let mut store = PskStore::new();
        for id in ids {
            store.set(id, Psk::new([7; 32])).unwrap();
        }
        let path = self.dir.path().join("lwa.psk");
        store.save(&path).unwrap();
        path
    }
    fn acl(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("acl");
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn connect(user: Option<&str>, password: Option<&str>) -> Connect {
    Connect {
        protocol_version: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 30,
        client_id: "c1".into(),
        will: None,
        username: user.map(str::to_owned),
        password: password.map(|p| bytes::Bytes::copy_from_slice(p.as_bytes())),
        properties: Properties::default(),
    }
}

fn lwa_connect(id: &str) -> Connect {
    let mut c = connect(None, None);
    let mut client = crate::auth::lwa::LwaClientAuthenticator::new(id, Psk::new([7; 32])).unwrap();
    client.prepare_connect(&mut c).unwrap();
    c
}

fn peer() -> PeerInfo {
    PeerInfo {
        remote_addr: Some("127.0.0.1:5000".parse().unwrap()),
        listener: "l".into(),
        session_present: Some(false),
        ..PeerInfo::default()
    }
}

/// `Ok(principal)`, `Err(reason)`, or `Err(0x18)` for a pending LWA1 handshake.
fn decide(sec: &ListenerSecurity, c: &Connect, p: &PeerInfo) -> Result<Principal, ReasonCode> {
    match sec.authenticator.authenticate(c, p) {
        AuthDecision::Accept { authenticated, .. } => Ok(authenticated.principal),
        AuthDecision::Pending { .. } => Err(ReasonCode::CONTINUE_AUTHENTICATION),
        AuthDecision::Reject(r) => Err(r),
    }
}

fn user(name: &str) -> Principal {
    Principal {
        username: Some(name.into()),
        lwa_identity: None,
    }
}

#[test]
fn default_refuses_anonymous_and_stated_anonymous_accepts() {
    let closed = ListenerSecurity::from_config(&ListenerConfig::default()).unwrap();
    assert_eq!(
        decide(&closed, &connect(Some("bob"), None), &peer()),
        Err(ReasonCode::NOT_AUTHORIZED)
    );
    let sec = ListenerSecurity::from_config(&ListenerConfig {
        allow_anonymous: true,
        ..ListenerConfig::default()
    })
    .unwrap();
    assert!(!sec.authenticator.is_blocking());
    assert_eq!(
        decide(&sec, &connect(Some("bob"), None), &peer()),
        Ok(user("bob"))
    );
    assert_eq!(
        decide(&sec, &lwa_connect("dev"), &peer()),
        Err(ReasonCode::BAD_AUTHENTICATION_METHOD)
    );
}

#[test]
fn password_mode_with_lwa_only_identities() {
    let f = Files::new();
    let config = ListenerConfig {
        allow_anonymous: false,
        password_file: Some(f.passwords(&[("alice", "pw"), ("dev", "pw")])),
        lwa_psk_file: Some(f.psk(&["dev"])),
        ..ListenerConfig::default()
    };
    let sec = ListenerSecurity::from_config(&config).unwrap();
    assert!(sec.authenticator.is_blocking());
    let p = peer();
    assert_eq!(
        decide(&sec, &connect(Some("alice"), Some("pw")), &p),
        Ok(user("alice"))
    );
    assert_eq!(
        decide(&sec, &connect(Some("alice"), Some("no")), &p),
        Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        decide(&sec, &connect(Some("eve"), Some("pw")), &p),
        Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        decide(&sec, &connect(None, None), &p),
        Err(ReasonCode::NOT_AUTHORIZED)
    );
    // An LWA identity cannot use its (even correct) password: downgrade refused.
    assert_eq!(
        decide(&sec, &connect(Some("dev"), Some("pw")), &p),
        Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        decide(&sec, &lwa_connect("dev"), &p),
        Err(ReasonCode::CONTINUE_AUTHENTICATION)
    );
    let mut other = lwa_connect("dev");
    other.properties.authentication_method = Some("SCRAM-SHA-256".into());
    assert_eq!(
        decide(&sec, &other, &p),
        Err(ReasonCode::BAD_AUTHENTICATION_METHOD)
    );
}

#[test]
fn lwa_with_anonymous_plaintext_clients() {
    let f = Files::new();
    let config = ListenerConfig {
        allow_anonymous: true,
        lwa_psk_file: Some(f.psk(&["dev"])),
        ..ListenerConfig::default()
    };
    let sec = ListenerSecurity::from_config(&config).unwrap();
    let p = peer();
    // No user name can be authenticated here; every name gets the same
    // answer, so LWA identities cannot be told apart (issue 13).
    assert_eq!(
        decide(&sec, &connect(None, None), &p),
        Ok(Principal::default())
    );
    assert_eq!(
        decide(&sec, &connect(Some("admin"), None), &p),
        Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        decide(&sec, &connect(Some("dev"), None), &p),
        Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        decide(&sec, &lwa_connect("dev"), &p),
        Err(ReasonCode::CONTINUE_AUTHENTICATION)
    );

    let lwa_only = ListenerConfig {
        allow_anonymous: false,
        ..config
    };
    let sec = ListenerSecurity::from_config(&lwa_only).unwrap();
    assert_eq!(
        decide(&sec, &connect(None, None), &p),
        Err(ReasonCode::NOT_AUTHORIZED)
    );
    let mut v311 = connect(None, None);
    v311.protocol_version = ProtocolVersion::V311;
    assert_eq!(decide(&sec, &v311, &p), Err(ReasonCode::NOT_AUTHORIZED));
}

#[test]
fn certificate_cn_as_user_name() {
    let config = ListenerConfig {
        mode: ListenerMode::Tls,
        tls: Some(TlsListenerConfig {
            use_identity_as_username: true,
            require_certificate: true,
            ..TlsListenerConfig::default()
        }),
        ..ListenerConfig::default()
    };
    let sec = ListenerSecurity::from_config(&config).unwrap();
    let mut p = peer();
    p.tls = true;
    assert_eq!(
        decide(&sec, &connect(Some("claimed"), None), &p),
        Err(ReasonCode::NOT_AUTHORIZED)
    );
    p.tls_client_cn = Some("device-7".into());
    assert_eq!(
        decide(&sec, &connect(Some("claimed"), None), &p),
        Ok(user("device-7"))
    );
}

#[test]
fn acl_applies_and_reloads() {
    let f = Files::new();
    let acl = f.acl("user alice\ntopic readwrite alice/#\n");
    let config = ListenerConfig {
        allow_anonymous: false,
        password_file: Some(f.passwords(&[("alice", "pw"), ("bob", "pw")])),
        acl_file: Some(acl.clone()),
        ..ListenerConfig::default()
    };
    let sec = ListenerSecurity::from_config(&config).unwrap();
    let alice = user("alice");
    assert!(sec.policy.can_publish(&alice, "c1", "alice/x"));
    assert!(!sec.policy.can_publish(&alice, "c1", "bob/x"));
    assert_eq!(sec.policy.can_subscribe(&alice, "c1", "bob/#"), None);
    assert!(sec.authenticator.reload().is_empty(), "nothing changed");

    std::fs::write(&acl, "user alice\ntopic readwrite bob/#\n").unwrap();
    f.passwords(&[("alice", "pw")]);
    let closed = sec.authenticator.reload();
    // Bob is gone; alice was re-hashed (a new salt reads as a new password).
    assert_eq!(closed, vec![user("alice"), user("bob")]);
    assert!(sec.policy.can_publish(&alice, "c1", "bob/x"));
    assert!(!sec.policy.can_publish(&alice, "c1", "alice/x"));
    assert_eq!(
        sec.policy.can_subscribe(&alice, "c1", "bob/#"),
        Some(QoS::ExactlyOnce)
    );
    // A broken ACL file keeps the rules in force.
    std::fs::write(&acl, "bogus line\n").unwrap();
    assert!(sec.authenticator.reload().is_empty());
    assert!(sec.policy.can_publish(&alice, "c1", "bob/x"));
}

#[test]
fn psk_revocation_is_reported() {
    let f = Files::new();
    let config = ListenerConfig {
        lwa_psk_file: Some(f.psk(&["a", "b"])),
        ..ListenerConfig::default()
    };
    let sec = ListenerSecurity::from_config(&config).unwrap();
    f.psk(&["b"]);
    let closed = sec.authenticator.reload();
    assert_eq!(
        closed,
        vec![Principal {
            username: None,
            lwa_identity: Some("a".into())
        }]
    );
}

#[test]
fn configuration_errors_name_listener_file_and_reason() {
    let f = Files::new();
    let missing = f.dir.path().join("missing");
    for (config, key) in [
        (
            ListenerConfig {
                password_file: Some(missing.clone()),
                ..ListenerConfig::default()
            },
            "password_file",
        ),
        (
            ListenerConfig {
                acl_file: Some(missing.clone()),
                ..ListenerConfig::default()
            },
            "acl_file",
        ),
        (
            ListenerConfig {
                lwa_psk_file: Some(missing.clone()),
                ..ListenerConfig::default()
            },
            "lwa_psk_file",
        ),
    ] {
        let err = ListenerSecurity::from_config(&config)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("\"default\"") && err.contains(key) && err.contains("missing"),
            "{err}"
        );
    }
    let bad_acl = f.acl("user\n");
    let err = ListenerSecurity::from_config(&ListenerConfig {
        acl_file: Some(bad_acl),
        ..ListenerConfig::default()
    })
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("acl:1: missing user name"), "{err}");
}
