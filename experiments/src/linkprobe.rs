//! Measures a link itself before MQTT runs over it: a bulk TCP transfer with
//! iperf3 (the seed study's instrument: server beside the broker, in its
//! namespace or on the remote broker host, client here), TCP connect round
//! trips and, on a remote broker's network, MQTT PINGREQ/PINGRESP round
//! trips, so the report shows what the link is (emulated: that it is what
//! its profile says).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use super::link::LinkProfile;
use super::netns::EmulatedLink;
use super::results::Percentiles;
use mqtt_lwa::codec::{self, Connect, Packet, ProtocolVersion};

/// Seconds of the iperf3 transfer.
pub const IPERF_SECONDS: u32 = 3;
/// Port of the iperf3 server in the broker's namespace (nothing else listens there).
const IPERF_PORT: u16 = 5201;
/// How long an iperf3 client may take beyond its transfer (connecting, results exchange).
const IPERF_SLACK: Duration = Duration::from_secs(15);
/// MQTT PINGREQ/PINGRESP round trips behind a remote link's RTT.
pub const MQTT_PINGS: usize = 50;

/// A link and what was measured on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkResult {
    /// The profile.
    pub profile: LinkProfile,
    /// How it was emulated (empty for loopback).
    pub emulation: String,
    /// Address the clients connected to.
    pub broker_addr: String,
    /// iperf3 receiver rate, Mbit/s, client to broker (into the broker's namespace or host).
    pub iperf_mbit_s: Option<f64>,
    /// iperf3 receiver rate broker to client (`iperf3 -R`), Mbit/s; remote links only.
    #[serde(default)]
    pub iperf_reverse_mbit_s: Option<f64>,
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
    /// MQTT PINGREQ to PINGRESP round trips on one plaintext MQTT 5 connection to our
    /// broker, ms (p50, p90, ...); remote links only.
    #[serde(default)]
    pub mqtt_ping_rtt_ms: Option<Percentiles>,
    /// What failed while measuring the link.
    pub notes: Vec<String>,
}

impl LinkResult {
    /// Keeps iperf3's client-to-broker figures.
    pub fn set_iperf(&mut self, f: &IperfFigures) {
        self.iperf_mbit_s = Some(f.mbit_s);
        self.iperf_retransmits = f.retransmits;
        self.iperf_min_rtt_ms = f.min_rtt_ms;
        self.iperf_mean_rtt_ms = f.mean_rtt_ms;
    }

    /// A result for `profile` with nothing measured yet.
    pub fn new(profile: &LinkProfile, emulation: &str, broker_addr: String) -> Self {
        LinkResult {
            profile: profile.clone(),
            emulation: emulation.into(),
            broker_addr,
            iperf_mbit_s: None,
            iperf_reverse_mbit_s: None,
            iperf_retransmits: None,
            iperf_min_rtt_ms: None,
            iperf_mean_rtt_ms: None,
            connect_rtt_ms: None,
            connect_samples: 0,
            mqtt_ping_rtt_ms: None,
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

/// Why an iperf3 server is not running.
#[derive(Debug, thiserror::Error)]
pub enum IperfServerError {
    /// The program is not installed (not on PATH).
    #[error("iperf3 is not installed")]
    Missing,
    /// It could not be started or never said it was listening.
    #[error("iperf3 server: {0}")]
    Failed(String),
}

/// A running `iperf3 -s`; stopped when dropped.
pub struct IperfServer {
    child: Reaped,
}

impl IperfServer {
    /// Starts `cmd` (an `iperf3 -s ...` command line, possibly under `ip netns exec`)
    /// with `--forceflush` and waits up to 10 s until it says it is listening.
    pub fn start(mut cmd: Command) -> Result<Self, IperfServerError> {
        let mut server = cmd
            .arg("--forceflush")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => IperfServerError::Missing,
                _ => IperfServerError::Failed(e.to_string()),
            })?;
        let stdout = server.stdout.take();
        let child = Reaped(server);
        let stdout = stdout.ok_or(IperfServerError::Failed("no stdout".into()))?;
        let (tx, rx) = mpsc::channel();
        // Reads (and so drains) the server's output for as long as it runs.
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
            .map_err(|_| IperfServerError::Failed("did not start listening within 10 s".into()))?;
        Ok(IperfServer { child })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// Which way an iperf3 transfer moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IperfDirection {
    /// Client (here) to server (beside the broker): the seed study's direction.
    ToBroker,
    /// Server to client (`iperf3 -R`).
    FromBroker,
}

/// One iperf3 TCP transfer of [`IPERF_SECONDS`] between here and the server at
/// `addr:port`; killed if it takes [`IPERF_SLACK`] longer than that.
pub fn iperf_client(
    addr: IpAddr,
    port: u16,
    direction: IperfDirection,
) -> Result<IperfFigures, String> {
    let mut cmd = Command::new("iperf3");
    cmd.args(["-c", &addr.to_string(), "-p", &port.to_string(), "-J", "-t"])
        .arg(IPERF_SECONDS.to_string());
    if direction == IperfDirection::FromBroker {
        cmd.arg("-R");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "iperf3 missing on this machine".to_string(),
            _ => format!("iperf3 client: {e}"),
        })?;
    let stdout = child.stdout.take();
    let child = Reaped(child);
    let mut stdout = stdout.ok_or("iperf3 client: no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let limit = Duration::from_secs(IPERF_SECONDS.into()) + IPERF_SLACK;
    let text = rx
        .recv_timeout(limit)
        .map_err(|_| format!("iperf3 client did not finish within {} s", limit.as_secs()))?;
    drop(child);
    parse_iperf_json(&text)
}

/// An iperf3 transfer from here to a one-shot server in the broker's namespace.
pub fn iperf(link: &EmulatedLink) -> Result<IperfFigures, String> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &link.broker_ns, "iperf3", "-s", "-1"])
        .args(["-B", &link.broker_addr.to_string()])
        .args(["-p", &IPERF_PORT.to_string()]);
    let _server = IperfServer::start(cmd).map_err(|e| match e {
        IperfServerError::Missing => {
            "ip: not installed (scripts/install-deps.sh installs iproute2 and iperf3)".to_string()
        }
        IperfServerError::Failed(why) => {
            format!("iperf3 server: {why} (scripts/install-deps.sh installs iperf3)")
        }
    })?;
    iperf_client(
        link.broker_addr.into(),
        IPERF_PORT,
        IperfDirection::ToBroker,
    )
}

