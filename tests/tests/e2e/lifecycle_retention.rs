//! Retention (`EYE_RETENTION`): events older than the limit go with their emptied sessions (others are
//! adjusted) and old refused events; an event older than the limit that arrives again is refused as
//! `expired` instead of being stored a second time; kept events stay deduplicated.

use crate::support::{Backend, Isolation, TestApp};
use chrono::{DateTime, Duration as TimeDelta, Utc};
use eye_server::Role;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// Long enough for the events stamped a second ago to be stored well before they expire, on a slow
/// machine too; short enough for a test.
const RETENTION: Duration = Duration::from_secs(8);

fn event(id: Uuid, session: &str, at: DateTime<Utc>) -> Value {
    json!({"event_id": id, "session_id": session, "category": "page interaction", "name": "pageview",
           "data": {"host": "example.com", "path": "/"}, "timestamp": at.to_rfc3339()})
}

async fn post(app: &TestApp, events: Value) -> anyhow::Result<()> {
    let sent = app.post_events(events).await?;
    anyhow::ensure!(sent.status() == StatusCode::ACCEPTED, "{}", sent.status());
    Ok(())
}

/// Waits until the counter `name` reaches `at_least`; fails after a generous bound.
pub(crate) async fn wait_for_metric(
    app: &TestApp,
    name: &str,
    at_least: f64,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    while app.metric(name).await.unwrap_or(0.0) < at_least {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "{name} < {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

const EXPIRED: &str = "eye_events_refused_total{reason=\"expired\"}";

async fn retention_removes_old_data(backend: Backend) -> anyhow::Result<()> {
    let mut isolation = Isolation::new(backend).await?;
    isolation.config.retention = Some(RETENTION);
    let app = TestApp::start_with(isolation, Role::All).await?;
    // The count row an hour leaves once its events are gone, from long ago: the sweeper removes it.
    let db = app.store.connection();
    let backend = db.get_database_backend();
    let emptied_hour = match backend {
        DbBackend::Postgres => "$1, $2",
        _ => "?, ?",
    };
    let emptied_hour = format!(
        "INSERT INTO event_counts (hour, application_id, category, name, slot, events) \
         VALUES ({emptied_hour}, 'emptied', 'hour', 0, 0)"
    );
    let long_ago = DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")?.to_utc();
    let application = Uuid::parse_str(&app.application_id)?;
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        emptied_hour,
        [long_ago.into(), application.into()],
    ))
    .await?;
    let (now, ids) = (Utc::now(), [(); 5].map(|_| Uuid::now_v7()));
    let soon_old = now - TimeDelta::seconds(1);
    // Within the allowed clock skew, so it is kept for the whole test.
    let kept_at = now + TimeDelta::seconds(120);
    post(
        &app,
        json!([
            event(ids[0], "old", soon_old),
            event(ids[1], "old", soon_old),
            event(ids[2], "mixed", soon_old),
            event(ids[3], "mixed", kept_at),
            // A refused event (future timestamp), recorded now: it goes once recorded longer ago than the limit.
            event(ids[4], "mixed", now + TimeDelta::hours(2)),
        ]),
    )
    .await?;
    // More than one retention step (1,000 events) of their own session.
    let many: Vec<Value> = (0..1500)
        .map(|_| event(Uuid::now_v7(), "many", soon_old))
        .collect();
    post(&app, json!(many[..1000])).await?;
    post(&app, json!(many[1000..])).await?;
    app.wait_for_count("SELECT COUNT(*) FROM events", 1504)
        .await?;
    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 1)
        .await?;

    app.wait_for_count("SELECT COUNT(*) FROM events", 1).await?;
    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 0)
        .await?;
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await?, 1);
    let counted = "SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT) FROM event_counts";
    assert_eq!(
        app.count(counted).await?,
        1,
        "the hourly counts lose what retention deletes"
    );
    let emptied = "SELECT COUNT(*) FROM event_counts WHERE category = 'emptied'";
    assert_eq!(app.count(emptied).await?, 0, "expired hours' rows go");
    let adjusted = "SELECT COUNT(*) FROM sessions WHERE session_id = 'mixed' AND event_count = 1 \
                    AND first_seen = last_seen";
    assert_eq!(
        app.count(adjusted).await?,
        1,
        "the session keeps only its newest event"
    );

    // Sent again once deleted: refused as expired and recorded as such, not stored again.
    post(&app, json!([event(ids[0], "old", soon_old)])).await?;
    post(&app, json!([event(ids[3], "mixed", kept_at)])).await?;
    // Both resends are handled (the stored count is long past any bound, so wait on what they do).
    wait_for_metric(&app, EXPIRED, 1.0).await?;
    wait_for_metric(&app, "eye_events_duplicate_total", 1.0).await?;
    assert_eq!(app.metric(EXPIRED).await?, 1.0);
    let recorded = "SELECT COUNT(*) FROM ingest_errors WHERE reason = 'expired'";
    assert_eq!(app.count(recorded).await?, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, 1);
    assert_eq!(
        app.metric("eye_events_duplicate_total").await?,
        1.0,
        "the kept event sent again is a duplicate"
    );
    let event_count = "SELECT event_count FROM sessions WHERE session_id = 'mixed'";
    assert_eq!(app.count(event_count).await?, 1);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_events_sessions_and_errors_and_refuses_expired_resends_on_postgres()
-> anyhow::Result<()> {
    retention_removes_old_data(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_events_sessions_and_errors_and_refuses_expired_resends_embedded()
-> anyhow::Result<()> {
    retention_removes_old_data(Backend::Embedded).await
}

/// While another process holds the sweeper's lock, a retention step does nothing and says so; once it
/// is released, the step deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_at_a_time_runs_a_retention_step_on_postgres() -> anyhow::Result<()> {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let old = Utc::now() - TimeDelta::days(2);
    post(&app, json!([event(Uuid::now_v7(), "s", old)])).await?;
    app.wait_for_count("SELECT COUNT(*) FROM events", 1).await?;
    let cutoff = Utc::now() - TimeDelta::days(1);

    let other = app.store.connection().begin().await?;
    // The sweeper's lock key, "eye_ret" in ASCII (store/src/lifecycle/retention.rs).
    let lock = "SELECT pg_advisory_xact_lock(28562448947766644)";
    other
        .execute_raw(Statement::from_string(other.get_database_backend(), lock))
        .await?;
    let step = app.store.retention_step(cutoff, 1000).await?;
    assert!(step.skipped && step.events == 0, "{step:?}");
    other.rollback().await?;

    let step = app.store.retention_step(cutoff, 1000).await?;
    assert_eq!(
        (step.skipped, step.events, step.sessions_removed),
        (false, 1, 1)
    );
    app.stop().await
}
