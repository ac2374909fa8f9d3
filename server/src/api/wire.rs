//! Wire types of the ingest API, and their parsing into domain events with every bad field reported.

use crate::api::body::parse_json;
use crate::api::params::{Text, Timestamp};
use crate::api::problem::{ApiError, FieldError};
use chrono::{DateTime, Utc};
use eye_domain::{
    Category, DeviceId, EventId, EventName, EventType, NewEvent, Payload, SessionId, UserId,
    parse_timestamp,
};
use poem_openapi::Object;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Most events in one request.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// An event as applications send it.
#[derive(Debug, Clone, Object)]
#[oai(rename = "EventIn", example)]
pub struct EventIn {
    /// The event's identity (UUID). Optional: the server assigns a UUIDv7 when absent. Send one to make
    /// retries safe: an event id is stored once per application.
    #[oai(nullable, skip_serializing_if_is_none)]
    pub event_id: Option<Uuid>,
    /// The session, as the application names it (1..=128 characters).
    pub session_id: Text<128>,
    /// With `name`, the event's type (1..=64 characters), e.g. `page interaction`.
    pub category: Text<64>,
    /// e.g. `pageview` (1..=64 characters).
    pub name: Text<64>,
    /// Type-specific payload: a JSON object (default `{}`).
    #[oai(nullable, skip_serializing_if_is_none)]
    pub data: Option<std::collections::BTreeMap<String, Value>>,
    /// When the event occurred: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.ffffff]` taken as UTC.
    pub timestamp: Timestamp,
    /// When the device sent the event, by the same clock as `timestamp` (lets the service correct skew).
    #[oai(nullable, skip_serializing_if_is_none)]
    pub sent_at: Option<Timestamp>,
    /// The application's user (1..=128 characters).
    #[oai(nullable, skip_serializing_if_is_none)]
    pub user_id: Option<Text<128>>,
    /// The device (1..=128 characters).
    #[oai(nullable, skip_serializing_if_is_none)]
    pub device_id: Option<Text<128>>,
}

/// A batch of events. A batch with one invalid event is rejected whole (400), so nothing is half-accepted.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct EventsIn {
    /// 1..=1000 events.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub events: Vec<EventIn>,
}

/// Events accepted into the queue.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Accepted {
    /// How many events were accepted.
    pub accepted: u32,
    /// Their ids, in request order.
    pub event_ids: Vec<Uuid>,
}

/// One event accepted into the queue.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct AcceptedOne {
    /// Its id.
    pub event_id: Uuid,
}

const KNOWN_FIELDS: [&str; 9] = [
    "event_id",
    "session_id",
    "category",
    "name",
    "data",
    "timestamp",
    "sent_at",
    "user_id",
    "device_id",
];

/// Parses a batch body straight into events when nothing in it is wrong (one pass, no JSON tree but the
/// payloads'); otherwise parses it as JSON and reports every bad field ([`parse_batch`]). The direct pass
/// accepts only what [`parse_batch`] accepts, with the same parsers, so the answer never depends on which
/// pass decided it; anything it does not take (an unknown field at any level, an array where an object
/// belongs, an escaped string, a repeated key, a bad value) goes to the thorough pass.
pub fn parse_batch_body(bytes: &[u8]) -> Result<Vec<NewEvent>, ApiError> {
    if let Some(events) = direct::parse(bytes) {
        return Ok(events);
    }
    let value = parse_json(bytes)?;
    parse_batch(value).map_err(ApiError::Invalid)
}

