//! What a stored event costs PostgreSQL: the bytes of the table and of each index per event, and the time
//! each index adds to writing a row (the same rows COPYed into a bare copy of `events`, then into copies
//! that carry one index each).

use crate::db::{EVENT_COLUMNS, collect_copy_out, count_events};
use serde::Serialize;
use sqlx::postgres::{PgPool, PgPoolCopyExt};
use std::collections::BTreeMap;
use std::time::Instant;

/// Bytes on disk, and per stored event.
#[derive(Debug, Clone, Serialize)]
pub struct DiskUse {
    /// Rows in `events`.
    pub events: u64,
    /// The table itself (heap, TOAST, free space and visibility maps).
    pub table_bytes: u64,
    /// Each index of `events`.
    pub index_bytes: BTreeMap<String, u64>,
    /// Table and indexes, per event.
    pub bytes_per_event: f64,
    /// Table alone, and each index, per event.
    pub per_event: BTreeMap<String, f64>,
    /// The hourly counts and the sessions, with their indexes.
    pub event_counts_bytes: u64,
    /// Sessions with their indexes.
    pub sessions_bytes: u64,
}

/// Reads the sizes (after `VACUUM`, so dead rows of the run do not count).
pub async fn disk_use(pool: &PgPool) -> anyhow::Result<DiskUse> {
    let events = count_events(pool).await?;
    let size = |sql: &'static str| async move {
        let bytes: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
        anyhow::Ok(bytes.max(0) as u64)
    };
    let table_bytes = size("SELECT pg_table_size('events')").await?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index \
         WHERE indrelid = 'events'::regclass",
    )
    .fetch_all(pool)
    .await?;
    let index_bytes: BTreeMap<String, u64> = rows
        .into_iter()
        .map(|(name, bytes)| (name, bytes.max(0) as u64))
        .collect();
    let per = |bytes: u64| bytes as f64 / events.max(1) as f64;
    let mut per_event: BTreeMap<String, f64> = index_bytes
        .iter()
        .map(|(name, bytes)| (name.clone(), per(*bytes)))
        .collect();
    per_event.insert("table".to_owned(), per(table_bytes));
    Ok(DiskUse {
        events,
        table_bytes,
        bytes_per_event: per(table_bytes + index_bytes.values().sum::<u64>()),
        per_event,
        index_bytes,
        event_counts_bytes: size("SELECT pg_total_relation_size('event_counts')").await?,
        sessions_bytes: size("SELECT pg_total_relation_size('sessions')").await?,
    })
}

/// The time one index adds to writing a row.
#[derive(Debug, Clone, Serialize)]
pub struct IndexCost {
    /// The COPY into a copy with only this index, in seconds.
    pub copy_s: f64,
    /// Beyond the bare table, per row, in microseconds.
    pub extra_us_per_row: f64,
}

/// COPY timings of the stored rows: into the bare table, and into a copy with each index alone.
#[derive(Debug, Clone, Serialize)]
pub struct IndexCosts {
    /// Rows copied each time.
    pub rows: u64,
    /// Into a copy without any index, in seconds.
    pub bare_copy_s: f64,
    /// Per index of `events`.
    pub indexes: BTreeMap<String, IndexCost>,
}

/// Measures each index of `events` on the rows stored so far.
pub async fn index_costs(pool: &PgPool) -> anyhow::Result<IndexCosts> {
    let out = format!("COPY (SELECT {EVENT_COLUMNS} FROM events ORDER BY id) TO STDOUT");
    let chunks = collect_copy_out(pool, &out).await?;
    let definitions: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'events'",
    )
    .fetch_all(pool)
    .await?;
    let (rows, bare_copy_s) = timed_copy(pool, &chunks, None).await?;
    let mut indexes = BTreeMap::new();
    for (name, definition) in definitions {
        let (_, copy_s) = timed_copy(pool, &chunks, Some((&name, &definition))).await?;
        let extra_us_per_row = (copy_s - bare_copy_s) * 1e6 / rows.max(1) as f64;
        indexes.insert(
            name,
            IndexCost {
                copy_s,
                extra_us_per_row,
            },
        );
    }
    Ok(IndexCosts {
        rows,
        bare_copy_s,
        indexes,
    })
}

/// `CREATE INDEX … ON public.events …` rewritten for the copy table.
fn on_copy(name: &str, definition: &str) -> String {
    definition
        .replacen(
            &format!("INDEX {name} ON public.events "),
            &format!("INDEX {name}_copy ON public.events_copy "),
            1,
        )
        .replacen(" ON public.events ", " ON public.events_copy ", 1)
}

async fn timed_copy(
    pool: &PgPool,
    chunks: &[Vec<u8>],
    index: Option<(&str, &str)>,
) -> anyhow::Result<(u64, f64)> {
    sqlx::query("DROP TABLE IF EXISTS events_copy")
        .execute(pool)
        .await?;
    // `id` is an identity column, not a default: without INCLUDING IDENTITY the copy's `id` is a bare
    // NOT NULL column and the COPY (which leaves `id` out) fails.
    sqlx::query("CREATE TABLE events_copy (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY)")
        .execute(pool)
        .await?;
    if let Some((name, definition)) = index {
        sqlx::query(sqlx::AssertSqlSafe(on_copy(name, definition)))
            .execute(pool)
            .await?;
    }
    let into = format!("COPY events_copy ({EVENT_COLUMNS}) FROM STDIN");
    let started = Instant::now();
    let mut copy = pool.copy_in_raw(&into).await?;
    for chunk in chunks {
        copy.send(chunk.as_slice()).await?;
    }
    let rows = copy.finish().await?;
    let elapsed = started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE events_copy").execute(pool).await?;
    Ok((rows, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_definition_is_moved_to_the_copy_table() {
        let definition = "CREATE UNIQUE INDEX events_application_event_key ON public.events USING btree (application_id, event_id)";
        assert_eq!(
            on_copy("events_application_event_key", definition),
            "CREATE UNIQUE INDEX events_application_event_key_copy ON public.events_copy USING btree (application_id, event_id)"
        );
    }
}
