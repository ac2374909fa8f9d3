//! Examples in the spec, taken from the seeds' sample events, so that Swagger UI's "Try it out" sends
//! requests the server accepts as they stand and readers see realistic answers.

use crate::api::admin::{ApplicationCreated, NewApplication};
use crate::api::dead_jobs::DeadJobsToReplay;
use crate::api::errors::{ErrorOut, ErrorsPage};
use crate::api::notifications::{NotificationOut, NotificationsPage, Status};
use crate::api::params::{Text, Timestamp};
use crate::api::problem::{FieldError, Problem, problem_for};
use crate::api::query_wire::{BucketOut, EventOut, EventPage, EventStats, SessionOut, SessionPage};
use crate::api::read_keys::{NewReadKeyIn, ReadKeyCreated};
use crate::api::rules::DryRunIn;
use crate::api::rules::wire::count_rule_example;
use crate::api::wire::{Accepted, AcceptedOne, EventIn, EventsIn};
use chrono::{DateTime, TimeZone, Utc};
use poem::http::StatusCode;
use poem_openapi::types::{Any, Example};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

const SESSION: &str = "e2085be5-9137-4e4e-80b5-f1ffddc25423";
const TIMESTAMP: &str = "2021-01-01 09:15:27.243860";
const APPLICATION: Uuid = Uuid::from_u128(0x0193_7a6e_5c1f_7d2a_9b3e_4f5a_6b7c_8d9e);
const EVENT: Uuid = Uuid::from_u128(0x0193_7a6e_6d20_7e3b_8c4f_5a6b_7c8d_9eaf);
const USER: &str = "foo1";

fn at(second: u32, micros: i64) -> DateTime<Utc> {
    let start = Utc.with_ymd_and_hms(2021, 1, 1, 9, 15, second).single();
    start.unwrap_or_default() + chrono::Duration::microseconds(micros)
}

fn text<const MAX: usize>(value: &str) -> Text<MAX> {
    Text::trusted(value)
}

fn seed_event(name: &str, category: &str, data: Value) -> EventIn {
    let data: BTreeMap<String, Value> = serde_json::from_value(data).unwrap_or_default();
    EventIn {
        event_id: None,
        session_id: text(SESSION),
        category: text(category),
        name: text(name),
        data: Some(data),
        timestamp: Timestamp::trusted(TIMESTAMP),
        sent_at: None,
        user_id: None,
        device_id: None,
    }
}

fn pageview_data() -> Value {
    json!({"host": "www.consumeraffairs.com", "path": "/"})
}