/// Nearest-rank percentiles of `samples` (any unit); `None` when there are none.
pub fn percentiles(mut samples: Vec<f64>) -> Option<Percentiles> {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n == 0 {
        return None;
    }
    let at = |q: f64| {
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        samples.get(rank - 1).copied()
    };
    Some(Percentiles {
        samples: n as u64,
        p50: at(0.50)?,
        p90: at(0.90)?,
        p99: at(0.99)?,
        max: samples.last().copied()?,
    })
}

/// Why the MQTT round trips could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// The socket failed or timed out.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    /// The broker sent bytes that are not MQTT.
    #[error("decoding the broker's reply: {0}")]
    Codec(#[from] codec::CodecError),
    /// The broker answered with something else than expected.
    #[error("expected {0}, got {1}")]
    Unexpected(&'static str, String),
    /// The broker closed the connection.
    #[error("the broker closed the connection while {0}")]
    Closed(&'static str),
}

/// A blocking MQTT 5 connection that reads whole packets (the codec does the parsing).
struct PingConnection {
    stream: TcpStream,
    decoder: codec::Decoder,
    buf: BytesMut,
}

impl PingConnection {
    fn send(&mut self, packet: &Packet) -> Result<(), PingError> {
        let mut out = BytesMut::new();
        codec::encode(packet, ProtocolVersion::V5, &mut out)?;
        self.stream
            .write_all(&out)
            .map_err(|e| PingError::Io("sending", e))
    }

    fn recv(&mut self, what: &'static str) -> Result<Packet, PingError> {
        let mut chunk = [0u8; 512];
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf)? {
                return Ok(p);
            }
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| PingError::Io(what, e))?;
            let read = chunk.get(..n).filter(|b| !b.is_empty());
            self.buf
                .extend_from_slice(read.ok_or(PingError::Closed(what))?);
        }
    }
}

/// `n` MQTT PINGREQ -> PINGRESP round trips (ms) on one plaintext MQTT 5
/// connection to the broker at `addr`, one in flight, after one unrecorded
/// warm-up ping; then DISCONNECT. Each round trip is the network's plus the
/// broker's handling of a PINGREQ, the smallest exchange MQTT has.
pub fn mqtt_ping_rtt_ms(addr: SocketAddr, n: usize) -> Result<Percentiles, PingError> {
    let timeout = Duration::from_secs(5);
    let stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| PingError::Io("connecting", e))?;
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(timeout)))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| PingError::Io("socket options", e))?;
    let mut c = PingConnection {
        stream,
        decoder: codec::Decoder::with_version(1 << 16, ProtocolVersion::V5),
        buf: BytesMut::new(),
    };
    c.send(&Packet::Connect(Box::new(Connect {
        protocol_version: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: format!("lwa-rtt-probe-{}", std::process::id()),
        will: None,
        username: None,
        password: None,
        properties: codec::Properties::default(),
    })))?;
    match c.recv("waiting for CONNACK")? {
        Packet::ConnAck(a) if a.reason_code == codec::ReasonCode::SUCCESS => {}
        other => return Err(PingError::Unexpected("CONNACK 0x00", format!("{other:?}"))),
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..=n {
        let start = Instant::now();
        c.send(&Packet::PingReq)?;
        match c.recv("waiting for PINGRESP")? {
            Packet::PingResp => {}
            other => return Err(PingError::Unexpected("PINGRESP", format!("{other:?}"))),
        }
        if i > 0 {
            samples.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let _ = c.send(&Packet::Disconnect(codec::Disconnect::new(
        codec::ReasonCode::NORMAL_DISCONNECTION,
    )));
    percentiles(samples).ok_or(PingError::Unexpected("round trips", "none".into()))
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

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = percentiles((1..=50).rev().map(f64::from).collect()).unwrap();
        assert_eq!(
            (p.samples, p.p50, p.p90, p.p99, p.max),
            (50, 25.0, 45.0, 50.0, 50.0)
        );
        let one = percentiles(vec![3.5]).unwrap();
        assert_eq!((one.p50, one.p90, one.max), (3.5, 3.5, 3.5));
        assert!(percentiles(Vec::new()).is_none());
    }

    #[test]
    fn missing_iperf3_server_is_its_own_error() {
        let cmd = Command::new("/nonexistent/iperf3");
        assert!(matches!(
            IperfServer::start(cmd),
            Err(IperfServerError::Missing)
        ));
    }
}
