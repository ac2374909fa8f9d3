//! Events that were accepted but not stored, kept with the reason so the team can monitor and replay them.

use crate::entities::ingest_errors;
use crate::queries::{Page, paginate};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, EventId, EventType, JobId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use serde_json::Value;

/// Why an accepted event was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The payload broke its event type's schema.
    InvalidPayload,
    /// The (clock-corrected) timestamp lies beyond the allowed skew in the future.
    FutureTimestamp,
    /// No schema is registered for the type and the policy is to reject such events.
    UnknownEventType,
    /// The database refused the event itself (not a passing failure).
    StorageRejected,
    /// The `sent_at` would correct the timestamp to an implausible time.
    InvalidSentAt,
}

impl RejectReason {
    /// Every reason, for parsing and documentation.
    pub const ALL: [Self; 5] = [
        Self::InvalidPayload,
        Self::FutureTimestamp,
        Self::UnknownEventType,
        Self::StorageRejected,
        Self::InvalidSentAt,
    ];

    /// The stable code stored and shown to analysts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::FutureTimestamp => "future_timestamp",
            Self::UnknownEventType => "unknown_event_type",
            Self::StorageRejected => "storage_rejected",
            Self::InvalidSentAt => "invalid_sent_at",
        }
    }

    /// The reason with this code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == code)
    }
}

/// One refused event.
#[derive(Debug, Clone)]
pub struct IngestErrorRecord {
    /// The sender.
    pub application_id: ApplicationId,
    /// The job it came in.
    pub job_id: JobId,
    /// The event's id.
    pub event_id: EventId,
    /// Its type.
    pub event_type: EventType,
    /// The reason code.
    pub reason: RejectReason,
    /// Human-readable detail pointing at the problem (JSON pointer and message for payloads).
    pub detail: String,
    /// The event as received.
    pub raw: Value,
    /// When The Eye accepted it.
    pub received_at: DateTime<Utc>,
}

