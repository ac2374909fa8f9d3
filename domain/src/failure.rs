//! One classification of failures, read by the queue's retry policy and by clients.

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryability {
    /// Worth retrying: a lost connection, a timeout, an overloaded or restarting dependency.
    Transient,
    /// Retrying gives the same answer: record it and move on.
    Permanent,
}

/// Implemented by every error that crosses a retry boundary.
pub trait Failure {
    /// How this failure should be treated by whoever retries.
    fn retryability(&self) -> Retryability;

    /// Shorthand for `retryability() == Transient`.
    fn is_transient(&self) -> bool {
        self.retryability() == Retryability::Transient
    }
}
