//! `mqtt-lwa sub`: subscribe and print messages.

use std::io::Write;
use std::process::ExitCode;

use mqtt_lwa::client::{Client, Message};
use mqtt_lwa::codec::topic::{matches, validate_topic_filter};
use mqtt_lwa::codec::{QoS, ReasonCode, RetainHandling, SubscribeFilter, SubscriptionOptions};

use super::{is_denial, parse_qos, run_cli, ConnArgs, Failure};

/// Arguments of `mqtt-lwa sub` (mosquitto_sub's flags).
#[derive(clap::Args, Debug)]
#[command(
    disable_help_flag = true,
    after_help = "Exit codes: 0 success (-C count reached, --retained-only done, Ctrl-C), \
                  1 usage or other error, 2 connection refused or authentication failed \
                  (also every subscription refused as not authorized), 3 timeout (-W elapsed \
                  before the count was reached; mosquitto_sub uses 27), connect timeout or \
                  dead broker."
)]
pub struct SubArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short = 't', long = "topic", required = true)]
    topics: Vec<String>,
    /// Do not print messages whose topic matches this filter (repeatable).
    #[arg(short = 'T', long = "filter-out")]
    filter_out: Vec<String>,
    /// Unsubscribe from this filter after subscribing (repeatable; with -c to drop old subscriptions).
    #[arg(short = 'U', long = "unsubscribe")]
    unsubscribe: Vec<String>,
    /// Maximum QoS of the subscriptions.
    #[arg(short = 'q', long = "qos", value_parser = parse_qos, default_value = "0")]
    qos: QoS,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    count: Option<u64>,
    /// Print the topic before the payload.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Do not print a newline after each payload.
    #[arg(short = 'N')]
    no_eol: bool,
    /// Do not print stale (retained) messages.
    #[arg(short = 'R', long = "no-stale")]
    no_stale: bool,
    /// Print only retained messages; exit at the first live one.
    #[arg(long = "retained-only")]
    retained_only: bool,
    /// No Local (5.0): do not receive our own publications.
    #[arg(long = "nl")]
    no_local: bool,
    /// Retain As Published (5.0): keep the retain flag on forwarded messages.
    #[arg(long = "rap")]
    retain_as_published: bool,
    /// Retain Handling (5.0): 0 send retained, 1 only for new subscriptions, 2 never.
    #[arg(long = "ri", value_parser = clap::value_parser!(u8).range(0..=2))]
    retain_handling: Option<u8>,
}

/// Runs `mqtt-lwa sub`.
pub fn run_sub(args: SubArgs) -> ExitCode {
    run_cli(subscribe(args))
}

async fn subscribe(args: SubArgs) -> Result<(), Failure> {
    for f in args
        .topics
        .iter()
        .chain(&args.filter_out)
        .chain(&args.unsubscribe)
    {
        validate_topic_filter(f)
            .map_err(|_| Failure::usage(format!("invalid topic filter {f:?}")))?;
    }
    let retain_handling = match args.retain_handling {
        None | Some(0) => RetainHandling::SendAtSubscribe,
        Some(1) => RetainHandling::SendIfNew,
        Some(_) => RetainHandling::DoNotSend,
    };
    // -W: one deadline for the whole run; once connected, reaching it ends
    // the session with a proper DISCONNECT before exiting with code 3.
    let timeout_secs = args.conn.timeout;
    let deadline =
        timeout_secs.map(|s| tokio::time::Instant::now() + std::time::Duration::from_secs(s));
    let prepared = args.conn.prepare()?;
    let props = prepared.properties.clone();
    let (mut client, _connack) = before(deadline, Client::connect(prepared.options)).await??;
    let filters: Vec<SubscribeFilter> = args
        .topics
        .iter()
        .map(|t| SubscribeFilter {
            filter: t.clone(),
            options: SubscriptionOptions {
                qos: args.qos,
                no_local: args.no_local,
                retain_as_published: args.retain_as_published,
                retain_handling,
            },
        })
        .collect();
    let suback = before(deadline, client.subscribe(filters, props.subscribe.clone())).await??;
    let refused: Vec<(String, ReasonCode)> = args
        .topics
        .iter()
        .zip(&suback.reason_codes)
        .filter(|(_, code)| code.is_error())
        .map(|(t, c)| (t.clone(), *c))
        .collect();
    for (topic, code) in &refused {
        eprintln!("Warning: subscription to {topic:?} refused: {code}");
    }
    if refused.len() == args.topics.len() {
        let code = if refused.iter().all(|(_, c)| is_denial(*c)) {
            2
        } else {
            1
        };
        return Err(Failure {
            code,
            message: "every subscription was refused".into(),
        });
    }
    if !args.unsubscribe.is_empty() {
        let unsubscribing = client.unsubscribe(args.unsubscribe.clone(), props.unsubscribe.clone());
        before(deadline, unsubscribing).await??;
    }
    let mut printed = 0u64;
    let mut timed_out = false;
    loop {
        let message = tokio::select! {
            m = client.recv() => m,
            _ = tokio::signal::ctrl_c() => break,
            _ = sleep_until(deadline) => {
                timed_out = true;
                break;
            }
        };
        let Some(message) = message else {
            // The connection ended: say why (the broker's DISCONNECT, a timeout, a closed socket).
            return match client.closed().await {
                Ok(()) => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        if args.retained_only && !message.retain {
            break;
        }
        if (args.no_stale && message.retain)
            || args.filter_out.iter().any(|f| matches(f, &message.topic))
        {
            continue;
        }
        print_message(&message, args.verbose, args.no_eol)
            .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
        printed += 1;
        if args.count.is_some_and(|c| printed >= c) {
            break;
        }
    }
    client
        .disconnect(ReasonCode::NORMAL_DISCONNECTION, props.disconnect)
        .await?;
    if timed_out {
        return Err(timeout_failure(timeout_secs));
    }
    Ok(())
}

fn timeout_failure(seconds: Option<u64>) -> Failure {
    Failure::timeout(format!("timed out after {} s (-W)", seconds.unwrap_or(0)))
}

/// Runs `work` until `deadline` (-W); past it, a timeout failure.
async fn before<T>(
    deadline: Option<tokio::time::Instant>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Failure> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, work)
            .await
            .map_err(|_| Failure::timeout("timed out (-W) before the subscription was in place")),
        None => Ok(work.await),
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Prints `payload` or `topic payload`, raw bytes, flushed at once so pipes see every message.
fn print_message(message: &Message, verbose: bool, no_eol: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if verbose {
        out.write_all(message.topic.as_bytes())?;
        out.write_all(b" ")?;
    }
    out.write_all(&message.payload)?;
    if !no_eol {
        out.write_all(b"\n")?;
    }
    out.flush()
}
