//! apalis on an embedded SQLite file: the queue when no Redis is configured.

use super::durability::QueueMetrics;
use super::watermark::Watermark;
use super::{QueueConfig, QueueError, RETENTION_CHUNK};
use crate::processor::handle_batch;
use crate::runner::WorkerRun;
use apalis::prelude::{Event, EventListenerExt, WorkerBuilder, WorkerBuilderExt};
use apalis_core::task::builder::TaskBuilder;
use apalis_sqlite::{Config, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use chrono::DateTime;
use eye_domain::IngestBatch;
use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// An apalis-sqlite queue in its own database file.
#[derive(Clone)]
pub struct SqliteQueue {
    storage: SqliteStorage<IngestBatch>,
    pool: SqlitePool,
    queue: String,
    push_timeout: Duration,
    retention: Duration,
    metrics: QueueMetrics,
}

/// Connections of the working pool (workers' fetches and acknowledgements, the API's pushes).
const POOL_SIZE: u32 = 8;

/// How often a worker deletes finished jobs past the retention window.
const RETENTION_INTERVAL: Duration = Duration::from_secs(1);

/// apalis' index on `Jobs(lock_by)` covers every job a worker ever locked, so acknowledging walks an
/// ever-growing index (measured: ~360 jobs/s after 10,000 jobs). Only live jobs need it.
const LIVE_LOCK_INDEX: [&str; 2] = [
    "DROP INDEX IF EXISTS LIdx",
    "CREATE INDEX IF NOT EXISTS eye_jobs_live_lock_by ON Jobs(lock_by) WHERE status IN ('Queued', 'Running')",
];

/// apalis-sqlite 1.0.0's queries/task/sink.sql, verbatim: pushes write rows exactly as apalis does.
const INSERT_JOB: &str = "INSERT INTO Jobs VALUES (?1, ?2, ?3, 'Pending', 0, ?4, ?5, NULL, NULL, NULL, \
     NULL, ?6, ?7, ?8) ON CONFLICT(job_type, idempotency_key) DO NOTHING";

/// One retention step. The `status IN (...)` and `done_at IS NOT NULL` terms repeat the condition of
/// apalis' partial index `idx_jobs_completed_done_at(status, done_at, run_at)`, so SQLite may use it:
/// the step reads only the rows it deletes.
const DELETE_FINISHED: &str = "DELETE FROM Jobs WHERE rowid IN (SELECT rowid FROM Jobs \
     WHERE status IN ('Done', 'Failed', 'Killed') AND done_at IS NOT NULL \
     AND status = 'Done' AND done_at <= ?1 AND job_type = ?2 LIMIT ?3)";

fn backend(e: impl std::fmt::Display) -> QueueError {
    QueueError::Backend(e.to_string())
}

impl SqliteQueue {
    pub(super) async fn open(path: &Path, config: &QueueConfig) -> Result<Self, QueueError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(backend)?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(backend)?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(10));
        migrate(options.clone()).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(working_options(options))
            .await
            .map_err(backend)?;
        let storage = SqliteStorage::new(&pool).with_config(
            Config::default()
                .queue(&config.name)
                .heartbeat_interval(config.heartbeat_interval())
                .missed_heartbeats(config.missed_heartbeats())
                .batch_size(super::FETCH_BATCH),
        );
        let metrics = QueueMetrics::default();
        // Every connection syncs each commit (working_options): an accepted push survives a crash.
        metrics.set_durable(true);
        Ok(Self {
            storage,
            pool,
            queue: config.name.clone(),
            push_timeout: config.push_timeout,
            retention: config.retention,
            metrics,
        })
    }

    pub(super) fn metrics(&self) -> QueueMetrics {
        self.metrics.clone()
    }

    /// Inserts the jobs in one transaction. Only the part before `COMMIT` is bounded by the push
    /// timeout: cancelling there rolls back, so the events are not queued; once the insert is done in
    /// time, the commit (an fsync of the WAL, no lock wait: the write lock is already held) is awaited
    /// to its end, because a commit cancelled halfway may still land on disk.
    pub(super) async fn push_all(&self, batches: Vec<IngestBatch>) -> Result<(), QueueError> {
        let deadline = Instant::now() + self.push_timeout;
        let unavailable = |e: sqlx::Error| QueueError::Unavailable(e.to_string());
        let insert = async {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            for batch in &batches {
                insert_job(&mut tx, &self.queue, batch).await?;
            }
            Ok::<_, QueueError>(tx)
        };
        let tx = tokio::time::timeout_at(deadline, insert)
            .await
            .map_err(|_| QueueError::Unavailable("push timed out".into()))??;
        tx.commit().await.map_err(unavailable)
    }

    /// Deletes jobs finished at least `retention` ago, in steps of at most `RETENTION_CHUNK` rows.
    pub(super) async fn delete_finished(&self, retention: Duration) -> Result<u64, QueueError> {
        // done_at is apalis' `strftime('%s', 'now')`: unix seconds.
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or_default();
        let mut total = 0;
        loop {
            let deleted = sqlx::query(DELETE_FINISHED)
                .bind(cutoff)
                .bind(&self.queue)
                .bind(RETENTION_CHUNK as i64)
                .execute(&self.pool)
                .await
                .map_err(|e| QueueError::Unavailable(e.to_string()))?
                .rows_affected();
            total += deleted;
            if deleted < RETENTION_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    pub(super) async fn ping(&self) -> Result<(), QueueError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Unavailable(e.to_string()))
    }

    /// The oldest job not finished: apalis sets `run_at` (unix seconds) when a job is pushed, and moves it
    /// later only for a retry, which our jobs take only when shutdown interrupts them.
    pub(super) async fn watermark(&self) -> Result<Watermark, QueueError> {
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(run_at) FROM Jobs WHERE job_type = ?1 AND status IN ('Pending', 'Queued', 'Running')",
        )
        .bind(&self.queue)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        Ok(match oldest {
            None => Watermark::Clear,
            Some(seconds) => {
                DateTime::from_timestamp(seconds, 0).map_or(Watermark::Unknown, Watermark::Oldest)
            }
        })
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

    /// Runs one apalis worker over this queue until `shutdown` fires or the worker fails; beside it,
    /// the retention of finished jobs (it stops with the worker).
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
        tokio::select! {
            result = worker.run_until(stop) => result.map_err(|e| QueueError::Backend(e.to_string())),
            never = self.keep_deleting_finished() => match never {},
        }
    }

    async fn keep_deleting_finished(&self) -> std::convert::Infallible {
        loop {
            if let Err(err) = self.delete_finished(self.retention).await {
                tracing::warn!(error = %err, "deleting finished jobs failed");
            }
            tokio::time::sleep(RETENTION_INTERVAL).await;
        }
    }
}

