//! The Segment tracking API over HTTP: the mapping as stored and queried, write-key auth, malformed
//! messages, gzip bodies (and bombs) on every ingest endpoint, and rules on Segment events.

use crate::support::{ADMIN_TOKEN, Backend, Isolation, TestApp};
use eye_server::Role;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;

/// A batch of every call, as an SDK sends it (`sentAt` and `context` on the batch).
fn every_call() -> Value {
    let now = chrono::Utc::now().to_rfc3339();
    json!({
        "batch": [
            {"type": "track", "event": "Order Completed", "userId": "u1", "anonymousId": "a1",
             "messageId": "0190f0e0-0000-7000-8000-000000000001", "properties": {"revenue": 9.5},
             "integrations": {"All": true}, "timestamp": now},
            {"type": "page", "name": "Home", "anonymousId": "a1", "messageId": "page-1",
             "properties": {"path": "/"}, "context": {"sessionId": 1700000000}, "timestamp": now},
            {"type": "screen", "name": "Settings", "userId": "u1", "timestamp": now},
            {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}, "timestamp": now},
            {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"plan": "pro"}, "timestamp": now},
            {"type": "alias", "userId": "u1", "previousId": "a1", "timestamp": now}
        ],
        "context": {"library": {"name": "test"}, "ip": "10.0.0.1"},
        "sentAt": now
    })
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// `POST {path}` with HTTP Basic (the key as user name, no password), as the SDKs authenticate.
async fn post_basic(
    app: &TestApp,
    path: &str,
    key: &str,
    body: &Value,
) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .http
        .post(format!("{}{path}", app.base))
        .basic_auth(key, Some(""))
        .json(body)
        .send()
        .await?)
}

async fn post_gzip(
    app: &TestApp,
    path: &str,
    compressed: Vec<u8>,
) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.ingest_key)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(compressed)
        .send()
        .await?)
}

async fn query(app: &TestApp, filter: &str) -> anyhow::Result<Vec<Value>> {
    query_events(&app.http, &app.base, filter).await
}

/// `GET /v1/events?{filter}` with the admin token.
pub(crate) async fn query_events(
    http: &reqwest::Client,
    base: &str,
    filter: &str,
) -> anyhow::Result<Vec<Value>> {
    let response = http
        .get(format!("{base}/v1/events?{filter}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    anyhow::ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let body: Value = response.json().await?;
    Ok(body["events"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn every_call_is_stored_once_with_the_documented_mapping_and_queryable() -> anyhow::Result<()>
{
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let body = every_call();
    let compressed = gzip(body.to_string().as_bytes())?;
    for _ in 0..2 {
        let response = post_gzip(&app, "/v1/batch", compressed.clone()).await?;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "a plain 200, as the SDKs expect"
        );
        assert_eq!(response.json::<Value>().await?, json!({"success": true}));
    }
    app.wait_for_processed_events(12).await?;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events").await?,
        6,
        "the resend was deduplicated"
    );

    let track = query(&app, "category=track&name=Order%20Completed").await?;
    assert_eq!(track.len(), 1);
    let track = &track[0];
    assert_eq!(track["event_id"], "0190f0e0-0000-7000-8000-000000000001");
    assert_eq!(
        (&track["user_id"], &track["device_id"]),
        (&json!("u1"), &json!("a1"))
    );
    assert_eq!(track["session_id"], "a1");
    assert_eq!(track["data"]["revenue"], 9.5);
    let kept = &track["data"]["$segment"];
    assert_eq!(kept["integrations"], json!({"All": true}));
    assert_eq!(
        kept["context"]["ip"], "10.0.0.1",
        "the batch's context is kept"
    );

    let page = &query(&app, "category=page").await?[0];
    assert_eq!(
        (&page["name"], &page["session_id"]),
        (&json!("Home"), &json!("1700000000"))
    );
    let identify = &query(&app, "category=identify").await?[0];
    assert_eq!(identify["data"]["email"], "u1@example.com");
    let group = &query(&app, "category=group").await?[0];
    assert_eq!(group["data"]["$segment"]["groupId"], "g1");
    let alias = &query(&app, "category=alias").await?[0];
    assert_eq!(alias["data"]["$segment"]["previousId"], "a1");
    app.stop().await
}

#[tokio::test]
async fn single_calls_authenticate_with_basic_or_write_key_and_refuse_other_keys()
-> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let track = json!({"event": "Clicked", "userId": "u1"});
    let response = post_basic(&app, "/v1/track", &app.ingest_key, &track).await?;
    assert_eq!(response.status(), StatusCode::OK);

    let mut with_key = json!({"name": "Home", "anonymousId": "a9"});
    with_key["writeKey"] = json!(app.ingest_key);
    let response = app
        .http
        .post(format!("{}/v1/page", app.base))
        .json(&with_key)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK, "writeKey in the body");

    let read_key = read_key(&app).await?;
    let refused = [
        ("eyk_unknown", StatusCode::UNAUTHORIZED),
        (read_key.as_str(), StatusCode::FORBIDDEN),
    ];
    for (key, status) in refused {
        let response = post_basic(&app, "/v1/identify", key, &json!({"userId": "u"})).await?;
        assert_eq!(response.status(), status, "{key}");
    }
    let anonymous = app
        .http
        .post(format!("{}/v1/batch", app.base))
        .json(&json!({"batch": [track]}))
        .send()
        .await?;
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "no key at all"
    );

    app.wait_for_count("SELECT COUNT(*) FROM events", 2).await?;
    let stored = query(&app, "category=page").await?;
    assert!(
        stored[0]["data"]["$segment"].get("writeKey").is_none(),
        "the key is not stored"
    );
    app.stop().await
}

