//! `GET /v1/errors` pages: rows this version cannot read are passed over before a page is cut, so they
//! never shorten a page nor end the paging early.

use super::admin_page;
use crate::support::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

/// A pageview whose path breaks the built-in schema (`^/`): recorded as `invalid_payload`.
fn refused() -> Value {
    json!({"event_id": Uuid::now_v7(), "session_id": "e", "category": "page interaction", "name": "pageview",
           "data": {"host": "example.com", "path": "no-slash"}, "timestamp": "2021-01-01T09:00:00Z"})
}

/// Makes the rows at these positions (oldest first) unreadable the way an older or newer version could
/// have left them.
async fn spoil(app: &TestApp, set: &str, offset: u32, count: u32) -> anyhow::Result<()> {
    let sql = format!(
        "UPDATE ingest_errors SET {set} WHERE id IN \
         (SELECT id FROM ingest_errors ORDER BY id LIMIT {count} OFFSET {offset})"
    );
    sea_orm::ConnectionTrait::execute_unprepared(app.store.connection(), &sql).await?;
    Ok(())
}

async fn error_pages(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let events = Value::Array((0..7).map(|_| refused()).collect());
    assert_eq!(
        app.post_events(events).await?.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 7)
        .await?;
    // Of the 7 rows, newest first, the 3rd to 5th cannot be read: a reason code this version does not
    // know (two) and a type left empty (one). A page of 2 ends right before them.
    spoil(&app, "reason = 'from_a_newer_version'", 3, 2).await?;
    spoil(&app, "category = NULL", 2, 1).await?;
    let (mut seen, mut sizes, mut cursor) = (HashSet::new(), Vec::new(), None::<String>);
    loop {
        let page = admin_page(&app, "/v1/errors?limit=2", cursor.as_deref()).await?;
        let errors = page["errors"].as_array().cloned().unwrap_or_default();
        sizes.push(errors.len());
        for error in errors {
            assert!(
                seen.insert(error["event_id"].clone()),
                "listed twice: {error}"
            );
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
        anyhow::ensure!(sizes.len() < 10, "paging does not end: {sizes:?}");
    }
    assert_eq!(sizes, [2, 2], "full pages, then the end");
    assert_eq!(seen.len(), 4, "every readable error, once");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_error_rows_neither_shorten_a_page_nor_end_the_paging_on_postgres()
-> anyhow::Result<()> {
    error_pages(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_error_rows_neither_shorten_a_page_nor_end_the_paging_embedded()
-> anyhow::Result<()> {
    error_pages(Backend::Embedded).await
}
