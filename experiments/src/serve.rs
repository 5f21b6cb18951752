//! `mqtt-lwa experiment serve`: the broker side of the two-device set-up.
//! Writes the credentials into DIR, runs one broker process per (broker,
//! mode) as the local runner does (ours for every mode; mosquitto, where
//! installed, for every mode it supports), so no mode's sessions, client ids
//! or CPU time mix with another's, and a stats port that answers each
//! connection with one [`StatsReply`] line read at that moment from the named
//! broker's `/proc/<pid>`; the ports go into `DIR/serve.json` for the runner
//! ([`super::remote`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::broker::{
    io, mosquitto_config, mqtt_lwa_config, spawn_mosquitto, wait_until_accepting, BrokerError,
    Credentials, MOSQUITTO_BIN,
};
use super::linkprobe::{IperfServer, IperfServerError};
use super::matrix::{BrokerKind, Mode};
use super::procstat::{cpu_ticks, rss_bytes, Process};
use super::remote::{
    load_credentials, ServeInfo, ServedIperf, StatsReply, SERVE_FILE, STATS_TIMEOUT,
};
use super::repeat::LoadAvg;

/// Default first port: our broker's plain on 18830, then password, tls13, mtls13, tls12,
/// tls13-resume, tls13-chacha, lwa, lwa2 (9 ports); the stats port at +9; Mosquitto's 8 modes
/// (tls13-psk instead of lwa) at +10 to +17; iperf3 at +18.
pub const DEFAULT_PORT_BASE: u16 = 18830;
/// Stats port offset from the port base.
const STATS_OFFSET: u16 = 9;
/// Mosquitto's first port offset from the port base (its modes in [`Mode::ALL`] order).
const MOSQUITTO_OFFSET: u16 = 10;
/// The iperf3 server's port offset from the port base.
const IPERF_OFFSET: u16 = 18;

/// The port at `offset` from `base`; 0 (ephemeral) when `base` is 0.
fn port_at(base: u16, offset: u16) -> u16 {
    if base == 0 {
        0
    } else {
        base.saturating_add(offset)
    }
}

/// `mqtt-lwa broker` configuration for `mode` with its listener on `addr`.
pub fn serve_config(c: &Credentials, mode: Mode, addr: SocketAddr) -> Result<String, BrokerError> {
    let mut text = String::new();
    let one = mqtt_lwa_config(mode, c).ok_or_else(|| {
        BrokerError::Start("mqtt-lwa", format!("{mode} is not offered by this broker"))
    })?;
    for line in one.lines() {
        if line.trim_start().starts_with("bind = ") {
            text += &format!("bind = \"{addr}\"\n");
        } else {
            text += line;
            text.push('\n');
        }
    }
    // The per-mode template is another module's: check the result says what we meant.
    let parsed: mqtt_lwa::config::BrokerConfig = toml::from_str(&text)
        .map_err(|e| BrokerError::Start("mqtt-lwa", format!("serve config: {e}")))?;
    match parsed.listeners.as_slice() {
        [l] if l.bind == addr => Ok(text),
        _ => Err(BrokerError::Start(
            "mqtt-lwa",
            format!("serve config for {mode} does not have one listener on {addr}"),
        )),
    }
}

/// mosquitto.conf for `mode` with its listener on `bind:port`.
pub fn mosquitto_serve_config(
    c: &Credentials,
    mode: Mode,
    bind: IpAddr,
    port: u16,
) -> Result<String, BrokerError> {
    let bad = |why: &str| BrokerError::Start("mosquitto", format!("serve config: {why}"));
    let one = mosquitto_config(mode, c, port).ok_or_else(|| bad("mode not supported"))?;
    let mut text = String::new();
    for line in one.lines() {
        if line.starts_with("listener ") {
            text += &format!("listener {port} {bind}\n");
        } else {
            text += line;
            text.push('\n');
        }
    }
    if text.lines().filter(|l| l.starts_with("listener ")).count() != 1 {
        return Err(bad("unexpected template"));
    }
    Ok(text)
}

/// Options of `mqtt-lwa experiment serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Directory for credentials, broker configs and `serve.json`.
    pub dir: PathBuf,
    /// Address to bind every listener to.
    pub bind: IpAddr,
    /// Extra names or addresses for the broker certificate.
    pub names: Vec<String>,
    /// First port (0: ephemeral ports).
    pub port_base: u16,
    /// Serve mosquitto too, where it is installed.
    pub mosquitto: bool,
    /// The `mqtt-lwa` binary to run as the broker.
    pub mqtt_lwa_bin: PathBuf,
    /// The iperf3 program for the link-capacity server (`iperf3`: found on PATH).
    pub iperf3_bin: PathBuf,
}

