//! Notification rules end to end: the app's events in, `POST /v1/notify` out, exactly once.

use crate::notify_server::{NotifyServer, unused_addr};
use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp};
use eye_server::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const DELIVERED: &str = "SELECT COUNT(*) FROM notifications WHERE status = 'delivered'";

/// The seed's five sample events, in order, in the app's shape (the seed's trailing commas removed).
pub(crate) fn seed_sample() -> Vec<Value> {
    vec![
        json!({"user_id": "foo2", "device_id": "bar2", "type": "app_launch",
               "time_stamp": "2021-02-28 16:22:52"}),
        json!({"user_id": "foo1", "device_id": "bar1", "type": "training_program_started",
               "training_program_id": "2352", "training_program_title": "7 Minutes of HIIT Training",
               "time_stamp": "2021-02-28 16:23:25"}),
        json!({"user_id": "foo2", "device_id": "bar2", "type": "training_program_started",
               "training_program_id": "2352", "time_stamp": "2021-02-28 16:52:00"}),
        json!({"user_id": "foo2", "device_id": "bar2", "type": "training_program_cancelled",
               "training_program_id": "2352", "time_stamp": "2021-02-28 16:54:21"}),
        json!({"user_id": "foo1", "device_id": "bar1", "type": "training_program_finished",
               "training_program_id": "2352", "time_stamp": "2021-02-28 16:59:43"}),
    ]
}

/// `POST /v1/event`, one event at a time, in order.
pub(crate) async fn post_each(app: &TestApp, events: &[Value]) -> anyhow::Result<()> {
    for event in events {
        post_event(app, &app.ingest_key, event).await?;
    }
    Ok(())
}

/// `POST /v1/event` with `key`; answers once it got its 202.
pub(crate) async fn post_event(app: &TestApp, key: &str, event: &Value) -> anyhow::Result<()> {
    let response = app
        .http
        .post(format!("{}/v1/event", app.base))
        .bearer_auth(key)
        .json(event)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == StatusCode::ACCEPTED,
        "{}",
        response.status()
    );
    Ok(())
}

