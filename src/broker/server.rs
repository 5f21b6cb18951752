//! The tokio server: listeners, one task per connection, one task that owns
//! the [`super::BrokerCore`], and a maintenance task (credential and
//! certificate reloads).
//!
//! Each connection task drives a sans-IO [`super::connection::Connection`]
//! and sends what it decoded to the core task over one mpsc queue; the core
//! task sends packets back over per-connection queues. Shutdown is a
//! `watch` signal every task listens to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::auth::{ListenerError, ListenerSecurity};
use crate::config::BrokerConfig;
use crate::transport::Acceptor;

use super::core::BrokerCore;
use super::metrics::MetricsEndpoint;
use super::pending::PendingSlots;
use super::persist::RecordError;
use super::persist_store::{DurableStore, Loaded, SessionStore, StoreError};
use super::server_conn::{ConnectionTask, ListenerContext, ListenerOpen};
use super::server_core::{conn_channel, run_core, stopped, CoreEvent};
use super::stats::Stats;

/// Events queued towards the core task before connection tasks wait.
const CORE_QUEUE: usize = 4096;
/// How often credential files (PSK store, password file) are checked for
/// changes: a revoked LWA identity's sessions close within this plus the
/// core's turn, which README and LWA.md 12 promise to be under 1 s after
/// `mqtt-lwa psk revoke|rotate` returns. Reading a changed-or-not PSK file
/// four times a second costs one small read and hash.
const RELOAD_EVERY: Duration = Duration::from_millis(250);
/// Certificates are re-read less often: every this many credential checks (3 s).
const TLS_RELOAD_TICKS: u32 = 12;

/// A bound, not yet running broker.
pub struct Server {
    config: BrokerConfig,
    listeners: Vec<BoundListener>,
    stats: Arc<Stats>,
    shutdown: Arc<watch::Sender<bool>>,
    store: Option<(Arc<dyn DurableStore>, Loaded)>,
    metrics: Option<(TcpListener, SocketAddr)>,
}

struct BoundListener {
    tcp: TcpListener,
    addr: SocketAddr,
    ctx: Arc<ListenerContext>,
    /// This listener's open connections, for the metrics.
    open: Arc<AtomicU64>,
}

/// Controls a running server from outside (tests, signal handlers).
#[derive(Clone)]
pub struct ServerHandle {
    shutdown: Arc<watch::Sender<bool>>,
}

