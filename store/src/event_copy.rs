//! PostgreSQL: a chunk of new events stored by one `COPY`, in the job's transaction.
//!
//! `COPY` writes a page of rows per WAL record where an INSERT writes one per row, and skips the executor's
//! work per row: in isolation it cost 12.3 µs of the server's CPU per event against 18.9–25.1 for
//! `INSERT … ON CONFLICT DO NOTHING RETURNING` (BENCHMARKS.md). It cannot skip a duplicate nor return
//! ids, so:
//! - the ids come first, from the table's own sequence, so the events' cursors are known without
//!   `RETURNING`;
//! - the `COPY` runs under a savepoint. A duplicate `(application_id, event_id)` (a client's retry, a
//!   replayed job, a concurrent worker holding the same event) makes the unique key refuse it; the chunk
//!   then goes back to the savepoint and is stored by the INSERT that skips what exists (`events.rs`). The
//!   unique key stays the one guarantee of exactly-once storage; `COPY` is only the fast way when nothing
//!   in the chunk was stored before.

use crate::job_txn::PgJobTxn;
use crate::sql::{stored_time, stored_version};
use crate::{EventRecord, StoreError, StoredBatch};
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, SqlErr, Statement};
use std::io::Write;

const COPY_EVENTS: &str = r#"COPY events (id, event_id, application_id, session_id, category, name, data,
    "timestamp", sent_at, received_at, stored_at, user_id, device_id, client_timestamp, schema_version)
FROM STDIN"#;

/// The fewest events a chunk needs to go by `COPY`. A `COPY` costs four round trips more than the INSERT
/// (the ids, the savepoint and its release, the copy's own start), which its cheaper rows repay only from
/// a few dozen on. With every chunk copied, a backlog of 20,000 single-event jobs no longer drained within
/// the two minutes its test allows (`queue::a_backlog_of_20000_jobs_built_while_no_worker_runs_drains_completely`).
pub const MIN_ROWS: usize = 50;

/// Rows per piece of the `COPY` stream (~50 KB of text). The chunk is encoded a piece at a time as it is
/// sent: held whole, the text of 1,000 events was the worker's largest use of memory (heaptrack: 8.8 of
/// 29.7 MB at the peak, BENCHMARKS.md).
const ROWS_PER_PIECE: usize = 128;

/// Room for one row of text; a row past it only makes the buffer grow.
const BYTES_PER_ROW: usize = 512;

/// One id per event, in order, from the sequence behind `events.id` (what a plain INSERT would take).
const TAKE_IDS: &str = "SELECT nextval('events_id_seq') AS id FROM generate_series(1, $1)";

