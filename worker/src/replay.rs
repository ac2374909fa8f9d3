//! Re-running recorded errors through the processing path, after a schema fix: each event that now passes
//! is validated, stored and evaluated by the rules exactly like a queued one.

use crate::processor::{ProcessError, Processor};
use eye_domain::{IngestBatch, NewEvent};
use eye_store::{ErrorFilter, StoreError, StoredIngestError};

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Errors looked at.
    pub replayed: u64,
    /// Events stored by this replay (or found stored already), their errors now resolved.
    pub stored: u64,
    /// Events that still fail.
    pub still_failing: u64,
    /// Why each event that still fails was refused.
    pub failures: Vec<ReplayFailure>,
}

/// An event the replay could not store, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayFailure {
    /// The error record replayed.
    pub error_id: i64,
    /// What went wrong.
    pub detail: String,
}

/// How one replayed event ended.
enum Replayed {
    Stored,
    Failed(String),
}

/// Replays up to `limit` unresolved errors matching `filter`, one event at a time, going on past events
/// that still fail; each stored event's error is marked resolved at once. Safe to repeat: events are
/// stored once. Stops early (with what it did so far recorded) only when the database is unavailable.
#[tracing::instrument(skip_all, err)]
pub async fn replay_errors(
    processor: &Processor,
    filter: ErrorFilter,
    limit: u64,
) -> Result<ReplayOutcome, StoreError> {
    let filter = ErrorFilter {
        unresolved_only: true,
        ..filter
    };
    let errors = processor.store().ingest_errors(&filter, limit).await?;
    let mut outcome = ReplayOutcome {
        replayed: errors.len() as u64,
        ..ReplayOutcome::default()
    };
    for error in &errors {
        match replay_one(processor, error).await? {
            Replayed::Stored => {
                processor.store().resolve_ingest_errors(&[error.id]).await?;
                outcome.stored += 1;
            }
            Replayed::Failed(detail) => {
                outcome.still_failing += 1;
                outcome.failures.push(ReplayFailure {
                    error_id: error.id,
                    detail,
                });
            }
        }
    }
    Ok(outcome)
}

async fn replay_one(
    processor: &Processor,
    error: &StoredIngestError,
) -> Result<Replayed, StoreError> {
    let event = match serde_json::from_value::<NewEvent>(error.record.raw.clone()) {
        Ok(event) => event,
        Err(err) => {
            return Ok(Replayed::Failed(format!(
                "the recorded event cannot be read: {err}"
            )));
        }
    };
    let batch = IngestBatch {
        job_id: error.record.job_id,
        application_id: error.record.application_id,
        received_at: error.record.received_at,
        events: vec![event],
    };
    match processor.process(&batch).await {
        Ok(processed) => Ok(match processed.refused.first() {
            None => Replayed::Stored,
            Some(refusal) => {
                Replayed::Failed(format!("{}: {}", refusal.reason.as_str(), refusal.detail))
            }
        }),
        Err(ProcessError::Failed(err)) => Ok(Replayed::Failed(err.to_string())),
        Err(ProcessError::Unavailable(err)) => Err(err),
    }
}