/// `GET /v1/notifications?{query}`.
async fn notifications(app: &TestApp, query: &str) -> anyhow::Result<Vec<Value>> {
    let response = app
        .http
        .get(format!("{}/v1/notifications?{query}", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    anyhow::ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let body: Value = response.json().await?;
    Ok(body["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

async fn the_seed_sample_notifies_twice(backend: Backend) -> anyhow::Result<()> {
    let notify = NotifyServer::start().await?;
    let mut isolation = Isolation::new(backend).await?;
    isolation.config.notify_url = Some(notify.url());
    // Only the wall clock fires the nudge: wait two seconds for late events, not a minute.
    isolation.config.rule_lateness = Duration::from_secs(2);
    let app = TestApp::start_with(isolation, Role::All).await?;
    post_each(&app, &seed_sample()).await?;
    app.wait_for_count("SELECT COUNT(*) FROM events", 5).await?;
    app.wait_for_count(DELIVERED, 2).await?;

    let mut sent: Vec<(String, String, String)> = notify
        .received()
        .iter()
        .map(|r| {
            let text = |key: &str| r.body[key].as_str().unwrap_or_default().to_owned();
            assert_eq!(r.idempotency_key, text("notification_id"));
            (text("user_id"), text("rule"), text("message"))
        })
        .collect();
    sent.sort();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        (sent[0].0.as_str(), sent[0].1.as_str()),
        ("foo1", "daily_training_dose")
    );
    assert!(
        sent[0]
            .2
            .contains("You trained 36 minutes in 7 Minutes of HIIT Training"),
        "{}",
        sent[0].2
    );
    assert_eq!(
        (sent[1].0.as_str(), sent[1].1.as_str()),
        ("foo2", "start_training_nudge")
    );

    let listed = notifications(&app, "user_id=foo2&status=delivered").await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["attempts"], 1);
    assert_eq!(listed[0]["triggered_at"], "2021-02-28T16:32:52+00:00");
    assert!(listed[0]["delivered_at"].is_string());
    assert_eq!(
        notifications(&app, "").await?.len(),
        2,
        "nothing for the cancelled program"
    );
    notify.stop().await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_sample_congratulates_foo1_for_36_minutes_and_nudges_foo2() -> anyhow::Result<()> {
    the_seed_sample_notifies_twice(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_notifies_the_seed_sample_too() -> anyhow::Result<()> {
    the_seed_sample_notifies_twice(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_sample_notifies_nobody_again() -> anyhow::Result<()> {
    let notify = NotifyServer::start().await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.notify_url = Some(notify.url());
    isolation.config.rule_lateness = Duration::from_secs(2);
    let app = TestApp::start_with(isolation, Role::All).await?;
    post_each(&app, &seed_sample()).await?;
    app.wait_for_count(DELIVERED, 2).await?;
    post_each(&app, &seed_sample()).await?;
    app.wait_for_processed_events(10).await?;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events").await?,
        5,
        "same content, same event"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications").await?, 2);
    notify.stop().await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_service_down_then_up_gets_the_notification_exactly_once() -> anyhow::Result<()> {
    let down = unused_addr()?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.notify_url = Some(format!("http://{down}"));
    isolation.config.notify_retry_delay = Duration::from_millis(50);
    isolation.config.notify_max_attempts = 1000;
    let app = TestApp::start_with(isolation, Role::All).await?;
    post_each(&app, &seed_sample()[1..2]).await?;
    post_each(&app, &seed_sample()[4..5]).await?;
    let failed_twice = "SELECT COUNT(*) FROM notifications \
        WHERE status = 'pending' AND attempts >= 2 AND last_error IS NOT NULL";
    app.wait_for_count(failed_twice, 1).await?;

    let notify = NotifyServer::start_on(down).await?;
    app.wait_for_count(DELIVERED, 1).await?;
    let received = notify.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].body["user_id"], "foo1");
    let listed = notifications(&app, "rule=daily_training_dose").await?;
    assert_eq!(listed[0]["id"], received[0].body["notification_id"]);
    assert!(listed[0]["attempts"].as_u64() >= Some(3));
    notify.stop().await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_notify_url_notifications_are_recorded_as_undeliverable() -> anyhow::Result<()> {
    let mut isolation = Isolation::new(Backend::Embedded).await?;
    isolation.config.notify_url = None;
    let app = TestApp::start_with(isolation, Role::All).await?;
    post_each(&app, &[seed_sample()[1].clone(), seed_sample()[4].clone()]).await?;
    let undeliverable = "SELECT COUNT(*) FROM notifications WHERE status = 'undeliverable'";
    app.wait_for_count(undeliverable, 1).await?;
    app.stop().await
}

/// A worker restarted while a nudge timer is pending fires it once. The first worker waits an hour of
/// lateness; its successor waits none, so the timer is due as soon as it starts: no sleeping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_pending_across_a_worker_restart_fires_once() -> anyhow::Result<()> {
    let notify = NotifyServer::start().await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.notify_url = Some(notify.url());
    isolation.config.rule_lateness = Duration::from_secs(3600);
    let patient = isolation.config.clone();
    let mut eager = isolation.config.clone();
    eager.rule_lateness = Duration::ZERO;
    let app = TestApp::start_with(isolation, Role::Api).await?;

    let first = eye_server::start(&patient, Role::Worker).await?;
    post_each(&app, &seed_sample()[..1]).await?;
    let pending = "SELECT COUNT(*) FROM rule_states WHERE wake_at IS NOT NULL";
    app.wait_for_count(pending, 1).await?;
    first.stop().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications").await?, 0);

    let second = eye_server::start(&eager, Role::Worker).await?;
    app.wait_for_count(DELIVERED, 1).await?;
    second.stop().await;
    assert_eq!(app.count(pending).await?, 0, "no timer left to fire again");
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications").await?, 1);
    assert_eq!(notify.received().len(), 1);
    notify.stop().await?;
    app.stop().await
}
