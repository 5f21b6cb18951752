//! Shared helpers for behaviour tests: start `mqtt-lwa broker` on a free
//! loopback port, speak raw MQTT over TCP, drive peer tools and wait for
//! conditions instead of sleeping.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_lwa::codec::{
    encode, Connect, Decoder, Packet, Properties, ProtocolVersion, Publish, QoS, Subscribe,
    SubscribeFilter, SubscriptionOptions,
};

/// The `mqtt-lwa` binary under test: Cargo's own for the broker's tests; for the
/// harness's tests (experiments/tests, which share this module) the one beside
/// `mqtt-lwa-experiment`, where `cargo test` at the top of the workspace builds both.
pub fn mqtt_lwa_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = option_env!("CARGO_BIN_EXE_mqtt-lwa") {
            return bin.to_string();
        }
        let Some(harness) = option_env!("CARGO_BIN_EXE_mqtt-lwa-experiment") else {
            panic!("tests/common serves the tests of mqtt-lwa and of mqtt-lwa-experiments only");
        };
        let bin = std::path::Path::new(harness).with_file_name("mqtt-lwa");
        assert!(
            bin.is_file(),
            "{} is missing: run the tests from the top of the workspace (`cargo test`), \
             which builds mqtt-lwa beside mqtt-lwa-experiment",
            bin.display()
        );
        bin.to_string_lossy().into_owned()
    })
}

