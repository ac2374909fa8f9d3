//! Absence rules decided by the wall clock only: events that parallel jobs store out of order never
//! produce a false nudge, and the seed's sample notifies the same in every arrival order.

use crate::notifications::post_event;
use crate::support::{Backend, Isolation, TestApp};
use eye_server::Role;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::time::Duration;

/// How long past a deadline (or a trigger's arrival) the sweeper waits for late events, in these tests.
/// It must exceed the time from a request's 202 to its events' evaluation: on this 2-core machine under
/// a load of 11, starts took up to 5.6 s, and a 2-second lateness nudged 3 to 10 of 160 users whose start
/// was simply still in the pipeline (the wall clock rule working as designed, with too short a wait).
const LATENESS: Duration = Duration::from_secs(10);

/// Users per run, spread over four clients.
const USERS: usize = 160;
const CLIENTS: usize = 4;

async fn start_app() -> anyhow::Result<TestApp> {
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.rule_lateness = LATENESS;
    isolation.config.notify_url = None;
    TestApp::start_with(isolation, Role::All).await
}

fn fitness(user: &str, kind: &str, time: &str) -> Value {
    json!({"user_id": user, "device_id": user, "type": kind, "training_program_id": "2352",
           "time_stamp": format!("2021-03-01 {time}")})
}

/// A launch at 08:00:00, a start at `started`, a finish at 08:39 (30 minutes after an 08:09 start: no
/// congratulation) and a cancel at 08:40.
fn day(user: &str, started: &str) -> [Value; 4] {
    [
        fitness(user, "app_launch", "08:00:00"),
        fitness(user, "training_program_started", started),
        fitness(user, "training_program_finished", "08:39:00"),
        fitness(user, "training_program_cancelled", "08:40:00"),
    ]
}

/// Four clients at once, each sending its users' days one request at a time, each after the previous
/// one's 202: a user's next event is often stored by another job running in parallel.
async fn send_days(app: &TestApp, run: usize, started: &str) -> anyhow::Result<()> {
    let clients = (0..CLIENTS).map(|client| async move {
        for n in (client..USERS).step_by(CLIENTS) {
            for event in day(&format!("r{run}u{n}"), started) {
                post_event(app, &app.ingest_key, &event).await?;
            }
        }
        anyhow::Ok(())
    });
    futures::future::try_join_all(clients).await?;
    Ok(())
}

/// Waits until the run's events are stored and no timer is pending, then past the lateness and a few
/// sweeps, so a timer fired by mistake would have been recorded.
async fn settle(app: &TestApp, run: usize) -> anyhow::Result<()> {
    let stored = format!("SELECT COUNT(*) FROM events WHERE user_id LIKE 'r{run}u%'");
    app.wait_for_count(&stored, (USERS * 4) as i64).await?;
    let pending = format!(
        "SELECT COUNT(*) FROM rule_states WHERE user_id LIKE 'r{run}u%' AND wake_at IS NOT NULL"
    );
    app.wait_for_count(&pending, 0).await?;
    tokio::time::sleep(LATENESS + Duration::from_secs(3)).await;
    Ok(())
}

fn nudges(run: usize) -> String {
    format!(
        "SELECT COUNT(*) FROM notifications WHERE user_id LIKE 'r{run}u%' \
         AND rule = 'start_training_nudge'"
    )
}

