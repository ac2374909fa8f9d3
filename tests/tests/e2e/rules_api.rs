//! Rules as data through the API: publish, version, delete, admin-only; a published rule notifies on the
//! next event without a restart, a deleted one stops; the `count` kind through the queue.

use crate::notifications::post_event;
use crate::notify_server::NotifyServer;
use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp};
use eye_server::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// A count rule: `at_least` workouts of a user within an hour.
pub(crate) fn workouts(at_least: u32) -> Value {
    json!({
        "kind": "count", "category": "fitness", "event": "workout_completed",
        "at_least": at_least, "within": "1h",
        "message": "{count} workouts within {window_minutes} minutes, {user_id}!"
    })
}

/// An admin (or other) call to `path` with an optional JSON body.
pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

async fn admin_get(app: &TestApp, path: &str) -> anyhow::Result<(StatusCode, Value)> {
    call(app, Method::GET, path, ADMIN_TOKEN, None).await
}

async fn put_rule(app: &TestApp, name: &str, rule: &Value) -> anyhow::Result<(StatusCode, Value)> {
    call(
        app,
        Method::PUT,
        &format!("/v1/admin/rules/{name}"),
        ADMIN_TOKEN,
        Some(rule),
    )
    .await
}

/// A `workout_completed` event of `user` at `time`, in the app's own shape.
fn workout(user: &str, time: &str) -> Value {
    json!({"event_id": Uuid::new_v4(), "session_id": user, "category": "fitness",
           "name": "workout_completed", "user_id": user, "timestamp": time, "data": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_published_in_versions_listed_and_deleted_and_an_invalid_one_names_its_field()
-> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    let (status, body) = put_rule(&app, "workouts", &workouts(3)).await?;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::CREATED, &json!(1)),
        "{body}"
    );
    let (status, body) = put_rule(&app, "workouts", &workouts(5)).await?;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );

    let (_, listed) = admin_get(&app, "/v1/admin/rules").await?;
    let names: Vec<_> = listed["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            json!("daily_training_dose"),
            json!("start_training_nudge"),
            json!("workouts")
        ],
        "the file seeded two"
    );
    let (status, detail) = admin_get(&app, "/v1/admin/rules/workouts").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            &detail["version"],
            &detail["rule"]["at_least"],
            &detail["live"]
        ),
        (&json!(2), &json!(5), &json!(true))
    );
    assert_eq!(detail["versions"][1]["rule"]["at_least"], 3, "{detail}");

    let mut wrong = workouts(3);
    wrong["within"] = json!("a while");
    let (status, problem) = put_rule(&app, "workouts", &wrong).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "within", "{problem}");
    wrong = workouts(3);
    wrong["kind"] = json!("streak");
    let (_, problem) = put_rule(&app, "workouts", &wrong).await?;
    assert_eq!(problem["errors"][0]["field"], "kind", "{problem}");
    let (status, problem) = put_rule(&app, "Bad-Name", &workouts(3)).await?;
    assert_eq!(
        (status, &problem["errors"][0]["field"]),
        (StatusCode::BAD_REQUEST, &json!("name"))
    );

    let delete = |name: &'static str| call(&app, Method::DELETE, name, ADMIN_TOKEN, None);
    assert_eq!(
        delete("/v1/admin/rules/workouts").await?.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete("/v1/admin/rules/workouts").await?.0,
        StatusCode::NOT_FOUND
    );
    let (_, detail) = admin_get(&app, "/v1/admin/rules/workouts").await?;
    assert_eq!(
        (&detail["live"], detail["versions"].as_array().map(Vec::len)),
        (&json!(false), Some(2))
    );
    let (status, body) = put_rule(&app, "workouts", &workouts(3)).await?;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::CREATED, &json!(3)),
        "{body}"
    );
    let (status, _) = admin_get(&app, "/v1/admin/rules/never").await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_or_ingest_key_gets_403_and_an_unknown_one_401() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let (_, read) = call(
        &app,
        Method::POST,
        "/v1/admin/read-keys",
        ADMIN_TOKEN,
        Some(&json!({"name": "r"})),
    )
    .await?;
    let read_key = read["read_key"].as_str().unwrap_or_default().to_owned();
    let dry_run = json!({"rule": "daily_training_dose", "application_id": app.application_id,
                         "from": "2021-01-01T00:00:00Z", "to": "2021-02-01T00:00:00Z"});
    let calls = [
        (Method::GET, "/v1/admin/rules", None),
        (Method::GET, "/v1/admin/rules/daily_training_dose", None),
        (Method::PUT, "/v1/admin/rules/workouts", Some(workouts(3))),
        (Method::DELETE, "/v1/admin/rules/daily_training_dose", None),
        (Method::POST, "/v1/admin/rules/dry-run", Some(dry_run)),
    ];
    for (method, path, body) in calls {
        for (key, expected) in [
            (app.ingest_key.as_str(), StatusCode::FORBIDDEN),
            (read_key.as_str(), StatusCode::FORBIDDEN),
            ("eye_unknown", StatusCode::UNAUTHORIZED),
            ("eyr_unknown", StatusCode::UNAUTHORIZED),
        ] {
            let (status, _) = call(&app, method.clone(), path, key, body.as_ref()).await?;
            assert_eq!(status, expected, "{method} {path} with {key}");
        }
    }
    let (status, _) = admin_get(&app, "/v1/admin/rules/daily_training_dose").await?;
    assert_eq!(status, StatusCode::OK, "nothing was deleted");
    app.stop().await
}

