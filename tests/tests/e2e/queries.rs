//! Analysts' queries: each filter and their combinations, ordering, keyset pagination while events arrive,
//! sessions and counts, on PostgreSQL + Redis and on the embedded default.

mod access;
mod errors;
mod key_cache;
mod newest_first;
mod notifications;
mod plans;
mod sessions;

use crate::support::{ADMIN_TOKEN, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

/// Two applications: `web` (the harness' own) and `other`, which reuses session id `s1`.
pub struct Fixture {
    pub app: TestApp,
    pub other_id: String,
    pub other_key: String,
}

/// An event labelled in its payload, so tests can name the events they expect. The payload satisfies the
/// built-in schemas of the seed's event types.
pub fn labelled(
    label: &str,
    session: &str,
    (category, name): (&str, &str),
    user: &str,
    at: &str,
) -> Value {
    json!({
        "session_id": session, "category": category, "name": name, "user_id": user,
        "data": {"label": label, "host": "example.com", "path": "/", "element": "button", "form": {}},
        "timestamp": format!("2021-01-01T{at}Z"),
    })
}

const PAGEVIEW: (&str, &str) = ("page interaction", "pageview");
const CLICK: (&str, &str) = ("page interaction", "cta click");
const SUBMIT: (&str, &str) = ("form interaction", "submit");

impl Fixture {
    /// `web`: a1..a5 in sessions s1 (user u1) and s2 (user u2); `other`: b1 in its own s1 (user u1).
    /// a1 and a2 share a timestamp: they must come back in the order they were sent.
    pub async fn start(backend: Backend) -> anyhow::Result<Self> {
        let app = TestApp::start(backend).await?;
        let other = app.create_application("other").await?;
        let web = json!([
            labelled("a1", "s1", PAGEVIEW, "u1", "09:00:00"),
            labelled("a2", "s1", CLICK, "u1", "09:00:00"),
            labelled("a3", "s1", SUBMIT, "u1", "09:30:00"),
            labelled("a4", "s2", PAGEVIEW, "u2", "10:15:00"),
            labelled("a5", "s2", PAGEVIEW, "u2", "11:00:00"),
        ]);
        assert_eq!(app.post_events(web).await?.status(), StatusCode::ACCEPTED);
        let fixture = Self {
            other_id: other["id"].as_str().unwrap_or_default().to_owned(),
            other_key: other["ingest_key"].as_str().unwrap_or_default().to_owned(),
            app,
        };
        let b1 = json!([labelled("b1", "s1", PAGEVIEW, "u1", "09:10:00")]);
        let sent = fixture.post_as(&fixture.other_key, b1).await?;
        assert_eq!(sent.status(), StatusCode::ACCEPTED);
        fixture
            .app
            .wait_for_count("SELECT COUNT(*) FROM events", 6)
            .await?;
        Ok(fixture)
    }

    /// `POST /v1/events` with any key.
    pub async fn post_as(&self, key: &str, events: Value) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}/v1/events", self.app.base);
        let body = json!({ "events": events });
        Ok(self
            .app
            .http
            .post(url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await?)
    }

    /// `GET path` with a token.
    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.app.base);
        Ok(self.app.http.get(url).bearer_auth(token).send().await?)
    }

    /// `GET path` that must answer 200; the JSON body.
    pub async fn read(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        let response = self.get(path, token).await?;
        anyhow::ensure!(
            response.status() == StatusCode::OK,
            "{path}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// The labels of the events a query answers, in order.
    pub async fn labels(&self, path: &str, token: &str) -> anyhow::Result<Vec<String>> {
        let page = self.read(path, token).await?;
        Ok(labels_of(&page))
    }

    /// A read key for the given applications (`None`: all).
    pub async fn read_key(
        &self,
        applications: Option<Vec<&str>>,
    ) -> anyhow::Result<(String, String)> {
        let mut body = json!({"name": "analyst"});
        if let Some(apps) = applications {
            body["application_ids"] = json!(apps);
        }
        let url = format!("{}/v1/admin/read-keys", self.app.base);
        let response = self
            .app
            .http
            .post(url)
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::CREATED,
            "read key: {}",
            response.status()
        );
        let created: Value = response.json().await?;
        let text = |field: &str| created[field].as_str().unwrap_or_default().to_owned();
        Ok((text("id"), text("read_key")))
    }
}

