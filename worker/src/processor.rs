//! What happens to every batch of events, however it arrives (a queued job, a redelivered one, a replayed
//! error or dead job): validate against the latest schemas, store and evaluate the rules in one unit of
//! work, count. One path, the
//! same guarantees:
//! - a transient failure (connection, resources, read-only, timeout, serialization, deadlock) is retried
//!   for as long as it lasts, so no attempt limit can drop an acknowledged job;
//! - an event the database refuses is recorded as an error, and its batch mates are stored;
//! - a job that fails for any other reason is kept whole in the dead-letter store, never abandoned.

use crate::liveness::Liveness;
use crate::metrics::WorkerMetrics;
use crate::registry::RegistryWatcher;
use crate::retry::{Retry, RetrySettings, Stopped};
use crate::rules::RuleReactor;
use crate::validate::{Judged, Validator, error_record};
use apalis::prelude::{Attempt, Data};
use eye_domain::{Failure, IngestBatch, NewEvent, Retryability};
use eye_store::{
    EventRecord, IngestErrorRecord, InsertOutcome, InsertedEvent, RejectReason, Store, StoreError,
    StoredBatch,
};
use tokio_util::sync::CancellationToken;

/// A batch was not processed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Shutdown came (or a bounded retry budget ran out) while the database kept failing; the queue hands
    /// the job out again.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] StoreError),
    /// The batch failed for a reason that is not transient (e.g. a rule state that cannot be read); a
    /// queued job goes to the dead-letter store.
    #[error("processing failed: {0}")]
    Failed(#[source] StoreError),
}

