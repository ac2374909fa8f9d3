//! apalis on Redis: pushes that are either written or refused (redis_push.rs), the backlog-safe
//! promotion of due jobs, and bounded retention of finished jobs.

use super::durability::{QueueMetrics, RedisPersistence};
use super::redis_push::{Push, RedisClock};
use super::watermark::{READ_LIMIT, Watermark};
use super::{QueueConfig, QueueError, RETENTION_CHUNK};
use crate::processor::handle_batch;
use crate::runner::WorkerRun;
use apalis::prelude::{Event, EventListenerExt, WorkerBuilder, WorkerBuilderExt};
use apalis_redis::{Config, RedisStorage};
use eye_domain::IngestBatch;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most due jobs moved per promotion call: far below Lua's `unpack` limit (~8,000).
const PROMOTE_CHUNK: usize = 1000;

/// How often a worker sweeps the scheduled set for due jobs, and deletes finished jobs past retention.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

static PROMOTE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("promote.lua")));
static RETENTION: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention.lua")));
static WATERMARK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("watermark.lua")));

/// An apalis-redis queue and the connection it shares.
#[derive(Clone)]
pub struct RedisQueue {
    storage: RedisStorage<IngestBatch>,
    conn: ConnectionManager,
    config: Config,
    push_timeout: Duration,
    retention: Duration,
    clock: RedisClock,
    metrics: QueueMetrics,
}

impl RedisQueue {
    pub(super) async fn open(url: &str, config: &QueueConfig) -> Result<Self, QueueError> {
        let client = redis::Client::open(url).map_err(|e| QueueError::Backend(e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.push_timeout))
            .set_response_timeout(Some(config.push_timeout))
            .set_number_of_retries(2);
        let conn = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        let apalis_config = Config::default()
            .queue(&config.name)
            .heartbeat_interval(config.heartbeat_interval())
            .missed_heartbeats(config.missed_heartbeats())
            .batch_size(super::FETCH_BATCH);
        let storage = RedisStorage::new(conn.clone()).with_config(apalis_config.clone());
        let metrics = QueueMetrics::default();
        RedisPersistence::read(&conn).await.report(&metrics);
        let clock = RedisClock::calibrate(&mut conn.clone()).await?;
        Ok(Self {
            storage,
            conn,
            config: apalis_config,
            push_timeout: config.push_timeout,
            retention: config.retention,
            clock,
            metrics,
        })
    }

    pub(super) fn metrics(&self) -> QueueMetrics {
        self.metrics.clone()
    }

    /// Jobs go straight to the active list in one atomic script, so nothing needs promoting after a
    /// push: its answer alone decides between queued and not queued. Redis refuses to write once half
    /// the push timeout has passed on its clock, leaving the other half for the answer to come back;
    /// a push not answered within the timeout was therefore refused, unless Redis ran it in time and
    /// its answer was lost or delayed past that margin (the README's durability contract).
    pub(super) async fn push_all(&self, batches: Vec<IngestBatch>) -> Result<(), QueueError> {
        let push = Push {
            conn: self.conn.clone(),
            config: &self.config,
            clock: &self.clock,
            write_within: self.push_timeout / 2,
        };
        tokio::time::timeout(self.push_timeout, push.run(batches))
            .await
            .map_err(|_| QueueError::Unavailable("push timed out".into()))?
    }

