//! The path every event takes: 202 -> queue -> worker -> rows.

use crate::support::{Backend, TestApp, event, seed_events};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

async fn seed_events_are_stored_in_one_session(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let response = app.post_events(seed_events()).await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await?;
    assert_eq!(body["accepted"], 3);
    assert_eq!(body["event_ids"].as_array().map(Vec::len), Some(3));

    app.wait_for_count("SELECT COUNT(*) FROM events", 3).await?;
    let session = "e2085be5-9137-4e4e-80b5-f1ffddc25423";
    let sessions = format!("SELECT event_count FROM sessions WHERE session_id = '{session}'");
    assert_eq!(app.count(&sessions).await?, 3);
    let typed =
        "SELECT COUNT(*) FROM events WHERE category = 'form interaction' AND name = 'submit'";
    assert_eq!(app.count(typed).await?, 1);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_events_land_in_postgres_grouped_by_session() -> anyhow::Result<()> {
    seed_events_are_stored_in_one_session(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_stores_the_seed_events_too() -> anyhow::Result<()> {
    seed_events_are_stored_in_one_session(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_event_is_accepted_with_its_id() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let id = Uuid::now_v7();
    let response = app
        .http
        .post(format!("{}/v1/event", app.base))
        .bearer_auth(&app.ingest_key)
        .json(&event(id, "s-1", 1))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.json::<Value>().await?["event_id"], id.to_string());
    app.wait_for_count(
        &format!("SELECT COUNT(*) FROM events WHERE event_id = '{id}'"),
        1,
    )
    .await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_or_duplicated_event_is_stored_and_counted_once() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    for _ in 0..3 {
        let batch = json!([event(a, "dup", 1), event(a, "dup", 1), event(b, "dup", 2)]);
        assert_eq!(app.post_events(batch).await?.status(), StatusCode::ACCEPTED);
    }
    app.wait_for_count("SELECT COUNT(*) FROM events", 2).await?;
    // Every job must have run before the counts are judged: a late duplicate must not add to them.
    app.wait_for_processed_events(9).await?;
    assert_eq!(
        app.count("SELECT event_count FROM sessions WHERE session_id = 'dup'")
            .await?,
        2
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, 2);
    app.stop().await
}

/// 8 clients post overlapping events (each event id is sent by two clients) into 10 shared sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_sharing_sessions_get_exact_counts() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let ids: Vec<Uuid> = (0..800).map(|_| Uuid::now_v7()).collect();
    let session_of = |i: usize| format!("shared-{}", i % 10);
    let clients = (0..8).map(|client| {
        // Client c sends ids [100c, 100c + 200): every id is sent by exactly two clients.
        let mine: Vec<usize> = (client * 100..client * 100 + 200)
            .map(|i| i % ids.len())
            .collect();
        let batches: Vec<Value> = mine
            .chunks(50)
            .map(|chunk| {
                Value::Array(
                    chunk
                        .iter()
                        .map(|&i| event(ids[i], &session_of(i), i as u32))
                        .collect(),
                )
            })
            .collect();
        let app = &app;
        async move {
            for batch in batches {
                let status = app.post_events(batch).await?.status();
                anyhow::ensure!(status == StatusCode::ACCEPTED, "status {status}");
            }
            anyhow::Ok(())
        }
    });
    futures::future::try_join_all(clients).await?;

    app.wait_for_count("SELECT COUNT(*) FROM events", 800)
        .await?;
    app.wait_for_count(
        "SELECT CAST(COALESCE(SUM(event_count), 0) AS BIGINT) FROM sessions",
        800,
    )
    .await?;
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..ids.len() {
        *expected.entry(session_of(i)).or_default() += 1;
    }
    for (session, count) in expected {
        let sql = format!("SELECT event_count FROM sessions WHERE session_id = '{session}'");
        assert_eq!(app.count(&sql).await?, count, "{session}");
    }
    let distinct = app
        .count("SELECT COUNT(DISTINCT event_id) FROM events")
        .await?;
    assert_eq!(distinct, ids.iter().collect::<HashSet<_>>().len() as i64);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_bounds_follow_event_time_not_arrival_order() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    for second in [30, 10, 50, 20] {
        let status = app
            .post_events(json!([event(Uuid::now_v7(), "late", second)]))
            .await?
            .status();
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    app.wait_for_count(
        "SELECT event_count FROM sessions WHERE session_id = 'late'",
        4,
    )
    .await?;
    let first = app
        .count("SELECT COUNT(*) FROM events WHERE session_id = 'late' AND timestamp = (SELECT first_seen FROM sessions WHERE session_id = 'late')")
        .await?;
    let last = app
        .count("SELECT COUNT(*) FROM events WHERE session_id = 'late' AND timestamp = (SELECT last_seen FROM sessions WHERE session_id = 'late')")
        .await?;
    assert_eq!((first, last), (1, 1));
    let first_is_earliest = app
        .count("SELECT COUNT(*) FROM events WHERE session_id = 'late' AND timestamp < (SELECT first_seen FROM sessions WHERE session_id = 'late')")
        .await?;
    assert_eq!(first_is_earliest, 0);
    app.stop().await
}

/// PostgreSQL's jsonb refuses a NUL character, a permanent failure the edge cannot see: the batch's
/// other events are stored and the refused one is recorded with its reason, not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_refuses_is_recorded_and_its_batch_still_stored() -> anyhow::Result<()>
{
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let (good, bad) = (Uuid::now_v7(), Uuid::now_v7());
    let mut refused = event(bad, "nul", 2);
    refused["data"] = json!({ "host": "example.com", "path": "/", "note": "a\u{0}b" });
    let response = app
        .post_events(json!([event(good, "nul", 1), refused]))
        .await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 1)
        .await?;
    let recorded = format!(
        "SELECT COUNT(*) FROM ingest_errors WHERE event_id = '{bad}' AND reason = 'storage_rejected'"
    );
    assert_eq!(app.count(&recorded).await?, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM events WHERE event_id = '{good}'"
        ))
        .await?,
        1
    );
    assert_eq!(
        app.count("SELECT event_count FROM sessions WHERE session_id = 'nul'")
            .await?,
        1
    );
    app.stop().await
}

