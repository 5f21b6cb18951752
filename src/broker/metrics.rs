//! The Prometheus endpoint: `GET /metrics` on the `[metrics] listen`
//! address, in the OpenMetrics text format written by `prometheus-client`.
//!
//! The broker's counters stay plain atomics in [`Stats`] (the sans-IO core
//! increments them and must not depend on a metrics library); a
//! [`Collector`] reads them, with their labels, at each scrape. Certificate
//! expiry is read from the listeners' certificate files at scrape time too,
//! so a reloaded certificate shows without delay.
//!
//! The HTTP side is a minimal GET responder on a tokio `TcpListener`: the
//! tree has no HTTP server (no hyper), and one read-only path with
//! `Connection: close` does not justify adding one.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::{BrokerConfig, ListenerConfig, ListenerMode};

use super::server_core::stopped;
use super::stats::{DropReason, Stats};

/// Longest request head read before answering 400.
const MAX_REQUEST: usize = 8 * 1024;
/// A scraper that sends nothing for this long is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The security mode a listener is labelled with: `tls` for a TLS
/// transport, else `lwa` when it takes LWA clients, `password` when it has a
/// password file, `plain` otherwise.
pub fn listener_mode(listener: &ListenerConfig) -> &'static str {
    if listener.mode == ListenerMode::Tls {
        "tls"
    } else if listener.lwa_psk_file.is_some() {
        "lwa"
    } else if listener.password_file.is_some() {
        "password"
    } else {
        "plain"
    }
}

/// Reads [`Stats`] and the certificates at each scrape.
#[derive(Debug)]
struct BrokerCollector {
    stats: Arc<Stats>,
    config: BrokerConfig,
}

impl BrokerCollector {
    fn counter(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: u64,
    ) -> Result<(), std::fmt::Error> {
        let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        ConstCounter::new(value).encode(metric)
    }
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.stats;
        Self::counter(
            &mut encoder,
            "messages_received",
            "PUBLISH packets received from clients",
            Stats::get(&stats.messages_received),
        )?;
        Self::counter(
            &mut encoder,
            "messages_sent",
            "PUBLISH packets sent to clients",
            Stats::get(&stats.messages_sent),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "messages_dropped",
                "Messages dropped, by reason",
                None,
                MetricType::Counter,
            )?;
            for (reason, count) in DropReason::ALL.iter().zip(&stats.dropped_by_reason) {
                let labels = [("reason", reason.label())];
                ConstCounter::new(Stats::get(count)).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "auth_failures",
                "Failed authentications and TLS handshakes, by mode and reason",
                None,
                MetricType::Counter,
            )?;
            let by = stats
                .auth_failures_by
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default();
            for ((mode, reason), count) in by {
                let labels = [("mode", mode), ("reason", reason)];
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }
        Self::counter(
            &mut encoder,
            "store_errors",
            "Persistence commits that failed (their inputs were not acknowledged)",
            Stats::get(&stats.store_errors),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "connections",
                "Open connections, by listener and mode",
                None,
                MetricType::Gauge,
            )?;
            let open: Vec<(String, &'static str, u64)> = stats
                .listeners
                .lock()
                .map(|all| {
                    all.iter()
                        .map(|g| (g.listener.clone(), g.mode, Stats::get(&g.open)))
                        .collect()
                })
                .unwrap_or_default();
            for (listener, mode, n) in &open {
                let labels = [("listener", listener.as_str()), ("mode", *mode)];
                let n = i64::try_from(*n).unwrap_or(i64::MAX);
                ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "tls_certificate_expiry",
                "Time until the earliest notAfter of a TLS listener's certificate chain (negative once expired)",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            let now = time::OffsetDateTime::now_utc();
            for cert in crate::broker::certificate_expiry_at(&self.config, now) {
                let left = (cert.not_after - now).whole_seconds();
                let labels = [("listener", cert.listener.as_str())];
                ConstGauge::new(left).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The metrics registry of one broker.
pub struct MetricsEndpoint {
    registry: Arc<Registry>,
}

impl MetricsEndpoint {
    /// A registry exposing `stats` and `config`'s certificates, names
    /// prefixed `mqtt_lwa_`.
    pub fn new(stats: Arc<Stats>, config: BrokerConfig) -> MetricsEndpoint {
        let mut registry = Registry::with_prefix("mqtt_lwa");
        registry.register_collector(Box::new(BrokerCollector { stats, config }));
        MetricsEndpoint {
            registry: Arc::new(registry),
        }
    }

    /// The exposition text, as a scrape would get it.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Serves `GET /metrics` on `tcp` until shutdown.
    pub(crate) async fn serve(self, tcp: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let endpoint = Arc::new(self);
        loop {
            let (socket, peer) = tokio::select! {
                r = tcp.accept() => match r {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = stopped(&mut shutdown) => return,
            };
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                if let Err(e) = endpoint.answer(socket).await {
                    tracing::debug!(%peer, error = %e, "metrics request failed");
                }
            });
        }
    }

    async fn answer(&self, mut socket: TcpStream) -> std::io::Result<()> {
        let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut socket))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out")
            })??;
        let response = match request_target(&head) {
            Some(("GET", "/metrics")) => {
                let endpoint = Self {
                    registry: self.registry.clone(),
                };
                // Certificate files are read while encoding: off the runtime threads.
                match tokio::task::spawn_blocking(move || endpoint.render()).await {
                    Ok(Ok(body)) => response("200 OK", CONTENT_TYPE, &body),
                    _ => response(
                        "500 Internal Server Error",
                        "text/plain",
                        "encoding failed\n",
                    ),
                }
            }
            Some((_, "/metrics")) => response("405 Method Not Allowed", "text/plain", "GET only\n"),
            Some(_) => response("404 Not Found", "text/plain", "see /metrics\n"),
            None => response("400 Bad Request", "text/plain", "bad request\n"),
        };
        socket.write_all(response.as_bytes()).await?;
        socket.shutdown().await
    }
}