/// Runs apalis' migrations on a pool of one connection that is closed afterwards: `setup` turns
/// `synchronous` off on the connection it runs on, and that connection must never push.
async fn migrate(options: SqliteConnectOptions) -> Result<(), QueueError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(backend)?;
    SqliteStorage::setup(&pool).await.map_err(backend)?;
    for statement in LIVE_LOCK_INDEX {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .map_err(backend)?;
    }
    pool.close().await;
    Ok(())
}

/// Every working connection: WAL (as apalis sets it), each commit synced to disk, the WAL file trimmed
/// back to 64 MiB after checkpoints (apalis' `setup` value, which it set on one connection only).
fn working_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .pragma("journal_size_limit", "67108864")
}

/// One job row, with the values apalis-sqlite's `push_tasks` computes for a task built from `batch`.
async fn insert_job(
    tx: &mut sqlx::SqliteConnection,
    queue: &str,
    batch: &IngestBatch,
) -> Result<(), QueueError> {
    // apalis-sqlite's codec is `JsonCodec<Vec<u8>>`, whose `encode` is `serde_json::to_vec`.
    let encoded = serde_json::to_vec(batch).map_err(backend)?;
    let task = TaskBuilder::new(encoded).build();
    let id = task
        .task_id()
        .map(|id| id.to_string())
        .unwrap_or_else(|| ulid::Ulid::generate().to_string());
    let run_at = task.run_at().unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }) as i64;
    let meta = serde_json::to_string(task.metadata()).map_err(backend)?;
    sqlx::query(INSERT_JOB)
        .bind(&task.args)
        .bind(id)
        .bind(queue)
        .bind(task.max_attempts().unwrap_or(25) as i64)
        .bind(run_at)
        .bind(task.priority().unwrap_or_default() as i64)
        .bind(meta)
        .bind(task.idempotency_key())
        .execute(&mut *tx)
        .await
        .map_err(|e| QueueError::Unavailable(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueBackend;

    async fn open_temp_queue() -> (SqliteQueue, std::path::PathBuf) {
        open_temp_queue_with(Duration::from_secs(2)).await
    }

    async fn open_temp_queue_with(push_timeout: Duration) -> (SqliteQueue, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("eye-queue-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("queue.db");
        let config = QueueConfig {
            backend: QueueBackend::Sqlite { path: path.clone() },
            name: "test".into(),
            poll_interval: Duration::from_millis(20),
            push_timeout,
            retention: Duration::from_secs(300),
        };
        let queue = SqliteQueue::open(&path, &config)
            .await
            .expect("queue opens");
        (queue, dir)
    }

    #[tokio::test]
    async fn every_pooled_connection_syncs_each_commit_in_wal_mode() {
        let (queue, dir) = open_temp_queue().await;
        let mut connections = Vec::new();
        for _ in 0..POOL_SIZE {
            connections.push(queue.pool.acquire().await.expect("connection"));
        }
        for conn in &mut connections {
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut **conn)
                .await
                .expect("pragma");
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut **conn)
                .await
                .expect("pragma");
            assert_eq!(synchronous, 2, "synchronous = FULL on every connection");
            assert_eq!(journal, "wal");
        }
        drop(connections);
        queue.pool.close().await;
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[tokio::test]
    async fn the_retention_step_reads_finished_jobs_through_an_index() {
        let (queue, dir) = open_temp_queue().await;
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {DELETE_FINISHED}"
        )))
        .bind(0)
        .bind("test")
        .bind(10)
        .fetch_all(&queue.pool)
        .await
        .expect("plan");
        let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        assert!(
            details
                .iter()
                .any(|d| d.contains("USING INDEX idx_jobs_completed_done_at")),
            "{details:?}"
        );
        queue.pool.close().await;
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[tokio::test]
    async fn a_push_that_times_out_waiting_for_the_write_lock_queues_nothing() {
        let (queue, dir) = open_temp_queue_with(Duration::from_millis(200)).await;
        let mut holder = queue.pool.acquire().await.expect("connection");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *holder)
            .await
            .expect("write lock");
        let batch = IngestBatch {
            job_id: eye_domain::JobId::generate(),
            application_id: eye_domain::ApplicationId::generate(),
            received_at: chrono::Utc::now(),
            events: Vec::new(),
        };
        let pushed = queue.push_all(vec![batch]).await;
        assert!(
            matches!(pushed, Err(QueueError::Unavailable(_))),
            "{pushed:?}"
        );
        sqlx::query("COMMIT")
            .execute(&mut *holder)
            .await
            .expect("release");
        drop(holder);
        assert_eq!(
            queue.depth().await.expect("depth"),
            0,
            "a 503'd push queued nothing"
        );
        queue.pool.close().await;
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
