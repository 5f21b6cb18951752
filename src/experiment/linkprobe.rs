//! Measures an emulated link itself before MQTT runs over it: a bulk TCP
//! transfer with iperf3 (the seed study's instrument: server in the broker's
//! namespace, client here) and TCP connect round trips, so the report shows
//! the link is what its profile says.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::link::LinkProfile;
use super::netns::EmulatedLink;

/// Seconds of the iperf3 transfer.
pub const IPERF_SECONDS: u32 = 3;
/// Port of the iperf3 server in the broker's namespace (nothing else listens there).
const IPERF_PORT: u16 = 5201;

/// A link and what was measured on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkResult {
    /// The profile.
    pub profile: LinkProfile,
    /// How it was emulated (empty for loopback).
    pub emulation: String,
    /// Address the clients connected to.
    pub broker_addr: String,
    /// iperf3 receiver rate, Mbit/s (client to broker namespace).
    pub iperf_mbit_s: Option<f64>,
    /// TCP retransmissions during the iperf3 transfer.
    pub iperf_retransmits: Option<u64>,
    /// Smallest TCP round trip the iperf3 sender saw, ms.
    pub iperf_min_rtt_ms: Option<f64>,
    /// Mean TCP round trip the iperf3 sender saw (queueing under load included), ms.
    pub iperf_mean_rtt_ms: Option<f64>,
    /// Median TCP connect time to the broker (one round trip), ms.
    pub connect_rtt_ms: Option<f64>,
    /// Connects behind `connect_rtt_ms`.
    pub connect_samples: u64,
    /// What failed while measuring the link.
    pub notes: Vec<String>,
}

impl LinkResult {
    /// A result for `profile` with nothing measured yet.
    pub fn new(profile: &LinkProfile, emulation: &str, broker_addr: String) -> Self {
        LinkResult {
            profile: profile.clone(),
            emulation: emulation.into(),
            broker_addr,
            iperf_mbit_s: None,
            iperf_retransmits: None,
            iperf_min_rtt_ms: None,
            iperf_mean_rtt_ms: None,
            connect_rtt_ms: None,
            connect_samples: 0,
            notes: Vec::new(),
        }
    }
}

/// Figures from `iperf3 -J` output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IperfFigures {
    /// Receiver bits per second / 10^6.
    pub mbit_s: f64,
    /// Sender retransmissions.
    pub retransmits: Option<u64>,
    /// Sender's smallest RTT, ms.
    pub min_rtt_ms: Option<f64>,
    /// Sender's mean RTT, ms.
    pub mean_rtt_ms: Option<f64>,
}

/// Parses iperf3's JSON report (`end.sum_received`, `end.streams[0].sender`).
pub fn parse_iperf_json(text: &str) -> Result<IperfFigures, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("iperf3 JSON: {e}"))?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        return Err(format!("iperf3: {err}"));
    }
    let end = &v["end"];
    let bps = end["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or("iperf3 JSON lacks end.sum_received.bits_per_second")?;
    let sender = &end["streams"][0]["sender"];
    let ms = |key: &str| sender[key].as_f64().map(|us| us / 1e3);
    Ok(IperfFigures {
        mbit_s: bps / 1e6,
        retransmits: end["sum_sent"]["retransmits"].as_u64(),
        min_rtt_ms: ms("min_rtt"),
        mean_rtt_ms: ms("mean_rtt"),
    })
}

/// A child killed on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An iperf3 transfer from here to a one-shot server in the broker's namespace.
pub fn iperf(link: &EmulatedLink) -> Result<IperfFigures, String> {
    let addr = link.broker_addr.to_string();
    let port = IPERF_PORT.to_string();
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &link.broker_ns,
            "iperf3",
            "-s",
            "-1",
            "--forceflush",
        ])
        .args(["-B", &addr])
        .args(["-p", &port])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("iperf3 server: {e} (scripts/install-deps.sh installs iperf3)"))?;
    let stdout = server.stdout.take();
    let _server = Reaped(server);
    let stdout = stdout.ok_or("iperf3 server: no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut ready = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !ready && line.contains("listening") {
                ready = true;
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|_| "iperf3 server did not start listening within 10 s".to_string())?;
    let out = Command::new("iperf3")
        .args(["-c", &addr, "-p", &port, "-J", "-t"])
        .arg(IPERF_SECONDS.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("iperf3 client: {e}"))?;
    parse_iperf_json(&String::from_utf8_lossy(&out.stdout))
}

/// Median TCP connect time to `addr` over `n` connects (a connect takes one round trip).
pub fn connect_rtt_ms(addr: SocketAddr, n: usize) -> Option<f64> {
    let mut samples: Vec<f64> = (0..n)
        .filter_map(|_| {
            let start = Instant::now();
            let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            drop(s);
            Some(ms)
        })
        .collect();
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf_json_figures_are_read() {
        let text = r#"{"start":{},"end":{"streams":[{"sender":{"min_rtt":6254,"mean_rtt":6978}}],
            "sum_sent":{"retransmits":3,"bits_per_second":2.0e7},
            "sum_received":{"bits_per_second":19132705.6}}}"#;
        let f = parse_iperf_json(text).unwrap();
        assert!((f.mbit_s - 19.1327056).abs() < 1e-6);
        assert_eq!(f.retransmits, Some(3));
        assert_eq!(f.min_rtt_ms, Some(6.254));
        assert_eq!(f.mean_rtt_ms, Some(6.978));
        let e = parse_iperf_json(r#"{"error":"unable to connect to server"}"#).unwrap_err();
        assert!(e.contains("unable to connect"), "{e}");
        assert!(parse_iperf_json("not json").is_err());
        assert!(parse_iperf_json(r#"{"end":{}}"#).is_err());
    }
}
