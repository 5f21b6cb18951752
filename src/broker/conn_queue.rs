//! The command queue from the core task to one connection task.
//!
//! Not a tokio mpsc channel: an unbounded tokio channel allocates its first
//! block of 32 slots when it is created, and a slot holds a whole
//! [`ConnCommand`] (about 850 bytes while `Packet` held its properties
//! inline), so every idle connection carried ~27 KB of queue. This queue is a `VecDeque` that is
//! empty (no allocation) while nothing waits and is released again once the
//! connection task has drained it, plus a [`Notify`] to wake that task.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::server_core::ConnCommand;
use crate::codec::{Packet, QoS};

/// A drained queue keeps its buffer while it holds at most this many slots;
/// a bigger one (a burst) is released, so idle connections hold nothing big.
const KEEP_SLOTS: usize = 0;

struct State {
    items: VecDeque<ConnCommand>,
    /// QoS 0 publishes waiting (they are dropped beyond the limit).
    queued_qos0: usize,
    /// Publishers paused until this queue drains (see [`ConnSender::pause_until_drained`]).
    waiters: Vec<Arc<Shared>>,
    /// Live [`ConnSender`] clones; `recv` ends when the last one is gone.
    senders: usize,
    /// False once the [`ConnReceiver`] is dropped: sends are discarded.
    receiver: bool,
}

struct Shared {
    state: Mutex<State>,
    notify: Notify,
}

impl Shared {
    /// The state; a panic elsewhere while holding the lock cannot leave it
    /// inconsistent (every update is a single push, pop or counter change).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a command unless the connection task is gone.
    fn push(&self, cmd: ConnCommand) {
        {
            let mut state = self.lock();
            if !state.receiver {
                return;
            }
            state.items.push_back(cmd);
        }
        self.notify.notify_one();
    }
}

/// QoS 0 publishes a connection queues beyond its limit before it drops
/// any: what a publisher read before its pause took effect may still hold.
/// A pause applies from the publisher's next read, and one read is up to
/// `READ_MAX` (64 KiB) of PUBLISH packets as small as 7 bytes, about 9,400;
/// without this room a stock `mosquitto_pub -l` burst of 20,000 small QoS 0
/// messages lost 960 of them to a `mosquitto_sub` slowed by CPU load, though
/// the subscriber kept reading (2026-12-05; `tests/interop_stock_burst.rs`).
pub(crate) const QOS0_READ_ALLOWANCE: usize = super::server_conn::READ_MAX / 7;

/// QoS 0 publishes waiting at which publishers feeding the connection are
/// paused: half the limit, so a subscriber that keeps up loses nothing.
fn qos0_high_water(limit: usize) -> usize {
    (limit / 2).max(1)
}

/// QoS 0 publishes waiting at which paused publishers are resumed.
fn qos0_low_water(limit: usize) -> usize {
    limit / 4
}

/// Resumes paused publishers (called with no lock held: each takes its own).
fn resume_all(waiters: Vec<Arc<Shared>>) {
    for w in waiters {
        w.push(ConnCommand::Resume);
    }
}

/// The sending side of a connection's command queue.
///
/// Unbounded, because QoS 1/2 messages and acknowledgements are already
/// bounded by the core's in-flight windows and must not be lost; QoS 0
/// publishes are counted and dropped once `qos0_limit` plus
/// [`QOS0_READ_ALLOWANCE`] wait unsent.
pub(crate) struct ConnSender {
    shared: Arc<Shared>,
    qos0_limit: usize,
}

/// The receiving side, held by the connection task.
pub(crate) struct ConnReceiver {
    shared: Arc<Shared>,
    qos0_limit: usize,
}

/// A command queue for one connection.
pub(crate) fn conn_channel(qos0_limit: usize) -> (ConnSender, ConnReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            queued_qos0: 0,
            waiters: Vec::new(),
            senders: 1,
            receiver: true,
        }),
        notify: Notify::new(),
    });
    (
        ConnSender {
            shared: shared.clone(),
            qos0_limit,
        },
        ConnReceiver { shared, qos0_limit },
    )
}

fn is_qos0_publish(packet: &Packet) -> bool {
    matches!(packet, Packet::Publish(p) if p.qos == QoS::AtMostOnce)
}

impl ConnSender {
    /// Queues a packet; false when a QoS 0 publish was dropped because the
    /// connection is too far behind.
    pub(crate) fn send(&self, packet: Packet) -> bool {
        {
            let mut state = self.shared.lock();
            if is_qos0_publish(&packet) {
                if state.queued_qos0 >= self.qos0_limit.saturating_add(QOS0_READ_ALLOWANCE) {
                    return false;
                }
                state.queued_qos0 += 1;
            }
            // A closed queue means the connection task is ending; it reports Closed.
            if state.receiver {
                state.items.push_back(ConnCommand::Send(packet));
            }
        }
        self.shared.notify.notify_one();
        true
    }

