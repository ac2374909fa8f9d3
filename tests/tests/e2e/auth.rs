//! Only trusted clients get in, and bad input gets a clear problem without anything being enqueued.

use crate::support::{ADMIN_TOKEN, Backend, TestApp, event, seed_events};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

async fn assert_problem(response: reqwest::Response, status: StatusCode) -> anyhow::Result<Value> {
    assert_eq!(response.status(), status);
    let content_type = response.headers().get("content-type").cloned();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: Value = response.json().await?;
    assert_eq!(problem["status"], status.as_u16());
    assert!(
        problem["title"].is_string()
            && problem["type"].is_string()
            && problem["detail"].is_string()
    );
    Ok(problem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_and_revoked_keys_get_401_and_nothing_is_stored() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let url = format!("{}/v1/events", app.base);
    let body = json!({ "events": seed_events() });
    let missing = app.http.post(&url).json(&body).send().await?;
    assert_problem(missing, StatusCode::UNAUTHORIZED).await?;
    let unknown = app
        .http
        .post(&url)
        .bearer_auth("eye_not-a-key")
        .json(&body)
        .send()
        .await?;
    assert_problem(unknown, StatusCode::UNAUTHORIZED).await?;

    let revoke = format!(
        "{}/v1/admin/applications/{}/keys",
        app.base, app.application_id
    );
    let revoked: Value = app
        .http
        .delete(&revoke)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(revoked["revoked"], 1);
    let after = app
        .http
        .post(&url)
        .bearer_auth(&app.ingest_key)
        .json(&body)
        .send()
        .await?;
    assert_problem(after, StatusCode::UNAUTHORIZED).await?;

    assert_eq!(app.metric("eye_events_accepted_total").await?, 0.0);
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, 0);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_need_the_admin_token_and_names_are_unique() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    let url = format!("{}/v1/admin/applications", app.base);
    let wrong = app
        .http
        .post(&url)
        .bearer_auth(&app.ingest_key)
        .json(&json!({"name": "x"}))
        .send()
        .await?;
    // A live ingest key is a credential, just not this one: 403; an unknown token is nobody: 401.
    assert_problem(wrong, StatusCode::FORBIDDEN).await?;
    let unknown = app
        .http
        .post(&url)
        .bearer_auth("not-the-admin-token")
        .json(&json!({"name": "x"}))
        .send()
        .await?;
    assert_problem(unknown, StatusCode::UNAUTHORIZED).await?;
    let duplicate = app
        .http
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "web"}))
        .send()
        .await?;
    assert_problem(duplicate, StatusCode::CONFLICT).await?;
    let issued = app
        .http
        .post(format!("{url}/{}/keys", app.application_id))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    assert_eq!(issued.status(), StatusCode::CREATED);
    let unknown_app = app
        .http
        .post(format!("{url}/{}/keys", Uuid::now_v7()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    assert_problem(unknown_app, StatusCode::NOT_FOUND).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_field_is_named_in_a_400_problem() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let good = event(Uuid::now_v7(), "s", 1);
    let with = |key: &str, value: Value| {
        let mut bad = good.clone();
        bad[key] = value;
        bad
    };
    let without = |key: &str| {
        let mut bad = good.clone();
        bad.as_object_mut().map(|o| o.remove(key));
        bad
    };
    let cases = [
        (without("session_id"), "events[1].session_id"),
        (with("session_id", json!("")), "events[1].session_id"),
        (
            with("category", json!("c".repeat(65))),
            "events[1].category",
        ),
        (without("name"), "events[1].name"),
        (with("data", json!([1, 2])), "events[1].data"),
        (with("timestamp", json!("yesterday")), "events[1].timestamp"),
        (with("event_id", json!("not-a-uuid")), "events[1].event_id"),
        (
            with("time_stamp", json!("2021-02-28 16:22:52")),
            "events[1].time_stamp",
        ),
    ];
    for (bad, field) in cases {
        let response = app.post_events(json!([good, bad])).await?;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await?;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let malformed = app
        .http
        .post(format!("{}/v1/events", app.base))
        .bearer_auth(&app.ingest_key)
        .header("content-type", "application/json")
        .body("{\"events\": [")
        .send()
        .await?;
    assert_problem(malformed, StatusCode::BAD_REQUEST).await?;
    let empty = app.post_events(json!([])).await?;
    assert_eq!(
        assert_problem(empty, StatusCode::BAD_REQUEST).await?["errors"][0]["field"],
        "events"
    );

    assert_eq!(app.metric("eye_events_accepted_total").await?, 0.0);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    let big = "x".repeat(2 * 1024 * 1024);
    let mut fat = event(Uuid::now_v7(), "s", 1);
    fat["data"] = json!({ "blob": big });
    let response = app.post_events(json!([fat])).await?;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await?;
    app.stop().await
}
