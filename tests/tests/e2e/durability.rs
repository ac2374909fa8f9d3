//! The queue's durability: what a push answers, retention of finished jobs, synced SQLite, and Redis
//! going away and coming back (on private Redis servers the tests may stop and kill).

use crate::private_redis::{CapturedLogs, PrivateRedis};
use crate::support::{Backend, Isolation, TestApp, event, redis_url};
use anyhow::Context;
use apalis::prelude::TaskSink;
use apalis_redis::{Config as RedisConfig, RedisStorage};
use chrono::Utc;
use eye_domain::{ApplicationId, IngestBatch, JobId, NewEvent};
use eye_server::Role;
use eye_store::{Store, StoreOptions};
use eye_worker::{Queue, QueueError, Watermark};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

fn batch(application_id: ApplicationId, i: u32) -> anyhow::Result<IngestBatch> {
    let event: NewEvent = serde_json::from_value(event(Uuid::now_v7(), "durability", i))?;
    Ok(IngestBatch {
        job_id: JobId::generate(),
        application_id,
        received_at: Utc::now(),
        events: vec![event],
    })
}

fn some_application() -> anyhow::Result<ApplicationId> {
    Ok(ApplicationId::generate())
}

/// Every field of a job's meta hash, for comparing layouts.
async fn meta_of(
    conn: &mut redis::aio::MultiplexedConnection,
    queue: &str,
    id: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(conn.hgetall(format!("{queue}:meta:{id}")).await?)
}