    /// Promotes due jobs in bounded chunks until none are left; answers how many moved.
    pub(crate) async fn promote_due(&self) -> Result<u64, QueueError> {
        let mut total = 0;
        loop {
            let moved = self.promote_chunk().await?;
            total += moved;
            if moved < PROMOTE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    async fn promote_chunk(&self) -> Result<u64, QueueError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut conn = self.conn.clone();
        PROMOTE
            .key(self.config.scheduled_jobs_set())
            .key(self.config.active_jobs_list())
            .key(self.config.signal_list())
            .arg(now)
            .arg(PROMOTE_CHUNK)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))
    }

    pub(super) async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let ping = redis::cmd("PING");
        tokio::time::timeout(self.push_timeout, ping.query_async::<String>(&mut conn))
            .await
            .map_err(|_| QueueError::Unavailable("ping timed out".into()))?
            .map(|_| ())
            .map_err(|e| QueueError::Unavailable(e.to_string()))
    }

    pub(super) async fn watermark(&self) -> Result<Watermark, QueueError> {
        let mut conn = self.conn.clone();
        let answer: Vec<String> = WATERMARK
            .key(self.config.active_jobs_list())
            .key(self.config.scheduled_jobs_set())
            .key(self.config.workers_set())
            .arg(self.config.inflight_jobs_set())
            .arg(READ_LIMIT)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        Ok(match answer.as_slice() {
            [state] if state == "clear" => Watermark::Clear,
            [state, id] if state == "oldest" => Watermark::from_job_id(id),
            _ => Watermark::Unknown,
        })
    }

    pub(super) async fn depth(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let active: u64 = conn
            .llen(self.config.active_jobs_list())
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        let scheduled: u64 = conn
            .zcard(self.config.scheduled_jobs_set())
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        Ok(active + scheduled)
    }

    /// Runs one apalis worker over this queue until `shutdown` fires or the worker fails.
    pub(crate) async fn run_worker(&self, run: WorkerRun) -> Result<(), QueueError> {
        // A backlog pushed while no worker ran (or by a producer that died before promoting) must be
        // promoted before apalis' first fetch, or that fetch fails on it and the worker's stream dies.
        let promoted = self.promote_due().await?;
        tracing::info!(promoted, "promoted due jobs before starting the worker");
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
        // The worker ends at its first backend error (a lost connection fails its fetch) or after a
        // graceful stop; the sweeper, which never ends, must stop with it, so the supervisor restarts a
        // failed worker at once. (Joined, the sweeper kept this future alive after the worker's end,
        // until the stall detector replaced it ~15 s later.)
        tokio::select! {
            result = worker.run_until(stop) => result.map_err(|e| QueueError::Backend(e.to_string())),
            never = self.sweep() => match never {},
        }
    }

    /// Promotes jobs that became due without a push to move them (apalis retries, producers of older
    /// versions), and deletes finished jobs past the retention window.
    async fn sweep(&self) -> std::convert::Infallible {
        loop {
            if let Err(err) = self.promote_due().await {
                tracing::warn!(error = %err, "promoting due jobs failed");
            }
            if let Err(err) = self.delete_finished(self.retention).await {
                tracing::warn!(error = %err, "deleting finished jobs failed");
            }
            tokio::time::sleep(SWEEP_INTERVAL).await;
        }
    }
}

impl RedisQueue {
    /// Deletes jobs finished at least `retention` ago, in bounded steps until none is left; answers how
    /// many were deleted. Each step is one script call of at most `RETENTION_CHUNK` jobs per half.
    pub(crate) async fn delete_finished(&self, retention: Duration) -> Result<u64, QueueError> {
        let mut total = 0;
        loop {
            let (moved, deleted) = self.retention_step(retention).await?;
            total += deleted;
            if moved < RETENTION_CHUNK as u64 && deleted < RETENTION_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    async fn retention_step(&self, retention: Duration) -> Result<(u64, u64), QueueError> {
        // done_at is written by the workers' clocks (apalis' handle_results), so the cutoff is ours too.
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut conn = self.conn.clone();
        RETENTION
            .key(self.config.done_jobs_set())
            .key(finished_set(&self.config))
            .key(self.config.job_data_hash())
            .key(self.config.job_meta_hash())
            .arg(cutoff)
            .arg(RETENTION_CHUNK)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))
    }
}

/// Our sorted set of finished job ids by `done_at` (retention.lua); it starts with the queue's name like
/// apalis' own keys.
pub(crate) fn finished_set(config: &Config) -> String {
    format!("{}:eye:finished", config.queue.as_ref())
}