/// How long any single expected event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A `mqtt-lwa broker` child process, killed on drop.
pub struct Broker {
    child: Child,
    /// Address of the first listener.
    pub addr: SocketAddr,
    /// Every `listening on` address, in listener order.
    pub addrs: Vec<SocketAddr>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Broker {
    /// `mqtt-lwa broker -p 0` with extra arguments.
    pub fn start(extra: &[&str]) -> Broker {
        Broker::start_listeners(extra, 1)
    }

    /// Starts the broker and waits for `listeners` `listening on` lines.
    pub fn start_listeners(extra: &[&str], listeners: usize) -> Broker {
        let mut args = vec!["-p".to_string(), "0".to_string()];
        args.extend(extra.iter().map(|a| a.to_string()));
        Broker::spawn(&args, listeners)
    }

    /// `mqtt-lwa broker ARGS...`, waiting for `listeners` `listening on` lines.
    pub fn spawn(args: &[String], listeners: usize) -> Broker {
        let mut child = Command::new(mqtt_lwa_bin())
            .arg("broker")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mqtt-lwa broker");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut s);
            s
        });
        let mut lines = BufReader::new(stdout).lines();
        let mut addrs = Vec::new();
        while addrs.len() < listeners {
            let line = match lines.next() {
                Some(Ok(line)) => line,
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "broker exited before listening: {}",
                        stderr.join().unwrap_or_default()
                    );
                }
            };
            let rest = line
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected broker output {line:?}"));
            let addr = rest.split(' ').next().expect("address");
            addrs.push(addr.parse().expect("socket address"));
        }
        // Keep draining stdout so the broker never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Broker {
            child,
            addr: addrs[0],
            addrs,
            stderr: Some(stderr),
        }
    }

    /// The first listener's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash or power loss would end it; returns its stderr.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Resident set size in KiB, from /proc/PID/status.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// True while the broker process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status and stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = wait_exit(&mut self.child, WAIT).expect("broker exits after SIGTERM");
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, err)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child to exit.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cond` until it holds or `within` passes.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process whose stdout lines are collected by a thread.
pub struct LineProcess {
    /// The process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
}

impl LineProcess {
    /// Spawns `program args...` with stdout piped (stderr merged into the lines too).
    pub fn spawn(program: &str, args: &[&str]) -> LineProcess {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {line}"));
            }
        });
        LineProcess {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line matching `pred`; panics with everything seen on timeout.
    pub fn expect_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        match self.wait_line(WAIT, pred) {
            Some(line) => line,
            None => panic!("no line {what:?} within {WAIT:?}; saw {:#?}", self.seen),
        }
    }

    /// Waits up to `within` for a line matching `pred`.
    pub fn wait_line(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let status = wait_exit(&mut self.child, WAIT)
            .unwrap_or_else(|| panic!("process did not exit; saw {:#?}", self.seen));
        // Collect what is left.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        status
    }

    /// Kills the process (SIGKILL: no DISCONNECT, so the will fires).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw MQTT client over a blocking TCP socket, for exact wire checks.
pub struct RawClient {
    /// The socket.
    pub stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
    /// Protocol version used to encode and decode.
    pub version: ProtocolVersion,
}

/// What a read returned.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // test helper; size does not matter
pub enum Read1 {
    /// A packet.
    Packet(Packet),
    /// The peer closed the connection.
    Closed,
    /// Nothing arrived in time.
    Timeout,
}

impl RawClient {
    /// Opens a TCP connection without sending anything.
    pub fn tcp(addr: SocketAddr, version: ProtocolVersion) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).ok();
        RawClient {
            stream,
            decoder: Decoder::with_version(1 << 24, version),
            buf: BytesMut::new(),
            version,
        }
    }

    /// Connects and expects a successful CONNACK.
    pub fn connect(addr: SocketAddr, version: ProtocolVersion, client_id: &str) -> RawClient {
        let mut c = RawClient::tcp(addr, version);
        c.send(&Packet::Connect(Box::new(connect_packet(
            version, client_id, true,
        ))));
        match c.read(WAIT) {
            Read1::Packet(Packet::ConnAck(ack)) if !ack.reason_code.is_error() => c,
            other => panic!("expected CONNACK success, got {other:?}"),
        }
    }

    /// Encodes and writes a packet.
    pub fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        encode(packet, self.version, &mut out).expect("encode");
        self.send_raw(&out);
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        // The broker may already have closed the socket: that is for the read to see.
        let _ = self.stream.write_all(bytes);
    }

    /// Reads one packet, end of stream, or times out.
    pub fn read(&mut self, within: Duration) -> Read1 {
        let deadline = Instant::now() + within;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(p)) => return Read1::Packet(p),
                Ok(None) => {}
                Err(e) => panic!("client could not decode the broker's bytes: {e}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Read1::Timeout;
            }
            self.stream.set_read_timeout(Some(left)).ok();
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Read1::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Read1::Timeout
                }
                Err(_) => return Read1::Closed,
            }
        }
    }

    /// Reads packets until one matches `pred`; panics on close or timeout.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&Packet) -> bool) -> Packet {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read(left) {
                Read1::Packet(p) if pred(&p) => return p,
                Read1::Packet(_) => continue,
                other => panic!("expected {what}, got {other:?}"),
            }
        }
    }

    /// Reads until the broker closes the connection; returns the packets
    /// received before the close. Panics if the connection stays open.
    pub fn expect_close(&mut self) -> Vec<Packet> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read(left) {
                Read1::Packet(p) => seen.push(p),
                Read1::Closed => return seen,
                Read1::Timeout => panic!("connection still open; received {seen:?}"),
            }
        }
    }

    /// Subscribes and waits for the SUBACK.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![SubscribeFilter {
                filter: filter.into(),
                options: SubscriptionOptions::qos(qos),
            }],
            properties: Default::default(),
        }));
        self.expect("SUBACK", |p| matches!(p, Packet::SubAck(_)));
    }
}

/// A CONNECT with defaults (keep-alive 60).
pub fn connect_packet(version: ProtocolVersion, client_id: &str, clean: bool) -> Connect {
    Connect {
        protocol_version: version,
        clean_start: clean,
        keep_alive: 60,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

/// A PUBLISH with no properties.
pub fn publish_packet(topic: &str, qos: QoS, packet_id: u16, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id,
        properties: Default::default(),
        payload: Bytes::from_static(payload),
    }
}

/// A unique-enough suffix for topics and client ids within one test run.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A TCP proxy on a free loopback port that records every byte in both directions.
pub fn recording_proxy(target: SocketAddr) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let record = std::sync::Arc::clone(&record);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (port, seen)
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs `mqtt-lwa psk ARGS` in `dir` (store and key files land there) and
/// fails the test if it does not succeed.
pub fn psk_cli(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new(mqtt_lwa_bin())
        .arg("psk")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psk {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