/// For each nudged user of `run`: when the launch was received, and when the start was received and
/// stored, against when the nudge was decided (a start stored after the lateness is late by design).
async fn nudge_timeline(app: &TestApp, run: usize) -> anyhow::Result<Vec<String>> {
    let db = app.store.connection();
    let sql = format!(
        "SELECT n.user_id || ': launch received ' || l.received_at || ', start received ' || \
         s.received_at || ' stored ' || s.stored_at || ', nudge decided ' || n.created_at \
         FROM notifications n \
         JOIN events l ON l.user_id = n.user_id AND l.name = 'app_launch' \
         JOIN events s ON s.user_id = n.user_id AND s.name = 'training_program_started' \
         WHERE n.user_id LIKE 'r{run}u%'"
    );
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| row.try_get_by_index::<String>(0).ok())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_in_time_stored_after_later_events_never_gives_a_false_nudge() -> anyhow::Result<()>
{
    let app = start_app().await?;
    for run in 0..3 {
        send_days(&app, run, "08:09:00").await?;
        settle(&app, run).await?;
        let nudged = app.count(&nudges(run)).await?;
        assert_eq!(
            nudged,
            0,
            "run {run}: {:#?}",
            nudge_timeline(&app, run).await?
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications").await?, 0);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_after_the_window_nudges_each_user_exactly_once() -> anyhow::Result<()> {
    let app = start_app().await?;
    for run in 0..2 {
        send_days(&app, run, "08:11:00").await?;
        app.wait_for_count(&nudges(run), USERS as i64).await?;
        settle(&app, run).await?;
        assert_eq!(app.count(&nudges(run)).await?, USERS as i64, "run {run}");
        let twice = format!(
            "SELECT COUNT(*) FROM (SELECT user_id FROM notifications WHERE user_id LIKE 'r{run}u%' \
             GROUP BY user_id HAVING COUNT(*) <> 1) AS twice"
        );
        assert_eq!(app.count(&twice).await?, 0, "run {run}");
    }
    app.stop().await
}

/// The order of `0..5` that `seed` picks (a small xorshift; the tests need no randomness crate).
fn shuffled(seed: u64) -> Vec<usize> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut order: Vec<usize> = (0..5).collect();
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// One application per seed, so the sample's events are new each time; all sent at once.
async fn send_sample(app: &TestApp, seed: u64) -> anyhow::Result<String> {
    let created = app.create_application(&format!("sample-{seed}")).await?;
    let key = created["ingest_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let events = crate::notifications::seed_sample();
    let order = shuffled(seed);
    let sends = order.iter().map(|&i| post_event(app, &key, &events[i]));
    futures::future::try_join_all(sends).await?;
    Ok(created["id"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_sample_sent_in_shuffled_concurrent_requests_notifies_foo1_and_foo2_once()
-> anyhow::Result<()> {
    let app = start_app().await?;
    let seeds = [1_u64, 2, 3, 5, 8, 13];
    let applications =
        futures::future::try_join_all(seeds.iter().map(|&seed| send_sample(&app, seed))).await?;
    for application in &applications {
        let sent =
            format!("SELECT COUNT(*) FROM notifications WHERE application_id = '{application}'");
        app.wait_for_count(&sent, 2).await?;
        let pending = format!(
            "SELECT COUNT(*) FROM rule_states WHERE application_id = '{application}' \
             AND wake_at IS NOT NULL"
        );
        app.wait_for_count(&pending, 0).await?;
    }
    tokio::time::sleep(LATENESS + Duration::from_secs(3)).await;
    for (seed, application) in seeds.iter().zip(&applications) {
        let congratulated = format!(
            "SELECT COUNT(*) FROM notifications WHERE application_id = '{application}' \
             AND user_id = 'foo1' AND rule = 'daily_training_dose' \
             AND message LIKE '%You trained 36 minutes in 7 Minutes of HIIT Training%'"
        );
        let nudged = format!(
            "SELECT COUNT(*) FROM notifications WHERE application_id = '{application}' \
             AND user_id = 'foo2' AND rule = 'start_training_nudge' \
             AND triggered_at = '2021-02-28T16:32:52Z'"
        );
        let all =
            format!("SELECT COUNT(*) FROM notifications WHERE application_id = '{application}'");
        let order = shuffled(*seed);
        assert_eq!(
            app.count(&congratulated).await?,
            1,
            "seed {seed}, order {order:?}"
        );
        assert_eq!(app.count(&nudged).await?, 1, "seed {seed}, order {order:?}");
        assert_eq!(app.count(&all).await?, 2, "seed {seed}, order {order:?}");
    }
    app.stop().await
}
