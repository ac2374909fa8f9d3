//! The harness keeps its promise that every test removes what it made, even a test that fails.

use crate::support::{Backend, Isolation, postgres_url, redis_url};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

async fn database_exists(name: &str) -> anyhow::Result<bool> {
    let admin = Database::connect(postgres_url()).await?;
    let row = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await?;
    let n: i64 = row
        .map(|row| row.try_get("", "n"))
        .transpose()?
        .unwrap_or(0);
    Ok(n > 0)
}

async fn key_exists(key: &str) -> anyhow::Result<bool> {
    let client = redis::Client::open(redis_url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let n: i64 = redis::cmd("EXISTS").arg(key).query_async(&mut conn).await?;
    Ok(n > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_fails_before_its_cleanup_still_removes_its_database_and_keys()
-> anyhow::Result<()> {
    let isolation = Isolation::new(Backend::PostgresRedis).await?;
    let database = isolation.database_name().unwrap_or_default().to_owned();
    let key = format!("{}:probe", isolation.config.queue_name);
    let client = redis::Client::open(redis_url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    redis::cmd("SET")
        .arg(&key)
        .arg(1)
        .query_async::<()>(&mut conn)
        .await?;
    assert!(database_exists(&database).await?);
    assert!(key_exists(&key).await?);

    // A test body that fails while it owns the isolation, as a failed assertion would.
    let failed = tokio::spawn(async move {
        let _owned = isolation;
        panic!("a failing test");
    })
    .await;
    assert!(failed.is_err_and(|err| err.is_panic()));

    assert!(
        !database_exists(&database).await?,
        "the database is dropped"
    );
    assert!(!key_exists(&key).await?, "the queue's keys are deleted");
    Ok(())
}
