//! An accepted event, as the worker receives it.

use crate::{Category, DeviceId, EventId, EventName, SessionId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

/// An event type: category and name together decide which payload validation applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventType {
    /// e.g. `page interaction`.
    pub category: Category,
    /// e.g. `pageview`.
    pub name: EventName,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.category, self.name)
    }
}

/// An event's `data`: always a JSON object (possibly empty). It is kept as the JSON value itself, so a
/// schema judges it in place: building a value for each event, as a map kept apart required, cost a tenth
/// of the worker's CPU (BENCHMARKS.md, "The fifth round").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Payload(Value);

impl Default for Payload {
    fn default() -> Self {
        Self(Value::Object(Map::new()))
    }
}

/// The fields of a payload that is not an object, which no constructor makes.
static NO_FIELDS: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

impl Payload {
    /// Where an event keeps what its sender's protocol carried besides the payload (the Segment
    /// envelope: `context`, `integrations`, ids, ...). Queries return it with the payload; schemas judge
    /// the payload without it, so one schema holds for a type whichever way its events arrive.
    pub const ENVELOPE_KEY: &'static str = "$segment";

    /// Accepts only a JSON object; anything else is handed back.
    pub fn from_value(value: Value) -> Result<Self, Value> {
        match value {
            Value::Object(_) => Ok(Self(value)),
            other => Err(other),
        }
    }

    /// The payload's fields.
    pub fn fields(&self) -> &Map<String, Value> {
        self.0.as_object().unwrap_or(&NO_FIELDS)
    }

    /// The payload as an owned JSON value (for storage).
    pub fn to_value(&self) -> Value {
        self.0.clone()
    }

    /// The payload as its type's schema judges it: without the envelope ([`Self::ENVELOPE_KEY`]), which
    /// only the events of the Segment endpoint carry; the others are judged as they are, uncopied.
    pub fn schema_view(&self) -> Cow<'_, Value> {
        if !self.fields().contains_key(Self::ENVELOPE_KEY) {
            return Cow::Borrowed(&self.0);
        }
        let mut fields = self.fields().clone();
        fields.remove(Self::ENVELOPE_KEY);
        Cow::Owned(Value::Object(fields))
    }
}

impl From<Map<String, Value>> for Payload {
    fn from(map: Map<String, Value>) -> Self {
        Self(Value::Object(map))
    }
}

impl<'de> Deserialize<'de> for Payload {
    /// Only an object: a queued job is checked as strictly as a request.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from)
    }
}

/// An event that passed the shape checks at the edge and waits to be validated and stored. In a queued job
/// its type's two parts sit beside the other fields, as clients send them (see [`QueuedEvent`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "QueuedEvent")]
pub struct NewEvent {
    /// The event's identity; a retried or duplicated event has the same one and is stored once.
    pub event_id: EventId,
    /// The session as the application named it.
    pub session_id: SessionId,
    /// Category and name.
    pub event_type: EventType,
    /// Type-specific payload.
    pub data: Payload,
    /// When the event occurred, by the sending device's clock.
    pub timestamp: DateTime<Utc>,
    /// When the device sent it, by the same clock (lets the service correct the device's clock skew).
    pub sent_at: Option<DateTime<Utc>>,
    /// The application's user, when known.
    pub user_id: Option<UserId>,
    /// The device, when known.
    pub device_id: Option<DeviceId>,
}

/// An event as a queued job holds it: [`NewEvent`] with `category` and `name` as fields of their own.
///
/// Spelled out rather than `#[serde(flatten)]` on the event's type: serde reads a struct with a flattened
/// field through a generic buffer, so every event's fields, its whole payload included, were built twice
/// while a job was decoded, and the worker spent a quarter of its CPU decoding jobs (BENCHMARKS.md, "The
/// sixth round"). The JSON is the same either way.
#[derive(Deserialize)]
struct QueuedEvent {
    event_id: EventId,
    session_id: SessionId,
    category: Category,
    name: EventName,
    #[serde(default)]
    data: Payload,
    timestamp: DateTime<Utc>,
    #[serde(default)]
    sent_at: Option<DateTime<Utc>>,
    #[serde(default)]
    user_id: Option<UserId>,
    #[serde(default)]
    device_id: Option<DeviceId>,
}