/// A broker child of `serve`; killed on drop.
struct ServedBroker {
    kind: BrokerKind,
    mode: Mode,
    child: Child,
}

impl Drop for ServedBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Starts our broker for `mode` on `bind:port`; returns it with its listener.
fn start_mqtt_lwa(
    o: &ServeOptions,
    creds: &Credentials,
    mode: Mode,
    port: u16,
) -> Result<(ServedBroker, SocketAddr), BrokerError> {
    let conf = o.dir.join(format!("serve-mqtt-lwa-{mode}.toml"));
    std::fs::write(
        &conf,
        serve_config(creds, mode, SocketAddr::new(o.bind, port))?,
    )
    .map_err(io(conf.display().to_string()))?;
    let mut child = Command::new(&o.mqtt_lwa_bin)
        .args(["broker", "--sys-interval", "0", "-c"])
        .arg(&conf)
        .envs(super::broker::quiet_broker_log())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io(o.mqtt_lwa_bin.display().to_string()))?;
    let stdout = child.stdout.take();
    let broker = ServedBroker {
        kind: BrokerKind::MqttLwa,
        mode,
        child,
    };
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
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(addr)) => Ok((broker, addr)),
        Ok(None) => Err(BrokerError::Start(
            "mqtt-lwa",
            "unparsable listening line".into(),
        )),
        Err(_) => Err(BrokerError::Start(
            "mqtt-lwa",
            format!("no `listening on` line for {mode} within 20 s"),
        )),
    }
}

/// A port on `bind` nobody listens on right now (mosquitto cannot report an ephemeral port).
fn free_port(bind: IpAddr) -> Result<u16, BrokerError> {
    let l = TcpListener::bind(SocketAddr::new(bind, 0)).map_err(io("free port"))?;
    Ok(l.local_addr().map_err(io("free port"))?.port())
}

/// Starts mosquitto for `mode` on `bind:port` (0: a free port); waits until it accepts.
fn start_mosquitto(
    o: &ServeOptions,
    creds: &Credentials,
    mode: Mode,
    port: u16,
) -> Result<(ServedBroker, SocketAddr), BrokerError> {
    let port = match port {
        0 => free_port(o.bind)?,
        p => p,
    };
    let conf = o.dir.join(format!("serve-mosquitto-{mode}.conf"));
    std::fs::write(&conf, mosquitto_serve_config(creds, mode, o.bind, port)?)
        .map_err(io(conf.display().to_string()))?;
    let child = spawn_mosquitto(Command::new(MOSQUITTO_BIN), &conf)?;
    let mut broker = ServedBroker {
        kind: BrokerKind::Mosquitto,
        mode,
        child,
    };
    let reach = if o.bind.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        o.bind
    };
    wait_until_accepting(&mut broker.child, SocketAddr::new(reach, port))?;
    Ok((broker, SocketAddr::new(o.bind, port)))
}

/// Starts `iperf3 -s` on `bind:port` (0: a free port), or says why there is none.
fn start_iperf3(o: &ServeOptions, port: u16) -> (Option<IperfServer>, ServedIperf) {
    let port = match port {
        0 => match free_port(o.bind) {
            Ok(p) => p,
            Err(e) => return (None, ServedIperf::Failed(e.to_string())),
        },
        p => p,
    };
    let mut cmd = Command::new(&o.iperf3_bin);
    cmd.args(["-s", "-B", &o.bind.to_string(), "-p", &port.to_string()]);
    match IperfServer::start(cmd) {
        Ok(server) => (Some(server), ServedIperf::Port(port)),
        Err(IperfServerError::Missing) => (None, ServedIperf::Missing),
        Err(IperfServerError::Failed(why)) => (None, ServedIperf::Failed(why)),
    }
}

