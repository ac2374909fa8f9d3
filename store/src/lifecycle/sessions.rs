//! Deleting events in bounded steps while keeping their sessions exact: each step returns the rows it
//! actually deleted (a concurrent step's rows are not counted twice), takes that many events off each
//! session's count, removes the sessions left empty and re-reads the first and last event time of the
//! others.
//!
//! Why this stays exact beside concurrent ingest (PostgreSQL, READ COMMITTED): ingest adds to a session
//! relatively (`event_count + n`, `least`/`greatest` of the times) under the session row's lock, and so do
//! we (`event_count - n`). Our count update waits for any ingest transaction that holds the row; the times
//! are then re-read by a later statement, whose snapshot sees that transaction's events. An ingest
//! transaction that reaches the row after us folds its own events into what we wrote. On SQLite there is
//! one writer at a time.

use crate::StoreError;
use crate::event_counts::CountChanges;
use crate::sql::Params;
use chrono::{DateTime, Utc};
use eye_domain::ApplicationId;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Sessions per statement: three bound values each, well under both databases' limits.
const SESSIONS_PER_STATEMENT: usize = 1000;

/// Which events a step deletes.
#[derive(Debug, Clone)]
pub(super) enum Selection<'a> {
    /// Those that occurred before this instant, oldest first.
    OccurredBefore(DateTime<Utc>),
    /// One application's user's.
    User {
        application: ApplicationId,
        user_id: &'a str,
    },
}

/// Events deleted per session.
pub(super) type Removed = BTreeMap<(Uuid, String), i64>;

/// What one deletion step removed: events per session, and the hourly counts to take them off.
#[derive(Debug, Default)]
pub(super) struct Deleted {
    pub(super) sessions: Removed,
    pub(super) counts: CountChanges,
}

impl Deleted {
    /// Events deleted.
    pub(super) fn events(&self) -> u64 {
        self.sessions.values().map(|n| *n as u64).sum()
    }
}

/// What adjusting the sessions did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SessionChanges {
    /// Sessions left without events, deleted.
    pub(super) removed: u64,
    /// Sessions that kept events, their count and times adjusted.
    pub(super) adjusted: u64,
}

/// Deletes up to `limit` events of `selection` and answers how many each session and each hourly count
/// lost.
pub(super) async fn delete_events(
    txn: &DatabaseTransaction,
    selection: &Selection<'_>,
    limit: u64,
) -> Result<Deleted, StoreError> {
    let mut params = Params::new(txn.get_database_backend());
    let chosen = match selection {
        Selection::OccurredBefore(cutoff) => format!(
            "SELECT id FROM events WHERE \"timestamp\" < {} ORDER BY \"timestamp\" LIMIT {limit}",
            params.bind(*cutoff)
        ),
        Selection::User {
            application,
            user_id,
        } => format!(
            "SELECT id FROM events WHERE application_id = {} AND user_id = {} LIMIT {limit}",
            params.bind(application.as_uuid()),
            params.bind(*user_id)
        ),
    };
    let sql = format!(
        "DELETE FROM events WHERE id IN ({chosen}) \
         RETURNING application_id, session_id, \"timestamp\", category, name"
    );
    let rows = txn.query_all_raw(params.statement(&sql)).await?;
    let mut deleted = Deleted::default();
    for row in rows {
        let application = row.try_get::<Uuid>("", "application_id")?;
        let session = row.try_get::<String>("", "session_id")?;
        *deleted.sessions.entry((application, session)).or_default() += 1;
        deleted.counts.add(
            application,
            row.try_get("", "timestamp")?,
            row.try_get("", "category")?,
            row.try_get("", "name")?,
            -1,
        );
    }
    Ok(deleted)
}

/// Brings the sessions of `removed` in line with the events that remain.
pub(super) async fn adjust_sessions(
    txn: &DatabaseTransaction,
    removed: &Removed,
) -> Result<SessionChanges, StoreError> {
    let entries: Vec<(&(Uuid, String), &i64)> = removed.iter().collect();
    let mut changes = SessionChanges::default();
    for chunk in entries.chunks(SESSIONS_PER_STATEMENT) {
        let statement = |with_counts, sql| over_chunk(txn, chunk, with_counts, sql);
        txn.execute_raw(statement(true, SUBTRACT_COUNTS)).await?;
        let emptied = txn.execute_raw(statement(false, DELETE_EMPTY)).await?;
        changes.removed += emptied.rows_affected();
        let adjusted = txn.execute_raw(statement(false, REREAD_TIMES)).await?;
        changes.adjusted += adjusted.rows_affected();
    }
    Ok(changes)
}

/// `WITH d(a, sid[, n]) AS (VALUES …)`: the chunk's sessions as a table both databases can join.
fn sessions_table(
    params: &mut Params,
    chunk: &[(&(Uuid, String), &i64)],
    with_counts: bool,
) -> String {
    let rows: Vec<String> = chunk
        .iter()
        .map(|((application, session), count)| {
            let (a, s) = (params.bind(*application), params.bind(session.as_str()));
            if with_counts {
                format!("({a}, {s}, {})", params.bind(**count))
            } else {
                format!("({a}, {s})")
            }
        })
        .collect();
    let columns = if with_counts { "a, sid, n" } else { "a, sid" };
    format!("WITH d({columns}) AS (VALUES {})", rows.join(", "))
}

/// One statement over a chunk of sessions: `sql` runs after the chunk's `WITH d(…)`.
fn over_chunk(
    txn: &DatabaseTransaction,
    chunk: &[(&(Uuid, String), &i64)],
    with_counts: bool,
    sql: &str,
) -> sea_orm::Statement {
    let mut params = Params::new(txn.get_database_backend());
    let with = sessions_table(&mut params, chunk, with_counts);
    params.statement(&format!("{with} {sql}"))
}

const SUBTRACT_COUNTS: &str = "UPDATE sessions SET event_count = sessions.event_count - d.n FROM d \
     WHERE sessions.application_id = d.a AND sessions.session_id = d.sid";

const DELETE_EMPTY: &str = "DELETE FROM sessions WHERE event_count <= 0 AND EXISTS \
     (SELECT 1 FROM d WHERE d.a = sessions.application_id AND d.sid = sessions.session_id)";

/// A separate statement from the count update, so that (on PostgreSQL) it sees every event committed
/// by the ingest transactions that update waited for.
const REREAD_TIMES: &str = "UPDATE sessions SET \
     first_seen = (SELECT min(e.\"timestamp\") FROM events e \
       WHERE e.application_id = sessions.application_id AND e.session_id = sessions.session_id), \
     last_seen = (SELECT max(e.\"timestamp\") FROM events e \
       WHERE e.application_id = sessions.application_id AND e.session_id = sessions.session_id) \
     WHERE EXISTS (SELECT 1 FROM d WHERE d.a = sessions.application_id AND d.sid = sessions.session_id) \
     AND EXISTS (SELECT 1 FROM events e \
       WHERE e.application_id = sessions.application_id AND e.session_id = sessions.session_id)";
