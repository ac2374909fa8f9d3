//! Judging an event's timestamp against the time it was received, correcting device clock skew.
//!
//! Devices' clocks are often wrong. When the client also reports when it sent the batch
//! (`sent_at`, by the same clock), the skew cancels out the way Segment and Snowplow derive
//! their event time: `corrected = timestamp + (received_at - sent_at)`.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

/// An event's time as the client reported it and as corrected for the device clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    original: DateTime<Utc>,
    corrected: DateTime<Utc>,
    clock_offset: Option<TimeDelta>,
}

impl EventTime {
    /// The timestamp exactly as the client sent it.
    pub fn original(&self) -> DateTime<Utc> {
        self.original
    }

    /// The best estimate of when the event occurred: the original shifted by the clock offset.
    pub fn corrected(&self) -> DateTime<Utc> {
        self.corrected
    }

    /// `received_at - sent_at`, or `None` when the client did not report `sent_at`.
    pub fn clock_offset(&self) -> Option<TimeDelta> {
        self.clock_offset
    }
}

/// An event claiming to happen later than its reception allows; rejected as `future_timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "timestamp {original} (corrected to {corrected}) is {ahead} after the event was received \
     at {received_at}; at most {max_skew} is tolerated",
    ahead = Seconds(*corrected - *received_at),
    max_skew = Seconds(*max_skew)
)]
pub struct FutureTimestamp {
    /// The timestamp as the client sent it.
    pub original: DateTime<Utc>,
    /// The timestamp corrected for the device clock (equal to `original` without `sent_at`).
    pub corrected: DateTime<Utc>,
    /// When The Eye received the event.
    pub received_at: DateTime<Utc>,
    /// The tolerated lead of an event over its reception.
    pub max_skew: TimeDelta,
}

impl FutureTimestamp {
    /// A sentence for error messages and monitoring.
    pub fn detail(&self) -> String {
        self.to_string()
    }
}

/// Corrects `timestamp` for device clock skew and refuses it if it lies in the future.
///
/// "Future" means the corrected time is strictly later than `received_at + max_skew`.
/// Arithmetic that would leave chrono's range saturates instead of failing.
///
/// # Errors
/// [`FutureTimestamp`] when the corrected time is too far ahead of `received_at`.
pub fn judge_time(
    timestamp: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
    max_skew: TimeDelta,
) -> Result<EventTime, FutureTimestamp> {
    let clock_offset = sent_at.map(|sent_at| received_at - sent_at);
    let corrected = saturating_add(timestamp, clock_offset.unwrap_or_default());
    if corrected > saturating_add(received_at, max_skew) {
        return Err(FutureTimestamp {
            original: timestamp,
            corrected,
            received_at,
            max_skew,
        });
    }
    Ok(EventTime {
        original: timestamp,
        corrected,
        clock_offset,
    })
}

fn saturating_add(time: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    time.checked_add_signed(delta)
        .unwrap_or(if delta > TimeDelta::zero() {
            DateTime::<Utc>::MAX_UTC
        } else {
            DateTime::<Utc>::MIN_UTC
        })
}

/// A duration shown in seconds with millisecond precision, e.g. `3600.5s`.
struct Seconds(TimeDelta);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.num_milliseconds();
        let sign = if millis < 0 { "-" } else { "" };
        let (whole, fraction) = (millis.unsigned_abs() / 1000, millis.unsigned_abs() % 1000);
        match fraction {
            0 => write!(f, "{sign}{whole}s"),
            _ => write!(f, "{sign}{whole}.{fraction:03}s"),
        }
    }
}

#[cfg(test)]
mod tests;
