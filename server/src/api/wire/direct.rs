//! The direct pass of [`super::parse_batch_body`]: a batch body read straight into events, strings borrowed
//! from the body, when nothing in it is wrong or unusual; `None` leaves the body to the field-by-field pass.

use super::MAX_EVENTS_PER_REQUEST;
use eye_domain::{
    Category, DeviceId, EventId, EventName, EventType, NewEvent, Payload, SessionId, UserId,
    parse_timestamp,
};
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;
use uuid::Uuid;

/// Every field is known, so every value of the body is read by a typed reader: none is skipped
/// unchecked (serde skips an unknown field's value without checking its text or its depth).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch<'a> {
    #[serde(borrow)]
    events: Vec<Object<Event<'a>>>,
}

/// An event object as the wire carries it. Strings are borrowed from the body: one with an escape
/// cannot be, which fails this pass and leaves the event to the thorough one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Event<'a> {
    #[serde(default, borrow)]
    event_id: Option<&'a str>,
    session_id: &'a str,
    category: &'a str,
    name: &'a str,
    #[serde(default)]
    data: Option<Value>,
    timestamp: &'a str,
    #[serde(default, borrow)]
    sent_at: Option<&'a str>,
    #[serde(default, borrow)]
    user_id: Option<&'a str>,
    #[serde(default, borrow)]
    device_id: Option<&'a str>,
}

/// `T` read from a JSON object only. A struct serde derives also reads an array of its fields in
/// order, which the thorough pass refuses (`must be a JSON object`).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// The events, or `None` when anything is wrong (or merely unusual) and the thorough pass decides.
pub(super) fn parse(bytes: &[u8]) -> Option<Vec<NewEvent>> {
    let Object(batch) = serde_json::from_slice::<Object<Batch<'_>>>(bytes).ok()?;
    if batch.events.is_empty() || batch.events.len() > MAX_EVENTS_PER_REQUEST {
        return None;
    }
    batch
        .events
        .into_iter()
        .map(|Object(wire)| event(wire))
        .collect()
}

