//! The runner's side of the two-device set-up (the seed study's two
//! Raspberry Pis): device A runs `mqtt-lwa experiment serve --dir DIR`
//! ([`super::serve`]), device B, with a copy of DIR, runs
//! `mqtt-lwa experiment --remote HOST --dir DIR` against it.
//!
//! The brokers' CPU time and RSS live in device A's `/proc`: each sample is
//! one request to serve's stats port, answered with one JSON line
//! ([`StatsReply`]) read at that moment from the named broker's
//! `/proc/<pid>`, so the runner samples them where it would read a local
//! broker's `/proc`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::broker::{io, BrokerError, BrokerProcess, Credentials, LWA_IDENTITY, USER};
use super::link::LinkProfile;
use super::linkprobe::{self, IperfDirection, LinkResult, MQTT_PINGS};
use super::matrix::{BrokerKind, Mode};
use super::procstat::Process;
use super::repeat::LoadAvg;
use mqtt_lwa::auth::psk::PskStore;

/// `serve.json`: where the served brokers listen, written by `serve` into DIR.
pub const SERVE_FILE: &str = "serve.json";
/// How long a stats request may take before the runner gives up.
pub(super) const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// What `serve` publishes about itself in `serve.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeInfo {
    /// Address the listeners are bound to.
    pub bind: IpAddr,
    /// Names and addresses in the broker certificate (besides 127.0.0.1, ::1, localhost).
    pub names: Vec<String>,
    /// Port of each mode's listener on our broker.
    pub listeners: Vec<(Mode, u16)>,
    /// Port of each mode's listener on mosquitto (empty when it is not served).
    #[serde(default)]
    pub mosquitto_listeners: Vec<(Mode, u16)>,
    /// Port of the stats endpoint.
    pub stats_port: u16,
    /// The broker machine: CPU, cores, memory, kernel, OS.
    pub machine: Vec<(String, String)>,
    /// The broker machine's mqtt-lwa build and mosquitto version.
    #[serde(default)]
    pub versions: Vec<(String, String)>,
    /// The iperf3 server `serve` runs beside the brokers, for the link's capacity.
    #[serde(default)]
    pub iperf3: ServedIperf,
}

/// Whether `serve` runs an iperf3 server (`iperf3 -s` on the bind address), as `serve.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServedIperf {
    /// `serve.json` from an mqtt-lwa whose `serve` ran no iperf3 server.
    #[default]
    NotRecorded,
    /// `iperf3 -s` listens on this port.
    Port(u16),
    /// iperf3 is not installed on the broker host.
    Missing,
    /// iperf3 is installed, but its server did not start (why).
    Failed(String),
}

impl ServedIperf {
    /// The server's port, or why the link's capacity cannot be measured against it.
    pub fn port(&self) -> Result<u16, String> {
        match self {
            ServedIperf::Port(p) => Ok(*p),
            ServedIperf::Missing => Err("iperf3 missing on broker host".into()),
            ServedIperf::Failed(why) => Err(format!(
                "iperf3 server on the broker host did not start: {why}"
            )),
            ServedIperf::NotRecorded => {
                Err("serve.json from an older mqtt-lwa: `serve` ran no iperf3 server there".into())
            }
        }
    }
}

/// One answer of the stats port: the broker process now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    /// User plus system CPU time of the broker, in clock ticks (10 ms).
    pub cpu_ticks: u64,
    /// Broker resident set size, bytes.
    pub rss_bytes: u64,
    /// Load average of the broker machine.
    pub load: Option<LoadAvg>,
}

