//! The Eye's workers: the queue between API and storage, and what happens to each queued batch.

mod count_folder;
mod liveness;
mod metrics;
pub mod notify;
mod processor;
pub mod queue;
mod registry;
mod replay;
mod retention;
mod retry;
pub mod rules;
mod runner;
mod validate;

pub use count_folder::CountFolder;
pub use metrics::WorkerMetrics;
pub use processor::{ProcessError, Processed, Processor};
pub use queue::{
    Enqueuer, GroupingSettings, Queue, QueueBackend, QueueConfig, QueueError, Watermark,
};
pub use registry::{RegistryWatcher, load_registry, seed_builtin_schemas};
pub use replay::{ReplayFailure, ReplayOutcome, replay_errors};
pub use retention::{RetentionSettings, RetentionSweeper};
pub use retry::RetrySettings;
pub use runner::{WorkerOptions, run_workers};
pub use validate::{Judged, Validator};
