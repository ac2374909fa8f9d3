//! Pure arithmetic of the benchmark: percentiles and rates. No I/O, no clocks.

use serde::Serialize;
use std::time::Duration;

/// Latency percentiles of one measured operation, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples measured.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest sample.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises latencies given in microseconds (sorts them in place). `None` when there are none.
    pub fn from_micros(samples: &mut [u32]) -> Option<Self> {
        samples.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        Some(Self {
            samples: samples.len(),
            p50_ms: ms(percentile(samples, 50.0)?),
            p95_ms: ms(percentile(samples, 95.0)?),
            p99_ms: ms(percentile(samples, 99.0)?),
            max_ms: ms(*samples.last()?),
        })
    }
}

/// The `p`-th percentile (0 < p <= 100) of sorted samples by the nearest-rank method: the smallest sample
/// such that at least p% of all samples are less than or equal to it. `None` for no samples.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Items per second; 0 for an empty interval.
pub fn rate(items: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { items as f64 / secs } else { 0.0 }
}

/// `part / whole`, or `None` when `whole` is zero.
pub fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentiles_of_one_to_a_hundred_are_their_ranks() {
        let samples: Vec<u32> = (1..=100).collect();
        for (p, expected) in [(50.0, 50), (95.0, 95), (99.0, 99), (100.0, 100), (1.0, 1)] {
            assert_eq!(percentile(&samples, p), Some(expected), "p{p}");
        }
    }

    #[test]
    fn a_percentile_between_ranks_rounds_up_to_the_next_sample() {
        let samples = [10, 20, 30, 40];
        assert_eq!(percentile(&samples, 50.0), Some(20));
        assert_eq!(percentile(&samples, 51.0), Some(30));
        assert_eq!(percentile(&samples, 99.0), Some(40));
    }

    #[test]
    fn one_sample_is_every_percentile() {
        for p in [0.0, 50.0, 99.0, 100.0] {
            assert_eq!(percentile(&[7], p), Some(7));
        }
    }

    #[test]
    fn no_samples_have_no_percentile() {
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        assert_eq!(LatencySummary::from_micros(&mut []), None);
    }

    #[test]
    fn latencies_in_microseconds_are_summarised_in_milliseconds_regardless_of_order() {
        let mut samples: Vec<u32> = (1..=1000).rev().map(|n| n * 10).collect();
        let summary = LatencySummary::from_micros(&mut samples).expect("samples");
        assert_eq!(summary.samples, 1000);
        assert_eq!(summary.p50_ms, 5.0);
        assert_eq!(summary.p95_ms, 9.5);
        assert_eq!(summary.p99_ms, 9.9);
        assert_eq!(summary.max_ms, 10.0);
    }

    #[test]
    fn rate_is_items_per_second_and_zero_for_no_time() {
        assert_eq!(rate(30_000, Duration::from_secs(2)), 15_000.0);
        assert_eq!(rate(1, Duration::from_millis(250)), 4.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
    }

    #[test]
    fn ratio_of_nothing_is_undefined() {
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
    }
}
