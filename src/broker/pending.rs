//! A bound on connections that have not yet proved anything: accepted, but
//! not through CONNECT and authentication (TLS handshake, LWA offer answered
//! and waiting for the client's finished, password check). Each such
//! connection holds a [`PendingSlot`]; a new socket that finds no slot is
//! closed at once, before any handshake work.
//!
//! Three budgets apply together (issue 13: one source holding idle sockets
//! locked out every listener): the broker's `Limits::max_pending_auth`, the
//! listener's share of it (`[[listener]] max_pending_auth`, by default an
//! equal share), and one source's share (`Limits::max_pending_auth_per_source`,
//! by default half the smallest listener budget, at most 32; IPv6 sources
//! count per /64), so one source never fills a listener on its own. A flood from
//! one address fills only its own share, and a flood from many addresses on
//! one listener fills only that listener's budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts of pending connections, in total, per listener and per source.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_listener: Vec<usize>,
    per_source: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Budgets {
    total: usize,
    per_listener: Vec<usize>,
    per_source: usize,
    counts: Mutex<Counts>,
}

impl Budgets {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        match self.counts.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The shared pending-connection budgets (over all listeners).
#[derive(Debug, Clone)]
pub(crate) struct PendingSlots {
    budgets: Arc<Budgets>,
}

/// One unauthenticated connection's place; freed by [`Self::release`] or on drop.
#[derive(Debug)]
pub(crate) struct PendingSlot {
    held: Option<(Arc<Budgets>, usize, IpAddr)>,
}

/// The key a source is counted under: an IPv4 address, or an IPv6 /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

impl PendingSlots {
    /// The budgets `limits` and each listener's `max_pending_auth` set.
    pub(crate) fn for_listeners(
        limits: &crate::broker::Limits,
        listeners: &[crate::config::ListenerConfig],
    ) -> Self {
        let budgets: Vec<usize> = listeners.iter().map(|l| l.max_pending_auth).collect();
        Self::new(
            limits.max_pending_auth,
            limits.max_pending_auth_per_source,
            &budgets,
        )
    }

    /// At most `total` slots at once (0: no limit), `listeners[i]` on
    /// listener `i` (0: an equal share of `total`), and `per_source` per
    /// source (0: half the smallest listener budget, between 1 and 32).
    pub(crate) fn new(total: usize, per_source: usize, listeners: &[usize]) -> Self {
        let total = if total == 0 { usize::MAX } else { total };
        let share = (total / listeners.len().max(1)).max(1);
        let per_listener = listeners
            .iter()
            .map(|&l| if l == 0 { share } else { l })
            .collect::<Vec<_>>();
        let smallest = per_listener.iter().copied().min().unwrap_or(total);
        let per_source = match per_source {
            0 if smallest == usize::MAX => usize::MAX,
            0 => (smallest / 2).clamp(1, 32),
            n => n,
        };
        PendingSlots {
            budgets: Arc::new(Budgets {
                total,
                counts: Mutex::new(Counts {
                    per_listener: vec![0; per_listener.len()],
                    ..Counts::default()
                }),
                per_listener,
                per_source,
            }),
        }
    }

    /// A slot on `listener` for a connection from `source`, or `None` when
    /// one of the three budgets is spent.
    pub(crate) fn try_acquire(&self, listener: usize, source: IpAddr) -> Option<PendingSlot> {
        let b = &self.budgets;
        let key = source_key(source);
        let mut c = b.counts();
        let on_listener = c.per_listener.get(listener).copied().unwrap_or(0);
        let listener_budget = b.per_listener.get(listener).copied().unwrap_or(b.total);
        let from_source = c.per_source.get(&key).copied().unwrap_or(0);
        if c.total >= b.total || on_listener >= listener_budget || from_source >= b.per_source {
            return None;
        }
        c.total += 1;
        if let Some(n) = c.per_listener.get_mut(listener) {
            *n += 1;
        }
        *c.per_source.entry(key).or_insert(0) += 1;
        Some(PendingSlot {
            held: Some((Arc::clone(b), listener, key)),
        })
    }
}

impl PendingSlot {
    /// The connection authenticated (or ended): its place is free.
    pub(crate) fn release(&mut self) {
        let Some((budgets, listener, key)) = self.held.take() else {
            return;
        };
        let mut c = budgets.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_listener.get_mut(listener) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = c.per_source.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_source.remove(&key);
            }
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn slots_are_bounded_and_come_back() {
        let slots = PendingSlots::new(2, 2, &[0]);
        let a_ip = ip("10.0.0.1");
        let mut a = slots.try_acquire(0, a_ip).unwrap();
        let b = slots.try_acquire(0, a_ip).unwrap();
        assert!(slots.try_acquire(0, a_ip).is_none());
        a.release();
        a.release(); // once only
        let c = slots.try_acquire(0, a_ip).unwrap();
        assert!(slots.try_acquire(0, a_ip).is_none());
        drop(b);
        drop(c);
        assert!(slots.try_acquire(0, a_ip).is_some());
        let unlimited = PendingSlots::new(0, 0, &[0]);
        let held: Vec<_> = (0..1000)
            .map(|_| unlimited.try_acquire(0, a_ip).unwrap())
            .collect();
        assert_eq!(held.len(), 1000);
    }

    #[test]
    fn one_source_and_one_listener_take_only_their_share() {
        let slots = PendingSlots::new(16, 0, &[0, 0]);
        let attacker = ip("10.0.0.1");
        let held: Vec<_> = (0..100)
            .filter_map(|_| slots.try_acquire(0, attacker))
            .collect();
        assert_eq!(held.len(), 4, "half of listener 0's 8");
        let second: Vec<_> = (0..100)
            .filter_map(|_| slots.try_acquire(0, ip("10.0.0.2")))
            .collect();
        assert_eq!(second.len(), 4);
        assert!(
            slots.try_acquire(0, ip("10.0.0.3")).is_none(),
            "listener 0's 8 are spent"
        );
        assert!(slots.try_acquire(1, ip("10.0.0.3")).is_some());
        // IPv6 counts per /64; a v4-mapped address is its IPv4 source.
        let v6 = PendingSlots::new(4, 1, &[0]);
        let _one = v6.try_acquire(0, ip("2001:db8::1")).unwrap();
        assert!(v6.try_acquire(0, ip("2001:db8::2")).is_none());
        assert!(v6.try_acquire(0, ip("2001:db8:0:1::1")).is_some());
        let _mapped = v6.try_acquire(0, ip("::ffff:10.0.0.9")).unwrap();
        assert!(v6.try_acquire(0, ip("10.0.0.9")).is_none());
    }
}
