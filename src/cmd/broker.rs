//! `mqtt-lwa broker`: loads the configuration, applies CLI overrides, binds,
//! prints one `listening on ADDR (MODE)` line per listener and serves until
//! SIGTERM or SIGINT.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mqtt_lwa::broker::Server;
use mqtt_lwa::config::BrokerConfig;

/// Arguments of `mqtt-lwa broker`.
#[derive(clap::Args, Debug)]
pub struct BrokerArgs {
    /// TOML configuration file (default: one plain anonymous listener on 127.0.0.1:1883).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Port of the first listener (0 picks a free port).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<u16>,
    /// Address of the first listener: an IP address, or IP:PORT.
    #[arg(long = "bind", value_name = "ADDR")]
    bind: Option<String>,
    /// Maximum number of concurrent connections.
    #[arg(long = "max-connections", value_name = "N")]
    max_connections: Option<usize>,
    /// Largest packet accepted, in bytes.
    #[arg(long = "max-packet-size", value_name = "N")]
    max_packet_size: Option<u32>,
    /// Seconds between `$SYS/` updates (0 disables `$SYS/`).
    #[arg(long = "sys-interval", value_name = "S")]
    sys_interval: Option<u64>,
    /// Keep retained messages and persistent sessions in this redb file.
    #[arg(long = "persistence", value_name = "FILE")]
    persistence: Option<PathBuf>,
    /// More logging on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Runs the broker.
pub fn run(args: BrokerArgs) -> ExitCode {
    init_logging(args.verbose);
    raise_fd_limit();
    serve_config("broker", load_config(&args), serve)
}

/// What `broker` and `gateway` share: a configuration problem or a failed
/// start is one `mqtt-lwa NAME: reason` line and exit code 1; otherwise
/// `serve` runs on a multi-threaded runtime until it returns.
pub(crate) fn serve_config<F>(
    name: &str,
    config: Result<BrokerConfig, String>,
    serve: impl FnOnce(BrokerConfig) -> F,
) -> ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = match config {
        Ok(c) => c,
        Err(message) => {
            eprintln!("mqtt-lwa {name}: {message}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mqtt-lwa {name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(config));
    // Connection tasks that outlived the shutdown grace period are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqtt-lwa {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the open-file limit to its hard maximum: every connection is a
/// socket, and the usual soft limit of 1024 would refuse clients long
/// before `max_connections`.
pub(crate) fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

async fn serve(config: BrokerConfig) -> anyhow::Result<()> {
    let modes: Vec<String> = config
        .listeners
        .iter()
        .map(mqtt_lwa::config::security_label)
        .collect();
    let server = Server::bind(config).await?;
    // The handlers go in before the lines below: a test or script that sends
    // SIGTERM as soon as it reads them must not meet the default action.
    let signals = Signals::install()?;
    {
        let mut stdout = std::io::stdout().lock();
        for (addr, mode) in server.local_addrs().iter().zip(modes) {
            writeln!(stdout, "listening on {addr} ({mode})")?;
        }
        if let Some(addr) = server.metrics_addr() {
            writeln!(stdout, "metrics on http://{addr}/metrics")?;
        }
        // Tests and scripts wait for these lines.
        stdout.flush()?;
    }
    let handle = server.handle();
    tokio::spawn(async move {
        signals.wait().await;
        tracing::info!("signal received, shutting down");
        handle.shutdown();
    });
    Ok(server.run().await?)
}

/// SIGTERM and SIGINT, registered when created (tokio installs the process
/// handler in `signal()`, not on first poll).
pub(crate) struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    pub(crate) fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    pub(crate) async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }

    #[cfg(not(unix))]
    pub(crate) async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(crate) fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Reads the configuration file (if any) and applies the CLI overrides;
/// errors name the file and the reason.
fn load_config(args: &BrokerArgs) -> Result<BrokerConfig, String> {
    let mut config = match &args.config {
        Some(path) => read_config_file(path)?,
        None => BrokerConfig::default(),
    };
    if config.gateway.is_some() {
        let file = args.config.as_deref().unwrap_or(Path::new("the file"));
        return Err(format!(
            "{}: has a [gateway] table: run it with `mqtt-lwa gateway --config {}`",
            file.display(),
            file.display()
        ));
    }
    let Some(first) = config.listeners.first_mut() else {
        let file = args
            .config
            .as_deref()
            .map_or_else(String::new, |p| format!("{}: ", p.display()));
        return Err(format!("{file}at least one [[listener]] is required"));
    };
    if let Some(bind) = &args.bind {
        first.bind = parse_bind(bind, first.bind.port())?;
    }
    if let Some(port) = args.port {
        first.bind.set_port(port);
    }
    if let Some(n) = args.max_connections {
        config.limits.max_connections = n;
    }
    if let Some(n) = args.max_packet_size {
        config.limits.max_packet_size = n;
    }
    if let Some(s) = args.sys_interval {
        config.sys_interval_secs = s;
    }
    if let Some(file) = &args.persistence {
        config.persistence = true;
        config.persistence_file = Some(file.clone());
    }
    Ok(config)
}

pub(crate) fn read_config_file(path: &Path) -> Result<BrokerConfig, String> {
    // FILE:LINE: reason, for syntax, types and semantic checks alike.
    BrokerConfig::load(path).map_err(|e| e.to_string())
}

pub(crate) fn parse_bind(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| format!("--bind {text:?}: expected an IP address or IP:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_lwa::config::ListenerMode;

    fn args() -> BrokerArgs {
        BrokerArgs {
            config: None,
            port: None,
            bind: None,
            max_connections: None,
            max_packet_size: None,
            sys_interval: None,
            persistence: None,
            verbose: 0,
        }
    }

    #[test]
    fn defaults_serve_localhost_1883() {
        let c = load_config(&args()).unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].bind, "127.0.0.1:1883".parse().unwrap());
        assert_eq!(c.listeners[0].mode, ListenerMode::Plain);
    }

    #[test]
    fn flags_override_first_listener_and_limits() {
        let mut a = args();
        a.port = Some(0);
        a.bind = Some("0.0.0.0".into());
        a.max_connections = Some(7);
        a.max_packet_size = Some(1000);
        a.sys_interval = Some(0);
        let c = load_config(&a).unwrap();
        assert_eq!(c.listeners[0].bind, "0.0.0.0:0".parse().unwrap());
        assert_eq!(c.limits.max_connections, 7);
        assert_eq!(c.limits.max_packet_size, 1000);
        assert_eq!(c.sys_interval_secs, 0);
        a.port = None;
        a.bind = Some("127.0.0.2:99".into());
        assert_eq!(
            load_config(&a).unwrap().listeners[0].bind,
            "127.0.0.2:99".parse().unwrap()
        );
        a.bind = Some("nonsense".into());
        assert!(load_config(&a).is_err());
    }

    #[test]
    fn bad_file_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        std::fs::write(&path, "[limits]\nmax_connections = \"many\"\n").unwrap();
        let mut a = args();
        a.config = Some(path.clone());
        let err = load_config(&a).unwrap_err();
        assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");
        std::fs::write(&path, "listener = []\n").unwrap();
        let err = load_config(&a).unwrap_err();
        assert!(err.contains("listener"), "{err}");
    }
}
