//! The client side of the experiment: for one broker in one security mode,
//! times connection set-ups, counts handshake and per-message bytes through
//! a relay, holds idle connections to weigh the broker's memory, and runs
//! every (payload, QoS) cell for latency and throughput with
//! [`mqtt_lwa::client`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use rustls_pki_types::ServerName;

use super::broker::{Credentials, LWA_IDENTITY, PASSWORD, TOPIC_PREFIX, USER};
use super::matrix::{BrokerKind, Mode, Profile};
use super::memory::IdleMemory;
use super::procstat::{cpu_ticks, Process, TICKS_PER_SECOND};
use super::relay::{CountingRelay, WireBytes};
use super::results::{CellResult, ModeResult, Percentiles};
use super::storm::StormResult;
use super::{crosscheck, memory, storm};
use mqtt_lwa::auth::lwa::{LwaClientAuthenticator, LwaVersion};
use mqtt_lwa::client::{Client, ClientError, ConnectOptions};
use mqtt_lwa::codec::{Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions};
use mqtt_lwa::transport::tls::client::ClientTlsOptions;
use mqtt_lwa::transport::tls::TlsVersion;

/// Errors of one (broker, mode) measurement.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The client failed.
    #[error("client: {0}")]
    Client(#[from] ClientError),
    /// Reading `/proc` or a socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Something did not arrive in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// How long a subscriber waits for the next message before a cell counts the rest as lost
/// (generous: on the shared 2-core machine a loaded debug build stalled for over 3 s once).
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent QoS 1/2 publishes in the throughput run (the brokers' Receive Maximum is 100).
const WINDOW: usize = 64;

/// The broker one measurement talks to.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Which broker.
    pub broker: BrokerKind,
    /// The broker's process (for CPU and memory; local or behind a stats port).
    pub process: Process,
    /// Its listener for `mode`.
    pub addr: SocketAddr,
    /// Security mode of the listener.
    pub mode: Mode,
    /// Credentials the broker was configured with.
    pub creds: &'a Credentials,
    /// The TLS client of a TLS mode, built once per block (see [`TlsClient`]).
    pub tls: Option<&'a TlsClient>,
}

/// The TLS implementation of a mode's client.
enum TlsStack {
    /// Every certificate mode.
    Rustls(Arc<rustls::ClientConfig>),
    /// `tls13-psk`: OpenSSL, which has external PSKs (rustls has none).
    #[cfg(feature = "tls-psk")]
    OpensslPsk(openssl::ssl::SslConnector),
}

impl std::fmt::Debug for TlsStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsStack::Rustls(_) => "rustls",
            #[cfg(feature = "tls-psk")]
            TlsStack::OpensslPsk(_) => "openssl (external PSK)",
        })
    }
}

/// An OpenSSL client for TLS 1.3 with `creds`' PSK under [`LWA_IDENTITY`] (Mosquitto's
/// `psk_file` holds the same line): psk_dhe_ke with OpenSSL's default groups (X25519 first)
/// and suites, no certificates, no session cache (every connection is an external-PSK
/// handshake, as a device without a ticket store makes).
#[cfg(feature = "tls-psk")]
fn openssl_psk_connector(creds: &Credentials) -> Result<openssl::ssl::SslConnector, WorkloadError> {
    use openssl::ssl::{SslConnector, SslMethod, SslSessionCacheMode, SslVersion};
    let ossl = |e: openssl::error::ErrorStack| std::io::Error::other(format!("OpenSSL: {e}"));
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(ossl)?;
    b.set_min_proto_version(Some(SslVersion::TLS1_3))
        .map_err(ossl)?;
    b.set_max_proto_version(Some(SslVersion::TLS1_3))
        .map_err(ossl)?;
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    let key = zeroize::Zeroizing::new(*creds.psk.as_bytes());
    b.set_psk_client_callback(move |_ssl, _hint, identity, psk| {
        // OpenSSL wants the identity NUL-terminated.
        let id = LWA_IDENTITY.as_bytes();
        let (Some(id_out), Some(key_out)) =
            (identity.get_mut(..id.len() + 1), psk.get_mut(..key.len()))
        else {
            return Err(openssl::error::ErrorStack::get());
        };
        id_out[..id.len()].copy_from_slice(id);
        id_out[id.len()] = 0;
        key_out.copy_from_slice(&key[..]);
        Ok(key.len())
    });
    Ok(b.build())
}

