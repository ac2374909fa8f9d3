//! Exponential backoff with full jitter, bounded by a retry budget in time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::config::RetryPolicy;

/// The backoff state of one batch.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    /// When the batch's first attempt started; the budget counts from here.
    started: Instant,
    retries: u32,
}

impl Backoff {
    pub fn new(policy: RetryPolicy, started: Instant) -> Self {
        Self {
            policy,
            started,
            retries: 0,
        }
    }

    /// Requests made so far, counting the one that just failed.
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The delay before the next retry after a failure at `now`, or `None` when the budget is
    /// spent.
    ///
    /// `unit` is a random number in `[0, 1)`: the delay is uniform between zero and the
    /// exponential ceiling (full jitter), cut to what is left of the budget so that the last
    /// attempt falls at its end, but never shorter than the server's `Retry-After`; a
    /// `Retry-After` beyond the budget ends it.
    pub fn next_delay(
        &mut self,
        now: Instant,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Option<Duration> {
        let deadline = self.started.checked_add(self.policy.budget)?;
        let left = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())?;
        let retry_after = retry_after.unwrap_or_default();
        if retry_after > left {
            return None;
        }
        let jittered = self.ceiling().mul_f64(unit.clamp(0.0, 1.0)).min(left);
        self.retries = self.retries.saturating_add(1);
        Some(jittered.max(retry_after))
    }

    /// `initial_backoff * 2^retries`, capped by `max_backoff`.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.retries).unwrap_or(u32::MAX);
        self.policy
            .initial_backoff
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.policy.max_backoff)
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
    const SECOND: Duration = Duration::from_secs(1);

    fn policy(initial_ms: u32, max_ms: u32, budget: Duration) -> RetryPolicy {
        RetryPolicy {
            initial_backoff: MS * initial_ms,
            max_backoff: MS * max_ms,
            budget,
        }
    }

    #[test]
    fn the_ceiling_doubles_with_each_retry_up_to_the_longest_backoff() {
        let start = Instant::now();
        let mut backoff = Backoff::new(policy(100, 1000, SECOND * 600), start);
        let delays: Vec<_> = (0..6)
            .filter_map(|_| backoff.next_delay(start, None, 0.999_999))
            .map(|d| (d.as_secs_f64() * 1000.0).round())
            .collect();
        assert_eq!(delays, [100.0, 200.0, 400.0, 800.0, 1000.0, 1000.0]);
        assert_eq!(backoff.attempts(), 7);
    }

    #[test]
    fn full_jitter_spreads_the_delay_between_zero_and_the_ceiling() {
        let table = [(0.0, 0), (0.5, 50), (1.0, 100), (7.0, 100), (-1.0, 0)];
        for (unit, expected_ms) in table {
            let start = Instant::now();
            let mut backoff = Backoff::new(policy(100, 30_000, SECOND * 600), start);
            let delay = backoff.next_delay(start, None, unit);
            assert_eq!(delay, Some(MS * expected_ms), "unit {unit}");
        }
    }

    #[test]
    fn retry_after_is_a_lower_bound_on_the_delay() {
        let start = Instant::now();
        let mut backoff = Backoff::new(policy(100, 30_000, SECOND * 600), start);
        assert_eq!(
            backoff.next_delay(start, Some(SECOND * 2), 0.5),
            Some(SECOND * 2)
        );
        assert_eq!(
            backoff.next_delay(start, Some(Duration::ZERO), 0.5),
            Some(MS * 100)
        );
    }

    #[test]
    fn retries_go_on_for_the_budget_measured_from_the_first_attempt() {
        let start = Instant::now();
        let budget = SECOND * 600;
        // (failure at, Retry-After, expected delay): the last retry falls at the budget's end.
        let table = [
            (start + SECOND * 60, None, Some(SECOND * 30)),
            (start + SECOND * 590, None, Some(SECOND * 10)),
            (start + SECOND * 590, Some(SECOND * 10), Some(SECOND * 10)),
            (start + SECOND * 590, Some(SECOND * 11), None),
            (start + budget, None, None),
            (start + SECOND * 601, None, None),
        ];
        for (now, retry_after, expected) in table {
            let mut backoff = Backoff::new(policy(30_000, 30_000, budget), start);
            let delay = backoff.next_delay(now, retry_after, 1.0);
            assert_eq!(delay, expected, "at {:?}", now - start);
        }
    }

    #[test]
    fn a_zero_budget_never_retries() {
        let start = Instant::now();
        let mut backoff = Backoff::new(policy(1, 1000, Duration::ZERO), start);
        assert_eq!(backoff.next_delay(start, None, 0.0), None);
        assert_eq!(backoff.attempts(), 1);
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
