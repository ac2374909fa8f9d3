//! The analyst dashboard in a real browser (headless Chromium over WebDriver), against the real service
//! on PostgreSQL + Redis with data sent through the API: sign-in, the overview chart held to
//! `/v1/stats/events`, the explorer's filters and keyset paging (oldest and newest first), a session's
//! timeline, fixing a schema and replaying the refused events, notifications, event types, phone width,
//! and a read key that sees nothing of another application in any view. Any console error fails the
//! test.

mod browser;
mod newest_first;
mod overview;
mod paint;
mod seed;

use crate::support::{ADMIN_TOKEN, Backend, TestApp};
use browser::Browser;
use fantoccini::key::Key;
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[tokio::test]
async fn the_dashboard_shows_what_the_api_answers_and_nothing_of_other_applications()
-> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let browser = Browser::start().await;
    let outcome = match &browser {
        Ok(browser) => scenario(&app, browser).await,
        Err(err) => Err(anyhow::anyhow!("{err:#}")),
    };
    if let Ok(browser) = browser {
        browser.close().await?;
    }
    app.stop().await?;
    outcome
}

async fn scenario(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    let mut seeded = seed::seed(app).await?;
    a_wrong_token_is_refused(app, browser).await?;
    sign_in(app, browser, ADMIN_TOKEN).await?;
    overview::matches_stats(app, browser).await?;
    overview::refreshes_by_itself(app, browser).await?;
    seeded.stored += 1;
    reaches_a_view_by_keyboard(browser).await?;
    explorer_filters_and_pages(app, browser).await?;
    newest_first::pages(app, browser).await?;
    session_timeline(app, browser).await?;
    fix_and_replay(app, browser, &seeded).await?;
    notifications_and_types(app, browser).await?;
    phone_width(app, browser).await?;
    no_console_errors(browser).await?;
    let read_key = seed::read_key_for(app, &app.application_id).await?;
    browser.find("#sign-out").await?.click().await?;
    sign_in(app, browser, &read_key).await?;
    read_key_sees_only_its_application(app, browser, &seeded).await?;
    no_console_errors(browser).await?;
    another_application_is_forbidden(app, browser, &seeded).await
}

/// A token the API refuses leaves the page at sign-in with a message (its 401 is the one console error).
async fn a_wrong_token_is_refused(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    open(app, browser, "").await?;
    let field = browser.find("#token").await?;
    field
        .send_keys(&format!("eyr_wrong{}", char::from(Key::Enter)))
        .await?;
    let alert = browser.find("main .error-box").await?.text().await?;
    anyhow::ensure!(alert.contains("refused"), "{alert}");
    let stored = browser
        .js("return sessionStorage.getItem('eye.token');", vec![])
        .await?;
    anyhow::ensure!(stored.is_null(), "a refused token is not kept: {stored}");
    expect_console_errors(browser, "401").await
}

/// With `web`'s read key, asking the explorer for `other`'s events shows the API's 403 and no event.
async fn another_application_is_forbidden(
    app: &TestApp,
    browser: &Browser,
    seeded: &seed::Seeded,
) -> anyhow::Result<()> {
    open(app, browser, &format!("#/events?app={}", seeded.other_id)).await?;
    let alert = browser.find("main .error-box").await?.text().await?;
    anyhow::ensure!(alert.contains("403"), "{alert}");
    let rows = browser
        .js(
            "return document.querySelectorAll('tbody tr').length;",
            vec![],
        )
        .await?;
    anyhow::ensure!(rows == json!(0), "{rows} rows shown");
    expect_console_errors(browser, "403").await
}

/// The console holds errors, and each is a failed load with this status (nothing else went wrong).
async fn expect_console_errors(browser: &Browser, status: &str) -> anyhow::Result<()> {
    let errors = browser.console_errors().await?;
    anyhow::ensure!(!errors.is_empty(), "the refused request is in the console");
    for error in &errors {
        anyhow::ensure!(
            error.contains(&format!("status of {status}")),
            "console error: {error}"
        );
    }
    Ok(())
}

/// Types the token and presses Enter (the form works from the keyboard).
async fn sign_in(app: &TestApp, browser: &Browser, token: &str) -> anyhow::Result<()> {
    open(app, browser, "").await?;
    let field = browser.find("#token").await?;
    field
        .send_keys(&format!("{token}{}", char::from(Key::Enter)))
        .await?;
    browser.find("#events-chart circle.point").await?;
    let stored = browser
        .js("return sessionStorage.getItem('eye.token');", vec![])
        .await?;
    anyhow::ensure!(
        stored == json!(token),
        "the token is kept in sessionStorage"
    );
    anyhow::ensure!(
        !browser.client.current_url().await?.as_str().contains(token),
        "never in the URL"
    );
    Ok(())
}