/// Stores `chunk` by `COPY` and returns each event's row id, in order; `None` when an event of it was
/// stored before, in which case nothing of the chunk was stored and the caller stores it the slow way.
pub(crate) async fn copy_events(
    txn: &PgJobTxn,
    batch: &StoredBatch<'_>,
    chunk: &[EventRecord<'_>],
    stored_at: DateTime<Utc>,
) -> Result<Option<Vec<i64>>, StoreError> {
    let ids = take_ids(txn, chunk.len()).await?;
    let mut pieces = chunk
        .chunks(ROWS_PER_PIECE)
        .zip(ids.chunks(ROWS_PER_PIECE))
        .map(|(records, ids)| copy_text(batch, records, ids, stored_at));
    txn.execute_unprepared("SAVEPOINT copy_events").await?;
    match txn.copy_in(COPY_EVENTS, &mut pieces).await {
        Ok(_) => {
            txn.execute_unprepared("RELEASE SAVEPOINT copy_events")
                .await?;
            Ok(Some(ids))
        }
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            tracing::debug!(%err, "an event of the chunk was stored before; storing the chunk by the INSERT that skips it");
            txn.execute_unprepared(
                "ROLLBACK TO SAVEPOINT copy_events; RELEASE SAVEPOINT copy_events",
            )
            .await?;
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

async fn take_ids(txn: &PgJobTxn, n: usize) -> Result<Vec<i64>, StoreError> {
    let n = i64::try_from(n).map_err(|err| DbErr::Custom(err.to_string()))?;
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            TAKE_IDS,
            [n.into()],
        ))
        .await?;
    let mut ids = rows
        .iter()
        .map(|row| row.try_get::<i64>("", "id"))
        .collect::<Result<Vec<_>, _>>()?;
    // A sequence hands out ascending values, but a set-returning query promises no row order.
    ids.sort_unstable();
    Ok(ids)
}

/// Events in `COPY`'s text format, one line each, in [`COPY_EVENTS`]' column order.
fn copy_text(
    batch: &StoredBatch<'_>,
    chunk: &[EventRecord<'_>],
    ids: &[i64],
    stored_at: DateTime<Utc>,
) -> Result<Vec<u8>, DbErr> {
    let mut out = CopyText(Vec::with_capacity(chunk.len() * BYTES_PER_ROW));
    let application = batch.application_id.as_uuid();
    for (record, id) in chunk.iter().zip(ids) {
        let event = record.event;
        out.display(id);
        out.display(event.event_id.as_uuid());
        out.display(application);
        out.text(event.session_id.as_str());
        out.text(event.event_type.category.as_str());
        out.text(event.event_type.name.as_str());
        out.json(&event.data)?;
        out.time(Some(record.timestamp));
        out.time(event.sent_at);
        out.time(Some(batch.received_at));
        out.time(Some(stored_at));
        out.optional_text(event.user_id.as_ref().map(|u| u.as_str()));
        out.optional_text(event.device_id.as_ref().map(|d| d.as_str()));
        out.time(record.client_timestamp);
        match record.schema_version {
            Some(version) => out.display(stored_version(version)),
            None => out.null(),
        }
        out.end_row();
    }
    Ok(out.0)
}

/// `COPY`'s text format: fields separated by tabs, rows ended by newlines, `\N` for NULL, and a backslash
/// before any backslash, tab, newline or carriage return inside a value.
#[derive(Default)]
struct CopyText(Vec<u8>);

impl CopyText {
    fn display(&mut self, value: impl std::fmt::Display) {
        // Numbers and uuids: nothing in them needs escaping. Writing to a Vec cannot fail.
        let _ = write!(self.0, "{value}");
        self.0.push(b'\t');
    }

    fn text(&mut self, value: &str) {
        let _ = Escaped(&mut self.0).write_all(value.as_bytes());
        self.0.push(b'\t');
    }

    fn optional_text(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    fn json(&mut self, value: &impl serde::Serialize) -> Result<(), DbErr> {
        serde_json::to_writer(Escaped(&mut self.0), value)
            .map_err(|err| DbErr::Json(err.to_string()))?;
        self.0.push(b'\t');
        Ok(())
    }

    fn time(&mut self, value: Option<DateTime<Utc>>) {
        match value {
            Some(at) => self.display(stored_time(at).to_rfc3339_opts(SecondsFormat::Micros, true)),
            None => self.null(),
        }
    }

    fn null(&mut self) {
        self.0.extend_from_slice(b"\\N\t");
    }

    fn end_row(&mut self) {
        if let Some(last) = self.0.last_mut() {
            *last = b'\n';
        }
    }
}

/// Writes through to the buffer, escaping what the text format reserves.
struct Escaped<'a>(&'a mut Vec<u8>);

impl Write for Escaped<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for &byte in bytes {
            match byte {
                b'\\' => self.0.extend_from_slice(b"\\\\"),
                b'\t' => self.0.extend_from_slice(b"\\t"),
                b'\n' => self.0.extend_from_slice(b"\\n"),
                b'\r' => self.0.extend_from_slice(b"\\r"),
                other => self.0.push(other),
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(build: impl FnOnce(&mut CopyText)) -> String {
        let mut out = CopyText::default();
        build(&mut out);
        out.end_row();
        String::from_utf8(out.0).expect("utf-8")
    }

    #[test]
    fn reserved_bytes_inside_values_are_escaped() {
        let row = line(|out| {
            out.text("tab\there");
            out.text("line\nbreak\rreturn");
            out.text(r"back\slash \N");
        });
        assert_eq!(
            row,
            "tab\\there\tline\\nbreak\\rreturn\tback\\\\slash \\\\N\n"
        );
    }

    #[test]
    fn a_missing_value_is_null_and_an_empty_one_is_empty() {
        let row = line(|out| {
            out.optional_text(None);
            out.optional_text(Some(""));
            out.time(None);
        });
        assert_eq!(row, "\\N\t\t\\N\n");
    }

    #[test]
    fn json_escapes_are_kept_for_the_server_to_read() {
        let value = serde_json::json!({"note": "a \"quote\", a \\ and a\nline"});
        let row = line(|out| out.json(&value).expect("serializable"));
        assert_eq!(
            row,
            r#"{"note":"a \\"quote\\", a \\\\ and a\\nline"}"#.to_owned() + "\n"
        );
    }

    #[test]
    fn times_are_written_to_the_microsecond_the_server_keeps() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T10:00:00.123456789Z")
            .expect("valid")
            .with_timezone(&Utc);
        let row = line(|out| out.time(Some(at)));
        assert_eq!(row, "2026-11-30T10:00:00.123456Z\n");
        assert_eq!(stored_time(at).timestamp_subsec_nanos(), 123_456_000);
    }
}
