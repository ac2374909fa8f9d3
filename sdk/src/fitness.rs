//! Typed helpers for the fitness app's events.
//!
//! Every helper builds an [`Event`] with category `"fitness"`, the device id as session id,
//! and the user and device set. Training program events carry `training_program_id` (and
//! `training_program_title` when given) in `data`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::Event;

/// The category of all fitness app events.
pub const CATEGORY: &str = "fitness";

/// The app was launched on `device` by `user` at `at`.
pub fn app_launch(user: impl Into<String>, device: impl Into<String>, at: DateTime<Utc>) -> Event {
    base("app_launch", user.into(), device.into(), at)
}

/// `user` started the training program `program_id` (titled `title`, when known).
pub fn training_program_started(
    user: impl Into<String>,
    device: impl Into<String>,
    program_id: impl Into<Value>,
    title: Option<&str>,
    at: DateTime<Utc>,
) -> Event {
    program_event(
        "training_program_started",
        (user.into(), device.into()),
        program(program_id, title),
        at,
    )
}

/// `user` finished the training program `program_id` (titled `title`, when known).
pub fn training_program_finished(
    user: impl Into<String>,
    device: impl Into<String>,
    program_id: impl Into<Value>,
    title: Option<&str>,
    at: DateTime<Utc>,
) -> Event {
    program_event(
        "training_program_finished",
        (user.into(), device.into()),
        program(program_id, title),
        at,
    )
}

/// `user` cancelled the training program `program_id` (titled `title`, when known).
pub fn training_program_cancelled(
    user: impl Into<String>,
    device: impl Into<String>,
    program_id: impl Into<Value>,
    title: Option<&str>,
    at: DateTime<Utc>,
) -> Event {
    program_event(
        "training_program_cancelled",
        (user.into(), device.into()),
        program(program_id, title),
        at,
    )
}

fn base(name: &str, user: String, device: String, at: DateTime<Utc>) -> Event {
    Event::new(device.clone(), CATEGORY, name)
        .user_id(user)
        .device_id(device)
        .timestamp(at)
}

fn program(program_id: impl Into<Value>, title: Option<&str>) -> Value {
    let mut data = Map::new();
    data.insert("training_program_id".into(), program_id.into());
    if let Some(title) = title {
        data.insert("training_program_title".into(), Value::String(title.into()));
    }
    Value::Object(data)
}

fn program_event(
    name: &str,
    (user, device): (String, String),
    data: Value,
    at: DateTime<Utc>,
) -> Event {
    base(name, user, device, at).data(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn app_launch_is_a_fitness_event_whose_session_is_the_device() {
        let at = Utc::now();
        let event = app_launch("u1", "d1", at);
        assert_eq!(
            (event.category(), event.name(), event.session()),
            ("fitness", "app_launch", "d1")
        );
        assert_eq!((event.user(), event.device()), (Some("u1"), Some("d1")));
        assert_eq!(event.happened_at(), at);
        assert_eq!(event.payload(), &json!({}));
    }

    #[test]
    fn training_program_events_carry_the_program_id_and_title_when_given() {
        let at = Utc::now();
        let table = [
            (
                training_program_started("u", "d", 7, Some("Legs"), at),
                "training_program_started",
            ),
            (
                training_program_finished("u", "d", 7, Some("Legs"), at),
                "training_program_finished",
            ),
            (
                training_program_cancelled("u", "d", 7, Some("Legs"), at),
                "training_program_cancelled",
            ),
        ];
        for (event, name) in table {
            assert_eq!(
                (event.category(), event.name(), event.session()),
                ("fitness", name, "d")
            );
            let expected = json!({"training_program_id": 7, "training_program_title": "Legs"});
            assert_eq!(event.payload(), &expected);
        }
    }

    #[test]
    fn training_program_events_omit_the_title_when_unknown() {
        let event = training_program_finished("u", "d", "p-9", None, Utc::now());
        assert_eq!(event.payload(), &json!({"training_program_id": "p-9"}));
    }
}