/// Concurrent requests share queue jobs (group commit), but never across applications: 2 applications ×
/// 60 single-event requests, all in flight at once, each event stored once under its sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_jobs_but_each_event_keeps_its_application() -> anyhow::Result<()>
{
    const PER_APPLICATION: usize = 60;
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let other = app.create_application("mobile").await?;
    let senders = [
        (app.application_id.clone(), app.ingest_key.clone()),
        (
            other["id"].as_str().unwrap_or_default().to_owned(),
            other["ingest_key"].as_str().unwrap_or_default().to_owned(),
        ),
    ];
    let mut requests = tokio::task::JoinSet::new();
    let mut sent = BTreeMap::new();
    for (application, key) in &senders {
        for n in 0..PER_APPLICATION {
            let id = Uuid::now_v7();
            sent.insert(id.to_string(), application.clone());
            let request = app
                .http
                .post(format!("{}/v1/event", app.base))
                .bearer_auth(key)
                .json(&event(id, &format!("s-{application}"), n as u32));
            requests.spawn(async move { request.send().await.map(|r| r.status()) });
        }
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status??, StatusCode::ACCEPTED);
    }
    let total = (2 * PER_APPLICATION) as i64;
    app.wait_for_count("SELECT COUNT(*) FROM events", total)
        .await?;
    let stored = app
        .store
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            app.store.connection().get_database_backend(),
            "SELECT event_id::text AS event_id, application_id::text AS application_id FROM events",
        ))
        .await?;
    let stored: BTreeMap<String, String> = stored
        .iter()
        .map(|row| {
            Ok((
                row.try_get("", "event_id")?,
                row.try_get("", "application_id")?,
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()?;
    assert_eq!(stored, sent);
    app.stop().await
}