#[tokio::test]
async fn our_push_writes_jobs_exactly_as_apalis_does_but_straight_to_the_active_list()
-> anyhow::Result<()> {
    let isolation = Isolation::new(Backend::PostgresRedis).await?;
    let name = isolation.config.queue_name.clone();
    let queue = Queue::open(&eye_server::queue_config(&isolation.config)).await?;
    let application = some_application()?;
    queue.push_all(vec![batch(application, 1)?]).await?;
    let client = redis::Client::open(redis_url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let ours: Vec<String> = conn.lrange(format!("{name}:active"), 0, -1).await?;
    anyhow::ensure!(ours.len() == 1, "our job is on the active list: {ours:?}");

    let mut apalis = RedisStorage::<IngestBatch>::new(client.get_connection_manager().await?)
        .with_config(RedisConfig::default().queue(&name));
    apalis.push_bulk(vec![batch(application, 2)?]).await?;
    let theirs: Vec<String> = conn.zrange(format!("{name}:scheduled"), 0, -1).await?;
    anyhow::ensure!(theirs.len() == 1, "apalis' job is scheduled: {theirs:?}");

    assert_eq!(
        meta_of(&mut conn, &name, &ours[0]).await?,
        meta_of(&mut conn, &name, &theirs[0]).await?
    );
    let data: BTreeMap<String, String> = conn.hgetall(format!("{name}:data")).await?;
    for id in [&ours[0], &theirs[0]] {
        let job: IngestBatch = serde_json::from_str(&data[id])?;
        assert_eq!(job.application_id, application);
    }
    isolation.cleanup().await
}

#[tokio::test]
async fn a_push_that_redis_runs_after_its_deadline_is_refused_and_writes_nothing()
-> anyhow::Result<()> {
    let redis = PrivateRedis::start(true).await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.redis_url = Some(redis.url());
    isolation.config.queue_push_timeout = Duration::from_millis(400);
    let name = isolation.config.queue_name.clone();
    let queue = Queue::open(&eye_server::queue_config(&isolation.config)).await?;

    // One push goes through first: Redis then knows the script, so the stalled push's EVALSHA would
    // run (and not fail with NOSCRIPT) once Redis resumes.
    queue.push_all(vec![batch(some_application()?, 0)?]).await?;
    // A stalled Redis: the push reaches its input buffer, but nothing runs until SIGCONT.
    redis.signal("STOP")?;
    let pushed = queue.push_all(vec![batch(some_application()?, 1)?]).await;
    redis.signal("CONT")?;
    assert!(
        matches!(pushed, Err(QueueError::Unavailable(_))),
        "{pushed:?}"
    );
    // A ping on the queue's own connection is answered after the stalled push has run.
    queue.ping().await?;
    let mut conn = redis.connection().await?;
    let jobs: u64 = conn.hlen(format!("{name}:data")).await?;
    let active: u64 = conn.llen(format!("{name}:active")).await?;
    assert_eq!(
        (jobs, active),
        (1, 1),
        "only the push answered with Ok wrote a job"
    );
    assert_eq!(queue.depth().await?, 1);
    isolation.cleanup().await
}

/// Waits until the queue has no job waiting or in flight.
async fn wait_until_clear(queue: &Queue) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    while queue.watermark().await? != Watermark::Clear {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "jobs still unfinished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Accepts three requests and waits until their events are stored (their jobs are then finished).
async fn finished_jobs(app: &TestApp) -> anyhow::Result<()> {
    for i in 0..3 {
        let response = app
            .post_events(json!([event(Uuid::now_v7(), "retention", i)]))
            .await?;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    app.wait_for_processed_events(3).await
}

#[tokio::test]
async fn retention_deletes_finished_redis_jobs_and_keeps_pending_ones() -> anyhow::Result<()> {
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.queue_retention = Duration::from_secs(3600);
    let name = isolation.config.queue_name.clone();
    let config = eye_server::queue_config(&isolation.config);
    let app = TestApp::start_with(isolation, Role::All).await?;
    finished_jobs(&app).await?;
    let queue = Queue::open(&config).await?;
    // Events are counted before their job is acknowledged: wait until no job is waiting or in flight.
    wait_until_clear(&queue).await?;
    let client = redis::Client::open(redis_url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut apalis = RedisStorage::<IngestBatch>::new(client.get_connection_manager().await?)
        .with_config(RedisConfig::default().queue(&name));
    let later = apalis::prelude::TaskBuilder::new(batch(some_application()?, 9)?)
        .run_after(Duration::from_secs(3600))
        .build();
    apalis.push_task(later).await?;
    // The service's own sweeper may already have moved finished ids to our sorted set.
    let mut done: Vec<String> = conn.smembers(format!("{name}:done")).await?;
    let moved: Vec<String> = conn.zrange(format!("{name}:eye:finished"), 0, -1).await?;
    done.extend(moved);
    anyhow::ensure!(!done.is_empty(), "the requests' jobs are done");

    let deleted = queue.delete_finished(Duration::ZERO).await?;
    assert_eq!(deleted, done.len() as u64);
    let left: (u64, u64) = (
        conn.scard(format!("{name}:done")).await?,
        conn.zcard(format!("{name}:eye:finished")).await?,
    );
    assert_eq!(left, (0, 0), "no finished id is left behind");
    for id in &done {
        let meta: bool = conn.exists(format!("{name}:meta:{id}")).await?;
        let data: bool = conn.hexists(format!("{name}:data"), id).await?;
        assert!(!meta && !data, "job {id} deleted");
    }
    let pending: Vec<String> = conn.zrange(format!("{name}:scheduled"), 0, -1).await?;
    let remaining: u64 = conn.hlen(format!("{name}:data")).await?;
    assert_eq!((pending.len(), remaining), (1, 1), "the pending job stays");
    let meta: bool = conn.exists(format!("{name}:meta:{}", pending[0])).await?;
    assert!(meta);
    app.stop().await
}

#[tokio::test]
async fn retention_deletes_finished_sqlite_jobs_and_keeps_pending_ones() -> anyhow::Result<()> {
    let mut isolation = Isolation::new(Backend::Embedded).await?;
    isolation.config.queue_retention = Duration::from_secs(3600);
    let config = eye_server::queue_config(&isolation.config);
    let queue_url = format!("sqlite://{}", isolation.config.queue_path.display());
    let name = isolation.config.queue_name.clone();
    let app = TestApp::start_with(isolation, Role::All).await?;
    finished_jobs(&app).await?;
    let queue = Queue::open(&config).await?;
    wait_until_clear(&queue).await?;
    let jobs = sea_orm::Database::connect(&queue_url).await?;
    let pending = format!(
        "INSERT INTO Jobs (job, id, job_type, status, run_at) VALUES (x'7b7d', 'later', '{name}', \
         'Pending', strftime('%s', 'now') + 3600)"
    );
    sea_orm::ConnectionTrait::execute_unprepared(&jobs, &pending).await?;
    let count = |status: &'static str| {
        let jobs = jobs.clone();
        async move {
            let sql = format!("SELECT COUNT(*) FROM Jobs WHERE status = '{status}'");
            let row = sea_orm::ConnectionTrait::query_one_raw(
                &jobs,
                sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Sqlite, sql),
            )
            .await?
            .context("a count")?;
            anyhow::Ok(row.try_get_by_index::<i64>(0)?)
        }
    };
    let done = count("Done").await?;
    anyhow::ensure!(done > 0, "the requests' jobs are done");

    assert_eq!(queue.delete_finished(Duration::ZERO).await?, done as u64);
    assert_eq!((count("Done").await?, count("Pending").await?), (0, 1));
    jobs.close().await?;
    app.stop().await
}

#[tokio::test]
async fn the_embedded_events_database_runs_in_wal_mode_with_a_busy_timeout() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = StoreOptions {
        url: format!("sqlite://{}?mode=rwc", dir.path().join("eye.db").display()),
        max_connections: 2,
    };
    let store = Store::connect(&options).await?;
    let db = store.connection();
    let pragma = |name: &'static str| async move {
        let row = sea_orm::ConnectionTrait::query_one_raw(
            db,
            sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                format!("PRAGMA {name}"),
            ),
        )
        .await?
        .context("a pragma")?;
        anyhow::Ok(row)
    };
    assert_eq!(
        pragma("journal_mode")
            .await?
            .try_get_by_index::<String>(0)?,
        "wal"
    );
    assert_eq!(pragma("synchronous").await?.try_get_by_index::<i64>(0)?, 2);
    assert!(pragma("busy_timeout").await?.try_get_by_index::<i64>(0)? >= 1000);
    Ok(())
}