/// `GET path` with the admin token, continued at `cursor` (a `next_cursor`); it must answer 200.
pub async fn admin_page(app: &TestApp, path: &str, cursor: Option<&str>) -> anyhow::Result<Value> {
    let mut url = format!("{}{path}", app.base);
    if let Some(cursor) = cursor {
        url.push_str(&format!("&cursor={cursor}"));
    }
    let response = app.http.get(url).bearer_auth(ADMIN_TOKEN).send().await?;
    anyhow::ensure!(
        response.status() == StatusCode::OK,
        "{path}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

fn labels_of(page: &Value) -> Vec<String> {
    let events = page["events"].as_array().cloned().unwrap_or_default();
    events
        .iter()
        .map(|e| e["data"]["label"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn each_filter_and_combination(backend: Backend) -> anyhow::Result<()> {
    let f = Fixture::start(backend).await?;
    let (web, other) = (f.app.application_id.clone(), f.other_id.clone());
    let cases = [
        ("".to_owned(), "a1 a2 b1 a3 a4 a5"),
        (format!("application_id={web}"), "a1 a2 a3 a4 a5"),
        ("session_id=s1".into(), "a1 a2 b1 a3"),
        (format!("session_id=s1&application_id={other}"), "b1"),
        ("category=page%20interaction".into(), "a1 a2 b1 a4 a5"),
        (
            "category=page%20interaction&name=pageview".into(),
            "a1 b1 a4 a5",
        ),
        ("name=submit".into(), "a3"),
        ("user_id=u1".into(), "a1 a2 b1 a3"),
        (
            "from=2021-01-01T09:10:00Z&to=2021-01-01T11:00:00Z".into(),
            "b1 a3 a4",
        ),
        (
            "from=2021-01-01T09:00:00%2B01:00".into(),
            "a1 a2 b1 a3 a4 a5",
        ),
        (
            format!("application_id={web}&category=page%20interaction&to=2021-01-01T10:30:00Z"),
            "a1 a2 a4",
        ),
        (format!("user_id=u1&application_id={other}"), "b1"),
        (
            "session_id=s2&user_id=u2&name=pageview&from=2021-01-01T10:30:00Z".into(),
            "a5",
        ),
        ("user_id=nobody".into(), ""),
    ];
    for (query, expected) in cases {
        let labels = f
            .labels(&format!("/v1/events?{query}"), ADMIN_TOKEN)
            .await?;
        assert_eq!(labels.join(" "), expected, "query {query:?}");
    }
    let page = f.read("/v1/events?session_id=s2", ADMIN_TOKEN).await?;
    let first = &page["events"][0];
    assert_eq!(first["application_id"], json!(web));
    assert_eq!(
        (first["category"].clone(), first["name"].clone()),
        (json!("page interaction"), json!("pageview"))
    );
    assert!(first["event_id"].is_string() && first["received_at"].is_string());
    assert_eq!(
        (first["user_id"].clone(), first["device_id"].clone()),
        (json!("u2"), Value::Null)
    );
    assert_eq!(page["next_cursor"], Value::Null);
    f.app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_and_their_combinations_select_the_right_events_in_order_on_postgres()
-> anyhow::Result<()> {
    each_filter_and_combination(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_and_their_combinations_select_the_right_events_in_order_embedded()
-> anyhow::Result<()> {
    each_filter_and_combination(Backend::Embedded).await
}

/// Event `i` of session `p` at `second` past 2021-01-02 00:00 UTC.
fn tick(i: u32, second: u32) -> Value {
    json!({"event_id": Uuid::now_v7(), "session_id": "p", "category": "paging", "name": "tick", "data": {"i": i},
           "timestamp": format!("2021-01-02T{:02}:{:02}:{:02}Z", second / 3600, second / 60 % 60, second % 60)})
}

/// A page of 40 of session `p`, in `order` (`asc` or `desc`), continued at `cursor`.
async fn page_of(f: &Fixture, order: &str, cursor: Option<&str>) -> anyhow::Result<Value> {
    let mut path = format!(
        "/v1/events?session_id=p&application_id={}&limit=40&order={order}",
        f.app.application_id
    );
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={cursor}"));
    }
    f.read(&path, ADMIN_TOKEN).await
}

/// Counts session `p`'s stored events.
const STORED_TICKS: &str = "SELECT COUNT(*) FROM events WHERE session_id = 'p'";

/// Events 0..250 of session `p`, three per second so equal timestamps straddle page boundaries; waits
/// until they are stored.
async fn send_ticks(f: &Fixture) -> anyhow::Result<()> {
    let initial = Value::Array((0..250).map(|i| tick(i, i / 3)).collect());
    assert_eq!(
        f.app.post_events(initial).await?.status(),
        StatusCode::ACCEPTED
    );
    f.app.wait_for_count(STORED_TICKS, 250).await
}

/// When an event occurred, and its number.
type Read = (chrono::DateTime<chrono::FixedOffset>, u64);

/// Appends a page's events to `order`, failing on one already `seen`.
fn record(page: &Value, seen: &mut HashSet<Value>, order: &mut Vec<Read>) -> anyhow::Result<()> {
    for event in page["events"].as_array().cloned().unwrap_or_default() {
        assert!(seen.insert(event["event_id"].clone()), "duplicate {event}");
        let at =
            chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap_or_default())?;
        order.push((at, event["data"]["i"].as_u64().unwrap_or(u64::MAX)));
    }
    Ok(())
}

async fn pagination_while_events_arrive(backend: Backend) -> anyhow::Result<()> {
    let f = Fixture::start(backend).await?;
    send_ticks(&f).await?;
    let (mut seen, mut order, mut cursor) = (HashSet::new(), Vec::new(), None::<String>);
    for page_number in 0u32.. {
        let page = page_of(&f, "asc", cursor.as_deref()).await?;
        record(&page, &mut seen, &mut order)?;
        // Events arrive between pages: one at the current position (before or tied with the cursor), and
        // two far later (they must show up once, on a later page).
        let n = 1000 + 3 * page_number;
        let position = u32::try_from(seen.len() / 3).unwrap_or(0);
        f.app
            .post_events(json!([
                tick(n, position),
                tick(n + 1, 5000),
                tick(n + 2, 5000)
            ]))
            .await?;
        f.app
            .wait_for_count(STORED_TICKS, 250 + 3 * (i64::from(page_number) + 1))
            .await?;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let initial_seen: HashSet<u64> = order.iter().map(|(_, i)| *i).filter(|i| *i < 250).collect();
    assert_eq!(
        initial_seen.len(),
        250,
        "every event stored before paging is seen, each once"
    );
    assert!(
        order.windows(2).all(|w| w[0].0 <= w[1].0),
        "pages are in timestamp order"
    );
    let ties: Vec<u64> = order
        .iter()
        .filter(|(_, i)| *i < 6)
        .map(|(_, i)| *i)
        .collect();
    assert_eq!(
        ties,
        [0, 1, 2, 3, 4, 5],
        "equal timestamps keep the order the events were sent in"
    );
    assert!(
        order.iter().any(|(_, i)| *i >= 1000),
        "later arrivals appear on later pages"
    );
    f.app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_have_no_duplicates_and_no_gaps_while_events_arrive_on_postgres() -> anyhow::Result<()>
{
    pagination_while_events_arrive(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_have_no_duplicates_and_no_gaps_while_events_arrive_embedded() -> anyhow::Result<()> {
    pagination_while_events_arrive(Backend::Embedded).await
}
