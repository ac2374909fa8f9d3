//! The queue's failure modes: Redis going away, and a large backlog.

use crate::support::{Backend, Isolation, TestApp, event, redis_url};
use apalis::prelude::TaskSink;
use chrono::Utc;
use eye_domain::{ApplicationId, IngestBatch, JobId, NewEvent};
use eye_server::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use uuid::Uuid;

/// A TCP proxy in front of Redis that the test can cut, like Redis going down.
pub(crate) struct RedisProxy {
    pub(crate) url: String,
    tasks: JoinSet<()>,
}

impl RedisProxy {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("redis://{}", listener.local_addr()?);
        let upstream = redis_url()
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Ok(Self { url, tasks })
    }

    /// Closes the listener and every proxied connection.
    pub(crate) async fn cut(mut self) {
        self.tasks.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_unreachable_ingest_answers_503_and_accepts_nothing() -> anyhow::Result<()> {
    let proxy = RedisProxy::start().await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.redis_url = Some(proxy.url.clone());
    isolation.config.queue_push_timeout = Duration::from_millis(500);
    let app = TestApp::start_with(isolation, Role::Api).await?;
    let before = app
        .post_events(json!([event(Uuid::now_v7(), "s", 1)]))
        .await?;
    assert_eq!(before.status(), StatusCode::ACCEPTED);

    proxy.cut().await;
    let during = app
        .post_events(json!([event(Uuid::now_v7(), "s", 2)]))
        .await?;
    assert_eq!(during.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(during.headers().contains_key("retry-after"));
    let ready = app.http.get(format!("{}/ready", app.base)).send().await?;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.metric("eye_events_accepted_total").await?, 1.0);
    app.stop().await
}

fn one_event_batch(application_id: ApplicationId, i: u32) -> anyhow::Result<IngestBatch> {
    let event: NewEvent =
        serde_json::from_value(event(Uuid::now_v7(), &format!("backlog-{}", i % 100), i))?;
    Ok(IngestBatch {
        job_id: JobId::generate(),
        application_id,
        received_at: Utc::now(),
        events: vec![event],
    })
}

/// apalis' Redis fetch promotes every due job with one Lua `unpack`, which fails beyond ~8,000 due jobs.
/// The jobs here go in through apalis directly (no promotion on push, as from a crashed producer), so
/// only the workers' chunked sweeper stands between this backlog and a stuck queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_20000_jobs_built_while_no_worker_runs_drains_completely() -> anyhow::Result<()>
{
    // Well past the ~8,000 due jobs that break apalis' own promotion.
    const JOBS: u32 = 20_000;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    // A worker-only process serves its metrics on EYE_OPS_BIND.
    isolation.config.ops_bind = Some("127.0.0.1:0".parse()?);
    let store = eye_server::open_store(&isolation.config).await?;
    let application = store.create_application("backlog").await?.application.id;
    let conn = apalis_redis::connect(redis_url()).await?;
    let mut raw = apalis_redis::RedisStorage::<IngestBatch>::new(conn)
        .with_config(apalis_redis::Config::default().queue(&isolation.config.queue_name));
    let batches = (0..JOBS)
        .map(|i| one_event_batch(application, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for chunk in batches.chunks(5_000) {
        raw.push_bulk(chunk.to_vec())
            .await
            .map_err(|e| anyhow::anyhow!("push: {e}"))?;
    }

    let app = TestApp::start_with(isolation, Role::Worker).await?;
    app.wait_for_count("SELECT COUNT(*) FROM events", i64::from(JOBS))
        .await?;
    assert_eq!(
        app.count("SELECT CAST(COALESCE(SUM(event_count), 0) AS BIGINT) FROM sessions")
            .await?,
        i64::from(JOBS)
    );
    assert_eq!(
        app.metric("eye_events_stored_total").await?,
        f64::from(JOBS)
    );
    app.stop().await
}