/// One rustls client configuration for every connection of a (broker, mode)
/// block, as a device builds it once: TLS modes differ only in what the
/// mode says (version, client certificate, suites and group, resumption),
/// not in per-connection set-up work such as re-reading the CA file.
#[derive(Debug)]
pub struct TlsClient {
    stack: TlsStack,
    mode: Mode,
    /// Set once the warm-up of a resumption block has filled the ticket store:
    /// from then on every connection must resume.
    warmed: std::sync::atomic::AtomicBool,
    /// The resumption mode's ticket store (`None` in every other mode).
    tickets: Option<Arc<WarmUpTicketStore>>,
}

/// The resumption mode's ticket store: rustls's own memory cache, except that during the
/// warm-up it hands out no ticket, so every warm-up handshake is a full one. A server may
/// issue fewer tickets after a resumption than after a full handshake (OpenSSL's default,
/// behind Mosquitto: two after a full handshake, one after a resumption), and rustls uses
/// each ticket once; warm-ups that resumed would then leave the store as empty as they
/// found it, and the storm's and memory phase's concurrent clients would run out of
/// tickets and make full handshakes. Full warm-up handshakes fill the store for any server.
#[derive(Debug)]
struct WarmUpTicketStore {
    cache: rustls::client::ClientSessionMemoryCache,
    /// Warm-up under way: take no tickets.
    filling: std::sync::atomic::AtomicBool,
    /// TLS 1.3 tickets received so far.
    received: std::sync::atomic::AtomicU64,
}

impl rustls::client::ClientSessionStore for WarmUpTicketStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: rustls::NamedGroup) {
        self.cache.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.cache.kx_hint(server_name)
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.cache.set_tls12_session(server_name, value);
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.cache.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.cache.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.cache.insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        if self.filling.load(Ordering::Relaxed) {
            return None;
        }
        self.cache.take_tls13_ticket(server_name)
    }
}

impl TlsClient {
    /// The client for `mode`, or `None` when the mode is not TLS.
    pub fn for_mode(mode: Mode, creds: &Credentials) -> Result<Option<TlsClient>, WorkloadError> {
        if !mode.is_tls() {
            return Ok(None);
        }
        if mode == Mode::Tls13Psk {
            #[cfg(feature = "tls-psk")]
            return Ok(Some(TlsClient {
                stack: TlsStack::OpensslPsk(openssl_psk_connector(creds)?),
                mode,
                warmed: std::sync::atomic::AtomicBool::new(false),
                tickets: None,
            }));
            #[cfg(not(feature = "tls-psk"))]
            return Err(WorkloadError::Io(std::io::Error::other(
                "tls13-psk: this build has no OpenSSL client (cargo feature `tls-psk`)",
            )));
        }
        let mut provider = rustls::crypto::ring::default_provider();
        if mode == Mode::Tls13Chacha {
            provider.cipher_suites =
                vec![rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256];
            provider.kx_groups = vec![rustls::crypto::ring::kx_group::X25519];
        }
        // The same configuration the client's `--cafile`/`--cert`/`--key`/`--tls-version`
        // build, with the mode's provider.
        let opts = tls_options(mode, creds);
        let mut config = mqtt_lwa::transport::tls::client::client_config_with_provider(
            &opts,
            Arc::new(provider),
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        // Only the resumption mode keeps tickets: every other TLS mode
        // measures full handshakes, as it did when each connection built
        // its own configuration.
        let tickets = if mode == Mode::Tls13Resume {
            let store = Arc::new(WarmUpTicketStore {
                cache: rustls::client::ClientSessionMemoryCache::new(8),
                filling: std::sync::atomic::AtomicBool::new(false),
                received: std::sync::atomic::AtomicU64::new(0),
            });
            config.resumption = rustls::client::Resumption::store(Arc::clone(&store) as _);
            Some(store)
        } else {
            config.resumption = rustls::client::Resumption::disabled();
            None
        };
        Ok(Some(TlsClient {
            stack: TlsStack::Rustls(Arc::new(config)),
            mode,
            warmed: std::sync::atomic::AtomicBool::new(false),
            tickets,
        }))
    }

    /// TCP, then the TLS handshake; checks that the handshake is the one the
    /// mode promises, so a silent fall-back is never measured under its name.
    async fn open(
        &self,
        addr: SocketAddr,
    ) -> Result<mqtt_lwa::transport::BoxStream, WorkloadError> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let config = match &self.stack {
            TlsStack::Rustls(config) => config,
            #[cfg(feature = "tls-psk")]
            TlsStack::OpensslPsk(connector) => return open_openssl_psk(connector, tcp).await,
        };
        let name = ServerName::IpAddress(addr.ip().into());
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
            .connect(name, tcp)
            .await?;
        let conn = stream.get_ref().1;
        match self.mode {
            Mode::Tls13Resume => {
                let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                let warmed = self.warmed.load(Ordering::Relaxed);
                if warmed && !resumed {
                    return Err(WorkloadError::Io(std::io::Error::other(
                        "tls13-resume: the broker did not resume the TLS 1.3 session (full \
                         handshake instead); refusing to report full handshakes as resumption",
                    )));
                }
            }
            Mode::Tls13Chacha => {
                let suite = conn.negotiated_cipher_suite().map(|s| s.suite());
                let group = conn.negotiated_key_exchange_group().map(|g| g.name());
                if suite != Some(rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256)
                    || group != Some(rustls::NamedGroup::X25519)
                {
                    return Err(WorkloadError::Io(std::io::Error::other(format!(
                        "tls13-chacha: negotiated {suite:?} over {group:?}, not \
                         TLS13_CHACHA20_POLY1305_SHA256 over X25519"
                    ))));
                }
            }
            _ => {}
        }
        Ok(Box::new(stream))
    }

