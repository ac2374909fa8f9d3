//! The verdict on an event: accepted (with the schema version it was checked against) or
//! rejected with a reason code and its detail.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::key::EventTypeKey;
use crate::registry::{Lookup, SchemaRegistry};
use crate::schema::Violation;
use crate::time::{FutureTimestamp, InvalidSentAt, TimeRejection};

/// What to do with an event whose type has no registered schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownEventPolicy {
    /// Store it unvalidated (`schema_version` stays empty).
    Accept,
    /// Reject it as `unknown_event_type`.
    Reject,
}

/// A policy name other than `accept` or `reject`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event policy {0:?}: expected \"accept\" or \"reject\"")]
pub struct InvalidPolicy(pub String);

/// Parses `accept` or `reject` (ASCII case-insensitive, surrounding spaces ignored).
impl FromStr for UnknownEventPolicy {
    type Err = InvalidPolicy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "accept" => Ok(Self::Accept),
            "reject" => Ok(Self::Reject),
            _ => Err(InvalidPolicy(text.to_owned())),
        }
    }
}

/// Why an event was rejected; its [`as_str`](Self::as_str) is the stored reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The data does not match the schema of its event type.
    InvalidPayload,
    /// The timestamp lies in the future, beyond the tolerated skew.
    FutureTimestamp,
    /// No schema is registered for the event type and the policy is to reject.
    UnknownEventType,
    /// The `sent_at` would correct the timestamp to an implausible time.
    InvalidSentAt,
}

impl RejectReason {
    /// The reason code: `invalid_payload`, `future_timestamp`, `unknown_event_type` or `invalid_sent_at`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::FutureTimestamp => "future_timestamp",
            Self::UnknownEventType => "unknown_event_type",
            Self::InvalidSentAt => "invalid_sent_at",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected event's reason, a sentence explaining it, and the schema violations if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    reason: RejectReason,
    detail: String,
    violations: Vec<Violation>,
}

impl Rejection {
    /// The data of an event of type `key` violates schema `version`.
    pub fn invalid_payload(key: &EventTypeKey, version: u32, violations: Vec<Violation>) -> Self {
        let detail = format!(
            "data of {key} violates schema version {version} in {} place(s)",
            violations.len()
        );
        Self {
            reason: RejectReason::InvalidPayload,
            detail,
            violations,
        }
    }

    /// No schema is registered for `key`.
    pub fn unknown_event_type(key: &EventTypeKey) -> Self {
        Self {
            reason: RejectReason::UnknownEventType,
            detail: format!("no schema is registered for event type {key}"),
            violations: Vec::new(),
        }
    }

    /// The reason code.
    pub fn reason(&self) -> RejectReason {
        self.reason
    }

    /// A sentence explaining the rejection.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The schema violations (empty unless the reason is [`RejectReason::InvalidPayload`]).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }
}

impl From<FutureTimestamp> for Rejection {
    fn from(future: FutureTimestamp) -> Self {
        Self {
            reason: RejectReason::FutureTimestamp,
            detail: future.detail(),
            violations: Vec::new(),
        }
    }
}

impl From<InvalidSentAt> for Rejection {
    fn from(invalid: InvalidSentAt) -> Self {
        Self {
            reason: RejectReason::InvalidSentAt,
            detail: invalid.to_string(),
            violations: Vec::new(),
        }
    }
}

impl From<TimeRejection> for Rejection {
    fn from(rejection: TimeRejection) -> Self {
        match rejection {
            TimeRejection::Future(future) => future.into(),
            TimeRejection::InvalidSentAt(invalid) => invalid.into(),
        }
    }
}

/// The outcome of judging an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The event is accepted.
    Valid {
        /// The schema version the data was checked against; `None` for an unregistered type
        /// accepted by [`UnknownEventPolicy::Accept`].
        schema_version: Option<u32>,
    },
    /// The event is rejected.
    Invalid(Rejection),
}

impl SchemaRegistry {
    /// Judges the data of an event of type `key` against the registered schema, applying
    /// `policy` when none is registered.
    ///
    /// Time is judged separately by [`judge_time`](crate::judge_time); its
    /// [`TimeRejection`] converts into a [`Rejection`].
    pub fn judge(&self, key: &EventTypeKey, data: &Value, policy: UnknownEventPolicy) -> Verdict {
        match self.lookup(key) {
            Lookup::Known { version, schema } => match schema.validate(data) {
                Ok(()) => Verdict::Valid {
                    schema_version: Some(version),
                },
                Err(violations) => {
                    Verdict::Invalid(Rejection::invalid_payload(key, version, violations))
                }
            },
            Lookup::Unknown => match policy {
                UnknownEventPolicy::Accept => Verdict::Valid {
                    schema_version: None,
                },
                UnknownEventPolicy::Reject => Verdict::Invalid(Rejection::unknown_event_type(key)),
            },
        }
    }
}

#[cfg(test)]
mod tests;
