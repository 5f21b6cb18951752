//! The tokio server: listeners, one task per connection, one task that owns
//! the [`super::BrokerCore`]. (API fixed; body being written.)

use std::net::SocketAddr;

use crate::auth::ListenerSecurity;
use crate::config::BrokerConfig;

/// A bound, not yet running broker.
pub struct Server {
    config: BrokerConfig,
    securities: Vec<ListenerSecurity>,
}

/// Controls a running server from outside (tests, signal handlers).
#[derive(Clone)]
pub struct ServerHandle {}

impl Server {
    /// Binds every listener of `config`; `securities[i]` applies to listener `i`.
    pub async fn bind_with(
        config: BrokerConfig,
        securities: Vec<ListenerSecurity>,
    ) -> anyhow::Result<Server> {
        Ok(Server { config, securities })
    }

    /// Binds every listener of `config`, building each listener's security from its settings.
    pub async fn bind(config: BrokerConfig) -> anyhow::Result<Server> {
        let securities = config
            .listeners
            .iter()
            .map(ListenerSecurity::from_config)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Server::bind_with(config, securities).await
    }

    /// The bound addresses, in listener order (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let _ = (&self.config, &self.securities);
        Vec::new()
    }

    /// A handle that can stop the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {}
    }

    /// Serves until shut down.
    pub async fn run(self) -> anyhow::Result<()> {
        Ok(())
    }
}

impl ServerHandle {
    /// Stops accepting, disconnects every client with 0x8B Server shutting
    /// down (wills published), and makes `run` return.
    pub fn shutdown(&self) {}
}
