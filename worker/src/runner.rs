//! Runs workers under supervision: a worker that stops with an error (e.g. Redis restarted) is started
//! again after a pause, until shutdown.

use crate::processor::Processor;
use crate::queue::Queue;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pause before restarting a failed worker.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// One worker's settings.
#[derive(Clone)]
pub(crate) struct WorkerRun {
    pub(crate) name: String,
    pub(crate) concurrency: usize,
    pub(crate) processor: Processor,
    pub(crate) shutdown: CancellationToken,
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
    let run = WorkerRun {
        name: format!("eye-worker-{}", uuid::Uuid::new_v4().simple()),
        concurrency: options.concurrency,
        processor,
        shutdown: shutdown.clone(),
    };
    tracing::info!(worker = %run.name, concurrency = run.concurrency, "worker started");
    while !shutdown.is_cancelled() {
        let result = match &queue {
            Queue::Redis(redis) => redis.run_worker(run.clone()).await,
            Queue::Sqlite(sqlite) => sqlite.run_worker(run.clone()).await,
        };
        if let Err(err) = result {
            tracing::error!(error = %err, "worker stopped; restarting");
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(RESTART_DELAY) => {}
        }
    }
    tracing::info!(worker = %run.name, "worker stopped");
}