    /// Handshakes that fill the ticket store before anything is measured
    /// (resumption mode only): four full ones (see [`WarmUpTicketStore`]),
    /// whose tickets fill rustls's 8 per server when the server issues two
    /// per full handshake, then one resumed handshake that must resume. The
    /// storm's and the memory phase's concurrent clients (at most
    /// [`super::storm::MAX_CLIENTS`]) then find a ticket each, and each
    /// resumption brings at least one back.
    pub async fn warm_up(&self, addr: SocketAddr) -> Result<(), WorkloadError> {
        let Some(store) = &self.tickets else {
            return Ok(());
        };
        store.filling.store(true, Ordering::Relaxed);
        let result = self.warm_up_connections(addr, 4).await;
        store.filling.store(false, Ordering::Relaxed);
        result?;
        if store.received.load(Ordering::Relaxed) == 0 {
            return Err(WorkloadError::Io(std::io::Error::other(
                "tls13-resume: the broker issued no session tickets; it cannot be resumed",
            )));
        }
        self.warmed.store(true, Ordering::Relaxed);
        // The first measured-style connection: it must resume, or the mode cannot be measured.
        self.warm_up_connections(addr, 1).await
    }

    /// `n` connections with an MQTT CONNECT/CONNACK each, closed again.
    async fn warm_up_connections(&self, addr: SocketAddr, n: usize) -> Result<(), WorkloadError> {
        for i in 0..n {
            let stream = self.open(addr).await?;
            // Tickets arrive after the handshake; MQTT's CONNACK round trip
            // lets the client read them.
            let mut o = ConnectOptions::new(addr.ip().to_string(), addr.port());
            o.client_id = format!("warm-up-{}-{i}", std::process::id());
            let (client, _) = Client::connect_with_stream(stream, o).await?;
            bye(client).await;
        }
        Ok(())
    }
}

/// The OpenSSL handshake of `tls13-psk` over `tcp`; checks that TLS 1.3 was negotiated and
/// the external PSK authenticated it (no certificate), so a fall-back is never measured.
#[cfg(feature = "tls-psk")]
async fn open_openssl_psk(
    connector: &openssl::ssl::SslConnector,
    tcp: tokio::net::TcpStream,
) -> Result<mqtt_lwa::transport::BoxStream, WorkloadError> {
    let ossl = |e: openssl::error::ErrorStack| std::io::Error::other(format!("OpenSSL: {e}"));
    let ssl = connector
        .configure()
        .map_err(ossl)?
        .use_server_name_indication(false)
        .verify_hostname(false)
        .into_ssl("")
        .map_err(ossl)?;
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).map_err(ossl)?;
    std::pin::Pin::new(&mut stream)
        .connect()
        .await
        .map_err(|e| std::io::Error::other(format!("tls13-psk handshake: {e}")))?;
    let ssl = stream.ssl();
    let version = ssl.version_str();
    // In TLS 1.3 a handshake keyed by a PSK counts as "reused" (as `openssl s_client`
    // prints it), and a PSK handshake carries no certificate.
    if version != "TLSv1.3" || !ssl.session_reused() || ssl.peer_certificate().is_some() {
        return Err(WorkloadError::Io(std::io::Error::other(format!(
            "tls13-psk: negotiated {version}, PSK used: {}, certificate sent: {}; \
             refusing to report it as TLS 1.3 with an external PSK",
            ssl.session_reused(),
            ssl.peer_certificate().is_some()
        ))));
    }
    Ok(Box::new(stream))
}

