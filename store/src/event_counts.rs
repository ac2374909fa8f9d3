//! Keeping the hourly event counts (`event_counts`, migration 16) exact: every transaction that stores or
//! deletes events adds what it changed, per hour, application and event type, before it commits.
//!
//! Why the counts stay exact: a change is relative (`events + n`) and made under the row's lock, in the
//! same transaction as the events it counts, so a rollback or crash takes both back together; storing
//! counts only the rows `INSERT .. ON CONFLICT DO NOTHING RETURNING` gave back, so a duplicate or a
//! redelivered job adds nothing; deleting counts only the rows `DELETE .. RETURNING` gave back, so two
//! deletions racing for one event subtract it once.

use crate::lifecycle::take_sweeper_lock;
use crate::sql::Params;
use crate::{Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Slots per key on PostgreSQL; see migration 16. Eight covers the default worker concurrency, so the
/// workers rarely wait for each other's commit; past hours are folded back into one slot
/// ([`Store::fold_event_counts`]), so reads pay for the slots only in the last hours.
const SLOTS: u32 = 8;

/// Keys per statement: five bound values each, well under both databases' limits.
const KEYS_PER_STATEMENT: usize = 1000;

/// What a count is kept per.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CountKey {
    hour: DateTime<Utc>,
    application: Uuid,
    category: String,
    name: String,
}

/// Changes to the counts, summed per key; sorted, so concurrent transactions lock rows in one order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CountChanges(BTreeMap<CountKey, i64>);

impl CountChanges {
    /// Counts `n` more (or, negative, fewer) events of this type at `at`.
    pub(crate) fn add(
        &mut self,
        application: Uuid,
        at: DateTime<Utc>,
        category: String,
        name: String,
        n: i64,
    ) {
        let key = CountKey {
            hour: hour_of(at),
            application,
            category,
            name,
        };
        *self.0.entry(key).or_default() += n;
    }

    /// Adds every change in `other`.
    pub(crate) fn merge(&mut self, other: CountChanges) {
        for (key, n) in other.0 {
            *self.0.entry(key).or_default() += n;
        }
    }