/// Parses `{"events": [...]}`, moving each event's `data` into it: payloads are most of a batch's
/// memory, and a copy of each would double what a busy API holds (heap profile under load: 4.3 MB of
/// copied payloads at the peak).
pub fn parse_batch(mut body: Value) -> Result<Vec<NewEvent>, Vec<FieldError>> {
    let Some(Value::Array(events)) = body.get_mut("events").map(Value::take) else {
        return Err(vec![FieldError::new(
            "events",
            "required: an array of events",
        )]);
    };
    if events.is_empty() || events.len() > MAX_EVENTS_PER_REQUEST {
        let message = format!(
            "must hold 1..={MAX_EVENTS_PER_REQUEST} events, got {}",
            events.len()
        );
        return Err(vec![FieldError::new("events", message)]);
    }
    let mut errors = Vec::new();
    let parsed: Vec<NewEvent> = events
        .into_iter()
        .enumerate()
        .filter_map(|(i, event)| parse_event(event, &format!("events[{i}]"), &mut errors))
        .collect();
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// Parses one event object, moving its `data` into the event.
pub fn parse_one(body: Value) -> Result<NewEvent, Vec<FieldError>> {
    let mut errors = Vec::new();
    match parse_event(body, "", &mut errors) {
        Some(event) if errors.is_empty() => Ok(event),
        _ => Err(errors),
    }
}

/// Parses one event object; `at` names it in error messages (`events[3]`, or `` for a lone event).
fn parse_event(mut value: Value, at: &str, errors: &mut Vec<FieldError>) -> Option<NewEvent> {
    let Some(object) = value.as_object_mut() else {
        errors.push(FieldError::new(at, "must be a JSON object"));
        return None;
    };
    let data = object.remove("data");
    let mut fields = Fields { object, at, errors };
    fields.reject_unknown();
    let event_id = fields.optional("event_id", |s| Uuid::parse_str(s).map(EventId::from));
    let session_id = fields.required("session_id", |s| SessionId::parse(s));
    let category = fields.required("category", |s| Category::parse(s));
    let name = fields.required("name", |s| EventName::parse(s));
    let data = fields.data(data);
    let timestamp = fields.required("timestamp", parse_timestamp);
    let sent_at: Option<Option<DateTime<Utc>>> = fields.optional("sent_at", parse_timestamp);
    let user_id = fields.optional("user_id", |s| UserId::parse(s));
    let device_id = fields.optional("device_id", |s| DeviceId::parse(s));
    Some(NewEvent {
        event_id: event_id?.unwrap_or_else(EventId::generate),
        session_id: session_id?,
        event_type: EventType {
            category: category?,
            name: name?,
        },
        data: data?,
        timestamp: timestamp?,
        sent_at: sent_at?,
        user_id: user_id?,
        device_id: device_id?,
    })
}

/// Reads the fields of one event object, collecting what is wrong instead of stopping at it.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    at: &'a str,
    errors: &'a mut Vec<FieldError>,
}

impl Fields<'_> {
    fn path(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    fn fail<T>(&mut self, key: &str, message: impl Into<String>) -> Option<T> {
        let path = self.path(key);
        self.errors.push(FieldError::new(path, message));
        None
    }

    fn reject_unknown(&mut self) {
        let unknown: Vec<String> = self
            .object
            .keys()
            .filter(|k| !KNOWN_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.fail::<()>(&key, "unknown field");
        }
    }

    fn required<T, E: ToString>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<T> {
        match self.object.get(key) {
            None | Some(Value::Null) => self.fail(key, "required"),
            Some(value) => self.parse_text(key, value, parse),
        }
    }

    /// `Some(None)` when absent, `None` when present but invalid.
    fn optional<T, E: ToString>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<Option<T>> {
        match self.object.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(value) => self.parse_text(key, value, parse).map(Some),
        }
    }

    fn parse_text<T, E: ToString>(
        &mut self,
        key: &str,
        value: &Value,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<T> {
        let Some(text) = value.as_str() else {
            return self.fail(key, "must be a string");
        };
        match parse(text) {
            Ok(parsed) => Some(parsed),
            Err(err) => self.fail(key, err.to_string()),
        }
    }

    /// The payload, taken out of the object before its other fields are read.
    fn data(&mut self, data: Option<Value>) -> Option<Payload> {
        match data {
            None | Some(Value::Null) => Some(Payload::default()),
            Some(value) => Payload::from_value(value)
                .ok()
                .or_else(|| self.fail("data", "must be a JSON object")),
        }
    }
}