/// From the overview, Tab goes from the page's first link (skip to content) through the navigation, and
/// Enter on "Events" opens the explorer.
async fn reaches_a_view_by_keyboard(browser: &Browser) -> anyhow::Result<()> {
    // A fresh load: focus starts at the top of the document (the token stays in sessionStorage).
    browser.client.refresh().await?;
    browser.find("#events-chart circle.point").await?;
    let tab = char::from(Key::Tab).to_string();
    let mut reached = Vec::new();
    for _ in 0..10 {
        browser
            .client
            .active_element()
            .await?
            .send_keys(&tab)
            .await?;
        let focused = browser
            .js("return document.activeElement.textContent.trim();", vec![])
            .await?;
        reached.push(str_of(&focused));
        if focused == "Events" {
            anyhow::ensure!(reached[0] == "Skip to content", "first stop: {reached:?}");
            let enter = char::from(Key::Enter).to_string();
            browser
                .client
                .active_element()
                .await?
                .send_keys(&enter)
                .await?;
            browser.until("the explorer", "return location.hash === '#/events' && document.getElementById('explorer-results');").await?;
            return Ok(());
        }
    }
    anyhow::bail!("Tab never reached the Events link: {reached:?}")
}

/// Filters by category and user, then pages through a 30-event session 25 at a time.
async fn explorer_filters_and_pages(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    open(app, browser, "#/events").await?;
    browser
        .find("form.filters input[name=category]")
        .await?
        .send_keys("page interaction")
        .await?;
    browser
        .find("form.filters input[name=user_id]")
        .await?
        .send_keys("u-alpha")
        .await?;
    browser
        .find("form.filters button[type=submit]")
        .await?
        .click()
        .await?;
    let rows = browser
        .until(
            "the filtered events",
            "const rows = [...document.querySelectorAll('#explorer-results tbody tr')];
             return location.hash.includes('user_id') && rows.length
               ? rows.map(r => [...r.cells].slice(1, 4).map(c => c.textContent)) : null;",
        )
        .await?;
    browser.screenshot("explorer").await?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    anyhow::ensure!(rows.len() == 4, "s-alpha's 4 page interactions: {rows:?}");
    for row in &rows {
        anyhow::ensure!(row[0] == "page interaction" && row[2] == "u-alpha", "{row}");
    }
    open(app, browser, "#/events?session_id=s-many&limit=25").await?;
    let first = event_ids(browser, 25).await?;
    browser.find("#next-page").await?.click().await?;
    let second = event_ids(browser, seed::MANY_EVENTS - 25).await?;
    anyhow::ensure!(first.is_disjoint(&second), "pages overlap");
    browser.find("#previous-page").await?.click().await?;
    anyhow::ensure!(
        event_ids(browser, 25).await? == first,
        "back to the first page"
    );
    Ok(())
}

async fn event_ids(browser: &Browser, expected: usize) -> anyhow::Result<BTreeSet<String>> {
    let script = format!(
        "const ids = [...document.querySelectorAll('#explorer-results tbody tr')].map(r => r.dataset.eventId);
         return ids.length === {expected} ? ids : null;"
    );
    let ids = browser
        .until(&format!("{expected} events"), &script)
        .await?;
    Ok(ids.as_array().into_iter().flatten().map(str_of).collect())
}

/// From an event to its session: the events in order, the pauses of a minute or more shown as gaps.
async fn session_timeline(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    open(app, browser, "#/events?session_id=s-alpha").await?;
    browser
        .find("#explorer-results a[href*='s-alpha']")
        .await?
        .click()
        .await?;
    let items = browser
        .until(
            "the timeline",
            "const items = [...document.querySelectorAll('#timeline > li')];
             return items.length ? items.map(li => li.className === 'gap' ? 'gap' : li.querySelector('strong').textContent) : null;",
        )
        .await?;
    browser.screenshot("session").await?;
    let expected = json!([
        "pageview",
        "cta click",
        "gap",
        "submit",
        "pageview",
        "gap",
        "pageview"
    ]);
    anyhow::ensure!(items == expected, "timeline {items}");
    let events = expected
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| *item != "gap")
        .count();
    anyhow::ensure!(events == seed::ALPHA_EVENTS, "every event of s-alpha");
    Ok(())
}

