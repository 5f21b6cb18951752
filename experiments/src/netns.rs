//! Emulated links: network namespaces, veth pairs and traffic control,
//! created by the run and removed when the [`EmulatedLink`] is dropped.
//!
//! ```text
//!  root namespace (clients)        router namespace              broker namespace
//!  mlwa<pid>s<n> 10.213.N.1 ==veth== toroot 10.213.N.2
//!                                   tobroker 10.213.N.5 ==veth== eth0 10.213.N.6 (broker)
//! ```
//!
//! Shaping lives in the router namespace, on the egress of both its veth
//! ends (one per direction): `netem` (delay, jitter, loss, rate) where the
//! kernel has it, otherwise `tbf` for the rate plus iptables NFQUEUE rules in
//! the router's FORWARD chain feeding the [`super::linkem`] delay line. A
//! router namespace rather than rules beside the broker's socket: packets
//! held in a queue on the sending host still count against TCP Small
//! Queues, which would throttle the broker's sends to about a millisecond of
//! data in flight; forwarded packets belong to no socket (netem itself
//! orphans its packets for the same reason). Needs root and iproute2, plus
//! iptables for the NFQUEUE fallback.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::link::LinkProfile;

/// Prefix of every namespace this module creates (`mqttlwa-<pid>-<n>-{r,b}`).
pub const NETNS_PREFIX: &str = "mqttlwa-";
/// Prefix of the root namespace's veth end (`mlwa<pid>s<n>`, at most 15 characters).
pub const VETH_PREFIX: &str = "mlwa";
/// Second octet of the emulated links' addresses (10.213.N.0/29).
const NET: u8 = 213;
/// The router namespace's interface towards the clients.
const TO_ROOT: &str = "toroot";
/// The router namespace's interface towards the broker.
const TO_BROKER: &str = "tobroker";
/// NFQUEUE numbers in the router namespace: packets towards the broker, towards the clients.
const QUEUES: [u16; 2] = [0, 1];

/// Errors creating an emulated link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A command failed.
    #[error("`{0}` failed: {1}")]
    Command(String, String),
    /// The NFQUEUE emulator did not come up.
    #[error("link emulator: {0}")]
    Emulator(String),
    /// No free 10.213.N.0/29.
    #[error("no unused 10.213.N.0/29 subnet")]
    NoSubnet,
}

/// How delay and loss are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulation {
    /// `tc netem` on both router egresses (delay, jitter, loss and rate).
    Netem,
    /// `tbf` for the rate, NFQUEUE + `mqtt-lwa-experiment linkem` for delay, jitter and loss.
    Nfqueue,
    /// Only a rate (`tbf`): the profile has no delay and no loss.
    RateOnly,
}

impl Emulation {
    /// For reports.
    pub fn describe(self) -> &'static str {
        match self {
            Emulation::Netem => "tc netem (delay, jitter, loss, rate) in a router namespace",
            Emulation::Nfqueue => {
                "tc tbf (rate) + NFQUEUE delay line (mqtt-lwa-experiment linkem: delay, jitter, \
                 loss) in a router namespace; this kernel has no netem"
            }
            Emulation::RateOnly => "tc tbf (rate) in a router namespace",
        }
    }
}

/// `tc` arguments shaping `dev`'s egress to `rate` bit/s: burst 5 ms of data (at least four
/// full frames), queue up to 100 ms of data.
fn tbf_args(dev: &str, rate: u64) -> Vec<String> {
    let burst = (rate / 8 / 200).max(4 * 1514);
    [
        "tc",
        "qdisc",
        "add",
        "dev",
        dev,
        "root",
        "tbf",
        "rate",
        &format!("{rate}bit"),
        "burst",
        &burst.to_string(),
        "latency",
        "100ms",
    ]
    .map(String::from)
    .to_vec()
}

/// `tc` arguments for netem on `dev`: the profile's delay, jitter, loss and rate in one qdisc.
///
/// With a rate, netem times each packet after the one before it, so jitter does not reorder.
fn netem_args(dev: &str, p: &LinkProfile) -> Vec<String> {
    let mut args: Vec<String> = ["tc", "qdisc", "add", "dev", dev, "root", "netem"]
        .map(String::from)
        .to_vec();
    args.extend(["limit".into(), "100000".into()]);
    args.extend(["delay".into(), format!("{}us", p.delay_us)]);
    if p.jitter_us > 0 {
        args.push(format!("{}us", p.jitter_us));
    }
    args.extend(["loss".into(), format!("{}%", p.loss * 100.0)]);
    if let Some(rate) = p.rate_bit_s {
        args.extend(["rate".into(), format!("{rate}bit")]);
    }
    args
}

