//! Payload validation, the event-type registry and error monitoring, over HTTP.

use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp, event};
use chrono::{Duration, Utc};
use eye_server::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

fn video_play(id: Uuid, data: Value) -> Value {
    json!({"event_id": id, "session_id": "v", "category": "video", "name": "play", "data": data,
           "timestamp": Utc::now().to_rfc3339()})
}

async fn publish(app: &TestApp, schema: Value) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .http
        .put(format!("{}/v1/admin/event-types/video/play", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&schema)
        .send()
        .await?)
}

fn needs_seconds(kind: &str) -> Value {
    json!({"type": "object", "required": ["seconds"], "properties": {"seconds": {"type": kind}}})
}

async fn errors(app: &TestApp, query: &str) -> anyhow::Result<Vec<Value>> {
    let url = format!("{}/v1/errors?{query}", app.base);
    let page: Value = app
        .http
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    Ok(page["errors"].as_array().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_payload_is_recorded_with_a_pointer_and_its_batch_mates_stored()
-> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let mut bad = event(Uuid::now_v7(), "s", 2);
    bad["data"] = json!({"host": "www.ca.com", "path": "no-slash"});
    let batch = json!([
        event(Uuid::now_v7(), "s", 1),
        bad,
        event(Uuid::now_v7(), "s", 3)
    ]);
    assert_eq!(app.post_events(batch).await?.status(), StatusCode::ACCEPTED);

    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 1)
        .await?;
    app.wait_for_count("SELECT COUNT(*) FROM events", 2).await?;
    let listed = errors(&app, "reason=invalid_payload&category=page%20interaction").await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["event_id"], bad["event_id"]);
    assert!(
        listed[0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("/path: "),
        "{}",
        listed[0]
    );
    assert_eq!(listed[0]["raw"]["data"]["path"], "no-slash");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE schema_version = 1")
            .await?,
        2
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_schema_takes_effect_without_a_restart_and_replay_stores_once()
-> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let created = publish(&app, needs_seconds("string")).await?;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<Value>().await?["version"], 1);
    // Workers refresh their cache within a second; until then the type is still unknown (accepted).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let id = Uuid::now_v7();
    assert_eq!(
        app.post_events(json!([video_play(id, json!({"seconds": 12}))]))
            .await?
            .status(),
        StatusCode::ACCEPTED
    );
    app.wait_for_count(
        "SELECT COUNT(*) FROM ingest_errors WHERE reason = 'invalid_payload'",
        1,
    )
    .await?;
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, 0);

    let fixed = publish(&app, needs_seconds("integer")).await?;
    assert_eq!(fixed.status(), StatusCode::OK);
    assert_eq!(fixed.json::<Value>().await?["version"], 2);
    let replay_url = format!("{}/v1/admin/errors/replay?reason=invalid_payload", app.base);
    for expected_stored in [1, 0] {
        let replay: Value = app
            .http
            .post(&replay_url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(replay["stored"], expected_stored, "{replay}");
    }
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM events WHERE event_id = '{id}' AND schema_version = 2"
        ))
        .await?,
        1
    );
    assert_eq!(
        app.count("SELECT event_count FROM sessions WHERE session_id = 'v'")
            .await?,
        1
    );
    let resolved = errors(&app, "reason=invalid_payload").await?;
    assert!(resolved[0]["resolved_at"].is_string());
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_schema_is_refused_naming_the_problem() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    let response = publish(
        &app,
        json!({"type": "object", "properties": {"a": {"minLength": -1}}}),
    )
    .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let problem: Value = response.json().await?;
    assert_eq!(
        problem["errors"][0]["field"], "schema/properties/a/minLength",
        "{problem}"
    );
    let listed: Value = app
        .http
        .get(format!("{}/v1/admin/event-types", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let types: Vec<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        types.contains(&"pageview") && !types.contains(&"play"),
        "{listed}"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_timestamps_are_errors_unless_sent_at_explains_the_device_clock()
-> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let device_now = Utc::now() + Duration::hours(1);
    let (future, skewed) = (Uuid::now_v7(), Uuid::now_v7());
    let mut without = video_play(future, json!({}));
    without["timestamp"] = json!(device_now.to_rfc3339());
    let mut with = video_play(skewed, json!({}));
    with["timestamp"] = json!((device_now - Duration::seconds(30)).to_rfc3339());
    with["sent_at"] = json!(device_now.to_rfc3339());
    assert_eq!(
        app.post_events(json!([without, with])).await?.status(),
        StatusCode::ACCEPTED
    );

    app.wait_for_count("SELECT COUNT(*) FROM events", 1).await?;
    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 1)
        .await?;
    let listed = errors(&app, "reason=future_timestamp").await?;
    assert_eq!(listed[0]["event_id"], future.to_string());
    let kept = format!(
        "SELECT COUNT(*) FROM events WHERE event_id = '{skewed}' AND client_timestamp IS NOT NULL \
         AND timestamp < client_timestamp"
    );
    assert_eq!(app.count(&kept).await?, 1);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_types_are_stored_or_recorded_as_the_policy_says() -> anyhow::Result<()> {
    let accepting = TestApp::start(Backend::Embedded).await?;
    assert_eq!(
        accepting
            .post_events(json!([video_play(Uuid::now_v7(), json!({}))]))
            .await?
            .status(),
        StatusCode::ACCEPTED
    );
    accepting
        .wait_for_count(
            "SELECT COUNT(*) FROM events WHERE schema_version IS NULL",
            1,
        )
        .await?;
    assert_eq!(
        accepting.metric("eye_events_unregistered_total").await?,
        1.0
    );
    accepting.stop().await?;

    let mut isolation = Isolation::new(Backend::Embedded).await?;
    isolation.config.unknown_events = "reject".parse().map_err(|_| anyhow::anyhow!("policy"))?;
    let rejecting = TestApp::start_with(isolation, Role::All).await?;
    assert_eq!(
        rejecting
            .post_events(json!([video_play(Uuid::now_v7(), json!({}))]))
            .await?
            .status(),
        StatusCode::ACCEPTED
    );
    rejecting
        .wait_for_count(
            "SELECT COUNT(*) FROM ingest_errors WHERE reason = 'unknown_event_type'",
            1,
        )
        .await?;
    assert_eq!(rejecting.count("SELECT COUNT(*) FROM events").await?, 0);
    rejecting.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_key_sees_only_its_applications_errors() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let other = app.create_application("other").await?;
    let other_key = other["ingest_key"].as_str().unwrap_or_default().to_owned();
    let bad = |id| {
        json!([{"event_id": id, "session_id": "s", "category": "page interaction",
        "name": "pageview", "data": {}, "timestamp": Utc::now().to_rfc3339()}])
    };
    assert_eq!(
        app.post_events(bad(Uuid::now_v7())).await?.status(),
        StatusCode::ACCEPTED
    );
    let from_other = app
        .http
        .post(format!("{}/v1/events", app.base))
        .bearer_auth(&other_key)
        .json(&json!({ "events": bad(Uuid::now_v7()) }))
        .send()
        .await?;
    assert_eq!(from_other.status(), StatusCode::ACCEPTED);
    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 2)
        .await?;

    let created: Value = app
        .http
        .post(format!("{}/v1/admin/read-keys", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "web analysts", "application_ids": [app.application_id]}))
        .send()
        .await?
        .json()
        .await?;
    let read_key = created["read_key"].as_str().unwrap_or_default();
    let page: Value = app
        .http
        .get(format!("{}/v1/errors", app.base))
        .bearer_auth(read_key)
        .send()
        .await?
        .json()
        .await?;
    let seen: Vec<&str> = page["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["application_id"].as_str())
        .collect();
    assert_eq!(seen, [app.application_id.as_str()], "{page}");
    let as_ingest = app
        .http
        .get(format!("{}/v1/errors", app.base))
        .bearer_auth(&other_key)
        .send()
        .await?;
    assert_eq!(as_ingest.status(), StatusCode::FORBIDDEN);
    app.stop().await
}

/// `eye api` and `eye worker` started together both publish the built-in schemas: one wins, both start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_store_each_built_in_schema_once() -> anyhow::Result<()> {
    let isolation = Isolation::new(Backend::PostgresRedis).await?;
    let store = eye_server::open_store(&isolation.config).await?;
    let (api, worker) = tokio::join!(
        eye_server::start(&isolation.config, Role::Api),
        eye_server::start(&isolation.config, Role::Worker)
    );
    let (api, worker) = (api?, worker?);
    let schemas = store.current_schemas().await?;
    assert_eq!(schemas.len(), eye_validation::BUILTIN_SCHEMAS.len());
    assert!(schemas.iter().all(|s| s.version == 1));
    api.stop().await;
    worker.stop().await;
    drop(store);
    isolation.cleanup().await
}
