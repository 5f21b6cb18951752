//! Helpers for the gateway's behaviour tests: `mqtt-lwa gateway` as a child
//! process, Debian's mosquitto clients and broker (one that can be stopped and
//! started again on its port), and an address where nothing listens.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{mqtt_lwa_bin, LineProcess};

/// A running `mqtt-lwa gateway`, killed on drop; its stderr (`-v`) goes to a log file.
pub struct GatewayProc {
    child: Child,
    /// Every `listening on` address, in listener order.
    pub addrs: Vec<SocketAddr>,
    log: PathBuf,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl GatewayProc {
    /// Writes `config` to `dir/NAME.toml` and starts the gateway on it; waits
    /// for its `listening on` lines (one per `[[listener]]`) and its `upstream` line.
    pub fn start(dir: &Path, name: &str, config: &str) -> GatewayProc {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("write gateway config");
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(mqtt_lwa_bin())
            .args(["gateway", "-v", "-c"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("gateway log"))
            .spawn()
            .expect("start mqtt-lwa gateway");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut addrs = Vec::new();
        loop {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).unwrap_or(0);
            if n == 0 {
                let _ = child.wait();
                panic!(
                    "gateway {name} exited before serving; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if let Some(rest) = line.trim().strip_prefix("listening on ") {
                let addr = rest.split(' ').next().unwrap_or_default();
                addrs.push(addr.parse().expect("listening address"));
            } else if line.starts_with("upstream ") {
                break;
            }
        }
        GatewayProc {
            child,
            addrs,
            log,
            _stdout: stdout,
        }
    }

    /// Port of listener `i`, as a string for command lines.
    pub fn port(&self, i: usize) -> String {
        self.addrs[i].port().to_string()
    }

    /// SIGKILL: the gateway vanishes without a word to anyone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (up to 10 s) for the gateway to exit; its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway configuration with one anonymous plaintext listener on a free
/// port and `upstreams` (ports on 127.0.0.1) in order; `gateway` lines go
/// into `[gateway]`, `limits` lines into `[limits]`.
pub fn open_gateway(upstreams: &[u16], gateway: &str, limits: &str) -> String {
    let list: Vec<String> = upstreams
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    format!(
        "[limits]\n{limits}\n[[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n\n[gateway]\nupstream = [{}]\n{gateway}\n",
        list.join(", ")
    )
}

/// A port on 127.0.0.1 where nothing listens (bound, then let go).
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `mosquitto_sub -d ARGS` on 127.0.0.1:`port` (line-buffered), returned once
/// subscribed; messages come as `MSG|topic|payload` lines.
pub fn stock_sub(port: &str, args: &[&str]) -> LineProcess {
    let mut p = stock_sub_resuming(port, args);
    p.expect_line("Subscribed", |l| l.starts_with("Subscribed"));
    p
}

/// As [`stock_sub`], returned at once: a resumed session may deliver what
/// it queued before the SUBACK, and `-C` may end the client before it.
pub fn stock_sub_resuming(port: &str, args: &[&str]) -> LineProcess {
    let mut all = vec![
        "-oL",
        "mosquitto_sub",
        "-h",
        "127.0.0.1",
        "-p",
        port,
        "-d",
        "-F",
        "MSG|%t|%p",
    ];
    all.extend_from_slice(args);
    LineProcess::spawn("stdbuf", &all)
}

/// The next message of a [`stock_sub`] (`MSG|topic|payload`) or an
/// [`our_sub`] (`topic payload` on stdout), as `topic payload`; `None` after `within`.
pub fn next_message(p: &mut LineProcess, within: Duration) -> Option<String> {
    let is_message = |l: &str| {
        l.starts_with("MSG|")
            || !(l.starts_with("stderr: ")
                || l.starts_with("Client ")
                || l.starts_with("Subscribed"))
    };
    p.wait_line(within, is_message)
        .map(|l| match l.strip_prefix("MSG|") {
            Some(rest) => rest.replacen('|', " ", 1),
            None => l,
        })
}

/// `mosquitto_pub ARGS` to 127.0.0.1:`port`, run to completion.
pub fn stock_pub(port: &str, args: &[&str]) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", port])
        .args(args)
        .output()
        .expect("run mosquitto_pub (Debian package mosquitto-clients)")
}

/// `mqtt-lwa pub ARGS` to 127.0.0.1:`port`, run to completion.
pub fn our_pub(port: &str, args: &[&str]) -> Output {
    Command::new(mqtt_lwa_bin())
        .args(["pub", "-h", "127.0.0.1", "-p", port])
        .args(args)
        .output()
        .expect("run mqtt-lwa pub")
}

/// `mqtt-lwa sub -d -v ARGS` on 127.0.0.1:`port`, returned once subscribed
/// (messages on stdout, the debug lines on stderr).
pub fn our_sub(port: &str, args: &[&str]) -> LineProcess {
    let mut p = our_sub_resuming(port, args);
    p.expect_line("SUBACK", |l| l.contains("received SUBACK"));
    p
}

/// As [`our_sub`], returned at once (see [`stock_sub_resuming`]).
pub fn our_sub_resuming(port: &str, args: &[&str]) -> LineProcess {
    let mut all = vec!["sub", "-d", "-v", "-h", "127.0.0.1", "-p", port];
    all.extend_from_slice(args);
    LineProcess::spawn(mqtt_lwa_bin(), &all)
}

/// Asserts a client command succeeded, showing its output otherwise.
pub fn succeeded(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): stdout {} stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Debian's mosquitto on a port of its own that stays the same across
/// [`Upstream::stop`] and [`Upstream::start`] (an upstream restart).
pub struct Upstream {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    conf: PathBuf,
    log: PathBuf,
}

impl Upstream {
    /// Starts mosquitto in `dir` with `extra` config lines (anonymous unless they say otherwise).
    pub fn start_in(dir: &Path, name: &str, extra: &str) -> Upstream {
        let port = dead_port();
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type all\n{extra}\n"
            ),
        )
        .expect("write mosquitto.conf");
        let mut up = Upstream {
            child: None,
            port,
            conf,
            log: dir.join(format!("{name}.log")),
        };
        up.start();
        up
    }

    /// (Re)starts it on its port; waits until it accepts connections.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let mut child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start /usr/sbin/mosquitto (Debian package mosquitto)");
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > end || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                panic!("mosquitto did not start; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Stops it (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its port as a string.
    pub fn port_arg(&self) -> String {
        self.port.to_string()
    }

    /// mosquitto's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}
