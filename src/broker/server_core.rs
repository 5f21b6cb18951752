//! The task that owns the [`BrokerCore`]: it takes events from connection
//! tasks over one mpsc queue, so every MQTT side effect happens in one place
//! and in one order, and dispatches the core's outputs to the connections.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::auth::Principal;
use crate::codec::{ConnAck, Connect, Disconnect, Packet, QoS, ReasonCode};

use super::core::{BrokerCore, ConnId, ConnectRequest, Output};
use super::persist_store::DurableStore;
use super::stats::{DropReason, Stats};

/// Most core events whose changes share one persistence transaction.
const GROUP_COMMIT: usize = 64;
/// How long shutdown waits for connections to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The core is ticked at least this often (`$SYS/`, expiry), even when it
/// reports no deadline.
const TICK_EVERY: Duration = Duration::from_secs(1);

/// What a connection task tells the core task.
// Packets travel by value like the core's `Output`; boxing would cost an
// allocation per message.
#[allow(clippy::large_enum_variant)]
pub(crate) enum CoreEvent {
    /// A connection was accepted; outputs for it go to `tx`.
    Open {
        /// The connection.
        conn: ConnId,
        /// Where its commands go.
        tx: ConnSender,
    },
    /// The CONNACK the core would send, without side effects (enhanced
    /// authentication binds Session Present and writes CONNACK itself).
    Preview {
        /// The CONNECT being authenticated.
        connect: Box<Connect>,
        /// Where the answer goes.
        reply: oneshot::Sender<ConnAck>,
    },
    /// An authenticated CONNECT.
    Connect(Box<ConnectRequest>),
    /// A packet from a connected client.
    Packet {
        /// The connection.
        conn: ConnId,
        /// The packet (aliases resolved, payload opened).
        packet: Packet,
    },
    /// The connection is gone.
    Closed {
        /// The connection.
        conn: ConnId,
        /// Whether the core had been told about it.
        core_connected: bool,
        /// The client's DISCONNECT, if it sent one.
        disconnect: Option<Disconnect>,
        /// Told once the core has processed this event.
        processed: Option<oneshot::Sender<()>>,
    },
    /// Credentials were revoked: close these principals' connections.
    Revoke(Vec<Principal>),
    /// Retained `$SYS/` messages computed outside the core (TLS certificate expiry).
    SysPublish(Vec<(String, String)>),
}

/// What the core task tells a connection task.
// Packets travel by value like the core's `Output`; boxing would cost an
// allocation per message.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ConnCommand {
    /// Write this packet.
    Send(Packet),
    /// Close, with this DISCONNECT reason for 5.0 clients.
    Close(Option<ReasonCode>),
    /// Stop reading the socket: a subscriber this client publishes to is
    /// behind (flow control; see `core::flow` and `conn_queue`).
    Pause,
    /// Takes back one `Pause`.
    Resume,
    /// The server is stopping: a connection the core does not know as a
    /// client closes now with 0x8B; the core closes its clients itself, after
    /// the wills. (A command rather than a `watch` per connection: waiting on
    /// one took 136 bytes of every idle connection's task.)
    Shutdown,
}

pub(crate) use super::conn_queue::{conn_channel, ConnReceiver, ConnSender};

struct ConnEntry {
    tx: ConnSender,
    principal: Option<Principal>,
}

