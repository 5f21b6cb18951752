//! The delay line behind the NFQUEUE link emulator, sans-IO: packets go in
//! with their arrival time, come out (in arrival order) once their release
//! time has passed, or are dropped on arrival with the loss probability.
//!
//! Time and randomness are inputs, so the scheduling is tested without
//! sockets or clocks; [`super::linkem`] only moves verdicts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;

/// What happened to a packet on arrival.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<T> {
    /// Lost: give it a DROP verdict now.
    Dropped(T),
    /// Queued; released at this instant.
    Delayed(Instant),
}

/// One direction of an emulated link: fixed delay, bounded uniform jitter, random loss.
#[derive(Debug)]
pub struct DelayLine<T> {
    delay: Duration,
    jitter: Duration,
    loss: f64,
    pending: VecDeque<(Instant, T)>,
}

impl<T> DelayLine<T> {
    /// A line delaying by `delay` +/- `jitter` and dropping with probability `loss`.
    pub fn new(delay: Duration, jitter: Duration, loss: f64) -> Self {
        DelayLine {
            delay,
            jitter: jitter.min(delay),
            loss: loss.clamp(0.0, 1.0),
            pending: VecDeque::new(),
        }
    }

    /// A packet arriving at `now`.
    ///
    /// Release times never go backwards: with jitter a packet waits at least
    /// until the one before it is out, as on a real link that does not
    /// reorder (TCP would read reordering as loss).
    pub fn push<R: Rng + ?Sized>(&mut self, packet: T, now: Instant, rng: &mut R) -> Admission<T> {
        if self.loss > 0.0 && rng.gen_bool(self.loss) {
            return Admission::Dropped(packet);
        }
        let mut release = now + self.delay;
        if !self.jitter.is_zero() {
            let j = self.jitter.as_nanos() as i64;
            let offset = rng.gen_range(-j..=j);
            release = if offset >= 0 {
                release + Duration::from_nanos(offset.unsigned_abs())
            } else {
                release - Duration::from_nanos(offset.unsigned_abs())
            };
        }
        if let Some((last, _)) = self.pending.back() {
            release = release.max(*last);
        }
        self.pending.push_back((release, packet));
        Admission::Delayed(release)
    }

    /// When the next packet is due, if any is queued.
    pub fn next_release(&self) -> Option<Instant> {
        self.pending.front().map(|(t, _)| *t)
    }

    /// The next packet whose release time is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        match self.pending.front() {
            Some((t, _)) if *t <= now => self.pending.pop_front().map(|(_, p)| p),
            _ => None,
        }
    }

    /// Packets queued.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn packets_leave_after_the_delay_in_arrival_order() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut line = DelayLine::new(ms(5), Duration::ZERO, 0.0);
        let t0 = Instant::now();
        assert_eq!(line.push(1, t0, &mut rng), Admission::Delayed(t0 + ms(5)));
        assert_eq!(
            line.push(2, t0 + ms(1), &mut rng),
            Admission::Delayed(t0 + ms(6))
        );
        assert_eq!(line.next_release(), Some(t0 + ms(5)));
        assert_eq!(line.pop_due(t0 + ms(4)), None);
        assert_eq!(line.pop_due(t0 + ms(5)), Some(1));
        assert_eq!(line.pop_due(t0 + ms(5)), None);
        assert_eq!(line.next_release(), Some(t0 + ms(6)));
        assert_eq!(line.pop_due(t0 + ms(60)), Some(2));
        assert!(line.is_empty());
        assert_eq!(line.next_release(), None);
    }

    #[test]
    fn jitter_stays_in_bounds_and_never_reorders() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut line = DelayLine::new(ms(3), ms(1), 0.0);
        let t0 = Instant::now();
        let mut last = t0;
        let mut spread = (Duration::MAX, Duration::ZERO);
        for i in 0..2000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 700);
            let Admission::Delayed(at) = line.push(i, now, &mut rng) else {
                panic!("no loss configured");
            };
            assert!(at >= last, "reordered at {i}");
            assert!(at >= now + ms(2), "{i}: less than delay - jitter");
            last = at;
            let d = at - now;
            spread = (spread.0.min(d), spread.1.max(d));
        }
        // The jitter is used: some packets early, some late.
        assert!(spread.0 < Duration::from_micros(2_200), "{spread:?}");
        assert!(spread.1 > Duration::from_micros(3_800), "{spread:?}");
        let mut out = Vec::new();
        while let Some(p) = line.pop_due(last) {
            out.push(p);
        }
        assert_eq!(out, (0..2000).collect::<Vec<_>>());
    }

    #[test]
    fn loss_drops_about_the_configured_share() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut line = DelayLine::new(ms(1), Duration::ZERO, 0.01);
        let t0 = Instant::now();
        let dropped = (0..100_000u32)
            .filter(|i| matches!(line.push(*i, t0, &mut rng), Admission::Dropped(p) if p == *i))
            .count();
        // 1 % of 10^5 = 1000; binomial sd ~31.
        assert!((850..1150).contains(&dropped), "{dropped}");
        assert_eq!(line.len(), 100_000 - dropped);
        let mut none = DelayLine::new(ms(1), Duration::ZERO, 0.0);
        assert!((0..10_000).all(|i| !matches!(none.push(i, t0, &mut rng), Admission::Dropped(_))));
    }
}