async fn read_key(app: &TestApp) -> anyhow::Result<String> {
    let response = app
        .http
        .post(format!("{}/v1/admin/read-keys", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "analyst"}))
        .send()
        .await?;
    let body: Value = response.json().await?;
    Ok(body["read_key"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_malformed_batch_is_refused_whole_naming_each_field() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    let batch = json!({"batch": [
        {"type": "track", "event": "ok", "userId": "u"},
        {"type": "track", "userId": "u"},
        {"type": "page", "anonymousId": "a", "properties": "not an object"},
        {"type": "shout", "userId": "u"}
    ]});
    let response = post_basic(&app, "/v1/batch", &app.ingest_key, &batch).await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let problem: Value = response.json().await?;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["batch[1].event", "batch[2].properties", "batch[3].type"]
    );

    let not_json = app
        .http
        .post(format!("{}/v1/batch", app.base))
        .basic_auth(&app.ingest_key, Some(""))
        .header("Content-Type", "application/json")
        .body("{\"batch\": [")
        .send()
        .await?;
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await?, 0);
    app.stop().await
}

/// The process's peak resident memory (Linux), in bytes.
fn peak_rss() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .ok_or_else(|| anyhow::anyhow!("no VmHWM"))?;
    Ok(kib * 1024)
}

/// A gzip body that inflates to `mib` MiB of spaces: one member of 1 MiB (about 1 KB compressed)
/// repeated, which inflates like a single member but costs the test no compression time.
fn bomb(mib: usize) -> anyhow::Result<Vec<u8>> {
    let member = gzip(&vec![b' '; 1024 * 1024])?;
    Ok(member.repeat(mib))
}

#[tokio::test]
async fn gzip_bodies_are_accepted_on_every_ingest_endpoint_and_a_bomb_is_413() -> anyhow::Result<()>
{
    let app = TestApp::start(Backend::Embedded).await?;
    let events = json!({"events": crate::support::seed_events()});
    let response = post_gzip(&app, "/v1/events", gzip(events.to_string().as_bytes())?).await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let legacy = &crate::notifications::seed_sample()[0];
    let response = post_gzip(&app, "/v1/event", gzip(legacy.to_string().as_bytes())?).await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.wait_for_count("SELECT COUNT(*) FROM events", 4).await?;

    // 1 GiB inflated: a server that inflated it whole would hold it all at once.
    let size = 1024 * 1024 * 1024;
    let bomb = bomb(1024)?;
    for path in ["/v1/batch", "/v1/events", "/v1/event", "/v1/track"] {
        let response = post_gzip(&app, path, bomb.clone()).await?;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    let peak = peak_rss()?;
    println!("bomb of {} bytes; peak RSS {peak} bytes", bomb.len());
    assert!(
        peak < (size / 2) as u64,
        "peak RSS {peak} bytes: the bomb was inflated"
    );

    let response = app
        .http
        .post(format!("{}/v1/events", app.base))
        .bearer_auth(&app.ingest_key)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "br")
        .body(events.to_string())
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let corrupt = post_gzip(&app, "/v1/batch", b"not gzip".to_vec()).await?;
    assert_eq!(corrupt.status(), StatusCode::BAD_REQUEST);
    app.stop().await
}

#[tokio::test]
async fn a_track_of_a_finished_program_is_congratulated_like_the_apps_own_event()
-> anyhow::Result<()> {
    // The seed rules, for the category Segment's `track` calls map to.
    let seed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/rules.toml"))?;
    let dir = tempfile::tempdir()?;
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        seed.replace("category = \"fitness\"", "category = \"track\""),
    )?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.rules = Some(rules);
    let app = TestApp::start_with(isolation, Role::All).await?;
    let program = json!({"training_program_id": "2352", "training_program_title": "7 Minutes of HIIT Training"});
    let batch = json!({"batch": [
        {"type": "track", "event": "training_program_started", "userId": "foo1", "anonymousId": "bar1",
         "properties": program, "timestamp": "2021-02-28T16:23:25Z"},
        {"type": "track", "event": "training_program_finished", "userId": "foo1", "anonymousId": "bar1",
         "properties": program, "timestamp": "2021-02-28T16:59:43Z"}
    ]});
    let response = post_basic(&app, "/v1/batch", &app.ingest_key, &batch).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let sql = "SELECT COUNT(*) FROM notifications WHERE rule = 'daily_training_dose' AND user_id = 'foo1' \
               AND message LIKE '%You trained 36 minutes in 7 Minutes of HIIT Training.'";
    app.wait_for_count(sql, 1).await?;
    app.stop().await
}

#[tokio::test]
async fn a_batch_the_queue_does_not_take_is_503_with_retry_after() -> anyhow::Result<()> {
    use crate::proxy::{FaultyProxy, ProxyMode, authority_of, via};
    use crate::support::redis_url;
    let proxy = FaultyProxy::start(&authority_of(&redis_url())).await?;
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    isolation.config.redis_url = Some(via(&redis_url(), proxy.addr));
    isolation.config.ingest_deadline = std::time::Duration::from_secs(1);
    isolation.config.queue_push_timeout = std::time::Duration::from_secs(3);
    let app = TestApp::start_with(isolation, Role::Api).await?;
    let batch = json!({"batch": [{"type": "track", "event": "e", "userId": "u"}]});
    proxy.set(ProxyMode::Stalled);
    let refused = post_basic(&app, "/v1/batch", &app.ingest_key, &batch).await?;
    assert_eq!(
        refused.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the SDKs retry a 503"
    );
    assert!(refused.headers().contains_key("retry-after"));
    proxy.set(ProxyMode::Open);
    let accepted = post_basic(&app, "/v1/batch", &app.ingest_key, &batch).await?;
    assert_eq!(accepted.status(), StatusCode::OK);
    app.stop().await
}
