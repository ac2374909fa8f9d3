//! The test harness: a real service on a free port, with its own database and queue name.

use anyhow::Context;
use eye_server::{Role, Service};
use eye_store::Store;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

mod resources;

pub use resources::{Backend, Isolation, database_url, postgres_url, redis_url};

pub const ADMIN_TOKEN: &str = "test-admin-token";

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
