//! Erasing one user of one application: their events (sessions kept exact), rule state, notifications and
//! refused events, with a record of the erasure that keeps the user only as a hash.
//!
//! The order matters. The record commits first, under an exclusive advisory lock on the user's key that
//! every ingest transaction with that user takes shared (see `withhold.rs`): an ingest transaction
//! either committed before the record (and its events are then deleted below) or sees the record and
//! withholds the user's events. Rule states go before notifications, so a sweeper firing a timer for the
//! user either finished (its notification is deleted) or finds no state left.

use super::sessions::{Removed, Selection, SessionChanges, adjust_sessions, delete_events};
use crate::entities::applications;
use crate::sql::Params;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, Failure, Retryability, UserId};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, TransactionTrait};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use uuid::Uuid;

/// Events deleted per transaction.
const EVENTS_PER_STEP: u64 = 1000;

/// Attempts of one step that fails transiently (e.g. a deadlock with an ingest transaction on a session).
const STEP_ATTEMPTS: u32 = 5;

/// A user as the erasure record keeps them: SHA-256 of the application id and the user id, hex. The
/// application is part of it so that the same user id of two applications gives unrelated hashes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserHash(String);

impl UserHash {
    /// The hash of `user_id` in `application`.
    pub fn of(application: ApplicationId, user_id: &str) -> Self {
        let mut digest = Sha256::new();
        digest.update(application.as_uuid().as_bytes());
        digest.update(user_id.as_bytes());
        let digest = digest.finalize();
        let mut hex = String::with_capacity(2 * digest.len());
        for byte in digest {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
        }
        Self(hex)
    }