/// Asks the stats endpoint at `addr` for the CPU and RSS of `broker`'s `mode` process now.
pub fn query_stats(
    addr: SocketAddr,
    broker: BrokerKind,
    mode: Mode,
) -> std::io::Result<StatsReply> {
    let mut s = TcpStream::connect_timeout(&addr, STATS_TIMEOUT)?;
    s.set_read_timeout(Some(STATS_TIMEOUT))?;
    s.write_all(format!("stats {broker} {mode}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(s.take(4096)).read_line(&mut line)?;
    serde_json::from_str(&line)
        .map_err(|_| std::io::Error::other(format!("stats: {}", line.trim())))
}

/// The credentials `serve` wrote into `dir` (the runner's copy of them).
pub fn load_credentials(dir: &Path) -> Result<Credentials, BrokerError> {
    let psk_file = dir.join("psk");
    let store = PskStore::load(&psk_file).map_err(|e| BrokerError::Credentials(e.to_string()))?;
    let psk = store.lookup(LWA_IDENTITY).ok_or_else(|| {
        BrokerError::Credentials(format!("{} has no {LWA_IDENTITY}", psk_file.display()))
    })?;
    let c = Credentials {
        dir: dir.to_owned(),
        ca: dir.join("ca.crt"),
        broker_cert: dir.join("broker.crt"),
        broker_key: dir.join("broker.key"),
        client_cert: dir.join(format!("{USER}.crt")),
        client_key: dir.join(format!("{USER}.key")),
        passwd: dir.join("passwd"),
        acl: dir.join("acl"),
        psk_file,
        psk,
    };
    for p in [&c.ca, &c.client_cert, &c.client_key] {
        if !p.exists() {
            return Err(BrokerError::Credentials(format!("{} missing", p.display())));
        }
    }
    Ok(c)
}

/// Where `mqtt-lwa experiment --remote HOST --dir DIR` finds a served broker.
#[derive(Debug, Clone)]
pub struct RemoteSpec {
    /// Host name or address of the broker machine.
    pub host: String,
    /// The copy of `serve`'s directory (credentials and `serve.json`).
    pub dir: PathBuf,
}

/// The broker one (broker, mode) block measures: a child process here, or a served one.
#[derive(Debug)]
pub enum BrokerUnderTest {
    /// Started by the runner on this machine.
    Local(BrokerProcess),
    /// Served by `experiment serve` on another machine.
    Remote {
        /// Which served broker.
        kind: BrokerKind,
        /// Which of its processes (one per mode).
        mode: Mode,
        /// The mode's listener.
        addr: SocketAddr,
        /// The stats endpoint.
        stats: SocketAddr,
    },
}

impl BrokerUnderTest {
    /// The listener the clients connect to.
    pub fn addr(&self) -> SocketAddr {
        match self {
            BrokerUnderTest::Local(b) => b.addr,
            BrokerUnderTest::Remote { addr, .. } => *addr,
        }
    }

    /// Where its CPU time and memory are read.
    pub fn process(&self) -> Process {
        match self {
            BrokerUnderTest::Local(b) => Process::Pid(b.pid()),
            BrokerUnderTest::Remote {
                stats, kind, mode, ..
            } => Process::Remote(*stats, *kind, *mode),
        }
    }
}

/// The runner's view of a served broker on another machine.
#[derive(Debug)]
pub struct RemoteBroker {
    /// Host as given on the command line.
    pub host: String,
    /// The address it resolved to (clients connect and verify TLS by it).
    pub ip: IpAddr,
    /// `serve.json`.
    pub info: ServeInfo,
    /// The copied credentials.
    pub creds: Credentials,
}

impl RemoteBroker {
    /// Reads `dir/serve.json` and the credentials, resolves `host`, checks the stats port answers.
    pub fn open(host: &str, dir: &Path) -> Result<Self, BrokerError> {
        let path = dir.join(SERVE_FILE);
        let bytes = std::fs::read(&path).map_err(io(path.display().to_string()))?;
        let info: ServeInfo = serde_json::from_slice(&bytes)
            .map_err(|e| BrokerError::Credentials(format!("{}: {e}", path.display())))?;
        let creds = load_credentials(dir)?;
        let ip = (host, info.stats_port)
            .to_socket_addrs()
            .map_err(io(format!("resolving {host}")))?
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| BrokerError::Start("mqtt-lwa", format!("{host} has no address")))?;
        let remote = RemoteBroker {
            host: host.to_owned(),
            ip,
            info,
            creds,
        };
        remote.stats().map_err(io(format!(
            "stats port {} of `experiment serve`",
            remote.stats_addr()
        )))?;
        Ok(remote)
    }

    /// The listener of `kind` for `mode`.
    pub fn addr(&self, kind: BrokerKind, mode: Mode) -> Option<SocketAddr> {
        let listeners = match kind {
            BrokerKind::MqttLwa => &self.info.listeners,
            BrokerKind::Mosquitto => &self.info.mosquitto_listeners,
        };
        listeners
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, port)| SocketAddr::new(self.ip, *port))
    }

    /// Whether `serve` runs mosquitto too.
    pub fn serves_mosquitto(&self) -> bool {
        !self.info.mosquitto_listeners.is_empty()
    }

    /// The served broker `kind` for `mode`, as a block measures it.
    pub fn broker(&self, kind: BrokerKind, mode: Mode) -> Result<BrokerUnderTest, BrokerError> {
        let addr = self.addr(kind, mode).ok_or_else(|| {
            BrokerError::Start(kind.name(), format!("serve.json has no {mode} listener"))
        })?;
        Ok(BrokerUnderTest::Remote {
            kind,
            mode,
            addr,
            stats: self.stats_addr(),
        })
    }

    /// One line for the report: host, address, ports, machine.
    pub fn describe(&self) -> String {
        let cpu = self
            .info
            .machine
            .iter()
            .filter(|(k, _)| k == "CPU" || k == "cores available")
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{} ({}), `mqtt-lwa experiment serve`, stats port {}; {cpu}",
            self.host, self.ip, self.info.stats_port
        )
    }

    /// One stats answer (for the first served listener): checks the port, gives the load.
    fn stats(&self) -> std::io::Result<StatsReply> {
        let mode = self.info.listeners.first().map_or(Mode::Plain, |(m, _)| *m);
        query_stats(self.stats_addr(), BrokerKind::MqttLwa, mode)
    }

    /// The broker machine's load average now (`None` if the stats port does not answer).
    pub fn load(&self) -> Option<LoadAvg> {
        self.stats().ok()?.load
    }

    /// The broker machine's core count, as `serve` recorded it.
    pub fn cores(&self) -> Option<usize> {
        self.info
            .machine
            .iter()
            .find(|(k, _)| k == "cores available")
            .and_then(|(_, v)| v.parse().ok())
    }

    /// The stats endpoint.
    pub fn stats_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.info.stats_port)
    }

    /// The link to the broker host: `remote:HOST`.
    pub fn link(&self) -> LinkProfile {
        LinkProfile::remote(&self.host, self.ip)
    }

    /// Measures the network to the broker host before the matrix, as an emulated link is
    /// measured: iperf3 for [`linkprobe::IPERF_SECONDS`] each way against `serve`'s iperf3
    /// server (client to broker, the seed's direction, then `-R`), the median of 10 TCP
    /// connects, and [`MQTT_PINGS`] MQTT PINGREQ/PINGRESP round trips on a plaintext
    /// connection to our plain broker. What cannot be measured becomes a note.
    pub fn probe_link(&self) -> LinkResult {
        let link = self.link();
        let mut r = LinkResult::new(&link, "", self.ip.to_string());
        match self.info.iperf3.port() {
            Ok(port) => {
                match linkprobe::iperf_client(self.ip, port, IperfDirection::ToBroker) {
                    Ok(f) => r.set_iperf(&f),
                    Err(e) => r.notes.push(format!("iperf3 not measured ({e})")),
                }
                match linkprobe::iperf_client(self.ip, port, IperfDirection::FromBroker) {
                    Ok(f) => r.iperf_reverse_mbit_s = Some(f.mbit_s),
                    Err(e) => r
                        .notes
                        .push(format!("iperf3 broker to client not measured ({e})")),
                }
            }
            Err(why) => r.notes.push(format!("iperf3 not measured ({why})")),
        }
        match self.addr(BrokerKind::MqttLwa, Mode::Plain) {
            Some(plain) => {
                r.connect_rtt_ms = linkprobe::connect_rtt_ms(plain, 10);
                r.connect_samples = 10;
                match linkprobe::mqtt_ping_rtt_ms(plain, MQTT_PINGS) {
                    Ok(p) => r.mqtt_ping_rtt_ms = Some(p),
                    Err(e) => r.notes.push(format!("MQTT round trips not measured: {e}")),
                }
            }
            None => r.notes.push(
                "round trips not measured: serve.json has no plain listener for mqtt-lwa".into(),
            ),
        }
        r
    }

    /// Whether TLS clients connecting by [`Self::ip`] can verify the broker certificate.
    pub fn certificate_names_ip(&self) -> bool {
        self.ip.is_loopback() || self.info.names.iter().any(|n| n == &self.ip.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_json_without_iperf3_still_parses_and_says_why() {
        // serve.json as written before `serve` ran iperf3.
        let old = r#"{"bind":"127.0.0.1","names":[],"listeners":[["plain",18830]],
            "stats_port":18839,"machine":[]}"#;
        let info: ServeInfo = serde_json::from_str(old).unwrap();
        assert_eq!(info.iperf3, ServedIperf::NotRecorded);
        assert!(info.iperf3.port().unwrap_err().contains("older mqtt-lwa"));
        let missing = ServedIperf::Missing.port().unwrap_err();
        assert_eq!(missing, "iperf3 missing on broker host");
        assert_eq!(ServedIperf::Port(5201).port(), Ok(5201));
        for v in [
            ServedIperf::Port(18847),
            ServedIperf::Missing,
            ServedIperf::Failed("x".into()),
        ] {
            let back: ServedIperf =
                serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            assert_eq!(back, v);
        }
    }
}
