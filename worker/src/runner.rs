//! Runs workers under supervision: a worker that stops with an error (e.g. Redis restarted) is started
//! again after a pause, and so is one that makes no progress at all (see [`crate::liveness`]), until
//! shutdown.

use crate::liveness::Liveness;
use crate::processor::Processor;
use crate::queue::Queue;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pause before restarting a failed worker.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// How long a stalled worker may take to stop gracefully (handing its fetched jobs back) before it is
/// dropped; its jobs then return to the queue when their lease expires.
const REPLACE_GRACE: Duration = Duration::from_secs(10);

/// One worker's settings.
#[derive(Clone)]
pub(crate) struct WorkerRun {
    pub(crate) name: String,
    pub(crate) concurrency: usize,
    pub(crate) processor: Processor,
    /// Stops this worker only (a child of the process's shutdown).
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
        let liveness = Liveness::new();
        let run = WorkerRun {
            // A fresh name per start: jobs a replaced worker had locked become orphans, handed on by apalis.
            name: format!("eye-worker-{}", uuid::Uuid::new_v4().simple()),
            concurrency: options.concurrency,
            processor: processor.clone().with_liveness(liveness.clone()),
            shutdown: shutdown.child_token(),
            liveness,
        };
        supervise(&queue, run).await;
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(RESTART_DELAY) => {}
        }
    }
}

/// Runs one worker until shutdown, failure, or a stall. A stalled worker has no job in progress by
/// definition; it is stopped gracefully first, so the jobs it fetched go back to the queue.
async fn supervise(queue: &Queue, run: WorkerRun) {
    let (name, liveness, stop) = (run.name.clone(), run.liveness.clone(), run.shutdown.clone());
    tracing::info!(worker = %name, concurrency = run.concurrency, "worker started");
    let worker = async {
        match queue {
            Queue::Redis(redis) => redis.run_worker(run).await,
            Queue::Sqlite(sqlite) => sqlite.run_worker(run).await,
        }
    };
    tokio::pin!(worker);
    tokio::select! {
        result = &mut worker => match result {
            Ok(()) => tracing::info!(worker = %name, "worker stopped"),
            Err(err) => tracing::error!(worker = %name, error = %err, "worker failed; restarting"),
        },
        // Measured under heavy load with the SQLite queue: a worker whose heartbeat and fetching both
        // stopped, with no error and no job in progress. Replacing it keeps the queue draining.
        () = liveness.stalled() => {
            tracing::error!(worker = %name, "worker stalled with no job in progress; replacing it");
            stop.cancel();
            if tokio::time::timeout(REPLACE_GRACE, worker).await.is_err() {
                tracing::warn!(worker = %name, "stalled worker did not stop; dropping it");
            }
        }
    }
}
