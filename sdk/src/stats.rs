//! Delivery counters the application can read at any time.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the client's counters, all in events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events the server accepted.
    pub sent: u64,
    /// Events re-sent after a transient failure (one per event per retry).
    pub retried: u64,
    /// Events given up on: refused by `track`, refused by the server, or still failing when the
    /// retry budget ran out. Each is also handed to the error callback, if there is one.
    pub failed: u64,
    /// Events tracked but neither sent nor failed yet (in the buffer or in flight).
    pub buffered: u64,
    /// Events refused because the buffer was full (`FailFast`, `try_track`).
    pub refused_buffer_full: u64,
    /// Calls to `track` that found the buffer full and waited for room (`Wait`).
    pub waited_buffer_full: u64,
}

/// What a [`Client::flush`](crate::Client::flush) or shutdown settled: events whose delivery
/// ended since the previous flush (including batches sent because of size or linger).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushSummary {
    /// Events the server accepted.
    pub sent: u64,
    /// Events given up on.
    pub failed: u64,
}

/// The live counters, shared by the client and its background task.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    buffered: AtomicU64,
    refused_buffer_full: AtomicU64,
    waited_buffer_full: AtomicU64,
}

impl Counters {
    pub fn add_sent(&self, events: usize) {
        self.sent.fetch_add(as_u64(events), Ordering::Relaxed);
    }

    pub fn add_retried(&self, events: usize) {
        self.retried.fetch_add(as_u64(events), Ordering::Relaxed);
    }

    pub fn add_failed(&self, events: usize) {
        self.failed.fetch_add(as_u64(events), Ordering::Relaxed);
    }

    pub fn add_buffered(&self, events: usize) {
        self.buffered.fetch_add(as_u64(events), Ordering::Relaxed);
    }

    pub fn remove_buffered(&self, events: usize) {
        self.buffered.fetch_sub(as_u64(events), Ordering::Relaxed);
    }

    pub fn add_refused_buffer_full(&self) {
        self.refused_buffer_full.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_waited_buffer_full(&self) {
        self.waited_buffer_full.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        Stats {
            sent: self.sent.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            buffered: self.buffered.load(Ordering::Relaxed),
            refused_buffer_full: self.refused_buffer_full.load(Ordering::Relaxed),
            waited_buffer_full: self.waited_buffer_full.load(Ordering::Relaxed),
        }
    }
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_buffered_goes_down_when_events_settle() {
        let counters = Counters::default();
        counters.add_buffered(5);
        counters.add_sent(3);
        counters.add_failed(2);
        counters.remove_buffered(5);
        counters.add_retried(4);
        counters.add_refused_buffer_full();
        counters.add_waited_buffer_full();
        counters.add_waited_buffer_full();
        let expected = Stats {
            sent: 3,
            retried: 4,
            failed: 2,
            buffered: 0,
            refused_buffer_full: 1,
            waited_buffer_full: 2,
        };
        assert_eq!(counters.snapshot(), expected);
    }
}
