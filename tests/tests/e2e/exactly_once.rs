//! Every accepted event is stored and evaluated by the rules exactly once, whatever fails on the way: a
//! database that turns read-only, a rule evaluation that fails, an event replayed after a schema fix.

use crate::notifications::{post_each, seed_sample};
use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp, postgres_url};
use eye_server::Role;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// A program of `minutes` for `user`, as two events in the improved shape.
fn program(user: &str, minutes: u32) -> Value {
    let event = |name: &str, at: String| {
        json!({"event_id": Uuid::new_v4(), "session_id": format!("s-{user}"), "category": "fitness",
               "name": name, "user_id": user, "data": {"training_program_id": "2352"}, "timestamp": at})
    };
    json!([
        event("training_program_started", "2021-02-28T10:00:00Z".into()),
        event(
            "training_program_finished",
            format!("2021-02-28T10:{minutes:02}:00Z")
        ),
    ])
}

fn congratulations(user: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM notifications WHERE user_id = '{user}' AND rule = 'daily_training_dose'"
    )
}

/// Runs statements against the test's database from the server's admin database (the test database
/// itself may be read-only or have its connections cut).
async fn admin_sql(statements: &[String]) -> anyhow::Result<()> {
    let admin = Database::connect(postgres_url()).await?;
    for statement in statements {
        admin.execute_unprepared(statement).await?;
    }
    Ok(())
}

