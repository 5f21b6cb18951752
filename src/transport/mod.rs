//! Listeners and streams: plain TCP and TLS (rustls). Moves bytes and knows
//! no MQTT; what it learns about the peer (address, TLS client certificate)
//! is handed up in [`Accepted`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::auth::tls::ReloadableServerConfig;

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
    /// The acceptor a listener's configuration asks for. (Stub: plain until TLS is wired.)
    pub fn from_listener(config: &crate::config::ListenerConfig) -> anyhow::Result<Acceptor> {
        let _ = config;
        Ok(Acceptor::Plain)
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
                let cn = crate::auth::tls::client_common_name(tls.get_ref().1);
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
