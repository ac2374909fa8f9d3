//! Sessions, a session's events, and counts over time.

use super::{Fixture, admin_page};
use crate::support::{ADMIN_TOKEN, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn sessions_and_counts(backend: Backend) -> anyhow::Result<()> {
    let f = Fixture::start(backend).await?;
    let first = f.read("/v1/sessions?limit=2", ADMIN_TOKEN).await?;
    let ids = |page: &Value| -> Vec<(String, i64)> {
        let sessions = page["sessions"].as_array().cloned().unwrap_or_default();
        sessions
            .iter()
            .map(|s| {
                (
                    s["session_id"].as_str().unwrap_or_default().to_owned(),
                    s["event_count"].as_i64().unwrap_or(-1),
                )
            })
            .collect()
    };
    // Key order: `web` (created first, so its UUIDv7 sorts first) s1, s2, then `other`'s s1.
    assert_eq!(ids(&first), [("s1".to_owned(), 3), ("s2".to_owned(), 2)]);
    let cursor = first["next_cursor"].as_str().unwrap_or_default();
    let second = f
        .read(
            &format!("/v1/sessions?limit=2&cursor={cursor}"),
            ADMIN_TOKEN,
        )
        .await?;
    assert_eq!(
        (ids(&second), second["next_cursor"].clone()),
        (vec![("s1".to_owned(), 1)], Value::Null)
    );
    let late = f
        .read("/v1/sessions?from=2021-01-01T09:05:00Z", ADMIN_TOKEN)
        .await?;
    assert_eq!(ids(&late), [("s2".to_owned(), 2), ("s1".to_owned(), 1)]);
    assert_eq!(
        late["sessions"][0]["last_seen"]
            .as_str()
            .map(|t| t.starts_with("2021-01-01T11:00:00")),
        Some(true)
    );

    let web = f.app.application_id.clone();
    let session = f
        .labels(
            &format!("/v1/sessions/s1/events?application_id={web}"),
            ADMIN_TOKEN,
        )
        .await?;
    assert_eq!(session.join(" "), "a1 a2 a3");
    assert_eq!(
        f.labels("/v1/sessions/s2/events", ADMIN_TOKEN)
            .await?
            .join(" "),
        "a4 a5"
    );
    let ambiguous = f.get("/v1/sessions/s1/events", ADMIN_TOKEN).await?;
    assert_eq!(ambiguous.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        ambiguous.json::<Value>().await?["errors"][0]["field"],
        "application_id"
    );
    assert_eq!(
        f.get("/v1/sessions/nope/events", ADMIN_TOKEN)
            .await?
            .status(),
        StatusCode::NOT_FOUND
    );

    let range = "from=2021-01-01T09:00:00Z&to=2021-01-01T12:00:00Z";
    let hourly = f
        .read(
            &format!("/v1/stats/events?group_by=category&interval=hour&{range}"),
            ADMIN_TOKEN,
        )
        .await?;
    assert_eq!(
        buckets(&hourly),
        [
            ("09:00", "form interaction", 1),
            ("09:00", "page interaction", 3),
            ("10:00", "page interaction", 1),
            ("11:00", "page interaction", 1)
        ]
        .map(owned)
    );
    let by_name = f
        .read(
            &format!(
                "/v1/stats/events?group_by=name&interval=day&category=page%20interaction&{range}"
            ),
            ADMIN_TOKEN,
        )
        .await?;
    assert_eq!(
        buckets(&by_name),
        [("00:00", "cta click", 1), ("00:00", "pageview", 4)].map(owned)
    );
    let by_app = f
        .read(
            &format!(
                "/v1/stats/events?group_by=application&interval=minute&{range}&application_id={web}"
            ),
            ADMIN_TOKEN,
        )
        .await?;
    assert_eq!(buckets(&by_app).iter().map(|b| b.2).sum::<i64>(), 5);
    assert!(buckets(&by_app).iter().all(|b| b.1 == web));
    f.app.stop().await
}

fn owned((time, group, count): (&str, &str, i64)) -> (String, String, i64) {
    (time.to_owned(), group.to_owned(), count)
}

/// `(HH:MM of the start, group, count)` of each bucket; starts are checked to be on 2021-01-01 UTC.
fn buckets(stats: &Value) -> Vec<(String, String, i64)> {
    let buckets = stats["buckets"].as_array().cloned().unwrap_or_default();
    buckets
        .iter()
        .map(|b| {
            let start =
                chrono::DateTime::parse_from_rfc3339(b["start"].as_str().unwrap_or_default())
                    .map(|t| t.to_utc().format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
            let time = start
                .strip_prefix("2021-01-01 ")
                .unwrap_or(&start)
                .to_owned();
            (
                time,
                b["group"].as_str().unwrap_or_default().to_owned(),
                b["count"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_session_events_and_counts_over_time_on_postgres() -> anyhow::Result<()> {
    sessions_and_counts(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_session_events_and_counts_over_time_embedded() -> anyhow::Result<()> {
    sessions_and_counts(Backend::Embedded).await
}

/// The session ids of a page of sessions and its cursor.
async fn session_page(app: &TestApp, cursor: Option<&str>) -> anyhow::Result<(Vec<String>, Value)> {
    let page = admin_page(app, "/v1/sessions?limit=2", cursor).await?;
    let sessions = page["sessions"].as_array().cloned().unwrap_or_default();
    let ids = sessions
        .iter()
        .map(|s| s["session_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    Ok((ids, page["next_cursor"].clone()))
}

fn pageview(session: &str, at: &str) -> Value {
    json!({"session_id": session, "category": "page interaction", "name": "pageview",
           "data": {"host": "example.com", "path": "/"}, "timestamp": format!("2021-01-01T{at}Z")})
}

/// s1, s2, s3 started in that order; after the first page (s1, s2) a late event moves s3's start before
/// all of them. Ordered by start, s3 would now sit behind the cursor and be on neither page.
async fn late_event_between_pages(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let sessions = json!([
        pageview("s1", "09:00:00"),
        pageview("s2", "09:10:00"),
        pageview("s3", "09:20:00")
    ]);
    assert_eq!(
        app.post_events(sessions).await?.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for_count("SELECT COUNT(*) FROM sessions", 3)
        .await?;
    let (first, cursor) = session_page(&app, None).await?;
    let late = json!([pageview("s3", "08:00:00")]);
    assert_eq!(app.post_events(late).await?.status(), StatusCode::ACCEPTED);
    app.wait_for_count(
        "SELECT event_count FROM sessions WHERE session_id = 's3'",
        2,
    )
    .await?;
    let (second, last) = session_page(&app, cursor.as_str()).await?;
    assert_eq!(
        (first, second),
        (vec!["s1".into(), "s2".into()], vec!["s3".to_owned()])
    );
    assert_eq!(last, Value::Null);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_event_between_two_pages_never_hides_a_session_on_postgres() -> anyhow::Result<()> {
    late_event_between_pages(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_event_between_two_pages_never_hides_a_session_embedded() -> anyhow::Result<()> {
    late_event_between_pages(Backend::Embedded).await
}