/// No restart anywhere: the worker that runs before the publish evaluates the next event with the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_rule_notifies_on_the_next_event_and_a_deleted_one_stops() -> anyhow::Result<()>
{
    let notify = NotifyServer::start().await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.notify_url = Some(notify.url());
    let app = TestApp::start_with(isolation, Role::All).await?;
    let key = app.ingest_key.clone();
    post_event(&app, &key, &workout("u1", "2021-03-01T10:00:00Z")).await?;
    app.wait_for_processed_events(1).await?;

    assert_eq!(
        put_rule(&app, "two_workouts", &workouts(2)).await?.0,
        StatusCode::CREATED
    );
    post_event(&app, &key, &workout("u1", "2021-03-01T10:30:00Z")).await?;
    let delivered = "SELECT COUNT(*) FROM notifications WHERE status = 'delivered'";
    app.wait_for_count(delivered, 1).await?;
    let sent = notify.received();
    assert_eq!(sent[0].body["rule"], "two_workouts");
    assert_eq!(
        sent[0].body["message"], "2 workouts within 60 minutes, u1!",
        "the earlier workout counts"
    );

    let (status, _) = call(
        &app,
        Method::DELETE,
        "/v1/admin/rules/two_workouts",
        ADMIN_TOKEN,
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for minute in [40, 50, 55] {
        post_event(
            &app,
            &key,
            &workout("u1", &format!("2021-03-01T10:{minute}:00Z")),
        )
        .await?;
    }
    app.wait_for_processed_events(5).await?;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications").await?,
        1,
        "deleted: nothing more"
    );
    notify.stop().await?;
    app.stop().await
}

/// Through the queue: a burst notifies once, its duplicates nothing, the next burst once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_kind_notifies_once_per_window_through_the_queue() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    assert_eq!(
        put_rule(&app, "three_workouts", &workouts(3)).await?.0,
        StatusCode::CREATED
    );
    let burst: Vec<Value> = ["10:00", "10:20", "10:40", "10:50"]
        .iter()
        .map(|t| workout("u2", &format!("2021-03-01T{t}:00Z")))
        .collect();
    let other_user = workout("u3", "2021-03-01T10:10:00Z");
    let first = json!([burst[0], burst[1], other_user, burst[2], burst[3]]);
    assert_eq!(
        app.post_events(first.clone()).await?.status(),
        StatusCode::ACCEPTED
    );
    let count = "SELECT COUNT(*) FROM notifications WHERE rule = 'three_workouts'";
    app.wait_for_count(count, 1).await?;
    assert_eq!(
        app.post_events(first).await?.status(),
        StatusCode::ACCEPTED,
        "all duplicates"
    );
    let next: Vec<Value> = ["11:00", "11:10"]
        .iter()
        .map(|t| workout("u2", &format!("2021-03-01T{t}:00Z")))
        .collect();
    assert_eq!(
        app.post_events(json!(next)).await?.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for_count(count, 2).await?;
    app.wait_for_processed_events(12).await?;
    assert_eq!(app.count(count).await?, 2);
    let decided = format!(
        "SELECT COUNT(*) FROM notifications WHERE rule = 'three_workouts' AND message LIKE '3 workouts%' \
         AND occasion IN ('three_workouts:u2:{}', 'three_workouts:u2:{}')",
        burst[2]["event_id"].as_str().unwrap_or_default(),
        next[1]["event_id"].as_str().unwrap_or_default()
    );
    assert_eq!(
        app.count(&decided).await?,
        2,
        "decided by the 3rd event of each window"
    );
    app.stop().await
}

/// An absence rule deleted while its timer waits: the timer never fires. A second rule's timer, armed
/// later and so due later, proves the sweeper passed the deleted one's due time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_absence_rule_fires_none_of_its_pending_timers() -> anyhow::Result<()> {
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    // Long enough for the delete to land before the first timer is due, however slow the machine.
    isolation.config.rule_lateness = std::time::Duration::from_secs(20);
    let app = TestApp::start_with(isolation, Role::All).await?;
    let absence = |trigger: &str| {
        json!({"kind": "absence", "category": "fitness", "trigger": trigger,
               "expected": ["workout_completed"], "within": "1m", "message": "{rule}"})
    };
    assert_eq!(
        put_rule(&app, "deleted_nudge", &absence("app_open"))
            .await?
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        put_rule(&app, "control_nudge", &absence("app_close"))
            .await?
            .0,
        StatusCode::CREATED
    );
    let key = app.ingest_key.clone();
    let mut open = workout("u1", "2021-03-01T10:00:00Z");
    open["name"] = json!("app_open");
    post_event(&app, &key, &open).await?;
    app.wait_for_processed_events(1).await?;
    let armed = "SELECT COUNT(*) FROM rule_states WHERE wake_at IS NOT NULL";
    app.wait_for_count(armed, 1).await?;
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/v1/admin/rules/deleted_nudge",
        ADMIN_TOKEN,
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let mut close = workout("u2", "2021-03-01T10:00:00Z");
    close["name"] = json!("app_close");
    post_event(&app, &key, &close).await?;
    app.wait_for_count(
        "SELECT COUNT(*) FROM notifications WHERE rule = 'control_nudge'",
        1,
    )
    .await?;
    app.wait_for_count(armed, 0).await?;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE rule = 'deleted_nudge'")
            .await?,
        0
    );
    app.stop().await
}
