//! End-to-end rate: from the first send until every accepted event is a row in PostgreSQL.

use crate::db;
use crate::load::{self, Cursor, LoadResult, Plan, Target};
use crate::progress::{Progress, note};
use crate::stats::rate;
use serde::Serialize;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// How one end-to-end run went.
#[derive(Debug, Clone, Serialize)]
pub struct E2eResult {
    /// Events accepted (202) and then awaited in the database.
    pub events: u64,
    /// Whether every accepted event was stored before the timeout.
    pub complete: bool,
    /// Rows found by the last poll, beyond those present before the run.
    pub stored: u64,
    /// First send to the poll that found every event stored, in seconds.
    pub elapsed_s: f64,
    /// Events stored per second, end to end.
    pub events_per_s: f64,
    /// The sending side alone (accept rate while the workers store concurrently).
    pub send: LoadResult,
    /// Most events accepted but not yet stored, seen by a poll.
    pub max_backlog: u64,
    /// PostgreSQL transactions committed during the run (all of them, including polls).
    pub commits: u64,
}

/// Settings of an end-to-end run.
#[derive(Debug, Clone, Copy)]
pub struct E2ePlan {
    /// The load to send (its `max_events` is the number of events).
    pub load: Plan,
    /// How long to wait for the rows after sending ends.
    pub drain_timeout: Duration,
}

/// Sends `plan.load`, then waits until every accepted event is stored.
pub async fn run(
    target: &Target,
    pool: &PgPool,
    plan: E2ePlan,
    cursor: &Cursor,
    label: &str,
) -> anyhow::Result<E2eResult> {
    let baseline = db::count_events(pool).await?;
    let commits_before = db::commits(pool).await?;
    let progress = Progress::start(label);
    let started = Instant::now();
    let sender = {
        let (target, cursor, progress) = (target.clone(), cursor.clone(), progress.clone());
        tokio::spawn(async move { load::run(&target, plan.load, &cursor, &progress).await })
    };
    let mut watch = Watch::new(baseline);
    while !sender.is_finished() {
        watch.poll(pool, Some(progress.count())).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let send = sender.await?;
    drop(progress);
    note(&format!(
        "  [{label}] sent {} events in {:.1}s; waiting for the rows",
        send.events_accepted, send.elapsed_s
    ));
    let deadline = Instant::now() + plan.drain_timeout;
    let stored = watch.until(pool, send.events_accepted, deadline).await?;
    let elapsed = started.elapsed();
    Ok(E2eResult {
        events: send.events_accepted,
        complete: stored >= send.events_accepted,
        stored,
        elapsed_s: elapsed.as_secs_f64(),
        events_per_s: rate(stored.min(send.events_accepted), elapsed),
        max_backlog: watch.max_backlog,
        commits: db::commits(pool).await?.saturating_sub(commits_before),
        send,
    })
}

/// Polls the row count, sparing the database: the closer the goal, the more often.
struct Watch {
    baseline: u64,
    last: u64,
    last_at: Instant,
    max_backlog: u64,
    started: Instant,
}

impl Watch {
    fn new(baseline: u64) -> Self {
        Self {
            baseline,
            last: 0,
            last_at: Instant::now(),
            max_backlog: 0,
            started: Instant::now(),
        }
    }

    /// Rows stored since the start; tracks the backlog when the number accepted so far is known.
    async fn poll(&mut self, pool: &PgPool, accepted: Option<u64>) -> anyhow::Result<u64> {
        let stored = db::count_events(pool).await?.saturating_sub(self.baseline);
        if let Some(accepted) = accepted {
            self.max_backlog = self.max_backlog.max(accepted.saturating_sub(stored));
        }
        self.last = stored;
        self.last_at = Instant::now();
        Ok(stored)
    }

    async fn until(&mut self, pool: &PgPool, goal: u64, deadline: Instant) -> anyhow::Result<u64> {
        let mut previous = (self.last, self.last_at);
        let mut noted = Instant::now();
        loop {
            let stored = self.poll(pool, Some(goal)).await?;
            if stored >= goal || Instant::now() >= deadline {
                return Ok(stored);
            }
            let per_s = rate(stored - previous.0.min(stored), self.last_at - previous.1);
            if noted.elapsed() >= Duration::from_secs(1) {
                noted = Instant::now();
                note(&format!(
                    "  stored {stored:>9} / {goal}  {per_s:>8.0}/s  {:6.1}s",
                    self.started.elapsed().as_secs_f64()
                ));
            }
            tokio::time::sleep(poll_interval(goal - stored, per_s)).await;
            previous = (stored, self.last_at);
        }
    }
}

/// A quarter of the expected time to the goal, between 50 ms and 1 s.
pub fn poll_interval(remaining: u64, per_s: f64) -> Duration {
    if per_s <= 0.0 {
        return Duration::from_secs(1);
    }
    Duration::from_secs_f64(remaining as f64 / per_s / 4.0)
        .clamp(Duration::from_millis(50), Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_come_faster_as_the_goal_nears_within_bounds() {
        assert_eq!(poll_interval(1_000_000, 10_000.0), Duration::from_secs(1));
        assert_eq!(poll_interval(20_000, 10_000.0), Duration::from_millis(500));
        assert_eq!(poll_interval(100, 10_000.0), Duration::from_millis(50));
        assert_eq!(poll_interval(100, 0.0), Duration::from_secs(1));
    }
}