/// A payload as stored events carry it (writing a `Value` cannot fail).
fn raw(data: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(data).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

impl Example for EventIn {
    fn example() -> Self {
        seed_event("pageview", "page interaction", pageview_data())
    }
}

impl Example for EventsIn {
    fn example() -> Self {
        let host = "www.consumeraffairs.com";
        let click = json!({"host": host, "path": "/", "element": "chat bubble"});
        let form = json!({"first_name": "John", "last_name": "Doe"});
        let submit = json!({"host": host, "path": "/", "form": form});
        Self {
            events: vec![
                EventIn::example(),
                seed_event("cta click", "page interaction", click),
                seed_event("submit", "form interaction", submit),
            ],
        }
    }
}

impl Example for Accepted {
    fn example() -> Self {
        Self {
            accepted: 1,
            event_ids: vec![EVENT],
        }
    }
}

impl Example for AcceptedOne {
    fn example() -> Self {
        Self { event_id: EVENT }
    }
}

impl Example for EventPage {
    fn example() -> Self {
        let event = EventOut {
            event_id: EVENT,
            application_id: APPLICATION,
            session_id: SESSION.to_owned(),
            category: "page interaction".to_owned(),
            name: "pageview".to_owned(),
            data: Any(raw(&pageview_data())),
            timestamp: at(27, 243_860),
            received_at: at(28, 1_200),
            user_id: None,
            device_id: None,
        };
        Self {
            events: vec![event],
            next_cursor: None,
        }
    }
}

impl Example for SessionPage {
    fn example() -> Self {
        let session = SessionOut {
            application_id: APPLICATION,
            session_id: SESSION.to_owned(),
            first_seen: at(27, 243_860),
            last_seen: at(27, 243_860),
            event_count: 3,
        };
        Self {
            sessions: vec![session],
            next_cursor: None,
        }
    }
}

impl Example for EventStats {
    fn example() -> Self {
        let bucket = |group: &str, count| BucketOut {
            start: at(0, 0) - chrono::Duration::minutes(15),
            group: group.to_owned(),
            count,
        };
        Self {
            buckets: vec![bucket("form interaction", 1), bucket("page interaction", 2)],
        }
    }
}

impl Example for ErrorsPage {
    fn example() -> Self {
        let error = ErrorOut {
            application_id: APPLICATION,
            event_id: EVENT,
            category: "page interaction".to_owned(),
            name: "pageview".to_owned(),
            reason: "future_timestamp".to_owned(),
            detail: "timestamp 2031-01-01T09:15:27.243860Z is in the future".to_owned(),
            raw: json!({"session_id": SESSION, "category": "page interaction", "name": "pageview",
                "data": pageview_data(), "timestamp": "2031-01-01 09:15:27.243860"}),
            received_at: at(28, 1_200),
            recorded_at: at(28, 5_400),
            resolved_at: None,
        };
        Self {
            errors: vec![error],
            next_cursor: None,
        }
    }
}

impl Example for NotificationsPage {
    fn example() -> Self {
        let notification = NotificationOut {
            id: Uuid::from_u128(0x0193_7a6e_7e31_7f4c_9d5a_6b7c_8d9e_afb0),
            application_id: APPLICATION,
            rule: "daily_training_dose".to_owned(),
            user_id: USER.to_owned(),
            message: "Congratulations on your daily training dose! You trained 36 minutes in 7 \
                      Minutes of HIIT Training."
                .to_owned(),
            occasion: format!("daily_training_dose:{USER}:{EVENT}"),
            triggered_at: at(27, 243_860),
            status: Status::Delivered,
            attempts: 1,
            last_error: None,
            created_at: at(28, 9_000),
            delivered_at: Some(at(28, 60_000)),
        };
        Self {
            notifications: vec![notification],
            next_cursor: None,
        }
    }
}

impl Example for DeadJobsToReplay {
    fn example() -> Self {
        Self {
            job_ids: Some(vec![Uuid::from_u128(
                0x0193_7a6e_9a53_7b6e_9f7c_8d9e_afb0_c1d2,
            )]),
        }
    }
}

impl Example for DryRunIn {
    fn example() -> Self {
        let month = |m| {
            Utc.with_ymd_and_hms(2021, m, 1, 0, 0, 0)
                .single()
                .unwrap_or_default()
        };
        Self {
            rule: count_rule_example(),
            application_id: APPLICATION,
            from: month(2),
            to: month(3),
        }
    }
}

impl Example for NewApplication {
    fn example() -> Self {
        Self { name: text("web") }
    }
}

impl Example for ApplicationCreated {
    fn example() -> Self {
        Self {
            id: APPLICATION,
            name: "web".to_owned(),
            ingest_key: "eye_Xq3v9ZpL2mN8rT5wK7bH4cJ6dF1gS0aYeU2iO9pQ3xR".to_owned(),
        }
    }
}

impl Example for NewReadKeyIn {
    fn example() -> Self {
        Self {
            name: text("dashboards"),
            application_ids: Some(vec![APPLICATION]),
        }
    }
}

impl Example for ReadKeyCreated {
    fn example() -> Self {
        Self {
            id: Uuid::from_u128(0x0193_7a6e_8f42_7a5d_8e6b_7c8d_9eaf_b0c1),
            read_key: "eyr_7Hk2Lm9Qp4Xs1Vb8Nc3Dz6TwJ5fG0hA2sE4rY6uI8oP1".to_owned(),
        }
    }
}

impl Example for Problem {
    fn example() -> Self {
        let detail = "the request has 1 invalid field(s)".to_owned();
        Self {
            errors: Some(vec![FieldError::new(
                "events[0].timestamp",
                "expected an RFC 3339 timestamp (e.g. 2021-01-01T09:15:27.243860Z) or `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC",
            )]),
            ..problem_for(StatusCode::BAD_REQUEST, detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::wire::parse_batch;
    use poem_openapi::types::ToJSON;

    #[test]
    fn the_request_examples_are_accepted_as_they_stand() {
        let batch = EventsIn::example().to_json().unwrap_or_default();
        assert_eq!(parse_batch(batch).map(|events| events.len()), Ok(3));
        let one = EventIn::example().to_json().unwrap_or_default();
        assert!(crate::api::wire::parse_one(one.clone()).is_ok(), "{one}");
    }
}
