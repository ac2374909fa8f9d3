//! The overview in the browser: its chart against `/v1/stats/events`, and its refresh.

use super::browser::Browser;
use super::{seed, str_of};
use crate::support::{ADMIN_TOKEN, TestApp};
use serde_json::Value;
use std::collections::BTreeSet;

/// The default range (last hour, by minute), then a custom one of two days (by hour): every point of the
/// chart is the API's count for its category and bucket.
pub async fn matches_stats(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    let groups = chart_matches_stats(app, browser, "overview", 6).await?;
    anyhow::ensure!(
        groups.contains("b category"),
        "all applications: {groups:?}"
    );
    let now = chrono::Utc::now();
    let from = (now - chrono::TimeDelta::days(2)).format("%Y-%m-%dT%H:00:00Z");
    let to = (now + chrono::TimeDelta::hours(1)).format("%Y-%m-%dT%H:00:00Z");
    let web = &app.application_id;
    let custom = format!("#/overview?range=custom&from={from}&to={to}&app={web}");
    browser
        .goto(&format!("{}/dashboard{custom}", app.base))
        .await?;
    let ready = "return document.getElementById('events-chart')?.dataset.interval === 'hour';";
    browser.until("the two-day chart", ready).await?;
    let groups = chart_matches_stats(app, browser, "overview-custom", 4).await?;
    anyhow::ensure!(
        !groups.contains("b category"),
        "narrowed to web: {groups:?}"
    );
    browser
        .goto(&format!("{}/dashboard#/overview", app.base))
        .await?;
    browser
        .until(
            "the hour's chart",
            "return document.getElementById('events-chart')?.dataset.interval === 'minute';",
        )
        .await?;
    Ok(())
}

/// Empty buckets must be drawn as 0, and at least `min_points` buckets hold events.
async fn chart_matches_stats(
    app: &TestApp,
    browser: &Browser,
    screenshot: &str,
    min_points: usize,
) -> anyhow::Result<BTreeSet<String>> {
    let chart = browser
        .js(
            "const c = document.getElementById('events-chart');
             return {range: {...c.dataset}, total: document.getElementById('total-events').textContent,
                     points: [...c.querySelectorAll('circle.point')].map(p => ({...p.dataset}))};",
            vec![],
        )
        .await?;
    browser.screenshot(screenshot).await?;
    let range = &chart["range"];
    let mut query = vec![
        ("group_by", "category"),
        ("interval", range["interval"].as_str().unwrap_or_default()),
        ("from", range["from"].as_str().unwrap_or_default()),
        ("to", range["to"].as_str().unwrap_or_default()),
    ];
    let application = range["application"].as_str().unwrap_or_default();
    if !application.is_empty() {
        query.push(("application_id", application));
    }
    let stats = api_get(app, ADMIN_TOKEN, "/v1/stats/events", &query).await?;
    let expected: BTreeSet<(String, String, i64)> = stats["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                str_of(&b["group"]),
                canonical(&b["start"]),
                b["count"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    let points = chart["points"].as_array().cloned().unwrap_or_default();
    let drawn: BTreeSet<(String, String, i64)> = points
        .iter()
        .map(|p| {
            (
                str_of(&p["group"]),
                canonical(&p["start"]),
                str_of(&p["count"]).parse().unwrap_or(-1),
            )
        })
        .filter(|(_, _, count)| *count != 0)
        .collect();
    anyhow::ensure!(
        expected.len() >= min_points,
        "the seed spreads over several buckets: {expected:?}"
    );
    let extra: Vec<_> = drawn.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&drawn).collect();
    anyhow::ensure!(
        extra.is_empty() && missing.is_empty(),
        "chart has {extra:?}, lacks {missing:?}"
    );
    let total: i64 = expected.iter().map(|(_, _, count)| count).sum();
    anyhow::ensure!(
        str_of(&chart["total"]).replace(',', "") == total.to_string(),
        "total {}",
        chart["total"]
    );
    let groups: BTreeSet<String> = expected.iter().map(|(group, _, _)| group.clone()).collect();
    anyhow::ensure!(
        points.len() % groups.len() == 0,
        "every group has a point per bucket"
    );
    Ok(groups)
}

/// A new event shows in the overview's total without any action in the page.
pub async fn refreshes_by_itself(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    // Read in one script: a refresh may replace the element between two WebDriver calls.
    let total = "return document.getElementById('total-events')?.textContent.replace(',', '');";
    let before = str_of(&browser.until("the total", total).await?);
    seed::send_one_more(app).await?;
    let expected = before.parse::<i64>()? + 1;
    let script = format!(
        "return document.getElementById('total-events')?.textContent.replace(',', '') === '{expected}';"
    );
    browser
        .until("the total after a new event", &script)
        .await?;
    Ok(())
}

async fn api_get(
    app: &TestApp,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let url = reqwest::Url::parse_with_params(&format!("{}{path}", app.base), query)?;
    let response = app.http.get(url).bearer_auth(token).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// An instant in one spelling (the API and the page may differ in sub-second digits).
fn canonical(value: &Value) -> String {
    chrono::DateTime::parse_from_rfc3339(&str_of(value))
        .map(|t| t.to_utc().to_rfc3339())
        .unwrap_or_else(|_| str_of(value))
}
