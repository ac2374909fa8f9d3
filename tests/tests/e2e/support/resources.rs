//! What a test owns outside the process (a PostgreSQL database, a Redis key prefix, a temporary directory)
//! and their removal, even when the test fails.

use super::ADMIN_TOKEN;
use anyhow::Context;
use eye_server::Config;
use sea_orm::{ConnectionTrait, Database};
use std::time::Duration;
use uuid::Uuid;

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