fn event(wire: Event<'_>) -> Option<NewEvent> {
    let event_id = match wire.event_id {
        Some(id) => EventId::from(Uuid::parse_str(id).ok()?),
        None => EventId::generate(),
    };
    // JSON `null` arrives as `None` too, as the thorough pass takes it.
    let data = match wire.data {
        None => Payload::default(),
        Some(value) => Payload::from_value(value).ok()?,
    };
    Some(NewEvent {
        event_id,
        session_id: SessionId::parse(wire.session_id).ok()?,
        event_type: EventType {
            category: Category::parse(wire.category).ok()?,
            name: EventName::parse(wire.name).ok()?,
        },
        data,
        timestamp: parse_timestamp(wire.timestamp).ok()?,
        sent_at: wire.sent_at.map(parse_timestamp).transpose().ok()?,
        user_id: wire.user_id.map(UserId::parse).transpose().ok()?,
        device_id: wire.device_id.map(DeviceId::parse).transpose().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::api::problem::ApiError;
    use crate::api::wire::tests::seed_pageview;
    use crate::api::wire::{MAX_EVENTS_PER_REQUEST, parse_batch, parse_batch_body};
    use eye_domain::NewEvent;
    use serde_json::{Value, json};

    /// Both passes of a body: the direct one (`None` if it leaves the body to the other) and the answer.
    fn both_passes(body: &Value) -> (Option<Vec<NewEvent>>, Result<Vec<NewEvent>, ApiError>) {
        let bytes = serde_json::to_vec(body).expect("serializes");
        (parse(&bytes), parse_batch_body(&bytes))
    }

    fn with_id(mut event: Value, n: u32) -> Value {
        event["event_id"] = json!(format!("0190f0e0-0000-7000-8000-{n:012}"));
        event
    }

    #[test]
    fn a_clean_batch_is_parsed_directly_into_the_events_the_thorough_pass_makes() {
        let full = json!({"session_id": "s", "category": "fitness", "name": "workout_completed",
                          "data": {"minutes": 31, "nested": {"a": [1, 2]}}, "timestamp": "2026-11-30T10:00:00Z",
                          "sent_at": "2026-11-30T10:00:05.5+01:00", "user_id": "u", "device_id": "d"});
        let sparse = json!({"session_id": "s", "category": "c", "name": "n", "data": null,
                            "timestamp": "2021-01-01 09:15:27.243860", "user_id": null});
        let body =
            json!({"events": [with_id(seed_pageview(), 1), with_id(full, 2), with_id(sparse, 3)]});
        let (direct, answer) = both_passes(&body);
        let thorough = parse_batch(body).expect("valid");
        assert_eq!(direct.as_ref(), Some(&thorough), "the direct pass decided");
        assert_eq!(answer.expect("accepted"), thorough);
        assert!(thorough[2].data.fields().is_empty() && thorough[2].user_id.is_none());
    }

    #[test]
    fn an_unusual_but_valid_batch_is_left_to_the_thorough_pass_and_accepted_alike() {
        let escaped = json!({"session_id": "caf\u{e9} \"quoted\"", "category": "c", "name": "n",
                             "timestamp": "2021-01-01T00:00:00Z"});
        let body = json!({"events": [with_id(escaped, 1)]});
        let (direct, answer) = both_passes(&body);
        assert!(direct.is_none(), "an escaped string cannot be borrowed");
        let events = answer.expect("accepted");
        assert_eq!(events[0].session_id.as_str(), "caf\u{e9} \"quoted\"");
        let (direct, answer) =
            both_passes(&json!({"events": [seed_pageview()], "sent_by": "an SDK"}));
        assert!(direct.is_none(), "a field beside the events");
        assert_eq!(answer.expect("accepted, as before").len(), 1);
        let repeated = br#"{"events": [{"session_id": "s", "category": "c", "name": "n",
            "timestamp": "2021-01-01T00:00:00Z", "name": "m"}]}"#;
        assert!(parse(repeated).is_none(), "a repeated key");
        let events = parse_batch_body(repeated).expect("the last one counts, as before");
        assert_eq!(events[0].event_type.name.as_str(), "m");
    }

    #[test]
    fn a_bad_batch_gets_every_error_of_the_thorough_pass() {
        let body = json!({"events": [seed_pageview(), {
            "session_id": "", "category": "c", "name": "n", "data": [1], "timestamp": "yesterday"
        }]});
        let (direct, answer) = both_passes(&body);
        assert!(direct.is_none());
        let Err(ApiError::Invalid(errors)) = answer else {
            panic!("a 400 naming the fields");
        };
        assert_eq!(errors, parse_batch(body).expect_err("invalid"));
        for count in [0, MAX_EVENTS_PER_REQUEST + 1] {
            let (direct, answer) = both_passes(&json!({"events": vec![seed_pageview(); count]}));
            assert!(direct.is_none() && matches!(answer, Err(ApiError::Invalid(_))));
        }
        assert!(matches!(
            parse_batch_body(b"{\"events\": ["),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn what_the_thorough_pass_refuses_the_direct_one_never_accepts() {
        let event = r#"{"session_id": "s", "category": "c", "name": "n", "timestamp": "2021-01-01T00:00:00Z"}"#;
        let fields = r#"["0190f0e0-0000-7000-8000-000000000001", "s", "c", "n", null, "2021-01-01T00:00:00Z"]"#;
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let refused: [(Vec<u8>, &str); 5] = [
            (
                format!("[[{event}]]").into_bytes(),
                "a body that is an array",
            ),
            (
                format!(r#"{{"events": [{fields}]}}"#).into_bytes(),
                "an event that is an array",
            ),
            (
                [
                    br#"{"events": ["#,
                    event.as_bytes(),
                    br#"], "x": ""#,
                    b"\xff",
                    br#""}"#,
                ]
                .concat(),
                "invalid UTF-8 beside the events",
            ),
            (
                format!(r#"{{"events": [{event}], "x": "\ud800"}}"#).into_bytes(),
                "a lone surrogate beside the events",
            ),
            (
                format!(r#"{{"events": [{event}], "x": {deep}}}"#).into_bytes(),
                "nesting past the parser's limit",
            ),
        ];
        for (body, what) in refused {
            assert!(parse(&body).is_none(), "{what}");
            assert!(
                matches!(
                    parse_batch_body(&body),
                    Err(ApiError::Invalid(_) | ApiError::MalformedJson(_))
                ),
                "{what}"
            );
        }
    }
}
