//! apalis on an embedded SQLite file: the queue when no Redis is configured.

use super::{QueueConfig, QueueError};
use crate::processor::handle_batch;
use crate::runner::WorkerRun;
use apalis::prelude::{Event, EventListenerExt, TaskSink, WorkerBuilder, WorkerBuilderExt};
use apalis_sqlite::{Config, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use eye_domain::IngestBatch;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// An apalis-sqlite queue in its own database file.
#[derive(Clone)]
pub struct SqliteQueue {
    storage: SqliteStorage<IngestBatch>,
    pool: SqlitePool,
    queue: String,
    push_timeout: Duration,
}

/// apalis' index on `Jobs(lock_by)` covers every job a worker ever locked, so acknowledging walks an
/// ever-growing index (measured: ~360 jobs/s after 10,000 jobs). Only live jobs need it.
const LIVE_LOCK_INDEX: [&str; 2] = [
    "DROP INDEX IF EXISTS LIdx",
    "CREATE INDEX IF NOT EXISTS eye_jobs_live_lock_by ON Jobs(lock_by) WHERE status IN ('Queued', 'Running')",
];

impl SqliteQueue {
    pub(super) async fn open(path: &Path, config: &QueueConfig) -> Result<Self, QueueError> {
        let backend = |e: sqlx::Error| QueueError::Backend(e.to_string());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| QueueError::Backend(e.to_string()))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(backend)?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(backend)?;
        SqliteStorage::setup(&pool)
            .await
            .map_err(|e| QueueError::Backend(e.to_string()))?;
        for statement in LIVE_LOCK_INDEX {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await
                .map_err(backend)?;
        }
        let storage = SqliteStorage::new(&pool).with_config(
            Config::default()
                .queue(&config.name)
                .heartbeat_interval(config.heartbeat_interval())
                .missed_heartbeats(config.missed_heartbeats())
                .batch_size(super::FETCH_BATCH),
        );
        Ok(Self {
            storage,
            pool,
            queue: config.name.clone(),
            push_timeout: config.push_timeout,
        })
    }

    pub(super) async fn push_all(&self, batches: Vec<IngestBatch>) -> Result<(), QueueError> {
        let mut storage = self.storage.clone();
        tokio::time::timeout(self.push_timeout, storage.push_bulk(batches))
            .await
            .map_err(|_| QueueError::Unavailable("push timed out".into()))?
            .map_err(|e| QueueError::Unavailable(e.to_string()))
    }

    pub(super) async fn ping(&self) -> Result<(), QueueError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Unavailable(e.to_string()))
    }

    pub(super) async fn depth(&self) -> Result<u64, QueueError> {
        let depth: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM Jobs WHERE job_type = ?1 AND status IN ('Pending', 'Queued')",
        )
        .bind(&self.queue)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        Ok(depth.max(0) as u64)
    }

    /// Runs one apalis worker over this queue until `shutdown` fires or the worker fails.
    pub(crate) async fn run_worker(&self, run: WorkerRun) -> Result<(), QueueError> {
        let stop = run.stop_signal();
        let liveness = run.liveness.clone();
        let backend = self.storage.clone();
        let worker = WorkerBuilder::new(run.name)
            .backend(backend)
            .concurrency(run.concurrency)
            .on_event(move |_, event| {
                if matches!(event, Event::HeartBeat | Event::Success(_)) {
                    liveness.alive();
                }
            })
            .data(run.processor)
            .build(handle_batch);
        worker
            .run_until(stop)
            .await
            .map_err(|e| QueueError::Backend(e.to_string()))
    }
}