/// The client TLS options of a certificate mode: the broker verified against the run's CA,
/// a client certificate in mutual TLS, and the mode's one TLS version.
fn tls_options(mode: Mode, creds: &Credentials) -> ClientTlsOptions {
    let mutual = mode == Mode::Mtls13;
    ClientTlsOptions {
        ca_file: Some(creds.ca.clone()),
        cert_file: mutual.then(|| creds.client_cert.clone()),
        key_file: mutual.then(|| creds.client_key.clone()),
        version: Some(if mode == Mode::Tls12 {
            TlsVersion::Tls12
        } else {
            TlsVersion::Tls13
        }),
        insecure: false,
    }
}

fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

impl Target<'_> {
    /// Connect options for this mode, to `addr` (the broker or a relay in front of it).
    fn options(
        &self,
        addr: SocketAddr,
        client_id: String,
    ) -> Result<ConnectOptions, WorkloadError> {
        let mut o = ConnectOptions::new(addr.ip().to_string(), addr.port());
        o.client_id = client_id;
        match self.mode {
            Mode::Plain => {}
            Mode::Password => {
                o.username = Some(USER.into());
                o.password = Some(Bytes::from_static(PASSWORD.as_bytes()));
            }
            // The stream is opened by [`TlsClient`]; these options are for
            // callers that connect without one.
            Mode::Tls13 | Mode::Tls13Resume | Mode::Tls13Chacha | Mode::Mtls13 | Mode::Tls12 => {
                o.tls = Some(tls_options(self.mode, self.creds))
            }
            // Only [`TlsClient`] (OpenSSL) opens these streams: the client's own TLS
            // options have no external PSK.
            Mode::Tls13Psk => {}
            Mode::Lwa | Mode::Lwa2 => {
                let version = if self.mode == Mode::Lwa2 {
                    LwaVersion::V2
                } else {
                    LwaVersion::V1
                };
                let auth = LwaClientAuthenticator::new(LWA_IDENTITY, self.creds.psk.clone())
                    .map_err(|e| std::io::Error::other(e.message))?
                    .with_version(version);
                o.auth = Some(Box::new(auth));
            }
        }
        Ok(o)
    }

    /// Connects in this mode to `addr` with client id `id`; returns once the client may publish.
    pub(super) async fn connect(
        &self,
        addr: SocketAddr,
        id: String,
    ) -> Result<Client, WorkloadError> {
        let mut opts = self.options(addr, id)?;
        let (client, _connack) = match &self.tls {
            Some(tls) => {
                opts.tls = None;
                let stream = tokio::time::timeout(opts.connect_timeout, tls.open(addr))
                    .await
                    .map_err(|_| WorkloadError::Timeout("TLS handshake".into()))??;
                Client::connect_with_stream(stream, opts).await?
            }
            None => Client::connect(opts).await?,
        };
        Ok(client)
    }

    fn cpu(&self) -> std::io::Result<(u64, u64)> {
        Ok((cpu_ticks(self.process)?, cpu_ticks(Process::Current)?))
    }
}

/// DISCONNECT, then wait for the close; errors do not matter here.
pub(super) async fn bye(client: Client) {
    let _ = client
        .disconnect(ReasonCode::NORMAL_DISCONNECTION, Properties::default())
        .await;
}

