//! Unit tests for password files and the password authenticator.

use super::*;
use crate::auth::rate_limit::{Clock, ConnectRateLimiter, RateLimitConfig};
use crate::auth::{AuthDecision, ConnectAuthenticator, PeerInfo, Principal};
use crate::codec::{Connect, ReasonCode};
use crate::codec::{Properties, ProtocolVersion};
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// Lines written by Debian's mosquitto_passwd 2.0.11 (`-b`, and `-H sha512 -b`).
const MOSQ_ALICE: &str = "alice:$7$101$O4eOsg2s4RmQZTZn$JoTs0OF0TfvmVNyoQZle27Uy4E4eLFzyz7hhl/MBFybi8wyDrfSJXKwtqispDQGoDgNw1oUYICadXlLwUsPFGA==";
const MOSQ_BOB: &str = "bob:$7$101$cx6hKOYgyiPSeVil$fmc0pke0xAft5KFMb7FeQhAvaM5WyoExgPqvMdxCVZAskx6ZWArpwX1Fk2EhwtqFZVydoi25lelw5dmjJa0afw==";
const MOSQ_CAROL_SHA512: &str = "carol:$6$o5wmXBEwb+hU0yUZ$WSE50WtJqydi+aIa56PGZ3xV6M3vtB3oDMKc7g6t01dlRIZqT/zrTmWWjNKbdV/aN3z0MoZ2/oTrBq5mAyimJg==";

fn p() -> &'static Path {
    Path::new("pw.txt")
}

fn parse(text: &str) -> Result<PasswordFile, PasswordFileError> {
    PasswordFile::parse(text.as_bytes(), p())
}

