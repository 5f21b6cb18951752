use std::io;

use super::acceptor as listener_acceptor;
use super::*;
use crate::auth::certs::{self, KeyAlgorithm};
use crate::broker::certificate_expiry;
use crate::config::TlsListenerConfig;
use crate::transport::connect;
use crate::transport::tls::client::{client_config, server_name, ClientTlsOptions};
use crate::transport::BoxStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        certs::init(dir.path(), &[], KeyAlgorithm::EcdsaP256, &["alice"], 30).unwrap();
        Pki { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn listener(&self, require_certificate: bool) -> ListenerConfig {
        ListenerConfig {
            name: "secure".into(),
            mode: ListenerMode::Tls,
            tls: Some(TlsListenerConfig {
                certfile: self.path("broker.crt"),
                keyfile: self.path("broker.key"),
                cafile: Some(self.path("ca.crt")),
                require_certificate,
                use_identity_as_username: false,
                tls_version: None,
                ciphers: Vec::new(),
            }),
            ..ListenerConfig::default()
        }
    }
}

use std::path::PathBuf;

/// Accepts one connection with `acceptor`, echoes one line-sized read back, and reports the CN.
async fn serve_once(
    acceptor: Acceptor,
) -> (u16, tokio::task::JoinHandle<io::Result<Option<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, addr) = listener.accept().await?;
        let mut accepted = acceptor.accept(tcp, addr).await?;
        let mut buf = [0u8; 5];
        accepted.stream.read_exact(&mut buf).await?;
        accepted.stream.write_all(&buf).await?;
        accepted.stream.flush().await?;
        Ok(accepted.tls_client_cn)
    });
    (port, task)
}

async fn ping(stream: &mut BoxStream) {
    stream.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
}

#[tokio::test]
async fn plain_connect_and_accept() {
    let acceptor = listener_acceptor(&ListenerConfig::default()).unwrap();
    assert_eq!(acceptor.mode_name(), "plain");
    let (port, task) = serve_once(acceptor).await;
    let mut s = connect("127.0.0.1", port, None).await.unwrap();
    ping(&mut s).await;
    assert_eq!(task.await.unwrap().unwrap(), None);
}

#[tokio::test]
async fn tls_and_mutual_tls_over_sockets() {
    let pki = Pki::new();
    // Server-authenticated TLS.
    let acceptor = listener_acceptor(&pki.listener(false)).unwrap();
    assert_eq!(acceptor.mode_name(), "tls");
    let (port, task) = serve_once(acceptor).await;
    let cfg = client_config(&ClientTlsOptions {
        ca_file: Some(pki.path("ca.crt")),
        ..ClientTlsOptions::default()
    })
    .unwrap();
    let mut s = connect(
        "localhost",
        port,
        Some((cfg, server_name("localhost").unwrap())),
    )
    .await
    .unwrap();
    ping(&mut s).await;
    assert_eq!(task.await.unwrap().unwrap(), None);

    // Mutual TLS: the client certificate's CN reaches the broker.
    let acceptor = listener_acceptor(&pki.listener(true)).unwrap();
    let (port, task) = serve_once(acceptor).await;
    let cfg = client_config(&ClientTlsOptions {
        ca_file: Some(pki.path("ca.crt")),
        cert_file: Some(pki.path("alice.crt")),
        key_file: Some(pki.path("alice.key")),
        ..ClientTlsOptions::default()
    })
    .unwrap();
    let mut s = connect(
        "127.0.0.1",
        port,
        Some((cfg, server_name("127.0.0.1").unwrap())),
    )
    .await
    .unwrap();
    ping(&mut s).await;
    assert_eq!(task.await.unwrap().unwrap().as_deref(), Some("alice"));
}

#[tokio::test]
async fn tls_client_refuses_a_name_the_certificate_lacks() {
    let pki = Pki::new();
    let (port, _task) = serve_once(listener_acceptor(&pki.listener(false)).unwrap()).await;
    let cfg = client_config(&ClientTlsOptions {
        ca_file: Some(pki.path("ca.crt")),
        ..ClientTlsOptions::default()
    })
    .unwrap();
    let name = server_name("broker.example").unwrap();
    let err = match connect("127.0.0.1", port, Some((cfg, name))).await {
        Ok(_) => panic!("hostname mismatch must fail"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("not valid for name"), "{err}");
}

#[test]
fn tls_listener_configuration_errors_name_the_listener_and_file() {
    let pki = Pki::new();
    let mut no_table = pki.listener(false);
    no_table.tls = None;
    let err = listener_acceptor(&no_table).err().unwrap().to_string();
    assert!(
        err.contains("\"secure\"") && err.contains("[listener.tls]"),
        "{err}"
    );

    let mut missing = pki.listener(false);
    if let Some(t) = missing.tls.as_mut() {
        t.keyfile = pki.path("nope.key");
    }
    let err = listener_acceptor(&missing).err().unwrap().to_string();
    assert!(err.contains("nope.key"), "{err}");

    let mut version = pki.listener(false);
    if let Some(t) = version.tls.as_mut() {
        t.tls_version = Some("tlsv1.1".into());
    }
    let err = listener_acceptor(&version).err().unwrap().to_string();
    assert!(err.contains("tlsv1.1"), "{err}");

    let mut swapped = pki.listener(false);
    if let Some(t) = swapped.tls.as_mut() {
        t.keyfile = pki.path("alice.key");
    }
    assert!(
        listener_acceptor(&swapped).is_err(),
        "key of another certificate"
    );
}

#[test]
fn expiry_of_tls_listeners() {
    let pki = Pki::new();
    let config = BrokerConfig {
        listeners: vec![ListenerConfig::default(), pki.listener(false)],
        ..BrokerConfig::default()
    };
    let list = certificate_expiry(&config);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].listener, "secure");
    assert!((29..=30).contains(&list[0].days_left), "{:?}", list[0]);
    let msgs = list[0].sys_messages();
    assert_eq!(msgs[0].0, "$SYS/broker/tls/secure/certificate/expiry");
    assert!(msgs[0].1.ends_with('Z'), "{}", msgs[0].1);
    assert_eq!(msgs[1].0, "$SYS/broker/tls/secure/certificate/days_left");
    assert_eq!(msgs[1].1, list[0].days_left.to_string());
}

#[test]
fn reload_notices_new_certificate() {
    let pki = Pki::new();
    let acceptor = listener_acceptor(&pki.listener(false)).unwrap();
    assert!(!acceptor.reload_if_changed().unwrap());
    // Replace the broker pair with a fresh one from a second PKI.
    let other = Pki::new();
    std::fs::copy(other.path("broker.crt"), pki.path("broker.crt")).unwrap();
    std::fs::copy(other.path("broker.key"), pki.path("broker.key")).unwrap();
    assert!(acceptor.reload_if_changed().unwrap());
    assert!(!Acceptor::Plain.reload_if_changed().unwrap());
}
