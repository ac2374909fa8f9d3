//! Dry runs over stored events: the seed's sample with each seed rule decides exactly its notification,
//! a 40-minute rule none; nothing is written; ranges past the stated limits are refused.

use crate::notifications::{post_each, seed_sample};
use crate::rules_api::{call, workouts};
use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp};
use eye_server::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn dry_run(
    app: &TestApp,
    rule: Value,
    from: &str,
    to: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let body = json!({"rule": rule, "application_id": app.application_id, "from": from, "to": to});
    call(
        app,
        Method::POST,
        "/v1/admin/rules/dry-run",
        ADMIN_TOKEN,
        Some(&body),
    )
    .await
}

const FROM: &str = "2021-02-28T00:00:00Z";
const TO: &str = "2021-03-01T00:00:00Z";

/// The seed's duration rule with another threshold, inline.
fn training_longer_than(threshold: &str) -> Value {
    json!({"name": "daily_training_dose_40", "kind": "duration", "category": "fitness",
           "start": "training_program_started", "finish": "training_program_finished",
           "cancel": ["training_program_cancelled"], "pair_on": "training_program_id",
           "longer_than": threshold, "message": "You trained {minutes} minutes."})
}

async fn the_sample_dry_runs_to_each_seed_rules_notification(
    backend: Backend,
) -> anyhow::Result<()> {
    let mut isolation = Isolation::new(backend).await?;
    // The live nudge waits an hour: the outbox holds the congratulation only while the dry runs run.
    isolation.config.rule_lateness = Duration::from_secs(3600);
    let app = TestApp::start_with(isolation, Role::All).await?;
    post_each(&app, &seed_sample()).await?;
    app.wait_for_count("SELECT COUNT(*) FROM events", 5).await?;
    app.wait_for_count("SELECT COUNT(*) FROM notifications", 1)
        .await?;
    let states = "SELECT COUNT(*) FROM rule_states WHERE version > 0";
    let states_before = app.count(states).await?;

    let (status, dose) = dry_run(&app, json!("daily_training_dose"), FROM, TO).await?;
    assert_eq!(status, StatusCode::OK, "{dose}");
    assert_eq!(
        (&dose["total"], &dose["events"]),
        (&json!(1), &json!(4)),
        "{dose}"
    );
    let congratulation = &dose["notifications"][0];
    assert_eq!(congratulation["user_id"], "foo1");
    assert_eq!(
        congratulation["message"],
        "Congratulations on your daily training dose! You trained 36 minutes in 7 Minutes of HIIT Training."
    );
    assert_eq!(
        congratulation["deciding_event"]["name"],
        "training_program_finished"
    );
    assert_eq!(dose["per_day"], json!([{"day": "2021-02-28", "count": 1}]));

    let (_, nudge) = dry_run(&app, json!("start_training_nudge"), FROM, TO).await?;
    assert_eq!(nudge["total"], 1, "{nudge}");
    assert_eq!(nudge["notifications"][0]["user_id"], "foo2");
    assert_eq!(
        nudge["notifications"][0]["triggered_at"],
        "2021-02-28T16:32:52+00:00"
    );
    assert_eq!(
        nudge["notifications"][0]["deciding_event"]["name"],
        "app_launch"
    );

    let (status, forty) = dry_run(&app, training_longer_than("40m"), FROM, TO).await?;
    assert_eq!(
        (status, &forty["total"]),
        (StatusCode::OK, &json!(0)),
        "{forty}"
    );
    assert_eq!(forty["notifications"], json!([]));
    let (_, thirty_five) = dry_run(&app, training_longer_than("35m"), FROM, TO).await?;
    assert_eq!(
        thirty_five["total"], 1,
        "the inline rule is evaluated: {thirty_five}"
    );

    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications").await?,
        1,
        "a dry run notifies nobody"
    );
    assert_eq!(
        app.count(states).await?,
        states_before,
        "nor changes any state"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_sample_dry_runs_to_foo1s_congratulation_and_foo2s_nudge() -> anyhow::Result<()> {
    the_sample_dry_runs_to_each_seed_rules_notification(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_dry_runs_the_seed_sample_too() -> anyhow::Result<()> {
    the_sample_dry_runs_to_each_seed_rules_notification(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_refuses_bad_ranges_rules_applications_and_too_much_work_naming_the_field()
-> anyhow::Result<()> {
    let mut isolation = Isolation::new(Backend::Embedded).await?;
    isolation.config.dry_run_max_events = 4;
    let app = TestApp::start_with(isolation, Role::All).await?;
    post_each(&app, &seed_sample()).await?;
    app.wait_for_count("SELECT COUNT(*) FROM events", 5).await?;
    let (status, at_limit) = dry_run(&app, json!("daily_training_dose"), FROM, TO).await?;
    assert_eq!(
        (status, &at_limit["events"]),
        (StatusCode::OK, &json!(4)),
        "at the limit"
    );
    let every_type = json!({"kind": "absence", "category": "fitness", "trigger": "app_launch",
        "expected": ["training_program_started", "training_program_finished", "training_program_cancelled"],
        "within": "10m", "message": "x"});
    let (status, problem) = dry_run(&app, every_type, FROM, TO).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "5 events: {problem}");
    assert_eq!(problem["errors"][0]["field"], "to");
    let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("holds 5 events"), "{problem}");
    let cases = [
        (json!("daily_training_dose"), TO, FROM, "to"),
        (
            json!("daily_training_dose"),
            "2020-01-01T00:00:00Z",
            "2021-01-02T00:00:01Z",
            "to",
        ),
        (json!(42), FROM, TO, "rule"),
        (
            json!({"kind": "count", "category": "fitness", "event": "w", "at_least": 3, "within": "1h"}),
            FROM,
            TO,
            "rule.message",
        ),
        (
            json!({"kind": "count", "category": "fitness", "event": "w", "at_least": 0, "within": "1h", "message": "x"}),
            FROM,
            TO,
            "rule.at_least",
        ),
    ];
    for (rule, from, to, field) in cases {
        let (status, problem) = dry_run(&app, rule.clone(), from, to).await?;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{rule} {from} {to}: {problem}"
        );
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, _) = dry_run(&app, json!("no_such_rule"), FROM, TO).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = json!({"rule": workouts(3), "application_id": uuid::Uuid::new_v4(), "from": FROM, "to": TO});
    let (status, problem) = call(
        &app,
        Method::POST,
        "/v1/admin/rules/dry-run",
        ADMIN_TOKEN,
        Some(&body),
    )
    .await?;
    assert_eq!(
        (status, &problem["errors"][0]["field"]),
        (StatusCode::BAD_REQUEST, &json!("application_id"))
    );
    app.stop().await
}
