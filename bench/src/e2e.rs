//! End-to-end rate: from the first send until every accepted event is a row in PostgreSQL.

use crate::db;
use crate::load::{self, Cursor, LoadResult, Plan, Prepared, Target};
use crate::progress::{Progress, note};
use crate::stats::rate;
use anyhow::Context;
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
    /// Rows in `events` beyond those present before the run, counted once the wait ended.
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
    /// Render every request body before the clock starts (see [`load::Prepared`]); the fill to millions of
    /// events renders them as it sends, as they would not fit in memory.
    pub prepared: bool,
}

/// Where the number of stored events comes from while the run waits for them.
#[derive(Clone)]
pub enum Counter {
    /// `SELECT count(*) FROM events`: exact, but a scan of the table (~170 ms at 1,000,000 rows) on the
    /// database under test, every poll.
    Sql(PgPool),
    /// The workers' `eye_events_stored_total` (counted after each commit), summed over every worker
    /// process: polls cost the database nothing. The end is still confirmed with one `count(*)`.
    WorkerMetrics {
        /// Each worker's `/metrics` URL.
        urls: Vec<String>,
        /// Shared client.
        client: reqwest::Client,
        /// For the confirming count.
        pool: PgPool,
    },
}

impl Counter {
    async fn read(&self) -> anyhow::Result<u64> {
        match self {
            Self::Sql(pool) => db::count_events(pool).await,
            Self::WorkerMetrics { urls, client, .. } => {
                let reads = urls.iter().map(|url| exposition(client, url));
                let expositions = futures::future::try_join_all(reads).await?;
                stored_sum(urls.iter().map(String::as_str).zip(&expositions))
            }
        }
    }

    fn pool(&self) -> &PgPool {
        match self {
            Self::Sql(pool) | Self::WorkerMetrics { pool, .. } => pool,
        }
    }
}

/// One worker's `/metrics` text.
async fn exposition(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = client.get(url).send().await?.error_for_status()?;
    response
        .text()
        .await
        .with_context(|| format!("cannot read {url}"))
}

/// Events stored by every worker: the sum of each one's `eye_events_stored_total`, given as (URL,
/// exposition) pairs. A worker without the counter is an error (naming its URL), not a zero: a sum that
/// silently left one out would never reach the goal, or reach it early after a restart.
pub fn stored_sum<'a, S: AsRef<str> + 'a>(
    expositions: impl IntoIterator<Item = (&'a str, &'a S)>,
) -> anyhow::Result<u64> {
    expositions.into_iter().try_fold(0, |sum, (url, text)| {
        let stored = stored_total(text.as_ref())
            .with_context(|| format!("no eye_events_stored_total at {url}"))?;
        Ok(sum + stored)
    })
}

/// `eye_events_stored_total` from a Prometheus text exposition.
pub fn stored_total(exposition: &str) -> Option<u64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix("eye_events_stored_total ")?;
        value.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

/// Sends `plan.load`, then waits until every accepted event is stored.
pub async fn run(
    target: &Target,
    counter: &Counter,
    plan: E2ePlan,
    cursor: &Cursor,
    label: &str,
) -> anyhow::Result<E2eResult> {
    let pool = counter.pool();
    let rows_before = db::count_events(pool).await?;
    let commits_before = db::commits(pool).await?;
    // Read before the first send: a job stored before the baseline was read would never be counted.
    let mut watch = Watch::counting_from(counter.clone(), counter.read().await?);
    let prepared = plan
        .prepared
        .then(|| Prepared::render(plan.load.shape, cursor, plan.load.max_events))
        .transpose()?;
    let progress = Progress::start(label);
    let started = Instant::now();
    let sender = {
        let (target, cursor, progress) = (target.clone(), cursor.clone(), progress.clone());
        tokio::spawn(async move {
            load::run(&target, plan.load, &cursor, prepared.as_ref(), &progress).await
        })
    };
    while !sender.is_finished() {
        watch.poll(Some(progress.count())).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let send = sender.await?;
    drop(progress);
    note(&format!(
        "  [{label}] sent {} events in {:.1}s; waiting for the rows",
        send.events_accepted, send.elapsed_s
    ));
    let deadline = Instant::now() + plan.drain_timeout;
    watch.until(send.events_accepted, deadline).await?;
    let elapsed = started.elapsed();
    let stored = db::count_events(pool).await?.saturating_sub(rows_before);
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

/// Waits until `goal` events are stored in all (not counting from now, unlike [`run`]); answers how many.
pub async fn wait_until_stored(
    counter: &Counter,
    goal: u64,
    timeout: Duration,
) -> anyhow::Result<u64> {
    Watch::counting_from(counter.clone(), 0)
        .until(goal, Instant::now() + timeout)
        .await
}

/// Polls the stored count, sparing the database: the closer the goal, the more often.
struct Watch {
    counter: Counter,
    baseline: u64,
    last: u64,
    last_at: Instant,
    max_backlog: u64,
    started: Instant,
}

impl Watch {
    /// Counts events stored beyond `baseline`.
    fn counting_from(counter: Counter, baseline: u64) -> Self {
        Self {
            counter,
            baseline,
            last: 0,
            last_at: Instant::now(),
            max_backlog: 0,
            started: Instant::now(),
        }
    }

    /// Events stored since the start; tracks the backlog when the number accepted so far is known.
    async fn poll(&mut self, accepted: Option<u64>) -> anyhow::Result<u64> {
        let stored = self.counter.read().await?.saturating_sub(self.baseline);
        if let Some(accepted) = accepted {
            self.max_backlog = self.max_backlog.max(accepted.saturating_sub(stored));
        }
        self.last = stored;
        self.last_at = Instant::now();
        Ok(stored)
    }

    async fn until(&mut self, goal: u64, deadline: Instant) -> anyhow::Result<u64> {
        let mut previous = (self.last, self.last_at);
        let mut noted = Instant::now();
        loop {
            let stored = self.poll(Some(goal)).await?;
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

    #[test]
    fn the_stored_total_is_read_from_the_worker_metrics() {
        let text = "# HELP eye_events_stored_total Events stored.\n# TYPE eye_events_stored_total counter\n\
                    eye_events_stored_total 123456\neye_events_duplicate_total 7\n";
        assert_eq!(stored_total(text), Some(123_456));
        assert_eq!(stored_total("eye_events_duplicate_total 7\n"), None);
    }

    #[test]
    fn the_stored_count_is_the_sum_over_every_worker() {
        let texts = [
            "eye_events_stored_total 100\n".to_owned(),
            "eye_events_duplicate_total 1\neye_events_stored_total 250\n".to_owned(),
            "eye_events_stored_total 0\n".to_owned(),
        ];
        let urls = [
            "http://w1/metrics",
            "http://w2/metrics",
            "http://w3/metrics",
        ];
        assert_eq!(stored_sum(urls.into_iter().zip(&texts)).expect("sum"), 350);
        assert_eq!(
            stored_sum(urls[..1].iter().copied().zip(&texts)).expect("one"),
            100
        );
    }

    #[test]
    fn a_worker_without_the_counter_fails_the_sum_and_is_named() {
        let texts = ["eye_events_stored_total 100\n", "up 1\n"];
        let urls = ["http://w1/metrics", "http://w2/metrics"];
        let error = stored_sum(urls.into_iter().zip(&texts)).expect_err("missing");
        assert!(error.to_string().contains("http://w2/metrics"), "{error}");
    }
}
