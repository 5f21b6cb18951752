//! The transport of each configured listener: a [`crate::config::ListenerConfig`] turned
//! into a [`crate::transport::Acceptor`], with the TLS files read and checked at start-up, so
//! that neither the configuration nor the transport knows the other.

use std::sync::Arc;

use super::ListenerError;
use crate::config::{BrokerConfig, ListenerConfig, ListenerMode};
use crate::transport::tls::{ReloadableServerConfig, ServerTlsOptions, TlsVersion};
use crate::transport::Acceptor;

/// The acceptor a listener's configuration asks for; a TLS listener's files are read and
/// checked now, so bad ones fail at start-up.
pub fn acceptor(config: &ListenerConfig) -> Result<Acceptor, ListenerError> {
    match config.mode {
        ListenerMode::Plain => Ok(Acceptor::Plain),
        ListenerMode::Tls => {
            let opts = server_tls_options(config)?;
            let reloadable =
                ReloadableServerConfig::new(opts).map_err(|error| ListenerError::Tls {
                    listener: config.name.clone(),
                    error,
                })?;
            Ok(Acceptor::Tls(Arc::new(reloadable)))
        }
    }
}

/// The rustls server options of a `mode = "tls"` listener.
pub fn server_tls_options(config: &ListenerConfig) -> Result<ServerTlsOptions, ListenerError> {
    let Some(tls) = &config.tls else {
        return Err(ListenerError::TlsTableMissing {
            listener: config.name.clone(),
        });
    };
    let min_version = match &tls.tls_version {
        None => TlsVersion::Tls12,
        Some(v) => v.parse().map_err(|error| ListenerError::TlsVersion {
            listener: config.name.clone(),
            error,
        })?,
    };
    Ok(ServerTlsOptions {
        cert_file: tls.certfile.clone(),
        key_file: tls.keyfile.clone(),
        ca_file: tls.cafile.clone(),
        require_certificate: tls.require_certificate,
        min_version,
        cipher_suites: tls.ciphers.clone(),
    })
}

/// The acceptors of every listener of `config`, in listener order.
pub fn acceptors(config: &BrokerConfig) -> Result<Vec<Acceptor>, ListenerError> {
    config.listeners.iter().map(acceptor).collect()
}

#[cfg(test)]
mod tests;
