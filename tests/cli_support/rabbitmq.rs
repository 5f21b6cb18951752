//! A real RabbitMQ cluster on 127.0.0.1, started by a test as an MQTT upstream
//! (Debian 12's `rabbitmq-server` 3.10.8, whose MQTT plugin speaks MQTT 3.1.1
//! only; `scripts/install-deps.sh` installs it and stops the system node).
//!
//! [`RabbitCluster::start`] gives every node its own directory (Mnesia, logs,
//! `rabbitmq.conf`, `enabled_plugins` with `[rabbitmq_mqtt].`), a unique node
//! name (`gwtest<pid>x<n>-<i>@localhost`), free ports for AMQP, MQTT and Erlang
//! distribution, and starts one private `epmd` per cluster on a free port
//! (`ERL_EPMD_PORT` for every node and every `rabbitmqctl` call), so nothing
//! touches port 4369 and parallel tests never meet. Every listener, the
//! distribution ports included, binds 127.0.0.1; the Erlang cookie is random,
//! in a per-cluster `HOME` (`.erlang.cookie`, mode 0400). All nodes boot in
//! parallel, then nodes 2..n join node 1 (`stop_app`, `join_cluster`,
//! `start_app`); `start` returns once every node answers an MQTT CONNECT with
//! CONNACK 0 and `cluster_status` lists every node as running.
//! `start(2)` took 15.5 and 15.6 s on the 2-core test machine when idle, 17.7
//! to 22.7 s while another test suite ran beside it (load average 5): each
//! node's first boot takes about 9 s, of which the MQTT plugin waits a random
//! 3.3 to 6 s for Raft peers before it elects itself; the join adds about
//! 2.5 s. Ports are picked free before the nodes bind them: another process
//! could take one in between (the node then fails to boot, and `start` panics
//! with its log tail).
//!
//! Upstream credentials: the MQTT plugin authenticates the CONNECT's user name
//! and password against RabbitMQ's users, so a test makes one with
//! [`RabbitCluster::add_user`] (full permissions on vhost `/`; users are
//! cluster-wide) and gives that name and password to the gateway as its
//! upstream credentials. A wrong password gets CONNACK 4 even where anonymous
//! clients are allowed. A CONNECT without credentials logs in as
//! `guest`/`guest` (`mqtt.allow_anonymous = true`, the default here); start
//! with [`RabbitCluster::start_with`] and [`RabbitOptions::allow_anonymous`]
//! false to have it refused (CONNACK 4, "no credentials provided"). Leave the
//! `guest` user in place: the readiness probe logs in as `guest`.
//!
//! What 3.10's MQTT plugin does when one of two nodes is down (measured with
//! this module and by hand, 2026-12): client-id tracking is a Raft cluster
//! (`mqtt_node`) over all nodes, which needs a majority, i.e. both nodes of
//! two. Still, the surviving node answers every CONNECT with CONNACK 0 at once,
//! whether it is the Raft leader or a follower, and for as long as the other
//! node stays down (seen for 40 s of one connection and for new ones 37 s
//! after): a CONNECT registers its client id asynchronously, with a Raft
//! command to the last leader the node knew, retried every 5 s, and the
//! CONNACK goes out before the command commits. What stops working is the
//! takeover: two connections with the same client id both stay connected.
//! (The plugin answers CONNACK 3, "client ID tracker is unavailable", only
//! where the node knows no leader at all, which the node-down cases never
//! showed.) Publishing and subscribing on the survivor work, except for a
//! client id whose persistent session (its durable queue
//! `mqtt-subscription-<client id>qos1`) was made on the node that is down:
//! its CONNECT, clean session or not, still gets CONNACK 0, but its SUBSCRIBE
//! gets no SUBACK: the survivor closes the connection ("NOT_FOUND - home node
//! ... of durable queue ... is down or inaccessible").
//!
//! When the node returns it rejoins the cluster with its data (users, queues,
//! sessions). If it was the Raft leader when it went down, its boot blocks for
//! 100 s (`mqtt_node` asks the survivor, which has no leader, for the members,
//! with a 100 s timeout) and its MQTT and AMQP ports refuse TCP until then;
//! after that a leader is elected and everything works (`start_node` took
//! 110.5 s after `kill_node` of the leader). If it was a follower, it is back
//! in 5 to 9 s. [`RabbitCluster::stop_node`] therefore first hands the Raft
//! leadership to a running node (a planned restart: stop about 1.5 s, start 5
//! to 9 s); [`RabbitCluster::kill_node`] does not (a crash).
//!
//! [`Drop`] kills every process of the cluster (each carries
//! `MQTT_LWA_RABBIT_CLUSTER=<cluster id>` in its environment: shells,
//! `beam.smp` and its helpers, `epmd`, `rabbitmqctl`), also when the test
//! panics, and [`RabbitCluster::start`] first kills such processes left by test
//! processes that no longer run (a test run killed with SIGKILL).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The server script run directly (Debian's `/usr/sbin/rabbitmq-server` would
/// switch to the `rabbitmq` user and the system node's directories).
pub const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The control tool, run directly for the same reason.
pub const RABBITMQCTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// The environment variable that marks every process of a cluster.
const MARKER: &str = "MQTT_LWA_RABBIT_CLUSTER";

