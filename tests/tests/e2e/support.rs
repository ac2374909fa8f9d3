//! The test harness: a real service on a free port, with its own database and queue name.

use anyhow::Context;
use eye_server::{Config, Role, Service};
use eye_store::Store;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// PostgreSQL to create test databases in.
pub fn postgres_url() -> String {
    std::env::var("EYE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Redis for test queues.
pub fn redis_url() -> String {
    std::env::var("EYE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Where a test's data and queue live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Production shape: PostgreSQL and Redis.
    PostgresRedis,
    /// The embedded default: SQLite files and the SQLite queue.
    Embedded,
}

/// Resources a test owns, removed when it ends: by [`Isolation::cleanup`], or, when a test fails before
/// calling it, when the isolation is dropped.
pub struct Isolation {
    pub config: Config,
    pg_database: Option<String>,
    /// Whether the queue's Redis keys are still to be deleted.
    redis_keys: bool,
    _dir: tempfile::TempDir,
}

impl Isolation {
    /// A fresh database and queue name for one test.
    pub async fn new(backend: Backend) -> anyhow::Result<Self> {
        let id = Uuid::new_v4().simple().to_string();
        // EYE_TEST_KEEP keeps the SQLite files of embedded tests for a post-mortem.
        let dir = tempfile::Builder::new()
            .prefix("eye-test-")
            .disable_cleanup(std::env::var_os("EYE_TEST_KEEP").is_some())
            .tempdir()?;
        let mut config = Config::from_env()?;
        config.bind = "127.0.0.1:0".parse()?;
        config.admin_token = Some(ADMIN_TOKEN.into());
        config.queue_name = format!("eye-test:{id}");
        config.queue_path = dir.path().join("queue.db");
        config.worker_concurrency = 8;
        let pg_database = match backend {
            Backend::PostgresRedis => {
                let name = format!("eye_test_{id}");
                create_database(&name).await?;
                config.database_url = database_url(&name);
                config.redis_url = Some(redis_url());
                Some(name)
            }
            Backend::Embedded => {
                config.database_url =
                    format!("sqlite://{}?mode=rwc", dir.path().join("eye.db").display());
                config.redis_url = None;
                None
            }
        };
        let redis_keys = config.redis_url.is_some();
        Ok(Self {
            config,
            pg_database,
            redis_keys,
            _dir: dir,
        })
    }

    /// The test's own PostgreSQL database (`None` on the embedded backend).
    pub fn database_name(&self) -> Option<&str> {
        self.pg_database.as_deref()
    }

    /// Drops the test database and the queue's Redis keys.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        let (database, keys) = self.owned();
        remove(database, keys).await
    }

    /// What is still to be removed (taken, so it is removed once).
    fn owned(&mut self) -> (Option<String>, Option<String>) {
        let keys =
            std::mem::take(&mut self.redis_keys).then(|| format!("{}*", self.config.queue_name));
        (self.pg_database.take(), keys)
    }
}

impl Drop for Isolation {
    /// A test that failed (a panic, or an error returned early) before its cleanup: its database and keys
    /// are removed here, on a thread of its own, because the test's runtime may be the one unwinding.
    fn drop(&mut self) {
        let (database, keys) = self.owned();
        if database.is_none() && keys.is_none() {
            return;
        }
        let removal = std::thread::Builder::new()
            .name("test-cleanup".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                // A stalled server must not turn a failed test into a hung one.
                runtime.block_on(async {
                    tokio::time::timeout(CLEANUP_TIMEOUT, remove(database, keys))
                        .await
                        .map_err(|_| anyhow::anyhow!("no answer within {CLEANUP_TIMEOUT:?}"))?
                })
            });
        let outcome = match removal {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the cleanup panicked"))),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = outcome {
            eprintln!("could not remove the test's database or Redis keys: {err:#}");
        }
    }
}

/// How long what a test waits for may stand still before [`wait_while_progressing`] calls it stuck.
const STALL: Duration = Duration::from_secs(120);

/// Reads `what` until `done` holds. It fails once the value has stood still for [`STALL`], not after a
/// fixed total: a slow machine running the suite in parallel still makes progress (a backlog of 20,000
/// jobs took over two minutes on one), a stuck pipeline does not.
async fn wait_while_progressing<T, Read, Reading>(
    what: &str,
    mut read: Read,
    done: impl Fn(&T) -> bool,
) -> anyhow::Result<()>
where
    T: PartialEq + std::fmt::Debug,
    Read: FnMut() -> Reading,
    Reading: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut last = read().await?;
    let mut last_change = Instant::now();
    while !done(&last) {
        anyhow::ensure!(
            last_change.elapsed() < STALL,
            "{what}: still {last:?}, unchanged for {STALL:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = read().await?;
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
    }
    Ok(())
}

/// How long a failed test's cleanup may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);

async fn remove(database: Option<String>, keys: Option<String>) -> anyhow::Result<()> {
    if let Some(name) = database {
        let admin = Database::connect(postgres_url()).await?;
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await?;
    }
    if let Some(pattern) = keys {
        delete_redis_keys(&pattern).await?;
    }
    Ok(())
}

/// The URL of the test database `name` on the test server.
pub fn database_url(name: &str) -> String {
    let base = postgres_url();
    let (server, _) = base.rsplit_once('/').unwrap_or((&base, ""));
    format!("{server}/{name}")
}

async fn create_database(name: &str) -> anyhow::Result<()> {
    let admin = Database::connect(postgres_url())
        .await
        .context("PostgreSQL reachable (EYE_TEST_DATABASE_URL)")?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    // Tests assert contents, not crash durability: skipping the fsync per commit keeps them fast.
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{name}\" SET synchronous_commit = off"
        ))
        .await?;
    Ok(())
}

