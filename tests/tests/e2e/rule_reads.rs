//! What the notification rules read back when they evaluate a user: that user's stored events after the
//! rule cursor, of the types some rule names, in event-time order. Other types would change nothing, so
//! they are not read (on both backends). In-order jobs under unchanged rules read nothing back.

use crate::rules_api::{call, workouts};
use crate::support::{ADMIN_TOKEN, Backend, TestApp};
use chrono::{DateTime, TimeDelta, Utc};
use eye_domain::ApplicationId;
use eye_store::{EventCursor, ReadBack};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
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
    let read_known = |after: Option<EventCursor>, known: Vec<i64>| {
        let store = app.store.clone();
        async move {
            let txn = store.begin_ingest().await?;
            let from = ReadBack {
                user_id: "reader".to_owned(),
                after,
                known,
            };
            let mut found = txn.rule_events_after(application, &[from], &named).await?;
            anyhow::Ok(found.remove("reader").unwrap_or_default())
        }
    };
    let read = |after| read_known(after, Vec::new());
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
    let known = vec![all[5].cursor.id, all[7].cursor.id];
    let but_known: Vec<_> = read_known(Some(all[3].cursor), known)
        .await?
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        but_known,
        [all[4].event_id, all[6].event_id],
        "the caller's own events stay out"
    );
    let txn = app.store.begin_ingest().await?;
    let everyone = ReadBack {
        user_id: "reader".to_owned(),
        ..ReadBack::default()
    };
    let none = txn.rule_events_after(application, &[everyone], &[]).await?;
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

/// A `fitness` event of `user` at `minute` past `start`.
fn fitness(name: &str, user: &str, start: DateTime<Utc>, minute: i64) -> Value {
    json!({"event_id": uuid::Uuid::new_v4(), "session_id": user, "category": "fitness", "name": name,
           "user_id": user, "data": {}, "timestamp": (start + TimeDelta::minutes(minute)).to_rfc3339()})
}

/// Sends one event and waits until it is stored (its rules evaluated in the same transaction).
async fn send(app: &TestApp, event: Value, stored: i64) -> anyhow::Result<()> {
    let response = app.post_events(json!([event])).await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.wait_for_count("SELECT COUNT(*) FROM events", stored)
        .await
}

/// Stores an event the way no client can: without the rules evaluating it.
async fn store_behind_the_rules(app: &TestApp, event: Value) -> anyhow::Result<()> {
    let event: eye_domain::NewEvent = serde_json::from_value(event)?;
    let mut txn = app.store.begin_ingest().await?;
    let records = [eye_store::EventRecord::unvalidated(&event)];
    txn.insert_batch(eye_store::StoredBatch {
        application_id: ApplicationId::from(uuid::Uuid::parse_str(&app.application_id)?),
        received_at: Utc::now(),
        events: &records,
        refused: &[],
    })
    .await?;
    txn.commit().await?;
    Ok(())
}

async fn notified(app: &TestApp) -> anyhow::Result<i64> {
    app.count("SELECT COUNT(*) FROM notifications WHERE rule = 'two_workouts'")
        .await
}

/// Which events a user's evaluation reads. With the rules its state was evaluated with, a job whose
/// events come after the rule cursor evaluates them from memory: an event stored behind the rules' back
/// (which no client can do) is not read. After a publish, the stored events after the cursor are read
/// once, so the new rule counts the events of a type only it names as history.
async fn a_new_rule_reads_the_history_once_and_in_order_jobs_read_nothing_back(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let start: DateTime<Utc> = "2026-11-30T08:00:00Z".parse()?;
    let user = "reader";
    // Evaluated under the seed rules, which name no workout: the state records their revision.
    send(&app, fitness("app_launch", user, start, 0), 1).await?;
    send(&app, fitness("workout_completed", user, start, 1), 2).await?;

    let (status, _) = call(
        &app,
        Method::PUT,
        "/v1/admin/rules/two_workouts",
        ADMIN_TOKEN,
        Some(&workouts(2)),
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED);
    send(&app, fitness("workout_completed", user, start, 2), 3).await?;
    assert_eq!(
        notified(&app).await?,
        1,
        "the rule published since reads the earlier workout back: two within the hour"
    );

    store_behind_the_rules(&app, fitness("workout_completed", user, start, 3)).await?;
    send(&app, fitness("workout_completed", user, start, 4), 5).await?;
    assert_eq!(
        notified(&app).await?,
        1,
        "evaluated from the job's own events: the workout stored behind the rules' back is not read, \
         so the new one is the first of a new pair"
    );
    let cursor_at: DateTime<Utc> = app
        .store
        .connection()
        .query_one_raw(Statement::from_string(
            app.store.connection().get_database_backend(),
            "SELECT cursor_at FROM rule_states WHERE user_id = 'reader'",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no rule state"))?
        .try_get("", "cursor_at")?;
    assert_eq!(cursor_at, start + TimeDelta::minutes(4), "the last workout");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rule_reads_the_history_once_and_in_order_jobs_read_nothing_back_on_postgres()
-> anyhow::Result<()> {
    a_new_rule_reads_the_history_once_and_in_order_jobs_read_nothing_back(Backend::PostgresRedis)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rule_reads_the_history_once_and_in_order_jobs_read_nothing_back_on_the_embedded_default()
-> anyhow::Result<()> {
    a_new_rule_reads_the_history_once_and_in_order_jobs_read_nothing_back(Backend::Embedded).await
}