/// Runs `serve` until SIGTERM/SIGINT or until a broker exits; prints
/// `listening on ADDR (MODE)` per listener, `stats on ADDR`, `iperf3 on ADDR`
/// (or why not), then `ready`.
pub fn serve(o: &ServeOptions) -> Result<(), BrokerError> {
    // The signal handlers go in before the first broker starts: a SIGTERM or
    // Ctrl-C during start-up would otherwise end `serve` at once and leave the
    // brokers it had started running. Caught then, it ends `serve` as soon as
    // start-up is done, and the brokers are stopped with it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        let _guard = runtime.enter();
        let term = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
        let int = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
        (term, int)
    };
    let (creds, names) = credentials(o)?;
    let mut brokers = Vec::new();
    let mut listeners = Vec::new();
    let ours = Mode::ALL
        .into_iter()
        .filter(|m| BrokerKind::MqttLwa.supports(*m));
    for (i, mode) in ours.enumerate() {
        let (b, addr) = start_mqtt_lwa(o, &creds, mode, port_at(o.port_base, i as u16))?;
        brokers.push(b);
        listeners.push((mode, addr));
    }
    let mut mosquitto_listeners = Vec::new();
    let mut out = std::io::stdout().lock();
    if o.mosquitto && Path::new(MOSQUITTO_BIN).exists() {
        let modes = Mode::ALL
            .into_iter()
            .filter(|m| BrokerKind::Mosquitto.supports(*m));
        for (i, mode) in modes.enumerate() {
            let port = port_at(o.port_base, MOSQUITTO_OFFSET + i as u16);
            let (b, addr) = start_mosquitto(o, &creds, mode, port)?;
            brokers.push(b);
            mosquitto_listeners.push((mode, addr));
        }
    } else if o.mosquitto {
        writeln!(
            out,
            "mosquitto not served: {MOSQUITTO_BIN} is not installed"
        )
        .map_err(io("stdout"))?;
    }
    let stats = TcpListener::bind(SocketAddr::new(o.bind, port_at(o.port_base, STATS_OFFSET)))
        .map_err(io("stats port"))?;
    let stats_addr = stats.local_addr().map_err(io("stats port"))?;
    let pids: Vec<ServedPid> = brokers
        .iter()
        .map(|b| (b.kind, b.mode, b.child.id()))
        .collect();
    let served = pids.clone();
    std::thread::spawn(move || serve_stats(stats, served));
    // Stopped when `serve` returns, with the brokers.
    let (iperf3_server, iperf3) = start_iperf3(o, port_at(o.port_base, IPERF_OFFSET));

    let info = ServeInfo {
        bind: o.bind,
        names,
        listeners: listeners.iter().map(|(m, a)| (*m, a.port())).collect(),
        mosquitto_listeners: mosquitto_listeners
            .iter()
            .map(|(m, a)| (*m, a.port()))
            .collect(),
        stats_port: stats_addr.port(),
        machine: super::run::machine(),
        versions: super::run::serve_versions(!mosquitto_listeners.is_empty()),
        iperf3: iperf3.clone(),
    };
    let json = serde_json::to_string_pretty(&info)
        .map_err(|e| BrokerError::Io(SERVE_FILE.into(), std::io::Error::other(e)))?;
    std::fs::write(o.dir.join(SERVE_FILE), json).map_err(io(SERVE_FILE))?;
    let print = |out: &mut std::io::StdoutLock<'_>| -> std::io::Result<()> {
        for (mode, addr) in &listeners {
            writeln!(out, "listening on {addr} ({mode})")?;
        }
        for (mode, addr) in &mosquitto_listeners {
            writeln!(out, "listening on {addr} (mosquitto {mode})")?;
        }
        let pids: Vec<String> = pids
            .iter()
            .map(|(k, m, p)| format!("{k} {m} pid {p}"))
            .collect();
        writeln!(out, "stats on {stats_addr} ({})", pids.join(", "))?;
        match (&iperf3, &iperf3_server) {
            (ServedIperf::Port(port), Some(server)) => writeln!(
                out,
                "iperf3 on {} (pid {})",
                SocketAddr::new(o.bind, *port),
                server.pid()
            )?,
            (other, _) => writeln!(
                out,
                "iperf3 not served: {}; the run will not measure the link's capacity",
                other.port().err().unwrap_or_default()
            )?,
        }
        writeln!(
            out,
            "ready: copy {} to the client machine and run `mqtt-lwa experiment --remote HOST --dir DIR`",
            o.dir.display()
        )?;
        out.flush()
    };
    print(&mut out).map_err(io("stdout"))?;
    drop(out);
    let end = wait_for_end(&runtime, signals, &mut brokers);
    drop(iperf3_server);
    end
}

