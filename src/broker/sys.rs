//! The `$SYS/broker/...` subtree: broker counters published as retained
//! messages every `sys_interval` (driven by `BrokerCore::tick`).

use std::time::{Duration, Instant};

use super::stats::Stats;

/// Numbers the core knows that [`Stats`] does not hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounts {
    /// Sessions with a live connection.
    pub connected: u64,
    /// Sessions kept for offline clients.
    pub disconnected: u64,
    /// Retained messages stored.
    pub retained: u64,
    /// Subscriptions over all sessions.
    pub subscriptions: u64,
}

/// Schedules and renders `$SYS/` updates.
#[derive(Debug, Clone)]
pub struct SysTopics {
    started: Instant,
    interval: Option<Duration>,
    next: Option<Instant>,
}

impl SysTopics {
    /// `$SYS/` publishing disabled until [`Self::set_interval`].
    pub fn new(started: Instant) -> Self {
        SysTopics {
            started,
            interval: None,
            next: None,
        }
    }

    /// Publishes every `interval` from `now` on (the first update at `now`); `None` or zero disables.
    pub fn set_interval(&mut self, interval: Option<Duration>, now: Instant) {
        self.interval = interval.filter(|d| !d.is_zero());
        self.next = self.interval.map(|_| now);
    }

    /// When the next update is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next
    }

    /// True when an update is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next.is_some_and(|next| now >= next)
    }

    /// The topics and payloads to publish if an update is due at `now`.
    pub fn due(
        &mut self,
        now: Instant,
        stats: &Stats,
        counts: SessionCounts,
    ) -> Vec<(String, String)> {
        let (Some(next), Some(interval)) = (self.next, self.interval) else {
            return Vec::new();
        };
        if now < next {
            return Vec::new();
        }
        // Skip missed updates rather than bursting to catch up.
        let mut following = next;
        while following <= now {
            match following.checked_add(interval) {
                Some(t) => following = t,
                None => break,
            }
        }
        self.next = Some(following);
        self.render(now, stats, counts)
    }

    fn render(&self, now: Instant, stats: &Stats, counts: SessionCounts) -> Vec<(String, String)> {
        let uptime = now.saturating_duration_since(self.started).as_secs();
        let v = |name: &str, value: u64| (format!("$SYS/broker/{name}"), value.to_string());
        vec![
            (
                "$SYS/broker/version".to_owned(),
                concat!("mqtt-lwa ", env!("CARGO_PKG_VERSION")).to_owned(),
            ),
            ("$SYS/broker/uptime".to_owned(), format!("{uptime} seconds")),
            v("clients/connected", counts.connected),
            v("clients/disconnected", counts.disconnected),
            v("clients/total", counts.connected + counts.disconnected),
            v("connections/current", Stats::get(&stats.connections)),
            v("connections/total", Stats::get(&stats.connections_total)),
            v("messages/received", Stats::get(&stats.messages_received)),
            v("messages/sent", Stats::get(&stats.messages_sent)),
            v("messages/dropped", Stats::get(&stats.messages_dropped)),
            v("bytes/received", Stats::get(&stats.bytes_received)),
            v("bytes/sent", Stats::get(&stats.bytes_sent)),
            v("retained messages/count", counts.retained),
            v("subscriptions/count", counts.subscriptions),
            v("auth/failures", Stats::get(&stats.auth_failures)),
            v("lwa/record failures", Stats::get(&stats.record_failures)),
            v("store/errors", Stats::get(&stats.store_errors)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_and_values() {
        let t0 = Instant::now();
        let stats = Stats::default();
        Stats::add(&stats.messages_dropped, 3);
        let mut sys = SysTopics::new(t0);
        assert!(sys.due(t0, &stats, SessionCounts::default()).is_empty());
        assert_eq!(sys.next_deadline(), None);
        sys.set_interval(Some(Duration::from_secs(10)), t0);
        let counts = SessionCounts {
            connected: 2,
            disconnected: 1,
            ..SessionCounts::default()
        };
        let first = sys.due(t0 + Duration::from_secs(1), &stats, counts);
        let get = |k: &str| first.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
        assert_eq!(get("$SYS/broker/clients/total").as_deref(), Some("3"));
        assert_eq!(get("$SYS/broker/messages/dropped").as_deref(), Some("3"));
        assert_eq!(get("$SYS/broker/uptime").as_deref(), Some("1 seconds"));
        assert_eq!(sys.next_deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(sys
            .due(t0 + Duration::from_secs(9), &stats, counts)
            .is_empty());
        assert!(!sys
            .due(t0 + Duration::from_secs(35), &stats, counts)
            .is_empty());
        assert_eq!(sys.next_deadline(), Some(t0 + Duration::from_secs(40)));
        sys.set_interval(Some(Duration::ZERO), t0);
        assert_eq!(sys.next_deadline(), None);
    }
}
