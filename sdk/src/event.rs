//! The event type sent to The Eye and its builder.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use eye_domain::{
    Category, DeviceId, EventName, SessionId, TextError, TimestampError, UserId, parse_timestamp,
};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Maximum length of a session id, in characters.
pub const MAX_SESSION_ID_CHARS: usize = SessionId::MAX_CHARS;
/// Maximum length of a category or a name, in characters.
pub const MAX_NAME_CHARS: usize = EventName::MAX_CHARS;
/// Maximum length of a user id or a device id, in characters.
pub const MAX_USER_ID_CHARS: usize = UserId::MAX_CHARS;

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
///
/// The rules are the server's own (`eye-domain`), so the SDK refuses exactly what the server
/// refuses: blank text, control characters, text over its length limit, an unreadable timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A text field is blank, too long or holds a control character.
    #[error("`{field}` {reason}")]
    Text {
        /// The field name on the wire.
        field: &'static str,
        /// What is wrong with it.
        reason: TextError,
    },
    /// The timestamp cannot be written in a form the server reads (a year beyond 9999).
    #[error("`timestamp` {reason}")]
    Timestamp {
        /// What the server expects.
        reason: TimestampError,
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

impl EventError {
    /// The field at fault, named as on the wire (`user_id`); `None` if the event is not
    /// serializable at all.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Text { field, .. } => Some(field),
            Self::Timestamp { .. } => Some("timestamp"),
            Self::DataNotObject => Some("data"),
            Self::NotSerializable { .. } => None,
        }
    }
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
    #[serde(serialize_with = "serialize_time")]
    timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
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
        text("session_id", &self.session_id, SessionId::check)?;
        text("category", &self.category, Category::check)?;
        text("name", &self.name, EventName::check)?;
        if let Some(user_id) = &self.user_id {
            text("user_id", user_id, UserId::check)?;
        }
        if let Some(device_id) = &self.device_id {
            text("device_id", device_id, DeviceId::check)?;
        }
        if !self.data.is_object() {
            return Err(EventError::DataNotObject);
        }
        // The server parses the text we write, so check that text, not the value.
        parse_timestamp(&wire_time(&self.timestamp))
            .map_err(|reason| EventError::Timestamp { reason })?;
        Ok(())
    }

    /// Fixes the event's id (a UUIDv7 unless the caller chose one) and returns it.
    pub(crate) fn assign_id(&mut self) -> EventId {
        *self.event_id.get_or_insert_with(EventId::new_v7)
    }
}

fn text(
    field: &'static str,
    value: &str,
    check: fn(&str) -> Result<(), TextError>,
) -> Result<(), EventError> {
    check(value).map_err(|reason| EventError::Text { field, reason })
}

/// How `timestamp` is written on the wire.
fn wire_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn serialize_time<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&wire_time(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("valid timestamp")
            .to_utc()
    }

    #[test]
    fn assigning_an_id_gives_a_v7_id_once_and_keeps_a_chosen_one() {
        let mut event = Event::new("s", "c", "n");
        let id = event.assign_id();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(event.assign_id(), id);
        let chosen = EventId::from(Uuid::nil());
        assert_eq!(
            Event::new("s", "c", "n").event_id(chosen).assign_id(),
            chosen
        );
    }

    fn refused_field(event: &Event) -> Option<(&'static str, TextError)> {
        match event.validate() {
            Err(EventError::Text { field, reason }) => Some((field, reason)),
            _ => None,
        }
    }

    #[test]
    fn text_the_server_refuses_is_refused_naming_the_field_and_the_reason() {
        let ok = || Event::new("s", "c", "n");
        let too_long = |max: usize| TextError::TooLong { max, len: max + 1 };
        let table = [
            (Event::new("", "c", "n"), "session_id", TextError::Empty),
            (Event::new(" \t", "c", "n"), "session_id", TextError::Empty),
            (
                Event::new("x".repeat(129), "c", "n"),
                "session_id",
                too_long(128),
            ),
            (
                Event::new("s", "a\u{0}b", "n"),
                "category",
                TextError::ControlCharacter,
            ),
            (Event::new("s", "c", "é".repeat(65)), "name", too_long(64)),
            (ok().user_id("u\n1"), "user_id", TextError::ControlCharacter),
            (ok().user_id(""), "user_id", TextError::Empty),
            (ok().user_id("u".repeat(129)), "user_id", too_long(128)),
            (
                ok().device_id("d\u{7f}"),
                "device_id",
                TextError::ControlCharacter,
            ),
            (ok().device_id("d".repeat(129)), "device_id", too_long(128)),
        ];
        for (event, field, reason) in table {
            assert_eq!(refused_field(&event), Some((field, reason)), "{event:?}");
        }
    }

    #[test]
    fn text_at_the_limits_is_accepted_and_counted_in_characters() {
        let event = Event::new("s".repeat(128), "é".repeat(64), "n")
            .user_id("ü".repeat(128))
            .device_id("d".repeat(128));
        assert_eq!(event.validate(), Ok(()));
    }

    #[test]
    fn a_payload_that_is_not_an_object_is_refused() {
        let bad_data = Event::new("s", "c", "n").data(json!([1, 2]));
        assert_eq!(bad_data.validate(), Err(EventError::DataNotObject));
    }

    #[test]
    fn a_timestamp_the_server_cannot_read_is_refused() {
        let year_10000 = Utc
            .with_ymd_and_hms(10_000, 1, 1, 0, 0, 0)
            .single()
            .expect("representable");
        let event = Event::new("s", "c", "n").timestamp(year_10000);
        assert!(matches!(
            event.validate(),
            Err(EventError::Timestamp { .. })
        ));
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
