//! The event type sent to The Eye and its builder.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Maximum length of a session id, in characters.
pub const MAX_SESSION_ID_CHARS: usize = 128;
/// Maximum length of a category or a name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The unique id of an event; fixed before the first send so retries never duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A new time-ordered (UUIDv7) id.
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for EventId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why an event would be rejected by the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A text field is empty or too long.
    #[error("`{field}` must be 1..={max} characters, got {len}")]
    Length {
        /// The field name on the wire.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The maximum allowed.
        max: usize,
    },
    /// `data` is not a JSON object.
    #[error("`data` must be a JSON object")]
    DataNotObject,
    /// The event could not be serialized to JSON.
    #[error("event is not serializable: {message}")]
    NotSerializable {
        /// The serializer's message.
        message: String,
    },
}

/// One event, serialized exactly as the server's `EventIn`.
///
/// ```
/// use eye_sdk::Event;
/// use serde_json::json;
///
/// let event = Event::new("session-1", "fitness", "app_launch")
///     .data(json!({"screen": "home"}))
///     .user_id("user-7")
///     .device_id("device-3");
/// assert_eq!(event.name(), "app_launch");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<EventId>,
    session_id: String,
    category: String,
    name: String,
    data: Value,
    timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<DateTime<Utc>>,
}

impl Event {
    /// A new event that happened now, with empty `data`.
    pub fn new(
        session_id: impl Into<String>,
        category: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            event_id: None,
            session_id: session_id.into(),
            category: category.into(),
            name: name.into(),
            data: Value::Object(Map::new()),
            timestamp: Utc::now(),
            user_id: None,
            device_id: None,
            sent_at: None,
        }
    }

    /// Sets the payload; it must be a JSON object.
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// Sets when the event happened (defaults to the moment of [`Event::new`]).
    pub fn timestamp(mut self, at: DateTime<Utc>) -> Self {
        self.timestamp = at;
        self
    }

    /// Sets the user the event belongs to.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the device the event comes from.
    pub fn device_id(mut self, device_id: impl Into<String>) -> Self {
        self.device_id = Some(device_id.into());
        self
    }

    /// Sets the event id explicitly (otherwise a UUIDv7 is assigned when tracked).
    pub fn event_id(mut self, id: EventId) -> Self {
        self.event_id = Some(id);
        self
    }

    /// Sets when the client sent the event (otherwise the moment it is tracked).
    pub fn sent_at(mut self, at: DateTime<Utc>) -> Self {
        self.sent_at = Some(at);
        self
    }

    /// The event id, if assigned yet.
    pub fn id(&self) -> Option<EventId> {
        self.event_id
    }

    /// The session id.
    pub fn session(&self) -> &str {
        &self.session_id
    }

    /// The category.
    pub fn category(&self) -> &str {
        &self.category
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The payload.
    pub fn payload(&self) -> &Value {
        &self.data
    }

    /// The user id, if any.
    pub fn user(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The device id, if any.
    pub fn device(&self) -> Option<&str> {
        self.device_id.as_deref()
    }

    /// When the event happened.
    pub fn happened_at(&self) -> DateTime<Utc> {
        self.timestamp
    }

    /// Checks the server's rules so one bad event cannot get a whole batch rejected.
    pub fn validate(&self) -> Result<(), EventError> {
        check_length("session_id", &self.session_id, MAX_SESSION_ID_CHARS)?;
        check_length("category", &self.category, MAX_NAME_CHARS)?;
        check_length("name", &self.name, MAX_NAME_CHARS)?;
        if !self.data.is_object() {
            return Err(EventError::DataNotObject);
        }
        Ok(())
    }

    /// Validates the event, fixes its id and `sent_at`, and returns the id.
    pub(crate) fn prepare(&mut self, now: DateTime<Utc>) -> Result<EventId, EventError> {
        self.validate()?;
        let id = *self.event_id.get_or_insert_with(EventId::new_v7);
        self.sent_at.get_or_insert(now);
        Ok(id)
    }
}

fn check_length(field: &'static str, value: &str, max: usize) -> Result<(), EventError> {
    let len = value.chars().count();
    if (1..=max).contains(&len) {
        Ok(())
    } else {
        Err(EventError::Length { field, len, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("valid timestamp")
            .to_utc()
    }

    #[test]
    fn preparing_assigns_a_v7_id_and_sent_at_when_absent() {
        let now = at("2025-01-02T03:04:05Z");
        let mut event = Event::new("s", "c", "n");
        let id = event.prepare(now).expect("valid event");
        assert_eq!(event.id(), Some(id));
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(event.sent_at, Some(now));
    }

    #[test]
    fn preparing_keeps_an_id_and_sent_at_the_caller_chose() {
        let chosen = EventId::from(Uuid::nil());
        let sent = at("2025-01-01T00:00:00Z");
        let mut event = Event::new("s", "c", "n").event_id(chosen).sent_at(sent);
        assert_eq!(event.prepare(Utc::now()).expect("valid event"), chosen);
        assert_eq!(event.sent_at, Some(sent));
    }

    #[test]
    fn events_breaking_the_server_rules_are_refused() {
        let long_session = "x".repeat(129);
        let long_name = "é".repeat(65);
        let table = [
            (Event::new("", "c", "n"), "session_id"),
            (Event::new(long_session.as_str(), "c", "n"), "session_id"),
            (Event::new("s", "", "n"), "category"),
            (Event::new("s", "c", long_name.as_str()), "name"),
        ];
        for (event, field) in table {
            match event.validate() {
                Err(EventError::Length { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected a length error on {field}, got {other:?}"),
            }
        }
        let bad_data = Event::new("s", "c", "n").data(json!([1, 2]));
        assert_eq!(bad_data.validate(), Err(EventError::DataNotObject));
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let name = "é".repeat(64);
        assert_eq!(Event::new("s", "c", name).validate(), Ok(()));
    }

    #[test]
    fn an_event_serializes_as_the_servers_event_in_without_absent_fields() {
        let event = Event::new("s1", "fitness", "app_launch")
            .timestamp(at("2025-01-02T03:04:05Z"))
            .user_id("u1");
        let json = serde_json::to_value(&event).expect("serializable");
        assert_eq!(
            json,
            json!({"session_id": "s1", "category": "fitness", "name": "app_launch",
                   "data": {}, "timestamp": "2025-01-02T03:04:05Z", "user_id": "u1"})
        );
    }
}
