//! Shared helpers for the client and CLI tests: a Debian mosquitto broker on
//! a free port, our own broker, and running the `mqtt-lwa` binary; a real
//! RabbitMQ cluster on loopback in [`rabbitmq`].
#![allow(dead_code)]

pub mod rabbitmq;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");

/// Debian's broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port that was free a moment ago (mosquitto cannot be told to bind port 0
/// and report it, so the test picks one).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A mosquitto broker started for one test and killed when dropped.
pub struct Mosquitto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts mosquitto with `listener PORT 127.0.0.1`, `allow_anonymous true` and `extra` config lines.
    pub fn start(extra: &str) -> Mosquitto {
        Self::start_with("allow_anonymous true\n", extra)
    }

    /// Starts mosquitto with the given access lines (e.g. `allow_anonymous false`) and extra config.
    pub fn start_with(access: &str, extra: &str) -> Mosquitto {
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let conf = dir.path().join("mosquitto.conf");
            std::fs::write(
                &conf,
                format!("listener {port} 127.0.0.1\n{access}persistence false\n{extra}\n"),
            )
            .expect("write mosquitto.conf");
            let log = std::fs::File::create(dir.path().join("mosquitto.log")).expect("log file");
            let mut child = Command::new(MOSQUITTO)
                .arg("-c")
                .arg(&conf)
                .arg("-v")
                .stdout(log.try_clone().expect("clone log"))
                .stderr(log)
                .spawn()
                .expect("start /usr/sbin/mosquitto (Debian package mosquitto)");
            let up = wait_for(Duration::from_secs(10), || {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up && child.try_wait().ok().flatten().is_none() {
                return Mosquitto { child, port, dir };
            }
            // Port taken meanwhile (or slow start): try another one.
            let _ = child.kill();
            let _ = child.wait();
            last_log =
                std::fs::read_to_string(dir.path().join("mosquitto.log")).unwrap_or_default();
        }
        panic!("mosquitto did not start; its last log:\n{last_log}");
    }

    /// mosquitto's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// A directory that lives as long as the broker (for password files, etc.).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our own broker (`mqtt-lwa broker -p 0`), killed when dropped.
pub struct OwnBroker {
    child: Child,
    /// Kept open so that later output never hits a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl OwnBroker {
    /// Starts `mqtt-lwa broker -p 0 [args]` and reads its `listening on ADDR (plain)` line.
    pub fn start(args: &[&str]) -> OwnBroker {
        let mut child = Command::new(BIN)
            .args(["broker", "-p", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mqtt-lwa broker");
        let stdout = child.stdout.take().expect("broker stdout");
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read broker output");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("unexpected broker output {line:?}"));
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {addr:?}"));
        OwnBroker {
            child,
            _stdout: stdout,
            port,
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mqtt-lwa ARGS` to completion with `stdin` as standard input.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mqtt-lwa");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for mqtt-lwa")
}

/// A running `mqtt-lwa sub` whose stdout and stderr are collected line by line.
pub struct Sub {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    errors: std::sync::mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

fn line_channel(pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Sub {
    /// Starts `mqtt-lwa sub -d ARGS` (`-d` so that [`Sub::wait_subscribed`] can see SUBACK).
    pub fn spawn(args: &[&str]) -> Sub {
        let mut child = Command::new(BIN)
            .args(["sub", "-d"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mqtt-lwa sub");
        let lines = line_channel(child.stdout.take().expect("stdout"));
        let errors = line_channel(child.stderr.take().expect("stderr"));
        Sub {
            child,
            lines,
            errors,
            stderr_seen: Vec::new(),
        }
    }

    /// Waits (up to 10 s) for the debug line saying SUBACK arrived.
    pub fn wait_subscribed(&mut self) {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            match self.errors.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let done = line.contains("received SUBACK");
                    self.stderr_seen.push(line);
                    if done {
                        return;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("sub never got SUBACK; stderr: {:?}", self.stderr_seen);
    }

    /// The next output line, waiting up to 10 s.
    pub fn line(&self) -> Option<String> {
        self.lines.recv_timeout(Duration::from_secs(10)).ok()
    }

    /// Kills the process (SIGKILL: no DISCONNECT, so the broker publishes the will).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit (up to 20 s); returns its exit code, the
    /// stdout lines not yet read, and the whole stderr.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let exited = wait_for(Duration::from_secs(20), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait sub");
        let rest: Vec<String> = self.lines.iter().collect();
        let mut stderr = std::mem::take(&mut self.stderr_seen);
        stderr.extend(self.errors.iter());
        (status.code(), rest, stderr.join("\n"))
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `path` (a directory tree) readable by everyone: mosquitto started
/// as root drops to the `mosquitto` user before it reads certificates and
/// password files.
pub fn share_with_mosquitto(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).expect("stat");
    let mode = if meta.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            share_with_mosquitto(&entry.expect("dir entry").path());
        }
    }
}

/// Both protocol versions as `-V` values.
pub const VERSIONS: [&str; 2] = ["311", "5"];

/// `mqtt-lwa pub -h 127.0.0.1 -p PORT ARGS`.
pub fn publish(port: &str, args: &[&str]) -> Output {
    publish_stdin(port, args, b"")
}

pub fn publish_stdin(port: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut all = vec!["pub", "-h", "127.0.0.1", "-p", port];
    all.extend_from_slice(args);
    run(&all, stdin)
}

/// `mqtt-lwa sub -d -h 127.0.0.1 -p PORT ARGS`, returned once subscribed.
pub fn subscribe(port: &str, args: &[&str]) -> Sub {
    let mut all = vec!["-h", "127.0.0.1", "-p", port];
    all.extend_from_slice(args);
    let mut sub = Sub::spawn(&all);
    sub.wait_subscribed();
    sub
}

pub fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Reads `n` lines from `sub` and checks it then exits 0 (its `-C` count).
pub fn expect_lines(sub: Sub, n: usize) -> Vec<String> {
    let lines: Vec<String> = (0..n).map_while(|_| sub.line()).collect();
    let (code, rest, err) = sub.finish();
    assert_eq!(lines.len(), n, "got {lines:?}; stderr: {err}");
    assert!(rest.is_empty(), "extra output {rest:?}");
    assert_eq!(code, Some(0), "stderr: {err}");
    lines
}

/// A TCP relay on 127.0.0.1 that forwards to `upstream_port` and records
/// every byte in both directions (a stand-in for a packet capture).
pub struct Recorder {
    /// Port to connect to instead of the broker's.
    pub port: u16,
    bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Recorder {
    /// Starts relaying to `127.0.0.1:upstream_port` (threads end with the process).
    pub fn start(upstream_port: u16) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let port = listener.local_addr().expect("recorder addr").port();
        let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = bytes.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (
                        client.try_clone().expect("clone"),
                        upstream.try_clone().expect("clone"),
                    ),
                    (upstream, client),
                ] {
                    let record = record.clone();
                    std::thread::spawn(move || {
                        use std::io::Write;
                        let mut buf = [0u8; 4096];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            record
                                .lock()
                                .expect("recorder lock")
                                .extend_from_slice(&buf[..n]);
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Recorder { port, bytes }
    }

    /// Everything relayed so far, both directions interleaved.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().expect("recorder lock").clone()
    }
}

/// True when `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
