//! A run's progress on stderr: indicatif's bar where stderr is a terminal; elsewhere (a CI
//! log, `nohup`, a pipe), where indicatif draws nothing, a plain line at most every
//! [`LINE_EVERY`], so that the log of a run of hours says where it is and how long is left.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Shortest time between two plain progress lines.
pub(crate) const LINE_EVERY: Duration = Duration::from_secs(30);

/// Progress over a known number of cells.
pub(crate) struct Progress {
    bar: ProgressBar,
    /// `Some` in plain-line mode: when the last line was written.
    lines: Option<Mutex<Option<Instant>>>,
    started: Instant,
}

impl Progress {
    /// Progress over `total` cells; `enabled: false` (`--quiet`) shows nothing.
    pub(crate) fn new(total: u64, enabled: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = if enabled && terminal {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        bar.set_length(total);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress {
            bar,
            lines: (enabled && !terminal).then(|| Mutex::new(None)),
            started: Instant::now(),
        }
    }

    /// What the run does now.
    pub(crate) fn set_message(&self, msg: String) {
        self.bar.set_message(msg);
        self.line();
    }

    /// `n` more cells done (or skipped).
    pub(crate) fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Clears the bar, or writes the last plain line.
    pub(crate) fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
        if self.lines.is_some() {
            eprintln!(
                "progress {}  {}, done",
                hms(self.started.elapsed()),
                self.cells()
            );
        }
    }

    fn cells(&self) -> String {
        format!(
            "{}/{} cells",
            self.bar.position(),
            self.bar.length().unwrap_or(0)
        )
    }

    fn line(&self) {
        let Some(last) = &self.lines else { return };
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < LINE_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let elapsed = self.started.elapsed();
        let (pos, len) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let left = remaining(elapsed, pos, len)
            .map(|d| format!(", about {} left", hms(d)))
            .unwrap_or_default();
        eprintln!(
            "progress {}  {}{left}: {}",
            hms(elapsed),
            self.cells(),
            self.bar.message()
        );
    }
}

/// Time left at the mean pace so far (`None` before the first cell).
fn remaining(elapsed: Duration, pos: u64, len: u64) -> Option<Duration> {
    (pos > 0 && len >= pos).then(|| elapsed.mul_f64((len - pos) as f64 / pos as f64))
}

/// `H:MM:SS`.
fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_follows_the_pace_so_far() {
        assert_eq!(remaining(Duration::from_secs(10), 0, 100), None);
        assert_eq!(
            remaining(Duration::from_secs(10), 25, 100),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            remaining(Duration::from_secs(10), 100, 100),
            Some(Duration::ZERO)
        );
        assert_eq!(hms(Duration::from_secs(3 * 3600 + 7 * 60 + 5)), "3:07:05");
    }
}
