//! Rate-limited operator logging of authentication failures.
//!
//! A failed login is worth a line (identity, source, reason), but an
//! attacker can make thousands a second, and a log that grows that fast is a
//! denial of service of its own. So at most [`FailureLog::LINES`] lines are
//! written per [`FailureLog::WINDOW`]; the rest are counted, and the next
//! line written after the window says how many were left out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failure lines per window; the caller writes the line.
pub struct FailureLog {
    state: Mutex<Window>,
}

struct Window {
    started: Option<Instant>,
    written: u32,
    suppressed: u64,
}

/// What to do with one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogVerdict {
    /// Write the line; `suppressed` failures since the last line were not logged.
    Write {
        /// Failures left out since the last written line.
        suppressed: u64,
    },
    /// Over the budget of this window: count it, write nothing.
    Suppress,
}

impl Default for FailureLog {
    fn default() -> Self {
        FailureLog {
            state: Mutex::new(Window {
                started: None,
                written: 0,
                suppressed: 0,
            }),
        }
    }
}

impl FailureLog {
    /// Lines written per window at most.
    pub const LINES: u32 = 20;
    /// The window.
    pub const WINDOW: Duration = Duration::from_secs(10);

    /// Decides for one failure at `now`.
    pub fn admit(&self, now: Instant) -> LogVerdict {
        let mut w = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let expired = w
            .started
            .is_none_or(|s| now.saturating_duration_since(s) >= Self::WINDOW);
        if expired {
            w.started = Some(now);
            w.written = 0;
        }
        if w.written < Self::LINES {
            w.written += 1;
            let suppressed = std::mem::take(&mut w.suppressed);
            LogVerdict::Write { suppressed }
        } else {
            w.suppressed += 1;
            LogVerdict::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_per_window_and_suppressed_count_reported() {
        let log = FailureLog::default();
        let t0 = Instant::now();
        for _ in 0..FailureLog::LINES {
            assert_eq!(log.admit(t0), LogVerdict::Write { suppressed: 0 });
        }
        assert_eq!(log.admit(t0), LogVerdict::Suppress);
        assert_eq!(log.admit(t0), LogVerdict::Suppress);
        let t1 = t0 + FailureLog::WINDOW;
        assert_eq!(log.admit(t1), LogVerdict::Write { suppressed: 2 });
        assert_eq!(log.admit(t1), LogVerdict::Write { suppressed: 0 });
    }
}
