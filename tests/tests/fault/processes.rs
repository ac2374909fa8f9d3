//! `kill -9` of the service's own processes mid-load, production shape (PostgreSQL + Redis).

use crate::cluster::Cluster;
use crate::load::tick_batches;
use crate::{BATCH_SIZE, BATCHES, PACE, STRIKE_AT, scenario_slot};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let _slot = scenario_slot().await?;
    let mut cluster = Cluster::start_with_worker(&[]).await?;
    let mut load = cluster.load(tick_batches(BATCHES, BATCH_SIZE)?, PACE)?;
    // Three kills, so that at least one surely lands while the worker holds jobs.
    for strike in 1..=3 {
        load.wait_for_acknowledged(STRIKE_AT * strike).await?;
        cluster.worker()?.kill().await?;
        // Jobs it held are now orphaned; the queue keeps filling while no worker runs.
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.worker()?.start_again().await?;
    }
    let report = load.finish().await?;
    let outcome = cluster.outcome("worker kill -9 x3", report).await?;
    cluster.conclude(outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_killed_mid_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let _slot = scenario_slot().await?;
    let mut cluster = Cluster::start_with_worker(&[]).await?;
    let mut load = cluster.load(tick_batches(BATCHES, BATCH_SIZE)?, PACE)?;
    load.wait_for_acknowledged(STRIKE_AT).await?;
    // Requests in flight are cut: their clients retry the same ids against the restarted API.
    cluster.api.kill().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.api.start_again().await?;
    let report = load.finish().await?;
    let outcome = cluster.outcome("api kill -9", report).await?;
    cluster.conclude(outcome)
}
