//! Dead jobs: a batch recorded as dead is listed, shown whole, and replayed through the normal path once.

use crate::queue::RedisProxy;
use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp, event};
use chrono::Utc;
use eye_domain::{ApplicationId, IngestBatch, JobId, NewEvent};
use eye_server::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// A batch of `ids.len()` events of the test's application, as the API would have queued it.
fn batch(app: &TestApp, ids: &[Uuid]) -> anyhow::Result<IngestBatch> {
    let events = ids
        .iter()
        .zip(1..)
        .map(|(id, second)| serde_json::from_value::<NewEvent>(event(*id, "dead", second)))
        .collect::<Result<_, _>>()?;
    Ok(IngestBatch {
        job_id: JobId::generate(),
        application_id: ApplicationId::from(Uuid::parse_str(&app.application_id)?),
        received_at: Utc::now(),
        events,
    })
}

async fn get(
    app: &TestApp,
    path_and_query: &str,
    token: &str,
) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .http
        .get(format!("{}{path_and_query}", app.base))
        .bearer_auth(token)
        .send()
        .await?)
}

async fn get_json(app: &TestApp, path_and_query: &str) -> anyhow::Result<Value> {
    let response = get(app, path_and_query, ADMIN_TOKEN).await?;
    anyhow::ensure!(
        response.status() == StatusCode::OK,
        "{path_and_query}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

async fn replay(app: &TestApp, body: Option<Value>) -> anyhow::Result<reqwest::Response> {
    let mut request = app
        .http
        .post(format!("{}/v1/admin/dead-jobs/replay", app.base))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Ok(request.send().await?)
}

async fn replay_json(app: &TestApp, body: Option<Value>) -> anyhow::Result<Value> {
    let response = replay(app, body).await?;
    anyhow::ensure!(
        response.status() == StatusCode::OK,
        "replay: {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// The test's only events are the dead job's (an event id compared as text would miss SQLite's blobs).
const STORED: &str = "SELECT COUNT(*) FROM events";

async fn a_dead_job_is_listed_shown_and_replayed_once(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let ids = [Uuid::now_v7(), Uuid::now_v7()];
    let job = batch(&app, &ids)?;
    let job_id = job.job_id.to_string();
    // Recording twice (a run retried after recording) keeps one row with the latest error and attempts.
    app.store.record_dead_job(&job, "first", 3).await?;
    app.store
        .record_dead_job(&job, "constraint violated", 5)
        .await?;
    assert_eq!(app.metric("eye_dead_jobs").await?, 1.0);

    let page = get_json(&app, "/v1/admin/dead-jobs").await?;
    let items = page["dead_jobs"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["id"], job_id);
    assert_eq!(item["application_id"], app.application_id);
    assert_eq!(item["events"], 2);
    assert_eq!(item["error"], "constraint violated");
    assert_eq!(item["attempts"], 5);
    assert_eq!(item["status"], "dead");
    assert_eq!(item["replayed_at"], Value::Null);
    let first_failed_at = item["first_failed_at"].clone();

    let one = get_json(&app, &format!("/v1/admin/dead-jobs/{job_id}")).await?;
    assert_eq!(one["dead_job"]["id"], job_id);
    let shown: Vec<&str> = one["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["event_id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(shown, [ids[0].to_string(), ids[1].to_string()]);

    let replayed = replay_json(&app, None).await?;
    assert_eq!(replayed["replayed"], 1);
    assert_eq!(replayed["job_ids"], json!([job_id]));
    app.wait_for_count(STORED, 2).await?;

    let listed = get_json(&app, "/v1/admin/dead-jobs?status=replayed").await?;
    assert_eq!(listed["dead_jobs"][0]["id"], job_id);
    assert!(listed["dead_jobs"][0]["replayed_at"].is_string());
    let dead = get_json(&app, "/v1/admin/dead-jobs?status=dead").await?;
    assert_eq!(dead["dead_jobs"], json!([]));
    assert_eq!(app.metric("eye_dead_jobs").await?, 0.0);

    // Nothing is left to replay; naming the job replays it again, and its events are still stored once.
    assert_eq!(replay_json(&app, None).await?["replayed"], 0);
    let again = replay_json(&app, Some(json!({"job_ids": [job_id]}))).await?;
    assert_eq!(again["replayed"], 1);
    app.wait_for_processed_events(4).await?;
    assert_eq!(app.count(STORED).await?, 2);

    // Dying again after a replay makes it dead again, first failure time kept.
    app.store.record_dead_job(&job, "again", 1).await?;
    let dead = get_json(&app, "/v1/admin/dead-jobs?status=dead").await?;
    assert_eq!(dead["dead_jobs"][0]["error"], "again");
    assert_eq!(dead["dead_jobs"][0]["replayed_at"], Value::Null);
    assert_eq!(dead["dead_jobs"][0]["first_failed_at"], first_failed_at);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_is_listed_shown_and_replayed_once_on_postgres() -> anyhow::Result<()> {
    a_dead_job_is_listed_shown_and_replayed_once(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_is_listed_shown_and_replayed_once_on_the_embedded_default() -> anyhow::Result<()>
{
    a_dead_job_is_listed_shown_and_replayed_once(Backend::Embedded).await
}

async fn pages_are_newest_first_and_filtered(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::start_with(Isolation::new(backend).await?, Role::Api).await?;
    let mut recorded = Vec::new();
    for _ in 0..3 {
        let job = batch(&app, &[Uuid::now_v7()])?;
        app.store.record_dead_job(&job, "bad", 1).await?;
        recorded.push(job.job_id.to_string());
    }
    let first = get_json(&app, "/v1/admin/dead-jobs?limit=2").await?;
    let cursor = first["next_cursor"].as_str().unwrap_or_default().to_owned();
    let second = get_json(
        &app,
        &format!("/v1/admin/dead-jobs?limit=2&cursor={cursor}"),
    )
    .await?;
    let listed: Vec<Value> = [&first, &second]
        .iter()
        .flat_map(|page| page["dead_jobs"].as_array().cloned().unwrap_or_default())
        .map(|item| item["id"].clone())
        .collect();
    recorded.reverse();
    assert_eq!(
        listed,
        recorded.iter().map(|id| json!(id)).collect::<Vec<_>>()
    );
    assert_eq!(second["next_cursor"], Value::Null);

    let other = Uuid::now_v7();
    let none = get_json(&app, &format!("/v1/admin/dead-jobs?application_id={other}")).await?;
    assert_eq!(none["dead_jobs"], json!([]));
    let mine = format!("/v1/admin/dead-jobs?application_id={}", app.application_id);
    assert_eq!(
        get_json(&app, &mine).await?["dead_jobs"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    // A replay whose job died again while it was being pushed leaves it dead.
    let newest = JobId::from(Uuid::parse_str(&recorded[0])?);
    let before_it_died = Utc::now() - chrono::Duration::minutes(1);
    assert_eq!(
        app.store
            .mark_dead_jobs_replayed(&[newest], before_it_died)
            .await?,
        0
    );
    assert_eq!(
        app.store
            .mark_dead_jobs_replayed(&[newest], Utc::now())
            .await?,
        1
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_paged_newest_first_and_filtered_on_postgres() -> anyhow::Result<()> {
    pages_are_newest_first_and_filtered(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_paged_newest_first_and_filtered_on_the_embedded_default()
-> anyhow::Result<()> {
    pages_are_newest_first_and_filtered(Backend::Embedded).await
}

async fn bad_request_names(app: &TestApp, path_and_query: &str, name: &str) -> anyhow::Result<()> {
    let response = get(app, path_and_query, ADMIN_TOKEN).await?;
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "{path_and_query}"
    );
    let problem = response.text().await?;
    assert!(problem.contains(name), "{path_and_query}: {problem}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_admin_token_reaches_dead_jobs_and_bad_parameters_are_named() -> anyhow::Result<()>
{
    let app = TestApp::start_with(Isolation::new(Backend::Embedded).await?, Role::Api).await?;
    let response = get(&app, "/v1/admin/dead-jobs", &app.ingest_key).await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let read_key = app
        .http
        .post(format!("{}/v1/admin/read-keys", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "analyst"}))
        .send()
        .await?
        .json::<Value>()
        .await?;
    let read_key = read_key["read_key"].as_str().unwrap_or_default();
    assert!(!read_key.is_empty());
    assert_eq!(
        get(&app, "/v1/admin/dead-jobs", read_key).await?.status(),
        StatusCode::FORBIDDEN
    );
    let replayed = app
        .http
        .post(format!("{}/v1/admin/dead-jobs/replay", app.base))
        .bearer_auth(read_key)
        .send()
        .await?;
    assert_eq!(replayed.status(), StatusCode::FORBIDDEN);

    bad_request_names(&app, "/v1/admin/dead-jobs?cursor=nope", "cursor").await?;
    bad_request_names(
        &app,
        "/v1/admin/dead-jobs?application_id=nope",
        "application_id",
    )
    .await?;
    bad_request_names(&app, "/v1/admin/dead-jobs?status=zombie", "status").await?;
    bad_request_names(&app, "/v1/admin/dead-jobs/nope", "job_id").await?;
    let unknown = get(
        &app,
        &format!("/v1/admin/dead-jobs/{}", Uuid::now_v7()),
        ADMIN_TOKEN,
    )
    .await?;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let not_a_list = replay(&app, Some(json!({"job_ids": "all"}))).await?;
    assert_eq!(not_a_list.status(), StatusCode::BAD_REQUEST);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_queue_unreachable_a_replay_answers_503_and_the_job_stays_dead()
-> anyhow::Result<()> {
    let proxy = RedisProxy::start().await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.redis_url = Some(proxy.url.clone());
    isolation.config.queue_push_timeout = Duration::from_millis(500);
    let app = TestApp::start_with(isolation, Role::Api).await?;
    let job = batch(&app, &[Uuid::now_v7()])?;
    app.store.record_dead_job(&job, "bad", 1).await?;

    proxy.cut().await;
    let response = replay(&app, None).await?;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let dead = get_json(&app, "/v1/admin/dead-jobs?status=dead").await?;
    assert_eq!(dead["dead_jobs"][0]["id"], job.job_id.to_string());
    app.stop().await
}

/// PostgreSQL's jsonb refuses `\u0000`: the batch is kept as JSON text, so a dead job stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_keeps_its_events_byte_for_byte_even_with_nul_characters() -> anyhow::Result<()>
{
    let app = TestApp::start_with(Isolation::new(Backend::PostgresRedis).await?, Role::Api).await?;
    let mut job = batch(&app, &[Uuid::now_v7()])?;
    let mut raw = event(job.events[0].event_id.as_uuid(), "dead", 1);
    raw["data"]["note"] = json!("a\u{0}b");
    job.events[0] = serde_json::from_value(raw)?;
    app.store
        .record_dead_job(&job, "error quoting \u{0}", 1)
        .await?;

    let kept = app.store.dead_job(job.job_id).await?;
    assert_eq!(kept.map(|dead| dead.batch), Some(job.clone()));
    let shown = get_json(&app, &format!("/v1/admin/dead-jobs/{}", job.job_id)).await?;
    assert_eq!(shown["events"][0]["data"]["note"], "a\u{0}b");
    assert_eq!(shown["dead_job"]["error"], "error quoting \u{fffd}");
    app.stop().await
}
