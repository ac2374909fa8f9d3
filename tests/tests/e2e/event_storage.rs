//! How a job's events reach the `events` table. On PostgreSQL a chunk travels by `COPY` when none of it
//! was stored before, and falls back to an INSERT that skips what exists when the unique key refuses one
//! (`store/src/event_copy.rs`); SQLite always takes the INSERT. Whichever way, each event is stored once,
//! its session counts it once, and the cursors handed to the rules are the rows as stored.

use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, NewEvent};
use eye_server::Role;
use eye_store::{EventRecord, InsertOutcome, Store, StoredBatch};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

fn event(id: Uuid, session: &str, at: &str) -> anyhow::Result<NewEvent> {
    Ok(serde_json::from_value(json!({
        "event_id": id, "session_id": session, "category": "storage test", "name": "stored",
        "user_id": "u1", "data": {"id": id}, "timestamp": at
    }))?)
}

async fn store_batch(
    store: &Store,
    application: ApplicationId,
    events: &[NewEvent],
) -> anyhow::Result<InsertOutcome> {
    let records: Vec<EventRecord<'_>> = events.iter().map(EventRecord::unvalidated).collect();
    store_records(store, application, &records).await
}

/// Stores validated events in one unit of work, as a job would.
async fn store_records(
    store: &Store,
    application: ApplicationId,
    records: &[EventRecord<'_>],
) -> anyhow::Result<InsertOutcome> {
    let mut txn = store.begin_ingest().await?;
    let outcome = txn
        .insert_batch(StoredBatch {
            application_id: application,
            received_at: Utc::now(),
            events: records,
            refused: &[],
        })
        .await?;
    txn.commit().await?;
    Ok(outcome)
}

/// Each stored event's id and the place of its stored copy in the batch, in batch order.
fn stored_places(outcome: &InsertOutcome) -> Vec<(Uuid, usize)> {
    let mut places: Vec<(Uuid, usize)> = outcome
        .inserted
        .iter()
        .map(|e| (e.event_id.as_uuid(), e.record))
        .collect();
    places.sort_by_key(|(_, record)| *record);
    places
}

/// The stored row id and timestamp of an event.
async fn stored_row(store: &Store, id: Uuid) -> anyhow::Result<(i64, DateTime<Utc>)> {
    let db = store.connection();
    let backend = db.get_database_backend();
    let placeholder = if backend == sea_orm::DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT id, \"timestamp\" FROM events WHERE event_id = {placeholder}"),
            [id.into()],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("event {id} not stored"))?;
    Ok((row.try_get("", "id")?, row.try_get("", "timestamp")?))
}

async fn api_only(backend: Backend) -> anyhow::Result<(TestApp, ApplicationId)> {
    let app = TestApp::start_with(Isolation::new(backend).await?, Role::Api).await?;
    let application = ApplicationId::from(Uuid::parse_str(&app.application_id)?);
    Ok((app, application))
}

/// Enough events in one chunk for PostgreSQL to take `COPY` (smaller chunks take the INSERT).
const COPIED: usize = eye_store::COPY_MIN_ROWS + 10;

fn events(ids: &[Uuid], session: &str, at: &str) -> anyhow::Result<Vec<NewEvent>> {
    ids.iter().map(|id| event(*id, session, at)).collect()
}

