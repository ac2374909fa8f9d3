//! The SDK against the real service: what it accepted arrives, exactly once.

use crate::support::{Backend, TestApp};
use eye_sdk::{Client, Event};
use serde_json::json;

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
