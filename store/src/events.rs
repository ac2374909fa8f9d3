//! Storing events and keeping their sessions exact.

use crate::IngestErrorRecord;
use crate::entities::sessions;
use crate::event_copy::{self, copy_events};
use crate::event_counts::CountChanges;
use crate::event_insert;
use crate::ingest_errors::insert_ingest_errors;
use crate::job_txn::JobTxn;
use crate::lifecycle::withhold_erased;
use crate::sql::stored_time;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, EventId, NewEvent};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityName};
use std::collections::{BTreeMap, HashMap};

/// Rows per INSERT statement: well under PostgreSQL's 65,535 and SQLite's 32,766 bind parameters.
const ROWS_PER_STATEMENT: usize = 1000;

/// A validated event and what validation decided about it.
#[derive(Debug, Clone, Copy)]
pub struct EventRecord<'a> {
    /// The event as accepted.
    pub event: &'a NewEvent,
    /// When it occurred, corrected for the device's clock skew when the client sent `sent_at`.
    pub timestamp: DateTime<Utc>,
    /// The client's own timestamp, kept when it was corrected.
    pub client_timestamp: Option<DateTime<Utc>>,
    /// The schema version it passed; `None` for an unregistered type that was accepted.
    pub schema_version: Option<u32>,
}

impl<'a> EventRecord<'a> {
    /// An event stored as sent, without validation details (tests and tools).
    pub fn unvalidated(event: &'a NewEvent) -> Self {
        Self {
            event,
            timestamp: event.timestamp,
            client_timestamp: None,
            schema_version: None,
        }
    }
}

/// Events of one application, received together, ready to store with the ones refused.
#[derive(Debug, Clone, Copy)]
pub struct StoredBatch<'a> {
    /// The sender.
    pub application_id: ApplicationId,
    /// When The Eye accepted them.
    pub received_at: DateTime<Utc>,
    /// The valid events.
    pub events: &'a [EventRecord<'a>],
    /// The refused events, recorded in the same transaction.
    pub refused: &'a [IngestErrorRecord],
}

/// A position in a stream of stored events: event time, ties broken by storage order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventCursor {
    /// The event's timestamp.
    pub at: DateTime<Utc>,
    /// The event's row id.
    pub id: i64,
}

/// An event that a call stored (it was not stored before), and where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertedEvent {
    /// The client's id for it.
    pub event_id: EventId,
    /// Its stored timestamp and row id.
    pub cursor: EventCursor,
    /// The stored copy's place in the batch's `events`. A batch may hold several copies of one id (they
    /// may differ, and some may be withheld): the first one kept is the one stored.
    pub record: usize,
}

/// What storing a batch did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InsertOutcome {
    /// Events stored by this call (not stored before).
    pub inserted: Vec<InsertedEvent>,
    /// Events that were stored before (same application and event id) and were skipped.
    pub duplicates: u64,
    /// Events of users erased since, withheld (see `lifecycle/withhold.rs`).
    pub withheld: u64,
}

/// The first and last event time and the number of new events of one session in a batch.
#[derive(Debug, Clone, Copy)]
struct SessionDelta {
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    count: i64,
}

impl SessionDelta {
    fn new(at: DateTime<Utc>) -> Self {
        Self {
            first_seen: at,
            last_seen: at,
            count: 1,
        }
    }

    fn add(&mut self, at: DateTime<Utc>) {
        self.first_seen = self.first_seen.min(at);
        self.last_seen = self.last_seen.max(at);
        self.count += 1;
    }
}

/// One job's unit of work: its new events, their sessions and hourly counts, the refused events and the
/// notification rules' outcomes commit together or not at all, so a crash or a redelivery can never
/// separate them.
pub struct IngestTxn {
    pub(crate) txn: JobTxn,
    /// Written just before the commit: the current hour's count rows are the ones every concurrent job
    /// writes, and their locks are held from that write to the commit.
    counts: CountChanges,
}

impl Store {
    /// Opens a job's unit of work.
    pub async fn begin_ingest(&self) -> Result<IngestTxn, StoreError> {
        Ok(IngestTxn {
            txn: JobTxn::begin(&self.db).await?,
            counts: CountChanges::default(),
        })
    }
}

impl IngestTxn {
    /// Stores the events that are new and folds them into their sessions and hourly counts, and records the
    /// refused ones: a retried batch stores nothing twice and counts nothing twice.
    #[tracing::instrument(skip_all, fields(application = %batch.application_id, events = batch.events.len()), err)]
    pub async fn insert_batch(
        &mut self,
        batch: StoredBatch<'_>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut folded = Folded::default();
        let mut inserted = Vec::new();
        let events = withhold_erased(&self.txn, &batch).await?;
        let chunks = events.kept.chunks(ROWS_PER_STATEMENT);
        for (chunk, positions) in chunks.zip(events.positions.chunks(ROWS_PER_STATEMENT)) {
            let chunk = Chunk {
                records: chunk,
                positions,
            };
            inserted.extend(insert_chunk(&self.txn, &batch, chunk, &mut folded).await?);
        }
        upsert_sessions(&self.txn, batch.application_id, &folded.sessions).await?;
        self.counts.merge(folded.counts);
        insert_ingest_errors(&self.txn, batch.refused).await?;
        let duplicates = (events.kept.len() - inserted.len()) as u64;
        Ok(InsertOutcome {
            inserted,
            duplicates,
            withheld: events.withheld,
        })
    }

    /// Adds the stored events to the hourly counts and makes everything done in this unit of work durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.counts.apply(&self.txn).await?;
        self.txn.commit().await?;
        Ok(())
    }
}