/// A histogram of 1 µs .. 100 s at 3 significant digits.
fn histogram() -> Result<Histogram<u64>, WorkloadError> {
    Histogram::new_with_bounds(1, 100_000_000, 3)
        .map_err(|e| WorkloadError::Io(std::io::Error::other(e.to_string())))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// A publisher and a subscriber (subscribed to the benchmark subtree at QoS 2).
pub(super) struct Pair {
    publisher: Client,
    subscriber: Client,
}

impl Pair {
    /// Connects both; the subscriber subscribes to `{TOPIC_PREFIX}/{tag}/#` only.
    pub(super) async fn open(
        t: &Target<'_>,
        addr: SocketAddr,
        tag: &str,
    ) -> Result<Self, WorkloadError> {
        let subscriber = t
            .connect(addr, format!("{tag}-sub-{}", std::process::id()))
            .await?;
        let filter = SubscribeFilter {
            filter: format!("{TOPIC_PREFIX}/{tag}/#"),
            options: SubscriptionOptions::qos(QoS::ExactlyOnce),
        };
        subscriber
            .subscribe(vec![filter], Properties::default())
            .await?;
        let publisher = t
            .connect(addr, format!("{tag}-pub-{}", std::process::id()))
            .await?;
        Ok(Pair {
            publisher,
            subscriber,
        })
    }

    /// The next message on `topic`; others (late QoS 0 strays of an earlier cell) are skipped.
    async fn next_on(&mut self, topic: &str) -> Result<(), WorkloadError> {
        loop {
            match tokio::time::timeout(IDLE_TIMEOUT, self.subscriber.recv()).await {
                Ok(Some(m)) if m.topic == topic => return Ok(()),
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(WorkloadError::Timeout(format!(
                        "subscriber connection ended (waiting on {topic})"
                    )))
                }
                Err(_) => {
                    return Err(WorkloadError::Timeout(format!(
                        "no message on {topic} for {} s",
                        IDLE_TIMEOUT.as_secs()
                    )))
                }
            }
        }
    }

    pub(super) async fn close(self) {
        bye(self.publisher).await;
        bye(self.subscriber).await;
    }
}

/// Everything measured for one (broker, mode).
pub struct ModeMeasurement {
    /// Per-mode figures.
    pub mode: ModeResult,
    /// Per-cell figures.
    pub cells: Vec<CellResult>,
    /// What could not be measured, for the report.
    pub notes: Vec<String>,
}

/// The connection storm of `t` where the profile runs one for its mode (a failed
/// handshake adds a note); every repeat runs it, so its rates get intervals.
pub(super) async fn storm_phase(
    t: &Target<'_>,
    profile: &Profile,
    tick: &(dyn Fn(&str) + Sync),
    notes: &mut Vec<String>,
) -> Result<Option<StormResult>, WorkloadError> {
    let Some(window) = storm::window(&profile.storm, t.mode) else {
        return Ok(None);
    };
    tick(&format!("{} {}: connection storm", t.broker, t.mode));
    let k = storm::clients(&profile.storm, storm::machine_cores());
    let s = storm::storm(t, k, window).await?;
    if s.failed > 0 {
        notes.push(format!(
            "{} {}: {} of {} storm handshakes failed (first: {})",
            t.broker,
            t.mode,
            s.failed,
            s.failed + s.handshakes,
            s.first_error.as_deref().unwrap_or("?")
        ));
    }
    Ok(Some(s))
}

/// Broker memory per idle connection at the profile's counts (empty where the profile
/// has none, e.g. on emulated links, and in password mode: each CONNECT there costs a
/// full PBKDF2 verification, and after it a password connection is a plaintext one).
/// Run in every repeat, so the memory figures have an interval like the rates.
pub async fn idle_phase(
    t: &Target<'_>,
    profile: &Profile,
    notes: &mut Vec<String>,
) -> Vec<IdleMemory> {
    if profile.idle_connections.iter().all(|&n| n == 0) || t.mode == Mode::Password {
        return Vec::new();
    }
    match memory::idle_memory(t, &profile.idle_connections).await {
        Ok(v) => {
            notes.extend(memory::notes(t, &v));
            v
        }
        Err(e) => {
            notes.push(format!(
                "{} {}: idle-connection memory failed: {e}",
                t.broker, t.mode
            ));
            Vec::new()
        }
    }
}

