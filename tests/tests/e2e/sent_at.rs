//! An implausible `sent_at` is refused as `invalid_sent_at`, recorded with its batch mates stored.

use crate::support::{ADMIN_TOKEN, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

fn pageview(id: Uuid, sent_at: &str) -> Value {
    json!({"event_id": id, "session_id": "s", "category": "page interaction", "name": "pageview",
           "data": {"host": "example.com", "path": "/"}, "timestamp": "2021-02-28T16:00:00Z",
           "sent_at": sent_at})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_at_in_year_9999_is_an_invalid_sent_at_error_not_a_correction() -> anyhow::Result<()>
{
    for backend in [Backend::PostgresRedis, Backend::Embedded] {
        let app = TestApp::start(backend).await?;
        let implausible = Uuid::now_v7();
        let batch = json!([
            pageview(implausible, "9999-01-01T00:00:00Z"),
            pageview(Uuid::now_v7(), "2021-02-28T16:00:05Z"),
        ]);
        assert_eq!(app.post_events(batch).await?.status(), StatusCode::ACCEPTED);
        // The batch mate is stored; the implausible event is not.
        app.wait_for_count("SELECT COUNT(*) FROM events", 1).await?;
        app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 1)
            .await?;

        let page: Value = app
            .http
            .get(format!("{}/v1/errors?reason=invalid_sent_at", app.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        let listed = page["errors"].as_array().cloned().unwrap_or_default();
        assert_eq!(listed.len(), 1, "{backend:?}: {page}");
        assert_eq!(listed[0]["event_id"], implausible.to_string());
        let detail = listed[0]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("sent_at 9999-01-01"), "{detail}");
        assert!(detail.contains("implausible"), "{detail}");
        app.stop().await?;
    }
    Ok(())
}
