//! Unit tests for ACL parsing, filter algebra and the policy.

use super::*;

fn parse(text: &str) -> AclFile {
    AclFile::parse(text.as_bytes(), Path::new("acl")).unwrap()
}

fn parse_err(text: &str) -> (usize, AclLineError) {
    match AclFile::parse(text.as_bytes(), Path::new("acl")) {
        Err(AclFileError::Line { line, reason, .. }) => (line, reason),
        other => panic!("expected a line error, got {other:?}"),
    }
}

fn user(name: &str) -> Principal {
    Principal {
        username: Some(name.to_owned()),
        lwa_identity: None,
    }
}

fn anon() -> Principal {
    Principal::default()
}

#[test]
fn parses_mosquitto_example() {
    let f = parse(
        "# This affects access control for clients with no username.\n\
         topic read $SYS/#\n\
         \n\
         # This only affects clients with username \"roger\".\n\
         user roger\n\
         topic foo/bar\n\
         \n\
         # This affects all clients.\n\
         pattern write $SYS/broker/connection/%c/state\n\
         user  spaced name  \n\
         topic deny a b/c\n",
    );
    assert_eq!(f.anonymous.len(), 1);
    assert_eq!(f.anonymous[0].access, AclAccess::Read);
    assert_eq!(f.anonymous[0].filter, "$SYS/#");
    let roger = &f.users["roger"];
    assert_eq!(roger.len(), 1);
    assert_eq!(roger[0].access, AclAccess::ReadWrite);
    assert_eq!(roger[0].filter, "foo/bar");
    assert_eq!(roger[0].line, 6);
    assert_eq!(f.patterns.len(), 1);
    assert_eq!(f.patterns[0].filter, "$SYS/broker/connection/%c/state");
    let spaced = &f.users["spaced name"];
    assert_eq!(spaced[0].access, AclAccess::Deny);
    assert_eq!(spaced[0].filter, "a b/c");
    assert_eq!(f.rule_count(), 4);
}

#[test]
fn single_word_is_the_topic_and_qos_cap_parses() {
    let f = parse("topic read\ntopic readwrite sensors/# qos 1\ntopic write x  qos  0\n");
    assert_eq!(f.anonymous[0].filter, "read");
    assert_eq!(f.anonymous[0].access, AclAccess::ReadWrite);
    assert_eq!(f.anonymous[1].filter, "sensors/#");
    assert_eq!(f.anonymous[1].max_qos, Some(QoS::AtLeastOnce));
    assert_eq!(f.anonymous[2].filter, "x");
    assert_eq!(f.anonymous[2].max_qos, Some(QoS::AtMostOnce));
}

