//! A bound on connections that have not yet proved anything: accepted, but
//! not through CONNECT and authentication (TLS handshake, LWA offer answered
//! and waiting for the client's finished, password check). Each such
//! connection holds a [`PendingSlot`]; beyond `Limits::max_pending_auth`
//! new sockets are closed at once, before any handshake work.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The shared count of unauthenticated connections (over all listeners).
#[derive(Debug, Clone)]
pub(crate) struct PendingSlots {
    count: Arc<AtomicUsize>,
    limit: usize,
}

/// One unauthenticated connection's place; freed by [`Self::release`] or on drop.
#[derive(Debug)]
pub(crate) struct PendingSlot {
    count: Option<Arc<AtomicUsize>>,
}

impl PendingSlots {
    /// At most `limit` slots at once (0: no limit).
    pub(crate) fn new(limit: usize) -> Self {
        PendingSlots {
            count: Arc::new(AtomicUsize::new(0)),
            limit: if limit == 0 { usize::MAX } else { limit },
        }
    }

    /// A slot, or `None` when `limit` connections are already pending.
    pub(crate) fn try_acquire(&self) -> Option<PendingSlot> {
        let limit = self.limit;
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| PendingSlot {
                count: Some(self.count.clone()),
            })
    }
}

impl PendingSlot {
    /// The connection authenticated (or ended): its place is free.
    pub(crate) fn release(&mut self) {
        if let Some(count) = self.count.take() {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_come_back() {
        let slots = PendingSlots::new(2);
        let mut a = slots.try_acquire().unwrap();
        let b = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none());
        a.release();
        a.release(); // once only
        let c = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none());
        drop(b);
        drop(c);
        assert!(slots.try_acquire().is_some());
        let unlimited = PendingSlots::new(0);
        let held: Vec<_> = (0..1000)
            .map(|_| unlimited.try_acquire().unwrap())
            .collect();
        assert_eq!(held.len(), 1000);
    }
}
