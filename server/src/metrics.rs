//! What the API reports at `/metrics` (the workers' metrics are registered beside these).

use prometheus_client::encoding::text::encode as encode_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters of the API (cheap to clone: they share their values).
#[derive(Clone, Default)]
pub struct ApiMetrics {
    accepted: Counter,
    queue_depth: Gauge,
    dead_jobs: Gauge,
    refused: Family<Vec<(String, String)>, Counter>,
    key_lookups: Family<Vec<(String, String)>, Counter>,
}

/// Which kind of key a verification looked up in the database.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    /// An application's ingest key.
    Ingest,
    /// An analyst's read key (`eyr_…`).
    Read,
}

impl KeyKind {
    fn label(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
        }
    }
}

/// Why an ingest request was answered 503 (nothing was queued).
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// The admission bounds were full until the request's deadline.
    Capacity,
    /// The queue did not take the events (failed, or not before the deadline).
    Queue,
    /// The key could not be verified while the database was unreachable.
    KeyUnverifiable,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::Capacity => "capacity",
            Self::Queue => "queue",
            Self::KeyUnverifiable => "key_unverifiable",
        }
    }
}

impl ApiMetrics {
    /// Adds the metrics to a registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "eye_events_accepted",
            "Events accepted into the queue",
            self.accepted.clone(),
        );
        registry.register(
            "eye_queue_depth",
            "Jobs waiting in the queue",
            self.queue_depth.clone(),
        );
        registry.register(
            "eye_dead_jobs",
            "Dead jobs not replayed yet (counted at scrape time)",
            self.dead_jobs.clone(),
        );
        registry.register(
            "eye_ingest_refused",
            "Ingest requests answered 503 (nothing queued), by reason",
            self.refused.clone(),
        );
        registry.register(
            "eye_key_lookups",
            "Key verifications that reached the database (not answered from the key cache), by kind of key",
            self.key_lookups.clone(),
        );
    }

    /// Counts a key verification that reached the database.
    pub fn record_key_lookup(&self, kind: KeyKind) {
        let key = vec![("key".to_owned(), kind.label().to_owned())];
        self.key_lookups.get_or_create(&key).inc();
    }

    /// Counts an ingest request answered 503.
    pub fn record_refused(&self, refusal: Refusal) {
        let reason = vec![("reason".to_owned(), refusal.label().to_owned())];
        self.refused.get_or_create(&reason).inc();
    }

    /// Counts accepted events.
    pub fn record_accepted(&self, events: u64) {
        self.accepted.inc_by(events);
    }

    /// Sets the number of dead jobs not replayed yet.
    pub fn set_dead_jobs(&self, count: u64) {
        self.dead_jobs.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets the last observed queue depth.
    pub fn set_queue_depth(&self, depth: u64) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
}

/// The registry in Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(err) = encode_text(&mut out, registry) {
        tracing::error!(error = %err, "encoding metrics failed");
    }
    out
}
