//! The SDK against the real service: what it accepted arrives, exactly once.

use crate::support::{Backend, TestApp};
use chrono::{TimeZone, Utc};
use eye_sdk::{Client, Event, EventError, EventId, Problem};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_tracked_from_four_tasks_are_stored_exactly_once() -> anyhow::Result<()>
{
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let client = Client::builder(app.base.clone(), app.ingest_key.clone()).build()?;
    let tasks = (0..4).map(|task| {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..2_500 {
                let event = Event::new(format!("sdk-{}", i % 50), "page interaction", "pageview")
                    .data(json!({"host": "example.com", "path": format!("/{task}/{i}")}));
                client.track(event).await?;
            }
            anyhow::Ok(())
        })
    });
    for task in futures::future::join_all(tasks).await {
        task??;
    }
    let summary = client.flush().await?;
    assert_eq!(summary.failed, 0);
    assert_eq!(client.stats().sent, 10_000);

    app.wait_for_count("SELECT COUNT(*) FROM events", 10_000)
        .await?;
    app.wait_for_processed_events(10_000).await?;
    assert_eq!(
        app.count("SELECT COUNT(DISTINCT event_id) FROM events")
            .await?,
        10_000
    );
    assert_eq!(
        app.count("SELECT CAST(SUM(event_count) AS BIGINT) FROM sessions")
            .await?,
        10_000
    );
    client.shutdown(std::time::Duration::from_secs(5)).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_surfaces_as_an_error_from_the_sdk() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    let client = Client::builder(app.base.clone(), "eye_not-a-key").build()?;
    let result = client
        .send(vec![Event::new("s", "page interaction", "pageview")])
        .await;
    let error = result.expect_err("an unknown key is refused");
    assert_eq!(error.status(), Some(401));
    app.stop().await
}

fn pageview() -> Event {
    Event::new("s", "page interaction", "pageview")
        .data(json!({"host": "example.com", "path": "/"}))
}

/// Events at and just past each of the server's rules, and the field each one breaks.
fn edge_cases() -> Vec<(Event, Option<&'static str>)> {
    let year_10000 = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).single();
    vec![
        (pageview(), None),
        (Event::new("", "c", "n"), Some("session_id")),
        (Event::new(" \t ", "c", "n"), Some("session_id")),
        (Event::new("x".repeat(128), "c", "n"), None),
        (Event::new("x".repeat(129), "c", "n"), Some("session_id")),
        (Event::new("s", "é".repeat(64), "n"), None),
        (Event::new("s", "é".repeat(65), "n"), Some("category")),
        (Event::new("s", "c", "a\u{0}b"), Some("name")),
        (pageview().user_id("u\n1"), Some("user_id")),
        (pageview().user_id(""), Some("user_id")),
        (pageview().user_id("ü".repeat(128)), None),
        (pageview().user_id("u".repeat(129)), Some("user_id")),
        (pageview().device_id("d\t"), Some("device_id")),
        (pageview().device_id("d".repeat(129)), Some("device_id")),
        (pageview().data(json!([1])), Some("data")),
        (
            pageview().timestamp(year_10000.unwrap_or_default()),
            Some("timestamp"),
        ),
    ]
}

/// The field the server names in its 400 for a one-event batch; `None` for a 202.
async fn server_verdict(app: &TestApp, event: &Event) -> anyhow::Result<Option<String>> {
    let response = app.post_events(json!([event])).await?;
    if response.status() == StatusCode::ACCEPTED {
        return Ok(None);
    }
    anyhow::ensure!(response.status() == StatusCode::BAD_REQUEST, "{response:?}");
    let problem: Value = response.json().await?;
    let field = problem["errors"][0]["field"].as_str().unwrap_or_default();
    Ok(Some(field.trim_start_matches("events[0].").to_owned()))
}

/// One source of truth: for every edge case the SDK refuses exactly what the server refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_refuses_exactly_the_events_the_server_refuses() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    for (event, expected) in edge_cases() {
        let sdk = event.validate().err().and_then(|e| EventError::field(&e));
        let server = server_verdict(&app, &event).await?;
        assert_eq!(sdk, expected, "SDK on {event:?}");
        assert_eq!(server.as_deref(), expected, "server on {event:?}");
    }
    app.stop().await
}

/// The server's 400 names single events the way the SDK reads them, so the SDK can fail those
/// and resend the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_400_names_the_bad_event_as_the_sdk_reads_it() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    let mut events: Vec<Value> = (0..11)
        .map(|_| serde_json::to_value(pageview().user_id("u1")))
        .collect::<Result<_, _>>()?;
    events[3]["user_id"] = json!("u\n1");
    let response = app.post_events(json!(events)).await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let problem: Problem = response.json().await?;
    let named = problem.event_errors().unwrap_or_default();
    assert_eq!(named.keys().copied().collect::<Vec<_>>(), [3]);
    assert_eq!(named[&3][0].field, "user_id");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_good_events_and_one_bad_user_id_store_ten_and_fail_one() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let failed = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&failed);
    let client = Client::builder(app.base.clone(), app.ingest_key.clone())
        .on_error(move |failure| {
            if let Ok(mut failed) = sink.lock() {
                failed.extend_from_slice(failure.event_ids);
            }
        })
        .build()?;
    let bad = EventId::new_v7();
    for n in 0..11 {
        let event = pageview();
        let tracked = if n == 3 {
            client.track(event.user_id("u\n1").event_id(bad)).await
        } else {
            client.track(event.user_id("u1")).await
        };
        assert_eq!(tracked.is_err(), n == 3, "only the bad event is refused");
    }
    client.shutdown(Duration::from_secs(30)).await?;

    let stats = client.stats();
    assert_eq!((stats.sent, stats.failed), (10, 1));
    assert_eq!(
        *failed.lock().map_err(|_| anyhow::anyhow!("poisoned"))?,
        [bad]
    );
    app.wait_for_processed_events(10).await?;
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, 10);
    app.stop().await
}
