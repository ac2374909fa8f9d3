//! Admission control: with the queue stalled, requests get 503 with `Retry-After` once their deadline
//! passes (or once the push they joined fails), the bounds on concurrent requests and bytes hold, and
//! nothing answered 503 is ever stored.

use crate::proxy::{FaultyProxy, ProxyMode, authority_of, via};
use crate::support::{Backend, Isolation, TestApp, event, redis_url};
use eye_server::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Generous bound on any one request; the old code let requests wait without limit.
const OUTER: Duration = Duration::from_secs(120);

/// Events per request: a body of roughly 16 KB.
const EVENTS: u32 = 100;

/// What a refused request was told, and which events it carried.
struct Answer {
    status: StatusCode,
    retry_after: bool,
    detail: String,
    ids: Vec<Uuid>,
}

async fn send(http: reqwest::Client, url: String, key: String) -> anyhow::Result<Answer> {
    let ids: Vec<Uuid> = (0..EVENTS).map(|_| Uuid::now_v7()).collect();
    let events: Vec<Value> = ids.iter().map(|id| event(*id, "stalled", 1)).collect();
    let request = http
        .post(url)
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .send();
    let response = tokio::time::timeout(OUTER, request).await??;
    let status = response.status();
    let retry_after = response.headers().contains_key("retry-after");
    let body: Value = response.json().await.unwrap_or_default();
    let detail = body["detail"].as_str().unwrap_or_default().to_owned();
    Ok(Answer {
        status,
        retry_after,
        detail,
        ids,
    })
}

/// Sends `requests` at once to an API whose queue hangs; answers what each was told.
async fn send_while_stalled(
    tune: impl FnOnce(&mut eye_server::Config),
    requests: usize,
) -> anyhow::Result<(Stalled, FaultyProxy, Vec<Answer>)> {
    let proxy = FaultyProxy::start(&authority_of(&redis_url())).await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.redis_url = Some(via(&redis_url(), proxy.addr));
    isolation.config.ingest_deadline = Duration::from_secs(1);
    isolation.config.queue_push_timeout = Duration::from_secs(3);
    tune(&mut isolation.config);
    // The worker reaches Redis directly: only the API's queue hangs.
    let mut direct = isolation.config.clone();
    direct.redis_url = Some(redis_url());
    let worker = eye_server::start(&direct, Role::Worker).await?;
    let app = TestApp::start_with(isolation, Role::Api).await?;
    proxy.set(ProxyMode::Stalled);
    let mut sending = JoinSet::new();
    for _ in 0..requests {
        let url = format!("{}/v1/events", app.base);
        sending.spawn(send(app.http.clone(), url, app.ingest_key.clone()));
    }
    let mut answers = Vec::new();
    while let Some(answer) = sending.join_next().await {
        answers.push(answer??);
    }
    Ok((Stalled { app, worker }, proxy, answers))
}

/// The API under test and the worker beside it.
struct Stalled {
    app: TestApp,
    worker: eye_server::Service,
}

impl Stalled {
    async fn stop(self) -> anyhow::Result<()> {
        self.worker.stop().await;
        self.app.stop().await
    }
}

/// Every request was refused with `Retry-After`; once the queue is back, new events are stored and none
/// of the refused ones ever are.
async fn assert_refused_and_never_stored(
    app: &TestApp,
    proxy: &FaultyProxy,
    answers: &[Answer],
) -> anyhow::Result<()> {
    for answer in answers {
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.detail
        );
        assert!(answer.retry_after, "503 carries Retry-After");
    }
    // Cut, not resumed: what the stalled connections held is dropped, as a push that failed is.
    proxy.set(ProxyMode::Cut);
    proxy.set(ProxyMode::Open);
    let after = Uuid::now_v7();
    // The API's Redis connection reconnects after the cut; until then a push may fail (and say so).
    let mut tries = 0;
    while app
        .post_events(json!([event(after, "after", 2)]))
        .await?
        .status()
        != StatusCode::ACCEPTED
    {
        tries += 1;
        anyhow::ensure!(tries < 100, "the queue never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.wait_for_count(
        &format!("SELECT COUNT(*) FROM events WHERE event_id = '{after}'"),
        1,
    )
    .await?;
    let refused: Vec<String> = answers
        .iter()
        .flat_map(|a| &a.ids)
        .map(|id| format!("'{id}'"))
        .collect();
    let stored = format!(
        "SELECT COUNT(*) FROM events WHERE event_id IN ({})",
        refused.join(",")
    );
    assert_eq!(app.count(&stored).await?, 0, "a 503 never stores");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_queue_stalled_requests_over_the_concurrency_bound_get_503_and_nothing_refused_is_stored()
-> anyhow::Result<()> {
    let (stalled, proxy, answers) =
        send_while_stalled(|config| config.ingest_max_concurrent = 2, 8).await?;
    assert!(
        answers
            .iter()
            .any(|a| a.detail.contains("concurrent ingest requests")),
        "beyond 2 at once, requests are refused at admission"
    );
    let capacity = r#"eye_ingest_refused_total{reason="capacity"}"#;
    assert!(stalled.app.metric(capacity).await? >= 1.0);
    assert_refused_and_never_stored(&stalled.app, &proxy, &answers).await?;
    stalled.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_queue_stalled_requests_over_the_byte_bound_get_503_and_nothing_refused_is_stored()
-> anyhow::Result<()> {
    let (stalled, proxy, answers) =
        send_while_stalled(|config| config.ingest_max_inflight_bytes = 40 * 1024, 8).await?;
    assert!(
        answers
            .iter()
            .any(|a| a.detail.contains("ingest bytes in flight")),
        "two bodies of ~16 KB fill 40 KB"
    );
    assert_refused_and_never_stored(&stalled.app, &proxy, &answers).await?;
    stalled.stop().await
}