/// Runs every phase for `t`; `tick` is called after each cell (progress).
pub async fn measure_mode(
    t: &Target<'_>,
    profile: &Profile,
    tick: &(dyn Fn(&str) + Sync),
) -> Result<ModeMeasurement, WorkloadError> {
    let mut notes = Vec::new();
    tick(&format!("{} {}: set-up", t.broker, t.mode));
    let setup_ms = setup_times(t, profile.setup_samples).await?;

    // Byte counting: a relay in front of each of the publisher and the subscriber.
    let pub_relay = CountingRelay::start(t.addr).await?;
    let sub_relay = CountingRelay::start(t.addr).await?;
    let before = pub_relay.settled_bytes().await;
    let wire_pub = t.connect(pub_relay.addr(), "wire-pub".into()).await?;
    let handshake = pub_relay.settled_bytes().await.since(before);
    let wire_sub = t.connect(sub_relay.addr(), "wire-sub".into()).await?;
    let filter = SubscribeFilter {
        filter: format!("{TOPIC_PREFIX}/wire/#"),
        options: SubscriptionOptions::qos(QoS::ExactlyOnce),
    };
    wire_sub
        .subscribe(vec![filter], Properties::default())
        .await?;
    let mut wire = Pair {
        publisher: wire_pub,
        subscriber: wire_sub,
    };

    tick(&format!("{} {}: idle connections", t.broker, t.mode));
    if t.mode == Mode::Password && profile.idle_connections.iter().any(|&n| n > 0) {
        notes.push(format!(
            "{} password: idle-connection memory not measured (each CONNECT costs a full \
             PBKDF2 verification; after it a password connection is a plaintext one)",
            t.broker
        ));
    }
    let idle_memory = idle_phase(t, profile, &mut notes).await;
    let (idle, rss_per_idle) = idle_memory
        .first()
        .map(|m| (m.opened, m.bytes_per_connection))
        .unwrap_or((0, None));

    let mut direct = Pair::open(t, t.addr, "direct").await?;
    let mut cells = Vec::new();
    let mut cross_check = None;
    for &payload in &profile.payloads {
        for &q in &profile.qos {
            tick(&format!("{} {} {payload} B QoS {q}", t.broker, t.mode));
            // The same topics in every mode, so topic bytes never differ between modes;
            // the relayed and the direct pair have separate subtrees, so neither
            // subscriber sees (and the broker never fans out to) the other's traffic.
            let wire_topic = format!("{TOPIC_PREFIX}/wire/{payload}/{q}");
            let topic = format!("{TOPIC_PREFIX}/direct/{payload}/{q}");
            let body = Bytes::from(vec![0x5a; payload]);
            let check = crosscheck::is_chosen(profile, t.broker, t.mode, payload, q);
            let armed = if check {
                Some(crosscheck::arm(&pub_relay).await)
            } else {
                None
            };
            let (wire_pub, wire_sub) = wire_bytes(
                &mut wire,
                &pub_relay,
                &sub_relay,
                &wire_topic,
                &body,
                q,
                profile.wire_messages,
            )
            .await?;
            if let Some(armed) = armed {
                let cell = (t.broker, t.mode, payload, q);
                let n = profile.wire_messages.max(1) as u64;
                match crosscheck::collect(armed, &pub_relay, cell, n).await {
                    Ok(c) => cross_check = Some(c),
                    Err(e) => notes.push(format!(
                        "tshark cross-check ({} {} {payload} B QoS {q}) not done: {e}",
                        t.broker, t.mode
                    )),
                }
            }
            let mut cell =
                super::repeat::timed_cell(t, &mut direct, &topic, &body, q, profile).await?;
            cell.wire_bytes_per_msg_publisher = wire_pub;
            cell.wire_bytes_per_msg_subscriber = wire_sub;
            cell.wire_mbit_s = cell.msgs_per_s * wire_pub * 8.0 / 1e6;
            cells.push(cell);
        }
    }
    direct.close().await;
    wire.close().await;
    let storm = storm_phase(t, profile, tick, &mut notes).await?;
    Ok(ModeMeasurement {
        mode: ModeResult {
            // The runner sets the link; the workload does not know which one it is on.
            link: String::new(),
            broker: t.broker,
            mode: t.mode,
            setup_ms,
            handshake_bytes_to_broker: handshake.to_broker,
            handshake_bytes_to_client: handshake.to_client,
            idle_connections: idle,
            rss_bytes_per_idle_connection: rss_per_idle,
            idle_memory,
            storm,
            cross_check,
        },
        cells,
        notes,
    })
}

/// `samples` sequential connects: TCP connect until `Client::connect` returns (the client may publish).
async fn setup_times(t: &Target<'_>, samples: usize) -> Result<Percentiles, WorkloadError> {
    let mut h = histogram()?;
    for i in 0..samples {
        let start = Instant::now();
        let client = t.connect(t.addr, format!("setup-{i}")).await?;
        let _ = h.record(micros(start.elapsed()));
        bye(client).await;
    }
    Ok(Percentiles::from_histogram(&h, 1e-3))
}

