//! Two gateways in front of a real two-node RabbitMQ 3.10 cluster (issue 16):
//! RabbitMQ's MQTT plugin speaks 3.1.1 only, so the gateways find that out
//! themselves (`protocol = "auto"`) and log in with an account of their own.
//! A publisher on gateway A reaches subscribers on gateway B across cluster
//! nodes; gateway A is killed and its clients' persistent sessions resume
//! through B with the QoS 1 messages queued meanwhile; a cluster node
//! restarts and the gateways fail over to the other node; a wrong upstream
//! password is reported to clients as the server being unavailable.
//! One test: starting the cluster is the expensive part (about 15 s).

mod cli_support;
mod common;
mod gateway_support;

use std::time::Duration;

use cli_support::rabbitmq::RabbitCluster;
use common::unique;
use gateway_support::{
    next_message, our_pub, our_sub, our_sub_resuming, stock_pub, stock_sub, stock_sub_resuming,
    succeeded, GatewayProc,
};

const WAIT: Duration = Duration::from_secs(20);

/// Gateway config: a plaintext and an LWA listener, upstreams in the given order.
fn config(dir: &std::path::Path, upstreams: &[u16], password: &str) -> String {
    let list: Vec<String> = upstreams
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n\n\
         [[listener]]\nname = \"lwa\"\nbind = \"127.0.0.1:0\"\nlwa_psk_file = \"{}/lwa.psk\"\n\n\
         [gateway]\nupstream = [{}]\nusername = \"gw-upstream\"\npassword = \"{password}\"\nconnect_timeout_secs = 3\n",
        dir.display(),
        list.join(", ")
    )
}

