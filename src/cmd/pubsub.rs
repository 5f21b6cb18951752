//! `mqtt-lwa pub` and `mqtt-lwa sub`: mosquitto_pub / mosquitto_sub work-alikes
//! on top of [`mqtt_lwa::client`].
//!
//! Exit codes (scripts rely on them): 0 success, 1 usage or other error,
//! 2 connection refused or authentication failed, 3 timeout (`-W` elapsed,
//! connect timeout, dead broker). mosquitto_sub exits 27 when `-W` elapses;
//! we use 3 so that every timeout has one code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use mqtt_lwa::client::{random_client_id, ClientError, ConnectOptions};
use mqtt_lwa::codec::{LastWill, ProtocolVersion, QoS, ReasonCode};
use mqtt_lwa::transport::tls::client::ClientTlsOptions;

mod props;
mod publish;
mod subscribe;

use props::CliProperties;

/// Options shared by `pub` and `sub`: broker, identity, session, will, TLS, LWA.
#[derive(clap::Args, Debug)]
pub struct ConnArgs {
    /// Broker host.
    #[arg(short = 'h', long = "host", default_value = "localhost")]
    host: String,
    /// Broker port [default: 1883, or 8883 with TLS].
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// Client id [default: mqtt-lwa- and random hex digits].
    #[arg(short = 'i', long = "id", conflicts_with = "id_prefix")]
    id: Option<String>,
    /// Client id prefix; random hex digits are appended.
    #[arg(short = 'I', long = "id-prefix")]
    id_prefix: Option<String>,
    /// User name.
    #[arg(short = 'u', long = "username")]
    username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw")]
    password: Option<String>,
    /// MQTT version: 311 (mqttv311) or 5 (mqttv5) [default: 311, 5 with --lwa-id].
    #[arg(short = 'V', long = "protocol-version", value_parser = parse_version)]
    version: Option<ProtocolVersion>,
    /// Keep-alive in seconds (0 disables).
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    keep_alive: u16,
    /// Keep the session after disconnecting (no clean session / clean start); needs -i.
    #[arg(short = 'c', long = "disable-clean-session")]
    no_clean: bool,
    /// Session expiry interval in seconds (5.0); -1 or ∞ for never [default: never with -c, else 0].
    #[arg(short = 'x', long = "session-expiry-interval", value_parser = parse_expiry, allow_hyphen_values = true)]
    session_expiry: Option<u32>,
    /// Print the packets sent and received to stderr.
    #[arg(short = 'd', long = "debug")]
    debug: bool,
    /// Give up after this many seconds (exit code 3).
    #[arg(short = 'W', long = "timeout")]
    timeout: Option<u64>,
    /// MQTT 5.0 property: -D COMMAND PROPERTY VALUE [VALUE], e.g. `-D publish user-property k v`,
    /// `-D publish message-expiry-interval 60`, `-D connect session-expiry-interval 300`.
    #[arg(short = 'D', long = "property", num_args = 3..=4, action = clap::ArgAction::Append,
          value_names = ["COMMAND", "PROPERTY", "VALUE"])]
    properties: Vec<String>,
    /// Will topic (published by the broker if this client vanishes).
    #[arg(long = "will-topic")]
    will_topic: Option<String>,
    /// Will payload.
    #[arg(long = "will-payload", requires = "will_topic")]
    will_payload: Option<String>,
    /// Will QoS.
    #[arg(long = "will-qos", value_parser = parse_qos, default_value = "0", requires = "will_topic")]
    will_qos: QoS,
    /// Retain the will.
    #[arg(long = "will-retain", requires = "will_topic")]
    will_retain: bool,
    /// CA certificates (PEM) that the broker certificate must chain to; enables TLS.
    #[arg(long = "cafile")]
    cafile: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; enables TLS.
    #[arg(long = "cert", requires = "key")]
    cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long = "key", requires = "cert")]
    key: Option<PathBuf>,
    /// Use exactly this TLS version: tlsv1.2 or tlsv1.3; enables TLS.
    #[arg(long = "tls-version")]
    tls_version: Option<String>,
    /// Do not check the broker certificate or name. DANGEROUS: testing only; enables TLS.
    #[arg(long = "insecure")]
    insecure: bool,
    /// LWA identity (LWA1 enhanced authentication, MQTT 5); needs --lwa-key.
    #[arg(long = "lwa-id", requires = "lwa_key")]
    lwa_id: Option<String>,
    /// File holding the LWA pre-shared key for --lwa-id.
    #[arg(long = "lwa-key", requires = "lwa_id")]
    lwa_key: Option<PathBuf>,
    /// LWA version for --lwa-id: 1 (method LWA1) or 2 (method L2, protocol-spec/LWA2.md).
    #[arg(long = "lwa-version", requires = "lwa_id", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=2))]
    lwa_version: u8,
    /// LWA records per direction to offer, as a power of two (1..=48): LWA2 updates its keys
    /// on the live connection when half are used (AUTH 0x19, LWA2.md 8.2); LWA1 reconnects.
    #[arg(long = "lwa-record-limit-log2", requires = "lwa_id",
          value_parser = clap::value_parser!(u8).range(1..=48))]
    lwa_record_limit_log2: Option<u8>,
    /// LWA2 only: seal topic names and PUBLISH properties into the records too (LWA2.md 7.1),
    /// so the network sees the placeholder topic "L"; the connection fails if the broker
    /// does not grant it.
    #[arg(long = "lwa-protect-metadata", requires = "lwa_id")]
    lwa_protect_metadata: bool,
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