    /// Writes the changes into `event_counts`, in the caller's transaction.
    pub(crate) async fn apply(&self, txn: &impl ConnectionTrait) -> Result<(), StoreError> {
        let changed: Vec<(&CountKey, &i64)> = self.0.iter().filter(|(_, n)| **n != 0).collect();
        for chunk in changed.chunks(KEYS_PER_STATEMENT) {
            txn.execute_raw(upsert(txn.get_database_backend(), chunk))
                .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Folds up to `limit` count rows of hours that began before `before` from their slots into slot 0;
    /// answers how many rows it folded. Hours in the past are rarely written, so reading each of their keys
    /// as one row makes a 30-day count read up to [`SLOTS`] times fewer rows.
    ///
    /// Exact beside concurrent writers: one statement locks the slot rows no other transaction is writing
    /// (`SKIP LOCKED`; the others wait for a later fold), deletes them and adds what they held to slot 0.
    /// Slot 0 is also a job's slot, so that write may wait for a job, like any writer, and takes its rows
    /// in the order jobs do (bytes, not the collation), so the two take rows in one order. It runs under
    /// the retention sweeper's lock and skips while a retention step holds it: both write the oldest
    /// hours' rows, in different orders. The tests race a fold against storing jobs; against retention
    /// and erasure the absence of deadlocks rests on this ordering, not on a test. SQLite has one slot,
    /// so there is nothing to fold.
    #[tracing::instrument(skip(self), err)]
    pub async fn fold_event_counts(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<u64, StoreError> {
        if !self.is_postgres() {
            return Ok(0);
        }
        let txn = self.db.begin().await?;
        if !take_sweeper_lock(&txn).await? {
            return Ok(0);
        }
        let mut params = Params::new(DbBackend::Postgres);
        let sql = format!(
            "WITH picked AS (SELECT ctid FROM event_counts WHERE slot <> 0 AND hour < {} \
               ORDER BY hour LIMIT {limit} FOR UPDATE SKIP LOCKED), \
             moved AS (DELETE FROM event_counts c USING picked WHERE c.ctid = picked.ctid \
               RETURNING c.hour, c.application_id, c.category, c.name, c.events), \
             folded AS (INSERT INTO event_counts (hour, application_id, category, name, slot, events) \
               SELECT hour, application_id, category, name, 0, SUM(events) FROM moved \
               GROUP BY hour, application_id, category, name \
               ORDER BY hour, application_id, category COLLATE \"C\", name COLLATE \"C\" \
               ON CONFLICT (hour, application_id, category, name, slot) \
               DO UPDATE SET events = event_counts.events + excluded.events) \
             SELECT COUNT(*) AS n FROM moved",
            params.bind(before)
        );
        let row = txn.query_one_raw(params.statement(&sql)).await?;
        txn.commit().await?;
        let folded: i64 = row
            .map(|row| row.try_get("", "n"))
            .transpose()?
            .unwrap_or(0);
        Ok(folded.max(0) as u64)
    }
}

/// The start of the hour `at` falls in.
pub(crate) fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let start = at.timestamp().div_euclid(3600) * 3600;
    DateTime::from_timestamp(start, 0).unwrap_or(at)
}

/// The start of the first whole hour at or after `at`.
pub(crate) fn next_hour_from(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = hour_of(at);
    if floor == at {
        floor
    } else {
        floor + TimeDelta::hours(1)
    }
}

fn upsert(backend: DbBackend, chunk: &[(&CountKey, &i64)]) -> sea_orm::Statement {
    let slot = match backend {
        DbBackend::Postgres => format!("CAST(pg_backend_pid() % {SLOTS} AS smallint)"),
        _ => "0".to_owned(),
    };
    let mut params = Params::new(backend);
    let rows: Vec<String> = chunk
        .iter()
        .map(|(key, n)| {
            format!(
                "({}, {}, {}, {}, {slot}, {})",
                params.bind(key.hour),
                params.bind(key.application),
                params.bind(key.category.as_str()),
                params.bind(key.name.as_str()),
                params.bind(**n)
            )
        })
        .collect();
    params.statement(&format!(
        "INSERT INTO event_counts (hour, application_id, category, name, slot, events) VALUES {} \
         ON CONFLICT (hour, application_id, category, name, slot) \
         DO UPDATE SET events = event_counts.events + excluded.events",
        rows.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("an RFC 3339 time")
            .to_utc()
    }

    #[test]
    fn an_event_counts_in_the_hour_it_occurred_in() {
        assert_eq!(
            hour_of(at("2026-01-01T06:59:59.999Z")),
            at("2026-01-01T06:00:00Z")
        );
        assert_eq!(
            hour_of(at("2026-01-01T06:00:00Z")),
            at("2026-01-01T06:00:00Z")
        );
        assert_eq!(
            hour_of(at("1969-12-31T23:30:00Z")),
            at("1969-12-31T23:00:00Z")
        );
        assert_eq!(
            next_hour_from(at("2026-01-01T06:00:01Z")),
            at("2026-01-01T07:00:00Z")
        );
        assert_eq!(
            next_hour_from(at("2026-01-01T06:00:00Z")),
            at("2026-01-01T06:00:00Z")
        );
    }

    #[test]
    fn changes_sum_per_hour_and_type_and_skip_what_cancels_out() {
        let app = Uuid::nil();
        let mut changes = CountChanges::default();
        let pageview = || ("page".to_owned(), "view".to_owned());
        let (c, n) = pageview();
        changes.add(app, at("2026-01-01T06:10:00Z"), c, n, 1);
        let (c, n) = pageview();
        changes.add(app, at("2026-01-01T06:50:00Z"), c, n, 1);
        let mut deleted = CountChanges::default();
        let (c, n) = pageview();
        deleted.add(app, at("2026-01-01T07:00:00Z"), c, n, -1);
        changes.merge(deleted);
        let sums: Vec<i64> = changes.0.values().copied().collect();
        assert_eq!(sums, [2, -1]);

        let statement = upsert(DbBackend::Postgres, &changes.0.iter().collect::<Vec<_>>());
        assert!(
            statement.sql.contains("pg_backend_pid() % 8"),
            "{}",
            statement.sql
        );
        assert_eq!(statement.values.map(|v| v.0.len()), Some(10));
        let lite = upsert(DbBackend::Sqlite, &changes.0.iter().collect::<Vec<_>>());
        assert!(lite.sql.contains(", 0, ?)"), "{}", lite.sql);
    }
}