#[test]
fn two_gateways_in_front_of_a_two_node_rabbitmq_cluster() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["dev1", "dev2"] {
        let out = std::process::Command::new(common::mqtt_lwa_bin())
            .args(["psk", "add", "lwa.psk", id])
            .current_dir(dir.path())
            .output()
            .unwrap();
        succeeded("psk add", &out);
    }
    let mut cluster = RabbitCluster::start(2);
    cluster.add_user("gw-upstream", "gw-secret");
    let (n0, n1) = (cluster.mqtt_port(0), cluster.mqtt_port(1));
    let mut a = GatewayProc::start(dir.path(), "a", &config(dir.path(), &[n0, n1], "gw-secret"));
    let b = GatewayProc::start(dir.path(), "b", &config(dir.path(), &[n1, n0], "gw-secret"));
    let key = |id: &str| dir.path().join(format!("{id}.key")).display().to_string();
    let (k1, k2) = (key("dev1"), key("dev2"));
    let lwa1 = ["--lwa-id", "dev1", "--lwa-key", k1.as_str()];
    let lwa2 = [
        "--lwa-id",
        "dev2",
        "--lwa-key",
        k2.as_str(),
        "--lwa-version",
        "2",
    ];

    // Across gateways and cluster nodes: an LWA publisher on A (node 0), a
    // stock subscriber and an LWA2 subscriber on B (node 1).
    let mut stock = stock_sub(&b.port(0), &["-V", "311", "-q", "1", "-t", "across/#"]);
    let mut args = lwa2.to_vec();
    args.extend(["-q", "1", "-t", "across/#"]);
    let mut sealed = our_sub(&b.port(1), &args);
    let mut args = lwa1.to_vec();
    args.extend(["-q", "1", "-t", "across/x", "-m", "from A"]);
    succeeded("LWA publish on gateway A", &our_pub(&a.port(1), &args));
    for sub in [&mut stock, &mut sealed] {
        assert_eq!(
            next_message(sub, WAIT),
            Some("across/x from A".to_owned()),
            "seen {:#?}\ngateway A:\n{}\ngateway B:\n{}",
            sub.seen,
            a.log(),
            b.log()
        );
    }
    // RabbitMQ refused MQTT 5.0: both gateways speak 3.1.1 to it.
    assert!(a.log().contains("using 3.1.1"), "{}", a.log());
    assert!(a.log().contains("version=V311"), "{}", a.log());

    // Persistent sessions through A, then A is killed.
    let stock_id = unique("rabbit-stock");
    let lwa_id = unique("rabbit-lwa");
    let mut s1 = stock_sub(
        &a.port(0),
        &[
            "-V",
            "311",
            "-c",
            "-i",
            &stock_id,
            "-q",
            "1",
            "-t",
            "queued/stock",
        ],
    );
    let mut args = lwa1.to_vec();
    args.extend([
        "-c",
        "-x",
        "600",
        "-i",
        &lwa_id,
        "-q",
        "1",
        "-t",
        "queued/lwa",
    ]);
    let mut l1 = our_sub(&a.port(1), &args);
    a.kill();
    s1.kill();
    l1.kill();
    for i in 0..3 {
        for topic in ["queued/stock", "queued/lwa"] {
            let m = format!("q{i}");
            succeeded(
                "publish while they are away",
                &stock_pub(&b.port(0), &["-q", "1", "-t", topic, "-m", &m]),
            );
        }
    }
    // Back through B, which is on the other node: the queued messages arrive.
    let mut s2 = stock_sub_resuming(
        &b.port(0),
        &[
            "-V",
            "311",
            "-c",
            "-i",
            &stock_id,
            "-q",
            "1",
            "-t",
            "queued/stock",
            "-C",
            "3",
        ],
    );
    let mut args = lwa1.to_vec();
    args.extend([
        "-c",
        "-x",
        "600",
        "-i",
        &lwa_id,
        "-q",
        "1",
        "-t",
        "queued/lwa",
        "-C",
        "3",
    ]);
    let mut l2 = our_sub_resuming(&b.port(1), &args);
    for (sub, topic) in [(&mut s2, "queued/stock"), (&mut l2, "queued/lwa")] {
        let got: Vec<_> = (0..3).filter_map(|_| next_message(sub, WAIT)).collect();
        assert_eq!(
            got,
            ["q0", "q1", "q2"].map(|m| format!("{topic} {m}")),
            "queued QoS 1 through the other gateway and node; seen {:#?}\ngateway B:\n{}",
            sub.seen,
            b.log()
        );
    }

    // An upstream restart: node 1 (B's first choice) stops. B's clients lose
    // their connections; new ones fail over to node 0; node 1 comes back.
    let mut on_b = stock_sub(&b.port(0), &["-V", "311", "-q", "1", "-t", "restart/#"]);
    cluster.stop_node(1);
    // mosquitto_sub reconnects by itself: its second CONNECT shows it lost the first.
    let reconnect = on_b.wait_line(WAIT, |l| l.contains("sending CONNECT"));
    assert!(
        reconnect.is_some(),
        "the client was not disconnected when node 1 stopped; seen {:#?}\ngateway B:\n{}",
        on_b.seen,
        b.log()
    );
    let mut args = lwa2.to_vec();
    args.extend(["-q", "1", "-t", "restart/#"]);
    let mut failed_over = our_sub(&b.port(1), &args);
    succeeded(
        "publish during the restart",
        &stock_pub(
            &b.port(0),
            &["-q", "1", "-t", "restart/x", "-m", "via node 0"],
        ),
    );
    assert_eq!(
        next_message(&mut failed_over, WAIT),
        Some("restart/x via node 0".to_owned()),
        "gateway B:\n{}",
        b.log()
    );
    cluster.start_node(1);
    let mut back = stock_sub(
        &cluster.mqtt_port(1).to_string(),
        &[
            "-V",
            "311",
            "-u",
            "gw-upstream",
            "-P",
            "gw-secret",
            "-q",
            "1",
            "-t",
            "restart/#",
        ],
    );
    succeeded(
        "publish after the restart",
        &stock_pub(
            &b.port(0),
            &["-q", "1", "-t", "restart/y", "-m", "node 1 back"],
        ),
    );
    for sub in [&mut failed_over, &mut back] {
        assert_eq!(
            next_message(sub, WAIT),
            Some("restart/y node 1 back".to_owned())
        );
    }

    // A gateway with the wrong upstream password: clients hear why.
    let c = GatewayProc::start(dir.path(), "c", &config(dir.path(), &[n0, n1], "wrong"));
    let out = our_pub(&c.port(0), &["-V", "5", "-t", "x", "-m", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server unavailable") && err.contains("credentials"),
        "{err}"
    );
}