impl From<QueuedEvent> for NewEvent {
    fn from(queued: QueuedEvent) -> Self {
        Self {
            event_id: queued.event_id,
            session_id: queued.session_id,
            event_type: EventType {
                category: queued.category,
                name: queued.name,
            },
            data: queued.data,
            timestamp: queued.timestamp,
            sent_at: queued.sent_at,
            user_id: queued.user_id,
            device_id: queued.device_id,
        }
    }
}

/// [`QueuedEvent`] borrowed from an event, to write it without copying anything.
#[derive(Serialize)]
struct QueuedEventRef<'a> {
    event_id: &'a EventId,
    session_id: &'a SessionId,
    category: &'a Category,
    name: &'a EventName,
    data: &'a Payload,
    timestamp: &'a DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: &'a Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: &'a Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: &'a Option<DeviceId>,
}

impl Serialize for NewEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        QueuedEventRef {
            event_id: &self.event_id,
            session_id: &self.session_id,
            category: &self.event_type.category,
            name: &self.event_type.name,
            data: &self.data,
            timestamp: &self.timestamp,
            sent_at: &self.sent_at,
            user_id: &self.user_id,
            device_id: &self.device_id,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_accepts_only_objects() {
        assert!(Payload::from_value(json!({"host": "x"})).is_ok());
        for value in [json!([1]), json!("text"), json!(null), json!(3)] {
            assert!(Payload::from_value(value.clone()).is_err());
            assert!(serde_json::from_value::<Payload>(value).is_err());
        }
        assert_eq!(
            serde_json::to_value(Payload::default()).expect("serializes"),
            json!({})
        );
    }

    #[test]
    fn a_schema_judges_the_payload_without_the_envelope_and_a_plain_one_uncopied() {
        let plain = Payload::from_value(json!({"host": "x"})).expect("object");
        assert!(matches!(plain.schema_view(), Cow::Borrowed(_)));
        let segment =
            Payload::from_value(json!({"host": "x", "$segment": {"context": {}}})).expect("object");
        assert_eq!(segment.schema_view().as_ref(), &json!({"host": "x"}));
        assert!(
            segment.fields().contains_key(Payload::ENVELOPE_KEY),
            "kept for storage"
        );
    }

    #[test]
    fn an_event_survives_the_queue_round_trip() {
        let event = NewEvent {
            event_id: EventId::generate(),
            session_id: SessionId::parse("s-1").expect("valid"),
            event_type: EventType {
                category: Category::parse("page interaction").expect("valid"),
                name: EventName::parse("pageview").expect("valid"),
            },
            data: Payload::from_value(json!({"host": "www.ca.com", "path": "/"})).expect("object"),
            timestamp: Utc::now(),
            sent_at: None,
            user_id: Some(UserId::parse("u-1").expect("valid")),
            device_id: None,
        };
        let wire = serde_json::to_string(&event).expect("serializes");
        let back: NewEvent = serde_json::from_str(&wire).expect("deserializes");
        assert_eq!(back, event);
    }

    /// The queued form is the one jobs queued by earlier releases hold: the type's parts beside the other
    /// fields, the optional ones left out when absent; fields it does not know are ignored.
    #[test]
    fn a_queued_event_keeps_its_json_shape() {
        let queued = json!({
            "event_id": "0190f0e0-0000-7000-8000-000000000001", "session_id": "s-1",
            "category": "fitness", "name": "workout", "data": {"minutes": 31},
            "timestamp": "2026-11-30T10:00:00Z", "user_id": "u-1", "added_later": true
        });
        let event: NewEvent = serde_json::from_value(queued).expect("deserializes");
        assert_eq!(event.event_type.to_string(), "fitness / workout");
        assert_eq!(event.data.fields()["minutes"], 31);
        assert_eq!(event.device_id, None);
        assert_eq!(
            serde_json::to_string(&event).expect("serializes"),
            concat!(
                r#"{"event_id":"0190f0e0-0000-7000-8000-000000000001","session_id":"s-1","#,
                r#""category":"fitness","name":"workout","data":{"minutes":31},"#,
                r#""timestamp":"2026-11-30T10:00:00Z","user_id":"u-1"}"#
            ),
            "the fields in the order the flattened form wrote them"
        );
        let without_data = json!({
            "event_id": "0190f0e0-0000-7000-8000-000000000001", "session_id": "s-1",
            "category": "fitness", "name": "workout", "timestamp": "2026-11-30T10:00:00Z"
        });
        let event: NewEvent = serde_json::from_value(without_data).expect("deserializes");
        assert!(event.data.fields().is_empty());
    }
}
