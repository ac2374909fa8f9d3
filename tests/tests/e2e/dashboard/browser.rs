//! Headless Chromium driven over WebDriver (chromedriver + fantoccini), with the browser's console log,
//! screenshots and generous waits.

use anyhow::Context;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long to wait for anything the page does: generous, so a busy machine is never taken for a bug.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// The desktop window: 1280 px wide, tall enough for the overview's chart in a screenshot.
pub const DESKTOP: (u32, u32) = (1280, 1100);

/// A chromedriver process and one browser session on it.
pub struct Browser {
    pub client: Client,
    driver_url: String,
    session_id: String,
    screenshots: PathBuf,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a fresh headless Chromium at 1280 px.
    pub async fn start() -> anyhow::Result<Self> {
        let (driver, driver_url) = start_driver().await?;
        let profile = tempfile::Builder::new().prefix("eye-chromium-").tempdir()?;
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&profile)?)
            .connect(&driver_url)
            .await
            .context("chromedriver did not start a Chromium session (is `chromium` installed?)")?;
        client.set_window_size(DESKTOP.0, DESKTOP.1).await?;
        let session_id = client.session_id().await?.context("no session id")?;
        Ok(Self {
            client,
            driver_url,
            session_id,
            screenshots: screenshot_dir()?,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Ends the browser session (chromedriver is killed when dropped).
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.close().await?;
        Ok(())
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client.goto(url).await?;
        Ok(())
    }

    /// Waits for the first element matching `css`.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element {css} within {PATIENCE:?}"))
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        Ok(self.client.execute(script, args).await?)
    }

    /// Waits until `script` returns a truthy value; the last value is in the error otherwise.
    pub async fn until(&self, what: &str, script: &str) -> anyhow::Result<Value> {
        let started = std::time::Instant::now();
        loop {
            let value = self.js(script, Vec::new()).await?;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return Ok(value);
            }
            anyhow::ensure!(started.elapsed() < PATIENCE, "{what}: still {value}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's visible text.
    pub async fn text(&self) -> anyhow::Result<String> {
        let value = self
            .js("return document.body.innerText;", Vec::new())
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Saves a PNG of the viewport as `<name>.png` in the screenshot directory.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// The console messages at level SEVERE so far (errors, failed loads, CSP violations); reading
    /// them empties chromedriver's buffer.
    pub async fn console_errors(&self) -> anyhow::Result<Vec<String>> {
        let url = format!("{}/session/{}/se/log", self.driver_url, self.session_id);
        let answer: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await?
            .json()
            .await?;
        let entries = answer["value"].as_array().context("no browser log")?;
        Ok(entries
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect())
    }
}

fn capabilities(profile: &tempfile::TempDir) -> anyhow::Result<fantoccini::wd::Capabilities> {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .chain([format!("--user-data-dir={}", profile.path().display())])
    .collect::<Vec<_>>();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium_binary(), "args": args},
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    match caps {
        Value::Object(map) => Ok(map),
        _ => anyhow::bail!("capabilities are an object"),
    }
}

fn chromium_binary() -> String {
    std::env::var("EYE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// `chromedriver --port=0` and the port it reports.
async fn start_driver() -> anyhow::Result<(Child, String)> {
    let binary = std::env::var("EYE_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let mut child = Command::new(&binary)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!("cannot run {binary}: `bash .ci/test` installs chromium-driver")
        })?;
    let stdout = child.stdout.take().context("chromedriver stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                return Ok::<_, anyhow::Error>(rest.trim_end_matches('.').trim().parse::<u16>()?);
            }
        }
        anyhow::bail!("chromedriver exited before it listened")
    })
    .await
    .context("chromedriver did not start")??;
    // Keep reading its output so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, format!("http://127.0.0.1:{port}")))
}

/// `$EYE_ARTIFACTS_DIR`, else `<target dir>/dashboard-screenshots`.
fn screenshot_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("EYE_ARTIFACTS_DIR") {
        Some(dir) => PathBuf::from(dir).join("dashboard"),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
            .join("dashboard-screenshots"),
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
