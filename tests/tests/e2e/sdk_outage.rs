//! A server stopped for 60 s in the middle of a send (a deploy): the SDK keeps buffering and
//! retrying within its retry budget, and every tracked event is stored exactly once, its
//! `sent_at` stamped by the attempt that got through.

use crate::support::{Backend, TestApp};
use anyhow::Context;
use eye_sdk::{Client, Event, EventId, Stats};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const OUTAGE: Duration = Duration::from_secs(60);
/// One event every 25 ms (40 a second) while the test runs.
const PACE: Duration = Duration::from_millis(25);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_for_60_s_mid_send_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    // The default retry budget (10 minutes) outlasts the outage; a short longest backoff makes
    // the SDK notice the restart within seconds.
    let client = Client::builder(app.base.clone(), app.ingest_key.clone())
        .linger(Duration::from_millis(100))
        .max_backoff(Duration::from_secs(5))
        .build()?;
    let stop = CancellationToken::new();
    let tracker = tokio::spawn(track_until(client.clone(), stop.clone()));

    wait_for("events sent before the stop", || client.stats().sent >= 100).await?;
    let app = app.restart_after(OUTAGE).await?;
    let at_restart = client.stats();
    assert!(
        at_restart.retried > 0,
        "the outage hit sends: {at_restart:?}"
    );
    assert_eq!(at_restart.failed, 0);
    // The backlog of the outage drains while tracking goes on.
    wait_for("the backlog sent", || drained(&client.stats(), &at_restart)).await?;
    stop.cancel();
    let tracked = tracker.await??;
    client.shutdown(Duration::from_secs(120)).await?;

    let stats = client.stats();
    eprintln!("tracked {}, {stats:?}", tracked.len());
    assert_eq!(
        (stats.sent, stats.failed, stats.buffered),
        (len(&tracked), 0, 0)
    );
    assert_stored_exactly_once(&app, &tracked).await?;
    assert_sent_at_is_the_attempts(&app).await?;
    app.stop().await
}

/// Tracks events at [`PACE`] until stopped; returns their ids.
async fn track_until(client: Client, stop: CancellationToken) -> anyhow::Result<Vec<EventId>> {
    let mut ids = Vec::new();
    let mut tick = tokio::time::interval(PACE);
    while !stop.is_cancelled() {
        tick.tick().await;
        let n = ids.len();
        let event = Event::new(format!("outage-{}", n % 20), "page interaction", "pageview")
            .data(json!({"host": "example.com", "path": format!("/{n}")}));
        ids.push(client.track(event).await?);
    }
    Ok(ids)
}

/// What was buffered at the restart is sent and little is left waiting.
fn drained(now: &Stats, at_restart: &Stats) -> bool {
    now.sent >= at_restart.sent + at_restart.buffered && now.buffered < 50
}

fn len(ids: &[EventId]) -> u64 {
    ids.len() as u64
}

/// Polls `condition` every 100 ms, for up to 3 minutes.
async fn wait_for(what: &str, condition: impl Fn() -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    while !condition() {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(180), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Every tracked id is stored once, and nothing else is.
async fn assert_stored_exactly_once(app: &TestApp, tracked: &[EventId]) -> anyhow::Result<()> {
    let expected = i64::try_from(tracked.len())?;
    app.wait_for_count("SELECT COUNT(*) FROM events", expected)
        .await?;
    let db = app.store.connection();
    let sql = "SELECT event_id FROM events";
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    let mut stored: HashMap<Uuid, usize> = HashMap::new();
    for row in rows {
        *stored.entry(row.try_get_by_index::<Uuid>(0)?).or_default() += 1;
    }
    let tracked: HashSet<Uuid> = tracked.iter().map(EventId::as_uuid).collect();
    let lost = tracked.iter().filter(|id| !stored.contains_key(id)).count();
    let duplicated = stored.values().filter(|&&n| n > 1).count();
    let strangers = stored.keys().filter(|id| !tracked.contains(id)).count();
    assert_eq!(
        (lost, duplicated, strangers),
        (0, 0, 0),
        "lost, duplicated, strangers"
    );
    Ok(())
}

/// Events waited up to the whole outage, yet the skew correction (`received_at - sent_at`)
/// stays a transfer time: `sent_at` is the attempt's, not the moment of tracking.
async fn assert_sent_at_is_the_attempts(app: &TestApp) -> anyhow::Result<()> {
    let waited_long = app
        .count("SELECT COUNT(*) FROM events WHERE received_at - client_timestamp > INTERVAL '30 seconds'")
        .await
        .context("events that waited")?;
    assert!(waited_long > 0, "some events waited through the outage");
    let unstamped = app
        .count("SELECT COUNT(*) FROM events WHERE sent_at IS NULL")
        .await?;
    let shifted = app
        .count("SELECT COUNT(*) FROM events WHERE received_at - sent_at > INTERVAL '20 seconds'")
        .await?;
    assert_eq!(
        (unstamped, shifted),
        (0, 0),
        "unstamped, shifted by the wait"
    );
    let most_ms = |interval: &str| {
        format!("SELECT CAST(MAX(EXTRACT(EPOCH FROM ({interval})) * 1000) AS BIGINT) FROM events")
    };
    let longest_wait = app
        .count(&most_ms("received_at - client_timestamp"))
        .await?;
    let largest_shift = app.count(&most_ms("received_at - sent_at")).await?;
    eprintln!("longest wait {longest_wait} ms, largest received_at - sent_at {largest_shift} ms");
    Ok(())
}
