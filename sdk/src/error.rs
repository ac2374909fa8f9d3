//! Errors of the SDK, one enum per operation, and the single failure classification.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::event::EventError;

/// A setting of [`ClientBuilder`](crate::ClientBuilder), named in [`BuildError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The server's base URL.
    BaseUrl,
    /// The ingest key sent as bearer token.
    IngestKey,
    /// The maximum number of events per batch.
    MaxBatchEvents,
    /// The maximum size of a request body in bytes.
    MaxBatchBytes,
    /// How long a partial batch waits for more events.
    Linger,
    /// How many events may be buffered (including those being delivered).
    BufferCapacity,
    /// The timeout of one HTTP request.
    RequestTimeout,
    /// The first backoff delay before a retry.
    InitialBackoff,
    /// The total time one batch may spend waiting between retries.
    MaxTotalBackoff,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::BaseUrl => "base_url",
            Self::IngestKey => "ingest_key",
            Self::MaxBatchEvents => "max_batch_events",
            Self::MaxBatchBytes => "max_batch_bytes",
            Self::Linger => "linger",
            Self::BufferCapacity => "buffer_capacity",
            Self::RequestTimeout => "request_timeout",
            Self::InitialBackoff => "initial_backoff",
            Self::MaxTotalBackoff => "max_total_backoff",
        };
        f.write_str(name)
    }
}

/// Why [`ClientBuilder::build`](crate::ClientBuilder::build) refused the settings.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A setting is out of its allowed range.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidSetting {
        /// The offending setting.
        setting: Setting,
        /// What the setting must satisfy.
        reason: String,
    },
    /// `build` was called outside a Tokio runtime, so the background task cannot start.
    #[error("Client::build must be called inside a Tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be created.
    #[error("could not create the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// How a failed delivery attempt is handled; every failure is classified exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Connection lost, timeout, 429 or 5xx: retried with backoff.
    Transient,
    /// 413: the batch is split in halves and the halves are retried.
    TooLarge,
    /// 400, 401, 403 and anything else: given up and reported.
    Permanent,
}

impl FailureKind {
    /// Classifies an HTTP status code of a failed request.
    pub fn from_status(status: u16) -> Self {
        match status {
            413 => Self::TooLarge,
            429 | 500..=599 => Self::Transient,
            _ => Self::Permanent,
        }
    }
}

/// One field error of an RFC 9457 problem.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    /// Path of the field, e.g. `events[3].timestamp`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The RFC 9457 problem document the server answers errors with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// URI identifying the problem type.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Short human-readable summary.
    #[serde(default)]
    pub title: String,
    /// HTTP status code.
    #[serde(default)]
    pub status: u16,
    /// Human-readable explanation of this occurrence.
    #[serde(default)]
    pub detail: Option<String>,
    /// Per-field validation errors, if any.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// Why a batch was not (entirely) accepted.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The request failed before an answer arrived (connection error, timeout).
    #[error("request failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server answered with an error status.
    #[error("server answered {status}{}", problem_suffix(.problem))]
    Rejected {
        /// The HTTP status code.
        status: u16,
        /// The problem document, when the body was one.
        problem: Option<Box<Problem>>,
        /// The parsed `Retry-After` header, when present.
        retry_after: Option<Duration>,
    },
    /// A transient failure persisted past the retry limits.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// How many requests were made.
        attempts: u32,
        /// The last failure.
        last: Box<SendError>,
    },
    /// An event was refused locally before sending.
    #[error("invalid event: {0}")]
    InvalidEvent(#[from] EventError),
    /// `send` was called with no events or more than the batch limits allow.
    #[error(
        "batch of {events} events ({bytes} bytes) is outside 1..={max_events} events / {max_bytes} bytes"
    )]
    BatchSize {
        /// Events in the batch.
        events: usize,
        /// Encoded body size.
        bytes: usize,
        /// The configured event limit.
        max_events: usize,
        /// The configured byte limit.
        max_bytes: usize,
    },
}

