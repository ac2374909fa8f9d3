//! Telling a stuck worker from a busy one.
//!
//! apalis reports a heartbeat and each finished job, but its heartbeats stop while every concurrency slot
//! is busy, and a job may wait minutes on a slow or unreachable database. A worker is therefore alive while
//! any job of it is in progress, whatever it waits on; only a worker with no job in progress that is also
//! silent (no heartbeat, no finished job) for [`STALL_AFTER`] counts as stalled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Silence, with no job in progress, after which a worker counts as stalled. Longer than the SQLite
/// queue's busy timeout (10 s), so a worker merely waiting for a lock between jobs is left alone.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(15);

/// When a worker last showed it is alive, and how many of its jobs are in progress.
#[derive(Clone)]
pub(crate) struct Liveness {
    started: Instant,
    last_alive_ms: Arc<AtomicU64>,
    in_progress: Arc<AtomicUsize>,
}

/// Marks a job in progress until dropped.
pub(crate) struct Busy(Liveness);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
        self.0.alive();
    }
}

impl Liveness {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            last_alive_ms: Arc::new(AtomicU64::new(0)),
            in_progress: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Records a heartbeat or a finished job.
    pub(crate) fn alive(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_alive_ms.store(elapsed, Ordering::Relaxed);
    }

    /// A job starts; it counts as progress until the returned guard is dropped.
    pub(crate) fn busy(&self) -> Busy {
        self.in_progress.fetch_add(1, Ordering::Relaxed);
        self.alive();
        Busy(self.clone())
    }

    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_alive_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Resolves once the worker has had no job in progress and no sign of life for [`STALL_AFTER`].
    pub(crate) async fn stalled(&self) {
        loop {
            if self.in_progress.load(Ordering::Relaxed) > 0 {
                self.alive();
            }
            let silent = self.silent_for();
            if silent >= STALL_AFTER {
                return;
            }
            tokio::time::sleep(STALL_AFTER - silent).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_worker_silent_for_the_stall_window_is_declared_stalled() {
        let liveness = Liveness::new();
        tokio::time::advance(Duration::from_secs(10)).await;
        liveness.alive();
        let early = tokio::time::timeout(Duration::from_secs(14), liveness.stalled()).await;
        assert!(early.is_err(), "a worker alive 14 s ago is not stalled");
        let late = tokio::time::timeout(Duration::from_secs(2), liveness.stalled()).await;
        assert!(late.is_ok(), "15 s of silence is a stall");
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_whose_job_waits_minutes_on_the_database_is_not_stalled() {
        let liveness = Liveness::new();
        let job = liveness.busy();
        let while_busy = tokio::time::timeout(Duration::from_secs(600), liveness.stalled()).await;
        assert!(
            while_busy.is_err(),
            "ten minutes in one job, no heartbeat: still alive"
        );
        drop(job);
        let after = tokio::time::timeout(Duration::from_secs(16), liveness.stalled()).await;
        assert!(
            after.is_ok(),
            "idle and silent after the job finished: stalled"
        );
    }
}
