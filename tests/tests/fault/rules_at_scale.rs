//! Issue 12, point 1 at scale: a backlog of users' start/finish pairs and app launches, a worker killed
//! with `kill -9` three times while it works through them; every user who trained is congratulated
//! exactly once, and every user who launched the app and started no program within 10 minutes is nudged
//! exactly once (and nobody else).

use crate::cluster::Cluster;
use crate::load::{Batch, Pace};
use crate::verify::{SETTLE_LIMIT, Stored, WAIT_LIMIT, say};
use crate::{BATCH_SIZE, scenario_slot};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

const USERS: usize = 4_000;

/// Users who launch the app: the odd ones start a program 15 minutes later (nudged), the even ones 5
/// minutes later (not nudged).
const LAUNCHERS: usize = 1_000;

/// Every event of the scenario.
const EVENTS: usize = 2 * USERS + 2 * LAUNCHERS;

/// The backlog goes in as fast as the API takes it: no worker runs yet.
const BACKLOG_PACE: Pace = Pace {
    clients: 4,
    events_per_second: 50_000,
};

/// The worker is killed when these shares of the backlog are stored.
const KILL_AT_PERCENT: [usize; 3] = [55, 70, 85];

/// Without a notify service each notification is logged as a warning; thousands would bury the diagnosis.
const QUIET_NOTIFIER: &str = "info,sqlx=warn,sea_orm=warn,eye_worker::notify=error";

const CONGRATULATED: &str =
    "SELECT COUNT(DISTINCT user_id) FROM notifications WHERE rule = 'daily_training_dose'";
const NOTIFICATIONS: &str = "SELECT COUNT(*) FROM notifications WHERE rule = 'daily_training_dose'";
const NUDGES: &str = "SELECT COUNT(*) FROM notifications WHERE rule = 'start_training_nudge'";
const NUDGED: &str =
    "SELECT COUNT(DISTINCT user_id) FROM notifications WHERE rule = 'start_training_nudge'";
const WRONGLY_NUDGED: &str = "SELECT COUNT(*) FROM notifications WHERE rule = 'start_training_nudge' \
     AND CAST(substr(user_id, 2) AS integer) % 2 = 0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_is_congratulated_once_through_three_worker_kills() -> anyhow::Result<()> {
    let _slot = scenario_slot().await?;
    // Nudges fire by the wall clock a second after their deadline (long past: the events are old).
    let env = [("RUST_LOG", QUIET_NOTIFIER), ("EYE_RULE_LATENESS", "1s")];
    let mut cluster = Cluster::start(&env).await?;
    let mut batches = training_batches()?;
    batches.extend(launch_batches()?);
    let report = cluster.load(batches, BACKLOG_PACE)?.finish().await?;
    cluster.start_worker().await?;
    let stored = cluster.stored().await?;
    let total = EVENTS;
    for percent in KILL_AT_PERCENT {
        let now = wait_for_events(&stored, total * percent / 100).await?;
        cluster.worker()?.kill().await?;
        say(&format!(
            "fault rules: worker killed at {now} of {total} events stored"
        ));
        cluster.worker()?.start_again().await?;
    }
    let waited = settle_notifications(&stored).await?;
    say(&format!(
        "fault rules: settled {:.1}s after the last kill",
        waited.as_secs_f64()
    ));

    let congratulated = stored.count(CONGRATULATED).await?;
    let notifications = stored.count(NOTIFICATIONS).await?;
    say(&format!(
        "fault rules: {congratulated} of {USERS} users congratulated, {notifications} notifications"
    ));
    let (nudges, nudged, wrongly) = (
        stored.count(NUDGES).await?,
        stored.count(NUDGED).await?,
        stored.count(WRONGLY_NUDGED).await?,
    );
    say(&format!(
        "fault rules: {nudged} of {} users nudged, {nudges} nudges, {wrongly} to users who started in time",
        LAUNCHERS / 2
    ));
    let mut outcome = stored
        .outcome("rules at scale, worker kill -9 x3", report)
        .await?;
    if congratulated != USERS as i64 || notifications != USERS as i64 {
        outcome.problem(format!(
            "{USERS} users finished a 40-minute program: {} were never congratulated, {} notifications \
             for {congratulated} users",
            USERS as i64 - congratulated,
            notifications
        ));
    }
    if (nudges, nudged, wrongly) != ((LAUNCHERS / 2) as i64, (LAUNCHERS / 2) as i64, 0) {
        outcome.problem(format!(
            "{} users started no program within 10 minutes of a launch: {nudged} nudged, {nudges} nudges, \
             {wrongly} nudges to users who started in time",
            LAUNCHERS / 2
        ));
    }
    cluster.conclude(outcome)
}

