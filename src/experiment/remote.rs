//! The two-device set-up (the seed study's two Raspberry Pis): device A runs
//! `mqtt-lwa experiment serve --dir DIR`, which writes the credentials into
//! DIR, starts our broker with one listener per mode and a stats port, and
//! records the ports in `DIR/serve.json`; device B, with a copy of DIR, runs
//! `mqtt-lwa experiment --remote HOST --dir DIR` against it.
//!
//! The broker's CPU time and RSS live in device A's `/proc`: `serve` answers
//! each connection to its stats port with one JSON line ([`StatsReply`])
//! read at that moment from the broker child's `/proc/<pid>`, so the runner
//! samples them exactly where it would read a local broker's `/proc`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::broker::{mqtt_lwa_config, BrokerError, BrokerProcess, Credentials, LWA_IDENTITY, USER};
use super::matrix::Mode;
use super::procstat::{cpu_ticks, rss_bytes, Process};
use super::repeat::LoadAvg;
use crate::auth::psk::PskStore;

/// `serve.json`: where a served broker listens, written by `serve` into DIR.
pub const SERVE_FILE: &str = "serve.json";
/// Default first port: plain on 18830, then password, tls13, mtls13, tls12, lwa; stats on +9.
pub const DEFAULT_PORT_BASE: u16 = 18830;
/// Stats port offset from the port base.
const STATS_OFFSET: u16 = 9;
/// How long a stats request may take before the runner gives up.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BrokerError {
    let what = what.into();
    move |e| BrokerError::Io(what, e)
}

/// What `serve` publishes about itself in `serve.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeInfo {
    /// Address the listeners are bound to.
    pub bind: IpAddr,
    /// Names and addresses in the broker certificate (besides 127.0.0.1, ::1, localhost).
    pub names: Vec<String>,
    /// Port of each mode's listener.
    pub listeners: Vec<(Mode, u16)>,
    /// Port of the stats endpoint.
    pub stats_port: u16,
    /// The broker machine: CPU, cores, memory, kernel, OS.
    pub machine: Vec<(String, String)>,
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

/// Asks the stats endpoint at `addr` for the broker's CPU and RSS now.
pub fn query_stats(addr: SocketAddr) -> std::io::Result<StatsReply> {
    let mut s = TcpStream::connect_timeout(&addr, STATS_TIMEOUT)?;
    s.set_read_timeout(Some(STATS_TIMEOUT))?;
    s.write_all(b"stats\n")?;
    let mut line = String::new();
    BufReader::new(s.take(4096)).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
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

/// `mqtt-lwa broker` configuration with one listener per mode on `bind`, ports from
/// `port_base` (0: ephemeral ports for every listener).
pub fn serve_config(c: &Credentials, bind: IpAddr, port_base: u16) -> Result<String, BrokerError> {
    let mut text = String::new();
    for (i, mode) in Mode::ALL.into_iter().enumerate() {
        let one = mqtt_lwa_config(mode, c);
        let Some(at) = one.find("[[listener]]") else {
            return Err(BrokerError::Start(
                "mqtt-lwa",
                "config has no listener".into(),
            ));
        };
        let (head, listener) = one.split_at(at);
        if i == 0 {
            text += head;
        }
        let port = if port_base == 0 {
            0
        } else {
            port_base.saturating_add(i as u16)
        };
        let mut patched = String::new();
        for line in listener.lines() {
            if line.trim_start().starts_with("bind = ") {
                patched += &format!("bind = \"{}\"\n", SocketAddr::new(bind, port));
            } else {
                patched += line;
                patched.push('\n');
            }
        }
        text += &patched;
        text.push('\n');
    }
    // The per-mode template is another module's: check the result says what we meant.
    let parsed: crate::config::BrokerConfig = toml::from_str(&text)
        .map_err(|e| BrokerError::Start("mqtt-lwa", format!("serve config: {e}")))?;
    let ok = parsed.listeners.len() == Mode::ALL.len()
        && parsed
            .listeners
            .iter()
            .zip(Mode::ALL)
            .all(|(l, m)| l.name == m.name() && l.bind.ip() == bind);
    if !ok {
        return Err(BrokerError::Start(
            "mqtt-lwa",
            "serve config does not have one listener per mode on the bind address".into(),
        ));
    }
    Ok(text)
}

/// Options of `mqtt-lwa experiment serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Directory for credentials, broker config and `serve.json`.
    pub dir: PathBuf,
    /// Address to bind every listener to.
    pub bind: IpAddr,
    /// Extra names or addresses for the broker certificate.
    pub names: Vec<String>,
    /// First port (0: ephemeral ports).
    pub port_base: u16,
    /// The `mqtt-lwa` binary to run as the broker.
    pub mqtt_lwa_bin: PathBuf,
}

