//! How far the queue has got: the oldest job it has not finished. Every event accepted before that job
//! was pushed is stored and evaluated; the rules' timer sweeper decides an absence only past this point,
//! so a backlog (workers down, a slow database) can never make it miss an event still in the queue.

use chrono::{DateTime, Utc};

/// The point before which every pushed job is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watermark {
    /// No job is waiting or in flight.
    Clear,
    /// The oldest unfinished job was pushed at this time.
    Oldest(DateTime<Utc>),
    /// Too many jobs wait to find the oldest cheaply: treat the queue as behind.
    Unknown,
}

/// The most ids read per list or set to find the oldest job (a Lua loop over them, about a millisecond
/// per 10,000).
pub(super) const READ_LIMIT: usize = 20_000;

impl Watermark {
    /// From the smallest job id (a ULID: it carries the time it was made, in milliseconds).
    pub(super) fn from_job_id(id: &str) -> Self {
        ulid::Ulid::from_string(id)
            .ok()
            .and_then(|ulid| i64::try_from(ulid.timestamp_ms()).ok())
            .and_then(DateTime::from_timestamp_millis)
            .map_or(Self::Unknown, Self::Oldest)
    }

    /// The latest time up to which everything accepted is stored, given the wall clock `now`; `None` when
    /// unknown.
    pub fn settled_until(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Clear => Some(now),
            Self::Oldest(oldest) => Some(oldest.min(now)),
            Self::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_id_gives_the_time_its_job_was_pushed() {
        let at = DateTime::from_timestamp_millis(1_764_000_000_123).expect("valid");
        let id = ulid::Ulid::from_parts(1_764_000_000_123, 42).to_string();
        assert_eq!(Watermark::from_job_id(&id), Watermark::Oldest(at));
        assert_eq!(Watermark::from_job_id("not a ulid"), Watermark::Unknown);
    }

    #[test]
    fn the_queue_is_settled_until_its_oldest_job_or_now() {
        let now = DateTime::from_timestamp(2_000, 0).expect("valid");
        let earlier = DateTime::from_timestamp(1_000, 0).expect("valid");
        assert_eq!(Watermark::Clear.settled_until(now), Some(now));
        assert_eq!(Watermark::Oldest(earlier).settled_until(now), Some(earlier));
        assert_eq!(Watermark::Unknown.settled_until(now), None);
    }
}
