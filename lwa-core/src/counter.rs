//! The implicit record counter: one per direction per connection, starting at
//! 0, never sent on the wire, never reused, and hard-stopped at
//! 2^record_limit_log2 records.
//!
//! Kept apart from the AEAD code (like boringtun's replay module) because a
//! nonce reused under one key breaks ChaCha20-Poly1305; this is the one place
//! that has to be right about it.

use crate::error::LwaError;
use crate::{MAX_RECORD_LIMIT_LOG2, MIN_RECORD_LIMIT_LOG2};

/// The next record number of one direction and the number of records allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCounter {
    next: u64,
    limit: u64,
}

impl RecordCounter {
    /// A counter at 0 allowing `2^limit_log2` records; `limit_log2` must be in 1..=48.
    pub fn new(limit_log2: u8) -> Result<Self, LwaError> {
        if !(MIN_RECORD_LIMIT_LOG2..=MAX_RECORD_LIMIT_LOG2).contains(&limit_log2) {
            return Err(LwaError::InvalidParameter(
                "record_limit_log2 outside 1..=48",
            ));
        }
        Ok(RecordCounter {
            next: 0,
            limit: 1u64 << limit_log2,
        })
    }

    /// A counter positioned at `next`, for test vectors with large counters.
    ///
    /// Never use this on a live key: a counter used twice under one key reuses a nonce.
    #[doc(hidden)]
    pub fn starting_at(limit_log2: u8, next: u64) -> Result<Self, LwaError> {
        let mut counter = Self::new(limit_log2)?;
        if next > counter.limit {
            return Err(LwaError::InvalidParameter(
                "counter beyond the record limit",
            ));
        }
        counter.next = next;
        Ok(counter)
    }

    /// The counter of the next record, or `None` once the limit is reached.
    pub fn peek(&self) -> Option<u64> {
        (self.next < self.limit).then_some(self.next)
    }

    /// Marks the record returned by [`Self::peek`] as used; a no-op once exhausted.
    pub fn advance(&mut self) {
        if self.next < self.limit {
            self.next += 1;
        }
    }

    /// Records used so far in this direction.
    pub fn used(&self) -> u64 {
        self.next
    }

    /// Total records allowed in this direction (2^record_limit_log2).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Records still allowed before a reconnect is needed.
    pub fn remaining(&self) -> u64 {
        self.limit - self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn starts_at_zero_and_counts_up() {
        let mut c = RecordCounter::new(4).unwrap();
        for expected in 0..16 {
            assert_eq!(c.peek(), Some(expected));
            c.advance();
        }
        assert_eq!(c.peek(), None);
        assert_eq!(c.used(), 16);
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn peek_without_advance_does_not_consume() {
        let c = RecordCounter::new(1).unwrap();
        assert_eq!(c.peek(), Some(0));
        assert_eq!(c.peek(), Some(0));
        assert_eq!(c.used(), 0);
    }

    #[test]
    fn smallest_limit_allows_exactly_two_records() {
        let mut c = RecordCounter::new(1).unwrap();
        assert_eq!(c.limit(), 2);
        c.advance();
        c.advance();
        assert_eq!(c.peek(), None);
        c.advance();
        assert_eq!(c.peek(), None, "advance past the limit must not wrap");
        assert_eq!(c.used(), 2);
    }

    #[test]
    fn largest_limit_stops_at_two_pow_48() {
        let mut c = RecordCounter::starting_at(48, (1u64 << 48) - 1).unwrap();
        assert_eq!(c.peek(), Some((1u64 << 48) - 1));
        c.advance();
        assert_eq!(c.peek(), None);
    }

    #[test]
    fn limit_exponent_range_is_enforced() {
        assert!(RecordCounter::new(0).is_err());
        assert!(RecordCounter::new(49).is_err());
        assert!(RecordCounter::new(255).is_err());
        assert!(RecordCounter::new(1).is_ok());
        assert!(RecordCounter::new(48).is_ok());
    }

    #[test]
    fn starting_at_rejects_positions_past_the_limit() {
        assert!(RecordCounter::starting_at(3, 9).is_err());
        let c = RecordCounter::starting_at(3, 8).unwrap();
        assert_eq!(c.peek(), None);
    }

    proptest! {
        #[test]
        fn never_repeats_and_never_reaches_the_limit(
            log2 in 1u8..=8,
            ops in proptest::collection::vec(any::<bool>(), 0..600),
        ) {
            let mut c = RecordCounter::new(log2).unwrap();
            let mut seen = std::collections::HashSet::new();
            let mut last: Option<u64> = None;
            for advance in ops {
                if let Some(n) = c.peek() {
                    prop_assert!(n < c.limit());
                    if let Some(prev) = last {
                        prop_assert!(n >= prev);
                    }
                    if advance {
                        prop_assert!(seen.insert(n), "counter {} handed out twice", n);
                        c.advance();
                        last = Some(n + 1);
                    }
                } else {
                    prop_assert_eq!(c.used(), c.limit());
                    c.advance();
                    prop_assert_eq!(c.used(), c.limit());
                }
                prop_assert_eq!(c.used() + c.remaining(), c.limit());
            }
            prop_assert_eq!(seen.len() as u64, c.used());
        }
    }
}
