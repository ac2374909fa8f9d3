//! Folding the hourly counts' slots: ingest spreads each count over up to eight slots (migration 16) so
//! that concurrent jobs do not wait for each other's commit; an hour that is past is rarely written, and
//! reading it as one row per key makes a 30-day count read up to eight times fewer rows. Every worker
//! process on PostgreSQL runs a folder; folding is exact beside concurrent writers and other folders
//! ([`Store::fold_event_counts`]), so several only share the work.

use chrono::{TimeDelta, Utc};
use eye_store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pause between two folds.
const INTERVAL: Duration = Duration::from_secs(60);

/// Hours that began at least this long ago are folded: the current hour's rows are the ones every job
/// writes, so they keep their slots.
const SETTLED_AFTER: TimeDelta = TimeDelta::hours(2);

/// Count rows folded per step (one short statement).
const STEP_ROWS: u64 = 5000;

/// Pause between two steps of one fold: leaves the database to ingest between them.
const STEP_PAUSE: Duration = Duration::from_millis(20);

/// Folds the hourly counts of past hours, once a minute.
pub struct CountFolder {
    store: Store,
}

impl CountFolder {
    /// A folder over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Folds until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(INTERVAL) => {}
            }
            self.fold(&shutdown).await;
        }
    }

    /// Steps until a step finds less than a full step to fold.
    async fn fold(&self, shutdown: &CancellationToken) {
        let before = Utc::now() - SETTLED_AFTER;
        let mut total = 0;
        while !shutdown.is_cancelled() {
            match self.store.fold_event_counts(before, STEP_ROWS).await {
                Ok(folded) => {
                    total += folded;
                    if folded < STEP_ROWS {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "folding the hourly counts failed; trying again in a minute");
                    break;
                }
            }
            tokio::time::sleep(STEP_PAUSE).await;
        }
        if total > 0 {
            tracing::debug!(rows = total, "folded the hourly counts of past hours");
        }
    }
}
