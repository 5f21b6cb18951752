//! The gateway tests' upstream: a real two-node RabbitMQ cluster on 127.0.0.1
//! (tests/cli_support/rabbitmq.rs), checked with Debian's mosquitto clients
//! speaking MQTT 3.1.1: messages cross nodes, a persistent session made on one
//! node is resumed on the other, and a node comes back after a restart.
//! One test: starting the cluster is the expensive part (about 15 s).

mod cli_support;

use cli_support::rabbitmq::{mqtt_connack, RabbitCluster};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A running `mosquitto_sub -d` whose standard output is read line by line.
struct MosquittoSub {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl MosquittoSub {
    /// Starts `mosquitto_sub -V mqttv311 -h 127.0.0.1 -p PORT -d ARGS` with
    /// line-buffered output (a pipe is block-buffered otherwise).
    fn spawn(port: u16, args: &[&str]) -> MosquittoSub {
        let mut child = Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-V",
                "mqttv311",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-d",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto_sub (Debian package mosquitto-clients)");
        let (tx, lines) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        MosquittoSub {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits up to 20 s for an output line for which `want` holds; panics
    /// with everything seen so far, saying `what` was awaited, if none comes.
    fn expect(&mut self, what: &str, want: impl Fn(&str) -> bool) {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let done = want(&line);
                    self.seen.push(line);
                    if done {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "mosquitto_sub: no {what} within 20 s; its output:\n{}",
            self.seen.join("\n")
        );
    }
}

impl Drop for MosquittoSub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_pub -V mqttv311 -h 127.0.0.1 -p PORT ARGS`, checked to exit 0.
fn publish(port: u16, args: &[&str]) -> Output {
    let out = Command::new("mosquitto_pub")
        .args(["-V", "mqttv311", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run mosquitto_pub (Debian package mosquitto-clients)");
    assert!(
        out.status.success(),
        "mosquitto_pub -p {port} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A QoS 1 message published on node `from` reaches a subscriber on node `to`.
fn crosses(cluster: &RabbitCluster, from: usize, to: usize, topic: &str, payload: &str) {
    let id = format!("cross-{from}-{to}-{}", std::process::id());
    let mut sub = MosquittoSub::spawn(
        cluster.mqtt_port(to),
        &["-i", &id, "-q", "1", "-t", topic, "-C", "1", "-W", "30"],
    );
    sub.expect("SUBACK", |l| l.contains("received SUBACK"));
    publish(
        cluster.mqtt_port(from),
        &["-q", "1", "-t", topic, "-m", payload],
    );
    sub.expect(
        &format!("message {payload:?} from node {from} on node {to}"),
        |l| l == payload,
    );
}

#[test]
fn two_node_rabbitmq_cluster_routes_resumes_sessions_and_survives_a_restart() {
    let t0 = Instant::now();
    let mut cluster = RabbitCluster::start(2);
    eprintln!(
        "RabbitCluster::start(2): {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // Upstream credentials: the MQTT CONNECT's user name and password are a
    // RabbitMQ user's; a wrong password is refused (CONNACK 4) although
    // anonymous clients are allowed.
    cluster.add_user("gw-upstream", "gw-secret");
    for i in 0..2 {
        let port = cluster.mqtt_port(i);
        assert_eq!(
            mqtt_connack(port, "cred-ok", Some(("gw-upstream", "gw-secret"))),
            Ok(0),
            "node {i}: the added user's CONNECT"
        );
        assert_eq!(
            mqtt_connack(port, "cred-bad", Some(("gw-upstream", "wrong"))),
            Ok(4),
            "node {i}: a wrong password"
        );
        assert_eq!(
            mqtt_connack(port, "anon", None),
            Ok(0),
            "node {i}: anonymous"
        );
    }

    // (a) A message published on node 1 reaches a subscriber on node 2.
    crosses(&cluster, 0, 1, "gw/cross", "across-the-cluster");

    // (b) A persistent session made on node 1 is resumed on node 2 with the
    // QoS 1 message published (on node 2) while it was away.
    let id = format!("persist-{}", std::process::id());
    let mut first = MosquittoSub::spawn(
        cluster.mqtt_port(0),
        &["-c", "-i", &id, "-q", "1", "-t", "gw/persist", "-E"],
    );
    first.expect("SUBACK", |l| l.contains("received SUBACK"));
    first.expect("DISCONNECT", |l| l.contains("sending DISCONNECT"));
    publish(
        cluster.mqtt_port(1),
        &["-q", "1", "-t", "gw/persist", "-m", "while-away"],
    );
    let mut resumed = MosquittoSub::spawn(
        cluster.mqtt_port(1),
        &[
            "-c",
            "-i",
            &id,
            "-q",
            "1",
            "-t",
            "gw/persist",
            "-C",
            "1",
            "-W",
            "30",
        ],
    );
    resumed.expect("the message queued for the persistent session", |l| {
        l == "while-away"
    });

    // (c) An upstream restart: node 1 stops (its MQTT port closes), node 2 still
    // takes CONNECTs, node 1 comes back into the cluster and (a) works again.
    let t1 = Instant::now();
    cluster.stop_node(0);
    eprintln!("stop_node(0): {:.1} s", t1.elapsed().as_secs_f64());
    assert!(
        mqtt_connack(cluster.mqtt_port(0), "down", None).is_err(),
        "node 1's MQTT port still answers after stop_node(0)"
    );
    assert_eq!(
        mqtt_connack(cluster.mqtt_port(1), "survivor", None),
        Ok(0),
        "node 2 refused a CONNECT while node 1 was down; its log tail:\n{}",
        cluster.log_tail(1)
    );
    let t2 = Instant::now();
    cluster.start_node(0);
    eprintln!("start_node(0): {:.1} s", t2.elapsed().as_secs_f64());
    crosses(&cluster, 0, 1, "gw/after-restart", "after-the-restart");
    eprintln!("whole test: {:.1} s", t0.elapsed().as_secs_f64());
}
