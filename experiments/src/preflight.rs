//! What a run would leave out on this machine, found before it measures anything.
//!
//! Each missing tool used to surface only as a note at the end of the run: a full
//! profile of two hours on a machine without mosquitto or the link tools came back
//! without the baseline and without its emulated links. `missing` lists them up
//! front so that the command line can say so at once, and refuse a full run.

use std::path::Path;
use std::process::{Command, Stdio};

use super::broker::MOSQUITTO_BIN;
use super::crosscheck::{chosen, TSHARK};
use super::matrix::BrokerKind;
use super::run::RunOptions;

/// Something this machine lacks, and what the run leaves out because of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The tool or privilege, and the Debian package that brings it.
    pub what: String,
    /// The measurements left out without it.
    pub leaves_out: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} not measured", self.what, self.leaves_out)
    }
}

/// Whether `program` is an executable file in one of `PATH`'s directories.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            p.is_file()
                && std::fs::metadata(&p)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                    .unwrap_or(false)
        })
    })
}

/// Whether the kernel offers netem (loaded, or loadable as a module).
fn kernel_has_netem() -> bool {
    Path::new("/sys/module/sch_netem").exists()
        || Command::new("modprobe")
            .args(["-n", "-q", "sch_netem"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// The prerequisites `opts` needs that this machine lacks (empty: the run measures all it plans).
pub fn missing(opts: &RunOptions) -> Vec<Missing> {
    let mut out = Vec::new();
    let mut add = |what: &str, leaves_out: &str| {
        out.push(Missing {
            what: what.into(),
            leaves_out: leaves_out.into(),
        })
    };
    let p = &opts.profile;
    let local = opts.remote.is_none();
    if local && p.brokers.contains(&BrokerKind::Mosquitto) && !Path::new(MOSQUITTO_BIN).exists() {
        add(
            &format!("{MOSQUITTO_BIN} (Debian package mosquitto)"),
            "the mosquitto baseline, and TLS with an external PSK,",
        );
    }
    if p.stock_messages > 0
        && p.modes.contains(&super::matrix::Mode::Plain)
        && !super::stock::available()
    {
        add(
            "mosquitto_pub, mosquitto_sub (mosquitto-clients)",
            "the stock-client bursts",
        );
    }
    if local && p.cross_check && chosen(p).is_some() && !on_path(TSHARK) {
        add(
            &format!("{TSHARK} (Debian package tshark)"),
            "the capture cross-check",
        );
    }
    let emulated: Vec<&str> = opts
        .links
        .iter()
        .filter(|l| l.is_emulated())
        .map(|l| l.name.as_str())
        .collect();
    if local && !emulated.is_empty() {
        let links = format!("the emulated links ({})", emulated.join(", "));
        if !rustix::process::geteuid().is_root() {
            add("root (network namespaces and tc)", &links);
        }
        if !on_path("ip") {
            add("ip (Debian package iproute2)", &links);
        }
        if !on_path("iperf3") {
            add("iperf3 (Debian package iperf3)", &links);
        }
        if !kernel_has_netem() && !on_path("iptables") {
            add(
                "iptables (Debian package iptables; this kernel has no netem, so the links \
                 need the NFQUEUE delay line)",
                &links,
            );
        }
    }
    out
}
