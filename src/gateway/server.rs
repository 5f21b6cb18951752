//! The gateway's tokio side: binds the listeners, and per client moves bytes
//! between the client's socket, its [`Connection`], its [`Relay`] and the
//! upstream socket. No protocol decision is made here.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::auth::{AuthDecision, ConnectAuthenticator, ListenerSecurity, PeerInfo, Principal};
use crate::broker::connection::{Action, Connection, ConnectionSettings};
use crate::broker::pending::{PendingSlot, PendingSlots};
use crate::broker::server_conn::{needs_preview, run_authenticator, write_out, ReadBuffer};
use crate::broker::{Limits, Stats};
use crate::codec::{ConnAck, Connect, ReasonCode};
use crate::config::BrokerConfig;
use crate::transport::{Acceptor, BoxStream};

use super::relay::{Relay, RelaySettings, Step, UpstreamUp};
use super::template::Template;
use super::upstream::Upstreams;

/// How long closing a socket may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a departed client's upstream connection may still take to open,
/// so that what the client sent before leaving goes up.
const OPEN_GRACE: Duration = Duration::from_secs(10);
/// How long a stopping gateway waits for its connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How often credential files are re-read (as the broker does): a revoked
/// LWA identity or deleted user loses its connections within this.
const RELOAD_EVERY: Duration = Duration::from_millis(250);
/// TLS certificates are checked every this many reloads.
const TLS_RELOAD_TICKS: u32 = 12;

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration has no `[gateway]` table.
    #[error("the configuration has no [gateway] table (upstream = [\"HOST:PORT\", ...])")]
    NotAGateway,
    /// A listener's security could not be set up.
    #[error(transparent)]
    Listener(#[from] crate::auth::ListenerError),
    /// TLS toward the upstream could not be set up.
    #[error("[gateway.tls]: {0}")]
    UpstreamTls(#[from] crate::transport::tls::TlsError),
    /// The upstream password file could not be read.
    #[error("[gateway] password_file {path}: {error}")]
    PasswordFile {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// A template did not parse (validation normally catches this first).
    #[error("[gateway] {0}")]
    Template(#[from] super::template::TemplateError),
    /// A listener could not bind.
    #[error("listener {listener:?} cannot bind {addr}: {error}")]
    Bind {
        /// Listener name.
        listener: String,
        /// Address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
}

/// What the connections of one listener share.
struct ListenerContext {
    name: String,
    acceptor: Acceptor,
    security: ListenerSecurity,
    limits: Limits,
}

/// What every connection of the gateway shares.
struct Shared {
    relay: Arc<RelaySettings>,
    /// Principals whose credentials were revoked: their connections close (0x98).
    revoked: tokio::sync::broadcast::Sender<Arc<Vec<Principal>>>,
    upstreams: Arc<Upstreams>,
    stats: Arc<Stats>,
    open: AtomicUsize,
    next_id: AtomicU64,
    max_connections: usize,
    /// Budgets of unauthenticated connections, as in the broker.
    pending: PendingSlots,
}

/// A bound gateway, ready to [`Gateway::run`].
pub struct Gateway {
    listeners: Vec<(TcpListener, SocketAddr, Arc<ListenerContext>)>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

/// Stops a running gateway.
#[derive(Clone)]
pub struct GatewayHandle {
    shutdown: watch::Sender<bool>,
}

impl GatewayHandle {
    /// Asks the gateway to stop: clients get DISCONNECT 0x8B.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Gateway {
    /// Sets up security, the upstream list and binds every listener.
    pub async fn bind(config: BrokerConfig) -> Result<Gateway, GatewayError> {
        let gw = config.gateway.clone().ok_or(GatewayError::NotAGateway)?;
        config.validate().map_err(GatewayError::Config)?;
        let password = match (&gw.password, &gw.password_file) {
            (Some(p), _) => Some(Zeroizing::new(p.clone().into_bytes())),
            (None, Some(path)) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| {
                    GatewayError::PasswordFile {
                        path: path.display().to_string(),
                        error,
                    }
                })?);
                let first = text.lines().next().unwrap_or_default();
                Some(Zeroizing::new(first.as_bytes().to_vec()))
            }
            (None, None) => None,
        };
        let relay = Arc::new(RelaySettings {
            client_id_template: Template::parse(&gw.client_id_template)?,
            username: gw.username.as_deref().map(Template::parse).transpose()?,
            password,
            limits: config.limits.clone(),
        });
        let upstreams = Arc::new(Upstreams::new(&gw)?);
        let securities = ListenerSecurity::from_configs(&config.listeners)?;
        let mut listeners = Vec::new();
        for (l, security) in config.listeners.iter().zip(securities) {
            let acceptor = crate::auth::acceptor::acceptor(l)?;
            let tcp = TcpListener::bind(l.bind)
                .await
                .map_err(|error| GatewayError::Bind {
                    listener: l.name.clone(),
                    addr: l.bind,
                    error,
                })?;
            let addr = tcp.local_addr().map_err(|error| GatewayError::Bind {
                listener: l.name.clone(),
                addr: l.bind,
                error,
            })?;
            listeners.push((
                tcp,
                addr,
                Arc::new(ListenerContext {
                    name: l.name.clone(),
                    acceptor,
                    security,
                    limits: config.limits.clone(),
                }),
            ));
        }
        let (shutdown, _) = watch::channel(false);
        let pending = PendingSlots::for_listeners(&config.limits, &config.listeners);
        Ok(Gateway {
            listeners,
            shared: Arc::new(Shared {
                relay,
                revoked: tokio::sync::broadcast::channel(16).0,
                upstreams,
                stats: Arc::new(Stats::default()),
                open: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                max_connections: config.limits.max_connections,
                pending,
            }),
            shutdown,
        })
    }

    /// The bound addresses, in listener order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|(_, a, _)| *a).collect()
    }

    /// A handle that stops the gateway.
    pub fn handle(&self) -> GatewayHandle {
        GatewayHandle {
            shutdown: self.shutdown.clone(),
        }
    }

    /// The gateway's counters (bytes, authentication and record failures).
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Serves until shut down, then gives connections a moment to close.
    pub async fn run(self) {
        let Gateway {
            listeners,
            shared,
            shutdown,
        } = self;
        let mut tasks = tokio::task::JoinSet::new();
        let mut accepts = tokio::task::JoinSet::new();
        let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel(64);
        let contexts: Vec<_> = listeners.iter().map(|(_, _, c)| c.clone()).collect();
        accepts.spawn(maintenance(contexts, shared.clone()));
        for (index, (tcp, _, ctx)) in listeners.into_iter().enumerate() {
            let tx = conn_tx.clone();
            let pending = shared.pending.clone();
            accepts.spawn(async move {
                loop {
                    match tcp.accept().await {
                        Ok((socket, remote)) => {
                            let Some(slot) = pending.try_acquire(index, remote.ip()) else {
                                // Too many clients still unauthenticated (in all, on this
                                // listener or from this source): no handshake work for this one.
                                tracing::debug!(%remote, listener = %ctx.name, "too many pending handshakes; closed");
                                continue;
                            };
                            tracing::debug!(%remote, listener = %ctx.name, "accepted");
                            if tx.send((socket, remote, ctx.clone(), slot)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        drop(conn_tx);
        let mut stop = shutdown.subscribe();
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                accepted = conn_rx.recv() => {
                    let Some((socket, remote, ctx, slot)) = accepted else { break };
                    let task = ClientTask::new(shared.clone(), ctx, socket, remote, shutdown.subscribe(), slot);
                    tasks.spawn(task.run());
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        accepts.abort_all();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
}

/// Re-reads credential files and TLS certificates, as the broker does; tells
/// every connection which principals were revoked.
async fn maintenance(contexts: Vec<Arc<ListenerContext>>, shared: Arc<Shared>) {
    let mut tick: u32 = 0;
    loop {
        tokio::time::sleep(RELOAD_EVERY).await;
        tick = tick.wrapping_add(1);
        for ctx in &contexts {
            let authenticator = ctx.security.authenticator.clone();
            let revoked = tokio::task::spawn_blocking(move || authenticator.reload())
                .await
                .unwrap_or_default();
            if !revoked.is_empty() {
                tracing::info!(listener = %ctx.name, count = revoked.len(), "closing revoked connections");
                let _ = shared.revoked.send(Arc::new(revoked));
            }
            if let (0, Acceptor::Tls(tls)) = (tick % TLS_RELOAD_TICKS, &ctx.acceptor) {
                let tls = tls.clone();
                let name = ctx.name.clone();
                let _ = tokio::task::spawn_blocking(move || match tls.reload_if_changed() {
                    Ok(true) => tracing::info!(listener = %name, "TLS certificate reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(listener = %name, error = %e, "TLS certificate reload failed; keeping the old one"),
                })
                .await;
            }
        }
    }
}

type AuthFuture = Pin<Box<dyn Future<Output = (AuthDecision, Option<ConnAck>)> + Send>>;
type OpenFuture = Pin<Box<dyn Future<Output = Result<(BoxStream, UpstreamUp), String>> + Send>>;

/// One client connection and its upstream connection.
struct ClientTask {
    shared: Arc<Shared>,
    ctx: Arc<ListenerContext>,
    tcp: TcpStream,
    remote: SocketAddr,
    stop: watch::Receiver<bool>,
    conn: u64,
    over_quota: bool,
    /// Held until the client authenticated (or left).
    pending: PendingSlot,
}

/// Counts a connection open until dropped.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ClientTask {
    fn new(
        shared: Arc<Shared>,
        ctx: Arc<ListenerContext>,
        tcp: TcpStream,
        remote: SocketAddr,
        stop: watch::Receiver<bool>,
        pending: PendingSlot,
    ) -> Self {
        let open = shared.open.fetch_add(1, Ordering::Relaxed);
        let conn = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let over_quota = open >= shared.max_connections;
        let _ = tcp.set_nodelay(true);
        ClientTask {
            shared,
            ctx,
            tcp,
            remote,
            stop,
            conn,
            over_quota,
            pending,
        }
    }

    async fn run(self) {
        let ClientTask {
            shared,
            ctx,
            tcp,
            remote,
            mut stop,
            conn,
            over_quota,
            mut pending,
        } = self;
        let _open = OpenGuard(shared.clone());
        let mut revocations = shared.revoked.subscribe();
        let timeout = Duration::from_secs(ctx.limits.connect_timeout_secs);
        let accepted = match tokio::time::timeout(timeout, ctx.acceptor.accept(tcp, remote)).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                tracing::debug!(conn, %remote, error = %e, "transport handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(conn, %remote, "transport handshake timed out");
                return;
            }
        };
        let mut client_stream = accepted.stream;
        let mut peer = Some(PeerInfo {
            remote_addr: Some(accepted.remote_addr),
            listener: ctx.name.clone(),
            tls: accepted.tls,
            tls_client_cn: accepted.tls_client_cn,
            session_present: None,
        });
        let now = Instant::now();
        let mut machine = Connection::new(
            ConnectionSettings {
                conn,
                listener: ctx.name.clone(),
                policy: ctx.security.policy.clone(),
                limits: ctx.limits.clone(),
                over_quota,
                stats: shared.stats.clone(),
            },
            now,
        );
        let assign_id = format!("gw-{:016x}", rand_core::OsRng.next_u64());
        let mut relay = Relay::new(shared.relay.clone(), assign_id, now);
        let mut upstream: Option<BoxStream> = None;
        let mut auth: Option<AuthFuture> = None;
        let mut opening: Option<OpenFuture> = None;
        // Small while quiet, grown while busy (the broker's buffer): an idle
        // client and its upstream hold 64 bytes each, not a fixed 16 KiB.
        let mut cbuf = ReadBuffer::new();
        let mut ubuf = ReadBuffer::new();
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        loop {
            if !machine.output().is_empty() {
                let written = write_out(&mut client_stream, machine.output(), &shared.stats).await;
                machine.output_written();
                if written.is_err() {
                    machine.peer_closed();
                }
            }
            if let Some(up) = upstream.as_mut() {
                if !relay.output().is_empty() {
                    let written = write_out(up, relay.output(), &shared.stats).await;
                    relay.output_written(Instant::now());
                    if written.is_err() {
                        relay.upstream_lost(&mut machine);
                        continue;
                    }
                }
            }
            if machine.is_closed() {
                break;
            }
            if relay.upstream_closed() && upstream.is_some() {
                upstream = None;
            }
            let deadline = match (machine.next_deadline(), relay.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(d) = deadline {
                let d = tokio::time::Instant::from_std(d);
                if timer.deadline() != d {
                    timer.as_mut().reset(d);
                }
            }
            let upstream_readable = upstream.is_some() && relay.upstream_up();
            let actions = tokio::select! {
                _ = stop.changed() => {
                    machine.close(Some(ReasonCode::SERVER_SHUTTING_DOWN));
                    Vec::new()
                }
                revoked = revocations.recv() => {
                    if let Ok(revoked) = revoked {
                        if relay.principal().is_some_and(|p| revoked.iter().any(|r| r.names_same_identity(p))) {
                            machine.close(Some(ReasonCode::ADMINISTRATIVE_ACTION));
                        }
                    }
                    Vec::new()
                }
                r = client_stream.read(cbuf.space()) => match r {
                    Ok(0) | Err(_) => {
                        machine.peer_closed();
                        Vec::new()
                    }
                    Ok(n) => {
                        Stats::add(&shared.stats.bytes_received, n as u64);
                        let actions = machine.receive(cbuf.filled(n), Instant::now());
                        cbuf.adapt(n);
                        actions
                    }
                },
                r = read_upstream(&mut upstream, ubuf.space()), if upstream_readable => {
                    match r {
                        Ok(n) if n > 0 => {
                            relay.upstream_receive(ubuf.filled(n), &mut machine, Instant::now());
                            ubuf.adapt(n);
                        }
                        _ => relay.upstream_lost(&mut machine),
                    }
                    Vec::new()
                }
                (decision, preview) = poll_some(&mut auth), if auth.is_some() => {
                    auth = None;
                    machine.auth_decided(decision, preview, Instant::now())
                }
                opened = poll_some(&mut opening), if opening.is_some() => {
                    opening = None;
                    match opened {
                        Ok((stream, up)) => {
                            tracing::debug!(conn, upstream = up.addr, version = ?up.version, "upstream connected");
                            upstream = Some(stream);
                            relay.upstream_connected(up, &mut machine, Instant::now());
                        }
                        Err(why) => {
                            tracing::warn!(conn, %remote, why, "no upstream reachable");
                            relay.upstream_unreachable(&why, &mut machine);
                        }
                    }
                    Vec::new()
                }
                () = &mut timer, if deadline.is_some() => {
                    let now = Instant::now();
                    machine.poll_timeout(now);
                    relay.poll(now, &mut machine);
                    Vec::new()
                }
            };
            for action in actions {
                match action {
                    Action::Authenticate(connect) => {
                        if let Some(peer) = peer.take() {
                            let preview = needs_preview(&connect).then(|| relay.preview(&connect));
                            auth = Some(authenticate(
                                ctx.security.authenticator.clone(),
                                connect,
                                peer,
                                preview,
                            ));
                        }
                    }
                    Action::CoreConnect(req) => {
                        pending.release();
                        if let Step::OpenUpstream(connect) =
                            relay.client_connected(*req, &mut machine)
                        {
                            opening = Some(Box::pin(shared.upstreams.clone().open(connect)));
                        }
                    }
                    Action::CorePacket(packet) => relay.client_packet(packet, &mut machine),
                }
            }
        }
        // The client is gone. If it left while its upstream connection was
        // still opening (a QoS 0 publisher that says DISCONNECT right after
        // its PUBLISH, say), what it sent meanwhile still goes up.
        if let Some(open) = opening.take() {
            if let Ok(Ok((stream, up))) = tokio::time::timeout(OPEN_GRACE, open).await {
                upstream = Some(stream);
                relay.upstream_connected(up, &mut machine, Instant::now());
            }
        }
        // A DISCONNECT goes up only if the client sent one, so that the
        // upstream publishes its will otherwise.
        let disconnect = machine.take_client_disconnect();
        if let Some(mut up) = upstream.take() {
            let graceful = relay.client_gone(disconnect);
            if !relay.output().is_empty() {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, up.write_all(relay.output())).await;
            }
            if graceful {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, up.shutdown()).await;
            }
        }
        if let Some(out) = machine.take_output() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, client_stream.write_all(&out)).await;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, client_stream.shutdown()).await;
        tracing::debug!(
            conn,
            %remote,
            cause = machine.close_cause().unwrap_or("closed"),
            upstream = relay.cause().unwrap_or("-"),
            "connection closed"
        );
    }
}

async fn read_upstream(upstream: &mut Option<BoxStream>, buf: &mut [u8]) -> std::io::Result<usize> {
    match upstream.as_mut() {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn poll_some<T>(f: &mut Option<Pin<Box<dyn Future<Output = T> + Send>>>) -> T {
    match f.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Runs the authenticator with the preview's Session Present (as the broker does).
fn authenticate(
    authenticator: Arc<dyn ConnectAuthenticator>,
    connect: Box<Connect>,
    mut peer: PeerInfo,
    preview: Option<ConnAck>,
) -> AuthFuture {
    Box::pin(async move {
        peer.session_present = preview.as_ref().map(|p| p.session_present);
        (
            run_authenticator(authenticator, connect, peer).await,
            preview,
        )
    })
}
