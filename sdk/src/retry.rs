//! Exponential backoff with full jitter, bounded by retries and total waiting time.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::RetryPolicy;

/// The backoff state of one batch.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    retries: u32,
    waited: Duration,
}

impl Backoff {
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            retries: 0,
            waited: Duration::ZERO,
        }
    }

    /// Requests made so far, counting the one that just failed.
    pub fn attempts(&self) -> u32 {
        self.retries + 1
    }

    /// The delay before the next retry, or `None` when the limits are reached.
    ///
    /// `unit` is a random number in `[0, 1)`: the delay is uniform between zero and the
    /// exponential ceiling (full jitter), but never shorter than the server's `Retry-After`.
    pub fn next_delay(&mut self, retry_after: Option<Duration>, unit: f64) -> Option<Duration> {
        if self.retries >= self.policy.max_retries {
            return None;
        }
        let jittered = self.ceiling().mul_f64(unit.clamp(0.0, 1.0));
        let delay = jittered.max(retry_after.unwrap_or_default());
        let waited = self.waited.checked_add(delay)?;
        if waited > self.policy.max_total_backoff {
            return None;
        }
        self.retries += 1;
        self.waited = waited;
        Some(delay)
    }

    /// `initial_backoff * 2^retries`, capped by the total backoff budget.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.retries).unwrap_or(u32::MAX);
        self.policy
            .initial_backoff
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.policy.max_total_backoff)
    }
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date relative to `now`.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.to_utc();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(max_retries: u32, initial_ms: u32, total_ms: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            initial_backoff: MS * initial_ms,
            max_total_backoff: MS * total_ms,
        }
    }

    #[test]
    fn the_ceiling_doubles_with_each_retry() {
        let mut backoff = Backoff::new(policy(10, 100, 100_000));
        let delays: Vec<_> = (0..4)
            .filter_map(|_| backoff.next_delay(None, 0.999_999))
            .collect();
        let rounded: Vec<_> = delays
            .iter()
            .map(|d| (d.as_secs_f64() * 1000.0).round())
            .collect();
        assert_eq!(rounded, [100.0, 200.0, 400.0, 800.0]);
        assert_eq!(backoff.attempts(), 5);
    }

    #[test]
    fn full_jitter_spreads_the_delay_between_zero_and_the_ceiling() {
        let table = [(0.0, 0), (0.5, 50), (1.0, 100), (7.0, 100), (-1.0, 0)];
        for (unit, expected_ms) in table {
            let mut backoff = Backoff::new(policy(3, 100, 10_000));
            assert_eq!(
                backoff.next_delay(None, unit),
                Some(MS * expected_ms),
                "unit {unit}"
            );
        }
    }

    #[test]
    fn retry_after_is_a_lower_bound_on_the_delay() {
        let mut backoff = Backoff::new(policy(3, 100, 10_000));
        assert_eq!(backoff.next_delay(Some(MS * 2000), 0.5), Some(MS * 2000));
        assert_eq!(
            backoff.next_delay(Some(Duration::ZERO), 0.5),
            Some(MS * 100)
        );
    }

    #[test]
    fn retries_stop_after_max_retries() {
        let mut backoff = Backoff::new(policy(2, 1, 10_000));
        assert!(backoff.next_delay(None, 0.5).is_some());
        assert!(backoff.next_delay(None, 0.5).is_some());
        assert_eq!(backoff.next_delay(None, 0.5), None);
        assert_eq!(backoff.attempts(), 3);
    }

    #[test]
    fn retries_stop_when_the_total_backoff_would_be_exceeded() {
        let mut backoff = Backoff::new(policy(10, 100, 250));
        assert_eq!(backoff.next_delay(Some(MS * 200), 0.0), Some(MS * 200));
        assert_eq!(backoff.next_delay(Some(MS * 100), 0.0), None);
        assert_eq!(backoff.next_delay(Some(MS * 50), 0.0), Some(MS * 50));
    }

    #[test]
    fn zero_retries_never_retry() {
        assert_eq!(Backoff::new(policy(0, 1, 1000)).next_delay(None, 0.0), None);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let now = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .expect("valid")
            .to_utc();
        let table = [
            ("0", Some(Duration::ZERO)),
            (" 3 ", Some(Duration::from_secs(3))),
            (
                "Wed, 01 Jan 2025 00:00:05 GMT",
                Some(Duration::from_secs(5)),
            ),
            ("Tue, 31 Dec 2024 23:59:00 GMT", Some(Duration::ZERO)),
            ("-1", None),
            ("soon", None),
        ];
        for (value, expected) in table {
            assert_eq!(parse_retry_after(value, now), expected, "value {value:?}");
        }
    }
}
