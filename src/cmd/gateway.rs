//! `mqtt-lwa gateway`: loads the configuration (a broker configuration with a
//! `[gateway]` table), applies CLI overrides, binds, prints one
//! `listening on ADDR (MODE)` line per listener and an `upstream ...` line,
//! and relays clients until SIGTERM or SIGINT.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mqtt_lwa::config::{BrokerConfig, GatewayConfig};
use mqtt_lwa::gateway::Gateway;

use super::broker::{
    init_logging, parse_bind, raise_fd_limit, read_config_file, serve_config, Signals,
};

/// Arguments of `mqtt-lwa gateway`.
#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    /// TOML configuration: listeners and limits as for `broker`, plus a [gateway] table.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Upstream broker HOST:PORT (repeat for failover, tried in order); replaces the
    /// file's `upstream` list. Without a file: one plain anonymous listener.
    #[arg(short = 'u', long = "upstream", value_name = "HOST:PORT")]
    upstream: Vec<String>,
    /// Port of the first listener (0 picks a free port).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<u16>,
    /// Address of the first listener: an IP address, or IP:PORT.
    #[arg(long = "bind", value_name = "ADDR")]
    bind: Option<String>,
    /// More logging on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Runs the gateway.
pub fn run(args: GatewayArgs) -> ExitCode {
    init_logging(args.verbose);
    raise_fd_limit();
    serve_config("gateway", load_config(&args), serve)
}

async fn serve(config: BrokerConfig) -> anyhow::Result<()> {
    let modes: Vec<String> = config
        .listeners
        .iter()
        .map(mqtt_lwa::config::security_label)
        .collect();
    let upstream = config
        .gateway
        .as_ref()
        .map(|g| g.upstream.join(", "))
        .unwrap_or_default();
    let gateway = Gateway::bind(config).await?;
    let signals = Signals::install()?;
    {
        let mut stdout = std::io::stdout().lock();
        for (addr, mode) in gateway.local_addrs().iter().zip(modes) {
            writeln!(stdout, "listening on {addr} ({mode})")?;
        }
        writeln!(stdout, "upstream {upstream}")?;
        // Tests and scripts wait for these lines.
        stdout.flush()?;
    }
    let handle = gateway.handle();
    tokio::spawn(async move {
        signals.wait().await;
        tracing::info!("signal received, shutting down");
        handle.shutdown();
    });
    gateway.run().await;
    Ok(())
}

/// The file (or, without one, a plain anonymous listener on 127.0.0.1:1883)
/// with the flags applied, validated again.
fn load_config(args: &GatewayArgs) -> Result<BrokerConfig, String> {
    let mut config = match &args.config {
        Some(path) => read_config_file(path)?,
        None => BrokerConfig::default(),
    };
    if !args.upstream.is_empty() {
        let gateway = config.gateway.get_or_insert_with(GatewayConfig::default);
        gateway.upstream = args.upstream.clone();
    }
    if config.gateway.is_none() {
        let file = args
            .config
            .as_deref()
            .map_or_else(String::new, |p| format!("{}: ", p.display()));
        return Err(format!(
            "{file}no upstream broker: add a [gateway] table with upstream = [\"HOST:PORT\"], or give --upstream HOST:PORT"
        ));
    }
    if let Some(first) = config.listeners.first_mut() {
        if let Some(bind) = &args.bind {
            first.bind = parse_bind(bind, first.bind.port())?;
        }
        if let Some(port) = args.port {
            first.bind.set_port(port);
        }
    }
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> GatewayArgs {
        GatewayArgs {
            config: None,
            upstream: Vec::new(),
            port: None,
            bind: None,
            verbose: 0,
        }
    }

    #[test]
    fn an_upstream_is_required_and_flags_apply() {
        let err = load_config(&args()).unwrap_err();
        assert!(err.contains("--upstream"), "{err}");
        let mut a = args();
        a.upstream = vec!["127.0.0.1:1884".into(), "127.0.0.1:1885".into()];
        a.port = Some(0);
        let c = load_config(&a).unwrap();
        assert_eq!(c.gateway.unwrap().upstream.len(), 2);
        assert_eq!(c.listeners[0].bind.port(), 0);
        a.upstream = vec!["no-port".into()];
        let err = load_config(&a).unwrap_err();
        assert!(err.contains("HOST:PORT"), "{err}");
    }

    #[test]
    fn a_bad_gateway_table_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        std::fs::write(
            &path,
            "[[listener]]\nallow_anonymous = true\n\n[gateway]\nupstream = [\"127.0.0.1:1883\"]\nclient_id_template = \"{who}\"\n",
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path.clone());
        let err = load_config(&a).unwrap_err();
        assert!(err.starts_with(&format!("{}:6: ", path.display())), "{err}");
        assert!(err.contains("{who}"), "{err}");
    }
}
