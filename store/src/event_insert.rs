//! The events' INSERT, which skips what was stored before: PostgreSQL's for chunks too small to repay a
//! `COPY` or holding an event stored before (`event_copy.rs`), SQLite's always.

use crate::entities::events;
use crate::sql::{json_param, stored_time, stored_version};
use crate::{EventRecord, StoreError, StoredBatch};
use chrono::{DateTime, Utc};
use eye_domain::Payload;
use sea_orm::sea_query::{InsertStatement, OnConflict, Query};
use sea_orm::{DbBackend, DbErr, EntityName, Statement};
use serde::Serialize;

/// PostgreSQL: the chunk travels as one JSON parameter, unpacked by `json_to_recordset`. One small
/// statement, prepared once per connection, instead of a VALUES list with 14 parameters per row, prepared
/// anew for every chunk size (measured end to end with the rules on: 10,300 → 11,900 events/s).
const RECORDSET_INSERT: &str = r#"INSERT INTO events (event_id, application_id, session_id, category, name, data,
    "timestamp", sent_at, received_at, stored_at, user_id, device_id, client_timestamp, schema_version)
SELECT e.event_id, $1, e.session_id, e.category, e.name, e.data, e."timestamp", e.sent_at, $2, $3,
    e.user_id, e.device_id, e.client_timestamp, e.schema_version
FROM json_to_recordset($4::json) AS e(event_id uuid, session_id text, category text, name text, data jsonb,
    "timestamp" timestamptz, sent_at timestamptz, user_id text, device_id text, client_timestamp timestamptz,
    schema_version integer)
ON CONFLICT (application_id, event_id) DO NOTHING
RETURNING id, event_id, session_id, "timestamp", category, name"#;

/// One row of [`RECORDSET_INSERT`]'s JSON parameter; the field names are its column names.
#[derive(Serialize)]
struct RecordsetRow<'a> {
    event_id: uuid::Uuid,
    session_id: &'a str,
    category: &'a str,
    name: &'a str,
    data: &'a Payload,
    timestamp: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    user_id: Option<&'a str>,
    device_id: Option<&'a str>,
    client_timestamp: Option<DateTime<Utc>>,
    schema_version: Option<i32>,
}

impl<'a> From<&EventRecord<'a>> for RecordsetRow<'a> {
    fn from(record: &EventRecord<'a>) -> Self {
        let event = record.event;
        Self {
            event_id: event.event_id.as_uuid(),
            session_id: event.session_id.as_str(),
            category: event.event_type.category.as_str(),
            name: event.event_type.name.as_str(),
            data: &event.data,
            timestamp: stored_time(record.timestamp),
            sent_at: event.sent_at.map(stored_time),
            user_id: event.user_id.as_ref().map(|u| u.as_str()),
            device_id: event.device_id.as_ref().map(|d| d.as_str()),
            client_timestamp: record.client_timestamp.map(stored_time),
            schema_version: record.schema_version.map(stored_version),
        }
    }
}

pub(crate) fn recordset_insert(
    batch: &StoredBatch<'_>,
    chunk: &[EventRecord<'_>],
    stored_at: DateTime<Utc>,
) -> Result<Statement, StoreError> {
    let rows: Vec<RecordsetRow<'_>> = chunk.iter().map(RecordsetRow::from).collect();
    let rows = json_param(&rows)?;
    Ok(Statement::from_sql_and_values(
        DbBackend::Postgres,
        RECORDSET_INSERT,
        [
            batch.application_id.as_uuid().into(),
            stored_time(batch.received_at).into(),
            stored_at.into(),
            rows.into(),
        ],
    ))
}

/// Other databases (SQLite): a multi-row VALUES insert.
pub(crate) fn values_insert(
    batch: &StoredBatch<'_>,
    chunk: &[EventRecord<'_>],
    stored_at: DateTime<Utc>,
) -> Result<InsertStatement, StoreError> {
    use events::Column as C;
    let mut insert = Query::insert();
    insert.into_table(events::Entity.table_ref()).columns([
        C::EventId,
        C::ApplicationId,
        C::SessionId,
        C::Category,
        C::Name,
        C::Data,
        C::Timestamp,
        C::SentAt,
        C::ReceivedAt,
        C::StoredAt,
        C::UserId,
        C::DeviceId,
        C::ClientTimestamp,
        C::SchemaVersion,
    ]);
    for record in chunk {
        let event = record.event;
        insert
            .values([
                event.event_id.as_uuid().into(),
                batch.application_id.as_uuid().into(),
                event.session_id.as_str().into(),
                event.event_type.category.as_str().into(),
                event.event_type.name.as_str().into(),
                event.data.to_value().into(),
                record.timestamp.into(),
                event.sent_at.into(),
                stored_time(batch.received_at).into(),
                stored_at.into(),
                event.user_id.as_ref().map(|u| u.as_str().to_owned()).into(),
                event
                    .device_id
                    .as_ref()
                    .map(|d| d.as_str().to_owned())
                    .into(),
                record.client_timestamp.into(),
                record.schema_version.map(stored_version).into(),
            ])
            .map_err(|err| DbErr::Custom(err.to_string()))?;
    }
    insert
        .on_conflict(
            OnConflict::columns([C::ApplicationId, C::EventId])
                .do_nothing()
                .to_owned(),
        )
        .returning(Query::returning().columns([
            C::Id,
            C::EventId,
            C::SessionId,
            C::Timestamp,
            C::Category,
            C::Name,
        ]));
    Ok(insert.to_owned())
}
