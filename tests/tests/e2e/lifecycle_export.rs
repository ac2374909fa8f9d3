//! `GET /v1/events/export`: every matching event as NDJSON, in the shape and order of `GET /v1/events`
//! (oldest or newest first), across more rows than a page, and only the applications a read key may
//! read.

use crate::queries::Fixture;
use crate::support::{ADMIN_TOKEN, Backend};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// More than two export pages (1,000 rows each) beyond the fixture's six events.
const EXTRA: usize = 2500;

/// `EXTRA` events of `web`, sent in requests of 1,000.
async fn fill(f: &Fixture) -> anyhow::Result<()> {
    let events: Vec<Value> = (0..EXTRA)
        .map(|i| {
            json!({"session_id": format!("bulk-{}", i % 7), "category": "page interaction",
                   "name": "pageview", "data": {"host": "example.com", "path": format!("/{i}")},
                   "timestamp": format!("2021-01-02T00:{:02}:{:02}Z", i / 60 % 60, i % 60)})
        })
        .collect();
    for chunk in events.chunks(1000) {
        let sent = f.app.post_events(json!(chunk)).await?;
        anyhow::ensure!(sent.status() == StatusCode::ACCEPTED, "{}", sent.status());
    }
    f.app
        .wait_for_count("SELECT COUNT(*) FROM events", 6 + EXTRA as i64)
        .await
}

/// The export's lines, parsed, after checking its status and media type.
async fn export(f: &Fixture, query: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let response = f.get(&format!("/v1/events/export?{query}"), token).await?;
    anyhow::ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(media.starts_with("application/x-ndjson"), "{media}");
    let text = response.text().await?;
    anyhow::ensure!(
        text.is_empty() || text.ends_with('\n'),
        "last line unterminated"
    );
    text.lines()
        .map(|line| Ok(serde_json::from_str(line)?))
        .collect()
}

/// Every event `GET /v1/events` answers for `query`, through all its pages.
async fn paged(f: &Fixture, query: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = f
            .read(&format!("/v1/events?limit=1000&{query}{after}"), token)
            .await?;
        events.extend(page["events"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(events),
        }
    }
}

fn labels(events: &[Value]) -> String {
    let labels: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["label"].as_str().unwrap_or("?"))
        .collect();
    labels.join(" ")
}

async fn export_matches_the_query_api(backend: Backend) -> anyhow::Result<()> {
    let f = Fixture::start(backend).await?;
    fill(&f).await?;
    let everything = export(&f, "", ADMIN_TOKEN).await?;
    assert_eq!(everything.len(), 6 + EXTRA);
    assert_eq!(everything, paged(&f, "", ADMIN_TOKEN).await?);
    let newest = export(&f, "order=desc", ADMIN_TOKEN).await?;
    assert_eq!(newest, paged(&f, "order=desc", ADMIN_TOKEN).await?);
    assert!(
        newest.iter().eq(everything.iter().rev()),
        "order=desc is the same export, newest first"
    );

    let u1 = export(&f, "user_id=u1", ADMIN_TOKEN).await?;
    assert_eq!(labels(&u1), "a1 a2 b1 a3");
    let web = f.app.application_id.clone();
    let query = format!("application_id={web}&category=page%20interaction&to=2021-01-01T10:30:00Z");
    assert_eq!(labels(&export(&f, &query, ADMIN_TOKEN).await?), "a1 a2 a4");

    let (_, other_only) = f.read_key(Some(vec![&f.other_id])).await?;
    assert_eq!(labels(&export(&f, "", &other_only).await?), "b1");
    let forbidden = f
        .get(
            &format!("/v1/events/export?application_id={web}"),
            &other_only,
        )
        .await?;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let (_, reader) = f.read_key(None).await?;
    assert_eq!(export(&f, "", &reader).await?.len(), 6 + EXTRA);

    let bad = f
        .get("/v1/events/export?from=yesterday", ADMIN_TOKEN)
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let ingest = f.get("/v1/events/export", &f.app.ingest_key).await?;
    assert_eq!(ingest.status(), StatusCode::FORBIDDEN);
    f.app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_every_event_as_get_events_pages_them_on_postgres() -> anyhow::Result<()> {
    export_matches_the_query_api(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_every_event_as_get_events_pages_them_embedded() -> anyhow::Result<()> {
    export_matches_the_query_api(Backend::Embedded).await
}
