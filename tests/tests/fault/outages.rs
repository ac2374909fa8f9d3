//! PostgreSQL and Redis failing under the service mid-load, production shape.

use crate::cluster::Cluster;
use crate::load::tick_batches;
use crate::verify::Stored;
use crate::{BATCH_SIZE, BATCHES, PACE, STRIKE_AT, scenario_slot};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_and_restart_mid_load_loses_and_duplicates_nothing() -> anyhow::Result<()>
{
    let _slot = scenario_slot().await?;
    let cluster = Cluster::start_with_worker(&[]).await?;
    let mut load = cluster.load(tick_batches(BATCHES, BATCH_SIZE)?, PACE)?;
    load.wait_for_acknowledged(STRIKE_AT).await?;
    cluster.pg.restart_immediately().await?;
    let report = load.finish().await?;
    let outcome = cluster
        .outcome("postgres restart -m immediate", report)
        .await?;
    cluster.conclude(outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_kill_with_aof_mid_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let _slot = scenario_slot().await?;
    let mut cluster = Cluster::start_with_worker(&[]).await?;
    let mut load = cluster.load(tick_batches(BATCHES, BATCH_SIZE)?, PACE)?;
    load.wait_for_acknowledged(STRIKE_AT).await?;
    cluster.redis.kill().await?;
    // Meanwhile the API answers 503 and the clients retry.
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.redis.start_again().await?;
    let report = load.finish().await?;
    let outcome = cluster
        .outcome("redis kill -9 (AOF always)", report)
        .await?;
    cluster.conclude(outcome)
}

/// Longer than the old in-job retry budget's first steps and than apalis' attempts on a fast failure.
const READ_ONLY_FOR: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_read_only_for_30_s_mid_load_loses_and_duplicates_nothing() -> anyhow::Result<()>
{
    let _slot = scenario_slot().await?;
    let cluster = Cluster::start_with_worker(&[]).await?;
    // Its own session stays writable, so it can turn the read-only default off again.
    let admin = Stored::connect(&format!(
        "{}&options=-c%20default_transaction_read_only%3Doff",
        cluster.pg.url()
    ))
    .await?;
    let mut load = cluster.load(tick_batches(BATCHES, BATCH_SIZE)?, PACE)?;
    load.wait_for_acknowledged(STRIKE_AT).await?;
    admin.set_read_only(true).await?;
    tokio::time::sleep(READ_ONLY_FOR).await;
    admin.set_read_only(false).await?;
    let report = load.finish().await?;
    let outcome = cluster.outcome("database read-only 30 s", report).await?;
    cluster.conclude(outcome)
}

/// Longer than the key cache's lifetime below, so every cached verification has expired.
const POSTGRES_DOWN_FOR: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_goes_on_with_a_known_key_while_postgres_is_down() -> anyhow::Result<()> {
    let _slot = scenario_slot().await?;
    let cluster = Cluster::start_with_worker(&[("EYE_AUTH_CACHE_TTL", "2s")]).await?;
    // The API has verified the key by the time the load is under way.
    let mut load = cluster.load(tick_batches(BATCHES, BATCH_SIZE)?, PACE)?;
    load.wait_for_acknowledged(STRIKE_AT).await?;
    cluster.pg.stop().await?;
    tokio::time::sleep(POSTGRES_DOWN_FOR).await;
    cluster.pg.start_again().await?;
    let report = load.finish().await?;
    let refused = report.not_accepted();
    let mut outcome = cluster
        .outcome("postgres down 10 s, key cache 2 s", report)
        .await?;
    if refused > 0 {
        outcome.problem(format!(
            "{refused} requests with a known key were not answered 202 while PostgreSQL was down"
        ));
    }
    cluster.conclude(outcome)
}
