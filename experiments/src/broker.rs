//! The broker under test as a child process (ours or Debian's mosquitto),
//! configured for one security mode, and the credentials every mode needs.
//!
//! A child process keeps the broker's CPU time and memory apart from the
//! clients' (read from `/proc/<pid>`), and treats both brokers alike.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};

use super::matrix::{BrokerKind, Mode};
use mqtt_lwa::auth::certs::{self, KeyAlgorithm};
use mqtt_lwa::auth::password::{PasswordFile, DEFAULT_ITERATIONS};
use mqtt_lwa::lwa::Psk;

/// Where Debian installs mosquitto.
pub const MOSQUITTO_BIN: &str = "/usr/sbin/mosquitto";
/// User name (password mode) and certificate CN (mutual TLS) of the benchmark clients.
pub const USER: &str = "bench";
/// Password of [`USER`].
pub const PASSWORD: &str = "bench-password-1";
/// LWA identity of the benchmark clients.
pub const LWA_IDENTITY: &str = "bench-lwa";
/// Topic prefix the benchmark uses (the ACL allows exactly this subtree).
pub const TOPIC_PREFIX: &str = "bench";
/// Messages a broker may queue per session: large, so QoS 0 bursts are not dropped by policy.
const MAX_QUEUED: usize = 1_000_000;
/// Payload bytes a broker may queue, per session and in all (mosquitto's default: no limit).
const MAX_QUEUED_BYTES: usize = 1 << 34;

/// Errors setting up or starting a broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// File or process IO.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// Credential generation.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The broker did not come up.
    #[error("{0} did not start: {1}")]
    Start(&'static str, String),
}

/// For `map_err`: an I/O error while doing `what`.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BrokerError {
    let what = what.into();
    move |e| BrokerError::Io(what, e)
}

/// Certificates, password file, ACL and PSK file for every mode, in one directory.
#[derive(Debug)]
pub struct Credentials {
    /// The directory holding them.
    pub dir: PathBuf,
    /// CA certificate (clients verify the broker with it; the broker verifies client certificates).
    pub ca: PathBuf,
    /// Broker certificate and key (ECDSA P-256, SAN 127.0.0.1 and localhost).
    pub broker_cert: PathBuf,
    /// Broker key.
    pub broker_key: PathBuf,
    /// Client certificate for mutual TLS (CN = [`USER`]).
    pub client_cert: PathBuf,
    /// Client key.
    pub client_key: PathBuf,
    /// Mosquitto-format password file with [`USER`] at the broker's default PBKDF2 cost.
    pub passwd: PathBuf,
    /// ACL granting [`USER`] the benchmark topics.
    pub acl: PathBuf,
    /// PSK file with [`LWA_IDENTITY`].
    pub psk_file: PathBuf,
    /// The PSK of [`LWA_IDENTITY`].
    pub psk: Psk,
}

impl Credentials {
    /// Generates everything into `dir` (which must not hold earlier credentials).
    pub fn create(dir: &Path) -> Result<Self, BrokerError> {
        Self::create_for(dir, &[])
    }

    /// As [`Self::create`], with `names` (hosts or addresses) in the broker certificate too.
    pub fn create_for(dir: &Path, names: &[&str]) -> Result<Self, BrokerError> {
        std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
        certs::init(dir, names, KeyAlgorithm::EcdsaP256, &[USER], 30)
            .map_err(|e| BrokerError::Credentials(e.to_string()))?;
        let passwd = dir.join("passwd");
        let mut file = PasswordFile::new();
        file.set_password(USER, PASSWORD.as_bytes(), DEFAULT_ITERATIONS)
            .map_err(|e| BrokerError::Credentials(e.to_string()))?;
        file.save(&passwd)
            .map_err(|e| BrokerError::Credentials(e.to_string()))?;
        let acl = dir.join("acl");
        std::fs::write(
            &acl,
            format!("user {USER}\ntopic readwrite {TOPIC_PREFIX}/#\n"),
        )
        .map_err(io("acl"))?;
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let psk_file = dir.join("psk");
        std::fs::write(&psk_file, format!("{LWA_IDENTITY}:{}\n", hex::encode(key)))
            .map_err(io("psk"))?;
        Ok(Credentials {
            dir: dir.to_owned(),
            ca: dir.join("ca.crt"),
            broker_cert: dir.join("broker.crt"),
            broker_key: dir.join("broker.key"),
            client_cert: dir.join(format!("{USER}.crt")),
            client_key: dir.join(format!("{USER}.key")),
            passwd,
            acl,
            psk_file,
            psk: Psk::new(key),
        })
    }
}

