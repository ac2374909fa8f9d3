//! The fitness app's current event shape, mapped to The Eye's event structure at the edge.
//!
//! ```text
//! {"user_id": "foo1", "device_id": "bar1",          {"event_id": <derived>, "session_id": "bar1",
//!  "type": "training_program_started",       ->      "category": "fitness", "name": "training_program_started",
//!  "training_program_id": "2352",                    "data": {"training_program_id": "2352", ...},
//!  "time_stamp": "2021-02-28 16:23:25"}              "timestamp": "2021-02-28 16:23:25",
//!                                                    "user_id": "foo1", "device_id": "bar1"}
//! ```
//!
//! * `type` becomes the `name`, verbatim, under the category `fitness`: any type, known or not, is kept.
//! * Every field other than `user_id`, `device_id`, `type` and `time_stamp` moves into `data`, so a future
//!   type's fields need no change here.
//! * The app has no session: the device is the session (`session_id` = `device_id`).
//! * The app sends no event id, so the id is derived from the event's content: a resent or replayed event
//!   is the same event, stored once and notified about once.

use crate::api::problem::FieldError;
use crate::api::wire;
use eye_domain::NewEvent;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The category of every event in the legacy shape.
pub const CATEGORY: &str = "fitness";

/// Fields of the legacy shape that are not payload.
const ENVELOPE: [&str; 5] = ["user_id", "device_id", "type", "time_stamp", "event_id"];

/// Whether a body is in the legacy shape: it has `type` and no `category`.
pub fn is_legacy(body: &Value) -> bool {
    body.get("type").is_some() && body.get("category").is_none()
}

/// Parses a legacy event into a domain event; errors name the legacy fields.
pub fn parse(body: &Value) -> Result<NewEvent, Vec<FieldError>> {
    let Some(legacy) = body.as_object() else {
        return Err(vec![FieldError::new("", "must be a JSON object")]);
    };
    if legacy.get("device_id").is_none_or(Value::is_null) {
        return Err(vec![FieldError::new(
            "device_id",
            "required: the session is derived from the device",
        )]);
    }
    wire::parse_one(to_event(legacy))
        .map_err(|errors| errors.into_iter().map(legacy_field).collect())
}

/// The legacy event in the improved structure (still to be parsed like any event).
fn to_event(legacy: &Map<String, Value>) -> Value {
    let data: Map<String, Value> = legacy
        .iter()
        .filter(|(key, _)| !ENVELOPE.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let event_id = legacy
        .get("event_id")
        .cloned()
        .unwrap_or_else(|| json!(content_id(legacy)));
    json!({
        "event_id": event_id,
        "session_id": legacy.get("device_id"),
        "category": CATEGORY,
        "name": legacy.get("type"),
        "data": data,
        "timestamp": legacy.get("time_stamp"),
        "user_id": legacy.get("user_id"),
        "device_id": legacy.get("device_id"),
    })
}

/// A UUID (version 8) from the SHA-256 of the event's canonical JSON (keys sorted).
fn content_id(legacy: &Map<String, Value>) -> uuid::Uuid {
    let digest = Sha256::digest(Value::Object(legacy.clone()).to_string().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Names an error by the field the app sent.
fn legacy_field(mut error: FieldError) -> FieldError {
    let renamed = match error.field.as_str() {
        "name" => "type",
        "timestamp" => "time_stamp",
        "session_id" => "device_id",
        other => other,
    };
    error.field = renamed.to_owned();
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Value {
        json!({
            "user_id": "foo1", "device_id": "bar1", "type": "training_program_started",
            "training_program_id": "2352", "training_program_title": "7 Minutes of HIIT Training",
            "time_stamp": "2021-02-28 16:23:25"
        })
    }

    #[test]
    fn a_seed_event_maps_to_a_fitness_event_in_the_devices_session() {
        let event = parse(&started()).expect("valid");
        assert_eq!(
            event.event_type.to_string(),
            "fitness / training_program_started"
        );
        assert_eq!(event.session_id.as_str(), "bar1");
        assert_eq!(event.device_id.as_ref().map(|d| d.as_str()), Some("bar1"));
        assert_eq!(event.user_id.as_ref().map(|u| u.as_str()), Some("foo1"));
        assert_eq!(event.timestamp.to_rfc3339(), "2021-02-28T16:23:25+00:00");
        let data = event.data.fields();
        assert_eq!(data["training_program_id"], "2352");
        assert_eq!(data["training_program_title"], "7 Minutes of HIIT Training");
        assert_eq!(data.len(), 2);
    }

    #[test]
    fn the_same_event_sent_twice_gets_the_same_id_and_another_event_another() {
        let first = parse(&started()).expect("valid").event_id;
        assert_eq!(parse(&started()).expect("valid").event_id, first);
        let mut other = started();
        other["time_stamp"] = json!("2021-02-28 16:23:26");
        assert_ne!(parse(&other).expect("valid").event_id, first);
    }

    #[test]
    fn only_bodies_with_a_type_and_no_category_are_legacy() {
        assert!(is_legacy(&started()));
        assert!(!is_legacy(
            &json!({"category": "fitness", "name": "x", "type": "y"})
        ));
        assert!(!is_legacy(&json!({"category": "fitness", "name": "x"})));
    }

    #[test]
    fn unknown_types_and_extra_fields_are_kept() {
        let event = parse(&json!({
            "user_id": "u", "device_id": "d", "type": "song_played", "song": "x",
            "time_stamp": "2021-02-28 16:23:25"
        }))
        .expect("valid");
        assert_eq!(event.event_type.name.as_str(), "song_played");
        assert_eq!(event.data.fields()["song"], "x");
    }

    #[test]
    fn errors_name_the_fields_the_app_sent() {
        let cases = [
            (
                json!({"user_id": "u", "type": "t", "time_stamp": "2021-02-28 16:23:25"}),
                "device_id",
            ),
            (
                json!({"device_id": "d", "type": "t", "time_stamp": "later"}),
                "time_stamp",
            ),
            (
                json!({"device_id": "d", "type": "", "time_stamp": "2021-02-28 16:23:25"}),
                "type",
            ),
        ];
        for (body, field) in cases {
            let errors = parse(&body).expect_err("invalid");
            assert_eq!(errors[0].field, field, "{body}");
        }
    }
}
