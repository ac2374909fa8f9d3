//! What ingest does about erased users: before a batch's events are stored, the events of users erased
//! since are withheld, in the storing transaction.
//!
//! The choice: an erasure covers everything the user did until it. An event of the user that occurred
//! at or before the erasure, or that The Eye received at or before it (still in the queue, retried by a
//! client, replayed from the errors or the dead jobs, sent late by an offline device), is never stored.
//! An event that occurs and is received after the erasure is new data that the application chose to
//! send (a new consent) and is stored. Withheld events are counted, not recorded: a refused-event record
//! would keep the very data the erasure removed.

use super::erasure::UserHash;
use crate::sql::Params;
use crate::{EventRecord, StoreError, StoredBatch};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend};
use std::collections::{BTreeMap, BTreeSet};

/// The batch's events to store, and how many were withheld.
pub(crate) struct Withheld<'a> {
    pub(crate) kept: Vec<EventRecord<'a>>,
    /// Each kept event's place in the batch's `events`.
    pub(crate) positions: Vec<usize>,
    pub(crate) withheld: u64,
}

/// Splits off the events of users erased since (see the module's doc). A batch without user ids costs
/// nothing; one with user ids costs two statements (the users' locks, then the read).
pub(crate) async fn withhold_erased<'a>(
    txn: &impl ConnectionTrait,
    batch: &StoredBatch<'a>,
) -> Result<Withheld<'a>, StoreError> {
    let users: BTreeSet<&str> = batch
        .events
        .iter()
        .filter_map(|record| record.event.user_id.as_ref().map(|u| u.as_str()))
        .collect();
    if users.is_empty() {
        return Ok(Withheld {
            kept: batch.events.to_vec(),
            positions: (0..batch.events.len()).collect(),
            withheld: 0,
        });
    }
    let hashes: BTreeMap<&str, UserHash> = users
        .into_iter()
        .map(|user| (user, UserHash::of(batch.application_id, user)))
        .collect();
    let erased = erased_at(txn, batch, &hashes).await?;
    let (kept, withheld): (Vec<_>, Vec<_>) =
        batch.events.iter().enumerate().partition(|(_, record)| {
            let boundary = record
                .event
                .user_id
                .as_ref()
                .and_then(|user| hashes.get(user.as_str()))
                .and_then(|hash| erased.get(hash));
            !boundary.is_some_and(|at| is_withheld(record.timestamp, batch.received_at, *at))
        });
    Ok(Withheld {
        positions: kept.iter().map(|(position, _)| *position).collect(),
        kept: kept.into_iter().map(|(_, record)| *record).collect(),
        withheld: withheld.len() as u64,
    })
}

/// Whether an event that occurred at `timestamp` and was received at `received_at` falls under an
/// erasure at `erased_at`.
fn is_withheld(
    timestamp: DateTime<Utc>,
    received_at: DateTime<Utc>,
    erased_at: DateTime<Utc>,
) -> bool {
    timestamp <= erased_at || received_at <= erased_at
}

/// The latest erasure of each of the batch's users that has one, read after taking their locks.
async fn erased_at(
    txn: &impl ConnectionTrait,
    batch: &StoredBatch<'_>,
    hashes: &BTreeMap<&str, UserHash>,
) -> Result<BTreeMap<UserHash, DateTime<Utc>>, StoreError> {
    lock_users(txn, hashes).await?;
    let mut params = Params::new(txn.get_database_backend());
    let sql = format!(
        "SELECT user_hash, max(erased_at) AS erased_at FROM erasures \
         WHERE application_id = {} AND user_hash IN {} GROUP BY user_hash",
        params.bind(batch.application_id.as_uuid()),
        params.list(hashes.values().map(|h| h.as_str().to_owned()))
    );
    let rows = txn.query_all_raw(params.statement(&sql)).await?;
    let mut erased = BTreeMap::new();
    for row in rows {
        let hash = UserHash::from_stored(row.try_get("", "user_hash")?);
        erased.insert(hash, row.try_get("", "erased_at")?);
    }
    Ok(erased)
}

/// PostgreSQL: a shared advisory lock per user, held to commit, so an erasure (exclusive) waits for this
/// transaction, or this one for the erasure's record (then read by the next statement's snapshot).
/// SQLite: the database's write lock, taken before the read, so no erasure commits in between.
async fn lock_users(
    txn: &impl ConnectionTrait,
    hashes: &BTreeMap<&str, UserHash>,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let mut params = Params::new(backend);
    let sql = match backend {
        DbBackend::Postgres => {
            let keys: Vec<String> = hashes
                .values()
                .map(|hash| format!("({})", params.bind(hash.lock_key())))
                .collect();
            format!(
                "SELECT pg_advisory_xact_lock_shared(v.k) FROM (VALUES {}) AS v(k)",
                keys.join(", ")
            )
        }
        // A write statement takes the write lock even when it changes nothing.
        _ => "UPDATE erasures SET user_hash = user_hash WHERE 0 = 1".to_owned(),
    };
    txn.execute_raw(params.statement(&sql)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, hour, 0, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn what_happened_or_arrived_until_the_erasure_is_withheld_and_what_follows_is_kept() {
        let erased = at(12);
        let cases = [
            // (occurred, received, withheld)
            (at(10), at(11), true),  // in the queue at the erasure
            (at(10), at(13), true),  // an old event sent again, or late
            (at(12), at(13), true),  // at the very instant
            (at(13), at(11), true),  // received before (a fast device clock)
            (at(13), at(13), false), // new activity, a new consent
        ];
        for (occurred, received, withheld) in cases {
            assert_eq!(
                is_withheld(occurred, received, erased),
                withheld,
                "{occurred} / {received}"
            );
        }
    }
}