/// Prefix of cluster ids and node names.
const PREFIX: &str = "gwtest";

/// How long a node may take to boot (its first boot, or a restart of a
/// follower); a restart of a stopped Raft leader takes over 100 s, see the
/// module documentation.
const BOOT_LIMIT: Duration = Duration::from_secs(90);

/// How long [`RabbitCluster::start_node`] waits.
const RESTART_LIMIT: Duration = Duration::from_secs(150);

/// Clusters started by this process so far (part of each cluster id).
static CLUSTERS: AtomicUsize = AtomicUsize::new(0);

/// Options for [`RabbitCluster::start_with`].
#[derive(Clone, Debug)]
pub struct RabbitOptions {
    /// `mqtt.allow_anonymous`: a CONNECT without credentials logs in as
    /// `guest` (true) or gets CONNACK 4 (false).
    pub allow_anonymous: bool,
    /// Extra `rabbitmq.conf` lines for every node.
    pub extra_conf: String,
}

impl Default for RabbitOptions {
    fn default() -> Self {
        RabbitOptions {
            allow_anonymous: true,
            extra_conf: String::new(),
        }
    }
}

/// One node of a [`RabbitCluster`].
struct Node {
    /// Erlang node name, `gwtest<pid>x<n>-<i>@localhost`.
    name: String,
    /// Its directory (config, Mnesia, logs, pid file).
    dir: PathBuf,
    /// MQTT listener on 127.0.0.1.
    mqtt_port: u16,
    /// AMQP 0-9-1 listener on 127.0.0.1.
    amqp_port: u16,
    /// Erlang distribution listener on 127.0.0.1.
    dist_port: u16,
    /// The `rabbitmq-server` shell that runs `beam.smp`, while it runs.
    child: Option<Child>,
}

/// A RabbitMQ cluster on 127.0.0.1 with the MQTT plugin, killed when dropped.
pub struct RabbitCluster {
    /// Unique id, `gwtest<pid>x<n>`: the prefix of the node names and the value
    /// of the marker variable.
    id: String,
    /// The cluster's directory: `home/` (cookie) and one directory per node.
    dir: tempfile::TempDir,
    /// Port of the cluster's own epmd.
    epmd_port: u16,
    /// The cluster's epmd.
    epmd: Child,
    nodes: Vec<Node>,
    options: RabbitOptions,
}

