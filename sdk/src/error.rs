//! Errors of the SDK, one enum per operation, and the single failure classification.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::event::{EventError, EventId};

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
    /// The longest backoff delay between two attempts.
    MaxBackoff,
    /// How long a batch is retried after its first attempt.
    RetryBudget,
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
            Self::MaxBackoff => "max_backoff",
            Self::RetryBudget => "retry_budget",
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

/// How a failed delivery attempt is handled; every failure is classified exactly once, by [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer (connection refused or lost, timeout), 408, 429 or 5xx: retried with backoff.
    Transient,
    /// 413: the batch is split in halves and the halves are retried.
    TooLarge,
    /// 400, 401, 403, other answers, and requests that cannot be built: given up and reported.
    Permanent,
}

/// What went wrong with one attempt, before it is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The server answered with this (non-2xx) status.
    Status(u16),
    /// No answer arrived: connection refused or lost, timeout, a body cut off.
    NoAnswer,
    /// The request could not be built (e.g. a header value the HTTP client refuses): the same
    /// request would fail the same way every time.
    Unbuildable,
    /// Redirects were refused or looped.
    Redirect,
}

impl Cause {
    /// What a failed request of the HTTP client amounts to.
    pub fn of(error: &reqwest::Error) -> Self {
        if error.is_builder() {
            Self::Unbuildable
        } else if error.is_redirect() {
            Self::Redirect
        } else {
            Self::NoAnswer
        }
    }
}

/// The single classification of failed attempts: the retry loop, the 413 split and the give-up
/// all read it, and so does [`SendError::kind`].
pub fn classify(cause: Cause) -> FailureKind {
    match cause {
        Cause::Status(413) => FailureKind::TooLarge,
        Cause::Status(408 | 429 | 500..=599) | Cause::NoAnswer => FailureKind::Transient,
        Cause::Status(_) | Cause::Unbuildable | Cause::Redirect => FailureKind::Permanent,
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
    /// The server refused this event (a 400 naming it); the rest of its batch was sent again.
    #[error("the server refused event {event_id}: {}", field_list(.errors))]
    EventRefused {
        /// The refused event.
        event_id: EventId,
        /// What is wrong with it; `field` is relative to the event (`user_id`).
        errors: Vec<FieldError>,
    },
    /// A transient failure persisted past the retry budget.
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

fn field_list(errors: &[FieldError]) -> String {
    let fields: Vec<String> = errors
        .iter()
        .map(|e| format!("`{}` {}", e.field, e.message))
        .collect();
    fields.join(", ")
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
            Self::Transport(error) => classify(Cause::of(error)),
            Self::Rejected { status, .. } => classify(Cause::Status(*status)),
            Self::EventRefused { .. }
            | Self::RetriesExhausted { .. }
            | Self::InvalidEvent(_)
            | Self::BatchSize { .. } => FailureKind::Permanent,
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
            Self::EventRefused { .. } => Some(400),
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
    fn every_cause_is_classified_once_as_transient_too_large_or_permanent() {
        use Cause::{NoAnswer, Redirect, Status, Unbuildable};
        use FailureKind::{Permanent, TooLarge, Transient};
        let table = [
            (NoAnswer, Transient),
            (Status(408), Transient),
            (Status(429), Transient),
            (Status(500), Transient),
            (Status(502), Transient),
            (Status(503), Transient),
            (Status(504), Transient),
            (Status(599), Transient),
            (Status(413), TooLarge),
            (Status(400), Permanent),
            (Status(401), Permanent),
            (Status(403), Permanent),
            (Status(404), Permanent),
            (Status(409), Permanent),
            (Status(415), Permanent),
            (Status(422), Permanent),
            (Status(304), Permanent),
            (Unbuildable, Permanent),
            (Redirect, Permanent),
        ];
        for (cause, kind) in table {
            assert_eq!(classify(cause), kind, "{cause:?}");
        }
    }

    #[test]
    fn a_request_the_http_client_cannot_build_is_permanent() {
        let error = reqwest::Client::new()
            .post("http://127.0.0.1:9/v1/events")
            .header("authorization", "Bearer a\nb")
            .build()
            .expect_err("a newline is no header value");
        assert_eq!(Cause::of(&error), Cause::Unbuildable);
        assert_eq!(SendError::Transport(error).kind(), FailureKind::Permanent);
    }

    #[test]
    fn a_refused_event_names_its_fields_and_counts_as_a_400() {
        let err = SendError::EventRefused {
            event_id: EventId::from(uuid::Uuid::nil()),
            errors: vec![FieldError {
                field: "user_id".into(),
                message: "must not contain control characters".into(),
            }],
        };
        assert_eq!(
            (err.kind(), err.status()),
            (FailureKind::Permanent, Some(400))
        );
        assert!(
            err.to_string()
                .ends_with("`user_id` must not contain control characters")
        );
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
