//! When to try a notification again: exponential backoff with jitter, never sooner than `Retry-After`.

use chrono::TimeDelta;
use rand::Rng;
use std::time::Duration;

/// The longest `Retry-After` honoured; a service asking for more is retried after this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Retry policy for transient delivery failures.
#[derive(Debug, Clone, Copy)]
pub struct NotifyRetry {
    /// Attempts in all, the first included; after the last, the notification is marked `failed`.
    pub max_attempts: u32,
    /// Delay after the first failed attempt.
    pub min_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
}

impl Default for NotifyRetry {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl NotifyRetry {
    /// The delay after `attempts` failed attempts: `min_delay * 2^(attempts-1)` capped at `max_delay`,
    /// jittered into its upper half (so workers retrying together spread out), and at least `retry_after`.
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>) -> TimeDelta {
        let exponent = attempts.saturating_sub(1).min(30);
        let ceiling = self
            .min_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max_delay);
        let jittered = ceiling.mul_f64(rand::rng().random_range(0.5..=1.0));
        let floor = retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
        TimeDelta::from_std(jittered.max(floor)).unwrap_or(TimeDelta::seconds(3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> NotifyRetry {
        NotifyRetry {
            max_attempts: 5,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }

    #[test]
    fn delays_double_within_their_jitter_band_up_to_the_cap() {
        let cases = [(1, 1), (2, 2), (3, 4), (7, 60), (40, 60)];
        for (attempts, ceiling) in cases {
            let delay = policy().delay(attempts, None).num_milliseconds();
            assert!(
                delay >= ceiling * 500 && delay <= ceiling * 1000,
                "{attempts}: {delay}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_as_a_floor_up_to_an_hour() {
        let cases = [(30, 30), (7200, 3600)];
        for (asked, expected) in cases {
            let delay = policy().delay(1, Some(Duration::from_secs(asked)));
            assert_eq!(delay.num_seconds(), expected, "{asked}");
        }
    }
}