/// Why one unit of work failed: storing the events (the fallback stores them one by one), or evaluating the
/// rules (nothing about the events would change that).
#[derive(Debug, thiserror::Error)]
enum UnitError {
    #[error("{0}")]
    Storage(#[source] StoreError),
    #[error("notification rules: {0}")]
    Rules(#[source] StoreError),
}

impl Failure for UnitError {
    fn retryability(&self) -> Retryability {
        match self {
            Self::Storage(err) | Self::Rules(err) => err.retryability(),
        }
    }
}

/// What processing a batch did.
#[derive(Debug, Clone, Default)]
pub struct Processed {
    /// Events stored now, and those stored before.
    pub stored: InsertOutcome,
    /// Events recorded as errors (refused by validation or by the database), with why.
    pub refused: Vec<IngestErrorRecord>,
}

/// Everything a worker needs to process batches (cheap to clone).
#[derive(Clone)]
pub struct Processor {
    store: Store,
    validator: Validator,
    metrics: WorkerMetrics,
    retry: Retry,
    registry: Option<RegistryWatcher>,
    rules: Option<RuleReactor>,
    liveness: Option<Liveness>,
}

/// The apalis job function.
pub async fn handle_batch(
    batch: IngestBatch,
    processor: Data<Processor>,
    attempt: Attempt,
) -> Result<(), ProcessError> {
    processor.handle(&batch, attempt.current()).await
}

impl Processor {
    /// A processor validating with `validator`, storing into `store`, reporting into `metrics`; it retries
    /// transient failures until they pass or `shutdown` fires.
    pub fn new(
        store: Store,
        validator: Validator,
        metrics: WorkerMetrics,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            validator,
            metrics,
            retry: Retry::new(RetrySettings::default(), shutdown),
            registry: None,
            rules: None,
            liveness: None,
        }
    }

    /// Makes sure, before judging each batch, that the schemas are those of the latest publish or retirement
    /// (one single-row read per batch), so a schema applies to every event accepted after its publish call
    /// answered.
    pub fn with_registry(mut self, registry: RegistryWatcher) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Feeds every newly stored event to the notification rules, in the same unit of work.
    pub fn with_rules(mut self, rules: RuleReactor) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Replaces the retry budget for transient failures (e.g. a bounded one for a request that waits).
    pub fn with_retry(mut self, settings: RetrySettings) -> Self {
        self.retry = self.retry.with_settings(settings);
        self
    }

    /// Reports each job's progress to a worker's supervisor.
    pub(crate) fn with_liveness(mut self, liveness: Liveness) -> Self {
        self.liveness = Some(liveness);
        self
    }

    /// Processes a queued job: acknowledged once it is stored or dead-lettered, handed back to the queue
    /// only when shutdown interrupts it.
    async fn handle(&self, batch: &IngestBatch, attempt: usize) -> Result<(), ProcessError> {
        let _busy = self.liveness.as_ref().map(Liveness::busy);
        match self.process(batch).await {
            Ok(_) => Ok(()),
            Err(ProcessError::Failed(err)) => self.dead_letter(batch, &err, attempt).await,
            Err(unavailable) => Err(unavailable),
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Keeps the whole job in the dead-letter store, where operators list and replay it.
    async fn dead_letter(
        &self,
        batch: &IngestBatch,
        err: &StoreError,
        attempt: usize,
    ) -> Result<(), ProcessError> {
        tracing::error!(job = %batch.job_id, error = %err, "job failed for good; moving it to the dead jobs");
        let error = err.to_string();
        let attempts = u32::try_from(attempt + 1).unwrap_or(u32::MAX);
        self.retry
            .run(|| self.store.record_dead_job(batch, &error, attempts))
            .await
            .map_err(|stopped| match stopped {
                Stopped::Permanent(err) | Stopped::GaveUp(err) => ProcessError::Unavailable(err),
            })?;
        self.metrics.record_dead_job();
        Ok(())
    }

    /// Validates the batch, stores the valid events and records the refused ones, and evaluates the rules
    /// on the new events, in one unit of work. If the database refuses the batch as a whole, stores its
    /// events one by one so that one bad event cannot block the rest.
    #[tracing::instrument(skip_all, fields(job = %batch.job_id, events = batch.events.len()), err)]
    pub async fn process(&self, batch: &IngestBatch) -> Result<Processed, ProcessError> {
        if let Some(registry) = &self.registry {
            self.retry
                .run(|| registry.ensure_fresh())
                .await
                .map_err(|stopped| stopped_error(stopped.map(UnitError::Storage)))?;
        }
        let judged = self.validator.judge(batch);
        let stored = match self.store_unit(batch, &judged.valid, &judged.refused).await {
            Ok(stored) => stored,
            Err(Stopped::Permanent(UnitError::Storage(err))) => {
                tracing::warn!(error = %err, "batch refused; storing its events one by one");
                return self.store_one_by_one(batch, &judged).await;
            }
            Err(stopped) => return Err(stopped_error(stopped)),
        };
        self.count(batch, &judged, &stored, 0);
        Ok(Processed {
            stored,
            refused: judged.refused,
        })
    }

    /// One unit of work, retried while it fails transiently.
    async fn store_unit(
        &self,
        batch: &IngestBatch,
        events: &[EventRecord<'_>],
        refused: &[IngestErrorRecord],
    ) -> Result<InsertOutcome, Stopped<UnitError>> {
        let stored = StoredBatch {
            application_id: batch.application_id,
            received_at: batch.received_at,
            events,
            refused,
        };
        self.retry.run(|| self.try_unit(stored)).await
    }

    async fn try_unit(&self, stored: StoredBatch<'_>) -> Result<InsertOutcome, UnitError> {
        let mut txn = self
            .store
            .begin_ingest()
            .await
            .map_err(UnitError::Storage)?;
        let outcome = txn.insert_batch(stored).await.map_err(UnitError::Storage)?;
        if let Some(rules) = &self.rules {
            rules
                .react(&txn, stored, &outcome.inserted)
                .await
                .map_err(UnitError::Rules)?;
        }
        txn.commit().await.map_err(UnitError::Storage)?;
        Ok(outcome)
    }

    async fn store_one_by_one(
        &self,
        batch: &IngestBatch,
        judged: &Judged<'_>,
    ) -> Result<Processed, ProcessError> {
        let mut stored = InsertOutcome::default();
        let mut refused = judged.refused.clone();
        for (position, record) in judged.valid.iter().enumerate() {
            match self
                .store_unit(batch, std::slice::from_ref(record), &[])
                .await
            {
                Ok(outcome) => {
                    // Each unit stored one record: its place is the one it has among the valid ones.
                    let inserted = outcome.inserted.into_iter();
                    stored.inserted.extend(inserted.map(|event| InsertedEvent {
                        record: position,
                        ..event
                    }));
                    stored.duplicates += outcome.duplicates;
                    stored.withheld += outcome.withheld;
                }
                Err(Stopped::Permanent(UnitError::Storage(err))) => {
                    refused.push(storage_refusal(batch, record.event, &err));
                }
                Err(stopped) => return Err(stopped_error(stopped)),
            }
        }
        self.retry
            .run(|| self.store.record_ingest_errors(&refused))
            .await
            .map_err(|stopped| stopped_error(stopped.map(UnitError::Storage)))?;
        self.count(batch, judged, &stored, refused.len() - judged.refused.len());
        Ok(Processed { stored, refused })
    }

    fn count(
        &self,
        batch: &IngestBatch,
        judged: &Judged<'_>,
        stored: &InsertOutcome,
        storage_refused: usize,
    ) {
        self.metrics.record_stored(batch, stored);
        self.metrics.record_unregistered(judged.unregistered);
        for refused in &judged.refused {
            self.metrics.record_refused(refused.reason, 1);
        }
        self.metrics
            .record_refused(RejectReason::StorageRejected, storage_refused);
        let withheld = usize::try_from(stored.withheld).unwrap_or(usize::MAX);
        self.metrics
            .record_refused(RejectReason::ErasedUser, withheld);
    }
}

/// A stopped retry as the caller sees it: interrupted while unavailable, or failed for good.
fn stopped_error(stopped: Stopped<UnitError>) -> ProcessError {
    match stopped {
        Stopped::GaveUp(UnitError::Storage(err) | UnitError::Rules(err)) => {
            ProcessError::Unavailable(err)
        }
        Stopped::Permanent(UnitError::Storage(err) | UnitError::Rules(err)) => {
            ProcessError::Failed(err)
        }
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

    #[test]
    fn a_failing_rule_evaluation_fails_the_job_and_a_storage_refusal_stays_a_storage_one() {
        let rules = stopped_error(Stopped::Permanent(UnitError::Rules(StoreError::Database(
            sea_orm_err(),
        ))));
        assert!(matches!(rules, ProcessError::Failed(_)));
        let interrupted = stopped_error(Stopped::GaveUp(UnitError::Storage(StoreError::Database(
            sea_orm_err(),
        ))));
        assert!(matches!(interrupted, ProcessError::Unavailable(_)));
    }

    fn sea_orm_err() -> eye_store::DbErr {
        eye_store::DbErr::Custom("value too long".into())
    }
}
