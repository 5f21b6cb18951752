//! Confidence intervals for the report's ratios, and what a target may
//! claim from them.
//!
//! Every ratio in the report is a ratio of medians over repeats (mode A's
//! median messages/s over mode B's, say). Its 95 % interval comes from a
//! paired percentile bootstrap: the repeats are resampled with replacement
//! as whole rounds (repeat `i` of A with repeat `i` of B, since one round
//! measures every (broker, mode) block back to back and shares the
//! machine's state), the ratio of medians is recomputed for each of
//! [`RESAMPLES`] resamples, and the 2.5th and 97.5th percentiles bound it.
//! Where A and B do not share repeat indices the two are resampled
//! independently. The generator is seeded with a constant, so a re-render
//! of the same `results.json` gives the same intervals to the digit.
//!
//! With fewer than [`MIN_REPEATS`] repeats there is no interval, and a
//! target is never called met or missed without one.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 2000;
/// Fewest repeats an interval is computed from.
pub const MIN_REPEATS: usize = 2;
const SEED: u64 = 0x6d71_7474_6c77_6131;

/// A ratio with its 95 % bootstrap interval, where there is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioCi {
    /// Ratio of the medians.
    pub point: f64,
    /// 95 % interval, `None` with fewer than [`MIN_REPEATS`] repeats.
    pub interval: Option<(f64, f64)>,
    /// Repeats it rests on (the smaller side).
    pub repeats: usize,
}