/// Where the broker runs: its network namespace (emulated links) and listening address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerHost {
    /// `ip netns exec` this namespace (`None`: the runner's own).
    pub netns: Option<String>,
    /// Address the listener binds.
    pub ip: IpAddr,
}

impl BrokerHost {
    /// 127.0.0.1 in the runner's namespace.
    pub fn loopback() -> Self {
        BrokerHost {
            netns: None,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// A command running `program` on this host.
    fn command(&self, program: &Path) -> Command {
        match &self.netns {
            None => Command::new(program),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
        }
    }
}

/// `mqtt-lwa broker` configuration for one listener in `mode` on an ephemeral port (`None`
/// for TLS with an external PSK, which our rustls listener lacks).
pub fn mqtt_lwa_config(mode: Mode, c: &Credentials) -> Option<String> {
    mqtt_lwa_config_on(mode, c, BrokerHost::loopback().ip)
}

/// As [`mqtt_lwa_config`], listening on `ip`.
pub fn mqtt_lwa_config_on(mode: Mode, c: &Credentials, ip: IpAddr) -> Option<String> {
    let mut s = format!(
        "[limits]\nmax_queued_messages = {MAX_QUEUED}\nmax_queued_bytes_per_session = {MAX_QUEUED_BYTES}\n\
         max_queued_bytes_total = {MAX_QUEUED_BYTES}\n\n[[listener]]\nname = \"{mode}\"\n\
         bind = \"{}\"\n",
        SocketAddr::new(ip, 0)
    );
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    match mode {
        Mode::Plain => s += "allow_anonymous = true\n",
        Mode::Password => {
            s += &format!(
                "allow_anonymous = false\npassword_file = {}\nacl_file = {}\n",
                path(&c.passwd),
                path(&c.acl)
            );
        }
        Mode::Tls13 | Mode::Tls12 | Mode::Mtls13 | Mode::Tls13Resume | Mode::Tls13Chacha => {
            s += &format!(
                "mode = \"tls\"\nallow_anonymous = true\n[listener.tls]\ncertfile = {}\nkeyfile = {}\n",
                path(&c.broker_cert),
                path(&c.broker_key)
            );
            if mode == Mode::Mtls13 {
                s += &format!(
                    "cafile = {}\nrequire_certificate = true\nuse_identity_as_username = true\n",
                    path(&c.ca)
                );
            }
        }
        // One LWA listener accepts both versions (by Authentication Method).
        Mode::Lwa | Mode::Lwa2 => {
            s += &format!(
                "allow_anonymous = false\nlwa_psk_file = {}\n",
                path(&c.psk_file)
            );
        }
        Mode::Tls13Psk => return None,
    }
    Some(s)
}

/// `mqtt-lwa gateway` configuration: the broker listener of [`mqtt_lwa_config`] for `mode`
/// (the gateway takes the same `[[listener]]` tables), and a `[gateway]` table relaying to
/// `upstream` over plain MQTT 5, anonymous, with the client's own client id.
pub fn gateway_config(mode: Mode, c: &Credentials, upstream: SocketAddr) -> Option<String> {
    let mut s = mqtt_lwa_config(mode, c)?;
    s += &format!(
        "\n[gateway]\nupstream = [\"{upstream}\"]\nprotocol = \"5\"\nclient_id_template = \"{{client_id}}\"\n"
    );
    Some(s)
}

/// mosquitto.conf for one listener in `mode` on 127.0.0.1:`port` (`None` for LWA, which
/// mosquitto lacks).
pub fn mosquitto_config(mode: Mode, c: &Credentials, port: u16) -> Option<String> {
    mosquitto_config_on(mode, c, BrokerHost::loopback().ip, port)
}

/// As [`mosquitto_config`], listening on `ip`:`port`.
///
/// `user root`: started as root, mosquitto would otherwise switch to the
/// `mosquitto` user and fail to read the 0600 key and password files; as
/// any other user the line has no effect. `set_tcp_nodelay true`: our broker
/// and client disable Nagle too; with it on, mosquitto's CONNACK after TLS 1.3
/// session tickets waited for a delayed ACK (47 ms set-ups, measured).
pub fn mosquitto_config_on(mode: Mode, c: &Credentials, ip: IpAddr, port: u16) -> Option<String> {
    let mut s = format!(
        "user root\nper_listener_settings false\npersistence false\nlog_dest stderr\nlog_type error\n\
         set_tcp_nodelay true\nmax_queued_messages {MAX_QUEUED}\nmax_inflight_messages 100\nlistener {port} {ip}\n"
    );
    match mode {
        Mode::Plain => s += "allow_anonymous true\n",
        Mode::Password => {
            s += &format!(
                "allow_anonymous false\npassword_file {}\nacl_file {}\n",
                c.passwd.display(),
                c.acl.display()
            );
        }
        Mode::Tls13 | Mode::Tls12 | Mode::Mtls13 | Mode::Tls13Resume | Mode::Tls13Chacha => {
            s += &format!(
                "allow_anonymous true\ncertfile {}\nkeyfile {}\n",
                c.broker_cert.display(),
                c.broker_key.display()
            );
            if mode == Mode::Mtls13 {
                s += &format!(
                    "cafile {}\nrequire_certificate true\nuse_identity_as_username true\n",
                    c.ca.display()
                );
            }
        }
        // The LWA PSK file has Mosquitto's psk_file format (`identity:hex key`); the
        // identity becomes the MQTT username, as a client certificate's CN does.
        Mode::Tls13Psk => {
            s += &format!(
                "allow_anonymous false\npsk_hint mqtt-lwa\npsk_file {}\nuse_identity_as_username true\n",
                c.psk_file.display()
            );
        }
        Mode::Lwa | Mode::Lwa2 => return None,
    }
    Some(s)
}

/// A running broker child; killed on drop.
#[derive(Debug)]
pub struct BrokerProcess {
    /// Which broker.
    pub kind: BrokerKind,
    /// Its mode's listener.
    pub addr: SocketAddr,
    child: Child,
}

/// Process ids of the brokers this process started and has not stopped yet.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills every broker still running (an interrupted run exits without dropping its
/// [`BrokerProcess`]es); returns how many it signalled.
pub fn kill_live_brokers() -> usize {
    let pids = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|p| p.into_inner()));
    pids.iter()
        .filter_map(|&pid| rustix::process::Pid::from_raw(i32::try_from(pid).ok()?))
        .filter(|&pid| rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok())
        .count()
}

