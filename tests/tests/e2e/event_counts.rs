//! `GET /v1/stats/events` from the hourly counts (migration 16): exact while eight concurrent jobs store
//! overlapping, resent batches (each on its own connection, so in different count slots on
//! PostgreSQL) while a folder folds those slots under them, after a user's erasure, and after the
//! migration rebuilds them from the stored events; whole hours and ragged range ends alike, on both
//! backends.

use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp};
use anyhow::Context;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use eye_migration::Migrator;
use eye_server::Role;
use eye_store::Store;
use futures::future::try_join_all;
use reqwest::StatusCode;
use sea_orm::Database;
use sea_orm_migration::MigratorTrait;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const TYPES: [(&str, &str); 4] = [
    ("count test", "alpha"),
    ("count test", "beta"),
    ("other test", "alpha"),
    ("other test", "gamma"),
];
const EVENTS: usize = 600;
const PER_BATCH: usize = 50;

/// What the test sent, to compute the expected counts from.
#[derive(Debug, Clone)]
struct Sent {
    at: DateTime<Utc>,
    category: &'static str,
    name: &'static str,
    user: String,
    body: Value,
}

/// 600 events from 08:00 to 11:59:24 on 2021-01-01, over four types and five users.
fn events() -> Vec<Sent> {
    (0..EVENTS)
        .map(|i| sent_event(i, 24 * i as i64, &format!("u{}", i % 5)))
        .collect()
}

/// Event `i` of the workload, `second`s after 08:00, by `user`.
fn sent_event(i: usize, second: i64, user: &str) -> Sent {
    let start: DateTime<Utc> = "2021-01-01T08:00:00Z".parse().unwrap_or_default();
    let at = start + TimeDelta::seconds(second);
    let (category, name) = TYPES[i * 7 % TYPES.len()];
    let body = json!({"event_id": uuid::Uuid::new_v4(), "session_id": format!("s{}", i % 9),
        "category": category, "name": name, "user_id": user, "data": {"i": i},
        "timestamp": at.to_rfc3339()});
    Sent {
        at,
        category,
        name,
        user: user.to_owned(),
        body,
    }
}

/// Every batch twice (a client's retry), and batches that overlap their neighbours, all at once.
async fn send_with_duplicates(app: &TestApp, sent: &[Sent]) -> anyhow::Result<usize> {
    let bodies: Vec<Value> = sent.iter().map(|s| s.body.clone()).collect();
    let mut batches: Vec<Vec<Value>> = bodies.chunks(PER_BATCH).map(<[Value]>::to_vec).collect();
    batches.extend(batches.clone());
    batches.extend(
        bodies[PER_BATCH / 2..]
            .chunks(PER_BATCH)
            .map(<[Value]>::to_vec),
    );
    let total = batches.iter().map(Vec::len).sum();
    try_join_all(batches.into_iter().map(|batch| async move {
        let response = app.post_events(Value::from(batch)).await?;
        anyhow::ensure!(
            response.status() == StatusCode::ACCEPTED,
            "{}",
            response.status()
        );
        Ok(())
    }))
    .await?;
    Ok(total)
}

type Buckets = BTreeMap<(String, String), i64>;

fn group_of<'a>(sent: &'a Sent, group_by: &str, application: &'a str) -> &'a str {
    match group_by {
        "category" => sent.category,
        "name" => sent.name,
        _ => application,
    }
}

fn expected(sent: &[Sent], query: &StatsQuery, application: &str) -> Buckets {
    let width = match query.interval {
        "hour" => TimeDelta::hours(1),
        _ => TimeDelta::days(1),
    };
    let mut buckets = Buckets::new();
    for s in sent
        .iter()
        .filter(|s| query.from <= s.at && s.at < query.to)
    {
        let start = s.at.duration_trunc(width).unwrap_or(s.at);
        let key = (
            start.to_rfc3339(),
            group_of(s, query.group_by, application).to_owned(),
        );
        *buckets.entry(key).or_default() += 1;
    }
    buckets
}

