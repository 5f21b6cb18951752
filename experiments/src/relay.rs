//! A byte-counting TCP relay between a client and the broker under test.
//!
//! Bytes on the wire are counted where they are on the wire: the relay sits
//! on loopback between a client and the broker, copies TCP payload both ways
//! and adds up what it copied. It works for every client and every broker
//! (ours and mosquitto) without instrumenting either. Only the connections
//! that measure bytes go through it; throughput and latency are measured on
//! direct connections, so the extra hop does not distort them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Bytes copied so far by one relay, per direction.
#[derive(Debug, Default)]
pub struct WireCounters {
    to_broker: AtomicU64,
    to_client: AtomicU64,
}

/// A snapshot of [`WireCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireBytes {
    /// Client to broker.
    pub to_broker: u64,
    /// Broker to client.
    pub to_client: u64,
}

impl WireBytes {
    /// Both directions.
    pub fn total(self) -> u64 {
        self.to_broker + self.to_client
    }

    /// What was copied between `earlier` and `self`.
    pub fn since(self, earlier: WireBytes) -> WireBytes {
        WireBytes {
            to_broker: self.to_broker.saturating_sub(earlier.to_broker),
            to_client: self.to_client.saturating_sub(earlier.to_client),
        }
    }
}

impl WireCounters {
    /// The bytes copied so far.
    pub fn snapshot(&self) -> WireBytes {
        WireBytes {
            to_broker: self.to_broker.load(Ordering::SeqCst),
            to_client: self.to_client.load(Ordering::SeqCst),
        }
    }
}

/// A listening relay to one broker address; every accepted connection is counted.
#[derive(Debug)]
pub struct CountingRelay {
    addr: SocketAddr,
    counters: Arc<WireCounters>,
    task: JoinHandle<()>,
}

impl CountingRelay {
    /// Listens on an ephemeral loopback port and relays to `broker`.
    pub async fn start(broker: SocketAddr) -> std::io::Result<Self> {
        // A broker behind an emulated link is not on a local address: the relay stays on
        // loopback beside the clients, so the link is crossed once, between relay and broker.
        let ip = if broker.ip().is_loopback() {
            broker.ip()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
        let listener = TcpListener::bind((ip, 0)).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(WireCounters::default());
        let shared = Arc::clone(&counters);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counters = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Ok(upstream) = TcpStream::connect(broker).await {
                        relay(client, upstream, counters).await;
                    }
                });
            }
        });
        Ok(CountingRelay {
            addr,
            counters,
            task,
        })
    }

    /// Where clients connect instead of the broker.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes relayed so far over all connections.
    pub fn bytes(&self) -> WireBytes {
        self.counters.snapshot()
    }

    /// The byte counts once traffic has stopped (unchanged for 50 ms, at most 2 s).
    ///
    /// A client may return from a call before its last flight (an LWA AUTH,
    /// a PUBCOMP) has crossed the relay; waiting for quiet makes it counted.
    pub async fn settled_bytes(&self) -> WireBytes {
        let mut last = self.bytes();
        for _ in 0..40 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let now = self.bytes();
            if now == last {
                break;
            }
            last = now;
        }
        last
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: TcpStream, counters: Arc<WireCounters>) {
    // Small writes must leave at once, as they would without the relay.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let up = copy_counted(cr, uw, Arc::clone(&counters), true);
    let down = copy_counted(ur, cw, counters, false);
    let _ = tokio::join!(up, down);
}

async fn copy_counted(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counters: Arc<WireCounters>,
    to_broker: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Some(chunk) = buf.get(..n) else { break };
        // Counted before forwarding: whatever a peer has received is already counted.
        let counter = if to_broker {
            &counters.to_broker
        } else {
            &counters.to_client
        };
        counter.fetch_add(n as u64, Ordering::SeqCst);
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_both_directions() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(b"hello world").await.unwrap();
        });
        let relay = CountingRelay::start(echo_addr).await.unwrap();
        let mut c = TcpStream::connect(relay.addr()).await.unwrap();
        c.write_all(b"12345").await.unwrap();
        let mut back = [0u8; 11];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello world");
        assert_eq!(
            relay.settled_bytes().await,
            WireBytes {
                to_broker: 5,
                to_client: 11
            }
        );
    }
}