impl BrokerProcess {
    /// Wraps a started broker, so that [`kill_live_brokers`] finds it until it is dropped.
    fn tracked(kind: BrokerKind, addr: SocketAddr, child: Child) -> Self {
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(child.id());
        BrokerProcess { kind, addr, child }
    }

    /// Starts `mqtt_lwa_bin broker -c` with a config for `mode`; waits for its `listening on` line.
    pub fn start_mqtt_lwa(
        mqtt_lwa_bin: &Path,
        mode: Mode,
        creds: &Credentials,
    ) -> Result<Self, BrokerError> {
        Self::start_mqtt_lwa_on(mqtt_lwa_bin, mode, creds, &BrokerHost::loopback())
    }

    /// As [`BrokerProcess::start_mqtt_lwa`], on `host` (a namespace and address).
    pub fn start_mqtt_lwa_on(
        mqtt_lwa_bin: &Path,
        mode: Mode,
        creds: &Credentials,
        host: &BrokerHost,
    ) -> Result<Self, BrokerError> {
        let conf = creds.dir.join(format!("mqtt-lwa-{mode}.toml"));
        let text = mqtt_lwa_config_on(mode, creds, host.ip).ok_or_else(|| {
            BrokerError::Start("mqtt-lwa", format!("{mode} is not offered by this broker"))
        })?;
        std::fs::write(&conf, text).map_err(io("broker config"))?;
        Self::spawn_mqtt_lwa(mqtt_lwa_bin, "broker", &conf, host)
    }