/// What the stored events change in their sessions and in the hourly counts.
#[derive(Default)]
struct Folded {
    sessions: BTreeMap<String, SessionDelta>,
    counts: CountChanges,
}

impl Folded {
    fn add(
        &mut self,
        application: ApplicationId,
        at: DateTime<Utc>,
        session: &str,
        category: String,
        name: String,
    ) {
        match self.sessions.get_mut(session) {
            Some(delta) => delta.add(at),
            None => {
                self.sessions
                    .insert(session.to_owned(), SessionDelta::new(at));
            }
        }
        self.counts
            .add(application.as_uuid(), at, category, name, 1);
    }
}

/// Events stored by one statement, with each one's place in the batch's `events`.
#[derive(Clone, Copy)]
struct Chunk<'c, 'a> {
    records: &'c [EventRecord<'a>],
    positions: &'c [usize],
}

/// Stores the chunk's new events and folds them into `folded`: on PostgreSQL by `COPY` when the chunk is
/// large enough to repay it and none of its events was stored before (`event_copy.rs`), else by an INSERT
/// that skips what exists.
async fn insert_chunk(
    txn: &JobTxn,
    batch: &StoredBatch<'_>,
    chunk: Chunk<'_, '_>,
    folded: &mut Folded,
) -> Result<Vec<InsertedEvent>, StoreError> {
    let stored_at = Utc::now();
    let records = chunk.records;
    if let Some(pg) = txn.postgres()
        && records.len() >= event_copy::MIN_ROWS
        && let Some(ids) = copy_events(pg, batch, records, stored_at).await?
    {
        return Ok(fold_copied(batch, chunk, ids, folded));
    }
    let rows = match txn.get_database_backend() {
        DbBackend::Postgres => {
            txn.query_all_raw(event_insert::recordset_insert(batch, records, stored_at)?)
                .await?
        }
        _ => {
            txn.query_all(&event_insert::values_insert(batch, records, stored_at)?)
                .await?
        }
    };
    // Of several copies of one id, the insert keeps the first and skips the others.
    let mut first_copy: HashMap<EventId, usize> = HashMap::with_capacity(records.len());
    for (record, position) in records.iter().zip(chunk.positions) {
        first_copy.entry(record.event.event_id).or_insert(*position);
    }
    // Only rows actually inserted come back, so duplicates never reach the sessions nor the counts.
    let mut inserted = Vec::with_capacity(rows.len());
    for row in rows {
        let at: DateTime<Utc> = row.try_get("", "timestamp")?;
        let session: String = row.try_get("", "session_id")?;
        folded.add(
            batch.application_id,
            at,
            &session,
            row.try_get("", "category")?,
            row.try_get("", "name")?,
        );
        let event_id = EventId::from(row.try_get::<uuid::Uuid>("", "event_id")?);
        inserted.push(InsertedEvent {
            event_id,
            cursor: EventCursor {
                at,
                id: row.try_get("", "id")?,
            },
            // Every row returned is one of the chunk's.
            record: first_copy.get(&event_id).copied().unwrap_or_default(),
        });
    }
    Ok(inserted)
}

/// Every event of a copied chunk is new, stored with the id taken for it.
fn fold_copied(
    batch: &StoredBatch<'_>,
    chunk: Chunk<'_, '_>,
    ids: Vec<i64>,
    folded: &mut Folded,
) -> Vec<InsertedEvent> {
    chunk
        .records
        .iter()
        .zip(chunk.positions)
        .zip(ids)
        .map(|((record, position), id)| {
            let event = record.event;
            let at = stored_time(record.timestamp);
            folded.add(
                batch.application_id,
                at,
                event.session_id.as_str(),
                event.event_type.category.as_str().to_owned(),
                event.event_type.name.as_str().to_owned(),
            );
            InsertedEvent {
                event_id: event.event_id,
                cursor: EventCursor { at, id },
                record: *position,
            }
        })
        .collect()
}

/// One statement per batch; sessions arrive sorted by id so concurrent workers lock rows in the same order.
async fn upsert_sessions(
    txn: &JobTxn,
    application: ApplicationId,
    deltas: &BTreeMap<String, SessionDelta>,
) -> Result<(), StoreError> {
    use sessions::Column as C;
    if deltas.is_empty() {
        return Ok(());
    }
    let mut upsert = Query::insert();
    upsert.into_table(sessions::Entity.table_ref()).columns([
        C::ApplicationId,
        C::SessionId,
        C::FirstSeen,
        C::LastSeen,
        C::EventCount,
    ]);
    for (session, delta) in deltas {
        upsert
            .values([
                application.as_uuid().into(),
                session.as_str().into(),
                delta.first_seen.into(),
                delta.last_seen.into(),
                delta.count.into(),
            ])
            .map_err(|err| DbErr::Custom(err.to_string()))?;
    }
    upsert.on_conflict(
        OnConflict::columns([C::ApplicationId, C::SessionId])
            .value(C::FirstSeen, Expr::cust(
                "CASE WHEN excluded.first_seen < sessions.first_seen THEN excluded.first_seen ELSE sessions.first_seen END",
            ))
            .value(C::LastSeen, Expr::cust(
                "CASE WHEN excluded.last_seen > sessions.last_seen THEN excluded.last_seen ELSE sessions.last_seen END",
            ))
            .value(C::EventCount, Expr::cust("sessions.event_count + excluded.event_count"))
            .to_owned(),
    );
    txn.execute(&upsert).await?;
    Ok(())
}