async fn a_batch_with_events_stored_before_stores_only_the_new_ones(
    backend: Backend,
) -> anyhow::Result<()> {
    let (app, application) = api_only(backend).await?;
    let ids: Vec<Uuid> = (0..2 * COPIED).map(|_| Uuid::now_v7()).collect();
    let (old, new) = ids.split_at(COPIED);
    let at = "2026-11-30T10:00:00Z";
    let stored = store_batch(&app.store, application, &events(old, "s1", at)?).await?;
    assert_eq!(stored.inserted.len(), COPIED);
    assert_eq!(stored.duplicates, 0);

    // A client's retry of an event stored before, with new ones, the first of them sent twice in the
    // batch; the last one carries nanoseconds, which the database keeps to the microsecond.
    let mut second = vec![event(old[1], "s1", at)?];
    second.extend(events(&new[..COPIED - 1], "s1", at)?);
    second.push(event(new[0], "s1", at)?);
    second.push(event(
        new[COPIED - 1],
        "s2",
        "2026-11-30T10:00:01.123456789Z",
    )?);
    let outcome = store_batch(&app.store, application, &second).await?;
    let inserted: Vec<Uuid> = outcome
        .inserted
        .iter()
        .map(|e| e.event_id.as_uuid())
        .collect();
    assert_eq!(inserted, new);
    assert_eq!(outcome.duplicates, 2);

    for stored_event in stored.inserted.iter().chain(&outcome.inserted) {
        let (id, at) = stored_row(&app.store, stored_event.event_id.as_uuid()).await?;
        assert_eq!(
            (stored_event.cursor.id, stored_event.cursor.at),
            (id, at),
            "the cursor is the row"
        );
    }
    let all = i64::try_from(ids.len())?;
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, all);
    assert_eq!(
        app.count("SELECT CAST(SUM(event_count) AS BIGINT) FROM sessions")
            .await?,
        all,
        "each event counted once in its session"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE session_id = 's2'")
            .await?,
        1
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_events_stored_before_stores_only_the_new_ones_on_postgres()
-> anyhow::Result<()> {
    a_batch_with_events_stored_before_stores_only_the_new_ones(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_events_stored_before_stores_only_the_new_ones_on_the_embedded_default()
-> anyhow::Result<()> {
    a_batch_with_events_stored_before_stores_only_the_new_ones(Backend::Embedded).await
}

/// Each stored event names the copy stored, by its place in the batch: of several copies of one id (which
/// may differ), the first; by `COPY` (a large chunk without repeated ids) and by the INSERT alike.
async fn each_stored_event_names_the_copy_stored(backend: Backend) -> anyhow::Result<()> {
    let (app, application) = api_only(backend).await?;
    let at = "2026-11-30T08:00:00Z";
    let ids: Vec<Uuid> = (0..COPIED).map(|_| Uuid::now_v7()).collect();
    let copied = store_batch(&app.store, application, &events(&ids, "s1", at)?).await?;
    let expected: Vec<(Uuid, usize)> = ids.iter().copied().zip(0..).collect();
    assert_eq!(
        stored_places(&copied),
        expected,
        "a chunk without repeated ids"
    );

    let (repeated, other) = (Uuid::now_v7(), Uuid::now_v7());
    let batch = [
        event(repeated, "s2", at)?,
        event(other, "s2", at)?,
        event(repeated, "s3", "2026-11-30T09:00:00Z")?,
    ];
    let outcome = store_batch(&app.store, application, &batch).await?;
    assert_eq!(
        stored_places(&outcome),
        [(repeated, 0), (other, 1)],
        "the first copy"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE session_id = 's3'")
            .await?,
        0,
        "the second copy is not stored"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stored_event_names_the_copy_stored_on_postgres() -> anyhow::Result<()> {
    each_stored_event_names_the_copy_stored(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stored_event_names_the_copy_stored_on_the_embedded_default() -> anyhow::Result<()> {
    each_stored_event_names_the_copy_stored(Backend::Embedded).await
}

/// A chunk that spans three pieces of the `COPY` stream (the binary format's header in the first, its
/// trailer in the last) is stored whole, every value as sent: NULLs, text outside ASCII and the bytes the
/// text format had to escape, the corrected time beside the client's, the schema version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_several_pieces_stores_every_value_as_sent_on_postgres() -> anyhow::Result<()> {
    let (app, application) = api_only(Backend::PostgresRedis).await?;
    let rows = 2 * eye_store::COPY_ROWS_PER_PIECE + 1;
    let sent: Vec<NewEvent> = (0..rows)
        .map(|i| {
            let full = i % 2 == 0;
            serde_json::from_value(json!({
                "event_id": Uuid::now_v7(), "session_id": format!("séance {i} \\N"),
                "category": "storage test", "name": "stored", "data": {"i": i, "note": "tab\there\nnewline"},
                "timestamp": "2026-11-30T08:00:00.123456Z",
                "sent_at": full.then_some("2026-11-30T08:00:05Z"),
                "user_id": full.then_some("utilisateur-ü"), "device_id": full.then_some("d")
            }))
            .map_err(anyhow::Error::from)
        })
        .collect::<anyhow::Result<_>>()?;
    let corrected: DateTime<Utc> = "2026-11-30T08:00:01Z".parse()?;
    let records: Vec<EventRecord<'_>> = sent
        .iter()
        .enumerate()
        .map(|(i, event)| EventRecord {
            event,
            timestamp: if i % 2 == 0 {
                corrected
            } else {
                event.timestamp
            },
            client_timestamp: (i % 2 == 0).then_some(event.timestamp),
            schema_version: (i % 3 == 0).then_some(2),
        })
        .collect();
    let outcome = store_records(&app.store, application, &records).await?;
    assert_eq!(outcome.inserted.len(), rows);

    let stored = app
        .store
        .connection()
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT event_id, session_id, user_id, device_id, data, \"timestamp\", sent_at, \
             client_timestamp, schema_version FROM events ORDER BY id",
        ))
        .await?;
    assert_eq!(stored.len(), rows);
    for (row, (record, event)) in stored.iter().zip(records.iter().zip(&sent)) {
        let id: Uuid = row.try_get("", "event_id")?;
        assert_eq!(id, event.event_id.as_uuid(), "stored in order");
        let session: String = row.try_get("", "session_id")?;
        assert_eq!(session, event.session_id.as_str());
        let user: Option<String> = row.try_get("", "user_id")?;
        assert_eq!(user.as_deref(), event.user_id.as_ref().map(|u| u.as_str()));
        let device: Option<String> = row.try_get("", "device_id")?;
        assert_eq!(
            device.as_deref(),
            event.device_id.as_ref().map(|d| d.as_str())
        );
        let data: Value = row.try_get("", "data")?;
        assert_eq!(data, event.data.to_value());
        let at: DateTime<Utc> = row.try_get("", "timestamp")?;
        assert_eq!(at, record.timestamp);
        let sent_at: Option<DateTime<Utc>> = row.try_get("", "sent_at")?;
        assert_eq!(sent_at, event.sent_at);
        let client: Option<DateTime<Utc>> = row.try_get("", "client_timestamp")?;
        assert_eq!(client, record.client_timestamp);
        let version: Option<i32> = row.try_get("", "schema_version")?;
        assert_eq!(
            version.map(u32::try_from).transpose()?,
            record.schema_version
        );
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_event_times_to_the_microsecond_and_the_cursor_says_so() -> anyhow::Result<()>
{
    let (app, application) = api_only(Backend::PostgresRedis).await?;
    let ids: Vec<Uuid> = (0..COPIED).map(|_| Uuid::now_v7()).collect();
    let id = ids[0];
    let outcome = store_batch(
        &app.store,
        application,
        &events(&ids, "s1", "2026-11-30T10:00:01.123456789Z")?,
    )
    .await?;
    let cursor = outcome.inserted[0].cursor;
    assert_eq!(cursor.at.timestamp_subsec_nanos(), 123_456_000);
    assert_eq!(stored_row(&app.store, id).await?, (cursor.id, cursor.at));
    app.stop().await
}

/// Waits until a backend of the test's database waits for a lock; a slow machine only makes it later.
async fn until_a_writer_waits(app: &TestApp) -> anyhow::Result<()> {
    let database = app.database_name().unwrap_or_default().to_owned();
    let sql = format!(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{database}' AND wait_event_type = 'Lock'"
    );
    for _ in 0..600 {
        if app.count(&sql).await? > 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no writer waited for the first one's lock within a minute")
}

/// Two workers hold the same event (a client sent it twice, both copies queued). The second worker's
/// `COPY` waits on the first one's uncommitted row; when the first commits, the unique key refuses the
/// copy and the second worker stores its other events alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_racing_with_the_same_event_store_it_once() -> anyhow::Result<()> {
    let (app, application) = api_only(Backend::PostgresRedis).await?;
    let shared = Uuid::now_v7();
    let at = "2026-11-30T10:00:00Z";
    let first_events = [event(shared, "s1", at)?];
    let records: Vec<EventRecord<'_>> = first_events.iter().map(EventRecord::unvalidated).collect();
    let mut first = app.store.begin_ingest().await?;
    first
        .insert_batch(StoredBatch {
            application_id: application,
            received_at: Utc::now(),
            events: &records,
            refused: &[],
        })
        .await?;

    let others: Vec<Uuid> = (0..COPIED).map(|_| Uuid::now_v7()).collect();
    let mut second_events = vec![event(shared, "s1", at)?];
    second_events.extend(events(&others, "s1", at)?);
    let second_len = second_events.len();
    let store = app.store.clone();
    let second =
        tokio::spawn(async move { store_batch(&store, application, &second_events).await });
    until_a_writer_waits(&app).await?;
    first.commit().await?;

    let outcome = second.await??;
    let inserted: Vec<Uuid> = outcome
        .inserted
        .iter()
        .map(|e| e.event_id.as_uuid())
        .collect();
    assert_eq!(inserted, others);
    assert_eq!(outcome.duplicates, 1);
    // The second worker went by `COPY` first: the ids that copy took were given up with it, so the rows
    // its fallback stored come after them (an INSERT alone would have taken the next ids).
    let (shared_id, _) = stored_row(&app.store, shared).await?;
    let first_fallback_id = outcome.inserted[0].cursor.id;
    assert!(
        first_fallback_id - shared_id > i64::try_from(second_len)?,
        "ids {shared_id} then {first_fallback_id}: no COPY was tried"
    );
    let all = i64::try_from(others.len() + 1)?;
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, all);
    assert_eq!(
        app.count("SELECT CAST(SUM(event_count) AS BIGINT) FROM sessions")
            .await?,
        all
    );
    app.stop().await
}

/// `COPY`'s text format reserves tabs, newlines, backslashes and `\N` (NULL): values holding them are
/// stored and answered as sent, through the whole service.
async fn values_holding_copys_reserved_characters_are_stored_as_sent(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let data = json!({
        "text": "a\ttab, a\nnewline, a\rreturn, a \\ backslash and \\N",
        "quote": "\"quoted\"", "unicode": "żółw 🐢", "nested": {"list": [1, 2.5, null, true, "\\t"]}
    });
    // One request is one job: with the plain events beside it, PostgreSQL stores it by `COPY`.
    let mut sent = vec![json!({
        "session_id": r"s\one", "category": "storage test", "name": "escaped", "user_id": r"\N",
        "device_id": r"d\\N", "data": data, "timestamp": "2026-11-30T10:00:00Z"
    })];
    sent.extend((1..COPIED).map(|i| {
        json!({"session_id": "plain", "category": "storage test", "name": "plain", "data": {"i": i},
               "timestamp": "2026-11-30T10:00:00Z"})
    }));
    assert_eq!(
        app.post_events(Value::Array(sent)).await?.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for_count("SELECT COUNT(*) FROM events", i64::try_from(COPIED)?)
        .await?;
    let response = app
        .http
        .get(format!("{}/v1/events?name=escaped", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await?;
    let stored = &page["events"][0];
    assert_eq!(stored["data"], data);
    assert_eq!(stored["session_id"], r"s\one");
    assert_eq!(
        stored["user_id"], r"\N",
        "a user named \\N, not a missing one"
    );
    assert_eq!(stored["device_id"], r"d\\N");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_holding_copys_reserved_characters_are_stored_as_sent_on_postgres()
-> anyhow::Result<()> {
    values_holding_copys_reserved_characters_are_stored_as_sent(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_holding_copys_reserved_characters_are_stored_as_sent_on_the_embedded_default()
-> anyhow::Result<()> {
    values_holding_copys_reserved_characters_are_stored_as_sent(Backend::Embedded).await
}
