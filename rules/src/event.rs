//! The engine's view of an event.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// An accepted event, borrowed from the caller's own event type.
///
/// The engine reads nothing else, so it depends on no other crate of the workspace.
#[derive(Debug, Clone, Copy)]
pub struct RuleEvent<'a> {
    /// The event's identity; duplicates and replays carry the same one.
    pub event_id: Uuid,
    /// e.g. `fitness`.
    pub category: &'a str,
    /// e.g. `training_program_started`.
    pub name: &'a str,
    /// The application's user; events without one match no rule.
    pub user_id: Option<&'a str>,
    /// The type-specific payload, e.g. `training_program_id`.
    pub data: &'a Map<String, Value>,
    /// When the event occurred (event time, UTC): every rule measures time with it.
    pub timestamp: DateTime<Utc>,
    /// When the service received it; only absence timers use it, to wait for late events.
    pub received_at: DateTime<Utc>,
}