fn set_read_only(database: &str, on: bool) -> Vec<String> {
    vec![
        format!("ALTER DATABASE \"{database}\" SET default_transaction_read_only = {on}"),
        // Pooled connections keep the setting they started with: cut them, the pools reconnect.
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_read_only_for_a_while_delays_storage_and_loses_nothing() -> anyhow::Result<()> {
    // PostgreSQL with the embedded queue: there apalis gave a failing job up after 25 quick attempts.
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.redis_url = None;
    let app = TestApp::start_with(isolation, Role::All).await?;
    let database = app.database_name().unwrap_or_default().to_owned();
    admin_sql(&set_read_only(&database, true)).await?;
    let events = program("ro", 40);
    let response = app.post_events(events).await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // Well past the moment apalis had dropped the job (0.6 s), while the database still refuses writes.
    tokio::time::sleep(Duration::from_secs(5)).await;
    admin_sql(&set_read_only(&database, false)).await?;
    app.wait_for_count("SELECT COUNT(*) FROM events", 2).await?;
    app.wait_for_count(&congratulations("ro"), 1).await?;
    assert_eq!(app.count("SELECT COUNT(*) FROM dead_jobs").await?, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM ingest_errors").await?, 0);
    app.stop().await
}

const REFUSE_RULE_STATES: &str = "
CREATE FUNCTION refuse_rule_states() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'rule states are refused by the test'; END $$;
CREATE TRIGGER refuse_rule_states BEFORE INSERT OR UPDATE ON rule_states
FOR EACH ROW EXECUTE FUNCTION refuse_rule_states();";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_rule_evaluation_stores_nothing_and_the_dead_job_replay_notifies_once()
-> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    app.store
        .connection()
        .execute_unprepared(REFUSE_RULE_STATES)
        .await?;
    let response = app.post_events(program("dead", 40)).await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.wait_for_count("SELECT COUNT(*) FROM dead_jobs", 1)
        .await?;
    assert_eq!(app.metric("eye_jobs_dead_total").await?, 1.0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events").await?,
        0,
        "events are never stored without their evaluation"
    );

    app.store
        .connection()
        .execute_unprepared("DROP TRIGGER refuse_rule_states ON rule_states")
        .await?;
    for _ in 0..2 {
        let replayed = replay_dead_jobs(&app).await?;
        assert!(replayed["replayed"].as_u64().is_some(), "{replayed}");
        app.wait_for_count("SELECT COUNT(*) FROM events", 2).await?;
        app.wait_for_count(&congratulations("dead"), 1).await?;
    }
    app.stop().await
}

async fn replay_dead_jobs(app: &TestApp) -> anyhow::Result<Value> {
    let response = app
        .http
        .post(format!("{}/v1/admin/dead-jobs/replay", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({}))
        .send()
        .await?;
    anyhow::ensure!(response.status() == StatusCode::OK, "{}", response.status());
    Ok(response.json().await?)
}

/// Publishes `schema` for the `fitness` type `name`.
async fn publish(app: &TestApp, name: &str, schema: &Value) -> anyhow::Result<()> {
    let response = app
        .http
        .put(format!("{}/v1/admin/event-types/fitness/{name}", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(schema)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "{}", response.status());
    Ok(())
}

async fn publish_finished(app: &TestApp, schema: Value) -> anyhow::Result<()> {
    publish(app, "training_program_finished", &schema).await
}

async fn replay_errors(app: &TestApp) -> anyhow::Result<Value> {
    let response = app
        .http
        .post(format!("{}/v1/admin/errors/replay", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    anyhow::ensure!(response.status() == StatusCode::OK, "{}", response.status());
    Ok(response.json().await?)
}

async fn a_refused_finish_replayed_after_a_schema_fix_congratulates_once(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::start(backend).await?;
    let strict = json!({"type": "object", "required": ["rating"]});
    publish_finished(&app, strict).await?;
    let response = app.post_events(program("replayed", 40)).await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 1)
        .await?;
    app.wait_for_count("SELECT COUNT(*) FROM events", 1).await?;
    assert_eq!(app.count(&congratulations("replayed")).await?, 0);

    publish_finished(&app, json!({"type": "object"})).await?;
    let replayed = replay_errors(&app).await?;
    assert_eq!(
        (&replayed["stored"], &replayed["still_failing"]),
        (&json!(1), &json!(0)),
        "{replayed}"
    );
    app.wait_for_count(&congratulations("replayed"), 1).await?;
    let again = replay_errors(&app).await?;
    assert_eq!(again["replayed"], 0, "{again}");
    assert_eq!(app.count(&congratulations("replayed")).await?, 1);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_finish_congratulates_its_user_once() -> anyhow::Result<()> {
    a_refused_finish_replayed_after_a_schema_fix_congratulates_once(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_finish_congratulates_its_user_once_on_the_embedded_default()
-> anyhow::Result<()> {
    a_refused_finish_replayed_after_a_schema_fix_congratulates_once(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_goes_on_past_an_event_the_database_refuses() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    publish_finished(&app, json!({"type": "object", "required": ["rating"]})).await?;
    let mut events = program("a", 40);
    if let (Some(batch), Some(more)) = (events.as_array_mut(), program("b", 40).as_array()) {
        batch.extend(more.iter().cloned());
    }
    assert_eq!(
        app.post_events(events).await?.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 2)
        .await?;
    // User a's finish can never be stored: the database refuses it.
    app.store
        .connection()
        .execute_unprepared(
            "CREATE FUNCTION refuse_a() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.user_id = 'a' AND NEW.name = 'training_program_finished'
             THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER refuse_a BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_a();",
        )
        .await?;
    publish_finished(&app, json!({"type": "object"})).await?;
    let replayed = replay_errors(&app).await?;
    assert_eq!(
        (&replayed["stored"], &replayed["still_failing"]),
        (&json!(1), &json!(1)),
        "{replayed}"
    );
    let failure = replayed["failures"][0]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(failure.contains("refused by the test"), "{replayed}");
    app.wait_for_count(&congratulations("b"), 1).await?;
    let resolved = "SELECT COUNT(*) FROM ingest_errors WHERE resolved_at IS NOT NULL";
    assert_eq!(app.count(resolved).await?, 1, "what was stored is resolved");
    app.stop().await
}

const FITNESS_TYPES: [&str; 4] = [
    "app_launch",
    "training_program_started",
    "training_program_cancelled",
    "training_program_finished",
];

async fn publish_fitness(app: &TestApp, schema: &Value) -> anyhow::Result<()> {
    for name in FITNESS_TYPES {
        publish(app, name, schema).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_sample_replayed_from_errors_gives_exactly_its_two_notifications()
-> anyhow::Result<()> {
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.rule_lateness = Duration::from_secs(1);
    let app = TestApp::start_with(isolation, Role::All).await?;
    publish_fitness(&app, &json!({"type": "object", "required": ["x"]})).await?;
    post_each(&app, &seed_sample()).await?;
    app.wait_for_count("SELECT COUNT(*) FROM ingest_errors", 5)
        .await?;
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, 0);

    publish_fitness(&app, &json!({"type": "object"})).await?;
    let replayed = replay_errors(&app).await?;
    assert_eq!(replayed["stored"], 5, "{replayed}");
    app.wait_for_count("SELECT COUNT(*) FROM notifications", 2)
        .await?;
    let sent = "SELECT COUNT(*) FROM notifications WHERE (user_id = 'foo1' AND rule = 'daily_training_dose') \
                OR (user_id = 'foo2' AND rule = 'start_training_nudge')";
    assert_eq!(app.count(sent).await?, 2);
    assert_eq!(replay_errors(&app).await?["replayed"], 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications").await?, 2);
    app.stop().await
}