    /// Starts `mqtt_lwa_bin gateway -c` in `mode` on loopback, relaying every client to the
    /// plain anonymous MQTT 5 broker at `upstream`; waits for its first `listening on` line.
    /// `name` keeps the config files of several gateways apart.
    pub fn start_gateway(
        mqtt_lwa_bin: &Path,
        mode: Mode,
        creds: &Credentials,
        upstream: SocketAddr,
        name: &str,
    ) -> Result<Self, BrokerError> {
        let conf = creds.dir.join(format!("gateway-{name}-{mode}.toml"));
        let text = gateway_config(mode, creds, upstream).ok_or_else(|| {
            BrokerError::Start("mqtt-lwa", format!("{mode} is not offered by the gateway"))
        })?;
        std::fs::write(&conf, text).map_err(io("gateway config"))?;
        Self::spawn_mqtt_lwa(mqtt_lwa_bin, "gateway", &conf, &BrokerHost::loopback())
    }

    /// Runs `mqtt_lwa_bin SUBCOMMAND -c conf` on `host` and waits for its `listening on` line.
    fn spawn_mqtt_lwa(
        mqtt_lwa_bin: &Path,
        subcommand: &str,
        conf: &Path,
        host: &BrokerHost,
    ) -> Result<Self, BrokerError> {
        let mut child = host
            .command(mqtt_lwa_bin)
            .arg(subcommand)
            .arg("-c")
            .arg(conf)
            .envs(quiet_broker_log())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io(mqtt_lwa_bin.display().to_string()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(BrokerError::Start("mqtt-lwa", "no stdout".into()));
        };
        // The first `listening on ADDR (mode)` line, read on a thread so a silent broker times out.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                    let _ = tx.send(addr);
                }
            }
        });
        let mut started = BrokerProcess::tracked(
            BrokerKind::MqttLwa,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
        );
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(addr)) => {
                started.addr = addr;
                Ok(started)
            }
            Ok(None) => Err(BrokerError::Start(
                "mqtt-lwa",
                "unparsable listening line".into(),
            )),
            Err(_) => Err(BrokerError::Start(
                "mqtt-lwa",
                format!(
                    "no `listening on` line within 20 s ({subcommand} -c {})",
                    conf.display()
                ),
            )),
        }
    }

    /// Starts Debian's mosquitto for `mode` on a free port; waits until it accepts connections.
    pub fn start_mosquitto(mode: Mode, creds: &Credentials) -> Result<Self, BrokerError> {
        Self::start_mosquitto_on(mode, creds, &BrokerHost::loopback())
    }

    /// As [`BrokerProcess::start_mosquitto`], on `host`.
    pub fn start_mosquitto_on(
        mode: Mode,
        creds: &Credentials,
        host: &BrokerHost,
    ) -> Result<Self, BrokerError> {
        Self::start_mosquitto_bin(Path::new(MOSQUITTO_BIN), mode, creds, host)
    }

    /// As [`BrokerProcess::start_mosquitto`], with `bin` run in place of Debian's
    /// mosquitto (a wrapper that `exec`s it under a profiler, say; it gets `-c CONF`).
    pub fn start_mosquitto_with(
        bin: &Path,
        mode: Mode,
        creds: &Credentials,
    ) -> Result<Self, BrokerError> {
        Self::start_mosquitto_bin(bin, mode, creds, &BrokerHost::loopback())
    }

    fn start_mosquitto_bin(
        bin: &Path,
        mode: Mode,
        creds: &Credentials,
        host: &BrokerHost,
    ) -> Result<Self, BrokerError> {
        // In a fresh namespace every port is free; on loopback ask the kernel.
        let port = free_port().map_err(io("free port"))?;
        let Some(text) = mosquitto_config_on(mode, creds, host.ip, port) else {
            return Err(BrokerError::Start(
                "mosquitto",
                "mosquitto has no LWA".into(),
            ));
        };
        let conf = creds.dir.join(format!("mosquitto-{mode}.conf"));
        std::fs::write(&conf, text).map_err(io("mosquitto config"))?;
        let child = spawn_mosquitto(host.command(bin), &conf)?;
        // Tracked before the wait, so that an interrupted run kills it too.
        let mut started =
            BrokerProcess::tracked(BrokerKind::Mosquitto, SocketAddr::new(host.ip, port), child);
        wait_until_accepting(&mut started.child, started.addr)?;
        Ok(started)
    }

    /// The child's process id (for `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let pid = self.child.id();
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|&p| p != pid);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts mosquitto (`command`: its binary, perhaps inside a namespace) with config `conf`.
pub(crate) fn spawn_mosquitto(mut command: Command, conf: &Path) -> Result<Child, BrokerError> {
    command
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io(MOSQUITTO_BIN))
}

