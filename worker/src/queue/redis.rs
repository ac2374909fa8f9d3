//! apalis on Redis, with the backlog-safe promotion of due jobs.

use super::{QueueConfig, QueueError};
use crate::processor::handle_batch;
use crate::runner::WorkerRun;
use apalis::prelude::{Event, EventListenerExt, TaskSink, WorkerBuilder, WorkerBuilderExt};
use apalis_redis::{Config, RedisStorage};
use eye_domain::IngestBatch;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// The most due jobs moved per promotion call: far below Lua's `unpack` limit (~8,000).
const PROMOTE_CHUNK: usize = 1000;

/// How often a worker sweeps the scheduled set for jobs due without a push.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

static PROMOTE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("promote.lua")));

/// An apalis-redis queue and the connection it shares.
#[derive(Clone)]
pub struct RedisQueue {
    storage: RedisStorage<IngestBatch>,
    conn: ConnectionManager,
    config: Config,
    push_timeout: Duration,
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
        Ok(Self {
            storage,
            conn,
            config: apalis_config,
            push_timeout: config.push_timeout,
        })
    }

    pub(super) async fn push_all(&self, batches: Vec<IngestBatch>) -> Result<(), QueueError> {
        let mut storage = self.storage.clone();
        let push = async {
            storage
                .push_bulk(batches)
                .await
                .map_err(|e| QueueError::Unavailable(e.to_string()))?;
            // Every apalis push lands in the scheduled set; move it to the active list now so due jobs
            // never pile up there (see promote.lua).
            self.promote_due().await.map(|_| ())
        };
        tokio::time::timeout(self.push_timeout, push)
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
        let sweeper = self.sweep_until(run.shutdown.clone());
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
        let (result, ()) = tokio::join!(worker.run_until(stop), sweeper);
        result.map_err(|e| QueueError::Backend(e.to_string()))
    }

    /// Promotes jobs that became due without a push to move them (apalis retries, crashed producers).
    async fn sweep_until(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(err) = self.promote_due().await {
                tracing::warn!(error = %err, "promoting due jobs failed");
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
        }
    }
}