/// The broker child of `serve`; killed on drop.
struct ServedBroker(Child);

impl Drop for ServedBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Credentials in `dir`: the existing ones (a client may already hold a copy) or new ones.
fn credentials(o: &ServeOptions) -> Result<(Credentials, Vec<String>), BrokerError> {
    let mut names = o.names.clone();
    if !o.bind.is_unspecified() && !names.contains(&o.bind.to_string()) {
        names.push(o.bind.to_string());
    }
    if o.dir.join("ca.crt").exists() {
        let info: Option<ServeInfo> = std::fs::read(o.dir.join(SERVE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let names = info.map(|i| i.names).unwrap_or_default();
        return Ok((load_credentials(&o.dir)?, names));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let creds = Credentials::create_for(&o.dir, &refs)?;
    // The broker warns about (and a copy should keep) secrets readable by others.
    for secret in [&creds.psk_file, &creds.passwd] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(secret, std::fs::Permissions::from_mode(0o600))
            .map_err(io(secret.display().to_string()))?;
    }
    Ok((creds, names))
}

/// Runs `serve` until SIGTERM/SIGINT or until the broker exits; prints
/// `listening on ADDR (MODE)` per mode, `stats on ADDR`, then `ready`.
pub fn serve(o: &ServeOptions) -> Result<(), BrokerError> {
    let (creds, names) = credentials(o)?;
    let conf = o.dir.join("serve-broker.toml");
    std::fs::write(&conf, serve_config(&creds, o.bind, o.port_base)?)
        .map_err(io(conf.display().to_string()))?;
    let mut child = Command::new(&o.mqtt_lwa_bin)
        .args(["broker", "--sys-interval", "0", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io(o.mqtt_lwa_bin.display().to_string()))?;
    let stdout = child.stdout.take();
    let mut broker = ServedBroker(child);
    let Some(stdout) = stdout else {
        return Err(BrokerError::Start("mqtt-lwa", "no stdout".into()));
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("listening on ") {
                let addr: Option<SocketAddr> =
                    rest.split_whitespace().next().and_then(|a| a.parse().ok());
                let _ = tx.send(addr);
            }
        }
    });
    let mut listeners = Vec::new();
    for mode in Mode::ALL {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(addr)) => listeners.push((mode, addr)),
            Ok(None) => {
                return Err(BrokerError::Start(
                    "mqtt-lwa",
                    "unparsable listening line".into(),
                ))
            }
            Err(_) => {
                return Err(BrokerError::Start(
                    "mqtt-lwa",
                    format!("no `listening on` line for {mode} within 20 s"),
                ))
            }
        }
    }
    let stats_port = if o.port_base == 0 {
        0
    } else {
        o.port_base.saturating_add(STATS_OFFSET)
    };
    let stats = TcpListener::bind(SocketAddr::new(o.bind, stats_port)).map_err(io("stats port"))?;
    let stats_addr = stats.local_addr().map_err(io("stats port"))?;
    let pid = broker.0.id();
    std::thread::spawn(move || serve_stats(stats, pid));

    let info = ServeInfo {
        bind: o.bind,
        names,
        listeners: listeners.iter().map(|(m, a)| (*m, a.port())).collect(),
        stats_port: stats_addr.port(),
        machine: super::run::machine(),
    };
    let json = serde_json::to_string_pretty(&info)
        .map_err(|e| BrokerError::Io(SERVE_FILE.into(), std::io::Error::other(e)))?;
    std::fs::write(o.dir.join(SERVE_FILE), json).map_err(io(SERVE_FILE))?;
    let mut out = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock<'_>| -> std::io::Result<()> {
        for (mode, addr) in &listeners {
            writeln!(out, "listening on {addr} ({mode})")?;
        }
        writeln!(out, "stats on {stats_addr} (broker pid {pid})")?;
        writeln!(
            out,
            "ready: copy {} to the client machine and run `mqtt-lwa experiment --remote HOST --dir DIR`",
            o.dir.display()
        )?;
        out.flush()
    };
    print(&mut out).map_err(io("stdout"))?;
    drop(out);
    wait_for_end(&mut broker.0)
}