/// Blocks until SIGTERM/SIGINT (the brokers are killed when dropped) or a broker exits.
fn wait_for_end(
    runtime: &tokio::runtime::Runtime,
    (mut term, mut int): (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
    brokers: &mut [ServedBroker],
) -> Result<(), BrokerError> {
    runtime.block_on(async {
        loop {
            tokio::select! {
                _ = term.recv() => return Ok(()),
                _ = int.recv() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    for b in brokers.iter_mut() {
                        if let Ok(Some(status)) = b.child.try_wait() {
                            return Err(BrokerError::Start(
                                b.kind.name(),
                                format!("broker exited: {status}"),
                            ));
                        }
                    }
                }
            }
        }
    })
}

/// A served broker process: which broker, which mode, its pid.
type ServedPid = (BrokerKind, Mode, u32);

/// Answers every connection with one [`StatsReply`] line for the broker process its
/// request line names (`stats BROKER MODE`).
fn serve_stats(listener: TcpListener, pids: Vec<ServedPid>) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = conn.set_read_timeout(Some(STATS_TIMEOUT));
        let _ = conn.set_write_timeout(Some(STATS_TIMEOUT));
        let mut request = [0u8; 64];
        let n = conn.read(&mut request).unwrap_or(0);
        let asked = String::from_utf8_lossy(request.get(..n).unwrap_or_default()).into_owned();
        let mut words = asked.split_ascii_whitespace().skip(1);
        let (kind, mode) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let reply = (|| -> std::io::Result<String> {
            let pid = pids
                .iter()
                .find(|(k, m, _)| k.name() == kind && m.name() == mode)
                .map(|(_, _, p)| *p)
                .ok_or_else(|| std::io::Error::other(format!("{kind} {mode} is not served")))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::query_stats;

    #[test]
    fn configs_put_each_mode_on_its_port() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::create(dir.path()).unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let ours = Mode::ALL
            .into_iter()
            .filter(|m| BrokerKind::MqttLwa.supports(*m));
        for (i, mode) in ours.enumerate() {
            let addr = SocketAddr::new(any, 18830 + i as u16);
            let text = serve_config(&c, mode, addr).unwrap();
            let parsed: mqtt_lwa::config::BrokerConfig = toml::from_str(&text).unwrap();
            assert_eq!(parsed.listeners[0].bind, addr);
            assert_eq!(parsed.listeners[0].name, mode.name());
        }
        let m = mosquitto_serve_config(&c, Mode::Mtls13, any, 18843).unwrap();
        assert!(m.contains("listener 18843 0.0.0.0\n") && m.contains("require_certificate true"));
        assert!(mosquitto_serve_config(&c, Mode::Lwa, any, 1).is_err());
        // The port blocks do not overlap: ours, stats, mosquitto's, iperf3.
        let count = |k: BrokerKind| Mode::ALL.iter().filter(|m| k.supports(**m)).count() as u16;
        assert!(count(BrokerKind::MqttLwa) <= STATS_OFFSET);
        const { assert!(STATS_OFFSET < MOSQUITTO_OFFSET) };
        assert!(MOSQUITTO_OFFSET + count(BrokerKind::Mosquitto) <= IPERF_OFFSET);
        let psk = mosquitto_serve_config(&c, Mode::Tls13Psk, any, 18847).unwrap();
        assert!(psk.contains("psk_file ") && psk.contains("use_identity_as_username true"));
        assert!(serve_config(&c, Mode::Tls13Psk, SocketAddr::new(any, 1)).is_err());
        let loaded = load_credentials(dir.path()).unwrap();
        assert_eq!(
            *mqtt_lwa::auth::psk::key_to_hex(&loaded.psk),
            *mqtt_lwa::auth::psk::key_to_hex(&c.psk)
        );
    }

    #[test]
    fn stats_endpoint_answers_for_the_named_broker() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let me = std::process::id();
        let served = vec![(BrokerKind::MqttLwa, Mode::Lwa, me)];
        std::thread::spawn(move || serve_stats(listener, served));
        let r = query_stats(addr, BrokerKind::MqttLwa, Mode::Lwa).unwrap();
        assert!(r.rss_bytes > 0);
        assert!(r.load.is_some());
        // Not served: an error line, which the runner reports instead of a number.
        assert!(query_stats(addr, BrokerKind::Mosquitto, Mode::Lwa).is_err());
        assert!(query_stats(addr, BrokerKind::MqttLwa, Mode::Plain).is_err());
    }
}
