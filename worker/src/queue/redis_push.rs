//! Pushes to apalis-redis through a script of ours (push.lua) that writes apalis' layout but refuses to
//! write after a deadline, so that "not answered in time" can be told to the client as "not queued".

use super::QueueError;
use apalis_core::task::builder::TaskBuilder;
use apalis_redis::Config;
use eye_domain::IngestBatch;
use redis::Script;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static PUSH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("push.lua")));

/// What push.lua answers when its deadline had passed.
const REFUSED: i64 = -1;

/// Redis' clock as seen from this process. push.lua compares its deadline with Redis' `TIME`, so the
/// deadline is sent on Redis' clock: local time plus the offset measured at start and at every push
/// answered quickly (the midpoint of the round trip; its error is at most half the round trip).
#[derive(Clone, Default)]
pub(super) struct RedisClock {
    offset_ms: Arc<AtomicI64>,
}

impl RedisClock {
    /// Measures the offset once (the first push then already has a deadline on Redis' clock).
    pub(super) async fn calibrate(conn: &mut ConnectionManager) -> Result<Self, QueueError> {
        let sent = local_ms();
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(conn)
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        let clock = Self::default();
        clock.observe(secs * 1000 + micros / 1000, sent, local_ms());
        Ok(clock)
    }

    fn observe(&self, redis_ms: i64, sent_ms: i64, received_ms: i64) {
        let midpoint = sent_ms + (received_ms - sent_ms) / 2;
        self.offset_ms.store(redis_ms - midpoint, Ordering::Relaxed);
    }

    fn on_redis_clock(&self, local_ms: i64) -> i64 {
        local_ms + self.offset_ms.load(Ordering::Relaxed)
    }
}

fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// One push of jobs: where, and how long Redis may take to start writing them.
pub(super) struct Push<'a> {
    pub(super) conn: ConnectionManager,
    pub(super) config: &'a Config,
    pub(super) clock: &'a RedisClock,
    /// Redis refuses the write once this much time has passed on its clock since the push started.
    pub(super) write_within: Duration,
}

impl Push<'_> {
    /// Writes one job per batch in one atomic script call, straight to the active list. `Ok` means
    /// written; an `Err` from the script's answer means not written (refused or failed). The caller
    /// bounds the wait; a push it abandons is refused by Redis once `write_within` has passed.
    pub(super) async fn run(mut self, batches: Vec<IngestBatch>) -> Result<(), QueueError> {
        let started = local_ms();
        let deadline = self
            .clock
            .on_redis_clock(started + duration_ms(self.write_within));
        let mut invocation = PUSH.prepare_invoke();
        invocation
            .key(self.config.job_data_hash())
            .key(self.config.active_jobs_list())
            .key(self.config.signal_list())
            .key(self.config.job_meta_hash())
            .arg(deadline);
        for batch in &batches {
            append_task(&mut invocation, batch)?;
        }
        let (enqueued, redis_ms): (i64, i64) = invocation
            .invoke_async(&mut self.conn)
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        let received = local_ms();
        // A slow round trip (a starved runtime reading the answer late) says little about the clocks:
        // its midpoint may be off by half of it, which could make the next deadline too early.
        if received - started <= duration_ms(self.write_within) / 4 {
            self.clock.observe(redis_ms, started, received);
        }
        if enqueued == REFUSED {
            return Err(QueueError::Unavailable(
                "Redis took the push after its deadline and refused it".into(),
            ));
        }
        Ok(())
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The five arguments push.lua reads per job, computed as apalis-redis' `push_tasks` computes them.
fn append_task(
    invocation: &mut redis::ScriptInvocation<'_>,
    batch: &IngestBatch,
) -> Result<(), QueueError> {
    // apalis-redis' codec is `JsonCodec<Vec<u8>>`, whose `encode` is `serde_json::to_vec`.
    let encoded = serde_json::to_vec(batch).map_err(|e| QueueError::Backend(e.to_string()))?;
    let task = TaskBuilder::new(encoded).build();
    let task_id = task
        .task_id()
        .map(|id| id.to_string())
        .unwrap_or_else(|| ulid::Ulid::generate().to_string());
    let meta =
        serde_json::to_string(task.metadata()).map_err(|e| QueueError::Backend(e.to_string()))?;
    invocation
        .arg(task_id)
        .arg(&task.args)
        .arg(task.attempt() as u32)
        .arg(task.max_attempts().unwrap_or(25))
        .arg(meta);
    Ok(())
}
