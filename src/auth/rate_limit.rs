//! Per-source token buckets that bound login attempts before any hashing.
//!
//! Keyed by source IP; IPv6 sources by their /64, because one host usually
//! owns a whole /64 and could otherwise rotate addresses for free. The clock
//! is injected so tests are deterministic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A monotonic clock; injected so the limiter is deterministic under test.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The system monotonic clock.
pub fn system_clock() -> Clock {
    Arc::new(Instant::now)
}

/// Token bucket parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Attempts a source may make in a burst.
    pub burst: u32,
    /// Time to earn back one attempt.
    pub refill_every: Duration,
    /// Sources tracked at most; beyond that new sources share one bucket.
    pub max_sources: usize,
}

impl Default for RateLimitConfig {
    /// 10 attempts, then one every 6 s (10 a minute), 65 536 sources.
    fn default() -> Self {
        RateLimitConfig {
            burst: 10,
            refill_every: Duration::from_secs(6),
            max_sources: 65_536,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Which bucket a source draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SourceKey {
    V4(u32),
    V6Prefix64(u64),
    /// No address known, or the table is full: one shared bucket.
    Shared,
}

impl SourceKey {
    fn of(ip: Option<IpAddr>) -> Self {
        match ip {
            Some(IpAddr::V4(v4)) => SourceKey::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => SourceKey::V4(u32::from(v4)),
                None => SourceKey::V6Prefix64((u128::from(v6) >> 64) as u64),
            },
            None => SourceKey::Shared,
        }
    }
}

/// Per-source login attempt limiter.
///
/// A connection attempt takes a token before the password is hashed and gets
/// it back if the login succeeds, so only failures (and attempts still in
/// flight) count: a client that logs in correctly is never throttled, while
/// parallel guessing is bounded even before the first failure is known.
pub struct ConnectRateLimiter {
    config: RateLimitConfig,
    clock: Clock,
    buckets: HashMap<SourceKey, Bucket>,
}

impl ConnectRateLimiter {
    /// A limiter on the system clock.
    pub fn new(config: RateLimitConfig) -> Self {
        Self::with_clock(config, system_clock())
    }

    /// A limiter on an injected clock.
    pub fn with_clock(config: RateLimitConfig, clock: Clock) -> Self {
        ConnectRateLimiter {
            config,
            clock,
            buckets: HashMap::new(),
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated);
        let per = self.config.refill_every.as_secs_f64();
        let earned = if per > 0.0 {
            elapsed.as_secs_f64() / per
        } else {
            f64::from(self.config.burst)
        };
        bucket.tokens = (bucket.tokens + earned).min(f64::from(self.config.burst));
        bucket.updated = now;
    }

    fn key_for(&mut self, ip: Option<IpAddr>, now: Instant) -> SourceKey {
        let key = SourceKey::of(ip);
        if self.buckets.contains_key(&key) || self.buckets.len() < self.config.max_sources {
            return key;
        }
        // Full: forget sources whose buckets have refilled (they carry no state), then retry.
        let burst = f64::from(self.config.burst);
        let per = self.config.refill_every.as_secs_f64();
        self.buckets.retain(|_, b| {
            let earned = if per > 0.0 {
                now.saturating_duration_since(b.updated).as_secs_f64() / per
            } else {
                burst
            };
            b.tokens + earned < burst
        });
        if self.buckets.len() < self.config.max_sources {
            key
        } else {
            tracing::warn!("login rate limiter table full; unknown sources share one bucket");
            SourceKey::Shared
        }
    }

    /// Takes one attempt token for `ip`; false means refuse without hashing.
    pub fn try_acquire(&mut self, ip: Option<IpAddr>) -> bool {
        let now = (self.clock)();
        let key = self.key_for(ip, now);
        let burst = f64::from(self.config.burst);
        let mut bucket = self.buckets.get(&key).copied().unwrap_or(Bucket {
            tokens: burst,
            updated: now,
        });
        self.refill(&mut bucket, now);
        let granted = bucket.tokens >= 1.0;
        if granted {
            bucket.tokens -= 1.0;
        }
        self.buckets.insert(key, bucket);
        granted
    }

    /// Returns the token taken for a login that succeeded.
    pub fn refund(&mut self, ip: Option<IpAddr>) {
        let key = SourceKey::of(ip);
        let burst = f64::from(self.config.burst);
        let key = if self.buckets.contains_key(&key) {
            key
        } else {
            SourceKey::Shared
        };
        if let Some(bucket) = self.buckets.get_mut(&key) {
            bucket.tokens = (bucket.tokens + 1.0).min(burst);
        }
    }

    /// Sources currently tracked (for tests and $SYS statistics).
    pub fn tracked_sources(&self) -> usize {
        self.buckets.len()
    }
}

/// Keeps IPv6 addresses in one /64 together (used by tests to state intent).
pub fn same_source(a: IpAddr, b: IpAddr) -> bool {
    SourceKey::of(Some(a)) == SourceKey::of(Some(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn manual_clock() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let n = Arc::clone(&now);
        (Arc::new(move || *n.lock().unwrap()), now)
    }

    fn cfg(burst: u32, secs: u64, max_sources: usize) -> RateLimitConfig {
        RateLimitConfig {
            burst,
            refill_every: Duration::from_secs(secs),
            max_sources,
        }
    }

    #[test]
    fn burst_then_refuse_then_refill() {
        let (clock, now) = manual_clock();
        let mut l = ConnectRateLimiter::with_clock(cfg(3, 10, 100), clock);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l.try_acquire(Some(ip)));
        assert!(l.try_acquire(Some(ip)));
        assert!(l.try_acquire(Some(ip)));
        assert!(!l.try_acquire(Some(ip)));
        *now.lock().unwrap() += Duration::from_secs(9);
        assert!(!l.try_acquire(Some(ip)));
        *now.lock().unwrap() += Duration::from_secs(1);
        assert!(l.try_acquire(Some(ip)));
        assert!(!l.try_acquire(Some(ip)));
    }

    #[test]
    fn sources_are_independent_and_refund_restores() {
        let (clock, _now) = manual_clock();
        let mut l = ConnectRateLimiter::with_clock(cfg(1, 60, 100), clock);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.try_acquire(Some(a)));
        assert!(!l.try_acquire(Some(a)));
        assert!(l.try_acquire(Some(b)));
        l.refund(Some(b));
        assert!(l.try_acquire(Some(b)));
    }

    #[test]
    fn ipv6_grouped_by_64_and_mapped_v4_is_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(same_source(a, b));
        assert!(!same_source(a, c));
        let m: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(same_source(m, v4));
    }

    #[test]
    fn full_table_prunes_refilled_then_shares() {
        let (clock, now) = manual_clock();
        let mut l = ConnectRateLimiter::with_clock(cfg(1, 10, 2), clock);
        let ip = |n: u8| Some(IpAddr::from([10, 0, 0, n]));
        assert!(l.try_acquire(ip(1)));
        assert!(l.try_acquire(ip(2)));
        // Table full of exhausted buckets: the third source shares one bucket.
        assert!(l.try_acquire(ip(3)));
        assert!(!l.try_acquire(ip(4)));
        assert_eq!(l.tracked_sources(), 3);
        *now.lock().unwrap() += Duration::from_secs(20);
        // Everything refilled: pruning makes room for a real bucket again.
        assert!(l.try_acquire(ip(5)));
        assert_eq!(l.tracked_sources(), 1);
    }
}
