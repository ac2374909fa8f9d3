//! What workers report at `/metrics`.

use chrono::Utc;
use eye_domain::IngestBatch;
use eye_store::{InsertOutcome, RejectReason};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of refused events.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The reason code.
    pub reason: String,
}

/// Counters and histograms of the workers (cheap to clone: they share their values).
#[derive(Clone)]
pub struct WorkerMetrics {
    stored: Counter,
    duplicates: Counter,
    refused: Family<ReasonLabel, Counter>,
    unregistered: Counter,
    dead_jobs: Counter,
    lag_seconds: Histogram,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self {
            stored: Counter::default(),
            duplicates: Counter::default(),
            refused: Family::default(),
            unregistered: Counter::default(),
            dead_jobs: Counter::default(),
            // 1 ms .. ~65 s: from a live pipeline to one catching up on a backlog.
            lag_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 17),
            ),
        }
    }
}

impl WorkerMetrics {
    /// Adds the metrics to a registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("eye_events_stored", "Events stored", self.stored.clone());
        registry.register(
            "eye_events_duplicate",
            "Events skipped because they were stored before",
            self.duplicates.clone(),
        );
        registry.register(
            "eye_events_refused",
            "Accepted events that were not stored, by reason",
            self.refused.clone(),
        );
        registry.register(
            "eye_events_unregistered",
            "Events of types without a schema, stored because EYE_UNKNOWN_EVENTS=accept",
            self.unregistered.clone(),
        );
        registry.register(
            "eye_jobs_dead",
            "Jobs moved to the dead-letter store (GET /v1/admin/dead-jobs) after a failure that is not transient",
            self.dead_jobs.clone(),
        );
        registry.register(
            "eye_ingest_lag_seconds",
            "Time from acceptance to storage, per stored event",
            self.lag_seconds.clone(),
        );
    }

    pub(crate) fn record_stored(&self, batch: &IngestBatch, outcome: &InsertOutcome) {
        self.stored.inc_by(outcome.inserted.len() as u64);
        self.duplicates.inc_by(outcome.duplicates);
        let lag = (Utc::now() - batch.received_at).as_seconds_f64().max(0.0);
        for _ in 0..outcome.inserted.len() {
            self.lag_seconds.observe(lag);
        }
    }

    pub(crate) fn record_dead_job(&self) {
        self.dead_jobs.inc();
    }

    pub(crate) fn record_unregistered(&self, count: u64) {
        self.unregistered.inc_by(count);
    }

    pub(crate) fn record_refused(&self, reason: RejectReason, count: usize) {
        let label = ReasonLabel {
            reason: reason.as_str().to_owned(),
        };
        self.refused.get_or_create(&label).inc_by(count as u64);
    }
}
