//! Runs workers under supervision: a worker that stops with an error (e.g. Redis restarted) is started
//! again after a pause, and so is one that stops making progress, until shutdown.

use crate::processor::Processor;
use crate::queue::Queue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Pause before restarting a failed worker.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// A worker that shows no sign of life (heartbeat or finished job) for this long is replaced. Longer than
/// the SQLite queue's busy timeout (10 s), so a worker merely waiting for a lock is left alone.
const STALL_AFTER: Duration = Duration::from_secs(15);

/// When a worker last showed it is alive; apalis' event listener feeds it.
#[derive(Clone)]
pub(crate) struct Liveness {
    started: Instant,
    last_alive_ms: Arc<AtomicU64>,
}

impl Liveness {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_alive_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records a heartbeat or a finished job.
    pub(crate) fn alive(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_alive_ms.store(elapsed, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_alive_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Resolves once the worker has been silent for `STALL_AFTER`.
    async fn stalled(&self) {
        loop {
            let silent = self.silent_for();
            if silent >= STALL_AFTER {
                return;
            }
            tokio::time::sleep(STALL_AFTER - silent).await;
        }
    }
}

/// One worker's settings.
#[derive(Clone)]
pub(crate) struct WorkerRun {
    pub(crate) name: String,
    pub(crate) concurrency: usize,
    pub(crate) processor: Processor,
    pub(crate) shutdown: CancellationToken,
    pub(crate) liveness: Liveness,
}

impl WorkerRun {
    /// Resolves when shutdown is requested, in the shape apalis' `run_until` expects.
    pub(crate) fn stop_signal(&self) -> impl Future<Output = std::io::Result<()>> + use<> {
        let shutdown = self.shutdown.clone();
        async move {
            shutdown.cancelled().await;
            Ok(())
        }
    }
}

/// Settings of the worker pool of one process.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Jobs processed at once.
    pub concurrency: usize,
}

/// Processes jobs from `queue` until `shutdown` fires; jobs in flight finish first.
pub async fn run_workers(
    queue: Queue,
    processor: Processor,
    options: WorkerOptions,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let run = WorkerRun {
            // A fresh name per start: jobs a replaced worker had locked become orphans, handed on by apalis.
            name: format!("eye-worker-{}", uuid::Uuid::new_v4().simple()),
            concurrency: options.concurrency,
            processor: processor.clone(),
            shutdown: shutdown.clone(),
            liveness: Liveness::new(),
        };
        supervise(&queue, run).await;
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(RESTART_DELAY) => {}
        }
    }
}

/// Runs one worker until shutdown, failure, or a stall.
async fn supervise(queue: &Queue, run: WorkerRun) {
    let (name, liveness) = (run.name.clone(), run.liveness.clone());
    tracing::info!(worker = %name, concurrency = run.concurrency, "worker started");
    let worker = async {
        match queue {
            Queue::Redis(redis) => redis.run_worker(run).await,
            Queue::Sqlite(sqlite) => sqlite.run_worker(run).await,
        }
    };
    tokio::select! {
        result = worker => match result {
            Ok(()) => tracing::info!(worker = %name, "worker stopped"),
            Err(err) => tracing::error!(worker = %name, error = %err, "worker failed; restarting"),
        },
        // Measured under heavy load with the SQLite queue: a worker whose heartbeat and fetching both
        // stopped, with no error. Replacing it keeps the queue draining.
        () = liveness.stalled() => tracing::error!(worker = %name, "worker stalled; replacing it"),
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
}