fn line_err(text: &str) -> (usize, LineError) {
    match parse(text) {
        Err(PasswordFileError::File(LineFileError::Line { line, reason, .. })) => (line, reason),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn verifies_mosquitto_passwd_vectors() {
    let f = parse(&format!("{MOSQ_ALICE}\n{MOSQ_BOB}\n{MOSQ_CAROL_SHA512}\n")).unwrap();
    assert_eq!(f.len(), 3);
    assert!(f.verify("alice", b"secret"));
    assert!(!f.verify("alice", b"Secret"));
    assert!(f.verify("bob", b"p:w d"));
    assert!(!f.verify("bob", b"secret"));
    assert!(f.verify("carol", b"hunter2"));
    assert!(!f.verify("carol", b"hunter3"));
    assert!(!f.verify("nobody", b"secret"));
    assert_eq!(f.get("alice").unwrap().iterations(), Some(101));
    assert_eq!(f.get("carol").unwrap().iterations(), None);
}

#[test]
fn round_trips_text_exactly() {
    let text = format!("# managed by hand\n\n{MOSQ_ALICE}\r\n{MOSQ_CAROL_SHA512}\n");
    let f = parse(&text).unwrap();
    assert_eq!(f.to_text(), text.replace("\r\n", "\n"));
}

#[test]
fn set_password_writes_pbkdf2_with_fresh_salt() {
    let mut f = PasswordFile::new();
    f.set_password("dave", b"pw", 1000).unwrap();
    f.set_password("erin", b"pw", 1000).unwrap();
    let (dave, erin) = (
        f.get("dave").unwrap().clone(),
        f.get("erin").unwrap().clone(),
    );
    match (&dave, &erin) {
        (
            PasswordHash::Pbkdf2Sha512 {
                salt: s1,
                hash: h1,
                iterations: 1000,
            },
            PasswordHash::Pbkdf2Sha512 {
                salt: s2,
                hash: h2,
                iterations: 1000,
            },
        ) => {
            assert_ne!(s1, s2);
            assert_ne!(h1, h2);
        }
        other => panic!("unexpected {other:?}"),
    }
    let reparsed = parse(&f.to_text()).unwrap();
    assert!(reparsed.verify("dave", b"pw"));
    assert!(!reparsed.verify("dave", b"pw2"));
    let line = f.to_text();
    let first = line.lines().next().unwrap();
    assert!(first.starts_with("dave:$7$1000$"), "{first}");
    // 12-byte salt = 16 base64 chars, 64-byte hash = 88.
    let fields: Vec<&str> = first.split('$').collect();
    assert_eq!(fields[3].len(), 16);
    assert_eq!(fields[4].len(), 88);
}

#[test]
fn pbkdf2_matches_published_vectors() {
    // The widely published PBKDF2-HMAC-SHA512 vectors ("password", "salt", c = 1 and 2).
    let one = pbkdf2_sha512(b"password", b"salt", 1);
    let two = pbkdf2_sha512(b"password", b"salt", 2);
    assert_eq!(hex::encode(one.as_ref()), "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce");
    assert_eq!(hex::encode(two.as_ref()), "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53cf76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e");
}

#[test]
fn update_and_delete_keep_comments_and_order() {
    let mut f = parse(&format!("# head\n{MOSQ_ALICE}\n# mid\n{MOSQ_BOB}\n")).unwrap();
    f.set_password("alice", b"new", 500).unwrap();
    assert!(f.verify("alice", b"new"));
    assert!(f.delete_user("bob"));
    assert!(!f.delete_user("bob"));
    let text = f.to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "# head");
    assert!(lines[1].starts_with("alice:$7$500$"));
    assert_eq!(lines[2], "# mid");
}

#[test]
fn rejects_bad_user_names() {
    let mut f = PasswordFile::new();
    for bad in ["", "a:b", "#x", " x", "x ", "a\nb", "a\u{7f}"] {
        assert!(
            matches!(
                f.set_password(bad, b"pw", 1),
                Err(PasswordFileError::InvalidUsername { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        f.set_password("ok", b"pw", 0),
        Err(PasswordFileError::Iterations(0))
    ));
}

#[test]
fn broken_files_report_line_and_reason() {
    assert_eq!(line_err("# c\njustaname\n"), (2, LineError::MissingColon));
    assert_eq!(line_err(":$6$x$y\n"), (1, LineError::EmptyUsername));
    assert_eq!(
        line_err("bob:\n"),
        (1, LineError::MissingHash("bob".into()))
    );
    assert_eq!(
        line_err(&format!("{MOSQ_ALICE}:x\n")),
        (1, LineError::ExtraField)
    );
    assert_eq!(
        line_err(&format!("{MOSQ_ALICE}\n\n{MOSQ_ALICE}\n")),
        (
            3,
            LineError::Duplicate {
                user: "alice".into(),
                first_line: 1
            }
        )
    );
    let hash_err = |t: &str| match line_err(t) {
        (1, LineError::Hash { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(hash_err("u:plaintext"), HashFormatError::UnknownType);
    assert_eq!(hash_err("u:$5$abc$def"), HashFormatError::UnknownType);
    assert_eq!(
        hash_err("u:$7$101$O4eOsg2s4RmQZTZn"),
        HashFormatError::FieldCount {
            expected: 3,
            found: 2
        }
    );
    assert_eq!(
        hash_err("u:$7$0$O4eOsg2s4RmQZTZn$AAAA"),
        HashFormatError::Iterations("0".into())
    );
    assert_eq!(
        hash_err("u:$7$12abc$O4eOsg2s4RmQZTZn$AAAA"),
        HashFormatError::Iterations("12abc".into())
    );
    assert_eq!(
        hash_err("u:$7$99999999999$O4eOsg2s4RmQZTZn$AAAA"),
        HashFormatError::Iterations("99999999999".into())
    );
    assert_eq!(hash_err("u:$7$5$!!!!$AAAA"), HashFormatError::SaltBase64);
    assert_eq!(hash_err("u:$7$5$AAAA$AAAA"), HashFormatError::SaltLength(3));
    assert_eq!(
        hash_err("u:$7$5$O4eOsg2s4RmQZTZn$AAAA"),
        HashFormatError::HashLength(3)
    );
    assert_eq!(
        hash_err("u:$6$O4eOsg2s4RmQZTZn$%%%%"),
        HashFormatError::HashBase64
    );
    match PasswordFile::parse(b"ok:\xff\xfe\n", p()) {
        Err(PasswordFileError::File(LineFileError::Line {
            line: 1,
            reason: LineError::NotUtf8,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    let shown = parse("x\n").unwrap_err().to_string();
    assert_eq!(shown, "pw.txt:1: expected 'user:hash'");
}

#[test]
fn save_then_load_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    let mut f = PasswordFile::new();
    f.set_password("u", b"pw", 10).unwrap();
    f.save(&path).unwrap();
    let g = PasswordFile::load(&path).unwrap();
    assert!(g.verify("u", b"pw"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    match PasswordFile::load(&dir.path().join("missing")) {
        Err(PasswordFileError::File(LineFileError::Io { .. })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_does_not_print_hash_bytes() {
    let f = parse(MOSQ_ALICE).unwrap();
    let shown = format!("{f:?}");
    assert!(!shown.contains("JoTs0OF0"));
    assert!(!shown.contains("[79,"), "{shown}");
}

// ---- PasswordAuthenticator ----

fn connect(user: Option<&str>, password: Option<&[u8]>) -> Connect {
    Connect {
        protocol_version: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: "c1".into(),
        will: None,
        username: user.map(str::to_owned),
        password: password.map(Bytes::copy_from_slice),
        properties: Properties::default(),
    }
}

fn peer(ip: &str) -> PeerInfo {
    PeerInfo {
        remote_addr: Some(format!("{ip}:40000").parse().unwrap()),
        ..PeerInfo::default()
    }
}

fn reason(d: AuthDecision) -> Option<ReasonCode> {
    match d {
        AuthDecision::Reject(r) => Some(r),
        AuthDecision::Accept { .. } => None,
        AuthDecision::Pending { .. } => panic!("password mode never pends"),
    }
}

fn principal(d: AuthDecision) -> Principal {
    match d {
        AuthDecision::Accept { authenticated, .. } => authenticated.principal,
        AuthDecision::Reject(r) => panic!("rejected: {r}"),
        AuthDecision::Pending { .. } => panic!("password mode never pends"),
    }
}

fn authenticator(allow_anonymous: bool) -> PasswordAuthenticator {
    let mut f = PasswordFile::new();
    f.set_password("alice", b"right", 50).unwrap();
    f.set_password("sensor-1", b"right", 50).unwrap();
    PasswordAuthenticator::new(f, allow_anonymous)
}

#[test]
fn accepts_right_password_and_names_the_principal() {
    let a = authenticator(false);
    assert!(a.is_blocking());
    let pr = principal(a.authenticate(&connect(Some("alice"), Some(b"right")), &peer("192.0.2.1")));
    assert_eq!(pr.username.as_deref(), Some("alice"));
    assert_eq!(pr.lwa_identity, None);
}

#[test]
fn refusal_reasons() {
    let a = authenticator(false);
    let pe = peer("192.0.2.1");
    assert_eq!(
        reason(a.authenticate(&connect(Some("alice"), Some(b"wrong")), &pe)),
        Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        reason(a.authenticate(&connect(Some("alice"), None), &pe)),
        Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        reason(a.authenticate(&connect(Some("mallory"), Some(b"right")), &pe)),
        Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        reason(a.authenticate(&connect(None, None), &pe)),
        Some(ReasonCode::NOT_AUTHORIZED)
    );
    assert_eq!(ReasonCode::BAD_USER_NAME_OR_PASSWORD.to_v311_connack(), 4);
    assert_eq!(ReasonCode::NOT_AUTHORIZED.to_v311_connack(), 5);
    let mut c = connect(Some("alice"), Some(b"right"));
    c.properties.authentication_method = Some("SCRAM-SHA-1".into());
    assert_eq!(
        reason(a.authenticate(&c, &pe)),
        Some(ReasonCode::BAD_AUTHENTICATION_METHOD)
    );
}

#[test]
fn anonymous_allowed_when_configured_but_bad_password_still_refused() {
    let a = authenticator(true);
    let pe = peer("192.0.2.1");
    let pr = principal(a.authenticate(&connect(None, None), &pe));
    assert_eq!(pr, Principal::default());
    assert_eq!(
        reason(a.authenticate(&connect(Some("alice"), Some(b"wrong")), &pe)),
        Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
}

#[test]
fn lwa_only_identity_cannot_use_a_password() {
    let ids: HashSet<String> = ["sensor-1".to_owned()].into_iter().collect();
    let a = authenticator(false).with_lwa_identities(ids);
    let pe = peer("192.0.2.1");
    assert_eq!(
        reason(a.authenticate(&connect(Some("sensor-1"), Some(b"right")), &pe)),
        Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    principal(a.authenticate(&connect(Some("alice"), Some(b"right")), &pe));
    let b = authenticator(false).with_lwa_only(|n| n.starts_with("sensor-"));
    assert!(reason(b.authenticate(&connect(Some("sensor-1"), Some(b"right")), &pe)).is_some());
}

#[test]
fn failures_are_rate_limited_per_source_and_successes_are_not() {
    let now = Arc::new(Mutex::new(Instant::now()));
    let n = Arc::clone(&now);
    let clock: Clock = Arc::new(move || *n.lock().unwrap());
    let limiter = ConnectRateLimiter::with_clock(
        RateLimitConfig {
            burst: 2,
            refill_every: Duration::from_secs(30),
            max_sources: 16,
        },
        clock,
    );
    let a = authenticator(false).with_rate_limiter(limiter);
    let attacker = peer("198.51.100.7");
    let other = peer("198.51.100.8");
    let good = connect(Some("alice"), Some(b"right"));
    let bad = connect(Some("alice"), Some(b"guess"));
    // Successes never use up the budget.
    for _ in 0..5 {
        principal(a.authenticate(&good, &attacker));
    }
    assert_eq!(
        reason(a.authenticate(&bad, &attacker)),
        Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        reason(a.authenticate(&bad, &attacker)),
        Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    // Budget spent: refused before hashing, even with the right password.
    assert_eq!(
        reason(a.authenticate(&good, &attacker)),
        Some(ReasonCode::CONNECTION_RATE_EXCEEDED)
    );
    // Another source is unaffected.
    principal(a.authenticate(&good, &other));
    *now.lock().unwrap() += Duration::from_secs(30);
    principal(a.authenticate(&good, &attacker));
}

#[test]
fn replace_file_takes_effect() {
    let a = authenticator(false);
    let pe = peer("192.0.2.1");
    let mut f = PasswordFile::new();
    f.set_password("alice", b"rotated", 50).unwrap();
    a.replace_file(f);
    assert!(reason(a.authenticate(&connect(Some("alice"), Some(b"right")), &pe)).is_some());
    principal(a.authenticate(&connect(Some("alice"), Some(b"rotated")), &pe));
}

#[test]
fn names_that_would_not_round_trip_are_refused() {
    // Found by fuzz/parse_password_file: "\r#alice:..." was read as user
    // "#alice", which to_text then wrote back as a comment line.
    let hash = MOSQ_ALICE.split_once(':').unwrap().1;
    for (line, user) in [
        (format!("\r#alice:{hash}\n"), "#alice"),
        (format!("a\u{1}b:{hash}\n"), "a\u{1}b"),
    ] {
        match line_err(&line) {
            (1, LineError::InvalidUsername { user: u, .. }) => assert_eq!(u, user),
            other => panic!("{other:?}"),
        }
    }
}
