//! Stock-client bursts: Debian's `mosquitto_pub -l` streams 30-byte lines
//! as fast as the broker lets it, to one `mosquitto_sub`, through each
//! broker in plaintext mode (MQTT 5, QoS 0/1/2). Our own client paces itself
//! and hid that the broker used to drop half of such a burst; these clients
//! are what users run, so the report puts both brokers side by side on
//! them: messages per second, and how many of the burst arrived.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::matrix::BrokerKind;

/// Payload bytes per line, as in the measurement.
pub const PAYLOAD: usize = 30;
/// How long one burst may take before it counts what arrived.
const BURST_LIMIT: Duration = Duration::from_secs(120);
/// Probe messages mark the subscriber ready; burst lines start with `b`.
const PROBE: &str = "probe";

/// One burst through one broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockBurst {
    /// Repeat index (0-based).
    pub repeat: usize,
    /// Broker under test.
    pub broker: BrokerKind,
    /// QoS of publish and subscription.
    pub qos: u8,
    /// MQTT version the clients spoke (`5` or `311`).
    pub version: String,
    /// Lines `mosquitto_pub -l` published.
    pub sent: u64,
    /// Burst messages `mosquitto_sub` printed.
    pub received: u64,
    /// Seconds from starting `mosquitto_pub` to the last message printed
    /// (or to the time limit when some never arrived).
    pub seconds: f64,
    /// Received messages per second.
    pub msgs_per_s: f64,
    /// What `mosquitto_sub` said on stderr when it ended before the burst did.
    #[serde(default)]
    pub subscriber_error: Option<String>,
}

/// Whether the stock clients are installed.
pub fn available() -> bool {
    ["mosquitto_pub", "mosquitto_sub", "stdbuf"]
        .iter()
        .all(|c| {
            Command::new(c)
                .arg("--help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
}

/// The burst's lines: `b` and a zero-padded index, [`PAYLOAD`] bytes each.
fn lines(n: usize) -> String {
    (0..n)
        .map(|i| format!("b{i:0>width$}\n", width = PAYLOAD - 1))
        .collect()
}

/// Runs one burst of `n` messages at `qos` through the broker at `addr`.
/// `scratch` holds the publisher's input file.
pub fn burst(
    addr: SocketAddr,
    broker: BrokerKind,
    qos: u8,
    n: usize,
    repeat: usize,
    scratch: &Path,
) -> Result<StockBurst, String> {
    let version = "5";
    let host = addr.ip().to_string();
    let port = addr.port().to_string();
    let qos_s = qos.to_string();
    let topic = format!("stock/{}/{qos}/{repeat}", broker.name());
    let input = scratch.join(format!("stock-{}-{qos}-{repeat}.txt", broker.name()));
    File::create(&input)
        .and_then(|mut f| f.write_all(lines(n).as_bytes()))
        .map_err(|e| format!("{}: {e}", input.display()))?;

    // Line-buffered, so each message is seen when it is printed.
    let mut sub = Command::new("stdbuf")
        .args([
            "-oL",
            "mosquitto_sub",
            "-h",
            &host,
            "-p",
            &port,
            "-V",
            version,
        ])
        .args(["-q", &qos_s, "-t", &topic])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("mosquitto_sub: {e}"))?;
    let err = sub.stderr.take().ok_or("mosquitto_sub: no stderr")?;
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut text);
        text
    });
    let out = sub.stdout.take().ok_or("mosquitto_sub: no stdout")?;
    let (tx, rx) = mpsc::channel::<(bool, Instant)>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((line.starts_with('b'), Instant::now())).is_err() {
                break;
            }
        }
    });
    let result = (|| {
        // Ready once a probe published after the subscription comes back.
        let ready_by = Instant::now() + Duration::from_secs(15);
        let ready = loop {
            let _ = Command::new("mosquitto_pub")
                .args(["-h", &host, "-p", &port, "-V", version])
                .args(["-q", "1", "-t", &topic, "-m", PROBE])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok((false, _)) => break true,
                Ok((true, _)) => return Err("a burst line before the burst".to_string()),
                Err(_) if Instant::now() > ready_by => break false,
                Err(_) => {}
            }
        };
        if !ready {
            return Err("mosquitto_sub did not receive a probe within 15 s".into());
        }
        // Probes still in flight are not burst lines; they are skipped below.
        let start = Instant::now();
        let mut publisher = Command::new("mosquitto_pub")
            .args(["-h", &host, "-p", &port, "-V", version])
            .args(["-q", &qos_s, "-t", &topic, "-l"])
            .stdin(File::open(&input).map_err(|e| e.to_string())?)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("mosquitto_pub: {e}"))?;
        let deadline = start + BURST_LIMIT;
        let mut received = 0u64;
        let mut last = start;
        while received < n as u64 {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((true, at)) => {
                    received += 1;
                    last = at;
                }
                Ok((false, _)) => {}
                Err(_) => {
                    last = Instant::now();
                    break;
                }
            }
        }
        // A publisher that cannot finish (a broker that stopped answering) is killed.
        let _ = publisher.kill();
        let _ = publisher.wait();
        let seconds = last.duration_since(start).as_secs_f64().max(1e-9);
        Ok(StockBurst {
            repeat,
            broker,
            qos,
            version: version.into(),
            sent: n as u64,
            received,
            seconds,
            msgs_per_s: received as f64 / seconds,
            subscriber_error: None,
        })
    })();
    // A subscriber that already exited (an error) keeps its exit status.
    let exited = matches!(sub.try_wait(), Ok(Some(_)));
    let _ = sub.kill();
    let _ = sub.wait();
    let said = stderr.join().unwrap_or_default();
    let result = result.map(|mut b| {
        if exited && b.received < b.sent {
            b.subscriber_error = said.lines().next().map(str::to_owned);
        }
        b
    });
    let _ = std::fs::remove_file(&input);
    result
}

