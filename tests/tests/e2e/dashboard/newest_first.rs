//! The explorer's "Newest first": offered because the spec documents `order`, and paging through a
//! session newest first shows exactly the pages `GET /v1/events?order=desc` answers.

use super::browser::Browser;
use super::{open, seed, str_of};
use crate::support::{ADMIN_TOKEN, TestApp};
use serde_json::{Value, json};

/// One newest-first page of the session `s-many` from the API: its event ids in order, and the cursor.
async fn api_page(
    app: &TestApp,
    cursor: Option<&str>,
) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let after = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
    let url = format!(
        "{}/v1/events?session_id=s-many&limit=25&order=desc{after}",
        app.base
    );
    let page: Value = app
        .http
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let ids = page["events"].as_array().into_iter().flatten();
    let ids = ids.map(|e| str_of(&e["event_id"])).collect();
    Ok((ids, page["next_cursor"].as_str().map(str::to_owned)))
}

/// Waits until the explorer shows exactly `expected`, in that order.
async fn shows(browser: &Browser, what: &str, expected: &[String]) -> anyhow::Result<()> {
    let script = format!(
        "const ids = [...document.querySelectorAll('#explorer-results tbody tr')].map(r => r.dataset.eventId);
         return location.hash.includes('order=desc') && JSON.stringify(ids) === '{}';",
        json!(expected)
    );
    browser.until(what, &script).await.map(|_| ())
}

/// Chooses "Newest first" in the filter form and pages forward and back.
pub async fn pages(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    open(app, browser, "#/events?session_id=s-many&limit=25").await?;
    let option = "form.filters select[name=order] option[value=desc]";
    browser
        .until(
            "newest first offered",
            &format!("const o = document.querySelector('{option}'); return o && !o.disabled;"),
        )
        .await?;
    browser.find(option).await?.click().await?;
    browser
        .find("form.filters button[type=submit]")
        .await?
        .click()
        .await?;
    let (first, cursor) = api_page(app, None).await?;
    anyhow::ensure!(first.len() == 25 && cursor.is_some(), "{first:?}");
    shows(browser, "the newest 25 events, newest first", &first).await?;
    browser.screenshot("explorer-newest-first").await?;
    browser.find("#next-page").await?.click().await?;
    let (second, end) = api_page(app, cursor.as_deref()).await?;
    anyhow::ensure!(
        second.len() == seed::MANY_EVENTS - 25 && end.is_none(),
        "{second:?}"
    );
    shows(browser, "the oldest events, newest first", &second).await?;
    browser.find("#previous-page").await?.click().await?;
    shows(browser, "back to the newest page", &first).await
}
