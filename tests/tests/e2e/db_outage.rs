//! Ingest does not depend on the database: with PostgreSQL unreachable, known keys are still accepted,
//! unknown ones get a quick 503, and what was accepted is stored once the database is back.

use crate::proxy::{FaultyProxy, ProxyMode, authority_of, via};
use crate::support::{Backend, Isolation, TestApp, event};
use eye_server::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// Generous bound on any one call while the database is away: the old code took 10 s and answered 500.
const OUTER: Duration = Duration::from_secs(60);

async fn post(
    app: &TestApp,
    key: &str,
    id: Uuid,
    second: u32,
) -> anyhow::Result<reqwest::Response> {
    let request = app
        .http
        .post(format!("{}/v1/events", app.base))
        .bearer_auth(key)
        .json(&json!({ "events": [event(id, "outage", second)] }))
        .send();
    Ok(tokio::time::timeout(OUTER, request).await??)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_cut_known_keys_are_accepted_unknown_ones_get_503_and_all_accepted_is_stored()
-> anyhow::Result<()> {
    ingest_through_an_outage(ProxyMode::Cut).await
}

/// A database that hangs (rather than refusing connections) is what made POST wait 10 s, then answer 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_hanging_known_keys_are_accepted_unknown_ones_get_503_and_all_accepted_is_stored()
-> anyhow::Result<()> {
    ingest_through_an_outage(ProxyMode::Stalled).await
}

async fn ingest_through_an_outage(outage: ProxyMode) -> anyhow::Result<()> {
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    let proxy = FaultyProxy::start(&authority_of(&isolation.config.database_url)).await?;
    isolation.config.database_url = via(&isolation.config.database_url, proxy.addr);
    isolation.config.auth_cache_ttl = Duration::from_millis(200);
    let app = TestApp::start_with(isolation, Role::All).await?;
    let other = app.create_application("never-seen").await?;
    let unseen_key = other["ingest_key"].as_str().unwrap_or_default().to_owned();
    let before = Uuid::now_v7();
    assert_eq!(
        post(&app, &app.ingest_key, before, 1).await?.status(),
        StatusCode::ACCEPTED
    );
    // Past the cache's lifetime: the key must now come from what was verified before.
    tokio::time::sleep(Duration::from_millis(400)).await;

    proxy.set(outage);
    let during = Uuid::now_v7();
    let known = post(&app, &app.ingest_key, during, 2).await?;
    assert_eq!(
        known.status(),
        StatusCode::ACCEPTED,
        "known key, database cut"
    );
    let unknown = post(&app, &unseen_key, Uuid::now_v7(), 3).await?;
    assert_eq!(unknown.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(unknown.headers().contains_key("retry-after"));
    let unverifiable = r#"eye_ingest_refused_total{reason="key_unverifiable"}"#;
    assert_eq!(app.metric(unverifiable).await?, 1.0);
    let ready = app.http.get(format!("{}/ready", app.base)).send();
    let ready = tokio::time::timeout(OUTER, ready).await??;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let readiness: serde_json::Value = ready.json().await?;
    assert_eq!(readiness, json!({"database": false, "queue": true}));

    proxy.set(ProxyMode::Open);
    let stored = format!("SELECT COUNT(*) FROM events WHERE event_id IN ('{before}', '{during}')");
    app.wait_for_count(&stored, 2).await?;
    app.stop().await
}
