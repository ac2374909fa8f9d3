//! PostgreSQL: a chunk of new events stored by one `COPY`, in the job's transaction.
//!
//! `COPY` writes a page of rows per WAL record where an INSERT writes one per row, and skips the executor's
//! work per row: in isolation it cost 12.3 µs of the server's CPU per event against 18.9–25.1 for
//! `INSERT … ON CONFLICT DO NOTHING RETURNING` (BENCHMARKS.md). Its binary format spares the server
//! parsing the ids, uuids and times as text: 3.1–3.3 s instead of 3.5 s for the same 300,000 rows
//! (BENCHMARKS.md, "The sixth round"). It cannot skip a duplicate nor return ids, so:
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
use chrono::{DateTime, Utc};
use sea_orm::sqlx::encode::{Encode, IsNull};
use sea_orm::sqlx::postgres::{PgArgumentBuffer, Postgres};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, SqlErr, Statement};

const COPY_EVENTS: &str = r#"COPY events (id, event_id, application_id, session_id, category, name, data,
    "timestamp", sent_at, received_at, stored_at, user_id, device_id, client_timestamp, schema_version)
FROM STDIN (FORMAT binary)"#;

/// The fewest events a chunk needs to go by `COPY`. A `COPY` costs four round trips more than the INSERT
/// (the ids, the savepoint and its release, the copy's own start), which its cheaper rows repay only from
/// a few dozen on. With every chunk copied, a backlog of 20,000 single-event jobs no longer drained within
/// the two minutes its test allows (`queue::a_backlog_of_20000_jobs_built_while_no_worker_runs_drains_completely`).
pub const MIN_ROWS: usize = 50;

/// Rows per piece of the `COPY` stream (~50 KB). The chunk is encoded a piece at a time as it is sent:
/// held whole, the rows of 1,000 events were the worker's largest use of memory (heaptrack: 8.8 of 29.7 MB
/// at the peak, BENCHMARKS.md).
pub const ROWS_PER_PIECE: usize = 128;

/// Room for one encoded row; a row past it only makes the buffer grow.
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
    // A binary stream without a single piece would lack its header, which the server refuses.
    if chunk.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let ids = take_ids(txn, chunk.len()).await?;
    let places = places(chunk.len());
    let mut pieces = chunk
        .chunks(ROWS_PER_PIECE)
        .zip(ids.chunks(ROWS_PER_PIECE))
        .zip(places)
        .map(|((records, ids), place)| copy_piece(batch, records, ids, stored_at, place));
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

/// Events in `COPY`'s binary format, one tuple each, in [`COPY_EVENTS`]' column order. The first piece
/// opens the stream with the format's header, the last one closes it with the trailer.
fn copy_piece(
    batch: &StoredBatch<'_>,
    chunk: &[EventRecord<'_>],
    ids: &[i64],
    stored_at: DateTime<Utc>,
    place: Place,
) -> Result<Vec<u8>, DbErr> {
    let mut out = BinaryTuples::with_capacity(chunk.len() * BYTES_PER_ROW);
    if place.first {
        out.header();
    }
    let application = batch.application_id.as_uuid();
    let received_at = stored_time(batch.received_at);
    let stored_at = stored_time(stored_at);
    for (record, id) in chunk.iter().zip(ids) {
        let event = record.event;
        out.start_tuple(COLUMNS);
        out.field(id)?;
        out.field(&event.event_id.as_uuid())?;
        out.field(&application)?;
        out.field(&event.session_id.as_str())?;
        out.field(&event.event_type.category.as_str())?;
        out.field(&event.event_type.name.as_str())?;
        out.jsonb(&event.data)?;
        out.field(&stored_time(record.timestamp))?;
        out.field(&event.sent_at.map(stored_time))?;
        out.field(&received_at)?;
        out.field(&stored_at)?;
        out.field(&event.user_id.as_ref().map(|u| u.as_str()))?;
        out.field(&event.device_id.as_ref().map(|d| d.as_str()))?;
        out.field(&record.client_timestamp.map(stored_time))?;
        out.field(&record.schema_version.map(stored_version))?;
    }
    if place.last {
        out.trailer();
    }
    Ok(out.into_bytes())
}

/// The columns of [`COPY_EVENTS`]: every tuple says how many it holds.
const COLUMNS: i16 = 15;

/// Where a piece sits in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    first: bool,
    last: bool,
}

/// The place of each piece of a stream of `rows` rows, in order.
fn places(rows: usize) -> impl Iterator<Item = Place> {
    let pieces = rows.div_ceil(ROWS_PER_PIECE);
    (0..pieces).map(move |n| Place {
        first: n == 0,
        last: n + 1 == pieces,
    })
}

/// `COPY`'s binary format: a signature and two zero words, then per tuple its field count and each field
/// as a length (-1 for NULL) and the value in the type's binary form, then -1 for the end. Each value is
/// encoded by the driver's own `Encode` (the form it binds parameters in), so the server reads integers,
/// uuids and times without parsing text; a `jsonb` value is its version byte and the JSON text.
struct BinaryTuples(PgArgumentBuffer);

