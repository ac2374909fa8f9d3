//! The Eye's workers: the queue between API and storage, and what happens to each queued batch.

mod metrics;
mod processor;
pub mod queue;
mod runner;

pub use metrics::WorkerMetrics;
pub use processor::{ProcessError, Processor, RetrySettings};
pub use queue::{Queue, QueueBackend, QueueConfig, QueueError};
pub use runner::{WorkerOptions, run_workers};
