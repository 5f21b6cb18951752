//! Helpers for the hardening tests: a broker child that can be SIGKILLed and
//! restarted on the same port and persistence file, and its RSS.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `mqtt-lwa broker` child, killed (SIGKILL) on drop.
pub struct BrokerProc {
    child: Child,
    /// Address of the first listener.
    pub addr: SocketAddr,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl BrokerProc {
    /// Starts `mqtt-lwa broker -p PORT --sys-interval 0 EXTRA...`; with
    /// `persistence`, `--persistence FILE` too.
    pub fn start(port: u16, persistence: Option<&Path>, extra: &[&str]) -> BrokerProc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtt-lwa"));
        cmd.arg("broker")
            .args(["-p", &port.to_string(), "--sys-interval", "0"]);
        if let Some(file) = persistence {
            cmd.arg("--persistence").arg(file);
        }
        let mut child = cmd
            .args(extra)
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
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected broker output {line:?}"));
        std::thread::spawn(move || for _ in lines {});
        BrokerProc {
            child,
            addr,
            stderr: Some(stderr),
        }
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

    /// SIGTERM and wait for a clean exit; returns the exit status and stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "broker did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, err)
    }

    /// Resident set size in KiB, from /proc/PID/status.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 20 ms until it holds or `within` passes.
pub async fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