    /// Queues a close with this DISCONNECT reason for 5.0 clients.
    pub(crate) fn close(&self, reason: Option<crate::codec::ReasonCode>) {
        self.shared.push(ConnCommand::Close(reason));
    }

    /// Tells the connection that the server is stopping ([`ConnCommand::Shutdown`]).
    pub(crate) fn shutdown(&self) {
        self.shared.push(ConnCommand::Shutdown);
    }

    /// Asks the connection to stop reading its socket until a matching
    /// [`Self::resume`] (flow control: a subscriber it feeds is behind).
    pub(crate) fn pause(&self) {
        self.shared.push(ConnCommand::Pause);
    }

    /// Takes back one [`Self::pause`].
    pub(crate) fn resume(&self) {
        self.shared.push(ConnCommand::Resume);
    }

    /// Whether QoS 0 publishes wait here up to the high-water mark.
    pub(crate) fn backed_up(&self) -> bool {
        self.shared.lock().queued_qos0 >= qos0_high_water(self.qos0_limit)
    }

    /// Pauses `publisher` until this queue has drained to its low-water mark
    /// (or the connection is gone); false when it was not paused (already
    /// waiting here, or nothing left to wait for).
    ///
    /// All of it happens under this queue's lock, the pause command
    /// included, so the receiver cannot drain the queue in between: a
    /// publisher registered on a queue that had just emptied would wait for
    /// a pop that never comes (seen: a 10 s stall in the quick experiment),
    /// and a resume could overtake its pause. This is the only place that
    /// holds two queues' locks, and only the core task calls it, so the
    /// nesting cannot deadlock.
    pub(crate) fn pause_until_drained(&self, publisher: &ConnSender) -> bool {
        if Arc::ptr_eq(&self.shared, &publisher.shared) {
            return false;
        }
        let mut state = self.shared.lock();
        let drained = state.queued_qos0 <= qos0_low_water(self.qos0_limit);
        if !state.receiver
            || drained
            || state
                .waiters
                .iter()
                .any(|w| Arc::ptr_eq(w, &publisher.shared))
        {
            return false;
        }
        state.waiters.push(publisher.shared.clone());
        publisher.shared.push(ConnCommand::Pause);
        true
    }
}

impl Clone for ConnSender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        ConnSender {
            shared: self.shared.clone(),
            qos0_limit: self.qos0_limit,
        }
    }
}

impl Drop for ConnSender {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders = state.senders.saturating_sub(1);
            state.senders == 0
        };
        if last {
            self.shared.notify.notify_one();
        }
    }
}

impl ConnReceiver {
    /// The next command; `None` when the core task is gone. Cancel-safe: a
    /// command is only taken in the poll that returns it.
    pub(crate) async fn recv(&mut self) -> Option<ConnCommand> {
        loop {
            {
                let mut state = self.shared.lock();
                if let Some(cmd) = state.items.pop_front() {
                    if let ConnCommand::Send(p) = &cmd {
                        if is_qos0_publish(p) {
                            state.queued_qos0 = state.queued_qos0.saturating_sub(1);
                        }
                    }
                    if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
                        state.items = VecDeque::new();
                    }
                    let drained = state.queued_qos0 <= qos0_low_water(self.qos0_limit);
                    let resumed = if drained && !state.waiters.is_empty() {
                        std::mem::take(&mut state.waiters)
                    } else {
                        Vec::new()
                    };
                    drop(state);
                    resume_all(resumed);
                    return Some(cmd);
                }
                if state.senders == 0 {
                    return None;
                }
            }
            // `notify_one` stores a permit when nobody waits, so a send
            // between the check above and this await is not missed.
            self.shared.notify.notified().await;
        }
    }
}

