//! Measurements behind BENCHMARKS.md's data lifecycle section (ignored in CI; run by hand):
//!
//! ```sh
//! cargo test -p eye-tests --test e2e lifecycle_bench -- --ignored --nocapture
//! ```
//!
//! On PostgreSQL, 300,000 events over 300 days in 30,000 sessions: the duration and rows of each
//! retention step deleting the oldest 100 days, the latency of ingest transactions (100 events each,
//! through the worker's own storing path) while the steps run and without them, and the peak memory of
//! exporting every event as NDJSON.

use crate::support::{ADMIN_TOKEN, Backend, TestApp};
use chrono::{Duration as TimeDelta, Utc};
use eye_domain::{ApplicationId, IngestBatch, JobId, NewEvent};
use eye_store::{EventRecord, Store, StoredBatch};
use serde_json::json;
use std::time::{Duration, Instant};

const EVENTS: i64 = 300_000;
const DAYS: i64 = 300;
/// The sweeper's step; `EYE_BENCH_STEP_ROWS` measures another.
fn step_rows() -> u64 {
    std::env::var("EYE_BENCH_STEP_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(1000)
}

async fn fill(app: &TestApp) -> anyhow::Result<()> {
    let app_id = &app.application_id;
    let per_day = EVENTS / DAYS;
    let sql = format!(
        "INSERT INTO events (event_id, application_id, session_id, category, name, data, \"timestamp\", \
         received_at, stored_at, user_id) \
         SELECT gen_random_uuid(), '{app_id}', 's' || (i / 10), 'page interaction', 'pageview', \
         '{{\"host\": \"example.com\", \"path\": \"/\"}}'::jsonb, \
         now() - interval '{DAYS} days' + (i / {per_day}) * interval '1 day' + (i % {per_day}) * interval '1 second', \
         now(), now(), 'u' || (i % 1000) FROM generate_series(0, {EVENTS} - 1) AS i;
         INSERT INTO sessions SELECT application_id, session_id, min(\"timestamp\"), max(\"timestamp\"), count(*) \
         FROM events GROUP BY application_id, session_id;
         ANALYZE events; ANALYZE sessions;"
    );
    use sea_orm::ConnectionTrait;
    app.store.connection().execute_unprepared(&sql).await?;
    Ok(())
}

fn batch(application: ApplicationId, n: usize) -> anyhow::Result<IngestBatch> {
    let now = Utc::now();
    let events: Vec<NewEvent> = (0..n)
        .map(|i| {
            serde_json::from_value(
                json!({"event_id": uuid::Uuid::now_v7(), "session_id": format!("live-{}", i % 10),
                "category": "page interaction", "name": "pageview", "user_id": format!("u{i}"),
                "data": {"host": "example.com", "path": "/"}, "timestamp": now.to_rfc3339()}),
            )
        })
        .collect::<Result<_, _>>()?;
    Ok(IngestBatch {
        job_id: JobId::generate(),
        application_id: application,
        received_at: now,
        events,
    })
}

/// Ingest transactions of 100 events until `stop`; their durations.
async fn ingest_until(
    store: Store,
    application: ApplicationId,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Vec<Duration>> {
    let mut took = Vec::new();
    while !stop.is_cancelled() {
        let batch = batch(application, 100)?;
        let records: Vec<EventRecord<'_>> =
            batch.events.iter().map(EventRecord::unvalidated).collect();
        let started = Instant::now();
        let mut txn = store.begin_ingest().await?;
        txn.insert_batch(StoredBatch {
            application_id: application,
            received_at: batch.received_at,
            events: &records,
            refused: &[],
        })
        .await?;
        txn.commit().await?;
        took.push(started.elapsed());
    }
    Ok(took)
}

fn summary(mut took: Vec<Duration>) -> String {
    took.sort();
    let at = |q: f64| {
        took.get(((took.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    format!(
        "n={} p50={:?} p99={:?} max={:?}",
        took.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

async fn ingest_for(
    store: &Store,
    application: ApplicationId,
    run: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(ingest_until(store.clone(), application, stop.clone()));
    tokio::time::sleep(run).await;
    stop.cancel();
    task.await?
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            })
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn lifecycle_bench() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    fill(&app).await?;
    let application = ApplicationId::from(uuid::Uuid::parse_str(&app.application_id)?);
    println!(
        "ingest alone: {}",
        summary(ingest_for(&app.store, application, Duration::from_secs(10)).await?)
    );

    let cutoff = Utc::now() - TimeDelta::days(DAYS - 100);
    let stop = tokio_util::sync::CancellationToken::new();
    let ingest = tokio::spawn(ingest_until(app.store.clone(), application, stop.clone()));
    let (step_rows, mut steps) = (step_rows(), Vec::new());
    loop {
        let started = Instant::now();
        let step = app.store.retention_step(cutoff, step_rows).await?;
        steps.push((started.elapsed(), step));
        if step.events < step_rows {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let during = ingest.await??;
    for (took, step) in &steps {
        println!("step {took:?}: {step:?}");
    }
    let deleted: u64 = steps.iter().map(|(_, s)| s.events).sum();
    println!(
        "steps: {} deleted {deleted} events; {}",
        steps.len(),
        summary(steps.iter().map(|(t, _)| *t).collect())
    );
    println!("ingest during the steps: {}", summary(during));

    // Peak memory of one NDJSON export of everything left, counted as it arrives, never kept.
    std::fs::write("/proc/self/clear_refs", "5")?;
    let before = peak_rss_kib();
    let started = Instant::now();
    let mut response = app
        .http
        .get(format!("{}/v1/events/export", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    let (mut bytes, mut lines) = (0_usize, 0_usize);
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    println!(
        "export: {lines} lines, {} MB in {:?}; peak RSS {} MiB before, {} MiB during",
        bytes / 1_000_000,
        started.elapsed(),
        before / 1024,
        peak_rss_kib() / 1024
    );
    app.stop().await
}
