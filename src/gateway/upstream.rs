//! Opening a client's upstream connection: each configured address in turn
//! (failover), TCP or TLS, CONNECT and CONNACK under a timeout, and MQTT 5.0
//! falling back to 3.1.1 where the upstream refuses 5.0 (remembered per
//! address for the gateway's life). Only bytes and the CONNACK come back;
//! the relay decides what they mean for the client.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::codec::{self, ConnAck, Decoder, Packet, ProtocolVersion};
use crate::config::{split_host_port, GatewayConfig, UpstreamProtocol};
use crate::transport::tls::client::{client_config, ClientTlsOptions};
use crate::transport::tls::TlsError;
use crate::transport::BoxStream;

use super::relay::{UpstreamConnect, UpstreamUp};

/// The upstream brokers of one gateway and how to reach them.
pub struct Upstreams {
    addrs: Vec<(String, u16)>,
    protocol: UpstreamProtocol,
    timeout: Duration,
    tls: Option<(Arc<rustls::ClientConfig>, Option<String>)>,
    /// Addresses found to speak only 3.1.1 (protocol = "auto").
    v311_only: Mutex<HashSet<String>>,
}

/// Why one address did not give a CONNACK.
#[derive(Debug)]
struct AttemptError(String);

impl Upstreams {
    /// From `[gateway]` (already validated).
    pub fn new(config: &GatewayConfig) -> Result<Self, TlsError> {
        let addrs = config
            .upstream
            .iter()
            .filter_map(|a| split_host_port(a).ok())
            .collect();
        let tls = match &config.tls {
            None => None,
            Some(t) => {
                let opts = ClientTlsOptions {
                    ca_file: t.cafile.clone(),
                    cert_file: t.certfile.clone(),
                    key_file: t.keyfile.clone(),
                    version: None,
                    insecure: false,
                };
                Some((client_config(&opts)?, t.server_name.clone()))
            }
        };
        Ok(Upstreams {
            addrs,
            protocol: config.protocol,
            timeout: Duration::from_secs(config.connect_timeout_secs),
            tls,
            v311_only: Mutex::new(HashSet::new()),
        })
    }

    /// Connects to the first address that answers CONNECT with a CONNACK
    /// (a refusal included: it is the upstream's answer, not a failure to
    /// reach it). The error names every address tried and why it failed.
    pub async fn open(
        self: Arc<Self>,
        connect: Box<UpstreamConnect>,
    ) -> Result<(BoxStream, UpstreamUp), String> {
        let mut failures = Vec::new();
        for (host, port) in &self.addrs {
            let addr = format!("{host}:{port}");
            let versions: &[ProtocolVersion] = match self.protocol {
                UpstreamProtocol::V5 => &[ProtocolVersion::V5],
                UpstreamProtocol::V311 => &[ProtocolVersion::V311],
                UpstreamProtocol::Auto if self.known_v311(&addr) => &[ProtocolVersion::V311],
                UpstreamProtocol::Auto => &[ProtocolVersion::V5, ProtocolVersion::V311],
            };
            for (i, &version) in versions.iter().enumerate() {
                let packet = match version {
                    ProtocolVersion::V5 => &connect.v5,
                    ProtocolVersion::V311 => &connect.v311,
                };
                let attempt =
                    tokio::time::timeout(self.timeout, self.attempt(host, *port, version, packet))
                        .await
                        .unwrap_or_else(|_| {
                            Err(AttemptError(format!(
                                "no CONNACK within {} s",
                                self.timeout.as_secs()
                            )))
                        });
                match attempt {
                    Ok(Some((stream, connack, rest))) => {
                        return Ok((
                            stream,
                            UpstreamUp {
                                version,
                                connack,
                                rest,
                                addr,
                            },
                        ))
                    }
                    // Refused 5.0: try 3.1.1 on the same address.
                    Ok(None) if i + 1 < versions.len() => {
                        tracing::info!(upstream = addr, "upstream refuses MQTT 5.0: using 3.1.1");
                        if let Ok(mut known) = self.v311_only.lock() {
                            known.insert(addr.clone());
                        }
                    }
                    Ok(None) => failures.push(format!("{addr}: refuses MQTT {version:?}")),
                    Err(AttemptError(why)) => {
                        tracing::debug!(upstream = addr, why, "upstream attempt failed");
                        failures.push(format!("{addr}: {why}"));
                        break;
                    }
                }
            }
        }
        Err(failures.join("; "))
    }

    fn known_v311(&self, addr: &str) -> bool {
        self.v311_only
            .lock()
            .map(|k| k.contains(addr))
            .unwrap_or(false)
    }

    /// One CONNECT on one address: the CONNACK, or `None` when the upstream
    /// refused the protocol version (a 3.1.1 return code 1, or a close
    /// without CONNACK after a 5.0 CONNECT).
    async fn attempt(
        &self,
        host: &str,
        port: u16,
        version: ProtocolVersion,
        connect: &codec::Connect,
    ) -> Result<Option<(BoxStream, ConnAck, BytesMut)>, AttemptError> {
        let tls = match &self.tls {
            None => None,
            Some((config, name)) => {
                let name = name.as_deref().unwrap_or(host);
                let name = ServerName::try_from(name.to_owned())
                    .map_err(|e| AttemptError(format!("TLS server name {name:?}: {e}")))?;
                Some((config.clone(), name))
            }
        };
        let mut stream = crate::transport::connect(host, port, tls)
            .await
            .map_err(|e| AttemptError(e.to_string()))?;
        let mut out = BytesMut::new();
        codec::encode(
            &Packet::Connect(Box::new(connect.clone())),
            version,
            &mut out,
        )
        .map_err(|e| AttemptError(format!("cannot encode CONNECT: {e}")))?;
        stream
            .write_all(&out)
            .await
            .map_err(|e| AttemptError(e.to_string()))?;
        let mut inbuf = BytesMut::with_capacity(256);
        let mut decoder = Decoder::with_version(1 << 20, version);
        loop {
            // A 3.1.1 CONNACK refusing the protocol level, whatever we sent.
            if version == ProtocolVersion::V5
                && inbuf.len() >= 4
                && inbuf.get(..2) == Some(&[0x20, 0x02])
                && inbuf.get(3) == Some(&0x01)
            {
                return Ok(None);
            }
            match decoder.decode(&mut inbuf) {
                Ok(Some(Packet::ConnAck(connack))) => {
                    if version == ProtocolVersion::V5
                        && connack.reason_code == codec::ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
                    {
                        return Ok(None);
                    }
                    return Ok(Some((stream, *connack, inbuf)));
                }
                Ok(Some(other)) => {
                    return Err(AttemptError(format!(
                        "answered CONNECT with {}",
                        other.name()
                    )))
                }
                Ok(None) => {}
                Err(e) => return Err(AttemptError(format!("malformed CONNACK: {e}"))),
            }
            let n = stream
                .read_buf(&mut inbuf)
                .await
                .map_err(|e| AttemptError(e.to_string()))?;
            if n == 0 {
                return if version == ProtocolVersion::V5 {
                    // Brokers that know only 3.1.1 may just close.
                    Ok(None)
                } else {
                    Err(AttemptError("closed the connection without CONNACK".into()))
                };
            }
        }
    }
}