/// `stock.csv`: one row per burst.
pub fn csv(bursts: &[StockBurst]) -> String {
    let mut out = String::from("repeat,broker,qos,version,sent,received,seconds,msgs_per_s\n");
    for b in bursts {
        out.push_str(&format!(
            "{},{},{},{},{},{},{:.4},{:.1}\n",
            b.repeat + 1,
            b.broker.name(),
            b.qos,
            b.version,
            b.sent,
            b.received,
            b.seconds,
            b.msgs_per_s
        ));
    }
    out
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 0 {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    })
}

/// `## Stock clients` of the report: per QoS, each broker's median rate
/// (range over repeats) and delivered share, and the ratio of medians.
pub fn section(out: &mut String, bursts: &[StockBurst], repeats: usize) {
    if bursts.is_empty() {
        return;
    }
    let n = bursts.first().map_or(0, |b| b.sent);
    out.push_str("## Stock clients: `mosquitto_pub -l` to `mosquitto_sub`\n\n");
    out.push_str(&format!(
        "Plaintext, MQTT 5, {n} messages of {PAYLOAD} B streamed by Debian's `mosquitto_pub -l` \
         to one `mosquitto_sub`, {repeats} repeat(s), brokers alternated; rate = messages \
         received / seconds from starting the publisher to the last message printed. Median \
         (min - max over repeats); the ratio of medians with its 95 % paired bootstrap interval \
         over repeats.{}\n\n",
        if repeats < 5 {
            " Fewer than 5 repeats: indicative only."
        } else {
            ""
        }
    ));
    out.push_str("| QoS | mqtt-lwa msg/s | delivered | mosquitto msg/s | delivered | mqtt-lwa / mosquitto |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for qos in [0u8, 1, 2] {
        let of = |kind: BrokerKind| -> Vec<&StockBurst> {
            bursts
                .iter()
                .filter(|b| b.qos == qos && b.broker == kind)
                .collect()
        };
        let ours = of(BrokerKind::MqttLwa);
        let theirs = of(BrokerKind::Mosquitto);
        if ours.is_empty() && theirs.is_empty() {
            continue;
        }
        let rate = |v: &[&StockBurst]| -> (Option<f64>, String) {
            let rates: Vec<f64> = v.iter().map(|b| b.msgs_per_s).collect();
            let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = rates.iter().copied().fold(0.0, f64::max);
            match median(rates) {
                Some(m) => (Some(m), format!("{m:.0} ({lo:.0} - {hi:.0})")),
                None => (None, "not measured".into()),
            }
        };
        let delivered = |v: &[&StockBurst]| -> String {
            let got: u64 = v.iter().map(|b| b.received).sum();
            let sent: u64 = v.iter().map(|b| b.sent).sum();
            if sent == 0 {
                "-".into()
            } else {
                format!("{got} of {sent}")
            }
        };
        let (om, os) = rate(&ours);
        let (tm, ts) = rate(&theirs);
        let complete = |v: &[&StockBurst]| v.iter().all(|b| b.received == b.sent);
        // A rate over a burst that lost messages is no rate to compare.
        let series = |v: &[&StockBurst]| -> Vec<(usize, f64)> {
            v.iter().map(|b| (b.repeat, b.msgs_per_s)).collect()
        };
        let ratio = match (om, tm) {
            (Some(_), Some(b)) if b > 0.0 && complete(&ours) && complete(&theirs) => {
                super::stats::ratio_ci(&series(&ours), &series(&theirs))
                    .map_or_else(|| "-".into(), |ci| ci.show())
            }
            (Some(_), Some(_)) => "- (messages lost)".into(),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "| {qos} | {os} | {} | {ts} | {} | {ratio} |\n",
            delivered(&ours),
            delivered(&theirs)
        ));
    }
    out.push('\n');
    for b in bursts.iter().filter(|b| b.received < b.sent) {
        out.push_str(&format!(
            "- {} QoS {} repeat {}: {} of {} arrived{}.\n",
            b.broker,
            b.qos,
            b.repeat + 1,
            b.received,
            b.sent,
            b.subscriber_error
                .as_deref()
                .map(|e| format!("; mosquitto_sub ended early: \"{e}\""))
                .unwrap_or_default()
        ));
    }
    if bursts.iter().any(|b| b.received < b.sent) {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_payload_sized_and_distinct() {
        let text = lines(12);
        let v: Vec<&str> = text.lines().collect();
        assert_eq!(v.len(), 12);
        assert!(v.iter().all(|l| l.len() == PAYLOAD && l.starts_with('b')));
        assert_ne!(v[0], v[11]);
    }

    #[test]
    fn section_shows_both_brokers_and_the_ratio() {
        let b = |broker, rate: f64, received| StockBurst {
            repeat: 0,
            broker,
            qos: 1,
            version: "5".into(),
            sent: 100,
            received,
            seconds: 1.0,
            msgs_per_s: rate,
            subscriber_error: None,
        };
        let mut out = String::new();
        section(
            &mut out,
            &[
                b(BrokerKind::MqttLwa, 150.0, 100),
                b(BrokerKind::Mosquitto, 100.0, 100),
            ],
            1,
        );
        assert!(
            out.contains(
                "| 1 | 150 (150 - 150) | 100 of 100 | 100 (100 - 100) | 100 of 100 | 1.50 (no interval: 1 repeat) |"
            ),
            "{out}"
        );
        assert!(out.contains("indicative"));
        // Several repeats: the ratio carries its interval.
        let at = |repeat, broker, rate| StockBurst {
            repeat,
            ..b(broker, rate, 100)
        };
        let mut out = String::new();
        section(
            &mut out,
            &[
                at(0, BrokerKind::MqttLwa, 150.0),
                at(0, BrokerKind::Mosquitto, 100.0),
                at(1, BrokerKind::MqttLwa, 160.0),
                at(1, BrokerKind::Mosquitto, 100.0),
                at(2, BrokerKind::MqttLwa, 140.0),
                at(2, BrokerKind::Mosquitto, 100.0),
            ],
            3,
        );
        assert!(out.contains("| 1.50 [1.40, 1.60] |"), "{out}");
    }
}
