//! Debian's mosquitto_pub / mosquitto_sub (package mosquitto-clients)
//! against `mqtt-lwa broker`, MQTT 3.1.1 and 5.0: QoS 0/1/2, retained
//! messages, wills, persistent sessions and 5.0 properties.
//!
//! mosquitto_sub runs with `-d`, whose "Subscribed" line tells the test that
//! the SUBACK arrived, so nothing here sleeps.

mod common;

use common::{unique, Broker, LineProcess};

const VERSIONS: [&str; 2] = ["311", "5"];
/// Message lines are told apart from `-d` debug lines by this prefix.
const FORMAT: &str = "MSG|%r|%t|%p|%P|%E";

/// One message as mosquitto_sub printed it.
#[derive(Debug, PartialEq)]
struct Msg {
    retain: bool,
    topic: String,
    payload: String,
    user_properties: String,
    expiry: String,
}

fn base_args(broker: &Broker, version: &str) -> Vec<String> {
    vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        broker.port().to_string(),
        "-V".into(),
        version.into(),
    ]
}

/// Starts mosquitto_sub and waits until its subscription is acknowledged.
fn subscribe(broker: &Broker, version: &str, args: &[&str]) -> LineProcess {
    let mut all = base_args(broker, version);
    all.extend(["-d", "-F", FORMAT].map(String::from));
    all.extend(args.iter().map(|s| s.to_string()));
    let mut sub = spawn_sub(&all);
    sub.expect_line("Subscribed", |l| l.starts_with("Subscribed"));
    sub
}

/// mosquitto_sub with line-buffered stdout (a pipe is block-buffered
/// otherwise, and the test must see each line as it is printed).
fn spawn_sub(args: &[String]) -> LineProcess {
    let mut all = vec!["-oL", "mosquitto_sub"];
    all.extend(args.iter().map(String::as_str));
    LineProcess::spawn("stdbuf", &all)
}