/// Waits until the service has logged `line`; fails after a generous bound.
async fn wait_for_log(logs: &CapturedLogs, line: &str) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    while !logs.text().contains(line) {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "never logged {line:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Posts one event until it is accepted (the API reconnects to Redis on its own).
async fn post_until_accepted(app: &TestApp, second: u32) -> anyhow::Result<()> {
    for _ in 0..200 {
        let response = app
            .post_events(json!([event(Uuid::now_v7(), "restart", second)]))
            .await?;
        if response.status() == StatusCode::ACCEPTED {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("ingest never accepted again after Redis came back")
}

// The default single-threaded runtime: every task of the service runs on this thread, so the
// thread's log subscriber sees the supervisor's messages.
#[tokio::test]
async fn after_redis_is_killed_and_restarted_the_same_workers_take_jobs_again() -> anyhow::Result<()>
{
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let _guard = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();
    let mut redis = PrivateRedis::start(true).await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.redis_url = Some(redis.url());
    let app = TestApp::start_with(isolation, Role::All).await?;
    assert_eq!(app.metric("eye_queue_durable").await?, 1.0);
    post_until_accepted(&app, 1).await?;
    app.wait_for_processed_events(1).await?;

    // Redis stays down until the worker has run into the lost connection: restarted at once, the
    // connection manager's retries could carry the worker's next command to the new server unnoticed.
    redis.kill()?;
    wait_for_log(&logs, "worker failed; restarting").await?;
    redis.restart().await?;
    post_until_accepted(&app, 2).await?;
    app.wait_for_processed_events(2).await?;
    assert!(
        !logs.text().contains("stalled"),
        "no worker had to be replaced"
    );
    app.stop().await
}

#[tokio::test]
async fn a_redis_that_keeps_nothing_on_disk_is_reported_at_metrics() -> anyhow::Result<()> {
    let redis = PrivateRedis::start(false).await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.redis_url = Some(redis.url());
    let app = TestApp::start_with(isolation, Role::Api).await?;
    assert_eq!(app.metric("eye_queue_durable").await?, 0.0);
    app.stop().await
}