impl BinaryTuples {
    const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
    const JSONB_VERSION: u8 = 1;

    fn with_capacity(bytes: usize) -> Self {
        let mut buffer = PgArgumentBuffer::default();
        buffer.reserve(bytes);
        Self(buffer)
    }

    fn header(&mut self) {
        self.0.extend_from_slice(Self::SIGNATURE);
        // No flags, no header extension.
        self.0.extend_from_slice(&0_i32.to_be_bytes());
        self.0.extend_from_slice(&0_i32.to_be_bytes());
    }

    fn start_tuple(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }

    fn field<'q, T: Encode<'q, Postgres>>(&mut self, value: &T) -> Result<(), DbErr> {
        let at = self.open_field();
        match value.encode_by_ref(&mut self.0) {
            Ok(IsNull::No) => self.close_field(at),
            Ok(IsNull::Yes) => {
                self.0.truncate(at);
                self.0.extend_from_slice(&(-1_i32).to_be_bytes());
                Ok(())
            }
            Err(err) => Err(DbErr::Custom(format!(
                "cannot encode a value to copy: {err}"
            ))),
        }
    }

    /// Written here rather than by the driver's `Json`, which also registers a fix-up for `json`
    /// parameters (an allocation per value that a `COPY` never applies).
    fn jsonb(&mut self, value: &impl serde::Serialize) -> Result<(), DbErr> {
        let at = self.open_field();
        self.0.push(Self::JSONB_VERSION);
        serde_json::to_writer(&mut *self.0, value).map_err(|err| DbErr::Json(err.to_string()))?;
        self.close_field(at)
    }

    /// Reserves the field's length word; answers where it is.
    fn open_field(&mut self) -> usize {
        let at = self.0.len();
        self.0.extend_from_slice(&0_i32.to_be_bytes());
        at
    }

    fn close_field(&mut self, at: usize) -> Result<(), DbErr> {
        let length = self.0.len() - at - 4;
        let length = i32::try_from(length)
            .map_err(|_| DbErr::Custom(format!("a value of {length} bytes is too long to copy")))?;
        self.0[at..at + 4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }

    fn trailer(&mut self) {
        self.0.extend_from_slice(&(-1_i16).to_be_bytes());
    }

    fn into_bytes(mut self) -> Vec<u8> {
        std::mem::take(&mut *self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(build: impl FnOnce(&mut BinaryTuples)) -> Vec<u8> {
        let mut out = BinaryTuples::with_capacity(0);
        build(&mut out);
        out.into_bytes()
    }

    #[test]
    fn only_the_first_piece_opens_the_stream_and_only_the_last_closes_it() {
        let at = |first, last| Place { first, last };
        assert_eq!(places(1).collect::<Vec<_>>(), [at(true, true)]);
        assert_eq!(places(ROWS_PER_PIECE).collect::<Vec<_>>(), [at(true, true)]);
        assert_eq!(
            places(ROWS_PER_PIECE + 1).collect::<Vec<_>>(),
            [at(true, false), at(false, true)]
        );
        assert_eq!(
            places(2 * ROWS_PER_PIECE + 1).collect::<Vec<_>>(),
            [at(true, false), at(false, false), at(false, true)]
        );
        assert_eq!(places(0).count(), 0);
    }

    #[test]
    fn a_stream_opens_with_the_signature_and_two_zero_words_and_closes_with_minus_one() {
        let bytes = encoded(|out| {
            out.header();
            out.trailer();
        });
        let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_tuple_names_its_field_count_and_each_field_its_length() {
        let bytes = encoded(|out| {
            out.start_tuple(2);
            out.field(&7_i64).expect("encodes");
            out.field(&"ab").expect("encodes");
        });
        let expected: Vec<u8> = [
            &[0, 2][..],
            &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7],
            &[0, 0, 0, 2, b'a', b'b'],
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_missing_value_is_null_and_an_empty_one_is_empty() {
        let bytes = encoded(|out| {
            out.field(&None::<&str>).expect("encodes");
            out.field(&Some("")).expect("encodes");
            out.field(&None::<DateTime<Utc>>).expect("encodes");
        });
        assert_eq!(bytes, [[0xff; 4], [0; 4], [0xff; 4]].concat());
    }

    #[test]
    fn times_are_microseconds_since_2000_as_the_server_keeps_them() {
        let at = DateTime::parse_from_rfc3339("2000-01-01T00:00:01.000001999Z")
            .expect("valid")
            .with_timezone(&Utc);
        let bytes = encoded(|out| out.field(&stored_time(at)).expect("encodes"));
        let expected = [&8_i32.to_be_bytes()[..], &1_000_001_i64.to_be_bytes()].concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_jsonb_value_is_its_version_byte_and_the_json_text_unescaped() {
        let value = serde_json::json!({"note": "a\ttab\\"});
        let bytes = encoded(|out| out.jsonb(&value).expect("serializable"));
        let text = br#"{"note":"a\ttab\\"}"#;
        let length = i32::try_from(text.len() + 1).expect("small");
        let expected = [&length.to_be_bytes()[..], &[1], text].concat();
        assert_eq!(bytes, expected);
    }
}