/// Runs the core until shutdown and the last connection is gone (or the
/// grace period ends).
pub(crate) async fn run_core(
    mut core: BrokerCore,
    mut events: mpsc::Receiver<CoreEvent>,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<Stats>,
    store: Option<Arc<dyn DurableStore>>,
) {
    let mut conns: HashMap<ConnId, ConnEntry> = HashMap::new();
    let mut shutdown_deadline: Option<Instant> = None;
    let mut drops = DropLog::default();
    loop {
        let now = Instant::now();
        let tick_at = core
            .next_deadline()
            .map(Instant::from_std)
            .map_or(now + TICK_EVERY, |d| d.min(now + TICK_EVERY));
        // The connections whose packets in this round ask for an
        // acknowledgement: if the round's changes cannot be committed, none
        // of those acknowledgements may leave.
        let mut sources: Vec<ConnId> = Vec::new();
        // Outputs with the connection whose input caused them (flow control
        // pauses that publisher when a subscriber's queue backs up).
        let mut batches: Vec<(Option<ConnId>, Vec<Output>)> = tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    sources.extend(source_of(&ev));
                    let stopping = shutdown_deadline.is_some();
                    let mut batches = vec![handle_event(&mut core, &mut conns, ev, stopping)];
                    if store.is_some() {
                        // Group commit: events already waiting join this
                        // transaction; all their outputs still wait for it.
                        for _ in 1..GROUP_COMMIT {
                            let Ok(ev) = events.try_recv() else { break };
                            sources.extend(source_of(&ev));
                            batches.push(handle_event(&mut core, &mut conns, ev, stopping));
                        }
                    }
                    batches
                }
                None => break,
            },
            _ = tokio::time::sleep_until(tick_at) => vec![(None, core.tick(std::time::Instant::now()))],
            _ = stopped(&mut shutdown), if shutdown_deadline.is_none() => {
                // Wills go out, then every client is closed with 0x8B;
                // connections not yet known to the core close themselves.
                shutdown_deadline = Some(Instant::now() + SHUTDOWN_GRACE);
                for entry in conns.values() {
                    entry.tx.shutdown();
                }
                vec![(None, core.shutdown(std::time::Instant::now()))]
            }
            _ = sleep_until_opt(shutdown_deadline) => break,
        };
        if let Some(store) = &store {
            // Durable before acknowledged: this input's changes are
            // committed before any of its outputs (PUBACK, PUBREC) leave.
            if !persist(&mut core, store, &stats).await {
                batches = refuse_uncommitted(&conns, batches, &sources, &stats);
            }
        }
        for (source, outputs) in batches {
            dispatch(&conns, source, outputs, &stats);
        }
        drops.log_new(&stats);
        if shutdown_deadline.is_some() && conns.is_empty() {
            break;
        }
    }
}

/// Commits the core's pending changes; waits for the fsync off the runtime
/// threads. Returns false when the commit failed: the failure is logged and
/// counted, and the batch's keys are handed back to the core so that the
/// next commit writes them again (from the core's state at that time).
async fn persist(core: &mut BrokerCore, store: &Arc<dyn DurableStore>, stats: &Stats) -> bool {
    let batch = core.take_persist_batch(std::time::Instant::now());
    if batch.is_empty() {
        return true;
    }
    let store = store.clone();
    let (batch, result) = match tokio::task::spawn_blocking(move || {
        let result = store.write(&batch);
        (batch, result)
    })
    .await
    {
        Ok(pair) => pair,
        Err(e) => {
            // The batch went down with the task: its keys cannot be handed
            // back, but the connections that caused it are closed below and
            // their next change writes their sessions whole again.
            tracing::error!(error = %e, "persistence task failed");
            Stats::add(&stats.store_errors, 1);
            return false;
        }
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "persistence write failed; not acknowledging");
            Stats::add(&stats.store_errors, 1);
            core.persist_failed(batch);
            false
        }
    }
}

