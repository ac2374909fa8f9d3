//! An absence is decided only once nothing accepted before its due time is still in the queue: a start
//! that was sent in time but is slow to store still prevents the nudge, however long it takes.

use crate::support::{Backend, Isolation, TestApp};
use eye_server::Role;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// Storing a program start takes 15 s: longer than the lateness, so the sweeper runs while it waits.
const SLOW_STARTS: &str = "
CREATE FUNCTION slow_starts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.name = 'training_program_started' THEN PERFORM pg_sleep(15); END IF; RETURN NEW; END $$;
CREATE TRIGGER slow_starts BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_starts();";

fn fitness(user: &str, name: &str, at: &str) -> Value {
    json!([{"event_id": Uuid::new_v4(), "session_id": format!("s-{user}"), "category": "fitness",
            "name": name, "user_id": user, "data": {"training_program_id": "1"}, "timestamp": at}])
}

fn nudges(user: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM notifications WHERE user_id = '{user}' AND rule = 'start_training_nudge'"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_sent_in_time_but_slow_to_store_prevents_the_nudge() -> anyhow::Result<()> {
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.rule_lateness = Duration::from_secs(5);
    let app = TestApp::start_with(isolation, Role::All).await?;
    for user in ["in-time", "too-late"] {
        let launch = fitness(user, "app_launch", "2021-02-28T08:00:00Z");
        assert_eq!(
            app.post_events(launch).await?.status(),
            StatusCode::ACCEPTED
        );
    }
    app.wait_for_count(
        "SELECT COUNT(*) FROM rule_states WHERE wake_at IS NOT NULL",
        2,
    )
    .await?;
    app.store
        .connection()
        .execute_unprepared(SLOW_STARTS)
        .await?;
    let starts = [
        ("in-time", "2021-02-28T08:05:00Z"),
        ("too-late", "2021-02-28T08:15:00Z"),
    ];
    for (user, at) in starts {
        let start = fitness(user, "training_program_started", at);
        assert_eq!(app.post_events(start).await?.status(), StatusCode::ACCEPTED);
    }
    // The nudge of the user who started too late comes once the slow starts are stored: the sweeper ran
    // all along, so had it fired while the in-time start waited in the queue, that nudge is there too.
    app.wait_for_count(&nudges("too-late"), 1).await?;
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, 4);
    assert_eq!(app.count(&nudges("in-time")).await?, 0, "a false nudge");
    app.stop().await
}