impl Drop for ConnReceiver {
    fn drop(&mut self) {
        let waiters = {
            let mut state = self.shared.lock();
            state.receiver = false;
            state.items = VecDeque::new();
            std::mem::take(&mut state.waiters)
        };
        resume_all(waiters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Publish, ReasonCode};

    fn publish(qos: QoS) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: "t".into(),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { 1 },
            properties: Default::default(),
            payload: bytes::Bytes::new(),
        })
    }

    #[tokio::test]
    async fn qos0_dropped_when_queue_full_but_qos1_kept() {
        let (tx, mut rx) = conn_channel(2);
        // The limit, plus room for one read of a publisher paused too late.
        for _ in 0..2 + QOS0_READ_ALLOWANCE {
            assert!(tx.send(publish(QoS::AtMostOnce)));
        }
        assert!(tx.backed_up());
        assert!(!tx.send(publish(QoS::AtMostOnce)));
        assert!(tx.send(publish(QoS::AtLeastOnce)));
        assert!(rx.recv().await.is_some());
        // One QoS 0 slot is free again.
        assert!(tx.send(publish(QoS::AtMostOnce)));
        assert!(!tx.send(publish(QoS::AtMostOnce)));
    }

    #[tokio::test]
    async fn commands_arrive_in_order_then_none_after_the_last_sender() {
        let (tx, mut rx) = conn_channel(8);
        let tx2 = tx.clone();
        assert!(tx.send(publish(QoS::AtLeastOnce)));
        tx2.close(Some(ReasonCode::SERVER_SHUTTING_DOWN));
        drop(tx);
        assert!(matches!(rx.recv().await, Some(ConnCommand::Send(_))));
        assert!(matches!(
            rx.recv().await,
            Some(ConnCommand::Close(Some(ReasonCode::SERVER_SHUTTING_DOWN)))
        ));
        drop(tx2);
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send() {
        let (tx, mut rx) = conn_channel(8);
        let waiter = tokio::spawn(async move { rx.recv().await.is_some() });
        tokio::task::yield_now().await;
        assert!(tx.send(publish(QoS::AtMostOnce)));
        assert!(waiter.await.unwrap_or(false));
    }

    #[tokio::test]
    async fn a_drained_queue_holds_no_buffer() {
        let (tx, mut rx) = conn_channel(8);
        for _ in 0..5 {
            assert!(tx.send(publish(QoS::AtLeastOnce)));
        }
        for _ in 0..5 {
            assert!(rx.recv().await.is_some());
        }
        assert_eq!(rx.shared.lock().items.capacity(), 0);
    }

    #[tokio::test]
    async fn a_backed_up_queue_resumes_its_paused_publishers_once_drained() {
        // Limit 8: backed up at 4 QoS 0 publishes waiting, drained at 2.
        let (sub, mut sub_rx) = conn_channel(8);
        let (publisher, mut pub_rx) = conn_channel(8);
        for _ in 0..4 {
            assert!(sub.send(publish(QoS::AtMostOnce)));
        }
        assert!(sub.backed_up());
        assert!(sub.pause_until_drained(&publisher));
        assert!(!sub.pause_until_drained(&publisher), "registered once");
        assert!(!sub.pause_until_drained(&sub), "never waits on itself");
        assert!(matches!(pub_rx.recv().await, Some(ConnCommand::Pause)));
        sub_rx.recv().await;
        assert!(pub_rx.shared.lock().items.is_empty(), "3 waiting: not yet");
        sub_rx.recv().await;
        assert!(matches!(pub_rx.recv().await, Some(ConnCommand::Resume)));
    }

    #[tokio::test]
    async fn a_closing_subscriber_resumes_its_paused_publishers() {
        let (sub, sub_rx) = conn_channel(2);
        let (publisher, mut pub_rx) = conn_channel(2);
        assert!(sub.send(publish(QoS::AtMostOnce)));
        assert!(sub.pause_until_drained(&publisher));
        drop(sub_rx);
        assert!(matches!(pub_rx.recv().await, Some(ConnCommand::Pause)));
        assert!(matches!(pub_rx.recv().await, Some(ConnCommand::Resume)));
        assert!(
            !sub.pause_until_drained(&publisher),
            "no waiting on a gone queue"
        );
    }

    #[tokio::test]
    async fn a_queue_that_already_drained_pauses_nobody() {
        // The receiver emptied the queue between the backed-up check and the
        // registration: waiting would be for a pop that never comes.
        let (sub, mut sub_rx) = conn_channel(8);
        let (publisher, pub_rx) = conn_channel(8);
        for _ in 0..4 {
            assert!(sub.send(publish(QoS::AtMostOnce)));
        }
        assert!(sub.backed_up());
        for _ in 0..4 {
            sub_rx.recv().await;
        }
        assert!(!sub.pause_until_drained(&publisher));
        assert!(pub_rx.shared.lock().items.is_empty(), "no pause sent");
    }

    #[test]
    fn sends_after_the_receiver_is_gone_are_discarded() {
        let (tx, rx) = conn_channel(1);
        drop(rx);
        assert!(tx.send(publish(QoS::AtLeastOnce)));
        tx.close(None);
        assert!(tx.shared.lock().items.is_empty());
    }
}
