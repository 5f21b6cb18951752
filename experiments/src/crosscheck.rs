//! The relay's byte counts checked against a packet capture: for one cell
//! (our broker, LWA or else plaintext, 30 B, QoS 1, the publisher link),
//! `tshark` captures the client <-> relay connection on the loopback
//! interface while that cell's byte-counting phase runs, and the TCP payload
//! bytes in the capture, per direction, are set beside what the relay counted
//! over the same span.
//!
//! Both count TCP payload only (no TCP/IP headers). They should be equal: a
//! difference means the relay missed or invented bytes, or the capture
//! dropped or repeated segments (a retransmission is on the wire twice but
//! relayed once).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::matrix::{BrokerKind, Mode, Profile};
use super::relay::{CountingRelay, WireBytes};

/// The capture program (Debian package `tshark`).
pub const TSHARK: &str = "tshark";
/// How long tshark may take to report that it is capturing.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One cell's byte counts, relay against capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossCheck {
    /// Broker of the cell.
    pub broker: BrokerKind,
    /// Mode of the cell.
    pub mode: Mode,
    /// Payload bytes.
    pub payload: usize,
    /// QoS.
    pub qos: u8,
    /// Which connection was captured.
    pub link: String,
    /// The capture filter tshark ran with.
    pub filter: String,
    /// Messages published during the capture.
    pub messages: u64,
    /// Relay: bytes client to broker.
    pub relay_to_broker: u64,
    /// Relay: bytes broker to client.
    pub relay_to_client: u64,
    /// Capture: TCP payload bytes towards the relay (client to broker).
    pub capture_to_broker: u64,
    /// Capture: TCP payload bytes from the relay (broker to client).
    pub capture_to_client: u64,
    /// TCP segments in the capture (payload-less ACKs included).
    pub capture_segments: u64,
    /// Capture total minus relay total, bytes.
    pub difference: i64,
}

impl CrossCheck {
    /// Whether both directions match exactly.
    pub fn agrees(&self) -> bool {
        self.relay_to_broker == self.capture_to_broker
            && self.relay_to_client == self.capture_to_client
    }
}

/// The (mode, payload, QoS) cross-checked on our broker: LWA (else plaintext,
/// else the first mode), 30 B (else the first payload), QoS 1 (else the first).
pub fn chosen(profile: &Profile) -> Option<(Mode, usize, u8)> {
    let mode = [Mode::Lwa, Mode::Plain]
        .into_iter()
        .find(|m| profile.modes.contains(m))
        .or_else(|| profile.modes.first().copied())?;
    let payload = if profile.payloads.contains(&30) {
        30
    } else {
        *profile.payloads.first()?
    };
    let qos = if profile.qos.contains(&1) {
        1
    } else {
        *profile.qos.first()?
    };
    Some((mode, payload, qos))
}

/// Whether (broker, mode, payload, qos) is the cross-checked cell of `profile`
/// (none where the profile has the check off, as on emulated links).
pub fn is_chosen(
    profile: &Profile,
    broker: BrokerKind,
    mode: Mode,
    payload: usize,
    qos: u8,
) -> bool {
    profile.cross_check
        && broker == BrokerKind::MqttLwa
        && chosen(profile) == Some((mode, payload, qos))
}

/// A running capture plus the relay's counts when it started.
pub struct Armed {
    capture: Result<Capture, String>,
    before: WireBytes,
}

struct Capture {
    child: Child,
    file: PathBuf,
    port: u16,
    filter: String,
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Starts tshark on the relay's listening port, waits until it captures, then
/// reads the relay's settled counts. A failure is kept for [`collect`] to report.
pub async fn arm(relay: &CountingRelay) -> Armed {
    let capture = start_capture(relay.addr().port()).await;
    Armed {
        capture,
        before: relay.settled_bytes().await,
    }
}

async fn start_capture(port: u16) -> Result<Capture, String> {
    let file = std::env::temp_dir().join(format!(
        "mqtt-lwa-crosscheck-{}-{port}.pcapng",
        std::process::id()
    ));
    let filter = format!("tcp port {port}");
    let mut child = Command::new(TSHARK)
        .args(["-i", "lo", "-q", "-f", &filter, "-w"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("{TSHARK} is not installed (Debian package tshark)")
            } else {
                format!("{TSHARK} did not start: {e}")
            }
        })?;
    let Some(stderr) = child.stderr.take() else {
        return Err(format!("{TSHARK}: no stderr"));
    };
    let mut capture = Capture {
        child,
        file,
        port,
        filter,
    };
    // tshark prints "Capturing on 'Loopback: lo'" once dumpcap has the interface open.
    let mut lines = BufReader::new(stderr).lines();
    let mut said = Vec::new();
    let started = tokio::time::timeout(START_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Capturing on") {
                return true;
            }
            said.push(line);
        }
        false
    })
    .await;
    match started {
        Ok(true) => {
            // Keep draining stderr so tshark never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok(capture)
        }
        Ok(false) => {
            let _ = capture.child.wait().await;
            Err(format!(
                "{TSHARK} exited without capturing: {}",
                said.join(" / ")
            ))
        }
        Err(_) => Err(format!(
            "{TSHARK} did not start capturing within {} s: {}",
            START_TIMEOUT.as_secs(),
            said.join(" / ")
        )),
    }
}

