//! A measurement, not a check (CI skips it): how soon the overview paints against a running service,
//! e.g. one with a million events bulk-loaded (BENCHMARKS.md, "Dashboard").
//!
//! `EYE_DASHBOARD_URL=http://127.0.0.1:8080 EYE_DASHBOARD_TOKEN=… cargo test -p eye-tests --test e2e \
//!  dashboard::paint -- --ignored --nocapture`

use super::browser::Browser;
use serde_json::{Value, json};

const RUNS: usize = 5;

#[tokio::test]
#[ignore = "a measurement against a service you start; see BENCHMARKS.md"]
async fn first_paint_of_the_overview() -> anyhow::Result<()> {
    let base = std::env::var("EYE_DASHBOARD_URL")?;
    let token = std::env::var("EYE_DASHBOARD_TOKEN")?;
    let browser = Browser::start().await?;
    let outcome = measure(&browser, &base, &token).await;
    browser.close().await?;
    outcome
}

async fn measure(browser: &Browser, base: &str, token: &str) -> anyhow::Result<()> {
    browser.goto(&format!("{base}/dashboard")).await?;
    browser
        .js(
            "sessionStorage.setItem('eye.token', arguments[0]);",
            vec![json!(token)],
        )
        .await?;
    for range in ["hour", "day", "week"] {
        let mut paints = Vec::new();
        let mut charts = Vec::new();
        for run in 0..RUNS {
            // A query string makes each visit a full page load (files revalidated by ETag after the first).
            browser
                .goto(&format!(
                    "{base}/dashboard?run={run}{range}#/overview?range={range}"
                ))
                .await?;
            let timings = browser.client.execute_async(TIMINGS, vec![]).await?;
            paints.push(number(&timings["paint"]));
            charts.push(number(&timings["chart"]));
        }
        println!(
            "range {range}: first contentful paint {} ms, chart drawn {} ms (median of {RUNS}; runs {paints:?} / {charts:?})",
            median(&paints),
            median(&charts)
        );
    }
    Ok(())
}

/// Waits for the chart's first point, then reports the first contentful paint and that moment (ms
/// after navigation start).
const TIMINGS: &str = "const done = arguments[arguments.length - 1];
  const check = () => document.querySelector('#events-chart circle.point')
    ? done({paint: performance.getEntriesByName('first-contentful-paint')[0]?.startTime, chart: performance.now()})
    : requestAnimationFrame(check);
  check();";

fn number(value: &Value) -> f64 {
    (value.as_f64().unwrap_or(f64::NAN) * 10.0).round() / 10.0
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
