//! The dashboard test's data, sent through the public API: two applications whose events, errors and
//! notifications fall within the last hour, so the overview's default range shows them.

use crate::support::{ADMIN_TOKEN, TestApp};
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Words that appear only in application `other`'s data: none may show for `web`'s read key.
pub const OTHER_MARKERS: &[&str] = &["b category", "b secret", "b-session", "b-user", "b-marker"];
/// `web`'s session: pauses of 19 min 50 s and 14 min 30 s, and shorter ones.
pub const ALPHA_EVENTS: usize = 5;
/// `web`'s session with more events than one explorer page of 25.
pub const MANY_EVENTS: usize = 30;
/// The type whose schema the test breaks and then fixes from the dashboard.
pub const PAID: (&str, &str) = ("checkout", "paid");

/// What was seeded.
pub struct Seeded {
    pub other_id: String,
    /// Events that are stored at once (the two refused ones come later, through the replay).
    pub stored: i64,
}

fn page_event(session: &str, name: &str, user: &str, at: DateTime<Utc>) -> Value {
    let category = if name == "submit" {
        "form interaction"
    } else {
        "page interaction"
    };
    json!({
        "session_id": session, "category": category, "name": name, "user_id": user, "timestamp": at,
        "data": {"host": "example.com", "path": "/pricing", "element": "buy button", "form": {"plan": "pro"}},
    })
}

fn fitness(user: &str, name: &str, at: DateTime<Utc>) -> Value {
    json!({"session_id": format!("{user}-device"), "category": "fitness", "name": name, "user_id": user,
           "timestamp": at, "data": {"training_program_id": "7", "training_program_title": "HIIT"}})
}

fn paid(session: &str, user: &str, amount: Value, at: DateTime<Utc>) -> Value {
    json!({"session_id": session, "category": PAID.0, "name": PAID.1, "user_id": user, "timestamp": at,
           "data": {"amount": amount, "note": format!("{user} paid")}})
}

/// `web` (the harness' application) and `other`: events, one refused event each, one notification each.
pub async fn seed(app: &TestApp) -> anyhow::Result<Seeded> {
    publish_strict_schema(app).await?;
    let now = Utc::now();
    let ago = |minutes: i64, seconds: i64| {
        now - TimeDelta::minutes(minutes) - TimeDelta::seconds(seconds)
    };
    let mut web = vec![
        page_event("s-alpha", "pageview", "u-alpha", ago(40, 0)),
        page_event("s-alpha", "cta click", "u-alpha", ago(39, 50)),
        page_event("s-alpha", "submit", "u-alpha", ago(20, 0)),
        page_event("s-alpha", "pageview", "u-alpha", ago(19, 30)),
        page_event("s-alpha", "pageview", "u-alpha", ago(5, 0)),
        fitness("u-fit", "training_program_started", ago(50, 0)),
        fitness("u-fit", "training_program_finished", ago(10, 0)),
        paid("s-pay", "u-pay", json!(10), ago(30, 0)),
        paid("s-pay", "u-pay", json!("ten"), ago(29, 0)),
    ];
    web.extend(
        (0..MANY_EVENTS as i64).map(|i| page_event("s-many", "pageview", "u-many", ago(45, -i))),
    );
    let other = app.create_application("other").await?;
    let other_key = other["ingest_key"].as_str().unwrap_or_default();
    let theirs = json!([
        {"session_id": "b-session", "category": "b category", "name": "b secret", "user_id": "b-user",
         "timestamp": ago(30, 0), "data": {"b-marker": true}},
        fitness("b-user", "training_program_started", ago(55, 0)),
        fitness("b-user", "training_program_finished", ago(15, 0)),
        paid("b-session", "b-user", json!("b-marker"), ago(25, 0)),
    ]);
    let total = web.len() + theirs.as_array().map_or(0, Vec::len);
    post(app, &app.ingest_key, json!(web)).await?;
    post(app, other_key, theirs).await?;
    let stored = total as i64 - 2;
    app.wait_for_count("SELECT count(*) FROM events", stored)
        .await?;
    app.wait_for_count("SELECT count(*) FROM ingest_errors", 2)
        .await?;
    app.wait_for_count("SELECT count(*) FROM notifications", 2)
        .await?;
    Ok(Seeded {
        other_id: other["id"].as_str().unwrap_or_default().to_owned(),
        stored,
    })
}

/// One more `web` event, a minute old, once it is stored.
pub async fn send_one_more(app: &TestApp) -> anyhow::Result<()> {
    let before = app.count("SELECT count(*) FROM events").await?;
    let at = Utc::now() - TimeDelta::minutes(1);
    post(
        app,
        &app.ingest_key,
        json!([page_event("s-late", "pageview", "u-late", at)]),
    )
    .await?;
    app.wait_for_count("SELECT count(*) FROM events", before + 1)
        .await
}

async fn post(app: &TestApp, key: &str, events: Value) -> anyhow::Result<()> {
    let url = format!("{}/v1/events", app.base);
    let request = app.http.post(url).bearer_auth(key);
    answer(
        request.json(&json!({ "events": events })),
        StatusCode::ACCEPTED,
    )
    .await?;
    Ok(())
}

/// `checkout / paid` needs a numeric `amount`: the events that send text are refused.
async fn publish_strict_schema(app: &TestApp) -> anyhow::Result<()> {
    let schema = json!({"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}});
    let url = format!("{}/v1/admin/event-types/{}/{}", app.base, PAID.0, PAID.1);
    let request = app.http.put(url).bearer_auth(ADMIN_TOKEN).json(&schema);
    answer(request, StatusCode::CREATED).await?;
    Ok(())
}

/// A read key for one application.
pub async fn read_key_for(app: &TestApp, application_id: &str) -> anyhow::Result<String> {
    let url = format!("{}/v1/admin/read-keys", app.base);
    let body = json!({"name": "dashboard", "application_ids": [application_id]});
    let created = answer(
        app.http.post(url).bearer_auth(ADMIN_TOKEN).json(&body),
        StatusCode::CREATED,
    )
    .await?;
    Ok(created["read_key"].as_str().unwrap_or_default().to_owned())
}

/// Sends the request and expects `status`; answers the JSON body (`null` when there is none).
async fn answer(request: reqwest::RequestBuilder, status: StatusCode) -> anyhow::Result<Value> {
    let response = request.send().await?;
    anyhow::ensure!(
        response.status() == status,
        "{}: {}",
        response.url(),
        response.status()
    );
    Ok(response.json().await.unwrap_or(Value::Null))
}