fn parse_version(s: &str) -> Result<ProtocolVersion, String> {
    match s {
        "311" | "mqttv311" => Ok(ProtocolVersion::V311),
        "5" | "mqttv5" => Ok(ProtocolVersion::V5),
        "31" | "mqttv31" => Err("MQTT 3.1 is not supported; use 311 or 5".into()),
        _ => Err(format!("unknown protocol version {s:?}: use 311 or 5")),
    }
}

fn parse_qos(s: &str) -> Result<QoS, String> {
    s.parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("invalid QoS {s:?}: use 0, 1 or 2"))
}

fn parse_expiry(s: &str) -> Result<u32, String> {
    match s {
        "-1" | "∞" => Ok(u32::MAX),
        _ => s
            .parse()
            .map_err(|_| format!("invalid session expiry interval {s:?}")),
    }
}

/// A failure with the exit code it maps to.
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Exit 1 (usage or other error).
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit 3.
    fn timeout(message: impl Into<String>) -> Failure {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let code = if e.is_auth_failure() {
            2
        } else if matches!(e, ClientError::Timeout(_)) {
            3
        } else {
            1
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Everything `pub` and `sub` share once the flags are checked.
struct Prepared {
    options: ConnectOptions,
    properties: CliProperties,
}

impl ConnArgs {
    /// Checks the flag combinations and builds the client options.
    fn prepare(self) -> Result<Prepared, Failure> {
        let properties =
            CliProperties::parse(&props::group_flags(&self.properties)).map_err(Failure::usage)?;
        let lwa = self.lwa_id.is_some();
        let version = match (self.version, lwa) {
            (Some(ProtocolVersion::V311), true) => {
                return Err(Failure::usage("LWA (--lwa-id) needs MQTT 5 (-V 5)"))
            }
            (Some(v), _) => v,
            (None, true) => ProtocolVersion::V5,
            (None, false) => ProtocolVersion::V311,
        };
        if version == ProtocolVersion::V311 {
            if !properties.is_empty() {
                return Err(Failure::usage("-D properties need MQTT 5 (-V 5)"));
            }
            if self.session_expiry.is_some() {
                return Err(Failure::usage("-x needs MQTT 5 (-V 5)"));
            }
        }
        if self.no_clean && self.id.is_none() {
            return Err(Failure::usage(
                "a client id (-i) is needed with -c (a persistent session is found by its id)",
            ));
        }
        let tls_wanted = self.cafile.is_some()
            || self.cert.is_some()
            || self.tls_version.is_some()
            || self.insecure;
        let tls = if tls_wanted {
            let version = match &self.tls_version {
                Some(v) => Some(v.parse().map_err(|e| Failure::usage(format!("{e}")))?),
                None => None,
            };
            Some(ClientTlsOptions {
                ca_file: self.cafile,
                cert_file: self.cert,
                key_file: self.key,
                version,
                insecure: self.insecure,
            })
        } else {
            None
        };
        let port = self.port.unwrap_or(if tls.is_some() { 8883 } else { 1883 });
        let mut options = ConnectOptions::new(self.host, port);
        options.version = version;
        options.client_id = match (self.id, self.id_prefix) {
            (Some(id), _) => id,
            (None, Some(prefix)) => random_client_id(&prefix),
            (None, None) => random_client_id("mqtt-lwa-"),
        };
        options.clean_start = !self.no_clean;
        options.keep_alive = self.keep_alive;
        options.username = self.username;
        options.password = self.password.map(Bytes::from);
        options.tls = tls;
        options.properties = properties.connect.clone();
        if version == ProtocolVersion::V5 {
            // mosquitto's rule: -c alone keeps the session forever, otherwise it ends with the connection.
            let expiry = self
                .session_expiry
                .or(options.properties.session_expiry_interval)
                .or(self.no_clean.then_some(u32::MAX));
            options.properties.session_expiry_interval = expiry.filter(|&e| e != 0);
        }
        if let Some(topic) = self.will_topic {
            mqtt_lwa::codec::topic::validate_topic_name(&topic)
                .map_err(|_| Failure::usage(format!("invalid will topic {topic:?}")))?;
            options.will = Some(LastWill {
                topic,
                payload: Bytes::from(self.will_payload.unwrap_or_default()),
                qos: self.will_qos,
                retain: self.will_retain,
                properties: properties.will.clone(),
            });
        }
        if let (Some(id), Some(key)) = (&self.lwa_id, &self.lwa_key) {
            if self.lwa_protect_metadata && self.lwa_version != 2 {
                return Err(Failure::usage(
                    "--lwa-protect-metadata needs --lwa-version 2 (LWA1 seals payloads only)",
                ));
            }
            let auth = mqtt_lwa::auth::lwa::LwaClientAuthenticator::from_key_file(id, key)
                .map_err(|e| Failure::usage(format!("LWA: {e}")))?
                .with_version(if self.lwa_version == 2 {
                    mqtt_lwa::auth::lwa::LwaVersion::V2
                } else {
                    mqtt_lwa::auth::lwa::LwaVersion::V1
                });
            let auth = match self.lwa_record_limit_log2 {
                Some(log2) => auth.with_record_limit_log2(log2),
                None => auth,
            };
            let auth = auth.with_metadata_protection(self.lwa_protect_metadata);
            options.auth = Some(Box::new(auth));
        }
        if self.debug {
            init_debug_log();
        }
        Ok(Prepared {
            options,
            properties,
        })
    }
}

/// `-d`: the client's packet log on stderr.
fn init_debug_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("mqtt_lwa=debug"))
        .with_writer(std::io::stderr)
        .without_time()
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// Runs `body` on a single-threaded runtime and turns its result into an exit code.
fn run_cli<F>(body: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("Error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Applies `-W` to a whole run.
async fn with_timeout<F>(limit: Option<Duration>, body: F) -> Result<(), Failure>
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    match limit {
        Some(limit) => tokio::time::timeout(limit, body).await.unwrap_or_else(|_| {
            Err(Failure::timeout(format!(
                "timed out after {} s (-W)",
                limit.as_secs()
            )))
        }),
        None => body.await,
    }
}

/// Reason codes in acknowledgements that mean "not allowed" (exit 2).
fn is_denial(code: ReasonCode) -> bool {
    matches!(
        code,
        ReasonCode::NOT_AUTHORIZED | ReasonCode::BAD_USER_NAME_OR_PASSWORD
    )
}

pub use publish::{run_pub, PubArgs};
pub use subscribe::{run_sub, SubArgs};
