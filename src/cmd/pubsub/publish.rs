//! `mqtt-lwa pub`: publish one message, a file, stdin, or stdin line by line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use mqtt_lwa::client::Client;
use mqtt_lwa::codec::{QoS, ReasonCode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use super::{is_denial, parse_qos, run_cli, with_timeout, ConnArgs, Failure};

/// Arguments of `mqtt-lwa pub` (mosquitto_pub's flags).
#[derive(clap::Args, Debug)]
#[command(
    disable_help_flag = true,
    after_help = "Exit codes: 0 success, 1 usage or other error, 2 connection refused or \
                  authentication failed (also a PUBACK/PUBREC saying not authorized), \
                  3 timeout (-W, connect timeout or dead broker)."
)]
pub struct PubArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic to publish to.
    #[arg(short = 't', long = "topic", required = true)]
    topic: String,
    /// Message payload.
    #[arg(short = 'm', long = "message", group = "source")]
    message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long = "file", group = "source")]
    file: Option<PathBuf>,
    /// Send an empty (null) message.
    #[arg(short = 'n', long = "null-message", group = "source")]
    null: bool,
    /// Send each line of stdin as a separate message (blank lines are skipped).
    #[arg(short = 'l', long = "stdin-line", group = "source")]
    lines: bool,
    /// Send all of stdin as one message.
    #[arg(short = 's', long = "stdin-file", group = "source")]
    stdin: bool,
    /// QoS of the message.
    #[arg(short = 'q', long = "qos", value_parser = parse_qos, default_value = "0")]
    qos: QoS,
    /// Retain the message.
    #[arg(short = 'r', long = "retain")]
    retain: bool,
    /// Publish the message this many times.
    #[arg(long = "repeat", default_value_t = 1)]
    repeat: u32,
    /// Seconds to wait between repeats (fractions allowed).
    #[arg(long = "repeat-delay", default_value_t = 0.0)]
    repeat_delay: f64,
}

/// Runs `mqtt-lwa pub`.
pub fn run_pub(args: PubArgs) -> ExitCode {
    run_cli(async move {
        let conn_timeout = args.conn.timeout.map(Duration::from_secs);
        with_timeout(conn_timeout, publish(args)).await
    })
}

async fn publish(args: PubArgs) -> Result<(), Failure> {
    let PubArgs {
        conn,
        topic,
        message,
        file,
        null,
        lines,
        stdin,
        qos,
        retain,
        repeat,
        repeat_delay,
    } = args;
    mqtt_lwa::codec::topic::validate_topic_name(&topic)
        .map_err(|_| Failure::usage(format!("invalid topic {topic:?}")))?;
    if !(repeat_delay.is_finite() && repeat_delay >= 0.0) {
        return Err(Failure::usage(
            "--repeat-delay must be a non-negative number",
        ));
    }
    // Read the payload before connecting, so a missing file costs no connection.
    let payload = if let Some(m) = message {
        Some(Bytes::from(m))
    } else if let Some(path) = file {
        let data = std::fs::read(&path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        Some(Bytes::from(data))
    } else if null {
        Some(Bytes::new())
    } else if stdin {
        let mut data = Vec::new();
        tokio::io::stdin()
            .read_to_end(&mut data)
            .await
            .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
        Some(Bytes::from(data))
    } else if lines {
        None
    } else {
        return Err(Failure::usage(
            "nothing to publish: give one of -m, -f, -n, -l or -s",
        ));
    };
    let prepared = conn.prepare()?;
    let publish_props = prepared.properties.publish.clone();
    let disconnect_props = prepared.properties.disconnect.clone();
    let (client, _connack) = Client::connect(prepared.options).await?;
    let send = |payload: Bytes| {
        let topic = topic.clone();
        let props = publish_props.clone();
        let client = &client;
        async move {
            let outcome = client.publish(topic, payload, qos, retain, props).await?;
            if outcome.reason_code.is_error() {
                let code = if is_denial(outcome.reason_code) { 2 } else { 1 };
                return Err(Failure {
                    code,
                    message: format!("publish refused: {}", outcome.reason_code),
                });
            }
            Ok::<(), Failure>(())
        }
    };
    match payload {
        Some(payload) => {
            for i in 0..repeat {
                if i > 0 && repeat_delay > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(repeat_delay)).await;
                }
                send(payload.clone()).await?;
            }
        }
        None => {
            let mut reader = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = reader
                .next_line()
                .await
                .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?
            {
                // As mosquitto_pub -l: blank lines are not sent.
                if !line.is_empty() {
                    send(Bytes::from(line)).await?;
                }
            }
        }
    }
    client
        .disconnect(ReasonCode::NORMAL_DISCONNECTION, disconnect_props)
        .await?;
    Ok(())
}