/// Why the server could not start, or ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration has no `[[listener]]`.
    #[error("no listener configured")]
    NoListener,
    /// `bind_with` got a security setting per listener, but not as many.
    #[error("{listeners} listeners but {securities} security settings")]
    SecurityCount {
        /// Listeners configured.
        listeners: usize,
        /// Security settings given.
        securities: usize,
    },
    /// A listener's files or settings are wrong.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// A listener's address could not be bound.
    #[error("listener {listener:?}: bind {addr}: {error}")]
    Bind {
        /// The listener's name.
        listener: String,
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The `[metrics]` address could not be bound.
    #[error("[metrics] listen {addr}: {error}")]
    Metrics {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The persistence store could not be opened or read.
    #[error("persistence store: {0}")]
    Store(StoreError),
    /// The task that opens the persistence store panicked.
    #[error("persistence store: {0}")]
    StoreTask(tokio::task::JoinError),
    /// A stored session or message could not be restored.
    #[error("persistence store: {0}")]
    Restore(RecordError),
    /// The core task panicked.
    #[error("core task failed: {0}")]
    CoreTask(tokio::task::JoinError),
}

impl Server {
    /// Binds every listener of `config`; `securities[i]` applies to listener `i`.
    pub async fn bind_with(
        config: BrokerConfig,
        securities: Vec<ListenerSecurity>,
    ) -> Result<Server, ServerError> {
        if config.listeners.is_empty() {
            return Err(ServerError::NoListener);
        }
        if securities.len() != config.listeners.len() {
            return Err(ServerError::SecurityCount {
                listeners: config.listeners.len(),
                securities: securities.len(),
            });
        }
        let store = match config.persistence_path() {
            Some(path) => {
                let loaded = tokio::task::spawn_blocking(move || {
                    let store = SessionStore::open(&path)?;
                    let loaded = store.load()?;
                    let store: Arc<dyn DurableStore> = Arc::new(store);
                    Ok::<_, StoreError>((store, loaded))
                })
                .await
                .map_err(ServerError::StoreTask)?
                .map_err(ServerError::Store)?;
                Some(loaded)
            }
            None => None,
        };
        for warning in config.lwa_exposure_warnings() {
            tracing::warn!("{warning}");
        }
        let stats = Arc::new(Stats::default());
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for (listener, security) in config.listeners.iter().zip(securities) {
            let acceptor = crate::auth::acceptor::acceptor(listener)?;
            let tcp =
                TcpListener::bind(listener.bind)
                    .await
                    .map_err(|error| ServerError::Bind {
                        listener: listener.name.clone(),
                        addr: listener.bind,
                        error,
                    })?;
            let addr = tcp.local_addr().map_err(|error| ServerError::Bind {
                listener: listener.name.clone(),
                addr: listener.bind,
                error,
            })?;
            let open =
                stats.listener_gauge(&listener.name, super::metrics::listener_mode(listener));
            listeners.push(BoundListener {
                tcp,
                addr,
                open,
                ctx: Arc::new(ListenerContext {
                    name: listener.name.clone(),
                    acceptor,
                    security,
                    limits: config.limits.clone(),
                    stats: stats.clone(),
                }),
            });
        }
        let metrics = super::metrics::bind(&config).await?;
        let (shutdown, _) = watch::channel(false);
        Ok(Server {
            config,
            listeners,
            stats,
            shutdown: Arc::new(shutdown),
            store,
            metrics,
        })
    }

    /// Binds every listener of `config`, building each listener's security from its settings.
    pub async fn bind(config: BrokerConfig) -> Result<Server, ServerError> {
        let securities = ListenerSecurity::from_configs(&config.listeners)?;
        Server::bind_with(config, securities).await
    }

    /// The bound addresses, in listener order (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    /// The bound `[metrics]` address (port 0 resolved), if metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// The broker's counters (shared with the running server).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Puts `wrap` around the persistence store the core task commits to
    /// (no effect without persistence): tests use it to make commits fail.
    pub fn wrap_store(
        &mut self,
        wrap: impl FnOnce(Arc<dyn DurableStore>) -> Arc<dyn DurableStore>,
    ) {
        if let Some((store, loaded)) = self.store.take() {
            self.store = Some((wrap(store), loaded));
        }
    }

    /// A handle that can stop the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shutdown: self.shutdown.clone(),
        }
    }

    /// Serves until shut down.
    pub async fn run(self) -> Result<(), ServerError> {
        let Server {
            config,
            listeners,
            stats,
            shutdown,
            store,
            metrics,
        } = self;
        let started = std::time::Instant::now();
        let mut core = BrokerCore::new(config.limits.clone(), stats.clone(), started);
        core.set_sys_interval(Some(Duration::from_secs(config.sys_interval_secs)), started);
        let store = match store {
            Some((store, loaded)) => {
                let policies: Vec<_> = listeners
                    .iter()
                    .map(|l| (l.ctx.name.clone(), l.ctx.security.policy.clone()))
                    .collect();
                let policy_of = |name: &str| {
                    policies
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, p)| p.clone())
                };
                let count = loaded.sessions.len();
                core.restore(loaded.sessions, loaded.retained, &policy_of, started)
                    .map_err(ServerError::Restore)?;
                core.enable_persistence();
                tracing::info!(sessions = count, "persistent state loaded");
                Some(store)
            }
            None => None,
        };
        let (core_tx, core_rx) = mpsc::channel(CORE_QUEUE);
        let core_task = tokio::spawn(run_core(
            core,
            core_rx,
            shutdown.subscribe(),
            stats.clone(),
            store,
        ));
        let next_conn = Arc::new(AtomicU64::new(1));
        let qos0_limit = config.limits.max_queued_messages.max(16);
        let pending = PendingSlots::for_listeners(&config.limits, &config.listeners);
        let contexts: Vec<Arc<ListenerContext>> = listeners.iter().map(|l| l.ctx.clone()).collect();
        let mut accept_tasks = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            accept_tasks.push(tokio::spawn(accept_loop(
                index,
                listener,
                core_tx.clone(),
                shutdown.subscribe(),
                next_conn.clone(),
                qos0_limit,
                pending.clone(),
            )));
        }
        let maintenance = tokio::spawn(maintenance_loop(
            contexts,
            core_tx.clone(),
            shutdown.subscribe(),
            config.clone(),
        ));
        drop(core_tx);
        if let Some((tcp, addr)) = metrics {
            tracing::info!(%addr, "metrics endpoint listening");
            let endpoint = MetricsEndpoint::new(stats.clone(), config.clone());
            tokio::spawn(endpoint.serve(tcp, shutdown.subscribe()));
        }
        let mut stop = shutdown.subscribe();
        stopped(&mut stop).await;
        for task in accept_tasks {
            let _ = task.await;
        }
        let _ = maintenance.await;
        core_task.await.map_err(ServerError::CoreTask)?;
        Ok(())
    }
}