    /// A hash read back from the erasure records.
    pub(super) fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user's PostgreSQL advisory lock key: the digest's first 8 bytes. A collision only makes two
    /// users' erasure and ingest wait for each other.
    pub(super) fn lock_key(&self) -> i64 {
        let bytes: Vec<u8> = (0..8)
            .filter_map(|i| u8::from_str_radix(self.0.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let mut key = [0_u8; 8];
        key[..bytes.len()].copy_from_slice(&bytes);
        i64::from_be_bytes(key)
    }
}

/// An erasure to perform.
#[derive(Debug, Clone)]
pub struct ErasureRequest {
    /// The application.
    pub application: ApplicationId,
    /// Its user.
    pub user_id: UserId,
    /// Who asked (kept in the record), e.g. `admin`.
    pub requested_by: String,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureReport {
    /// The erasure record's id.
    pub id: Uuid,
    /// The boundary: the user's events that occurred or were received until then are refused from now on.
    pub erased_at: DateTime<Utc>,
    /// Events deleted.
    pub events: u64,
    /// Sessions left without events, deleted.
    pub sessions_removed: u64,
    /// Sessions that kept other events, their count and times adjusted.
    pub sessions_adjusted: u64,
    /// Rule states deleted (0 or 1).
    pub rule_states: u64,
    /// Notifications deleted.
    pub notifications: u64,
    /// Refused events (`ingest_errors`) of the user deleted.
    pub refused_events: u64,
}

impl Store {
    /// Erases a user's data and records that it was done; safe to repeat (a repeat finds less to delete
    /// and moves the boundary to its own time).
    #[tracing::instrument(skip_all, fields(application = %request.application), err)]
    pub async fn erase_user(&self, request: &ErasureRequest) -> Result<ErasureReport, StoreError> {
        let exists = applications::Entity::find_by_id(request.application.as_uuid())
            .one(&self.db)
            .await?;
        if exists.is_none() {
            return Err(StoreError::UnknownApplication(request.application));
        }
        let hash = UserHash::of(request.application, request.user_id.as_str());
        let mut report = retried(|| self.record_erasure(request, &hash)).await?;
        let selection = Selection::User {
            application: request.application,
            user_id: request.user_id.as_str(),
        };
        // A session can lose events in several steps before it is removed: count each session once.
        let mut touched = BTreeSet::new();
        loop {
            let (removed, sessions) = retried(|| self.erase_events_step(&selection)).await?;
            let events: u64 = removed.values().map(|n| *n as u64).sum();
            report.events += events;
            report.sessions_removed += sessions.removed;
            touched.extend(removed.into_keys());
            if events < EVENTS_PER_STEP {
                break;
            }
        }
        report.sessions_adjusted = (touched.len() as u64).saturating_sub(report.sessions_removed);
        let state = retried(|| self.erase_user_state(request)).await?;
        (
            report.rule_states,
            report.notifications,
            report.refused_events,
        ) = state;
        retried(|| self.complete_erasure(&report)).await?;
        Ok(report)
    }

    async fn record_erasure(
        &self,
        request: &ErasureRequest,
        hash: &UserHash,
    ) -> Result<ErasureReport, StoreError> {
        let txn = self.db.begin().await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            let mut params = Params::new(DbBackend::Postgres);
            let sql = format!(
                "SELECT pg_advisory_xact_lock({})",
                params.bind(hash.lock_key())
            );
            txn.execute_raw(params.statement(&sql)).await?;
        }
        // Taken once the lock is held: every ingest transaction that could miss the record has committed.
        let report = ErasureReport {
            id: Uuid::now_v7(),
            erased_at: Utc::now(),
            ..ErasureReport::default()
        };
        let mut params = Params::new(txn.get_database_backend());
        let sql = format!(
            "INSERT INTO erasures (id, application_id, user_hash, requested_by, erased_at) \
             VALUES ({}, {}, {}, {}, {})",
            params.bind(report.id),
            params.bind(request.application.as_uuid()),
            params.bind(hash.as_str()),
            params.bind(request.requested_by.as_str()),
            params.bind(report.erased_at)
        );
        txn.execute_raw(params.statement(&sql)).await?;
        txn.commit().await?;
        Ok(report)
    }

    async fn erase_events_step(
        &self,
        selection: &Selection<'_>,
    ) -> Result<(Removed, SessionChanges), StoreError> {
        let txn = self.db.begin().await?;
        let deleted = delete_events(&txn, selection, EVENTS_PER_STEP).await?;
        let sessions = adjust_sessions(&txn, &deleted.sessions).await?;
        deleted.counts.apply(&txn).await?;
        txn.commit().await?;
        Ok((deleted.sessions, sessions))
    }

    /// Deletes the user's rule state, notifications and refused events; answers how many of each.
    async fn erase_user_state(
        &self,
        request: &ErasureRequest,
    ) -> Result<(u64, u64, u64), StoreError> {
        let txn = self.db.begin().await?;
        let user = request.user_id.as_str();
        let rule_states = delete_of_user(&txn, "rule_states", "user_id", request, user).await?;
        let notifications = delete_of_user(&txn, "notifications", "user_id", request, user).await?;
        // A refused event keeps the user only inside the event as received.
        let raw_user = match txn.get_database_backend() {
            DbBackend::Postgres => "raw->>'user_id'",
            _ => "json_extract(raw, '$.user_id')",
        };
        let refused = delete_of_user(&txn, "ingest_errors", raw_user, request, user).await?;
        txn.commit().await?;
        Ok((rule_states, notifications, refused))
    }

    async fn complete_erasure(&self, report: &ErasureReport) -> Result<(), StoreError> {
        let mut params = Params::new(self.db.get_database_backend());
        let counts = [
            ("events", report.events),
            ("sessions_removed", report.sessions_removed),
            ("sessions_adjusted", report.sessions_adjusted),
            ("rule_states", report.rule_states),
            ("notifications", report.notifications),
            ("refused_events", report.refused_events),
        ];
        // Bound in the order they appear: SQLite's placeholders are positional.
        let completed_at = params.bind(Utc::now());
        let sets: Vec<String> = counts
            .iter()
            .map(|(column, n)| format!("{column} = {}", params.bind(*n as i64)))
            .collect();
        let sql = format!(
            "UPDATE erasures SET completed_at = {completed_at}, {} WHERE id = {}",
            sets.join(", "),
            params.bind(report.id)
        );
        self.db.execute_raw(params.statement(&sql)).await?;
        Ok(())
    }
}

/// Deletes the rows of `table` whose `user_expr` is the user, in the request's application.
async fn delete_of_user(
    txn: &DatabaseTransaction,
    table: &str,
    user_expr: &str,
    request: &ErasureRequest,
    user: &str,
) -> Result<u64, StoreError> {
    let mut params = Params::new(txn.get_database_backend());
    let sql = format!(
        "DELETE FROM {table} WHERE application_id = {} AND {user_expr} = {}",
        params.bind(request.application.as_uuid()),
        params.bind(user)
    );
    Ok(txn
        .execute_raw(params.statement(&sql))
        .await?
        .rows_affected())
}

/// Runs `step` again (at once) while it fails transiently, a few times: deadlocks with ingest
/// transactions on a shared session are resolved by PostgreSQL aborting one side.
async fn retried<T, F, Fut>(mut step: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(err)
                if attempt < STEP_ATTEMPTS && err.retryability() == Retryability::Transient =>
            {
                tracing::warn!(error = %err, attempt, "erasure step failed; trying again");
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_hash_is_stable_and_differs_between_applications() {
        let (a, b) = (ApplicationId::generate(), ApplicationId::generate());
        assert_eq!(UserHash::of(a, "foo1"), UserHash::of(a, "foo1"));
        assert_ne!(UserHash::of(a, "foo1"), UserHash::of(b, "foo1"));
        assert_ne!(UserHash::of(a, "foo1"), UserHash::of(a, "foo2"));
        assert_eq!(UserHash::of(a, "foo1").as_str().len(), 64);
    }

    #[test]
    fn the_lock_key_is_the_digests_first_eight_bytes() {
        let hash = UserHash("0123456789abcdef".repeat(4));
        assert_eq!(hash.lock_key(), 0x0123_4567_89ab_cdef);
    }
}
