//! Events that could not be stored, kept with the reason so the team can monitor and replay them.

use crate::entities::ingest_errors;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, EventId, JobId};
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::Value;

/// Why an accepted event was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The database refused the event itself (not a passing failure).
    StorageRejected,
}

impl RejectReason {
    /// The stable code stored and shown to analysts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StorageRejected => "storage_rejected",
        }
    }
}

/// One refused event.
#[derive(Debug, Clone)]
pub struct IngestErrorRecord {
    /// The sender.
    pub application_id: ApplicationId,
    /// The job it came in.
    pub job_id: JobId,
    /// The event, when it got as far as having an id.
    pub event_id: Option<EventId>,
    /// The reason code.
    pub reason: RejectReason,
    /// Human-readable detail pointing at the problem.
    pub detail: String,
    /// The event as received.
    pub raw: Value,
    /// When The Eye accepted it.
    pub received_at: DateTime<Utc>,
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

impl Store {
    /// Records refused events.
    #[tracing::instrument(skip_all, fields(errors = records.len()), err)]
    pub async fn record_ingest_errors(
        &self,
        records: &[IngestErrorRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let rows = records.iter().map(|record| ingest_errors::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            application_id: Set(record.application_id.as_uuid()),
            job_id: Set(record.job_id.as_uuid()),
            event_id: Set(record.event_id.map(|id| id.as_uuid())),
            reason: Set(record.reason.as_str().to_owned()),
            detail: Set(record.detail.clone()),
            raw: Set(storable(&record.raw)),
            received_at: Set(record.received_at),
            recorded_at: Set(now),
        });
        ingest_errors::Entity::insert_many(rows)
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }
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
}
