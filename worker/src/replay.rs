//! Re-running recorded errors through validation, after a schema fix.

use crate::validate::Validator;
use eye_domain::{IngestBatch, NewEvent};
use eye_store::{ErrorFilter, Store, StoreError, StoredBatch, StoredIngestError};

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Errors looked at.
    pub replayed: u64,
    /// Events stored by this replay (or found stored already), their errors now resolved.
    pub stored: u64,
    /// Events that still fail.
    pub still_failing: u64,
}

/// Replays up to `limit` unresolved errors matching `filter`. Safe to repeat: events are stored once.
#[tracing::instrument(skip_all, err)]
pub async fn replay_errors(
    store: &Store,
    validator: &Validator,
    filter: ErrorFilter,
    limit: u64,
) -> Result<ReplayOutcome, StoreError> {
    let filter = ErrorFilter {
        unresolved_only: true,
        ..filter
    };
    let errors = store.ingest_errors(&filter, limit).await?;
    let mut outcome = ReplayOutcome {
        replayed: errors.len() as u64,
        ..ReplayOutcome::default()
    };
    let mut resolved = Vec::new();
    for error in &errors {
        if replay_one(store, validator, error).await? {
            resolved.push(error.id);
        }
    }
    store.resolve_ingest_errors(&resolved).await?;
    outcome.stored = resolved.len() as u64;
    outcome.still_failing = outcome.replayed - outcome.stored;
    Ok(outcome)
}

async fn replay_one(
    store: &Store,
    validator: &Validator,
    error: &StoredIngestError,
) -> Result<bool, StoreError> {
    let Ok(event) = serde_json::from_value::<NewEvent>(error.record.raw.clone()) else {
        return Ok(false);
    };
    let batch = IngestBatch {
        job_id: error.record.job_id,
        application_id: error.record.application_id,
        received_at: error.record.received_at,
        events: vec![event],
    };
    let judged = validator.judge(&batch);
    if judged.valid.is_empty() {
        return Ok(false);
    }
    let stored = StoredBatch {
        application_id: batch.application_id,
        received_at: batch.received_at,
        events: &judged.valid,
        refused: &[],
    };
    store.insert_events(stored).await?;
    Ok(true)
}
