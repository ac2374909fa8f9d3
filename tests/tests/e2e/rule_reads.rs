//! What the notification rules read back when they evaluate a user: that user's stored events after the
//! rule cursor, of the types some rule names, in event-time order. Other types would change nothing, so
//! they are not read (on both backends).

use crate::support::{Backend, TestApp};
use chrono::{DateTime, TimeDelta, Utc};
use eye_domain::ApplicationId;
use eye_store::EventCursor;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TYPES: [(&str, &str); 3] = [
    ("read test", "started"),
    ("other test", "viewed"),
    ("read test", "finished"),
];

/// Twelve events of one user, a minute apart, cycling through [`TYPES`] (newest first, so storage order
/// differs from event order), and one event of another user.
fn events(start: DateTime<Utc>) -> Value {
    let mut events: Vec<Value> = (0..12)
        .rev()
        .map(|i| {
            let (category, name) = TYPES[i % TYPES.len()];
            json!({"session_id": "s1", "category": category, "name": name, "user_id": "reader",
                   "data": {"i": i}, "timestamp": (start + TimeDelta::minutes(i as i64)).to_rfc3339()})
        })
        .collect();
    events.push(json!({"session_id": "s2", "category": "read test", "name": "started",
                       "user_id": "someone else", "data": {"i": 99}, "timestamp": start.to_rfc3339()}));
    Value::Array(events)
}

async fn only_the_named_types_after_the_cursor_are_read(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let start: DateTime<Utc> = "2021-03-01T08:00:00Z".parse()?;
    assert_eq!(
        app.post_events(events(start)).await?.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for_count("SELECT COUNT(*) FROM events", 13)
        .await?;
    let application = ApplicationId::from(uuid::Uuid::parse_str(&app.application_id)?);
    let named = [TYPES[0], TYPES[2]];
    let read = |after: Option<EventCursor>| {
        let store = app.store.clone();
        async move {
            let txn = store.begin_ingest().await?;
            let mut found = txn
                .rule_events_after(application, &[("reader".to_owned(), after)], &named)
                .await?;
            anyhow::Ok(found.remove("reader").unwrap_or_default())
        }
    };
    let all = read(None).await?;
    let minutes: Vec<i64> = all
        .iter()
        .map(|e| (e.cursor.at - start).num_minutes())
        .collect();
    assert_eq!(
        minutes,
        [0, 2, 3, 5, 6, 8, 9, 11],
        "named types, in event time"
    );
    assert!(all.iter().all(|e| e.category == "read test"));
    let after_fourth = read(Some(all[3].cursor)).await?;
    let ids: Vec<_> = after_fourth.iter().map(|e| e.event_id).collect();
    let expected: Vec<_> = all[4..].iter().map(|e| e.event_id).collect();
    assert_eq!(ids, expected, "after the cursor");
    let txn = app.store.begin_ingest().await?;
    let none = txn
        .rule_events_after(application, &[("reader".to_owned(), None)], &[])
        .await?;
    assert!(none.is_empty(), "no rule, nothing to read: {none:?}");
    drop(txn);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_named_types_after_the_cursor_are_read_on_postgres() -> anyhow::Result<()> {
    only_the_named_types_after_the_cursor_are_read(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_named_types_after_the_cursor_are_read_on_the_embedded_default()
-> anyhow::Result<()> {
    only_the_named_types_after_the_cursor_are_read(Backend::Embedded).await
}
