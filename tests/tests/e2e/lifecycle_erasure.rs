//! `DELETE /v1/admin/applications/{id}/users/{user_id}`: the user's events (sessions adjusted or
//! removed), rule state, notifications and refused events go; a record stays, without the user id; the
//! user's events from before the erasure never come back, new ones are stored.

use crate::lifecycle_retention::wait_for_metric;
use crate::notifications::{post_each, seed_sample};
use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp};
use chrono::{Duration as TimeDelta, Utc};
use eye_server::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// foo1's events beyond the seed's.
const MANY: usize = 1500;

const WITHHELD: &str = "eye_events_refused_total{reason=\"erased_user\"}";

fn pageview(user: &str, session: &str, at: &str, path: Option<&str>) -> Value {
    let mut data = json!({"host": "example.com"});
    if let Some(path) = path {
        data["path"] = json!(path);
    }
    json!({"event_id": uuid::Uuid::now_v7(), "session_id": session, "category": "page interaction",
           "name": "pageview", "user_id": user, "data": data, "timestamp": at})
}

async fn post(app: &TestApp, events: Value) -> anyhow::Result<()> {
    let sent = app.post_events(events).await?;
    anyhow::ensure!(sent.status() == StatusCode::ACCEPTED, "{}", sent.status());
    Ok(())
}

async fn erase(
    app: &TestApp,
    application: &str,
    user: &str,
    token: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let url = format!(
        "{}/v1/admin/applications/{application}/users/{user}",
        app.base
    );
    let request = app.http.delete(url);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    Ok(request.send().await?)
}

/// foo1: two fitness events in session bar1 (a notification and a rule state), a page view in `shared`,
/// a refused page view; foo2: the rest of the seed, and a page view in `shared`.
async fn seed(app: &TestApp) -> anyhow::Result<Value> {
    post_each(app, &seed_sample()).await?;
    let foo1_view = pageview("foo1", "shared", "2021-02-28T16:00:00Z", Some("/"));
    post(
        app,
        json!([
            foo1_view.clone(),
            pageview("foo2", "shared", "2021-02-28T16:30:00Z", Some("/")),
            pageview("foo1", "shared", "2021-02-28T16:40:00Z", None),
        ]),
    )
    .await?;
    // More than one erasure step (1,000 events) of foo1, in a session of its own.
    for chunk in (0..MANY).collect::<Vec<_>>().chunks(1000) {
        let at = |i: &usize| format!("2021-03-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60);
        let views: Vec<Value> = chunk
            .iter()
            .map(|i| pageview("foo1", "many", &at(i), Some("/")))
            .collect();
        post(app, json!(views)).await?;
    }
    app.wait_for_count("SELECT COUNT(*) FROM events", 7 + MANY as i64)
        .await?;
    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 1)
        .await?;
    let foo1_notified = "SELECT COUNT(*) FROM notifications WHERE user_id = 'foo1'";
    app.wait_for_count(foo1_notified, 1).await?;
    Ok(foo1_view)
}

async fn erasure_removes_a_users_data(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let foo1_view = seed(&app).await?;
    let web = app.application_id.clone();
    let unauthorised = erase(&app, &web, "foo1", None).await?;
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);
    let unknown = erase(
        &app,
        &uuid::Uuid::now_v7().to_string(),
        "foo1",
        Some(ADMIN_TOKEN),
    )
    .await?;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let response = erase(&app, &web, "foo1", Some(ADMIN_TOKEN)).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await?;
    let counts = [
        "events",
        "sessions_removed",
        "sessions_adjusted",
        "rule_states",
        "notifications",
        "refused_events",
    ]
    .map(|field| report[field].as_u64().unwrap_or(u64::MAX));
    assert_eq!(counts, [3 + MANY as u64, 2, 1, 1, 1, 1], "{report}");

    let left = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE user_id = 'foo1'");
    for table in ["events", "rule_states", "notifications"] {
        assert_eq!(app.count(&left(table)).await?, 0, "{table}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM ingest_errors").await?, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE user_id = 'foo2'")
            .await?,
        4
    );
    let gone = "SELECT COUNT(*) FROM sessions WHERE session_id IN ('bar1', 'many')";
    assert_eq!(app.count(gone).await?, 0);
    let shared = "SELECT COUNT(*) FROM sessions WHERE session_id = 'shared' AND event_count = 1 \
                  AND first_seen = last_seen";
    assert_eq!(
        app.count(shared).await?,
        1,
        "the shared session keeps foo2's event only"
    );
    let record = "SELECT COUNT(*) FROM erasures WHERE completed_at IS NOT NULL AND events = 1503 \
                  AND requested_by = 'admin token' AND user_hash <> 'foo1'";
    assert_eq!(app.count(record).await?, 1);

    // An event from before the erasure (sent again, or late) is withheld; a new one is stored.
    post(&app, json!([foo1_view])).await?;
    wait_for_metric(&app, WITHHELD, 1.0).await?;
    assert_eq!(app.count(&left("events")).await?, 0);
    let later = (Utc::now() + TimeDelta::seconds(1)).to_rfc3339();
    post(&app, json!([pageview("foo1", "new", &later, Some("/"))])).await?;
    app.wait_for_count(&left("events"), 1).await?;
    assert_eq!(app.metric(WITHHELD).await?, 1.0);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_user_removes_their_data_records_it_and_withholds_their_old_events_on_postgres()
-> anyhow::Result<()> {
    erasure_removes_a_users_data(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_user_removes_their_data_records_it_and_withholds_their_old_events_embedded()
-> anyhow::Result<()> {
    erasure_removes_a_users_data(Backend::Embedded).await
}

/// Events accepted while no worker runs wait in the queue; the user is erased meanwhile. Once a worker
/// takes the job, the erased user's event is withheld and the other user's, in the same job, is stored.
async fn events_queued_at_the_erasure_are_withheld(backend: Backend) -> anyhow::Result<()> {
    let isolation = Isolation::new(backend).await?;
    let config = isolation.config.clone();
    let app = TestApp::start_with(isolation, Role::Api).await?;
    post(
        &app,
        json!([
            pageview("foo1", "s", "2021-02-28T16:00:00Z", Some("/")),
            pageview("foo2", "s", "2021-02-28T16:01:00Z", Some("/")),
        ]),
    )
    .await?;
    let response = erase(&app, &app.application_id, "foo1", Some(ADMIN_TOKEN)).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await?;
    assert_eq!(report["events"], json!(0), "nothing stored yet: {report}");

    let worker = eye_server::start(&config, Role::Worker).await?;
    app.wait_for_count("SELECT COUNT(*) FROM events WHERE user_id = 'foo2'", 1)
        .await?;
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, 1);
    assert_eq!(app.count("SELECT event_count FROM sessions").await?, 1);
    worker.stop().await;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_event_of_an_erased_user_is_withheld_when_processed_on_postgres()
-> anyhow::Result<()> {
    events_queued_at_the_erasure_are_withheld(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_event_of_an_erased_user_is_withheld_when_processed_embedded() -> anyhow::Result<()>
{
    events_queued_at_the_erasure_are_withheld(Backend::Embedded).await
}