/// Polls `cond` every 100 ms until it holds or `limit` passes; returns whether it held.
fn poll(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `count` distinct ports that were free a moment ago (all bound at once, so no
/// two are the same).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// The last `lines` lines of a file ("" when unreadable).
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends `signal` (e.g. `-KILL`) to the processes `pids` (errors ignored: some
/// may have exited).
fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Ids of the running processes whose environment has `MARKER=<value>` where
/// `select(value)` holds.
fn marked_processes(select: impl Fn(&str) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let prefix = format!("{MARKER}=");
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let marked = environ.split(|&b| b == 0).any(|var| {
            std::str::from_utf8(var)
                .ok()
                .and_then(|var| var.strip_prefix(&prefix))
                .is_some_and(&select)
        });
        if marked {
            pids.push(pid);
        }
    }
    pids
}

/// Kills the processes of clusters whose test process (the pid in the cluster
/// id) no longer runs: leftovers of killed test runs.
fn reap_orphans() {
    let orphans = marked_processes(|id| {
        let owner = id
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('x').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    });
    signal("-KILL", &orphans);
}

/// Encodes an MQTT remaining length.
fn remaining_length(mut len: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// Sends an MQTT 3.1.1 CONNECT (clean session, keep-alive 10 s) to
/// 127.0.0.1:`port` and returns the CONNACK's return code (then disconnects),
/// or why there was none (connection refused or closed, 5 s without CONNACK).
pub fn mqtt_connack(
    port: u16,
    client_id: &str,
    credentials: Option<(&str, &str)>,
) -> Result<u8, String> {
    let field = |s: &str, out: &mut Vec<u8>| {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    let mut body = Vec::new();
    field("MQTT", &mut body);
    body.push(4);
    body.push(if credentials.is_some() { 0xC2 } else { 0x02 });
    body.extend_from_slice(&10u16.to_be_bytes());
    field(client_id, &mut body);
    if let Some((user, password)) = credentials {
        field(user, &mut body);
        field(password, &mut body);
    }
    let mut packet = vec![0x10];
    remaining_length(body.len(), &mut packet);
    packet.extend_from_slice(&body);

    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&packet)
        .map_err(|e| format!("send CONNECT: {e}"))?;
    let mut connack = [0u8; 4];
    stream
        .read_exact(&mut connack)
        .map_err(|e| format!("no CONNACK: {e}"))?;
    if connack[..2] != [0x20, 0x02] {
        return Err(format!("not a CONNACK: {connack:02x?}"));
    }
    let _ = stream.write_all(&[0xE0, 0x00]);
    Ok(connack[3])
}

/// Waits for `child` to exit, up to `limit`; kills it when it does not.
fn wait_child(child: &mut Child, limit: Duration) -> bool {
    let exited = poll(limit, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    let _ = child.wait();
    exited
}

impl RabbitCluster {
    /// Starts a cluster of `nodes` nodes (1 or more) with the default options
    /// (anonymous MQTT logs in as `guest`).
    pub fn start(nodes: usize) -> RabbitCluster {
        Self::start_with(nodes, RabbitOptions::default())
    }

    /// Starts a cluster of `nodes` nodes with `options`; see the module documentation.
    pub fn start_with(nodes: usize, options: RabbitOptions) -> RabbitCluster {
        assert!(nodes >= 1, "a cluster needs a node");
        assert!(
            Path::new(RABBITMQ_SERVER).exists(),
            "{RABBITMQ_SERVER} is missing: install Debian's rabbitmq-server (scripts/install-deps.sh)"
        );
        reap_orphans();
        let id = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .tempdir()
            .expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).expect("create cluster HOME");
        write_cookie(&home);

        let ports = free_ports(1 + 3 * nodes);
        let (epmd_port, node_ports) = (ports[0], &ports[1..]);
        let nodes: Vec<Node> = (0..nodes)
            .map(|i| {
                let name = format!("{id}-{}@localhost", i + 1);
                let node_dir = dir.path().join(format!("node{}", i + 1));
                std::fs::create_dir(&node_dir).expect("create node directory");
                Node {
                    name,
                    dir: node_dir,
                    mqtt_port: node_ports[3 * i],
                    amqp_port: node_ports[3 * i + 1],
                    dist_port: node_ports[3 * i + 2],
                    child: None,
                }
            })
            .collect();
        // Started last, so that nothing between it and the cluster (whose Drop
        // kills it) can panic.
        let epmd = start_epmd(&id, epmd_port);
        let mut cluster = RabbitCluster {
            id,
            dir,
            epmd_port,
            epmd,
            nodes,
            options,
        };
        for i in 0..cluster.nodes.len() {
            cluster.write_config(i);
            cluster.spawn_node(i);
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_mqtt(i, BOOT_LIMIT);
        }
        let seed = cluster.nodes[0].name.clone();
        for i in 1..cluster.nodes.len() {
            cluster.ctl(i, &["stop_app"]);
            cluster.ctl(i, &["join_cluster", &seed]);
            cluster.ctl(i, &["start_app"]);
        }
        cluster.wait_clustered(BOOT_LIMIT);
        cluster
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s MQTT port on 127.0.0.1 (nodes count from 0).
    pub fn mqtt_port(&self, i: usize) -> u16 {
        self.nodes[i].mqtt_port
    }

    /// Node `i`'s AMQP 0-9-1 port on 127.0.0.1.
    pub fn amqp_port(&self, i: usize) -> u16 {
        self.nodes[i].amqp_port
    }

    /// Node `i`'s Erlang node name (for `rabbitmqctl -n`).
    pub fn node_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// Whether node `i` runs (started and not stopped or killed).
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.nodes[i].child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Adds user `name` with `password` and full permissions on vhost `/` (users
    /// are cluster-wide; the first running node does it).
    pub fn add_user(&mut self, name: &str, password: &str) {
        let i = self.running_node(None);
        self.ctl(i, &["add_user", name, password]);
        self.ctl(i, &["set_permissions", "-p", "/", name, ".*", ".*", ".*"]);
    }

    /// Deletes user `name`.
    pub fn delete_user(&mut self, name: &str) {
        let i = self.running_node(None);
        self.ctl(i, &["delete_user", name]);
    }

    /// Runs `rabbitmqctl -n <node i> ARGS` with the cluster's epmd and cookie;
    /// returns its standard output, or panics with its output and node `i`'s
    /// log tail when it fails (or runs over 60 s).
    pub fn ctl(&mut self, i: usize, args: &[&str]) -> String {
        let out = self.ctl_output(i, args);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        panic!(
            "rabbitmqctl -n {} {} failed ({}):\n{}{}\nnode {i}'s log tail:\n{}",
            self.nodes[i].name,
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail(i)
        );
    }

    /// `rabbitmqctl -n <node i> ARGS`, whatever its exit status (killed after 60 s).
    pub fn ctl_output(&self, i: usize, args: &[&str]) -> Output {
        let mut cmd = Command::new(RABBITMQCTL);
        self.environment(&mut cmd);
        let child = cmd
            .arg("-n")
            .arg(&self.nodes[i].name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {RABBITMQCTL}: {e}"));
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(out) => out.expect("wait for rabbitmqctl"),
            Err(_) => {
                signal("-KILL", &[pid]);
                panic!(
                    "rabbitmqctl -n {} {} ran over 60 s; node {i}'s log tail:\n{}",
                    self.nodes[i].name,
                    args.join(" "),
                    self.log_tail(i)
                );
            }
        }
    }

    /// Stops node `i` cleanly (a planned upstream restart): hands the MQTT
    /// plugin's Raft leadership to another running node first (see the module
    /// documentation), then SIGTERM, and waits for the node to exit. Its data
    /// stays; [`RabbitCluster::start_node`] brings it back.
    pub fn stop_node(&mut self, i: usize) {
        assert!(
            self.is_running(i),
            "stop_node({i}): node {i} is not running"
        );
        if let Some(target) = self.other_running_node(i) {
            self.hand_over_raft_leadership(i, target);
        }
        // The shell forwards SIGTERM to beam.smp, which stops RabbitMQ cleanly.
        let beam = self.node_beam(i);
        let Some(mut child) = self.nodes[i].child.take() else {
            return;
        };
        signal("-TERM", &beam);
        signal("-TERM", &[child.id()]);
        if !wait_child(&mut child, Duration::from_secs(30)) {
            signal("-KILL", &self.node_pids(i));
            panic!(
                "node {i} did not stop within 30 s of SIGTERM; its log tail:\n{}",
                self.log_tail(i)
            );
        }
        // The shell exits with beam.smp; its helpers may outlive it briefly.
        signal("-KILL", &self.node_pids(i));
    }

    /// Kills node `i` with SIGKILL (a crash: no leadership hand-over; a later
    /// [`RabbitCluster::start_node`] can take over 100 s, see the module documentation).
    pub fn kill_node(&mut self, i: usize) {
        let Some(mut child) = self.nodes[i].child.take() else {
            panic!("kill_node({i}): node {i} is not running");
        };
        // beam.smp first: the shell then reaps it and exits.
        signal("-KILL", &self.node_beam(i));
        wait_child(&mut child, Duration::from_secs(5));
        signal("-KILL", &self.node_pids(i));
    }

    /// Starts node `i` again after [`RabbitCluster::stop_node`] or
    /// [`RabbitCluster::kill_node`], on the same ports and with its data; returns
    /// once it answers MQTT with CONNACK 0 and the cluster lists it as running
    /// (up to 150 s).
    pub fn start_node(&mut self, i: usize) {
        assert!(
            !self.is_running(i),
            "start_node({i}): node {i} runs already"
        );
        self.spawn_node(i);
        self.wait_mqtt(i, RESTART_LIMIT);
        self.wait_clustered(RESTART_LIMIT);
    }

    /// The last 40 lines of node `i`'s log (its standard output's last lines
    /// when the log is empty, e.g. for a configuration error).
    pub fn log_tail(&self, i: usize) -> String {
        let node = &self.nodes[i];
        let log = tail(&node.dir.join("log").join(format!("{}.log", node.name)), 40);
        if log.trim().is_empty() {
            tail(&node.dir.join("stdout.log"), 40)
        } else {
            log
        }
    }

    /// Index of the MQTT plugin's Raft leader (client-id tracking), asked of a
    /// running node; `None` when no running node names one.
    pub fn mqtt_raft_leader(&mut self) -> Option<usize> {
        let i = self.running_node(None);
        let out = self.ctl_output(
            i,
            &[
                "eval",
                "case ra:members(mqtt_node:server_id(), 5000) of \
                 {ok, _, {_, L}} -> atom_to_list(L); E -> E end.",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        self.nodes
            .iter()
            .position(|n| text.contains(&format!("\"{}\"", n.name)))
    }

    /// The first running node other than `except`; panics when none runs.
    fn running_node(&mut self, except: Option<usize>) -> usize {
        (0..self.nodes.len())
            .find(|&i| Some(i) != except && self.is_running(i))
            .expect("no node of the cluster runs")
    }

    /// A running node other than `i`, if any.
    fn other_running_node(&mut self, i: usize) -> Option<usize> {
        (0..self.nodes.len()).find(|&j| j != i && self.is_running(j))
    }

    /// Makes node `target` the MQTT Raft leader if node `i` is it (waits up to 10 s).
    fn hand_over_raft_leadership(&mut self, i: usize, target: usize) {
        let me = format!("{{mqtt_node, '{}'}}", self.nodes[i].name);
        let to = format!("{{mqtt_node, '{}'}}", self.nodes[target].name);
        let script = format!(
            "Me = {me}, To = {to}, \
             Wait = fun W(0) -> timeout; \
                        W(N) -> case ra:members(To, 1000) of \
                                    {{ok, _, To}} -> moved; \
                                    _ -> timer:sleep(100), W(N - 1) end end, \
             case ra:members(Me, 5000) of \
                 {{ok, _, Me}} -> case ra:transfer_leadership(Me, To) of \
                                     ok -> Wait(100); \
                                     Refused -> Refused end; \
                 {{ok, _, _}} -> not_leader; \
                 Other -> Other end."
        );
        let out = self.ctl(i, &["eval", &script]);
        assert!(
            out.contains("moved") || out.contains("not_leader"),
            "node {i} did not hand MQTT Raft leadership to node {target}: {out}\nnode {i}'s log tail:\n{}",
            self.log_tail(i)
        );
    }

    /// Process id of node `i`'s `beam.smp` (none when it does not run).
    fn node_beam(&self, i: usize) -> Vec<u32> {
        self.node_pids(i)
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "beam.smp")
            })
            .collect()
    }

    /// Process ids of node `i`'s `beam.smp` and helpers (by its node name in
    /// their environment) and of its shell.
    fn node_pids(&self, i: usize) -> Vec<u32> {
        let name = format!("RABBITMQ_NODENAME={}", self.nodes[i].name);
        let mut pids: Vec<u32> = marked_processes(|id| id == self.id)
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|&b| b == 0).any(|var| var == name.as_bytes()))
                    .unwrap_or(false)
            })
            .collect();
        if let Some(child) = &self.nodes[i].child {
            pids.push(child.id());
        }
        pids
    }

    /// Sets what every process of the cluster needs: the marker, the cookie's
    /// HOME, the private epmd, loopback-only distribution for `rabbitmqctl`, and
    /// no RabbitMQ or Erlang settings inherited from the test's environment.
    fn environment(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("RABBITMQ_") || key.starts_with("ERL_") {
                cmd.env_remove(&*key);
            }
        }
        cmd.env(MARKER, &self.id)
            .env("HOME", self.dir.path().join("home"))
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(
                "RABBITMQ_CONF_ENV_FILE",
                self.dir.path().join("home/rabbitmq-env.conf"),
            )
            // rabbitmqctl's own distribution port: any free one (not the fixed
            // 35672-35682 range, which parallel tests would share), on loopback.
            .env("RABBITMQ_CTL_DIST_PORT_MIN", "0")
            .env("RABBITMQ_CTL_DIST_PORT_MAX", "0")
            .env(
                "RABBITMQ_CTL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            );
    }

    /// Writes node `i`'s `rabbitmq.conf` and `enabled_plugins`.
    fn write_config(&self, i: usize) {
        let node = &self.nodes[i];
        let conf = format!(
            "listeners.tcp.default = 127.0.0.1:{amqp}\n\
             mqtt.listeners.tcp.default = 127.0.0.1:{mqtt}\n\
             mqtt.allow_anonymous = {anonymous}\n\
             mqtt.vhost = /\n\
             mqtt.exchange = amq.topic\n\
             log.console = false\n\
             log.file.level = info\n\
             disk_free_limit.absolute = 1MB\n\
             {extra}\n",
            amqp = node.amqp_port,
            mqtt = node.mqtt_port,
            anonymous = self.options.allow_anonymous,
            extra = self.options.extra_conf,
        );
        std::fs::write(node.dir.join("rabbitmq.conf"), conf).expect("write rabbitmq.conf");
        std::fs::write(node.dir.join("enabled_plugins"), "[rabbitmq_mqtt].\n")
            .expect("write enabled_plugins");
    }

    /// Starts node `i`'s `rabbitmq-server` (output appended to `stdout.log`).
    fn spawn_node(&mut self, i: usize) {
        let node = &self.nodes[i];
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("stdout.log"))
            .expect("open stdout.log");
        let mut cmd = Command::new(RABBITMQ_SERVER);
        self.environment(&mut cmd);
        cmd.current_dir(&node.dir)
            .env("RABBITMQ_NODENAME", &node.name)
            .env("RABBITMQ_MNESIA_BASE", node.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", node.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", node.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                node.dir.join("advanced.config"),
            )
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                node.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", node.dir.join("rabbitmq.pid"))
            .env("RABBITMQ_DIST_PORT", node.dist_port.to_string())
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone stdout.log"))
            .stderr(out);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {RABBITMQ_SERVER}: {e}"));
        self.nodes[i].child = Some(child);
    }

    /// Waits until node `i` answers an MQTT CONNECT (as `guest`) with CONNACK 0.
    fn wait_mqtt(&mut self, i: usize, limit: Duration) {
        let port = self.nodes[i].mqtt_port;
        let probe = format!("{}-probe-{}", self.id, i + 1);
        let mut last = String::from("not tried");
        let mut exited = None;
        let up = poll(limit, || {
            if let Some(Ok(Some(status))) = self.nodes[i].child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            match mqtt_connack(port, &probe, Some(("guest", "guest"))) {
                Ok(0) => true,
                Ok(code) => {
                    last = format!("CONNACK {code}");
                    false
                }
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        if let Some(status) = exited {
            self.nodes[i].child = None;
            panic!(
                "RabbitMQ node {i} ({}) exited ({status}) while booting; its log tail:\n{}",
                self.nodes[i].name,
                self.log_tail(i)
            );
        }
        assert!(
            up,
            "RabbitMQ node {i} ({}) did not accept MQTT on 127.0.0.1:{port} within {} s (last: {last}); its log tail:\n{}",
            self.nodes[i].name,
            limit.as_secs(),
            self.log_tail(i)
        );
    }

    /// Waits until `cluster_status` (asked of each running node) lists every
    /// running node as running.
    fn wait_clustered(&mut self, limit: Duration) {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .collect();
        let names: Vec<String> = running
            .iter()
            .map(|&i| self.nodes[i].name.clone())
            .collect();
        let mut last = String::new();
        let ok = poll(limit, || {
            running.iter().all(|&i| {
                let out = self.ctl_output(i, &["cluster_status", "--formatter", "json"]);
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let listed: Vec<String> = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("running_nodes").cloned())
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default();
                let all = names.iter().all(|n| listed.contains(n));
                if !all {
                    last = format!("node {i}: {text}{}", String::from_utf8_lossy(&out.stderr));
                }
                all
            })
        });
        let tails: String = running
            .iter()
            .map(|&i| format!("\nnode {i}'s log tail:\n{}", self.log_tail(i)))
            .collect();
        assert!(
            ok,
            "cluster_status did not list {names:?} as running within {} s; last answer: {last}{tails}",
            limit.as_secs()
        );
    }
}

/// Writes a random Erlang cookie to `home/.erlang.cookie` (mode 0400) and an
/// empty `rabbitmq-env.conf` (so that /etc/rabbitmq/rabbitmq-env.conf is not read).
fn write_cookie(home: &Path) {
    use rand::Rng;
    use std::os::unix::fs::PermissionsExt;
    let cookie: String = rand::thread_rng()
        .sample_iter(rand::distributions::Uniform::from(b'A'..=b'Z'))
        .take(32)
        .map(char::from)
        .collect();
    let path = home.join(".erlang.cookie");
    std::fs::write(&path, cookie).expect("write .erlang.cookie");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))
        .expect("chmod .erlang.cookie");
    std::fs::write(home.join("rabbitmq-env.conf"), "").expect("write rabbitmq-env.conf");
}