/// After a failed commit: every connection whose packet in the round asked
/// for an acknowledgement ([`source_of`]) is closed and gets none of the round's outputs (no PUBACK, PUBREC, PUBCOMP,
/// SUBACK, UNSUBACK or CONNACK for a change that is not on disk); the
/// other connections' outputs (deliveries to subscribers) still go out.
///
/// Why close rather than answer with an error reason code: the message is
/// already routed in memory, so a PUBACK with 0x80 would tell the publisher
/// "not accepted" about a message subscribers may receive, and MQTT 3.1.1
/// has no such code at all. Without an acknowledgement the publisher keeps
/// the message and sends it again (DUP) when it reconnects: at least once
/// holds, and nothing is acknowledged that a crash could lose. A 5.0 client
/// that already has its CONNACK gets DISCONNECT 0x80 Unspecified error
/// (MQTT 5.0 section 3.14.2.1 lets either side send it); 0x97 Quota exceeded
/// or 0x83 Implementation specific error would name a cause the client
/// cannot act on.
fn refuse_uncommitted(
    conns: &HashMap<ConnId, ConnEntry>,
    batches: Vec<(Option<ConnId>, Vec<Output>)>,
    sources: &[ConnId],
    stats: &Stats,
) -> Vec<(Option<ConnId>, Vec<Output>)> {
    for conn in sources {
        if let Some(entry) = conns.get(conn) {
            entry.tx.close(Some(ReasonCode::UNSPECIFIED_ERROR));
        }
    }
    let keep = |output: &Output| {
        let conn = match output {
            Output::Send { conn, .. }
            | Output::Close { conn, .. }
            | Output::Pause { conn }
            | Output::Resume { conn } => conn,
        };
        let withheld = sources.contains(conn);
        if withheld {
            if let Output::Send {
                packet: Packet::Publish(_),
                ..
            } = output
            {
                // Counted as sent by the core; it stays queued or in
                // flight in the session and goes out on reconnection.
                let _ =
                    stats
                        .messages_sent
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                            Some(n.saturating_sub(1))
                        });
            }
        }
        !withheld
    };
    batches
        .into_iter()
        .map(|(source, outputs)| (source, outputs.into_iter().filter(|o| keep(o)).collect()))
        .collect()
}

/// The connection an event's outputs acknowledge, if any: a CONNECT
/// (CONNACK), a QoS 1/2 PUBLISH (PUBACK, PUBREC), a PUBREL (PUBCOMP), a
/// SUBSCRIBE or UNSUBSCRIBE. A client's PUBACK, PUBREC or PUBCOMP for an
/// outbound message asks for nothing that promises durability (if its change
/// is lost, the message or PUBREL is sent again, which both QoS levels
/// allow), and QoS 0 and PINGREQ change nothing durable: those connections
/// are kept when a commit fails.
fn source_of(ev: &CoreEvent) -> Option<ConnId> {
    match ev {
        CoreEvent::Connect(req) => Some(req.conn),
        CoreEvent::Packet { conn, packet } => match packet {
            Packet::Publish(p) => (p.qos != QoS::AtMostOnce).then_some(*conn),
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => Some(*conn),
            _ => None,
        },
        // A closed connection gets nothing more anyway.
        CoreEvent::Closed { .. }
        | CoreEvent::Open { .. }
        | CoreEvent::Preview { .. }
        | CoreEvent::Revoke(_)
        | CoreEvent::SysPublish(_) => None,
    }
}

/// Resolves once the shutdown signal is set (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here.
    let _ = shutdown.wait_for(|s| *s).await.map(|_| ());
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Applies one event to the core; returns its outputs and the connection
/// that sent it, if any.
/// `stopping`: the server's shutdown has begun (a connection opened now is
/// told at once).
fn handle_event(
    core: &mut BrokerCore,
    conns: &mut HashMap<ConnId, ConnEntry>,
    ev: CoreEvent,
    stopping: bool,
) -> (Option<ConnId>, Vec<Output>) {
    match ev {
        CoreEvent::Packet { conn, packet } => {
            let now = std::time::Instant::now();
            (Some(conn), core.packet(conn, packet, now))
        }
        other => (None, handle_other_event(core, conns, other, stopping)),
    }
}

fn handle_other_event(
    core: &mut BrokerCore,
    conns: &mut HashMap<ConnId, ConnEntry>,
    ev: CoreEvent,
    stopping: bool,
) -> Vec<Output> {
    let now = std::time::Instant::now();
    match ev {
        CoreEvent::Open { conn, tx } => {
            if stopping {
                tx.shutdown();
            }
            conns.insert(
                conn,
                ConnEntry {
                    tx,
                    principal: None,
                },
            );
            Vec::new()
        }
        CoreEvent::Preview { connect, reply } => {
            let _ = reply.send(core.connack_for(&connect, None, claimed_identity(&connect)));
            Vec::new()
        }
        CoreEvent::Connect(req) => {
            if let Some(entry) = conns.get_mut(&req.conn) {
                entry.principal = Some(req.principal.clone());
            }
            core.connect(*req, now)
        }
        CoreEvent::Packet { conn, packet } => core.packet(conn, packet, now),
        CoreEvent::Closed {
            conn,
            core_connected,
            disconnect,
            processed,
        } => {
            conns.remove(&conn);
            let out = if core_connected {
                core.disconnected(conn, disconnect, now)
            } else {
                Vec::new()
            };
            if let Some(processed) = processed {
                let _ = processed.send(());
            }
            out
        }
        CoreEvent::SysPublish(messages) => {
            let mut out = Vec::new();
            for (topic, payload) in messages {
                out.extend(core.internal_publish(
                    &topic,
                    bytes::Bytes::from(payload),
                    QoS::AtMostOnce,
                    true,
                    now,
                ));
            }
            out
        }
        CoreEvent::Revoke(principals) => {
            for entry in conns.values() {
                let Some(p) = &entry.principal else { continue };
                if principals.iter().any(|r| r.names_same_identity(p)) {
                    entry.tx.close(Some(ReasonCode::ADMINISTRATIVE_ACTION));
                }
            }
            Vec::new()
        }
    }
}