/// Waits up to 10 s until the mosquitto `child` accepts connections on `addr`
/// (it cannot report the port it listens on, so the port is probed).
pub(crate) fn wait_until_accepting(child: &mut Child, addr: SocketAddr) -> Result<(), BrokerError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(BrokerError::Start("mosquitto", format!("exited: {status}")));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::Start(
        "mosquitto",
        format!("{addr} never opened"),
    ))
}

/// A loopback port nobody listens on right now (mosquitto cannot report an ephemeral port).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `mosquitto -h`'s first line, if mosquitto is installed.
pub fn mosquitto_version() -> Option<String> {
    let out = Command::new(MOSQUITTO_BIN).arg("-h").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().next().map(|l| l.trim().to_owned())
}

/// `RUST_LOG=warn` for the brokers the experiment starts, unless the caller set RUST_LOG:
/// nothing is logged per connection in any mode while measuring, so no mode pays for log
/// lines the others do not write.
pub(crate) fn quiet_broker_log() -> Option<(&'static str, &'static str)> {
    std::env::var_os("RUST_LOG")
        .is_none()
        .then_some(("RUST_LOG", "warn"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_name_every_file_they_need() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::create(dir.path()).unwrap();
        for p in [
            &c.ca,
            &c.broker_cert,
            &c.broker_key,
            &c.client_cert,
            &c.client_key,
            &c.passwd,
            &c.acl,
            &c.psk_file,
        ] {
            assert!(p.exists(), "{}", p.display());
        }
        for mode in Mode::ALL {
            assert_eq!(
                mosquitto_config(mode, &c, 1).is_some(),
                BrokerKind::Mosquitto.supports(mode)
            );
            let Some(text) = mqtt_lwa_config(mode, &c) else {
                assert!(!BrokerKind::MqttLwa.supports(mode), "{mode}");
                continue;
            };
            let parsed: mqtt_lwa::config::BrokerConfig = toml::from_str(&text).unwrap();
            assert_eq!(parsed.listeners.len(), 1, "{mode}");
        }
        assert!(mqtt_lwa_config(Mode::Mtls13, &c)
            .unwrap()
            .contains("require_certificate = true"));
        let upstream: SocketAddr = "127.0.0.1:1883".parse().unwrap();
        for mode in [
            Mode::Plain,
            Mode::Password,
            Mode::Tls13,
            Mode::Lwa,
            Mode::Lwa2,
        ] {
            let text = gateway_config(mode, &c, upstream).unwrap();
            let parsed: mqtt_lwa::config::BrokerConfig = toml::from_str(&text).unwrap();
            let gw = parsed.gateway.expect("a [gateway] table");
            assert_eq!(gw.upstream, vec!["127.0.0.1:1883".to_string()], "{mode}");
            assert!(gw.problems().is_empty(), "{mode}: {:?}", gw.problems());
        }
        let far: IpAddr = "10.213.7.6".parse().unwrap();
        assert!(mqtt_lwa_config_on(Mode::Plain, &c, far)
            .unwrap()
            .contains("bind = \"10.213.7.6:0\""));
        assert!(mosquitto_config_on(Mode::Plain, &c, far, 1883)
            .unwrap()
            .contains("listener 1883 10.213.7.6\n"));
    }
}