/// A recorded error, as listed to the team.
#[derive(Debug, Clone)]
pub struct StoredIngestError {
    /// Position in the log (newest highest).
    pub id: i64,
    /// The record.
    pub record: IngestErrorRecord,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// When a replay stored the event after all.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Which errors to list or replay.
#[derive(Debug, Clone, Default)]
pub struct ErrorFilter {
    /// Only these applications (`None`: all).
    pub applications: Option<Vec<ApplicationId>>,
    /// Only this reason.
    pub reason: Option<RejectReason>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this name.
    pub name: Option<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
    /// Only errors older than this position (keyset pagination, newest first).
    pub before_id: Option<i64>,
    /// Only errors not resolved by a replay.
    pub unresolved_only: bool,
}

/// PostgreSQL's jsonb cannot hold NUL characters, and a refused event may have been refused for carrying
/// one: its record keeps every other character, with NUL replaced by U+FFFD.
fn storable(raw: &Value) -> Value {
    match raw {
        Value::String(text) if text.contains('\0') => Value::String(text.replace('\0', "\u{fffd}")),
        Value::Array(items) => Value::Array(items.iter().map(storable).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (key.replace('\0', "\u{fffd}"), storable(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn to_row(record: &IngestErrorRecord, now: DateTime<Utc>) -> ingest_errors::ActiveModel {
    ingest_errors::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        application_id: Set(record.application_id.as_uuid()),
        job_id: Set(record.job_id.as_uuid()),
        event_id: Set(Some(record.event_id.as_uuid())),
        reason: Set(record.reason.as_str().to_owned()),
        detail: Set(record.detail.clone()),
        raw: Set(storable(&record.raw)),
        received_at: Set(record.received_at),
        recorded_at: Set(now),
        category: Set(Some(record.event_type.category.as_str().to_owned())),
        name: Set(Some(record.event_type.name.as_str().to_owned())),
        resolved_at: Set(None),
    }
}

/// Records refused events; one already recorded (a retried job, a resent event) is left as it is.
pub(crate) async fn insert_ingest_errors(
    db: &impl ConnectionTrait,
    records: &[IngestErrorRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let conflict = OnConflict::columns([
        ingest_errors::Column::ApplicationId,
        ingest_errors::Column::EventId,
    ])
    .do_nothing()
    .to_owned();
    ingest_errors::Entity::insert_many(records.iter().map(|record| to_row(record, now)))
        .on_conflict(conflict)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

impl Store {
    /// Records refused events.
    #[tracing::instrument(skip_all, fields(errors = records.len()), err)]
    pub async fn record_ingest_errors(
        &self,
        records: &[IngestErrorRecord],
    ) -> Result<(), StoreError> {
        insert_ingest_errors(&self.db, records).await
    }

    /// Recorded errors matching `filter`, newest first: up to `limit` of them.
    pub async fn ingest_errors(
        &self,
        filter: &ErrorFilter,
        limit: u64,
    ) -> Result<Vec<StoredIngestError>, StoreError> {
        Ok(self.ingest_error_page(filter, limit).await?.items)
    }

    /// One page of [`Store::ingest_errors`]: `limit` errors when that many remain, and the position to
    /// continue from (`None` on the last page). A row this version cannot read (a reason code or type it
    /// does not know, a field left empty by an older version) is logged and passed over *before* the page
    /// is cut, so it never shortens a page nor ends the paging early.
    #[tracing::instrument(skip_all, fields(limit = limit), err)]
    pub async fn ingest_error_page(
        &self,
        filter: &ErrorFilter,
        limit: u64,
    ) -> Result<Page<StoredIngestError, i64>, StoreError> {
        let mut found = Vec::new();
        let mut before_id = filter.before_id;
        loop {
            // One row more than the page, to know whether another page follows.
            let wanted = limit + 1 - found.len() as u64;
            let rows = self.error_rows(filter, before_id, wanted).await?;
            let exhausted = (rows.len() as u64) < wanted;
            for row in rows {
                before_id = Some(row.id);
                match from_row(row) {
                    Ok(error) => found.push(error),
                    Err(id) => tracing::warn!(id, "ingest error record unreadable; not listed"),
                }
            }
            if exhausted || found.len() as u64 > limit {
                return Ok(paginate(found, limit, |error| error.id));
            }
        }
    }

    /// Raw rows matching `filter`, older than `before_id`, newest first.
    async fn error_rows(
        &self,
        filter: &ErrorFilter,
        before_id: Option<i64>,
        limit: u64,
    ) -> Result<Vec<ingest_errors::Model>, StoreError> {
        use ingest_errors::Column as C;
        let query = ingest_errors::Entity::find()
            .order_by_desc(C::Id)
            .limit(limit)
            .apply_if(filter.reason, |q, r| q.filter(C::Reason.eq(r.as_str())))
            .apply_if(filter.category.clone(), |q, c| q.filter(C::Category.eq(c)))
            .apply_if(filter.name.clone(), |q, n| q.filter(C::Name.eq(n)))
            .apply_if(filter.from, |q, from| q.filter(C::RecordedAt.gte(from)))
            .apply_if(filter.to, |q, to| q.filter(C::RecordedAt.lt(to)))
            .apply_if(before_id, |q, id| q.filter(C::Id.lt(id)))
            .apply_if(filter.applications.as_ref(), |q, apps| {
                q.filter(C::ApplicationId.is_in(apps.iter().map(ApplicationId::as_uuid)))
            })
            .apply_if(filter.unresolved_only.then_some(()), |q, ()| {
                q.filter(C::ResolvedAt.is_null())
            });
        Ok(query.all(&self.db).await?)
    }

    /// Marks errors resolved (their events were stored by a replay).
    pub async fn resolve_ingest_errors(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        ingest_errors::Entity::update_many()
            .col_expr(ingest_errors::Column::ResolvedAt, Expr::value(Utc::now()))
            .filter(ingest_errors::Column::Id.is_in(ids.iter().copied()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// The record of a row, or the row's id if this version cannot read it.
fn from_row(row: ingest_errors::Model) -> Result<StoredIngestError, i64> {
    let id = row.id;
    let category = row
        .category
        .and_then(|c| eye_domain::Category::parse(c).ok());
    let name = row.name.and_then(|n| eye_domain::EventName::parse(n).ok());
    let reason = RejectReason::parse(&row.reason);
    let (Some(category), Some(name), Some(event_id), Some(reason)) =
        (category, name, row.event_id, reason)
    else {
        return Err(id);
    };
    let record = IngestErrorRecord {
        application_id: row.application_id.into(),
        job_id: row.job_id.into(),
        event_id: event_id.into(),
        event_type: EventType { category, name },
        reason,
        detail: row.detail,
        raw: row.raw,
        received_at: row.received_at,
    };
    Ok(StoredIngestError {
        id: row.id,
        record,
        recorded_at: row.recorded_at,
        resolved_at: row.resolved_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_characters_are_replaced_wherever_they_hide() {
        let raw = json!({"data": {"note": "a\u{0}b", "list": ["\u{0}"], "k\u{0}": 1}, "n": 3});
        let expected =
            json!({"data": {"note": "a\u{fffd}b", "list": ["\u{fffd}"], "k\u{fffd}": 1}, "n": 3});
        assert_eq!(storable(&raw), expected);
    }

    #[test]
    fn reason_codes_round_trip() {
        for reason in RejectReason::ALL {
            assert_eq!(RejectReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(RejectReason::parse("other"), None);
    }
}