struct StatsQuery {
    interval: &'static str,
    group_by: &'static str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// Hours and days, each grouping, over whole hours and over a range with ragged ends.
fn queries() -> Vec<StatsQuery> {
    let day: DateTime<Utc> = "2021-01-01T00:00:00Z".parse().unwrap_or_default();
    let ragged = (
        "2021-01-01T08:20:00Z".parse().unwrap_or_default(),
        "2021-01-01T11:40:00Z".parse().unwrap_or_default(),
    );
    let mut queries = Vec::new();
    for interval in ["hour", "day"] {
        for group_by in ["category", "name", "application"] {
            for (from, to) in [(day, day + TimeDelta::days(1)), ragged] {
                queries.push(StatsQuery {
                    interval,
                    group_by,
                    from,
                    to,
                });
            }
        }
    }
    queries
}

async fn answered(app: &TestApp, query: &StatsQuery) -> anyhow::Result<Buckets> {
    let url = format!(
        "{}/v1/stats/events?interval={}&group_by={}&from={}&to={}&application_id={}",
        app.base,
        query.interval,
        query.group_by,
        query
            .from
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        query.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        app.application_id
    );
    let response = app.http.get(url).bearer_auth(ADMIN_TOKEN).send().await?;
    anyhow::ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let body: Value = response.json().await?;
    let mut buckets = Buckets::new();
    for bucket in body["buckets"].as_array().cloned().unwrap_or_default() {
        let start: DateTime<Utc> = bucket["start"].as_str().unwrap_or_default().parse()?;
        let group = bucket["group"].as_str().unwrap_or_default().to_owned();
        buckets.insert(
            (start.to_rfc3339(), group),
            bucket["count"].as_i64().unwrap_or(-1),
        );
    }
    Ok(buckets)
}

async fn assert_counts_match(app: &TestApp, kept: &[Sent], when: &str) -> anyhow::Result<()> {
    for query in queries() {
        let expected = expected(kept, &query, &app.application_id);
        let answered = answered(app, &query).await?;
        assert_eq!(
            answered, expected,
            "{when}: {} per {} from {} to {}",
            query.group_by, query.interval, query.from, query.to
        );
    }
    let summed = "SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT) FROM event_counts";
    assert_eq!(app.count(summed).await?, kept.len() as i64, "{when}");
    Ok(())
}

async fn counts_stay_exact(backend: Backend) -> anyhow::Result<()> {
    let isolation = Isolation::new(backend).await?;
    let database_url = isolation.config.database_url.clone();
    let app = TestApp::start_with(isolation, Role::All).await?;
    let sent = events();
    // Folding races the jobs that write the same rows (on SQLite it has nothing to do).
    let stop = Arc::new(AtomicBool::new(false));
    let folder = tokio::spawn(fold_until(app.store.clone(), stop.clone()));
    let posted = send_with_duplicates(&app, &sent).await?;
    app.wait_for_processed_events(posted as u64).await?;
    stop.store(true, Ordering::Relaxed);
    let folded_while_storing = folder.await??;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events").await?,
        EVENTS as i64
    );
    assert_counts_match(&app, &sent, "stored with duplicates while folding").await?;
    let folded = app.store.fold_event_counts(far_future(), 100_000).await?;
    eprintln!("folded {folded_while_storing} rows while storing, {folded} after");
    if backend == Backend::PostgresRedis {
        assert!(folded_while_storing > 0, "the folder raced the jobs");
    }
    let unfolded = "SELECT COUNT(*) FROM event_counts WHERE slot <> 0";
    assert_eq!(app.count(unfolded).await?, 0, "every past hour folded");
    assert_counts_match(&app, &sent, "folded").await?;

    let erased = app
        .http
        .delete(format!(
            "{}/v1/admin/applications/{}/users/u1",
            app.base, app.application_id
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    assert_eq!(erased.status(), StatusCode::OK);
    let kept: Vec<Sent> = sent.into_iter().filter(|s| s.user != "u1").collect();
    assert_counts_match(&app, &kept, "after erasing u1").await?;

    rebuild_counts(&database_url).await?;
    let slots = "SELECT COUNT(DISTINCT slot) FROM event_counts";
    assert_eq!(app.count(slots).await?, 1, "the backfill writes one slot");
    assert_counts_match(&app, &kept, "rebuilt by the migration").await?;

    // A new event in a backfilled hour adds to that hour's row: the backfill wrote the hour as ingest
    // does (on SQLite, the same text), or the upsert would miss it and start a second row.
    let late = sent_event(0, 30, "u2");
    let mut kept = kept;
    kept.push(late.clone());
    let response = app.post_events(Value::from(vec![late.body])).await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.wait_for_processed_events(posted as u64 + 1).await?;
    let alpha_hours: BTreeSet<DateTime<Utc>> = kept
        .iter()
        .filter(|s| (s.category, s.name) == TYPES[0])
        .filter_map(|s| s.at.duration_trunc(TimeDelta::hours(1)).ok())
        .collect();
    let alpha_rows = "SELECT COUNT(*) FROM event_counts \
                      WHERE category = 'count test' AND name = 'alpha' AND slot = 0";
    assert_eq!(app.count(alpha_rows).await?, alpha_hours.len() as i64);
    assert_counts_match(&app, &kept, "a late event after the backfill").await?;
    app.stop().await
}

fn far_future() -> DateTime<Utc> {
    Utc::now() + TimeDelta::days(365)
}

/// Folds every hour's slots, a few rows at a time, until `stop`; answers the rows folded.
async fn fold_until(store: Store, stop: Arc<AtomicBool>) -> anyhow::Result<u64> {
    let mut folded = 0;
    while !stop.load(Ordering::Relaxed) {
        folded += store.fold_event_counts(far_future(), 20).await?;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Ok(folded)
}

/// Undoes migration 16 (and any after it) and applies it again: its backfill counts the events already
/// stored.
async fn rebuild_counts(database_url: &str) -> anyhow::Result<()> {
    let db = Database::connect(database_url).await?;
    let applied = Migrator::get_applied_migrations(&db).await?;
    let position = applied
        .iter()
        .position(|m| m.name().ends_with("_event_counts"))
        .context("migration 16 applied")?;
    // Undone with the migrations after it, all applied again.
    Migrator::down(&db, Some((applied.len() - position) as u32)).await?;
    Migrator::up(&db, None).await?;
    db.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_stay_exact_with_concurrent_jobs_duplicates_and_erasure() -> anyhow::Result<()> {
    counts_stay_exact(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_stay_exact_on_the_embedded_default() -> anyhow::Result<()> {
    counts_stay_exact(Backend::Embedded).await
}
