//! Bursts from stock clients (Debian's mosquitto_pub -l and mosquitto_sub,
//! paho-mqtt) through `mqtt-lwa broker`: a connected subscriber that keeps
//! up loses nothing (issue 13 item 2). mosquitto_pub streams lines as fast
//! as the broker lets it, which is what exposed the broker dropping half of
//! a QoS 1 burst while its own client never did; the broker now pauses the
//! publisher instead (README, "Flow control and drops").

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Broker, LineProcess};

/// How long a whole burst may take (debug build on a loaded 2-core machine).
const BURST_WAIT: Duration = Duration::from_secs(120);

fn payloads(n: usize, tag: &str) -> Vec<String> {
    // 30-byte lines, as in the measurement.
    sized_payloads(n, tag, 30)
}

fn sized_payloads(n: usize, tag: &str, len: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{tag}{i:0>width$}", width = len - tag.len()))
        .collect()
}

/// mosquitto_sub waiting for `count` messages, ready once subscribed.
fn sub(broker: &Broker, topic: &str, qos: u8, version: &str, count: usize) -> LineProcess {
    let port = broker.port().to_string();
    let qos = qos.to_string();
    let count = count.to_string();
    let mut p = LineProcess::spawn(
        "stdbuf",
        &[
            "-oL",
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            version,
            "-q",
            &qos,
            "-t",
            topic,
            "-C",
            &count,
            "-d",
            "-F",
            "MSG|%p",
        ],
    );
    p.expect_line("Subscribed", |l| l.starts_with("Subscribed"));
    p
}

/// Every payload line the subscriber printed, until it exits or the burst deadline.
fn received(p: &mut LineProcess, count: usize) -> Vec<String> {
    let deadline = Instant::now() + BURST_WAIT;
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match p.wait_line(left, |l| l.starts_with("MSG|")) {
            Some(line) => got.push(line["MSG|".len()..].to_string()),
            None => break,
        }
    }
    got
}

/// `mosquitto_pub -l`: one message per stdin line, streamed.
fn publish_lines(broker: &Broker, topic: &str, qos: u8, version: &str, lines: &[String]) {
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(["-V", version, "-q", &qos.to_string(), "-t", topic, "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosquitto_pub");
    let mut stdin = child.stdin.take().expect("stdin");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    stdin
        .write_all(text.as_bytes())
        .expect("feed mosquitto_pub");
    drop(stdin);
    let out = child.wait_with_output().expect("mosquitto_pub exits");
    assert!(
        out.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dropped(broker: &Broker) -> String {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(["-t", "$SYS/broker/messages/dropped", "-C", "1", "-W", "10"])
        .output()
        .expect("run mosquitto_sub");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One publisher, one subscriber: all `n` arrive, in order for QoS 1/2.
fn burst(n: usize, qos: u8, version: &str) {
    let broker = Broker::start(&["--sys-interval", "1"]);
    let topic = format!("burst/{qos}/{version}");
    let mut s = sub(&broker, &topic, qos, version, n);
    let sent = payloads(n, "m");
    publish_lines(&broker, &topic, qos, version, &sent);
    let got = received(&mut s, n);
    assert_eq!(
        got.len(),
        n,
        "QoS {qos} v{version}: {} of {n} delivered; $SYS dropped = {}",
        got.len(),
        dropped(&broker)
    );
    if qos > 0 {
        assert!(got == sent, "QoS {qos} v{version}: out of order");
    }
    assert_eq!(dropped(&broker), "0");
}

#[test]
fn burst_qos0_v5() {
    burst(20_000, 0, "5");
}

#[test]
fn burst_qos1_v5() {
    burst(20_000, 1, "5");
}

#[test]
fn burst_qos2_v5() {
    burst(5_000, 2, "5");
}

#[test]
fn burst_qos0_v311() {
    burst(5_000, 0, "311");
}

#[test]
fn burst_qos1_v311() {
    burst(20_000, 1, "311");
}

#[test]
fn burst_qos2_v311() {
    burst(2_000, 2, "311");
}

/// 16 KiB messages: the per-session byte limit (1 MiB by default) backs up
/// long before the message count does, and must pause the publisher, not drop.
#[test]
fn burst_of_16_kib_messages_loses_nothing() {
    let broker = Broker::start(&["--sys-interval", "1"]);
    let n = 1_000;
    let mut s = sub(&broker, "big", 1, "5", n);
    let sent = sized_payloads(n, "k", 16 * 1024);
    publish_lines(&broker, "big", 1, "5", &sent);
    let got = received(&mut s, n);
    assert_eq!(got.len(), n, "$SYS dropped = {}", dropped(&broker));
    assert!(got == sent, "out of order");
    assert_eq!(dropped(&broker), "0");
}

#[test]
fn burst_to_several_subscribers() {
    let broker = Broker::start(&["--sys-interval", "1"]);
    let n = 10_000;
    let mut subs: Vec<LineProcess> = [("5", 1), ("311", 1), ("5", 2)]
        .iter()
        .map(|(v, q)| sub(&broker, "fan/out", *q, v, n))
        .collect();
    let sent = payloads(n, "f");
    publish_lines(&broker, "fan/out", 1, "5", &sent);
    for (i, s) in subs.iter_mut().enumerate() {
        let got = received(s, n);
        assert_eq!(got.len(), n, "subscriber {i}: {} of {n}", got.len());
        assert!(got == sent, "subscriber {i}: out of order");
    }
    assert_eq!(dropped(&broker), "0");
}

/// A paho subscriber that handles each message 1 ms late (so it acknowledges
/// slowly) beside a fast mosquitto_sub: both get every message, because the
/// broker slows the publisher down instead of dropping for the slow one.
#[test]
fn slow_subscriber_keeps_up_and_loses_nothing() {
    let broker = Broker::start(&["--sys-interval", "1"]);
    let n = 3_000;
    let port = broker.port().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/slow_sub.py");
    let count = n.to_string();
    let mut slow = LineProcess::spawn("python3", &[script, &port, "slow/t", "1", "5", &count, "1"]);
    slow.expect_line("ready", |l| l == "ready");
    let mut fast = sub(&broker, "slow/t", 1, "311", n);
    let sent = payloads(n, "s");
    publish_lines(&broker, "slow/t", 1, "5", &sent);
    let got_fast = received(&mut fast, n);
    assert_eq!(
        got_fast.len(),
        n,
        "fast subscriber: {} of {n}",
        got_fast.len()
    );
    let deadline = Instant::now() + BURST_WAIT;
    let end = slow.wait_line(deadline.saturating_duration_since(Instant::now()), |l| {
        l.starts_with("done ") || l.starts_with("timeout ")
    });
    assert_eq!(end.as_deref(), Some(format!("done {n}").as_str()));
    let got_slow: Vec<&String> = slow
        .seen
        .iter()
        .filter(|l| l.starts_with('s') && l.len() == 30)
        .collect();
    assert_eq!(got_slow.len(), n);
    assert!(
        got_slow.iter().zip(&sent).all(|(a, b)| *a == b),
        "slow: out of order"
    );
    assert_eq!(dropped(&broker), "0");
}