/// Stops the capture, reads it back and sets it beside the relay's counts since [`arm`].
pub async fn collect(
    armed: Armed,
    relay: &CountingRelay,
    cell: (BrokerKind, Mode, usize, u8),
    messages: u64,
) -> Result<CrossCheck, String> {
    let after = relay.settled_bytes().await;
    let mut capture = armed.capture?;
    let relayed = after.since(armed.before);
    // Segments already sent are on `lo` by now; give dumpcap a moment to write them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = capture
        .child
        .id()
        .ok_or_else(|| format!("{TSHARK} already exited"))?;
    // SIGTERM (not SIGKILL): tshark then stops dumpcap, which flushes the file.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    match tokio::time::timeout(Duration::from_secs(20), capture.child.wait()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("{TSHARK}: {e}")),
        Err(_) => return Err(format!("{TSHARK} did not stop within 20 s")),
    }
    let out = Command::new(TSHARK)
        .args(["-r"])
        .arg(&capture.file)
        .args([
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.len",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{TSHARK} -r: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{TSHARK} -r failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let counted = sum_fields(&String::from_utf8_lossy(&out.stdout), capture.port)?;
    let (broker, mode, payload, qos) = cell;
    let relay_total = relayed.total() as i64;
    let capture_total = (counted.to_broker + counted.to_client) as i64;
    Ok(CrossCheck {
        broker,
        mode,
        payload,
        qos,
        link: "publisher: client <-> byte-counting relay".into(),
        filter: capture.filter.clone(),
        messages,
        relay_to_broker: relayed.to_broker,
        relay_to_client: relayed.to_client,
        capture_to_broker: counted.to_broker,
        capture_to_client: counted.to_client,
        capture_segments: counted.segments,
        difference: capture_total - relay_total,
    })
}

/// Per-direction TCP payload totals of a capture.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counted {
    to_broker: u64,
    to_client: u64,
    segments: u64,
}

/// Sums `srcport<TAB>dstport<TAB>len` lines: to the relay's `port` is client to broker.
fn sum_fields(text: &str, port: u16) -> Result<Counted, String> {
    let mut c = Counted::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.split('\t').map(str::trim);
        let mut next = || -> Result<u64, String> {
            f.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("unexpected tshark line {line:?}"))
        };
        let (src, dst, len) = (next()?, next()?, next()?);
        c.segments += 1;
        if dst == u64::from(port) {
            c.to_broker += len;
        } else if src == u64::from(port) {
            c.to_client += len;
        } else {
            return Err(format!("segment not on port {port}: {line:?}"));
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_direction() {
        let text = "40000\t5555\t31\n5555\t40000\t0\n5555\t40000\t4\n\n";
        assert_eq!(
            sum_fields(text, 5555),
            Ok(Counted {
                to_broker: 31,
                to_client: 4,
                segments: 3
            })
        );
        assert!(sum_fields("1\t2\t3\n", 5555).is_err());
        assert!(sum_fields("5555\t2\n", 5555).is_err());
    }

    #[test]
    fn chosen_cell_prefers_lwa_30_bytes_qos_1() {
        let p = Profile::quick();
        assert_eq!(chosen(&p), Some((Mode::Lwa, 30, 1)));
        assert!(is_chosen(&p, BrokerKind::MqttLwa, Mode::Lwa, 30, 1));
        assert!(!is_chosen(&p, BrokerKind::Mosquitto, Mode::Lwa, 30, 1));
        let plain_only = Profile {
            modes: vec![Mode::Tls13, Mode::Plain],
            qos: vec![0],
            ..Profile::quick()
        };
        assert_eq!(chosen(&plain_only), Some((Mode::Plain, 30, 0)));
    }
}