/// Runs a command; its stderr becomes the error.
fn run(args: &[&str]) -> Result<String, LinkError> {
    let (cmd, rest) = args.split_first().ok_or(LinkError::NoSubnet)?;
    let out = Command::new(cmd)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LinkError::Command(args.join(" "), e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LinkError::Command(
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// `ip netns exec NS args...`.
fn in_ns(ns: &str, args: &[&str]) -> Result<String, LinkError> {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    run(&all)
}

/// The third octet N of a 10.213.N.0/29 that no address or route on this machine mentions.
pub fn pick_subnet() -> Result<u8, LinkError> {
    let used = format!(
        "{}\n{}",
        run(&["ip", "-4", "-o", "addr", "show"])?,
        run(&["ip", "-4", "route", "show", "table", "all"])?
    );
    let start = (std::process::id() % 250) as u8;
    (0..=250u8)
        .map(|i| start.wrapping_add(i) % 251)
        .find(|n| !used.contains(&format!("10.{NET}.{n}.")))
        .ok_or(LinkError::NoSubnet)
}

/// The broker's address on subnet `n` (clients connect here).
pub fn broker_addr(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, NET, n, 6)
}

/// One emulated link; everything it created is removed on drop.
#[derive(Debug)]
pub struct EmulatedLink {
    /// The profile it emulates.
    pub profile: LinkProfile,
    /// How delay and loss are applied.
    pub emulation: Emulation,
    /// Namespace the broker runs in (`ip netns exec` it).
    pub broker_ns: String,
    /// Namespace that forwards and shapes.
    pub router_ns: String,
    /// The veth end in the root namespace.
    pub root_veth: String,
    /// The clients' address (root namespace).
    pub client_addr: Ipv4Addr,
    /// The broker's address.
    pub broker_addr: Ipv4Addr,
    shim: Option<Child>,
}

impl EmulatedLink {
    /// Creates the namespaces, veths, addresses, routes and shaping for `profile` on subnet `n`.
    ///
    /// `linkem_bin` is the harness's own binary, `mqtt-lwa-experiment`, started as `linkem`
    /// when the kernel has no netem; `seq` makes names unique within the run.
    pub fn create(
        profile: &LinkProfile,
        n: u8,
        seq: u32,
        linkem_bin: &Path,
    ) -> Result<Self, LinkError> {
        let pid = std::process::id();
        let mut link = EmulatedLink {
            profile: profile.clone(),
            emulation: Emulation::RateOnly,
            broker_ns: format!("{NETNS_PREFIX}{pid}-{seq}-b"),
            router_ns: format!("{NETNS_PREFIX}{pid}-{seq}-r"),
            root_veth: format!("{VETH_PREFIX}{pid}s{}", seq % 100),
            client_addr: Ipv4Addr::new(10, NET, n, 1),
            broker_addr: broker_addr(n),
            shim: None,
        };
        // From here on, an error drops `link`, which removes whatever exists.
        link.plumb(n)?;
        link.shape(linkem_bin)?;
        Ok(link)
    }

    fn plumb(&self, n: u8) -> Result<(), LinkError> {
        let (r, b, v) = (
            self.router_ns.as_str(),
            self.broker_ns.as_str(),
            self.root_veth.as_str(),
        );
        let a = |host: u8, len: u8| format!("10.{NET}.{n}.{host}/{len}");
        run(&["ip", "netns", "add", r])?;
        run(&["ip", "netns", "add", b])?;
        run(&[
            "ip", "link", "add", v, "type", "veth", "peer", "name", TO_ROOT, "netns", r,
        ])?;
        run(&[
            "ip", "link", "add", TO_BROKER, "netns", r, "type", "veth", "peer", "name", "eth0",
            "netns", b,
        ])?;
        run(&["ip", "addr", "add", &a(1, 30), "dev", v])?;
        run(&["ip", "link", "set", v, "up"])?;
        for (ns, cmds) in [
            (
                r,
                vec![
                    vec!["ip", "link", "set", "lo", "up"],
                    vec!["ip", "addr", "add", &a(2, 30), "dev", TO_ROOT],
                    vec!["ip", "addr", "add", &a(5, 30), "dev", TO_BROKER],
                    vec!["ip", "link", "set", TO_ROOT, "up"],
                    vec!["ip", "link", "set", TO_BROKER, "up"],
                    vec!["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
                ],
            ),
            (
                b,
                vec![
                    vec!["ip", "link", "set", "lo", "up"],
                    vec!["ip", "addr", "add", &a(6, 30), "dev", "eth0"],
                    vec!["ip", "link", "set", "eth0", "up"],
                ],
            ),
        ] {
            for c in cmds {
                in_ns(ns, &c)?;
            }
        }
        let via = format!("10.{NET}.{n}.5");
        in_ns(b, &["ip", "route", "add", "default", "via", &via])?;
        let dst = format!("10.{NET}.{n}.4/30");
        let gw = format!("10.{NET}.{n}.2");
        run(&["ip", "route", "add", &dst, "via", &gw, "dev", v])?;
        Ok(())
    }

    fn shape(&mut self, linkem_bin: &Path) -> Result<(), LinkError> {
        let p = self.profile.clone();
        let r = self.router_ns.clone();
        let needs_delay = p.delay_us > 0 || p.loss > 0.0;
        if needs_delay && self.try_netem(&p)? {
            self.emulation = Emulation::Netem;
            return Ok(());
        }
        if let Some(rate) = p.rate_bit_s {
            for dev in [TO_ROOT, TO_BROKER] {
                let args = tbf_args(dev, rate);
                in_ns(&r, &args.iter().map(String::as_str).collect::<Vec<_>>())?;
            }
        }
        if needs_delay {
            self.start_nfqueue(linkem_bin)?;
            self.emulation = Emulation::Nfqueue;
        }
        Ok(())
    }

    /// `netem` on both router egresses; `Ok(false)` where the kernel has no netem.
    fn try_netem(&self, p: &LinkProfile) -> Result<bool, LinkError> {
        for dev in [TO_ROOT, TO_BROKER] {
            let args = netem_args(dev, p);
            match in_ns(
                &self.router_ns,
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            ) {
                Ok(_) => {}
                Err(LinkError::Command(_, msg)) if msg.contains("qdisc kind is unknown") => {
                    return Ok(false)
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn start_nfqueue(&mut self, linkem_bin: &Path) -> Result<(), LinkError> {
        let r = self.router_ns.clone();
        if Command::new("iptables")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Err(LinkError::Emulator(
                "this kernel has no netem and iptables is not installed (needed for the \
                 NFQUEUE delay line; scripts/install-deps.sh installs it)"
                    .into(),
            ));
        }
        let p = &self.profile;
        let queues = format!("{},{}", QUEUES[0], QUEUES[1]);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &r])
            .arg(linkem_bin)
            .args([
                "linkem",
                "--queues",
                &queues,
                "--delay-us",
                &p.delay_us.to_string(),
                "--jitter-us",
                &p.jitter_us.to_string(),
                "--loss",
                &p.loss.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| LinkError::Emulator(e.to_string()))?;
        let stdout = child.stdout.take();
        self.shim = Some(child);
        let Some(stdout) = stdout else {
            return Err(LinkError::Emulator("no stdout".into()));
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(matches!(lines.next(), Some(Ok(l)) if l == "ready"));
            // Keep reading so the emulator never blocks on a full pipe.
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(true) => {}
            _ => {
                return Err(LinkError::Emulator(
                    "mqtt-lwa-experiment linkem did not report `ready` within 10 s".into(),
                ))
            }
        }
        // --queue-bypass: with no emulator bound, packets pass unshaped instead of being
        // black-holed; the runner notices a dead emulator through `emulator_alive`.
        for (dev, q) in [(TO_ROOT, QUEUES[0]), (TO_BROKER, QUEUES[1])] {
            in_ns(
                &r,
                &[
                    "iptables",
                    "-A",
                    "FORWARD",
                    "-i",
                    dev,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    &q.to_string(),
                    "--queue-bypass",
                ],
            )?;
        }
        Ok(())
    }

    /// False when the NFQUEUE emulator this link needs has exited (the link then passes
    /// packets without delay or loss, so what was measured since is not this profile).
    pub fn emulator_alive(&mut self) -> bool {
        match &mut self.shim {
            None => true,
            Some(child) => matches!(child.try_wait(), Ok(None)),
        }
    }

    /// `ip netns exec <broker ns>` as a command prefix.
    pub fn exec_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.broker_ns]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}

impl Drop for EmulatedLink {
    fn drop(&mut self) {
        if let Some(mut child) = self.shim.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        remove_namespace(&self.broker_ns);
        remove_namespace(&self.router_ns);
        // Deleting a namespace frees its devices asynchronously; delete our end now so the
        // name and the route are gone when drop returns.
        let _ = run(&["ip", "link", "del", &self.root_veth]);
    }
}

/// Kills what still runs in `ns` (processes this run started there), then deletes it.
fn remove_namespace(ns: &str) {
    if let Ok(pids) = run(&["ip", "netns", "pids", ns]) {
        for pid in pids.split_whitespace() {
            let _ = run(&["kill", "-KILL", pid]);
        }
    }
    let _ = run(&["ip", "netns", "del", ns]);
}

/// The pid in `mqttlwa-<pid>-...` or `mlwa<pid>s<n>`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(NETNS_PREFIX)
        .or_else(|| name.strip_prefix(VETH_PREFIX))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn is_stale(name: &str) -> bool {
    match owner_pid(name) {
        Some(pid) => pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

/// Removes namespaces and veths left by runs that were killed (their pid no longer exists).
///
/// Returns the names removed.
pub fn sweep_stale() -> Vec<String> {
    sweep(is_stale)
}

/// Removes this process's own namespaces and veths (and what runs in them): the runner's
/// SIGINT/SIGTERM handler, which exits without running the links' destructors.
pub fn remove_own() -> Vec<String> {
    sweep(|name| owner_pid(name) == Some(std::process::id()))
}

/// Removes our namespaces and root-side veths whose names `doomed` accepts.
fn sweep(doomed: impl Fn(&str) -> bool) -> Vec<String> {
    let mut removed = Vec::new();
    if let Ok(list) = run(&["ip", "netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if ns.starts_with(NETNS_PREFIX) && doomed(ns) {
                remove_namespace(ns);
                removed.push(ns.to_owned());
            }
        }
    }
    if let Ok(links) = run(&["ip", "-o", "link", "show"]) {
        for dev in links.lines().filter_map(|l| {
            let name = l.split(':').nth(1)?.trim();
            Some(name.split('@').next().unwrap_or(name).to_owned())
        }) {
            if dev.starts_with(VETH_PREFIX) && doomed(&dev) {
                let _ = run(&["ip", "link", "del", &dev]);
                removed.push(dev);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_parse_from_both_name_kinds() {
        assert_eq!(owner_pid("mqttlwa-1234-0-r"), Some(1234));
        assert_eq!(owner_pid("mlwa4194304s99"), Some(4_194_304));
        assert_eq!(owner_pid("mlwax"), None);
        assert_eq!(owner_pid("eth0"), None);
        // Our own names are never stale, whatever /proc says.
        assert!(!is_stale(&format!("mqttlwa-{}-0-b", std::process::id())));
        assert!("mlwa4194304s99".len() <= 15);
    }

    #[test]
    fn tc_arguments_carry_the_profile() {
        let wifi = netem_args("toroot", &LinkProfile::pi_wifi()).join(" ");
        assert_eq!(
            wifi,
            "tc qdisc add dev toroot root netem limit 100000 delay 3000us 1000us loss 0.1% \
             rate 20000000bit"
        );
        let lossy = netem_args("tobroker", &LinkProfile::parse("custom:delay=5ms").unwrap());
        assert_eq!(
            lossy.join(" "),
            "tc qdisc add dev tobroker root netem limit 100000 delay 5000us loss 0%"
        );
        assert_eq!(
            tbf_args("toroot", 20_000_000).join(" "),
            "tc qdisc add dev toroot root tbf rate 20000000bit burst 12500 latency 100ms"
        );
        // Slow links still get a burst of several full frames.
        assert!(tbf_args("toroot", 1_000_000)
            .join(" ")
            .contains("burst 6056 "));
    }
}