#[test]
fn broken_files_report_line_and_reason() {
    assert_eq!(parse_err("topic\n"), (1, AclLineError::EmptyTopic));
    assert_eq!(
        parse_err("# c\ntopic rw a/b\n"),
        (2, AclLineError::Access("rw".into()))
    );
    assert_eq!(parse_err("user\n"), (1, AclLineError::MissingUser));
    assert_eq!(
        parse_err("\n\nfoo bar\n"),
        (3, AclLineError::Keyword("foo".into()))
    );
    assert!(matches!(
        parse_err("topic read a/#/b\n"),
        (1, AclLineError::Filter { .. })
    ));
    assert!(matches!(
        parse_err("topic read a+/b\n"),
        (1, AclLineError::Filter { .. })
    ));
    assert!(matches!(
        parse_err("pattern read a/%c#\n"),
        (1, AclLineError::Filter { .. })
    ));
    assert_eq!(
        parse_err("topic read a qos 3\n"),
        (1, AclLineError::Qos("3".into()))
    );
    assert_eq!(
        parse_err("topic read a qos x\n"),
        (1, AclLineError::Qos("x".into()))
    );
    match AclFile::parse(b"topic read \xff\n", Path::new("acl")) {
        Err(AclFileError::Line {
            reason: AclLineError::NotUtf8,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let shown = AclFile::parse(b"user a\nbogus\n", Path::new("/etc/acl"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        shown,
        "/etc/acl:2: unknown keyword \"bogus\" (expected topic, pattern or user)"
    );
}

#[test]
fn matching_follows_mqtt_rules() {
    assert!(filter_matches("a/#", "a"));
    assert!(filter_matches("a/#", "a/b/c"));
    assert!(filter_matches("a/+/c", "a/b/c"));
    assert!(!filter_matches("a/+/c", "a/b/d"));
    assert!(!filter_matches("a/+", "a"));
    assert!(filter_matches("+/+", "/x"));
    assert!(!filter_matches("#", "$SYS/x"));
    assert!(!filter_matches("+/x", "$SYS/x"));
    assert!(filter_matches("$SYS/#", "$SYS/x"));
}

#[test]
fn cover_and_overlap() {
    assert!(filter_covers("a/#", "a/+/c"));
    assert!(filter_covers("a/#", "a"));
    assert!(filter_covers("a/+/c", "a/b/c"));
    assert!(filter_covers("#", "x/#"));
    assert!(!filter_covers("#", "$SYS/#"));
    assert!(!filter_covers("a/b", "a/+"));
    assert!(!filter_covers("a/+", "a/#"));
    assert!(!filter_covers("a/+", "a"));

    assert!(filters_overlap("a/+", "+/b"));
    assert!(filters_overlap("a/#", "a"));
    assert!(filters_overlap("#", "x/y"));
    assert!(!filters_overlap("a/b", "a/c"));
    assert!(!filters_overlap("a/+", "a"));
    assert!(!filters_overlap("#", "$SYS/#"));
    assert!(!filters_overlap("+/x", "$SYS/x"));
    assert!(filters_overlap("$SYS/+", "$SYS/#"));
}

#[test]
fn pattern_expansion_is_single_pass() {
    assert_eq!(expand_pattern("d/%c/%u/%x%", "al", "c1"), "d/c1/al/%x%");
    assert_eq!(expand_pattern("d/%c", "alice", "%u"), "d/%u");
}

fn policy(text: &str) -> AclPolicy {
    AclPolicy::new(parse(text))
}

#[test]
fn publish_and_receive_follow_user_anonymous_and_pattern_rules() {
    let p = policy(
        "topic read public/#\n\
         user alice\n\
         topic readwrite alice/#\n\
         topic write shared/in\n\
         topic read shared/out\n\
         pattern readwrite devices/%c/#\n\
         pattern read users/%u/inbox\n",
    );
    let alice = user("alice");
    assert!(p.can_publish(&alice, "c1", "alice/x"));
    assert!(p.can_receive(&alice, "c1", "alice/x"));
    assert!(p.can_publish(&alice, "c1", "shared/in"));
    assert!(!p.can_receive(&alice, "c1", "shared/in"));
    assert!(p.can_receive(&alice, "c1", "shared/out"));
    assert!(!p.can_publish(&alice, "c1", "shared/out"));
    // Anonymous rules are for anonymous clients only (as in mosquitto).
    assert!(!p.can_receive(&alice, "c1", "public/news"));
    assert!(p.can_receive(&anon(), "c9", "public/news"));
    assert!(!p.can_publish(&anon(), "c9", "public/news"));
    // Patterns apply to everyone; %u needs a name.
    assert!(p.can_publish(&alice, "c1", "devices/c1/up"));
    assert!(!p.can_publish(&alice, "c1", "devices/c2/up"));
    assert!(p.can_publish(&anon(), "c9", "devices/c9/up"));
    assert!(p.can_receive(&alice, "c1", "users/alice/inbox"));
    assert!(!p.can_receive(&anon(), "c9", "users//inbox"));
    // Unknown users only get patterns.
    let bob = user("bob");
    assert!(!p.can_publish(&bob, "c2", "alice/x"));
    assert!(p.can_publish(&bob, "c2", "devices/c2/x"));
    // The LWA identity is the ACL name when there is no user name.
    let lwa = Principal {
        username: None,
        lwa_identity: Some("alice".into()),
    };
    assert!(p.can_publish(&lwa, "c1", "alice/x"));
}

#[test]
fn deny_wins_regardless_of_order() {
    let p = policy(
        "user alice\n\
         topic readwrite alice/#\n\
         topic deny alice/secret/#\n\
         pattern deny devices/%c/admin\n\
         pattern readwrite devices/%c/#\n",
    );
    let a = user("alice");
    assert!(p.can_publish(&a, "c1", "alice/open"));
    assert!(!p.can_publish(&a, "c1", "alice/secret/x"));
    assert!(!p.can_receive(&a, "c1", "alice/secret"));
    assert!(p.can_publish(&a, "c1", "devices/c1/data"));
    assert!(!p.can_publish(&a, "c1", "devices/c1/admin"));
}

#[test]
fn dangerous_ids_get_nothing_through_patterns() {
    let p = policy(
        "user alice\n\
         topic read news\n\
         pattern readwrite devices/%c/#\n\
         pattern readwrite home/%u/#\n",
    );
    let a = user("alice");
    // '/' would let client "x/y" into client "x"'s tree.
    assert!(!p.can_publish(&a, "x/y", "devices/x/y/z"));
    assert!(!p.can_publish(&a, "c+", "devices/c+/z"));
    assert!(!p.can_publish(&a, "#", "devices/anything"));
    // Topic rules still apply; %u patterns with a safe name still apply.
    assert!(p.can_receive(&a, "x/y", "news"));
    assert!(p.can_publish(&a, "x/y", "home/alice/t"));
    let evil = user("ev/il");
    assert!(!p.can_publish(&evil, "c1", "home/ev/il/t"));
    // An unsafe deny pattern fails closed.
    let q = policy("topic readwrite open/#\npattern deny open/%c/private\n");
    assert!(q.can_publish(&anon(), "c1", "open/x"));
    assert!(!q.can_publish(&anon(), "a/b", "open/x"));
}

#[test]
fn subscriptions_overlap_rules_and_deny_covers() {
    let p = policy(
        "user alice\n\
         topic read sensors/+/temp\n\
         topic read $SYS/broker/#\n\
         topic readwrite alice/#\n\
         topic deny alice/secret/#\n",
    );
    let a = user("alice");
    let full = Some(QoS::ExactlyOnce);
    assert_eq!(p.can_subscribe(&a, "c", "sensors/+/temp"), full);
    assert_eq!(p.can_subscribe(&a, "c", "sensors/k1/temp"), full);
    // Wider than the rules: granted, deliveries filtered per topic (mosquitto's behaviour).
    assert_eq!(p.can_subscribe(&a, "c", "sensors/#"), full);
    assert!(p.can_receive(&a, "c", "sensors/k1/temp"));
    assert!(!p.can_receive(&a, "c", "sensors/k1/humidity"));
    assert_eq!(p.can_subscribe(&a, "c", "#"), full);
    // Nothing readable overlaps.
    assert_eq!(p.can_subscribe(&a, "c", "sensors/k1/humidity"), None);
    assert_eq!(p.can_subscribe(&a, "c", "other/#"), None);
    // '#' does not reach $SYS; an explicit $SYS filter does.
    assert_eq!(p.can_subscribe(&a, "c", "$SYS/#"), full);
    assert_eq!(p.can_subscribe(&a, "c", "$SYS/other/#"), None);
    // A deny covering the whole filter refuses it; partial overlap is filtered instead.
    assert_eq!(p.can_subscribe(&a, "c", "alice/secret/#"), None);
    assert_eq!(p.can_subscribe(&a, "c", "alice/secret/x"), None);
    assert_eq!(p.can_subscribe(&a, "c", "alice/#"), full);
    assert!(!p.can_receive(&a, "c", "alice/secret/x"));
    // Shared subscriptions are checked on the inner filter.
    assert_eq!(p.can_subscribe(&a, "c", "$share/g/sensors/+/temp"), full);
    assert_eq!(p.can_subscribe(&a, "c", "$share/g/other"), None);
    assert_eq!(p.can_subscribe(&a, "c", "$share/g"), None);
}

#[test]
fn qos_caps_limit_grants() {
    let p = policy(
        "topic read telemetry/# qos 0\n\
         topic read telemetry/alarms qos 1\n\
         topic readwrite cmd/# qos 1\n\
         topic read free/#\n",
    );
    let a = anon();
    assert_eq!(
        p.can_subscribe(&a, "c", "telemetry/alarms"),
        Some(QoS::AtMostOnce)
    );
    assert_eq!(p.can_subscribe(&a, "c", "free/x"), Some(QoS::ExactlyOnce));
    assert_eq!(p.can_subscribe(&a, "c", "#"), Some(QoS::AtMostOnce));
    assert_eq!(p.can_subscribe(&a, "c", "cmd/+"), Some(QoS::AtLeastOnce));
    assert_eq!(
        p.max_publish_qos(&a, "c", "cmd/reboot"),
        Some(QoS::AtLeastOnce)
    );
    assert_eq!(p.max_publish_qos(&a, "c", "free/x"), None);
}

#[test]
fn empty_file_denies_everything_and_reload_applies() {
    let p = policy("# nothing but comments\n\n");
    assert!(!p.can_publish(&anon(), "c", "a"));
    assert_eq!(p.can_subscribe(&anon(), "c", "#"), None);
    assert!(!p.can_receive(&anon(), "c", "a"));
    p.replace(parse("topic readwrite a\n"));
    assert!(p.can_publish(&anon(), "c", "a"));
}

#[test]
fn load_reports_missing_file() {
    match AclPolicy::load(Path::new("/nonexistent/acl")) {
        Err(AclFileError::Io { path, .. }) => assert_eq!(path, Path::new("/nonexistent/acl")),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("loaded a missing file"),
    }
}