/// The refused `checkout / paid` events show their JSON pointer; the schema is fixed and they are replayed.
async fn fix_and_replay(
    app: &TestApp,
    browser: &Browser,
    seeded: &seed::Seeded,
) -> anyhow::Result<()> {
    open(app, browser, "#/errors").await?;
    let detail = browser
        .find("#errors-results tr[data-reason=invalid_payload] pre.detail")
        .await?;
    let text = detail.text().await?;
    anyhow::ensure!(
        text.contains("/amount"),
        "the JSON pointer of the bad value: {text}"
    );
    browser.screenshot("errors").await?;
    browser
        .find("#errors-results .fix-button")
        .await?
        .click()
        .await?;
    let editor = browser.find("#schema-editor").await?;
    editor.clear().await?;
    editor
        .send_keys(
            r#"{"type": "object", "properties": {"amount": {"type": ["number", "string"]}}}"#,
        )
        .await?;
    browser.find("#publish-schema").await?.click().await?;
    browser
        .until(
            "published",
            "return document.getElementById('replay-outcome').textContent.includes('version 2');",
        )
        .await?;
    browser.find("#replay-type").await?.click().await?;
    let result = browser
        .until("the replay's result", "const r = document.getElementById('replay-outcome'); return r && r.textContent.includes('Replayed') ? r.textContent : null;")
        .await?;
    browser.screenshot("replay").await?;
    anyhow::ensure!(
        str_of(&result).contains("Replayed 2: 2 stored, 0 still failing"),
        "{result}"
    );
    app.wait_for_count("SELECT count(*) FROM events", seeded.stored + 2)
        .await
}

async fn notifications_and_types(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    open(app, browser, "#/notifications?user_id=u-fit").await?;
    let rows = browser
        .until("notifications", "const rows = document.querySelectorAll('#notifications-results tbody tr'); return rows.length ? [...rows].map(r => r.textContent) : null;")
        .await?;
    browser.screenshot("notifications").await?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        rows.len() == 1 && str_of(&rows[0]).contains("daily_training_dose"),
        "{rows:?}"
    );
    open(app, browser, "#/types").await?;
    browser.find("main table").await?;
    let text = browser.text().await?;
    browser.screenshot("event-types").await?;
    anyhow::ensure!(text.contains("checkout") && text.contains("paid"), "{text}");
    Ok(())
}

/// At 390 px the overview fits the screen (nothing scrolls sideways but the tables' own boxes).
async fn phone_width(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    browser.client.set_window_size(390, 844).await?;
    open(app, browser, "#/overview").await?;
    browser.find("#events-chart circle.point").await?;
    let overflow = browser
        .js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await?;
    browser.screenshot("overview-phone").await?;
    browser
        .client
        .set_window_size(browser::DESKTOP.0, browser::DESKTOP.1)
        .await?;
    anyhow::ensure!(
        overflow.as_i64() == Some(0),
        "page wider than the phone by {overflow} px"
    );
    Ok(())
}

/// Every view with `web`'s read key: `web`'s data shows, `other`'s never does.
async fn read_key_sees_only_its_application(
    app: &TestApp,
    browser: &Browser,
    seeded: &seed::Seeded,
) -> anyhow::Result<()> {
    let views = [
        ("overview", "#events-chart circle.point", "page interaction"),
        ("events?limit=100", "#explorer-results tbody tr", "s-alpha"),
        ("errors", "#errors-results tbody tr", "/amount"),
        ("notifications", "#notifications-results tbody tr", "u-fit"),
        ("types", "main .notice", "admin token"),
    ];
    for (view, ready, own) in views {
        open(app, browser, &format!("#/{view}")).await?;
        browser.find(ready).await?;
        let text = browser.text().await?;
        let html = browser
            .js("return document.body.innerHTML;", vec![])
            .await?;
        let page = format!("{text}\n{}", str_of(&html));
        anyhow::ensure!(page.contains(own), "{view}: {own} missing");
        for marker in seed::OTHER_MARKERS
            .iter()
            .chain([&seeded.other_id.as_str()])
        {
            anyhow::ensure!(
                !page.contains(marker),
                "{view} shows {marker} of the other application"
            );
        }
        browser
            .screenshot(&format!(
                "read-key-{}",
                view.split('?').next().unwrap_or(view)
            ))
            .await?;
    }
    Ok(())
}

/// Goes to a view of the dashboard (`#/…`).
async fn open(app: &TestApp, browser: &Browser, view: &str) -> anyhow::Result<()> {
    browser.goto(&format!("{}/dashboard{view}", app.base)).await
}

async fn no_console_errors(browser: &Browser) -> anyhow::Result<()> {
    let errors = browser.console_errors().await?;
    anyhow::ensure!(errors.is_empty(), "console errors: {errors:#?}");
    Ok(())
}

pub fn str_of(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}