impl RatioCi {
    /// `0.93 [0.90, 0.96]`, or `0.93 (1 repeat, no interval)`.
    pub fn show(&self) -> String {
        match self.interval {
            Some((lo, hi)) => format!("{:.2} [{lo:.2}, {hi:.2}]", self.point),
            None => format!(
                "{:.2} (no interval: {} repeat{})",
                self.point,
                self.repeats,
                if self.repeats == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Median of a non-empty slice (mean of the middle two for even lengths).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest rank on the sorted resample ratios.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The ratio of medians `num / den` with its interval. Each side is
/// `(repeat index, value)`; pairs share a repeat index.
pub fn ratio_ci(num: &[(usize, f64)], den: &[(usize, f64)]) -> Option<RatioCi> {
    if num.is_empty() || den.is_empty() {
        return None;
    }
    let nv: Vec<f64> = num.iter().map(|x| x.1).collect();
    let dv: Vec<f64> = den.iter().map(|x| x.1).collect();
    let d = median(&dv);
    if d <= 0.0 || !d.is_finite() {
        return None;
    }
    let point = median(&nv) / d;
    let repeats = nv.len().min(dv.len());
    if repeats < MIN_REPEATS {
        return Some(RatioCi {
            point,
            interval: None,
            repeats,
        });
    }
    // Paired where both sides have the same repeat indices.
    let mut ni: Vec<usize> = num.iter().map(|x| x.0).collect();
    let mut di: Vec<usize> = den.iter().map(|x| x.0).collect();
    ni.sort_unstable();
    di.sort_unstable();
    let paired = ni == di;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut ratios = Vec::with_capacity(RESAMPLES);
    let mut a = vec![0.0; nv.len()];
    let mut b = vec![0.0; dv.len()];
    let (mut num_sorted, mut den_sorted) = (num.to_vec(), den.to_vec());
    num_sorted.sort_by_key(|x| x.0);
    den_sorted.sort_by_key(|x| x.0);
    for _ in 0..RESAMPLES {
        if paired {
            for k in 0..a.len() {
                let i = rng.gen_range(0..a.len());
                a[k] = num_sorted[i].1;
                b[k] = den_sorted[i].1;
            }
        } else {
            for slot in a.iter_mut() {
                *slot = nv[rng.gen_range(0..nv.len())];
            }
            for slot in b.iter_mut() {
                *slot = dv[rng.gen_range(0..dv.len())];
            }
        }
        let den = median(&b);
        if den > 0.0 {
            ratios.push(median(&a) / den);
        }
    }
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(RatioCi {
        point,
        interval: Some((percentile(&ratios, 0.025), percentile(&ratios, 0.975))),
        repeats,
    })
}

/// A median, or a difference of medians, with its 95 % bootstrap interval: the
/// gateway experiment's absolute figures (messages per CPU-second, added latency).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The median (or difference of medians).
    pub point: f64,
    /// 95 % interval, `None` with fewer than [`MIN_REPEATS`] repeats.
    pub interval: Option<(f64, f64)>,
    /// Repeats it rests on (the smaller side).
    pub repeats: usize,
}

impl Estimate {
    /// `12.3 [11.0, 13.1]` with `digits` decimals, or `12.3 (no interval: 1 repeat)`.
    pub fn show(&self, digits: usize) -> String {
        match self.interval {
            Some((lo, hi)) => format!("{:.digits$} [{lo:.digits$}, {hi:.digits$}]", self.point),
            None => format!(
                "{:.digits$} (no interval: {} repeat{})",
                self.point,
                self.repeats,
                if self.repeats == 1 { "" } else { "s" }
            ),
        }
    }
}

/// The median of `values` (one per repeat) with its percentile-bootstrap interval.
pub fn median_ci(values: &[(usize, f64)]) -> Option<Estimate> {
    if values.is_empty() {
        return None;
    }
    let v: Vec<f64> = values.iter().map(|x| x.1).collect();
    let point = median(&v);
    if v.len() < MIN_REPEATS {
        return Some(Estimate {
            point,
            interval: None,
            repeats: v.len(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut a = vec![0.0; v.len()];
    let mut stats = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        for slot in a.iter_mut() {
            *slot = v[rng.gen_range(0..v.len())];
        }
        stats.push(median(&a));
    }
    stats.sort_by(f64::total_cmp);
    Some(Estimate {
        point,
        interval: Some((percentile(&stats, 0.025), percentile(&stats, 0.975))),
        repeats: v.len(),
    })
}

/// `median(a) - median(b)` with its interval: paired by repeat index where both sides
/// have the same indices (one round measures both back to back), else independent.
pub fn difference_ci(a: &[(usize, f64)], b: &[(usize, f64)]) -> Option<Estimate> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by_key(|x| x.0);
    b.sort_by_key(|x| x.0);
    let av: Vec<f64> = a.iter().map(|x| x.1).collect();
    let bv: Vec<f64> = b.iter().map(|x| x.1).collect();
    let point = median(&av) - median(&bv);
    let repeats = av.len().min(bv.len());
    if repeats < MIN_REPEATS {
        return Some(Estimate {
            point,
            interval: None,
            repeats,
        });
    }
    let paired = a.iter().map(|x| x.0).eq(b.iter().map(|x| x.0));
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut ra = vec![0.0; av.len()];
    let mut rb = vec![0.0; bv.len()];
    let mut stats = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        if paired {
            for k in 0..ra.len() {
                let i = rng.gen_range(0..ra.len());
                ra[k] = av[i];
                rb[k] = bv[i];
            }
        } else {
            for slot in ra.iter_mut() {
                *slot = av[rng.gen_range(0..av.len())];
            }
            for slot in rb.iter_mut() {
                *slot = bv[rng.gen_range(0..bv.len())];
            }
        }
        stats.push(median(&ra) - median(&rb));
    }
    stats.sort_by(f64::total_cmp);
    Some(Estimate {
        point,
        interval: Some((percentile(&stats, 0.025), percentile(&stats, 0.975))),
        repeats,
    })
}

/// What a target may claim from a ratio and its interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The whole interval is on the goal's side.
    Met,
    /// The whole interval is on the wrong side.
    Missed,
    /// The interval straddles the goal, or there is none.
    NotShown,
    /// Quick profile: figures are indicative and claim nothing.
    Indicative,
}

impl Claim {
    /// The word the report prints.
    pub fn word(self) -> &'static str {
        match self {
            Claim::Met => "met",
            Claim::Missed => "missed",
            Claim::NotShown => "not shown",
            Claim::Indicative => "indicative (quick profile)",
        }
    }
}

/// Judges "ratio >= goal" (or "<= goal" with `at_most`) by the interval.
pub fn judge(ci: &RatioCi, goal: f64, at_most: bool, indicative: bool) -> Claim {
    if indicative {
        return Claim::Indicative;
    }
    let Some((lo, hi)) = ci.interval else {
        return Claim::NotShown;
    };
    let (good, bad) = if at_most {
        (hi <= goal, lo > goal)
    } else {
        (lo >= goal, hi < goal)
    };
    if good {
        Claim::Met
    } else if bad {
        Claim::Missed
    } else {
        Claim::NotShown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(v: &[f64]) -> Vec<(usize, f64)> {
        v.iter().copied().enumerate().collect()
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn identical_series_give_a_point_interval_at_one() {
        let a = series(&[100.0, 110.0, 90.0, 105.0, 95.0]);
        let ci = ratio_ci(&a, &a).unwrap();
        assert_eq!(ci.point, 1.0);
        // Paired resampling of identical series: every resample's ratio is 1.
        assert_eq!(ci.interval, Some((1.0, 1.0)));
    }

    #[test]
    fn interval_holds_the_point_and_is_reproducible() {
        let a = series(&[95.0, 101.0, 99.0, 104.0, 97.0]);
        let b = series(&[100.0, 98.0, 103.0, 99.0, 101.0]);
        let ci = ratio_ci(&a, &b).unwrap();
        let (lo, hi) = ci.interval.unwrap();
        assert!(lo <= ci.point && ci.point <= hi, "{ci:?}");
        assert!(lo < 1.0 && hi > 0.95, "{ci:?}");
        assert_eq!(ratio_ci(&a, &b), Some(ci), "fixed seed: same interval");
    }

    #[test]
    fn a_clear_difference_is_met_or_missed_and_a_straddle_is_not_shown() {
        let fast = series(&[200.0, 205.0, 198.0, 202.0, 201.0]);
        let slow = series(&[100.0, 103.0, 99.0, 101.0, 98.0]);
        let ci = ratio_ci(&fast, &slow).unwrap();
        assert_eq!(judge(&ci, 1.0, false, false), Claim::Met);
        assert_eq!(judge(&ci, 3.0, false, false), Claim::Missed);
        // Noisy and centred near the goal: the interval straddles it.
        let a = series(&[90.0, 110.0, 95.0, 108.0, 100.0]);
        let b = series(&[105.0, 92.0, 100.0, 97.0, 111.0]);
        let ci = ratio_ci(&a, &b).unwrap();
        let (lo, hi) = ci.interval.unwrap();
        assert!(lo < 1.0 && hi > 1.0, "{ci:?}");
        assert_eq!(judge(&ci, 1.0, false, false), Claim::NotShown);
        // The quick profile never claims.
        let clear = ratio_ci(&fast, &slow).unwrap();
        assert_eq!(judge(&clear, 1.0, false, true), Claim::Indicative);
    }

    #[test]
    fn one_repeat_has_no_interval_and_claims_nothing() {
        let ci = ratio_ci(&series(&[120.0]), &series(&[100.0])).unwrap();
        assert_eq!(ci.interval, None);
        assert!((ci.point - 1.2).abs() < 1e-12);
        assert_eq!(judge(&ci, 1.0, false, false), Claim::NotShown);
        assert_eq!(ci.show(), "1.20 (no interval: 1 repeat)");
    }

    #[test]
    fn median_and_difference_intervals_hold_their_points() {
        let a = series(&[110.0, 120.0, 115.0, 118.0, 112.0]);
        let b = series(&[100.0, 104.0, 99.0, 103.0, 101.0]);
        let m = median_ci(&a).unwrap();
        assert_eq!(m.point, 115.0);
        let (lo, hi) = m.interval.unwrap();
        assert!(
            lo <= 115.0 && 115.0 <= hi && lo >= 110.0 && hi <= 120.0,
            "{m:?}"
        );
        let d = difference_ci(&a, &b).unwrap();
        assert_eq!(d.point, 14.0);
        let (lo, hi) = d.interval.unwrap();
        assert!(lo > 0.0 && lo <= 14.0 && 14.0 <= hi, "{d:?}");
        assert_eq!(difference_ci(&a, &a).unwrap().interval, Some((0.0, 0.0)));
        assert_eq!(
            median_ci(&series(&[3.0])).unwrap().show(1),
            "3.0 (no interval: 1 repeat)"
        );
    }

    #[test]
    fn unpaired_series_are_resampled_independently() {
        let a = vec![(0, 10.0), (1, 11.0), (2, 12.0)];
        let b = vec![(3, 5.0), (4, 5.5), (5, 6.0), (6, 5.2)];
        let ci = ratio_ci(&a, &b).unwrap();
        let (lo, hi) = ci.interval.unwrap();
        assert!(lo < ci.point && ci.point < hi, "{ci:?}");
    }
}
