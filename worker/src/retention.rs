//! The retention sweeper (`EYE_RETENTION`): every worker process runs one; on PostgreSQL an advisory
//! lock lets one step run at a time across processes, so several workers neither duplicate the work nor
//! wait on each other's rows.
//!
//! Each sweep deletes what passed the limit in bounded steps (one short transaction of at most
//! `step_rows` events each, with a pause between steps), so ingest never waits behind a long delete.

use chrono::{TimeDelta, Utc};
use eye_store::{RetentionStep, Store};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest pause between sweeps: data is deleted within this much of passing the limit, plus the
/// sweep's own duration.
const MAX_INTERVAL: Duration = Duration::from_secs(30);

/// Shortest pause between sweeps (for retentions of seconds, as in tests).
const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Events (and refused events) deleted per step.
const STEP_ROWS: u64 = 1000;

/// Pause between two steps of one sweep: leaves the database to ingest between them.
const STEP_PAUSE: Duration = Duration::from_millis(20);

/// What the sweeper keeps, and how often it looks.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    /// How long events are kept, counted from their `timestamp`.
    pub keep: TimeDelta,
    /// Pause between sweeps.
    pub interval: Duration,
    /// Rows per step.
    pub step_rows: u64,
}

impl RetentionSettings {
    /// Sweeps every twentieth of the retention, between 200 ms and 30 s.
    pub fn new(keep: TimeDelta) -> Self {
        let interval = keep
            .to_std()
            .map(|keep| keep / 20)
            .unwrap_or(MAX_INTERVAL)
            .clamp(MIN_INTERVAL, MAX_INTERVAL);
        Self {
            keep,
            interval,
            step_rows: STEP_ROWS,
        }
    }
}

/// Deletes events, sessions and refused events past the retention.
pub struct RetentionSweeper {
    store: Store,
    settings: RetentionSettings,
}

impl RetentionSweeper {
    /// A sweeper over `store`.
    pub fn new(store: Store, settings: RetentionSettings) -> Self {
        Self { store, settings }
    }

    /// Sweeps until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(keep = %self.settings.keep, interval = ?self.settings.interval, "retention sweeper started");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.interval) => {}
            }
            self.sweep(&shutdown).await;
        }
    }

    /// Steps until nothing older than the limit is left (or another process is sweeping).
    async fn sweep(&self, shutdown: &CancellationToken) {
        let cutoff = Utc::now() - self.settings.keep;
        let mut total = RetentionStep::default();
        while !shutdown.is_cancelled() {
            let step = match self
                .store
                .retention_step(cutoff, self.settings.step_rows)
                .await
            {
                Ok(step) => step,
                Err(err) => {
                    tracing::warn!(error = %err, "retention step failed; trying again at the next sweep");
                    break;
                }
            };
            add(&mut total, &step);
            if step.skipped || !self.is_full(&step) {
                break;
            }
            tokio::time::sleep(STEP_PAUSE).await;
        }
        if total.events + total.refused_events > 0 {
            tracing::info!(
                events = total.events,
                sessions_removed = total.sessions_removed,
                sessions_adjusted = total.sessions_adjusted,
                refused_events = total.refused_events,
                cutoff = %cutoff,
                "retention deleted data past the limit"
            );
        }
    }

    fn is_full(&self, step: &RetentionStep) -> bool {
        step.events >= self.settings.step_rows || step.refused_events >= self.settings.step_rows
    }
}

fn add(total: &mut RetentionStep, step: &RetentionStep) {
    total.events += step.events;
    total.sessions_removed += step.sessions_removed;
    total.sessions_adjusted += step.sessions_adjusted;
    total.refused_events += step.refused_events;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_retention_is_swept_every_30_seconds_and_a_short_one_more_often() {
        let cases = [
            (TimeDelta::days(400), MAX_INTERVAL),
            (TimeDelta::seconds(60), Duration::from_secs(3)),
            (TimeDelta::seconds(1), MIN_INTERVAL),
        ];
        for (keep, interval) in cases {
            assert_eq!(RetentionSettings::new(keep).interval, interval, "{keep}");
        }
    }
}