/// Blocks until SIGTERM/SIGINT (then the broker is killed on return) or the broker exits.
fn wait_for_end(child: &mut Child) -> Result<(), BrokerError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
        loop {
            tokio::select! {
                _ = term.recv() => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(BrokerError::Start("mqtt-lwa", format!("broker exited: {status}")));
                    }
                }
            }
        }
    })
}

/// Answers every connection with one [`StatsReply`] line for process `pid`.
fn serve_stats(listener: TcpListener, pid: u32) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = conn.set_read_timeout(Some(STATS_TIMEOUT));
        let _ = conn.set_write_timeout(Some(STATS_TIMEOUT));
        // The request line only marks the moment; its content does not matter.
        let mut request = [0u8; 64];
        let _ = conn.read(&mut request);
        let reply = (|| -> std::io::Result<String> {
            let r = StatsReply {
                cpu_ticks: cpu_ticks(Process::Pid(pid))?,
                rss_bytes: rss_bytes(Process::Pid(pid))?,
                load: LoadAvg::now(),
            };
            serde_json::to_string(&r).map_err(std::io::Error::other)
        })();
        let line = match reply {
            Ok(json) => json,
            Err(e) => format!("{{\"error\":{:?}}}", e.to_string()),
        };
        let _ = conn.write_all(format!("{line}\n").as_bytes());
    }
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
            BrokerUnderTest::Remote { stats, .. } => Process::Remote(*stats),
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
        query_stats(remote.stats_addr()).map_err(io(format!(
            "stats port {} of `experiment serve`",
            remote.stats_addr()
        )))?;
        Ok(remote)
    }

    /// The listener for `mode`.
    pub fn addr(&self, mode: Mode) -> Option<SocketAddr> {
        self.info
            .listeners
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, port)| SocketAddr::new(self.ip, *port))
    }

    /// The served broker for `mode`, as a block measures it.
    pub fn broker(&self, mode: Mode) -> Result<BrokerUnderTest, BrokerError> {
        let addr = self.addr(mode).ok_or_else(|| {
            BrokerError::Start("mqtt-lwa", format!("serve.json has no {mode} listener"))
        })?;
        Ok(BrokerUnderTest::Remote {
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

    /// The broker machine's load average now (`None` if the stats port does not answer).
    pub fn load(&self) -> Option<LoadAvg> {
        query_stats(self.stats_addr()).ok()?.load
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

    /// Whether TLS clients connecting by [`Self::ip`] can verify the broker certificate.
    pub fn certificate_names_ip(&self) -> bool {
        self.ip.is_loopback() || self.info.names.iter().any(|n| n == &self.ip.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_config_has_every_mode_on_fixed_ports() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::create(dir.path()).unwrap();
        let text = serve_config(&c, "0.0.0.0".parse().unwrap(), 18830).unwrap();
        let parsed: crate::config::BrokerConfig = toml::from_str(&text).unwrap();
        let ports: Vec<u16> = parsed.listeners.iter().map(|l| l.bind.port()).collect();
        assert_eq!(ports, [18830, 18831, 18832, 18833, 18834, 18835]);
        assert!(serve_config(&c, "127.0.0.1".parse().unwrap(), 0).is_ok());
        let loaded = load_credentials(dir.path()).unwrap();
        assert_eq!(
            *crate::auth::psk::key_to_hex(&loaded.psk),
            *crate::auth::psk::key_to_hex(&c.psk)
        );
    }

    #[test]
    fn stats_endpoint_answers_for_a_process() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve_stats(listener, std::process::id()));
        let r = query_stats(addr).unwrap();
        assert!(r.rss_bytes > 0);
        assert!(r.load.is_some());
    }
}