/// Runs mosquitto_pub to completion.
fn publish(broker: &Broker, version: &str, args: &[&str]) {
    let mut all = base_args(broker, version);
    all.extend(args.iter().map(|s| s.to_string()));
    let out = std::process::Command::new("mosquitto_pub")
        .args(&all)
        .output()
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn next_msg(sub: &mut LineProcess) -> Msg {
    let line = sub.expect_line("a message", |l| l.starts_with("MSG|"));
    let mut f = line.splitn(6, '|').skip(1);
    let mut field = || f.next().unwrap_or_default().to_string();
    Msg {
        retain: field() == "1",
        topic: field(),
        payload: field(),
        user_properties: field(),
        expiry: field(),
    }
}

#[test]
fn qos_0_1_2_both_versions() {
    let broker = Broker::start(&[]);
    for v in VERSIONS {
        for qos in ["0", "1", "2"] {
            let topic = unique("mosq/qos");
            let mut sub = subscribe(&broker, v, &["-q", qos, "-t", &topic, "-C", "2"]);
            let first = format!("first-{v}-{qos}");
            let second = format!("second-{v}-{qos}");
            publish(&broker, v, &["-q", qos, "-t", &topic, "-m", &first]);
            publish(&broker, v, &["-q", qos, "-t", &topic, "-m", &second]);
            let a = next_msg(&mut sub);
            let b = next_msg(&mut sub);
            assert_eq!(
                (a.topic.as_str(), a.payload.as_str()),
                (topic.as_str(), first.as_str())
            );
            assert_eq!(b.payload, second);
            assert!(!a.retain);
            assert!(sub.wait().success(), "{:#?}", sub.seen);
            // The subscriber's debug output shows the QoS it received at.
            assert!(
                sub.seen
                    .iter()
                    .any(|l| l.contains("received PUBLISH") && l.contains(&format!("q{qos}"))),
                "{:#?}",
                sub.seen
            );
        }
    }
}

#[test]
fn retained_set_replace_clear() {
    let broker = Broker::start(&[]);
    for v in VERSIONS {
        let topic = unique("mosq/retained");
        // QoS 1, so that each publish is processed before the next client connects.
        publish(&broker, v, &["-q", "1", "-r", "-t", &topic, "-m", "first"]);
        publish(&broker, v, &["-q", "1", "-r", "-t", &topic, "-m", "second"]);
        let mut sub = subscribe(&broker, v, &["-t", &topic, "-C", "1"]);
        let m = next_msg(&mut sub);
        assert!(m.retain, "{m:?}");
        assert_eq!(m.payload, "second");
        assert!(sub.wait().success());

        // An empty retained message clears it: a new subscriber gets only live messages.
        publish(&broker, v, &["-q", "1", "-r", "-t", &topic, "-n"]);
        let mut sub = subscribe(&broker, v, &["-t", &topic, "-C", "1"]);
        publish(&broker, v, &["-q", "1", "-t", &topic, "-m", "live"]);
        let m = next_msg(&mut sub);
        assert_eq!((m.retain, m.payload.as_str()), (false, "live"));
    }
}

#[test]
fn will_of_a_killed_client_is_published() {
    let broker = Broker::start(&[]);
    for v in VERSIONS {
        let will_topic = unique("mosq/will");
        let payload = format!("gone-{v}");
        let mut watcher = subscribe(&broker, v, &["-q", "1", "-t", &will_topic]);
        let mut victim = subscribe(
            &broker,
            v,
            &[
                "-t",
                &unique("mosq/other"),
                "--will-topic",
                &will_topic,
                "--will-payload",
                &payload,
                "--will-qos",
                "1",
                "--will-retain",
            ],
        );
        // SIGKILL: no DISCONNECT, so the broker must publish the will.
        victim.kill();
        let m = next_msg(&mut watcher);
        assert_eq!(
            (m.topic.as_str(), m.payload.as_str()),
            (will_topic.as_str(), payload.as_str())
        );
        // --will-retain: a later subscriber gets it as a retained message.
        let mut late = subscribe(&broker, v, &["-t", &will_topic, "-C", "1"]);
        let m = next_msg(&mut late);
        assert!(m.retain);
        assert_eq!(m.payload, payload);
    }
}

#[test]
fn clean_disconnect_does_not_publish_the_will() {
    let broker = Broker::start(&[]);
    for v in VERSIONS {
        let will_topic = unique("mosq/nowill");
        let mut watcher = subscribe(&broker, v, &["-q", "1", "-t", &will_topic, "-C", "1"]);
        // -E: subscribe, then DISCONNECT normally.
        let mut polite = subscribe(
            &broker,
            v,
            &[
                "-t",
                &unique("mosq/x"),
                "-E",
                "--will-topic",
                &will_topic,
                "--will-payload",
                "will",
            ],
        );
        assert!(polite.wait().success());
        publish(&broker, v, &["-q", "1", "-t", &will_topic, "-m", "marker"]);
        assert_eq!(next_msg(&mut watcher).payload, "marker");
    }
}

#[test]
fn persistent_session_receives_messages_queued_while_offline() {
    let broker = Broker::start(&[]);
    for v in VERSIONS {
        let topic = unique("mosq/offline");
        let id = unique("mosq-persistent");
        let mut session = vec!["-c", "-i", &id, "-q", "1", "-t", &topic];
        if v == "5" {
            session.extend(["-x", "600"]);
        }
        let mut first = session.clone();
        first.push("-E");
        let mut sub = subscribe(&broker, v, &first);
        assert!(sub.wait().success());
        for m in ["queued-1", "queued-2", "queued-3"] {
            publish(&broker, v, &["-q", "1", "-t", &topic, "-m", m]);
        }
        let mut again = session.clone();
        again.extend(["-C", "3"]);
        let mut all = base_args(&broker, v);
        all.extend(["-F", FORMAT].map(String::from));
        all.extend(again.iter().map(|s| s.to_string()));
        // No -d here: the queued messages may arrive before SUBACK.
        let mut back = spawn_sub(&all);
        let got: Vec<String> = (0..3).map(|_| next_msg(&mut back).payload).collect();
        assert_eq!(got, ["queued-1", "queued-2", "queued-3"]);
        assert!(back.wait().success());
    }
}

#[test]
fn v5_user_properties_and_message_expiry_pass_through() {
    let broker = Broker::start(&[]);
    let topic = unique("mosq/props");
    let mut sub = subscribe(&broker, "5", &["-t", &topic, "-q", "1"]);
    publish(
        &broker,
        "5",
        &[
            "-q",
            "1",
            "-t",
            &topic,
            "-m",
            "with-props",
            "-D",
            "publish",
            "user-property",
            "colour",
            "blue",
            "-D",
            "publish",
            "message-expiry-interval",
            "120",
        ],
    );
    let m = next_msg(&mut sub);
    assert_eq!(m.payload, "with-props");
    assert_eq!(m.user_properties, "colour:blue");
    let expiry: u32 = m.expiry.parse().expect("expiry printed");
    assert!((1..=120).contains(&expiry), "{m:?}");
}

#[test]
fn v5_topic_alias_from_mosquitto_pub() {
    let broker = Broker::start(&[]);
    let topic = unique("mosq/alias");
    // The subscriber does not advertise a Topic Alias Maximum: libmosquitto
    // 2.0.11 advertises one with `-D connect topic-alias-maximum N` but then
    // refuses a PUBLISH with an empty topic as a protocol error (checked by
    // hand), so broker-assigned aliases are tested with paho instead.
    let mut sub = subscribe(&broker, "5", &["-t", &topic, "-q", "1", "-C", "3"]);
    // The publisher sets alias 1 on each message (-l: one message per stdin line).
    let mut all = base_args(&broker, "5");
    all.extend(
        [
            "-t",
            &topic,
            "-q",
            "1",
            "-l",
            "-D",
            "publish",
            "topic-alias",
            "1",
        ]
        .map(String::from),
    );
    let mut child = std::process::Command::new("mosquitto_pub")
        .args(&all)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run mosquitto_pub");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"a1\na2\na3\n").unwrap();
    }
    assert!(child.wait().unwrap().success());
    let got: Vec<(String, String)> = (0..3)
        .map(|_| {
            let m = next_msg(&mut sub);
            (m.topic, m.payload)
        })
        .collect();
    let want: Vec<(String, String)> = ["a1", "a2", "a3"]
        .iter()
        .map(|p| (topic.clone(), p.to_string()))
        .collect();
    assert_eq!(got, want);
    assert!(sub.wait().success(), "{:#?}", sub.seen);
}