fn problem_suffix(problem: &Option<Box<Problem>>) -> String {
    match problem {
        Some(p) => match &p.detail {
            Some(detail) => format!(": {}: {detail}", p.title),
            None => format!(": {}", p.title),
        },
        None => String::new(),
    }
}

impl SendError {
    /// The classification that decides between retry, split and give-up.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Transport(_) => FailureKind::Transient,
            Self::Rejected { status, .. } => FailureKind::from_status(*status),
            Self::RetriesExhausted { .. } | Self::InvalidEvent(_) | Self::BatchSize { .. } => {
                FailureKind::Permanent
            }
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == FailureKind::Transient
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } => Some(*status),
            Self::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The server's `Retry-After` hint, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Rejected { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Why [`Client::track`](crate::Client::track) refused an event.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// The buffer holds `capacity` events already (policy `FailFast`, or `try_track`).
    #[error("event buffer is full ({capacity} events)")]
    BufferFull {
        /// The configured buffer capacity.
        capacity: usize,
    },
    /// The client was shut down.
    #[error("the client is shut down")]
    Closed,
    /// The event breaks the server's rules and would get its whole batch rejected.
    #[error("invalid event: {0}")]
    InvalidEvent(#[from] EventError),
    /// The encoded event alone exceeds the batch byte limit.
    #[error("event is {bytes} bytes, more than the batch limit of {limit} bytes")]
    EventTooLarge {
        /// Encoded size of the event.
        bytes: usize,
        /// The configured `max_batch_bytes`.
        limit: usize,
    },
}

/// Why [`Client::flush`](crate::Client::flush) or [`Client::shutdown`](crate::Client::shutdown)
/// did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// Some events failed permanently; `summary` counts them, `error` is the first failure.
    #[error("{} events failed permanently: {error}", summary.failed)]
    Failed {
        /// Counts since the previous flush.
        summary: crate::FlushSummary,
        /// The first permanent failure.
        error: SendError,
    },
    /// The deadline passed; the background task was stopped with `unsent` events undelivered.
    #[error("deadline passed with {unsent} events not sent")]
    DeadlineExceeded {
        /// Events that were still buffered or in flight.
        unsent: u64,
    },
    /// The client was already shut down.
    #[error("the client is shut down")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_once_as_transient_too_large_or_permanent() {
        let table = [
            (400, FailureKind::Permanent),
            (401, FailureKind::Permanent),
            (403, FailureKind::Permanent),
            (404, FailureKind::Permanent),
            (413, FailureKind::TooLarge),
            (429, FailureKind::Transient),
            (500, FailureKind::Transient),
            (502, FailureKind::Transient),
            (503, FailureKind::Transient),
        ];
        for (status, kind) in table {
            assert_eq!(FailureKind::from_status(status), kind, "status {status}");
        }
    }

    #[test]
    fn exhausted_retries_are_permanent_and_keep_the_last_status() {
        let last = SendError::Rejected {
            status: 503,
            problem: None,
            retry_after: None,
        };
        let err = SendError::RetriesExhausted {
            attempts: 3,
            last: Box::new(last),
        };
        assert!(!err.is_transient());
        assert_eq!(err.status(), Some(503));
    }

    #[test]
    fn a_problem_document_is_read_with_its_field_errors() {
        let body = r#"{"type":"about:blank","title":"Bad events","status":400,
            "detail":"1 invalid","errors":[{"field":"events[3].timestamp","message":"bad"}]}"#;
        let problem: Problem = serde_json::from_str(body).expect("valid problem");
        assert_eq!(problem.errors[0].field, "events[3].timestamp");
        let err = SendError::Rejected {
            status: 400,
            problem: Some(Box::new(problem)),
            retry_after: None,
        };
        assert_eq!(
            err.to_string(),
            "server answered 400: Bad events: 1 invalid"
        );
    }

    #[test]
    fn settings_are_named_like_the_builder_methods() {
        assert_eq!(Setting::MaxBatchBytes.to_string(), "max_batch_bytes");
    }
}
