//! Direct PostgreSQL access of the benchmark: counting stored rows, the raw-COPY limit, database counters.

use crate::stats::rate;
use anyhow::Context;
use serde::Serialize;
use sqlx::postgres::{PgPool, PgPoolCopyExt, PgPoolOptions};
use std::time::{Duration, Instant};

/// The columns a worker writes (everything but the surrogate `id`), in one order for COPY out and in.
pub(crate) const EVENT_COLUMNS: &str = "event_id, application_id, session_id, category, name, data, timestamp, \
                             sent_at, received_at, stored_at, user_id, device_id, client_timestamp, \
                             schema_version";

/// Connects to the benchmark's database.
pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to the database at {url}"))
}

/// Rows in `events`.
pub async fn count_events(pool: &PgPool) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    Ok(n.max(0) as u64)
}

/// Transactions committed in this database so far (PostgreSQL flushes this counter about once a second).
pub async fn commits(pool: &PgPool) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    Ok(n.max(0) as u64)
}

/// The raw-COPY limit: the same rows the service stored, copied with one `COPY` into a fresh table
/// with the same columns, defaults and indexes.
#[derive(Debug, Clone, Serialize)]
pub struct CopyResult {
    /// Rows copied.
    pub rows: u64,
    /// How long the `COPY .. FROM STDIN` took, in seconds.
    pub elapsed_s: f64,
    /// Rows per second.
    pub rows_per_s: f64,
}

/// Reads every stored event out (untimed), then times one `COPY` of them into `events_copy`, created
/// with `LIKE events INCLUDING ALL`; drops the copy afterwards so later phases see one events table.
pub async fn copy_limit(pool: &PgPool) -> anyhow::Result<CopyResult> {
    sqlx::query("DROP TABLE IF EXISTS events_copy")
        .execute(pool)
        .await?;
    sqlx::query("CREATE TABLE events_copy (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    let out = format!("COPY (SELECT {EVENT_COLUMNS} FROM events ORDER BY id) TO STDOUT");
    let chunks = collect_copy_out(pool, &out).await?;
    let into = format!("COPY events_copy ({EVENT_COLUMNS}) FROM STDIN");
    let started = Instant::now();
    let mut copy = pool.copy_in_raw(&into).await?;
    for chunk in &chunks {
        copy.send(chunk.as_slice()).await?;
    }
    let rows = copy.finish().await?;
    let elapsed = started.elapsed();
    sqlx::query("DROP TABLE events_copy").execute(pool).await?;
    Ok(CopyResult {
        rows,
        elapsed_s: elapsed.as_secs_f64(),
        rows_per_s: rate(rows, elapsed),
    })
}

/// The output of a `COPY .. TO STDOUT`, regrouped into ~1 MiB chunks (as a streaming client would send).
pub(crate) async fn collect_copy_out(
    pool: &PgPool,
    statement: &str,
) -> anyhow::Result<Vec<Vec<u8>>> {
    use futures::StreamExt;
    const CHUNK: usize = 1 << 20;
    let mut stream = pool.copy_out_raw(statement).await?;
    let mut chunks = vec![Vec::with_capacity(CHUNK)];
    while let Some(bytes) = stream.next().await {
        let bytes = bytes?;
        let last = chunks.last_mut().context("no chunk")?;
        last.extend_from_slice(&bytes);
        if last.len() >= CHUNK {
            chunks.push(Vec::with_capacity(CHUNK));
        }
    }
    Ok(chunks)
}

/// Refreshes planner statistics and the visibility map, and removes the row versions the worker's updates
/// left behind, as autovacuum would on live tables: the machine's PostgreSQL runs without autovacuum, so
/// without this the hourly counts a query reads would carry every version each update of the fill wrote.
pub async fn vacuum_analyze(pool: &PgPool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    sqlx::query("VACUUM (ANALYZE) events, event_counts, sessions")
        .execute(pool)
        .await?;
    Ok(started.elapsed())
}
