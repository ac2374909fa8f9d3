//! What request handlers share.

use crate::api::admission::Admission;
use crate::api::auth::KeyCache;
use crate::metrics::ApiMetrics;
use eye_store::{KeyHash, Store};
use eye_worker::{Enqueuer, Processor, Queue};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Shared, cheap-to-clone state of the HTTP API.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    queue: Queue,
    enqueuer: Enqueuer,
    processor: Processor,
    keys: KeyCache,
    metrics: ApiMetrics,
    registry: Registry,
    admin_token: Option<KeyHash>,
    max_body_bytes: usize,
    admission: Admission,
    body_timeout: Duration,
    dry_run_max_events: u64,
}

/// The parts an [`AppState`] is made of.
pub struct AppStateParts {
    /// The database.
    pub store: Store,
    /// The queue.
    pub queue: Queue,
    /// Puts accepted events on the queue (group commit).
    pub enqueuer: Enqueuer,
    /// Processes replayed events exactly like queued ones (validation, storage, rules).
    pub processor: Processor,
    /// Ingest-key cache.
    pub keys: KeyCache,
    /// API metrics (already registered in `registry`).
    pub metrics: ApiMetrics,
    /// Everything `/metrics` exposes.
    pub registry: Registry,
    /// The admin token, if configured.
    pub admin_token: Option<String>,
    /// Body limit.
    pub max_body_bytes: usize,
    /// Ingest admission bounds.
    pub admission: Admission,
    /// How long a body may take to arrive.
    pub body_timeout: Duration,
    /// The most events a rule dry run may read (`EYE_DRY_RUN_MAX_EVENTS`).
    pub dry_run_max_events: u64,
}

impl AppState {
    /// Assembles the state.
    pub fn new(parts: AppStateParts) -> Self {
        Self(Arc::new(Inner {
            store: parts.store,
            queue: parts.queue,
            enqueuer: parts.enqueuer,
            processor: parts.processor,
            keys: parts.keys,
            metrics: parts.metrics,
            registry: parts.registry,
            admin_token: parts.admin_token.as_deref().map(KeyHash::of),
            max_body_bytes: parts.max_body_bytes,
            admission: parts.admission,
            body_timeout: parts.body_timeout,
            dry_run_max_events: parts.dry_run_max_events,
        }))
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The queue.
    pub fn queue(&self) -> &Queue {
        &self.0.queue
    }

    /// Puts accepted events on the queue.
    pub fn enqueuer(&self) -> &Enqueuer {
        &self.0.enqueuer
    }

    /// Processes replayed events exactly like queued ones.
    pub fn processor(&self) -> &Processor {
        &self.0.processor
    }

    /// Ingest-key cache.
    pub fn keys(&self) -> &KeyCache {
        &self.0.keys
    }

    /// API metrics.
    pub fn metrics(&self) -> &ApiMetrics {
        &self.0.metrics
    }

    /// Everything `/metrics` exposes.
    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// The admin token's hash (compared as hashes, so timing reveals nothing about the token).
    pub fn admin_token(&self) -> Option<&KeyHash> {
        self.0.admin_token.as_ref()
    }

    /// Body limit.
    pub fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes
    }

    /// Ingest admission bounds.
    pub fn admission(&self) -> &Admission {
        &self.0.admission
    }

    /// How long a body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        self.0.body_timeout
    }

    /// The most events a rule dry run may read.
    pub fn dry_run_max_events(&self) -> u64 {
        self.0.dry_run_max_events
    }
}