impl ServerHandle {
    /// Stops accepting, disconnects every client with 0x8B Server shutting
    /// down (wills published), and makes `run` return.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

async fn accept_loop(
    index: usize,
    listener: BoundListener,
    core: mpsc::Sender<CoreEvent>,
    mut shutdown: watch::Receiver<bool>,
    next_conn: Arc<AtomicU64>,
    qos0_limit: usize,
    pending: PendingSlots,
) {
    let BoundListener {
        tcp,
        addr,
        ctx,
        open: listener_open,
    } = listener;
    loop {
        let (socket, remote_addr) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = %ctx.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let Some(pending_slot) = pending.try_acquire(index, remote_addr.ip()) else {
            // Too many clients still unauthenticated (in all, on this listener
            // or from this source): no handshake work for this one.
            tracing::debug!(%remote_addr, listener = %ctx.name, "too many pending handshakes; closed");
            drop(socket);
            continue;
        };
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let open = ctx.stats.connections.fetch_add(1, Ordering::Relaxed);
        Stats::add(&ctx.stats.connections_total, 1);
        let over_quota = open >= ctx.limits.max_connections as u64;
        let (tx, commands) = conn_channel(qos0_limit);
        if core.send(CoreEvent::Open { conn, tx }).await.is_err() {
            ctx.stats.connections.fetch_sub(1, Ordering::Relaxed);
            break;
        }
        tracing::debug!(conn, %remote_addr, listener = %ctx.name, "accepted");
        let open = ListenerOpen::new(listener_open.clone());
        let task = ConnectionTask {
            ctx: ctx.clone(),
            conn,
            tcp: socket,
            remote_addr,
            over_quota,
            pending: pending_slot,
            commands,
            core: core.clone(),
        };
        tokio::spawn(task.run(open));
    }
    tracing::debug!(%addr, "listener closed");
}

/// Reloads credential files and TLS certificates; closes revoked sessions.
///
/// Also publishes each TLS listener's certificate expiry under
/// `$SYS/broker/tls/<listener>/certificate/` (retained) at start, every
/// `sys_interval_secs`, and after a certificate reload.
async fn maintenance_loop(
    contexts: Vec<Arc<ListenerContext>>,
    core: mpsc::Sender<CoreEvent>,
    mut shutdown: watch::Receiver<bool>,
    config: BrokerConfig,
) {
    let sys_every = Duration::from_secs(config.sys_interval_secs);
    let mut expiry_due = (!sys_every.is_zero()).then(tokio::time::Instant::now);
    let mut tick: u32 = 0;
    loop {
        if expiry_due.is_some_and(|due| due <= tokio::time::Instant::now()) {
            let cfg = config.clone();
            let messages = tokio::task::spawn_blocking(move || {
                crate::broker::certificate_expiry(&cfg)
                    .iter()
                    .flat_map(crate::broker::CertificateExpiry::sys_messages)
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            if !messages.is_empty() {
                let _ = core.send(CoreEvent::SysPublish(messages)).await;
            }
            expiry_due = Some(tokio::time::Instant::now() + sys_every);
        }
        tokio::select! {
            _ = tokio::time::sleep(RELOAD_EVERY) => {}
            _ = stopped(&mut shutdown) => return,
        }
        tick = tick.wrapping_add(1);
        let tls_due = tick % TLS_RELOAD_TICKS == 0;
        for ctx in &contexts {
            let authenticator = ctx.security.authenticator.clone();
            let revoked = tokio::task::spawn_blocking(move || authenticator.reload())
                .await
                .unwrap_or_default();
            if !revoked.is_empty() {
                tracing::info!(listener = %ctx.name, count = revoked.len(), "closing revoked sessions");
                let _ = core.send(CoreEvent::Revoke(revoked)).await;
            }
            if let (true, Acceptor::Tls(tls)) = (tls_due, &ctx.acceptor) {
                let tls = tls.clone();
                let name = ctx.name.clone();
                let reloaded = tokio::task::spawn_blocking(move || match tls.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!(listener = %name, "TLS certificate reloaded");
                        true
                    }
                    Ok(false) => false,
                    Err(e) => {
                        tracing::warn!(listener = %name, error = %e, "TLS certificate reload failed; keeping the old one");
                        false
                    }
                })
                .await
                .unwrap_or(false);
                if reloaded && expiry_due.is_some() {
                    // The new certificate's expiry goes out at the next turn.
                    expiry_due = Some(tokio::time::Instant::now());
                }
            }
        }
    }
}