async fn delete_redis_keys(pattern: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

/// With `RUST_LOG` set, the service's logs go to the test output (shown for failing tests).
fn init_tracing() {
    static INIT: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("RUST_LOG").is_some() {
        INIT.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        });
    }
}

/// A running service plus an HTTP client and one registered application.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub ingest_key: String,
    pub application_id: String,
    pub store: Store,
    service: Service,
    isolation: Isolation,
}

impl TestApp {
    /// Starts API and workers on `backend`.
    pub async fn start(backend: Backend) -> anyhow::Result<Self> {
        let isolation = Isolation::new(backend).await?;
        Self::start_with(isolation, Role::All).await
    }

    /// Starts with a prepared isolation (e.g. a config pointing at a proxy).
    pub async fn start_with(isolation: Isolation, role: Role) -> anyhow::Result<Self> {
        init_tracing();
        let service = eye_server::start(&isolation.config, role).await?;
        let store = eye_server::open_store(&isolation.config).await?;
        let base = service
            .addr()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        let mut app = Self {
            base,
            http: reqwest::Client::new(),
            ingest_key: String::new(),
            application_id: String::new(),
            store,
            service,
            isolation,
        };
        if role != Role::Worker {
            let created = app.create_application("web").await?;
            app.ingest_key = created["ingest_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            app.application_id = created["id"].as_str().unwrap_or_default().to_owned();
        }
        Ok(app)
    }

    pub async fn create_application(&self, name: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/v1/admin/applications", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "name": name }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::CREATED,
            "create application: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// The test's own PostgreSQL database (`None` on the embedded backend).
    pub fn database_name(&self) -> Option<&str> {
        self.isolation.database_name()
    }

    /// `POST /v1/events` with this app's key.
    pub async fn post_events(&self, events: Value) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .http
            .post(format!("{}/v1/events", self.base))
            .bearer_auth(&self.ingest_key)
            .json(&json!({ "events": events }))
            .send()
            .await?)
    }

    /// One number from SQL; no row counts as 0 (e.g. a session not created yet).
    pub async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        let db = self.store.connection();
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await?;
        Ok(row
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0))
    }

    /// Waits until `sql` counts `expected` (the pipeline is asynchronous).
    pub async fn wait_for_count(&self, sql: &str, expected: i64) -> anyhow::Result<()> {
        wait_while_progressing(sql, || self.count(sql), |now| *now == expected).await
    }

    /// A counter from `/metrics`.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        let value = text
            .lines()
            .find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .with_context(|| format!("metric {name} missing"))?;
        Ok(value.trim().parse()?)
    }

    /// Waits until the workers have handled `expected` events (stored or skipped as duplicates).
    pub async fn wait_for_processed_events(&self, expected: u64) -> anyhow::Result<()> {
        let processed = || async {
            let stored = self.metric("eye_events_stored_total").await?;
            let duplicates = self.metric("eye_events_duplicate_total").await?;
            Ok((stored + duplicates) as u64)
        };
        wait_while_progressing("processed events", processed, |n| *n >= expected).await
    }

    /// Stops the service (gracefully, like a deploy), waits `pause`, and starts it again on the
    /// same port, database and queue.
    pub async fn restart_after(self, pause: Duration) -> anyhow::Result<Self> {
        let Self {
            base,
            http,
            ingest_key,
            application_id,
            store,
            service,
            mut isolation,
        } = self;
        let addr = service.addr().context("the service listens")?;
        service.stop().await;
        tokio::time::sleep(pause).await;
        isolation.config.bind = addr;
        let service = eye_server::start(&isolation.config, Role::All).await?;
        Ok(Self {
            base,
            http,
            ingest_key,
            application_id,
            store,
            service,
            isolation,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.service.stop().await;
        drop(self.store);
        self.isolation.cleanup().await
    }
}

/// The three sample events of the seed (as valid JSON: the seed's trailing comma removed).
pub fn seed_events() -> Value {
    json!([
        {"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "page interaction", "name": "pageview",
         "data": {"host": "www.consumeraffairs.com", "path": "/"}, "timestamp": "2021-01-01 09:15:27.243860"},
        {"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "page interaction", "name": "cta click",
         "data": {"host": "www.consumeraffairs.com", "path": "/", "element": "chat bubble"},
         "timestamp": "2021-01-01 09:15:27.243860"},
        {"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "form interaction", "name": "submit",
         "data": {"host": "www.consumeraffairs.com", "path": "/", "form": {"first_name": "John", "last_name": "Doe"}},
         "timestamp": "2021-01-01 09:15:27.243860"}
    ])
}

/// A minimal valid event with a given id and session.
pub fn event(id: Uuid, session: &str, second: u32) -> Value {
    json!({
        "event_id": id, "session_id": session, "category": "page interaction", "name": "pageview",
        "data": {"host": "example.com", "path": "/"}, "timestamp": format!("2021-01-01T09:{:02}:{:02}Z", second / 60 % 60, second % 60)
    })
}
