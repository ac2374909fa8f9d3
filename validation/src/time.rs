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

/// A `sent_at` whose correction would move the timestamp out of any plausible range; rejected as
/// `invalid_sent_at`, never "corrected".
///
/// Correcting with `sent_at` is right for a device whose clock is merely wrong (even reset to 1970): the
/// offset it implies is applied to the event's own timestamp, on the same clock. But a `sent_at` from
/// another clock or a bug (year 9999 beside a 2021 timestamp) would shift the event thousands of years into
/// the past, which no database stores and no query means. The rule: a correction that moves the timestamp
/// earlier than [`EARLIEST_CORRECTED`] (the Unix epoch), or out of the representable range, is refused. A
/// correction forward in time that stays representable is judged by the future rule instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "sent_at {sent_at} is implausible: correcting timestamp {original} by {offset} (received at \
     {received_at}) gives {corrected}; a correction may not move a timestamp before \
     {EARLIEST_CORRECTED} or out of the representable range",
    offset = Seconds(*received_at - *sent_at),
    corrected = Corrected(*corrected)
)]
pub struct InvalidSentAt {
    /// The timestamp as the client sent it.
    pub original: DateTime<Utc>,
    /// The client's `sent_at`.
    pub sent_at: DateTime<Utc>,
    /// When The Eye received the event.
    pub received_at: DateTime<Utc>,
    /// The corrected time, `None` when it lies out of the representable range.
    pub corrected: Option<DateTime<Utc>>,
}

/// The earliest time a `sent_at` correction may move a timestamp to: the Unix epoch, where devices whose
/// clock was reset start counting.
pub const EARLIEST_CORRECTED: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

/// Why an event's time was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeRejection {
    /// The (corrected) timestamp lies too far in the future: `future_timestamp`.
    #[error(transparent)]
    Future(#[from] FutureTimestamp),
    /// The `sent_at` would correct the timestamp out of range: `invalid_sent_at`.
    #[error(transparent)]
    InvalidSentAt(#[from] InvalidSentAt),
}

impl TimeRejection {
    /// A sentence for error messages and monitoring.
    pub fn detail(&self) -> String {
        self.to_string()
    }
}

/// Corrects `timestamp` for device clock skew and refuses it if it lies in the future, or if `sent_at`
/// would correct it to an implausible time.
///
/// "Future" means the corrected time is strictly later than `received_at + max_skew`.
///
/// # Errors
/// [`TimeRejection::InvalidSentAt`] when the correction leaves the representable range or moves the
/// timestamp before [`EARLIEST_CORRECTED`]; [`TimeRejection::Future`] when the corrected time is too far
/// ahead of `received_at`.
pub fn judge_time(
    timestamp: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
    max_skew: TimeDelta,
) -> Result<EventTime, TimeRejection> {
    let clock_offset = sent_at.map(|sent_at| received_at - sent_at);
    let corrected = match sent_at {
        Some(sent_at) => corrected_by(timestamp, sent_at, received_at)?,
        None => timestamp,
    };
    if corrected > saturating_add(received_at, max_skew) {
        return Err(TimeRejection::Future(FutureTimestamp {
            original: timestamp,
            corrected,
            received_at,
            max_skew,
        }));
    }
    Ok(EventTime {
        original: timestamp,
        corrected,
        clock_offset,
    })
}

/// `timestamp + (received_at - sent_at)`, unless that leaves the representable range or moves it before
/// the epoch.
fn corrected_by(
    timestamp: DateTime<Utc>,
    sent_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> Result<DateTime<Utc>, InvalidSentAt> {
    let corrected = timestamp.checked_add_signed(received_at - sent_at);
    match corrected {
        Some(time) if time >= EARLIEST_CORRECTED || time >= timestamp => Ok(time),
        _ => Err(InvalidSentAt {
            original: timestamp,
            sent_at,
            received_at,
            corrected,
        }),
    }
}

fn saturating_add(time: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    time.checked_add_signed(delta)
        .unwrap_or(if delta > TimeDelta::zero() {
            DateTime::<Utc>::MAX_UTC
        } else {
            DateTime::<Utc>::MIN_UTC
        })
}

/// A corrected time, or "beyond the representable range".
struct Corrected(Option<DateTime<Utc>>);

impl fmt::Display for Corrected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(time) => write!(f, "{time}"),
            None => f.write_str("a time out of the representable range"),
        }
    }
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
