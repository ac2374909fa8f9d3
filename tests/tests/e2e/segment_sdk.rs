//! The official Segment Python SDK (`segment-analytics-python`, pinned in `.ci/test`) against the real
//! service, with a restart of the service while the SDK sends: every event stored exactly once.

use crate::segment::query_events;
use crate::support::{ADMIN_TOKEN, Backend, Isolation};
use anyhow::Context;
use eye_server::{Config, Role, Service};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// `track` calls besides one of each kind (the SDK batches them 100 at a time).
const TRACKS: i64 = 3000;

/// The interpreter with the SDK installed (`.ci/deps` sets it), else `python3`.
fn python() -> String {
    std::env::var("EYE_CI_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn start_sdk(base: &str, key: &str) -> anyhow::Result<Child> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/segment/send.py");
    Command::new(python())
        .args([script, base, key, &TRACKS.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("run the Segment SDK script (bash .ci/test installs its interpreter)")
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> anyhow::Result<String> {
    let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
        .await
        .context("the SDK script said nothing for 5 minutes")??;
    line.context("the SDK script ended early (is segment-analytics-python installed? see .ci/test)")
}

/// Starts the service; with `config.bind` on a fixed port, a restart comes back at the same address.
async fn start(config: &Config) -> anyhow::Result<(Service, String)> {
    let service = eye_server::start(config, Role::All).await?;
    let addr = service.addr().context("the API listens")?;
    Ok((service, format!("http://{addr}")))
}

async fn create_application(base: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/admin/applications"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "segment-sdk"}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == StatusCode::CREATED,
        "{}",
        response.status()
    );
    let created: Value = response.json().await?;
    Ok(created["ingest_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_delivers_every_call_exactly_once_across_a_restart()
-> anyhow::Result<()> {
    let mut isolation = Isolation::new(Backend::PostgresRedis).await?;
    let (service, base) = start(&isolation.config).await?;
    isolation.config.bind = service.addr().context("the API listens")?;
    let key = create_application(&base).await?;

    let mut sdk = start_sdk(&base, &key)?;
    let mut lines = BufReader::new(sdk.stdout.take().context("stdout")?).lines();
    anyhow::ensure!(
        next_line(&mut lines).await? == "HALF",
        "the first half was delivered"
    );
    // Down while the SDK sends the second half; its retries must carry it over the gap.
    service.stop().await;
    let mut stdin = sdk.stdin.take().context("stdin")?;
    stdin.write_all(b"go\n").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (service, base) = start(&isolation.config).await?;
    let outcome = next_line(&mut lines).await?;
    anyhow::ensure!(outcome == "DONE", "the SDK reported failures: {outcome}");
    anyhow::ensure!(sdk.wait().await?.success(), "the SDK script failed");

    let store = eye_server::open_store(&isolation.config).await?;
    let checks = Checks { base, store };
    checks.every_event_once().await?;
    checks.each_call_as_documented().await?;
    service.stop().await;
    drop(checks);
    isolation.cleanup().await
}

struct Checks {
    base: String,
    store: eye_store::Store,
}

impl Checks {
    async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        use sea_orm::{ConnectionTrait, Statement};
        let db = self.store.connection();
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await?
            .context("a row")?;
        Ok(row.try_get_by_index::<i64>(0)?)
    }

    async fn every_event_once(&self) -> anyhow::Result<()> {
        let expected = TRACKS + 6;
        let started = std::time::Instant::now();
        while self.count("SELECT COUNT(*) FROM events").await? < expected {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(180),
                "not all stored"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Let any late duplicate land before counting.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(self.count("SELECT COUNT(*) FROM events").await?, expected);
        let distinct = "SELECT COUNT(DISTINCT event_id) FROM events";
        assert_eq!(
            self.count(distinct).await?,
            expected,
            "each event stored once"
        );
        let items = "SELECT COUNT(DISTINCT data->>'item') FROM events WHERE name = 'Item Viewed'";
        assert_eq!(self.count(items).await?, TRACKS, "every track call arrived");
        Ok(())
    }

    async fn query(&self, filter: &str) -> anyhow::Result<Value> {
        let events = query_events(&reqwest::Client::new(), &self.base, filter).await?;
        events
            .first()
            .cloned()
            .with_context(|| format!("no event for {filter}"))
    }

    async fn each_call_as_documented(&self) -> anyhow::Result<()> {
        let track = self.query("category=track&name=Order%20Completed").await?;
        assert_eq!(track["user_id"], "user-1");
        assert_eq!(track["device_id"], "anon-1");
        assert_eq!(track["session_id"], "1700000000", "context.sessionId");
        assert_eq!(track["data"]["revenue"], 9.5);
        let kept = &track["data"]["$segment"];
        assert_eq!(kept["messageId"], "sdk-track");
        assert_eq!(kept["context"]["library"]["name"], "analytics-python");
        let cases = [
            ("category=identify", "email", json!("user-1@example.com")),
            ("category=group", "plan", json!("pro")),
            ("category=page&name=Home", "path", json!("/")),
            ("category=screen&name=Settings", "tab", json!("privacy")),
        ];
        for (filter, field, value) in cases {
            assert_eq!(self.query(filter).await?["data"][field], value, "{filter}");
        }
        let alias = self.query("category=alias").await?;
        assert_eq!(alias["data"]["$segment"]["previousId"], "anon-1");
        Ok(())
    }
}