/// Each launcher's `app_launch`, followed in the same batch by their `training_program_started` 5
/// (even users) or 15 (odd users) minutes later.
fn launch_batches() -> anyhow::Result<Vec<Batch>> {
    let base: DateTime<Utc> = "2026-11-01T07:00:00Z".parse()?;
    let events: Vec<Value> = (0..LAUNCHERS)
        .flat_map(|user| {
            let launched = base + TimeDelta::seconds(user as i64);
            let started = launched + TimeDelta::minutes(if user % 2 == 0 { 5 } else { 15 });
            [
                ("app_launch", launched),
                ("training_program_started", started),
            ]
            .map(|(name, at)| {
                json!({"event_id": Uuid::new_v4(), "session_id": format!("l{user}"),
                       "user_id": format!("n{user}"), "category": "fitness", "name": name,
                       "timestamp": at.to_rfc3339(), "data": {"training_program_id": "7"}})
            })
        })
        .collect();
    // BATCH_SIZE is even: a launch and its start always travel in one job.
    events
        .chunks(BATCH_SIZE)
        .map(|chunk| Batch::new(chunk.to_vec()))
        .collect()
}

/// Every user's `training_program_started`, then every user's `training_program_finished` 40 minutes
/// later (event time), in batches.
fn training_batches() -> anyhow::Result<Vec<Batch>> {
    let base: DateTime<Utc> = "2026-11-01T08:00:00Z".parse()?;
    let events: Vec<Value> = ["training_program_started", "training_program_finished"]
        .into_iter()
        .enumerate()
        .flat_map(|(step, name)| {
            (0..USERS).map(move |user| {
                let at =
                    base + TimeDelta::seconds(user as i64) + TimeDelta::minutes(40 * step as i64);
                json!({"event_id": Uuid::new_v4(), "session_id": format!("d{user}"),
                       "user_id": format!("u{user}"), "category": "fitness", "name": name,
                       "timestamp": at.to_rfc3339(),
                       "data": {"training_program_id": "2352", "training_program_title": "HIIT"}})
            })
        })
        .collect();
    events
        .chunks(BATCH_SIZE)
        .map(|chunk| Batch::new(chunk.to_vec()))
        .collect()
}

/// Waits until `events` are stored, or fails once nothing is stored for `SETTLE_LIMIT`; returns how many
/// were stored.
async fn wait_for_events(stored: &Stored, events: usize) -> anyhow::Result<i64> {
    let (started, mut last, mut changed_at) = (Instant::now(), 0, Instant::now());
    loop {
        let now = stored.count("SELECT COUNT(*) FROM events").await?;
        if now >= events as i64 {
            return Ok(now);
        }
        if now != last {
            (last, changed_at) = (now, Instant::now());
        }
        anyhow::ensure!(
            changed_at.elapsed() < SETTLE_LIMIT && started.elapsed() < WAIT_LIMIT,
            "only {now} of {events} events stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every user is congratulated, or nothing has changed for `SETTLE_LIMIT` (a redelivered
/// job may still be on its way for that long).
async fn settle_notifications(stored: &Stored) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let (mut last, mut changed_at) = ((-1, -1), Instant::now());
    loop {
        let now = (
            stored.count("SELECT COUNT(*) FROM events").await?,
            stored.count(NOTIFICATIONS).await? + stored.count(NUDGES).await?,
        );
        let expected = (USERS + LAUNCHERS / 2) as i64;
        if now.0 == EVENTS as i64 && now.1 >= expected && now == last {
            return Ok(started.elapsed());
        }
        if now != last {
            (last, changed_at) = (now, Instant::now());
        }
        if changed_at.elapsed() > SETTLE_LIMIT || started.elapsed() > WAIT_LIMIT {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
