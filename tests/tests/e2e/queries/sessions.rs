//! Sessions, a session's events, and counts over time.

use super::Fixture;
use crate::support::{ADMIN_TOKEN, Backend};
use reqwest::StatusCode;
use serde_json::Value;

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
    assert_eq!(ids(&first), [("s1".to_owned(), 3), ("s1".to_owned(), 1)]);
    let cursor = first["next_cursor"].as_str().unwrap_or_default();
    let second = f
        .read(
            &format!("/v1/sessions?limit=2&cursor={cursor}"),
            ADMIN_TOKEN,
        )
        .await?;
    assert_eq!(
        (ids(&second), second["next_cursor"].clone()),
        (vec![("s2".to_owned(), 2)], Value::Null)
    );
    let late = f
        .read("/v1/sessions?from=2021-01-01T09:05:00Z", ADMIN_TOKEN)
        .await?;
    assert_eq!(ids(&late), [("s1".to_owned(), 1), ("s2".to_owned(), 2)]);
    assert_eq!(
        late["sessions"][1]["last_seen"]
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
