//! Retention: events older than the limit go in bounded steps, with their sessions kept exact, and so do
//! refused events recorded that long ago.
//!
//! Batched deletes, not time partitions: the unique key that makes storage exactly-once is
//! `(application_id, event_id)`, and a partitioned PostgreSQL table can only enforce a unique key that
//! contains the partition key; keyed on time, a resend whose clock-corrected timestamp differs (a new
//! `sent_at`) would be stored twice. Partitions would also leave the embedded SQLite default without
//! retention, and sessions would still need adjusting row by row.

use super::sessions::{Selection, adjust_sessions, delete_events};
use crate::event_counts::hour_of;
use crate::sql::Params;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, TransactionTrait};

/// PostgreSQL advisory lock that lets one process at a time run a retention step ("eye_ret" in ASCII):
/// every worker process runs the sweeper, and two deleting the same oldest rows would only wait for
/// each other.
const SWEEPER_LOCK: i64 = 0x0065_7965_5f72_6574;

/// What one retention step removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionStep {
    /// Another process was running a step; this one did nothing.
    pub skipped: bool,
    /// Events deleted.
    pub events: u64,
    /// Sessions whose every event was deleted, deleted with them.
    pub sessions_removed: u64,
    /// Sessions that kept newer events, their count and first event time adjusted.
    pub sessions_adjusted: u64,
    /// Refused events (`ingest_errors`) deleted.
    pub refused_events: u64,
}

impl Store {
    /// One bounded retention step, in one short transaction: deletes up to `limit` of the oldest events
    /// that occurred before `cutoff` (adjusting their sessions) and up to `limit` refused events recorded
    /// before it. Call again while it deletes a full `limit`.
    #[tracing::instrument(skip(self), err)]
    pub async fn retention_step(
        &self,
        cutoff: DateTime<Utc>,
        limit: u64,
    ) -> Result<RetentionStep, StoreError> {
        let txn = self.db.begin().await?;
        if !take_sweeper_lock(&txn).await? {
            return Ok(RetentionStep {
                skipped: true,
                ..RetentionStep::default()
            });
        }
        let deleted = delete_events(&txn, &Selection::OccurredBefore(cutoff), limit).await?;
        let sessions = adjust_sessions(&txn, &deleted.sessions).await?;
        deleted.counts.apply(&txn).await?;
        let events = deleted.events();
        if events < limit {
            delete_expired_counts(&txn, cutoff).await?;
        }
        let refused_events = delete_refused(&txn, cutoff, limit).await?;
        txn.commit().await?;
        Ok(RetentionStep {
            skipped: false,
            events,
            sessions_removed: sessions.removed,
            sessions_adjusted: sessions.adjusted,
            refused_events,
        })
    }
}

/// On PostgreSQL, the transaction-scoped sweeper lock if no other process holds it; SQLite has a single
/// writer anyway. Folding the hourly counts takes it too (`event_counts.rs`): a fold and a retention step
/// both write the oldest hours' count rows, in different orders.
pub(crate) async fn take_sweeper_lock(txn: &DatabaseTransaction) -> Result<bool, StoreError> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(true);
    }
    let mut params = Params::new(DbBackend::Postgres);
    let sql = format!(
        "SELECT pg_try_advisory_xact_lock({}) AS locked",
        params.bind(SWEEPER_LOCK)
    );
    let row = txn.query_one_raw(params.statement(&sql)).await?;
    Ok(row
        .map(|row| row.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false))
}

/// The count rows of whole hours before `cutoff`, up to a day of hours per step, once a step found fewer
/// events to delete than it could: their events are gone by then, so the rows sum to zero. An event of
/// such an hour that still commits (a late one, between two statements) leaves a negative row when a
/// later step deletes it, and that step's catch-up removes the row again: the error lasts a sweep, in
/// hours past the limit only.
#[tracing::instrument(skip(txn), err)]
async fn delete_expired_counts(
    txn: &DatabaseTransaction,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut params = Params::new(txn.get_database_backend());
    let sql = format!(
        "DELETE FROM event_counts WHERE hour IN (SELECT DISTINCT hour FROM event_counts \
         WHERE hour < {} ORDER BY hour LIMIT 24)",
        params.bind(hour_of(cutoff))
    );
    Ok(txn
        .execute_raw(params.statement(&sql))
        .await?
        .rows_affected())
}

async fn delete_refused(
    txn: &DatabaseTransaction,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<u64, StoreError> {
    let mut params = Params::new(txn.get_database_backend());
    let sql = format!(
        "DELETE FROM ingest_errors WHERE id IN (SELECT id FROM ingest_errors WHERE recorded_at < {} \
         ORDER BY recorded_at LIMIT {limit})",
        params.bind(cutoff)
    );
    Ok(txn
        .execute_raw(params.statement(&sql))
        .await?
        .rows_affected())
}
