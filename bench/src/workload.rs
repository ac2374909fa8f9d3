//! The synthetic workload: event number `i` always has the same session, user, type and time, so the query
//! phase can pick parameters that hit stored rows without reading them back.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// Consecutive events per session.
pub const EVENTS_PER_SESSION: u64 = 20;
/// Distinct users; a user has a session every `USERS` sessions.
pub const USERS: u64 = 20_000;
/// Event time advances this much per event: 1,000,000 events span ~29 days, ~1,440 events an hour.
pub const MILLIS_PER_EVENT: i64 = 2_500;

/// Event types (category, name). Categories appear equally often.
pub const EVENT_TYPES: [(&str, &str); 8] = [
    ("page interaction", "pageview"),
    ("page interaction", "cta click"),
    ("form interaction", "submit"),
    ("form interaction", "focus"),
    ("app", "launch"),
    ("app", "close"),
    ("fitness", "training_program_started"),
    ("fitness", "training_program_finished"),
];

/// One generated event, before it is put on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Its place in the workload.
    pub index: u64,
    /// `bench-s{n}`.
    pub session_id: String,
    /// `bench-u{n}`.
    pub user_id: String,
    /// Category.
    pub category: &'static str,
    /// Name.
    pub name: &'static str,
    /// When it occurred.
    pub timestamp: DateTime<Utc>,
}

/// The first event's time.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// Event number `index` of the workload.
pub fn spec(index: u64) -> Spec {
    let session = index / EVENTS_PER_SESSION;
    let (category, name) = EVENT_TYPES[(index % EVENT_TYPES.len() as u64) as usize];
    Spec {
        index,
        session_id: format!("bench-s{session}"),
        user_id: format!("bench-u{}", session % USERS),
        category,
        name,
        timestamp: epoch() + ChronoDuration::milliseconds(index as i64 * MILLIS_PER_EVENT),
    }
}

impl Spec {
    /// A payload every built-in schema accepts (extra properties are allowed), so no event is refused.
    fn data(&self) -> Value {
        json!({
            "host": "bench.example",
            "path": format!("/p/{}", self.index % 50),
            "element": "signup button",
            "form": {"plan": "pro"},
            "training_program_id": format!("program-{}", self.index % 20),
            "n": self.index,
        })
    }

    /// The event as `POST /v1/event(s)` takes it, with a fresh UUIDv7 id as the SDK assigns.
    pub fn to_wire(&self) -> Value {
        json!({
            "event_id": Uuid::now_v7(),
            "session_id": self.session_id,
            "category": self.category,
            "name": self.name,
            "user_id": self.user_id,
            "data": self.data(),
            "timestamp": self.timestamp.to_rfc3339(),
        })
    }
}

/// The body of `POST /v1/events` for events `first..first + count`.
pub fn batch_body(first: u64, count: u64) -> Value {
    let events: Vec<Value> = (first..first + count).map(|i| spec(i).to_wire()).collect();
    json!({ "events": events })
}

/// The body of Segment's `POST /v1/batch` for events `first..first + count`: the same events as `track`
/// messages, as an SDK sends them (`messageId`, `anonymousId`, `context`, `sentAt`).
pub fn segment_body(first: u64, count: u64) -> Value {
    let batch: Vec<Value> = (first..first + count)
        .map(|i| {
            let spec = spec(i);
            json!({
                "type": "track",
                "event": spec.name,
                "messageId": Uuid::now_v7(),
                "userId": spec.user_id,
                "anonymousId": spec.session_id,
                "properties": spec.data(),
                "context": {"library": {"name": "eye-bench", "version": "1"}},
                "timestamp": spec.timestamp.to_rfc3339(),
            })
        })
        .collect();
    json!({ "batch": batch, "sentAt": Utc::now().to_rfc3339() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_the_same_every_time_it_is_generated_except_for_its_id() {
        assert_eq!(spec(12_345), spec(12_345));
        assert_ne!(spec(1).to_wire()["event_id"], spec(1).to_wire()["event_id"]);
    }

    #[test]
    fn twenty_consecutive_events_share_a_session_and_its_user() {
        assert_eq!(spec(40).session_id, spec(59).session_id);
        assert_ne!(spec(59).session_id, spec(60).session_id);
        assert_eq!(spec(40).user_id, spec(59).user_id);
    }

    #[test]
    fn a_million_events_span_about_four_weeks_at_about_1440_an_hour() {
        let span = spec(1_000_000).timestamp - epoch();
        assert_eq!(span.num_days(), 28);
        assert_eq!(3_600_000 / MILLIS_PER_EVENT, 1_440);
    }

    #[test]
    fn a_batch_body_holds_the_requested_events_in_order() {
        let body = batch_body(100, 3);
        let events = body["events"].as_array().expect("events");
        assert_eq!(events.len(), 3);
        assert_eq!(events[0]["data"]["n"], 100);
        assert_eq!(events[2]["data"]["n"], 102);
        assert_eq!(events[0]["category"], EVENT_TYPES[4].0);
    }

    #[test]
    fn a_segment_body_holds_the_same_events_as_track_messages() {
        let body = segment_body(100, 3);
        let batch = body["batch"].as_array().expect("batch");
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[0]["type"], "track");
        assert_eq!(batch[0]["event"], spec(100).name);
        assert_eq!(batch[2]["properties"]["n"], 102);
    }
}