/// Reads up to the end of the request head (or [`MAX_REQUEST`] bytes).
async fn read_head(socket: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Method and path of an HTTP/1.x request line (query string dropped).
fn request_target(head: &str) -> Option<(&str, &str)> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    parts.next()?.starts_with("HTTP/1.").then_some(())?;
    let path = target.split('?').next()?;
    Some((method, path))
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 128);
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    out
}

/// Binds the metrics listener when `[metrics] listen` is set.
pub(crate) async fn bind(
    config: &BrokerConfig,
) -> Result<Option<(TcpListener, SocketAddr)>, super::server::ServerError> {
    use super::server::ServerError;
    let Some(addr) = config.metrics.listen else {
        return Ok(None);
    };
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|error| ServerError::Metrics { addr, error })?;
    let local = tcp
        .local_addr()
        .map_err(|error| ServerError::Metrics { addr, error })?;
    Ok(Some((tcp, local)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_target("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_target("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(request_target("GET /metrics\r\n"), None);
        assert_eq!(request_target(""), None);
    }

    #[test]
    fn families_and_labels() {
        let stats = Arc::new(Stats::default());
        stats.dropped(DropReason::QueueFull);
        stats.auth_failed("password", "bad_credentials");
        stats.tls_handshake_failed("handshake_failed");
        Stats::add(&stats.store_errors, 2);
        let open = stats.listener_gauge("plain", "plain");
        Stats::add(&open, 3);
        let text = MetricsEndpoint::new(stats.clone(), BrokerConfig::default())
            .render()
            .unwrap();
        for line in [
            "mqtt_lwa_messages_dropped_total{reason=\"queue_full\"} 1",
            "mqtt_lwa_messages_dropped_total{reason=\"too_large\"} 0",
            "mqtt_lwa_auth_failures_total{mode=\"password\",reason=\"bad_credentials\"} 1",
            "mqtt_lwa_auth_failures_total{mode=\"tls\",reason=\"handshake_failed\"} 1",
            "mqtt_lwa_store_errors_total 2",
            "mqtt_lwa_connections{listener=\"plain\",mode=\"plain\"} 3",
            "# TYPE mqtt_lwa_tls_certificate_expiry_seconds gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        assert_eq!(
            Stats::get(&stats.auth_failures),
            1,
            "TLS handshakes are not in $SYS"
        );
    }
}
