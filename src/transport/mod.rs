//! Listeners and streams: plain TCP and TLS (rustls, [`tls`]). Moves bytes and knows
//! no MQTT, no configuration file and no security mode (the lowest layer: what it learns
//! about the peer, address and TLS client certificate, is handed up in [`Accepted`]; the
//! listeners of a configuration are set up by `auth::acceptor`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub mod tls;

use tls::{ReloadableServerConfig, TlsError};

/// A byte stream the broker or client can speak MQTT over.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A boxed [`Stream`]: TCP or TLS over TCP.
pub type BoxStream = Box<dyn Stream>;

/// A connection accepted by a listener, with what the transport knows about the peer.
pub struct Accepted {
    /// The stream to speak MQTT over.
    pub stream: BoxStream,
    /// The peer's socket address.
    pub remote_addr: SocketAddr,
    /// True for TLS.
    pub tls: bool,
    /// Common Name of the verified client certificate (mutual TLS).
    pub tls_client_cn: Option<String>,
}

/// Turns accepted TCP sockets into MQTT streams.
#[derive(Clone)]
pub enum Acceptor {
    /// Plain TCP.
    Plain,
    /// TLS with a server configuration that can be reloaded.
    Tls(Arc<ReloadableServerConfig>),
}

impl Acceptor {
    /// Rebuilds a TLS listener's configuration if its certificate, key or CA
    /// file changed (called periodically or on SIGHUP); `Ok(true)` when it did.
    /// Open connections keep their session; new handshakes use the new files.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        match self {
            Acceptor::Plain => Ok(false),
            Acceptor::Tls(config) => config.reload_if_changed(),
        }
    }

    /// "plain" or "tls", as printed in `listening on ADDR (MODE)`.
    pub fn mode_name(&self) -> &'static str {
        match self {
            Acceptor::Plain => "plain",
            Acceptor::Tls(_) => "tls",
        }
    }

    /// Completes the transport handshake on an accepted socket.
    pub async fn accept(&self, tcp: TcpStream, remote_addr: SocketAddr) -> io::Result<Accepted> {
        let _ = tcp.set_nodelay(true);
        match self {
            Acceptor::Plain => Ok(Accepted {
                stream: Box::new(tcp),
                remote_addr,
                tls: false,
                tls_client_cn: None,
            }),
            Acceptor::Tls(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config.current());
                let tls = acceptor.accept(tcp).await?;
                let cn = tls::client_common_name(tls.get_ref().1);
                Ok(Accepted {
                    stream: Box::new(tls),
                    remote_addr,
                    tls: true,
                    tls_client_cn: cn,
                })
            }
        }
    }
}

/// Opens a client connection to `host:port`, over TLS when `tls` is given
/// (the rustls client config, and the name the broker certificate must match).
pub async fn connect(
    host: &str,
    port: u16,
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls_pki_types::ServerName<'static>,
    )>,
) -> io::Result<BoxStream> {
    let tcp = TcpStream::connect((host, port)).await?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Ok(Box::new(tcp)),
        Some((config, name)) => {
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(Box::new(stream))
        }
    }
}