/// Starts `epmd -port PORT -address 127.0.0.1` (marked with `id`) and waits until it listens.
fn start_epmd(id: &str, port: u16) -> Child {
    let mut epmd = Command::new("epmd")
        .args(["-port", &port.to_string(), "-address", "127.0.0.1"])
        .env(MARKER, id)
        .env("ERL_EPMD_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start epmd (Debian package erlang-base, a dependency of rabbitmq-server)");
    let mut exited = false;
    let up = poll(Duration::from_secs(10), || {
        if let Ok(Some(_)) = epmd.try_wait() {
            exited = true;
            return true;
        }
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up || exited {
        let _ = epmd.kill();
        let _ = epmd.wait();
        panic!("epmd did not listen on 127.0.0.1:{port} (exited: {exited})");
    }
    epmd
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        // Every process of the cluster carries the marker: shells, beam.smp and its
        // helpers (erl_child_setup, inet_gethost), a running rabbitmqctl, epmd.
        // beam.smp first, so that each node's shell reaps it and exits; then
        // whatever is left.
        let beams: Vec<u32> = (0..self.nodes.len())
            .flat_map(|i| self.node_beam(i))
            .collect();
        signal("-KILL", &beams);
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                wait_child(&mut child, Duration::from_secs(5));
            }
        }
        signal("-KILL", &marked_processes(|id| id == self.id));
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
    }
}
