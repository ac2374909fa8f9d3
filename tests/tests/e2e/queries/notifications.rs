//! `GET /v1/notifications` pages: newest first, keyset-paginated by `(created_at, id)`.

use super::admin_page;
use crate::support::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;

/// A 40-minute training program of `user`: the rules congratulate once (`daily_training_dose`).
fn program(user: &str) -> [Value; 2] {
    let event = |name: &str, at: &str| {
        json!({"session_id": user, "user_id": user, "category": "fitness", "name": name,
               "data": {"training_program_id": "2352"}, "timestamp": format!("2021-02-28T{at}Z")})
    };
    [
        event("training_program_started", "16:00:00"),
        event("training_program_finished", "16:40:00"),
    ]
}

/// Every user's program in one batch: one job, so their notifications share a `created_at`.
async fn programs(app: &TestApp, users: &[String]) -> anyhow::Result<()> {
    let events: Vec<Value> = users.iter().flat_map(|u| program(u)).collect();
    let response = app.post_events(Value::Array(events)).await?;
    anyhow::ensure!(
        response.status() == StatusCode::ACCEPTED,
        "{}",
        response.status()
    );
    Ok(())
}

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

async fn notification_pages(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let count = "SELECT COUNT(*) FROM notifications";
    for (n, batch) in ["a", "b", "c"].into_iter().enumerate() {
        programs(&app, &users(batch, 4)).await?;
        app.wait_for_count(count, 4 * (n as i64 + 1)).await?;
    }
    let (mut seen, mut order, mut cursor) = (HashMap::new(), Vec::new(), None::<String>);
    for round in 0.. {
        let path = "/v1/notifications?rule=daily_training_dose&limit=3";
        let page = admin_page(&app, path, cursor.as_deref()).await?;
        for n in page["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let user = n["user_id"].as_str().unwrap_or_default().to_owned();
            *seen.entry(user).or_insert(0) += 1;
            order.push(n["created_at"].as_str().unwrap_or_default().to_owned());
        }
        // Newer notifications arrive while paging; their place (newest first) was read already.
        programs(&app, &users(&format!("new{round}-"), 1)).await?;
        app.wait_for_count(count, 12 + round + 1).await?;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let mut first: Vec<String> = seen
        .keys()
        .filter(|u| !u.starts_with("new"))
        .cloned()
        .collect();
    first.sort();
    let expected: Vec<String> = ["a", "b", "c"].iter().flat_map(|b| users(b, 4)).collect();
    assert_eq!(first, expected, "every notification there before paging");
    assert!(seen.values().all(|n| *n == 1), "each once: {seen:?}");
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        order.iter().map(|t| t.parse()).collect::<Result<_, _>>()?;
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {order:?}"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_pages_list_each_notification_once_newest_first_on_postgres()
-> anyhow::Result<()> {
    notification_pages(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_pages_list_each_notification_once_newest_first_embedded() -> anyhow::Result<()>
{
    notification_pages(Backend::Embedded).await
}
