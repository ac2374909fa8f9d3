//! The durable queue between the API and the workers: apalis on Redis, or apalis on an embedded SQLite
//! file when no Redis is configured. Everything backend-specific stays in this module.

mod durability;
mod grouping;
mod redis;
mod redis_push;
mod sqlite;
mod watermark;

pub use durability::QueueMetrics;
pub use grouping::{Enqueuer, GroupingSettings};
pub use watermark::Watermark;

use eye_domain::{Failure, IngestBatch, Retryability};
use std::path::PathBuf;
use std::time::Duration;

/// Where the queue lives.
#[derive(Debug, Clone)]
pub enum QueueBackend {
    /// apalis-redis at this URL (production).
    Redis {
        /// `redis://…`
        url: String,
    },
    /// apalis-sqlite in its own file (the embedded default; kept apart from the data database).
    Sqlite {
        /// The queue's database file.
        path: PathBuf,
    },
}

/// How to open the queue.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The backend.
    pub backend: QueueBackend,
    /// The queue's name; on Redis every key starts with it, so it also isolates tenants and tests.
    pub name: String,
    /// How often an idle worker looks for new jobs (apalis' default heartbeat wake-up is ~30 s).
    pub poll_interval: Duration,
    /// How long a push may take before the API reports the queue unavailable.
    pub push_timeout: Duration,
    /// How long finished jobs are kept before the workers delete them.
    pub retention: Duration,
}

/// The queue could not take or give work.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The backend did not answer in time or refused the connection.
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error.
    #[error("the queue failed: {0}")]
    Backend(String),
}

impl QueueConfig {
    /// apalis 1.0 fetches new jobs when a worker's heartbeat fires (its interval poll strategy does not
    /// re-fetch after an empty fetch, measured), so the heartbeat runs at the poll interval...
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        self.poll_interval
    }

    /// ...and as many heartbeats may be missed as fit in 30 s before a worker's jobs count as orphaned.
    pub(crate) fn missed_heartbeats(&self) -> usize {
        let interval = self.poll_interval.as_millis().max(1);
        usize::try_from(ORPHAN_AFTER.as_millis() / interval)
            .unwrap_or(usize::MAX)
            .max(1)
    }
}

/// Jobs a worker fetches per poll (apalis' default is 10). A backlog of one-event jobs drains faster the
/// more come per poll (8 per 10 ms poll is 800 jobs a second); but under load producers merge requests
/// into jobs of up to 1,000 events, and those are held in memory (measured peak RSS of a busy worker,
/// with jobs of up to 500 events: 71 MiB at 16, 77-80 MiB at 32, 128 MiB at 64; BENCHMARKS.md). At 4
/// instead of 8, with jobs of 1,000, the peak did not move (60.7 and 62.1 against 60.8–63.8 MiB).
pub(crate) const FETCH_BATCH: usize = 8;

/// The most finished jobs one retention step examines or deletes: one short script call on Redis, one
/// short write transaction on SQLite, so neither blocks pushes and fetches for long.
pub(crate) const RETENTION_CHUNK: usize = 1000;

/// How long a silent worker keeps its jobs before they are handed to another.
const ORPHAN_AFTER: Duration = Duration::from_secs(30);

impl Failure for QueueError {
    fn retryability(&self) -> Retryability {
        Retryability::Transient
    }
}

/// An open queue: hands out producers and runs workers.
#[derive(Clone)]
pub enum Queue {
    /// On Redis.
    Redis(redis::RedisQueue),
    /// On SQLite.
    Sqlite(sqlite::SqliteQueue),
}

impl Queue {
    /// Connects to the backend and prepares it (migrations for SQLite).
    #[tracing::instrument(skip_all, fields(queue = %config.name), err)]
    pub async fn open(config: &QueueConfig) -> Result<Self, QueueError> {
        match &config.backend {
            QueueBackend::Redis { url } => {
                Ok(Self::Redis(redis::RedisQueue::open(url, config).await?))
            }
            QueueBackend::Sqlite { path } => {
                Ok(Self::Sqlite(sqlite::SqliteQueue::open(path, config).await?))
            }
        }
    }

    /// Durably enqueues batches, one job each, in one round trip; returns only once the backend has them.
    /// Producers go through an [`Enqueuer`], which groups concurrent requests into few pushes.
    ///
    /// `Ok` means every batch is queued; `Err` means none is. The push is bounded by the configured
    /// push timeout and must not be cancelled from outside (a cancelled push may still complete). One
    /// case stays ambiguous on Redis: Redis ran the push in time but its answer was lost (the
    /// connection broke right after): see the README's durability contract.
    pub async fn push_all(&self, batches: Vec<IngestBatch>) -> Result<(), QueueError> {
        match self {
            Self::Redis(queue) => queue.push_all(batches).await,
            Self::Sqlite(queue) => queue.push_all(batches).await,
        }
    }

    /// Round trip to the backend, for readiness checks.
    pub async fn ping(&self) -> Result<(), QueueError> {
        match self {
            Self::Redis(queue) => queue.ping().await,
            Self::Sqlite(queue) => queue.ping().await,
        }
    }

    /// The queue's metrics (e.g. whether accepted events survive a restart), for `/metrics`.
    pub fn metrics(&self) -> QueueMetrics {
        match self {
            Self::Redis(queue) => queue.metrics(),
            Self::Sqlite(queue) => queue.metrics(),
        }
    }

    /// Deletes the jobs that finished at least `older_than` ago, in bounded steps; answers how many.
    /// Workers run this every second with the configured retention; tests and tools may call it.
    pub async fn delete_finished(&self, older_than: Duration) -> Result<u64, QueueError> {
        match self {
            Self::Redis(queue) => queue.delete_finished(older_than).await,
            Self::Sqlite(queue) => queue.delete_finished(older_than).await,
        }
    }

    /// The oldest job not yet finished (see [`Watermark`]).
    pub async fn watermark(&self) -> Result<Watermark, QueueError> {
        match self {
            Self::Redis(queue) => queue.watermark().await,
            Self::Sqlite(queue) => queue.watermark().await,
        }
    }

    /// Jobs waiting to be processed (for metrics).
    pub async fn depth(&self) -> Result<u64, QueueError> {
        match self {
            Self::Redis(queue) => queue.depth().await,
            Self::Sqlite(queue) => queue.depth().await,
        }
    }
}