/// Bytes per message on the relayed publisher and subscriber connections.
async fn wire_bytes(
    wire: &mut Pair,
    pub_relay: &CountingRelay,
    sub_relay: &CountingRelay,
    topic: &str,
    body: &Bytes,
    q: u8,
    n: usize,
) -> Result<(f64, f64), WorkloadError> {
    let n = n.max(1);
    let (p0, s0) = (
        pub_relay.settled_bytes().await,
        sub_relay.settled_bytes().await,
    );
    for _ in 0..n {
        wire.publisher
            .publish(topic, body.clone(), qos_of(q), false, Properties::default())
            .await?;
        wire.next_on(topic).await?;
    }
    let (p1, s1): (WireBytes, WireBytes) = (
        pub_relay.settled_bytes().await,
        sub_relay.settled_bytes().await,
    );
    Ok((
        p1.since(p0).total() as f64 / n as f64,
        s1.since(s0).total() as f64 / n as f64,
    ))
}

/// End-to-end latency with one message in flight: publish call until the subscriber has it,
/// as a histogram of microseconds.
pub(super) async fn latency(
    pair: &mut Pair,
    topic: &str,
    body: &Bytes,
    q: u8,
    n: usize,
) -> Result<Histogram<u64>, WorkloadError> {
    let mut h = histogram()?;
    let handle = pair.publisher.handle();
    for _ in 0..n {
        let start = Instant::now();
        let publish = handle.publish(topic, body.clone(), qos_of(q), false, Properties::default());
        let (published, delivered) = tokio::join!(publish, async {
            let r = pair.next_on(topic).await;
            (r, start.elapsed())
        });
        published?;
        delivered.0?;
        let _ = h.record(micros(delivered.1));
    }
    Ok(h)
}

/// Sustained rate: `n` messages as fast as the client allows, until the subscriber has them all.
pub(super) async fn throughput(
    t: &Target<'_>,
    pair: &mut Pair,
    topic: &str,
    body: &Bytes,
    q: u8,
    n: usize,
) -> Result<CellResult, WorkloadError> {
    let (broker0, client0) = t.cpu()?;
    let start = Instant::now();
    let workers = if q == 0 { 1 } else { WINDOW };
    let next = Arc::new(AtomicUsize::new(0));
    let mut publishers = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let handle = pair.publisher.handle();
        let next = Arc::clone(&next);
        let (topic, body) = (topic.to_owned(), body.clone());
        publishers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                handle
                    .publish(
                        topic.as_str(),
                        body.clone(),
                        qos_of(q),
                        false,
                        Properties::default(),
                    )
                    .await?;
            }
            Ok::<_, ClientError>(())
        });
    }
    let mut received = 0u64;
    let mut last = start;
    while received < n as u64 {
        match pair.next_on(topic).await {
            Ok(()) => {
                received += 1;
                last = Instant::now();
            }
            Err(WorkloadError::Timeout(_)) if q == 0 => break,
            Err(e) => return Err(e),
        }
    }
    while let Some(done) = publishers.join_next().await {
        if let Ok(result) = done {
            result?;
        }
    }
    let (broker1, client1) = t.cpu()?;
    let seconds = last.duration_since(start).as_secs_f64().max(1e-9);
    let per_1e5 = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / received.max(1) as f64 * 1e5;
    let msgs_per_s = received as f64 / seconds;
    Ok(CellResult {
        link: String::new(),
        broker: t.broker,
        mode: t.mode,
        payload: body.len(),
        qos: q,
        sent: n as u64,
        received,
        seconds,
        msgs_per_s,
        payload_mbit_s: msgs_per_s * body.len() as f64 * 8.0 / 1e6,
        wire_bytes_per_msg_publisher: 0.0,
        wire_bytes_per_msg_subscriber: 0.0,
        wire_mbit_s: 0.0,
        latency_us: Percentiles::default(),
        latency_hdr: None,
        broker_cpu_s_per_1e5: per_1e5(broker1.saturating_sub(broker0)),
        client_cpu_s_per_1e5: per_1e5(client1.saturating_sub(client0)),
        broker_cpu_ticks: broker1.saturating_sub(broker0),
    })
}
