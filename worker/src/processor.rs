//! What a worker does with a queued batch: store it, exactly once, or record why it could not.

use crate::metrics::WorkerMetrics;
use crate::rules::RuleReactor;
use crate::validate::{Judged, Validator, error_record};
use apalis::prelude::Data;
use backon::{ExponentialBuilder, Retryable};
use eye_domain::{Failure, IngestBatch, NewEvent};
use eye_store::{
    EventRecord, IngestErrorRecord, InsertOutcome, RejectReason, Store, StoreError, StoredBatch,
};
use std::time::Duration;

/// A batch could not be processed now; the queue keeps the job and tries it again later.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Storage kept failing with transient errors beyond the retry budget.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(#[source] StoreError),
    /// Recording the refused events failed.
    #[error("could not record refused events: {0}")]
    RecordingFailed(#[source] StoreError),
}

/// How hard to retry transient storage failures inside one job before handing it back to the queue.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    /// First delay.
    pub min_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Attempts after the first.
    pub max_retries: usize,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_retries: 10,
        }
    }
}

/// Everything a worker needs to process batches.
#[derive(Clone)]
pub struct Processor {
    store: Store,
    validator: Validator,
    metrics: WorkerMetrics,
    retry: RetrySettings,
    rules: Option<RuleReactor>,
}

/// The apalis job function.
pub async fn handle_batch(
    batch: IngestBatch,
    processor: Data<Processor>,
) -> Result<(), ProcessError> {
    processor.process(&batch).await.map(|_| ())
}

impl Processor {
    /// A processor validating with `validator`, storing into `store`, reporting into `metrics`.
    pub fn new(store: Store, validator: Validator, metrics: WorkerMetrics) -> Self {
        Self {
            store,
            validator,
            metrics,
            retry: RetrySettings::default(),
            rules: None,
        }
    }

    /// Feeds every newly stored event to the notification rules.
    pub fn with_rules(mut self, rules: RuleReactor) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Evaluates the newly stored events (never duplicates). Failures are logged, not returned: the events
    /// are stored, so a retried job would find only duplicates; the user's next event catches up instead,
    /// since the reactor evaluates every stored event after the user's rule cursor.
    async fn react(&self, batch: &IngestBatch, outcome: &InsertOutcome) {
        let Some(rules) = &self.rules else { return };
        let result = (|| rules.react(batch.application_id, &batch.events, &outcome.inserted))
            .retry(self.backoff())
            .when(StoreError::is_transient)
            .await;
        if let Err(err) = result {
            tracing::error!(error = %err, "evaluating the notification rules failed");
        }
    }

    /// Replaces the retry budget for transient storage failures.
    pub fn with_retry(mut self, retry: RetrySettings) -> Self {
        self.retry = retry;
        self
    }

    /// Judges the batch's events, then stores the valid ones and records the refused ones in one
    /// transaction. If the database refuses the batch as a whole (not a passing failure), stores its events
    /// one by one so that a single bad event cannot block the rest, and records the ones refused.
    #[tracing::instrument(skip_all, fields(job = %batch.job_id, events = batch.events.len()), err)]
    pub async fn process(&self, batch: &IngestBatch) -> Result<InsertOutcome, ProcessError> {
        let judged = self.validator.judge(batch);
        let outcome = match self
            .store_with_retry(batch, &judged.valid, &judged.refused)
            .await
        {
            Ok(outcome) => outcome,
            Err(err) if err.is_transient() => return Err(ProcessError::StorageUnavailable(err)),
            Err(err) => {
                tracing::warn!(error = %err, "batch refused; storing its events one by one");
                self.store_one_by_one(batch, &judged).await?
            }
        };
        self.react(batch, &outcome).await;
        self.metrics.record_stored(batch, &outcome);
        self.metrics.record_unregistered(judged.unregistered);
        for refused in &judged.refused {
            self.metrics.record_refused(refused.reason, 1);
        }
        Ok(outcome)
    }

    async fn store_with_retry(
        &self,
        batch: &IngestBatch,
        events: &[EventRecord<'_>],
        refused: &[IngestErrorRecord],
    ) -> Result<InsertOutcome, StoreError> {
        let stored = StoredBatch {
            application_id: batch.application_id,
            received_at: batch.received_at,
            events,
            refused,
        };
        (|| self.store.insert_events(stored))
            .retry(self.backoff())
            .when(StoreError::is_transient)
            .notify(|err, delay| tracing::warn!(error = %err, ?delay, "storing failed; retrying"))
            .await
    }

    async fn store_one_by_one(
        &self,
        batch: &IngestBatch,
        judged: &Judged<'_>,
    ) -> Result<InsertOutcome, ProcessError> {
        let mut total = InsertOutcome::default();
        let mut refused = judged.refused.clone();
        for record in &judged.valid {
            match self
                .store_with_retry(batch, std::slice::from_ref(record), &[])
                .await
            {
                Ok(outcome) => {
                    total.inserted.extend(outcome.inserted);
                    total.duplicates += outcome.duplicates;
                }
                Err(err) if err.is_transient() => {
                    return Err(ProcessError::StorageUnavailable(err));
                }
                Err(err) => refused.push(storage_refusal(batch, record.event, &err)),
            }
        }
        let storage_refused = refused.len() - judged.refused.len();
        self.metrics
            .record_refused(RejectReason::StorageRejected, storage_refused);
        self.store
            .record_ingest_errors(&refused)
            .await
            .map_err(ProcessError::RecordingFailed)?;
        Ok(total)
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries)
            .with_jitter()
    }
}

fn storage_refusal(batch: &IngestBatch, event: &NewEvent, err: &StoreError) -> IngestErrorRecord {
    error_record(batch, event, RejectReason::StorageRejected, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn the_default_retry_budget_rides_out_a_database_restart() {
        let settings = RetrySettings::default();
        let worst_case: Duration = (0..settings.max_retries)
            .map(|n| (settings.min_delay * 2u32.pow(n as u32)).min(settings.max_delay))
            .sum();
        assert!(
            worst_case >= Duration::from_secs(60),
            "budget {worst_case:?}"
        );
    }

    #[test]
    fn a_refused_event_is_recorded_with_its_id_and_reason() {
        let batch = IngestBatch {
            job_id: eye_domain::JobId::generate(),
            application_id: eye_domain::ApplicationId::generate(),
            received_at: Utc::now(),
            events: vec![],
        };
        let event: NewEvent = serde_json::from_value(serde_json::json!({
            "event_id": "0190f0e0-0000-7000-8000-000000000001", "session_id": "s", "category": "c",
            "name": "n", "data": {}, "timestamp": "2021-01-01T00:00:00Z"
        }))
        .expect("valid event");
        let record = storage_refusal(&batch, &event, &StoreError::Database(sea_orm_err()));
        assert_eq!(record.event_id, event.event_id);
        assert_eq!(record.reason.as_str(), "storage_rejected");
        assert_eq!(record.raw["session_id"], "s");
    }

    fn sea_orm_err() -> eye_store::DbErr {
        eye_store::DbErr::Custom("value too long".into())
    }
}