/// The direct pass alone: the events when it decides the body, `None` when it leaves it to [`parse_batch`].
/// Public for the differential fuzz target (`fuzz/fuzz_targets/events_batch.rs`): whatever it accepts,
/// the thorough pass must accept alike.
pub fn parse_batch_directly(bytes: &[u8]) -> Option<Vec<NewEvent>> {
    direct::parse(bytes)
}

mod direct;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The seed's first sample event (also the direct pass's tests').
    pub(super) fn seed_pageview() -> Value {
        json!({
            "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
            "category": "page interaction",
            "name": "pageview",
            "data": {"host": "www.consumeraffairs.com", "path": "/"},
            "timestamp": "2021-01-01 09:15:27.243860"
        })
    }

    #[test]
    fn the_payload_is_moved_into_the_event_and_a_bad_one_is_named_in_field_order() {
        let body = json!({"event_id": "0190f0e0-0000-7000-8000-000000000001",
                          "session_id": "s", "category": "c", "name": "n",
                          "data": {"host": "h", "path": "/"}, "timestamp": "2021-01-01 09:15:27.243860"});
        let event = parse_one(body).expect("valid");
        assert_eq!(
            event.data.to_value(),
            json!({"host": "h", "path": "/"}),
            "the payload as sent"
        );
        let both_bad = json!({"session_id": "", "category": "c", "name": "n", "data": [1],
                              "timestamp": "2021-01-01T00:00:00Z"});
        let fields: Vec<String> = parse_one(both_bad)
            .expect_err("refused")
            .into_iter()
            .map(|error| error.field)
            .collect();
        assert_eq!(fields, ["session_id", "data"]);
    }

    #[test]
    fn the_seed_event_parses_with_a_generated_id() {
        let event = parse_one(seed_pageview()).expect("valid");
        assert_eq!(event.event_type.to_string(), "page interaction / pageview");
        assert_eq!(
            event.timestamp.to_rfc3339(),
            "2021-01-01T09:15:27.243860+00:00"
        );
        assert_eq!(event.event_id.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn every_bad_field_is_reported_with_its_path() {
        let body = json!({"events": [seed_pageview(), {
            "session_id": "", "category": "c", "name": "x".repeat(65), "data": [1],
            "timestamp": "yesterday", "user_id": 7, "extra": true
        }]});
        let errors = parse_batch(body).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "events[1].extra",
                "events[1].session_id",
                "events[1].name",
                "events[1].data",
                "events[1].timestamp",
                "events[1].user_id"
            ]
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let mut event = seed_pageview();
        event.as_object_mut().map(|o| o.remove("timestamp"));
        let errors = parse_one(event).expect_err("invalid");
        assert_eq!(errors, vec![FieldError::new("timestamp", "required")]);
    }

    #[test]
    fn batch_size_is_bounded() {
        for count in [0, MAX_EVENTS_PER_REQUEST + 1] {
            let body = json!({"events": vec![seed_pageview(); count]});
            let errors = parse_batch(body).expect_err("out of bounds");
            assert_eq!(errors[0].field, "events");
        }
        let full = json!({"events": vec![seed_pageview(); MAX_EVENTS_PER_REQUEST]});
        assert_eq!(
            parse_batch(full).map(|e| e.len()),
            Ok(MAX_EVENTS_PER_REQUEST)
        );
    }

    #[test]
    fn a_client_supplied_event_id_is_kept() {
        let mut event = seed_pageview();
        event["event_id"] = json!("0190f0e0-0000-7000-8000-000000000001");
        let parsed = parse_one(event).expect("valid");
        assert_eq!(
            parsed.event_id.to_string(),
            "0190f0e0-0000-7000-8000-000000000001"
        );
    }
}