/// The LWA identity an LWA1 CONNECT claims in its offer (not yet proven).
fn claimed_identity(connect: &Connect) -> Option<&str> {
    if connect.properties.authentication_method.as_deref() != Some(crate::lwa::METHOD) {
        return None;
    }
    let data = connect.properties.authentication_data.as_deref()?;
    crate::lwa::wire::Offer::parse(data)
        .ok()
        .map(|o| o.identity)
}

/// A revoked principal matches a live one by user name or by LWA identity.
/// Logs messages dropped by a queue limit, at most once per interval, so
/// that an operator sees drops that `$SYS/broker/messages/dropped` counts.
#[derive(Default)]
struct DropLog {
    logged: u64,
    at: Option<Instant>,
}

impl DropLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn log_new(&mut self, stats: &Stats) {
        let dropped = Stats::get(&stats.messages_dropped);
        if dropped == self.logged || self.at.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        tracing::warn!(
            dropped = dropped - self.logged,
            total = dropped,
            "messages dropped by queue limits (a subscriber stalled, or an offline session's queue is full); see README, Flow control and drops"
        );
        self.logged = dropped;
        self.at = Some(Instant::now());
    }
}

/// Hands outputs to the connections. `source` is the connection whose
/// input caused them: when one of its messages leaves a subscriber's queue
/// backed up, that publisher is paused until the queue drains.
fn dispatch(
    conns: &HashMap<ConnId, ConnEntry>,
    source: Option<ConnId>,
    outputs: Vec<Output>,
    stats: &Stats,
) {
    for output in outputs {
        match output {
            Output::Send { conn, packet } => {
                if let Some(entry) = conns.get(&conn) {
                    let publish = matches!(packet, Packet::Publish(_));
                    let sent = entry.tx.send(packet);
                    if publish && sent && source != Some(conn) && entry.tx.backed_up() {
                        let publisher = source.and_then(|s| conns.get(&s));
                        if let Some(publisher) = publisher {
                            entry.tx.pause_until_drained(&publisher.tx);
                        }
                    }
                    if !sent {
                        stats.dropped(DropReason::SlowClient);
                        // The core counted it as sent when it handed it over.
                        let _ = stats.messages_sent.fetch_update(
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                            |n| Some(n.saturating_sub(1)),
                        );
                    }
                }
            }
            Output::Close { conn, reason } => {
                if let Some(entry) = conns.get(&conn) {
                    entry.tx.close(reason);
                }
            }
            Output::Pause { conn } => {
                if let Some(entry) = conns.get(&conn) {
                    entry.tx.pause();
                }
            }
            Output::Resume { conn } => {
                if let Some(entry) = conns.get(&conn) {
                    entry.tx.resume();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_matching() {
        let user = |u: &str| Principal {
            username: Some(u.into()),
            lwa_identity: None,
        };
        let lwa = |i: &str| Principal {
            username: None,
            lwa_identity: Some(i.into()),
        };
        assert!(user("a").names_same_identity(&user("a")));
        assert!(!user("a").names_same_identity(&user("b")));
        assert!(lwa("x").names_same_identity(&lwa("x")));
        assert!(!lwa("x").names_same_identity(&user("x")));
        assert!(!Principal::default().names_same_identity(&Principal::default()));
    }
}
