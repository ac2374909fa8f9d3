//! The Eye's workers: the queue between API and storage, and what happens to each queued batch.

mod metrics;
pub mod notify;
mod processor;
pub mod queue;
mod registry;
mod replay;
pub mod rules;
mod runner;
mod validate;

pub use metrics::WorkerMetrics;
pub use processor::{ProcessError, Processor, RetrySettings};
pub use queue::{Enqueuer, GroupingSettings, Queue, QueueBackend, QueueConfig, QueueError};
pub use registry::{RegistryWatcher, keep_registry_fresh, load_registry, seed_builtin_schemas};
pub use replay::{ReplayOutcome, replay_errors};
pub use runner::{WorkerOptions, run_workers};
pub use validate::{Judged, Validator};
